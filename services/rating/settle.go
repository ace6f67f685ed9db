package rating

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/ringback/ringback/proto/gen/go/ringback/events/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	"github.com/ringback/ringback/services/internal/natsbus"
)

// SettleDurable is rating's durable consumer on the CALLS stream.
const SettleDurable = "rating"

// SettleSubject is what it reads: the hangup of every leg.
const SettleSubject = "calls.*.*.leg_hangup"

// Settler charges answered legs from their LEG_HANGUP events. Driving the
// charge from the event stream, rather than from a call origination makes,
// means a leg is charged even if origination restarts in between, and
// exactly once: the ledger's unique reference makes a redelivery a no-op.
//
// Settlements are group-committed: handlers hand their charge to one
// committer and wait for the transaction that carries it, and whatever
// arrives while a transaction commits goes into the next one. A quiet
// system commits each leg at once; a busy one commits many per transaction
// (an account's settlements serialize on its row, so one per transaction
// could not keep up with a busy account).
type Settler struct {
	Store *Store
	Log   *slog.Logger
	m     *metrics
	b     *batcher[Charge, bool]
}

// NewSettler returns a settler; run Run before handling messages.
func NewSettler(st *Store, log *slog.Logger, m *metrics) *Settler {
	return &Settler{Store: st, Log: log, m: m, b: newBatcher(256, st.SettleBatch)}
}

// Run commits settlements until ctx ends.
func (s *Settler) Run(ctx context.Context) { s.b.loop(ctx) }

// Handle is the natsbus handler.
func (s *Settler) Handle(ctx context.Context, m natsbus.Msg) error {
	var ev eventsv1.CallEvent
	if err := proto.Unmarshal(m.Data, &ev); err != nil {
		return natsbus.Permanent(fmt.Errorf("decode event %s: %w", m.MsgID, err))
	}
	if ev.GetType() != eventsv1.EventType_EVENT_TYPE_LEG_HANGUP {
		return nil
	}
	leg, name := ev.GetCall().GetFirst(), "first"
	if ev.GetLeg() == originationv1.LegRole_LEG_ROLE_SECOND {
		leg, name = ev.GetCall().GetSecond(), "second"
	}
	if leg.GetRate() == nil || leg.GetAnsweredAt() == nil {
		return nil // unrated (an endpoint) or never answered: nothing to charge
	}
	if n := ev.GetCall().GetAttempt(); n > 1 {
		// A redialed call's later attempt: its legs are charged apart from
		// the earlier attempts' (origination reserves them under the same
		// names, origination.ChargeLeg).
		name = fmt.Sprintf("%s.%d", name, n)
	}
	c := Charge{
		AccountID: ev.GetAccountId(), CallID: ev.GetCallId(), Leg: name, Rate: BillingRate(leg.GetRate()),
		Seconds:     int64(leg.GetBillsec()),
		Description: fmt.Sprintf("%s (+%s) %ds", leg.GetRate().GetDestination(), leg.GetRate().GetPrefix(), leg.GetBillsec()),
	}
	charged, err := s.b.do(ctx, c)
	if err != nil {
		return fmt.Errorf("settle %s/%s: %w", c.CallID, name, err)
	}
	if s.m != nil {
		result := "duplicate"
		if charged {
			result = "charged"
		}
		s.m.settlements.WithLabelValues(result).Inc()
	}
	return nil
}

// sweep releases expired reservations every interval until ctx ends.
func sweep(ctx context.Context, st *Store, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			n, err := st.ReleaseExpired(ctx, now)
			if err != nil {
				log.Warn("release expired reservations", "err", err)
			} else if n > 0 {
				log.Warn("released reservations whose legs were never settled", "count", n)
			}
		}
	}
}
