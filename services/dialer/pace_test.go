package dialer

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	dialerv1 "github.com/ringback/ringback/proto/gen/go/ringback/dialer/v1"
	eventsv1 "github.com/ringback/ringback/proto/gen/go/ringback/events/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	"github.com/ringback/ringback/services/dialer/pacing"
	"github.com/ringback/ringback/services/internal/cache/cachetest"
)

func predictiveCampaign() *dialerv1.Campaign {
	return &dialerv1.Campaign{DialAttempts: 3, Pacing: &dialerv1.Pacing{Mode: dialerv1.PacingMode_PACING_MODE_PREDICTIVE,
		SafeHarbour: "/var/lib/ringback/audio/sorry.wav", AgentWaitMs: 1500, AbandonLockoutS: 3600}}
}

// An abandoned call: the record is ABANDONED and tried again only after the
// lockout, the number is locked out for every campaign of the account, and
// the windows count one live answer, abandoned; a redelivered end counts
// nothing twice.
func TestOutcomeAbandoned(t *testing.T) {
	t.Parallel()
	f := newOutcomeFixture(t, predictiveCampaign())
	c := f.call("call-1", 1, originationv1.CallStatus_CALL_STATUS_COMPLETED)
	c.Second = nil
	c.Abandoned = true
	c.First.AnsweredAt = timestamppb.New(f.now.Add(-50 * time.Second))
	f.deliver(t, eventsv1.EventType_EVENT_TYPE_CALL_COMPLETED, 0, c)
	f.deliver(t, eventsv1.EventType_EVENT_TYPE_CALL_COMPLETED, 0, proto.Clone(c).(*originationv1.Call))
	r := f.h.record(t, f.record)
	if r.status != StatusAbandoned || r.final {
		t.Fatalf("record %+v, want abandoned, not final", r)
	}
	ctx := context.Background()
	var next time.Time
	if err := f.h.db.QueryRow(ctx, `SELECT next_at FROM dialer.records WHERE id = $1`, f.record).Scan(&next); err != nil {
		t.Fatal(err)
	}
	if want := f.now.Add(time.Hour); !next.Equal(want) {
		t.Errorf("next attempt %s, want the lockout's end %s", next, want)
	}
	locked, err := LockedNumbers(ctx, f.h.db, engAccount, []string{"+34911111111", "+34922222222"}, f.now)
	if err != nil {
		t.Fatal(err)
	}
	if until, ok := locked["+34911111111"]; !ok || !until.Equal(f.now.Add(time.Hour)) || len(locked) != 1 {
		t.Errorf("locked numbers %v, want +34911111111 until %s", locked, f.now.Add(time.Hour))
	}
	if later, _ := LockedNumbers(ctx, f.h.db, engAccount, []string{"+34911111111"}, f.now.Add(2*time.Hour)); len(later) != 0 {
		t.Errorf("locked after the lockout: %v", later)
	}
	day, month, err := abandonmentWindows(ctx, f.h.db, f.campaign, f.now)
	if err != nil {
		t.Fatal(err)
	}
	if day != (pacing.Window{Answered: 1, Abandoned: 1}) || month != day {
		t.Errorf("windows day %+v month %+v, want one answer, abandoned", day, month)
	}
	var live, abandoned bool
	var answered *time.Time
	if err := f.h.db.QueryRow(ctx, `SELECT live, abandoned, answered_at FROM dialer.attempts WHERE call_id = 'call-1'`).Scan(&live, &abandoned, &answered); err != nil {
		t.Fatal(err)
	}
	if !live || !abandoned || answered == nil {
		t.Errorf("attempt live=%v abandoned=%v answered_at=%v", live, abandoned, answered)
	}
}

// A machine answer is not live: it counts in neither window.
func TestOutcomeMachineNotLive(t *testing.T) {
	t.Parallel()
	f := newOutcomeFixture(t, predictiveCampaign())
	c := f.call("call-m", 1, originationv1.CallStatus_CALL_STATUS_FAILED)
	c.Second, c.FailedLeg, c.FailureReason, c.MachineResult = nil, originationv1.LegRole_LEG_ROLE_FIRST, originationv1.FailureReason_FAILURE_REASON_MACHINE, "MACHINE"
	c.First.AnsweredAt = timestamppb.New(f.now.Add(-10 * time.Second))
	f.deliver(t, eventsv1.EventType_EVENT_TYPE_CALL_FAILED, originationv1.LegRole_LEG_ROLE_FIRST, c)
	if r := f.h.record(t, f.record); r.status != StatusAnsMachine {
		t.Fatalf("record %+v, want answmachine", r)
	}
	day, _, err := abandonmentWindows(context.Background(), f.h.db, f.campaign, f.now)
	if err != nil {
		t.Fatal(err)
	}
	if day != (pacing.Window{}) {
		t.Errorf("day window %+v, want nothing counted", day)
	}
}

func TestCallRequestAwaitsAgent(t *testing.T) {
	t.Parallel()
	c := predictiveCampaign()
	c.OnAnswer = &dialerv1.OnAnswer{DetectMachine: true}
	req := callRequest(SettingsOf(c), "+34911111111", "", false)
	if req.GetSecond() != nil || req.GetAnnouncement() != "" || req.GetMenu() != nil {
		t.Fatalf("request %v: a paced call has no second party, announcement or menu", req)
	}
	if aw := req.GetAwaitAgent(); aw.GetTimeoutMs() != 1500 || aw.GetSafeHarbour() != "/var/lib/ringback/audio/sorry.wav" {
		t.Errorf("await_agent %v", aw)
	}
	if !req.GetMachineDetection().GetEnabled() {
		t.Error("machine detection lost")
	}
	// FIXED keeps its announcement and endpoint.
	fixed := callRequest(SettingsOf(&dialerv1.Campaign{OnAnswer: &dialerv1.OnAnswer{Announcement: "a.wav", EndpointId: "ep"}}), "+34911111111", "ep", false)
	if fixed.GetAwaitAgent() != nil || fixed.GetSecond() == nil {
		t.Errorf("fixed request %v", fixed)
	}
}

func TestValidatePacing(t *testing.T) {
	t.Parallel()
	ok := func() *dialerv1.Campaign { return predictiveCampaign() }
	tests := []struct {
		name string
		edit func(*dialerv1.Campaign)
	}{
		{"no safe harbour", func(c *dialerv1.Campaign) { c.Pacing.SafeHarbour = "" }},
		{"safe harbour with spaces", func(c *dialerv1.Campaign) { c.Pacing.SafeHarbour = "a b.wav" }},
		{"an endpoint", func(c *dialerv1.Campaign) { c.OnAnswer = &dialerv1.OnAnswer{EndpointId: "x"} }},
		{"an announcement", func(c *dialerv1.Campaign) { c.OnAnswer = &dialerv1.OnAnswer{Announcement: "a.wav"} }},
		{"target too high", func(c *dialerv1.Campaign) { c.Pacing.AbandonTarget = 0.2 }},
		{"wait too long", func(c *dialerv1.Campaign) { c.Pacing.AgentWaitMs = 2500 }},
		{"wait too short", func(c *dialerv1.Campaign) { c.Pacing.AgentWaitMs = 50 }},
		{"multiplier", func(c *dialerv1.Campaign) { c.Pacing.DialMultiplier = 0.5 }},
		{"level", func(c *dialerv1.Campaign) { c.Pacing.MaxDialLevel = 20 }},
		{"lockout", func(c *dialerv1.Campaign) { c.Pacing.AbandonLockoutS = -1 }},
		{"shift end", func(c *dialerv1.Campaign) { c.Pacing.ShiftEnd = "9pm" }},
		{"shift zone unknown", func(c *dialerv1.Campaign) { c.Pacing.ShiftTimeZone = "Mars/Olympus" }},
		{"shift zone of the host", func(c *dialerv1.Campaign) { c.Pacing.ShiftTimeZone = "Local" }},
		{"shift zone a path", func(c *dialerv1.Campaign) { c.Pacing.ShiftTimeZone = "../../etc/passwd" }},
		{"tapered in a country of several zones", func(c *dialerv1.Campaign) {
			c.DefaultCountry, c.Pacing.Method = "US", dialerv1.AdaptMethod_ADAPT_METHOD_TAPERED
		}},
		{"tapered without a country", func(c *dialerv1.Campaign) {
			c.DefaultCountry, c.Pacing.Method = "", dialerv1.AdaptMethod_ADAPT_METHOD_TAPERED
		}},
		{"mode", func(c *dialerv1.Campaign) { c.Pacing.Mode = 99 }},
		{"release under the lawful ring", func(c *dialerv1.Campaign) { c.Pacing.ReleaseAfterS = 10 }},
		{"release too late", func(c *dialerv1.Campaign) { c.Pacing.ReleaseAfterS = 121 }},
		{"release negative", func(c *dialerv1.Campaign) { c.Pacing.ReleaseAfterS = -2 }},
	}
	if err := validatePacing(ok()); err != nil {
		t.Fatalf("valid campaign refused: %v", err)
	}
	// TAPERED where the country tells the shift's zone: one zone (DE), or
	// several names of one clock (GB's +44: London, Jersey, Guernsey, Man).
	for _, country := range []string{"DE", "GB"} {
		c := ok()
		c.DefaultCountry, c.Pacing.Method = country, dialerv1.AdaptMethod_ADAPT_METHOD_TAPERED
		if err := validatePacing(c); err != nil {
			t.Errorf("TAPERED in %s refused: %v", country, err)
		}
	}
	for _, r := range []int32{-1, 15, 120} {
		c := ok()
		c.Pacing.ReleaseAfterS = r
		if err := validatePacing(c); err != nil {
			t.Errorf("release_after_s %d refused: %v", r, err)
		}
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ok()
			tc.edit(c)
			if err := validatePacing(c); err == nil {
				t.Error("accepted")
			}
		})
	}
}

func TestShiftOf(t *testing.T) {
	t.Parallel()
	c := predictiveCampaign()
	c.DefaultCountry = "DE"
	c.Pacing.Method = dialerv1.AdaptMethod_ADAPT_METHOD_TAPERED
	c.Pacing.ShiftEnd = "20:00"
	// 15:00 in Berlin (UTC+1 in March): 12 h of shift from 08:00, 5 left.
	now := time.Date(2026, 3, 4, 14, 0, 0, 0, time.UTC)
	shift, left := shiftOf(SettingsOf(c), now)
	if shift != 12*time.Hour || left != 5*time.Hour {
		t.Errorf("shift %s, left %s; want 12h, 5h", shift, left)
	}
	// Past the shift's end: nothing left.
	if _, left := shiftOf(SettingsOf(c), now.Add(7*time.Hour)); left != 0 {
		t.Errorf("after the shift: %s left", left)
	}

	// A country of several zones: the shift's is named. 14:00 in Los
	// Angeles (UTC-8 before March 8): 6 h left to 20:00.
	c.DefaultCountry = "US"
	c.Pacing.ShiftTimeZone = "America/Los_Angeles"
	if err := validatePacing(c); err != nil {
		t.Fatalf("shift_time_zone refused: %v", err)
	}
	now = time.Date(2026, 3, 4, 22, 0, 0, 0, time.UTC)
	if shift, left := shiftOf(SettingsOf(c), now); shift != 12*time.Hour || left != 6*time.Hour {
		t.Errorf("Los Angeles: shift %s, left %s; want 12h, 6h", shift, left)
	}
	// The same instant in New York's shift is past 17:00: 3 h left.
	c.Pacing.ShiftTimeZone = "America/New_York"
	if _, left := shiftOf(SettingsOf(c), now); left != 3*time.Hour {
		t.Errorf("New York: %s left, want 3h", left)
	}
}

// With a pacing scale, every instant is on one virtual clock: ages and
// durations are k times longer whenever they are read.
func TestScaleInput(t *testing.T) {
	t.Parallel()
	epoch := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	now := epoch.Add(time.Minute)
	in := scaleInput(pacing.Input{Now: now, Ringing: []time.Time{now.Add(-time.Second)}, OnCallSince: []time.Time{now.Add(-3 * time.Second)},
		WrapUpEnds: []time.Time{now.Add(500 * time.Millisecond)}, Wrap: time.Second}, epoch, 10)
	if in.Now != epoch.Add(10*time.Minute) || in.Now.Sub(in.Ringing[0]) != 10*time.Second || in.Now.Sub(in.OnCallSince[0]) != 30*time.Second ||
		in.WrapUpEnds[0].Sub(in.Now) != 5*time.Second || in.Wrap != 10*time.Second {
		t.Errorf("scaled %+v", in)
	}
	// An outcome fed a minute earlier is as old, on the same clock.
	placed := scaleAt(epoch, now.Add(-2*time.Minute), 10)
	if in.Now.Sub(placed) != 20*time.Minute {
		t.Errorf("outcome age %s, want 20m", in.Now.Sub(placed))
	}
	if got := scaleInput(pacing.Input{Now: now}, epoch, 1); got.Now != now {
		t.Error("scale 1 changed the input")
	}
}

// Two replicas pace one AGENTS campaign: together they never place more
// calls than there are free agents (the advisory lock makes their
// decisions one after the other), and they place the next ones as agents
// free up.
func TestEnginePacedReplicasShareAgents(t *testing.T) {
	t.Parallel()
	h := newEngHarness(t)
	store := NewAgentStore(cachetest.New(t))
	campaign := h.engCampaign(t, &dialerv1.Campaign{MaxConcurrentCalls: 50, Pacing: &dialerv1.Pacing{Mode: dialerv1.PacingMode_PACING_MODE_AGENTS,
		SafeHarbour: "sorry.wav"}}, dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING)
	recs := engNumbers("3", 30)
	for _, r := range recs {
		h.fake.setScript(r.numbers[0], "hold")
	}
	h.engList(t, campaign, recs...)
	const agents = 4
	var ids []string
	for i := range agents {
		id := fmt.Sprintf("00000000-0000-4000-8000-%012d", i+1)
		readyAgent(t, store, id, []string{campaign}, 0, h.clock.Now().Add(-time.Second))
		ids = append(ids, id)
	}
	h.start(t, "a", func(c *EngineConfig) { c.Agents = store })
	h.start(t, "b", func(c *EngineConfig) { c.Agents = store })
	eventually(t, "a call per agent", func() bool { return len(h.fake.heldCalls()) == agents })
	quietly(t, 500*time.Millisecond, "a call beyond the free agents", func() bool { return h.fake.maxLiveOf(campaign) <= agents })
	// The router gives each answered call an agent; two of them end, and
	// their agents are free again.
	held := h.fake.heldCalls()
	byCall := map[string]string{}
	for _, call := range held {
		agent, _, ok, err := store.Claim(context.Background(), campaign, call, h.clock.Now())
		if err != nil || !ok {
			t.Fatalf("claim for %s: %v %v", call, ok, err)
		}
		byCall[call] = agent
	}
	for _, call := range held[:2] {
		h.fake.release(call, "complete")
		if err := store.Release(context.Background(), byCall[call], call, h.clock.Now().Add(-time.Second), false); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "two more calls", func() bool { return len(h.fake.dialed()) == agents+2 })
	quietly(t, 500*time.Millisecond, "a call beyond the free agents", func() bool {
		return len(h.fake.dialed()) == agents+2 && h.fake.maxLiveOf(campaign) <= agents
	})
	if p := h.fake.problems(); len(p) > 0 {
		t.Fatalf("fake origination saw: %v", p)
	}
	for _, d := range h.fake.dialed() {
		if d.req.GetAwaitAgent().GetSafeHarbour() != "sorry.wav" {
			t.Fatalf("call without await_agent: %v", d.req)
		}
	}
}

// Two AGENTS campaigns dialing at once share their agents: each agent
// counts in one of them, so together they never place more calls than
// there are agents (counted in each, they would place twice as many).
func TestEnginePacedCampaignsShareAgents(t *testing.T) {
	t.Parallel()
	h := newEngHarness(t)
	store := NewAgentStore(cachetest.New(t))
	paced := &dialerv1.Pacing{Mode: dialerv1.PacingMode_PACING_MODE_AGENTS, SafeHarbour: "sorry.wav"}
	var campaigns []string
	for i, prefix := range []string{"6", "7"} {
		c := h.engCampaign(t, &dialerv1.Campaign{Name: fmt.Sprint("shared ", i), MaxConcurrentCalls: 50, Pacing: paced},
			dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING)
		recs := engNumbers(prefix, 20)
		for _, r := range recs {
			h.fake.setScript(r.numbers[0], "hold")
		}
		h.engList(t, c, recs...)
		campaigns = append(campaigns, c)
	}
	const agents = 6
	for i := range agents {
		readyAgent(t, store, fmt.Sprintf("00000000-0000-4000-8000-%012d", i+1), campaigns, 0, h.clock.Now().Add(-time.Second))
	}
	// Both campaigns are dialing for agents from the start (the first
	// tick of a campaign that starts while another dials counts, once,
	// the agents the other dialed for: see Snapshot).
	for _, c := range campaigns {
		snapshot(t, store, c, h.clock.Now())
	}
	h.start(t, "a", func(c *EngineConfig) { c.Agents = store })
	eventually(t, "a call per agent", func() bool { return len(h.fake.heldCalls()) == agents })
	quietly(t, 500*time.Millisecond, "more calls than agents", func() bool {
		return h.fake.maxLiveOf(campaigns[0])+h.fake.maxLiveOf(campaigns[1]) <= agents
	})
	if p := h.fake.problems(); len(p) > 0 {
		t.Fatalf("fake origination saw: %v", p)
	}
}

// A paced campaign with nothing due and nothing in progress does not mark
// itself as dialing (its shared agents then count for the campaigns that
// do); with a record due, it does again.
func TestClaimPacedDialingMark(t *testing.T) {
	t.Parallel()
	h := newEngHarness(t)
	store := NewAgentStore(cachetest.New(t))
	settings := &dialerv1.Campaign{MaxConcurrentCalls: 5, Pacing: &dialerv1.Pacing{Mode: dialerv1.PacingMode_PACING_MODE_AGENTS, SafeHarbour: "sorry.wav"}}
	campaign := h.engCampaign(t, settings, dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING)
	now := h.clock.Now()
	h.engList(t, campaign, engRecord{numbers: []string{"+34918000001"}, scheduleAt: now.Add(time.Hour)})
	readyAgent(t, store, "00000000-0000-4000-8000-000000000001", []string{campaign}, 0, now.Add(-time.Second))
	e := NewEngine(EngineConfig{Instance: "a", Agents: store, Now: h.clock.Now}, h.db, h.calls, engLogger())
	ec := engineCampaign{id: campaign, account: engAccount, run: 1, s: SettingsOf(settings)}
	dialing := func() bool {
		pc := e.pacers.get(campaign, 1)
		pc.mu.Lock()
		defer pc.mu.Unlock()
		return pc.dialing
	}
	if !dialing() {
		t.Fatal("a new pacer does not take its campaign for dialing")
	}
	if recs, _, err := e.claimPaced(context.Background(), ec, now); err != nil || len(recs) != 0 {
		t.Fatalf("claimed %v %v, want nothing due", recs, err)
	}
	if dialing() {
		t.Fatal("nothing due, nothing in progress: still marked dialing")
	}
	h.engList(t, campaign, engRecord{numbers: []string{"+34918000002"}})
	if recs, _, err := e.claimPaced(context.Background(), ec, now); err != nil || len(recs) != 1 {
		t.Fatalf("claimed %v %v, want the record due", recs, err)
	}
	if !dialing() {
		t.Fatal("a record due: not marked dialing")
	}
}

// The pacing learns a live answer when the person answers, not when the
// call ends (a call that goes on for minutes would otherwise read, for
// its whole length, as a dial that reached nobody), and each attempt once.
func TestFeedLearnsAnswersAtTheAnswer(t *testing.T) {
	t.Parallel()
	f := newOutcomeFixture(t, predictiveCampaign())
	ctx := context.Background()
	if _, err := f.h.db.Exec(ctx, `INSERT INTO dialer.attempts (call_id, record_id, campaign_id, run, n, number, started_at)
		VALUES ('call-1', $1, $2, 1, 1, '+34911111111', $3)`, f.record, f.campaign, f.now.Add(-12*time.Second)); err != nil {
		t.Fatal(err)
	}
	c := f.call("call-1", 1, originationv1.CallStatus_CALL_STATUS_ANSWERED)
	c.Second = nil
	f.deliver(t, eventsv1.EventType_EVENT_TYPE_LEG_ANSWERED, originationv1.LegRole_LEG_ROLE_FIRST, c)
	ec := engineCampaign{id: f.campaign, account: engAccount, run: 1, s: SettingsOf(predictiveCampaign())}
	pc := f.e.pacers.get(f.campaign, 1)
	for range 2 {
		if err := f.e.feed(ctx, ec, pc); err != nil {
			t.Fatal(err)
		}
	}
	if n := pc.est.Outcomes(); n != 1 {
		t.Fatalf("%d outcomes fed, want the answer once", n)
	}
	// The end adds the talk, not a second outcome.
	c = proto.Clone(c).(*originationv1.Call)
	c.Status, c.BridgedAt = originationv1.CallStatus_CALL_STATUS_COMPLETED, timestamppb.New(f.now.Add(-10*time.Second))
	f.deliver(t, eventsv1.EventType_EVENT_TYPE_CALL_COMPLETED, 0, c)
	if err := f.e.feed(ctx, ec, pc); err != nil {
		t.Fatal(err)
	}
	if n := pc.est.Outcomes(); n != 1 {
		t.Fatalf("%d outcomes after the end, want 1", n)
	}
	if len(pc.talked) != 1 {
		t.Fatalf("talks fed: %v", pc.talked)
	}
}

// A call the dialer released (hung up unanswered: origination ends it
// FAILED, NO_ANSWER, its first leg's cause ORIGINATOR_CANCEL) reaches the
// pacing as a released outcome, which the answer rate does not take for a
// dial that reached nobody; a plain no-answer is a failure.
func TestFeedMarksReleasedCalls(t *testing.T) {
	t.Parallel()
	f := newOutcomeFixture(t, predictiveCampaign())
	ctx := context.Background()
	for i, cause := range []string{"ORIGINATOR_CANCEL", "NO_ANSWER"} {
		id := fmt.Sprintf("call-%d", i+1)
		if _, err := f.h.db.Exec(ctx, `INSERT INTO dialer.attempts (call_id, record_id, campaign_id, run, n, number, started_at)
			VALUES ($4, $1, $2, 1, $5, '+34911111111', $3)`, f.record, f.campaign, f.now.Add(-20*time.Second), id, i+1); err != nil {
			t.Fatal(err)
		}
		c := f.call(id, i+1, originationv1.CallStatus_CALL_STATUS_FAILED)
		c.FailedLeg, c.FailureReason = originationv1.LegRole_LEG_ROLE_FIRST, originationv1.FailureReason_FAILURE_REASON_NO_ANSWER
		c.First.HangupCause = cause
		f.deliver(t, eventsv1.EventType_EVENT_TYPE_CALL_FAILED, originationv1.LegRole_LEG_ROLE_FIRST, c)
	}
	ec := engineCampaign{id: f.campaign, account: engAccount, run: 1, s: SettingsOf(predictiveCampaign())}
	pc := f.e.pacers.get(f.campaign, 1)
	if err := f.e.feed(ctx, ec, pc); err != nil {
		t.Fatal(err)
	}
	if n, r := pc.est.Outcomes(), pc.est.Released(); n != 2 || r != 1 {
		t.Fatalf("%d outcomes, %d released; want 2, of which the cancelled one released", n, r)
	}
}

// What origination is asked to check before a release: the campaign's
// release_after_s, 15 s when unset (never less: the lawful ring), on the
// real clock.
func TestReleaseRing(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		after time.Duration
		k     float64
		want  time.Duration
	}{
		{0, 1, 15 * time.Second},
		{30 * time.Second, 1, 30 * time.Second},
		{0, 10, 1500 * time.Millisecond},
		{-time.Second, 1, 0},
	} {
		if got := releaseRing(pacing.Config{Mode: pacing.Predictive, ReleaseAfter: tc.after}, tc.k); got != tc.want {
			t.Errorf("release after %s at scale %g: origination checks %s, want %s", tc.after, tc.k, got, tc.want)
		}
	}
}

// The engine hangs up, through origination, the ringing calls the pacing
// releases: those rung the lawful 15 s that a person answering now would
// find no agent for, asking origination to check that ring. Not a call
// that rang less, and none while agents are free to take them.
func TestClaimPacedReleasesCalls(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		free        int // agents READY; 0: one agent ON_CALL since now
		wantRelease []string
	}{
		{"no agent for them", 0, []string{"ring-1", "ring-2", "ring-3"}},
		{"agents free", 3, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newOutcomeFixture(t, predictiveCampaign())
			ctx := context.Background()
			store := NewAgentStore(cachetest.New(t))
			f.e.cfg.Agents = store
			for i := range max(1, tc.free) {
				readyAgent(t, store, fmt.Sprintf("00000000-0000-4000-8000-%012d", i+1), []string{f.campaign}, 10, f.now.Add(-time.Minute))
			}
			if tc.free == 0 {
				if _, _, ok, err := store.Claim(ctx, f.campaign, "talk-1", f.now); err != nil || !ok {
					t.Fatalf("claim the agent: %v %v", ok, err)
				}
			}
			// Three calls ringing 18 s, one 5 s.
			recs := f.h.engList(t, f.campaign, engNumbers("5", 4)...)
			for i, rec := range recs {
				call, placed := fmt.Sprintf("ring-%d", i+1), f.now.Add(-18*time.Second)
				if i == 3 {
					placed = f.now.Add(-5 * time.Second)
				}
				if _, err := f.h.db.Exec(ctx, `UPDATE dialer.records SET status = 'running', tries = 1, call_id = $2 WHERE id = $1`, rec, call); err != nil {
					t.Fatal(err)
				}
				if _, err := f.h.db.Exec(ctx, `INSERT INTO dialer.attempts (call_id, record_id, campaign_id, run, n, number, started_at)
					VALUES ($1, $2, $3, 1, 1, '+34955555555', $4)`, call, rec, f.campaign, placed); err != nil {
					t.Fatal(err)
				}
			}
			// What ten minutes of the campaign taught: 1 dial in 5 live,
			// talks of two minutes.
			pc := f.e.pacers.get(f.campaign, 1)
			for i := range 600 {
				o := pacing.Outcome{Placed: f.now.Add(-11*time.Minute + time.Duration(i)*time.Second), Live: i%5 == 0}
				if o.Live {
					o.Delay = time.Duration(4+i%16) * time.Second
				} else {
					o.Delay = time.Duration(1+i%25) * time.Second
				}
				pc.est.AddOutcome(o)
			}
			for i := range 100 {
				pc.est.AddTalk(f.now.Add(-10*time.Minute+time.Duration(i)*time.Second), 120*time.Second)
			}
			ec := engineCampaign{id: f.campaign, account: engAccount, run: 1, s: SettingsOf(predictiveCampaign())}
			if _, _, err := f.e.claimPaced(ctx, ec, f.now); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, req := range f.h.fake.hangupRequests() {
				got = append(got, req.GetId())
				if req.GetUnansweredRingingMs() != 15000 || req.GetCause() != "" {
					t.Errorf("hangup of %s: %v, want unanswered_ringing_ms 15000 and no cause", req.GetId(), req)
				}
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.wantRelease) {
				t.Fatalf("released %v, want %v (decision %+v)", got, tc.wantRelease, f.e.pacers.peek(f.campaign))
			}
		})
	}
}
