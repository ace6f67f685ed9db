// Package cache is Ringback's access to Redis, which holds hot shared state
// only: locks, counters, rate limits, the live-call registry, leases.
// Nothing that must survive a Redis restart goes here (that is PostgreSQL's
// or JetStream's job). Every key a Client makes carries its prefix, so
// environments (and tests) sharing one Redis never see each other's keys.
//
// Lock is the building block of "one active call per endpoint": a SET NX PX
// with a random token, released only by its owner (compare-and-delete in
// Lua), and expiring by itself if the owner dies.
package cache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/ringback/ringback/services/internal/config"
)

// DefaultPrefix is the key prefix of services (tests use their own).
const DefaultPrefix = "ringback:"

// Options tunes Open. Parameters given in the URL (dial_timeout,
// read_timeout, pool_size, ...) win over these.
type Options struct {
	// Prefix starts every key (default DefaultPrefix). End it with ':'.
	Prefix string
	// DialTimeout (default 2s), ReadTimeout and WriteTimeout (default 1s
	// each) bound each network step; a context deadline, when shorter, wins.
	DialTimeout  time.Duration
	ReadTimeout  time.Duration
	WriteTimeout time.Duration
	// PoolSize is the most connections kept open (default 64, at least
	// 10 per CPU): services hold many calls' state changes in flight at
	// once, and a caller waiting for a pooled connection waits on the
	// request path.
	PoolSize int
}

// Client is a Redis client whose keys carry a prefix. Safe for concurrent use.
type Client struct {
	rdb    *redis.Client
	prefix string
}

// Open connects to redisURL (redis://[user:password@]host:port/db) and pings,
// so a wrong URL or a Redis that is down fails the start.
func Open(ctx context.Context, redisURL string, opts Options) (*Client, error) {
	redacted := config.RedactURL(redisURL)
	ro, err := redis.ParseURL(redisURL)
	if err != nil {
		return nil, fmt.Errorf("open redis %s: invalid URL", redacted)
	}
	q := url.Values{}
	if u, err := url.Parse(redisURL); err == nil {
		q = u.Query()
	}
	set := func(param string, dst *time.Duration, v, def time.Duration) {
		if q.Has(param) {
			return
		}
		*dst = def
		if v > 0 {
			*dst = v
		}
	}
	set("dial_timeout", &ro.DialTimeout, opts.DialTimeout, 2*time.Second)
	set("read_timeout", &ro.ReadTimeout, opts.ReadTimeout, time.Second)
	set("write_timeout", &ro.WriteTimeout, opts.WriteTimeout, time.Second)
	if !q.Has("pool_size") {
		ro.PoolSize = max(opts.PoolSize, 64, 10*runtime.GOMAXPROCS(0))
	}
	ro.ContextTimeoutEnabled = true
	// Maintenance notifications are a Redis Enterprise/Cloud feature; with
	// open-source Redis they only add a failed handshake per connection.
	ro.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}

	prefix := opts.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	c := New(redis.NewClient(ro), prefix)
	if err := c.Ping(ctx); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("open redis %s: %w", redacted, err)
	}
	return c, nil
}

// New wraps an existing go-redis client.
func New(rdb *redis.Client, prefix string) *Client {
	return &Client{rdb: rdb, prefix: prefix}
}

// Redis returns the underlying client, for commands this package does not
// wrap; build its keys with Key.
func (c *Client) Redis() *redis.Client { return c.rdb }

// Prefix returns the prefix of every key.
func (c *Client) Prefix() string { return c.prefix }

// Key builds a key from parts: prefix + parts joined by ':'
// (Key("endpoint", "42", "call") = "ringback:endpoint:42:call").
func (c *Client) Key(parts ...string) string {
	return c.prefix + strings.Join(parts, ":")
}

// Ping is a readiness check.
func (c *Client) Ping(ctx context.Context) error {
	if err := c.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis ping: %w", err)
	}
	return nil
}

// Close closes the connections.
func (c *Client) Close() error { return c.rdb.Close() }

// Lock errors.
var (
	// ErrLocked: another owner holds the lock.
	ErrLocked = errors.New("lock held by another owner")
	// ErrNotHeld: the token does not own the lock (it expired, or was
	// never this owner's); nothing was changed.
	ErrNotHeld = errors.New("lock not held by this owner")
)

// Lock is a held lock. Its token proves ownership; another process may
// release or extend it with the same key and token (Client.Unlock), so the
// origination instance handling a hangup need not be the one that dialed.
type Lock struct {
	c     *Client
	key   string
	token string
}

// Key is the lock's key as passed to Client.Lock (without the prefix).
func (l *Lock) Key() string { return l.key }

// Token is the owner's random token.
func (l *Lock) Token() string { return l.token }

// Unlock releases the lock if still held by this owner (ErrNotHeld if not).
func (l *Lock) Unlock(ctx context.Context) error { return l.c.Unlock(ctx, l.key, l.token) }

// Refresh extends the lock to ttl from now if still held (ErrNotHeld if not).
func (l *Lock) Refresh(ctx context.Context, ttl time.Duration) error {
	return l.c.Refresh(ctx, l.key, l.token, ttl)
}

// Lock takes the lock key (under the client's prefix) for ttl, or returns
// ErrLocked at once if someone holds it: callers decide whether to wait,
// queue or refuse. The lock expires after ttl unless refreshed, so a crashed
// owner cannot hold an endpoint forever.
func (c *Client) Lock(ctx context.Context, key string, ttl time.Duration) (*Lock, error) {
	if ttl < time.Millisecond {
		return nil, fmt.Errorf("lock %s: ttl %v below 1ms", key, ttl)
	}
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand panics instead)
	token := hex.EncodeToString(b[:])
	ok, err := c.rdb.SetNX(ctx, c.prefix+key, token, ttl).Result()
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", key, err)
	}
	if !ok {
		return nil, fmt.Errorf("lock %s: %w", key, ErrLocked)
	}
	return &Lock{c: c, key: key, token: token}, nil
}

// unlockScript deletes the key only if it still holds the caller's token:
// a GET then DEL from the client could delete a lock taken over by someone
// else after ours expired in between.
var unlockScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("DEL", KEYS[1])
end
return 0`)

// refreshScript extends the key's ttl only if it still holds the token.
var refreshScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0`)

// Unlock releases lock key if token owns it.
func (c *Client) Unlock(ctx context.Context, key, token string) error {
	n, err := unlockScript.Run(ctx, c.rdb, []string{c.prefix + key}, token).Int()
	if err != nil {
		return fmt.Errorf("unlock %s: %w", key, err)
	}
	if n == 0 {
		return fmt.Errorf("unlock %s: %w", key, ErrNotHeld)
	}
	return nil
}

// Refresh extends lock key to ttl from now if token owns it.
func (c *Client) Refresh(ctx context.Context, key, token string, ttl time.Duration) error {
	if ttl < time.Millisecond {
		return fmt.Errorf("refresh lock %s: ttl %v below 1ms", key, ttl)
	}
	n, err := refreshScript.Run(ctx, c.rdb, []string{c.prefix + key}, token, ttl.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("refresh lock %s: %w", key, err)
	}
	if n == 0 {
		return fmt.Errorf("refresh lock %s: %w", key, ErrNotHeld)
	}
	return nil
}
