package pacing

import (
	"math"
	"slices"
	"time"
)

// Bin is the resolution of the delay distributions.
const Bin = time.Second

// bins is how far the delay distributions reach (a dial rings at most
// this long; later outcomes land in the last bin).
const bins = 64

// Settle is how long the model waits after a campaign's first dial before
// it predicts: by then that dial has ended, whatever it was. Sooner, the
// outcomes are the quickest answers and failures only, the delay
// distributions read short, the calls still ringing look like failures, and
// the pacer fills its idle agents with a burst of calls that abandons (in
// the harness, 15-18% of the first answers of a 100-agent start).
const Settle = bins * Bin

// Outcome is one finished dial, as the estimator learns it.
type Outcome struct {
	// Placed is when the call was placed.
	Placed time.Time
	// Live: a person answered (a machine is not live).
	Live bool
	// Delay from the dial to the answer (live) or to the end (not live).
	Delay time.Duration
	// Released: the dialer hung the call up unanswered after Delay
	// (Decision.Release, or a campaign stopped with its calls). It says
	// only that nobody answered within Delay: the answer rate counts the
	// live answer it might have had since (see Model), and the failures'
	// delays leave it out.
	Released bool
}

// Estimator learns a campaign's model from its latest outcomes and talk
// times. Not safe for concurrent use.
type Estimator struct {
	// outcomes, oldest placed first (they end out of order: insertion
	// near the end keeps the order).
	outcomes []Outcome
	// liveHist and failHist count the outcomes' delays per bin.
	liveHist, failHist [bins]float64
	nLive, nFailed     int
	talks              ring[talk]
	// talkSum, talkSq and talkSecs sum the remembered talks' logarithms,
	// their squares and their lengths.
	talkSum, talkSq, talkSecs float64
	talkOldest                time.Time
	// fast is how many of the latest dials the fast answer rate looks at:
	// a change of the answer rate shows in it within seconds.
	fast int
	// dist caches the distributions until the next Add.
	dist *Model
	// lastP is the answer rate last measured (0: none yet).
	lastP float64
}

// Sizes of the estimator's memory.
const (
	// DefaultOutcomes: the slow answer rate and the delay distributions
	// are over the latest outcomes.
	DefaultOutcomes = 600
	// DefaultFast: the fast answer rate.
	DefaultFast = 60
	// DefaultTalks: the talk-time fit.
	DefaultTalks = 300
	// minOutcomes is what the model needs before it predicts.
	minOutcomes = 30
	// minInfo is the information (dials' worth) the answer rate must rest
	// on before the pacer dials ahead of its agents: the first answers of a
	// campaign are its quickest, and a rate read from them is far off.
	minInfo = 100
	// slowWeight and fastWeight are the information (dials' worth) the
	// steady and the fast answer rates are measured over.
	slowWeight = 300
	fastWeight = 60
	// minP keeps a run of failures from reading as "nobody ever answers",
	// which would dial without end.
	minP = 0.01
)

// NewEstimator returns an empty estimator.
func NewEstimator() *Estimator {
	return &Estimator{talks: newRing[talk](DefaultTalks), fast: DefaultFast}
}

// AddOutcome records a finished dial.
func (e *Estimator) AddOutcome(o Outcome) {
	if len(e.outcomes) == DefaultOutcomes {
		e.count(e.outcomes[0], -1)
		e.outcomes = append(e.outcomes[:0], e.outcomes[1:]...)
	}
	i := len(e.outcomes)
	for i > 0 && e.outcomes[i-1].Placed.After(o.Placed) {
		i--
	}
	e.outcomes = slices.Insert(e.outcomes, i, o)
	e.count(o, 1)
	e.dist = nil
}

func (e *Estimator) count(o Outcome, n int) {
	if o.Released {
		return
	}
	b := min(bins-1, max(0, int(o.Delay/Bin)))
	if o.Live {
		e.liveHist[b] += float64(n)
		e.nLive += n
	} else {
		e.failHist[b] += float64(n)
		e.nFailed += n
	}
}

type talk struct {
	start time.Time
	secs  float64
}

// AddTalk records the talk of a call an agent took, from start for d.
func (e *Estimator) AddTalk(start time.Time, d time.Duration) {
	t := talk{start: start, secs: math.Max(1, d.Seconds())}
	if e.talks.len() >= plainFitTalks {
		old := e.talks.buf[e.talks.next]
		x := math.Log(old.secs)
		e.talkSum, e.talkSq, e.talkSecs = e.talkSum-x, e.talkSq-x*x, e.talkSecs-old.secs
	}
	e.talks.add(t)
	x := math.Log(t.secs)
	e.talkSum, e.talkSq, e.talkSecs = e.talkSum+x, e.talkSq+x*x, e.talkSecs+t.secs
	if start.Before(e.talkOldest) || e.talkOldest.IsZero() || e.talks.full {
		e.talkOldest = e.oldestTalk()
	}
	e.dist = nil
}

// oldestTalk is the earliest start among the remembered talks.
func (e *Estimator) oldestTalk() time.Time {
	var oldest time.Time
	e.talks.each(func(_ int, t talk) {
		if oldest.IsZero() || t.start.Before(oldest) {
			oldest = t.start
		}
	})
	return oldest
}

// Released is how many of the outcomes it holds are of released calls.
func (e *Estimator) Released() int {
	n := 0
	for _, o := range e.outcomes {
		if o.Released {
			n++
		}
	}
	return n
}

// Outcomes is how many outcomes the estimator holds.
func (e *Estimator) Outcomes() int { return len(e.outcomes) }

// Model is what the estimator knows at now, given the calls still ringing
// (placed at those instants) and the agents' calls still talking (since
// those instants).
//
// The answer rate is not the share of live answers among the outcomes:
// failures come back sooner than answers (1-25 s against 4-20 s), so when
// the pace rises the latest outcomes are failures, and a pacer that
// believed them would dial far too much. Each dial placed a seconds ago
// would, if live, have been answered by now with probability F_L(a) (the
// live-delay distribution); so the live answers among the latest dials,
// ringing ones included, over the sum of their F_L(a) is an unbiased rate
// that uses even the newest dials. Over the latest DefaultOutcomes dials it
// is steady; over the latest DefaultFast it follows a change within
// seconds, and is taken when it differs from the steady one by more than
// chance explains.
//
// The talk time is fitted the same way: calls still talking count. The mean
// is the talk time observed since the oldest remembered call started (the
// calls still going included, up to now) over the calls that ended, the
// estimate that does not mistake a campaign's first, short calls for its
// calls; the spread is that of the ended calls' logarithms.
func (e *Estimator) Model(now time.Time, ringing, talking []time.Time) *Model {
	if e.dist == nil {
		e.dist = e.distributions()
	}
	m := *e.dist
	// The outcomes of dials placed at least Settle ago: every one of those
	// dials has ended.
	m.settled, _ = slices.BinarySearchFunc(e.outcomes, now.Add(-Settle), func(o Outcome, t time.Time) int {
		if o.Placed.After(t) {
			return 1
		}
		return -1
	})
	m.fitTalk(e, now, talking)
	if m.N == 0 {
		return &m
	}
	// Newest first: the ringing calls (newest first when given in
	// placement order, as the engine and the harness do; sorted otherwise),
	// then the outcomes. Until the window holds that much information (the
	// sum of F_L(a): a dial placed a second ago says almost nothing yet).
	if !slices.IsSortedFunc(ringing, func(a, b time.Time) int { return a.Compare(b) }) {
		ringing = slices.Clone(ringing)
		slices.SortFunc(ringing, func(a, b time.Time) int { return a.Compare(b) })
	}
	rate := func(want float64) (p, weight float64) {
		live := 0.0
		r, o := len(ringing)-1, len(e.outcomes)-1
		for (r >= 0 || o >= 0) && weight < want {
			if r >= 0 && (o < 0 || !ringing[r].Before(e.outcomes[o].Placed)) {
				weight += at(m.liveCDF, math.Max(0, now.Sub(ringing[r]).Seconds()))
				r--
				continue
			}
			age := math.Max(0, now.Sub(e.outcomes[o].Placed).Seconds())
			weight += at(m.liveCDF, age)
			if r := e.outcomes[o]; r.Released {
				// Released because nobody had answered it yet: a
				// window that ended at its release would count only
				// the dials that did not answer late, and read the
				// rate low. It keeps its window, and counts the live
				// answer it would have given since, as likely as the
				// last rate says.
				live += e.lateLive(&m, r.Delay.Seconds(), age)
			}
			if e.outcomes[o].Live {
				live++
			}
			o--
		}
		if weight < 1 {
			return -1, weight
		}
		return math.Min(1, live/weight), weight
	}
	slow, sw := rate(slowWeight)
	m.info = sw
	fast, w := rate(fastWeight)
	if slow < 0 {
		slow = 0.5
	}
	m.P = slow
	if fast >= 0 && w >= fastWeight*0.9 {
		// Asked every tick, a two-sigma test would fire by chance every few
		// seconds. A rate that looks higher (fewer dials: safe) is believed
		// at two standard errors, one that looks lower (more dials) at
		// three.
		se := math.Sqrt(math.Max(slow*(1-slow), 0.01) / w)
		if fast > slow+2*se || fast < slow-3*se {
			m.P = fast
		}
	}
	m.P = math.Max(m.P, minP)
	e.lastP = m.P
	return &m
}

// lateLive is the chance that a call released after d seconds, unanswered,
// would have been answered by a person between then and age seconds after
// its dial, at the rate last measured.
func (e *Estimator) lateLive(m *Model, d, age float64) float64 {
	p := e.lastP
	if p <= 0 {
		p = 0.2
	}
	fd, pending := m.pending(p, d)
	if pending <= 1e-9 || age <= d {
		return 0
	}
	return p * (at(m.liveCDF, age) - fd) / pending
}

// distributions are the delay and talk distributions (the part of the model
// that changes only with an Add).
func (e *Estimator) distributions() *Model {
	m := &Model{N: len(e.outcomes)}
	m.liveCDF = cdf(e.liveHist[:], e.nLive, uniformPrior(4, 20))
	m.failCDF = cdf(e.failHist[:], e.nFailed, uniformPrior(1, 30))
	return m
}

// plainFitTalks is how many ended talks the plain lognormal fit needs.
const plainFitTalks = 100

// Talk-time prior: 120 seconds, coefficient of variation 1, worth ten calls.
const (
	talkPriorN    = 10
	talkPriorMean = 120.0
)

// fitTalk fits the lognormal talk time (see Model).
func (m *Model) fitTalk(e *Estimator, now time.Time, talking []time.Time) {
	s0 := math.Sqrt(math.Ln2)
	exposure, ended := talkPriorMean*talkPriorN+e.talkSecs, float64(talkPriorN+e.talks.len())
	sum, sq, oldest := e.talkSum, e.talkSq, e.talkOldest
	for _, since := range talking {
		if !oldest.IsZero() && since.Before(oldest) {
			since = oldest
		}
		exposure += math.Max(0, now.Sub(since).Seconds())
	}
	n := float64(e.talks.len())
	sigma := s0
	if n >= 2 {
		// The spread, with the prior's weight.
		mean := sum / n
		v := (sq/n - mean*mean)
		sigma = math.Sqrt((v*n + s0*s0*talkPriorN) / (n + talkPriorN))
	}
	m.talkSigma = math.Max(sigma, 0.1)
	m.talkMu = math.Log(exposure/ended) - m.talkSigma*m.talkSigma/2
	if e.talks.len() >= plainFitTalks {
		// Enough talks for a plain fit: the exposure estimate, exact for
		// exponential talk times, runs high for the long-tailed ones calls
		// have.
		m.talkMu = sum / n
	}
	if math.IsNaN(m.talkMu) || math.IsNaN(m.talkSigma) {
		m.talkMu, m.talkSigma = math.Log(talkPriorMean)-s0*s0/2, s0
	}
}

// uniformPrior is a delay distribution spread evenly over [lo, hi] seconds,
// what the model assumes of a delay it has not measured yet.
func uniformPrior(lo, hi int) [bins]float64 {
	var p [bins]float64
	for i := lo; i <= hi && i < bins; i++ {
		p[i] = 1 / float64(hi-lo+1)
	}
	return p
}

// cdf turns counts per bin into a cumulative distribution at the bins'
// edges (cdf[k] = P(delay < k·Bin)), mixing in the prior with the weight of
// five outcomes so an empty histogram still means something.
func cdf(counts []float64, n int, prior [bins]float64) []float64 {
	const priorN = 5.0
	out := make([]float64, bins+1)
	total := float64(n) + priorN
	acc := 0.0
	for k := range bins {
		acc += (counts[k] + priorN*prior[k]) / total
		out[k+1] = math.Min(1, acc)
	}
	out[bins] = 1
	return out
}

// Model is a campaign's measured behaviour.
type Model struct {
	// P is the probability that a dial reaches a person.
	P float64
	// N is the outcomes it was measured on.
	N                 int
	liveCDF, failCDF  []float64
	talkMu, talkSigma float64
	// info is the information the answer rate rests on (dials' worth).
	info float64
	// settled is how many of the outcomes are of dials placed at least
	// Settle ago.
	settled int
}

// Ready says whether the model has measured enough to predict with: enough
// outcomes, of dials placed long enough ago that their delays are not only
// the quick ones, and enough information on the answer rate.
func (m *Model) Ready() bool {
	return m != nil && m.settled >= minOutcomes && m.info >= minInfo
}

// TalkMean is the mean talk time the model expects.
func (m *Model) TalkMean() time.Duration {
	return time.Duration(math.Exp(m.talkMu+m.talkSigma*m.talkSigma/2) * float64(time.Second))
}

// at interpolates a cumulative distribution at t seconds.
func at(c []float64, t float64) float64 {
	if t <= 0 {
		return 0
	}
	k := int(t)
	if k >= bins {
		return 1
	}
	f := t - float64(k)
	return c[k] + (c[k+1]-c[k])*f
}

// talkSurvival is P(talk > t seconds).
func (m *Model) talkSurvival(t float64) float64 {
	if t <= 0 {
		return 1
	}
	return 1 - phi((math.Log(t)-m.talkMu)/m.talkSigma)
}

// phiTable holds the standard normal CDF on [-8, 8], 256 points a unit:
// the forecast needs thousands of values a decision, to no better than
// three decimals.
var phiTable = func() []float64 {
	t := make([]float64, 16*256+1)
	for i := range t {
		z := float64(i)/256 - 8
		t[i] = 0.5 * math.Erfc(-z/math.Sqrt2)
	}
	return t
}()

// phi is the standard normal CDF, interpolated from phiTable.
func phi(z float64) float64 {
	x := (z + 8) * 256
	if math.IsNaN(x) {
		return 0.5
	}
	if x <= 0 {
		return 0
	}
	if x >= float64(len(phiTable)-1) {
		return 1
	}
	i := int(x)
	return phiTable[i] + (phiTable[i+1]-phiTable[i])*(x-float64(i))
}

// forecast is the supply of agents and the demand of calls already placed
// at each instant of the horizon, from which the risk of new calls follows.
type forecast struct {
	// At offsets tau[k] seconds from now: a new call answered then finds
	// supMean agents free by tau+wait (variance supVar) and demMean earlier
	// answers (variance demVar) before it.
	tau                              []float64
	weight                           []float64 // P(a new call's live answer falls at tau[k]) / P(live)
	newLive                          []float64 // P(a new call is live and answered by tau[k])
	supMean, supVar, demMean, demVar []float64
}

// horizon is where the new calls' live answers may fall: the bins with
// mass in the live-delay distribution.
func (m *Model) horizon() int {
	last := 1
	for k := 1; k <= bins; k++ {
		if m.liveCDF[k]-m.liveCDF[k-1] > 1e-4 {
			last = k
		}
	}
	return last
}

func (m *Model) forecast(in Input, wait time.Duration) *forecast {
	h := m.horizon()
	f := &forecast{
		tau: make([]float64, h), weight: make([]float64, h), newLive: make([]float64, h),
		supMean: make([]float64, h), supVar: make([]float64, h), demMean: make([]float64, h), demVar: make([]float64, h),
	}
	g := wait.Seconds()
	wrap := in.Wrap.Seconds()
	now := in.Now
	for k := range h {
		t := float64(k) + 0.5
		f.tau[k] = t
		f.weight[k] = m.liveCDF[k+1] - m.liveCDF[k]
		f.newLive[k] = m.P * at(m.liveCDF, t)
		f.supMean[k] = float64(in.Ready)
		f.demMean[k] = float64(in.Waiting)
	}
	for _, end := range in.WrapUpEnds {
		free := end.Sub(now).Seconds() - g
		for k := range h {
			if free <= f.tau[k] {
				f.supMean[k]++
			}
		}
	}
	for _, since := range in.OnCallSince {
		x := math.Max(0, now.Sub(since).Seconds())
		sx := m.talkSurvival(x)
		if sx <= 0 {
			sx = 1e-12
		}
		for k := range h {
			// Free by tau+wait if the talk ends by tau+wait-wrap.
			left := f.tau[k] + g - wrap
			if left <= 0 {
				continue
			}
			q := 1 - m.talkSurvival(x+left)/sx
			f.supMean[k] += q
			f.supVar[k] += q * (1 - q)
		}
	}
	// The calls the pacer will place in the next ticks are answered in
	// turn, and the quickest of them before a call placed now that rings
	// longer: they take agents first. In a steady state their live answers
	// come at the rate agents free up; those placed by s, answered within
	// tau, are that rate times the integral of the live-delay CDF.
	if in.Active > 0 {
		rate := float64(in.Active) / (m.TalkMean().Seconds() + wrap)
		// Or faster, when the pacer is filling free agents (a campaign's
		// start, agents logging in): the pace of the last ten seconds.
		recent := 0
		for _, placed := range in.Ringing {
			if now.Sub(placed) <= 10*time.Second {
				recent++
			}
		}
		rate = math.Max(rate, m.P*float64(recent)/10)
		integral := 0.0
		prev := 0.0
		for k := range h {
			// Integral of the CDF from 0 to tau[k] (trapezoids).
			t := f.tau[k]
			lo := 0.0
			if k > 0 {
				lo = f.tau[k-1]
			}
			cur := at(m.liveCDF, t)
			integral += (prev + cur) / 2 * (t - lo)
			prev = cur
			future := rate * integral
			f.demMean[k] += future
			f.demVar[k] += future
		}
	}
	for _, placed := range in.Ringing {
		f.ringing(m, math.Max(0, now.Sub(placed).Seconds()), 1)
	}
	return f
}

// ringing adds (sign 1) or takes out (-1) the demand of a call ringing for
// a seconds: the chance that a person answers it by each instant.
func (f *forecast) ringing(m *Model, a float64, sign float64) {
	p := m.P
	fa, pending := m.pending(p, a)
	if pending <= 1e-9 {
		return
	}
	for k, t := range f.tau {
		r := p * (at(m.liveCDF, a+t) - fa) / pending
		f.demMean[k] += sign * r
		f.demVar[k] += sign * r * (1 - r)
	}
}

// pending is, for a call still ringing a seconds after its dial, the
// chance F_L(a) that a live call would have been answered by then, and the
// chance that any call (live with probability p) is still ringing.
func (m *Model) pending(p, a float64) (fa, pending float64) {
	fa = at(m.liveCDF, a)
	return fa, p*(1-fa) + (1-p)*(1-at(m.failCDF, a))
}

// drop takes a call ringing for a seconds out of the demand (released).
func (f *forecast) drop(m *Model, a float64) { f.ringing(m, a, -1) }

// varFloor is added to every variance of the risk: the normal
// approximation of sums of a few Bernoulli variables is overconfident in
// small teams (calibrated with the harness: 0.25 to 1 moved 50 agents'
// worst seed from 0.860 to 0.861 occupancy at less abandonment).
const varFloor = 1.0

// risk is the probability that the n-th new call, answered by a person,
// finds no agent within the wait: averaged over when it is answered, the
// chance that the agents free by then are fewer than the answers before
// it (the calls already placed and n-1 other new ones) plus one.
func (f *forecast) risk(n int) float64 {
	var r, w float64
	for k, wk := range f.weight {
		if wk <= 0 {
			continue
		}
		c := f.newLive[k]
		mean := f.supMean[k] - f.demMean[k] - float64(n-1)*c
		v := f.supVar[k] + f.demVar[k] + float64(n-1)*c*(1-c) + varFloor
		// P(free agents left < 1), continuity-corrected.
		r += wk * phi((0.5-mean)/math.Sqrt(v))
		w += wk
	}
	if w == 0 {
		return 1
	}
	return r / w
}

// ringingRisk is the probability that the call placed age seconds ago and
// still ringing, if a person answers it, finds no agent within the wait:
// averaged over when it may still be answered, the chance that the agents
// free by then are fewer than the other answers before it plus one. f
// counts the call among its demand; its own share is taken out.
func (m *Model) ringingRisk(f *forecast, age float64) float64 {
	p := m.P
	fa, pending := m.pending(p, age)
	if 1-fa <= 1e-9 {
		return 0 // past the longest ring a person answers after
	}
	var r, w, prev float64
	for k, t := range f.tau {
		byT := at(m.liveCDF, age+t) - fa
		wk := (byT - prev) / (1 - fa) // P(answered in this bin | live)
		prev = byT
		if wk <= 1e-9 {
			continue
		}
		own := p * byT / pending
		mean := f.supMean[k] - (f.demMean[k] - own)
		v := math.Max(0, f.supVar[k]+f.demVar[k]-own*(1-own)) + varFloor
		r += wk * phi((0.5-mean)/math.Sqrt(v))
		w += wk
	}
	if w == 0 {
		return 0
	}
	return r / w
}

// ring is a fixed-size buffer of the latest values.
type ring[T any] struct {
	buf  []T
	next int
	full bool
}

func newRing[T any](n int) ring[T] { return ring[T]{buf: make([]T, n)} }

func (r *ring[T]) add(v T) {
	r.buf[r.next] = v
	r.next++
	if r.next == len(r.buf) {
		r.next, r.full = 0, true
	}
}

func (r *ring[T]) len() int {
	if r.full {
		return len(r.buf)
	}
	return r.next
}

// each visits the values oldest first, with their index in that order.
func (r *ring[T]) each(fn func(int, T)) {
	i := 0
	if r.full {
		for _, v := range r.buf[r.next:] {
			fn(i, v)
			i++
		}
	}
	for _, v := range r.buf[:r.next] {
		fn(i, v)
		i++
	}
}
