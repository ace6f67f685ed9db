package scenario

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Shape is the form of a [Dist].
type Shape string

// The shapes of a Dist. The zero Shape means "not given": the field takes its
// per-kind default (see [OutcomeSpec.WithDefaults]) and samples as 0.
const (
	ShapeUnset   Shape = ""        // not given; samples as 0
	ShapeFixed   Shape = "fixed"   // always Value
	ShapeUniform Shape = "uniform" // uniform on [Min, Max], nanosecond resolution
	ShapeNormal  Shape = "normal"  // normal(Mean, StdDev), truncated at 0
	// ShapeLognormal is the lognormal with mean Mean and standard
	// deviation StdDev (of the durations, not of their logarithms): the
	// usual model of talk times, never negative, with a long right tail.
	ShapeLognormal Shape = "lognormal"
)

// maxNormalDraws bounds the redraws of a negative normal sample; after that
// Sample gives 0 (only reachable when Mean is far below StdDev).
const maxNormalDraws = 32

// Dist is a distribution of durations: fixed, uniform on [Min, Max],
// normal with Mean and StdDev truncated at 0 (negative draws are redrawn),
// or lognormal with Mean and StdDev. Build one with [Fixed], [Uniform],
// [Normal] or [Lognormal]; the zero Dist is "not given".
//
// In YAML/JSON a Dist is a duration string ("1.5s", "300ms", "0") for a fixed
// value, {min: 1s, max: 2s} for uniform, {mean: 5s, stddev: 1s} for normal,
// or {shape: lognormal, mean: 120s, stddev: 120s} for lognormal.
type Dist struct {
	Shape  Shape         // ShapeUnset, ShapeFixed, ShapeUniform, ShapeNormal or ShapeLognormal
	Value  time.Duration // ShapeFixed: the value
	Min    time.Duration // ShapeUniform: lower bound, inclusive
	Max    time.Duration // ShapeUniform: upper bound, inclusive
	Mean   time.Duration // ShapeNormal, ShapeLognormal: mean
	StdDev time.Duration // ShapeNormal, ShapeLognormal: standard deviation
}

// Fixed returns a Dist that always yields d.
func Fixed(d time.Duration) Dist { return Dist{Shape: ShapeFixed, Value: d} }

// Uniform returns a Dist uniform on [min, max].
func Uniform(min, max time.Duration) Dist { return Dist{Shape: ShapeUniform, Min: min, Max: max} }

// Normal returns a normal Dist with the given mean and standard deviation,
// truncated at 0.
func Normal(mean, stddev time.Duration) Dist {
	return Dist{Shape: ShapeNormal, Mean: mean, StdDev: stddev}
}

// Lognormal returns a lognormal Dist with the given mean and standard
// deviation (of the durations themselves: Lognormal(120s, 120s) has a
// coefficient of variation of 1 and a median of about 85 s).
func Lognormal(mean, stddev time.Duration) Dist {
	return Dist{Shape: ShapeLognormal, Mean: mean, StdDev: stddev}
}

// IsZero reports whether d is not given (Shape ShapeUnset).
func (d Dist) IsZero() bool { return d.Shape == ShapeUnset }

// Sample draws one duration from d using r, which must not be nil. An unset
// Dist yields 0, and fixed Dists do not consume randomness.
func (d Dist) Sample(r *rand.Rand) time.Duration {
	switch d.Shape {
	case ShapeFixed:
		return d.Value
	case ShapeUniform:
		if d.Max <= d.Min {
			return d.Min
		}
		return d.Min + time.Duration(r.Uint64N(uint64(d.Max-d.Min)+1))
	case ShapeNormal:
		if d.StdDev <= 0 {
			return max(d.Mean, 0)
		}
		for range maxNormalDraws {
			// The explicit conversion forbids fusing into an FMA, so results
			// are identical on every architecture.
			x := float64(d.Mean) + float64(r.NormFloat64()*float64(d.StdDev))
			if x >= 0 {
				if x >= math.MaxInt64 {
					return math.MaxInt64
				}
				return time.Duration(x)
			}
		}
		return 0
	case ShapeLognormal:
		if d.StdDev <= 0 || d.Mean <= 0 {
			return max(d.Mean, 0)
		}
		// exp(N(mu, sigma^2)) has mean exp(mu + sigma^2/2) and variance
		// (exp(sigma^2) - 1) times the mean squared.
		cv := float64(d.StdDev) / float64(d.Mean)
		s2 := math.Log1p(cv * cv)
		mu := math.Log(float64(d.Mean)) - s2/2
		// As for normal, no FMA. math.Exp has assembly on some
		// architectures, so a draw may differ in its last nanosecond
		// between them, never between runs on one.
		x := math.Exp(mu + float64(math.Sqrt(s2)*r.NormFloat64()))
		if x >= math.MaxInt64 {
			return math.MaxInt64
		}
		return time.Duration(x)
	}
	return 0
}

// check returns "" if d is well formed, else what is wrong with it.
func (d Dist) check() string {
	switch d.Shape {
	case ShapeUnset:
		return ""
	case ShapeFixed:
		if d.Value < 0 {
			return fmt.Sprintf("negative duration %s", d.Value)
		}
	case ShapeUniform:
		if d.Min < 0 {
			return fmt.Sprintf("min: negative duration %s", d.Min)
		}
		if d.Max < 0 {
			return fmt.Sprintf("max: negative duration %s", d.Max)
		}
		if d.Min > d.Max {
			return fmt.Sprintf("min %s is greater than max %s", d.Min, d.Max)
		}
	case ShapeNormal:
		if d.Mean < 0 {
			return fmt.Sprintf("mean: negative duration %s", d.Mean)
		}
		if d.StdDev < 0 {
			return fmt.Sprintf("stddev: negative duration %s", d.StdDev)
		}
	case ShapeLognormal:
		if d.Mean < 0 {
			return fmt.Sprintf("mean: negative duration %s", d.Mean)
		}
		if d.StdDev < 0 {
			return fmt.Sprintf("stddev: negative duration %s", d.StdDev)
		}
		if d.Mean == 0 && d.StdDev > 0 {
			return "mean: a lognormal's mean must be positive"
		}
	default:
		return fmt.Sprintf("unknown distribution shape %q", string(d.Shape))
	}
	return ""
}

// String renders d as in a scenario file: "1s", "{min: 800ms, max: 1.2s}",
// "{mean: 5s, stddev: 1s}", "{shape: lognormal, mean: 2m0s, stddev: 2m0s}",
// or "unset".
func (d Dist) String() string {
	switch d.Shape {
	case ShapeUnset:
		return "unset"
	case ShapeFixed:
		return d.Value.String()
	case ShapeUniform:
		return fmt.Sprintf("{min: %s, max: %s}", d.Min, d.Max)
	case ShapeNormal:
		return fmt.Sprintf("{mean: %s, stddev: %s}", d.Mean, d.StdDev)
	case ShapeLognormal:
		return fmt.Sprintf("{shape: lognormal, mean: %s, stddev: %s}", d.Mean, d.StdDev)
	}
	return fmt.Sprintf("invalid(%q)", string(d.Shape))
}

// MarshalYAML writes d in the form [Parse] reads: a duration string, or a
// {min, max}, {mean, stddev} or {shape: lognormal, mean, stddev} mapping.
func (d Dist) MarshalYAML() (any, error) {
	switch d.Shape {
	case ShapeFixed:
		return d.Value.String(), nil
	case ShapeUniform:
		return struct {
			Min string `yaml:"min"`
			Max string `yaml:"max"`
		}{d.Min.String(), d.Max.String()}, nil
	case ShapeNormal:
		return struct {
			Mean   string `yaml:"mean"`
			StdDev string `yaml:"stddev"`
		}{d.Mean.String(), d.StdDev.String()}, nil
	case ShapeLognormal:
		return struct {
			Shape  string `yaml:"shape"`
			Mean   string `yaml:"mean"`
			StdDev string `yaml:"stddev"`
		}{string(ShapeLognormal), d.Mean.String(), d.StdDev.String()}, nil
	case ShapeUnset:
		return nil, nil
	}
	return nil, fmt.Errorf("scenario: cannot marshal Dist with shape %q", string(d.Shape))
}
