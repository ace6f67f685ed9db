package pacing

import (
	"errors"
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
	// delays are the latest settled outcomes' delays (see distributions),
	// counted per bin in liveHist and failHist; the outcomes of dials
	// placed up to learned are among them.
	delays             ring[delay]
	liveHist, failHist [bins]float64
	nLive, nFailed     int
	learned            time.Time
	talks              ring[talk]
	// talkSum, talkSq and talkSecs sum the remembered talks' logarithms,
	// their squares and their lengths.
	talkSum, talkSq, talkSecs float64
	talkOldest                time.Time
	// windows are the fast answer rates, narrowest first.
	windows []FastWindow
	// dist caches the distributions until the next Add.
	dist *Model
	// lastP is the answer rate last measured (0: none yet).
	lastP float64
	// censored and fasts are the rates' buffers.
	censored []censored
	fasts    []rate
}

// Sizes of the estimator's memory.
const (
	// DefaultOutcomes: the slow answer rate is over the latest outcomes
	// (and the outcomes of the latest Settle, however many, are kept until
	// their delays are learned; at most maxOutcomes).
	DefaultOutcomes = 600
	maxOutcomes     = 1 << 15
	// DefaultTalks: the talk-time fit.
	DefaultTalks = 300
	// DefaultDelays: the delay distributions (they change slowly; a
	// failure's delay at 3 s is what a dial that failed then says about the
	// answer rate, and needs many outcomes to be known well).
	DefaultDelays = 3000
	// minOutcomes is what the model needs before it predicts.
	minOutcomes = 30
	// minInfo is the information (dials' worth) the answer rate must rest
	// on before the pacer dials ahead of its agents: the first answers of a
	// campaign are its quickest, and a rate read from them is far off.
	minInfo = 100
	// slowWeight is the information (dials' worth) the steady answer rate
	// is measured over.
	slowWeight = 300
	// minP keeps a run of failures from reading as "nobody ever answers",
	// which would dial without end.
	minP = 0.01
)

// NewEstimator returns an empty estimator.
func NewEstimator() *Estimator {
	return &Estimator{talks: newRing[talk](DefaultTalks), delays: newRing[delay](DefaultDelays), windows: DefaultFastWindows}
}

// FastWindow is a fast answer rate: the rate over the latest Weight dials'
// worth of information, believed instead of the steady rate when it is
// under it by Drop standard errors (the pacer then dials more) or over it
// by Rise (it dials less). +Inf never believes it that way.
type FastWindow struct{ Weight, Drop, Rise float64 }

// DefaultFastWindows are windows of 10, 20, 40 and 60 dials' worth (the
// widest some 20 s of dials with 100 agents), each believed at three
// standard errors down; the widest also at two up. A drop shows first in
// the narrow ones, which rest on the dials placed since, where a single
// window of 60 dials' worth still mixes in the dials before (the narrowest
// fire only on a collapse: at p = 0.3, three standard errors of 10 dials'
// worth are more than p). Against the single window they had, the drop
// from 0.3 to 0.1 is half way after 25-40 s instead of 28-44, at the same
// occupancy and abandonment. Narrower or more credulous windows see a drop
// sooner and pay for it all day, when chance makes them fire: with one of
// 20 dials' worth at two standard errors, half way after 24-26 s, but an
// occupancy at p = 0.2 of 0.78-0.83 instead of 0.87-0.89
// (docs/benchmarks.md, "Seeing the drop sooner").
var DefaultFastWindows = []FastWindow{
	{Weight: 10, Drop: 3, Rise: math.Inf(1)},
	{Weight: 20, Drop: 3, Rise: math.Inf(1)},
	{Weight: 40, Drop: 3, Rise: math.Inf(1)},
	{Weight: 60, Drop: 3, Rise: 2},
}

// maxWindows is the most fast windows an Estimator takes.
const maxWindows = 4

// SetFastWindows replaces the fast answer rates (DefaultFastWindows),
// narrowest first: up to four, each of 10 to slowWeight (300) dials' worth,
// believed at one standard error or more.
func (e *Estimator) SetFastWindows(ws []FastWindow) error {
	if len(ws) > maxWindows {
		return errors.New("pacing: at most 4 fast windows")
	}
	for i, w := range ws {
		switch {
		case !(w.Weight >= 10 && w.Weight <= slowWeight):
			return errors.New("pacing: a fast window is of 10 to 300 dials' worth")
		case i > 0 && w.Weight <= ws[i-1].Weight:
			return errors.New("pacing: fast windows go narrowest first")
		case !(w.Drop >= 1) || !(w.Rise >= 1):
			return errors.New("pacing: a fast window is believed at one standard error or more")
		}
	}
	e.windows = slices.Clone(ws)
	return nil
}

// AddOutcome records a finished dial.
func (e *Estimator) AddOutcome(o Outcome) {
	// Beyond the latest DefaultOutcomes, the oldest go once their delays
	// are learned (placed Settle ago and counted by Model), and in any case
	// beyond maxOutcomes: kept to a count, at 10 dials a second they went
	// before they settled and no delay was ever learned.
	drop := 0
	if n := len(e.outcomes); n >= maxOutcomes {
		drop = maxOutcomes / 4 // at once: the copy is of them all
	} else if n >= DefaultOutcomes {
		drop = min(e.placedBy(e.learned), n-DefaultOutcomes+1)
	}
	if drop > 0 {
		e.outcomes = append(e.outcomes[:0], e.outcomes[drop:]...)
	}
	i := len(e.outcomes)
	for i > 0 && e.outcomes[i-1].Placed.After(o.Placed) {
		i--
	}
	e.outcomes = slices.Insert(e.outcomes, i, o)
	if !o.Placed.After(e.learned) && !e.learned.IsZero() {
		e.learn(o) // a late outcome of a dial settled already
	}
}

// delay is one settled outcome's delay bin.
type delay struct {
	bin  int
	live bool
}

// learn counts o's delay in the delay distributions (a released call's
// delay is the dialer's, not its own: it is left out).
func (e *Estimator) learn(o Outcome) {
	if o.Released {
		return
	}
	count := func(d delay, n float64) {
		if d.live {
			e.liveHist[d.bin] += n
			e.nLive += int(n)
		} else {
			e.failHist[d.bin] += n
			e.nFailed += int(n)
		}
	}
	if e.delays.full {
		count(e.delays.buf[e.delays.next], -1)
	}
	d := delay{bin: min(bins-1, max(0, int(o.Delay/Bin))), live: o.Live}
	e.delays.add(d)
	count(d, 1)
	e.dist = nil
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
// believed them would dial far too much. It is the rate that makes the
// latest dials' states most likely, the calls still ringing included: a
// dial a person answered says p, one that failed 1 - p, and one still
// ringing a seconds after it was placed p·S_L(a) + (1-p)·S_F(a) (S_L and
// S_F: the chances that a live answer, a failure, takes longer than a, from
// the measured delay distributions). So even the newest dials count, for
// what they say: a dial that failed after 3 s was not a person's, one that
// has rung 3 s says almost nothing yet. Over the latest slowWeight dials'
// worth of information it is steady; over the fast windows' (10 to 60
// dials' worth: DefaultFastWindows) it follows a change within seconds,
// and is taken when it differs from the steady one by more than chance
// explains.
//
// The talk time is fitted the same way: calls still talking count. The mean
// is the talk time observed since the oldest remembered call started (the
// calls still going included, up to now) over the calls that ended, the
// estimate that does not mistake a campaign's first, short calls for its
// calls; the spread is that of the ended calls' logarithms.
func (e *Estimator) Model(now time.Time, ringing, talking []time.Time) *Model {
	// The outcomes of dials placed at least Settle ago: every one of those
	// dials has ended.
	cut := now.Add(-Settle)
	settled := e.placedBy(cut)
	// The delays of the outcomes settled since the last call.
	if cut.After(e.learned) {
		for _, o := range e.outcomes[e.placedBy(e.learned):settled] {
			e.learn(o)
		}
		e.learned = cut
	}
	if e.dist == nil {
		e.dist = e.distributions()
	}
	m := *e.dist
	m.N, m.settled = len(e.outcomes), settled
	m.fitTalk(e, now, talking)
	if m.N == 0 {
		return &m
	}
	// Newest first: the ringing calls (newest first when given in
	// placement order, as the engine and the harness do; sorted otherwise),
	// then the outcomes.
	if !slices.IsSortedFunc(ringing, func(a, b time.Time) int { return a.Compare(b) }) {
		ringing = slices.Clone(ringing)
		slices.SortFunc(ringing, func(a, b time.Time) int { return a.Compare(b) })
	}
	slow, sw, fasts := e.rates(&m, now, ringing)
	m.info = sw
	if slow < 0 {
		slow = 0.5
	}
	m.P = slow
	// Asked every tick, a two-sigma test would fire by chance every few
	// seconds. A rate that looks higher (fewer dials: safe) is believed
	// at two standard errors, one that looks lower (more dials) at
	// three (DefaultFastWindows). Of several windows, the widest that
	// differs is taken: it rests on the most dials.
	for k := len(fasts) - 1; k >= 0; k-- {
		f, w := fasts[k], e.windows[k]
		if f.p < 0 || f.info < w.Weight*0.9 {
			continue
		}
		se := math.Sqrt(math.Max(slow*(1-slow), 0.01) / f.info)
		if f.p > slow+w.Rise*se || f.p < slow-w.Drop*se {
			m.P = f.p
			break
		}
	}
	m.P = math.Max(m.P, minP)
	e.lastP = m.P
	return &m
}

// placedBy is how many of the outcomes are of dials placed at or before t.
func (e *Estimator) placedBy(t time.Time) int {
	n, _ := slices.BinarySearchFunc(e.outcomes, t, func(o Outcome, t time.Time) int {
		if o.Placed.After(t) {
			return 1
		}
		return -1
	})
	return n
}

// rates are the answer rates that make the latest dials' states most
// likely (see Model), over the latest slowWeight dials' worth of
// information and over each fast window's, and the information each rests
// on (-1 for a rate when the dials are worth less than one or, for a fast
// one, less than its window). The dials are taken newest first
// until their expected information reaches the weight: at the last rate,
// from their age alone, so that where the window ends does not depend on
// what the dials turned out to be (a dial placed longer ago than any ring
// is worth one). A released call is one still ringing at its release: it
// says only that nobody answered within its ring (counted as a failure, it
// would read the rate low: every call still ringing at 15 s is one that did
// not answer early).
func (e *Estimator) rates(m *Model, now time.Time, ringing []time.Time) (slow, slowInfo float64, fasts []rate) {
	p0 := e.lastP
	if p0 <= 0 {
		p0 = 0.2
	}
	p0 = math.Min(0.9, math.Max(0.02, p0))
	// survival is the chances that a live answer and a failure ring longer
	// than a seconds.
	survival := func(a float64) censored { return censored{1 - at(m.liveCDF, a), 1 - at(m.failCDF, a)} }
	// worth is the expected information of a dial whose age has those
	// survivals (its Fisher information at p0 over that of a dial whose
	// state is known).
	worth := func(s censored) float64 {
		fl, ff := 1-s.live, 1-s.failed
		i := fl/p0 + ff/(1-p0)
		if r := p0*s.live + (1-p0)*s.failed; r > 1e-9 {
			i += (ff - fl) * (ff - fl) / r
		}
		return i * p0 * (1 - p0)
	}
	var all likelihood
	var recent [maxWindows]likelihood
	var recentInfo [maxWindows]float64
	snapped := 0
	all.censored = e.censored[:0]
	info := 0.0
	// A window ends between two instants, never among dials placed at the
	// same one (a tick places several): there the ringing ones come first,
	// and a window cut among them would be chosen by what they turned out
	// to be.
	r, o := len(ringing)-1, len(e.outcomes)-1
	var last time.Time
	for r >= 0 || o >= 0 {
		ring := r >= 0 && (o < 0 || !ringing[r].Before(e.outcomes[o].Placed))
		var placed time.Time
		if ring {
			placed = ringing[r]
		} else {
			placed = e.outcomes[o].Placed
		}
		if !placed.Equal(last) {
			for snapped < len(e.windows) && info >= e.windows[snapped].Weight {
				recent[snapped], recentInfo[snapped] = all, info
				snapped++
			}
			if info >= slowWeight {
				break
			}
			last = placed
		}
		sa := survival(now.Sub(placed).Seconds())
		info += worth(sa)
		if ring {
			all.censored = append(all.censored, sa)
			r--
			continue
		}
		x := e.outcomes[o]
		o--
		switch {
		case x.Released:
			all.censored = append(all.censored, survival(x.Delay.Seconds()))
		case x.Live:
			all.live++
		default:
			all.failed++
		}
	}
	for snapped < len(e.windows) && info >= e.windows[snapped].Weight {
		recent[snapped], recentInfo[snapped] = all, info
		snapped++
	}
	e.censored = all.censored
	slow, slowInfo = -1, info
	if info >= 1 {
		slow = all.mle(p0)
	}
	fasts = e.fasts[:0]
	for k := range e.windows {
		f := rate{p: -1}
		if k < snapped {
			f = rate{p: recent[k].mle(p0), info: recentInfo[k]}
		}
		fasts = append(fasts, f)
	}
	e.fasts = fasts
	return slow, slowInfo, fasts
}

// rate is an answer rate and the information (dials' worth) it rests on.
type rate struct{ p, info float64 }

// likelihood sums up the states of some dials.
type likelihood struct {
	live, failed float64
	// censored are the dials still ringing (or released), with the chances
	// that a live answer and a failure would ring that long.
	censored []censored
}

type censored struct{ live, failed float64 }

// mle is the answer rate that makes the dials' states most likely. The
// log-likelihood is concave in p: Newton's method from p0, kept inside the
// bracket where the score changes sign.
func (l likelihood) mle(p0 float64) float64 {
	lo, hi := 1e-4, 1-1e-4
	p := p0
	for range 50 {
		g := l.live/p - l.failed/(1-p)
		h := -l.live/(p*p) - l.failed/((1-p)*(1-p))
		for _, c := range l.censored {
			d := c.live - c.failed
			r := c.failed + p*d
			if r <= 1e-12 {
				continue // no such ring: it says nothing
			}
			g += d / r
			h -= d * d / (r * r)
		}
		if g > 0 {
			lo = p
		} else {
			hi = p
		}
		next := p - g/h
		if h >= 0 || next <= lo || next >= hi || math.IsNaN(next) {
			next = (lo + hi) / 2
		}
		if math.Abs(next-p) < 1e-7 {
			return next
		}
		p = next
	}
	return p
}

// distributions are the delay distributions, learned from the outcomes of
// the latest DefaultDelays dials placed at least Settle ago, every one of
// which has ended. Among newer dials the ones that ended are the quick
// ones: when the pace rises (a campaign's start, a burst of free agents),
// delays learned from them read short, which makes a call still ringing
// look likelier live than it is and the answer rate read high (400 dials at
// once against a stream of 3 a second: 0.48 for 0.3, 4 s later; and learned
// from the latest 300 settled outcomes only, 0.15 for 0.3 on 150 dials at
// once: TestAnswerRateLikelihood).
func (e *Estimator) distributions() *Model {
	m := &Model{}
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
