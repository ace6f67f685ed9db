package billing

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestBilledSeconds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		min, inc int32
		secs     int64
		want     int64
	}{
		{"unanswered", 60, 60, 0, 0},
		{"negative", 1, 1, -5, 0},
		{"60/60 one second", 60, 60, 1, 60},
		{"60/60 exactly a minute", 60, 60, 60, 60},
		{"60/60 one over", 60, 60, 61, 120},
		{"60/60 two minutes", 60, 60, 120, 120},
		{"30/6 under minimum", 30, 6, 10, 30},
		{"30/6 at minimum", 30, 6, 30, 30},
		{"30/6 one over", 30, 6, 31, 36},
		{"30/6 on the grid", 30, 6, 36, 36},
		{"30/6 one past the grid", 30, 6, 37, 42},
		{"1/1", 1, 1, 59, 59},
		{"0/60", 0, 60, 1, 60},
		{"0/0 is 1/1", 0, 0, 7, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := BilledSeconds(Rate{MinSeconds: tt.min, IncrementSeconds: tt.inc}, tt.secs)
			if got != tt.want {
				t.Fatalf("BilledSeconds(%d/%d, %d) = %d, want %d", tt.min, tt.inc, tt.secs, got, tt.want)
			}
		})
	}
}

func TestCost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		r    Rate
		secs int64
		want int64
	}{
		{"no answer no fee", Rate{PerMinuteMicros: 10_000, ConnectionFeeMicros: 5_000, MinSeconds: 60, IncrementSeconds: 60}, 0, 0},
		{"one second on 60/60 is a minute plus fee", Rate{PerMinuteMicros: 10_000, ConnectionFeeMicros: 5_000, MinSeconds: 60, IncrementSeconds: 60}, 1, 15_000},
		{"61 s on 60/60", Rate{PerMinuteMicros: 10_000, MinSeconds: 60, IncrementSeconds: 60}, 61, 20_000},
		// 0.0125/min for 1 s on 1/1: 12500/60 = 208.33 -> 209 (rounded up).
		{"rounding up to the micro-unit", Rate{PerMinuteMicros: 12_500, MinSeconds: 1, IncrementSeconds: 1}, 1, 209},
		// 7 s at 12500/min = 87500/60 = 1458.33 -> 1459, not 7*209 = 1463.
		{"rounded once, not per second", Rate{PerMinuteMicros: 12_500, MinSeconds: 1, IncrementSeconds: 1}, 7, 1459},
		{"exact division", Rate{PerMinuteMicros: 60, MinSeconds: 1, IncrementSeconds: 1}, 1, 1},
		{"free rate with fee", Rate{ConnectionFeeMicros: 100, MinSeconds: 1, IncrementSeconds: 1}, 30, 100},
		{"30/6 31 s", Rate{PerMinuteMicros: 600_000, MinSeconds: 30, IncrementSeconds: 6}, 31, 360_000},
		{"saturates instead of wrapping", Rate{PerMinuteMicros: math.MaxInt64, IncrementSeconds: 1}, 3600, math.MaxInt64/60 + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Cost(tt.r, tt.secs); got != tt.want {
				t.Fatalf("Cost(%+v, %d) = %d, want %d", tt.r, tt.secs, got, tt.want)
			}
		})
	}
}

func TestMaxSeconds(t *testing.T) {
	t.Parallel()
	r := Rate{PerMinuteMicros: 60_000, ConnectionFeeMicros: 10_000, MinSeconds: 30, IncrementSeconds: 6}
	tests := []struct {
		name          string
		budget, limit int64
		want          int64
	}{
		{"nothing", 0, 3600, 0},
		{"fee only", 10_000, 3600, 0},
		{"one micro short of the minimum", 39_999, 3600, 0},
		{"exactly the minimum", 40_000, 3600, 30},
		{"just under the next step", 45_999, 3600, 30},
		{"next step", 46_000, 3600, 36},
		{"capped by the limit", 1_000_000_000, 600, 600},
		{"no limit asked", 1_000_000, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := MaxSeconds(r, tt.budget, tt.limit); got != tt.want {
				t.Fatalf("MaxSeconds(budget %d, limit %d) = %d, want %d", tt.budget, tt.limit, got, tt.want)
			}
		})
	}
	t.Run("free rate", func(t *testing.T) {
		t.Parallel()
		free := Rate{ConnectionFeeMicros: 5, IncrementSeconds: 1}
		if got := MaxSeconds(free, 5, 100); got != 100 {
			t.Fatalf("free rate with the fee paid: %d, want 100", got)
		}
		if got := MaxSeconds(free, 4, 100); got != 0 {
			t.Fatalf("free rate with the fee unpaid: %d, want 0", got)
		}
	})
}

// TestMaxSecondsIsTheLongestAffordable checks MaxSeconds against its
// definition by brute force: the cost of MaxSeconds fits the budget, and
// one more second does not (unless the limit cut it).
func TestMaxSecondsIsTheLongestAffordable(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		r := Rate{
			PerMinuteMicros:     rng.Int64N(2_000_000),
			ConnectionFeeMicros: rng.Int64N(50_000),
			MinSeconds:          int32(rng.IntN(61)),
			IncrementSeconds:    int32(1 + rng.IntN(60)),
		}
		budget := rng.Int64N(3_000_000)
		limit := int64(1 + rng.IntN(900))
		got := MaxSeconds(r, budget, limit)
		want := int64(0)
		for s := int64(1); s <= limit; s++ {
			if Cost(r, s) <= budget {
				want = s
			}
		}
		// Charges are constant within a billing step, so the longest
		// affordable time is the top of a step (or the limit): MaxSeconds
		// must find exactly it.
		if got != want {
			t.Fatalf("MaxSeconds(%+v, %d, %d) = %d; longest affordable is %d", r, budget, limit, got, want)
		}
		if got > 0 && Cost(r, got) > budget {
			t.Fatalf("MaxSeconds(%+v, %d, %d) = %d costs %d", r, budget, limit, got, Cost(r, got))
		}
	}
}
