package prefix_test

import (
	"fmt"
	"github.com/ringback/ringback/services/rating/prefix"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

func benchSubset(b *testing.B, numbers []string) {
	tab := benchTariff().table
	mask := len(numbers) - 1
	b.ResetTimer()
	var acc uint32
	for i := 0; i < b.N; i++ {
		v, _, _ := tab.Lookup(numbers[i&mask], benchAt)
		acc += v
	}
	sink.Add(acc)
}

func BenchmarkZZHot256(b *testing.B)  { benchSubset(b, benchTariff().numbers[:256]) }
func BenchmarkZZHot4096(b *testing.B) { benchSubset(b, benchTariff().numbers[:4096]) }
func BenchmarkZZSorted(b *testing.B) {
	n := slices.Clone(benchTariff().numbers)
	slices.Sort(n)
	benchSubset(b, n)
}
func BenchmarkZZSame(b *testing.B) { benchSubset(b, benchTariff().numbers[:1]) }

func BenchmarkZZHuge(b *testing.B) {
	d := benchTariff()
	ar := prefix.ZZArena(d.table)
	p := uintptr(unsafe.Pointer(&ar[0]))
	n := uintptr(len(ar) * 8)
	start := (p + (2<<20 - 1)) &^ (2<<20 - 1)
	end := (p + n) &^ (2<<20 - 1)
	bs := unsafe.Slice((*byte)(unsafe.Pointer(start)), end-start)
	err := syscall.Madvise(bs, 14)
	_, _, e2 := syscall.Syscall(syscall.SYS_MADVISE, start, end-start, 25)
	b.Logf("madvise hugepage: %v collapse: %v", err, e2)
	benchSubset(b, d.numbers)
}

var hashOnce sync.Once
var hashTab *prefix.HTable

func BenchmarkZZHash(b *testing.B)       { benchHash(b, benchTariff().numbers) }
func BenchmarkZZHashHot256(b *testing.B) { benchHash(b, benchTariff().numbers[:256]) }

func benchHash(b *testing.B, numbers []string) {
	d := benchTariff()
	hashOnce.Do(func() {
		var es []prefix.Entry
		for i, p := range d.prefixes {
			es = append(es, prefix.Entry{Prefix: p, Value: uint32(i)})
		}
		hashTab = prefix.ZZBuildHash(es, 0.8)
	})
	// check
	for _, n := range d.numbers[:1000] {
		_, l1, ok1 := hashTab.Lookup(n, benchAt)
		_, l2, ok2 := naiveLookup(d.naive, n)
		if l1 != l2 || ok1 != ok2 {
			b.Fatalf("%s: %d %v vs %d %v", n, l1, ok1, l2, ok2)
		}
	}
	mask := len(numbers) - 1
	b.ResetTimer()
	var acc uint32
	for i := 0; i < b.N; i++ {
		v, _, _ := hashTab.Lookup(numbers[i&mask], benchAt)
		acc += v
	}
	sink.Add(acc)
	b.ReportMetric(float64(hashTab.MemoryBytes())/1e6, "MB")
}

func TestZZTrace(t *testing.T) {
	d := benchTariff()
	var l, p, s int
	for _, n := range d.numbers {
		a, b, c := d.table.ZZTrace(n)
		l += a
		p += b
		s += c
	}
	N := float64(len(d.numbers))
	t.Logf("per lookup: lines %.2f pages %.2f steps %.2f; arena %d MB", float64(l)/N, float64(p)/N, float64(s)/N, d.table.MemoryBytes()>>20)
}

func BenchmarkZZTop(b *testing.B) {
	d := benchTariff()
	for _, top := range []int{0, 2, 4, 6, 8, 10, 16} {
		prefix.ZZSetTop(top)
		tab, _ := prefix.Build(d.entries)
		b.Run(fmt.Sprint(top), func(b *testing.B) {
			var acc uint32
			for i := 0; i < b.N; i++ {
				v, _, _ := tab.Lookup(d.numbers[i&(benchNumbers-1)], benchAt)
				acc += v
			}
			sink.Add(acc)
		})
	}
	prefix.ZZSetTop(6)
}

func TestZZTopHarness(t *testing.T) {
	d := benchTariff()
	tops := []int{0, 2, 4, 6, 8, 16}
	tabs := map[int]*prefix.Table{}
	for _, top := range tops {
		prefix.ZZSetTop(top)
		tabs[top], _ = prefix.Build(d.entries)
	}
	prefix.ZZSetTop(6)
	best := map[int]float64{}
	all := map[int][]float64{}
	for r := 0; r < 40; r++ {
		for _, top := range tops {
			tab := tabs[top]
			st := time.Now()
			var acc uint32
			const N = 300000
			for i := 0; i < N; i++ {
				v, _, _ := tab.Lookup(d.numbers[i&(benchNumbers-1)], benchAt)
				acc += v
			}
			ns := float64(time.Since(st).Nanoseconds()) / N
			sink.Add(acc)
			if best[top] == 0 || ns < best[top] {
				best[top] = ns
			}
			all[top] = append(all[top], ns)
		}
	}
	for _, top := range tops {
		a := all[top]
		slices.Sort(a)
		t.Logf("top %2d: min %.1f p25 %.1f med %.1f", top, best[top], a[len(a)/4], a[len(a)/2])
	}
}
