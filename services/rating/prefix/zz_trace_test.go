package prefix

import (
	"fmt"
	"math/bits"
)

// ZZTrace: distinct lines/pages touched (arena bytes), hub steps, and lines beyond top region.
func (t *Table) ZZTrace(number string, topWords uint) (lines, pages, steps, cold int) {
	arena := t.arena
	seenL := map[uint]bool{}
	seenP := map[uint]bool{}
	touchW := func(w uint) {
		if !seenL[w/8] && w >= topWords {
			cold++
		}
		seenL[w/8] = true
		seenP[w/512] = true
	}
	hw := uint(0)
	h := (*[hubWords]uint64)(arena)
	pos := 0
	for pos < len(number) {
		steps++
		touchW(hw)
		a := uint(number[pos]) - '0'
		w3 := h[3]
		inline := w3&inlineFlag != 0
		first := uint(h[1] >> firstShift)
		if inline {
			first = 2*hw + inlineMax
		}
		pc2 := uint(w3>>pc2Shift) & 127
		if ob := oddBit + a; w3>>ob&1 != 0 {
			s := first - 1 - pc2 - uint(bits.OnesCount64(w3&(1<<ob-1)))
			touchW(s / 2)
		}
		pos++
		if pos == len(number) {
			break
		}
		c := uint(number[pos]) - '0'
		pos++
		e := 10*a + c
		b, pw, cw, pb, cb := e, h[2], h[0], uint(0), uint(0)
		if e >= 64 {
			b, pw, cw, pb, cb = e-64, w3&prefixMask, h[1]&(1<<childBits-1), pc2, uint(w3>>pc0Shift)&127
		}
		below := uint64(1)<<b - 1
		if pw>>b&1 != 0 {
			s := first - 1 - pb - uint(bits.OnesCount64(pw&below))
			touchW(s / 2)
		}
		if inline || cw>>b&1 == 0 {
			break
		}
		hw = first/2 + hubWords*(cb+uint(bits.OnesCount64(cw&below)))
		h = (*[hubWords]uint64)(arena[hw : hw+hubWords])
	}
	return len(seenL), len(seenP), steps, cold
}

// ZZTopWords is the end of the breadth-first region (first DFS-placed family): approximated by caller.
func (t *Table) ZZWords() int { return len(t.arena) }

func (t *Table) ZZBreakdown() map[string]int {
	m := map[string]int{}
	var walk func(hw uint, depth int)
	walk = func(hw uint, depth int) {
		h := t.arena[hw : hw+4]
		m["hubs"]++
		nrec := bits.OnesCount64(h[2]) + bits.OnesCount64(h[3]&prefixMask)
		if h[3]&inlineFlag != 0 {
			m["inline"]++
			m["inlineRecs"] += nrec
			return
		}
		nch := bits.OnesCount64(h[0]) + bits.OnesCount64(h[1]&(1<<childBits-1))
		m["recs"] += nrec
		m[fmt.Sprintf("depth%02d-hubs", depth)]++
		if nch == 0 {
			m["leafFamilies"]++
		}
		first := uint(h[1] >> firstShift)
		for i := 0; i < nch; i++ {
			walk(first/2+uint(i)*4, depth+2)
		}
	}
	walk(0, 0)
	m["words"] = len(t.arena)
	return m
}
