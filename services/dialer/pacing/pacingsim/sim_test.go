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
