package dialer

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// readList reads a whole list file.
func readList(t *testing.T, r io.Reader, country string, maxRows int64) ([]string, []listRow, error) {
	t.Helper()
	lr, err := newListReader(r, country, maxRows)
	if err != nil {
		return nil, nil, err
	}
	var rows []listRow
	for {
		row, err := lr.Next()
		if err == io.EOF {
			return lr.Columns(), rows, nil
		}
		if err != nil {
			return lr.Columns(), rows, err
		}
		rows = append(rows, row)
	}
}

// wantRow is a row as a test expects it: err is a part of the refusal's
// message, or "" for a good row.
type wantRow struct {
	line    int64
	numbers []string
	fields  map[string]string
	raw     string // checked when set
	sched   time.Time
	ext     string
	err     string
}

const specList = `TelNumber,FullName,CustomerCode
2132458767|2145602412,Henry Case,0023
1140637865|1156984628|1146120456,Peter Riviera,0156
5198776500,Sally Shears,3278
2144786045,Willis Corto,0009
`

func TestCSVParse(t *testing.T) {
	t.Parallel()
	f := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	long := "+5521987654321," + strings.Repeat("x", MaxRowBytes)
	tests := []struct {
		name    string
		in      string
		country string
		columns []string
		rows    []wantRow
	}{
		{
			name: "the spec's example", in: specList, country: "BR",
			columns: []string{"TelNumber", "FullName", "CustomerCode"},
			rows: []wantRow{
				{line: 2, numbers: []string{"+552132458767", "+552145602412"}, fields: f("FullName", "Henry Case", "CustomerCode", "0023"), raw: "2132458767|2145602412,Henry Case,0023"},
				{line: 3, numbers: []string{"+551140637865", "+551156984628", "+551146120456"}, fields: f("FullName", "Peter Riviera", "CustomerCode", "0156")},
				{line: 4, numbers: []string{"+555198776500"}, fields: f("FullName", "Sally Shears", "CustomerCode", "3278")},
				{line: 5, numbers: []string{"+552144786045"}, fields: f("FullName", "Willis Corto", "CustomerCode", "0009")},
			},
		},
		{
			name: "BOM, CRLF, no final line break", in: "\ufeffnum,name\r\n+14155550100,Ann\r\n+14155550101,Bob",
			columns: []string{"num", "name"},
			rows: []wantRow{
				{line: 2, numbers: []string{"+14155550100"}, fields: f("name", "Ann"), raw: "+14155550100,Ann"},
				{line: 3, numbers: []string{"+14155550101"}, fields: f("name", "Bob"), raw: "+14155550101,Bob"},
			},
		},
		{
			name: "quoted fields: commas, line breaks, quotes; lines counted in the file",
			in:   "num,name,note\n\"+14155550100 | +14155550101\",\"Case, Henry\",\"one\r\ntwo\nthree\"\n+14155550102,\"say \"\"hi\"\"\",\"\"\n+14155550103,x,y\n",
			rows: []wantRow{
				{line: 2, numbers: []string{"+14155550100", "+14155550101"}, fields: f("name", "Case, Henry", "note", "one\ntwo\nthree"),
					raw: "\"+14155550100 | +14155550101\",\"Case, Henry\",\"one\r\ntwo\nthree\""},
				{line: 5, numbers: []string{"+14155550102"}, fields: f("name", `say "hi"`, "note", ""), raw: `+14155550102,"say ""hi""",""`},
				{line: 6, numbers: []string{"+14155550103"}, fields: f("name", "x", "note", "y")},
			},
		},
		{
			name: "missing and extra columns", in: "num,a,b\n+14155550100,1\n+14155550101,1,2,3\n+14155550102,1,2\n+14155550103,1,\n",
			rows: []wantRow{
				{line: 2, err: "2 columns, the header has 3"},
				{line: 3, err: "4 columns, the header has 3"},
				{line: 4, numbers: []string{"+14155550102"}, fields: f("a", "1", "b", "2")},
				{line: 5, numbers: []string{"+14155550103"}, fields: f("a", "1", "b", "")},
			},
		},
		{
			name: "numbers: spaces, empty alternates, bad ones refuse the row", country: "BR",
			in: "num,name\n 21 3245-8767 | (21) 4560-2412 |,a\n2132458767|12,b\n2132458767|abc|2145602412,c\n,d\n | ,e\n+14155550100,f\n00442079460000,g\n",
			rows: []wantRow{
				{line: 2, numbers: []string{"+552132458767", "+552145602412"}, fields: f("name", "a")},
				{line: 3, err: "number 2 of 2"},
				{line: 4, err: `number 2 of 3: "abc" is not a phone number of BR`},
				{line: 5, err: "no number in the first column (num)"},
				{line: 6, err: "no number"},
				{line: 7, numbers: []string{"+14155550100"}, fields: f("name", "f")},
				{line: 8, err: "number"}, // "00": E.164 is required after an international prefix
			},
		},
		{
			name: "no default country: E.164 only",
			in:   "num\n+552132458767\n+55abc\n0213245876\n2132458767\n+0213245876\n",
			rows: []wantRow{
				{line: 2, numbers: []string{"+552132458767"}, fields: f()},
				{line: 3, err: `number "+55abc": unexpected character 'a'`},
				{line: 4, err: "with + and the country code"},
				{line: 5, err: "with + and the country code"}, // not +213... (Algeria)
				{line: 6, err: "starts with a country code"},
			},
		},
		{
			name: "at most 20 numbers",
			in:   "num\n" + strings.Repeat("+14155550100|", 20) + "\n" + strings.Repeat("+14155550100|", 21) + "\n",
			rows: []wantRow{
				{line: 2, numbers: slices.Repeat([]string{"+14155550100"}, 20), fields: f()},
				{line: 3, err: "more than 20 numbers"},
			},
		},
		{
			name: "*Schedule*: good and bad",
			in: "num,*Schedule*,name\n+14155550100,1298635200:1101,a\n+14155550101,1298635200:,b\n+14155550102,,c\n+14155550103, 1298635200:default_1101 ,d\n" +
				"+14155550104,1298635200,e\n+14155550105,tomorrow:1101,f\n+14155550106,1298635200000:1101,g\n+14155550107,-5:1101,h\n+14155550108,1298635200:11 01,i\n",
			columns: []string{"num", "*Schedule*", "name"},
			rows: []wantRow{
				{line: 2, numbers: []string{"+14155550100"}, fields: f("name", "a"), sched: time.Date(2011, 2, 25, 12, 0, 0, 0, time.UTC), ext: "1101"},
				{line: 3, numbers: []string{"+14155550101"}, fields: f("name", "b"), sched: time.Unix(1298635200, 0).UTC()},
				{line: 4, numbers: []string{"+14155550102"}, fields: f("name", "c")},
				{line: 5, numbers: []string{"+14155550103"}, fields: f("name", "d"), sched: time.Unix(1298635200, 0).UTC(), ext: "default_1101"},
				{line: 6, err: "no colon"},
				{line: 7, err: "not a number of seconds"},
				{line: 8, err: "milliseconds"},
				{line: 9, err: "not a number of seconds"},
				{line: 10, err: "space"},
			},
		},
		{
			name: "blank lines and lines of empty fields are skipped",
			in:   "\n\nnum,a\n\n+14155550100,1\n\r\n,\n  ,  \n+14155550101,2\n\n",
			rows: []wantRow{
				{line: 5, numbers: []string{"+14155550100"}, fields: f("a", "1")},
				{line: 9, numbers: []string{"+14155550101"}, fields: f("a", "2")},
			},
		},
		{name: "header only", in: "num,name\n", columns: []string{"num", "name"}},
		{name: "header only, no line break", in: "num,name", columns: []string{"num", "name"}},
		{
			name: "not UTF-8, NUL",
			in:   "num,name\n+14155550100,Jos\xe9\n+14155550101,a\x00b\n+14155550102,José\n",
			rows: []wantRow{
				{line: 2, err: "not UTF-8 text (byte 17)"},
				{line: 3, err: "NUL"},
				{line: 4, numbers: []string{"+14155550102"}, fields: f("name", "José")},
			},
		},
		{
			name: "a row over 64 KiB, then the next one",
			in:   "num,name\n" + long + "\n+14155550100,a\n" + "+14155550101,\"" + strings.Repeat("y\n", MaxRowBytes/2) + "\"\n+14155550102,b\n",
			rows: []wantRow{
				{line: 2, err: "longer than 64 KiB"},
				{line: 3, numbers: []string{"+14155550100"}, fields: f("name", "a")},
				{line: 4, err: "longer than 64 KiB"},
				{line: 4 + MaxRowBytes/2 + 1, numbers: []string{"+14155550102"}, fields: f("name", "b")},
			},
		},
		{
			name: "a row of exactly 64 KiB",
			in:   "num,name\n+14155550100," + strings.Repeat("z", MaxRowBytes-len("+14155550100,")) + "\r\n",
			rows: []wantRow{{line: 2, numbers: []string{"+14155550100"}, fields: f("name", strings.Repeat("z", MaxRowBytes-len("+14155550100,")))}},
		},
		{
			name: "broken quotes",
			in:   "num,name\n+14155550100,5\" screen\n+14155550101,\"a\"b\n+14155550102,ok\n+14155550103,\"never closed\nstill\n",
			rows: []wantRow{
				{line: 2, err: "a quote inside an unquoted field"},
				{line: 3, err: "text after a quoted field's closing quote"},
				{line: 4, numbers: []string{"+14155550102"}, fields: f("name", "ok")},
				{line: 5, err: "not closed at the end of the file"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cols, rows, err := readList(t, strings.NewReader(tt.in), tt.country, MaxListRows)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if tt.columns != nil && !slices.Equal(cols, tt.columns) {
				t.Errorf("columns = %q, want %q", cols, tt.columns)
			}
			if len(rows) != len(tt.rows) {
				for _, r := range rows {
					t.Logf("line %d: %v %v %q", r.Line, r.Numbers, r.Fields(), r.Err)
				}
				t.Fatalf("%d rows, want %d", len(rows), len(tt.rows))
			}
			for i, w := range tt.rows {
				checkRow(t, rows[i], w)
			}
		})
	}
}

func checkRow(t *testing.T, got listRow, w wantRow) {
	t.Helper()
	if got.Line != w.line {
		t.Errorf("row at line %d, want line %d (%q)", got.Line, w.line, got.Err)
		return
	}
	if w.err != "" {
		if !strings.Contains(got.Err, w.err) {
			t.Errorf("line %d: error %q, want one containing %q", w.line, got.Err, w.err)
		}
		return
	}
	if got.Err != "" {
		t.Errorf("line %d refused: %s", w.line, got.Err)
		return
	}
	if !slices.Equal(got.Numbers, w.numbers) {
		t.Errorf("line %d: numbers %q, want %q", w.line, got.Numbers, w.numbers)
	}
	if !maps.Equal(got.Fields(), w.fields) {
		t.Errorf("line %d: fields %q, want %q", w.line, got.Fields(), w.fields)
	}
	if w.raw != "" && got.Raw != w.raw {
		t.Errorf("line %d: raw %q, want %q", w.line, got.Raw, w.raw)
	}
	if !got.ScheduleAt.Equal(w.sched) || got.ScheduleExt != w.ext {
		t.Errorf("line %d: schedule %v %q, want %v %q", w.line, got.ScheduleAt, got.ScheduleExt, w.sched, w.ext)
	}
}

func TestCSVHeaderErrors(t *testing.T) {
	t.Parallel()
	header := func(n int) string {
		names := make([]string, n)
		for i := range names {
			names[i] = fmt.Sprintf("c%d", i)
		}
		return strings.Join(names, ",") + "\n"
	}
	tests := []struct{ name, in, want string }{
		{"empty file", "", "line 1: the file is empty"},
		{"blank lines only", "\n\r\n\n", "the file is empty"},
		{"duplicate names", "num,name,Name,name\n", `line 1: header: columns 2 and 4 are both named "name"`},
		{"empty name", "num,,x\n", "line 1: header: column 2 has no name"},
		{"numbers column without a name", " ,x\n", "column 1 has no name"},
		{"too many columns", header(MaxListColumns + 1), "201 columns: at most 200"},
		{"schedule first", "*Schedule*,num\n", "the first column holds the numbers"},
		{"not UTF-8", "num,nom\xe9\n", "not UTF-8"},
		{"after blank lines", "\n\nnum,a,a\n", "line 3: header: columns 2 and 3"},
		{"broken quote", "num,\"a\"b\n", "text after a quoted field's closing quote"},
		{"too long", "num," + strings.Repeat("a", MaxRowBytes) + "\n", "longer than 64 KiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, _, err := readList(t, strings.NewReader(tt.in), "", MaxListRows)
			var he *headerError
			if !errors.As(err, &he) {
				t.Fatalf("err = %v, want a header error", err)
			}
			if !strings.Contains(he.Error(), tt.want) {
				t.Errorf("err = %q, want %q in it", he.Error(), tt.want)
			}
		})
	}
	// 200 columns are fine.
	got, _, err := readList(t, strings.NewReader(header(MaxListColumns)), "", MaxListRows)
	if err != nil || len(got) != MaxListColumns {
		t.Fatalf("200 columns: %d, %v", len(got), err)
	}
}

func TestCSVRowLimit(t *testing.T) {
	t.Parallel()
	in := "num\n+14155550100\n\n+14155550101\nbad\n+14155550102\n"
	_, rows, err := readList(t, strings.NewReader(in), "", 3)
	if !errors.Is(err, errTooManyRows) || len(rows) != 3 {
		t.Fatalf("%d rows, err %v; want 3 then errTooManyRows (bad rows count, blank lines do not)", len(rows), err)
	}
	if _, _, err := readList(t, strings.NewReader(in), "", 4); err != nil {
		t.Fatalf("4 rows with a limit of 4: %v", err)
	}
}

// TestCSVStreams checks the reader with a file that arrives a byte at a
// time (the chunks of a gRPC stream cut rows anywhere) and stops on a
// broken stream.
func TestCSVStreams(t *testing.T) {
	t.Parallel()
	_, rows, err := readList(t, iotest.OneByteReader(strings.NewReader(specList)), "BR", MaxListRows)
	if err != nil || len(rows) != 4 || rows[1].Numbers[2] != "+551146120456" {
		t.Fatalf("one byte at a time: %v %v", rows, err)
	}
	broken := io.MultiReader(strings.NewReader("num\n+14155550100\n+1415"), iotest.ErrReader(errors.New("stream broke")))
	_, rows, err = readList(t, broken, "", MaxListRows)
	if err == nil || err.Error() != "stream broke" || len(rows) != 1 {
		t.Fatalf("broken stream: %d rows, %v", len(rows), err)
	}
}

func TestCSVFieldsJSON(t *testing.T) {
	t.Parallel()
	row := listRow{names: []string{"a", `q"b`, "c"}, Values: []string{"x\ny\t\"z\"\\", "é\x01", ""}}
	got := string(row.appendFieldsJSON(nil))
	want := `{"a":"x\ny\t\"z\"\\","q\"b":"é\u0001","c":""}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

// FuzzCSVScan checks the hand-written scanner (it keeps each row's text
// and line, which encoding/csv does not give) against encoding/csv: on a
// file the standard reader accepts, both read the same fields, and rows
// start on the same lines.
func FuzzCSVScan(f *testing.F) {
	f.Add(specList)
	f.Add("a,b\r\n\"x,\"\"y\"\"\r\nz\",\r\n\n,\n\"\"\n")
	f.Add("a\n\"\r\n\"\n b \r\r\n")
	f.Add("0\r")
	f.Add("\"\"\"\"\r")
	f.Fuzz(func(t *testing.T, in string) {
		if strings.ContainsRune(in, 0) || strings.Contains(in, "\ufeff") || len(in) > MaxRowBytes {
			return
		}
		std := csv.NewReader(strings.NewReader(in))
		std.FieldsPerRecord = -1
		var want [][]string
		var wantLines []int
		for {
			rec, err := std.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				return // not a file both must accept
			}
			if strings.TrimSpace(strings.Join(rec, "")) == "" {
				continue // skipped as blank here
			}
			line, _ := std.FieldPos(0)
			want, wantLines = append(want, rec), append(wantLines, line)
		}
		lr := &listReader{br: bufio.NewReaderSize(strings.NewReader(in), MaxRowBytes+2)}
		var got [][]string
		for {
			sc, err := lr.scanRow()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if sc.blank() {
				continue
			}
			if sc.problem != "" {
				t.Fatalf("line %d: %s, which encoding/csv accepts", sc.start, sc.problem)
			}
			var rec []string
			prev := 0
			for _, end := range lr.ends {
				rec, prev = append(rec, string(lr.buf[prev:end])), end
			}
			if len(got) < len(wantLines) && int64(wantLines[len(got)]) != sc.start {
				// encoding/csv gives the line of the field's first byte: a
				// leading quoted line break only in the first field shifts it.
				if !strings.HasPrefix(rec[0], "\n") {
					t.Fatalf("row %d starts on line %d, encoding/csv says %d", len(got)+1, sc.start, wantLines[len(got)])
				}
			}
			got = append(got, rec)
		}
		if !slices.EqualFunc(got, want, slices.Equal) {
			t.Fatalf("fields differ:\n got  %q\n want %q", got, want)
		}
	})
}

// TestCSVReadAll checks that rows checked in parallel come out as Next
// reads them, in the file's order, and that a cancelled read stops.
func TestCSVReadAll(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString("num,*Schedule*,name\n")
	for i := range 5000 {
		switch {
		case i%7 == 0:
			fmt.Fprintf(&b, "21 3245-%04d|bad,,n%d\n", i, i)
		case i%500 == 0:
			fmt.Fprintf(&b, "21 3245-%04d,,\"%s\"\n", i, strings.Repeat("long ", 12_000)) // 60 KB: batches cut by bytes
		case i%11 == 0:
			fmt.Fprintf(&b, "21 3245-%04d,1298635200:%d,\"multi\nline\"\n", i, i)
		default:
			fmt.Fprintf(&b, "21 3245-%04d,,n%d\n", i, i)
		}
	}
	in := b.String()
	_, want, err := readList(t, strings.NewReader(in), "BR", MaxListRows)
	if err != nil {
		t.Fatal(err)
	}
	for _, workers := range []int{1, 3} {
		lr, err := newListReader(strings.NewReader(in), "BR", MaxListRows)
		if err != nil {
			t.Fatal(err)
		}
		out := make(chan []listRow)
		var got []listRow
		collected := make(chan struct{})
		go func() {
			defer close(collected)
			for batch := range out {
				got = append(got, batch...)
			}
		}()
		err = lr.readAll(context.Background(), workers, out)
		close(out)
		<-collected
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("%d workers: %d rows, want %d", workers, len(got), len(want))
		}
		for i := range want {
			if !reflect.DeepEqual(got[i], want[i]) {
				t.Fatalf("%d workers, row %d:\n got  %+v\n want %+v", workers, i, got[i], want[i])
			}
		}
	}

	// Too many rows, or a cancelled import, stop it; nothing is left running.
	lr, err := newListReader(strings.NewReader(in), "BR", 1000)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan []listRow, 100)
	if err := lr.readAll(context.Background(), 2, out); !errors.Is(err, errTooManyRows) {
		t.Fatalf("err = %v, want errTooManyRows", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	lr, err = newListReader(strings.NewReader(in), "BR", MaxListRows)
	if err != nil {
		t.Fatal(err)
	}
	stuck := make(chan []listRow) // nobody reads
	go func() {
		time.Sleep(50 * time.Millisecond)
		cancel()
	}()
	if err := lr.readAll(ctx, 2, stuck); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
