package tariffcsv

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Rate is one line of a tariff deck: the price of calls to numbers starting
// with Prefix, from EffectiveFrom on.
type Rate struct {
	Prefix              string    // digits only, 1..15; a leading '+' in the file is stripped
	Destination         string    // route name, e.g. "Spain - Mobile"; 1..100 runes, no control characters
	RatePerMinuteMicros int64     // 0..MaxMoneyMicros
	ConnectionFeeMicros int64     // 0..MaxMoneyMicros
	MinSeconds          int32     // 0..3600
	IncrementSeconds    int32     // 1..3600
	EffectiveFrom       time.Time // zero means always; Parse returns UTC
}

// Limits on Rate fields, enforced by Parse and Write.
const (
	MaxPrefixDigits     = 15
	MaxDestinationRunes = 100
	MaxMoneyMicros      = 1000 * MicrosPerUnit
	MaxSeconds          = 3600
	minYear, maxYear    = 1970, 9999 // earlier dates are typos, later ones unwritable in RFC 3339
)

// Column names as they appear in the header.
const (
	ColumnPrefix           = "prefix"
	ColumnDestination      = "destination"
	ColumnRatePerMinute    = "rate_per_minute"
	ColumnConnectionFee    = "connection_fee"
	ColumnMinSeconds       = "min_seconds"
	ColumnIncrementSeconds = "increment_seconds"
	ColumnBilling          = "billing"
	ColumnEffectiveFrom    = "effective_from"
)

// Reasons in RowError.Reason; stable so that callers (and UIs translating
// messages) can rely on them.
const (
	ReasonMissingColumn   = "MISSING_COLUMN"
	ReasonUnknownColumn   = "UNKNOWN_COLUMN"
	ReasonDuplicateColumn = "DUPLICATE_COLUMN"
	ReasonBadPrefix       = "BAD_PREFIX"
	ReasonBadDestination  = "BAD_DESTINATION"
	ReasonBadMoney        = "BAD_MONEY"
	ReasonMoneyOutOfRange = "MONEY_OUT_OF_RANGE"
	ReasonBadSeconds      = "BAD_SECONDS"
	ReasonBadBilling      = "BAD_BILLING"
	ReasonBadDate         = "BAD_DATE"
	ReasonDuplicateRate   = "DUPLICATE_RATE"
	ReasonWrongFieldCount = "WRONG_FIELD_COUNT"
	ReasonBadCSV          = "BAD_CSV"
	ReasonEmptyFile       = "EMPTY_FILE"
	ReasonTooManyRows     = "TOO_MANY_ROWS"
)

// RowError is one problem found in a file.
type RowError struct {
	Line    int    // 1-based line in the file; for a duplicate, the later line
	Column  string // column name; empty when about the row or file as a whole
	Reason  string // one of the Reason constants
	Message string // human readable: the offending value and what is expected
}

func (e RowError) Error() string {
	if e.Column == "" {
		return "line " + strconv.Itoa(e.Line) + ": " + e.Message
	}
	return "line " + strconv.Itoa(e.Line) + ": " + e.Column + ": " + e.Message
}

// Defaults for Options.
const (
	DefaultMaxRows   = 5_000_000
	DefaultMaxErrors = 1000
)

// Options tunes Parse.
type Options struct {
	MaxRows   int // data rows accepted before giving up; <= 0 means DefaultMaxRows
	MaxErrors int // RowErrors kept (counting goes on); <= 0 means DefaultMaxErrors
}

// Result is what Parse found.
type Result struct {
	// Rates are the rows that passed every check, in file order. Import
	// them only when ErrorCount is 0: a deck is applied all or nothing.
	Rates []Rate
	// Errors are the first MaxErrors problems, in line order.
	Errors []RowError
	// ErrorCount counts all problems, including those not kept in Errors.
	ErrorCount int
}

// column indexes the columns a file may have.
type column int

const (
	colPrefix column = iota
	colDestination
	colRatePerMinute
	colConnectionFee
	colMinSeconds
	colIncrementSeconds
	colBilling
	colEffectiveFrom
	numColumns
)

// columnNames is indexed by column; read-only.
var columnNames = [numColumns]string{
	ColumnPrefix, ColumnDestination, ColumnRatePerMinute, ColumnConnectionFee,
	ColumnMinSeconds, ColumnIncrementSeconds, ColumnBilling, ColumnEffectiveFrom,
}

// maxCachedDates bounds the effective_from text cache; decks use a handful
// of dates, so clearing it when full costs nothing in practice.
const maxCachedDates = 1024

// dateEntry is a parsed effective_from with its number among the distinct
// instants of the file (0 is "no date"), which lets the duplicate check
// compare 4 bytes instead of a time.
type dateEntry struct {
	t  time.Time
	id int32
}

// instant identifies a time independently of how it was written.
type instant struct {
	sec  int64
	nsec int32
}

// Parse reads a whole tariff CSV file (see the package documentation for the
// format). It does not stop at the first bad row but reports every one (up
// to opt.MaxErrors kept), so the user can fix the file in one go. Callers
// import Result.Rates only when Result.ErrorCount is 0. A non-nil error
// means reading r failed; problems with the content are in Result.Errors.
func Parse(r io.Reader, opt Options) (*Result, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	delim, err := sniff(br)
	if err != nil {
		return nil, fmt.Errorf("tariffcsv: reading header: %w", err)
	}
	cr := csv.NewReader(br) // reuses br: it is a large enough *bufio.Reader
	cr.Comma = delim
	cr.FieldsPerRecord = -1 // a short row is one row's error, not the file's
	cr.ReuseRecord = true
	cr.TrimLeadingSpace = true // hand-edited files write `34, "Spain, Mobile"`

	p := &parser{
		cr:           cr,
		res:          &Result{},
		maxRows:      opt.MaxRows,
		maxErrors:    opt.MaxErrors,
		destinations: make(map[string]string),
		dates:        make(map[string]dateEntry),
		dateIDs:      make(map[instant]int32),
	}
	if p.maxRows <= 0 {
		p.maxRows = DefaultMaxRows
	}
	if p.maxErrors <= 0 {
		p.maxErrors = DefaultMaxErrors
	}
	p.estimate = estimateRows(r, br, p.maxRows)
	if err := p.run(); err != nil {
		return nil, err
	}
	return p.res, nil
}

// sniff skips a UTF-8 byte order mark and picks the delimiter from the
// header line: European Excel writes ';' because ',' is its decimal mark.
func sniff(br *bufio.Reader) (rune, error) {
	head, err := br.Peek(br.Size())
	if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
		return 0, err
	}
	if bytes.HasPrefix(head, []byte("\uFEFF")) {
		if _, err := br.Discard(3); err != nil {
			return 0, err
		}
		head = head[3:]
	}
	head = bytes.TrimLeft(head, "\r\n")
	if i := bytes.IndexByte(head, '\n'); i >= 0 {
		head = head[:i]
	}
	if bytes.IndexByte(head, ';') >= 0 && bytes.IndexByte(head, ',') < 0 {
		return ';', nil
	}
	return ',', nil
}

// estimateRows guesses how many rows a file has when the reader knows its
// remaining size (in-memory readers, regular files), from the average line
// length of the buffered start. Sizing Rates and the duplicate index up
// front saves copying them as they grow, which on a million-row deck is a
// third of Parse's allocations and a good part of its time. 0 means unknown;
// a wrong guess only costs some growth or a final trim, and the guess never
// exceeds maxRows, the memory bound the caller chose anyway.
func estimateRows(r io.Reader, br *bufio.Reader, maxRows int) int {
	var size int64
	switch v := r.(type) {
	case interface{ Len() int }: // bytes.Reader, strings.Reader, bytes.Buffer
		size = int64(v.Len()) + int64(br.Buffered())
	case interface{ Stat() (fs.FileInfo, error) }: // *os.File
		fi, err := v.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			return 0
		}
		size = fi.Size()
	default:
		return 0
	}
	head, _ := br.Peek(br.Buffered())
	lines := bytes.Count(head, []byte{'\n'})
	if lines < 2 {
		return 0
	}
	rows := size / int64(len(head)/lines+1)
	return int(min(rows+rows/16+16, int64(maxRows)))
}

// sealEvery is how many accepted rates share one prefix string; see seal.
const sealEvery = 8192

type parser struct {
	cr        *csv.Reader
	res       *Result
	maxRows   int
	maxErrors int

	field   [numColumns]int // record index of each column; -1 when absent
	nfields int
	rows    int // data rows seen, blank ones excluded
	line    int // line where the current record starts

	estimate int // expected data rows, 0 if unknown; see estimateRows

	// destinations interns route names: decks repeat a few hundred names
	// over millions of rows, and validating a known name is needless.
	destinations map[string]string
	dates        map[string]dateEntry
	dateIDs      map[instant]int32 // never cleared: ids must stay stable
	claims       claims

	rates  []Rate
	sealed int // rates[:sealed] have their final Prefix; see seal
}

func (p *parser) run() error {
	rec, err := p.cr.Read()
	switch {
	case err == io.EOF:
		p.add(1, "", ReasonEmptyFile, "the file is empty; expected a header line such as "+
			"prefix,destination,rate_per_minute")
		return nil
	case err != nil:
		if !p.csvError(err) {
			return fmt.Errorf("tariffcsv: reading header: %w", err)
		}
		return nil
	}
	if !p.header(rec) {
		return nil
	}
	if p.estimate > 0 { // only now: a bad header reads no rows
		p.rates = make([]Rate, 0, p.estimate)
		p.claims.reserve(p.estimate)
	}
	for {
		rec, err := p.cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return fmt.Errorf("tariffcsv: reading after line %d: %w", p.line, err)
			}
			p.line = pe.StartLine
			if !p.countRow() {
				break
			}
			p.csvError(err)
			continue
		}
		p.line, _ = p.cr.FieldPos(0)
		if isBlank(rec) {
			continue
		}
		if !p.countRow() {
			break
		}
		p.row(rec)
	}
	p.finish()
	return nil
}

// csvError records a malformed-CSV error, reporting whether err was one.
func (p *parser) csvError(err error) bool {
	var pe *csv.ParseError
	if !errors.As(err, &pe) {
		return false
	}
	hint := "check the quoting"
	switch {
	case errors.Is(pe.Err, csv.ErrBareQuote):
		hint = `put the value in double quotes and double any " inside it`
	case errors.Is(pe.Err, csv.ErrQuote):
		hint = `a quoted value must end with " right before the delimiter; double any " inside it`
	}
	p.add(pe.StartLine, "", ReasonBadCSV, fmt.Sprintf("malformed CSV at line %d, column %d: %v; %s",
		pe.Line, pe.Column, pe.Err, hint))
	return true
}

// countRow counts a data row, reporting false when the file has too many.
func (p *parser) countRow() bool {
	p.rows++
	if p.rows > p.maxRows {
		p.add(p.line, "", ReasonTooManyRows, fmt.Sprintf(
			"more than %d data rows; split the file", p.maxRows))
		return false
	}
	return true
}

// header maps the header's columns, reporting whether rows can be read.
func (p *parser) header(rec []string) bool {
	line, _ := p.cr.FieldPos(0)
	p.nfields = len(rec)
	for c := range p.field {
		p.field[c] = -1
	}
	for i, raw := range rec {
		name := strings.ToLower(strings.TrimSpace(raw))
		c := lookupColumn(name)
		switch {
		case name == "":
			p.add(line, "", ReasonUnknownColumn, fmt.Sprintf(
				"column %d has no name; remove the extra delimiter or name the column", i+1))
		case c < 0:
			p.add(line, clip(name), ReasonUnknownColumn, fmt.Sprintf(
				"unknown column %s; expected prefix, destination, rate_per_minute, connection_fee, "+
					"min_seconds, increment_seconds, billing or effective_from", quote(raw)))
		case p.field[c] >= 0:
			p.add(line, name, ReasonDuplicateColumn, fmt.Sprintf(
				"column %s appears twice (columns %d and %d)", name, p.field[c]+1, i+1))
		default:
			p.field[c] = i
		}
	}
	if p.field[colBilling] >= 0 && (p.field[colMinSeconds] >= 0 || p.field[colIncrementSeconds] >= 0) {
		p.add(line, ColumnBilling, ReasonDuplicateColumn,
			"billing repeats min_seconds/increment_seconds; use either billing or those two columns")
	}
	for _, c := range []column{colPrefix, colDestination, colRatePerMinute} {
		if p.field[c] < 0 {
			p.add(line, columnNames[c], ReasonMissingColumn, fmt.Sprintf(
				"required column %s is missing from the header", columnNames[c]))
		}
	}
	return p.res.ErrorCount == 0
}

func lookupColumn(name string) column {
	for c, n := range columnNames {
		if n == name {
			return column(c)
		}
	}
	return -1
}

// row validates one data record; a rate is kept only if every field is good.
func (p *parser) row(rec []string) {
	if len(rec) != p.nfields {
		p.add(p.line, "", ReasonWrongFieldCount, fmt.Sprintf(
			"row has %d fields but the header has %d; quote values containing the delimiter",
			len(rec), p.nfields))
		return
	}
	rt := Rate{IncrementSeconds: 1}
	ok := true

	digits, key, detail := parsePrefix(p.get(rec, colPrefix))
	prefixOK := detail == ""
	if !prefixOK {
		ok = p.fail(colPrefix, ReasonBadPrefix, rec, detail+"; expected 1 to 15 digits, optionally after '+'")
	}

	dest := p.get(rec, colDestination)
	if d, known := p.destinations[dest]; known {
		rt.Destination = d
	} else if detail := checkDestination(dest); detail != "" {
		ok = p.fail(colDestination, ReasonBadDestination, rec, detail)
	} else {
		d = strings.Clone(dest)
		p.destinations[d] = d
		rt.Destination = d
	}

	var good bool
	if rt.RatePerMinuteMicros, good = p.money(rec, colRatePerMinute, true); !good {
		ok = false
	}
	if rt.ConnectionFeeMicros, good = p.money(rec, colConnectionFee, false); !good {
		ok = false
	}
	if p.field[colBilling] >= 0 {
		if s := p.get(rec, colBilling); s != "" {
			var detail string
			if rt.MinSeconds, rt.IncrementSeconds, detail = parseBilling(s); detail != "" {
				ok = p.fail(colBilling, ReasonBadBilling, rec, detail)
			}
		}
	}
	if rt.MinSeconds, good = p.seconds(rec, colMinSeconds, rt.MinSeconds, 0); !good {
		ok = false
	}
	if rt.IncrementSeconds, good = p.seconds(rec, colIncrementSeconds, rt.IncrementSeconds, 1); !good {
		ok = false
	}

	dateOK, dateID := true, int32(0)
	if p.field[colEffectiveFrom] >= 0 {
		var e dateEntry
		e, dateOK = p.date(rec)
		rt.EffectiveFrom, dateID = e.t, e.id
		ok = ok && dateOK
	}

	// Check duplicates even when other fields are bad, so that fixing those
	// does not reveal new errors on the next upload.
	if prefixOK && dateOK {
		if first := p.claims.add(claim{key: key, date: dateID, line: int32(min(p.line, math.MaxInt32))}); first > 0 {
			when := "(no effective_from)"
			if !rt.EffectiveFrom.IsZero() {
				when = "effective from " + rt.EffectiveFrom.Format(time.RFC3339Nano)
			}
			p.add(p.line, "", ReasonDuplicateRate, fmt.Sprintf(
				"prefix %s %s is already defined on line %d", digits, when, first))
			ok = false
		}
	}
	if !ok {
		return
	}
	// Until sealed, the prefix is a slice of the record string.
	rt.Prefix = digits
	if len(p.rates) == cap(p.rates) {
		// Double, where append would grow a large slice by 1.25x and so
		// copy a million-row deck a dozen times.
		p.rates = slices.Grow(p.rates, max(len(p.rates), 1024))
	}
	p.rates = append(p.rates, rt)
	if len(p.rates)-p.sealed == sealEvery {
		p.seal()
	}
}

// get returns a column's trimmed value, "" when the column is absent.
func (p *parser) get(rec []string, c column) string {
	if i := p.field[c]; i >= 0 {
		return strings.TrimSpace(rec[i])
	}
	return ""
}

func (p *parser) money(rec []string, c column, required bool) (int64, bool) {
	s := p.get(rec, c)
	if s == "" && !required {
		return 0, true
	}
	v, reason, detail := parseMicros(s)
	if reason == "" && v > MaxMoneyMicros {
		reason, detail = ReasonMoneyOutOfRange, "more than 1000"
	}
	if reason != "" {
		return 0, p.fail(c, reason, rec, detail+"; expected an amount from 0 to 1000 such as 0.0125")
	}
	return v, true
}

func (p *parser) seconds(rec []string, c column, def, lo int32) (int32, bool) {
	s := p.get(rec, c)
	if s == "" {
		return def, true
	}
	v, detail := parseSeconds(s, lo)
	if detail != "" {
		return def, p.fail(c, ReasonBadSeconds, rec, detail)
	}
	return v, true
}

func (p *parser) date(rec []string) (dateEntry, bool) {
	s := p.get(rec, colEffectiveFrom)
	if s == "" {
		return dateEntry{}, true
	}
	if e, ok := p.dates[s]; ok {
		return e, true
	}
	t, detail := parseDate(s)
	if detail != "" {
		return dateEntry{}, p.fail(colEffectiveFrom, ReasonBadDate, rec, detail)
	}
	in := instant{sec: t.Unix(), nsec: int32(t.Nanosecond())}
	id, ok := p.dateIDs[in]
	if !ok {
		id = int32(len(p.dateIDs) + 1)
		p.dateIDs[in] = id
	}
	if len(p.dates) >= maxCachedDates {
		clear(p.dates)
	}
	e := dateEntry{t: t, id: id}
	p.dates[strings.Clone(s)] = e
	return e, true
}

// fail records a problem with column c of the current record and returns
// false, for use as `ok = p.fail(...)`.
func (p *parser) fail(c column, reason string, rec []string, detail string) bool {
	if len(p.res.Errors) >= p.maxErrors {
		// Only counted: formatting messages nobody sees would make a file
		// of a million bad rows slow to reject.
		p.res.ErrorCount++
		return false
	}
	line, _ := p.cr.FieldPos(p.field[c])
	p.add(line, columnNames[c], reason, quote(strings.TrimSpace(rec[p.field[c]]))+": "+detail)
	return false
}

func (p *parser) add(line int, col, reason, msg string) {
	p.res.ErrorCount++
	if len(p.res.Errors) < p.maxErrors {
		p.res.Errors = append(p.res.Errors, RowError{Line: line, Column: col, Reason: reason, Message: msg})
	}
}

// seal moves the prefixes of the rates not yet sealed into one shared
// string: a string per row would be a million allocations, and keeping the
// slices of the record strings would pin every row's whole line in memory.
func (p *parser) seal() {
	rates := p.rates[p.sealed:]
	n := 0
	for i := range rates {
		n += len(rates[i].Prefix)
	}
	var b strings.Builder
	b.Grow(n)
	for i := range rates {
		b.WriteString(rates[i].Prefix)
	}
	all, start := b.String(), 0
	for i := range rates {
		end := start + len(rates[i].Prefix)
		rates[i].Prefix = all[start:end]
		start = end
	}
	p.sealed = len(p.rates)
}

// finish hands the rates over, trimmed when growth overshot by more than a
// quarter: the caller may hold them for a while.
func (p *parser) finish() {
	p.seal()
	if len(p.rates) > 0 && cap(p.rates)-len(p.rates) > len(p.rates)/4 {
		p.rates = slices.Clone(p.rates)
	}
	if len(p.rates) > 0 {
		p.res.Rates = p.rates
	}
}

// isBlank reports a record of empty fields, which spreadsheets write for
// rows that only ever had formatting.
func isBlank(rec []string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

// parsePrefix validates a prefix and returns its digits and a key unique to
// them: the number shifted left by 4 bits plus the digit count, so that "1"
// and "01" differ (15 digits need 50 bits, leaving room for the count).
func parsePrefix(s string) (digits string, key uint64, detail string) {
	digits = strings.TrimPrefix(s, "+")
	if digits == "" {
		return "", 0, "empty prefix"
	}
	var n uint64
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		if !isDigit(c) {
			if c == ' ' || c == '\t' || c == '-' || c == '.' || c == '(' || c == ')' {
				return "", 0, "separators are not allowed"
			}
			return "", 0, "only digits are allowed"
		}
		n = n*10 + uint64(c-'0')
	}
	if len(digits) > MaxPrefixDigits {
		return "", 0, fmt.Sprintf("%d digits is too long", len(digits))
	}
	return digits, n<<4 | uint64(len(digits)), ""
}

// checkDestination returns why a route name is unacceptable, or "".
func checkDestination(s string) string {
	if s == "" {
		return "empty destination; expected a route name such as \"Spain - Mobile\""
	}
	n := 0
	for i := 0; i < len(s); n++ {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				return "control characters (such as line breaks) are not allowed"
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return "not valid UTF-8; save the file as \"CSV UTF-8\""
		}
		if unicode.IsControl(r) {
			return "control characters are not allowed"
		}
		i += size
	}
	if n > MaxDestinationRunes {
		return fmt.Sprintf("%d characters is too long; expected at most %d", n, MaxDestinationRunes)
	}
	return ""
}

// parseSeconds parses a whole number of seconds in lo..MaxSeconds.
func parseSeconds(s string, lo int32) (int32, string) {
	if s == "" {
		return 0, "empty; expected whole seconds"
	}
	var v int32
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, fmt.Sprintf("expected whole seconds from %d to %d", lo, MaxSeconds)
		}
		if v <= MaxSeconds { // stop growing once out of range: no overflow
			v = v*10 + int32(s[i]-'0')
		}
	}
	if v < lo || v > MaxSeconds {
		return 0, fmt.Sprintf("out of range; expected whole seconds from %d to %d", lo, MaxSeconds)
	}
	return v, ""
}

// parseBilling parses "min/increment", e.g. "60/60" or "30/6".
func parseBilling(s string) (minSec, inc int32, detail string) {
	const expected = "; expected min/increment seconds such as 60/60, 30/6 or 1/1"
	a, b, found := strings.Cut(s, "/")
	if !found {
		return 0, 1, "missing '/'" + expected
	}
	minSec, d1 := parseSeconds(strings.TrimSpace(a), 0)
	inc, d2 := parseSeconds(strings.TrimSpace(b), 1)
	switch {
	case d1 != "":
		return 0, 1, "minimum " + d1
	case d2 != "":
		return 0, 1, "increment " + d2
	}
	return minSec, inc, ""
}

// parseDate accepts the effective_from forms listed in the package
// documentation and returns the instant in UTC.
func parseDate(s string) (time.Time, string) {
	var t time.Time
	var err error
	switch {
	case len(s) == len(time.DateOnly):
		t, err = time.Parse(time.DateOnly, s)
	case len(s) == len(time.DateTime) && s[10] == ' ':
		t, err = time.Parse(time.DateTime, s)
	default:
		t, err = time.Parse(time.RFC3339, s) // also takes fractional seconds
	}
	if err != nil {
		return time.Time{}, "expected 2026-01-01, 2026-01-01 00:00:00 (UTC) or 2026-01-01T00:00:00Z"
	}
	t = t.UTC()
	if y := t.Year(); y < minYear || y > maxYear {
		return time.Time{}, fmt.Sprintf("year %d is out of range %d to %d", y, minYear, maxYear)
	}
	return t, ""
}

// quote quotes a value for a message, shortened so that messages stay
// readable whatever the file holds.
func quote(s string) string {
	const maxQuoted = 60
	q := strconv.Quote(s)
	if len(q) <= maxQuoted {
		return q
	}
	// Cut on rune boundaries until the quoted form fits; escapes make the
	// quoted length unpredictable, hence the loop.
	for n := 32; ; n /= 2 {
		cut, runes := len(s), 0
		for i := range s {
			if runes == n {
				cut = i
				break
			}
			runes++
		}
		if q = strconv.Quote(s[:cut]); len(q) <= maxQuoted || n <= 2 {
			return q + "…"
		}
	}
}

// clip shortens a column name taken from a file for RowError.Column.
func clip(s string) string {
	const maxColumn = 40
	if len(s) <= maxColumn {
		return s
	}
	cut := maxColumn
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
