package origination

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisStore keeps live calls in Redis, the hot shared state every
// origination replica sees: a call survives a restart of the process that
// drives it, and its hangup after the restart is still applied.
//
// Layout: origination:call:<id> is a hash {v: version, d: call JSON};
// origination:live:<owner> the set of calls an instance drives;
// origination:leg:<uuid> maps a leg to its call. Ended calls are kept for
// Retention so GetCall still answers; the durable record is the CDR.
type RedisStore struct {
	rdb       redis.UniversalClient
	Retention time.Duration
	// WaitingKey is the shared sorted set of waiting calls; every
	// instance of a deployment must use the same (the default).
	WaitingKey string
	// InstancesKey is the set of the instances that heartbeat (Gone reads
	// it); shared by every instance of a deployment, like WaitingKey.
	InstancesKey string
}

// NewRedisStore wraps a Redis client.
func NewRedisStore(rdb redis.UniversalClient) *RedisStore {
	return &RedisStore{rdb: rdb, Retention: 24 * time.Hour, WaitingKey: waitingKey, InstancesKey: instancesKey}
}

func callKey(id string) string             { return "origination:call:" + id }
func liveKey(owner string) string          { return "origination:live:" + owner }
func legKey(uuid string) string            { return "origination:leg:" + uuid }
func accountLiveKey(account string) string { return "origination:live-account:" + account }

// casScript replaces the call only if its stored version is the expected
// one, so concurrent writers cannot lose each other's changes.
var casScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], 'v')
if v == false then return -1 end
if tonumber(v) ~= tonumber(ARGV[1]) then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 'd', ARGV[3])
return 1`)

// createScript stores a new call and its indexes in one round trip (this
// is on the API's request path).
var createScript = redis.NewScript(`
if redis.call('HSETNX', KEYS[1], 'd', ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[2])
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[3])
redis.call('SET', KEYS[4], ARGV[3], 'EX', ARGV[4])
redis.call('SET', KEYS[5], ARGV[3], 'EX', ARGV[4])
return 1`)

// Create stores a new call and indexes its legs.
func (s *RedisStore) Create(ctx context.Context, c *Call) error {
	c.Version = 1
	data, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode call %s: %w", c.ID, err)
	}
	ttl := int((s.Retention + time.Duration(c.MaxDurationS)*time.Second) / time.Second)
	second := c.Second.UUID
	if second == "" {
		// An announcement-only call has no second leg: index the first
		// twice rather than map the empty UUID to this call.
		second = c.First.UUID
	}
	keys := []string{callKey(c.ID), liveKey(c.Owner), accountLiveKey(c.AccountID), legKey(c.First.UUID), legKey(second)}
	ok, err := createScript.Run(ctx, s.rdb, keys, data, c.Version, c.ID, ttl).Int()
	if err != nil {
		return fmt.Errorf("create call %s: %w", c.ID, err)
	}
	if ok != 1 {
		return fmt.Errorf("create call %s: already exists", c.ID)
	}
	return nil
}

// Get loads a call.
func (s *RedisStore) Get(ctx context.Context, id string) (*Call, error) {
	vals, err := s.rdb.HMGet(ctx, callKey(id), "v", "d").Result()
	if err != nil {
		return nil, fmt.Errorf("load call %s: %w", id, err)
	}
	d, ok := vals[1].(string)
	if !ok {
		return nil, fmt.Errorf("call %s: %w", id, ErrNotFound)
	}
	var c Call
	if err := json.Unmarshal([]byte(d), &c); err != nil {
		return nil, fmt.Errorf("decode call %s: %w", id, err)
	}
	if v, ok := vals[0].(string); ok {
		fmt.Sscan(v, &c.Version)
	}
	return &c, nil
}

// Update saves c if nobody changed it since it was loaded.
func (s *RedisStore) Update(ctx context.Context, c *Call) error {
	next := c.Version + 1
	cp := *c
	cp.Version = next
	data, err := json.Marshal(&cp)
	if err != nil {
		return fmt.Errorf("encode call %s: %w", c.ID, err)
	}
	res, err := casScript.Run(ctx, s.rdb, []string{callKey(c.ID)}, c.Version, next, data).Int()
	if err != nil {
		return fmt.Errorf("update call %s: %w", c.ID, err)
	}
	switch res {
	case 1:
		c.Version = next
		return nil
	case -1:
		return fmt.Errorf("update call %s: %w", c.ID, ErrNotFound)
	}
	return fmt.Errorf("update call %s: %w", c.ID, ErrConflict)
}

// waitingKey is the sorted set of calls waiting for a redial or for their
// campaign's opening hours (score: due time, Unix ms), shared by every
// instance so a waiting call outlives the replica that accepted it.
const waitingKey = "origination:waiting"

func instanceKey(name string) string { return "origination:instance:" + name }

// instancesKey is the set of instance names that have heartbeat.
const instancesKey = "origination:instances"

// Wait implements Store.
func (s *RedisStore) Wait(ctx context.Context, id string, at time.Time) error {
	if err := s.rdb.ZAdd(ctx, s.WaitingKey, redis.Z{Score: float64(at.UnixMilli()), Member: id}).Err(); err != nil {
		return fmt.Errorf("wait call %s: %w", id, err)
	}
	return nil
}

// Unwait implements Store.
func (s *RedisStore) Unwait(ctx context.Context, id string) error {
	if err := s.rdb.ZRem(ctx, s.WaitingKey, id).Err(); err != nil {
		return fmt.Errorf("unwait call %s: %w", id, err)
	}
	return nil
}

// Due implements Store.
func (s *RedisStore) Due(ctx context.Context, now time.Time, limit int) ([]string, error) {
	ids, err := s.rdb.ZRangeByScore(ctx, s.WaitingKey, &redis.ZRangeBy{Min: "-inf", Max: fmt.Sprint(now.UnixMilli()), Count: int64(limit)}).Result()
	if err != nil {
		return nil, fmt.Errorf("due calls: %w", err)
	}
	return ids, nil
}

// Heartbeat implements Store: the instance's key, which expires after ttl,
// and its name in the set Gone reads.
func (s *RedisStore) Heartbeat(ctx context.Context, instance string, ttl time.Duration) error {
	pipe := s.rdb.Pipeline()
	pipe.Set(ctx, instanceKey(instance), time.Now().UTC().Format(time.RFC3339), ttl)
	pipe.SAdd(ctx, s.InstancesKey, instance)
	_, err := pipe.Exec(ctx)
	return err
}

// goneScript says whether an instance is gone and has live calls left (1);
// one that is gone with none is forgotten. Atomic, so that an instance
// heartbeating again between the checks is never forgotten.
var goneScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if redis.call('SCARD', KEYS[2]) > 0 then return 1 end
redis.call('SREM', KEYS[3], ARGV[1])
return 0`)

// Gone implements Store.
func (s *RedisStore) Gone(ctx context.Context) ([]string, error) {
	names, err := s.rdb.SMembers(ctx, s.InstancesKey).Result()
	if err != nil {
		return nil, fmt.Errorf("list instances: %w", err)
	}
	var gone []string
	for _, name := range names {
		n, err := goneScript.Run(ctx, s.rdb, []string{instanceKey(name), liveKey(name), s.InstancesKey}, name).Int()
		if err != nil {
			return nil, fmt.Errorf("check instance %s: %w", name, err)
		}
		if n == 1 {
			gone = append(gone, name)
		}
	}
	return gone, nil
}

// Alive implements Store.
func (s *RedisStore) Alive(ctx context.Context, instance string) (bool, error) {
	n, err := s.rdb.Exists(ctx, instanceKey(instance)).Result()
	return n == 1, err
}

// Adopt implements Store: c (as loaded) changes owner if nobody wrote it
// since, and moves to the new owner's live set. Should the move fail after
// the owner changed, the call is in both sets until it ends: the old
// owner's Recover skips calls it does not own.
func (s *RedisStore) Adopt(ctx context.Context, c *Call, owner string) error {
	old := c.Owner
	c.Owner = owner
	if err := s.Update(ctx, c); err != nil {
		c.Owner = old
		return err
	}
	if err := s.rdb.SMove(ctx, liveKey(old), liveKey(owner), c.ID).Err(); err != nil {
		return fmt.Errorf("adopt call %s: %w", c.ID, err)
	}
	return nil
}

// IndexLeg implements Store: the index lives as long as a call's legs do.
func (s *RedisStore) IndexLeg(ctx context.Context, uuid, callID string) error {
	if err := s.rdb.Set(ctx, legKey(uuid), callID, s.Retention+24*time.Hour).Err(); err != nil {
		return fmt.Errorf("index leg %s: %w", uuid, err)
	}
	return nil
}

// CallForLeg maps a leg UUID to its call.
func (s *RedisStore) CallForLeg(ctx context.Context, uuid string) (string, error) {
	id, err := s.rdb.Get(ctx, legKey(uuid)).Result()
	if errors.Is(err, redis.Nil) {
		return "", ErrNotFound
	}
	if err != nil {
		return "", fmt.Errorf("find call of leg %s: %w", uuid, err)
	}
	return id, nil
}

// Live lists the live calls of an owner.
func (s *RedisStore) Live(ctx context.Context, owner string) ([]*Call, error) {
	return s.members(ctx, liveKey(owner))
}

// LiveForAccount lists an account's live calls, whichever instance drives
// them.
func (s *RedisStore) LiveForAccount(ctx context.Context, account string) ([]*Call, error) {
	return s.members(ctx, accountLiveKey(account))
}

func (s *RedisStore) members(ctx context.Context, key string) ([]*Call, error) {
	ids, err := s.rdb.SMembers(ctx, key).Result()
	if err != nil {
		return nil, fmt.Errorf("list live calls: %w", err)
	}
	var out []*Call
	for _, id := range ids {
		c, err := s.Get(ctx, id)
		if errors.Is(err, ErrNotFound) {
			s.rdb.SRem(ctx, key, id)
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// Finish takes an ended call out of the live set and lets it expire.
func (s *RedisStore) Finish(ctx context.Context, c *Call) error {
	pipe := s.rdb.TxPipeline()
	pipe.SRem(ctx, liveKey(c.Owner), c.ID)
	pipe.SRem(ctx, accountLiveKey(c.AccountID), c.ID)
	pipe.Expire(ctx, callKey(c.ID), s.Retention)
	_, err := pipe.Exec(ctx)
	if err != nil {
		return fmt.Errorf("finish call %s: %w", c.ID, err)
	}
	return nil
}
