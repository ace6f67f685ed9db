package esl

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// bucket is a token bucket: rate tokens per second, holding at most one
// second's worth. FreeSWITCH refills its own `sps` budget once a second, so
// a one-second burst matches what the switch would accept.
//
// It is written here rather than taken from golang.org/x/time/rate to keep
// the failure mode we want: an originate that cannot get a token before its
// context's deadline fails at once with ErrRateLimited instead of sleeping
// until the deadline.
type bucket struct {
	mu     sync.Mutex
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(perSecond int) *bucket {
	return &bucket{rate: float64(perSecond), burst: float64(perSecond), tokens: float64(perSecond), last: time.Now()}
}

// wait takes one token, sleeping until it is due. It fails fast if the
// token would come after ctx's deadline, and gives the token back if ctx
// ends while sleeping.
func (b *bucket) wait(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%w: %w", ErrRateLimited, ctxErr(ctx))
	}
	b.mu.Lock()
	now := time.Now()
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	b.tokens--
	var delay time.Duration
	if b.tokens < 0 {
		delay = time.Duration(-b.tokens / b.rate * float64(time.Second))
	}
	if dl, ok := ctx.Deadline(); ok && delay > 0 && now.Add(delay).After(dl) {
		b.tokens++
		b.mu.Unlock()
		return fmt.Errorf("%w: next slot in %s, after the deadline", ErrRateLimited, delay.Round(time.Millisecond))
	}
	b.mu.Unlock()
	if delay == 0 {
		return nil
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		b.mu.Lock()
		b.tokens++
		b.mu.Unlock()
		return fmt.Errorf("%w: %w", ErrRateLimited, ctxErr(ctx))
	}
}
