package tariffcsv

import (
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"
	"unicode/utf8"
)

// errKey is what a test pins down about a RowError; messages are checked
// separately for being present and short.
type errKey struct {
	Line   int
	Column string
	Reason string
}

func keys(errs []RowError) []errKey {
	out := make([]errKey, 0, len(errs))
	for _, e := range errs {
		out = append(out, errKey{e.Line, e.Column, e.Reason})
	}
	return out
}

func mustParse(t *testing.T, in string, opt Options) *Result {
	t.Helper()
	res, err := Parse(strings.NewReader(in), opt)
	if err != nil {
		t.Fatalf("Parse: unexpected I/O error: %v", err)
	}
	for _, e := range res.Errors {
		if e.Message == "" || utf8.RuneCountInString(e.Message) > 220 {
			t.Errorf("line %d %s: message empty or too long (%d): %q", e.Line, e.Reason, len(e.Message), e.Message)
		}
	}
	return res
}

const hdr = "prefix,destination,rate_per_minute\n"

func TestParseErrors(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", MaxDestinationRunes+1)
	tests := []struct {
		name string
		in   string
		opt  Options
		want []errKey
	}{
		{name: "empty", in: "", want: []errKey{{1, "", ReasonEmptyFile}}},
		{name: "BOM only", in: "\uFEFF", want: []errKey{{1, "", ReasonEmptyFile}}},
		{name: "blank lines only", in: "\n\r\n\n", want: []errKey{{1, "", ReasonEmptyFile}}},
		{
			name: "missing required columns",
			in:   "prefix,connection_fee\n34,0\n",
			want: []errKey{{1, "destination", ReasonMissingColumn}, {1, "rate_per_minute", ReasonMissingColumn}},
		},
		{
			name: "unknown column stops before rows",
			in:   "prefix,destination,rate_per_minute,conection_fee\n34,Spain,bad,0\n",
			want: []errKey{{1, "conection_fee", ReasonUnknownColumn}},
		},
		{
			name: "trailing delimiter makes an unnamed column",
			in:   "prefix,destination,rate_per_minute,\n34,Spain,0.1,\n",
			want: []errKey{{1, "", ReasonUnknownColumn}},
		},
		{
			name: "duplicate column",
			in:   "prefix,destination,Prefix,rate_per_minute\n",
			want: []errKey{{1, "prefix", ReasonDuplicateColumn}},
		},
		{
			name: "billing with min_seconds",
			in:   "prefix,destination,rate_per_minute,billing,min_seconds\n",
			want: []errKey{{1, "billing", ReasonDuplicateColumn}},
		},
		{
			name: "billing with increment_seconds",
			in:   "prefix,destination,rate_per_minute,increment_seconds,billing\n",
			want: []errKey{{1, "billing", ReasonDuplicateColumn}},
		},
		{
			name: "bad prefixes",
			in: hdr + "34a,Spain,0.1\n+34 91,Spain,0.1\n,Spain,0.1\n+,Spain,0.1\n" +
				"1234567890123456,Spain,0.1\n++34,Spain,0.1\n123456789012345,Spain,0.1\n",
			want: []errKey{
				{2, "prefix", ReasonBadPrefix}, {3, "prefix", ReasonBadPrefix}, {4, "prefix", ReasonBadPrefix},
				{5, "prefix", ReasonBadPrefix}, {6, "prefix", ReasonBadPrefix}, {7, "prefix", ReasonBadPrefix},
			},
		},
		{
			name: "bad destinations",
			in: hdr + "1,,0.1\n2,\"Spain\nMobile\",0.1\n3,Espa\xf1a,0.1\n4," + long + ",0.1\n" +
				"5,\"Tab\there\",0.1\n6,\u009bnext,0.1\n7," + long[2:] + ",0.1\n",
			want: []errKey{
				{2, "destination", ReasonBadDestination}, {3, "destination", ReasonBadDestination},
				{5, "destination", ReasonBadDestination}, {6, "destination", ReasonBadDestination},
				{7, "destination", ReasonBadDestination}, {8, "destination", ReasonBadDestination},
			},
		},
		{
			name: "bad money",
			in: "prefix,destination,rate_per_minute,connection_fee\n" +
				"1,A,-1,0\n2,A,1e3,0\n3,A,,0\n4,A,0.0000001,0\n5,A,\"1,5\",0\n6,A,0.1,abc\n7,A,0.1,\n",
			want: []errKey{
				{2, "rate_per_minute", ReasonBadMoney}, {3, "rate_per_minute", ReasonBadMoney},
				{4, "rate_per_minute", ReasonBadMoney}, {5, "rate_per_minute", ReasonBadMoney},
				{6, "rate_per_minute", ReasonBadMoney}, {7, "connection_fee", ReasonBadMoney},
			},
		},
		{
			name: "money out of range",
			in: "prefix,destination,rate_per_minute,connection_fee\n" +
				"1,A,1000,1000\n2,A,1000.000001,0\n3,A,0,1000.000001\n4,A,99999999999999,0\n",
			want: []errKey{
				{3, "rate_per_minute", ReasonMoneyOutOfRange}, {4, "connection_fee", ReasonMoneyOutOfRange},
				{5, "rate_per_minute", ReasonMoneyOutOfRange},
			},
		},
		{
			name: "bad seconds",
			in: "prefix,destination,rate_per_minute,min_seconds,increment_seconds\n" +
				"1,A,0.1,3600,3600\n2,A,0.1,3601,1\n3,A,0.1,-1,1\n4,A,0.1,1.5,1\n5,A,0.1,0,0\n6,A,0.1,0,99999999999\n7,A,0.1,,\n",
			want: []errKey{
				{3, "min_seconds", ReasonBadSeconds}, {4, "min_seconds", ReasonBadSeconds},
				{5, "min_seconds", ReasonBadSeconds}, {6, "increment_seconds", ReasonBadSeconds},
				{7, "increment_seconds", ReasonBadSeconds},
			},
		},
		{
			name: "bad billing",
			in: "prefix,destination,rate_per_minute,billing\n" +
				"1,A,0.1,60\n2,A,0.1,60/0\n3,A,0.1,x/6\n4,A,0.1,3601/1\n5,A,0.1,60/60/60\n6,A,0.1, 30 / 6 \n7,A,0.1,\n",
			want: []errKey{
				{2, "billing", ReasonBadBilling}, {3, "billing", ReasonBadBilling}, {4, "billing", ReasonBadBilling},
				{5, "billing", ReasonBadBilling}, {6, "billing", ReasonBadBilling},
			},
		},
		{
			name: "bad dates",
			in: "prefix,destination,rate_per_minute,effective_from\n" +
				"1,A,0.1,2026-13-01\n2,A,0.1,01/02/2026\n3,A,0.1,2026-01-01T00:00:00\n4,A,0.1,1969-12-31\n" +
				"5,A,0.1,2026-02-30\n6,A,0.1,2026-01-01 25:00:00\n7,A,0.1,2026-01-01T00:00:00+01:00\n",
			want: []errKey{
				{2, "effective_from", ReasonBadDate}, {3, "effective_from", ReasonBadDate},
				{4, "effective_from", ReasonBadDate}, {5, "effective_from", ReasonBadDate},
				{6, "effective_from", ReasonBadDate}, {7, "effective_from", ReasonBadDate},
			},
		},
		{
			name: "duplicate rates",
			in: "prefix,destination,rate_per_minute,effective_from\n" +
				"34,Spain,0.1,\n" + // 2
				"+34,Spain,0.2,\n" + // 3: same prefix, '+' stripped
				"34,Spain,0.1,2026-01-01\n" + // 4: new version
				"34,Spain,0.1,2026-01-01T00:00:00Z\n" + // 5: same instant as 4
				"34,Spain,0.1,2026-01-01T01:00:00+01:00\n" + // 6: same instant again
				"034,Spain,0.1,\n" + // 7: different prefix
				"34,Spain,0.1,2026-01-01 00:00:01\n" + // 8: new version
				"34,Spain,-1,\n", // 9: bad money and still a duplicate of 2
			want: []errKey{
				{3, "", ReasonDuplicateRate}, {5, "", ReasonDuplicateRate}, {6, "", ReasonDuplicateRate},
				{9, "rate_per_minute", ReasonBadMoney}, {9, "", ReasonDuplicateRate},
			},
		},
		{
			name: "wrong field count",
			in:   hdr + "34,Spain\n34,Spain,0.1,extra\n34,Spain, Mobile,0.1\n",
			want: []errKey{{2, "", ReasonWrongFieldCount}, {3, "", ReasonWrongFieldCount}, {4, "", ReasonWrongFieldCount}},
		},
		{
			name: "bad CSV rows are reported and parsing goes on",
			in:   hdr + "34,Sp\"ain,0.1\n35,\"Spain\"x,0.1\n36,Spain,bad\n",
			want: []errKey{{2, "", ReasonBadCSV}, {3, "", ReasonBadCSV}, {4, "rate_per_minute", ReasonBadMoney}},
		},
		{
			name: "bad CSV header",
			in:   "prefix,\"destination,rate_per_minute\n",
			want: []errKey{{1, "", ReasonBadCSV}},
		},
		{
			name: "too many rows",
			in:   hdr + "1,A,0.1\n\n2,A,0.1\n3,A,bad\n4,A,bad\n",
			opt:  Options{MaxRows: 2},
			want: []errKey{{5, "", ReasonTooManyRows}},
		},
		{
			name: "several bad rows with blank and multi-line rows in between",
			in: "prefix,destination,rate_per_minute,connection_fee,billing,effective_from\n" + // 1
				"+34,Spain - Fixed,0.0045,0,60/1,\n" + // 2
				"\n" + // 3
				"+346,\"Spain -\r\n Mobile\",0.0125,0,60/1,\n" + // 4-5: line break in a name
				"+347,Spain - Mobile,0.0125,0,60/1,\n" + // 6
				"+44,\"UK, multi\n\nline\",x,0,60/1,\n" + // 7-9: field errors on their own lines
				"\n\n" + // 10-11
				"+4x,UK,0.01,0,60/1,2026-01-01\n" + // 12
				",,,,,\n" + // 13: spreadsheet filler
				"+49,Germany,0.006,-0.1,60/1,2026-01-01\n" + // 14
				"+49,Germany,0.006,0,61,\n" + // 15
				"+33,France,0.0055,0,60/1,tomorrow\n" + // 16
				"+34,Spain - Fixed,0.0045,0,60/1,\n", // 17: duplicate of line 2
			want: []errKey{
				{4, "destination", ReasonBadDestination},
				{7, "destination", ReasonBadDestination},
				{9, "rate_per_minute", ReasonBadMoney},
				{12, "prefix", ReasonBadPrefix},
				{14, "connection_fee", ReasonBadMoney},
				{15, "billing", ReasonBadBilling},
				{16, "effective_from", ReasonBadDate},
				{17, "", ReasonDuplicateRate},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := mustParse(t, tc.in, tc.opt)
			if got := keys(res.Errors); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("errors:\n got %v\nwant %v\n%v", got, tc.want, res.Errors)
			}
			if res.ErrorCount != len(tc.want) {
				t.Fatalf("ErrorCount = %d, want %d", res.ErrorCount, len(tc.want))
			}
		})
	}
}

func TestParseAccepts(t *testing.T) {
	t.Parallel()
	jan := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	spain := Rate{Prefix: "34", Destination: "Spain, Fixed", RatePerMinuteMicros: 4500, IncrementSeconds: 1}
	tests := []struct {
		name string
		in   string
		want []Rate
	}{
		{
			name: "minimal with quoted comma",
			in:   hdr + "+34,\"Spain, Fixed\",0.0045\n",
			want: []Rate{spain},
		},
		{
			name: "BOM",
			in:   "\uFEFF" + hdr + "+34,\"Spain, Fixed\",0.0045\n",
			want: []Rate{spain},
		},
		{
			name: "CRLF",
			in:   "prefix,destination,rate_per_minute\r\n+34,\"Spain, Fixed\",0.0045\r\n\r\n",
			want: []Rate{spain},
		},
		{
			name: "semicolon with BOM, CRLF and a comma in a name",
			in:   "\uFEFFprefix;destination;rate_per_minute;billing\r\n34;Spain, Fixed;0.0045;60/60\r\n",
			want: []Rate{{Prefix: "34", Destination: "Spain, Fixed", RatePerMinuteMicros: 4500, MinSeconds: 60, IncrementSeconds: 60}},
		},
		{
			name: "header case, spaces and order; spaces before a quoted field",
			in:   " Rate_Per_Minute ,DESTINATION, Prefix\n 0.0045 , \"Spain, Fixed\", 34 \n",
			want: []Rate{spain},
		},
		{
			name: "billing column",
			in: "prefix,destination,rate_per_minute,billing\n" +
				"1,A,0.1,60/60\n2,A,0.1,30/6\n3,A,0.1,1/1\n4,A,0.1,0/60\n5,A,0.1,\n",
			want: []Rate{
				{Prefix: "1", Destination: "A", RatePerMinuteMicros: 100_000, MinSeconds: 60, IncrementSeconds: 60},
				{Prefix: "2", Destination: "A", RatePerMinuteMicros: 100_000, MinSeconds: 30, IncrementSeconds: 6},
				{Prefix: "3", Destination: "A", RatePerMinuteMicros: 100_000, MinSeconds: 1, IncrementSeconds: 1},
				{Prefix: "4", Destination: "A", RatePerMinuteMicros: 100_000, MinSeconds: 0, IncrementSeconds: 60},
				{Prefix: "5", Destination: "A", RatePerMinuteMicros: 100_000, MinSeconds: 0, IncrementSeconds: 1},
			},
		},
		{
			name: "all columns and date forms",
			in: "prefix,destination,rate_per_minute,connection_fee,min_seconds,increment_seconds,effective_from\n" +
				"1,A,0.1,0.05,30,6,2026-01-01\n" +
				"2,A,0.1,,,,2026-01-01 00:00:00\n" +
				"3,A,0.1,0,0,1,2026-01-01T00:00:00Z\n" +
				"4,A,0.1,0,0,1,2026-01-01T01:00:00.5+01:00\n" +
				"5,A,0.1,0,0,1,\n",
			want: []Rate{
				{Prefix: "1", Destination: "A", RatePerMinuteMicros: 100_000, ConnectionFeeMicros: 50_000, MinSeconds: 30, IncrementSeconds: 6, EffectiveFrom: jan},
				{Prefix: "2", Destination: "A", RatePerMinuteMicros: 100_000, IncrementSeconds: 1, EffectiveFrom: jan},
				{Prefix: "3", Destination: "A", RatePerMinuteMicros: 100_000, IncrementSeconds: 1, EffectiveFrom: jan},
				{Prefix: "4", Destination: "A", RatePerMinuteMicros: 100_000, IncrementSeconds: 1, EffectiveFrom: jan.Add(500 * time.Millisecond)},
				{Prefix: "5", Destination: "A", RatePerMinuteMicros: 100_000, IncrementSeconds: 1},
			},
		},
		{
			name: "blank and filler rows are skipped",
			in:   "\n" + hdr + "\n,,\n , , \n+34,\"Spain, Fixed\",0.0045\n\n",
			want: []Rate{spain},
		},
		{
			name: "header only",
			in:   hdr,
			want: nil,
		},
		{
			name: "UTF-8 destination at the length limit",
			in:   hdr + "225,\"" + strings.Repeat("ô", MaxDestinationRunes) + "\",0\n",
			want: []Rate{{Prefix: "225", Destination: strings.Repeat("ô", MaxDestinationRunes), IncrementSeconds: 1}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := mustParse(t, tc.in, Options{})
			if res.ErrorCount != 0 {
				t.Fatalf("unexpected errors: %v", res.Errors)
			}
			if !reflect.DeepEqual(res.Rates, tc.want) {
				t.Fatalf("rates:\n got %+v\nwant %+v", res.Rates, tc.want)
			}
		})
	}
}

func TestParseMaxErrors(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString(hdr)
	for i := range 50 {
		fmt.Fprintf(&b, "%d,A,bad\n", i)
	}
	tests := []struct {
		name      string
		opt       Options
		wantKept  int
		wantCount int
	}{
		{name: "capped", opt: Options{MaxErrors: 3}, wantKept: 3, wantCount: 50},
		{name: "default keeps all", opt: Options{}, wantKept: 50, wantCount: 50},
		{name: "cap above count", opt: Options{MaxErrors: 100}, wantKept: 50, wantCount: 50},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := mustParse(t, b.String(), tc.opt)
			if len(res.Errors) != tc.wantKept || res.ErrorCount != tc.wantCount {
				t.Fatalf("kept %d of %d errors, want %d of %d", len(res.Errors), res.ErrorCount, tc.wantKept, tc.wantCount)
			}
			for i, e := range res.Errors {
				if e.Line != i+2 {
					t.Fatalf("error %d on line %d, want %d (line order)", i, e.Line, i+2)
				}
			}
		})
	}
}

func TestParseIOError(t *testing.T) {
	t.Parallel()
	boom := errors.New("connection reset")
	tests := []struct {
		name string
		r    io.Reader
	}{
		{name: "at once", r: iotest.ErrReader(boom)},
		{name: "after the header", r: io.MultiReader(strings.NewReader(hdr+"34,A,0.1\n"), iotest.ErrReader(boom))},
		{name: "mid-file", r: io.MultiReader(strings.NewReader(hdr+strings.Repeat("34,A,0.1\n", 20000)), iotest.ErrReader(boom))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res, err := Parse(tc.r, Options{})
			if !errors.Is(err, boom) || res != nil {
				t.Fatalf("Parse = %v, %v; want nil and an error wrapping %v", res, err, boom)
			}
		})
	}
}

// TestParseReaderShapes checks that how bytes arrive does not change the
// result: the delimiter sniffing peeks at a buffer.
func TestParseReaderShapes(t *testing.T) {
	t.Parallel()
	in := "\uFEFFprefix;destination;rate_per_minute\r\n34;Spain, Fixed;0.0045\r\n35;X;bad\r\n"
	want := mustParse(t, in, Options{})
	tests := []struct {
		name string
		r    io.Reader
	}{
		{name: "one byte at a time", r: iotest.OneByteReader(strings.NewReader(in))},
		{name: "EOF with data", r: iotest.DataErrReader(strings.NewReader(in))},
		{name: "half reads", r: iotest.HalfReader(strings.NewReader(in))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := Parse(tc.r, Options{})
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("Parse = %+v, %v; want %+v", got, err, want)
			}
		})
	}
}

func TestRowErrorError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		e    RowError
		want string
	}{
		{name: "column", e: RowError{Line: 7, Column: "rate_per_minute", Reason: ReasonBadMoney, Message: `"x": bad`},
			want: `line 7: rate_per_minute: "x": bad`},
		{name: "row", e: RowError{Line: 3, Reason: ReasonDuplicateRate, Message: "dup"}, want: "line 3: dup"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := tc.e.Error(); got != tc.want {
				t.Fatalf("Error() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestMessagesStayShort(t *testing.T) {
	t.Parallel()
	junk := strings.Repeat("\x01\xff€", 200)
	tests := []struct {
		name string
		in   string
	}{
		{name: "junk everywhere", in: "prefix,destination,rate_per_minute,connection_fee,billing,effective_from\n" +
			strings.Repeat(junk+",", 5) + junk + "\n"},
		{name: "junk column name", in: hdr[:len(hdr)-1] + "," + junk + "\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := mustParse(t, tc.in, Options{}) // checks message lengths
			if res.ErrorCount == 0 {
				t.Fatal("expected errors")
			}
		})
	}
}

func TestExampleFile(t *testing.T) {
	t.Parallel()
	f, err := os.Open("testdata/example.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := Parse(f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if res.ErrorCount != 0 {
		t.Fatalf("example.csv has errors: %v", res.Errors)
	}
	byPrefix := make(map[string][]Rate)
	for _, rt := range res.Rates {
		if strings.HasPrefix(rt.Prefix, "88") {
			t.Errorf("example.csv must not rate 88*: %+v", rt)
		}
		byPrefix[rt.Prefix] = append(byPrefix[rt.Prefix], rt)
	}
	tests := []struct {
		prefix string
		want   Rate
	}{
		{"1", Rate{Prefix: "1", Destination: "United States, Canada", RatePerMinuteMicros: 4000, MinSeconds: 6, IncrementSeconds: 6}},
		{"34", Rate{Prefix: "34", Destination: "Spain - Fixed", RatePerMinuteMicros: 4500, MinSeconds: 60, IncrementSeconds: 1}},
		{"347", Rate{Prefix: "347", Destination: "Spain - Mobile", RatePerMinuteMicros: 12500, MinSeconds: 60, IncrementSeconds: 1}},
		{"447", Rate{Prefix: "447", Destination: "United Kingdom - Mobile", RatePerMinuteMicros: 15000, MinSeconds: 1, IncrementSeconds: 1}},
		{"52", Rate{Prefix: "52", Destination: "Mexico - Fixed", RatePerMinuteMicros: 9000, ConnectionFeeMicros: 10000, MinSeconds: 60, IncrementSeconds: 60}},
		{"5511", Rate{Prefix: "5511", Destination: "Brazil - São Paulo", RatePerMinuteMicros: 10500, MinSeconds: 30, IncrementSeconds: 6,
			EffectiveFrom: time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC)}},
	}
	for _, tc := range tests {
		t.Run(tc.prefix, func(t *testing.T) {
			t.Parallel()
			got := byPrefix[tc.prefix]
			if len(got) != 1 || !reflect.DeepEqual(got[0], tc.want) {
				t.Fatalf("prefix %s: got %+v, want %+v", tc.prefix, got, tc.want)
			}
		})
	}
	if got := len(byPrefix["346"]); got != 2 {
		t.Errorf("prefix 346 has %d versions, want 2", got)
	}
	if len(res.Rates) != 15 {
		t.Errorf("got %d rates, want 15", len(res.Rates))
	}
}

// TestParseDuplicatesAtScale checks the duplicate index beyond its initial
// size and the effective_from cache beyond its bound.
func TestParseDuplicatesAtScale(t *testing.T) {
	t.Parallel()
	day0 := time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		// row i of n unique rows, then the duplicate rows appended after them
		unique func(i int) string
		dups   []string
		n      int
		// lines (of the first copies) the duplicates should name
		wantFirst []int
	}{
		{
			name:      "many prefixes",
			n:         5000,
			unique:    func(i int) string { return fmt.Sprintf("%d,A,0.1,", 100000+i) },
			dups:      []string{"100000,A,0.1,", "+104999,A,0.1,", "102500,A,0.1,"},
			wantFirst: []int{2, 5001, 2502},
		},
		{
			name: "one prefix, many dates",
			n:    3000,
			unique: func(i int) string {
				return "34,A,0.1," + day0.AddDate(0, 0, i).Format(time.DateOnly)
			},
			// Same instants written differently, after the text cache was cleared.
			dups:      []string{"34,A,0.1,2000-01-01T00:00:00Z", "34,A,0.1,2000-01-11 00:00:00", "34,A,0.1,2008-03-18T01:00:00+01:00"},
			wantFirst: []int{2, 12, 3001},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var b strings.Builder
			b.WriteString("prefix,destination,rate_per_minute,effective_from\n")
			for i := range tc.n {
				b.WriteString(tc.unique(i) + "\n")
			}
			for _, d := range tc.dups {
				b.WriteString(d + "\n")
			}
			res := mustParse(t, b.String(), Options{})
			if len(res.Rates) != tc.n || res.ErrorCount != len(tc.dups) {
				t.Fatalf("got %d rates and %d errors, want %d and %d: %v", len(res.Rates), res.ErrorCount, tc.n, len(tc.dups), res.Errors)
			}
			for i, e := range res.Errors {
				wantLine := tc.n + 2 + i
				wantMsg := fmt.Sprintf("already defined on line %d", tc.wantFirst[i])
				if e.Reason != ReasonDuplicateRate || e.Line != wantLine || !strings.Contains(e.Message, wantMsg) {
					t.Errorf("error %d = %v, want DUPLICATE_RATE on line %d mentioning %q", i, e, wantLine, wantMsg)
				}
			}
		})
	}
}
