package dialer

import (
	"cmp"
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/ringback/ringback/proto/gen/go/ringback/events/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	"github.com/ringback/ringback/services/internal/natsbus"
)

// OutcomesDurable is the dialer's durable consumer on the CALLS stream,
// shared by every replica (each event is handled by one of them).
const OutcomesDurable = "dialer"

// OutcomeSubjects are the call events the outcomes need: the answer of an
// announcement-only call and the bridge (the recipient is talking), and
// the three ends.
var OutcomeSubjects = []string{
	"calls.*.*.leg_answered", "calls.*.*.call_bridged",
	"calls.*.*.call_completed", "calls.*.*.call_failed", "calls.*.*.call_canceled",
}

// ConsumeOutcomes starts handling the call events with HandleBatch on the
// durable consumer OutcomesDurable (the CALLS stream must exist: see
// natsbus.EnsureStream). Stop the consumer before the engine's database.
//
// Events come in batches (up to 500, or what arrived within 10 ms): a
// batch is two statements, whatever its size, so the outcomes keep up
// with the switch's rate. Batches run OutcomeWorkers at once; two events
// of one call may then be applied out of order, which the guards on every
// change make harmless (a TALKING after the end changes nothing).
func (e *Engine) ConsumeOutcomes(ctx context.Context, bus *natsbus.Bus) (*natsbus.Consumer, error) {
	spec := natsbus.BatchSpec{
		ConsumerSpec: natsbus.ConsumerSpec{
			Stream: natsbus.CallsStream, Durable: OutcomesDurable, FilterSubjects: OutcomeSubjects,
			// An outcome is never given up: while PostgreSQL is down, retry.
			MaxDeliver: -1,
		},
		MaxWait:     10 * time.Millisecond,
		Concurrency: e.cfg.OutcomeWorkers,
	}
	c, err := bus.ConsumeBatch(ctx, spec, e.HandleBatch)
	if err != nil {
		// NATS before 2.10 has no multi-subject filters: read every call
		// event and skip the others (HandleBatch looks at the subject first).
		e.log.Warn("dialer: consumer with several filter subjects refused; reading every call event", "err", err)
		spec.FilterSubjects = []string{natsbus.CallsSubjects}
		if c, err = bus.ConsumeBatch(ctx, spec, e.HandleBatch); err != nil {
			return nil, fmt.Errorf("outcomes consumer: %w", err)
		}
	}
	return c, nil
}

// HandleEvent applies one call event (HandleBatch of one).
func (e *Engine) HandleEvent(ctx context.Context, m natsbus.Msg) error {
	return e.HandleBatch(ctx, []natsbus.Msg{m})
}

// HandleBatch applies call events to the records their calls dial: the
// bridge (or the answer of an announcement-only call) makes a record
// TALKING, the call's end gives the attempt its outcome. Events of other
// calls, of an older run or of a superseded try are skipped, and so is an
// event seen again: every change is guarded by the record's run, try, call
// and status, so handling is idempotent.
//
// With machine detection on, origination ends a call a machine answered
// FAILED with reason MACHINE: ANSWMACHINE. Without it, every answered call
// is ANSWERED.
func (e *Engine) HandleBatch(ctx context.Context, msgs []natsbus.Msg) error {
	var talking, ended []*originationv1.Call
	for _, m := range msgs {
		typ := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
		switch typ {
		case "leg_answered", "call_bridged", "call_completed", "call_failed", "call_canceled":
		default:
			continue // a server without multi-filter consumers sends every event
		}
		ev := &eventsv1.CallEvent{}
		if err := proto.Unmarshal(m.Data, ev); err != nil || ev.GetCall() == nil {
			// Retrying cannot fix it.
			e.log.Error("dialer: dropping undecodable call event", "subject", m.Subject, "msg_id", m.MsgID, "err", err)
			continue
		}
		c := ev.GetCall()
		switch ev.GetType() {
		case eventsv1.EventType_EVENT_TYPE_LEG_ANSWERED:
			// Only an announcement-only call is talking at its answer; a
			// call with an endpoint is when it is bridged.
			if ev.GetLeg() == originationv1.LegRole_LEG_ROLE_FIRST && c.GetSecond() == nil {
				talking = append(talking, c)
			}
		case eventsv1.EventType_EVENT_TYPE_CALL_BRIDGED:
			talking = append(talking, c)
		case eventsv1.EventType_EVENT_TYPE_CALL_COMPLETED, eventsv1.EventType_EVENT_TYPE_CALL_FAILED, eventsv1.EventType_EVENT_TYPE_CALL_CANCELED:
			ended = append(ended, c)
		}
	}
	if err := e.talking(ctx, talking); err != nil {
		return err
	}
	return e.applyCalls(ctx, ended)
}

// byRecord orders calls by the record they dial, the order every batch
// writes records in, so that two batches at once never wait on each
// other's rows in a cycle (a deadlock PostgreSQL would break by failing
// one).
func byRecord(calls []*originationv1.Call) {
	slices.SortStableFunc(calls, func(a, b *originationv1.Call) int {
		x, _ := strconv.ParseInt(a.GetVariables()[VarRecord], 10, 64)
		y, _ := strconv.ParseInt(b.GetVariables()[VarRecord], 10, 64)
		return cmp.Compare(x, y)
	})
}

// callRef is what a call's variables say about the try it is.
type callRef struct {
	record   int64
	campaign string
	run, try int
}

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// refOf reads a call's try from its variables. Only a call the dialer
// placed counts: the source is set by internal callers only, whereas an
// API client could name any variable.
func refOf(c *originationv1.Call) (callRef, bool) {
	if c.GetSource() != originationv1.CallSource_CALL_SOURCE_DIALER || c.GetId() == "" {
		return callRef{}, false
	}
	v := c.GetVariables()
	rec, err1 := strconv.ParseInt(v[VarRecord], 10, 64)
	run, err2 := strconv.Atoi(v[VarRun])
	try, err3 := strconv.Atoi(v[VarTry])
	if err1 != nil || err2 != nil || err3 != nil || !uuidPattern.MatchString(v[VarCampaign]) {
		return callRef{}, false
	}
	return callRef{record: rec, campaign: v[VarCampaign], run: run, try: try}, true
}

// talking marks the records of connected calls TALKING, in one statement.
func (e *Engine) talking(ctx context.Context, calls []*originationv1.Call) error {
	byRecord(calls)
	var (
		records                  []int64
		runs, tries              []int32
		campaigns, ids, accounts []string
	)
	for _, c := range calls {
		ref, ok := refOf(c)
		if !ok {
			continue
		}
		records, campaigns, runs, tries = append(records, ref.record), append(campaigns, ref.campaign), append(runs, int32(ref.run)), append(tries, int32(ref.try))
		ids, accounts = append(ids, c.GetId()), append(accounts, c.GetAccountId())
	}
	if len(records) == 0 {
		return nil
	}
	// The attempt is resolved for pacing now, on the dialer's clock: a
	// person answered (machine detection, when it runs, may still say
	// otherwise at the end).
	_, err := e.db.Exec(ctx, `WITH u AS (
			SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::int[], $4::int[], $5::text[], $6::text[]) AS u(record, campaign, run, try, call_id, account)),
		resolved AS (
			UPDATE dialer.attempts a SET resolved_at = $7, live = true
			FROM u WHERE a.call_id = u.call_id AND a.campaign_id = u.campaign AND a.resolved_at IS NULL AND a.ended_at IS NULL)
		UPDATE dialer.records r SET status = 'talking', call_id = u.call_id,
			last_attempt_at = CASE WHEN r.call_id = '' THEN $7 ELSE r.last_attempt_at END
		FROM u, dialer.campaigns c
		WHERE r.id = u.record AND r.campaign_id = u.campaign AND r.run = u.run AND r.tries = u.try AND r.status = 'running'
			AND r.call_id IN ('', u.call_id) AND c.id = r.campaign_id AND c.account_id = u.account`,
		records, campaigns, runs, tries, ids, accounts, e.now())
	if err != nil {
		return fmt.Errorf("%d records talking: %w", len(records), err)
	}
	return nil
}

// applyCall is applyCalls of one call.
func (e *Engine) applyCall(ctx context.Context, c *originationv1.Call) error {
	return e.applyCalls(ctx, []*originationv1.Call{c})
}

// applyCalls gives ended calls' attempts their outcomes and, for each
// record still on its call, the record its new status. It is how every
// outcome is applied: from the call events, from an adopted record's call,
// from reconcile and from CreateCall answering with an ended call.
//
// One statement for them all: each attempt keeps its outcome whatever
// became of the record since, and a record takes it only while it is still
// on that run, try and call (an outcome applied twice changes nothing);
// both only for a record of the call's campaign and account. The digit the
// recipient pressed in a BLAST's menu becomes a tag of the record, and an
// opt-out puts the number on the account's do-not-call list (the person
// asked: whichever run or try it was).
func (e *Engine) applyCalls(ctx context.Context, calls []*originationv1.Call) error {
	now := e.now()
	var (
		callIDs, campaigns, numbers, statuses, causes, digits, accounts []string
		records                                                         []int64
		runs, tries, billsecs                                           []int32
		started, ended, next                                            []time.Time
		finals, current, optOut, live, abandoned                        []bool
		answeredAt, connectedAt                                         []*time.Time
		lockUntil                                                       []time.Time
		destinations                                                    []string
	)
	byRecord(calls)
	seen := make(map[string]bool, len(calls))
	for _, c := range calls {
		ref, ok := refOf(c)
		// One row per call: an event delivered twice in a batch must not
		// touch the attempt twice in one statement.
		if !ok || !finalCall(c.GetStatus()) || seen[c.GetId()] {
			continue
		}
		seen[c.GetId()] = true
		// The record's new status needs the run's settings (its retry
		// intervals and attempts); a run's settings never change, so they
		// are usually cached.
		s, cur, err := e.runSettings(ctx, ref.campaign, ref.run)
		if err != nil {
			return fmt.Errorf("campaign %s settings: %w", ref.campaign, err)
		}
		o := outcomeOf(c)
		final, nextAt := o.next(ref.try, s, now)
		end := now
		if t := c.GetEndedAt(); t != nil {
			end = t.AsTime()
		}
		callIDs, records, campaigns = append(callIDs, c.GetId()), append(records, ref.record), append(campaigns, ref.campaign)
		runs, tries, numbers = append(runs, int32(ref.run)), append(tries, int32(ref.try)), append(numbers, c.GetFirst().GetParty().GetNumber())
		started, ended, statuses = append(started, attemptStart(c, now)), append(ended, end), append(statuses, o.status)
		causes, billsecs, finals, next = append(causes, hangupCause(c)), append(billsecs, c.GetBillsec()), append(finals, final), append(next, nextAt)
		current, digits, accounts = append(current, cur), append(digits, c.GetDigits()), append(accounts, c.GetAccountId())
		optOut = append(optOut, c.GetMenuChoice() == originationv1.MenuAction_MENU_ACTION_OPT_OUT)
		ans, conn := answerTimes(c)
		answeredAt, connectedAt = append(answeredAt, ans), append(connectedAt, conn)
		live, abandoned = append(live, liveAnswer(c)), append(abandoned, c.GetAbandoned())
		lockUntil, destinations = append(lockUntil, end.Add(s.Lockout)), append(destinations, destinationOf(c, s))
	}
	if len(callIDs) == 0 {
		return nil
	}
	rows, err := e.db.Query(ctx, `WITH u AS (
			SELECT * FROM unnest($1::text[], $2::bigint[], $3::uuid[], $4::int[], $5::int[], $6::text[], $7::timestamptz[], $8::timestamptz[],
				$9::text[], $10::text[], $11::int[], $12::bool[], $13::timestamptz[], $14::bool[], $15::text[], $16::bool[], $17::text[],
				$19::timestamptz[], $20::timestamptz[], $21::bool[], $22::bool[], $23::timestamptz[], $24::text[])
				AS u(call_id, record, campaign, run, try, number, started_at, ended_at, outcome, cause, billsec, final, next_at, current, digits, opt_out, account,
					answered_at, connected_at, live, abandoned, lock_until, destination)),
		rec AS (
			SELECT u.* FROM u JOIN dialer.records r ON r.id = u.record AND r.campaign_id = u.campaign
				JOIN dialer.campaigns c ON c.id = r.campaign_id AND c.account_id = u.account),
		attempt AS (
			INSERT INTO dialer.attempts (call_id, record_id, campaign_id, run, n, number, started_at, ended_at, outcome, hangup_cause, billsec,
				answered_at, connected_at, live, abandoned, resolved_at, destination)
			SELECT call_id, record, campaign, run, try, number, started_at, ended_at, outcome, cause, billsec,
				answered_at, connected_at, live, abandoned, $18, destination FROM rec
			ON CONFLICT (call_id) DO UPDATE SET ended_at = EXCLUDED.ended_at, outcome = EXCLUDED.outcome, destination = EXCLUDED.destination,
				hangup_cause = EXCLUDED.hangup_cause, billsec = EXCLUDED.billsec, answered_at = EXCLUDED.answered_at,
				connected_at = EXCLUDED.connected_at, live = EXCLUDED.live, abandoned = EXCLUDED.abandoned,
				resolved_at = coalesce(dialer.attempts.resolved_at, EXCLUDED.resolved_at)
			WHERE dialer.attempts.ended_at IS NULL
			RETURNING call_id),
		-- Counted once: only the attempts this statement ended.
		counts AS (
			INSERT INTO dialer.answer_counts (campaign_id, hour, answered, abandoned)
			SELECT campaign, date_trunc('hour', ended_at), count(*) FILTER (WHERE live), count(*) FILTER (WHERE abandoned)
			FROM rec JOIN attempt USING (call_id) WHERE live OR abandoned GROUP BY 1, 2
			ON CONFLICT (campaign_id, hour) DO UPDATE SET answered = dialer.answer_counts.answered + EXCLUDED.answered,
				abandoned = dialer.answer_counts.abandoned + EXCLUDED.abandoned),
		lockout AS (
			INSERT INTO dialer.abandoned_numbers (account_id, number, until, campaign_id)
			SELECT DISTINCT ON (account, number) account, number, lock_until, campaign
			FROM rec JOIN attempt USING (call_id) WHERE abandoned AND number <> ''
			ORDER BY account, number, lock_until DESC
			ON CONFLICT (account_id, number) DO UPDATE SET until = greatest(dialer.abandoned_numbers.until, EXCLUDED.until),
				campaign_id = EXCLUDED.campaign_id),
		upd AS (
			UPDATE dialer.records r SET status = rec.outcome, final = rec.final, next_at = CASE WHEN rec.final THEN r.next_at ELSE rec.next_at END,
				lease_owner = '', lease_until = NULL, call_id = rec.call_id, last_duration_s = rec.billsec, destination = rec.destination,
				last_attempt_at = CASE WHEN r.call_id = '' THEN $18 ELSE r.last_attempt_at END,
				tags = CASE WHEN rec.digits = '' OR rec.digits = ANY(r.tags) THEN r.tags ELSE array_append(r.tags, rec.digits) END
			FROM rec
			WHERE r.id = rec.record AND rec.current AND r.run = rec.run AND r.tries = rec.try AND r.status IN ('running', 'talking')
				AND r.call_id IN ('', rec.call_id)
			RETURNING rec.outcome),
		optout AS (
			INSERT INTO dialer.dnc (account_id, scope, number, reason)
			SELECT DISTINCT ON (account, number) account, '', number, 'opted out: pressed ' || digits || ' in campaign ' || campaign
			FROM rec WHERE opt_out AND number <> ''
			ON CONFLICT DO NOTHING)
		SELECT outcome FROM upd`,
		callIDs, records, campaigns, runs, tries, numbers, started, ended, statuses, causes, billsecs, finals, next, current, digits, optOut, accounts, now,
		answeredAt, connectedAt, live, abandoned, lockUntil, destinations)
	if err != nil {
		return fmt.Errorf("outcomes of %d calls: %w", len(callIDs), err)
	}
	applied, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("outcomes of %d calls: %w", len(callIDs), err)
	}
	for _, st := range applied {
		e.m.outcomes.WithLabelValues(st).Inc()
	}
	if len(applied) > 0 {
		e.Wake() // slots of the campaigns are free
	}
	return nil
}

// answerTimes are when the recipient answered and when an agent (or the
// endpoint) was connected, nil when not.
func answerTimes(c *originationv1.Call) (answered, connected *time.Time) {
	if t := c.GetFirst().GetAnsweredAt(); t != nil {
		v := t.AsTime()
		answered = &v
	} else if t := c.GetAnsweredAt(); t != nil {
		v := t.AsTime()
		answered = &v
	}
	if t := c.GetBridgedAt(); t != nil {
		v := t.AsTime()
		connected = &v
	}
	return answered, connected
}

// liveAnswer reports whether a person answered: the recipient's leg was
// answered and machine detection, when it ran, did not find a machine.
// Abandonment is counted over these.
func liveAnswer(c *originationv1.Call) bool {
	if c.GetFirst().GetAnsweredAt() == nil && c.GetAnsweredAt() == nil {
		return false
	}
	return c.GetMachineResult() != "MACHINE" && c.GetFailureReason() != originationv1.FailureReason_FAILURE_REASON_MACHINE
}

// destinationOf is where an answered call ended up (the Dest* names), ""
// when nobody answered or a machine did:
//
//   - a menu option other than CONNECT, or no menu and no agent nor
//     endpoint (an announcement only): the IVR, IVR_FINISHED when the call
//     completed (the recipient heard the message, took an option or let
//     the tries run out), IVR_STARTED when the recipient hung up first;
//   - the campaign's agents (a predictive or agents campaign, or a BLAST's
//     agentQueue after CONNECT): QUEUE_ANSWER once in an agent's room,
//     QUEUE_TIMEOUT when the wait ran out (the safe harbour or the queue's
//     message), QUEUE_EMPTY or QUEUE_FULL when the queue turned the
//     recipient away, QUEUE_JOIN when the recipient hung up waiting;
//   - an endpoint (CONNECT, or a BLAST without options): IN_ANSWER when
//     bridged; the endpoint's failure (IN_BUSY, IN_NOANSWER,
//     IN_CHANUNAVAIL, or IN_CONGESTION for any other); IN_CANCEL when the
//     recipient hung up before it answered.
//
// s are the settings of the call's run: whether it had a menu is the
// campaign's (the call says only what was chosen).
func destinationOf(c *originationv1.Call, s Settings) string {
	if !liveAnswer(c) || c.GetStatus() == originationv1.CallStatus_CALL_STATUS_CANCELED {
		return "" // nobody, a machine, or the dialer's own cancellation
	}
	connected := c.GetBridgedAt() != nil
	chose := c.GetMenuChoice() == originationv1.MenuAction_MENU_ACTION_CONNECT
	if len(s.Options) > 0 && !chose && !connected {
		return ivrDestination(c)
	}
	switch {
	case c.GetAwaitAgent() != nil:
		switch {
		case connected:
			return DestQueueAnswer
		case c.GetAbandoned() || c.GetFailureReason() == originationv1.FailureReason_FAILURE_REASON_NO_AGENT:
			return DestQueueTimeout
		case c.GetFailureReason() == originationv1.FailureReason_FAILURE_REASON_QUEUE_EMPTY:
			return DestQueueEmpty
		case c.GetFailureReason() == originationv1.FailureReason_FAILURE_REASON_QUEUE_FULL:
			return DestQueueFull
		}
		return DestQueueJoin
	case c.GetSecond() != nil:
		if connected {
			return DestInAnswer
		}
		if c.GetFailedLeg() != originationv1.LegRole_LEG_ROLE_SECOND {
			return DestInCancel
		}
		switch c.GetFailureReason() {
		case originationv1.FailureReason_FAILURE_REASON_BUSY:
			return DestInBusy
		case originationv1.FailureReason_FAILURE_REASON_NO_ANSWER:
			return DestInNoAnswer
		case originationv1.FailureReason_FAILURE_REASON_UNAVAILABLE:
			return DestInChanUnavail
		}
		return DestInCongestion
	}
	return ivrDestination(c)
}

// ivrDestination is an IVR's end: heard to the end, or hung up during it.
func ivrDestination(c *originationv1.Call) string {
	if c.GetStatus() == originationv1.CallStatus_CALL_STATUS_COMPLETED {
		return DestIVRFinished
	}
	return DestIVRStarted
}

// attemptStart is when a call was placed, by origination's clock (the
// attempt's row). The record's last_attempt_at is on the engine's clock,
// which reconcile compares it with.
func attemptStart(c *originationv1.Call, now time.Time) time.Time {
	if t := c.GetCreatedAt(); t != nil {
		return t.AsTime()
	}
	return now
}

// hangupCause is the cause that ended the call: the failed leg's when one
// failed, else the call's.
func hangupCause(c *originationv1.Call) string {
	switch c.GetFailedLeg() {
	case originationv1.LegRole_LEG_ROLE_FIRST:
		if hc := c.GetFirst().GetHangupCause(); hc != "" {
			return hc
		}
	case originationv1.LegRole_LEG_ROLE_SECOND:
		if hc := c.GetSecond().GetHangupCause(); hc != "" {
			return hc
		}
	}
	return c.GetHangupCause()
}

// outcome is what an ended call means for its record.
type outcome struct {
	status string // the attempt's and the record's status
	// retry names the Settings.Retry interval before the next attempt;
	// "" means the record is final whatever attempts are left.
	retry string
}

// retryNow is the retry of an attempt a cancellation cut: at once, and
// whatever attempts are left.
const retryNow = "now"

// outcomeOf maps an ended call to its outcome:
//
//   - COMPLETED: the recipient was reached: ANSWERED, final.
//   - FAILED on the recipient's leg: BUSY and NO_ANSWER are retried after
//     their intervals; CONGESTION, UNAVAILABLE and INTERNAL are FAILED,
//     retried after the congestion interval; NO_ROUTE, REJECTED and
//     NOT_AUTHORIZED are FAILED and final (the number is wrong or refused:
//     calling it again cannot help). CANCELED there means the recipient
//     answered and hung up before being connected (or before an
//     announcement-only call's announcement ended): they were reached and
//     chose to leave, so ANSWERED, final, rather than calling them again.
//   - FAILED with reason MACHINE (machine detection on): ANSWMACHINE,
//     retried after the machine interval.
//   - FAILED on the endpoint's leg (the recipient answered, no agent took
//     the call): FAILED, retried after the failed interval, since the
//     recipient was never served.
//   - CANCELED (hung up through the API before it was connected, as a
//     campaign cancelled with its calls): CANCEL, never final: the
//     recipient did nothing, so the record is dialed again at once if the
//     campaign runs (a new run starts every record over anyway). The
//     cancelled try does not count against dial_attempts, but keeps its
//     number (a try's idempotency key names one call): the record's tries
//     may then exceed dial_attempts by its cancellations.
//
// Any other failure is FAILED, retried after the failed interval.
func outcomeOf(c *originationv1.Call) outcome {
	switch c.GetStatus() {
	case originationv1.CallStatus_CALL_STATUS_COMPLETED:
		if c.GetAbandoned() {
			// A person answered and no agent was free in time: tried
			// again (while attempts are left) after the lockout, which
			// the abandoned number also gets in every campaign.
			return outcome{status: StatusAbandoned, retry: StatusAbandoned}
		}
		return outcome{status: StatusAnswered}
	case originationv1.CallStatus_CALL_STATUS_CANCELED:
		return outcome{status: StatusCancel, retry: retryNow}
	}
	if c.GetFailedLeg() == originationv1.LegRole_LEG_ROLE_SECOND {
		return outcome{status: StatusFailed, retry: StatusFailed}
	}
	switch c.GetFailureReason() {
	case originationv1.FailureReason_FAILURE_REASON_BUSY:
		return outcome{status: StatusBusy, retry: StatusBusy}
	case originationv1.FailureReason_FAILURE_REASON_NO_ANSWER:
		return outcome{status: StatusNoAnswer, retry: StatusNoAnswer}
	case originationv1.FailureReason_FAILURE_REASON_CONGESTION, originationv1.FailureReason_FAILURE_REASON_UNAVAILABLE,
		originationv1.FailureReason_FAILURE_REASON_INTERNAL:
		return outcome{status: StatusFailed, retry: "congestion"}
	case originationv1.FailureReason_FAILURE_REASON_NO_ROUTE, originationv1.FailureReason_FAILURE_REASON_REJECTED,
		originationv1.FailureReason_FAILURE_REASON_NOT_AUTHORIZED:
		return outcome{status: StatusFailed}
	case originationv1.FailureReason_FAILURE_REASON_CANCELED:
		return outcome{status: StatusAnswered}
	case originationv1.FailureReason_FAILURE_REASON_MACHINE:
		return outcome{status: StatusAnsMachine, retry: StatusAnsMachine}
	}
	return outcome{status: StatusFailed, retry: StatusFailed}
}

// next says whether the record is final after this outcome of its try-th
// attempt and, if not, when the next attempt is due.
func (o outcome) next(tries int, s Settings, now time.Time) (final bool, next time.Time) {
	switch {
	case o.retry == retryNow:
		return false, now
	case o.retry == "" || tries >= s.DialAttempts:
		return true, now
	}
	return false, now.Add(s.Retry[o.retry])
}
