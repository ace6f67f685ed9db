package dialer

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	dialerv1 "github.com/ringback/ringback/proto/gen/go/ringback/dialer/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
)

// router starts a router (a replica's) on the env until the test's end.
func (e *agEnv) router(t *testing.T, tune func(*RouterConfig)) (*Router, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	cfg := RouterConfig{Registerer: reg}
	if tune != nil {
		tune(&cfg)
	}
	r := NewRouter(cfg, e.st, e.api.Calls, e.bus, engLogger())
	stop, err := r.Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := stop(ctx); err != nil {
			t.Errorf("stop the router: %v", err)
		}
	})
	e.api.Changed = r.Wake
	return r, reg
}

// waitConnected waits for call's connection and returns it.
func (e *agEnv) waitConnected(t testing.TB, call string) agConnect {
	t.Helper()
	var c []agConnect
	eventually(t, "call "+call+" connected", func() bool {
		c = e.fake.connectsOf(call)
		return len(c) > 0 && e.fake.callOf(call).GetStatus() == originationv1.CallStatus_CALL_STATUS_BRIDGED
	})
	return c[len(c)-1]
}

func (e *agEnv) problems(t testing.TB) {
	t.Helper()
	e.fake.mu.Lock()
	defer e.fake.mu.Unlock()
	if len(e.fake.violations) > 0 {
		t.Errorf("origination saw: %v", e.fake.violations)
	}
}

func TestRouterConnectsAwaitedCall(t *testing.T) {
	t.Parallel()
	e := newAgEnv(t)
	_, reg := e.router(t, nil)
	camp := e.campaign(t, agAccount)
	a := e.agent(t, "ana", 1, camp)
	ready := e.login(t, a.GetId())
	if ready.GetSessionCallId() == "" || ready.GetCallsTaken() != 0 {
		t.Fatalf("ready: %v", ready)
	}

	call := e.fake.customer(camp, 2*time.Second)
	c := e.waitConnected(t, call)
	answered := e.fake.callOf(call).GetAnsweredAt().AsTime()
	t.Logf("answer to ConnectCall: %v", c.at.Sub(answered))
	if c.room != "agent-"+a.GetId() || first(c.md.Get(AccountHeader)) != agAccount || first(c.md.Get(callSourceHeader)) != "CALL_SOURCE_DIALER" {
		t.Fatalf("connect %+v", c)
	}
	on := e.get(t, a.GetId())
	if on.GetState() != dialerv1.AgentState_AGENT_STATE_ON_CALL || on.GetCallId() != call || on.GetCampaignId() != camp {
		t.Fatalf("on call: %v", on)
	}
	// The customer hangs up: wrap-up (1 s), then ready by itself.
	e.fake.end(call, originationv1.CallStatus_CALL_STATUS_COMPLETED, true)
	wrap := e.waitAgent(t, a.GetId(), dialerv1.AgentState_AGENT_STATE_WRAP_UP)
	if wrap.GetCallsTaken() != 1 || wrap.GetWrapUpUntil() == nil {
		t.Fatalf("wrap-up: %v", wrap)
	}
	e.waitAgent(t, a.GetId(), dialerv1.AgentState_AGENT_STATE_READY)
	if n := prometheusCounter(t, reg, "ringback_dialer_agent_connects_total", "connected"); n != 1 {
		t.Errorf("connected %v", n)
	}
	e.problems(t)
}

// A call that waits is connected when an agent frees up, whether by the end
// of a call (an event) or of a wrap-up (no event: the loop's look).
func TestRouterWaitingCallConnected(t *testing.T) {
	t.Parallel()
	e := newAgEnv(t)
	e.router(t, nil)
	for _, tt := range []struct {
		name  string
		wrapS int32
	}{{"call ends", 0}, {"wrap-up ends", 1}} {
		t.Run(tt.name, func(t *testing.T) {
			camp := e.campaign(t, agAccount)
			a := e.agent(t, "agent "+tt.name, tt.wrapS, camp)
			e.login(t, a.GetId())
			first := e.fake.customer(camp, 2*time.Second)
			e.waitConnected(t, first)
			second := e.fake.customer(camp, 3*time.Second)
			time.Sleep(200 * time.Millisecond)
			if c := e.fake.connectsOf(second); len(c) != 0 {
				t.Fatalf("connected while its agent was busy: %v", c)
			}
			ended := time.Now()
			e.fake.end(first, originationv1.CallStatus_CALL_STATUS_COMPLETED, true)
			c := e.waitConnected(t, second)
			after := c.at.Sub(ended)
			t.Logf("connected %v after the first call's end", after)
			if least := time.Duration(tt.wrapS) * time.Second; after < least {
				t.Errorf("connected %v after the first call's end, within the wrap-up of %v", after, least)
			}
			if got := e.get(t, a.GetId()); got.GetState() != dialerv1.AgentState_AGENT_STATE_ON_CALL || got.GetCallId() != second {
				t.Fatalf("agent %v", got)
			}
		})
	}
	e.problems(t)
}

// No agent free before the deadline: the call is dropped (origination
// abandons it), and the agent freed later is not held for it.
func TestRouterNoneFreePastDeadline(t *testing.T) {
	t.Parallel()
	e := newAgEnv(t)
	_, reg := e.router(t, nil)
	camp := e.campaign(t, agAccount)
	a := e.agent(t, "ana", 0, camp)
	e.login(t, a.GetId())
	busy := e.fake.customer(camp, 2*time.Second)
	e.waitConnected(t, busy)
	lost := e.fake.customer(camp, 500*time.Millisecond)
	eventually(t, "the call abandoned", func() bool { return e.fake.callOf(lost).GetAbandoned() })
	eventually(t, "no call waiting", func() bool {
		c, _ := e.st.waitingCampaigns(context.Background())
		return len(c) == 0
	})
	e.fake.end(busy, originationv1.CallStatus_CALL_STATUS_COMPLETED, true)
	e.waitAgent(t, a.GetId(), dialerv1.AgentState_AGENT_STATE_READY)
	quietly(t, 300*time.Millisecond, "the agent stays ready", func() bool {
		return e.get(t, a.GetId()).GetState() == dialerv1.AgentState_AGENT_STATE_READY
	})
	if c := e.fake.connectsOf(lost); len(c) != 0 {
		t.Fatalf("the abandoned call was connected: %v", c)
	}
	// Counted once, by whichever saw it go first (the deadline, the
	// abandonment, or its AGENT_AWAITED handled late: under load that may
	// come after all of the above).
	eventually(t, "none_free counted", func() bool {
		return prometheusCounter(t, reg, "ringback_dialer_agent_connects_total", "none_free") >= 1
	})
	quietly(t, 300*time.Millisecond, "none_free counted once", func() bool {
		return prometheusCounter(t, reg, "ringback_dialer_agent_connects_total", "none_free") == 1
	})
}

// A call that no longer waits gives its agent back in its place; a
// connection whose answer is lost is checked with GetCall and retried.
func TestRouterGiveBack(t *testing.T) {
	t.Parallel()
	e := newAgEnv(t)
	_, reg := e.router(t, nil)
	camp := e.campaign(t, agAccount)
	a := e.agent(t, "ana", 5, camp)
	before := e.login(t, a.GetId())

	e.fake.mu.Lock()
	e.fake.connectErr = refusal(codes.FailedPrecondition, "CALL_NOT_WAITING")
	e.fake.mu.Unlock()
	gone := e.fake.customer(camp, 2*time.Second)
	eventually(t, "given back", func() bool {
		return prometheusCounter(t, reg, "ringback_dialer_agent_connects_total", "not_waiting") == 1
	})
	after := e.get(t, a.GetId())
	if after.GetState() != dialerv1.AgentState_AGENT_STATE_READY || !after.GetStateSince().AsTime().Equal(before.GetStateSince().AsTime()) ||
		after.GetCallsTaken() != 0 {
		t.Fatalf("given back: %v, want READY since %v, no call taken", after, before.GetStateSince().AsTime())
	}
	e.fake.end(gone, originationv1.CallStatus_CALL_STATUS_CANCELED, true)

	e.fake.mu.Lock()
	e.fake.connectErr = status.Error(codes.Unavailable, "origination restarting")
	e.fake.mu.Unlock()
	call := e.fake.customer(camp, 2*time.Second)
	e.waitConnected(t, call)
	if n := len(e.fake.connectsOf(call)); n != 2 {
		t.Errorf("%d ConnectCall, want 2", n)
	}
	if got := e.get(t, a.GetId()); got.GetCallId() != call {
		t.Fatalf("agent %v", got)
	}
	e.problems(t)
}

// The session's end logs the agent out (a customer call in progress is
// left alone); Logout is at once, and the late end of an old session does
// not touch the next login.
func TestRouterSessionEnds(t *testing.T) {
	t.Parallel()
	e := newAgEnv(t)
	e.router(t, nil)
	camp := e.campaign(t, agAccount)
	a := e.agent(t, "ana", 0, camp)
	id := a.GetId()

	// The phone hangs up while the agent talks to a customer.
	sess := e.login(t, id).GetSessionCallId()
	call := e.fake.customer(camp, 2*time.Second)
	e.waitConnected(t, call)
	e.fake.end(sess, originationv1.CallStatus_CALL_STATUS_COMPLETED, true)
	e.waitAgent(t, id, dialerv1.AgentState_AGENT_STATE_LOGGED_OUT)
	if c := e.fake.callOf(call); finalCall(c.GetStatus()) {
		t.Fatalf("the customer's call was ended: %v", c.GetStatus())
	}
	e.fake.end(call, originationv1.CallStatus_CALL_STATUS_COMPLETED, true)

	// Logged in again, out through the API, in again at once: the first
	// session's end (the hangup's event) does not log the new one out.
	sess = e.login(t, id).GetSessionCallId()
	if _, err := e.api.Logout(e.ctx, &dialerv1.LogoutRequest{Id: id}); err != nil {
		t.Fatal(err)
	}
	r, err := e.api.Login(e.ctx, &dialerv1.LoginRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	if r.GetAgent().GetSessionCallId() == sess {
		t.Fatal("same session call")
	}
	quietly(t, 300*time.Millisecond, "the new login stays", func() bool {
		return e.get(t, id).GetState() == dialerv1.AgentState_AGENT_STATE_LOGGING_IN
	})
	// Its phone does not answer.
	e.fake.end(r.GetAgent().GetSessionCallId(), originationv1.CallStatus_CALL_STATUS_FAILED, true)
	e.waitAgent(t, id, dialerv1.AgentState_AGENT_STATE_LOGGED_OUT)
}

// Events lost: the reconciliation asks origination.
func TestRouterReconcile(t *testing.T) {
	t.Parallel()
	e := newAgEnv(t)
	e.router(t, func(c *RouterConfig) { c.Reconcile = 200 * time.Millisecond })
	camp := e.campaign(t, agAccount)
	a, b := e.agent(t, "ana", 0, camp), e.agent(t, "bruno", 0, camp)
	sess := e.login(t, a.GetId()).GetSessionCallId()
	call := e.fake.customer(camp, 2*time.Second)
	e.waitConnected(t, call)
	e.login(t, b.GetId())
	e.fake.end(call, originationv1.CallStatus_CALL_STATUS_COMPLETED, false)
	e.fake.end(sess, originationv1.CallStatus_CALL_STATUS_COMPLETED, false)
	e.waitAgent(t, a.GetId(), dialerv1.AgentState_AGENT_STATE_LOGGED_OUT)

	call = e.fake.customer(camp, 2*time.Second)
	e.waitConnected(t, call)
	e.fake.end(call, originationv1.CallStatus_CALL_STATUS_COMPLETED, false)
	got := e.waitAgent(t, b.GetId(), dialerv1.AgentState_AGENT_STATE_READY)
	if got.GetCallsTaken() != 1 {
		t.Fatalf("released: %v", got)
	}
}

// Two replicas' routers, many agents and customers: every customer gets at
// most one agent, no agent two customers at once, and every customer is
// connected while agents are enough.
func TestRouterReplicas(t *testing.T) {
	t.Parallel()
	e := newAgEnv(t)
	_, reg1 := e.router(t, nil)
	_, reg2 := e.router(t, nil)
	camp := e.campaign(t, agAccount)
	const agents, customers = 8, 40
	for i := range agents {
		e.login(t, e.agent(t, fmt.Sprint("agent ", i), 0, camp).GetId())
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		calls []string
		lat   []time.Duration
	)
	for i := range customers {
		wg.Go(func() {
			time.Sleep(time.Duration(i%10) * 20 * time.Millisecond)
			call := e.fake.customer(camp, 5*time.Second)
			c := e.waitConnected(t, call)
			mu.Lock()
			calls = append(calls, call)
			lat = append(lat, c.at.Sub(e.fake.callOf(call).GetAnsweredAt().AsTime()))
			mu.Unlock()
			time.Sleep(50 * time.Millisecond) // talking
			e.fake.end(call, originationv1.CallStatus_CALL_STATUS_COMPLETED, true)
		})
	}
	wg.Wait()
	for _, call := range calls {
		if n := len(e.fake.connectsOf(call)); n != 1 {
			t.Errorf("call %s: %d ConnectCall", call, n)
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("answer to ConnectCall, %d calls for %d agents: median %v, p90 %v, max %v", len(lat), agents, lat[len(lat)/2], lat[len(lat)*9/10], lat[len(lat)-1])
	n := prometheusCounter(t, reg1, "ringback_dialer_agent_connects_total", "connected") +
		prometheusCounter(t, reg2, "ringback_dialer_agent_connects_total", "connected")
	if n != customers {
		t.Errorf("connected %v, want %d", n, customers)
	}
	eventually(t, "every agent ready", func() bool {
		s := snapshot(t, e.st, camp, time.Now())
		return s.Ready == agents
	})
	r, err := e.api.ListAgents(e.ctx, &dialerv1.ListAgentsRequest{CampaignId: camp})
	if err != nil {
		t.Fatal(err)
	}
	var taken int64
	for _, a := range r.GetAgents() {
		taken += a.GetCallsTaken()
	}
	if taken != customers {
		t.Errorf("calls taken %d, want %d", taken, customers)
	}
	e.problems(t)
}

// Thirty customers in a row, one agent: each is connected, and the agent
// is ready again after each. It logs how long a customer waits from the
// answer to the agent's room (AGENT_AWAITED through JetStream, the claim in
// Redis, ConnectCall); the figure in docs/benchmarks.md comes from
// origination's BenchmarkConnectCall, timing being no test's business.
func TestRouterConnectLatency(t *testing.T) {
	t.Parallel()
	e := newAgEnv(t)
	e.router(t, nil)
	camp := e.campaign(t, agAccount)
	e.login(t, e.agent(t, "ana", 0, camp).GetId())
	const n = 30
	lat := make([]time.Duration, 0, n)
	for range n {
		call := e.fake.customer(camp, 2*time.Second)
		c := e.waitConnected(t, call)
		lat = append(lat, c.at.Sub(e.fake.callOf(call).GetAnsweredAt().AsTime()))
		e.fake.end(call, originationv1.CallStatus_CALL_STATUS_COMPLETED, true)
		eventually(t, "agent ready", func() bool { return snapshot(t, e.st, camp, time.Now()).Ready == 1 })
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("answer to ConnectCall, %d calls: min %v, median %v, p90 %v, max %v", n, lat[0], lat[n/2], lat[n*9/10], lat[n-1])
}

// A BLAST's recipient who pressed CONNECT waits in the campaign's queue
// past the 2 s of a predictive answer, for as long as its wait says, and is
// served when an agent frees up; its wait is the queue's speed of answer,
// counted from the choice, not the answer (the menu came between).
func TestRouterQueueWaitsForAnAgent(t *testing.T) {
	t.Parallel()
	e := newAgEnv(t)
	_, reg := e.router(t, nil)
	camp := e.campaign(t, agAccount)
	a := e.agent(t, "ana", 0, camp)
	e.login(t, a.GetId())
	busy := e.fake.customer(camp, 2*time.Second)
	e.waitConnected(t, busy)
	queued := e.fake.customerWith(camp, 20*time.Second, func(c *originationv1.Call) {
		c.AnsweredAt = timestamppb.New(time.Now().Add(-30 * time.Second)) // the menu played meanwhile
		c.MenuChoice, c.Digits = originationv1.MenuAction_MENU_ACTION_CONNECT, "1"
	})
	quietly(t, 3*time.Second, "the queued call waits past 2 s", func() bool {
		return len(e.fake.connectsOf(queued)) == 0 && !e.fake.callOf(queued).GetAbandoned()
	})
	e.fake.end(busy, originationv1.CallStatus_CALL_STATUS_COMPLETED, true)
	e.waitConnected(t, queued)
	// Observed once ConnectCall has returned to the router, a moment after
	// origination (the fake) has the call in the room.
	eventually(t, "the queue's wait observed", func() bool {
		n, _ := prometheusHistogram(t, reg, "ringback_dialer_agent_queue_wait_seconds")
		return n > 0
	})
	count, sum := prometheusHistogram(t, reg, "ringback_dialer_agent_queue_wait_seconds")
	if count != 1 || sum < 2.5 || sum > 15 {
		t.Fatalf("queue wait: %v observations summing %.1f s, want one of 3 s or so", count, sum)
	}
	if n, _ := prometheusHistogram(t, reg, "ringback_dialer_agent_connect_seconds"); n != 1 {
		t.Fatalf("answer-to-agent observations %v, want the busy call's only", n)
	}
	e.problems(t)
}

// A queue's limits: with nobody logged in a queue that turns callers away
// when empty does so at once (one that does not lets them wait); once full
// (max_waiting waiting, no agent free) it turns the next away; an agent
// free takes a caller whatever the limits.
func TestRouterQueueTurnsAway(t *testing.T) {
	t.Parallel()
	e := newAgEnv(t)
	e.router(t, nil)
	camp := e.campaign(t, agAccount)
	queued := func(maxWaiting int, empty bool) string {
		return e.fake.customerWith(camp, 20*time.Second, func(c *originationv1.Call) {
			c.MenuChoice, c.Digits = originationv1.MenuAction_MENU_ACTION_CONNECT, "1"
			if maxWaiting > 0 {
				c.Variables[VarQueueMaxWaiting] = strconv.Itoa(maxWaiting)
			}
			if empty {
				c.Variables[VarQueueTurnAway] = "true"
			}
		})
	}
	const (
		none  = originationv1.FailureReason_FAILURE_REASON_UNSPECIFIED
		empty = originationv1.FailureReason_FAILURE_REASON_QUEUE_EMPTY
		full  = originationv1.FailureReason_FAILURE_REASON_QUEUE_FULL
	)
	wantTurnedAway := func(call string, want originationv1.FailureReason) {
		t.Helper()
		if want == none {
			quietly(t, 500*time.Millisecond, call+" waits", func() bool { return e.fake.turnedAway(call) == none })
			return
		}
		eventually(t, call+" turned away", func() bool { return e.fake.turnedAway(call) == want })
		if c := e.fake.callOf(call); c.GetStatus() != originationv1.CallStatus_CALL_STATUS_FAILED || c.GetFailureReason() != want {
			t.Fatalf("%s: %v %v", call, c.GetStatus(), c.GetFailureReason())
		}
	}
	// Nobody logged in.
	nobody := queued(0, true)
	wantTurnedAway(nobody, empty)
	patient := queued(0, false)
	wantTurnedAway(patient, none)

	// An agent logged in, busy with the patient one: not empty any more.
	a := e.agent(t, "ana", 0, camp)
	r, err := e.api.Login(e.ctx, &dialerv1.LoginRequest{Id: a.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	e.fake.joinSession(r.GetAgent().GetSessionCallId()) // READY, and at once the patient caller's
	e.waitConnected(t, patient)
	second := queued(1, true)
	wantTurnedAway(second, none)
	third := queued(1, true) // one waits already: full
	wantTurnedAway(third, full)
	fourth := queued(2, true) // room for two
	wantTurnedAway(fourth, none)
	if n, _ := e.st.WaitingCalls(context.Background(), camp); n != 2 {
		t.Fatalf("%d calls waiting, want 2 (the turned away are not)", n)
	}
	// A paused agent takes no calls: with the only one paused, the queue
	// is empty again.
	e.fake.end(patient, originationv1.CallStatus_CALL_STATUS_COMPLETED, true)
	e.waitConnected(t, second)
	e.fake.end(second, originationv1.CallStatus_CALL_STATUS_COMPLETED, true)
	e.waitConnected(t, fourth)
	if _, err := e.api.Pause(e.ctx, &dialerv1.PauseRequest{Id: a.GetId(), Reason: "lunch"}); err != nil {
		t.Fatal(err)
	}
	e.fake.end(fourth, originationv1.CallStatus_CALL_STATUS_COMPLETED, true)
	e.waitAgent(t, a.GetId(), dialerv1.AgentState_AGENT_STATE_PAUSED)
	wantTurnedAway(queued(0, true), empty)
	e.problems(t)
}

// A queue left with no agent turns away the callers that leave when it is
// empty, there and then (the routers are woken: no poll in this test), and
// keeps the others: the last agent pausing (once its call ends) or logging
// out (during a call) empties it.
func TestRouterQueueEmptiesWhenAgentsLeave(t *testing.T) {
	t.Parallel()
	e := newAgEnv(t)
	_, reg := e.router(t, func(c *RouterConfig) { c.Poll = time.Hour })
	camp := e.campaign(t, agAccount)
	queued := func(leave bool) string {
		return e.fake.customerWith(camp, time.Minute, func(c *originationv1.Call) {
			c.MenuChoice, c.Digits = originationv1.MenuAction_MENU_ACTION_CONNECT, "1"
			if leave {
				c.Variables[VarQueueTurnAway] = "true"
			}
		})
	}
	const none, empty = originationv1.FailureReason_FAILURE_REASON_UNSPECIFIED, originationv1.FailureReason_FAILURE_REASON_QUEUE_EMPTY
	a := e.agent(t, "ana", 0, camp)
	r, err := e.api.Login(e.ctx, &dialerv1.LoginRequest{Id: a.GetId()})
	if err != nil {
		t.Fatal(err)
	}
	e.fake.joinSession(r.GetAgent().GetSessionCallId())
	e.waitAgent(t, a.GetId(), dialerv1.AgentState_AGENT_STATE_READY)
	first := queued(true)
	e.waitConnected(t, first)
	leaver, patient := queued(true), queued(false)
	eventually(t, "two callers waiting", func() bool {
		n, _ := e.st.WaitingCalls(context.Background(), camp)
		return n == 2
	})

	// A pause asked during the call: the agent still counts until it ends.
	if _, err := e.api.Pause(e.ctx, &dialerv1.PauseRequest{Id: a.GetId(), Reason: "lunch"}); err != nil {
		t.Fatal(err)
	}
	quietly(t, 300*time.Millisecond, "nobody turned away while the agent is on a call", func() bool {
		return e.fake.turnedAway(leaver) == none && e.fake.turnedAway(patient) == none
	})
	e.fake.end(first, originationv1.CallStatus_CALL_STATUS_COMPLETED, true)
	e.waitAgent(t, a.GetId(), dialerv1.AgentState_AGENT_STATE_PAUSED)
	eventually(t, "the leaver turned away", func() bool { return e.fake.turnedAway(leaver) == empty })
	if c := e.fake.callOf(leaver); c.GetStatus() != originationv1.CallStatus_CALL_STATUS_FAILED || c.GetFailureReason() != empty {
		t.Fatalf("leaver: %v %v", c.GetStatus(), c.GetFailureReason())
	}
	if e.fake.turnedAway(patient) != none {
		t.Fatal("the patient caller was turned away")
	}

	// Back: the patient caller is served; one more waits; the agent logs
	// out during the call.
	if _, err := e.api.SetReady(e.ctx, &dialerv1.SetReadyRequest{Id: a.GetId()}); err != nil {
		t.Fatal(err)
	}
	e.waitConnected(t, patient)
	late := queued(true)
	eventually(t, "one caller waiting", func() bool {
		n, _ := e.st.WaitingCalls(context.Background(), camp)
		return n == 1
	})
	if _, err := e.api.Logout(e.ctx, &dialerv1.LogoutRequest{Id: a.GetId()}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the late caller turned away", func() bool { return e.fake.turnedAway(late) == empty })
	if n, _ := e.st.WaitingCalls(context.Background(), camp); n != 0 {
		t.Fatalf("%d calls waiting, want none", n)
	}
	// Counted once TurnAwayCall has returned to the router.
	eventually(t, "two queue_empty connects counted", func() bool {
		return prometheusCounter(t, reg, "ringback_dialer_agent_connects_total", "queue_empty") == 2
	})
	e.problems(t)
}

// A media server whose clock runs ahead of the dialer's: the answer it
// stamps an hour ahead neither stretches the wait nor shows in the
// campaign's longest wait as a wait not started yet.
func TestRouterWaitAheadOfItsClock(t *testing.T) {
	t.Parallel()
	e := newAgEnv(t)
	e.router(t, nil)
	camp := e.campaign(t, agAccount)
	const wait = 10 * time.Minute
	before := time.Now()
	call := e.fake.customerWith(camp, wait, func(c *originationv1.Call) {
		c.AnsweredAt = timestamppb.New(before.Add(time.Hour))
	})
	var info string
	eventually(t, "the call waits", func() bool {
		info, _ = e.st.rdb.HGet(context.Background(), e.st.p+"waiting-info:"+camp, call).Result()
		return info != ""
	})
	after := time.Now()
	w := waitingOf(camp, call, info)
	if w.answered.Before(before.Truncate(time.Millisecond)) || w.answered.After(after) || w.deadline.After(after.Add(wait)) {
		t.Fatalf("waits from %v until %v, want from between %v and %v, %v later", w.answered, w.deadline, before, after, wait)
	}
	l, err := e.st.live(context.Background(), camp, time.Now())
	if err != nil || l.waiting != 1 || l.longest < 0 || l.longest > time.Since(before) {
		t.Fatalf("live: %+v %v", l, err)
	}
}

// prometheusHistogram is a histogram's count and sum.
func prometheusHistogram(t testing.TB, reg *prometheus.Registry, name string) (uint64, float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) > 0 {
			h := mf.GetMetric()[0].GetHistogram()
			return h.GetSampleCount(), h.GetSampleSum()
		}
	}
	return 0, 0
}
