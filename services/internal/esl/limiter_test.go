package esl

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	t.Parallel()
	b := newBucket(5)
	ctx := context.Background()
	start := time.Now()
	for range 5 {
		if err := b.wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("the one-second burst of 5 took %s", d)
	}
	// The 6th token is ~200 ms away: a 50 ms deadline fails at once and
	// does not consume it.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	if err := b.wait(short); !errors.Is(err, ErrRateLimited) || time.Since(t0) > 20*time.Millisecond {
		t.Errorf("wait with a too-close deadline = %v after %s, want an immediate ErrRateLimited", err, time.Since(t0))
	}
	// Cancelling while waiting gives the token back.
	cctx, ccancel := context.WithCancel(ctx)
	time.AfterFunc(20*time.Millisecond, ccancel)
	if err := b.wait(cctx); !errors.Is(err, ErrRateLimited) || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled wait = %v", err)
	}
	t0 = time.Now()
	if err := b.wait(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d < 100*time.Millisecond || d > 400*time.Millisecond {
		t.Errorf("6th token after %s, want ~180 ms more", d)
	}
}
