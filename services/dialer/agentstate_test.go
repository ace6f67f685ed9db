package dialer

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	dialerv1 "github.com/ringback/ringback/proto/gen/go/ringback/dialer/v1"
	"github.com/ringback/ringback/services/internal/cache/cachetest"
	"github.com/ringback/ringback/services/internal/ids"
)

// agBase is the agents' clock in the store's tests (the store takes now
// from its callers).
var agBase = time.Date(2026, 3, 4, 15, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return agBase.Add(d) }

// readyAgent logs an agent in (wrap-up wrapS) and makes it READY at t.
func readyAgent(t testing.TB, s *AgentStore, id string, campaigns []string, wrapS int, t0 time.Time) {
	t.Helper()
	ctx := context.Background()
	if err := s.login(ctx, id, "acc-1", campaigns, wrapS, 1, t0); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.setSession(ctx, id, 1, "sess-"+id, false); err != nil || !ok {
		t.Fatalf("session: %v %v", ok, err)
	}
	if ok, err := s.joined(ctx, id, "sess-"+id, "1", t0); err != nil || !ok {
		t.Fatalf("joined: %v %v", ok, err)
	}
}

func mustState(t testing.TB, s *AgentStore, id string, now time.Time) agentLive {
	t.Helper()
	l, err := s.state(context.Background(), id, now)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func wantAgentState(t testing.TB, s *AgentStore, id string, now time.Time, want dialerv1.AgentState) agentLive {
	t.Helper()
	l := mustState(t, s, id, now)
	if l.state != want {
		t.Fatalf("agent %s at %v: %v, want %v (%+v)", id, now.Sub(agBase), l.state, want, l)
	}
	return l
}

func snapshot(t testing.TB, s *AgentStore, campaign string, now time.Time) AgentSnapshot {
	t.Helper()
	snap, err := s.Snapshot(context.Background(), campaign, now, true)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

// counts is a snapshot without its instants.
type counts struct{ loggedIn, ready, wrapUp, onCall, paused int }

func countsOf(s AgentSnapshot) counts {
	return counts{s.LoggedIn, s.Ready, len(s.WrapUpEnds), len(s.OnCallSince), s.Paused}
}

func TestAgentStateMachine(t *testing.T) {
	t.Parallel()
	s := NewAgentStore(cachetest.New(t))
	ctx := context.Background()
	camp, id := ids.NewV4(), ids.NewV4()
	want := func(now time.Time, c counts) {
		t.Helper()
		if got := countsOf(snapshot(t, s, camp, now)); got != c {
			t.Fatalf("snapshot at %v: %+v, want %+v", now.Sub(agBase), got, c)
		}
	}

	wantAgentState(t, s, id, at(0), dialerv1.AgentState_AGENT_STATE_LOGGED_OUT)
	if err := s.login(ctx, id, "acc-1", []string{camp}, 5, 1, at(0)); err != nil {
		t.Fatal(err)
	}
	wantAgentState(t, s, id, at(0), dialerv1.AgentState_AGENT_STATE_LOGGING_IN)
	want(at(0), counts{loggedIn: 1, paused: 1})
	if err := s.login(ctx, id, "acc-1", []string{camp}, 5, 2, at(0)); err != errStateLoggedIn {
		t.Fatalf("second login: %v", err)
	}
	// Only the session of this login, once joined, makes it READY.
	if ok, _ := s.setSession(ctx, id, 1, "sess-1", false); !ok {
		t.Fatal("session not taken")
	}
	if ok, _ := s.joined(ctx, id, "other-call", "1", at(time.Second)); ok {
		t.Fatal("another call's join made the agent ready")
	}
	if _, _, ok, _ := s.Claim(ctx, camp, "c-0", at(time.Second)); ok {
		t.Fatal("a logging-in agent was claimed")
	}
	if ok, _ := s.joined(ctx, id, "sess-1", "1", at(2*time.Second)); !ok {
		t.Fatal("session join refused")
	}
	l := wantAgentState(t, s, id, at(2*time.Second), dialerv1.AgentState_AGENT_STATE_READY)
	if l.session != "sess-1" || !l.since.Equal(at(2*time.Second)) {
		t.Fatalf("ready: %+v", l)
	}
	want(at(2*time.Second), counts{loggedIn: 1, ready: 1})

	// A customer: ON_CALL, then WRAP_UP for 5 s, then READY by itself.
	agent, room, ok, err := s.Claim(ctx, camp, "c-1", at(3*time.Second))
	if err != nil || !ok || agent != id || room != "agent-"+id {
		t.Fatalf("claim: %q %q %v %v", agent, room, ok, err)
	}
	l = wantAgentState(t, s, id, at(3*time.Second), dialerv1.AgentState_AGENT_STATE_ON_CALL)
	if l.call != "c-1" || l.campaign != camp {
		t.Fatalf("on call: %+v", l)
	}
	want(at(3*time.Second), counts{loggedIn: 1, onCall: 1})
	if _, _, ok, _ := s.Claim(ctx, camp, "c-2", at(3*time.Second)); ok {
		t.Fatal("an agent on a call was claimed")
	}
	// Claiming again for the same call is that agent still.
	if again, _, ok, _ := s.Claim(ctx, camp, "c-1", at(3*time.Second)); !ok || again != id {
		t.Fatalf("claim again: %q %v", again, ok)
	}
	if err := s.Release(ctx, id, "c-other", at(9*time.Second), false); err != nil {
		t.Fatal(err)
	}
	wantAgentState(t, s, id, at(9*time.Second), dialerv1.AgentState_AGENT_STATE_ON_CALL) // another call's release: nothing
	if err := s.Release(ctx, id, "c-1", at(10*time.Second), false); err != nil {
		t.Fatal(err)
	}
	l = wantAgentState(t, s, id, at(12*time.Second), dialerv1.AgentState_AGENT_STATE_WRAP_UP)
	if !l.wrapUntil.Equal(at(15*time.Second)) || l.taken != 1 {
		t.Fatalf("wrap-up: %+v", l)
	}
	snap := snapshot(t, s, camp, at(12*time.Second))
	if countsOf(snap) != (counts{loggedIn: 1, wrapUp: 1}) || !snap.WrapUpEnds[0].Equal(at(15*time.Second)) {
		t.Fatalf("snapshot in wrap-up: %+v", snap)
	}
	if _, _, ok, _ := s.Claim(ctx, camp, "c-2", at(14*time.Second)); ok {
		t.Fatal("an agent in its wrap-up was claimed")
	}
	l = wantAgentState(t, s, id, at(15*time.Second), dialerv1.AgentState_AGENT_STATE_READY)
	if !l.since.Equal(at(15 * time.Second)) {
		t.Fatalf("ready after the wrap-up since %v", l.since.Sub(agBase))
	}
	want(at(15*time.Second), counts{loggedIn: 1, ready: 1})

	// A pause asked during a call waits for the call and its wrap-up.
	if _, _, ok, _ := s.Claim(ctx, camp, "c-2", at(20*time.Second)); !ok {
		t.Fatal("ready agent after its wrap-up not claimed")
	}
	if err := s.pause(ctx, id, "lunch", at(21*time.Second)); err != nil {
		t.Fatal(err)
	}
	l = wantAgentState(t, s, id, at(21*time.Second), dialerv1.AgentState_AGENT_STATE_ON_CALL)
	if l.pending != "lunch" {
		t.Fatalf("pending pause: %+v", l)
	}
	if err := s.Release(ctx, id, "c-2", at(30*time.Second), false); err != nil {
		t.Fatal(err)
	}
	l = wantAgentState(t, s, id, at(31*time.Second), dialerv1.AgentState_AGENT_STATE_WRAP_UP)
	if l.pending != "lunch" || l.taken != 2 {
		t.Fatalf("wrap-up before the pause: %+v", l)
	}
	// Headed for a pause: counted paused, never free.
	want(at(31*time.Second), counts{loggedIn: 1, paused: 1})
	if _, _, ok, _ := s.Claim(ctx, camp, "c-3", at(40*time.Second)); ok {
		t.Fatal("an agent whose wrap-up ended in a pause was claimed")
	}
	l = wantAgentState(t, s, id, at(40*time.Second), dialerv1.AgentState_AGENT_STATE_PAUSED)
	if l.pause != "lunch" || !l.since.Equal(at(35*time.Second)) {
		t.Fatalf("paused after the wrap-up: %+v", l)
	}
	want(at(40*time.Second), counts{loggedIn: 1, paused: 1})

	// SetReady; a pause when READY is at once; SetReady again.
	if err := s.setReady(ctx, id, at(50*time.Second)); err != nil {
		t.Fatal(err)
	}
	wantAgentState(t, s, id, at(50*time.Second), dialerv1.AgentState_AGENT_STATE_READY)
	if err := s.setReady(ctx, id, at(51*time.Second)); err != nil {
		t.Fatalf("ready when ready: %v", err)
	}
	if err := s.pause(ctx, id, "training", at(52*time.Second)); err != nil {
		t.Fatal(err)
	}
	if l = wantAgentState(t, s, id, at(52*time.Second), dialerv1.AgentState_AGENT_STATE_PAUSED); l.pause != "training" {
		t.Fatalf("paused: %+v", l)
	}
	want(at(52*time.Second), counts{loggedIn: 1, paused: 1})
	if err := s.setReady(ctx, id, at(53*time.Second)); err != nil {
		t.Fatal(err)
	}

	// SetReady in a wrap-up ends it now.
	if _, _, ok, _ := s.Claim(ctx, camp, "c-4", at(60*time.Second)); !ok {
		t.Fatal("not claimed")
	}
	if err := s.Release(ctx, id, "c-4", at(61*time.Second), false); err != nil {
		t.Fatal(err)
	}
	if err := s.setReady(ctx, id, at(62*time.Second)); err != nil {
		t.Fatal(err)
	}
	if l = wantAgentState(t, s, id, at(62*time.Second), dialerv1.AgentState_AGENT_STATE_READY); !l.since.Equal(at(62 * time.Second)) {
		t.Fatalf("ready: %+v", l)
	}
	// A pause in a wrap-up is at once.
	if _, _, ok, _ := s.Claim(ctx, camp, "c-5", at(63*time.Second)); !ok {
		t.Fatal("not claimed")
	}
	if err := s.Release(ctx, id, "c-5", at(64*time.Second), false); err != nil {
		t.Fatal(err)
	}
	if err := s.pause(ctx, id, "break", at(65*time.Second)); err != nil {
		t.Fatal(err)
	}
	wantAgentState(t, s, id, at(65*time.Second), dialerv1.AgentState_AGENT_STATE_PAUSED)

	// Logout: LOGGED_OUT, out of every set; pause and ready refused.
	sess, account, err := s.logout(ctx, id, at(70*time.Second))
	if err != nil || sess != "sess-1" || account != "acc-1" {
		t.Fatalf("logout: %q %q %v", sess, account, err)
	}
	wantAgentState(t, s, id, at(70*time.Second), dialerv1.AgentState_AGENT_STATE_LOGGED_OUT)
	want(at(70*time.Second), counts{})
	if err := s.pause(ctx, id, "x", at(71*time.Second)); err != errStateInvalid {
		t.Fatalf("pause logged out: %v", err)
	}
	if err := s.setReady(ctx, id, at(71*time.Second)); err != errStateInvalid {
		t.Fatalf("ready logged out: %v", err)
	}
	// The old session's end changes nothing.
	if ok, _ := s.sessionEnded(ctx, id, "sess-1", "1"); ok {
		t.Fatal("an old session's end acted")
	}
}

func TestAgentSessionEvents(t *testing.T) {
	t.Parallel()
	s := NewAgentStore(cachetest.New(t))
	ctx := context.Background()
	tests := []struct {
		name string
		run  func(t *testing.T, id, camp string)
		want dialerv1.AgentState
	}{
		{"joined before CreateCall answered", func(t *testing.T, id, camp string) {
			// The event can beat Login's own bookkeeping: the login number
			// says it is this login's session.
			if ok, _ := s.joined(ctx, id, "sess-a", "1", at(time.Second)); !ok {
				t.Fatal("join refused")
			}
			if ok, _ := s.setSession(ctx, id, 1, "sess-a", false); !ok {
				t.Fatal("session refused")
			}
		}, dialerv1.AgentState_AGENT_STATE_READY},
		{"another login's join", func(t *testing.T, id, camp string) {
			if ok, _ := s.joined(ctx, id, "sess-old", "0", at(time.Second)); ok {
				t.Fatal("an older login's session made the agent ready")
			}
		}, dialerv1.AgentState_AGENT_STATE_LOGGING_IN},
		{"session failed", func(t *testing.T, id, camp string) {
			_, _ = s.setSession(ctx, id, 1, "sess-b", false)
			if ok, _ := s.sessionEnded(ctx, id, "sess-b", "1"); !ok {
				t.Fatal("session end ignored")
			}
		}, dialerv1.AgentState_AGENT_STATE_LOGGED_OUT},
		{"session ended during a customer call", func(t *testing.T, id, camp string) {
			_, _ = s.setSession(ctx, id, 1, "sess-c", false)
			_, _ = s.joined(ctx, id, "sess-c", "1", at(time.Second))
			if _, _, ok, _ := s.Claim(ctx, camp, "cust-"+id, at(2*time.Second)); !ok {
				t.Fatal("not claimed")
			}
			if ok, _ := s.sessionEnded(ctx, id, "sess-c", "1"); !ok {
				t.Fatal("session end ignored")
			}
			// The customer's call, ending later, changes nothing.
			if a, err := s.callEnded(ctx, camp, "cust-"+id, at(3*time.Second)); err != nil || a != "" {
				t.Fatalf("call end released %q %v", a, err)
			}
		}, dialerv1.AgentState_AGENT_STATE_LOGGED_OUT},
		{"session call ended at once", func(t *testing.T, id, camp string) {
			if ok, _ := s.setSession(ctx, id, 1, "sess-d", true); ok {
				t.Fatal("an ended call taken for a session")
			}
		}, dialerv1.AgentState_AGENT_STATE_LOGGED_OUT},
		{"login without a call", func(t *testing.T, id, camp string) {
			if err := s.abortLogin(ctx, id, 1); err != nil {
				t.Fatal(err)
			}
		}, dialerv1.AgentState_AGENT_STATE_LOGGED_OUT},
		{"logged out while logging in", func(t *testing.T, id, camp string) {
			if _, _, err := s.logout(ctx, id, at(time.Second)); err != nil {
				t.Fatal(err)
			}
			if ok, _ := s.setSession(ctx, id, 1, "sess-e", false); ok {
				t.Fatal("session taken after the logout")
			}
		}, dialerv1.AgentState_AGENT_STATE_LOGGED_OUT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id, camp := ids.NewV4(), ids.NewV4()
			if err := s.login(ctx, id, "acc-1", []string{camp}, 0, 1, at(0)); err != nil {
				t.Fatal(err)
			}
			tt.run(t, id, camp)
			wantAgentState(t, s, id, at(10*time.Second), tt.want)
		})
	}
}

func TestAgentClaimLongestIdle(t *testing.T) {
	t.Parallel()
	s := NewAgentStore(cachetest.New(t))
	ctx := context.Background()
	camp := ids.NewV4()
	a, b, c, d := "a-"+ids.NewV4(), "b-"+ids.NewV4(), "c-"+ids.NewV4(), "d-"+ids.NewV4()
	readyAgent(t, s, b, []string{camp}, 10, at(2*time.Second))
	readyAgent(t, s, a, []string{camp}, 10, at(3*time.Second))
	readyAgent(t, s, c, []string{camp}, 10, at(1*time.Second))
	// d: ready first, then a call and a wrap-up that ended at 40 s.
	readyAgent(t, s, d, []string{camp}, 10, at(0))
	if got, _, _, _ := s.Claim(ctx, camp, "first", at(20*time.Second)); got != d {
		t.Fatalf("first claim %s, want d", got)
	}
	if err := s.Release(ctx, d, "first", at(30*time.Second), false); err != nil {
		t.Fatal(err)
	}
	var order []string
	for i := range 5 {
		got, _, ok, err := s.Claim(ctx, camp, fmt.Sprint("call-", i), at(50*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			order = append(order, got)
		}
	}
	if want := []string{c, b, a, d}; !slices.Equal(order, want) {
		t.Fatalf("claimed %v, want %v (longest idle first; the wrap-up's end is when it became ready)", order, want)
	}

	// A call that never reached its agent gives it back in its place.
	if err := s.Release(ctx, b, "call-1", at(51*time.Second), true); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(ctx, c, "call-0", at(52*time.Second), false); err != nil { // c: wrap-up till 62 s
		t.Fatal(err)
	}
	if err := s.Release(ctx, a, "call-2", at(53*time.Second), true); err != nil {
		t.Fatal(err)
	}
	l := wantAgentState(t, s, b, at(60*time.Second), dialerv1.AgentState_AGENT_STATE_READY)
	if !l.since.Equal(at(2*time.Second)) || l.taken != 0 {
		t.Fatalf("given back: %+v, want ready since 2s, no call taken", l)
	}
	order = nil
	for i := range 3 {
		if got, _, ok, _ := s.Claim(ctx, camp, fmt.Sprint("again-", i), at(70*time.Second)); ok {
			order = append(order, got)
		}
	}
	if want := []string{b, a, c}; !slices.Equal(order, want) {
		t.Fatalf("claimed %v, want %v", order, want)
	}
}

// A call claims first the agents that count for its campaign: with a and
// b dialing, a's call gets the shared agent a counts on, though the one b
// counts on has been free longer; once a has none left, b's (an answered
// person is better served than abandoned); with b no longer dialing, every
// shared agent counts for a again.
func TestAgentClaimPrefersItsOwnAgents(t *testing.T) {
	t.Parallel()
	s := NewAgentStore(cachetest.New(t))
	ctx := context.Background()
	a, b := "00000000-0000-4000-8000-00000000000a", "00000000-0000-4000-8000-00000000000b"
	// The split, computed apart from the scripts: the campaign with the
	// higher sha1 of agent|campaign.
	owner := func(id string) string {
		ha, hb := sha1.Sum([]byte(id+"|"+a)), sha1.Sum([]byte(id+"|"+b))
		if hex.EncodeToString(ha[:]) > hex.EncodeToString(hb[:]) {
			return a
		}
		return b
	}
	// More of b's than the claim reads at once (16), so that it pages.
	var ofA, ofB []string
	for i := 0; len(ofA) < 2 || len(ofB) < 20; i++ {
		id := fmt.Sprintf("shared-%02d", i)
		if owner(id) == a && len(ofA) < 2 {
			ofA = append(ofA, id)
		} else if owner(id) == b && len(ofB) < 20 {
			ofB = append(ofB, id)
		}
	}
	// b's agents free longest.
	for i, id := range ofB {
		readyAgent(t, s, id, []string{a, b}, 10, at(time.Duration(i)*time.Millisecond))
	}
	readyAgent(t, s, ofA[0], []string{a, b}, 10, at(2*time.Second))
	readyAgent(t, s, ofA[1], []string{a, b}, 10, at(3*time.Second))
	now := at(10 * time.Second)
	snapshot(t, s, a, now) // both dialing
	snapshot(t, s, b, now)
	claim := func(campaign, call string, now time.Time) string {
		t.Helper()
		got, _, ok, err := s.Claim(ctx, campaign, call, now)
		if err != nil || !ok {
			t.Fatalf("claim %s for %s: %v %v", call, campaign, ok, err)
		}
		return got
	}
	if got := []string{claim(a, "a1", now), claim(a, "a2", now), claim(a, "a3", now)}; !slices.Equal(got, []string{ofA[0], ofA[1], ofB[0]}) {
		t.Fatalf("a's claims: %v, want its own %v first, then b's %s", got, ofA, ofB[0])
	}
	if got := claim(b, "b1", now); got != ofB[1] {
		t.Fatalf("b's claim: %s, want %s", got, ofB[1])
	}
	// b stops dialing: all four count for a; back in line by their wait.
	for i, call := range []string{"a1", "a2", "a3", "b1"} {
		agent := []string{ofA[0], ofA[1], ofB[0], ofB[1]}[i]
		if err := s.Release(ctx, agent, call, at(11*time.Second), true); err != nil {
			t.Fatal(err)
		}
	}
	later := now.Add(pacingLive + time.Second)
	snapshot(t, s, a, later)
	if got := claim(a, "a4", later); got != ofB[0] {
		t.Fatalf("a's claim with b not dialing: %s, want %s, free longest", got, ofB[0])
	}
}

// Many replicas claiming at once never get the same agent.
func TestAgentClaimConcurrent(t *testing.T) {
	t.Parallel()
	c := cachetest.New(t)
	ctx := context.Background()
	camp := ids.NewV4()
	const agents, claimers, rounds = 60, 8, 3
	s := NewAgentStore(c)
	for i := range agents {
		readyAgent(t, s, fmt.Sprintf("agent-%03d", i), []string{camp}, 0, at(time.Duration(i)*time.Millisecond))
	}
	for round := range rounds {
		var (
			mu    sync.Mutex
			got   = map[string]string{} // agent -> call
			calls []string
			wg    sync.WaitGroup
		)
		for g := range claimers {
			// Each claimer is a replica's store.
			rs := NewAgentStore(c)
			wg.Go(func() {
				for i := range agents {
					call := fmt.Sprintf("r%d-g%d-%d", round, g, i)
					agent, _, ok, err := rs.Claim(ctx, camp, call, at(time.Hour))
					if err != nil {
						t.Error(err)
						return
					}
					if !ok {
						continue
					}
					mu.Lock()
					if other, dup := got[agent]; dup {
						t.Errorf("agent %s claimed for %s and %s", agent, other, call)
					}
					got[agent] = call
					calls = append(calls, call)
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(got) != agents {
			t.Fatalf("round %d: %d agents claimed, want %d", round, len(got), agents)
		}
		if snap := snapshot(t, s, camp, at(time.Hour)); countsOf(snap) != (counts{loggedIn: agents, onCall: agents}) {
			t.Fatalf("round %d: %+v", round, countsOf(snap))
		}
		// Released at once, concurrently too.
		for agent, call := range got {
			wg.Go(func() {
				if err := s.Release(ctx, agent, call, at(time.Hour), round%2 == 0); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if snap := snapshot(t, s, camp, at(time.Hour)); countsOf(snap) != (counts{loggedIn: agents, ready: agents}) {
			t.Fatalf("round %d after the releases: %+v", round, countsOf(snap))
		}
	}
}

func TestAgentSnapshotCampaigns(t *testing.T) {
	t.Parallel()
	s := NewAgentStore(cachetest.New(t))
	ctx := context.Background()
	x, y, z := ids.NewV4(), ids.NewV4(), ids.NewV4()
	// Four agents of x; "both" is also y's.
	readyAgent(t, s, "ready", []string{x}, 10, at(0))
	readyAgent(t, s, "both", []string{x, y}, 10, at(time.Second))
	readyAgent(t, s, "idle", []string{x}, 10, at(2*time.Second))
	if err := s.login(ctx, "paused", "acc-1", []string{x}, 10, 1, at(0)); err != nil {
		t.Fatal(err)
	}
	// The longest idle ("ready") takes a call and ends it at 5 s: wrap-up
	// until 15 s.
	if a, _, _, err := s.Claim(ctx, x, "w", at(3*time.Second)); err != nil || a != "ready" {
		t.Fatalf("claimed %q %v", a, err)
	}
	if err := s.Release(ctx, "ready", "w", at(5*time.Second), false); err != nil {
		t.Fatal(err)
	}
	// "both" is on a call of y: on call in x too.
	if a, _, _, _ := s.Claim(ctx, y, "b", at(6*time.Second)); a != "both" {
		t.Fatalf("y's claim took %q", a)
	}
	snap := snapshot(t, s, x, at(10*time.Second))
	if countsOf(snap) != (counts{loggedIn: 4, ready: 1, wrapUp: 1, onCall: 1, paused: 1}) {
		t.Fatalf("x: %+v", countsOf(snap))
	}
	if !snap.WrapUpEnds[0].Equal(at(15*time.Second)) || !snap.OnCallSince[0].Equal(at(6*time.Second)) {
		t.Fatalf("x's instants: %+v", snap)
	}
	// y dials for agents too now: "both" counts in one of them.
	sy, sx := snapshot(t, s, y, at(10*time.Second)), snapshot(t, s, x, at(10*time.Second))
	xElse := sx.Elsewhere
	if sx.Elsewhere+sy.Elsewhere != 1 || countsOf(sy) != (counts{loggedIn: 1 - sy.Elsewhere, onCall: 1 - sy.Elsewhere}) ||
		countsOf(sx) != (counts{loggedIn: 4 - xElse, ready: 1, wrapUp: 1, onCall: 1 - xElse, paused: 1}) {
		t.Fatalf("x and y both dialing: x %+v, y %+v; want the shared agent in one", sx, sy)
	}
	// After the wrap-up, that agent is ready.
	if got := countsOf(snapshot(t, s, x, at(15*time.Second))); got != (counts{loggedIn: 4 - xElse, ready: 2, onCall: 1 - xElse, paused: 1}) {
		t.Fatalf("x after the wrap-up: %+v", got)
	}

	// New campaigns for logged-in agents move them between the sets.
	if err := s.configure(ctx, "both", []string{y, z}, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.configure(ctx, "idle", []string{z}, 0); err != nil {
		t.Fatal(err)
	}
	// (y last dialed at 10 s: at 20 s it no longer does, until it reads
	// its agents again; z starts.)
	sx, sy = snapshot(t, s, x, at(20*time.Second)), snapshot(t, s, y, at(20*time.Second))
	sz := snapshot(t, s, z, at(20*time.Second))
	zElse := sz.Elsewhere
	for _, tt := range []struct {
		campaign string
		got      AgentSnapshot
		want     counts
	}{
		{x, sx, counts{loggedIn: 2, ready: 1, paused: 1}},
		{y, sy, counts{loggedIn: 1, onCall: 1}},
		{z, sz, counts{loggedIn: 2 - zElse, ready: 1, onCall: 1 - zElse}},
	} {
		if got := countsOf(tt.got); got != tt.want {
			t.Errorf("after the new campaigns, %s: %+v, want %+v", tt.campaign, got, tt.want)
		}
	}
	// Its call ends: no wrap-up now (wrap_s 0), ready in y and z.
	if err := s.Release(ctx, "both", "b", at(21*time.Second), false); err != nil {
		t.Fatal(err)
	}
	if got := countsOf(snapshot(t, s, z, at(21*time.Second))); got != (counts{loggedIn: 2 - zElse, ready: 2 - zElse}) {
		t.Fatalf("z: %+v", got)
	}
	// Configuring a logged-out agent changes nothing in the sets.
	if err := s.configure(ctx, "nobody", []string{x}, 0); err != nil {
		t.Fatal(err)
	}
	if got := countsOf(snapshot(t, s, x, at(21*time.Second))); got != (counts{loggedIn: 2, ready: 1, paused: 1}) {
		t.Fatalf("x: %+v", got)
	}
}

// Agents shared by campaigns dialing at once count in one of them each:
// together the campaigns count each agent once, split about evenly; a
// campaign that starts takes only agents from the others (none moves
// between those), and one that stops dialing gives its agents back.
func TestAgentSnapshotSharedAgents(t *testing.T) {
	t.Parallel()
	s := NewAgentStore(cachetest.New(t))
	ctx := context.Background()
	a, b, c := "00000000-0000-4000-8000-00000000000a", "00000000-0000-4000-8000-00000000000b", "00000000-0000-4000-8000-00000000000c"
	const shared = 40
	for i := range shared {
		readyAgent(t, s, fmt.Sprintf("shared-%02d", i), []string{a, b}, 10, at(0))
	}
	readyAgent(t, s, "a-only-1", []string{a}, 10, at(0))
	readyAgent(t, s, "a-only-2", []string{a}, 10, at(0))
	ready := func(campaign string, now time.Duration) AgentSnapshot {
		t.Helper()
		snap := snapshot(t, s, campaign, at(now))
		if snap.LoggedIn != snap.Ready || snap.Paused != 0 || len(snap.OnCallSince)+len(snap.WrapUpEnds) != 0 {
			t.Fatalf("%s: %+v, want its agents ready", campaign, snap)
		}
		return snap
	}
	// a alone dials: every agent of a is a's.
	if snap := ready(a, time.Second); snap.Ready != shared+2 || snap.Elsewhere != 0 {
		t.Fatalf("a alone: %+v", snap)
	}
	// b starts: the shared agents split.
	sb := ready(b, time.Second)
	sa := ready(a, time.Second)
	if sa.Ready+sb.Ready != shared+2 || sa.Elsewhere+sb.Elsewhere != shared || sb.Ready < shared/4 || sb.Ready > 3*shared/4 {
		t.Fatalf("a and b: a %+v, b %+v; want the %d shared agents split, each counted once", sa, sb, shared)
	}
	// c starts, every shared agent being c's too: c takes agents from a
	// and b, none moves from one to the other.
	for i := range shared {
		if err := s.configure(ctx, fmt.Sprintf("shared-%02d", i), []string{a, b, c}, 10); err != nil {
			t.Fatal(err)
		}
	}
	sc := ready(c, 2*time.Second)
	sa2, sb2 := ready(a, 2*time.Second), ready(b, 2*time.Second)
	if sa2.Ready+sb2.Ready+sc.Ready != shared+2 || sa2.Ready > sa.Ready || sb2.Ready > sb.Ready || sc.Ready == 0 {
		t.Fatalf("a, b, c: %d, %d, %d (a and b had %d, %d): want c's from a and b only, each agent once",
			sa2.Ready, sb2.Ready, sc.Ready, sa.Ready, sb.Ready)
	}
	// b and c stop dialing: 5 s on, a has them all again.
	later := 2*time.Second + pacingLive + time.Millisecond
	if snap := ready(a, later); snap.Ready != shared+2 || snap.Elsewhere != 0 {
		t.Fatalf("a after b and c stopped: %+v", snap)
	}
	// c reads its agents with nothing due (out of its hours, say): it sees
	// those it would win, and takes none from a.
	idle, err := s.Snapshot(ctx, c, at(later), false)
	if err != nil {
		t.Fatal(err)
	}
	if idle.Ready == 0 || idle.Ready == shared {
		t.Fatalf("c, not dialing: %+v, want the agents it would win from a", idle)
	}
	if snap := ready(a, later); snap.Ready != shared+2 {
		t.Fatalf("a with c not dialing: %+v, want all its agents", snap)
	}
	// A shared agent that logs out leaves the shared set.
	if _, err := logoutScript.Run(ctx, s.rdb, nil, s.p, "shared-00", ms(at(10*time.Second))).Result(); err != nil {
		t.Fatal(err)
	}
	if n, err := s.rdb.SCard(ctx, s.p+"shared:"+a).Result(); err != nil || n != shared-1 {
		t.Fatalf("shared agents of a after a logout: %d %v", n, err)
	}
}

func TestAgentWaitingCalls(t *testing.T) {
	t.Parallel()
	s := NewAgentStore(cachetest.New(t))
	ctx := context.Background()
	camp := ids.NewV4()
	wc := func(call string, answered time.Duration) waitingCall {
		return waitingCall{campaign: camp, call: call, account: "acc-1", answered: at(answered), deadline: at(answered + 2*time.Second)}
	}
	// No agent: the calls wait.
	for i, call := range []string{"w1", "w2", "w3"} {
		r, err := s.await(ctx, wc(call, time.Duration(i)*100*time.Millisecond), at(time.Duration(i)*100*time.Millisecond), queueLimits{})
		if err != nil || r.kind != "waiting" {
			t.Fatalf("await %s: %+v %v", call, r, err)
		}
	}
	if r, _ := s.await(ctx, wc("w1", 0), at(300*time.Millisecond), queueLimits{}); r.kind != "known" {
		t.Fatalf("await again: %+v", r)
	}
	if c, _ := s.waitingCampaigns(ctx); !slices.Equal(c, []string{camp}) {
		t.Fatalf("waiting campaigns %v", c)
	}
	// An agent: a new call waits behind the others, and the oldest is served.
	readyAgent(t, s, "ag-1", []string{camp}, 0, at(400*time.Millisecond))
	if r, _ := s.await(ctx, wc("w4", 500*time.Millisecond), at(500*time.Millisecond), queueLimits{}); r.kind != "waiting" {
		t.Fatalf("new call with others waiting: %+v", r)
	}
	m, err := s.match(ctx, camp, at(600*time.Millisecond), 10)
	pairs := m.pairs
	if err != nil || m.expired != 0 || len(m.left) != 0 || len(pairs) != 1 || pairs[0].w.call != "w1" || pairs[0].agent != "ag-1" || pairs[0].room != "agent-ag-1" {
		t.Fatalf("match: %+v %v", m, err)
	}
	if w := pairs[0].w; w.account != "acc-1" || !w.answered.Equal(at(0)) || !w.deadline.Equal(at(2*time.Second)) {
		t.Fatalf("matched call %+v", w)
	}
	// w2 hangs up while waiting; w3 is abandoned; w4's deadline passes.
	if _, err := s.callEnded(ctx, camp, "w2", at(time.Second)); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.dropWaiting(ctx, camp, "w3"); err != nil || !ok {
		t.Fatalf("drop: %v %v", ok, err)
	}
	if ok, _ := s.dropWaiting(ctx, camp, "w3"); ok {
		t.Fatal("dropped twice")
	}
	if err := s.Release(ctx, "ag-1", "w1", at(time.Second), false); err != nil {
		t.Fatal(err)
	}
	m, err = s.match(ctx, camp, at(2600*time.Millisecond), 10)
	if err != nil || m.expired != 1 || len(m.pairs) != 0 || len(m.left) != 0 {
		t.Fatalf("match after the deadline: %+v %v", m, err)
	}
	wantAgentState(t, s, "ag-1", at(3*time.Second), dialerv1.AgentState_AGENT_STATE_READY)
	if c, _ := s.waitingCampaigns(ctx); len(c) != 0 {
		t.Fatalf("waiting campaigns %v", c)
	}
	// A free agent and nobody waiting: claimed at once.
	if r, _ := s.await(ctx, wc("w5", 3*time.Second), at(3*time.Second), queueLimits{}); r.kind != "claimed" || r.agent != "ag-1" {
		t.Fatalf("await with a free agent: %+v", r)
	}
	if r, _ := s.await(ctx, wc("w5", 3*time.Second), at(3*time.Second), queueLimits{}); r.kind != "dup" || r.agent != "ag-1" {
		t.Fatalf("await again: %+v", r)
	}
	// Requeued only before its deadline.
	if ok, _ := s.requeue(ctx, wc("w6", 3*time.Second), at(4*time.Second)); !ok {
		t.Fatal("not requeued")
	}
	if ok, _ := s.requeue(ctx, wc("w7", 3*time.Second), at(6*time.Second)); ok {
		t.Fatal("requeued past its deadline")
	}
}

// A queue whose callers leave when it is empty: while an agent of the
// campaign is logged in and unpaused (on a call counts) they wait; once the
// last pauses or logs out, the next look drops them for the router to turn
// away, and only them: a queue that keeps its callers, and a paced
// campaign's answered calls, wait on.
func TestAgentQueueLeavesWhenEmpty(t *testing.T) {
	t.Parallel()
	s := NewAgentStore(cachetest.New(t))
	ctx := context.Background()
	camp := ids.NewV4()
	readyAgent(t, s, "ag-1", []string{camp}, 0, at(0))
	if _, _, ok, err := s.Claim(ctx, camp, "c0", at(time.Second)); !ok || err != nil {
		t.Fatalf("claim: %v %v", ok, err)
	}
	lim := queueLimits{turnAwayWhenEmpty: true}
	for i, w := range []waitingCall{
		{call: "leaves", queue: true, leaveEmpty: true},
		{call: "stays", queue: true},
		{call: "paced"},
		{call: "hangs-up", queue: true, leaveEmpty: true},
	} {
		w.campaign, w.account = camp, "acc-1"
		w.answered, w.deadline = at(2*time.Second+time.Duration(i)*time.Millisecond), at(time.Minute+time.Duration(i)*time.Millisecond)
		if r, err := s.await(ctx, w, w.answered, lim); err != nil || r.kind != "waiting" {
			t.Fatalf("await %s: %+v %v", w.call, r, err)
		}
	}
	m, err := s.match(ctx, camp, at(3*time.Second), 10)
	if err != nil || m.expired != 0 || len(m.left) != 0 || len(m.pairs) != 0 {
		t.Fatalf("agent on a call: %+v %v", m, err)
	}
	// One hangs up while waiting: forgotten, it is not turned away.
	if _, err := s.callEnded(ctx, camp, "hangs-up", at(3*time.Second)); err != nil {
		t.Fatal(err)
	}
	// The agent pauses during its call: once the call ends, it is gone.
	if err := s.pause(ctx, "ag-1", "lunch", at(4*time.Second)); err != nil {
		t.Fatal(err)
	}
	if m, err := s.match(ctx, camp, at(4*time.Second), 10); err != nil || len(m.left) != 0 {
		t.Fatalf("pause pending: %+v %v", m, err)
	}
	if err := s.Release(ctx, "ag-1", "c0", at(5*time.Second), false); err != nil {
		t.Fatal(err)
	}
	wantAgentState(t, s, "ag-1", at(5*time.Second), dialerv1.AgentState_AGENT_STATE_PAUSED)
	m, err = s.match(ctx, camp, at(5*time.Second), 10)
	if err != nil || len(m.left) != 1 || len(m.pairs) != 0 {
		t.Fatalf("empty: %+v %v", m, err)
	}
	left := m.left[0]
	if left.call != "leaves" || !left.queue || !left.leaveEmpty || left.account != "acc-1" || !left.deadline.Equal(at(time.Minute)) {
		t.Fatalf("left %+v", left)
	}
	if n, _ := s.WaitingCalls(ctx, camp); n != 2 {
		t.Fatalf("waiting after the empty queue: %d, want 2", n)
	}
	if m, _ := s.match(ctx, camp, at(5*time.Second), 10); len(m.left) != 0 {
		t.Fatalf("left twice: %+v", m)
	}
	// Origination could not be told: requeued, it is turned away again.
	if ok, err := s.requeue(ctx, left, at(6*time.Second)); err != nil || !ok {
		t.Fatalf("requeue: %v %v", ok, err)
	}
	if m, _ := s.match(ctx, camp, at(6*time.Second), 10); len(m.left) != 1 || m.left[0] != left {
		t.Fatalf("requeued, then: %+v", m)
	}
	// Back from lunch: the queue's oldest waiting call takes the agent.
	if err := s.setReady(ctx, "ag-1", at(7*time.Second)); err != nil {
		t.Fatal(err)
	}
	m, err = s.match(ctx, camp, at(7*time.Second), 10)
	if err != nil || len(m.left) != 0 || len(m.pairs) != 1 || m.pairs[0].w.call != "stays" {
		t.Fatalf("agent back: %+v %v", m, err)
	}
	if n, err := s.rdb.Exists(ctx, s.p+"leavers:"+camp).Result(); err != nil || n != 0 {
		t.Fatalf("leavers left behind: %d %v", n, err)
	}
}

// A campaign's live view: its agents by state (a wrap-up that has ended
// counts as ready; logging in and paused as not ready) and its waiting
// calls with the longest wait.
func TestAgentLiveCounts(t *testing.T) {
	t.Parallel()
	s := NewAgentStore(cachetest.New(t))
	ctx := context.Background()
	camp := ids.NewV4()
	if l, err := s.live(ctx, camp, at(0)); err != nil || l.agents.GetLoggedIn() != 0 || l.waiting != 0 || l.longest != 0 {
		t.Fatalf("nobody: %+v %v", l, err)
	}
	readyAgent(t, s, "wraps", []string{camp}, 30, at(0))
	readyAgent(t, s, "talks", []string{camp}, 0, at(time.Millisecond))
	readyAgent(t, s, "idle", []string{camp}, 0, at(2*time.Millisecond))
	readyAgent(t, s, "lunch", []string{camp}, 0, at(3*time.Millisecond))
	if err := s.login(ctx, "ringing", "acc-1", []string{camp}, 0, 1, at(0)); err != nil {
		t.Fatal(err)
	}
	if a, _, ok, err := s.Claim(ctx, camp, "c1", at(time.Second)); !ok || err != nil || a != "wraps" {
		t.Fatalf("claim c1: %s %v %v", a, ok, err)
	}
	if err := s.Release(ctx, "wraps", "c1", at(time.Second), false); err != nil {
		t.Fatal(err)
	}
	if a, _, ok, err := s.Claim(ctx, camp, "c2", at(2*time.Second)); !ok || err != nil || a != "talks" {
		t.Fatalf("claim c2: %s %v %v", a, ok, err)
	}
	if err := s.pause(ctx, "lunch", "lunch", at(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	for _, w := range []waitingCall{{call: "w1", answered: at(5 * time.Second)}, {call: "w2", answered: at(8 * time.Second), queue: true}} {
		w.campaign, w.account, w.deadline = camp, "acc-1", at(time.Minute)
		if ok, err := s.requeue(ctx, w, w.answered); !ok || err != nil {
			t.Fatalf("wait %s: %v %v", w.call, ok, err)
		}
	}
	want := func(now time.Duration, ready, wrap int64) {
		t.Helper()
		l, err := s.live(ctx, camp, at(now))
		if err != nil {
			t.Fatal(err)
		}
		a := l.agents
		if a.GetLoggedIn() != 5 || a.GetReady() != ready || a.GetWrapUp() != wrap || a.GetOnCall() != 1 || a.GetNotReady() != 2 ||
			l.waiting != 2 || l.longest != now-5*time.Second {
			t.Fatalf("at %v: %v, %d waiting, longest %v", now, a, l.waiting, l.longest)
		}
	}
	want(10*time.Second, 1, 1)
	want(40*time.Second, 2, 0) // the wrap-up ended at 31 s
}

// The agents' cost in Redis, 100 agents of one campaign: a claim and its
// release (two scripts, what a connected call costs), and the snapshot
// pacing takes every tick; then with every agent shared with another
// campaign dialing.
func BenchmarkAgentStore(b *testing.B) {
	c := cachetest.New(b)
	s := NewAgentStore(c)
	ctx := context.Background()
	camp := ids.NewV4()
	for i := range 100 {
		readyAgent(b, s, fmt.Sprintf("agent-%03d", i), []string{camp}, 0, at(time.Duration(i)*time.Millisecond))
	}
	// A third of them on calls, a third in wrap-ups: every set has members.
	for i := range 33 {
		if _, _, ok, _ := s.Claim(ctx, camp, fmt.Sprint("held-", i), at(time.Second)); !ok {
			b.Fatal("not claimed")
		}
	}
	s2 := NewAgentStore(c)
	for i := range 33 {
		a, _, ok, _ := s2.Claim(ctx, camp, fmt.Sprint("wrap-", i), at(time.Second))
		if !ok {
			b.Fatal("not claimed")
		}
		if err := s2.configure(ctx, a, []string{camp}, 3600); err != nil {
			b.Fatal(err)
		}
		if err := s2.Release(ctx, a, fmt.Sprint("wrap-", i), at(time.Second), false); err != nil {
			b.Fatal(err)
		}
	}
	now := at(2 * time.Second)
	claimRelease := func(prefix string) func(b *testing.B) {
		return func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				call := fmt.Sprint(prefix, i)
				agent, _, ok, err := s.Claim(ctx, camp, call, now)
				if err != nil || !ok {
					b.Fatalf("claim: %v %v", ok, err)
				}
				if err := s.Release(ctx, agent, call, now, true); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	b.Run("ClaimRelease", claimRelease("b-"))
	b.Run("Snapshot", func(b *testing.B) {
		for b.Loop() {
			snap, err := s.Snapshot(ctx, camp, now, true)
			if err != nil || snap.LoggedIn != 100 {
				b.Fatalf("%+v %v", snap, err)
			}
		}
	})
	// Every agent is another dialing campaign's too: the snapshot decides,
	// per agent, which of the two counts it.
	other := ids.NewV4()
	for i := range 100 {
		wrap := 0
		if l := mustState(b, s, fmt.Sprintf("agent-%03d", i), now); l.state == dialerv1.AgentState_AGENT_STATE_WRAP_UP {
			wrap = 3600
		}
		if err := s.configure(ctx, fmt.Sprintf("agent-%03d", i), []string{camp, other}, wrap); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := s.Snapshot(ctx, other, now, true); err != nil {
		b.Fatal(err)
	}
	b.Run("SnapshotShared", func(b *testing.B) {
		for b.Loop() {
			snap, err := s.Snapshot(ctx, camp, now, true)
			if err != nil || snap.LoggedIn+snap.Elsewhere != 100 || snap.Elsewhere == 0 {
				b.Fatalf("%+v %v", snap, err)
			}
		}
	})
	// The claim passes over the free agents the other campaign counts on.
	b.Run("ClaimReleaseShared", claimRelease("s-"))
	// A queue's recipient pressing CONNECT with no agent free (a campaign
	// of its own, with no agents): queued (the baseline), or turned away
	// by the queue's limits, the same one script: "empty", or "full" with
	// one waiting already.
	await := func(lim queueLimits, want string, setup func(campaign string)) func(b *testing.B) {
		return func(b *testing.B) {
			campaign := ids.NewV4()
			if setup != nil {
				setup(campaign)
			}
			for i := 0; b.Loop(); i++ {
				w := waitingCall{campaign: campaign, call: fmt.Sprint("q-", i), account: "acc-1", answered: now, deadline: now.Add(time.Hour), queue: true}
				if r, err := s.await(ctx, w, now, lim); err != nil || r.kind != want {
					b.Fatalf("%+v %v, want %s", r, err, want)
				}
			}
		}
	}
	b.Run("AwaitQueued", await(queueLimits{}, "waiting", nil))
	b.Run("AwaitTurnedAwayEmpty", await(queueLimits{turnAwayWhenEmpty: true}, "empty", nil))
	b.Run("AwaitTurnedAwayFull", await(queueLimits{maxWaiting: 1}, "full", func(campaign string) {
		w := waitingCall{campaign: campaign, call: "first", account: "acc-1", answered: now, deadline: now.Add(time.Hour), queue: true}
		if r, err := s.await(ctx, w, now, queueLimits{maxWaiting: 1}); err != nil || r.kind != "waiting" {
			b.Fatalf("%+v %v", r, err)
		}
	}))
	// A router's look at a campaign with 100 recipients waiting and no
	// agent free, every Poll on every replica: its agent on a call (the
	// baseline), or none logged in, which reads every waiting call's info
	// to find those that leave an empty queue (none here: the worst case,
	// every look reads them all).
	look := func(withAgent bool) func(b *testing.B) {
		return func(b *testing.B) {
			campaign := ids.NewV4()
			if withAgent {
				agent := "look-" + campaign
				readyAgent(b, s, agent, []string{campaign}, 0, now)
				if _, _, ok, err := s.Claim(ctx, campaign, "held-"+campaign, now); !ok || err != nil {
					b.Fatalf("claim: %v %v", ok, err)
				}
			}
			for i := range 100 {
				w := waitingCall{campaign: campaign, call: fmt.Sprint("p-", i), account: "acc-1", answered: now, deadline: now.Add(time.Hour), queue: true}
				if r, err := s.await(ctx, w, now, queueLimits{}); err != nil || r.kind != "waiting" {
					b.Fatalf("%+v %v", r, err)
				}
			}
			for b.Loop() {
				if m, err := s.match(ctx, campaign, now, matchBatch); err != nil || m.expired+len(m.left)+len(m.pairs) != 0 {
					b.Fatalf("%+v %v", m, err)
				}
			}
		}
	}
	b.Run("LookAgentBusy", look(true))
	b.Run("LookEmpty", look(false))
	// A campaign's live view (its progress in GetCampaign): the 100 agents
	// above by state, and 100 calls waiting.
	b.Run("LiveView", func(b *testing.B) {
		for i := range 100 {
			w := waitingCall{campaign: camp, call: fmt.Sprint("lv-", i), account: "acc-1", answered: now, deadline: now.Add(time.Hour), queue: true}
			if _, err := s.requeue(ctx, w, now); err != nil {
				b.Fatal(err)
			}
		}
		for b.Loop() {
			if l, err := s.live(ctx, camp, now.Add(time.Second)); err != nil || l.agents.GetLoggedIn() != 100 || l.waiting != 100 {
				b.Fatalf("%+v %v", l, err)
			}
		}
	})
	// The baseline: one round trip to the same Redis.
	b.Run("Ping", func(b *testing.B) {
		for b.Loop() {
			if err := c.Ping(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}
