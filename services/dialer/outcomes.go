package dialer

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

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

// ConsumeOutcomes starts handling the call events with HandleEvent on the
// durable consumer OutcomesDurable (the CALLS stream must exist: see
// natsbus.EnsureStream). Stop the consumer before the engine's database.
func (e *Engine) ConsumeOutcomes(ctx context.Context, bus *natsbus.Bus) (*natsbus.Consumer, error) {
	spec := natsbus.ConsumerSpec{
		Stream: natsbus.CallsStream, Durable: OutcomesDurable, FilterSubjects: OutcomeSubjects,
		// An outcome is never given up: while PostgreSQL is down, retry.
		MaxDeliver: -1,
		Workers:    e.cfg.OutcomeWorkers,
	}
	c, err := bus.Consume(ctx, spec, e.HandleEvent)
	if err != nil {
		// NATS before 2.10 has no multi-subject filters: read every call
		// event and skip the others (HandleEvent looks at the subject first).
		e.log.Warn("dialer: consumer with several filter subjects refused; reading every call event", "err", err)
		spec.FilterSubjects = []string{natsbus.CallsSubjects}
		if c, err = bus.Consume(ctx, spec, e.HandleEvent); err != nil {
			return nil, fmt.Errorf("outcomes consumer: %w", err)
		}
	}
	return c, nil
}

// HandleEvent applies one call event to the record its call dials: the
// bridge (or the answer of an announcement-only call) makes it TALKING, the
// call's end gives the attempt its outcome. Events of other calls, of an
// older run or of a superseded try are skipped, and so is an event seen
// again: every change is guarded by the record's run, try, call and
// status, so handling is idempotent.
//
// With machine detection on, origination ends a call a machine answered
// FAILED with reason MACHINE: ANSWMACHINE. Without it, every answered call
// is ANSWERED.
func (e *Engine) HandleEvent(ctx context.Context, m natsbus.Msg) error {
	typ := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	switch typ {
	case "leg_answered", "call_bridged", "call_completed", "call_failed", "call_canceled":
	default:
		return nil // a server without multi-filter consumers sends every event
	}
	ev := &eventsv1.CallEvent{}
	if err := proto.Unmarshal(m.Data, ev); err != nil || ev.GetCall() == nil {
		// Retrying cannot fix it.
		e.log.Error("dialer: dropping undecodable call event", "subject", m.Subject, "msg_id", m.MsgID, "err", err)
		return nil
	}
	c := ev.GetCall()
	switch ev.GetType() {
	case eventsv1.EventType_EVENT_TYPE_LEG_ANSWERED:
		// Only an announcement-only call is talking at its answer; a call
		// with an endpoint is when it is bridged.
		if ev.GetLeg() != originationv1.LegRole_LEG_ROLE_FIRST || c.GetSecond() != nil {
			return nil
		}
		return e.talking(ctx, c)
	case eventsv1.EventType_EVENT_TYPE_CALL_BRIDGED:
		return e.talking(ctx, c)
	case eventsv1.EventType_EVENT_TYPE_CALL_COMPLETED, eventsv1.EventType_EVENT_TYPE_CALL_FAILED, eventsv1.EventType_EVENT_TYPE_CALL_CANCELED:
		return e.applyCall(ctx, c)
	}
	return nil
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

// talking marks the record of a connected call TALKING.
func (e *Engine) talking(ctx context.Context, c *originationv1.Call) error {
	ref, ok := refOf(c)
	if !ok {
		return nil
	}
	_, err := e.db.Exec(ctx, `UPDATE dialer.records r SET status = 'talking', call_id = $5,
			last_attempt_at = CASE WHEN r.call_id = '' THEN $6 ELSE r.last_attempt_at END
		FROM dialer.campaigns c
		WHERE r.id = $1 AND r.campaign_id = $2 AND r.run = $3 AND r.tries = $4 AND r.status = 'running' AND r.call_id IN ('', $5)
			AND c.id = r.campaign_id AND c.account_id = $7`,
		ref.record, ref.campaign, ref.run, ref.try, c.GetId(), e.now(), c.GetAccountId())
	if err != nil {
		return fmt.Errorf("record %d talking: %w", ref.record, err)
	}
	return nil
}

// applyCall gives an ended call's attempt its outcome and, if the record is
// still on that call, the record its new status. It is how every outcome
// is applied: from the call events, from an adopted record's call, from
// reconcile and from CreateCall answering with an ended call.
func (e *Engine) applyCall(ctx context.Context, c *originationv1.Call) error {
	ref, ok := refOf(c)
	if !ok || !finalCall(c.GetStatus()) {
		return nil
	}
	o := outcomeOf(c)
	now := e.now()
	ended := now
	if t := c.GetEndedAt(); t != nil {
		ended = t.AsTime()
	}
	// The record's new status needs the run's settings (its retry
	// intervals and attempts); a run's settings never change, so they are
	// usually cached.
	s, current, err := e.runSettings(ctx, ref.campaign, ref.run)
	if err != nil {
		return fmt.Errorf("campaign %s settings: %w", ref.campaign, err)
	}
	final, next := o.next(ref.try, s, now)
	// One statement: the attempt keeps its outcome whatever became of the
	// record since, and the record takes it only while it is still on this
	// run, try and call (an outcome applied twice changes nothing). Both
	// only for a record of the call's campaign and account. The digit the
	// recipient pressed in a BLAST's menu becomes a tag of the record, and
	// an opt-out puts the number on the account's do-not-call list (the
	// person asked: whichever run or try it was).
	var freed bool
	err = e.db.QueryRow(ctx, `WITH rec AS (
			SELECT r.id FROM dialer.records r JOIN dialer.campaigns c ON c.id = r.campaign_id
			WHERE r.id = $2 AND r.campaign_id = $3 AND c.account_id = $15),
		attempt AS (
			INSERT INTO dialer.attempts (call_id, record_id, campaign_id, run, n, number, started_at, ended_at, outcome, hangup_cause, billsec)
			SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 FROM rec
			ON CONFLICT (call_id) DO UPDATE SET ended_at = EXCLUDED.ended_at, outcome = EXCLUDED.outcome,
				hangup_cause = EXCLUDED.hangup_cause, billsec = EXCLUDED.billsec
			WHERE dialer.attempts.ended_at IS NULL),
		upd AS (
			UPDATE dialer.records r SET status = $9, final = $12, next_at = CASE WHEN $12 THEN r.next_at ELSE $13 END,
				lease_owner = '', lease_until = NULL, call_id = $1, last_duration_s = $11,
				last_attempt_at = CASE WHEN r.call_id = '' THEN $14 ELSE r.last_attempt_at END,
				tags = CASE WHEN $17 = '' OR $17 = ANY(r.tags) THEN r.tags ELSE array_append(r.tags, $17) END
			FROM rec
			WHERE r.id = rec.id AND $16 AND r.run = $4 AND r.tries = $5 AND r.status IN ('running', 'talking') AND r.call_id IN ('', $1)
			RETURNING 1),
		optout AS (
			INSERT INTO dialer.dnc (account_id, scope, number, reason)
			SELECT $15, '', $6, 'opted out: pressed ' || $17 || ' in campaign ' || $3 FROM rec WHERE $18 AND $6 <> ''
			ON CONFLICT DO NOTHING)
		SELECT EXISTS (SELECT 1 FROM upd)`,
		c.GetId(), ref.record, ref.campaign, ref.run, ref.try, c.GetFirst().GetParty().GetNumber(), attemptStart(c, now), ended,
		o.status, hangupCause(c), c.GetBillsec(), final, next, now, c.GetAccountId(), current,
		c.GetDigits(), c.GetMenuChoice() == originationv1.MenuAction_MENU_ACTION_OPT_OUT).Scan(&freed)
	if err != nil {
		return fmt.Errorf("record %d outcome of call %s: %w", ref.record, c.GetId(), err)
	}
	if freed {
		e.m.outcomes.WithLabelValues(o.status).Inc()
		e.Wake() // a slot of the campaign is free
	}
	return nil
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
