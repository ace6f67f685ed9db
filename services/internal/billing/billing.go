// Package billing is the arithmetic of call charges, shared by origination
// (which puts each leg's cost on its hangup event) and rating (which debits
// it from the balance), so the two can never disagree by a micro-unit.
//
// Money is int64 micro-units of the tariff's currency (1 unit = 1,000,000).
// The rules, in order:
//
//  1. A leg that was not answered, or lasted 0 seconds, costs nothing: not
//     even the connection fee (what carriers do with billsec 0).
//  2. Billed seconds: at least MinSeconds; above it, rounded up to a whole
//     number of IncrementSeconds counted from MinSeconds. "60/60" bills 61 s
//     as 120 s; "30/6" bills 31 s as 36 s and 10 s as 30 s; "1/1" bills what
//     was used. An increment of 0 is taken as 1.
//  3. Cost = connection fee + billed seconds * rate per minute / 60, the
//     division rounded up to the next micro-unit. Rounding once, at the end,
//     keeps the error under one micro-unit per leg (per-second rounding of
//     per-minute rates would not).
package billing

import "math"

// Rate is what a leg is charged with.
type Rate struct {
	PerMinuteMicros     int64
	ConnectionFeeMicros int64
	MinSeconds          int32
	IncrementSeconds    int32
}

// BilledSeconds applies the minimum and increment rules to a leg that
// lasted seconds.
func BilledSeconds(r Rate, seconds int64) int64 {
	if seconds <= 0 {
		return 0
	}
	min := int64(max(r.MinSeconds, 0))
	if seconds <= min {
		return min
	}
	inc := int64(max(r.IncrementSeconds, 1))
	over := seconds - min
	return min + (over+inc-1)/inc*inc
}

// Cost is what a leg that lasted seconds costs, in micro-units.
func Cost(r Rate, seconds int64) int64 {
	b := BilledSeconds(r, seconds)
	if b == 0 {
		return 0
	}
	return r.ConnectionFeeMicros + ceilDiv(mulSat(b, r.PerMinuteMicros), 60)
}

// MaxSeconds is the longest a leg may last for its cost to stay within
// budget micro-units, capped at limit seconds (limit > 0). It is 0 when the
// budget cannot pay for the shortest billable leg. The answer is a whole
// number of billing steps, so the leg is cut where its charge would jump.
func MaxSeconds(r Rate, budget int64, limit int64) int64 {
	if limit <= 0 || budget <= 0 {
		return 0
	}
	if r.PerMinuteMicros <= 0 {
		if budget >= r.ConnectionFeeMicros {
			return limit
		}
		return 0
	}
	if Cost(r, 1) > budget {
		return 0
	}
	// The greatest billed b with fee + ceil(b*rate/60) <= budget is
	// floor((budget-fee)*60/rate); then down to the billing grid.
	b := mulSat(budget-r.ConnectionFeeMicros, 60) / r.PerMinuteMicros
	min := int64(max(r.MinSeconds, 0))
	inc := int64(max(r.IncrementSeconds, 1))
	if b > min {
		b = min + (b-min)/inc*inc
	}
	if b < 1 {
		// Only reachable when MinSeconds is 0 and one increment already
		// costs more than the budget; Cost(r, 1) said otherwise.
		b = 1
	}
	return minI64(b, limit)
}

func ceilDiv(a, b int64) int64 {
	if a <= 0 {
		return 0
	}
	q := a / b
	if a%b != 0 {
		q++
	}
	return q
}

// mulSat multiplies non-negative numbers, saturating instead of wrapping.
func mulSat(a, b int64) int64 {
	if a <= 0 || b <= 0 {
		return 0
	}
	if a > math.MaxInt64/b {
		return math.MaxInt64
	}
	return a * b
}

func minI64(a, b int64) int64 {
	if a < b {
		return a
	}
	return b
}
