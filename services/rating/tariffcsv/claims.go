package tariffcsv

import (
	"math/bits"
	"math/rand/v2"
)

// claims remembers which (prefix, effective_from) pairs a file has used, for
// the duplicate check. It is a linear-probing hash table specialised to
// this one job: on a million-row deck Go's general map spent ~400 ns a row
// here (a lookup and an insert, each a cache miss, plus incremental growth)
// and made up 40% of Parse; one probe sequence doing both is far cheaper.
type claims struct {
	slots []claim // length is a power of two
	shift uint    // 64 - log2(len(slots)): slot takes the hash's top bits
	used  int
	seed  uint64 // random, so that no file can be crafted to make every prefix collide
}

// claim is 16 bytes so that four share a cache line: the table is probed at
// random, and on large decks cache misses are its whole cost.
type claim struct {
	key  uint64 // prefix key from parsePrefix; 0 marks an empty slot (real keys hold a length >= 1)
	date int32  // effective_from id from parser.date; 0 for none
	line int32
}

const initialClaimSlots = 1 << 10

// add records c unless its (key, date) is already there, in which case
// it returns the line that has it; otherwise it returns 0. Versions of one
// prefix hash alike and sit next to each other, which costs little since a
// prefix has only a few.
func (t *claims) add(c claim) int32 {
	if 3*(t.used+1) > 2*len(t.slots) { // keep the load under 2/3
		t.grow()
	}
	mask := uint64(len(t.slots) - 1)
	for i := t.slot(c.key); ; i = (i + 1) & mask {
		s := &t.slots[i]
		if s.key == 0 {
			*s = c
			t.used++
			return 0
		}
		if s.key == c.key && s.date == c.date {
			return s.line
		}
	}
}

// slot is where key's probe sequence starts: the top bits of a seeded
// murmur3 finalizer, which spreads neighbouring prefixes across the table.
func (t *claims) slot(key uint64) uint64 {
	h := key ^ t.seed
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h >> t.shift
}

// reserve sizes an empty table for n claims.
func (t *claims) reserve(n int) {
	size := initialClaimSlots
	for 2*size < 3*n {
		size *= 2
	}
	t.resize(size)
}

func (t *claims) grow() {
	t.resize(max(initialClaimSlots, 2*len(t.slots)))
}

func (t *claims) resize(n int) {
	if t.slots == nil {
		t.seed = rand.Uint64()
	}
	old := t.slots
	t.slots = make([]claim, n)
	t.shift = uint(64 - bits.TrailingZeros(uint(n)))
	mask := uint64(n - 1)
	for _, c := range old {
		if c.key == 0 {
			continue
		}
		i := t.slot(c.key)
		for t.slots[i].key != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = c
	}
}
