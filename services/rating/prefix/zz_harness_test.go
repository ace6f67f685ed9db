package prefix_test

import (
	"slices"
	"testing"
	"time"
)

func TestZZCurrent(t *testing.T) {
	d := benchTariff()
	hot := d.numbers[:256]
	run := func(numbers []string) []float64 {
		var all []float64
		for r := 0; r < 30; r++ {
			st := time.Now()
			var acc uint32
			const N = 200000
			for i := 0; i < N; i++ {
				v, _, _ := d.table.Lookup(numbers[(i+r*7919)&(len(numbers)-1)], benchAt)
				acc += v
			}
			all = append(all, float64(time.Since(st).Nanoseconds())/N)
			sink.Add(acc)
		}
		slices.Sort(all)
		return all
	}
	a := run(d.numbers)
	t.Logf("trie         min %.1f p25 %.1f med %.1f", a[0], a[len(a)/4], a[len(a)/2])
	a = run(hot)
	t.Logf("trie-hot     min %.1f p25 %.1f med %.1f", a[0], a[len(a)/4], a[len(a)/2])
}
