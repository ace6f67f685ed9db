package dialer

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/types/known/timestamppb"

	dialerv1 "github.com/ringback/ringback/proto/gen/go/ringback/dialer/v1"
)

// Do-not-call lists: the account's (scope "") applies to all its campaigns,
// a campaign's (scope = its id) to that campaign only. Numbers are kept in
// E.164, so that a number is blocked however a list or a request writes
// it. The engine checks them when it dials (BlockedNumbers), so a number
// added during a campaign is not dialed again.

// MaxDoNotCallNumbers is the most numbers one request adds or removes.
const MaxDoNotCallNumbers = 10_000

// dncAccountList names the account's list in CheckDoNotCall's answer.
const dncAccountList = "account"

// dncScope returns the scope of a request's campaign_id and the country
// its numbers are read with: the account's list and E.164, or the
// caller's campaign and its default country.
func (s *Server) dncScope(ctx context.Context, account, campaignID string) (scope, country string, err error) {
	if campaignID == "" {
		return "", "", nil
	}
	camp, err := s.get(ctx, account, campaignID)
	if err != nil {
		return "", "", err
	}
	return camp.c.GetId(), camp.c.GetDefaultCountry(), nil
}

// dncNumbers normalizes a request's numbers, without duplicates; every
// invalid one is named in the error.
func dncNumbers(numbers []string, country string) ([]string, error) {
	if len(numbers) == 0 {
		return nil, ErrInvalidArgument.WithMsg("numbers: at least one")
	}
	if len(numbers) > MaxDoNotCallNumbers {
		return nil, ErrInvalidArgument.WithMsg(fmt.Sprintf("numbers: at most %d per request (got %d)", MaxDoNotCallNumbers, len(numbers)))
	}
	out := make([]string, 0, len(numbers))
	var bad []string
	for _, n := range numbers {
		e164, err := normalizeIn(n, country)
		if err != nil {
			bad = append(bad, fmt.Sprintf("%q", n))
			continue
		}
		out = append(out, e164)
	}
	if len(bad) > 0 {
		how := "E.164 (+ and the country code)"
		if country != "" {
			how = "E.164 or national numbers of " + country
		}
		nbad, more := len(bad), ""
		if nbad > 20 {
			more = fmt.Sprintf(" and %d more", nbad-20)
			bad = bad[:20]
		}
		return nil, ErrInvalidArgument.WithMsg(fmt.Sprintf("numbers: %d invalid (%s%s): write them in %s", nbad, strings.Join(bad, ", "), more, how))
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// AddDoNotCall adds numbers to the account's do-not-call list or a
// campaign's; numbers already there keep their reason.
func (s *Server) AddDoNotCall(ctx context.Context, req *dialerv1.AddDoNotCallRequest) (*dialerv1.AddDoNotCallResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	if r := req.GetReason(); len(r) > 500 || strings.ContainsRune(r, 0) {
		return nil, ErrInvalidArgument.WithMsg("reason: at most 500 characters, no NUL")
	}
	scope, country, err := s.dncScope(ctx, account, req.GetCampaignId())
	if err != nil {
		return nil, grpcError(s.Log, "AddDoNotCall", err)
	}
	numbers, err := dncNumbers(req.GetNumbers(), country)
	if err != nil {
		return nil, err
	}
	tag, err := s.DB.Exec(ctx, `INSERT INTO dialer.dnc (account_id, scope, number, reason)
		SELECT $1, $2, n, $4 FROM unnest($3::text[]) n ON CONFLICT DO NOTHING`, account, scope, numbers, req.GetReason())
	if err != nil {
		return nil, grpcError(s.Log, "AddDoNotCall", err)
	}
	return &dialerv1.AddDoNotCallResponse{Added: tag.RowsAffected()}, nil
}

// RemoveDoNotCall removes numbers from a do-not-call list.
func (s *Server) RemoveDoNotCall(ctx context.Context, req *dialerv1.RemoveDoNotCallRequest) (*dialerv1.RemoveDoNotCallResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	scope, country, err := s.dncScope(ctx, account, req.GetCampaignId())
	if err != nil {
		return nil, grpcError(s.Log, "RemoveDoNotCall", err)
	}
	numbers, err := dncNumbers(req.GetNumbers(), country)
	if err != nil {
		return nil, err
	}
	tag, err := s.DB.Exec(ctx, `DELETE FROM dialer.dnc WHERE account_id = $1 AND scope = $2 AND number = ANY($3)`, account, scope, numbers)
	if err != nil {
		return nil, grpcError(s.Log, "RemoveDoNotCall", err)
	}
	return &dialerv1.RemoveDoNotCallResponse{Removed: tag.RowsAffected()}, nil
}

// CheckDoNotCall tells whether a number is on the account's list or, with
// a campaign, on the campaign's; the account's list is named first.
func (s *Server) CheckDoNotCall(ctx context.Context, req *dialerv1.CheckDoNotCallRequest) (*dialerv1.CheckDoNotCallResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	scope, country, err := s.dncScope(ctx, account, req.GetCampaignId())
	if err != nil {
		return nil, grpcError(s.Log, "CheckDoNotCall", err)
	}
	number, err := normalizeIn(req.GetNumber(), country)
	if err != nil {
		return nil, ErrInvalidArgument.WithMsg(fmt.Sprintf("number: %v", err))
	}
	var found []string
	rows, err := s.DB.Query(ctx, `SELECT scope FROM dialer.dnc WHERE account_id = $1 AND number = $2 AND scope IN ('', $3) ORDER BY scope`,
		account, number, scope)
	if err == nil {
		found, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil {
		return nil, grpcError(s.Log, "CheckDoNotCall", err)
	}
	resp := &dialerv1.CheckDoNotCallResponse{Number: number, Blocked: len(found) > 0}
	if len(found) > 0 {
		resp.List = found[0] // '' sorts first
		if resp.List == "" {
			resp.List = dncAccountList
		}
	}
	return resp, nil
}

// ListDoNotCall pages through a do-not-call list by number.
func (s *Server) ListDoNotCall(ctx context.Context, req *dialerv1.ListDoNotCallRequest) (*dialerv1.ListDoNotCallResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	after := ""
	if t := req.GetPageToken(); t != "" {
		b, err := base64.RawURLEncoding.DecodeString(t)
		if err != nil || !strings.HasPrefix(string(b), "+") {
			return nil, ErrInvalidPageToken
		}
		after = string(b)
	}
	scope, _, err := s.dncScope(ctx, account, req.GetCampaignId())
	if err != nil {
		return nil, grpcError(s.Log, "ListDoNotCall", err)
	}
	rows, err := s.DB.Query(ctx, `SELECT number, reason, created_at FROM dialer.dnc
		WHERE account_id = $1 AND scope = $2 AND number > $3 ORDER BY number LIMIT $4`, account, scope, after, size+1)
	if err != nil {
		return nil, grpcError(s.Log, "ListDoNotCall", err)
	}
	entries, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*dialerv1.DoNotCallEntry, error) {
		var (
			e       dialerv1.DoNotCallEntry
			created time.Time
		)
		if err := row.Scan(&e.Number, &e.Reason, &created); err != nil {
			return nil, err
		}
		e.CreatedAt = timestamppb.New(created)
		return &e, nil
	})
	if err != nil {
		return nil, grpcError(s.Log, "ListDoNotCall", err)
	}
	resp := &dialerv1.ListDoNotCallResponse{Entries: entries}
	if len(entries) > size {
		resp.Entries = entries[:size]
		resp.NextPageToken = base64.RawURLEncoding.EncodeToString([]byte(entries[size-1].GetNumber()))
	}
	return resp, nil
}

// BlockedNumbers returns which of numbers (E.164) are on the account's
// do-not-call list or on the campaign's ("" : the account's only).
func BlockedNumbers(ctx context.Context, db *pgxpool.Pool, account, campaign string, numbers []string) (map[string]bool, error) {
	blocked := map[string]bool{}
	if len(numbers) == 0 {
		return blocked, nil
	}
	rows, err := db.Query(ctx, `SELECT DISTINCT number FROM dialer.dnc WHERE account_id = $1 AND scope IN ('', $2) AND number = ANY($3)`,
		account, campaign, numbers)
	if err != nil {
		return nil, fmt.Errorf("check do-not-call: %w", err)
	}
	var n string
	if _, err := pgx.ForEachRow(rows, []any{&n}, func() error {
		blocked[n] = true
		return nil
	}); err != nil {
		return nil, fmt.Errorf("check do-not-call: %w", err)
	}
	return blocked, nil
}

// LockedNumbers are those of numbers whose call was abandoned (by any
// campaign of the account) and whose lockout has not ended at now, with its
// end.
func LockedNumbers(ctx context.Context, db *pgxpool.Pool, account string, numbers []string, now time.Time) (map[string]time.Time, error) {
	locked := map[string]time.Time{}
	if len(numbers) == 0 {
		return locked, nil
	}
	rows, err := db.Query(ctx, `SELECT number, until FROM dialer.abandoned_numbers
		WHERE account_id = $1 AND number = ANY($2) AND until > $3`, account, numbers, now)
	if err != nil {
		return nil, fmt.Errorf("abandoned numbers: %w", err)
	}
	var (
		n string
		t time.Time
	)
	if _, err := pgx.ForEachRow(rows, []any{&n, &t}, func() error { locked[n] = t; return nil }); err != nil {
		return nil, fmt.Errorf("abandoned numbers: %w", err)
	}
	return locked, nil
}

// pageSize is a list request's page size: 0 is 100, at most 1000.
func pageSize(n int32) (int, error) {
	switch {
	case n < 0 || n > 1000:
		return 0, ErrInvalidArgument.WithMsg("page_size must be between 0 (100) and 1000")
	case n == 0:
		return 100, nil
	}
	return int(n), nil
}
