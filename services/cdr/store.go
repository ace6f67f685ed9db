package cdr

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Migrations are cdr's PostgreSQL schema, applied at start with
// store.Migrate(ctx, pool, "cdr", Migrations()).
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the migration files, for store.Migrate.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // embedded at build time
	}
	return sub
}

// Store is cdr's PostgreSQL access. Queries name the schema (cdr.cdrs):
// the pool's search_path is not cdr's.
type Store struct {
	DB *pgxpool.Pool
}

// Insert writes records in one statement, idempotently: a call already
// recorded is replaced only by a later snapshot of it (a higher event
// sequence), so a redelivered event changes nothing. It returns how many
// rows were written or replaced.
func (s *Store) Insert(ctx context.Context, rows []Row) (int64, error) {
	rows = dedupe(rows)
	if len(rows) == 0 {
		return 0, nil
	}
	n := len(rows)
	var (
		callID, account, campaign, cause         = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		fnum, snum, fep, sep, fcc, scc, currency = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		created, answered, bridged, ended        = make([]*time.Time, n), make([]*time.Time, n), make([]*time.Time, n), make([]*time.Time, n)
		status, source, failedLeg, reason        = make([]int16, n), make([]int16, n), make([]int16, n), make([]int16, n)
		visitorLeg, attempts                     = make([]int16, n), make([]int16, n)
		duration, billsec, seq                   = make([]int32, n), make([]int32, n), make([]int32, n)
		cost, fee, price                         = make([]int64, n), make([]int64, n), make([]int64, n)
		call                                     = make([][]byte, n)
	)
	opt := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		return &t
	}
	for i := range rows {
		r := &rows[i]
		callID[i], account[i], campaign[i], cause[i] = r.CallID, r.AccountID, r.CampaignID, r.HangupCause
		fnum[i], snum[i], fep[i], sep[i], fcc[i], scc[i], currency[i] = r.FirstNumber, r.SecondNumber, r.FirstEndpoint, r.SecondEndpoint, r.FirstCountry, r.SecondCountry, r.Currency
		created[i], answered[i], bridged[i], ended[i] = opt(r.CreatedAt), opt(r.AnsweredAt), opt(r.BridgedAt), opt(r.EndedAt)
		status[i], source[i], failedLeg[i], reason[i] = r.Status, r.Source, r.FailedLeg, r.FailureReason
		visitorLeg[i], attempts[i] = r.VisitorLeg, max(r.Attempts, 1) // a Row made by hand: one attempt
		duration[i], billsec[i], seq[i] = r.DurationS, r.Billsec, r.Sequence
		cost[i], fee[i], price[i] = r.CostMicros, r.AccessFeeMicros, r.PriceMicros
		call[i] = r.Call
	}
	tag, err := s.DB.Exec(ctx, `
INSERT INTO cdr.cdrs (call_id, account_id, campaign_id, hangup_cause,
    first_number, second_number, first_endpoint, second_endpoint, first_country, second_country, currency,
    created_at, answered_at, bridged_at, ended_at,
    status, source, failed_leg, failure_reason, duration_s, billsec, sequence,
    cost_micros, access_fee_micros, call, visitor_leg, attempts, price_micros)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[],
    $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::text[],
    $12::timestamptz[], $13::timestamptz[], $14::timestamptz[], $15::timestamptz[],
    $16::smallint[], $17::smallint[], $18::smallint[], $19::smallint[], $20::integer[], $21::integer[], $22::integer[],
    $23::bigint[], $24::bigint[], $25::bytea[], $26::smallint[], $27::smallint[], $28::bigint[])
ON CONFLICT (call_id) DO UPDATE SET
    campaign_id = excluded.campaign_id, hangup_cause = excluded.hangup_cause,
    first_number = excluded.first_number, second_number = excluded.second_number,
    first_endpoint = excluded.first_endpoint, second_endpoint = excluded.second_endpoint,
    first_country = excluded.first_country, second_country = excluded.second_country, currency = excluded.currency,
    created_at = excluded.created_at, answered_at = excluded.answered_at, bridged_at = excluded.bridged_at,
    ended_at = excluded.ended_at, status = excluded.status, source = excluded.source, failed_leg = excluded.failed_leg,
    failure_reason = excluded.failure_reason, duration_s = excluded.duration_s, billsec = excluded.billsec,
    sequence = excluded.sequence, cost_micros = excluded.cost_micros, access_fee_micros = excluded.access_fee_micros,
    call = excluded.call, visitor_leg = excluded.visitor_leg, attempts = excluded.attempts,
    price_micros = excluded.price_micros, recorded_at = now()
WHERE cdrs.sequence < excluded.sequence AND cdrs.account_id = excluded.account_id`,
		callID, account, campaign, cause, fnum, snum, fep, sep, fcc, scc, currency,
		created, answered, bridged, ended, status, source, failedLeg, reason, duration, billsec, seq, cost, fee, call,
		visitorLeg, attempts, price)
	if err != nil {
		return 0, fmt.Errorf("insert %d records: %w", len(rows), err)
	}
	return tag.RowsAffected(), nil
}

// dedupe keeps one row per call, the latest snapshot: one statement may
// not touch a row twice.
func dedupe(rows []Row) []Row {
	if len(rows) < 2 {
		return rows
	}
	at := make(map[string]int, len(rows))
	out := rows[:0:0]
	for _, r := range rows {
		if i, ok := at[r.CallID]; ok {
			if r.Sequence > out[i].Sequence {
				out[i] = r
			}
			continue
		}
		at[r.CallID] = len(out)
		out = append(out, r)
	}
	return out
}

// Query selects an account's records; every condition set must hold.
type Query struct {
	Account    string
	Start, End time.Time // created_at in [Start, End)
	CampaignID string
	EndpointID string
	Statuses   []int16
	Country    string
	Number     string
	Source     int16
	FailedLeg  int16
}

// where renders the query's conditions, appending their arguments.
func (q *Query) where(args *[]any) string {
	arg := func(v any) string {
		*args = append(*args, v)
		return "$" + strconv.Itoa(len(*args))
	}
	var b strings.Builder
	b.WriteString("account_id = " + arg(q.Account))
	b.WriteString(" AND created_at >= " + arg(q.Start) + " AND created_at < " + arg(q.End))
	// The campaign, endpoint, country and number indexes are partial (no
	// empty values); the "<> ''" lets the planner use them for generic plans of prepared
	// statements, where it cannot see that the parameter is not empty.
	if q.CampaignID != "" {
		b.WriteString(" AND campaign_id = " + arg(q.CampaignID) + " AND campaign_id <> ''")
	}
	if q.EndpointID != "" {
		p := arg(q.EndpointID)
		b.WriteString(" AND ((first_endpoint = " + p + " AND first_endpoint <> '') OR (second_endpoint = " + p + " AND second_endpoint <> ''))")
	}
	if len(q.Statuses) > 0 {
		b.WriteString(" AND status = ANY(" + arg(q.Statuses) + "::smallint[])")
	}
	if q.Country != "" {
		p := arg(q.Country)
		b.WriteString(" AND ((first_country = " + p + " AND first_country <> '') OR (second_country = " + p + " AND second_country <> ''))")
	}
	if q.Number != "" {
		p := arg(q.Number)
		b.WriteString(" AND ((first_number = " + p + " AND first_number <> '') OR (second_number = " + p + " AND second_number <> ''))")
	}
	if q.Source != 0 {
		b.WriteString(" AND source = " + arg(q.Source))
	}
	if q.FailedLeg != 0 {
		b.WriteString(" AND failed_leg = " + arg(q.FailedLeg))
	}
	return b.String()
}

// Stored is a record as read back.
type Stored struct {
	CallID     string
	CreatedAt  time.Time // as stored (microseconds): the paging key
	Call       []byte
	RecordedAt time.Time
}

// Cursor is a position in a listing: the last record returned.
type Cursor struct {
	CreatedAt time.Time
	CallID    string
}

// List returns up to limit records of q after the cursor (nil: from the
// start), ordered by creation time then call id, after skipping offset.
func (s *Store) List(ctx context.Context, q Query, after *Cursor, ascending bool, offset, limit int) ([]Stored, error) {
	args := make([]any, 0, 12)
	where := q.where(&args)
	dir, cmp := "DESC", "<"
	if ascending {
		dir, cmp = "ASC", ">"
	}
	if after != nil {
		args = append(args, after.CreatedAt, after.CallID)
		where += fmt.Sprintf(" AND (created_at, call_id) %s ($%d, $%d)", cmp, len(args)-1, len(args))
	}
	args = append(args, limit, offset)
	sql := fmt.Sprintf(`SELECT call_id, created_at, call, recorded_at FROM cdr.cdrs WHERE %s
ORDER BY created_at %s, call_id %s LIMIT $%d OFFSET $%d`, where, dir, dir, len(args)-1, len(args))
	rows, err := s.DB.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("list records: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Stored, error) {
		var st Stored
		err := r.Scan(&st.CallID, &st.CreatedAt, &st.Call, &st.RecordedAt)
		return st, err
	})
	if err != nil {
		return nil, fmt.Errorf("list records: %w", err)
	}
	return out, nil
}

// Get returns one of the account's records.
func (s *Store) Get(ctx context.Context, account, callID string) (Stored, error) {
	st := Stored{CallID: callID}
	err := s.DB.QueryRow(ctx, `SELECT created_at, call, recorded_at FROM cdr.cdrs WHERE call_id = $1 AND account_id = $2`,
		callID, account).Scan(&st.CreatedAt, &st.Call, &st.RecordedAt)
	if err == pgx.ErrNoRows {
		return Stored{}, ErrCdrNotFound
	}
	if err != nil {
		return Stored{}, fmt.Errorf("get record %s: %w", callID, err)
	}
	return st, nil
}

// Count returns how many records an account has (tests and tools).
func (s *Store) Count(ctx context.Context, account string) (int64, error) {
	var n int64
	err := s.DB.QueryRow(ctx, `SELECT count(*) FROM cdr.cdrs WHERE account_id = $1`, account).Scan(&n)
	return n, err
}
