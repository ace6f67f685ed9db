package cache_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ringback/ringback/services/internal/cache"
	"github.com/ringback/ringback/services/internal/cache/cachetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestOpen(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		url     string
		wantErr string
	}{
		{"local", cachetest.URL(), ""},
		{"nobody listening", "redis://:hunter2@127.0.0.1:1/0", "connect"},
		{"bad url", "http://:hunter2@127.0.0.1:6379", "invalid URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
			defer cancel()
			c, err := cache.Open(ctx, tt.url, cache.Options{})
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if c.Prefix() != cache.DefaultPrefix {
					t.Errorf("prefix %q", c.Prefix())
				}
				if err := c.Ping(ctx); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				c.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.Contains(err.Error(), tt.wantErr) || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error %q: want %q and no password", err, tt.wantErr)
			}
		})
	}
}

func TestKey(t *testing.T) {
	t.Parallel()
	c := cache.New(nil, "ringback:")
	tests := []struct {
		parts []string
		want  string
	}{
		{[]string{"endpoint", "42", "call"}, "ringback:endpoint:42:call"},
		{[]string{"calls"}, "ringback:calls"},
		{nil, "ringback:"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			t.Parallel()
			if got := c.Key(tt.parts...); got != tt.want {
				t.Errorf("Key(%q) = %q, want %q", tt.parts, got, tt.want)
			}
		})
	}
}

func TestLockHasExactlyOneWinner(t *testing.T) {
	t.Parallel()
	c := cachetest.New(t)
	const contenders = 100
	var won, lost atomic.Int32
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, contenders)
	for range contenders {
		wg.Go(func() {
			<-start
			_, err := c.Lock(t.Context(), "endpoint:42", 10*time.Second)
			switch {
			case err == nil:
				won.Add(1)
			case errors.Is(err, cache.ErrLocked):
				lost.Add(1)
			default:
				errs <- err
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if won.Load() != 1 || lost.Load() != contenders-1 {
		t.Fatalf("%d won, %d lost; want 1 and %d", won.Load(), lost.Load(), contenders-1)
	}
}

func TestLockOwnership(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		run  func(t *testing.T, c *cache.Client, l *cache.Lock)
	}{
		{"owner unlocks once", func(t *testing.T, c *cache.Client, l *cache.Lock) {
			if err := l.Unlock(t.Context()); err != nil {
				t.Fatal(err)
			}
			if err := l.Unlock(t.Context()); !errors.Is(err, cache.ErrNotHeld) {
				t.Fatalf("second Unlock = %v, want ErrNotHeld", err)
			}
			if _, err := c.Lock(t.Context(), l.Key(), time.Second); err != nil {
				t.Fatalf("Lock after Unlock: %v", err)
			}
		}},
		{"non-owner cannot unlock", func(t *testing.T, c *cache.Client, l *cache.Lock) {
			if err := c.Unlock(t.Context(), l.Key(), "not-the-token"); !errors.Is(err, cache.ErrNotHeld) {
				t.Fatalf("Unlock by non-owner = %v, want ErrNotHeld", err)
			}
			if _, err := c.Lock(t.Context(), l.Key(), time.Second); !errors.Is(err, cache.ErrLocked) {
				t.Fatalf("lock was released by a non-owner: Lock = %v", err)
			}
		}},
		{"non-owner cannot refresh", func(t *testing.T, c *cache.Client, l *cache.Lock) {
			if err := c.Refresh(t.Context(), l.Key(), "not-the-token", time.Hour); !errors.Is(err, cache.ErrNotHeld) {
				t.Fatalf("Refresh by non-owner = %v, want ErrNotHeld", err)
			}
		}},
		{"owner elsewhere unlocks with the token", func(t *testing.T, c *cache.Client, l *cache.Lock) {
			other := cache.New(c.Redis(), c.Prefix()) // another instance sharing the prefix
			if err := other.Unlock(t.Context(), l.Key(), l.Token()); err != nil {
				t.Fatal(err)
			}
		}},
		{"refresh extends", func(t *testing.T, c *cache.Client, l *cache.Lock) {
			if err := l.Refresh(t.Context(), time.Hour); err != nil {
				t.Fatal(err)
			}
			ttl, err := c.Redis().PTTL(t.Context(), c.Key(l.Key())).Result()
			if err != nil || ttl < 59*time.Minute {
				t.Fatalf("ttl after refresh = %v, %v", ttl, err)
			}
		}},
		{"bad ttl", func(t *testing.T, c *cache.Client, l *cache.Lock) {
			if _, err := c.Lock(t.Context(), "other", 0); err == nil {
				t.Error("Lock with ttl 0 succeeded")
			}
			if err := l.Refresh(t.Context(), time.Microsecond); err == nil {
				t.Error("Refresh with ttl 1µs succeeded")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := cachetest.New(t)
			l, err := c.Lock(t.Context(), "endpoint:7", 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if l.Key() != "endpoint:7" || len(l.Token()) != 32 {
				t.Fatalf("lock %q token %q", l.Key(), l.Token())
			}
			tt.run(t, c, l)
		})
	}
}

func TestLockExpiryReleases(t *testing.T) {
	t.Parallel()
	c := cachetest.New(t)
	ctx := t.Context()
	const ttl = 100 * time.Millisecond
	old, err := c.Lock(ctx, "endpoint:9", ttl)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Lock(ctx, "endpoint:9", ttl); !errors.Is(err, cache.ErrLocked) {
		t.Fatalf("Lock while held = %v, want ErrLocked", err)
	}
	// The owner died without unlocking: the lock frees itself.
	var next *cache.Lock
	deadline := time.Now().Add(5 * time.Second)
	for {
		next, err = c.Lock(ctx, "endpoint:9", 10*time.Second)
		if err == nil {
			break
		}
		if !errors.Is(err, cache.ErrLocked) || time.Now().After(deadline) {
			t.Fatalf("Lock after expiry = %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The late previous owner can neither release nor extend the new lock.
	if err := old.Unlock(ctx); !errors.Is(err, cache.ErrNotHeld) {
		t.Errorf("stale Unlock = %v, want ErrNotHeld", err)
	}
	if err := old.Refresh(ctx, time.Hour); !errors.Is(err, cache.ErrNotHeld) {
		t.Errorf("stale Refresh = %v, want ErrNotHeld", err)
	}
	if err := next.Unlock(ctx); err != nil {
		t.Errorf("new owner Unlock = %v", err)
	}
}

func TestCachetestCleansItsKeys(t *testing.T) {
	t.Parallel()
	var prefix string
	t.Run("inner", func(t *testing.T) {
		c := cachetest.New(t)
		prefix = c.Prefix()
		for _, k := range []string{"a", "b:c", "d*e"} {
			if err := c.Redis().Set(t.Context(), c.Key(k), "1", time.Minute).Err(); err != nil {
				t.Fatal(err)
			}
		}
	})
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	probe, err := cache.Open(ctx, cachetest.URL(), cache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	if !strings.HasPrefix(prefix, "test:TestCachetestCleansItsKeys.inner:") {
		t.Errorf("prefix %q does not name the test", prefix)
	}
	var keys []string
	iter := probe.Redis().Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Errorf("keys left after cleanup: %v", keys)
	}
}
