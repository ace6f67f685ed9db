package direction

import (
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
)

func TestLookup(t *testing.T) {
	t.Parallel()
	r := NewResolver(0)
	tests := []struct {
		name   string
		number string
		want   Direction
		// wantCarrier only checks that some carrier is known, since carrier
		// names are data the library may refresh between versions.
		wantCarrier bool
	}{
		{
			name:   "Spain Madrid fixed line",
			number: "+34911234567",
			want: Direction{Country: "ES", CountryName: "Spain", Region: "Madrid",
				LineType: FixedLine, TimeZones: []string{"Europe/Madrid"}, Valid: true},
		},
		{
			name:   "Spain fixed line with spaces",
			number: "+34 91 123 45 67",
			want: Direction{Country: "ES", CountryName: "Spain", Region: "Madrid",
				LineType: FixedLine, TimeZones: []string{"Europe/Madrid"}, Valid: true},
		},
		{
			name:   "Spain mobile",
			number: "+34699123456",
			want: Direction{Country: "ES", CountryName: "Spain",
				LineType: Mobile, TimeZones: []string{"Europe/Madrid"}, Valid: true},
			wantCarrier: true,
		},
		{
			name:   "New York",
			number: "+12125550123",
			want: Direction{Country: "US", CountryName: "United States", Region: "New York, NY",
				LineType: FixedLineOrMobile, TimeZones: []string{"America/New_York"}, Valid: true},
		},
		{
			name:   "UK mobile",
			number: "+447400123456",
			want: Direction{Country: "GB", CountryName: "United Kingdom",
				LineType: Mobile, TimeZones: []string{"Europe/Guernsey", "Europe/Isle_of_Man", "Europe/London"}, Valid: true},
			wantCarrier: true,
		},
		{
			name:   "UK London fixed line",
			number: "+442079460000",
			want: Direction{Country: "GB", CountryName: "United Kingdom", Region: "London",
				LineType: FixedLine, TimeZones: []string{"Europe/London"}, Valid: true},
		},
		{
			name:   "Mexico City",
			number: "+525512345678",
			want: Direction{Country: "MX", CountryName: "Mexico", Region: "Mexico City, FD",
				LineType: FixedLineOrMobile, TimeZones: []string{"America/Mexico_City"}, Valid: true},
		},
		{
			name:   "Spain premium rate 806",
			number: "+34806123456",
			want: Direction{Country: "ES", CountryName: "Spain",
				LineType: PremiumRate, TimeZones: []string{"Europe/Madrid"}, Valid: true},
		},
		{
			name:   "UK premium rate 09",
			number: "+449012345678",
			want: Direction{Country: "GB", CountryName: "United Kingdom",
				LineType: PremiumRate, TimeZones: []string{"Europe/Guernsey", "Europe/Isle_of_Man", "Europe/London"}, Valid: true},
		},
		{
			name:   "Spain toll free 900",
			number: "+34900123456",
			want: Direction{Country: "ES", CountryName: "Spain",
				LineType: TollFree, TimeZones: []string{"Europe/Madrid"}, Valid: true},
		},
		{
			// Spain has two zones (the Canaries): the country's list is no answer.
			name:   "invalid but parsable keeps country, no region, carrier or zones",
			number: "+34123",
			want:   Direction{Country: "ES", CountryName: "Spain", LineType: Unknown},
		},
		{
			// 555 is no area code: the metadata only knows it is +1, whose
			// 42 zones say nothing about the number.
			name:   "unplaced NANP number has no zones",
			number: "+15551230002",
			want:   Direction{Country: "", LineType: Unknown},
		},
		{
			name:   "placed NANP number has its zone",
			number: "+12125550123",
			want: Direction{Country: "US", CountryName: "United States", Region: "New York, NY",
				LineType: FixedLineOrMobile, TimeZones: []string{"America/New_York"}, Valid: true},
		},
		{name: "garbage", number: "garbage", want: Direction{LineType: Unknown}},
		{name: "empty", number: "", want: Direction{LineType: Unknown}},
		{name: "plus only", number: "+", want: Direction{LineType: Unknown}},
		{name: "missing plus", number: "34911234567", want: Direction{LineType: Unknown}},
		{name: "unassigned country code", number: "+999123456", want: Direction{LineType: Unknown}},
		{name: "too long", number: "+" + string(make([]byte, 100)), want: Direction{LineType: Unknown}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := r.Lookup(tc.number)
			if tc.wantCarrier {
				if got.Carrier == "" {
					t.Errorf("Lookup(%q).Carrier is empty, want a carrier", tc.number)
				}
				got.Carrier = ""
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Lookup(%q)\n got %+v\nwant %+v", tc.number, got, tc.want)
			}
			if slices.Contains(got.TimeZones, "Etc/Unknown") {
				t.Errorf("Lookup(%q) leaked Etc/Unknown", tc.number)
			}
		})
	}
}

func TestLookupCacheHit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		number string
	}{
		{name: "fixed line", number: "+34911234567"},
		{name: "mobile with carrier", number: "+34699123456"},
		{name: "many time zones", number: "+18002345678"},
		{name: "garbage", number: "garbage"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := NewResolver(10)
			first := r.Lookup(tc.number)
			second := r.Lookup(tc.number)
			if !reflect.DeepEqual(first, second) {
				t.Fatalf("cache hit differs:\n miss %+v\n hit  %+v", first, second)
			}
			if want := resolve(tc.number); !reflect.DeepEqual(second, want) {
				t.Fatalf("cached result differs from uncached:\n got  %+v\n want %+v", second, want)
			}
			// Callers own their copy: scribbling on it must not reach the cache.
			for i := range second.TimeZones {
				second.TimeZones[i] = "Mars/Olympus_Mons"
			}
			if third := r.Lookup(tc.number); !reflect.DeepEqual(first, third) {
				t.Fatalf("caller's edit leaked into the cache:\n want %+v\n got  %+v", first, third)
			}
		})
	}
}

func TestCacheBounded(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		cacheSize int
		lookups   int
		maxPerShd int
	}{
		{name: "one per shard", cacheSize: 1, lookups: 500, maxPerShd: 1},
		{name: "small", cacheSize: 64, lookups: 2000, maxPerShd: 4},
		{name: "default", cacheSize: 0, lookups: 100, maxPerShd: DefaultCacheSize / numShards},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := NewResolver(tc.cacheSize)
			for i := range tc.lookups {
				r.Lookup(fmt.Sprintf("+349112%05d", i))
			}
			for i := range r.shards {
				if n := len(r.shards[i].m); n > tc.maxPerShd {
					t.Errorf("shard %d holds %d entries, want at most %d", i, n, tc.maxPerShd)
				}
			}
		})
	}
}

func TestLookupConcurrent(t *testing.T) {
	t.Parallel()
	numbers := []string{
		"+34911234567", "+34699123456", "+12125550123", "+447400123456",
		"+525512345678", "+34806123456", "+34900123456", "garbage",
	}
	want := make(map[string]Direction, len(numbers))
	for _, n := range numbers {
		want[n] = resolve(n)
	}
	tests := []struct {
		name      string
		cacheSize int
	}{
		{name: "everything fits", cacheSize: 0},
		{name: "constant eviction", cacheSize: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := NewResolver(tc.cacheSize)
			var wg sync.WaitGroup
			for g := range 8 {
				wg.Go(func() {
					for i := range 200 {
						n := numbers[(g+i)%len(numbers)]
						got := r.Lookup(n)
						if !reflect.DeepEqual(got, want[n]) {
							t.Errorf("Lookup(%q) = %+v, want %+v", n, got, want[n])
							return
						}
						// Exercise the copy under -race: writers on returned
						// slices must not conflict with readers elsewhere.
						if len(got.TimeZones) > 0 {
							got.TimeZones[0] = ""
						}
					}
				})
			}
			wg.Wait()
		})
	}
}
