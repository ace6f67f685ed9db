package pacingsim

import (
	"math"
	"time"

	"github.com/ringback/ringback/services/dialer/pacing"
)

// Adapt is VICIdial's adaptive predictive dialing (its dial methods
// ADAPT_HARD_LIMIT, ADAPT_TAPERED and ADAPT_AVERAGE), the peer the issue
// names, run in the harness as a baseline: not a pacer of ours, and not in
// the dialer. It is the rule of VICIdial's published scripts, written from
// their description (AST_VDadapt.pl sets the dial level, AST_VDauto_dial.pl
// places the calls):
//
//   - Every second, it samples the agents ready and the answered calls
//     waiting for an agent; every 15 s it multiplies the dial level by
//     1 + (mean ready - mean waiting over those 15 samples) / agents, that
//     change scaled by the intensity, and holds it within [1, MaxLevel].
//   - Every 60 s it counts the drops (abandoned calls): if more than half
//     of the last minute's calls (more than 20) dropped, the next level is
//     halved; if the day's drops are over DropTarget of its answers (after
//     50 calls), ADAPT_HARD_LIMIT sets the level to 1, ADAPT_AVERAGE halves
//     it, and ADAPT_TAPERED scales it by the share of the last ten hours of
//     the shift still to come.
//   - It keeps level × agents calls up (ringing, waiting or talking), the
//     agents being those not paused (an agent in wrap-up is at the
//     disposition screen: paused).
type Adapt struct {
	// Method is the dial method: pacing.HardLimit, Tapered or Average.
	Method pacing.Method
	// DropTarget is adaptive_dropped_percentage (0: 3%).
	DropTarget float64
	// MaxLevel is adaptive_maximum_level (0: 3.0).
	MaxLevel float64
	// Intensity is adaptive_intensity, in percent (-40 to 40; 0: none).
	Intensity float64
	// DiffTarget is adaptive_dl_diff_target: the agents ready (negative)
	// or calls waiting (positive) the level aims at on average (0: as
	// many of one as of the other).
	DiffTarget float64
	// Start is the campaign's auto_dial_level when the shift starts (0: 1).
	Start float64
}

// The scripts' cadences.
const (
	adaptSample = time.Second
	adaptEvery  = 15 * time.Second
	adaptDrops  = 60 * time.Second
	adaptWindow = 15 // samples
)

type adaptSampleRow struct{ ready, waiting, agents float64 }

// adapt is the peer's state in a run.
type adapt struct {
	cfg                               Adapt
	level                             float64
	samples                           []adaptSampleRow
	nextSample, nextAdjust, nextDrops time.Duration
	// The drop statistics at the last count (every adaptDrops).
	callsToday, answersToday, dropsToday int64
	callsMinute, dropsMinute             int
}

func newAdapt(cfg Adapt) *adapt {
	if cfg.DropTarget <= 0 {
		cfg.DropTarget = 0.03
	}
	if cfg.MaxLevel <= 0 {
		cfg.MaxLevel = 3
	}
	if cfg.Start <= 0 {
		cfg.Start = 1
	}
	if cfg.Method == 0 {
		cfg.Method = pacing.HardLimit
	}
	return &adapt{cfg: cfg, level: cfg.Start, nextSample: adaptSample, nextAdjust: adaptEvery, nextDrops: adaptDrops}
}

// dials is how many calls the peer places now.
func (a *adapt) dials(s *sim) int {
	for s.now >= a.nextSample {
		a.sample(s)
		a.nextSample += adaptSample
	}
	for s.now >= a.nextDrops {
		a.countDrops(s)
		a.nextDrops += adaptDrops
	}
	for s.now >= a.nextAdjust {
		a.adjust(s)
		a.nextAdjust += adaptEvery
	}
	active, onCall := 0, 0
	for i := range s.agents {
		switch s.agents[i].state {
		case free:
			active++
		case talking, reserved:
			active++
			onCall++
		}
	}
	goal := int(math.Round(a.level * float64(active)))
	return max(0, goal-(len(s.ringing)+len(s.waiting)+onCall))
}

func (a *adapt) sample(s *sim) {
	row := adaptSampleRow{waiting: float64(len(s.waiting)), agents: float64(len(s.agents))}
	for i := range s.agents {
		if s.agents[i].state == free {
			row.ready++
		}
	}
	a.samples = append(a.samples, row)
	if len(a.samples) > adaptWindow {
		a.samples = a.samples[1:]
	}
}

func (a *adapt) countDrops(s *sim) {
	a.callsToday, a.answersToday, a.dropsToday = int64(len(s.dials)), s.live, s.abandoned
	a.callsMinute, a.dropsMinute = 0, 0
	for i := len(s.dials) - 1; i >= 0 && s.dials[i].placed > s.now-adaptDrops; i-- {
		a.callsMinute++
		if s.dials[i].abandoned {
			a.dropsMinute++
		}
	}
}

func (a *adapt) adjust(s *sim) {
	var ready, waiting, agents float64
	for _, r := range a.samples {
		ready, waiting, agents = ready+r.ready, waiting+r.waiting, agents+r.agents
	}
	if agents == 0 {
		return
	}
	n := float64(len(a.samples))
	a.level = adaptLevel(a.cfg, a.level, ready/n-waiting/n+a.cfg.DiffTarget, agents/n, adaptStats{
		callsToday: a.callsToday, answersToday: a.answersToday, dropsToday: a.dropsToday,
		callsMinute: a.callsMinute, dropsMinute: a.dropsMinute, left: s.sc.Shift - s.now,
	})
}

type adaptStats struct {
	callsToday, answersToday, dropsToday int64
	callsMinute, dropsMinute             int
	// left is the time to the end of the shift (ADAPT_TAPERED).
	left time.Duration
}

// adaptLevel is AST_VDadapt.pl's new dial level from the level, the
// differential (the mean ready agents less the mean waiting calls, plus the
// target) and the mean agents.
func adaptLevel(cfg Adapt, level, differential, agents float64, st adaptStats) float64 {
	change := differential / agents
	intensity := cfg.Intensity / 100
	if change < 0 {
		change *= math.Abs(intensity - 1)
	} else {
		change *= intensity + 1
	}
	next := min(level*(1+change), cfg.MaxLevel)
	next = max(next, 1)
	if st.callsMinute > 20 && float64(st.dropsMinute) > 0.5*float64(st.callsMinute) {
		next /= 2
	}
	if st.callsToday > 50 && st.answersToday > 0 && float64(st.dropsToday) > cfg.DropTarget*float64(st.answersToday) {
		switch cfg.Method {
		case pacing.HardLimit:
			next = 1
		case pacing.Average:
			next /= 2
		case pacing.Tapered:
			if st.left < 0 {
				next = 1
			} else {
				next *= min(1, st.left.Hours()/10)
			}
		}
	}
	return max(next, 1)
}
