package pacing

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

func TestDecideFixedAndAgents(t *testing.T) {
	t.Parallel()
	ringing := []time.Time{t0, t0}
	tests := []struct {
		name string
		cfg  Config
		in   Input
		want int
	}{
		{"fixed fills the cap", Config{Mode: Fixed, MaxCalls: 10}, Input{Live: 4}, 6},
		{"fixed at the cap", Config{Mode: Fixed, MaxCalls: 10}, Input{Live: 12}, 0},
		{"progressive: free agents less those claimed", Config{Mode: Agents}, Input{Ready: 5, Waiting: 1, Ringing: ringing}, 2},
		{"multiplier", Config{Mode: Agents, Multiplier: 2}, Input{Ready: 4, Ringing: ringing}, 6},
		{"multiplier capped", Config{Mode: Agents, Multiplier: 2, MaxCalls: 5}, Input{Ready: 4, Ringing: ringing, Live: 3}, 2},
		{"no agent", Config{Mode: Agents}, Input{Ringing: ringing}, 0},
		{"predictive without a model is progressive", Config{Mode: Predictive}, Input{Ready: 3, Active: 3}, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Decide(tc.cfg, tc.in, nil).Dials; got != tc.want {
				t.Errorf("Dials = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestThetaBudget(t *testing.T) {
	t.Parallel()
	cfg := Config{Mode: Predictive}
	under := Input{Day: Window{Answered: 1000, Abandoned: 10}, Month: Window{Answered: 1000, Abandoned: 10}}
	if th, lim := Theta(cfg, under); lim || th <= DefaultThetaBase {
		t.Errorf("1%%: theta %.3f limited %v, want more than the base", th, lim)
	}
	over := Input{Day: Window{Answered: 1000, Abandoned: 30}, Month: Window{Answered: 1000, Abandoned: 10}}
	if th, lim := Theta(cfg, over); !lim || th != 0 {
		t.Errorf("3%% over 24 h: theta %.3f limited %v, want the hard limit", th, lim)
	}
	month := Input{Day: Window{Answered: 100, Abandoned: 0}, Month: Window{Answered: 10000, Abandoned: 400}}
	if _, lim := Theta(cfg, month); !lim {
		t.Error("4% over 30 days: want the hard limit")
	}
	if _, lim := Theta(Config{Mode: Predictive, Method: Average}, over); lim {
		t.Error("AVERAGE never stops")
	}
	// TAPERED allows more early in the shift.
	early := over
	early.Shift, early.ShiftLeft = 8*time.Hour, 8*time.Hour
	if _, lim := Theta(Config{Mode: Predictive, Method: Tapered}, early); lim {
		t.Error("TAPERED at the start of the shift: 3% is under twice the target")
	}
	late := early
	late.ShiftLeft = time.Hour
	if _, lim := Theta(Config{Mode: Predictive, Method: Tapered}, late); !lim {
		t.Error("TAPERED late in the shift: want the hard limit")
	}
}

// The answer rate is right even while the latest outcomes are the quick
// failures of a burst, and it follows a drop within seconds.
func TestEstimatorRate(t *testing.T) {
	t.Parallel()
	e := NewEstimator()
	rng := rand.New(rand.NewPCG(7, 7))
	type dial struct {
		placed, end time.Duration
		live        bool
	}
	var pending []dial
	p := 0.3
	var now time.Duration
	check := func(want float64) {
		t.Helper()
		var ringing []time.Time
		for _, d := range pending {
			ringing = append(ringing, t0.Add(d.placed))
		}
		m := e.Model(t0.Add(now), ringing, nil)
		if !m.Ready() {
			t.Fatalf("at %s: model not ready", now)
		}
		if m.P < want-0.07 || m.P > want+0.07 {
			t.Errorf("at %s: P = %.3f, want %.2f", now, m.P, want)
		}
	}
	for step := range 6000 {
		now += 200 * time.Millisecond
		if step == 4000 {
			p = 0.1
		}
		n := 1
		if step%300 == 0 {
			n = 40 // a burst: its failures come back first
		}
		for range n {
			live := rng.Float64() < p
			delay := time.Second + time.Duration(rng.Float64()*24e9)
			if live {
				delay = 4*time.Second + time.Duration(rng.Float64()*16e9)
			}
			pending = append(pending, dial{placed: now, end: now + delay, live: live})
		}
		rest := pending[:0]
		for _, d := range pending {
			if d.end <= now {
				e.AddOutcome(Outcome{Placed: t0.Add(d.placed), Live: d.live, Delay: d.end - d.placed})
			} else {
				rest = append(rest, d)
			}
		}
		pending = rest
		switch step {
		case 1000, 2310, 3900: // 2310: 10 s after a burst
			check(0.3)
		case 4000 + 300: // a minute after the drop
			check(0.1)
		}
	}
}

// More calls never carry less risk, and risk grows with the calls ringing.
func TestRiskMonotone(t *testing.T) {
	t.Parallel()
	e := NewEstimator()
	for i := range 600 {
		e.AddOutcome(Outcome{Placed: t0.Add(-time.Hour), Live: i%5 == 0, Delay: time.Duration(4+i%17) * time.Second})
	}
	in := Input{Now: t0, Ready: 2, Active: 20, Wrap: 10 * time.Second}
	for i := range 18 {
		in.OnCallSince = append(in.OnCallSince, t0.Add(-time.Duration(i*7)*time.Second))
	}
	m := e.Model(t0, nil, in.OnCallSince)
	f := m.forecast(in, 2*time.Second)
	prev := 0.0
	for n := 1; n <= 40; n++ {
		r := f.risk(n)
		if r < prev-1e-9 {
			t.Fatalf("risk(%d) = %.4f < risk(%d) = %.4f", n, r, n-1, prev)
		}
		prev = r
	}
	more := in
	for range 30 {
		more.Ringing = append(more.Ringing, t0.Add(-2*time.Second))
	}
	if a, b := f.risk(5), m.forecast(more, 2*time.Second).risk(5); b <= a {
		t.Errorf("risk with 30 calls ringing %.4f, without %.4f", b, a)
	}
}

// A campaign's first outcomes are its quickest: the model does not predict
// from them until its first dial has had Settle to end, however many there
// are.
func TestModelWaitsForSettledOutcomes(t *testing.T) {
	t.Parallel()
	e := NewEstimator()
	// 300 dials placed over the first 20 s, each ended after 1-5 s: quick
	// failures and the quickest answers, as a start shows them.
	for i := range 300 {
		placed := t0.Add(time.Duration(i) * 20 * time.Second / 300)
		e.AddOutcome(Outcome{Placed: placed, Live: i%5 == 0, Delay: time.Duration(1+i%5) * time.Second})
	}
	if m := e.Model(t0.Add(30*time.Second), nil, nil); m.Ready() {
		t.Fatal("ready 30 s after the first dial: its outcomes are only the quick ones")
	}
	if m := e.Model(t0.Add(Settle+20*time.Second), nil, nil); !m.Ready() {
		t.Fatalf("not ready %s after the first dial, with 300 settled outcomes", Settle+20*time.Second)
	}
}

// FixedTheta takes the risk it names whatever the budget: the harness's
// measure of the policy apart from the control of the budget.
func TestFixedThetaIgnoresTheBudget(t *testing.T) {
	t.Parallel()
	e := NewEstimator()
	for i := range 600 {
		e.AddOutcome(Outcome{Placed: t0.Add(-time.Hour), Live: i%5 == 0, Delay: time.Duration(4+i%17) * time.Second})
	}
	spent := Window{Answered: 1000, Abandoned: 40}
	// One agent free, three about to be: at most Active/10 = 2 calls a tick.
	in := Input{Now: t0, Ready: 1, Active: 20, Wrap: 10 * time.Second, Day: spent, Month: spent,
		WrapUpEnds: []time.Time{t0.Add(time.Second), t0.Add(2 * time.Second), t0.Add(3 * time.Second)}}
	for i := range 16 {
		in.OnCallSince = append(in.OnCallSince, t0.Add(-time.Duration(i*7)*time.Second))
	}
	m := e.Model(t0, nil, in.OnCallSince)
	if !m.Ready() {
		t.Fatal("model not ready")
	}
	limited := Decide(Config{Mode: Predictive}, in, m)
	if !limited.Limited || limited.Dials != 1 {
		t.Fatalf("4%% abandoned: %+v, want the hard limit's one call per free agent", limited)
	}
	fixed := Decide(Config{Mode: Predictive, FixedTheta: 0.2}, in, m)
	if fixed.Limited || fixed.Theta != 0.2 || fixed.Dials != 2 {
		t.Fatalf("FixedTheta 0.2 over a spent budget: %+v, want the 2 calls a tick allows", fixed)
	}
}

// A call that has rung the lawful minimum and, answered now, would find no
// agent is released; a younger one, or one an agent is free for, is not.
func TestReleaseCallsNoAgentWouldTake(t *testing.T) {
	t.Parallel()
	e := NewEstimator()
	for i := range 600 {
		e.AddOutcome(Outcome{Placed: t0.Add(-time.Hour), Live: i%5 == 0, Delay: time.Duration(4+i%17) * time.Second})
	}
	// Ten agents, all a few seconds into their calls: none is likely to
	// be free in the next half minute.
	busy := Input{Now: t0, Active: 10, Wrap: 10 * time.Second}
	for i := range 10 {
		busy.OnCallSince = append(busy.OnCallSince, t0.Add(-time.Duration(2+i)*time.Second))
	}
	for range 6 {
		busy.Ringing = append(busy.Ringing, t0.Add(-16*time.Second)) // rung 16 s
	}
	for range 3 {
		busy.Ringing = append(busy.Ringing, t0.Add(-10*time.Second)) // rung 10 s
	}
	busy.Live = len(busy.Ringing) + len(busy.OnCallSince)
	m := e.Model(t0, busy.Ringing, busy.OnCallSince)
	if !m.Ready() {
		t.Fatal("model not ready")
	}
	d := Decide(Config{Mode: Predictive}, busy, m)
	if !slices.Equal(d.Release, []int{0, 1, 2, 3, 4, 5}) || d.Dials != 0 {
		t.Fatalf("every agent busy: %+v, want the six calls rung 16 s released and nothing dialed", d)
	}
	if want := 3.0 / 10; math.Abs(d.Level-want) > 1e-9 {
		t.Errorf("level %.2f, want %.2f (the released calls do not count)", d.Level, want)
	}
	if d := Decide(Config{Mode: Predictive, ReleaseAfter: -1}, busy, m); len(d.Release) != 0 {
		t.Errorf("ReleaseAfter < 0 releases %v", d.Release)
	}
	if d := Decide(Config{Mode: Predictive, ReleaseAfter: 20 * time.Second}, busy, m); len(d.Release) != 0 {
		t.Errorf("ReleaseAfter 20 s releases calls rung 16 s: %v", d.Release)
	}
	// Agents free for every one of them: nothing to release.
	free := busy
	free.Ready, free.OnCallSince = 10, nil
	if d := Decide(Config{Mode: Predictive}, free, e.Model(t0, free.Ringing, nil)); len(d.Release) != 0 {
		t.Errorf("ten agents free: released %v", d.Release)
	}
}

// A released call keeps its place in the answer rate: counting it only up
// to its release would read the rate low (every call still ringing then is
// one that did not answer early).
func TestReleasedOutcomesDoNotBiasTheAnswerRate(t *testing.T) {
	t.Parallel()
	// 1,000 dials, a fifth of them live, answered 4-20 s after the dial;
	// the others end after 1-25 s; every third call still ringing at
	// 15 s is released then (the harness releases 2-5% of the dials; the
	// delay distributions learn from the calls that ended of themselves).
	const n = 1000
	var plain, released []Outcome
	for i := range n {
		placed := t0.Add(-time.Hour + time.Duration(i)*time.Second)
		live := i%5 == 0
		delay := time.Duration(1+(i*7)%25) * time.Second
		if live {
			delay = time.Duration(4+(i/5)%17) * time.Second
		}
		o := Outcome{Placed: placed, Live: live, Delay: delay}
		if delay > 15*time.Second && i%3 == 0 {
			o = Outcome{Placed: placed, Delay: 15 * time.Second, Released: true}
		}
		released = append(released, o)
		plain = append(plain, Outcome{Placed: placed, Live: o.Live, Delay: o.Delay}) // the release taken for a failure
	}
	rate := func(os []Outcome) float64 {
		e := NewEstimator()
		e.lastP = 0.5 // far off: the rate's own iterations correct it
		for _, o := range os {
			e.AddOutcome(o)
		}
		var p float64
		for range 8 {
			p = e.Model(t0.Add(time.Hour), nil, nil).P
		}
		return p
	}
	if got := rate(released); math.Abs(got-0.2) > 0.01 {
		t.Errorf("answer rate with releases %.3f, want 0.2 ± 0.01", got)
	} else {
		t.Logf("answer rate with releases %.3f", got)
	}
	if got := rate(plain); got > 0.19 {
		t.Errorf("counted as failures, the releases should read the rate low: %.3f", got)
	}
}
