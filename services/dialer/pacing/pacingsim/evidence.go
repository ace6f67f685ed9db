package pacingsim

import (
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Evidence is how well the outcomes of the dials placed after a change of
// the answer rate tell it, some time after it, to the best test there is:
// the likelihood ratio of "p changed from P to PAfter at ChangeAt" against
// "p stayed P", for a test that knows the instant and both rates (a pacer
// knows neither, and can only do worse).
type Evidence struct {
	// KL is the mean log-likelihood ratio when p did change (nats): the
	// information the dials carry.
	KL float64
	// FalseAlarm is the least chance, among all the tests that say
	// "changed" in half the runs where p changed, that the test says so
	// when p did not change (Neyman-Pearson). A pacer whose dial level is
	// half way to its new level by then in half the drops is, at any
	// instant of a shift whose p never changes, as high as that with at
	// least this chance: this share of its time, it dials as if p had
	// dropped.
	FalseAlarm float64
}

// DropEvidence measures Evidence for sc's change of p, after the change,
// for dials placed at rate per second (a Poisson stream) since it, over
// trials runs each way.
func DropEvidence(sc Scenario, rate float64, after time.Duration, trials int, seed uint64) Evidence {
	rng := rand.New(rand.NewPCG(seed, 1))
	p0, p1 := sc.P, sc.PAfter
	lr, lf := sc.LiveRing, sc.FailRing
	cdf := func(r [2]time.Duration, a float64) float64 {
		lo, hi := r[0].Seconds(), r[1].Seconds()
		return math.Min(1, math.Max(0, (a-lo)/(hi-lo)))
	}
	ringing := func(p, a float64) float64 { return p*(1-cdf(lr, a)) + (1-p)*(1-cdf(lf, a)) }
	t := after.Seconds()
	run := func(p float64) float64 {
		llr := 0.0
		// Poisson arrivals: exponential gaps from the change on.
		for s := rng.ExpFloat64() / rate; s < t; s += rng.ExpFloat64() / rate {
			a := t - s
			live := rng.Float64() < p
			r := lf
			if live {
				r = lr
			}
			d := r[0].Seconds() + rng.Float64()*(r[1]-r[0]).Seconds()
			switch {
			case d > a:
				llr += math.Log(ringing(p1, a) / ringing(p0, a))
			case live:
				llr += math.Log(p1 / p0)
			default:
				llr += math.Log((1 - p1) / (1 - p0))
			}
		}
		return llr
	}
	changed, same := make([]float64, trials), make([]float64, trials)
	for i := range trials {
		changed[i], same[i] = run(p1), run(p0)
	}
	var ev Evidence
	for _, x := range changed {
		ev.KL += x / float64(trials)
	}
	// The most powerful test says "changed" when the ratio is at least
	// the median of the changed runs', randomized on ties so that it says
	// so in exactly half of them.
	slices.Sort(changed)
	thr := changed[trials/2]
	const eps = 1e-9
	share := func(v []float64, f func(float64) bool) float64 {
		n := 0
		for _, x := range v {
			if f(x) {
				n++
			}
		}
		return float64(n) / float64(len(v))
	}
	above := func(x float64) bool { return x > thr+eps }
	tie := func(x float64) bool { return math.Abs(x-thr) <= eps }
	g := 0.0
	if e := share(changed, tie); e > 0 {
		g = (0.5 - share(changed, above)) / e
	}
	ev.FalseAlarm = share(same, above) + g*share(same, tie)
	return ev
}
