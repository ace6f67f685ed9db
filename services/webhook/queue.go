package webhook

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	eventsv1 "github.com/ringback/ringback/proto/gen/go/ringback/events/v1"
	webhookv1 "github.com/ringback/ringback/proto/gen/go/ringback/webhook/v1"
)

// Delivery states as stored (DeliveryState numbers).
const (
	statePending   = int16(webhookv1.DeliveryState_DELIVERY_STATE_PENDING)
	stateDelivered = int16(webhookv1.DeliveryState_DELIVERY_STATE_DELIVERED)
	stateFailed    = int16(webhookv1.DeliveryState_DELIVERY_STATE_FAILED)
)

// Delivery is a stored delivery: one event for one subscription.
type Delivery struct {
	ID, SubscriptionID, AccountID, CallID, EventID string
	EventType                                      eventsv1.EventType
	Seq                                            int
	OccurredAt                                     time.Time
	Name                                           string
	Payload                                        []byte
	State                                          int16
	Attempts, Step                                 int
	NextAttemptAt                                  time.Time
	LastStatus                                     int
	LastError                                      string
	CreatedAt                                      time.Time
	DeliveredAt                                    *time.Time
	// overflow: stored for later rather than held (its endpoint has
	// enough waiting in memory).
	overflow bool
}

// Attempt is one logged HTTP request of a delivery.
type Attempt struct {
	Number          int
	StartedAt       time.Time
	Latency         time.Duration
	Status          int
	Success         bool
	Error           string
	ResponseExcerpt string
}

// jobColumns are what the dispatcher needs of a delivery.
const jobColumns = `d.id, d.subscription_id, d.account_id, d.call_id, d.event_id, d.event_type, d.seq,
	d.occurred_at, d.name, d.payload, d.attempts, d.step, d.created_at`

func scanJob(row pgx.Row) (*Delivery, error) {
	var (
		d  Delivery
		et int16
	)
	err := row.Scan(&d.ID, &d.SubscriptionID, &d.AccountID, &d.CallID, &d.EventID, &et, &d.Seq,
		&d.OccurredAt, &d.Name, &d.Payload, &d.Attempts, &d.Step, &d.CreatedAt)
	d.EventType, d.State = eventsv1.EventType(et), statePending
	return &d, err
}

// insertDeliveries stores new deliveries held by owner until leaseEnd (the
// overflow ones unheld, due at overflowDue) and returns the ids it
// inserted: a redelivered event's rows exist already and are left to
// whoever holds them.
func insertDeliveries(ctx context.Context, tx pgx.Tx, ds []*Delivery, owner string, leaseEnd, overflowDue time.Time) (map[string]bool, error) {
	if len(ds) == 0 {
		return nil, nil
	}
	var (
		ids, subs, accounts, calls, events, names = make([]string, len(ds)), make([]string, len(ds)), make([]string, len(ds)), make([]string, len(ds)), make([]string, len(ds)), make([]string, len(ds))
		types                                     = make([]int16, len(ds))
		seqs                                      = make([]int32, len(ds))
		occurred, created                         = make([]time.Time, len(ds)), make([]time.Time, len(ds))
		payloads                                  = make([][]byte, len(ds))
		owners                                    = make([]*string, len(ds))
		dues                                      = make([]time.Time, len(ds))
	)
	for i, d := range ds {
		ids[i], subs[i], accounts[i], calls[i], events[i], names[i] = d.ID, d.SubscriptionID, d.AccountID, d.CallID, d.EventID, d.Name
		types[i], seqs[i], occurred[i], created[i], payloads[i] = int16(d.EventType), int32(d.Seq), d.OccurredAt, d.CreatedAt, d.Payload
		owners[i], dues[i] = &owner, leaseEnd
		if d.overflow {
			owners[i], dues[i] = nil, overflowDue
		}
	}
	rows, err := tx.Query(ctx, `INSERT INTO webhook.deliveries (id, subscription_id, account_id, call_id, event_id, event_type, seq,
			occurred_at, name, payload, next_attempt_at, lease_owner, created_at)
		SELECT r.id, r.sub, r.acc, r.call, r.ev, r.et, r.seq, r.occ, r.name, r.payload, r.due, r.owner, r.created
		FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::smallint[], $7::int[],
			$8::timestamptz[], $9::text[], $10::bytea[], $11::timestamptz[], $12::text[], $13::timestamptz[])
			AS r(id, sub, acc, call, ev, et, seq, occ, name, payload, due, owner, created)
		WHERE EXISTS (SELECT 1 FROM webhook.subscriptions s WHERE s.id = r.sub)
		ON CONFLICT (subscription_id, event_id) DO NOTHING
		RETURNING id`,
		ids, subs, accounts, calls, events, types, seqs, occurred, names, payloads, dues, owners, created)
	if err != nil {
		return nil, err
	}
	inserted := make(map[string]bool, len(ds))
	var id string
	_, err = pgx.ForEachRow(rows, []any{&id}, func() error { inserted[id] = true; return nil })
	return inserted, err
}

// claimDue leases up to limit due deliveries to owner, skipping the
// subscriptions in skip (this instance has enough of theirs).
func (st *Store) claimDue(ctx context.Context, owner string, lease time.Duration, limit int, skip []string) ([]*Delivery, error) {
	rows, err := st.DB.Query(ctx, `WITH c AS (
			SELECT id FROM webhook.deliveries
			WHERE state = 1 AND next_attempt_at <= now() AND NOT (subscription_id = ANY($2))
			ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
		UPDATE webhook.deliveries d SET next_attempt_at = now() + $3::interval, lease_owner = $4
		FROM c WHERE d.id = c.id
		RETURNING `+jobColumns, limit, nonNil(skip), lease, owner)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Delivery, error) { return scanJob(r) })
}

// gateVerdict is what the gate says of a held delivery.
type gateVerdict int

const (
	gateGone    gateVerdict = iota // no longer pending (delivered elsewhere, redelivered, deleted)
	gateOpen                       // may be sent now
	gateBlocked                    // an earlier event of its call is pending or not yet seen
)

// gate checks that each delivery may be sent now: still pending, no
// earlier event of its call pending for its subscription, and every earlier
// event of its call seen (or the gap older than gapWait: an event that
// never comes must not block its call forever).
func (st *Store) gate(ctx context.Context, ids []string, gapWait time.Duration) (map[string]gateVerdict, error) {
	rows, err := st.DB.Query(ctx, `SELECT d.id, d.state = 1,
			NOT EXISTS (SELECT 1 FROM webhook.deliveries p
				WHERE p.subscription_id = d.subscription_id AND p.call_id = d.call_id AND p.seq < d.seq AND p.state = 1)
			AND (d.seq <= 1 OR d.created_at < now() - $2::interval
				OR (SELECT count(*) FROM webhook.call_seqs s WHERE s.call_id = d.call_id AND s.seq < d.seq) >= d.seq - 1)
		FROM webhook.deliveries d WHERE d.id = ANY($1)`, ids, gapWait)
	if err != nil {
		return nil, err
	}
	out := make(map[string]gateVerdict, len(ids))
	var (
		id            string
		pending, open bool
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &pending, &open}, func() error {
		switch {
		case !pending:
			out[id] = gateGone
		case open:
			out[id] = gateOpen
		default:
			out[id] = gateBlocked
		}
		return nil
	})
	return out, err // ids not returned were deleted: gateGone (the zero value)
}

// renewLeases extends every lease owner holds.
func (st *Store) renewLeases(ctx context.Context, owner string, lease time.Duration) error {
	_, err := st.DB.Exec(ctx, `UPDATE webhook.deliveries SET next_attempt_at = now() + $2::interval
		WHERE lease_owner = $1 AND state = 1`, owner, lease)
	return err
}

// release hands held deliveries back: each is due again at its time.
func (st *Store) release(ctx context.Context, owner string, ids []string, due []time.Time) error {
	// A delivery is parked when this instance does not know its
	// subscription as enabled; but its cache may be behind an enable that
	// has just made the delivery due (the poller can claim it before the
	// reload): parked only if the subscription is disabled indeed, else due.
	_, err := st.DB.Exec(ctx, `UPDATE webhook.deliveries d
		SET next_attempt_at = CASE WHEN r.due >= $4 AND s.enabled THEN now() ELSE r.due END, lease_owner = NULL
		FROM unnest($1::text[], $2::timestamptz[]) AS r(id, due), webhook.subscriptions s
		WHERE d.id = r.id AND s.id = d.subscription_id AND d.lease_owner = $3 AND d.state = 1`, ids, due, owner, parked)
	return err
}

// outcome is the result of one attempt, to be written.
type outcome struct {
	job     *job
	attempt Attempt
	state   int16     // what the delivery becomes
	step    int       // its schedule position after this attempt
	due     time.Time // its next attempt (pending only)
	held    bool      // the dispatcher keeps it (a short retry)
}

// disabledSub is a subscription the result writer disabled.
type disabledSub struct {
	ID, AccountID, URL string
	FailingSince       time.Time
}

// writeOutcomes records a batch of attempts: the deliveries' new states,
// the attempt log, the subscriptions' failure streaks, and disables the
// subscriptions failing for longer than disableAfter (parking their
// deliveries and queueing the account's email).
func (st *Store) writeOutcomes(ctx context.Context, owner string, os []outcome, lease, disableAfter time.Duration, now time.Time) ([]disabledSub, error) {
	n := len(os)
	var (
		ids, errs, excerpts  = make([]string, n), make([]string, n), make([]string, n)
		states               = make([]int16, n)
		attempts, steps, sts = make([]int32, n), make([]int32, n), make([]int32, n)
		lats                 = make([]int32, n)
		dues, starts, ends   = make([]time.Time, n), make([]time.Time, n), make([]time.Time, n)
		helds, oks           = make([]bool, n), make([]bool, n)
		streakSub            = map[string]bool{} // subscription -> its latest attempt succeeded
		streakAt             = map[string]time.Time{}
		subIDs               []string
		subOKs               []bool
		subTimes             []time.Time
		leaseEnd             = now.Add(lease)
	)
	for i, o := range os {
		ids[i], states[i], attempts[i], steps[i] = o.job.d.ID, o.state, int32(o.attempt.Number), int32(o.step)
		due := o.due
		if o.held {
			due = leaseEnd
		}
		dues[i], helds[i], sts[i], errs[i] = due, o.held, int32(o.attempt.Status), o.attempt.Error
		starts[i], lats[i], oks[i], excerpts[i] = o.attempt.StartedAt, int32(o.attempt.Latency/time.Millisecond), o.attempt.Success, o.attempt.ResponseExcerpt
		ends[i] = o.attempt.StartedAt.Add(o.attempt.Latency)
		streakSub[o.job.d.SubscriptionID] = o.attempt.Success
		streakAt[o.job.d.SubscriptionID] = o.attempt.StartedAt
	}
	for id, ok := range streakSub {
		subIDs, subOKs, subTimes = append(subIDs, id), append(subOKs, ok), append(subTimes, streakAt[id])
	}
	var disabled []disabledSub
	err := pgx.BeginFunc(ctx, st.DB, func(tx pgx.Tx) error {
		disabled = disabled[:0]
		b := &pgx.Batch{}
		b.Queue(`UPDATE webhook.deliveries d SET state = r.state, attempts = GREATEST(d.attempts, r.attempts), step = r.step,
				next_attempt_at = r.due, lease_owner = CASE WHEN r.held THEN $10 ELSE NULL END,
				last_status = r.status, last_error = r.err,
				delivered_at = CASE WHEN r.state = 2 THEN r.ended ELSE d.delivered_at END
			FROM unnest($1::text[], $2::smallint[], $3::int[], $4::int[], $5::timestamptz[], $6::bool[], $7::int[], $8::text[], $9::timestamptz[])
				AS r(id, state, attempts, step, due, held, status, err, ended)
			WHERE d.id = r.id AND d.state = 1`,
			ids, states, attempts, steps, dues, helds, sts, errs, ends, owner)
		b.Queue(`INSERT INTO webhook.attempts (delivery_id, number, started_at, latency_ms, status, success, error, response_excerpt)
			SELECT r.* FROM unnest($1::text[], $2::int[], $3::timestamptz[], $4::int[], $5::int[], $6::bool[], $7::text[], $8::text[])
				AS r(id, number, started, lat, status, ok, err, excerpt)
			WHERE EXISTS (SELECT 1 FROM webhook.deliveries d WHERE d.id = r.id)
			ON CONFLICT DO NOTHING`,
			ids, attempts, starts, lats, sts, oks, errs, excerpts)
		b.Queue(`UPDATE webhook.subscriptions s
			SET failing_since = CASE WHEN r.ok THEN NULL ELSE COALESCE(s.failing_since, r.at) END
			FROM unnest($1::text[], $2::bool[], $3::timestamptz[]) AS r(id, ok, at)
			WHERE s.id = r.id AND (r.ok = (s.failing_since IS NOT NULL))`,
			subIDs, subOKs, subTimes)
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		if disableAfter <= 0 {
			return nil
		}
		rows, err := tx.Query(ctx, `UPDATE webhook.subscriptions
			SET enabled = false, disabled_reason = 'every delivery failed since ' || to_char(failing_since AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC',
				updated_at = $3
			WHERE id = ANY($1) AND enabled AND failing_since < $3::timestamptz - $2::interval
			RETURNING id, account_id, url, failing_since`, subIDs, disableAfter, now)
		if err != nil {
			return err
		}
		disabled, err = pgx.CollectRows(rows, pgx.RowToStructByPos[disabledSub])
		if err != nil {
			return err
		}
		for _, d := range disabled {
			if err := parkDeliveries(ctx, tx, d.ID); err != nil {
				return err
			}
			if err := queueDisabledEmail(ctx, tx, st, d, now); err != nil {
				return err
			}
		}
		return nil
	})
	return disabled, err
}
