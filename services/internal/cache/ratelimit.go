package cache

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Limit is a rate: Rate requests per Period, with bursts of up to Burst.
// Limit{Rate: 10, Period: time.Second, Burst: 20} allows 20 requests at
// once, then one every 100ms.
type Limit struct {
	Rate   int
	Period time.Duration
	Burst  int
}

// maxWindow bounds Period/Rate*Burst, the time a full burst takes to
// refill: the script adds it to Redis time in microseconds as a Lua number
// (a float64), which holds integers exactly only up to 2^53 (now is ~2^50.6).
const maxWindow = 10 * 365 * 24 * time.Hour

// Validate reports whether l can be used, so a service can check its
// configured limits once at start rather than on the first request.
func (l Limit) Validate() error {
	switch {
	case l.Rate <= 0:
		return fmt.Errorf("rate limit: rate %d, want > 0", l.Rate)
	case l.Period <= 0:
		return fmt.Errorf("rate limit: period %v, want > 0", l.Period)
	case l.Burst < 1:
		return fmt.Errorf("rate limit: burst %d, want >= 1", l.Burst)
	}
	if l.Period/time.Duration(l.Rate) < time.Microsecond {
		// Redis time has microsecond resolution.
		return fmt.Errorf("rate limit: %d per %v is more than one per microsecond", l.Rate, l.Period)
	}
	if int64(l.Burst) > int64(maxWindow/l.interval()) {
		return fmt.Errorf("rate limit: burst %d at %d per %v takes over %v to refill", l.Burst, l.Rate, l.Period, maxWindow)
	}
	return nil
}

// interval is the emission interval, the time one request's allowance takes
// to come back, rounded to Redis time's microseconds: off by at most 0.5µs
// per request, which only rates near one per microsecond would notice.
func (l Limit) interval() time.Duration {
	return (l.Period / time.Duration(l.Rate)).Round(time.Microsecond)
}

// Result of one Allow.
type Result struct {
	Allowed bool
	// Remaining is how many more requests would be allowed right now.
	Remaining int
	// RetryAfter, when not allowed, is how long until one request would be;
	// 0 when allowed.
	RetryAfter time.Duration
	// ResetAfter is how long until the limiter is back to a full burst
	// (and its key has expired).
	ResetAfter time.Duration
}

// allowScript is GCRA (generic cell rate algorithm): the key holds only the
// theoretical arrival time (TAT), the time at which the allowance would be
// full again, in microseconds of Redis time. A request is allowed if, after
// adding one emission interval, the TAT is at most a burst's worth of
// intervals ahead of now. Only allowed requests move the TAT, so refused
// ones cost nothing. Redis's clock, not the callers', is the one clock every
// replica of a service reads; since Redis 5 scripts replicate their writes,
// not the script, so reading TIME before writing is allowed.
//
// KEYS[1]: the TAT. ARGV[1]: emission interval µs. ARGV[2]: burst × interval µs.
// Returns {allowed 0|1, µs the TAT is short of the limit (< 0: refused), µs
// until the allowance is full}.
var allowScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '') or now
if tat < now then
	tat = now
end
local newTat = tat + interval
local slack = now - (newTat - window)
if slack < 0 then
	return {0, slack, tat - now}
end
-- A key idle until its TAT is the same as no key: let it expire then.
-- '%.0f', because Lua's own number-to-string keeps only 14 digits.
redis.call('SET', KEYS[1], string.format('%.0f', newTat), 'PX', math.ceil((newTat - now) / 1000))
return {1, slack, newTat - now}`)

// Allow takes one request from key's allowance under l (the key is the
// client's prefix + "ratelimit:" + key). Callers sharing a Redis share the
// allowance, whichever process or clock they run on. A refused request
// consumes nothing.
func (c *Client) Allow(ctx context.Context, key string, l Limit) (Result, error) {
	if err := l.Validate(); err != nil {
		return Result{}, fmt.Errorf("allow %s: %w", key, err)
	}
	ivMicros := l.interval().Microseconds()
	vals, err := allowScript.Run(ctx, c.rdb, []string{c.Key("ratelimit", key)},
		ivMicros, ivMicros*int64(l.Burst)).Int64Slice()
	if err != nil {
		return Result{}, fmt.Errorf("allow %s: %w", key, err)
	}
	if len(vals) != 3 {
		return Result{}, fmt.Errorf("allow %s: script replied %v, want 3 integers", key, vals)
	}
	allowed, slack, reset := vals[0] == 1, vals[1], vals[2]
	r := Result{Allowed: allowed, ResetAfter: time.Duration(reset) * time.Microsecond}
	if allowed {
		r.Remaining = int(slack / ivMicros)
	} else {
		r.RetryAfter = time.Duration(-slack) * time.Microsecond
	}
	return r, nil
}
