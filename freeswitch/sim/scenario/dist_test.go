package scenario

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestDistSampleBounds(t *testing.T) {
	const n = 20000
	tests := []struct {
		name     string
		d        Dist
		min, max time.Duration // every sample within
		mean     time.Duration // expected mean
		tol      time.Duration // allowed |sample mean - mean|
	}{
		{"unset", Dist{}, 0, 0, 0, 0},
		{"fixed", Fixed(1500 * ms), 1500 * ms, 1500 * ms, 1500 * ms, 0},
		{"fixed zero", Fixed(0), 0, 0, 0, 0},
		{"uniform", Uniform(800*ms, 1200*ms), 800 * ms, 1200 * ms, s1, 5 * ms},
		{"uniform degenerate", Uniform(3*s1, 3*s1), 3 * s1, 3 * s1, 3 * s1, 0},
		{"uniform from zero", Uniform(0, 10*ms), 0, 10 * ms, 5 * ms, 200 * time.Microsecond},
		{"uniform huge", Uniform(0, math.MaxInt64), 0, math.MaxInt64, math.MaxInt64 / 2, math.MaxInt64 / 50},
		{"normal", Normal(5*s1, s1), 0, math.MaxInt64, 5 * s1, 30 * ms},
		{"normal no spread", Normal(2*s1, 0), 2 * s1, 2 * s1, 2 * s1, 0},
		// Half-normal: truncating N(0, 1s) at 0 leaves mean 1s*sqrt(2/pi) ~ 797.9ms.
		{"normal truncated at zero", Normal(0, s1), 0, math.MaxInt64, 798 * ms, 20 * ms},
		// Standard error of the mean 120s/sqrt(20000) ~ 0.85s.
		{"lognormal", Lognormal(120*s1, 120*s1), 1, math.MaxInt64, 120 * s1, 3 * s1},
		{"lognormal no spread", Lognormal(2*s1, 0), 2 * s1, 2 * s1, 2 * s1, 0},
		{"lognormal zero", Lognormal(0, 0), 0, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			var sum float64
			lo, hi := time.Duration(math.MaxInt64), time.Duration(-1)
			for range n {
				v := tt.d.Sample(r)
				if v < tt.min || v > tt.max {
					t.Fatalf("sample %v outside [%v, %v]", v, tt.min, tt.max)
				}
				lo, hi = min(lo, v), max(hi, v)
				sum += float64(v)
			}
			if mean := time.Duration(sum / n); (mean - tt.mean).Abs() > tt.tol {
				t.Errorf("mean %v, want %v ± %v", mean, tt.mean, tt.tol)
			}
			if tt.d.Shape == ShapeUniform && tt.max-tt.min >= 100*ms && tt.max < s1*10 {
				// both ends of the range are reached (within 0.5%)
				span := tt.max - tt.min
				if lo-tt.min > span/200 || tt.max-hi > span/200 {
					t.Errorf("range [%v, %v] does not cover [%v, %v]", lo, hi, tt.min, tt.max)
				}
			}
		})
	}
}

func TestDistFixedConsumesNoRandomness(t *testing.T) {
	a, b := rand.New(rand.NewPCG(3, 4)), rand.New(rand.NewPCG(3, 4))
	Fixed(s1).Sample(a)
	Dist{}.Sample(a)
	Normal(s1, 0).Sample(a)
	Uniform(s1, s1).Sample(a)
	Lognormal(s1, 0).Sample(a)
	if a.Uint64() != b.Uint64() {
		t.Error("fixed samples consumed randomness")
	}
}

func TestDistCheckAndString(t *testing.T) {
	tests := []struct {
		d          Dist
		str, check string
	}{
		{Dist{}, "unset", ""},
		{Fixed(s1), "1s", ""},
		{Fixed(-s1), "-1s", "negative duration -1s"},
		{Uniform(800*ms, 1200*ms), "{min: 800ms, max: 1.2s}", ""},
		{Uniform(2*s1, s1), "{min: 2s, max: 1s}", "min 2s is greater than max 1s"},
		{Uniform(-s1, s1), "{min: -1s, max: 1s}", "min: negative duration -1s"},
		{Uniform(0, -s1), "{min: 0s, max: -1s}", "max: negative duration -1s"},
		{Normal(5*s1, s1), "{mean: 5s, stddev: 1s}", ""},
		{Normal(-s1, s1), "{mean: -1s, stddev: 1s}", "mean: negative duration -1s"},
		{Normal(s1, -s1), "{mean: 1s, stddev: -1s}", "stddev: negative duration -1s"},
		{Lognormal(120*s1, 120*s1), "{shape: lognormal, mean: 2m0s, stddev: 2m0s}", ""},
		{Lognormal(s1, 0), "{shape: lognormal, mean: 1s, stddev: 0s}", ""},
		{Lognormal(-s1, s1), "{shape: lognormal, mean: -1s, stddev: 1s}", "mean: negative duration -1s"},
		{Lognormal(s1, -s1), "{shape: lognormal, mean: 1s, stddev: -1s}", "stddev: negative duration -1s"},
		{Lognormal(0, s1), "{shape: lognormal, mean: 0s, stddev: 1s}", "mean: a lognormal's mean must be positive"},
		{Dist{Shape: "zipf"}, `invalid("zipf")`, `unknown distribution shape "zipf"`},
	}
	for _, tt := range tests {
		t.Run(tt.str, func(t *testing.T) {
			if got := tt.d.String(); got != tt.str {
				t.Errorf("String() = %q, want %q", got, tt.str)
			}
			if got := tt.d.check(); got != tt.check {
				t.Errorf("check() = %q, want %q", got, tt.check)
			}
			if tt.d.IsZero() != (tt.d.Shape == ShapeUnset) {
				t.Error("IsZero wrong")
			}
		})
	}
}

// A lognormal Dist has the mean and standard deviation it is given (of the
// durations, not of their logarithms), and a lognormal's median,
// mean/sqrt(1+cv^2): a normal with the same moments would have its median
// at the mean.
func TestDistLognormalMoments(t *testing.T) {
	const n = 200000
	tests := []struct {
		mean, stddev time.Duration
	}{
		{120 * s1, 120 * s1}, // talk times: cv 1, the pacing issue's
		{30 * s1, 10 * s1},
		{s1, 3 * s1},
	}
	for _, tt := range tests {
		d := Lognormal(tt.mean, tt.stddev)
		t.Run(d.String(), func(t *testing.T) {
			r := rand.New(rand.NewPCG(5, 6))
			xs := make([]float64, n)
			var sum float64
			for i := range xs {
				v := d.Sample(r)
				if v <= 0 {
					t.Fatalf("sample %v not positive", v)
				}
				xs[i] = v.Seconds()
				sum += xs[i]
			}
			mean := sum / n
			var sq float64
			for _, x := range xs {
				sq += (x - mean) * (x - mean)
			}
			cv := math.Sqrt(sq/(n-1)) / mean
			wantCV := tt.stddev.Seconds() / tt.mean.Seconds()
			slices.Sort(xs)
			median := xs[n/2]
			wantMedian := tt.mean.Seconds() / math.Sqrt(1+wantCV*wantCV)
			// The tolerances are several standard errors at this n (the
			// cv's is the widest: a lognormal's variance has a heavy tail
			// at cv 3).
			if rel := math.Abs(mean/tt.mean.Seconds() - 1); rel > 0.01*max(1, wantCV) {
				t.Errorf("mean %.3fs, want %.3fs (off by %.2f%%)", mean, tt.mean.Seconds(), rel*100)
			}
			if math.Abs(cv/wantCV-1) > 0.05*max(1, wantCV) {
				t.Errorf("cv %.3f, want %.3f", cv, wantCV)
			}
			if math.Abs(median/wantMedian-1) > 0.01 {
				t.Errorf("median %.3fs, want %.3fs", median, wantMedian)
			}
		})
	}
}

// The same seed gives the same lognormal draws.
func TestDistLognormalDeterministic(t *testing.T) {
	d := Lognormal(120*s1, 120*s1)
	a, b := rand.New(rand.NewPCG(7, 8)), rand.New(rand.NewPCG(7, 8))
	for i := range 1000 {
		if x, y := d.Sample(a), d.Sample(b); x != y {
			t.Fatalf("draw %d: %v and %v", i, x, y)
		}
	}
}
