package webhook

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/ringback/ringback/proto/gen/go/ringback/events/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	webhookv1 "github.com/ringback/ringback/proto/gen/go/ringback/webhook/v1"
	"github.com/ringback/ringback/services/internal/ids"
	"github.com/ringback/ringback/services/internal/natsbus"
)

// IngestDurable is the webhook service's durable consumer on the CALLS
// stream.
const IngestDurable = "webhook"

// Ingester turns batches of call events into deliveries (one per matching
// subscription), records the events' sequences and the reminders' facts,
// all in one transaction; the batch is acked only once it has committed,
// and the new deliveries go straight to the dispatcher.
type Ingester struct {
	st    *Store
	subs  *subCache
	disp  *Dispatcher
	log   *slog.Logger
	m     *metrics
	owner string
	lease time.Duration
}

// callSeq is one event's place in its call.
type callSeq struct {
	call string
	seq  int32
}

// reminder is a failed call to be reminded of.
type reminder struct {
	call, account, campaign, number string
	failedLeg, reason               int16
	failedAt, recordedAt, dueAt     time.Time
}

// reached is a party a later call reached: it has been called back.
type reached struct {
	account, number, call string
	at                    time.Time
}

// Handle is the natsbus batch handler.
func (in *Ingester) Handle(ctx context.Context, msgs []natsbus.Msg) error {
	now := time.Now().UTC()
	var (
		seqs      []callSeq
		reminders []reminder
		reach     []reached
		ds        []*Delivery
	)
	for _, m := range msgs {
		ev := &eventsv1.CallEvent{}
		if err := proto.Unmarshal(m.Data, ev); err != nil || ev.GetCall() == nil || ev.GetCallId() == "" {
			// Retrying cannot fix it; the rest of the batch must not wait.
			in.log.Error("dropping undecodable call event", "subject", m.Subject, "msg_id", m.MsgID, "err", err)
			in.m.droppedEvents.Inc()
			continue
		}
		if ev.GetEventId() == "" {
			ev.EventId = m.MsgID
		}
		seqs = append(seqs, callSeq{ev.GetCallId(), int32(ev.GetSequence())})
		if r, ok := reminderOf(ev, now); ok {
			reminders = append(reminders, r)
		}
		if r, ok := reachedBy(ev, now); ok {
			reach = append(reach, r)
		}
		ds = in.deliveriesFor(ev, ds, now)
	}
	if len(seqs) == 0 {
		return nil
	}
	in.disp.markOverflow(ds)
	// A stable order keeps concurrent batches from deadlocking.
	slices.SortFunc(seqs, func(a, b callSeq) int {
		if c := strings.Compare(a.call, b.call); c != 0 {
			return c
		}
		return int(a.seq - b.seq)
	})
	var inserted map[string]bool
	err := pgx.BeginFunc(ctx, in.st.DB, func(tx pgx.Tx) error {
		var err error
		if err = insertSeqs(ctx, tx, seqs); err != nil {
			return err
		}
		if err = insertReminders(ctx, tx, reminders); err != nil {
			return err
		}
		if err = markReached(ctx, tx, reach); err != nil {
			return err
		}
		inserted, err = insertDeliveries(ctx, tx, ds, in.owner, now.Add(in.lease), now.Add(in.disp.overflowDelay()))
		return err
	})
	if err != nil {
		return err
	}
	fresh := ds[:0]
	for _, d := range ds {
		if inserted[d.ID] && !d.overflow {
			fresh = append(fresh, d)
		}
	}
	in.m.ingested(len(msgs), len(fresh))
	in.disp.add(fresh, now)
	return nil
}

// deliveriesFor appends the deliveries of one event to ds.
func (in *Ingester) deliveriesFor(ev *eventsv1.CallEvent, ds []*Delivery, now time.Time) []*Delivery {
	subs := in.subs.forAccount(ev.GetAccountId())
	if len(subs) == 0 {
		return ds
	}
	var native []byte
	carrier := map[*time.Location][]byte{}
	for _, s := range subs {
		if !s.wants(ev.GetType(), ev.GetCall().GetCampaignId()) {
			continue
		}
		d := &Delivery{
			ID: ids.NewV7(), SubscriptionID: s.ID, AccountID: ev.GetAccountId(), CallID: ev.GetCallId(),
			EventID: ev.GetEventId(), EventType: ev.GetType(), Seq: int(ev.GetSequence()),
			OccurredAt: ev.GetOccurredAt().AsTime(), CreatedAt: now, State: statePending,
		}
		if s.format == webhookv1.WebhookFormat_WEBHOOK_FORMAT_CARRIER {
			action := carrierAction(ev.GetType())
			body, ok := carrier[s.loc]
			if !ok {
				body, _ = json.Marshal(NewCarrierBody(action, ev.GetCall(), s.loc))
				carrier[s.loc] = body
			}
			d.Name, d.Payload = action, body
		} else {
			if native == nil {
				var err error
				if native, err = NativeBody(ev); err != nil {
					in.log.Error("cannot render call event", "call_id", ev.GetCallId(), "err", err)
					return ds
				}
			}
			d.Name, d.Payload = EventName(ev.GetType()), native
		}
		ds = append(ds, d)
	}
	return ds
}

// reminderOf returns the reminder a failed call asks for, recorded at now
// (the service's clock, by which it falls due).
func reminderOf(ev *eventsv1.CallEvent, now time.Time) (reminder, bool) {
	c := ev.GetCall()
	if ev.GetType() != eventsv1.EventType_EVENT_TYPE_CALL_FAILED || c.GetReminderTimeoutS() <= 0 {
		return reminder{}, false
	}
	number := partyNumber(c)
	if number == "" {
		return reminder{}, false
	}
	failedAt := ev.GetOccurredAt().AsTime()
	if c.GetEndedAt() != nil {
		failedAt = c.GetEndedAt().AsTime()
	}
	return reminder{
		call: c.GetId(), account: c.GetAccountId(), campaign: c.GetCampaignId(), number: number,
		failedLeg: int16(c.GetFailedLeg()), reason: int16(c.GetFailureReason()),
		failedAt: failedAt, recordedAt: now, dueAt: now.Add(time.Duration(c.GetReminderTimeoutS()) * time.Second),
	}, true
}

// partyNumber is the person to call back: a campaign call's visitor, else
// the party dialed by number; the first one when both are numbers.
func partyNumber(c *originationv1.Call) string {
	switch c.GetVisitorLeg() {
	case originationv1.LegRole_LEG_ROLE_FIRST:
		return c.GetFirst().GetParty().GetNumber()
	case originationv1.LegRole_LEG_ROLE_SECOND:
		return c.GetSecond().GetParty().GetNumber()
	}
	if n := c.GetFirst().GetParty().GetNumber(); n != "" {
		return n
	}
	return c.GetSecond().GetParty().GetNumber()
}

// reachedBy returns the party a leg's answer reached, seen at now.
func reachedBy(ev *eventsv1.CallEvent, now time.Time) (reached, bool) {
	if ev.GetType() != eventsv1.EventType_EVENT_TYPE_LEG_ANSWERED {
		return reached{}, false
	}
	leg := ev.GetCall().GetFirst()
	if ev.GetLeg() == originationv1.LegRole_LEG_ROLE_SECOND {
		leg = ev.GetCall().GetSecond()
	}
	n := leg.GetParty().GetNumber()
	if n == "" {
		return reached{}, false
	}
	return reached{account: ev.GetAccountId(), number: n, call: ev.GetCallId(), at: now}, true
}

func insertSeqs(ctx context.Context, tx pgx.Tx, seqs []callSeq) error {
	calls, nums := make([]string, len(seqs)), make([]int32, len(seqs))
	for i, s := range seqs {
		calls[i], nums[i] = s.call, s.seq
	}
	_, err := tx.Exec(ctx, `INSERT INTO webhook.call_seqs (call_id, seq)
		SELECT * FROM unnest($1::text[], $2::int[]) ON CONFLICT DO NOTHING`, calls, nums)
	return err
}

func insertReminders(ctx context.Context, tx pgx.Tx, rs []reminder) error {
	if len(rs) == 0 {
		return nil
	}
	n := len(rs)
	calls, accounts, campaigns, numbers := make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	legs, reasons := make([]int16, n), make([]int16, n)
	failed, recorded, due := make([]time.Time, n), make([]time.Time, n), make([]time.Time, n)
	for i, r := range rs {
		calls[i], accounts[i], campaigns[i], numbers[i] = r.call, r.account, r.campaign, r.number
		legs[i], reasons[i], failed[i], recorded[i], due[i] = r.failedLeg, r.reason, r.failedAt, r.recordedAt, r.dueAt
	}
	_, err := tx.Exec(ctx, `INSERT INTO webhook.reminders (call_id, account_id, campaign_id, number, failed_leg, failure_reason, failed_at, recorded_at, due_at)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::smallint[], $6::smallint[], $7::timestamptz[], $8::timestamptz[], $9::timestamptz[])
		ON CONFLICT DO NOTHING`, calls, accounts, campaigns, numbers, legs, reasons, failed, recorded, due)
	return err
}

func markReached(ctx context.Context, tx pgx.Tx, rs []reached) error {
	if len(rs) == 0 {
		return nil
	}
	n := len(rs)
	accounts, numbers, calls, at := make([]string, n), make([]string, n), make([]string, n), make([]time.Time, n)
	for i, r := range rs {
		accounts[i], numbers[i], calls[i], at[i] = r.account, r.number, r.call, r.at
	}
	_, err := tx.Exec(ctx, `UPDATE webhook.reminders r SET called_back_at = c.at, called_back_by = c.call
		FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) AS c(account, number, call, at)
		WHERE r.account_id = c.account AND r.number = c.number AND r.called_back_at IS NULL
			AND r.call_id <> c.call AND r.recorded_at <= c.at`, accounts, numbers, calls, at)
	return err
}
