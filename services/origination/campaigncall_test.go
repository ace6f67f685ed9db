package origination

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ringback/ringback/services/internal/ids"
)

// operators registers one EXTERNAL_NUMBER endpoint per number and returns
// their party specs.
func operators(st *stack, account string, numbers ...string) ([]PartySpec, staticEndpoints) {
	eps := staticEndpoints{}
	var out []PartySpec
	for i, n := range numbers {
		id := ids.NewV4()
		eps[id] = &Endpoint{ID: id, AccountID: account, Name: fmt.Sprintf("op%d", i+1), Kind: KindExternalNumber, Address: n}
		out = append(out, PartySpec{EndpointID: id, RingTimeoutMS: 2000})
	}
	st.engine.res = DialPlan{Endpoints: eps}
	return out, eps
}

func campaignRequest(visitor string, ops []PartySpec, mutate func(*CreateRequest)) CreateRequest {
	req := CreateRequest{AccountID: "acct-camp", Source: "BANNER", First: PartySpec{Number: visitor, RingTimeoutMS: 120000},
		Campaign: &CampaignCall{ID: ids.NewV4(), VisitorRole: RoleFirst, Operators: ops, RingAll: true, MaxAttempts: 1, RedialInterval: time.Second}}
	if mutate != nil {
		mutate(&req)
	}
	return req
}

func (st *stack) waitLeg(id string, role Role, attempt int, want ...LegStatus) *Call {
	st.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		c, err := st.engine.Get(context.Background(), id)
		if err != nil {
			st.t.Fatal(err)
		}
		if c.Attempt == attempt && slices.Contains(want, c.Leg(role).Status) {
			return c
		}
		time.Sleep(5 * time.Millisecond)
	}
	st.t.Fatalf("call %s: %s leg of attempt %d never %v", id, role, attempt, want)
	return nil
}

func TestCampaignRingAllFirstOperatorWins(t *testing.T) {
	t.Parallel()
	st := newStack(t)
	// 408 rings until its timeout; 0001 answers after ~1 s (simulated).
	ops, _ := operators(st, "acct-camp", "+15550000408", "+15550000001")
	// A ring of 30 simulated seconds (1.5 s of real time), so that under
	// load the answer surely comes first (with 2 s, 100 ms real, CI once
	// saw the 408 operator time out before the answer was handled).
	ops[0].RingTimeoutMS = 30000
	c, err := st.engine.Create(context.Background(), campaignRequest("+15551230000", ops, nil))
	if err != nil {
		t.Fatal(err)
	}
	done := st.waitStatus(c.ID, StatusCompleted, StatusFailed)
	if done.Status != StatusCompleted || done.Outcome != OutcomeCompleted || done.BridgedAt.IsZero() {
		t.Fatalf("call: %s %s", done.Status, done.Outcome)
	}
	if done.Second.Address != "+15550000001" || done.Second.EndpointName != "op2" {
		t.Fatalf("the company leg is %s (%s), want the operator who answered", done.Second.Address, done.Second.EndpointName)
	}
	if len(done.Second.Tries) != 1 || done.Second.Tries[0].Address != "+15550000408" || done.Second.Tries[0].HangupCause != causeLoseRace {
		t.Fatalf("tries %+v, want the other operator hung up LOSE_RACE", done.Second.Tries)
	}
	if len(done.Second.Forks) != 0 {
		t.Fatalf("forks left: %+v", done.Second.Forks)
	}
}

func TestCampaignInOrderHuntsPastBusyAndUnanswered(t *testing.T) {
	t.Parallel()
	st := newStack(t)
	// The third operator stays up (an operator who hangs up 4-6 simulated
	// seconds after answering, 200-300 ms at this time scale, could be gone
	// before a loaded machine bridged it); the test ends the call.
	ops, _ := operators(st, "acct-camp", "+15550000486", "+15550000408", "+15550000000")
	c, err := st.engine.Create(context.Background(), campaignRequest("+15551230000", ops, func(r *CreateRequest) { r.Campaign.RingAll = false }))
	if err != nil {
		t.Fatal(err)
	}
	bridged := st.waitStatus(c.ID, StatusBridged, StatusCompleted, StatusFailed)
	if bridged.Status != StatusBridged || bridged.Second.Address != "+15550000000" {
		t.Fatalf("call: %s, company leg %s", bridged.Status, bridged.Second.Address)
	}
	if _, err := st.engine.Hangup(context.Background(), c.ID, ""); err != nil {
		t.Fatal(err)
	}
	done := st.waitStatus(c.ID, StatusCompleted, StatusFailed)
	if done.Status != StatusCompleted {
		t.Fatalf("call after the hangup: %s %s", done.Status, done.Outcome)
	}
	var causes []string
	for _, tr := range done.Second.Tries {
		causes = append(causes, tr.Address+" "+tr.HangupCause)
	}
	if want := []string{"+15550000486 USER_BUSY", "+15550000408 NO_ANSWER"}; !slices.Equal(causes, want) {
		t.Fatalf("tries %v, want %v", causes, want)
	}
	types := st.eventTypes(c.ID)
	if n := strings.Count(strings.Join(types, " "), "LEG_DIALING/SECOND"); n != 3 {
		t.Fatalf("the company leg was dialed %d times, want 3: %v", n, types)
	}
}

func TestCampaignVisitorBusyThenAnswersOnSecondAttempt(t *testing.T) {
	t.Parallel()
	st := newStack(t)
	ops, _ := operators(st, "acct-camp", "+15550000001")
	// 408 rings until we say: busy on the first attempt, answered on the second.
	c, err := st.engine.Create(context.Background(), campaignRequest("+15551230408", ops, func(r *CreateRequest) { r.Campaign.MaxAttempts = 3 }))
	if err != nil {
		t.Fatal(err)
	}
	first := st.waitLeg(c.ID, RoleFirst, 1, LegRinging)
	resp, err := http.Post(st.sim.ControlURL()+"/channels/"+first.First.UUID+"/hangup", "application/json", strings.NewReader(`{"cause":"USER_BUSY"}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("hang the visitor up busy: %v %v", resp, err)
	}
	resp.Body.Close()
	waiting := st.waitStatus(c.ID, StatusQueued)
	if waiting.Attempt != 2 || waiting.NextAttemptAt.IsZero() || len(waiting.Attempts) != 1 || waiting.Attempts[0].Reason != ReasonBusy {
		t.Fatalf("after the busy attempt: attempt %d next %v attempts %+v", waiting.Attempt, waiting.NextAttemptAt, waiting.Attempts)
	}
	second := st.waitLeg(c.ID, RoleFirst, 2, LegRinging)
	if second.First.UUID == first.First.UUID {
		t.Fatal("the redial reused the first channel's UUID")
	}
	st.control("/channels/" + second.First.UUID + "/answer")
	done := st.waitStatus(c.ID, StatusCompleted, StatusFailed)
	if done.Status != StatusCompleted || done.Outcome != OutcomeCompleted || done.Attempt != 2 {
		t.Fatalf("call: %s %s attempt %d", done.Status, done.Outcome, done.Attempt)
	}
	if len(done.First.Tries) != 1 || done.First.Tries[0].HangupCause != "USER_BUSY" {
		t.Fatalf("visitor tries %+v", done.First.Tries)
	}
	types := st.eventTypes(c.ID)
	if !slices.Contains(types, "CALL_REDIAL_SCHEDULED/UNSPECIFIED") || slices.Contains(types, "CALL_FAILED/FIRST") {
		t.Fatalf("events %v", types)
	}
}

func TestCampaignVisitorBusyExhaustsRedials(t *testing.T) {
	t.Parallel()
	st := newStack(t)
	ops, _ := operators(st, "acct-camp", "+15550000001")
	start := time.Now()
	c, err := st.engine.Create(context.Background(), campaignRequest("+15551230486", ops, func(r *CreateRequest) { r.Campaign.MaxAttempts = 3 }))
	if err != nil {
		t.Fatal(err)
	}
	done := st.waitStatus(c.ID, StatusCompleted, StatusFailed)
	if done.Status != StatusFailed || done.Outcome != OutcomeFailedToUser || done.FailureReason != ReasonBusy || done.Attempt != 3 || len(done.Attempts) != 2 {
		t.Fatalf("call: %s %q reason %s attempt %d attempts %d", done.Status, done.Outcome, done.FailureReason, done.Attempt, len(done.Attempts))
	}
	if elapsed := time.Since(start); elapsed < 2*time.Second {
		t.Fatalf("three attempts 1 s apart took %v", elapsed)
	}
	if done.Second.Status != LegFailed || !done.Second.DialedAt.IsZero() {
		t.Fatalf("the company was dialed: %+v", done.Second)
	}
	types := strings.Join(st.eventTypes(c.ID), " ")
	if n := strings.Count(types, "CALL_REDIAL_SCHEDULED"); n != 2 {
		t.Fatalf("%d redials scheduled, want 2: %s", n, types)
	}
}

func TestCampaignCompanyFirstNotAnsweringIsNotRedialed(t *testing.T) {
	t.Parallel()
	st := newStack(t)
	ops, _ := operators(st, "acct-camp", "+15550000408")
	c, err := st.engine.Create(context.Background(), campaignRequest("+15551230000", ops, func(r *CreateRequest) {
		r.Campaign.VisitorRole, r.Campaign.MaxAttempts = RoleSecond, 3
		r.First, r.Second = r.Second, r.First
	}))
	if err != nil {
		t.Fatal(err)
	}
	done := st.waitStatus(c.ID, StatusCompleted, StatusFailed)
	if done.Status != StatusFailed || done.Outcome != OutcomeFailedToCompany || done.FailedLeg != RoleFirst || done.FailureReason != ReasonNoAnswer {
		t.Fatalf("call: %s %q %s %s", done.Status, done.Outcome, done.FailedLeg, done.FailureReason)
	}
	if done.Attempt != 1 || !done.Second.DialedAt.IsZero() {
		t.Fatalf("attempt %d, visitor dialed at %v: a company failure is not redialed and the visitor never rung", done.Attempt, done.Second.DialedAt)
	}
}

func TestCampaignCompanyFirstThenVisitor(t *testing.T) {
	t.Parallel()
	st := newStack(t)
	ops, _ := operators(st, "acct-camp", "+15550000001")
	c, err := st.engine.Create(context.Background(), campaignRequest("+15551230000", ops, func(r *CreateRequest) {
		r.Campaign.VisitorRole = RoleSecond
		r.First, r.Second = r.Second, r.First
	}))
	if err != nil {
		t.Fatal(err)
	}
	done := st.waitStatus(c.ID, StatusCompleted, StatusFailed)
	if done.Status != StatusCompleted || done.First.Address != "+15550000001" || done.Second.Address != "+15551230000" {
		t.Fatalf("call: %s first %s second %s", done.Status, done.First.Address, done.Second.Address)
	}
	types := st.eventTypes(c.ID)
	if a, d := slices.Index(types, "LEG_ANSWERED/FIRST"), slices.Index(types, "LEG_DIALING/SECOND"); a < 0 || d < a {
		t.Fatalf("the visitor was dialed before the company answered: %v", types)
	}
}

func TestCampaignBusyOperatorIsSkipped(t *testing.T) {
	t.Parallel()
	st := newStack(t)
	ops, eps := operators(st, "acct-camp", "+15550000001", "+15550000002")
	// The first operator is on another call.
	var busy string
	for id, e := range eps {
		if e.Address == "+15550000001" {
			busy = id
		}
	}
	if ok, err := st.engine.locks.Lock(context.Background(), endpointLockKey(busy), "another-call", time.Minute); err != nil || !ok {
		t.Fatalf("lock: %v %v", ok, err)
	}
	c, err := st.engine.Create(context.Background(), campaignRequest("+15551230000", ops, nil))
	if err != nil {
		t.Fatal(err)
	}
	done := st.waitStatus(c.ID, StatusCompleted, StatusFailed)
	if done.Status != StatusCompleted || done.Second.Address != "+15550000002" {
		t.Fatalf("call: %s, company leg %s", done.Status, done.Second.Address)
	}
	if len(done.Second.Tries) != 1 || done.Second.Tries[0].HangupCause != causeBusy {
		t.Fatalf("tries %+v, want the busy operator", done.Second.Tries)
	}
	// Released after the call: the other operator's lock is free, the
	// busy one still belongs to its own call.
	if ok, _ := st.engine.locks.Lock(context.Background(), endpointLockKey(busy), "third", time.Minute); ok {
		t.Fatal("the campaign call released an operator another call holds")
	}
}

func TestCampaignScheduledCallWaitsForItsTime(t *testing.T) {
	t.Parallel()
	st := newStack(t)
	ops, _ := operators(st, "acct-camp", "+15550000001")
	at := time.Now().Add(1500 * time.Millisecond)
	c, err := st.engine.Create(context.Background(), campaignRequest("+15551230002", ops, func(r *CreateRequest) { r.Campaign.NotBefore = at }))
	if err != nil {
		t.Fatal(err)
	}
	if c.Status != StatusQueued || !c.NextAttemptAt.Equal(at.UTC()) {
		t.Fatalf("created %s next %v", c.Status, c.NextAttemptAt)
	}
	time.Sleep(700 * time.Millisecond)
	if got, _ := st.engine.Get(context.Background(), c.ID); got.Status != StatusQueued {
		t.Fatalf("dialed before its time: %s", got.Status)
	}
	done := st.waitStatus(c.ID, StatusCompleted, StatusFailed)
	if done.First.DialedAt.Before(at) {
		t.Fatalf("dialed at %v, before %v", done.First.DialedAt, at)
	}
}

func TestCampaignCallCanceledWhileWaitingForRedial(t *testing.T) {
	t.Parallel()
	st := newStack(t)
	ops, _ := operators(st, "acct-camp", "+15550000001")
	c, err := st.engine.Create(context.Background(), campaignRequest("+15551230486", ops, func(r *CreateRequest) {
		r.Campaign.MaxAttempts, r.Campaign.RedialInterval = 3, time.Hour
	}))
	if err != nil {
		t.Fatal(err)
	}
	st.waitStatus(c.ID, StatusQueued)
	for {
		got, _ := st.engine.Get(context.Background(), c.ID)
		if got.Attempt == 2 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := st.engine.Hangup(context.Background(), c.ID, ""); err != nil {
		t.Fatal(err)
	}
	done := st.waitStatus(c.ID, StatusCanceled, StatusFailed, StatusCompleted)
	if done.Status != StatusCanceled || done.Outcome != OutcomeCanceled {
		t.Fatalf("call: %s %q", done.Status, done.Outcome)
	}
}

// A call waiting for its time outlives the instance that accepted it:
// once that instance is gone (its heartbeat expired), another adopts the
// call and places it.
func TestCampaignWaitingCallAdoptedWhenItsInstanceIsGone(t *testing.T) {
	t.Parallel()
	st := newStack(t)
	ops, eps := operators(st, "acct-camp", "+15550000001")
	// Instance A accepts the call, then goes away before it is due.
	log := st.engine.log
	a := NewEngine(Config{Instance: "gone-" + ids.NewV4(), HeartbeatTTL: 600 * time.Millisecond}, st.sw, st.store, st.engine.pub, st.engine.locks, DialPlan{Endpoints: eps}, log)
	time.Sleep(100 * time.Millisecond) // its first heartbeat
	c, err := a.Create(context.Background(), campaignRequest("+15551230002", ops, func(r *CreateRequest) { r.Campaign.NotBefore = time.Now().Add(time.Second) }))
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	done := st.waitStatus(c.ID, StatusCompleted, StatusFailed)
	if done.Owner != st.cfg.Instance || done.First.DialedAt.IsZero() {
		t.Fatalf("owner %s (want %s), dialed %v", done.Owner, st.cfg.Instance, done.First.DialedAt)
	}
	// And a waiting call of a live instance is left to it.
	b := NewEngine(Config{Instance: "alive-" + ids.NewV4(), HeartbeatTTL: time.Minute}, st.sw, st.store, st.engine.pub, st.engine.locks, DialPlan{Endpoints: eps}, log)
	defer b.Close()
	time.Sleep(100 * time.Millisecond)
	c2, err := b.Create(context.Background(), campaignRequest("+15551230002", ops, func(r *CreateRequest) { r.Campaign.NotBefore = time.Now().Add(time.Hour) }))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.store.Wait(context.Background(), c2.ID, time.Now().Add(-time.Second)); err != nil { // pretend it is due
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond)
	if got, _ := st.store.Get(context.Background(), c2.ID); got.Owner != b.cfg.Instance || got.Status != StatusQueued {
		t.Fatalf("a live instance's waiting call was taken: owner %s status %s", got.Owner, got.Status)
	}
}
