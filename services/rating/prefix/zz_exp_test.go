package prefix_test

import (
	"fmt"
	"github.com/ringback/ringback/services/rating/prefix"
	"slices"
	"sync"
	"testing"
	"time"
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




func harness(t *testing.T, names []string, fns []func(string, int64) (uint32, int, bool), rounds int) {
	d := benchTariff()
	all := make([][]float64, len(fns))
	for r := 0; r < rounds; r++ {
		for k, f := range fns {
			st := time.Now()
			var acc uint32
			const N = 200000
			for i := 0; i < N; i++ {
				v, _, _ := f(d.numbers[(i+r*7919)&(benchNumbers-1)], benchAt)
				acc += v
			}
			all[k] = append(all[k], float64(time.Since(st).Nanoseconds())/N)
			sink.Add(acc)
		}
	}
	for k := range fns {
		a := all[k]
		slices.Sort(a)
		t.Logf("%-12s min %.1f p25 %.1f med %.1f", names[k], a[0], a[len(a)/4], a[len(a)/2])
	}
}

func TestZZCurrent(t *testing.T) {
	d := benchTariff()
	hot := d.numbers[:256]
	harness(t, []string{"trie", "trie-hot"}, []func(string, int64) (uint32, int, bool){
		d.table.Lookup,
		func(n string, at int64) (uint32, int, bool) { return d.table.Lookup(hot[len(n)&255], at) },
	}, 30)
}



func TestZZTrace(t *testing.T) {
	d := benchTariff()
	for _, top := range []uint{0, 1 << 14, 1 << 16, 1 << 17} {
		var l, p, s, c int
		for _, n := range d.numbers {
			a, b, cc, dd := d.table.ZZTrace(n, top)
			l += a
			p += b
			s += cc
			c += dd
		}
		N := float64(len(d.numbers))
		t.Logf("top %d words: per lookup lines %.2f pages %.2f steps %.2f cold-lines %.2f; arena %d words", top, float64(l)/N, float64(p)/N, float64(s)/N, float64(c)/N, d.table.ZZWords())
	}
}

func TestZZBreakdown(t *testing.T) {
	d := benchTariff()
	t.Logf("%v", d.table.ZZBreakdown())
}

func TestZZScale(t *testing.T) {
	d := benchTariff()
	var names []string
	var fns []func(string, int64) (uint32, int, bool)
	for _, frac := range []int{8, 4, 2, 1} {
		// prefixes list is in growth order, so a leading part is a consistent smaller deck
		n := len(d.prefixes) / frac
		var es []prefix.Entry
		for i, p := range d.prefixes[:n] {
			es = append(es, prefix.Entry{Prefix: p, From: prefix.Never, Value: uint32(i)})
		}
		tab, _ := prefix.Build(es)
		names = append(names, fmt.Sprintf("1/%d %dMB", frac, tab.MemoryBytes()>>20))
		fns = append(fns, tab.Lookup)
	}
	harness(t, names, fns, 20)
}
