package origination

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ringback/ringback/services/internal/cache"
)

// CacheLocker is the Redis Locker: the lock's token is the call ID, so the
// call that holds an endpoint can release it from any origination instance
// (after a restart too), and nobody else can.
type CacheLocker struct {
	C *cache.Client
}

// Lock implements Locker.
func (l CacheLocker) Lock(ctx context.Context, key, owner string, ttl time.Duration) (bool, error) {
	ok, err := l.C.Redis().SetNX(ctx, l.C.Prefix()+key, owner, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("lock %s: %w", key, err)
	}
	return ok, nil
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
