package natsbus

import (
	"fmt"

	"github.com/nats-io/nats.go"
)

// Notify sends a best-effort core NATS message: for cache invalidations
// between replicas ("this tariff changed"), where a lost message is
// covered by a periodic check and storing it would be pointless.
func (b *Bus) Notify(subject string, data []byte) error {
	if err := b.nc.Publish(subject, data); err != nil {
		return fmt.Errorf("notify %s: %w", subject, err)
	}
	return nil
}

// Subscribe calls fn with the data of every core NATS message on subject
// (in order, one at a time) until the returned function is called.
// Messages sent while disconnected are missed: pair it with a periodic
// check.
func (b *Bus) Subscribe(subject string, fn func(data []byte)) (unsubscribe func(), err error) {
	sub, err := b.nc.Subscribe(subject, func(m *nats.Msg) { fn(m.Data) })
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", subject, err)
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

// Flush waits until the server has processed what was sent (so a
// subscription made just before is in place).
func (b *Bus) Flush() error { return b.nc.Flush() }
