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

// The fast answer rate is unbiased while calls ring, 4 s after a burst (when
// the ended dials are all failures) as in a steady stream, and its spread is
// what the pacer's test assumes of it (sqrt(p(1-p)/information)): the
// information counted for the young dials, ringing or ended, is right.
func TestAnswerRateLikelihood(t *testing.T) {
	t.Parallel()
	const p, perSecond = 0.3, 3
	e := NewEstimator()
	ds := newDialStream(rand.New(rand.NewPCG(3, 13)), perSecond, [2]float64{4, 16}, [2]float64{1, 24})
	var steady, burst, z []float64
	for tick := range 90000 {
		now := float64(tick) / 5
		ds.due(now, p)
		if tick%300 == 280 { // every minute, 150 dials at once
			for range 150 {
				ds.place(now, p)
			}
		}
		ds.feed(now, e)
		// After the first 10 minutes, 4 s after each burst and 30 s later
		// (a window of 60 dials' worth is some 20 s of dials: the windows
		// hardly overlap).
		if now < 600 || tick%150 != 0 {
			continue
		}
		ringing := ds.ringing()
		m := e.Model(at0(now), ringing, nil)
		_, _, fasts := e.rates(m, at0(now), ringing)
		f, info := fasts[len(fasts)-1].p, fasts[len(fasts)-1].info
		if tick%300 == 0 {
			burst = append(burst, f)
		} else {
			steady, z = append(steady, f), append(z, (f-p)/math.Sqrt(p*(1-p)/info))
		}
	}
	meanSD := func(v []float64) (mean, sd float64) {
		for _, f := range v {
			mean += f / float64(len(v))
		}
		for _, f := range v {
			sd += (f - mean) * (f - mean) / float64(len(v)-1)
		}
		return mean, math.Sqrt(sd)
	}
	mean, sd := meanSD(steady)
	bmean, bsd := meanSD(burst)
	_, zsd := meanSD(z)
	t.Logf("%d windows: fast rate %.4f ± %.4f, %.2f times the standard error the test assumes; 4 s after a burst %.4f ± %.4f",
		len(steady), mean, sd, zsd, bmean, bsd)
	if math.Abs(mean-p) > 3*sd/math.Sqrt(float64(len(steady))) {
		t.Errorf("mean fast rate %.4f, want %.2f", mean, p)
	}
	if math.Abs(bmean-p) > 3*bsd/math.Sqrt(float64(len(burst))) {
		t.Errorf("mean fast rate after a burst %.4f, want %.2f", bmean, p)
	}
	if zsd < 0.85 || zsd > 1.15 {
		t.Errorf("fast rate's spread %.2f times the standard error the test assumes", zsd)
	}
}

// at0 is s seconds after t0.
func at0(s float64) time.Time { return t0.Add(time.Duration(s * 1e9)) }

// TestFastWindows checks SetFastWindows and what a narrower, more credulous
// window does: it reads a drop of the answer rate sooner, and reads one by
// chance more often while the rate holds (why it is not the default).
func TestFastWindows(t *testing.T) {
	t.Parallel()
	for _, bad := range [][]FastWindow{
		{{Weight: 5, Drop: 3, Rise: 2}},
		{{Weight: 400, Drop: 3, Rise: 2}},
		{{Weight: 60, Drop: 3, Rise: 2}, {Weight: 20, Drop: 3, Rise: 2}},
		{{Weight: 60, Drop: 0.5, Rise: 2}},
		{{Weight: 60, Drop: 3, Rise: math.NaN()}},
		{{Weight: 10, Drop: 3, Rise: 2}, {Weight: 20, Drop: 3, Rise: 2}, {Weight: 30, Drop: 3, Rise: 2}, {Weight: 40, Drop: 3, Rise: 2}, {Weight: 50, Drop: 3, Rise: 2}},
	} {
		if err := NewEstimator().SetFastWindows(bad); err == nil {
			t.Errorf("SetFastWindows(%v): no error", bad)
		}
	}
	narrow := []FastWindow{{Weight: 15, Drop: 1.5, Rise: math.Inf(1)}, {Weight: 60, Drop: 3, Rise: 2}}
	if err := NewEstimator().SetFastWindows(narrow); err != nil {
		t.Fatal(err)
	}

	// Dials at 3 a second, p 0.3 for 15 minutes, then 0.1: the rate each
	// estimator reads every second of the last 5 steady minutes, and 12 s
	// after the drop.
	const runs, perSecond, dropAt = 20, 3.0, 900.0
	var afterDef, afterNarrow float64
	var lowDef, lowNarrow, steadyTicks int
	for seed := range uint64(runs) {
		def, nar := NewEstimator(), NewEstimator()
		if err := nar.SetFastWindows(narrow); err != nil {
			t.Fatal(err)
		}
		ds := newDialStream(rand.New(rand.NewPCG(seed, 17)), perSecond, [2]float64{4, 16}, [2]float64{1, 24})
		for tick := range int(dropAt+12) * 5 {
			now := float64(tick) / 5
			p := 0.3
			if now >= dropAt {
				p = 0.1
			}
			ds.due(now, p)
			ds.feed(now, def, nar)
			last := tick == int(dropAt+12)*5-1
			if !last && (now < dropAt-300 || now >= dropAt || tick%5 != 0) {
				continue
			}
			ringing := ds.ringing()
			pd, pn := def.Model(at0(now), ringing, nil).P, nar.Model(at0(now), ringing, nil).P
			if last {
				afterDef += pd / runs
				afterNarrow += pn / runs
				continue
			}
			steadyTicks++
			if pd < 0.22 {
				lowDef++
			}
			if pn < 0.22 {
				lowNarrow++
			}
		}
	}
	fDef, fNarrow := float64(lowDef)/float64(steadyTicks), float64(lowNarrow)/float64(steadyTicks)
	t.Logf("12 s after the drop: default %.3f, narrow %.3f; steady under 0.22: default %.3f, narrow %.3f of the time",
		afterDef, afterNarrow, fDef, fNarrow)
	if afterNarrow > afterDef-0.03 {
		t.Errorf("12 s after the drop the narrow window reads %.3f, the default %.3f: want it lower by 0.03 or more", afterNarrow, afterDef)
	}
	if fNarrow < 2*fDef || fNarrow < 0.01 {
		t.Errorf("steady, the narrow window reads under 0.22 %.3f of the time, the default %.3f: want at least twice as often", fNarrow, fDef)
	}
}

// TestDelaysLearnedAtHighDialRates: the delay distributions are learned
// from settled dials (placed Settle ago), so the estimator must keep every
// outcome that long, however fast it dials. Kept to the latest 600, at 15
// dials a second every outcome went before it settled and the delays stayed
// the prior's (answers after 4-20 s) whatever they were.
func TestDelaysLearnedAtHighDialRates(t *testing.T) {
	t.Parallel()
	for _, perSecond := range []float64{3, 15, 60} {
		e := NewEstimator()
		// Answers after 2-6 s, failures after 1-10 s: not the prior's.
		ds := newDialStream(rand.New(rand.NewPCG(5, uint64(perSecond))), perSecond, [2]float64{2, 4}, [2]float64{1, 9})
		var m *Model
		for tick := range 5 * 300 {
			now := float64(tick) / 5
			ds.due(now, 0.2)
			ds.feed(now, e)
			m = e.Model(at0(now), nil, nil)
		}
		// At 6 s every answer has come; the prior has a quarter of them.
		if got := at(m.liveCDF, 6); got < 0.95 {
			t.Errorf("%g dials a second: %.2f of the answers learned to come by 6 s, want all (%d answers, %d failures learned)",
				perSecond, got, e.nLive, e.nFailed)
		}
		if got := at(m.failCDF, 10); got < 0.95 {
			t.Errorf("%g dials a second: %.2f of the failures learned to end by 10 s, want all", perSecond, got)
		}
		if n := len(e.outcomes); float64(n) > perSecond*(Settle.Seconds()+15)+DefaultOutcomes {
			t.Errorf("%g dials a second: %d outcomes kept, more than the latest %s's and %d", perSecond, n, Settle+15*time.Second, DefaultOutcomes)
		}
	}
	// Never asked for a model, nothing is learned: the outcomes are kept up
	// to maxOutcomes.
	e := NewEstimator()
	for i := range maxOutcomes + 100 {
		e.AddOutcome(Outcome{Placed: at0(float64(i) / 100), Delay: time.Second})
	}
	if n := len(e.outcomes); n > maxOutcomes || n < DefaultOutcomes || !e.outcomes[n-1].Placed.Equal(at0(float64(maxOutcomes+99)/100)) {
		t.Errorf("never asked for a model: %d outcomes kept (the most: %d), the latest %v", n, maxOutcomes, e.outcomes[n-1].Placed)
	}
}

// dialStream is a Poisson stream of dials whose outcomes are fed to
// estimators as they end: a live answer after live[0] + live[1]·U seconds,
// a failure after fail[0] + fail[1]·U (U uniform in [0, 1)).
type dialStream struct {
	rng        *rand.Rand
	perSecond  float64
	live, fail [2]float64
	next       float64 // when the next dial of the stream is placed
	pending    []streamDial
}

type streamDial struct {
	placed, end float64
	live        bool
}

func newDialStream(rng *rand.Rand, perSecond float64, live, fail [2]float64) *dialStream {
	return &dialStream{rng: rng, perSecond: perSecond, live: live, fail: fail}
}

// place places one dial at now that a person answers with probability p.
func (s *dialStream) place(now, p float64) {
	d := streamDial{placed: now, live: s.rng.Float64() < p}
	if d.live {
		d.end = now + s.live[0] + s.live[1]*s.rng.Float64()
	} else {
		d.end = now + s.fail[0] + s.fail[1]*s.rng.Float64()
	}
	s.pending = append(s.pending, d)
}

// due places the stream's dials due by now.
func (s *dialStream) due(now, p float64) {
	for ; s.next <= now; s.next += s.rng.ExpFloat64() / s.perSecond {
		s.place(now, p)
	}
}

// feed gives es the outcomes of the dials ended by now.
func (s *dialStream) feed(now float64, es ...*Estimator) {
	rest := s.pending[:0]
	for _, d := range s.pending {
		if d.end > now {
			rest = append(rest, d)
			continue
		}
		for _, e := range es {
			e.AddOutcome(Outcome{Placed: at0(d.placed), Live: d.live, Delay: time.Duration((d.end - d.placed) * 1e9)})
		}
	}
	s.pending = rest
}

// ringing are the placements of the dials still ringing.
func (s *dialStream) ringing() []time.Time {
	var r []time.Time
	for _, d := range s.pending {
		r = append(r, at0(d.placed))
	}
	return r
}
