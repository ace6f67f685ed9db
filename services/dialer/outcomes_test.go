package dialer

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	dialerv1 "github.com/ringback/ringback/proto/gen/go/ringback/dialer/v1"
	eventsv1 "github.com/ringback/ringback/proto/gen/go/ringback/events/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	"github.com/ringback/ringback/services/internal/natsbus"
)

func endedCall(st originationv1.CallStatus, leg originationv1.LegRole, reason originationv1.FailureReason) *originationv1.Call {
	return &originationv1.Call{Status: st, FailedLeg: leg, FailureReason: reason}
}

func TestOutcomeOf(t *testing.T) {
	t.Parallel()
	const (
		first  = originationv1.LegRole_LEG_ROLE_FIRST
		second = originationv1.LegRole_LEG_ROLE_SECOND
		failed = originationv1.CallStatus_CALL_STATUS_FAILED
	)
	tests := []struct {
		name string
		call *originationv1.Call
		want outcome
	}{
		{"completed", endedCall(originationv1.CallStatus_CALL_STATUS_COMPLETED, 0, 0), outcome{StatusAnswered, ""}},
		{"canceled", endedCall(originationv1.CallStatus_CALL_STATUS_CANCELED, 0, originationv1.FailureReason_FAILURE_REASON_CANCELED), outcome{StatusCancel, retryNow}},
		{"busy", endedCall(failed, first, originationv1.FailureReason_FAILURE_REASON_BUSY), outcome{StatusBusy, StatusBusy}},
		{"no answer", endedCall(failed, first, originationv1.FailureReason_FAILURE_REASON_NO_ANSWER), outcome{StatusNoAnswer, StatusNoAnswer}},
		{"congestion", endedCall(failed, first, originationv1.FailureReason_FAILURE_REASON_CONGESTION), outcome{StatusFailed, "congestion"}},
		{"unavailable", endedCall(failed, first, originationv1.FailureReason_FAILURE_REASON_UNAVAILABLE), outcome{StatusFailed, "congestion"}},
		{"internal", endedCall(failed, first, originationv1.FailureReason_FAILURE_REASON_INTERNAL), outcome{StatusFailed, "congestion"}},
		{"no route", endedCall(failed, first, originationv1.FailureReason_FAILURE_REASON_NO_ROUTE), outcome{StatusFailed, ""}},
		{"rejected", endedCall(failed, first, originationv1.FailureReason_FAILURE_REASON_REJECTED), outcome{StatusFailed, ""}},
		{"not authorized", endedCall(failed, first, originationv1.FailureReason_FAILURE_REASON_NOT_AUTHORIZED), outcome{StatusFailed, ""}},
		{"answered, gone before connected", endedCall(failed, first, originationv1.FailureReason_FAILURE_REASON_CANCELED), outcome{StatusAnswered, ""}},
		{"agent did not answer", endedCall(failed, second, originationv1.FailureReason_FAILURE_REASON_NO_ANSWER), outcome{StatusFailed, StatusFailed}},
		{"agent refused", endedCall(failed, second, originationv1.FailureReason_FAILURE_REASON_REJECTED), outcome{StatusFailed, StatusFailed}},
		{"unknown reason", endedCall(failed, first, 0), outcome{StatusFailed, StatusFailed}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := outcomeOf(tc.call); got != tc.want {
				t.Errorf("outcomeOf = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestDestinationOf(t *testing.T) {
	t.Parallel()
	const (
		first     = originationv1.LegRole_LEG_ROLE_FIRST
		second    = originationv1.LegRole_LEG_ROLE_SECOND
		failed    = originationv1.CallStatus_CALL_STATUS_FAILED
		completed = originationv1.CallStatus_CALL_STATUS_COMPLETED
		connect   = originationv1.MenuAction_MENU_ACTION_CONNECT
		end       = originationv1.MenuAction_MENU_ACTION_END
		optOut    = originationv1.MenuAction_MENU_ACTION_OPT_OUT
	)
	at := timestamppb.New(engBase)
	// call builds an ended call: answered unless unanswered, with an
	// endpoint (ep), a wait for agents (await) and a menu choice.
	type spec struct {
		st       originationv1.CallStatus
		leg      originationv1.LegRole
		reason   originationv1.FailureReason
		choice   originationv1.MenuAction
		ep       bool
		await    bool
		bridged  bool
		abandon  bool
		noAnswer bool
		machine  bool
	}
	call := func(c spec) *originationv1.Call {
		x := endedCall(c.st, c.leg, c.reason)
		x.First = &originationv1.Leg{}
		if !c.noAnswer {
			x.First.AnsweredAt = at
		}
		x.MenuChoice, x.Abandoned = c.choice, c.abandon
		if c.ep {
			x.Second = &originationv1.Leg{}
		}
		if c.await {
			x.AwaitAgent = &originationv1.AwaitAgent{}
		}
		if c.bridged {
			x.BridgedAt = at
		}
		if c.machine {
			x.MachineResult = "MACHINE"
		}
		return x
	}
	menu := Settings{Options: []*dialerv1.BlastOption{{Digit: "1", Action: dialerv1.BlastAction_BLAST_ACTION_CONNECT}}}
	plain := Settings{}
	tests := []struct {
		name string
		s    Settings
		c    spec
		want string
	}{
		{"not answered", plain, spec{st: failed, leg: first, reason: originationv1.FailureReason_FAILURE_REASON_BUSY, noAnswer: true, ep: true}, ""},
		{"a machine", plain, spec{st: failed, leg: first, reason: originationv1.FailureReason_FAILURE_REASON_MACHINE, machine: true}, ""},
		{"cancelled by the dialer", menu, spec{st: originationv1.CallStatus_CALL_STATUS_CANCELED, reason: originationv1.FailureReason_FAILURE_REASON_CANCELED}, ""},
		{"announcement heard", plain, spec{st: completed}, DestIVRFinished},
		{"announcement cut", plain, spec{st: failed, leg: first, reason: originationv1.FailureReason_FAILURE_REASON_CANCELED}, DestIVRStarted},
		{"menu: tries ran out", menu, spec{st: completed, ep: true}, DestIVRFinished},
		{"menu: END", menu, spec{st: completed, choice: end, ep: true}, DestIVRFinished},
		{"menu: opted out", menu, spec{st: completed, choice: optOut, await: true}, DestIVRFinished},
		{"menu: hung up", menu, spec{st: failed, leg: first, reason: originationv1.FailureReason_FAILURE_REASON_CANCELED, ep: true}, DestIVRStarted},
		{"endpoint answered", menu, spec{st: completed, choice: connect, ep: true, bridged: true}, DestInAnswer},
		{"no menu: endpoint answered", plain, spec{st: completed, ep: true, bridged: true}, DestInAnswer},
		{"endpoint busy", menu, spec{st: failed, leg: second, reason: originationv1.FailureReason_FAILURE_REASON_BUSY, choice: connect, ep: true}, DestInBusy},
		{"endpoint rang out", plain, spec{st: failed, leg: second, reason: originationv1.FailureReason_FAILURE_REASON_NO_ANSWER, ep: true}, DestInNoAnswer},
		{"endpoint not registered", menu, spec{st: failed, leg: second, reason: originationv1.FailureReason_FAILURE_REASON_UNAVAILABLE, choice: connect, ep: true}, DestInChanUnavail},
		{"endpoint: no route", menu, spec{st: failed, leg: second, reason: originationv1.FailureReason_FAILURE_REASON_NO_ROUTE, choice: connect, ep: true}, DestInCongestion},
		{"endpoint: congestion", plain, spec{st: failed, leg: second, reason: originationv1.FailureReason_FAILURE_REASON_CONGESTION, ep: true}, DestInCongestion},
		{"recipient gone while the endpoint rang", menu, spec{st: failed, leg: first, reason: originationv1.FailureReason_FAILURE_REASON_CANCELED, choice: connect, ep: true}, DestInCancel},
		{"queue: an agent took it", menu, spec{st: completed, choice: connect, await: true, bridged: true}, DestQueueAnswer},
		{"queue: no agent", menu, spec{st: failed, leg: second, reason: originationv1.FailureReason_FAILURE_REASON_NO_AGENT, choice: connect, await: true}, DestQueueTimeout},
		{"queue: turned away, nobody logged in", menu, spec{st: failed, leg: second, reason: originationv1.FailureReason_FAILURE_REASON_QUEUE_EMPTY, choice: connect, await: true}, DestQueueEmpty},
		{"queue: turned away, full", menu, spec{st: failed, leg: second, reason: originationv1.FailureReason_FAILURE_REASON_QUEUE_FULL, choice: connect, await: true}, DestQueueFull},
		{"queue: gone waiting", menu, spec{st: completed, choice: connect, await: true}, DestQueueJoin},
		{"predictive: connected", plain, spec{st: completed, await: true, bridged: true}, DestQueueAnswer},
		{"predictive: abandoned", plain, spec{st: completed, await: true, abandon: true}, DestQueueTimeout},
		{"predictive: gone before the agent", plain, spec{st: completed, await: true}, DestQueueJoin},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := destinationOf(call(tc.c), tc.s); got != tc.want {
				t.Errorf("destinationOf = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestOutcomeNext(t *testing.T) {
	t.Parallel()
	s := SettingsOf(&dialerv1.Campaign{DialAttempts: 3, RetryIntervals: &dialerv1.RetryIntervals{BusyS: 30}})
	now := engBase
	tests := []struct {
		o     outcome
		tries int
		final bool
		next  time.Time
	}{
		{outcome{StatusBusy, StatusBusy}, 1, false, now.Add(30 * time.Second)},
		{outcome{StatusBusy, StatusBusy}, 3, true, now},
		{outcome{StatusNoAnswer, StatusNoAnswer}, 2, false, now.Add(DefaultNoAnswerRetry)},
		{outcome{StatusFailed, "congestion"}, 1, false, now.Add(DefaultCongestRetry)},
		{outcome{StatusFailed, StatusFailed}, 1, false, now.Add(DefaultFailedRetry)},
		{outcome{StatusCancel, retryNow}, 2, false, now},
		{outcome{StatusCancel, retryNow}, 3, false, now},
		{outcome{StatusAnswered, ""}, 1, true, now},
	}
	for _, tc := range tests {
		final, next := tc.o.next(tc.tries, s, now)
		if final != tc.final || !next.Equal(tc.next) {
			t.Errorf("%+v after try %d: final %v next %v, want %v %v", tc.o, tc.tries, final, next, tc.final, tc.next)
		}
	}
}

// outcomeFixture is a campaign with one record dialed (running, try 1)
// and an engine that only handles events.
type outcomeFixture struct {
	h        *engHarness
	e        *Engine
	campaign string
	record   int64
	now      time.Time
}

func newOutcomeFixture(t *testing.T, c *dialerv1.Campaign) *outcomeFixture {
	t.Helper()
	h := newEngHarness(t)
	now := engBase.Add(time.Minute)
	campaign := h.engCampaign(t, c, dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING)
	record := h.engList(t, campaign, engRecord{numbers: []string{"+34911111111", "+34922222222"}})[0]
	if _, err := h.db.Exec(context.Background(), `UPDATE dialer.records SET status = 'running', tries = 1, lease_owner = 'a', lease_until = $2 WHERE id = $1`,
		record, now.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	e := NewEngine(EngineConfig{Instance: "a", Now: func() time.Time { return now }}, h.db, h.calls, engLogger())
	return &outcomeFixture{h: h, e: e, campaign: campaign, record: record, now: now}
}

// call is a call of the fixture's record, try try.
func (f *outcomeFixture) call(id string, try int, st originationv1.CallStatus) *originationv1.Call {
	return &originationv1.Call{
		Id: id, AccountId: engAccount, Source: originationv1.CallSource_CALL_SOURCE_DIALER, Status: st,
		First:     &originationv1.Leg{Party: &originationv1.PartyRef{Target: &originationv1.PartyRef_Number{Number: "+34911111111"}}},
		Second:    &originationv1.Leg{Party: &originationv1.PartyRef{Target: &originationv1.PartyRef_EndpointId{EndpointId: "ep-1"}}},
		Variables: map[string]string{VarCampaign: f.campaign, VarRecord: fmt.Sprint(f.record), VarRun: "1", VarTry: fmt.Sprint(try), "Name": "n0"},
		CreatedAt: timestamppb.New(f.now.Add(-time.Minute)), EndedAt: timestamppb.New(f.now),
	}
}

// deliver hands the event to HandleEvent as the consumer would.
func (f *outcomeFixture) deliver(t *testing.T, typ eventsv1.EventType, leg originationv1.LegRole, c *originationv1.Call) {
	t.Helper()
	ev := &eventsv1.CallEvent{EventId: c.GetId() + "." + typ.String(), AccountId: c.GetAccountId(), CallId: c.GetId(), Type: typ, Call: c, Leg: leg, Variables: c.GetVariables()}
	data, err := proto.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	subject := fmt.Sprintf("calls.%s.%s.%s", c.GetAccountId(), c.GetId(), strings.ToLower(strings.TrimPrefix(typ.String(), "EVENT_TYPE_")))
	if err := f.e.HandleEvent(context.Background(), natsbus.Msg{Subject: subject, Data: data, MsgID: ev.GetEventId(), Delivered: 1}); err != nil {
		t.Fatal(err)
	}
}

func TestOutcomeHandleEventIdempotent(t *testing.T) {
	t.Parallel()
	f := newOutcomeFixture(t, &dialerv1.Campaign{DialAttempts: 2})
	const (
		bridged   = eventsv1.EventType_EVENT_TYPE_CALL_BRIDGED
		completed = eventsv1.EventType_EVENT_TYPE_CALL_COMPLETED
	)
	want := func(what string, st string, final bool, callID string) {
		t.Helper()
		r := f.h.record(t, f.record)
		if r.status != st || r.final != final || r.callID != callID {
			t.Fatalf("%s: record %+v, want %s final=%v call %q", what, r, st, final, callID)
		}
	}

	// Not the dialer's calls, or not this try's: nothing changes.
	api := f.call("call-api", 1, originationv1.CallStatus_CALL_STATUS_BRIDGED)
	api.Source = originationv1.CallSource_CALL_SOURCE_API
	f.deliver(t, bridged, 0, api)
	other := f.call("call-other", 1, originationv1.CallStatus_CALL_STATUS_BRIDGED)
	other.AccountId = "acc-someone-else"
	f.deliver(t, bridged, 0, other)
	f.deliver(t, bridged, 0, f.call("call-old-try", 0, originationv1.CallStatus_CALL_STATUS_BRIDGED))
	oldRun := f.call("call-old-run", 1, originationv1.CallStatus_CALL_STATUS_BRIDGED)
	oldRun.Variables[VarRun] = "0"
	f.deliver(t, bridged, 0, oldRun)
	// The recipient's answer of a call with an endpoint is not talking yet.
	f.deliver(t, eventsv1.EventType_EVENT_TYPE_LEG_ANSWERED, originationv1.LegRole_LEG_ROLE_FIRST, f.call("call-1", 1, originationv1.CallStatus_CALL_STATUS_ANSWERED))
	want("foreign events", StatusRunning, false, "")

	// The events come before the engine recorded its call.
	f.deliver(t, bridged, 0, f.call("call-1", 1, originationv1.CallStatus_CALL_STATUS_BRIDGED))
	want("bridged", StatusTalking, false, "call-1")
	f.deliver(t, bridged, 0, f.call("call-1", 1, originationv1.CallStatus_CALL_STATUS_BRIDGED))
	want("bridged again", StatusTalking, false, "call-1")
	// Another call claiming the same try does not take the record.
	f.deliver(t, completed, 0, f.call("call-2", 1, originationv1.CallStatus_CALL_STATUS_COMPLETED))
	want("another call of the try", StatusTalking, false, "call-1")

	done := f.call("call-1", 1, originationv1.CallStatus_CALL_STATUS_COMPLETED)
	done.Billsec, done.HangupCause = 17, "NORMAL_CLEARING"
	done.First.AnsweredAt, done.BridgedAt = timestamppb.New(f.now.Add(-30*time.Second)), timestamppb.New(f.now.Add(-20*time.Second))
	f.deliver(t, completed, 0, done)
	want("completed", StatusAnswered, true, "call-1")
	again := proto.Clone(done).(*originationv1.Call)
	again.Billsec = 99
	f.deliver(t, completed, 0, again)
	f.deliver(t, bridged, 0, f.call("call-1", 1, originationv1.CallStatus_CALL_STATUS_BRIDGED))
	want("completed again, bridged late", StatusAnswered, true, "call-1")

	r := f.h.record(t, f.record)
	if r.duration != 17 || r.owner != "" || r.tries != 1 || r.destination != DestInAnswer {
		t.Errorf("record %+v, want 17 s, no lease, 1 try, %s", r, DestInAnswer)
	}
	var found bool
	for _, a := range f.h.attempts(t, f.record) {
		if a.callID != "call-1" {
			continue
		}
		found = true
		if a.outcome != StatusAnswered || a.billsec != 17 || !a.ended || a.number != "+34911111111" || a.n != 1 || a.cause != "NORMAL_CLEARING" ||
			a.destination != DestInAnswer {
			t.Errorf("attempt %+v", a)
		}
	}
	if !found {
		t.Error("no attempt recorded for call-1")
	}

	// The engine recording its call after the outcome changes nothing.
	c := engineCampaign{id: f.campaign, account: engAccount, run: 1, s: SettingsOf(&dialerv1.Campaign{})}
	if err := f.e.recordAttempt(context.Background(), c, claimedRecord{id: f.record, tries: 1}, "+34911111111", "call-1", f.now); err != nil {
		t.Fatal(err)
	}
	want("recorded late", StatusAnswered, true, "call-1")

	// Undecodable and unwanted messages are dropped, not retried.
	for _, m := range []natsbus.Msg{
		{Subject: "calls.a.b.call_completed", Data: []byte("not a protobuf")},
		{Subject: "calls.a.b.leg_ringing", Data: []byte("whatever")},
	} {
		if err := f.e.HandleEvent(context.Background(), m); err != nil {
			t.Errorf("%s: %v", m.Subject, err)
		}
	}
}

func TestOutcomeRetryAndStaleTry(t *testing.T) {
	t.Parallel()
	f := newOutcomeFixture(t, &dialerv1.Campaign{DialAttempts: 3, RetryIntervals: &dialerv1.RetryIntervals{BusyS: 120}})
	busy := f.call("call-1", 1, originationv1.CallStatus_CALL_STATUS_FAILED)
	busy.FailedLeg, busy.FailureReason = originationv1.LegRole_LEG_ROLE_FIRST, originationv1.FailureReason_FAILURE_REASON_BUSY
	busy.First.HangupCause = "USER_BUSY"
	f.deliver(t, eventsv1.EventType_EVENT_TYPE_CALL_FAILED, originationv1.LegRole_LEG_ROLE_FIRST, busy)
	r := f.h.record(t, f.record)
	if r.status != StatusBusy || r.final || !r.nextAt.Equal(f.now.Add(120*time.Second)) || r.owner != "" {
		t.Fatalf("record %+v, want busy, not final, due in 120 s", r)
	}
	if as := f.h.attempts(t, f.record); len(as) != 1 || as[0].cause != "USER_BUSY" || as[0].outcome != StatusBusy || as[0].destination != "" {
		t.Fatalf("attempts %+v", as)
	}

	// The next try is being dialed: a late copy of the first try's end, or
	// an event of the first try, leaves it alone.
	if _, err := f.h.db.Exec(context.Background(), `UPDATE dialer.records SET status = 'running', tries = 2, call_id = 'call-2' WHERE id = $1`, f.record); err != nil {
		t.Fatal(err)
	}
	f.deliver(t, eventsv1.EventType_EVENT_TYPE_CALL_FAILED, originationv1.LegRole_LEG_ROLE_FIRST, busy)
	f.deliver(t, eventsv1.EventType_EVENT_TYPE_CALL_BRIDGED, 0, f.call("call-1", 1, originationv1.CallStatus_CALL_STATUS_BRIDGED))
	if r := f.h.record(t, f.record); r.status != StatusRunning || r.tries != 2 || r.callID != "call-2" {
		t.Fatalf("record %+v, want still running try 2", r)
	}
}

func TestOutcomeAnnouncementOnlyAnswer(t *testing.T) {
	t.Parallel()
	f := newOutcomeFixture(t, &dialerv1.Campaign{OnAnswer: &dialerv1.OnAnswer{Announcement: "a.wav"}})
	c := f.call("call-1", 1, originationv1.CallStatus_CALL_STATUS_ANSWERED)
	c.Second, c.First.AnsweredAt = nil, timestamppb.New(f.now.Add(-5*time.Second))
	f.deliver(t, eventsv1.EventType_EVENT_TYPE_LEG_ANSWERED, originationv1.LegRole_LEG_ROLE_FIRST, c)
	if r := f.h.record(t, f.record); r.status != StatusTalking || r.callID != "call-1" {
		t.Fatalf("record %+v, want talking", r)
	}
	// Hung up before the announcement ended: reached all the same.
	c = proto.Clone(c).(*originationv1.Call)
	c.Status, c.FailedLeg, c.FailureReason = originationv1.CallStatus_CALL_STATUS_FAILED, originationv1.LegRole_LEG_ROLE_FIRST, originationv1.FailureReason_FAILURE_REASON_CANCELED
	f.deliver(t, eventsv1.EventType_EVENT_TYPE_CALL_FAILED, originationv1.LegRole_LEG_ROLE_FIRST, c)
	if r := f.h.record(t, f.record); r.status != StatusAnswered || !r.final || r.destination != DestIVRStarted {
		t.Fatalf("record %+v, want answered, %s", r, DestIVRStarted)
	}
}

// One batch as the consumer hands it: the same end twice (a redelivery),
// the bridge after the end, a foreign call, and an opt-out: applied once,
// in one statement.
func TestOutcomeHandleBatch(t *testing.T) {
	t.Parallel()
	f := newOutcomeFixture(t, &dialerv1.Campaign{DialAttempts: 2})
	msg := func(typ eventsv1.EventType, c *originationv1.Call) natsbus.Msg {
		ev := &eventsv1.CallEvent{EventId: c.GetId() + "." + typ.String(), AccountId: c.GetAccountId(), CallId: c.GetId(), Type: typ, Call: c}
		data, err := proto.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		return natsbus.Msg{Subject: fmt.Sprintf("calls.%s.%s.%s", c.GetAccountId(), c.GetId(),
			strings.ToLower(strings.TrimPrefix(typ.String(), "EVENT_TYPE_"))), Data: data, MsgID: ev.GetEventId(), Delivered: 1}
	}
	done := f.call("call-1", 1, originationv1.CallStatus_CALL_STATUS_COMPLETED)
	done.Billsec, done.Digits, done.MenuChoice = 12, "9", originationv1.MenuAction_MENU_ACTION_OPT_OUT
	foreign := f.call("call-x", 1, originationv1.CallStatus_CALL_STATUS_COMPLETED)
	foreign.AccountId = "acc-someone-else"
	batch := []natsbus.Msg{
		msg(eventsv1.EventType_EVENT_TYPE_CALL_COMPLETED, done),
		msg(eventsv1.EventType_EVENT_TYPE_CALL_COMPLETED, done),
		msg(eventsv1.EventType_EVENT_TYPE_CALL_BRIDGED, f.call("call-1", 1, originationv1.CallStatus_CALL_STATUS_BRIDGED)),
		msg(eventsv1.EventType_EVENT_TYPE_CALL_COMPLETED, foreign),
		{Subject: "calls.a.b.call_completed", Data: []byte("not a protobuf"), MsgID: "junk", Delivered: 1},
	}
	if err := f.e.HandleBatch(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	r := f.h.record(t, f.record)
	if r.status != StatusAnswered || !r.final || r.callID != "call-1" || r.duration != 12 || r.owner != "" {
		t.Fatalf("record %+v, want answered on call-1", r)
	}
	if a := f.h.attempts(t, f.record); len(a) != 1 || a[0].callID != "call-1" || a[0].outcome != StatusAnswered {
		t.Fatalf("attempts %+v, want call-1's alone", a)
	}
	var tags []string
	var blocked int
	if err := f.h.db.QueryRow(context.Background(), `SELECT tags, (SELECT count(*) FROM dialer.dnc WHERE account_id = $2 AND scope = '' AND number = '+34911111111')
		FROM dialer.records WHERE id = $1`, f.record, engAccount).Scan(&tags, &blocked); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tags, []string{"9"}) || blocked != 1 {
		t.Fatalf("tags %v, opt-outs %d, want [9] and 1", tags, blocked)
	}
	// The whole batch again (a redelivery after a lost ack): nothing moves.
	if err := f.e.HandleBatch(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if r2 := f.h.record(t, f.record); r2 != r {
		t.Fatalf("redelivered batch changed the record: %+v, was %+v", r2, r)
	}
}
