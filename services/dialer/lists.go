package dialer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	dialerv1 "github.com/ringback/ringback/proto/gen/go/ringback/dialer/v1"
	"github.com/ringback/ringback/services/internal/ids"
)

// Recipient lists: ImportList loads a CSV file (csv.go) sent in chunks.
//
// The file is parsed while it arrives and its good rows are streamed into
// dialer.records by a single COPY, in a transaction that also marks the
// list READY: a list's records appear all at once, with the list, or not
// at all (a broken stream leaves a FAILED list without records). The list
// itself is created (IMPORTING) before the rows, so an import in progress
// can be seen. The work is pipelined: the stream's reader feeds a pipe;
// the parser scans rows and checks them on GOMAXPROCS goroutines, keeping
// the file's order (normalizing numbers with phonenumbers, ~9 µs each, is
// most of the import's CPU); pgx encodes the COPY on a goroutine of its
// own while PostgreSQL writes the rows and their indexes. On a 2-core box
// a 1,000,000-row list takes about 25 s (BenchmarkImportList1M).
//
// A list whose importing process died stays IMPORTING, without records
// (its transaction never committed); the engine does not see it.

// Errors of list imports.
var (
	ErrInvalidHeader = newError(codes.InvalidArgument, "INVALID_HEADER", "the file's header cannot be read")
	ErrListTooLarge  = newError(codes.InvalidArgument, "LIST_TOO_LARGE", fmt.Sprintf("a list has at most %d rows", MaxListRows))
)

const listCols = "id, campaign_id, name, account_code, active, columns, status, records, rejected, created_at"

func scanList(row pgx.Row) (*dialerv1.RecipientList, error) {
	var (
		l       dialerv1.RecipientList
		status  int16
		created time.Time
	)
	if err := row.Scan(&l.Id, &l.CampaignId, &l.Name, &l.AccountCode, &l.Active, &l.Columns, &status, &l.Records, &l.Rejected, &created); err != nil {
		return nil, err
	}
	l.Status, l.CreatedAt = dialerv1.ListStatus(status), timestamppb.New(created)
	return &l, nil
}

// recordCols are the columns ImportList copies into dialer.records.
var recordCols = []string{"campaign_id", "list_id", "line", "raw", "numbers", "fields", "schedule_at", "schedule_ext", "next_at", "status", "run"}

// ImportList loads a recipient list into a campaign (of the caller's
// account, in any status: a list imported while the campaign runs is
// dialed too).
func (s *Server) ImportList(stream dialerv1.DialerService_ImportListServer) error {
	ctx := stream.Context()
	account, err := accountFrom(ctx)
	if err != nil {
		return err
	}
	first, err := stream.Recv()
	if err == io.EOF {
		return ErrInvalidArgument.WithMsg("no request: send the campaign_id, then the CSV file in chunks")
	}
	if err != nil {
		return err
	}
	if n := first.GetName(); n != "" && !nameRe.MatchString(n) {
		return ErrInvalidArgument.WithMsg("name must be 1-100 printable characters")
	}
	if ac := first.GetAccountCode(); len(ac) > 64 || strings.ContainsFunc(ac, unicode.IsControl) {
		return ErrInvalidArgument.WithMsg("account_code: at most 64 characters, no control characters")
	}
	camp, err := s.get(ctx, account, first.GetCampaignId())
	if err != nil {
		return grpcError(s.Log, "ImportList", err)
	}

	// The file is parsed while it arrives: a pipe feeds the parser.
	pr, pw := io.Pipe()
	defer pr.Close() // stops the feeder if the import ends first
	go func() {
		msg := first
		for {
			if len(msg.GetChunk()) > 0 {
				if _, err := pw.Write(msg.GetChunk()); err != nil {
					return
				}
			}
			var err error
			msg, err = stream.Recv()
			if err == io.EOF {
				pw.Close()
				return
			}
			if err != nil {
				pw.CloseWithError(err)
				return
			}
		}
	}()

	lr, err := newListReader(pr, camp.c.GetDefaultCountry(), MaxListRows)
	var he *headerError
	if errors.As(err, &he) {
		return ErrInvalidHeader.WithMsg(he.Error())
	}
	if err != nil {
		return grpcError(s.Log, "ImportList", fmt.Errorf("read the header: %w", err))
	}
	campaignID := camp.c.GetId()
	list, err := scanList(s.DB.QueryRow(ctx, `INSERT INTO dialer.lists (id, campaign_id, account_id, name, account_code, columns, status)
		VALUES ($1, $2, $3, CASE WHEN $4 = '' THEN 'list ' || (SELECT count(*) + 1 FROM dialer.lists WHERE campaign_id = $2) ELSE $4 END, $5, $6, $7)
		RETURNING `+listCols, ids.NewV7(), campaignID, account, first.GetName(), first.GetAccountCode(), lr.Columns(),
		int16(dialerv1.ListStatus_LIST_STATUS_IMPORTING)))
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23503" { // foreign_key_violation
		return ErrCampaignNotFound.WithMsg("the campaign was deleted")
	}
	if err != nil {
		return grpcError(s.Log, "ImportList", fmt.Errorf("create the list: %w", err))
	}
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("campaign_id", campaignID, "list_id", list.GetId())
	start := time.Now()
	res, err := s.loadList(ctx, lr, pr, list.GetId(), campaignID, camp.run)
	if err != nil {
		s.failList(ctx, list.GetId())
		switch {
		case errors.Is(err, errTooManyRows):
			err = ErrListTooLarge.WithMsg(fmt.Sprintf("the file has more than %d rows: split it into several lists", MaxListRows))
		case errors.Is(err, errCampaignGone):
			err = ErrCampaignNotFound.WithMsg("the campaign was deleted during the import")
		}
		log.Warn("list import failed", "err", err, "after", time.Since(start))
		return grpcError(s.Log, "ImportList", err)
	}
	log.Info("list imported", "records", res.list.GetRecords(), "rejected", res.list.GetRejected(), "took", time.Since(start))
	if s.Engine != nil && res.list.GetRecords() > 0 {
		s.Engine.Wake()
	}
	return stream.SendAndClose(&dialerv1.ImportListResponse{List: res.list, Errors: res.errors, ErrorCount: res.rejected})
}

// errCampaignGone: the campaign was deleted while its list was imported.
var errCampaignGone = errors.New("campaign deleted")

type loaded struct {
	list     *dialerv1.RecipientList
	errors   []*dialerv1.RowError
	rejected int64
}

// loadList parses the rest of the file and copies its good rows into the
// list, then marks the list READY, in one transaction.
func (s *Server) loadList(ctx context.Context, lr *listReader, pr *io.PipeReader, listID, campaignID string, run int) (*loaded, error) {
	batches := make(chan []listRow, 4)
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var parseErr error // set before batches is closed
	go func() {
		defer close(batches)
		parseErr = lr.readAll(pctx, runtime.GOMAXPROCS(0), batches)
	}()
	// Whatever happens, the parser is done once batches is closed.
	drain := func() {
		cancel()
		pr.Close()
		for range batches {
		}
	}

	src := &recordSource{batches: batches, parseErr: &parseErr, run: int32(run)}
	if err := src.campaign.Scan(campaignID); err != nil {
		drain()
		return nil, err
	}
	if err := src.list.Scan(listID); err != nil {
		drain()
		return nil, err
	}
	tx, err := s.DB.Begin(ctx)
	if err != nil {
		drain()
		return nil, err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	n, err := tx.CopyFrom(ctx, pgx.Identifier{"dialer", "records"}, recordCols, src)
	// The parser's error (the stream's, or too many rows) stopped the COPY:
	// it is the one to report. (Once the COPY returned, pgx no longer
	// touches src.)
	stoppedByParser := src.done && parseErr != nil
	drain()
	if stoppedByParser {
		return nil, parseErr
	}
	if err != nil {
		return nil, fmt.Errorf("copy records: %w", err)
	}
	res := &loaded{errors: src.errors, rejected: src.rejected}
	// A run started meanwhile did not see these records: they join it.
	var cur int
	err = tx.QueryRow(ctx, `SELECT run FROM dialer.campaigns WHERE id = $1 FOR SHARE`, campaignID).Scan(&cur)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errCampaignGone
	}
	if err != nil {
		return nil, fmt.Errorf("read the campaign's run: %w", err)
	}
	if cur != run && n > 0 {
		if _, err := tx.Exec(ctx, `UPDATE dialer.records SET run = $2 WHERE list_id = $1`, listID, cur); err != nil {
			return nil, fmt.Errorf("set the records' run: %w", err)
		}
	}
	res.list, err = scanList(tx.QueryRow(ctx, `UPDATE dialer.lists SET status = $2, records = $3, rejected = $4 WHERE id = $1 RETURNING `+listCols,
		listID, int16(dialerv1.ListStatus_LIST_STATUS_READY), n, res.rejected))
	if err != nil {
		return nil, fmt.Errorf("mark the list ready: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("commit the list: %w", err)
	}
	return res, nil
}

// failList marks a list whose import stopped FAILED, without records (the
// COPY's transaction was rolled back: the delete is for safety's sake).
func (s *Server) failList(ctx context.Context, listID string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM dialer.records WHERE list_id = $1`, listID); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE dialer.lists SET status = $2, records = 0 WHERE id = $1`, listID, int16(dialerv1.ListStatus_LIST_STATUS_FAILED))
		return err
	})
	if err != nil && s.Log != nil {
		s.Log.Error("mark a failed list import", "list_id", listID, "err", err)
	}
}

// recordSource feeds the parsed rows to the COPY, and keeps the refused
// ones' errors. pgx calls it from one goroutine of its own.
type recordSource struct {
	batches  <-chan []listRow
	parseErr *error // set by the parser before it closes batches
	done     bool
	cur      []listRow
	i        int

	campaign, list pgtype.UUID
	run            int32
	json           []byte

	errors   []*dialerv1.RowError // the first MaxRowErrors
	rejected int64
}

func (r *recordSource) Next() bool {
	for {
		r.i++
		for r.i >= len(r.cur) {
			b, ok := <-r.batches
			if !ok {
				r.done = true
				return false
			}
			r.cur, r.i = b, 0
		}
		row := &r.cur[r.i]
		if row.Err == "" {
			return true
		}
		r.rejected++
		if len(r.errors) < MaxRowErrors {
			r.errors = append(r.errors, &dialerv1.RowError{Line: row.Line, Message: row.Err})
		}
	}
}

var negInfinity = pgtype.Timestamptz{InfinityModifier: pgtype.NegativeInfinity, Valid: true}

func (r *recordSource) Values() ([]any, error) {
	row := &r.cur[r.i]
	sched, next := pgtype.Timestamptz{}, negInfinity
	if !row.ScheduleAt.IsZero() {
		sched = pgtype.Timestamptz{Time: row.ScheduleAt, Valid: true}
		next = sched
	}
	// pgx encodes the values before Next is called again: the buffer can
	// be reused.
	r.json = row.appendFieldsJSON(r.json[:0])
	return []any{r.campaign, r.list, row.Line, row.Raw, row.Numbers, r.json, sched, row.ScheduleExt, next, StatusReady, r.run}, nil
}

// Err is the parser's error, which aborts the COPY; it is read only once
// the parser is done (batches closed), so without a race.
func (r *recordSource) Err() error {
	if !r.done {
		return nil
	}
	return *r.parseErr
}

// ListLists returns a campaign's lists, oldest first.
func (s *Server) ListLists(ctx context.Context, req *dialerv1.ListListsRequest) (*dialerv1.ListListsResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	camp, err := s.get(ctx, account, req.GetCampaignId())
	if err != nil {
		return nil, grpcError(s.Log, "ListLists", err)
	}
	rows, err := s.DB.Query(ctx, `SELECT `+listCols+` FROM dialer.lists WHERE campaign_id = $1 ORDER BY created_at, id`, camp.c.GetId())
	if err != nil {
		return nil, grpcError(s.Log, "ListLists", err)
	}
	lists, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*dialerv1.RecipientList, error) { return scanList(row) })
	if err != nil {
		return nil, grpcError(s.Log, "ListLists", err)
	}
	return &dialerv1.ListListsResponse{Lists: lists}, nil
}

// UpdateList renames a list or (de)activates it: the engine dials the
// campaign's active, READY lists.
func (s *Server) UpdateList(ctx context.Context, req *dialerv1.UpdateListRequest) (*dialerv1.UpdateListResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	if n := req.GetName(); n != "" && !nameRe.MatchString(n) {
		return nil, ErrInvalidArgument.WithMsg("name must be 1-100 printable characters")
	}
	camp, err := s.get(ctx, account, req.GetCampaignId())
	if err != nil {
		return nil, grpcError(s.Log, "UpdateList", err)
	}
	if !uuidRe.MatchString(req.GetListId()) {
		return nil, ErrListNotFound
	}
	var active *bool
	if req.Active != nil {
		v := req.GetActive()
		active = &v
	}
	l, err := scanList(s.DB.QueryRow(ctx, `UPDATE dialer.lists SET name = CASE WHEN $3 = '' THEN name ELSE $3 END, active = coalesce($4, active)
		WHERE id = $1 AND campaign_id = $2 RETURNING `+listCols, req.GetListId(), camp.c.GetId(), req.GetName(), active))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrListNotFound
	}
	if err != nil {
		return nil, grpcError(s.Log, "UpdateList", err)
	}
	if s.Engine != nil && active != nil && *active {
		s.Engine.Wake()
	}
	return &dialerv1.UpdateListResponse{List: l}, nil
}
