package pacingsim

import (
	"math"
	"testing"
	"time"

	"github.com/ringback/ringback/services/dialer/pacing"
)

// Two hours of 50 agents at p = 0.2: predictive beats progressive and
// stays within 3% abandonment; progressive abandons nothing.
func TestPredictiveBeatsProgressive(t *testing.T) {
	t.Parallel()
	run := func(cfg pacing.Config) Result {
		sc := Issue(50, 0.2, 1, cfg)
		sc.Shift = 2 * time.Hour
		return Run(sc)
	}
	prog := run(pacing.Config{Mode: pacing.Agents})
	pred := run(pacing.Config{Mode: pacing.Predictive})
	t.Logf("progressive %+v", prog)
	t.Logf("predictive %+v", pred)
	if prog.Abandoned != 0 {
		t.Errorf("progressive abandoned %d calls", prog.Abandoned)
	}
	if pred.Abandonment > 0.03 {
		t.Errorf("predictive abandonment %.4f over 3%%", pred.Abandonment)
	}
	if pred.Occupancy < prog.Occupancy+0.1 {
		t.Errorf("predictive occupancy %.3f, progressive %.3f: want 10 points more", pred.Occupancy, prog.Occupancy)
	}
	if pred.Live == 0 || pred.Dials < pred.Live {
		t.Errorf("counts %+v", pred)
	}
}

// When p drops mid-shift, the dial level rises to the new need.
func TestDropReaction(t *testing.T) {
	t.Parallel()
	sc := Issue(50, 0.3, 2, pacing.Config{Mode: pacing.Predictive})
	sc.Shift, sc.PAfter, sc.ChangeAt = 90*time.Minute, 0.1, 45*time.Minute
	r := Run(sc)
	t.Logf("%+v", r)
	if r.LevelAfter <= r.LevelBefore*1.3 {
		t.Errorf("level before %.2f, after %.2f: want it to rise", r.LevelBefore, r.LevelAfter)
	}
	if r.React < 0 {
		t.Error("the level never reached half way")
	}
	if r.Abandonment > 0.03 {
		t.Errorf("abandonment %.4f", r.Abandonment)
	}
	// Told p as it drops, the pacing itself is half way within the
	// issue's 15 s: what the estimate takes to see the drop is the rest.
	sc.ToldP = true
	told := Run(sc)
	t.Logf("told p: %+v", told)
	if told.React < 0 || told.React > ReactTarget {
		t.Errorf("told p, the level was half way after %s, want within %s", told.React, ReactTarget)
	}
}

// A 100-agent start (every agent free, nothing measured) does not burst:
// the running abandonment rate stays under 5% once it rests on 100 answers
// (before Settle, the first outcomes' quick delays made it 15-18%).
func TestStartDoesNotBurst(t *testing.T) {
	t.Parallel()
	for seed := uint64(1); seed <= 4; seed++ {
		sc := Issue(100, 0.3, seed, pacing.Config{Mode: pacing.Predictive})
		sc.Shift = 20 * time.Minute
		r := Run(sc)
		if r.WorstDay > 0.05 {
			t.Errorf("seed %d: the running rate reached %.3f at %s", seed, r.WorstDay, r.WorstAt)
		}
	}
}

// The evidence of a drop grows with the dials placed since it and the time
// they had to answer; with no dials, no test tells the drop from chance
// (the false alarm of a test right half the time is a half).
func TestDropEvidence(t *testing.T) {
	t.Parallel()
	sc := Issue(100, 0.3, 1, pacing.Config{})
	sc.PAfter = 0.1
	at := func(rate float64, after time.Duration) Evidence { return DropEvidence(sc, rate, after, 4000, 1) }
	none := at(1e-9, 15*time.Second)
	if none.KL != 0 || math.Abs(none.FalseAlarm-0.5) > 1e-9 {
		t.Fatalf("no dials: %+v, want no information and a false alarm of 0.5", none)
	}
	early, late, faster := at(2, 15*time.Second), at(2, 30*time.Second), at(4, 15*time.Second)
	t.Logf("15 s: %+v; 30 s: %+v; 15 s at twice the rate: %+v", early, late, faster)
	if !(early.KL > 0.5 && late.KL > 3*early.KL && faster.KL > 1.5*early.KL) {
		t.Errorf("information %.2f / %.2f / %.2f nats: want it to grow with time and dials", early.KL, late.KL, faster.KL)
	}
	if !(early.FalseAlarm < 0.3 && late.FalseAlarm < early.FalseAlarm/5 && faster.FalseAlarm < early.FalseAlarm) {
		t.Errorf("false alarms %.3f / %.3f / %.3f: want them to fall with the information", early.FalseAlarm, late.FalseAlarm, faster.FalseAlarm)
	}
}

// The peer's level follows AST_VDadapt.pl's arithmetic.
func TestAdaptLevel(t *testing.T) {
	t.Parallel()
	hard := Adapt{Method: pacing.HardLimit, DropTarget: 0.03, MaxLevel: 3}
	quiet := adaptStats{callsToday: 1000, answersToday: 200, dropsToday: 6, left: 4 * time.Hour} // 3.0%: not over
	over := quiet
	over.dropsToday = 7 // 3.5%
	cases := []struct {
		name                string
		cfg                 Adapt
		level, diff, agents float64
		st                  adaptStats
		want                float64
	}{
		{"two agents ready in ten", hard, 2, 2, 10, quiet, 2.4},
		{"two calls waiting", hard, 2, -2, 10, quiet, 1.6},
		{"intensity 20 up", Adapt{Method: pacing.HardLimit, MaxLevel: 3, DropTarget: 0.03, Intensity: 20}, 2, 2, 10, quiet, 2.48},
		{"intensity 20 down", Adapt{Method: pacing.HardLimit, MaxLevel: 3, DropTarget: 0.03, Intensity: 20}, 2, -2, 10, quiet, 1.68},
		{"capped", hard, 2.8, 5, 10, quiet, 3},
		{"floored", hard, 1.1, -5, 10, quiet, 1},
		{"hard limit", hard, 2, 2, 10, over, 1},
		{"average", Adapt{Method: pacing.Average, MaxLevel: 3, DropTarget: 0.03}, 2, 2, 10, over, 1.2},
		{"tapered, 4 h left", Adapt{Method: pacing.Tapered, MaxLevel: 3, DropTarget: 0.03}, 2.5, 0, 10, over, 1},
		{"tapered, 9 h left", Adapt{Method: pacing.Tapered, MaxLevel: 3, DropTarget: 0.03}, 2.5, 0, 10, adaptStats{callsToday: 1000, answersToday: 200, dropsToday: 7, left: 9 * time.Hour}, 2.25},
		{"few calls yet", hard, 2, 0, 10, adaptStats{callsToday: 50, answersToday: 10, dropsToday: 5}, 2},
		{"half the minute dropped", hard, 2.4, 0, 10, adaptStats{callsMinute: 30, dropsMinute: 16}, 1.2},
	}
	for _, c := range cases {
		got := adaptLevel(c.cfg, c.level, c.diff, c.agents, c.st)
		if math.Abs(got-c.want) > 1e-9 {
			t.Errorf("%s: level %.4f, want %.4f", c.name, got, c.want)
		}
	}
}

// The peer in the harness: held at one line per agent it is progressive
// (no abandonment); free to adapt, it dials ahead of its agents, and its
// hard limit holds the day at about the target.
func TestAdaptPeer(t *testing.T) {
	t.Parallel()
	run := func(a Adapt) Result {
		sc := Issue(50, 0.2, 1, pacing.Config{})
		sc.Shift, sc.Adapt = 2*time.Hour, &a
		return Run(sc)
	}
	one := run(Adapt{MaxLevel: 1})
	prog := func() Result {
		sc := Issue(50, 0.2, 1, pacing.Config{Mode: pacing.Agents})
		sc.Shift = 2 * time.Hour
		return Run(sc)
	}()
	tuned := run(Adapt{DiffTarget: -10})
	t.Logf("level 1: %+v", one)
	t.Logf("progressive: %+v", prog)
	t.Logf("adapting: %+v", tuned)
	if one.Abandoned != 0 || one.Dials != prog.Dials || one.Occupancy != prog.Occupancy {
		t.Errorf("at level 1: %d dials, occupancy %.4f, %d abandoned; want progressive's %d dials, %.4f",
			one.Dials, one.Occupancy, one.Abandoned, prog.Dials, prog.Occupancy)
	}
	if tuned.Occupancy < one.Occupancy+0.05 || tuned.Level < one.Level*1.1 {
		t.Errorf("adapting: occupancy %.3f level %.2f, at level 1 %.3f %.2f: want it ahead", tuned.Occupancy, tuned.Level, one.Occupancy, one.Level)
	}
	if tuned.Abandonment > 0.035 || tuned.Abandoned == 0 {
		t.Errorf("adapting: abandonment %.4f (%d calls)", tuned.Abandonment, tuned.Abandoned)
	}
}

// The step response reads the mean of the runs' levels: a ramp from 0.3 to
// 0.9 over 20 s after the change is a tenth, half and nine tenths of the
// way at 2, 10 and 18 s, through noise that the runs average out and that
// one run shows.
func TestStepResponse(t *testing.T) {
	t.Parallel()
	tick := 200 * time.Millisecond
	ticks := int((StepBefore + StepAfter) / tick)
	change := int(StepBefore / tick)
	ramp := int(20 * time.Second / tick)
	run := func(noise float64) []float64 {
		s := make([]float64, ticks)
		for i := range s {
			switch {
			case i < change:
				s[i] = 0.3
			case i < change+ramp:
				s[i] = 0.3 + 0.6*float64(i-change+1)/float64(ramp)
			default:
				s[i] = 0.9
			}
			if i%2 == 0 {
				s[i] += noise
			} else {
				s[i] -= noise
			}
		}
		return s
	}
	st := StepResponse(tick, [][]float64{run(0.2), run(-0.2), nil})
	t.Logf("%+v", st)
	if st.Runs != 2 || math.Abs(st.Before-0.3) > 1e-9 || math.Abs(st.After-0.9) > 1e-9 || st.Noise > 1e-9 {
		t.Errorf("runs %d, before %.3f, after %.3f, noise %.3f", st.Runs, st.Before, st.After, st.Noise)
	}
	// Read at the end of the first bin whose mean is past the share: a
	// second after the ramp itself is.
	if st.T10 != 3*time.Second || st.T50 != 11*time.Second || st.T90 != 19*time.Second {
		t.Errorf("T10 %s, T50 %s, T90 %s; want 3s, 11s, 19s", st.T10, st.T50, st.T90)
	}
	// Alone, a run's ±0.2 leaves ±0.04 in each bin of five ticks: a
	// fifteenth of the step.
	if one := StepResponse(tick, [][]float64{run(0.2)}); math.Abs(one.Noise-0.04/0.6) > 1e-6 {
		t.Errorf("one run: noise %.4f, want %.4f", one.Noise, 0.04/0.6)
	}
	flat := run(0)
	for i := change; i < len(flat); i++ {
		flat[i] = 0.3
	}
	if st := StepResponse(tick, [][]float64{flat}); st.T10 != -1 {
		t.Errorf("no change: %+v", st)
	}
}

// The departure: when the mean level measurably starts to move, in standard
// errors of the runs' spread. Ten runs at 0.3 apart by their own offsets
// (the mean's standard error 0.0096), then rising 0.03 a second from 6 s
// after the change: three standard errors are 0.029 above the level before,
// reached in the 7th second; runs that rise only after a minute do not
// depart within it.
func TestStepDeparture(t *testing.T) {
	t.Parallel()
	tick := 200 * time.Millisecond
	ticks := int((StepBefore + StepAfter) / tick)
	change := int(StepBefore / tick)
	run := func(offset float64, from time.Duration) []float64 {
		s := make([]float64, ticks)
		for i := range s {
			s[i] = 0.3 + offset
			if after := time.Duration(i-change+1) * tick; after > from {
				s[i] += min(0.6, 0.03*(after-from).Seconds())
			}
		}
		return s
	}
	var rising, late [][]float64
	for j := range 10 {
		rising = append(rising, run(float64(j)*0.01-0.045, 6*time.Second))
		late = append(late, run(float64(j)*0.01-0.045, 70*time.Second))
	}
	st := StepResponse(tick, rising)
	if st.Departs < 7*time.Second || st.Departs > 8*time.Second {
		t.Errorf("departs %s, want 7-8 s (z %.1f)", st.Departs, st.Z[:12])
	}
	if len(st.Z) != int(DepartWindow/time.Second) || st.Z[0] > 0.5 || st.Z[20] < 10 {
		t.Errorf("z: %.1f", st.Z)
	}
	// A level that moves only after the first minute does not depart in it.
	if st := StepResponse(tick, late); st.Departs != -1 || st.After-st.Before < 0.5 {
		t.Errorf("runs rising after 70 s: depart at %s (step %.2f)", st.Departs, st.After-st.Before)
	}
}
