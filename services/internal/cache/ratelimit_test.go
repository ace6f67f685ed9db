package cache_test

import (
	"sync"
	"testing"
	"time"

	"github.com/ringback/ringback/services/internal/cache"
	"github.com/ringback/ringback/services/internal/cache/cachetest"
)

func TestAllowBurstThenRefuse(t *testing.T) {
	t.Parallel()
	c := cachetest.New(t)
	ctx := t.Context()
	// One token a second: the burst must only be faster than that, which
	// a loaded machine (CI) still manages; at 100 ms a token it once was not.
	l := cache.Limit{Rate: 10, Period: 10 * time.Second, Burst: 5}
	const interval = time.Second // Period/Rate

	start := time.Now()
	for i := range l.Burst {
		r, err := c.Allow(ctx, "account:1", l)
		if err != nil {
			t.Fatal(err)
		}
		if want := l.Burst - 1 - i; !r.Allowed || r.Remaining != want || r.RetryAfter != 0 {
			t.Fatalf("request %d: %+v, want allowed with %d remaining", i+1, r, want)
		}
	}
	r, err := c.Allow(ctx, "account:1", l)
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	if r.Allowed || r.Remaining != 0 {
		t.Fatalf("request %d: %+v, want refused", l.Burst+1, r)
	}
	// Redis saw the burst within elapsed, so at most that much of one
	// interval (and of the full refill) has come back.
	if r.RetryAfter <= 0 || r.RetryAfter > interval || r.RetryAfter < interval-elapsed {
		t.Errorf("RetryAfter %v, want in [%v, %v]", r.RetryAfter, interval-elapsed, interval)
	}
	full := time.Duration(l.Burst) * interval
	if r.ResetAfter > full || r.ResetAfter < full-elapsed {
		t.Errorf("ResetAfter %v, want in [%v, %v]", r.ResetAfter, full-elapsed, full)
	}

	time.Sleep(r.RetryAfter)
	r, err = c.Allow(ctx, "account:1", l)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Allowed {
		t.Fatalf("after waiting RetryAfter: %+v, want allowed", r)
	}
}

func TestAllowRefusedRequestsCostNothing(t *testing.T) {
	t.Parallel()
	c := cachetest.New(t)
	ctx := t.Context()
	// An interval long enough that the 20 refusals below all fall inside
	// it on a loaded machine (at 100 ms, 11 round trips once took longer).
	l := cache.Limit{Rate: 1, Period: 2 * time.Second, Burst: 1}
	const interval = 2 * time.Second

	if r, err := c.Allow(ctx, "account:1", l); err != nil || !r.Allowed {
		t.Fatalf("first request: %+v, %v", r, err)
	}
	// Had the refusals each taken an interval, the last would wait ~40s.
	var last cache.Result
	for i := range 20 {
		r, err := c.Allow(ctx, "account:1", l)
		if err != nil {
			t.Fatal(err)
		}
		if r.Allowed || r.RetryAfter <= 0 || r.RetryAfter > interval {
			t.Fatalf("refusal %d: %+v, want refused with RetryAfter in (0, %v]", i+1, r, interval)
		}
		if i > 0 && r.RetryAfter > last.RetryAfter {
			t.Fatalf("refusal %d: RetryAfter grew from %v to %v", i+1, last.RetryAfter, r.RetryAfter)
		}
		last = r
	}
	time.Sleep(last.RetryAfter)
	if r, err := c.Allow(ctx, "account:1", l); err != nil || !r.Allowed {
		t.Fatalf("after waiting RetryAfter: %+v, %v; want allowed", r, err)
	}
}

func TestAllowKeysAreIndependent(t *testing.T) {
	t.Parallel()
	c := cachetest.New(t)
	ctx := t.Context()
	l := cache.Limit{Rate: 1, Period: time.Hour, Burst: 1}
	if r, err := c.Allow(ctx, "account:1", l); err != nil || !r.Allowed {
		t.Fatalf("first request: %+v, %v", r, err)
	}

	tests := []struct {
		name  string
		c     *cache.Client
		key   string
		allow bool
	}{
		{"same key refused", c, "account:1", false},
		{"other key", c, "account:2", true},
		{"other prefix", cachetest.New(t), "account:1", true},
		// Another replica on the same Redis and prefix shares the allowance.
		{"other client same prefix", cache.New(c.Redis(), c.Prefix()), "account:1", false},
	}
	for _, tt := range tests {
		r, err := tt.c.Allow(ctx, tt.key, l)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if r.Allowed != tt.allow {
			t.Errorf("%s: %+v, want allowed %v", tt.name, r, tt.allow)
		}
	}
}

func TestAllowConcurrentCallersShareOneBurst(t *testing.T) {
	t.Parallel()
	c := cachetest.New(t)
	// Slow enough that nothing refills during the test.
	l := cache.Limit{Rate: 1, Period: time.Hour, Burst: 50}
	const callers, each = 20, 10

	var (
		mu        sync.Mutex
		remaining = map[int]int{} // Remaining of allowed requests -> count
		refused   int
		wg        sync.WaitGroup
	)
	start := make(chan struct{})
	errs := make(chan error, callers*each)
	for range callers {
		wg.Go(func() {
			<-start
			for range each {
				r, err := c.Allow(t.Context(), "account:1", l)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				if r.Allowed {
					remaining[r.Remaining]++
				} else {
					refused++
				}
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if len(remaining) != l.Burst || refused != callers*each-l.Burst {
		t.Fatalf("%d distinct allowed, %d refused; want %d and %d", len(remaining), refused, l.Burst, callers*each-l.Burst)
	}
	// Each allowed request saw the allowance one smaller than the last.
	for i := range l.Burst {
		if remaining[i] != 1 {
			t.Errorf("%d allowed requests saw %d remaining, want 1", remaining[i], i)
		}
	}
}

func TestAllowKeyExpiresWhenFull(t *testing.T) {
	t.Parallel()
	c := cachetest.New(t)
	ctx := t.Context()
	// A reset long enough (about 400 ms) that reading the TTL right after never
	// races the expiry on a loaded machine.
	l := cache.Limit{Rate: 10, Period: 2 * time.Second, Burst: 2}
	key := c.Key("ratelimit", "account:1")

	var r cache.Result
	for range l.Burst {
		var err error
		if r, err = c.Allow(ctx, "account:1", l); err != nil || !r.Allowed {
			t.Fatalf("%+v, %v", r, err)
		}
	}
	ttl, err := c.Redis().PTTL(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 0 || ttl > r.ResetAfter.Round(time.Millisecond)+time.Millisecond {
		t.Fatalf("PTTL %v, want in (0, ResetAfter %v]", ttl, r.ResetAfter)
	}

	// An idle key vanishes once the allowance is full again.
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := c.Redis().Exists(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("key %s still there after %v", key, 5*time.Second)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if r, err := c.Allow(ctx, "account:1", l); err != nil || !r.Allowed || r.Remaining != l.Burst-1 {
		t.Fatalf("after expiry: %+v, %v; want a full burst", r, err)
	}
}

func TestAllowInvalidLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		l    cache.Limit
	}{
		{"zero", cache.Limit{}},
		{"zero rate", cache.Limit{Rate: 0, Period: time.Second, Burst: 1}},
		{"negative rate", cache.Limit{Rate: -1, Period: time.Second, Burst: 1}},
		{"zero period", cache.Limit{Rate: 1, Period: 0, Burst: 1}},
		{"negative period", cache.Limit{Rate: 1, Period: -time.Second, Burst: 1}},
		{"zero burst", cache.Limit{Rate: 1, Period: time.Second, Burst: 0}},
		{"negative burst", cache.Limit{Rate: 1, Period: time.Second, Burst: -5}},
		{"over one per microsecond", cache.Limit{Rate: 2_000, Period: time.Millisecond, Burst: 1}},
		{"refill over ten years", cache.Limit{Rate: 1, Period: 24 * time.Hour, Burst: 10_000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := cachetest.New(t)
			if tt.l.Validate() == nil {
				t.Errorf("Validate(%+v) = nil", tt.l)
			}
			r, err := c.Allow(t.Context(), "account:1", tt.l)
			if err == nil {
				t.Fatalf("Allow(%+v) = %+v, want an error", tt.l, r)
			}
			n, err := c.Redis().Exists(t.Context(), c.Key("ratelimit", "account:1")).Result()
			if err != nil || n != 0 {
				t.Errorf("key written for an invalid limit (exists %d, %v)", n, err)
			}
		})
	}
	if err := (cache.Limit{Rate: 1_000_000, Period: time.Second, Burst: 1}).Validate(); err != nil {
		t.Errorf("one per microsecond: %v", err)
	}
	if err := (cache.Limit{Rate: 1, Period: time.Hour, Burst: 24 * 365}).Validate(); err != nil {
		t.Errorf("a year to refill: %v", err)
	}
}
