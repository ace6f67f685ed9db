// Package prefix is the longest-prefix-match table that rating looks phone
// numbers up in: given a dialled number (E.164 digits, no '+') and an
// instant, it finds the longest tariff prefix that is in effect at that
// instant and returns the caller's index of its rate. It sits in front of
// every call leg, so it is built once per tariff deck (millions of
// prefixes) and then only read, by many goroutines, without locks.
//
// # Layout
//
// The table is a 10-ary digit trie kept in flat, pointer-free slices, so the
// garbage collector never scans it and a lookup touches one small node per
// digit:
//
//   - Every node is 12 bytes: a 10-bit child bitmap (bit d set when digit d
//     has a child), the index of its first child, and its own version. The
//     children of one node are contiguous and ordered by digit, so the child
//     for digit d is first + popcount(bitmap & (1<<d - 1)). Nodes are laid
//     out breadth first, which is what makes children contiguous and keeps
//     the hot top levels of the trie together in cache.
//   - The common case — a prefix with exactly one version — lives inside the
//     node, so checking whether a node matches costs no extra memory access.
//     Its From is not stored as an int64 (that would make nodes twice as
//     big): the distinct From values of such versions (real decks have a
//     handful of effective dates) go in a small sorted dictionary, the node
//     stores the From's rank in it, and Lookup turns the instant into a rank
//     once, with a binary search over the dictionary, before walking. A
//     version is in effect when its rank is at most the instant's rank: one
//     integer comparison per digit.
//   - Prefixes with several versions (or, in a deck with more distinct
//     effective dates than the dictionary holds, a rarely used one) keep
//     their versions in a side slice, newest first; the node points at them.
//
// Lookup walks the number's digits down the trie, remembering the deepest
// node with a version in effect, and stops at the first missing child. It
// does not allocate and has no data-dependent branches other than the walk
// itself in the common case.
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
	// arena holds the hubs and records, see hub; the root hub is at 0.
	arena    []uint64
	versions []version // versions of multi-version prefixes, newest first per prefix
	froms    []int64   // dictionary of inline Froms, ascending; rank r is froms[r-1]
	prefixes int
	entries  int
}

// A hub is a trie node at an even depth 2k that has descendants: four
// words of the arena. It covers the next two digits a, b of a number: the
// 100 two-digit extensions e = 10a+b (bits 0 to 99 of its bitmaps) and the
// 10 one-digit ones (bits 100+a).
//
//	word 0, 1: child bitmap (bits 0-99, in word 1's low 36 bits): extension
//	           e has descendants, so is a hub itself. Word 1's top 28 bits
//	           are first/4, the arena index of the first child.
//	word 2, 3: prefix bitmap (bits 0-109, in word 3's low 46 bits):
//	           extension e or a is a prefix of the tariff, with a record.
//
// A hub's children are contiguous at first, in digit order, so the child
// for e is at first + 4*rank(child, e); its records follow them, so the
// record for bit x is at first + 4*popcount(child) + rank(prefix, x).
// Hubs are laid out depth first (a hub's children and records, then each
// child's subtree), so the last steps of a walk stay within a few pages.
//
// A record is one word: Value in the low 32 bits, and meta in the high 32:
// the rank of its one version's From in the dictionary, or multi when the
// prefix has several versions (or one whose From is not in the dictionary)
// and the low 32 bits index its versions.
const (
	hubWords   = 4
	childBits  = 100 - 64 // child bits in word 1
	firstShift = 36       // word 1: first/4 above the child bits
	oddBit     = 100 - 64 // word 3: bit of one-digit extension 0
	maxArena   = 1 << (64 - firstShift)
	inlineFlag = 1 << 63 // word 3: a leaf hub whose records are words 0 and 1
	inlineMax  = 2

	multi = math.MaxUint32 // record meta of a multi-version record; greater than any rank
	// maxInline bounds the From dictionary, so turning an instant into a
	// rank stays a short binary search over a few cache lines.
	maxInline = 256
)

// version is one version of a multi-version prefix. A prefix's versions are
// contiguous, From descending; last marks the oldest.
type version struct {
	from int64
	val  uint32
	last uint32
}

// Build makes a table. It returns an error naming the entry for: an empty
// prefix, a prefix longer than 15 digits or with a non-digit, two entries
// with the same Prefix and From. Entries may come in any order; Build does
// not keep or modify the caller's slice.
func Build(entries []Entry) (*Table, error) {
	if len(entries) > math.MaxUint32/2 {
		return nil, errors.New("prefix: too many entries")
	}
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

	// Count prefixes, find duplicates and the Froms of single-version
	// prefixes (the candidates for inlining).
	prefixes, multiVersions := 0, 0
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
		if j-i == 1 {
			single = append(single, es[i].from)
		} else {
			multiVersions += j - i
		}
		i = j
	}
	froms := inlineFroms(single)
	multiVersions += len(single) - countIn(single, froms)

	t := &Table{
		versions: make([]version, 0, multiVersions),
		froms:    froms,
		prefixes: prefixes,
		entries:  len(es),
	}
	b := &builder{t: t, es: es, arena: make([]uint64, hubWords, prefixes*3/2+hubWords)}
	b.layout(len(es))
	if len(b.arena) > maxArena {
		return nil, errors.New("prefix: too many prefixes")
	}
	t.arena = slices.Clone(b.arena) // cap == len
	return t, nil
}

type builder struct {
	t     *Table
	es    []item
	arena []uint64
	// levels[k] is scratch for placing a hub at depth 2k.
	levels [MaxDigits/2 + 1]struct {
		spans   []int // child i covers es[spans[2i]:spans[2i+1]]
		records []uint64
	}
}

// fill lays out the hub at arena[pos:pos+4] covering es[lo:hi] (all
// entries whose prefix extends the hub's depth digits by at least one),
// then appends its children and records.
func (b *builder) fill(pos, lo, hi, depth int) (first, n int) {
	es := b.es
	l := &b.levels[depth/2]
	l.spans, l.records = l.spans[:0], l.records[:0]
	var h [hubWords]uint64
	var odd [10]uint64
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
			odd[a] = b.record(es[j:m])
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
				l.records = append(l.records, b.record(es[j:m]))
				h[2+e/64] |= 1 << (e % 64)
			}
			if m < kb {
				h[e/64] |= 1 << (e % 64)
				l.spans = append(l.spans, m, kb)
			}
			j = kb
		}
	}
	for a, r := range odd {
		if h[3]>>(oddBit+a)&1 != 0 {
			l.records = append(l.records, r)
		}
	}
	n = len(l.spans) / 2
	if n == 0 && len(l.records) <= inlineMax && pos != 0 {
		// A leaf with few records keeps them in place of its child bitmap.
		copy(h[:], l.records)
		h[3] |= inlineFlag
		copy(b.arena[pos:], h[:])
		return 0, 0
	}
	if n > 0 { // keep hubs 32-byte aligned, within one cache line
		for len(b.arena)%hubWords != 0 {
			b.arena = append(b.arena, 0)
		}
	}
	first = len(b.arena)
	h[1] |= uint64(first) << firstShift
	copy(b.arena[pos:], h[:])
	b.arena = slices.Grow(b.arena, n*hubWords+len(l.records))
	b.arena = b.arena[:first+n*hubWords]
	b.arena = append(b.arena, l.records...)
	return first, n
}

// place lays out the hub at pos and, depth first, its whole subtree.
func (b *builder) place(pos, lo, hi, depth int) {
	first, n := b.fill(pos, lo, hi, depth)
	l := &b.levels[depth/2] // children use deeper levels only
	for i := 0; i < n; i++ {
		b.place(first+i*hubWords, l.spans[2*i], l.spans[2*i+1], depth+2)
	}
}

var ZZTopDepth = 6

// layout lays out the hubs above topDepth breadth first, then the subtree
// of each hub at topDepth depth first.
func (b *builder) layout(n int) {
	type item struct{ pos, lo, hi, depth int }
	queue := []item{{0, 0, n, 0}}
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		if it.depth >= ZZTopDepth {
			b.place(it.pos, it.lo, it.hi, it.depth)
			continue
		}
		first, nc := b.fill(it.pos, it.lo, it.hi, it.depth)
		l := &b.levels[it.depth/2]
		for i := 0; i < nc; i++ {
			queue = append(queue, item{first + i*hubWords, l.spans[2*i], l.spans[2*i+1], it.depth + 2})
		}
	}
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

func inDict(froms []int64, from int64) bool {
	_, ok := slices.BinarySearch(froms, from)
	return ok
}

func countIn(single, froms []int64) int {
	n := 0
	for _, f := range single {
		if inDict(froms, f) {
			n++
		}
	}
	return n
}

// record makes the record of one prefix from its entries, newest first.
func (b *builder) record(g []item) uint64 {
	t := b.t
	if len(g) == 1 {
		if r, ok := slices.BinarySearch(t.froms, g[0].from); ok {
			return uint64(r+1)<<32 | uint64(g[0].val)
		}
	}
	r := uint64(multi)<<32 | uint64(len(t.versions))
	for _, e := range g {
		t.versions = append(t.versions, version{from: e.from, val: e.val})
	}
	t.versions[len(t.versions)-1].last = 1
	return r
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
	atRank := uint64(lo)

	arena := t.arena
	hp := uint(0)
	h := (*[hubWords]uint64)(arena)
	pos := 0
	for pos < len(number) {
		a := uint(number[pos]) - '0'
		if a > 9 {
			return 0, 0, false
		}
		inline := h[3]&inlineFlag != 0
		first := uint(h[1] >> firstShift)
		recs := hp
		if !inline {
			recs = first + hubWords*uint(bits.OnesCount64(h[0])+bits.OnesCount64(h[1]&(1<<childBits-1)))
		}
		if ob := oddBit + a; h[3]>>ob&1 != 0 {
			r := arena[recs+uint(bits.OnesCount64(h[2])+bits.OnesCount64(h[3]&(1<<ob-1)))]
			if r>>32 <= atRank {
				value, prefixLen = uint32(r), pos+1
			} else if r>>32 == multi {
				if v, ok := t.version(uint32(r), at); ok {
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
		e := 10*a + c
		if (h[2]>>e|h[3]>>(e-64))&1 != 0 { // a shift by 64 or more gives 0
			r := arena[recs+rank(h[2], h[3], e)]
			if r>>32 <= atRank {
				value, prefixLen = uint32(r), pos
			} else if r>>32 == multi {
				if v, ok := t.version(uint32(r), at); ok {
					value, prefixLen = v, pos
				}
			}
		}
		if inline || (h[0]>>e|h[1]>>(e-64))&1 == 0 {
			break
		}
		hp = first + hubWords*rank(h[0], h[1]&(1<<childBits-1), e)
		h = (*[hubWords]uint64)(arena[hp : hp+hubWords])
	}
	// The walk stops at the first missing child; the rest of the number
	// must still be digits.
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

// rank is the number of bits below bit e (< 128) of the 128-bit lo, hi.
func rank(lo, hi uint64, e uint) uint {
	he := max(e, 64) - 64
	return uint(bits.OnesCount64(lo&(1<<e-1)) + bits.OnesCount64(hi&(1<<he-1)))
}

// version returns the Value of the newest version from index j on (one
// prefix's versions) with From <= at.
func (t *Table) version(j uint32, at int64) (uint32, bool) {
	for ; ; j++ {
		v := t.versions[j]
		if v.from <= at {
			return v.val, true
		}
		if v.last != 0 {
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
		cap(t.versions)*int(unsafe.Sizeof(version{})) +
		cap(t.froms)*int(unsafe.Sizeof(int64(0)))
}
