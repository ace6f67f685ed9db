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
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("the one-second burst of 5 took %s", d)
	}
	// The 6th token is ~200 ms away: a 50 ms deadline fails at once (not
	// by reaching the deadline) and does not consume it.
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := b.wait(short); !errors.Is(err, ErrRateLimited) || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("wait with a too-close deadline = %v, want an immediate ErrRateLimited", err)
	}
	// Cancelling while waiting gives the token back.
	cctx, ccancel := context.WithCancel(ctx)
	time.AfterFunc(20*time.Millisecond, ccancel)
	if err := b.wait(cctx); !errors.Is(err, ErrRateLimited) || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled wait = %v", err)
	}
	if err := b.wait(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 180*time.Millisecond {
		t.Errorf("6th token %s after the first, want >= 200 ms", d)
	}
}
