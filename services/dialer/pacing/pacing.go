// Package pacing decides how many calls a campaign places now: a fixed
// number at once, one per free agent (progressive), or more than there are
// free agents (predictive), holding the share of live answers no agent
// takes (abandoned calls) under the regulators' ceiling.
//
// The package is pure: no clock, no I/O. The dialer's engine feeds it the
// campaign's state from PostgreSQL and Redis on every tick; the simulation
// harness (package pacingsim) feeds it a discrete-event model on a virtual
// clock. Both run this same code, which is what makes the harness's figures
// say something about production.
//
// # The predictive model
//
// Every dial in progress, every agent on a call or in wrap-up and every
// new dial is a random variable: will this dial reach a person, and when;
// will this agent be free, and when. From the outcomes measured so far
// (Estimator: the live-answer rate, the delays to a live answer and to a
// failure, the talk time as a lognormal) Decide computes, for each instant
// a new call could be answered, the expected agents free by then (plus the
// grace the regulators allow, agent_wait) and the expected answers that
// claim them first, with their variances, and from these (normal
// approximation) the probability that the new call, if a person answers
// it, finds no agent: its risk. It places calls while the next one's risk
// is at most Theta.
//
// Theta is where abandonment is controlled. It is a function of the
// campaign's abandonment budget in the regulators' windows (24 hours and 30
// days): with room to spare the pacer takes risks up to ThetaMax; as the
// room runs out it takes less; with none left, HARD_LIMIT dials one call
// per free agent, which cannot abandon. No state is kept between calls, so
// any dialer replica can take the next decision.
package pacing

import (
	"math"
	"time"
)

// Mode is how a campaign paces its dials.
type Mode int

// The modes.
const (
	// Fixed keeps MaxCalls calls at once.
	Fixed Mode = iota + 1
	// Agents places Multiplier calls per free agent (progressive at 1).
	Agents
	// Predictive places calls for the agents free and about to be free,
	// within the abandonment target.
	Predictive
)

func (m Mode) String() string {
	switch m {
	case Fixed:
		return "fixed"
	case Agents:
		return "agents"
	case Predictive:
		return "predictive"
	}
	return "unknown"
}

// Method is what Predictive does as abandonment nears its target
// (VICIdial's ADAPT_HARD_LIMIT, ADAPT_TAPERED, ADAPT_AVERAGE).
type Method int

// The methods.
const (
	// HardLimit drops to one call per free agent while the abandonment
	// budget is spent.
	HardLimit Method = iota + 1
	// Tapered allows up to twice the target early in the shift, tightening
	// linearly to the target by mid-shift, then behaves as HardLimit.
	Tapered
	// Average eases off in proportion to the overshoot, never stopping.
	Average
)

// Defaults.
const (
	DefaultTarget    = 0.03
	DefaultMaxLevel  = 4.0
	DefaultAgentWait = 2 * time.Second
	// DefaultThetaMax is the largest risk a new call may carry: the
	// probability that, answered by a person, it finds no agent. Higher,
	// the pacer spends the budget of a campaign's first hour in its first
	// minutes and pays for it with hours near the limit.
	DefaultThetaMax = 0.18
	// DefaultThetaBase is the risk taken with abandonment at its aim.
	// Both are for a campaign that releases its calls no agent would take
	// (ReleaseAfter): a call placed at a risk is then often ended before
	// it can abandon (harness, 10 agents, p = 0.2: θ 0.09 with releases
	// abandons 2.1%, as θ 0.06 without did).
	DefaultThetaBase = 0.09
	// NoReleaseThetaBase and NoReleaseThetaMax are the defaults of a
	// campaign that never releases a call.
	NoReleaseThetaBase = 0.06
	NoReleaseThetaMax  = 0.12
	// DefaultMargin keeps the pacer's own aim this far under the target, so
	// that the calls already in flight when the budget runs out cannot push
	// the rate over it.
	DefaultMargin = 0.1
	// DefaultReleaseAfter is the least ring the FCC (47 CFR 64.1200(a)(6))
	// and Ofcom require before an unanswered call is ended.
	DefaultReleaseAfter = 15 * time.Second
	// DefaultReleaseRisk: a call more likely than not to find no agent is
	// released. Lower releases more people who would have answered (0.3:
	// 7% of the live answers at 10 agents, p = 0.2) for less
	// abandonment; higher keeps more calls that then abandon.
	DefaultReleaseRisk = 0.5
)

// Config is a campaign's pacing.
type Config struct {
	Mode Mode
	// MaxCalls caps the calls at once (ringing or answered), whatever the
	// mode: the trunk's or the campaign's limit.
	MaxCalls int
	// Multiplier (Agents): calls per free agent.
	Multiplier float64
	// Target (Predictive): the abandonment ceiling (abandoned / live
	// answered).
	Target float64
	// Method (Predictive).
	Method Method
	// MaxLevel (Predictive): at most this many calls ringing per active
	// agent.
	MaxLevel float64
	// AgentWait is how long an answered person may wait for an agent.
	AgentWait time.Duration
	// ThetaBase (Predictive): the risk one new call may carry with the
	// abandonment rate at its aim; 0: DefaultThetaBase.
	ThetaBase float64
	// ThetaMax (Predictive): the most risk one new call may carry; 0:
	// DefaultThetaMax.
	ThetaMax float64
	// Margin (Predictive): the share of the target kept in reserve; 0:
	// DefaultMargin.
	Margin float64
	// ReleaseAfter (Predictive): a call still unanswered this long after it
	// was placed may be released (hung up) when, answered, it would most
	// likely find no agent; 0: DefaultReleaseAfter; below 0: never. The
	// regulators' minimum ring (15 s) is counted from the ringing, which
	// the switch's side checks (the dial's setup comes before it).
	ReleaseAfter time.Duration
	// ReleaseRisk (Predictive): the risk (that a person answering finds
	// no agent) above which such a call is released; 0:
	// DefaultReleaseRisk.
	ReleaseRisk float64
	// FixedTheta (Predictive), when above 0: the risk allowed whatever the
	// abandonment windows say (no budget control, no hard limit). No
	// campaign setting maps to it: it is how the harness measures the
	// frontier of the pacer's policy (occupancy against abandonment) apart
	// from the control of the budget.
	FixedTheta float64
}

// MinRing is how long a call must have rung before the pacing may release
// it (ReleaseAfter or its default); 0: the campaign never releases.
func (c Config) MinRing() time.Duration {
	return max(0, c.withDefaults().ReleaseAfter)
}

func (c Config) withDefaults() Config {
	if c.Multiplier <= 0 {
		c.Multiplier = 1
	}
	if c.Target <= 0 {
		c.Target = DefaultTarget
	}
	if c.Method == 0 {
		c.Method = HardLimit
	}
	if c.MaxLevel <= 0 {
		c.MaxLevel = DefaultMaxLevel
	}
	if c.AgentWait <= 0 {
		c.AgentWait = DefaultAgentWait
	}
	if c.ReleaseAfter == 0 {
		c.ReleaseAfter = DefaultReleaseAfter
	}
	base, most := DefaultThetaBase, DefaultThetaMax
	if c.ReleaseAfter < 0 {
		// Every call placed rings to its end: less risk per call.
		base, most = NoReleaseThetaBase, NoReleaseThetaMax
	}
	if c.ThetaBase <= 0 {
		c.ThetaBase = base
	}
	if c.ThetaMax <= 0 {
		c.ThetaMax = most
	}
	if c.Margin <= 0 {
		c.Margin = DefaultMargin
	}
	if c.ReleaseRisk <= 0 {
		c.ReleaseRisk = DefaultReleaseRisk
	}
	return c
}

// Window is a campaign's live answers and abandoned calls over one of the
// regulators' windows.
type Window struct {
	Answered  int64
	Abandoned int64
}

// Rate is Abandoned / Answered (0 without answers).
func (w Window) Rate() float64 {
	if w.Answered == 0 {
		return 0
	}
	return float64(w.Abandoned) / float64(w.Answered)
}

// Input is a campaign's state at one instant.
type Input struct {
	Now time.Time
	// Ready agents are free now.
	Ready int
	// WrapUpEnds: when each agent in wrap-up is free.
	WrapUpEnds []time.Time
	// OnCallSince: since when each agent on a call talks.
	OnCallSince []time.Time
	// Active agents are logged in and not paused (Ready, on a call or in
	// wrap-up); the dial level is per active agent.
	Active int
	// Wrap is the agents' wrap-up after a call.
	Wrap time.Duration
	// Ringing: when each call not answered yet was placed.
	Ringing []time.Time
	// Waiting answered calls have no agent yet.
	Waiting int
	// Live is every call of the campaign in progress (ringing or answered),
	// for MaxCalls.
	Live int
	// Day and Month are the 24-hour and 30-day windows.
	Day, Month Window
	// ShiftLeft and Shift (Tapered): the time to the end of the shift and
	// its length.
	ShiftLeft, Shift time.Duration
}

// Decision is what to do now.
type Decision struct {
	// Dials is how many calls to place now.
	Dials int
	// Level is the calls ringing per active agent once they are placed.
	Level float64
	// Theta is the risk allowed (Predictive).
	Theta float64
	// Limited: the abandonment budget is spent; dialing one call per free
	// agent.
	Limited bool
	// Release (Predictive): the calls of Input.Ringing (their indexes) to
	// hang up now, unanswered: each has rung at least ReleaseAfter and,
	// were a person to answer it, would find no agent with a probability
	// above ReleaseRisk. Dials counts without them.
	Release []int
}

// Decide says how many calls to place now. m is the measured model (only
// Predictive reads it).
func Decide(cfg Config, in Input, m *Model) Decision {
	cfg = cfg.withDefaults()
	room := math.MaxInt
	if cfg.MaxCalls > 0 {
		room = max(0, cfg.MaxCalls-in.Live)
	}
	var d Decision
	switch cfg.Mode {
	case Agents:
		d.Dials = progressive(in, cfg.Multiplier)
	case Predictive:
		d = predictive(cfg, in, m)
	default:
		d.Dials = room
	}
	d.Dials = min(d.Dials, room)
	if in.Active > 0 {
		d.Level = float64(len(in.Ringing)-len(d.Release)+d.Dials) / float64(in.Active)
	}
	return d
}

// progressive is one call per free agent (times mult) not already claimed
// by a call ringing or waiting: such a call can always be given an agent,
// unless that agent logs out or pauses meanwhile.
func progressive(in Input, mult float64) int {
	free := in.Ready - in.Waiting
	if free <= 0 {
		return 0
	}
	return max(0, int(math.Ceil(float64(free)*mult-1e-9))-len(in.Ringing))
}

// Theta is the risk a new call may carry given the abandonment budget, and
// whether the budget is spent (no risk at all: progressive).
func Theta(cfg Config, in Input) (theta float64, limited bool) {
	cfg = cfg.withDefaults()
	target := cfg.Target
	if cfg.Method == Tapered && in.Shift > 0 {
		// Twice the target at the start, the target from mid-shift on.
		half := float64(in.Shift) / 2
		if over := float64(in.ShiftLeft) - half; over > 0 {
			target *= 1 + over/half
		}
	}
	aim := target * (1 - cfg.Margin)
	// The budgets, in calls: how many more could be abandoned now with the
	// rate still at the aim, and at the target. The prior of one abandoned
	// call per 1/aim answers lets a campaign start predictively instead of
	// waiting for its first thousand answers.
	budget := func(rate float64) float64 {
		prior := 1 / aim
		day := rate*(float64(in.Day.Answered)+prior) - float64(in.Day.Abandoned)
		month := rate*(float64(in.Month.Answered)+prior) - float64(in.Month.Abandoned)
		return math.Min(day, month)
	}
	switch cfg.Method {
	case Average:
		// No hard stop: the further over, the more cautious, down to a
		// tenth of ThetaMax.
		if b := budget(aim); b < 1 {
			return cfg.ThetaBase * math.Max(0.1, 1/(2-b)), false
		}
		return cfg.ThetaBase, false
	default:
		limit := target * (1 - cfg.Margin/2)
		if budget(limit) <= 0 {
			// Near the ceiling: no risk at all until the rate is back
			// under it. Short of the ceiling itself: the calls ringing
			// when the budget runs out still abandon some.
			return 0, true
		}
		// An integral controller without state: under the aim, the risk
		// allowed scales with the square of how far under it the
		// abandonment rate (of the stricter window, with a prior at the
		// aim worth priorAnswers answers) is; between the aim and the hard
		// limit it falls linearly to the floor, so that the pacer steers
		// clear of the limit rather than bouncing off it (a hard limit
		// leaves agents idle, and the pool of idle agents it leaves is
		// what the next burst of abandoned calls comes from). Steady risk
		// spends the budget where it buys the most talk time.
		r := math.Max(smoothed(in.Day, aim), smoothed(in.Month, aim))
		if r >= aim {
			return math.Max(thetaFloor, cfg.ThetaBase*(limit-r)/(limit-aim)), false
		}
		ratio := aim / math.Max(r, aim/10)
		return math.Min(cfg.ThetaMax, cfg.ThetaBase*ratio*ratio), false
	}
}

// smoothed is w's rate with a prior at aim worth priorAnswers answers.
func smoothed(w Window, aim float64) float64 {
	return (float64(w.Abandoned) + aim*priorAnswers) / (float64(w.Answered) + priorAnswers)
}

// thetaFloor is the risk still taken over the aim; easeCalls is the budget
// (in abandoned calls) below which the pacer eases off.
const (
	burstShare   = 10
	thetaFloor   = 0.002
	priorAnswers = 200
)

// release picks the calls to hang up unanswered. A call placed now is
// answered, if at all, 4-20 s later, and by then the agents it counted on
// may still be talking; the ones that have rung long enough to be ended
// lawfully and would now most likely find no agent are better ended than
// abandoned. The person sees a missed call and is dialed again later (the
// record's NO_ANSWER retry); the pacer, rid of the call's risk, dials a
// little further ahead (at 10 agents and p = 0.2, 2.5% of the live
// answers released for half the abandonment at the same occupancy; see
// docs/pacing.md).
func release(cfg Config, in Input, m *Model, fc func() *forecast) []int {
	var out []int
	for i, placed := range in.Ringing {
		age := in.Now.Sub(placed)
		if age >= cfg.ReleaseAfter && m.ringingRisk(fc(), age.Seconds()) > cfg.ReleaseRisk {
			out = append(out, i)
		}
	}
	for _, i := range out {
		fc().drop(m, in.Now.Sub(in.Ringing[i]).Seconds())
	}
	return out
}

// without is ts without the indexes drop (ascending).
func without(ts []time.Time, drop []int) []time.Time {
	out := make([]time.Time, 0, len(ts)-len(drop))
	j := 0
	for i, t := range ts {
		if j < len(drop) && drop[j] == i {
			j++
			continue
		}
		out = append(out, t)
	}
	return out
}

// predictive places calls while the next one's risk is at most Theta.
func predictive(cfg Config, in Input, m *Model) Decision {
	theta, limited := Theta(cfg, in)
	if cfg.FixedTheta > 0 {
		theta, limited = cfg.FixedTheta, false
	}
	d := Decision{Theta: theta, Limited: limited}
	if m == nil || !m.Ready() {
		// Nothing measured yet to predict with.
		d.Dials = progressive(in, 1)
		return d
	}
	// The forecast is built once, when first needed (a call old enough to
	// release, or calls to place), on the calls ringing now.
	var f *forecast
	fc := func() *forecast {
		if f == nil {
			f = m.forecast(in, cfg.AgentWait)
		}
		return f
	}
	if cfg.ReleaseAfter > 0 {
		d.Release = release(cfg, in, m, fc)
		if len(d.Release) > 0 {
			in.Ringing = without(in.Ringing, d.Release)
			in.Live -= len(d.Release)
		}
	}
	prog := progressive(in, 1)
	if limited {
		// No budget: one call per free agent.
		d.Dials = prog
		return d
	}
	maxRinging := int(cfg.MaxLevel * float64(max(in.Active, 1)))
	limit := max(0, maxRinging-len(in.Ringing))
	if limit == 0 {
		return d
	}
	// At most a tenth of the active agents' worth of calls at once: a
	// pool of idle agents (a start, the end of a hard limit) is filled
	// over a few ticks, each seeing what the last placed, rather than in
	// one burst that one misjudged rate would turn into abandoned calls.
	limit = min(limit, max(1, in.Active/burstShare))
	n := 0
	for n < limit && fc().risk(n+1) <= theta {
		n++
	}
	// Never fewer than progressive: its calls carry no risk.
	d.Dials = max(n, prog)
	return d
}
