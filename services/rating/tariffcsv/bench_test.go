package tariffcsv

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"
)

// deck builds an n-row file shaped like a real wholesale deck: unique
// prefixes, a few hundred repeated destination names, four-decimal rates,
// a handful of effective dates.
func deck(n int) []byte {
	rng := rand.New(rand.NewPCG(1, 1))
	names := make([]string, 400)
	for i := range names {
		names[i] = fmt.Sprintf("Country %d - Mobile Operator %d", i/4, i%4)
	}
	dates := []string{"", "", "", "2026-01-01", "2026-07-01T00:00:00Z"}
	var b bytes.Buffer
	b.Grow(n * 80)
	b.WriteString("prefix,destination,rate_per_minute,connection_fee,min_seconds,increment_seconds,effective_from\n")
	for i := range n {
		b.WriteByte('+')
		b.WriteString(strconv.Itoa(1_000_000 + i))
		b.WriteByte(',')
		b.WriteString(names[rng.IntN(len(names))])
		b.WriteByte(',')
		b.WriteString(FormatMicros(rng.Int64N(1_000_000) / 100 * 100))
		b.WriteString(",0,60,1,")
		b.WriteString(dates[rng.IntN(len(dates))])
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func BenchmarkParse1M(b *testing.B) {
	const rows = 1_000_000
	data := deck(rows)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		res, err := Parse(bytes.NewReader(data), Options{})
		if err != nil || res.ErrorCount != 0 || len(res.Rates) != rows {
			b.Fatalf("Parse: %v, %d errors, %d rates", err, res.ErrorCount, len(res.Rates))
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

func BenchmarkWrite1M(b *testing.B) {
	const rows = 1_000_000
	res, err := Parse(bytes.NewReader(deck(rows)), Options{})
	if err != nil || res.ErrorCount != 0 {
		b.Fatalf("Parse: %v, %v", err, res.Errors)
	}
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		if err := Write(&buf, Rates(res.Rates)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
