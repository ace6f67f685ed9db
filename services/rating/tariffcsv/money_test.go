package tariffcsv

import (
	"errors"
	"math"
	"testing"
)

func TestParseMicros(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in         string
		want       int64
		wantReason string // "" when the input is accepted
	}{
		{in: "0", want: 0},
		{in: "1", want: 1_000_000},
		{in: "1.5", want: 1_500_000},
		{in: ".5", want: 500_000},
		{in: "5.", want: 5_000_000},
		{in: "0.0125", want: 12_500},
		{in: "0.000001", want: 1},
		{in: "1000", want: 1_000_000_000},
		{in: "1000.000001", want: 1_000_000_001}, // in range for ParseMicros; Parse refuses it for a rate
		{in: " 1 ", want: 1_000_000},
		{in: "\t0.5\t", want: 500_000},
		{in: "007.10", want: 7_100_000},
		{in: "0.01250000", want: 12_500}, // padding zeros lose nothing
		{in: "999999999999.999999", want: 999_999_999_999_999_999},
		{in: "0.0000001", wantReason: ReasonBadMoney},
		{in: "0.1234567", wantReason: ReasonBadMoney},
		{in: "", wantReason: ReasonBadMoney},
		{in: "   ", wantReason: ReasonBadMoney},
		{in: ".", wantReason: ReasonBadMoney},
		{in: "-1", wantReason: ReasonBadMoney},
		{in: "+1", wantReason: ReasonBadMoney},
		{in: "1e3", wantReason: ReasonBadMoney},
		{in: "1E3", wantReason: ReasonBadMoney},
		{in: "1,000", wantReason: ReasonBadMoney},
		{in: "0,5", wantReason: ReasonBadMoney},
		{in: "1 000", wantReason: ReasonBadMoney},
		{in: "1.2.3", wantReason: ReasonBadMoney},
		{in: "€1", wantReason: ReasonBadMoney},
		{in: "NaN", wantReason: ReasonBadMoney},
		{in: "1000000000000", wantReason: ReasonMoneyOutOfRange},
		{in: "99999999999999999999999", wantReason: ReasonMoneyOutOfRange},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			got, err := ParseMicros(tc.in)
			if tc.wantReason == "" {
				if err != nil || got != tc.want {
					t.Fatalf("ParseMicros(%q) = %d, %v; want %d, nil", tc.in, got, err, tc.want)
				}
				return
			}
			var me *MoneyError
			if !errors.As(err, &me) {
				t.Fatalf("ParseMicros(%q) = %d, %v; want a *MoneyError", tc.in, got, err)
			}
			if me.Reason != tc.wantReason || me.Detail == "" {
				t.Fatalf("ParseMicros(%q) reason %q detail %q; want reason %q", tc.in, me.Reason, me.Detail, tc.wantReason)
			}
		})
	}
}

func TestParseMicrosDetail(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
	}{
		{in: "0.0000001", want: "more than 6 decimals"},
		{in: "-1", want: "negative amounts are not allowed"},
		{in: "1e3", want: "exponents are not allowed"},
		{in: "", want: "empty amount"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			_, err := ParseMicros(tc.in)
			var me *MoneyError
			if !errors.As(err, &me) || me.Detail != tc.want {
				t.Fatalf("ParseMicros(%q) error %v; want detail %q", tc.in, err, tc.want)
			}
		})
	}
}

func TestFormatMicros(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   int64
		want string
	}{
		{0, "0"},
		{1, "0.000001"},
		{10, "0.00001"},
		{12_500, "0.0125"},
		{500_000, "0.5"},
		{1_000_000, "1"},
		{1_500_000, "1.5"},
		{1_000_000_000, "1000"},
		{1_000_000_001, "1000.000001"},
		{-12_500, "-0.0125"},
		{math.MaxInt64, "9223372036854.775807"},
		{math.MinInt64, "-9223372036854.775808"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			t.Parallel()
			if got := FormatMicros(tc.in); got != tc.want {
				t.Fatalf("FormatMicros(%d) = %q, want %q", tc.in, got, tc.want)
			}
			if tc.in < 0 || tc.in > 999_999_999_999_999_999 {
				return
			}
			if back, err := ParseMicros(tc.want); err != nil || back != tc.in {
				t.Fatalf("ParseMicros(FormatMicros(%d)) = %d, %v", tc.in, back, err)
			}
		})
	}
}
