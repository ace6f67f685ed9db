package dialer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"
)

// The recipient list format (the automated dialing spec's CSV files):
//
//	TelNumber,FullName,CustomerCode
//	2132458767|2145602412,Henry Case,0023
//	1140637865|1156984628|1146120456,Peter Riviera,0156
//
// The first line names the columns (kept as the list's columns). The
// first column holds the record's numbers separated by "|", tried in that
// order and then round again; each is normalized to E.164 with the
// campaign's default country (Normalize; a campaign without one takes
// numbers written with + and their country code only). The other columns
// are the record's fields, by name (they travel with the call as
// variables), except a column named exactly "*Schedule*", which holds
// UNIX_TIMESTAMP:EXTENSION (e.g. 1298635200:1101; the extension may be
// empty; an empty cell is no schedule): the record is not dialed before
// then.
//
// The file is read as it arrives, one row at a time: memory does not grow
// with its size. Fields are separated by commas and quoted per RFC 4180
// (a quoted field may hold commas, line breaks and "" for a quote). A
// UTF-8 byte order mark is ignored, lines may end in LF or CRLF, and blank
// lines (or lines of empty fields, which spreadsheets leave behind) are
// skipped. Lines are counted in the file, the header being line 1; a row
// with a quoted line break spans several lines and is reported by the line
// it starts on.
//
// A header that cannot be read (no header, an empty or repeated column
// name, more than MaxListColumns columns) refuses the whole file. A bad
// row is refused alone and reported with its line: a column count other
// than the header's, no number, an invalid number, more than
// MaxRecordNumbers numbers, a bad *Schedule*, bytes that are not UTF-8,
// a NUL byte, a broken quote, or more than MaxRowBytes of text.
//
// An invalid alternate number refuses the whole row rather than being
// dropped: a record silently dialed on fewer numbers than its file lists
// is harder to notice, and to fix, than a refused row named in the
// import's errors. Empty alternates (a trailing "|") lose nothing and are
// ignored. Spaces around numbers are trimmed; the other fields are kept as
// they are.

// Limits of a recipient list.
const (
	MaxListRows      = 10_000_000 // rows of a file, good and bad
	MaxListColumns   = 200
	MaxRecordNumbers = 20
	MaxRowBytes      = 64 << 10 // a row's text, without its line ending
	MaxRowErrors     = 1000     // bad rows reported by an import (all are counted)
)

// ScheduleColumn names the column that schedules a record.
const ScheduleColumn = "*Schedule*"

// maxScheduleUnix is 9999-12-31T23:59:59Z: a later timestamp is a mistake
// (often milliseconds given for seconds).
const maxScheduleUnix = 253402300799

// errTooManyRows stops a file longer than the reader's row limit.
var errTooManyRows = errors.New("too many rows")

// headerError refuses a whole file: its header cannot be used.
type headerError struct {
	Line int64
	Msg  string
}

func (e *headerError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// listRow is a data row of a list file: a record to import, or, when Err
// is set, a refused row.
type listRow struct {
	Line        int64    // where the row starts in the file (the header is line 1)
	Raw         string   // the row's text as in the file, without its line ending
	Numbers     []string // E.164, in the file's order
	Values      []string // the fields' values, in the order of names
	ScheduleAt  time.Time
	ScheduleExt string
	Err         string // why the row is refused; "" for a good row

	names []string // the fields' names (the reader's)
}

// Fields returns the row's fields by name.
func (r *listRow) Fields() map[string]string {
	m := make(map[string]string, len(r.names))
	for i, n := range r.names {
		m[n] = r.Values[i]
	}
	return m
}

// appendFieldsJSON appends the row's fields as a JSON object.
func (r *listRow) appendFieldsJSON(dst []byte) []byte {
	dst = append(dst, '{')
	for i, n := range r.names {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, n)
		dst = append(dst, ':')
		dst = appendJSONString(dst, r.Values[i])
	}
	return append(dst, '}')
}

// appendJSONString appends s, valid UTF-8 without NUL, as a JSON string.
func appendJSONString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// listReader reads a list file row by row.
type listReader struct {
	br      *bufio.Reader
	country string
	maxRows int64

	columns  []string // the header
	names    []string // the fields' columns: not the numbers', not *Schedule*
	fieldCol []int    // their indexes in a row
	schedCol int      // index of *Schedule*, -1 if none

	line int64 // lines read so far
	rows int64 // data rows read so far

	// The current row: its text, its fields' bytes one after the other,
	// and where each field ends in buf.
	raw  []byte
	buf  []byte
	ends []int
}

// newListReader reads the header of a list file. Numbers without a
// country code are read as numbers of country ("" : none accepted). It
// returns a *headerError when the header is unusable, or the reader's
// error.
func newListReader(r io.Reader, country string, maxRows int64) (*listReader, error) {
	lr := &listReader{br: bufio.NewReaderSize(r, MaxRowBytes+2), country: country, maxRows: maxRows, schedCol: -1}
	if b, _ := lr.br.Peek(3); bytes.Equal(b, []byte("\xef\xbb\xbf")) {
		_, _ = lr.br.Discard(3)
	}
	var sc scanned
	for {
		var err error
		sc, err = lr.scanRow()
		if err == io.EOF {
			return nil, &headerError{Line: 1, Msg: "the file is empty: its first line must name the columns, the numbers' first"}
		}
		if err != nil {
			return nil, err
		}
		if !sc.blank() {
			break
		}
	}
	bad := func(format string, a ...any) error {
		return &headerError{Line: sc.start, Msg: "header: " + fmt.Sprintf(format, a...)}
	}
	switch {
	case sc.tooLong:
		return nil, bad("longer than %d KiB", MaxRowBytes>>10)
	case !utf8.Valid(lr.raw) || bytes.IndexByte(lr.raw, 0) >= 0:
		return nil, bad("not UTF-8 text: save the file as UTF-8")
	case sc.problem != "":
		return nil, bad("%s", sc.problem)
	case len(lr.ends) > MaxListColumns:
		return nil, bad("%d columns: at most %d", len(lr.ends), MaxListColumns)
	}
	all := string(lr.buf)
	seen := make(map[string]int, len(lr.ends))
	prev := 0
	for i, end := range lr.ends {
		name := strings.TrimSpace(all[prev:end])
		prev = end
		if name == "" {
			return nil, bad("column %d has no name", i+1)
		}
		if j, dup := seen[name]; dup {
			return nil, bad("columns %d and %d are both named %q", j+1, i+1, name)
		}
		seen[name] = i
		lr.columns = append(lr.columns, name)
		switch {
		case i == 0:
		case name == ScheduleColumn:
			lr.schedCol = i
		default:
			lr.names = append(lr.names, name)
			lr.fieldCol = append(lr.fieldCol, i)
		}
	}
	if lr.columns[0] == ScheduleColumn {
		return nil, bad("the first column holds the numbers, it cannot be %s", ScheduleColumn)
	}
	return lr, nil
}

// Columns returns the header's column names, the numbers' first.
func (lr *listReader) Columns() []string { return lr.columns }

// Next returns the next data row, good or refused; io.EOF after the last;
// errTooManyRows past the reader's limit; or the underlying reader's error.
func (lr *listReader) Next() (listRow, error) {
	sc, err := lr.scanData()
	if err != nil {
		return listRow{}, err
	}
	return lr.check(sc, lr.raw, lr.buf, lr.ends), nil
}

// scanData scans the next data row (not blank) into raw, buf and ends.
func (lr *listReader) scanData() (scanned, error) {
	for {
		sc, err := lr.scanRow()
		if err != nil {
			return sc, err
		}
		if sc.blank() {
			continue
		}
		lr.rows++
		if lr.rows > lr.maxRows {
			return sc, errTooManyRows
		}
		return sc, nil
	}
}

// Batches of rows checked together by readAll: at most this many rows or
// bytes (so that memory stays bounded whatever the rows' size).
const (
	checkBatchRows  = 512
	checkBatchBytes = 1 << 20
)

// readAll reads the rest of the file and sends its rows, good and
// refused, in the file's order and in batches, to out. Checking rows
// (normalizing numbers: most of the parser's time) is spread over
// workers goroutines. It returns nil at the end of the file, or what
// stopped it: errTooManyRows, the reader's error, ctx's.
func (lr *listReader) readAll(ctx context.Context, workers int, out chan<- []listRow) error {
	type scannedRow struct {
		sc       scanned
		raw, buf []byte
		ends     []int
	}
	type job struct {
		rows []scannedRow
		done chan []listRow // capacity 1: a worker never waits
	}
	jobs := make(chan job)
	order := make(chan chan []listRow, 2*workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for j := range jobs {
				res := make([]listRow, len(j.rows))
				for i, r := range j.rows {
					res[i] = lr.check(r.sc, r.raw, r.buf, r.ends)
				}
				j.done <- res
			}
		})
	}
	// The sequencer hands the batches on in the order they were read.
	wg.Go(func() {
		for done := range order {
			res := <-done
			select {
			case out <- res:
			case <-ctx.Done():
			}
		}
	})
	defer wg.Wait()
	defer close(order)
	defer close(jobs)

	var (
		batch []scannedRow
		arena []byte // the batch's rows' bytes: rows keep slices of it
		ints  []int
	)
	submit := func() error {
		j := job{rows: batch, done: make(chan []listRow, 1)}
		batch, arena, ints = nil, nil, nil
		// The job first: a batch in order is always done by a worker.
		select {
		case jobs <- j:
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case order <- j.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		return nil
	}
	for {
		sc, err := lr.scanData()
		if err == io.EOF {
			if len(batch) > 0 {
				return submit()
			}
			return nil
		}
		if err != nil {
			return err
		}
		if arena == nil {
			arena = make([]byte, 0, min(checkBatchBytes, 64<<10))
		}
		r := scannedRow{sc: sc}
		n := len(arena)
		arena = append(arena, lr.raw...)
		r.raw = arena[n:len(arena):len(arena)]
		n = len(arena)
		arena = append(arena, lr.buf...)
		r.buf = arena[n:len(arena):len(arena)]
		n = len(ints)
		ints = append(ints, lr.ends...)
		r.ends = ints[n:len(ints):len(ints)]
		batch = append(batch, r)
		if len(batch) == checkBatchRows || len(arena) >= checkBatchBytes {
			if err := submit(); err != nil {
				return err
			}
		}
	}
}

// check checks a scanned row (its text, its fields' bytes and their ends)
// and turns it into a listRow. It only reads lr's header: rows can be
// checked concurrently.
func (lr *listReader) check(sc scanned, raw, buf []byte, ends []int) listRow {
	row := listRow{Line: sc.start, names: lr.names}
	switch {
	case sc.tooLong:
		row.Err = fmt.Sprintf("the row is longer than %d KiB", MaxRowBytes>>10)
		if sc.unclosed {
			row.Err += " (a quote is not closed: the rest of the file was read as one field)"
		}
		return row
	case !utf8.Valid(raw):
		row.Err = fmt.Sprintf("not UTF-8 text (byte %d): save the file as UTF-8", invalidUTF8At(raw)+1)
		return row
	case bytes.IndexByte(raw, 0) >= 0:
		row.Err = "the row holds a NUL byte"
		return row
	case sc.problem != "":
		row.Err = sc.problem
		return row
	case len(ends) != len(lr.columns):
		row.Err = fmt.Sprintf("%d columns, the header has %d", len(ends), len(lr.columns))
		return row
	}
	// One string for every field: the values are slices of it.
	all := string(buf)
	field := func(i int) string {
		start := 0
		if i > 0 {
			start = ends[i-1]
		}
		return all[start:ends[i]]
	}
	numbers, msg := lr.numbers(field(0))
	if msg != "" {
		row.Err = msg
		return row
	}
	if lr.schedCol > 0 {
		at, ext, msg := parseSchedule(field(lr.schedCol))
		if msg != "" {
			row.Err = msg
			return row
		}
		row.ScheduleAt, row.ScheduleExt = at, ext
	}
	row.Numbers = numbers
	row.Values = make([]string, len(lr.fieldCol))
	for i, c := range lr.fieldCol {
		row.Values[i] = field(c)
	}
	row.Raw = string(raw)
	return row
}

// numbers reads the numbers' column; msg says why it is refused.
func (lr *listReader) numbers(col string) (numbers []string, msg string) {
	total := strings.Count(col, "|") + 1
	k := 0
	for part := range strings.SplitSeq(col, "|") {
		k++
		p := strings.TrimSpace(part)
		if p == "" {
			continue
		}
		if len(numbers) == MaxRecordNumbers {
			return nil, fmt.Sprintf("more than %d numbers", MaxRecordNumbers)
		}
		n, err := normalizeIn(p, lr.country)
		if err != nil {
			if total == 1 {
				return nil, err.Error()
			}
			return nil, fmt.Sprintf("number %d of %d: %v", k, total, err)
		}
		numbers = append(numbers, n)
	}
	if len(numbers) == 0 {
		return nil, fmt.Sprintf("no number in the first column (%s)", lr.columns[0])
	}
	return numbers, ""
}

// parseSchedule reads a *Schedule* value, UNIX_TIMESTAMP:EXTENSION; empty
// is no schedule.
func parseSchedule(v string) (at time.Time, ext string, msg string) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, "", ""
	}
	bad := func(why string) (time.Time, string, string) {
		return time.Time{}, "", fmt.Sprintf("%s %q: %s (UNIX_TIMESTAMP:EXTENSION, e.g. 1298635200:1101)", ScheduleColumn, v, why)
	}
	ts, ext, ok := strings.Cut(v, ":")
	if !ok {
		return bad("no colon")
	}
	if ts == "" || strings.Trim(ts, "0123456789") != "" {
		return bad("the timestamp is not a number of seconds")
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sec > maxScheduleUnix {
		return bad("the timestamp is after the year 9999 (milliseconds? it is in seconds)")
	}
	if len(ext) > 64 {
		return bad("the extension is longer than 64 characters")
	}
	if i := strings.IndexFunc(ext, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }); i >= 0 {
		return bad("the extension holds a space or a control character")
	}
	return time.Unix(sec, 0).UTC(), ext, ""
}

// normalizeIn is Normalize for the numbers of lists and do-not-call lists:
// without a country, a number must be written with "+" and its country
// code. (Normalize would read 2132458767 as +2132458767, in Algeria: a
// national number silently read as another country's is dialed there, or
// not blocked.)
func normalizeIn(number, country string) (string, error) {
	if country == "" && !strings.HasPrefix(strings.TrimSpace(number), "+") {
		return "", fmt.Errorf("number %q: write it in E.164, with + and the country code (the campaign has no default_country)", number)
	}
	return Normalize(number, country)
}

func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}

// scanned describes the row scanRow read into raw, buf and ends.
type scanned struct {
	start    int64  // its first line
	tooLong  bool   // over MaxRowBytes: raw, buf and ends are empty
	unclosed bool   // it ends inside a quoted field (end of the file)
	problem  string // a quoting error
	empty    bool   // every field is empty or spaces
}

func (s scanned) blank() bool { return !s.tooLong && s.empty }

// States of the CSV scanner.
const (
	stFieldStart = iota
	stUnquoted
	stQuoted
	stQuoteEnd // a quote inside a quoted field: its end, or the first of ""
)

// scanRow reads one row (until a line break outside quotes, or the end of
// the file) into raw, buf and ends. It returns io.EOF when no byte is left.
func (lr *listReader) scanRow() (scanned, error) {
	lr.raw, lr.buf, lr.ends = lr.raw[:0], lr.buf[:0], lr.ends[:0]
	sc := scanned{start: lr.line + 1}
	state := stFieldStart
	read := false
	fieldStart := 0 // where the current field starts in buf
	for {
		chunk, err := lr.br.ReadSlice('\n')
		if err != nil && err != bufio.ErrBufferFull && err != io.EOF {
			return sc, err
		}
		read = read || len(chunk) > 0
		nl := len(chunk) > 0 && chunk[len(chunk)-1] == '\n'
		if nl {
			lr.line++
		}
		if !sc.tooLong && len(lr.raw)+len(chunk) > MaxRowBytes+2 {
			// Keep reading to the row's end, remembering only the quoting.
			sc.tooLong = true
			lr.raw, lr.buf, lr.ends = lr.raw[:0], lr.buf[:0], lr.ends[:0]
		}
		ended := false
		if sc.tooLong {
			state, ended = skipChunk(chunk, state, nl)
		} else {
			lr.raw = append(lr.raw, chunk...)
			for i, c := range chunk {
				switch state {
				case stFieldStart, stUnquoted:
					switch {
					case c == ',':
						lr.ends = append(lr.ends, len(lr.buf))
						fieldStart = len(lr.buf)
						state = stFieldStart
					case c == '\n':
						ended = true
					case c == '"' && state == stFieldStart:
						state = stQuoted
					case c == '"':
						if sc.problem == "" {
							sc.problem = `a quote inside an unquoted field: quote the whole field and double the quote ("")`
						}
						lr.buf = append(lr.buf, c)
					default:
						lr.buf = append(lr.buf, c)
						state = stUnquoted
					}
				case stQuoted:
					switch {
					case c == '"':
						state = stQuoteEnd
					case c == '\n' && len(lr.buf) > fieldStart && lr.buf[len(lr.buf)-1] == '\r':
						lr.buf[len(lr.buf)-1] = '\n' // CRLF in a field reads as LF
					default:
						lr.buf = append(lr.buf, c)
					}
				case stQuoteEnd:
					switch {
					case c == '"':
						lr.buf = append(lr.buf, '"')
						state = stQuoted
					case c == ',':
						lr.ends = append(lr.ends, len(lr.buf))
						fieldStart = len(lr.buf)
						state = stFieldStart
					case c == '\n':
						ended = true
					case c == '\r' && (i+1 < len(chunk) && chunk[i+1] == '\n' || i+1 == len(chunk) && err == io.EOF):
						// CRLF, or CR at the end of the file
					default:
						if sc.problem == "" {
							sc.problem = `text after a quoted field's closing quote: double a quote inside quotes ("")`
						}
						lr.buf = append(lr.buf, c)
						state = stUnquoted
					}
				}
			}
		}
		if !ended && err == bufio.ErrBufferFull {
			continue
		}
		if !ended && err == nil {
			continue // a line break inside quotes
		}
		if !ended && !read {
			return sc, io.EOF
		}
		// The end of the row: a line break outside quotes, or of the file.
		if !ended && state == stQuoted {
			sc.unclosed = true
			if sc.problem == "" {
				sc.problem = "a quoted field is not closed at the end of the file"
			}
		}
		if sc.tooLong {
			return sc, nil
		}
		lr.raw = bytes.TrimSuffix(lr.raw, []byte("\n"))
		lr.raw = bytes.TrimSuffix(lr.raw, []byte("\r"))
		if state == stUnquoted {
			lr.buf = bytes.TrimSuffix(lr.buf, []byte("\r"))
		}
		lr.ends = append(lr.ends, len(lr.buf))
		if len(lr.raw) > MaxRowBytes {
			sc.tooLong = true
			lr.raw, lr.buf, lr.ends = lr.raw[:0], lr.buf[:0], lr.ends[:0]
			return sc, nil
		}
		sc.empty = len(bytes.TrimSpace(lr.buf)) == 0
		return sc, nil
	}
}

// skipChunk follows the quoting of a row too long to keep, and says whether
// the chunk ends it (nl: the chunk ends with a line break).
func skipChunk(chunk []byte, state int, nl bool) (int, bool) {
	body := chunk
	if nl {
		body = chunk[:len(chunk)-1]
	}
	for _, c := range body {
		switch state {
		case stFieldStart:
			if c == '"' {
				state = stQuoted
			} else if c != ',' {
				state = stUnquoted
			}
		case stUnquoted:
			if c == ',' {
				state = stFieldStart
			}
		case stQuoted:
			if c == '"' {
				state = stQuoteEnd
			}
		case stQuoteEnd:
			switch c {
			case '"':
				state = stQuoted
			case ',':
				state = stFieldStart
			default:
				state = stUnquoted
			}
		}
	}
	return state, nl && state != stQuoted
}
