package prefix

import (
	"math/bits"
)

// ZZTrace returns the distinct lines and pages touched by a lookup, in arena word offsets.
func (t *Table) ZZTrace(number string) (lines, pages, steps int) {
	arena := t.arena
	seenL := map[uint]bool{}
	seenP := map[uint]bool{}
	touch := func(w uint) {
		seenL[w*8/64] = true
		seenP[w*8/4096] = true
	}
	h := uint(0)
	pos := 0
	for pos < len(number) {
		steps++
		touch(h)
		a := uint(number[pos]) - '0'
		hw := arena[h : h+4]
		first := uint(hw[1]>>firstShift) * hubWords
		recs := first + hubWords*uint(bits.OnesCount64(hw[0])+bits.OnesCount64(hw[1]&(1<<childBits-1)))
		if ob := oddBit + a; hw[3]>>ob&1 != 0 {
			touch(recs + uint(bits.OnesCount64(hw[2])+bits.OnesCount64(hw[3]&(1<<ob-1))))
		}
		pos++
		if pos == len(number) {
			break
		}
		c := uint(number[pos]) - '0'
		pos++
		e := 10*a + c
		if (hw[2]>>e|hw[3]>>(e-64))&1 != 0 {
			touch(recs + rank(hw[2], hw[3], e))
		}
		if (hw[0]>>e|hw[1]>>(e-64))&1 == 0 {
			break
		}
		h = first + hubWords*rank(hw[0], hw[1]&(1<<childBits-1), e)
	}
	return len(seenL), len(seenP), steps
}
