package dialer

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
	"google.golang.org/grpc/codes"

	dialerv1 "github.com/ringback/ringback/proto/gen/go/ringback/dialer/v1"
	"github.com/ringback/ringback/services/internal/csvsafe"
)

// The reports as CSV files: ExportRecords streams the detailed report,
// ExportReport the statistics. Both are built like the CDR export
// (services/cdr/export.go): the header goes out first, so a caller learns
// the request is valid before any row is read, then 64 KiB chunks.
//
// A records export reads the campaign's records in id order, a page at a
// time with keyset paging (no OFFSET: the millionth row costs what the
// first does), and formats each page into a buffer before sending it: the
// database connection is not held while a slow client reads. A page also
// stops early once the buffer holds exportBuffer bytes, so memory stays
// flat whatever the rows' sizes (a row may hold up to MaxRowBytes of
// fields).

// Sizes of an export.
const (
	exportPage   = 5000     // records read per query
	exportBuffer = 1 << 20  // a page stops once this much CSV is waiting
	exportChunk  = 64 << 10 // bytes per message sent
)

// Errors of the exports.
var (
	ErrInvalidStatus      = newError(codes.InvalidArgument, "INVALID_STATUS", "not a record status")
	ErrInvalidTimeZone    = newError(codes.InvalidArgument, "INVALID_TIME_ZONE", "unknown time zone")
	ErrInvalidDestination = newError(codes.InvalidArgument, "INVALID_DESTINATION", "not a destination")
)

// destinations are the places an answered attempt can end up (model.go).
var destinations = []string{DestIVRStarted, DestIVRFinished, DestQueueJoin, DestQueueAnswer, DestQueueTimeout,
	DestQueueEmpty, DestQueueFull, DestInAnswer, DestInBusy, DestInNoAnswer, DestInCancel, DestInCongestion, DestInChanUnavail}

// checkDestination refuses a destination filter that names none.
func checkDestination(d string) error {
	if d != "" && !slices.Contains(destinations, d) {
		return ErrInvalidDestination.WithMsg(fmt.Sprintf("destination %q: want one of %s", d, strings.Join(destinations, ", ")))
	}
	return nil
}

// recordStatuses are the statuses a record can be in (model.go).
var recordStatuses = []string{StatusReady, StatusRunning, StatusTalking, StatusAnswered, StatusBusy, StatusNoAnswer,
	StatusFailed, StatusAnsMachine, StatusDNC, StatusExpired, StatusCancel, StatusRescheduled, StatusAbandoned}

// checkStatus refuses a status filter that names no record status.
func checkStatus(st string) error {
	if st != "" && !slices.Contains(recordStatuses, st) {
		return ErrInvalidStatus.WithMsg(fmt.Sprintf("status %q: want one of %s", st, strings.Join(recordStatuses, ", ")))
	}
	return nil
}

// recordColumns are the columns of a records export, before the lists'
// fields.
var recordColumns = []string{"record_id", "list", "line", "numbers", "tries", "status", "final", "last_call_id",
	"last_attempt_at", "last_duration_s", "next_at", "tags", "destination"}

// ExportRecords streams the detailed report of a campaign as CSV: one row
// per record in id order (the order of import), with these columns:
//
//	record_id        the record's id (ListRecords' Record.id)
//	list             the name of its list
//	line             its line in the list's file
//	numbers          its numbers, E.164, joined with |
//	tries            attempts made in the current run
//	status           the spec's name (ready, answered, busy, ...)
//	final            true when the run is done with it
//	last_call_id     the last attempt's call
//	last_attempt_at  when the last attempt was made (RFC 3339 in time_zone); empty: never
//	last_duration_s  billed seconds of the last attempt; empty: never attempted
//	next_at          when a record not final may be dialed next; empty: now, or never again
//	tags             its tags, joined with |
//	destination      where its last attempt's answer ended up (IVR_FINISHED, QUEUE_ANSWER, IN_BUSY, ...); empty: nobody answered
//
// then one column per field of the campaign's lists: the names of their
// header rows (not the numbers' column, not *Schedule*), the lists taken
// oldest first and each name once, where it first appears; a record
// whose list lacks a column has it empty. Text a spreadsheet could take
// for a formula (a cell starting with =, +, -, @, tab or carriage return
// that is not a number) gets a leading apostrophe.
//
// The records are those ListRecords lists (every list of the campaign),
// read page by page while the campaign may be running: a record that
// changes during the export is written as it was when its page was read.
func (s *Server) ExportRecords(req *dialerv1.ExportRecordsRequest, stream dialerv1.DialerService_ExportRecordsServer) error {
	ctx := stream.Context()
	account, err := accountFrom(ctx)
	if err != nil {
		return err
	}
	status := req.GetStatus()
	if err := checkStatus(status); err != nil {
		return err
	}
	if err := checkDestination(req.GetDestination()); err != nil {
		return err
	}
	loc, err := location(req.GetTimeZone())
	if err != nil {
		return err
	}
	camp, err := s.get(ctx, account, req.GetCampaignId())
	if err != nil {
		return grpcError(s.Log, "ExportRecords", err)
	}
	id := camp.c.GetId()
	lists, names, err := s.exportLists(ctx, id)
	if err != nil {
		return grpcError(s.Log, "ExportRecords", err)
	}

	out := newExportStream(func(chunk []byte) error {
		return stream.Send(&dialerv1.ExportRecordsResponse{Chunk: chunk})
	})
	row := append(append([]string(nil), recordColumns...), names...)
	if err := out.write(csvsafe.Cells(row)); err != nil {
		return err
	}
	if err := out.flush(true); err != nil {
		return err
	}
	var after int64
	for {
		last, full, err := s.exportPage(ctx, out, exportQuery{campaign: id, status: status, destination: req.GetDestination(), after: after, names: names, lists: lists, loc: loc})
		if err != nil {
			return grpcError(s.Log, "ExportRecords", fmt.Errorf("export campaign %s after record %d: %w", id, after, err))
		}
		if !full {
			return out.flush(true)
		}
		if err := out.flush(false); err != nil {
			return err
		}
		after = last
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// exportLists returns the names of a campaign's lists by id, and the field
// names of their headers in first-seen order, the lists oldest first.
func (s *Server) exportLists(ctx context.Context, campaign string) (map[string]string, []string, error) {
	rows, err := s.DB.Query(ctx, `SELECT id::text, name, columns FROM dialer.lists WHERE campaign_id = $1 ORDER BY created_at, id`, campaign)
	if err != nil {
		return nil, nil, fmt.Errorf("read campaign %s's lists: %w", campaign, err)
	}
	defer rows.Close()
	lists := map[string]string{}
	var names []string
	seen := map[string]bool{}
	for rows.Next() {
		var id, name string
		var cols []string
		if err := rows.Scan(&id, &name, &cols); err != nil {
			return nil, nil, fmt.Errorf("read campaign %s's lists: %w", campaign, err)
		}
		lists[id] = name
		for i, c := range cols {
			// The first column holds the numbers; *Schedule* is not a field.
			if i == 0 || c == ScheduleColumn || seen[c] {
				continue
			}
			seen[c] = true
			names = append(names, c)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read campaign %s's lists: %w", campaign, err)
	}
	return lists, names, nil
}

// exportQuery is one page of a records export.
type exportQuery struct {
	campaign string
	status   string // "" for all
	// destination: "" for all.
	destination string
	after       int64 // the last record id written
	names       []string
	lists       map[string]string // list names by id
	loc         *time.Location
}

// exportPage writes the records after q.after into out, stopping after
// exportPage records or once exportBuffer bytes wait. It returns the last
// written record's id, and whether more may follow.
func (s *Server) exportPage(ctx context.Context, out *exportStream, q exportQuery) (last int64, full bool, err error) {
	args := []any{q.campaign, q.after, q.status, exportPage, q.destination}
	if len(q.names) > 0 {
		args = append(args, q.names)
	}
	rows, err := s.DB.Query(ctx, `SELECT r.id, r.list_id::text, r.line, array_to_string(r.numbers, '|'), r.tries, r.status, r.final,
			r.call_id, r.last_attempt_at, r.last_duration_s, CASE WHEN r.final OR r.next_at = '-infinity' THEN NULL ELSE r.next_at END,
			array_to_string(r.tags, '|'), r.destination, `+fieldsArray(len(q.names))+`
		FROM dialer.records r
		WHERE r.campaign_id = $1 AND r.id > $2 AND ($3 = '' OR r.status = $3) AND ($5 = '' OR r.destination = $5)
		ORDER BY r.id LIMIT $4`, args...)
	if err != nil {
		return 0, false, err
	}
	defer rows.Close()
	var (
		n               int
		id, line        int64
		listID, numbers string
		tries, duration int32
		status, callID  string
		final           bool
		lastAt, nextAt  pgtype.Timestamptz
		tags, dest      string
		fields          []string
		row             = make([]string, 0, len(recordColumns)+len(q.names))
	)
	for rows.Next() {
		if err := rows.Scan(&id, &listID, &line, &numbers, &tries, &status, &final, &callID, &lastAt, &duration, &nextAt, &tags, &dest, &fields); err != nil {
			return last, false, err
		}
		lastStr, durStr := "", ""
		if lastAt.Valid {
			lastStr = lastAt.Time.In(q.loc).Format(time.RFC3339)
			durStr = strconv.Itoa(int(duration))
		}
		nextStr := ""
		if nextAt.Valid && nextAt.InfinityModifier == pgtype.Finite {
			nextStr = nextAt.Time.In(q.loc).Format(time.RFC3339)
		}
		// Numbers, status and call ids are the dialer's own (E.164, spec
		// names, UUIDs): only the customer's text is defused.
		row = append(row[:0], strconv.FormatInt(id, 10), csvsafe.Cell(q.lists[listID]), strconv.FormatInt(line, 10), numbers, strconv.Itoa(int(tries)), status,
			strconv.FormatBool(final), callID, lastStr, durStr, nextStr, csvsafe.Cell(tags), dest)
		for _, f := range fields {
			row = append(row, csvsafe.Cell(f))
		}
		if err := out.write(row); err != nil {
			return last, false, err
		}
		n, last = n+1, id
		if out.buffered() >= exportBuffer {
			return last, true, nil // the rest of the page is read again after last
		}
	}
	if err := rows.Err(); err != nil {
		return last, false, err
	}
	return last, n == exportPage, nil
}

// fieldsArray is the SQL of a record's fields named in $6 (a text[] of n
// names; no $6 when n is 0), in that order, as one text array: numbers and tags are joined by
// PostgreSQL too, so no JSON is decoded per row here. One ->> per name
// rather than a subquery over unnest($6): a third of the query's time.
func fieldsArray(n int) string {
	if n == 0 {
		return `'{}'::text[]`
	}
	var b strings.Builder
	b.WriteString("ARRAY[")
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "coalesce(r.fields ->> ($6::text[])[%d], '')", i+1)
	}
	b.WriteString("]")
	return b.String()
}

// ExportReport streams a campaign's statistics (GetReport's, computed by
// the same code) as CSV:
//
//	group,type,total,percentage
//	status,answered,3,37.50
//	...
//	attempts,1,2,25.00
//	...
//	tag,1,1,12.50
//	...
//	destination,QUEUE_ANSWER,1,12.50
//	total,,8,100.00
//
// The groups of a kind are in GetReport's order (most records first); a
// percentage is of all the records in the report, with two decimals (a
// record may have several tags, or none: the tags' need not add up to
// 100; the destinations leave out the records nobody answered). An empty report's total row is "total,,0,0.00".
func (s *Server) ExportReport(req *dialerv1.ExportReportRequest, stream dialerv1.DialerService_ExportReportServer) error {
	ctx := stream.Context()
	account, err := accountFrom(ctx)
	if err != nil {
		return err
	}
	rep, err := s.report(ctx, account, req.GetCampaignId())
	if err != nil {
		return grpcError(s.Log, "ExportReport", err)
	}
	out := newExportStream(func(chunk []byte) error {
		return stream.Send(&dialerv1.ExportReportResponse{Chunk: chunk})
	})
	if err := out.write([]string{"group", "type", "total", "percentage"}); err != nil {
		return err
	}
	for _, g := range []struct {
		name string
		rows []*dialerv1.ReportRow
	}{{"status", rep.GetByStatus()}, {"attempts", rep.GetByAttempts()}, {"tag", rep.GetByTag()}, {"destination", rep.GetByDestination()}} {
		for _, r := range g.rows {
			if err := out.write([]string{g.name, csvsafe.Cell(r.GetType()), strconv.FormatInt(r.GetTotal(), 10), percent(r.GetPercentage())}); err != nil {
				return err
			}
		}
	}
	all := 0.0
	if rep.GetTotal() > 0 {
		all = 100
	}
	if err := out.write([]string{"total", "", strconv.FormatInt(rep.GetTotal(), 10), percent(all)}); err != nil {
		return err
	}
	return out.flush(true)
}

func percent(p float64) string { return strconv.FormatFloat(p, 'f', 2, 64) }

// exportStream is CSV written to a buffer and sent in exportChunk pieces.
type exportStream struct {
	buf  bytes.Buffer
	w    *csv.Writer
	send func([]byte) error
}

func newExportStream(send func([]byte) error) *exportStream {
	e := &exportStream{send: send}
	e.w = csv.NewWriter(&e.buf)
	return e
}

func (e *exportStream) write(row []string) error { return e.w.Write(row) }

// buffered is about how many bytes wait to be sent (the csv.Writer's own
// buffer, 4 KiB at most, is not counted: flushing it per row costs more).
func (e *exportStream) buffered() int { return e.buf.Len() }

// flush sends the whole chunks waiting, and with force the rest too.
func (e *exportStream) flush(force bool) error {
	e.w.Flush()
	if err := e.w.Error(); err != nil {
		return err
	}
	for e.buf.Len() >= exportChunk || (force && e.buf.Len() > 0) {
		if err := e.send(e.buf.Next(min(e.buf.Len(), exportChunk))); err != nil {
			return err
		}
	}
	return nil
}

// location loads an IANA time zone; "" is UTC.
func location(name string) (*time.Location, error) {
	if name == "" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(name)
	// "Local" is this host's zone, not a zone the caller can know.
	if err != nil || strings.Contains(name, "..") || name == "Local" {
		return nil, ErrInvalidTimeZone.WithMsg(fmt.Sprintf("time_zone %q: want an IANA name such as America/Mexico_City", name))
	}
	return loc, nil
}
