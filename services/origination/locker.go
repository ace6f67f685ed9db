package origination

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ringback/ringback/services/internal/cache"
)

// CacheLocker is the Redis Locker: the lock's token is the call ID, so the
// call that holds an endpoint can release it from any origination instance
// (after a restart too), and nobody else can.
type CacheLocker struct {
	C *cache.Client
}

// lockScript takes the lock, or renews it if the owner already holds it
// (a retried step of the same call must not find its own endpoint busy).
var lockScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then
	redis.call('PEXPIRE', KEYS[1], ARGV[2])
	return 1
end
if v then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1`)

// Lock implements Locker.
func (l CacheLocker) Lock(ctx context.Context, key, owner string, ttl time.Duration) (bool, error) {
	n, err := lockScript.Run(ctx, l.C.Redis(), []string{l.C.Prefix() + key}, owner, ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("lock %s: %w", key, err)
	}
	return n == 1, nil
}

// Unlock implements Locker; releasing a lock that expired or was never
// held is not an error.
func (l CacheLocker) Unlock(ctx context.Context, key, owner string) error {
	err := l.C.Unlock(ctx, key, owner)
	if errors.Is(err, cache.ErrNotHeld) {
		return nil
	}
	return err
}
