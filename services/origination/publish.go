package origination

import (
	"context"
	"fmt"
	"strings"

	"github.com/ringback/ringback/services/internal/natsbus"
	"google.golang.org/protobuf/proto"
)

// BusPublisher publishes call events on JetStream as
// ringback.events.v1.CallEvent protobufs, on subject
// calls.<account>.<call_id>.<event> (event in lower case), with the event
// ID as Nats-Msg-Id so a republished outbox entry is dropped as a duplicate.
type BusPublisher struct {
	Bus *natsbus.Bus
}

// Subject is where an event of a call is published.
func Subject(accountID, callID string, t EventType) string {
	return "calls." + accountID + "." + callID + "." + strings.ToLower(string(t))
}

// Publish implements Publisher.
func (p BusPublisher) Publish(ctx context.Context, c *Call, pe Pending) error {
	snap := pe.Call
	if snap == nil {
		snap = c
	}
	ev := EventToProto(c, snap, pe)
	data, err := proto.Marshal(ev)
	if err != nil {
		return fmt.Errorf("encode event %s: %w", ev.EventId, err)
	}
	if _, err := p.Bus.Publish(ctx, Subject(c.AccountID, c.ID, pe.Type), ev.EventId, data); err != nil {
		return fmt.Errorf("publish event %s: %w", ev.EventId, err)
	}
	return nil
}
