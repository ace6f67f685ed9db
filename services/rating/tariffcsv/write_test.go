package tariffcsv

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// randomRates builds n rates with unique (prefix, effective_from) pairs and
// names that exercise quoting: delimiters, quotes, non-ASCII.
func randomRates(rng *rand.Rand, n int) []Rate {
	names := []string{
		"Spain - Mobile", "United States, Canada", `Say "hello" Telecom`, "Côte d'Ivoire - Orange",
		"São Tomé and Príncipe", "日本 - 携帯", "Semi;colon", "x", strings.Repeat("long ", 20),
	}
	seen := make(map[string]bool)
	out := make([]Rate, 0, n)
	for len(out) < n {
		rt := Rate{
			Prefix:              fmt.Sprintf("%015d", rng.Uint64N(1_000_000_000_000_000))[:1+rng.IntN(MaxPrefixDigits)],
			Destination:         strings.TrimSpace(names[rng.IntN(len(names))]),
			RatePerMinuteMicros: rng.Int64N(MaxMoneyMicros + 1),
			ConnectionFeeMicros: rng.Int64N(MaxMoneyMicros + 1),
			MinSeconds:          rng.Int32N(MaxSeconds + 1),
			IncrementSeconds:    1 + rng.Int32N(MaxSeconds),
		}
		switch rng.IntN(4) {
		case 0: // always
		case 1:
			rt.EffectiveFrom = time.Date(2000+rng.IntN(100), time.Month(1+rng.IntN(12)), 1+rng.IntN(28), 0, 0, 0, 0, time.UTC)
		default:
			rt.EffectiveFrom = time.Unix(rng.Int64N(4_000_000_000), rng.Int64N(1_000_000_000)).UTC()
		}
		if rng.IntN(5) == 0 { // small, round amounts are the common case
			rt.RatePerMinuteMicros = rng.Int64N(100) * 100
		}
		key := rt.Prefix + "|" + rt.EffectiveFrom.String()
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, rt)
	}
	return out
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		seed uint64
		n    int
		// hideSize parses through a reader that cannot tell its size, so
		// Rates grows instead of being sized from an estimate.
		hideSize bool
	}{
		{name: "none", seed: 1, n: 0},
		{name: "one", seed: 2, n: 1},
		{name: "many", seed: 3, n: 5000},
		{name: "many, size unknown", seed: 4, n: 20000, hideSize: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			want := randomRates(rand.New(rand.NewPCG(tc.seed, 42)), tc.n)
			var buf bytes.Buffer
			if err := Write(&buf, Rates(want)); err != nil {
				t.Fatalf("Write: %v", err)
			}
			out := buf.String()
			var r io.Reader = strings.NewReader(out)
			if tc.hideSize {
				r = struct{ io.Reader }{r}
			}
			res, err := Parse(r, Options{})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if res.ErrorCount != 0 {
				t.Fatalf("Parse(Write(x)) errors: %v", res.Errors[:min(5, len(res.Errors))])
			}
			if len(want) == 0 && len(res.Rates) == 0 {
				return
			}
			if !reflect.DeepEqual(res.Rates, want) {
				for i := range want {
					if !reflect.DeepEqual(res.Rates[i], want[i]) {
						t.Fatalf("rate %d:\n got %+v\nwant %+v", i, res.Rates[i], want[i])
					}
				}
				t.Fatalf("got %d rates, want %d", len(res.Rates), len(want))
			}
			// Canonical: writing what was read gives the same bytes.
			buf.Reset()
			if err := Write(&buf, Rates(res.Rates)); err != nil {
				t.Fatalf("second Write: %v", err)
			}
			if buf.String() != out {
				t.Fatal("Write(Parse(Write(x))) differs from Write(x)")
			}
		})
	}
}

func TestWriteFormat(t *testing.T) {
	t.Parallel()
	madrid := time.FixedZone("CET", 3600)
	tests := []struct {
		name  string
		rates []Rate
		want  string
	}{
		{name: "header only", want: "prefix,destination,rate_per_minute,connection_fee,min_seconds,increment_seconds,effective_from\n"},
		{
			name: "quoting and dates in UTC",
			rates: []Rate{
				{Prefix: "1", Destination: "United States, Canada", RatePerMinuteMicros: 4000, IncrementSeconds: 6, MinSeconds: 6},
				{Prefix: "34", Destination: `Say "hi"`, RatePerMinuteMicros: 12500, ConnectionFeeMicros: 1_000_000, IncrementSeconds: 1,
					EffectiveFrom: time.Date(2026, 1, 1, 1, 0, 0, 0, madrid)},
			},
			want: "prefix,destination,rate_per_minute,connection_fee,min_seconds,increment_seconds,effective_from\n" +
				"1,\"United States, Canada\",0.004,0,6,6,\n" +
				"34,\"Say \"\"hi\"\"\",0.0125,1,0,1,2026-01-01T00:00:00Z\n",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			if err := Write(&buf, Rates(tc.rates)); err != nil {
				t.Fatal(err)
			}
			if buf.String() != tc.want {
				t.Fatalf("got\n%s\nwant\n%s", buf.String(), tc.want)
			}
		})
	}
}

func TestWriteErrors(t *testing.T) {
	t.Parallel()
	good := Rate{Prefix: "34", Destination: "Spain", RatePerMinuteMicros: 1, IncrementSeconds: 1}
	boom := errors.New("database gone")
	failing := func(yield func(Rate, error) bool) {
		if yield(good, nil) {
			yield(Rate{}, boom)
		}
	}
	with := func(f func(*Rate)) iter.Seq2[Rate, error] {
		rt := good
		f(&rt)
		return Rates([]Rate{good, rt})
	}
	tests := []struct {
		name    string
		rates   iter.Seq2[Rate, error]
		wantErr error  // errors.Is target, or nil
		wantMsg string // substring
	}{
		{name: "sequence error", rates: failing, wantErr: boom, wantMsg: "rate 2"},
		{name: "plus in prefix", rates: with(func(r *Rate) { r.Prefix = "+34" }), wantMsg: "prefix"},
		{name: "empty prefix", rates: with(func(r *Rate) { r.Prefix = "" }), wantMsg: "prefix"},
		{name: "padded destination", rates: with(func(r *Rate) { r.Destination = " Spain" }), wantMsg: "spaces"},
		{name: "line break in destination", rates: with(func(r *Rate) { r.Destination = "a\nb" }), wantMsg: "control"},
		{name: "negative rate", rates: with(func(r *Rate) { r.RatePerMinuteMicros = -1 }), wantMsg: "rate_per_minute"},
		{name: "fee too high", rates: with(func(r *Rate) { r.ConnectionFeeMicros = MaxMoneyMicros + 1 }), wantMsg: "connection_fee"},
		{name: "zero increment", rates: with(func(r *Rate) { r.IncrementSeconds = 0 }), wantMsg: "increment_seconds"},
		{name: "min too long", rates: with(func(r *Rate) { r.MinSeconds = 3601 }), wantMsg: "min_seconds"},
		{name: "ancient date", rates: with(func(r *Rate) { r.EffectiveFrom = time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC) }), wantMsg: "effective_from"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := Write(&bytes.Buffer{}, tc.rates)
			if err == nil {
				t.Fatal("Write succeeded, want an error")
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("Write error %v does not wrap %v", err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("Write error %q does not mention %q", err, tc.wantMsg)
			}
		})
	}
}

func TestWriteWriterError(t *testing.T) {
	t.Parallel()
	boom := errors.New("disk full")
	rates := randomRates(rand.New(rand.NewPCG(7, 7)), 3000) // more than one buffer
	tests := []struct {
		name  string
		rates []Rate
	}{
		{name: "on flush", rates: rates[:1]},
		{name: "mid-stream", rates: rates},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := Write(failWriter{boom}, Rates(tc.rates)); !errors.Is(err, boom) {
				t.Fatalf("Write error = %v, want %v", err, boom)
			}
		})
	}
}

type failWriter struct{ err error }

func (f failWriter) Write([]byte) (int, error) { return 0, f.err }
