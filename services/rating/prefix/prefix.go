// Package prefix is the longest-prefix-match table that rating looks phone
// numbers up in: given a dialled number (E.164 digits, no '+') and an
// instant, it finds the longest tariff prefix that is in effect at that
// instant and returns the caller's index of its rate. It sits in front of
// every call leg, so it is built once per tariff deck (millions of
// prefixes) and then only read, by many goroutines, without locks.
//
// # Layout
//
// With a million prefixes the table is bigger than the CPU caches, so what
// a lookup costs is mostly how many cache lines and pages it touches that
// are not in cache yet, one after the other (each page a TLB miss too).
// The layout keeps that number, and the table, small:
//
//   - The table is a digit trie that takes two digits per step, so a
//     12-digit number takes at most 6 dependent steps instead of 12. A trie
//     node at an even depth with descendants is a hub: 32 bytes (half a
//     cache line, aligned) holding a 100-bit bitmap of the two-digit
//     extensions that are hubs themselves, a 110-bit bitmap of the one- and
//     two-digit extensions that are prefixes, and where its family (its
//     records and child hubs) starts. A child or record is found by counting
//     the bits below its own (popcount), so absent digits take no space;
//     the root hub doubles as a direct index on the first two digits.
//   - Everything is in one flat []uint64 with no pointers, which the
//     garbage collector never scans. A hub's family is contiguous (records
//     just before the children), so a step's records are usually in the
//     cache line of the next hub.
//   - A prefix's rate is a 4-byte record: a 24-bit Value and the 8-bit rank
//     of its version's From in a small dictionary of the deck's distinct
//     effective dates (real decks have a handful). Lookup turns the instant
//     into a rank once, with a binary search over the dictionary; a record
//     is then in effect when its rank is at most that: one comparison, no
//     extra memory access. A prefix with several versions, a From outside
//     the dictionary or a Value of 2^24 or more has its versions out of
//     line, newest first, right after the family's child hubs.
//   - A hub without children and with at most four records, all inline,
//     keeps them in place of its child bitmap: most of the trie's leaves
//     take no family, and their lookups one cache line less.
//   - Hubs above depth 6 are laid out breadth first, so the few thousand
//     that most lookups pass through are packed together and stay cached;
//     from there, each subtree is laid out depth first, so the last steps
//     of a walk stay within a page or two.
//
// Lookup walks the number two digits at a time, remembering the longest
// prefix with a version in effect, and stops at the first missing hub. It
// does not allocate. A million-prefix tariff takes about 13 MB (a
// map[string]uint32 of it about 70 MB).
package prefix

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"unsafe"
)

// Never is the From of a version effective since forever.
const Never int64 = math.MinInt64

// MaxDigits is the longest prefix Build accepts (the longest E.164 number).
const MaxDigits = 15

// Entry is one version of one prefix: Value (an index into the caller's rate
// slice) applies to numbers starting with Prefix from the instant From (unix
// seconds; Never = always).
type Entry struct {
	Prefix string // 1 to 15 ASCII digits
	From   int64
	Value  uint32
}

// Table is immutable once built and safe for concurrent lookups without
// locks. The zero value and a nil *Table are empty tables.
type Table struct {
	// arena holds the hubs and records; the root hub is its first 4 words.
	// It is addressed in 32-bit slots: a record is one slot (slot i is the
	// low half of word i/2 when i is even, the high half when odd), a hub
	// is 8 slots (4 words) at a slot index that is a multiple of 8.
	arena    []uint64
	froms    []int64 // dictionary of inline Froms, ascending; rank r is froms[r-1]
	prefixes int
	entries  int
}

// A hub's four words:
//
//	word 0, 1  child bitmap: bit e (0-99, bits 64-99 in the low 36 bits of
//	           word 1) is set when two-digit extension e = 10a+b is a hub.
//	           Word 1's top 28 bits are first, the slot where the hub's
//	           child hubs start; they are contiguous, in digit order, so the
//	           child for e is at slot first + 8*rank(child, e).
//	word 2, 3  prefix bitmap: bit e (0-99) or 100+a (bits 64-109 in the low
//	           46 bits of word 3) is set when extension e or a is a prefix.
//	           Its records end just before first, backwards: the record of
//	           bit x is at slot first-1-rank(prefix, x).
//	word 3     bits 46-52: popcount(word 0); bits 53-59: popcount(word 2),
//	           so each rank is one popcount; bit 63: inline.
//
// An inline hub has no children and at most four records, all inline, in
// words 0 and 1, as if first were its own slot + 4.
//
// A record is Value in its low 24 bits and its From's rank (1-254) in the
// dictionary in its high 8, or out (255) when the prefix's versions are out
// of line: they start the low 24 bits' number of slots after the record,
// two words each (From, then Value and a last flag in the high half),
// newest first.
const (
	hubSlots   = 8
	hubWords   = 4
	childBits  = 100 - 64 // child bits in word 1
	firstShift = 64 - 28  // word 1: first
	maxSlots   = 1 << 28
	oddBit     = 100 - 64 // word 3: bit of one-digit extension 0
	prefixMask = 1<<46 - 1
	pc0Shift   = 46
	pc2Shift   = 53
	inlineFlag = 1 << 63
	inlineMax  = 4

	valueBits = 24
	valueMask = 1<<valueBits - 1
	out       = 255 // record rank of an out-of-line record; greater than any instant's rank
	// maxInline bounds the From dictionary: ranks fit in 8 bits, and
	// turning an instant into a rank stays a short binary search.
	maxInline = 254

	// Hubs shallower than topDepth have their families laid out breadth
	// first; each hub at topDepth, with its subtree, depth first.
	topDepth = 6
)

// Build makes a table. It returns an error naming the entry for: an empty
// prefix, a prefix longer than 15 digits or with a non-digit, two entries
// with the same Prefix and From. Entries may come in any order; Build does
// not keep or modify the caller's slice. It also fails, naming no entry, on
// a table too big for the layout's 28-bit offsets: tens of millions of
// prefixes, or millions of versions out of line under one hub.
func Build(entries []Entry) (*Table, error) {
	// Validate in the caller's order, so errors can name the index, and
	// pack every prefix into a fixed-size key: sorting and walking keys
	// stays in one contiguous array instead of chasing string pointers.
	es := make([]item, len(entries))
	for i, e := range entries {
		k, err := packKey(e.Prefix)
		if err != nil {
			return nil, fmt.Errorf("prefix: entry %d (prefix %q, from %d): %w", i, e.Prefix, e.From, err)
		}
		es[i] = item{key: k, from: e.From, val: e.Value}
	}
	slices.SortFunc(es, func(a, b item) int {
		if c := cmp.Compare(a.key, b.key); c != 0 {
			return c
		}
		return cmp.Compare(b.from, a.from) // newest first
	})

	// Find duplicates, count prefixes and collect the Froms of
	// single-version prefixes, the candidates for inline records.
	prefixes := 0
	var single []int64
	for i := 0; i < len(es); {
		j := i + 1
		for j < len(es) && es[j].key == es[i].key {
			if es[j].from == es[j-1].from {
				return nil, duplicateError(entries, es[j].key, es[j].from)
			}
			j++
		}
		prefixes++
		if j-i == 1 && es[i].val <= valueMask {
			single = append(single, es[i].from)
		}
		i = j
	}
	t := &Table{froms: inlineFroms(single), prefixes: prefixes, entries: len(es)}
	b := &builder{t: t, es: es, slots: make([]uint32, hubSlots, prefixes*7/2+hubSlots)}
	b.layout()
	if len(b.slots) > maxSlots || b.tooFar {
		return nil, fmt.Errorf("prefix: table too big (%d prefixes, %d versions)", prefixes, len(es))
	}
	t.arena = make([]uint64, (len(b.slots)+1)/2)
	for i, s := range b.slots {
		t.arena[i/2] |= uint64(s) << (32 * (i % 2))
	}
	return t, nil
}

type builder struct {
	t      *Table
	es     []item
	slots  []uint32
	tooFar bool // a record's versions are too far from it
	// levels[k] is scratch for the hub being filled at depth 2k.
	levels [MaxDigits/2 + 1]struct {
		spans  []int // child i covers es[spans[2i]:spans[2i+1]]
		groups []int // record i covers es[groups[2i]:groups[2i+1]]
	}
}

// layout lays out the hubs above topDepth breadth first, then the subtree
// of each hub at topDepth depth first.
func (b *builder) layout() {
	type todo struct{ pos, lo, hi, depth int }
	queue := []todo{{0, 0, len(b.es), 0}}
	for len(queue) > 0 {
		q := queue[0]
		queue = queue[1:]
		if q.depth >= topDepth {
			b.place(q.pos, q.lo, q.hi, q.depth)
			continue
		}
		first, n := b.fill(q.pos, q.lo, q.hi, q.depth)
		l := &b.levels[q.depth/2]
		for i := range n {
			queue = append(queue, todo{first + i*hubSlots, l.spans[2*i], l.spans[2*i+1], q.depth + 2})
		}
	}
}

// place lays out the hub at slot pos and, depth first, its whole subtree.
func (b *builder) place(pos, lo, hi, depth int) {
	first, n := b.fill(pos, lo, hi, depth)
	l := &b.levels[depth/2] // the children fill deeper levels only
	for i := range n {
		b.place(first+i*hubSlots, l.spans[2*i], l.spans[2*i+1], depth+2)
	}
}

// fill writes the hub at slot pos, which covers es[lo:hi] (the entries whose
// prefix extends the hub's depth digits by at least one), and appends its
// family: its records, backwards, then room for its n children, at first.
// The children's spans are left in levels[depth/2].spans.
func (b *builder) fill(pos, lo, hi, depth int) (first, n int) {
	es := b.es
	l := &b.levels[depth/2]
	l.spans, l.groups = l.spans[:0], l.groups[:0]
	var h [hubWords]uint64
	var odd [10][2]int
	for j := lo; j < hi; {
		a := keyDigit(es[j].key, depth)
		ka := j + 1
		for ka < hi && keyDigit(es[ka].key, depth) == a {
			ka++
		}
		m := j
		for m < ka && keyLen(es[m].key) == depth+1 {
			m++
		}
		if m > j {
			odd[a] = [2]int{j, m}
			h[3] |= 1 << (oddBit + a)
		}
		for j = m; j < ka; {
			c := keyDigit(es[j].key, depth+1)
			kb := j + 1
			for kb < ka && keyDigit(es[kb].key, depth+1) == c {
				kb++
			}
			m := j
			for m < kb && keyLen(es[m].key) == depth+2 {
				m++
			}
			e := 10*a + c
			if m > j {
				l.groups = append(l.groups, j, m)
				h[2+e/64] |= 1 << (e % 64)
			}
			if m < kb {
				h[e/64] |= 1 << (e % 64)
				l.spans = append(l.spans, m, kb)
			}
			j = kb
		}
	}
	for a, g := range odd {
		if h[3]>>(oddBit+a)&1 != 0 {
			l.groups = append(l.groups, g[0], g[1])
		}
	}
	h[3] |= uint64(bits.OnesCount64(h[0]))<<pc0Shift | uint64(bits.OnesCount64(h[2]))<<pc2Shift

	n = len(l.spans) / 2
	nrec := len(l.groups) / 2
	allInline := true
	for k := range nrec {
		if _, ok := b.inline(l.groups[2*k], l.groups[2*k+1]); !ok {
			allInline = false
		}
	}
	if n == 0 && nrec <= inlineMax && allInline && pos != 0 {
		// Record k goes to slot first-1-k, with first = pos+4.
		for k := range nrec {
			r, _ := b.inline(l.groups[2*k], l.groups[2*k+1])
			s := inlineMax - 1 - k
			h[s/2] |= uint64(r) << (32 * (s % 2))
		}
		h[3] |= inlineFlag
		b.putHub(pos, &h)
		return 0, 0
	}
	if n > 0 { // children start at a multiple of 8 slots: 32 bytes
		for (len(b.slots)+nrec)%hubSlots != 0 {
			b.slots = append(b.slots, 0)
		}
	}
	b.slots = append(b.slots, make([]uint32, nrec)...)
	first = len(b.slots)
	h[1] |= uint64(first%maxSlots) << firstShift // too big a table fails Build
	b.putHub(pos, &h)
	b.slots = append(b.slots, make([]uint32, n*hubSlots)...)
	// Records, backwards before first; out-of-line versions after the
	// children, so they are near their records.
	for k := range nrec {
		s := first - 1 - k
		g0, g1 := l.groups[2*k], l.groups[2*k+1]
		if r, ok := b.inline(g0, g1); ok {
			b.slots[s] = r
			continue
		}
		if len(b.slots)%2 != 0 {
			b.slots = append(b.slots, 0)
		}
		off := len(b.slots) - s
		if off > valueMask {
			b.tooFar = true
		}
		b.slots[s] = out<<valueBits | uint32(off&valueMask)
		for i, e := range es[g0:g1] {
			last := uint32(0)
			if i == g1-g0-1 {
				last = 1
			}
			b.slots = append(b.slots, uint32(e.from), uint32(uint64(e.from)>>32), e.val, last)
		}
	}
	return first, n
}

func (b *builder) putHub(pos int, h *[hubWords]uint64) {
	for k, w := range h {
		b.slots[pos+2*k] = uint32(w)
		b.slots[pos+2*k+1] = uint32(w >> 32)
	}
}

// inline returns the inline record of the prefix whose versions are
// es[lo:hi], newest first, if it has one: a single version with a From in
// the dictionary and a Value that fits.
func (b *builder) inline(lo, hi int) (uint32, bool) {
	e := b.es[lo]
	if hi-lo != 1 || e.val > valueMask {
		return 0, false
	}
	r, ok := slices.BinarySearch(b.t.froms, e.from)
	return uint32(r+1)<<valueBits | e.val, ok
}

// item is an entry while building: the prefix packed by packKey.
type item struct {
	key  uint64
	from int64
	val  uint32
}

// packKey packs a prefix into a uint64: digit i in the 4 bits at 60-4i,
// the length in the low 4 bits. Ordering keys orders prefixes so that every
// prefix comes right before all the prefixes that extend it.
func packKey(p string) (uint64, error) {
	switch {
	case p == "":
		return 0, errors.New("empty prefix")
	case len(p) > MaxDigits:
		return 0, fmt.Errorf("prefix longer than %d digits", MaxDigits)
	}
	var k uint64
	for i := 0; i < len(p); i++ {
		d := p[i] - '0'
		if d > 9 {
			return 0, fmt.Errorf("non-digit %q at offset %d", p[i], i)
		}
		k |= uint64(d) << (60 - 4*i)
	}
	return k | uint64(len(p)), nil
}

func keyLen(k uint64) int { return int(k & 0xf) }

func keyDigit(k uint64, i int) uint64 { return k >> (60 - 4*i) & 0xf }

func duplicateError(entries []Entry, key uint64, from int64) error {
	first := -1
	for i, e := range entries {
		if k, _ := packKey(e.Prefix); k == key && e.From == from {
			if first >= 0 {
				return fmt.Errorf("prefix: entry %d (prefix %q, from %d): same prefix and from as entry %d", i, e.Prefix, from, first)
			}
			first = i
		}
	}
	panic("prefix: duplicate not found") // unreachable
}

// inlineFroms picks the Froms that single-version prefixes store inline:
// all of them when there are at most maxInline distinct values, otherwise
// the maxInline most used. The result is sorted ascending.
func inlineFroms(single []int64) []int64 {
	s := slices.Clone(single)
	slices.Sort(s)
	type run struct {
		from int64
		n    int
	}
	var runs []run
	for i := 0; i < len(s); {
		j := i + 1
		for j < len(s) && s[j] == s[i] {
			j++
		}
		runs = append(runs, run{s[i], j - i})
		i = j
	}
	if len(runs) > maxInline {
		slices.SortStableFunc(runs, func(a, b run) int { return cmp.Compare(b.n, a.n) })
		runs = runs[:maxInline]
	}
	froms := make([]int64, len(runs))
	for i, r := range runs {
		froms[i] = r.from
	}
	slices.Sort(froms)
	return froms
}

// Lookup returns the Value of the longest prefix of number that has a
// version in effect at at (the version with the greatest From <= at), and
// that prefix's length. A prefix whose versions are all in the future does
// not match (a shorter one may). ok is false when nothing matches or number
// contains a non-digit or is empty. number is digits only (no '+'). Lookup
// does not allocate.
func (t *Table) Lookup(number string, at int64) (value uint32, prefixLen int, ok bool) {
	if t == nil || len(t.arena) < hubWords {
		return 0, 0, false
	}
	// The instant's rank: how many dictionary Froms are <= at.
	froms := t.froms
	lo, hi := 0, len(froms)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if froms[m] <= at {
			lo = m + 1
		} else {
			hi = m
		}
	}
	atRank := uint32(lo)

	arena := t.arena
	hw := uint(0) // the hub's word index
	h := (*[hubWords]uint64)(arena)
	pos := 0
	for pos < len(number) {
		a := uint(number[pos]) - '0'
		if a > 9 {
			return 0, 0, false
		}
		// Some choices below are arithmetic rather than branches, as they
		// are as unpredictable as the numbers: inline or not, e >= 64.
		w0, w1, w2, w3 := h[0], h[1], h[2], h[3]
		inline := w3&inlineFlag != 0
		first, inlineFirst := uint(w1>>firstShift), 2*hw+inlineMax
		first ^= (first ^ inlineFirst) & -uint(w3>>63) // inline: first = inlineFirst
		pc2 := uint(w3>>pc2Shift) & 127
		if ob := oddBit + a; w3>>ob&1 != 0 {
			s := first - 1 - pc2 - uint(bits.OnesCount64(w3&(1<<ob-1)))
			r := uint32(arena[s/2] >> (32 * (s % 2)))
			if r>>valueBits <= atRank {
				value, prefixLen = r&valueMask, pos+1
			} else if r>>valueBits == out {
				if v, ok := version(arena, s+uint(r&valueMask), at); ok {
					value, prefixLen = v, pos+1
				}
			}
		}
		pos++
		if pos == len(number) {
			break
		}
		c := uint(number[pos]) - '0'
		if c > 9 {
			return 0, 0, false
		}
		pos++
		// Bit e of the 128-bit bitmaps is bit b of word pw (prefixes) and
		// cw (children); pb and cb count the bits in the words before.
		e := 10*a + c
		upper := uint64(int64(63-e) >> 63) // all ones when e >= 64
		b := e & 63
		pw := w2 ^ (w2^w3&prefixMask)&upper
		cw := w0 ^ (w0^w1&(1<<childBits-1))&upper
		pb := pc2 & uint(upper)
		cb := uint(w3>>pc0Shift) & 127 & uint(upper)
		below := uint64(1)<<b - 1
		if pw>>b&1 != 0 {
			s := first - 1 - pb - uint(bits.OnesCount64(pw&below))
			r := uint32(arena[s/2] >> (32 * (s % 2)))
			if r>>valueBits <= atRank {
				value, prefixLen = r&valueMask, pos
			} else if r>>valueBits == out {
				if v, ok := version(arena, s+uint(r&valueMask), at); ok {
					value, prefixLen = v, pos
				}
			}
		}
		if inline || cw>>b&1 == 0 {
			break
		}
		hw = first/2 + hubWords*(cb+uint(bits.OnesCount64(cw&below)))
		h = (*[hubWords]uint64)(arena[hw : hw+hubWords])
	}
	// The walk stops at the first missing hub; the rest of the number must
	// still be digits.
	for ; pos < len(number); pos++ {
		if number[pos]-'0' > 9 {
			return 0, 0, false
		}
	}
	if prefixLen == 0 {
		return 0, 0, false
	}
	return value, prefixLen, true
}

// version returns the Value of the newest of the versions at slot s (one
// prefix's, newest first, two words each: From, then Value and a last flag)
// with From <= at.
func version(arena []uint64, s uint, at int64) (uint32, bool) {
	for w := s / 2; ; w += 2 {
		v := arena[w+1]
		if int64(arena[w]) <= at {
			return uint32(v), true
		}
		if v>>32 != 0 {
			return 0, false
		}
	}
}

// Len is the number of distinct prefixes.
func (t *Table) Len() int {
	if t == nil {
		return 0
	}
	return t.prefixes
}

// Versions is the number of entries the table was built from.
func (t *Table) Versions() int {
	if t == nil {
		return 0
	}
	return t.entries
}

// MemoryBytes is the table's heap footprint: the sum of its slices'
// capacities times their element sizes.
func (t *Table) MemoryBytes() int {
	if t == nil {
		return 0
	}
	return cap(t.arena)*int(unsafe.Sizeof(uint64(0))) +
		cap(t.froms)*int(unsafe.Sizeof(int64(0)))
}
