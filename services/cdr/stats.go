package cdr

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	cdrv1 "github.com/ringback/ringback/proto/gen/go/ringback/cdr/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
)

// StatisticsServer is the StatisticsService gRPC API.
type StatisticsServer struct {
	cdrv1.UnimplementedStatisticsServiceServer
	Store *Store
	// Now is the clock: the end of ranges without one, and "today"
	// (nil: time.Now).
	Now func() time.Time
}

func (s *StatisticsServer) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// GetStatistics aggregates the caller's records of a range by period and
// campaign or endpoint.
func (s *StatisticsServer) GetStatistics(ctx context.Context, req *cdrv1.GetStatisticsRequest) (*cdrv1.GetStatisticsResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	q, err := QueryFrom(account, req.GetFilter(), s.now())
	if err != nil {
		return nil, err
	}
	loc, err := location(req.GetTimeZone())
	if err != nil {
		return nil, err
	}
	rows, total, err := s.Store.Statistics(ctx, q, req.GetPeriod(), req.GetGroupBy(), loc)
	if err != nil {
		return nil, err
	}
	return &cdrv1.GetStatisticsResponse{Rows: rows, Total: total}, nil
}

// CompareStatistics aggregates two ranges of the caller's records with the
// same other conditions.
func (s *StatisticsServer) CompareStatistics(ctx context.Context, req *cdrv1.CompareStatisticsRequest) (*cdrv1.CompareStatisticsResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	now := s.now()
	cur, err := QueryFrom(account, req.GetFilter(), now)
	if err != nil {
		return nil, err
	}
	other := &cdrv1.CdrFilter{}
	if f := req.GetFilter(); f != nil {
		other = proto.CloneOf(f)
	}
	other.StartTime, other.EndTime = req.GetCompareStartTime(), req.GetCompareEndTime()
	prev, err := QueryFrom(account, other, now)
	if err != nil {
		// The other conditions passed above: the error is about the range.
		var e *Error
		if errors.As(err, &e) {
			return nil, e.WithMsg("compare range (compare_start_time, compare_end_time): " + e.Msg)
		}
		return nil, err
	}
	st, err := s.Store.Totals(ctx, cur, prev)
	if err != nil {
		return nil, err
	}
	return &cdrv1.CompareStatisticsResponse{Current: st[0], Previous: st[1], Change: change(st[0], st[1])}, nil
}

// GetTodayStatistics gives the caller's figures since the start of today in
// a time zone, in total and by hour.
func (s *StatisticsServer) GetTodayStatistics(ctx context.Context, req *cdrv1.GetTodayStatisticsRequest) (*cdrv1.GetTodayStatisticsResponse, error) {
	account, err := accountFrom(ctx)
	if err != nil {
		return nil, err
	}
	loc, err := location(req.GetTimeZone())
	if err != nil {
		return nil, err
	}
	since := startOfDay(s.now(), loc)
	d := since.In(loc)
	// Up to the start of tomorrow rather than now: a call whose record
	// came from a host with its clock slightly ahead is still today's.
	// Noon is never skipped by a DST change.
	until := startOfDay(time.Date(d.Year(), d.Month(), d.Day()+1, 12, 0, 0, 0, loc), loc)
	q := Query{Account: account, Start: since, End: until}
	hours, today, err := s.Store.Statistics(ctx, q, cdrv1.Period_PERIOD_HOUR, cdrv1.GroupBy_GROUP_BY_UNSPECIFIED, loc)
	if err != nil {
		return nil, err
	}
	return &cdrv1.GetTodayStatisticsResponse{Since: timestamppb.New(since), Today: today, Hours: hours}, nil
}

// startOfDay is the first instant of t's day in loc: midnight, or the end
// of the DST change that skipped it.
func startOfDay(t time.Time, loc *time.Location) time.Time {
	t = t.In(loc)
	s := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
	if s.Day() != t.Day() {
		// time.Date gave the skipped midnight in the old offset: the
		// previous day.
		_, end := s.ZoneBounds()
		s = end
	}
	return s
}

// periodUnit is date_trunc's unit for a period ("" for none).
func periodUnit(p cdrv1.Period) (string, error) {
	switch p {
	case cdrv1.Period_PERIOD_UNSPECIFIED:
		return "", nil
	case cdrv1.Period_PERIOD_HOUR:
		return "hour", nil
	case cdrv1.Period_PERIOD_DAY:
		return "day", nil
	case cdrv1.Period_PERIOD_WEEK:
		return "week", nil // ISO: Monday
	case cdrv1.Period_PERIOD_MONTH:
		return "month", nil
	}
	return "", ErrInvalidArgument.WithMsg(fmt.Sprintf("period %d: want PERIOD_HOUR, PERIOD_DAY, PERIOD_WEEK, PERIOD_MONTH or unset", p))
}

// statsCols are the figures of a group of records. Groups are split by
// failure reason too, which tally folds into failures_by_reason.
//
// A click-to-call campaign call is one with a visitor leg (visitor_leg <>
// 0): its failures are the visitor's or the company's as origination names
// its outcome (FAILED CALLING TO USER when the failed leg is the visitor's,
// TO COMPANY otherwise), and only its completion is billed its price.
// Records from before visitor_leg was stored have 0 there, and so count in
// failed_first and failed_second only, as calls outside campaigns do.
var statsCols = fmt.Sprintf(`failure_reason, count(*),
    count(*) FILTER (WHERE status = %[1]d),
    count(*) FILTER (WHERE status = %[2]d),
    count(*) FILTER (WHERE status = %[2]d AND failed_leg = %[4]d),
    count(*) FILTER (WHERE status = %[2]d AND failed_leg = %[5]d),
    count(*) FILTER (WHERE status = %[3]d),
    sum(duration_s), sum(billsec), coalesce(sum(billsec) FILTER (WHERE status = %[1]d), 0),
    sum(cost_micros)::bigint, max(currency),
    count(*) FILTER (WHERE status = %[2]d AND visitor_leg <> 0 AND failed_leg = visitor_leg),
    count(*) FILTER (WHERE status = %[2]d AND visitor_leg <> 0 AND failed_leg <> visitor_leg),
    sum(attempts - 1),
    coalesce(sum(price_micros) FILTER (WHERE status = %[1]d AND visitor_leg <> 0), 0)::bigint`,
	originationv1.CallStatus_CALL_STATUS_COMPLETED, originationv1.CallStatus_CALL_STATUS_FAILED,
	originationv1.CallStatus_CALL_STATUS_CANCELED, originationv1.LegRole_LEG_ROLE_FIRST, originationv1.LegRole_LEG_ROLE_SECOND)

// endpointKeys gives each record one row per distinct endpoint of its
// legs, or one row with the empty key when no leg went to an endpoint.
const endpointKeys = ` CROSS JOIN LATERAL (SELECT DISTINCT e FROM unnest(ARRAY[first_endpoint, second_endpoint]) AS u(e)
    WHERE e <> '' OR (first_endpoint = '' AND second_endpoint = '')) AS k(key)`

// tally is the figures of a set of records as integers, added up exactly
// before the ratios are taken.
type tally struct {
	calls, completed, failed, failedFirst, failedSecond, canceled int64
	durationS, billsec, completedBillsec, costMicros              int64
	currency                                                      string
	reasons                                                       map[string]int64
	failedVisitor, failedCompany, redials, completedPriceMicros   int64
}

// scanTally reads a row of statsCols after the lead columns.
func scanTally(rows pgx.Rows, lead ...any) (tally, error) {
	var (
		t      tally
		reason int16
	)
	err := rows.Scan(append(lead, &reason, &t.calls, &t.completed, &t.failed, &t.failedFirst, &t.failedSecond, &t.canceled,
		&t.durationS, &t.billsec, &t.completedBillsec, &t.costMicros, &t.currency,
		&t.failedVisitor, &t.failedCompany, &t.redials, &t.completedPriceMicros)...)
	if err == nil && t.failed > 0 {
		name := strings.TrimPrefix(originationv1.FailureReason(reason).String(), "FAILURE_REASON_")
		t.reasons = map[string]int64{name: t.failed}
	}
	return t, err
}

func (t *tally) add(o tally) {
	t.calls += o.calls
	t.completed += o.completed
	t.failed += o.failed
	t.failedFirst += o.failedFirst
	t.failedSecond += o.failedSecond
	t.canceled += o.canceled
	t.durationS += o.durationS
	t.billsec += o.billsec
	t.completedBillsec += o.completedBillsec
	t.costMicros += o.costMicros
	t.failedVisitor += o.failedVisitor
	t.failedCompany += o.failedCompany
	t.redials += o.redials
	t.completedPriceMicros += o.completedPriceMicros
	// One currency per account; should they mix, the greatest, as
	// max(currency) would give.
	t.currency = max(t.currency, o.currency)
	for k, n := range o.reasons {
		if t.reasons == nil {
			t.reasons = map[string]int64{}
		}
		t.reasons[k] += n
	}
}

func ratio(a, b int64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func (t *tally) stats() *cdrv1.Stats {
	return &cdrv1.Stats{
		Calls: t.calls, Completed: t.completed, Failed: t.failed, FailedFirst: t.failedFirst, FailedSecond: t.failedSecond,
		Canceled: t.canceled, FailuresByReason: t.reasons,
		AnswerRate:     ratio(t.completed, t.calls),
		TotalDurationS: t.durationS, AverageDurationS: ratio(t.durationS, t.calls),
		TotalBillsec: t.billsec, AverageBillsec: ratio(t.completedBillsec, t.completed),
		CostMicros: t.costMicros, Currency: t.currency,
		FailedVisitor: t.failedVisitor, FailedCompany: t.failedCompany, Redials: t.redials,
		CompletedPriceMicros: t.completedPriceMicros,
	}
}

// statsErr maps PostgreSQL's refusal of a zone name (its zone database
// may lack a name Go's has) to INVALID_TIME_ZONE.
func statsErr(err error, loc *time.Location) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "22023" && strings.Contains(pe.Message, "time zone") {
		return ErrInvalidTimeZone.WithMsg(fmt.Sprintf("time_zone %q is not known to the database", loc.String()))
	}
	return fmt.Errorf("statistics: %w", err)
}

// Statistics aggregates q's records by period (aligned in loc) and
// campaign or endpoint: rows ordered by period then key, only for groups
// with records, and the total of all of q's records (with GROUP_BY_ENDPOINT
// a call counts once in the total, but once per endpoint in the rows).
// Rows and total are read from one snapshot.
func (s *Store) Statistics(ctx context.Context, q Query, period cdrv1.Period, groupBy cdrv1.GroupBy, loc *time.Location) ([]*cdrv1.StatsRow, *cdrv1.Stats, error) {
	unit, err := periodUnit(period)
	if err != nil {
		return nil, nil, err
	}
	args := make([]any, 0, 12)
	where := q.where(&args)
	periodCol := "NULL::timestamptz"
	if unit != "" {
		args = append(args, loc.String())
		periodCol = fmt.Sprintf("date_trunc('%s', created_at, $%d)", unit, len(args))
	}
	keyCol, join := "''::text", ""
	switch groupBy {
	case cdrv1.GroupBy_GROUP_BY_UNSPECIFIED:
	case cdrv1.GroupBy_GROUP_BY_CAMPAIGN:
		keyCol = "campaign_id"
	case cdrv1.GroupBy_GROUP_BY_ENDPOINT:
		keyCol, join = "k.key", endpointKeys
	default:
		return nil, nil, ErrInvalidArgument.WithMsg(fmt.Sprintf("group_by %d: want GROUP_BY_CAMPAIGN, GROUP_BY_ENDPOINT or unset", groupBy))
	}
	rowsSQL := fmt.Sprintf(`SELECT %s, %s, %s FROM cdr.cdrs%s WHERE %s GROUP BY 1, 2, 3`, periodCol, keyCol, statsCols, join, where)

	type groupKey struct {
		start time.Time // zero: not bucketed
		key   string
	}
	groups := map[groupKey]*tally{}
	var total tally
	err = pgx.BeginTxFunc(ctx, s.DB, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, rowsSQL, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				start *time.Time
				key   string
			)
			t, err := scanTally(rows, &start, &key)
			if err != nil {
				return err
			}
			k := groupKey{key: key}
			if start != nil {
				k.start = *start
			}
			if groups[k] == nil {
				groups[k] = &tally{}
			}
			groups[k].add(t)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		total, err = totalOf(ctx, tx, q)
		return err
	})
	if err != nil {
		return nil, nil, statsErr(err, loc)
	}
	keys := make([]groupKey, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b groupKey) int {
		return cmp.Or(a.start.Compare(b.start), strings.Compare(a.key, b.key))
	})
	out := make([]*cdrv1.StatsRow, len(keys))
	for i, k := range keys {
		out[i] = &cdrv1.StatsRow{Key: k.key, Stats: groups[k].stats()}
		if !k.start.IsZero() {
			out[i].PeriodStart = timestamppb.New(k.start)
		}
	}
	return out, total.stats(), nil
}

// Totals aggregates each query's records, all from one snapshot.
func (s *Store) Totals(ctx context.Context, qs ...Query) ([]*cdrv1.Stats, error) {
	out := make([]*cdrv1.Stats, len(qs))
	err := pgx.BeginTxFunc(ctx, s.DB, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		for i, q := range qs {
			t, err := totalOf(ctx, tx, q)
			if err != nil {
				return err
			}
			out[i] = t.stats()
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("statistics: %w", err)
	}
	return out, nil
}

func totalOf(ctx context.Context, tx pgx.Tx, q Query) (tally, error) {
	args := make([]any, 0, 12)
	where := q.where(&args)
	rows, err := tx.Query(ctx, `SELECT `+statsCols+` FROM cdr.cdrs WHERE `+where+` GROUP BY failure_reason`, args...)
	if err != nil {
		return tally{}, err
	}
	defer rows.Close()
	var total tally
	for rows.Next() {
		t, err := scanTally(rows)
		if err != nil {
			return tally{}, err
		}
		total.add(t)
	}
	return total, rows.Err()
}

// change is the relative change of each figure from prev to cur, keyed by
// the Stats field name; figures that were 0 are left out (no ratio), and
// so is the cost when the two ranges were rated in different currencies.
func change(cur, prev *cdrv1.Stats) map[string]float64 {
	out := map[string]float64{}
	add := func(name string, c, p float64) {
		if p != 0 {
			out[name] = (c - p) / p
		}
	}
	add("calls", float64(cur.GetCalls()), float64(prev.GetCalls()))
	add("completed", float64(cur.GetCompleted()), float64(prev.GetCompleted()))
	add("failed", float64(cur.GetFailed()), float64(prev.GetFailed()))
	add("failed_first", float64(cur.GetFailedFirst()), float64(prev.GetFailedFirst()))
	add("failed_second", float64(cur.GetFailedSecond()), float64(prev.GetFailedSecond()))
	add("canceled", float64(cur.GetCanceled()), float64(prev.GetCanceled()))
	add("failed_visitor", float64(cur.GetFailedVisitor()), float64(prev.GetFailedVisitor()))
	add("failed_company", float64(cur.GetFailedCompany()), float64(prev.GetFailedCompany()))
	add("redials", float64(cur.GetRedials()), float64(prev.GetRedials()))
	add("completed_price_micros", float64(cur.GetCompletedPriceMicros()), float64(prev.GetCompletedPriceMicros()))
	add("answer_rate", cur.GetAnswerRate(), prev.GetAnswerRate())
	add("total_duration_s", float64(cur.GetTotalDurationS()), float64(prev.GetTotalDurationS()))
	add("average_duration_s", cur.GetAverageDurationS(), prev.GetAverageDurationS())
	add("total_billsec", float64(cur.GetTotalBillsec()), float64(prev.GetTotalBillsec()))
	add("average_billsec", cur.GetAverageBillsec(), prev.GetAverageBillsec())
	if c, p := cur.GetCurrency(), prev.GetCurrency(); c == p || c == "" || p == "" {
		add("cost_micros", float64(cur.GetCostMicros()), float64(prev.GetCostMicros()))
	}
	return out
}
