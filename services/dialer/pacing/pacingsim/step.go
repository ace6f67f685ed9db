package pacingsim

import (
	"math"
	"time"
)

// The step response's windows: the level before a change is its mean over
// StepBefore; after, its mean from 5 minutes after the change to StepAfter
// (the windows of Result.React).
const (
	StepBefore = 10 * time.Minute
	StepAfter  = 15 * time.Minute
	stepSettle = 5 * time.Minute
)

// Step is the dial level's response to a change of P, averaged over runs:
// the mean of their levels at each tick (Result.Step), in one-second bins,
// so that what one run's noise hides shows.
type Step struct {
	Runs          int
	Before, After float64
	// Noise is the standard deviation of the one-second bins before the
	// change, as a share of the step (After - Before): crossings of a share
	// of the step near it are chance.
	Noise float64
	// T10, T50 and T90: the first one-second bin after the change whose
	// level has come a tenth, half and nine tenths of the way; -1: never
	// (within StepAfter).
	T10, T50, T90 time.Duration
	// Z is, for each of the first DepartWindow seconds after the change,
	// how far the mean level of that second is from Before towards After,
	// in standard errors of that mean (the runs' spread in the bin over the
	// square root of the runs): when the level measurably starts to move,
	// however little.
	Z []float64
	// Departs is the end of the first second from which Z stays at
	// DepartZ or more for DepartHold; -1: not within DepartWindow.
	Departs time.Duration
}

// The departure's test: three standard errors, held five seconds, looked
// for in the first minute after the change.
const (
	DepartZ      = 3.0
	DepartHold   = 5 * time.Second
	DepartWindow = time.Minute
)

// StepResponse averages the runs' Result.Step (all from scenarios with the
// same tick and the same windows).
func StepResponse(tick time.Duration, steps [][]float64) Step {
	st := Step{T10: -1, T50: -1, T90: -1, Departs: -1}
	n := 0
	for _, s := range steps {
		if len(s) > 0 && (n == 0 || len(s) < n) {
			n = len(s)
		}
	}
	if n == 0 {
		return st
	}
	mean := make([]float64, n)
	for _, s := range steps {
		if len(s) == 0 {
			continue
		}
		st.Runs++
		for i := range n {
			mean[i] += s[i]
		}
	}
	per := max(1, int(time.Second/tick))
	var bins []float64
	for i := 0; i+per <= n; i += per {
		sum := 0.0
		for _, v := range mean[i : i+per] {
			sum += v
		}
		bins = append(bins, sum/float64(per)/float64(st.Runs))
	}
	avg := func(a, b int) float64 {
		a, b = max(0, a), min(len(bins), b)
		if b <= a {
			return 0
		}
		sum := 0.0
		for _, v := range bins[a:b] {
			sum += v
		}
		return sum / float64(b-a)
	}
	change := int(StepBefore / time.Second)
	st.Before = avg(0, change)
	st.After = avg(change+int(stepSettle/time.Second), len(bins))
	step := st.After - st.Before
	if step == 0 || change >= len(bins) {
		return st
	}
	sq := 0.0
	for _, v := range bins[:change] {
		sq += (v - st.Before) * (v - st.Before)
	}
	st.Noise = math.Sqrt(sq/float64(change)) / math.Abs(step)
	st.departure(steps, per, change, n, step)
	for i := change; i < len(bins); i++ {
		frac := (bins[i] - st.Before) / step
		at := time.Duration(i-change+1) * time.Second // the bin's end
		for _, t := range []struct {
			f float64
			d *time.Duration
		}{{0.1, &st.T10}, {0.5, &st.T50}, {0.9, &st.T90}} {
			if *t.d < 0 && frac >= t.f {
				*t.d = at
			}
		}
	}
	return st
}

// departure fills Z and Departs from the runs' own one-second bins (per
// ticks each) after the change bin.
func (st *Step) departure(steps [][]float64, per, change, n int, step float64) {
	sign := math.Copysign(1, step)
	for b := change; b < change+int(DepartWindow/time.Second) && (b+1)*per <= n; b++ {
		var sum, sq float64
		runs := 0
		for _, s := range steps {
			if len(s) == 0 {
				continue
			}
			v := 0.0
			for _, x := range s[b*per : (b+1)*per] {
				v += x
			}
			v /= float64(per)
			sum += v
			sq += v * v
			runs++
		}
		if runs < 2 {
			return
		}
		mean := sum / float64(runs)
		sd := math.Sqrt(max(0, (sq-float64(runs)*mean*mean)/float64(runs-1)))
		z := 0.0
		if se := sd / math.Sqrt(float64(runs)); se > 0 {
			z = sign * (mean - st.Before) / se
		}
		st.Z = append(st.Z, z)
	}
	hold := int(DepartHold / time.Second)
	for i := range st.Z {
		if i+hold > len(st.Z) {
			break
		}
		held := true
		for _, z := range st.Z[i : i+hold] {
			held = held && z >= DepartZ
		}
		if held {
			st.Departs = time.Duration(i+1) * time.Second
			return
		}
	}
}
