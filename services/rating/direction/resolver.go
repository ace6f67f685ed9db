package direction

import (
	"hash/maphash"
	"slices"
	"strings"
	"sync"
)

// DefaultCacheSize is the number of entries a Resolver keeps when
// NewResolver is given 0.
const DefaultCacheSize = 100_000

// numShards spreads the cache over several locks so that concurrent call
// handlers rarely wait on each other; a power of two so a mask picks a shard.
const numShards = 16

// Resolver looks numbers up through a bounded in-memory cache: the library's
// lookups run regular expressions and prefix scans costing microseconds, and
// a switch sees the same numbers dialed again and again. A Resolver is safe
// for concurrent use; create it with NewResolver (the zero value is not
// usable).
type Resolver struct {
	seed     maphash.Seed
	perShard int
	shards   [numShards]shard
}

type shard struct {
	mu sync.RWMutex
	m  map[string]Direction
	// Pad to a cache line so that shards hit by different cores do not
	// share one, which would serialise their lock operations anyway.
	_ [32]byte // RWMutex (24) + map pointer (8) + 32 = 64
}

// NewResolver returns a Resolver caching up to cacheSize numbers
// (DefaultCacheSize when cacheSize <= 0).
func NewResolver(cacheSize int) *Resolver {
	if cacheSize <= 0 {
		cacheSize = DefaultCacheSize
	}
	r := &Resolver{
		seed:     maphash.MakeSeed(),
		perShard: max(1, (cacheSize+numShards-1)/numShards),
	}
	for i := range r.shards {
		r.shards[i].m = make(map[string]Direction)
	}
	return r
}

// Lookup describes an E.164 number such as "+34911234567". It never fails:
// anything unparsable gives the zero Direction with LineType Unknown. The
// returned TimeZones slice is the caller's own copy.
func (r *Resolver) Lookup(e164 string) Direction {
	if e164 == "" || len(e164) > maxInputLen {
		// Not worth a cache slot: junk must not evict real numbers.
		return Direction{LineType: Unknown}
	}
	s := &r.shards[maphash.String(r.seed, e164)&(numShards-1)]

	s.mu.RLock()
	d, ok := s.m[e164]
	s.mu.RUnlock()

	if !ok {
		// Resolve outside the lock: it is the slow part, and two goroutines
		// racing on the same new number merely compute the same value twice.
		d = resolve(e164)
		s.mu.Lock()
		if _, ok := s.m[e164]; !ok {
			if len(s.m) >= r.perShard {
				// Map iteration starts at a random slot, so this evicts a
				// random entry: no bookkeeping per hit, unlike LRU, and no
				// sudden cold cache, unlike clearing the shard.
				for k := range s.m {
					delete(s.m, k)
					break
				}
			}
			// Clone the key: the caller's string may be a slice of a much
			// larger buffer (a SIP message, a CDR line) we must not pin.
			s.m[strings.Clone(e164)] = d
		}
		s.mu.Unlock()
	}

	// The cached slice is shared by every hit; hand out a copy so a caller
	// appending to or editing it cannot corrupt other lookups.
	d.TimeZones = slices.Clone(d.TimeZones)
	return d
}
