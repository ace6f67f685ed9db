package origination

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	eventsv1 "github.com/ringback/ringback/proto/gen/go/ringback/events/v1"
	"github.com/ringback/ringback/services/internal/config"
	"github.com/ringback/ringback/services/internal/ids"
)

// An instance gone for good (scaled down, its node lost) leaves live calls
// on the switch: an agent's session in its room, a customer waiting for an
// agent, a bridged call whose far end hangs up while nobody drives it. Once
// its heartbeat has expired the other instances adopt them all: the call
// that ended meanwhile is ended, the customer's wait goes on (and an agent
// takes it), and the session is driven from then on. A live instance's call is left to it.
func TestThroughSimulatorLiveCallsAdoptedWhenTheirInstanceIsGone(t *testing.T) {
	t.Parallel()
	st := newStack(t)
	ctx := context.Background()
	played := playbacks(t, st)
	_, phones := agentPhones(t, st, "1005")
	res := st.engine.res
	gone := "gone-" + ids.NewV4()
	a, aSw, aClient := st.instance(t, Config{Instance: gone, HeartbeatTTL: 600 * time.Millisecond}, res)
	b, _, _ := st.instance(t, Config{Instance: "alive-" + ids.NewV4(), HeartbeatTTL: time.Minute}, res)
	srvA := &CallServer{Engine: a, Redis: st.store.rdb}

	session, agent := startSession(t, st, srvA, phones["1005"], "agent-1005")
	customer := awaitCall(t, srvA, "+15558870000", 30000)
	st.waitEvent(customer.GetId(), eventsv1.EventType_EVENT_TYPE_AGENT_AWAITED)
	twoParty := CreateRequest{AccountID: "acct-it", Mode: ModeSimultaneous,
		First: PartySpec{Number: "+15551230000"}, Second: PartySpec{Number: "+15558880000"}}
	bridged, err := a.Create(ctx, twoParty)
	if err != nil {
		t.Fatal(err)
	}
	kept, err := b.Create(ctx, twoParty)
	if err != nil {
		t.Fatal(err)
	}
	bridged = st.waitStatus(bridged.ID, StatusBridged)
	kept = st.waitStatus(kept.ID, StatusBridged)

	// A goes away for good; the far end of its bridged call hangs up.
	aClient.Close()
	aSw.Close()
	a.Close()
	// With a cause of its own, which the adopter heard though the call was
	// not its own yet (a leg found gone would end NORMAL_CLEARING).
	st.hangupChannelWith(bridged.Second.UUID, "NORMAL_UNSPECIFIED")

	adopters := []string{st.cfg.Instance, b.cfg.Instance}
	done := st.waitStatus(bridged.ID, StatusCompleted)
	if !slices.Contains(adopters, done.Owner) || done.First.Status != LegHungup || done.Second.Status != LegHungup ||
		done.Second.HangupCause != "NORMAL_UNSPECIFIED" {
		t.Fatalf("A's bridged call: owner %s (want one of %v), legs %s/%s, the far end's cause %s", done.Owner, adopters,
			done.First.Status, done.Second.Status, done.Second.HangupCause)
	}
	// A's customer still waits for an agent (for 30 s): its adopter keeps
	// the wait, and the dialer's ConnectCall, through any instance,
	// reaches it.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		got, err := st.store.Get(ctx, customer.GetId())
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(adopters, got.Owner) && got.waiting() {
			break
		}
		if time.Now().After(deadline) || got.Status.Final() {
			t.Fatalf("A's customer: %+v", got)
		}
	}
	if _, err := st.engine.Connect(ctx, "acct-it", customer.GetId(), "agent-1005"); err != nil {
		t.Fatalf("ConnectCall of A's customer: %v", err)
	}
	st.waitStatus(customer.GetId(), StatusBridged)
	st.hangupChannel(customer.GetFirst().GetUuid())
	if got := st.waitStatus(customer.GetId(), StatusCompleted, StatusFailed, StatusCanceled); got.Status != StatusCompleted || got.Abandoned ||
		got.Conference != "agent-1005" {
		t.Fatalf("A's customer: %+v", got)
	}
	if files := played(customer.GetFirst().GetUuid()); len(files) != 0 {
		t.Fatalf("played %q to the customer, want nothing", files)
	}
	for _, ch := range st.sim.Channels() {
		if id := ch.Variables["ringback_call_id"]; id == bridged.ID || id == customer.GetId() {
			t.Fatalf("leg left on the switch: %+v", ch)
		}
	}
	// The session is still in its room (adopted in a round of its own
	// order, maybe after the others), and its new owner hears its hangup.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		got := st.waitStatus(session, StatusBridged)
		if slices.Contains(adopters, got.Owner) && got.Conference == "agent-1005" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("A's session: %+v", got)
		}
	}
	st.waitRoom("agent-1005", agent+" hear|speak|moderator")
	st.hangupChannel(agent)
	if got := st.waitStatus(session, StatusCompleted, StatusFailed, StatusCanceled); got.Status != StatusCompleted {
		t.Fatalf("A's session after its hangup: %+v", got)
	}
	want := "CALL_QUEUED/UNSPECIFIED CALL_DIALING/FIRST LEG_RINGING/FIRST LEG_ANSWERED/FIRST CONFERENCE_JOINED/FIRST " +
		"LEG_HANGUP/FIRST CALL_COMPLETED/UNSPECIFIED"
	if events := strings.Join(st.eventTypes(session), " "); events != want {
		t.Fatalf("session's events:\n got %s\nwant %s", events, want)
	}
	if events := st.eventTypes(bridged.ID); events[len(events)-1] != "CALL_COMPLETED/UNSPECIFIED" {
		t.Fatalf("bridged call's events: %s", events)
	}

	// A, with no call left, is forgotten; B, alive, keeps its call and
	// drives it.
	deadline := time.Now().Add(5 * time.Second)
	for st.store.rdb.SIsMember(ctx, st.store.InstancesKey, gone).Val() {
		if time.Now().After(deadline) {
			t.Fatalf("instance %s still listed with no calls", gone)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got, err := st.store.Get(ctx, kept.ID); err != nil || got.Owner != b.cfg.Instance || got.Status != StatusBridged {
		t.Fatalf("B's call: %+v, %v", got, err)
	}
	st.hangupChannel(kept.Second.UUID)
	if got := st.waitStatus(kept.ID, StatusCompleted); got.Owner != b.cfg.Instance {
		t.Fatalf("B's call ended with owner %s", got.Owner)
	}
}

// An instance back under its name after another adopted one of its calls
// (its Recover listed the call just before) leaves the call alone.
func TestRecoverSkipsAnAdoptedCall(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := h.create(CreateRequest{Mode: ModeSimultaneous, First: PartySpec{Number: "+15551230000"}, Second: PartySpec{Number: "+15558880000"}})
	h.waitCmd("originate")
	c = h.waitStatus(c.ID, StatusDialing)
	other := "other-" + ids.NewV4()
	if err := h.store.Adopt(context.Background(), c, other); err != nil {
		t.Fatal(err)
	}
	before := len(h.sw.commands())
	if err := h.e.recoverCall(context.Background(), c.ID, true); err != nil {
		t.Fatal(err)
	}
	got, err := h.store.Get(context.Background(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Owner != other || got.Version != c.Version || got.Status != StatusDialing || len(h.sw.commands()) != before {
		t.Fatalf("recovered a call it no longer owns: owner %s version %d (want %d) status %s, commands %q",
			got.Owner, got.Version, c.Version, got.Status, h.sw.commands()[before:])
	}
}

// Only calls on this instance's own FreeSWITCH nodes are adopted: a call of
// another deployment sharing the Redis (or on a node since removed) is left
// where it is, and its instance stays listed.
func TestAdoptOnlyOnOwnNodes(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	gone := h.goneInstance()
	calls := []*Call{h.goneCall(gone, "fs1"), h.goneCall(gone, "fs9")}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := h.store.Get(ctx, calls[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Owner == h.e.cfg.Instance {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the call on fs1 was not adopted: owner %s", got.Owner)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(2 * adoptEvery)
	if got, err := h.store.Get(ctx, calls[1].ID); err != nil || got.Owner != gone {
		t.Fatalf("the call on fs9: %+v, %v (want it left to %s)", got, err, gone)
	}
	if left, err := h.store.Gone(ctx); err != nil || !slices.Equal(left, []string{gone}) {
		t.Fatalf("Gone: %q, %v; want %s, whose call on fs9 is left", left, err, gone)
	}
}

// An instance shutting down (Service.Drain has begun) adopts nothing: what
// it took would only have to be adopted again.
func TestLeavingInstanceAdoptsNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	gone := h.goneInstance()
	h.e.Leave()
	c := h.goneCall(gone, "fs1")
	time.Sleep(3 * adoptEvery)
	if got, err := h.store.Get(ctx, c.ID); err != nil || got.Owner != gone {
		t.Fatalf("a leaving instance adopted %+v, %v", got, err)
	}
}

// goneInstance is the name of an instance that heartbeat once and is gone.
func (h *harness) goneInstance() string {
	h.t.Helper()
	gone := "gone-" + ids.NewV4()
	if err := h.store.Heartbeat(context.Background(), gone, time.Millisecond); err != nil {
		h.t.Fatal(err)
	}
	return gone
}

// goneCall is a call dialing on node whose owner is the instance gone.
func (h *harness) goneCall(gone, node string) *Call {
	h.t.Helper()
	c := h.create(CreateRequest{Mode: ModeSimultaneous, First: PartySpec{Number: "+15551230000"}, Second: PartySpec{Number: "+15558880000"}})
	c = h.waitStatus(c.ID, StatusDialing)
	c.Node = node
	if err := h.store.Adopt(context.Background(), c, gone); err != nil {
		h.t.Fatal(err)
	}
	return c
}

// The hangups heard of other instances' legs are forgotten after
// hangupMemory; a leg heard again is remembered from then.
func TestHangupsForgetOld(t *testing.T) {
	t.Parallel()
	var h hangups
	t0 := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	h.add(SwitchEvent{UUID: "a", Cause: "NORMAL_CLEARING", At: t0}, t0)
	h.add(SwitchEvent{UUID: "b", Cause: "USER_BUSY", At: t0.Add(time.Second)}, t0.Add(time.Second))
	h.add(SwitchEvent{UUID: "b", Cause: "NORMAL_UNSPECIFIED", At: t0.Add(50 * time.Second)}, t0.Add(50*time.Second))
	if ev, ok := h.get("a"); !ok || ev.Cause != "NORMAL_CLEARING" {
		t.Fatalf("a within the memory: %+v, %v", ev, ok)
	}
	later := t0.Add(hangupMemory + 2*time.Second)
	h.add(SwitchEvent{UUID: "c", Cause: "NORMAL_CLEARING", At: later}, later)
	if _, ok := h.get("a"); ok {
		t.Error("a remembered past the memory")
	}
	if ev, ok := h.get("b"); !ok || ev.Cause != "NORMAL_UNSPECIFIED" {
		t.Errorf("b, heard again 50 s in: %+v, %v", ev, ok)
	}
	if len(h.order) != 2 || len(h.byLeg) != 2 {
		t.Errorf("%d in order, %d by leg; want 2 and 2", len(h.order), len(h.byLeg))
	}
}

// RINGBACK_HEARTBEAT_TTL: 15 s unless set, and within 3 s to 5 min.
func TestLoadConfigHeartbeatTTL(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		env  string
		want time.Duration
		bad  bool
	}{
		{env: "", want: DefaultHeartbeatTTL},
		{env: "6s", want: 6 * time.Second},
		{env: "1s", bad: true},
		{env: "10m", bad: true},
		{env: "soon", bad: true},
	} {
		env := map[string]string{}
		if tt.env != "" {
			env["RINGBACK_HEARTBEAT_TTL"] = tt.env
		}
		l := config.NewLoader(config.MapLookup(env))
		c := LoadConfig(l)
		if err := l.Err(); (err != nil) != tt.bad || (err != nil && !strings.Contains(err.Error(), "RINGBACK_HEARTBEAT_TTL")) {
			t.Errorf("RINGBACK_HEARTBEAT_TTL=%q: error %v, want one: %v", tt.env, err, tt.bad)
			continue
		}
		if !tt.bad && c.HeartbeatTTL != tt.want {
			t.Errorf("RINGBACK_HEARTBEAT_TTL=%q: %s, want %s", tt.env, c.HeartbeatTTL, tt.want)
		}
	}
}

// An adopted call whose recovery fails (the switch did not answer) is
// recovered again at the next look: nothing else would, when its legs
// ended while nobody drove it.
func TestAdoptedCallRecoveredAgainAfterAFailure(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	gone := h.goneInstance()
	c := h.bridgedCall()
	// The far end hangs up unseen, and the first check of the switch fails.
	h.sw.mu.Lock()
	h.sw.gone = map[string]bool{c.Second.UUID: true}
	h.sw.existsFails = 1
	h.sw.mu.Unlock()
	if err := h.store.Adopt(context.Background(), c, gone); err != nil {
		t.Fatal(err)
	}
	h.waitCmd("hangup " + c.First.UUID + " NORMAL_CLEARING")
	h.sw.mu.Lock()
	defer h.sw.mu.Unlock()
	if h.sw.existsFails != 0 {
		t.Fatal("the switch was never asked")
	}
}
