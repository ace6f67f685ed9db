package event

import "testing"

func scanA(s string) int {
	i := 0
	for i < len(s) && jsonEscape[s[i]] == 0 {
		i++
	}
	return i
}

func scanB(s string) int {
	i := 0
	for ; len(s)-i >= 8; i += 8 {
		b := s[i : i+8]
		w := uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
			uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
		q := w ^ (swarOnes * '"')
		bs := w ^ (swarOnes * '\\')
		if ((w-swarOnes*0x20)&^w|(q-swarOnes)&^q|(bs-swarOnes)&^bs)&swarHigh != 0 {
			goto tail
		}
	}
	if len(s) >= 8 {
		b := s[len(s)-8:]
		w := uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
			uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
		q := w ^ (swarOnes * '"')
		bs := w ^ (swarOnes * '\\')
		if ((w-swarOnes*0x20)&^w|(q-swarOnes)&^q|(bs-swarOnes)&^bs)&swarHigh == 0 {
			return len(s)
		}
	}
tail:
	for i < len(s) && jsonEscape[s[i]] == 0 {
		i++
	}
	return i
}

func benchScan(b *testing.B, f func(string) int) {
	e := loadBenchEvent(b)
	n := 0
	for b.Loop() {
		for i := range e.Headers {
			h := &e.Headers[i]
			n += f(h.Name) + f(h.Value)
		}
	}
	_ = n
}
func BenchmarkTmpScanA(b *testing.B) { benchScan(b, scanA) }
func BenchmarkTmpScanB(b *testing.B) { benchScan(b, scanB) }
func BenchmarkTmpScanCur(b *testing.B) { benchScan(b, jsonVerbatimPrefix) }
func BenchmarkTmpLen(b *testing.B) { benchScan(b, func(s string) int { return len(s) }) }
