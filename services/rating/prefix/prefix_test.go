package prefix_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ringback/ringback/services/rating/prefix"
)

type lookupCase struct {
	name   string
	number string
	at     int64
	value  uint32
	length int
	ok     bool
}

func mustBuild(t testing.TB, entries []prefix.Entry) *prefix.Table {
	t.Helper()
	tab, err := prefix.Build(entries)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	return tab
}

func checkLookups(t *testing.T, tab *prefix.Table, cases []lookupCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			v, l, ok := tab.Lookup(c.number, c.at)
			if v != c.value || l != c.length || ok != c.ok {
				t.Errorf("Lookup(%q, %d) = (%d, %d, %v), want (%d, %d, %v)",
					c.number, c.at, v, l, ok, c.value, c.length, c.ok)
			}
		})
	}
}

func TestLookup(t *testing.T) {
	t.Parallel()
	fifteen := "123456789012345"
	tab := mustBuild(t, []prefix.Entry{
		{Prefix: "1234", From: prefix.Never, Value: 4},
		{Prefix: "1", From: prefix.Never, Value: 1},
		{Prefix: "123", From: prefix.Never, Value: 3},
		{Prefix: "12", From: prefix.Never, Value: 2},
		{Prefix: "44", From: prefix.Never, Value: 44},
		{Prefix: "4420", From: prefix.Never, Value: 4420},
		{Prefix: "7", From: prefix.Never, Value: 7},
		{Prefix: "9", From: prefix.Never, Value: 9},
		{Prefix: "0", From: prefix.Never, Value: 0},
		{Prefix: "3519", From: prefix.Never, Value: 3519},
		{Prefix: "88", From: prefix.Never, Value: 88},
		{Prefix: "880", From: prefix.Never, Value: 880},
		{Prefix: "8801", From: prefix.Never, Value: 8801},
		{Prefix: "5" + fifteen[1:], From: prefix.Never, Value: 515},
		{Prefix: "5", From: prefix.Never, Value: 5},
		{Prefix: "100", From: prefix.Never, Value: 100},
		{Prefix: "10", From: 0, Value: 10},
	})
	if got := tab.Len(); got != 17 {
		t.Errorf("Len() = %d, want 17", got)
	}
	if got := tab.Versions(); got != 17 {
		t.Errorf("Versions() = %d, want 17", got)
	}
	if got := tab.MemoryBytes(); got <= 0 {
		t.Errorf("MemoryBytes() = %d, want > 0", got)
	}
	checkLookups(t, tab, []lookupCase{
		{name: "depth1", number: "19995551234", value: 1, length: 1, ok: true},
		{name: "depth2", number: "12995551234", value: 2, length: 2, ok: true},
		{name: "depth3", number: "12395551234", value: 3, length: 3, ok: true},
		{name: "depth4", number: "12345551234", value: 4, length: 4, ok: true},
		{name: "exact1", number: "1", value: 1, length: 1, ok: true},
		{name: "exact3", number: "123", value: 3, length: 3, ok: true},
		{name: "exact4", number: "1234", value: 4, length: 4, ok: true},
		{name: "gap falls back", number: "4421234567", value: 44, length: 2, ok: true},
		{name: "gap deeper", number: "4420123456", value: 4420, length: 4, ok: true},
		{name: "no match", number: "2125551234", ok: false},
		{name: "no match under existing path", number: "3512345678", ok: false},
		{name: "deeper match under bare path", number: "3519123456", value: 3519, length: 4, ok: true},
		{name: "shorter than all prefixes", number: "4", ok: false},
		{name: "shorter than prefix", number: "35", ok: false},
		{name: "single digit 7", number: "74951234567", value: 7, length: 1, ok: true},
		{name: "single digit 0", number: "0", value: 0, length: 1, ok: true},
		{name: "single digit 9", number: "9", value: 9, length: 1, ok: true},
		{name: "zeros", number: "1000000", value: 100, length: 3, ok: true},
		{name: "dated version in effect", number: "1099", at: 5, value: 10, length: 2, ok: true},
		{name: "dated version at From", number: "1099", at: 0, value: 10, length: 2, ok: true},
		{name: "dated version in future", number: "1099", at: -1, value: 1, length: 1, ok: true},
		{name: "15 digits exact", number: "5" + fifteen[1:], value: 515, length: 15, ok: true},
		{name: "15 digits longer number", number: "5" + fifteen[1:] + "678", value: 515, length: 15, ok: true},
		{name: "14 of 15 digits", number: ("5" + fifteen[1:])[:14], value: 5, length: 1, ok: true},
		{name: "three levels", number: "8801712345678", value: 8801, length: 4, ok: true},
		{name: "plus", number: "+12345551234", ok: false},
		{name: "letters", number: "abc", ok: false},
		{name: "empty", number: "", ok: false},
		{name: "non-digit after match", number: "1234x", ok: false},
		{name: "non-digit after walk ends", number: "2125x", ok: false},
		{name: "space", number: "1 234", ok: false},
		{name: "colon", number: "1:", ok: false},
		{name: "slash", number: "/", ok: false},
	})
}

func TestLookupEffectiveDates(t *testing.T) {
	t.Parallel()
	const (
		past   = 1_600_000_000
		now    = 1_700_000_000
		future = 1_800_000_000
	)
	tab := mustBuild(t, []prefix.Entry{
		{Prefix: "1", From: prefix.Never, Value: 1},
		// Past and future versions.
		{Prefix: "12", From: future, Value: 122},
		{Prefix: "12", From: past, Value: 121},
		// Only future versions: falls back to "1".
		{Prefix: "13", From: future, Value: 131},
		{Prefix: "13", From: future + 10, Value: 132},
		// A single future version.
		{Prefix: "14", From: future, Value: 141},
		// Never plus a later version.
		{Prefix: "15", From: prefix.Never, Value: 150},
		{Prefix: "15", From: now, Value: 151},
		// Deeper prefix only in the future, under a dated one.
		{Prefix: "121", From: future, Value: 1211},
		// Extreme instants.
		{Prefix: "16", From: math.MaxInt64, Value: 160},
		{Prefix: "17", From: math.MinInt64 + 1, Value: 170},
		// Three versions.
		{Prefix: "18", From: past, Value: 181},
		{Prefix: "18", From: now, Value: 182},
		{Prefix: "18", From: future, Value: 183},
	})
	if got := tab.Len(); got != 9 {
		t.Errorf("Len() = %d, want 9", got)
	}
	if got := tab.Versions(); got != 14 {
		t.Errorf("Versions() = %d, want 14", got)
	}
	checkLookups(t, tab, []lookupCase{
		{name: "past version now", number: "1255", at: now, value: 121, length: 2, ok: true},
		{name: "future version after its From", number: "1255", at: future + 1, value: 122, length: 2, ok: true},
		{name: "future version at its From", number: "1255", at: future, value: 122, length: 2, ok: true},
		{name: "before all versions", number: "1255", at: past - 1, value: 1, length: 1, ok: true},
		{name: "only future falls back", number: "1355", at: now, value: 1, length: 1, ok: true},
		{name: "only future in effect later", number: "1355", at: future + 5, value: 131, length: 2, ok: true},
		{name: "only future newest", number: "1355", at: future + 10, value: 132, length: 2, ok: true},
		{name: "single future falls back", number: "1455", at: now, value: 1, length: 1, ok: true},
		{name: "single future in effect", number: "1455", at: future, value: 141, length: 2, ok: true},
		{name: "never before later version", number: "1555", at: now - 1, value: 150, length: 2, ok: true},
		{name: "never at min instant", number: "1555", at: math.MinInt64, value: 150, length: 2, ok: true},
		{name: "later version replaces never", number: "1555", at: now, value: 151, length: 2, ok: true},
		{name: "deeper future falls back to dated", number: "1211", at: now, value: 121, length: 2, ok: true},
		{name: "deeper future in effect", number: "1211", at: future, value: 1211, length: 3, ok: true},
		{name: "never at min instant root", number: "1", at: math.MinInt64, value: 1, length: 1, ok: true},
		{name: "max from not yet", number: "16", at: math.MaxInt64 - 1, value: 1, length: 1, ok: true},
		{name: "max from at max", number: "16", at: math.MaxInt64, value: 160, length: 2, ok: true},
		{name: "min+1 at min", number: "17", at: math.MinInt64, value: 1, length: 1, ok: true},
		{name: "min+1 at min+1", number: "17", at: math.MinInt64 + 1, value: 170, length: 2, ok: true},
		{name: "three versions past", number: "18", at: past, value: 181, length: 2, ok: true},
		{name: "three versions now", number: "18", at: now + 1, value: 182, length: 2, ok: true},
		{name: "three versions future", number: "18", at: future, value: 183, length: 2, ok: true},
		{name: "three versions before", number: "18", at: past - 1, value: 1, length: 1, ok: true},
	})

	onlyFuture := mustBuild(t, []prefix.Entry{{Prefix: "1", From: future, Value: 1}})
	checkLookups(t, onlyFuture, []lookupCase{
		{name: "nothing in effect", number: "12345", at: now, ok: false},
		{name: "in effect", number: "12345", at: future, value: 1, length: 1, ok: true},
	})
}

func TestBuildErrors(t *testing.T) {
	t.Parallel()
	ok := prefix.Entry{Prefix: "44", From: prefix.Never, Value: 1}
	for _, c := range []struct {
		name    string
		entries []prefix.Entry
		want    []string // substrings of the error
	}{
		{name: "empty prefix", entries: []prefix.Entry{ok, {Prefix: ""}}, want: []string{"entry 1", "empty"}},
		{name: "too long", entries: []prefix.Entry{{Prefix: "1234567890123456"}, ok}, want: []string{"entry 0", "1234567890123456", "longer"}},
		{name: "plus", entries: []prefix.Entry{ok, ok, {Prefix: "+44"}}, want: []string{"entry 2", "+44", "non-digit"}},
		{name: "letter", entries: []prefix.Entry{{Prefix: "4a"}}, want: []string{"entry 0", "non-digit"}},
		{name: "space", entries: []prefix.Entry{{Prefix: "4 4"}}, want: []string{"entry 0", "non-digit"}},
		{name: "duplicate never", entries: []prefix.Entry{ok, {Prefix: "1"}, {Prefix: "44", From: prefix.Never, Value: 2}},
			want: []string{"entry 2", "entry 0", `"44"`}},
		{name: "duplicate dated", entries: []prefix.Entry{
			{Prefix: "3", From: 10}, {Prefix: "3", From: 20}, {Prefix: "3", From: 30}, {Prefix: "3", From: 20, Value: 9},
		}, want: []string{"entry 3", "entry 1", "from 20"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			tab, err := prefix.Build(c.entries)
			if err == nil {
				t.Fatalf("Build succeeded with %d prefixes, want error", tab.Len())
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Build error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestBuildKeepsInput(t *testing.T) {
	t.Parallel()
	in := []prefix.Entry{
		{Prefix: "9", From: 5, Value: 1},
		{Prefix: "1", From: prefix.Never, Value: 2},
		{Prefix: "9", From: 1, Value: 3},
	}
	want := append([]prefix.Entry(nil), in...)
	tab := mustBuild(t, in)
	for i := range in {
		if in[i] != want[i] {
			t.Fatalf("Build modified entry %d: %+v, want %+v", i, in[i], want[i])
		}
	}
	in[1].Value = 99 // the table must not alias the input
	if v, _, _ := tab.Lookup("1", 0); v != 2 {
		t.Errorf("Lookup after modifying input = %d, want 2", v)
	}
}

func TestEmptyAndNil(t *testing.T) {
	t.Parallel()
	empty := mustBuild(t, nil)
	for _, c := range []struct {
		name string
		tab  *prefix.Table
	}{
		{name: "nil", tab: nil},
		{name: "zero", tab: &prefix.Table{}},
		{name: "empty", tab: empty},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if v, l, ok := c.tab.Lookup("12345", 0); ok || v != 0 || l != 0 {
				t.Errorf("Lookup = (%d, %d, %v), want (0, 0, false)", v, l, ok)
			}
			if c.tab.Len() != 0 || c.tab.Versions() != 0 {
				t.Errorf("Len, Versions = %d, %d, want 0, 0", c.tab.Len(), c.tab.Versions())
			}
			if c.name != "empty" && c.tab.MemoryBytes() != 0 {
				t.Errorf("MemoryBytes = %d, want 0", c.tab.MemoryBytes())
			}
		})
	}
}

func TestLookupValues(t *testing.T) {
	t.Parallel()
	// Values that do and do not fit inline records, with one version and
	// with several, at every depth parity, in leaves and inner hubs.
	values := []uint32{0, 1, 1<<24 - 1, 1 << 24, 1<<24 + 1, math.MaxUint32 - 1, math.MaxUint32}
	var entries []prefix.Entry
	var cases []lookupCase
	for i, v := range values {
		p := strings.Repeat("3", i+1)
		entries = append(entries, prefix.Entry{Prefix: "9" + p, From: prefix.Never, Value: v})
		entries = append(entries,
			prefix.Entry{Prefix: "8" + p, From: 100, Value: v},
			prefix.Entry{Prefix: "8" + p, From: 200, Value: ^v})
		entries = append(entries, prefix.Entry{Prefix: "7" + p + "1", From: prefix.Never, Value: v})
		cases = append(cases,
			lookupCase{name: fmt.Sprintf("single %d", v), number: "9" + p + "0", value: v, length: i + 2, ok: true},
			lookupCase{name: fmt.Sprintf("older %d", v), number: "8" + p + "0", at: 150, value: v, length: i + 2, ok: true},
			lookupCase{name: fmt.Sprintf("newer %d", v), number: "8" + p + "0", at: 250, value: ^v, length: i + 2, ok: true},
			lookupCase{name: fmt.Sprintf("leaf %d", v), number: "7" + p + "1", value: v, length: i + 3, ok: true},
		)
	}
	checkLookups(t, mustBuild(t, entries), cases)
}

func TestLookupManyFroms(t *testing.T) {
	t.Parallel()
	// More distinct Froms than the inline dictionary holds: the rare ones
	// go out of line, and every one must still be honoured.
	var entries []prefix.Entry
	var cases []lookupCase
	for i := range 1000 {
		p := fmt.Sprintf("4%04d", i)
		from := int64(i % 400)
		entries = append(entries, prefix.Entry{Prefix: p, From: from, Value: uint32(i)})
		cases = append(cases,
			lookupCase{name: p + " before", number: p + "12", at: from - 1, ok: false},
			lookupCase{name: p + " at", number: p + "12", at: from, value: uint32(i), length: 5, ok: true})
	}
	checkLookups(t, mustBuild(t, entries), cases)
}

// reference is the obvious implementation Lookup must agree with.
type reference map[string][]prefix.Entry

func (r reference) lookup(number string, at int64) (uint32, int, bool) {
	if number == "" {
		return 0, 0, false
	}
	for _, c := range number {
		if c < '0' || c > '9' {
			return 0, 0, false
		}
	}
	for l := min(len(number), prefix.MaxDigits); l > 0; l-- {
		best, found := prefix.Entry{}, false
		for _, e := range r[number[:l]] {
			if e.From <= at && (!found || e.From > best.From) {
				best, found = e, true
			}
		}
		if found {
			return best.Value, l, true
		}
	}
	return 0, 0, false
}

func TestLookupRandomized(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		// froms is how many distinct From values versions draw from: few
		// (all inline), many (beyond the inline dictionary).
		froms    int
		prefixes int
		numbers  int
		alphabet string
	}{
		{name: "few froms", froms: 4, prefixes: 20_000, numbers: 100_000, alphabet: "0123456789"},
		{name: "many froms", froms: 100_000, prefixes: 20_000, numbers: 100_000, alphabet: "0123456789"},
		{name: "dense small alphabet", froms: 8, prefixes: 5_000, numbers: 50_000, alphabet: "012"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewPCG(1, uint64(c.froms)))
			digits := func(n int) string {
				b := make([]byte, n)
				for i := range b {
					b[i] = c.alphabet[rng.IntN(len(c.alphabet))]
				}
				return string(b)
			}
			randFrom := func() int64 {
				if rng.IntN(4) == 0 {
					return prefix.Never
				}
				return int64(rng.IntN(c.froms)) * 1000
			}
			// Values mostly fit a 24-bit inline record; some do not.
			randValue := func() uint32 {
				switch rng.IntN(8) {
				case 0:
					return rng.Uint32()
				case 1:
					return 1<<24 - 1 + rng.Uint32N(2)
				default:
					return rng.Uint32N(1 << 24)
				}
			}
			ref := reference{}
			var entries []prefix.Entry
			type key struct {
				p string
				f int64
			}
			seen := map[key]bool{}
			var list []string
			for len(ref) < c.prefixes {
				var p string
				if len(list) > 0 && rng.IntN(3) > 0 {
					base := list[rng.IntN(len(list))]
					p = base + digits(1+rng.IntN(3))
					if len(p) > prefix.MaxDigits {
						p = p[:prefix.MaxDigits]
					}
				} else {
					p = digits(1 + rng.IntN(prefix.MaxDigits))
				}
				nv := 1
				if rng.IntN(5) == 0 {
					nv = 2 + rng.IntN(3)
				}
				for range nv {
					e := prefix.Entry{Prefix: p, From: randFrom(), Value: randValue()}
					if seen[key{p, e.From}] {
						continue
					}
					seen[key{p, e.From}] = true
					if len(ref[p]) == 0 {
						list = append(list, p)
					}
					ref[p] = append(ref[p], e)
					entries = append(entries, e)
				}
			}
			rng.Shuffle(len(entries), func(i, j int) { entries[i], entries[j] = entries[j], entries[i] })
			tab := mustBuild(t, entries)
			if tab.Len() != len(ref) || tab.Versions() != len(entries) {
				t.Fatalf("Len, Versions = %d, %d, want %d, %d", tab.Len(), tab.Versions(), len(ref), len(entries))
			}
			matched := 0
			for i := range c.numbers {
				var number string
				switch i % 8 {
				case 0:
					number = digits(rng.IntN(18))
				case 1:
					number = list[rng.IntN(len(list))]
				default:
					p := list[rng.IntN(len(list))]
					number = p + digits(rng.IntN(16-len(p)+2))
				}
				if i%97 == 0 && number != "" {
					b := []byte(number)
					b[rng.IntN(len(b))] = "+a/: "[rng.IntN(5)]
					number = string(b)
				}
				at := randFrom()
				if rng.IntN(10) == 0 {
					at = at + int64(rng.IntN(3)) - 1
				}
				wv, wl, wok := ref.lookup(number, at)
				gv, gl, gok := tab.Lookup(number, at)
				if gv != wv || gl != wl || gok != wok {
					t.Fatalf("Lookup(%q, %d) = (%d, %d, %v), want (%d, %d, %v)", number, at, gv, gl, gok, wv, wl, wok)
				}
				if wok {
					matched++
				}
			}
			if matched < c.numbers/2 {
				t.Errorf("only %d of %d numbers matched; the test is not exercising much", matched, c.numbers)
			}
		})
	}
}

// TestLookupDoesNotAllocate is the one test not run in parallel:
// testing.AllocsPerRun refuses to run in a parallel test.
func TestLookupDoesNotAllocate(t *testing.T) {
	tab := mustBuild(t, []prefix.Entry{
		{Prefix: "1", From: prefix.Never, Value: 1},
		{Prefix: "12", From: 10, Value: 2},
		{Prefix: "12", From: 20, Value: 3},
		{Prefix: "123", From: 5, Value: 4},
	})
	numbers := []string{"1234567890", "12", "9", "", "+1", "1x"}
	var sink uint32
	allocs := testing.AllocsPerRun(1000, func() {
		for i, n := range numbers {
			v, _, _ := tab.Lookup(n, int64(i*5))
			sink += v
		}
	})
	if allocs != 0 {
		t.Errorf("Lookup allocates %v times per run, want 0", allocs)
	}
	_ = sink
}
