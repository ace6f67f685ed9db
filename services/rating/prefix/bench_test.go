package prefix_test

import (
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ringback/ringback/services/rating/prefix"
)

// The benchmark tariff: benchPrefixes distinct prefixes of 1 to benchMaxLen
// digits grown under real country codes the way carrier decks are (every
// prefix extends a shorter one by a digit or two, so paths are shared), and
// benchNumbers numbers of 11 to 13 digits to look up in it, nine in ten of
// them extending a random prefix of the tariff. It is generated with a
// fixed seed, once per test binary.
const (
	benchPrefixes = 1_000_000
	benchNumbers  = 1 << 16
	benchMaxLen   = 12
)

// Instants of the benchmark tariff: a quarter of the prefixes have a version
// since Never, the rest since one of three deck dates, and one in twenty
// also has a price change in the future.
const (
	deck1   = 1_672_531_200 // 2023-01-01
	deck2   = 1_704_067_200 // 2024-01-01
	deck3   = 1_735_689_600 // 2025-01-01
	benchAt = 1_750_000_000 // "now", between deck3 and change
	change  = 1_767_225_600 // 2026-01-01
)

// countryCodes are ~250 real-looking E.164 country codes.
var countryCodes = strings.Fields(`
1 7 20 27 30 31 32 33 34 36 39 40 41 43 44 45 46 47 48 49 51 52 53 54 55 56
57 58 60 61 62 63 64 65 66 81 82 84 86 90 91 92 93 94 95 98
211 212 213 216 218 220 221 222 223 224 225 226 227 228 229 230 231 232 233
234 235 236 237 238 239 240 241 242 243 244 245 246 247 248 249 250 251 252
253 254 255 256 257 258 260 261 262 263 264 265 266 267 268 269 290 291 297
298 299 350 351 352 353 354 355 356 357 358 359 370 371 372 373 374 375 376
377 378 379 380 381 382 383 385 386 387 389 420 421 423 500 501 502 503 504
505 506 507 508 509 590 591 592 593 594 595 596 597 598 599 670 672 673 674
675 676 677 678 679 680 681 682 683 685 686 687 688 689 690 691 692 850 852
853 855 856 870 878 880 881 882 883 886 888 960 961 962 963 964 965 966 967
968 970 971 972 973 974 975 976 977 979 992 993 994 995 996 998
1242 1246 1264 1268 1284 1340 1345 1441 1473 1649 1658 1664 1670 1671 1684
1721 1758 1767 1784 1787 1809 1829 1849 1868 1869 1876 1939 3906 7840 4779
`)

type benchData struct {
	entries  []prefix.Entry
	prefixes []string
	numbers  []string
	table    *prefix.Table
	naive    map[string]uint32
	naiveMem uint64 // heap bytes the naive map takes, its keys included
}

var (
	benchOnce sync.Once
	bench     benchData
	sink      atomic.Uint32
)

func benchTariff() *benchData {
	benchOnce.Do(func() {
		rng := rand.New(rand.NewPCG(2026, 1))
		seen := make(map[string]struct{}, benchPrefixes)
		list := make([]string, 0, benchPrefixes)
		add := func(p string) {
			if _, dup := seen[p]; !dup {
				seen[p] = struct{}{}
				list = append(list, p)
			}
		}
		for _, cc := range countryCodes {
			add(cc)
		}
		var buf [benchMaxLen]byte
		for len(list) < benchPrefixes {
			p := list[rng.IntN(len(list))]
			n := 1
			if rng.IntN(4) == 0 {
				n = 2
			}
			if len(p)+n > benchMaxLen {
				continue
			}
			q := append(buf[:0], p...)
			for range n {
				q = append(q, byte('0'+rng.IntN(10)))
			}
			add(string(q))
		}

		entries := make([]prefix.Entry, 0, benchPrefixes*21/20)
		for i, p := range list {
			from := int64(prefix.Never)
			switch rng.IntN(4) {
			case 0:
				from = deck1
			case 1:
				from = deck2
			case 2:
				from = deck3
			}
			entries = append(entries, prefix.Entry{Prefix: p, From: from, Value: uint32(i)})
			if rng.IntN(20) == 0 { // a price change in the future
				entries = append(entries, prefix.Entry{Prefix: p, From: change, Value: uint32(i) + benchPrefixes})
			}
		}
		rng.Shuffle(len(entries), func(i, j int) { entries[i], entries[j] = entries[j], entries[i] })

		numbers := make([]string, benchNumbers)
		for i := range numbers {
			l := 11 + rng.IntN(3)
			var q []byte
			if rng.IntN(10) > 0 { // most numbers are in the tariff
				q = append(q, list[rng.IntN(len(list))]...)
			}
			for len(q) < l {
				q = append(q, byte('0'+rng.IntN(10)))
			}
			numbers[i] = string(q)
		}

		tab, err := prefix.Build(entries)
		if err != nil {
			panic(err)
		}

		// The naive table: a map from prefix to the value in effect now
		// (so it does not even handle effective dates). Keys are cloned so
		// the map owns them, as a map loaded from a database would. It
		// takes about 70 MB, against the Table's 13 MB.
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		naive := make(map[string]uint32)
		for _, e := range entries {
			if e.From <= benchAt {
				naive[strings.Clone(e.Prefix)] = e.Value
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)

		bench = benchData{
			entries:  entries,
			prefixes: list,
			numbers:  numbers,
			table:    tab,
			naive:    naive,
			naiveMem: after.HeapAlloc - before.HeapAlloc,
		}
	})
	return &bench
}

func reportRate(b *testing.B, lookups int) {
	b.ReportMetric(float64(lookups)/b.Elapsed().Seconds(), "lookups/s")
}

// BenchmarkLookup is one goroutine looking up the benchmark numbers in turn.
// Besides lookups/s it reports the table's memory per million prefixes.
func BenchmarkLookup(b *testing.B) {
	d := benchTariff()
	tab, numbers := d.table, d.numbers
	b.ResetTimer()
	var acc uint32
	for i := 0; i < b.N; i++ {
		v, _, _ := tab.Lookup(numbers[i&(benchNumbers-1)], benchAt)
		acc += v
	}
	b.StopTimer()
	sink.Add(acc)
	reportRate(b, b.N)
	b.ReportMetric(float64(tab.MemoryBytes())/1e6*1e6/float64(tab.Len()), "MB/1M-prefixes")
}

// naiveLookup tries the prefixes of number from the longest the tariff has
// (as generous to it as can be) down to one digit.
func naiveLookup(m map[string]uint32, number string) (uint32, int, bool) {
	for l := min(len(number), benchMaxLen); l > 0; l-- {
		if v, ok := m[number[:l]]; ok {
			return v, l, true
		}
	}
	return 0, 0, false
}

// BenchmarkLookupNaive is the baseline: a map[string]uint32 from prefix to
// value, tried from the longest possible prefix of the number down. It also
// reports the map's memory per million prefixes.
func BenchmarkLookupNaive(b *testing.B) {
	d := benchTariff()
	m, numbers := d.naive, d.numbers
	b.ResetTimer()
	var acc uint32
	for i := 0; i < b.N; i++ {
		v, _, _ := naiveLookup(m, numbers[i&(benchNumbers-1)])
		acc += v
	}
	b.StopTimer()
	sink.Add(acc)
	reportRate(b, b.N)
	b.ReportMetric(float64(d.naiveMem)/1e6*1e6/float64(len(m)), "MB/1M-prefixes")
}

// BenchmarkLookupParallel is GOMAXPROCS goroutines looking up in one
// table; lookups/s is their total.
func BenchmarkLookupParallel(b *testing.B) {
	d := benchTariff()
	tab, numbers := d.table, d.numbers
	var seed atomic.Uint32
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seed.Add(1)) * 7919
		var acc uint32
		for pb.Next() {
			v, _, _ := tab.Lookup(numbers[i&(benchNumbers-1)], benchAt)
			acc += v
			i++
		}
		sink.Add(acc)
	})
	b.StopTimer()
	reportRate(b, b.N)
}

// BenchmarkBuild builds the million-prefix table from its shuffled entries.
func BenchmarkBuild(b *testing.B) {
	d := benchTariff()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		tab, err := prefix.Build(d.entries)
		if err != nil {
			b.Fatal(err)
		}
		if tab.Len() != benchPrefixes {
			b.Fatalf("Len() = %d, want %d", tab.Len(), benchPrefixes)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/build")
}

// TestBenchTariffAgrees checks the benchmark's two lookups agree, so the
// figures compare like with like.
func TestBenchTariffAgrees(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the 1M-prefix benchmark tariff")
	}
	t.Parallel()
	d := benchTariff()
	for _, n := range d.numbers {
		gv, gl, gok := d.table.Lookup(n, benchAt)
		wv, wl, wok := naiveLookup(d.naive, n)
		if gv != wv || gl != wl || gok != wok {
			t.Fatalf("Lookup(%q) = (%d, %d, %v), naive = (%d, %d, %v)", n, gv, gl, gok, wv, wl, wok)
		}
	}
}
