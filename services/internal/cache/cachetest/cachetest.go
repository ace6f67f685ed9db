// Package cachetest gives each test a cache.Client on the real Redis
// (REDIS_URL, or the scripts/setup default) with a key prefix of its own,
// and deletes the test's keys at cleanup, so tests run in parallel on one
// Redis without mocks and without seeing each other's keys.
package cachetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ringback/ringback/services/internal/cache"
)

// DefaultURL is used when REDIS_URL is unset.
const DefaultURL = "redis://127.0.0.1:6379/0"

// URL is REDIS_URL if set, else DefaultURL.
func URL() string {
	if u := os.Getenv("REDIS_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// New returns a client whose prefix is unique to t ("test:<name>:<random>:").
// At cleanup the test's keys are deleted and the client closed.
func New(t testing.TB) *cache.Client {
	t.Helper()
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	name := strings.NewReplacer("/", ".", " ", "_", "*", "_", "?", "_", "[", "_", "]", "_").Replace(t.Name())
	prefix := "test:" + name + ":" + hex.EncodeToString(rnd[:]) + ":"

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := cache.Open(ctx, URL(), cache.Options{Prefix: prefix})
	if err != nil {
		t.Fatalf("cachetest: %v (is Redis running? run scripts/setup)", err)
	}
	t.Cleanup(func() {
		defer c.Close()
		if err := DeletePrefix(context.Background(), c, prefix); err != nil {
			t.Errorf("cachetest: delete keys %s*: %v", prefix, err)
		}
	})
	return c
}

// DeletePrefix deletes every key starting with prefix (SCAN, not KEYS: it
// does not block Redis).
func DeletePrefix(ctx context.Context, c *cache.Client, prefix string) error {
	rdb := c.Redis()
	iter := rdb.Scan(ctx, 0, escapeGlob(prefix)+"*", 500).Iterator()
	var batch []string
	for iter.Next(ctx) {
		batch = append(batch, iter.Val())
		if len(batch) == 500 {
			if err := rdb.Unlink(ctx, batch...).Err(); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	if err := iter.Err(); err != nil {
		return err
	}
	if len(batch) > 0 {
		return rdb.Unlink(ctx, batch...).Err()
	}
	return nil
}

// escapeGlob quotes the characters SCAN MATCH treats specially.
func escapeGlob(s string) string {
	return strings.NewReplacer(`\`, `\\`, "*", `\*`, "?", `\?`, "[", `\[`, "]", `\]`).Replace(s)
}
