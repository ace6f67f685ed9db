package direction

import (
	"fmt"
	"testing"
)

// benchNumbers returns n distinct valid numbers across a few countries, so
// the uncached figure is not one code path's best case.
func benchNumbers(n int) []string {
	formats := []string{"+3491%07d", "+34699%06d", "+1212555%04d", "+447400%06d", "+5255%08d"}
	out := make([]string, n)
	for i := range out {
		f := formats[i%len(formats)]
		out[i] = fmt.Sprintf(f, (i/len(formats))%10000)
	}
	return out
}

func BenchmarkLookupCached(b *testing.B) {
	numbers := benchNumbers(1024)
	r := NewResolver(0)
	for _, n := range numbers {
		r.Lookup(n)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r.Lookup(numbers[i&1023])
		i++
	}
}

func BenchmarkLookupCachedParallel(b *testing.B) {
	numbers := benchNumbers(1024)
	r := NewResolver(0)
	for _, n := range numbers {
		r.Lookup(n)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			r.Lookup(numbers[i&1023])
			i++
		}
	})
}

func BenchmarkLookupUncached(b *testing.B) {
	numbers := benchNumbers(1 << 15)
	// One entry per shard and a ring far larger than that: every lookup
	// misses, so this measures the library plus the cache's insert/evict.
	r := NewResolver(1)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		r.Lookup(numbers[i&(1<<15-1)])
		i++
	}
}
