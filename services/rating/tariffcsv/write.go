package tariffcsv

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"iter"
	"strconv"
	"strings"
	"time"
)

// Write streams rates to w in the canonical format: the header
// prefix,destination,rate_per_minute,connection_fee,min_seconds,
// increment_seconds,effective_from and one row per rate, quoted where
// needed, so that Parse reads back exactly the same rates (EffectiveFrom in
// UTC). It validates each rate against the limits Parse enforces, because a
// file that cannot be imported again is worse than an error now; it does
// not check for duplicates. It stops at the first error, from the sequence
// or otherwise, and returns it; the output is then incomplete.
func Write(w io.Writer, rates iter.Seq2[Rate, error]) error {
	// csv.Writer adopts a *bufio.Writer of at least 4 KiB instead of adding
	// its own, so this is the only buffer: memory stays flat for any deck.
	cw := csv.NewWriter(bufio.NewWriterSize(w, 64<<10))
	if err := cw.Write([]string{
		ColumnPrefix, ColumnDestination, ColumnRatePerMinute, ColumnConnectionFee,
		ColumnMinSeconds, ColumnIncrementSeconds, ColumnEffectiveFrom,
	}); err != nil {
		return fmt.Errorf("tariffcsv: writing header: %w", err)
	}
	rec := make([]string, 7)
	n := 0
	for rt, err := range rates {
		n++
		if err != nil {
			return fmt.Errorf("tariffcsv: rate %d: %w", n, err)
		}
		if err := Validate(rt); err != nil {
			return fmt.Errorf("tariffcsv: rate %d (prefix %s): %w", n, quote(rt.Prefix), err)
		}
		rec[0] = rt.Prefix
		rec[1] = rt.Destination
		rec[2] = FormatMicros(rt.RatePerMinuteMicros)
		rec[3] = FormatMicros(rt.ConnectionFeeMicros)
		rec[4] = strconv.Itoa(int(rt.MinSeconds))
		rec[5] = strconv.Itoa(int(rt.IncrementSeconds))
		rec[6] = ""
		if !rt.EffectiveFrom.IsZero() {
			rec[6] = rt.EffectiveFrom.UTC().Format(time.RFC3339Nano)
		}
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("tariffcsv: writing rate %d: %w", n, err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("tariffcsv: writing: %w", err)
	}
	return nil
}

// Rates adapts a slice to the sequence Write takes.
func Rates(rates []Rate) iter.Seq2[Rate, error] {
	return func(yield func(Rate, error) bool) {
		for _, rt := range rates {
			if !yield(rt, nil) {
				return
			}
		}
	}
}

// Validate checks a rate against the limits Parse enforces, so rates built
// in code (an API, a migration) can be refused before they reach a file.
func Validate(rt Rate) error {
	var errs []error
	if _, _, detail := parsePrefix(rt.Prefix); detail != "" || strings.HasPrefix(rt.Prefix, "+") {
		errs = append(errs, fmt.Errorf("%s: %s: expected 1 to 15 digits", ColumnPrefix, quote(rt.Prefix)))
	}
	if detail := checkDestination(rt.Destination); detail != "" {
		errs = append(errs, fmt.Errorf("%s: %s: %s", ColumnDestination, quote(rt.Destination), detail))
	} else if strings.TrimSpace(rt.Destination) != rt.Destination {
		// Parse trims fields, so these spaces would not survive a round trip.
		errs = append(errs, fmt.Errorf("%s: %s: leading or trailing spaces", ColumnDestination, quote(rt.Destination)))
	}
	for _, m := range []struct {
		name string
		v    int64
	}{{ColumnRatePerMinute, rt.RatePerMinuteMicros}, {ColumnConnectionFee, rt.ConnectionFeeMicros}} {
		if m.v < 0 || m.v > MaxMoneyMicros {
			errs = append(errs, fmt.Errorf("%s: %d micros: expected 0 to %d", m.name, m.v, MaxMoneyMicros))
		}
	}
	if rt.MinSeconds < 0 || rt.MinSeconds > MaxSeconds {
		errs = append(errs, fmt.Errorf("%s: %d: expected 0 to %d", ColumnMinSeconds, rt.MinSeconds, MaxSeconds))
	}
	if rt.IncrementSeconds < 1 || rt.IncrementSeconds > MaxSeconds {
		errs = append(errs, fmt.Errorf("%s: %d: expected 1 to %d", ColumnIncrementSeconds, rt.IncrementSeconds, MaxSeconds))
	}
	if !rt.EffectiveFrom.IsZero() {
		if y := rt.EffectiveFrom.UTC().Year(); y < minYear || y > maxYear {
			errs = append(errs, fmt.Errorf("%s: year %d: expected %d to %d", ColumnEffectiveFrom, y, minYear, maxYear))
		}
	}
	return errors.Join(errs...)
}
