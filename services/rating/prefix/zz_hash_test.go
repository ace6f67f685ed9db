package prefix

import (
	"math/bits"
	"slices"
)

type hslot struct{ k, r uint64 }

type HTable struct {
	slots   []hslot
	n       uint64
	froms   []int64
	lens    uint32
	maxLen  int
}

const hKeyBits = 54
const hKeyMask = 1<<hKeyBits - 1
const hMul = 0x9E3779B97F4A7C15

func hkey(p string) uint64 {
	var v uint64
	for i := 0; i < len(p); i++ {
		v = v*10 + uint64(p[i]-'0')
	}
	return v<<4 | uint64(len(p))
}

func (t *HTable) home(k uint64) uint64 {
	hi, _ := bits.Mul64(k*hMul, t.n)
	return hi
}

// ZZBuildHash assumes unique prefixes, Never versions only (for speed test).
func ZZBuildHash(es []Entry, lf float64) *HTable {
	t := &HTable{n: uint64(float64(len(es))/lf) + 1, froms: []int64{Never}}
	type kh struct{ h, k, r uint64 }
	ks := make([]kh, len(es))
	for i, e := range es {
		k := hkey(e.Prefix)
		t.lens |= 1 << len(e.Prefix)
		t.maxLen = max(t.maxLen, len(e.Prefix))
		ks[i] = kh{t.home(k), k, uint64(e.Value) | 1<<32}
	}
	slices.SortFunc(ks, func(a, b kh) int {
		if a.h < b.h {
			return -1
		} else if a.h > b.h {
			return 1
		}
		return 0
	})
	t.slots = make([]hslot, t.n, t.n+64)
	next := uint64(0)
	for _, x := range ks {
		p := max(x.h, next)
		for p >= uint64(len(t.slots)) {
			t.slots = append(t.slots, hslot{})
		}
		d := p - x.h + 1
		if d >= 1<<10 {
			panic("probe too long")
		}
		t.slots[p] = hslot{x.k | d<<hKeyBits, x.r}
		next = p + 1
	}
	t.slots = append(t.slots, hslot{}) // sentinel empty
	return t
}

func (t *HTable) MemoryBytes() int { return cap(t.slots) * 16 }

func (t *HTable) Lookup(number string, at int64) (value uint32, prefixLen int, ok bool) {
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
	if len(number) == 0 {
		return 0, 0, false
	}
	var keys [16]uint64
	var v uint64
	n := min(len(number), t.maxLen)
	for i := 0; i < n; i++ {
		d := uint64(number[i]) - '0'
		if d > 9 {
			return 0, 0, false
		}
		v = v*10 + d
		keys[i+1] = v<<4 | uint64(i+1)
	}
	for i := n; i < len(number); i++ {
		if number[i]-'0' > 9 {
			return 0, 0, false
		}
	}
	slots := t.slots
	lens := t.lens
	var homes [16]uint64
	var touch uint64
	for l := n; l > 0; l-- {
		h := t.home(keys[l])
		homes[l] = h
		touch += slots[h].k
	}
	if touch == 1 {
		value = 1
	}
	for l := n; l > 0; l-- {
		if lens>>l&1 == 0 {
			continue
		}
		k := keys[l]
		i := homes[l]
		for j := uint64(1); ; j++ {
			s := slots[i]
			if s.k&hKeyMask == k {
				if s.r>>32 <= atRank {
					return uint32(s.r), l, true
				}
				break
			}
			if s.k>>hKeyBits < j {
				break
			}
			i++
		}
	}
	return 0, 0, false
}
