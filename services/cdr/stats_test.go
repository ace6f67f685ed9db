package cdr

import (
	"context"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	cdrv1 "github.com/ringback/ringback/proto/gen/go/ringback/cdr/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	"github.com/ringback/ringback/services/internal/store"
	"github.com/ringback/ringback/services/internal/store/storetest"
)

const (
	sCompleted = originationv1.CallStatus_CALL_STATUS_COMPLETED
	sFailed    = originationv1.CallStatus_CALL_STATUS_FAILED
	sCanceled  = originationv1.CallStatus_CALL_STATUS_CANCELED
	legFirst   = originationv1.LegRole_LEG_ROLE_FIRST
	legSecond  = originationv1.LegRole_LEG_ROLE_SECOND
	rBusy      = originationv1.FailureReason_FAILURE_REASON_BUSY
	rNoAnswer  = originationv1.FailureReason_FAILURE_REASON_NO_ANSWER
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// tevStatsCalls are account acct-a's calls of March 2024 the statistics
// tests aggregate (times UTC; Tokyo is 9 hours ahead):
//
//	c1 03-04 01:10 camp-a COMPLETED  ep-1 -> number          60 s, 45 billsec, 100000+250000 USD
//	c2 03-04 01:50 camp-a FAILED     ep-1 -> ep-2, SECOND BUSY  20 s, 5000
//	c3 03-04 23:30 -      COMPLETED  numbers only           120 s, 100 billsec, 300000 (Tokyo: 03-05)
//	c6 03-05 02:00 camp-a FAILED     numbers, FIRST BUSY     15 s
//	c4 03-10 20:00 camp-b FAILED     ep-2 -> ep-2, FIRST NO_ANSWER 30 s, rated, cost 0 (Tokyo: Monday 03-11)
//	c5 03-31 16:00 camp-b CANCELED   ep-1 -> number, unrated 10 s (Tokyo: 04-01)
//
// and one call of acct-b's among them.
func tevStatsCalls() []tevSpec {
	return []tevSpec{
		{ID: "c1", Created: utc("2024-03-04T01:10:00Z"), Campaign: "camp-a", Status: sCompleted, FirstEndpoint: "ep-1",
			DurationS: 60, Billsec: 45, FirstCost: 100_000, SecondCost: 250_000},
		{ID: "c2", Created: utc("2024-03-04T01:50:00Z"), Campaign: "camp-a", Status: sFailed, FailedLeg: legSecond, Reason: rBusy,
			FirstEndpoint: "ep-1", SecondEndpoint: "ep-2", DurationS: 20, FirstCost: 5_000},
		{ID: "c3", Created: utc("2024-03-04T23:30:00Z"), Status: sCompleted, DurationS: 120, Billsec: 100, SecondCost: 300_000},
		{ID: "c6", Created: utc("2024-03-05T02:00:00Z"), Campaign: "camp-a", Status: sFailed, FailedLeg: legFirst, Reason: rBusy, DurationS: 15},
		{ID: "c4", Created: utc("2024-03-10T20:00:00Z"), Campaign: "camp-b", Status: sFailed, FailedLeg: legFirst, Reason: rNoAnswer,
			FirstEndpoint: "ep-2", SecondEndpoint: "ep-2", DurationS: 30},
		{ID: "c5", Created: utc("2024-03-31T16:00:00Z"), Campaign: "camp-b", Status: sCanceled, FirstEndpoint: "ep-1", DurationS: 10, Unrated: true},
		{ID: "b1", Account: "acct-b", Created: utc("2024-03-04T01:30:00Z"), Campaign: "camp-a", Status: sCompleted, FirstEndpoint: "ep-1",
			DurationS: 3600, Billsec: 3500, FirstCost: 9_000_000, SecondCost: 1},
	}
}

func statsEnv(t *testing.T) *StatisticsServer {
	st := tdbOpen(t)
	tdbInsert(t, st, tevStatsCalls()...)
	return &StatisticsServer{Store: st, Now: func() time.Time { return utc("2024-03-05T03:20:00Z") }}
}

func march(f *cdrv1.CdrFilter) *cdrv1.CdrFilter {
	if f == nil {
		f = &cdrv1.CdrFilter{}
	}
	f.StartTime, f.EndTime = timestamppb.New(utc("2024-03-01T00:00:00Z")), timestamppb.New(utc("2024-04-05T00:00:00Z"))
	return f
}

// rowsDigest is "period_start key calls" of each row, one a line.
func rowsDigest(rows []*cdrv1.StatsRow) string {
	var b strings.Builder
	for _, r := range rows {
		start := "-"
		if r.GetPeriodStart() != nil {
			start = r.GetPeriodStart().AsTime().Format(time.RFC3339)
		}
		fmt.Fprintf(&b, "%s %q %d\n", start, r.GetKey(), r.GetStats().GetCalls())
	}
	return b.String()
}

func TestStatisticsTotals(t *testing.T) {
	t.Parallel()
	srv := statsEnv(t)
	resp, err := srv.GetStatistics(tdbAs("acct-a"), &cdrv1.GetStatisticsRequest{Filter: march(nil)})
	if err != nil {
		t.Fatal(err)
	}
	want := &cdrv1.Stats{
		Calls: 6, Completed: 2, Failed: 3, FailedFirst: 2, FailedSecond: 1, Canceled: 1,
		FailuresByReason: map[string]int64{"BUSY": 2, "NO_ANSWER": 1},
		AnswerRate:       2.0 / 6, TotalDurationS: 255, AverageDurationS: 42.5,
		TotalBillsec: 145, AverageBillsec: 72.5, CostMicros: 655_000, Currency: "USD",
	}
	wantProto(t, "total", resp.GetTotal(), want)
	// Not bucketed nor split: one row, the total.
	if len(resp.GetRows()) != 1 || resp.GetRows()[0].GetPeriodStart() != nil || resp.GetRows()[0].GetKey() != "" {
		t.Fatalf("rows = %s", rowsDigest(resp.GetRows()))
	}
	wantProto(t, "the one row", resp.GetRows()[0].GetStats(), want)

	// The filter applies (QueryFrom, Query.where).
	resp, err = srv.GetStatistics(tdbAs("acct-a"), &cdrv1.GetStatisticsRequest{Filter: march(&cdrv1.CdrFilter{FailedLeg: legFirst})})
	if err != nil {
		t.Fatal(err)
	}
	wantProto(t, "total of first-leg failures", resp.GetTotal(), &cdrv1.Stats{
		Calls: 2, Failed: 2, FailedFirst: 2, FailuresByReason: map[string]int64{"BUSY": 1, "NO_ANSWER": 1},
		TotalDurationS: 45, AverageDurationS: 22.5, Currency: "USD",
	})
}

func TestStatisticsPeriods(t *testing.T) {
	t.Parallel()
	srv := statsEnv(t)
	tests := []struct {
		period cdrv1.Period
		zone   string
		want   string
	}{
		{cdrv1.Period_PERIOD_HOUR, "Asia/Tokyo", `2024-03-04T01:00:00Z "" 2
2024-03-04T23:00:00Z "" 1
2024-03-05T02:00:00Z "" 1
2024-03-10T20:00:00Z "" 1
2024-03-31T16:00:00Z "" 1
`},
		// Clock hours of a zone half an hour off UTC.
		{cdrv1.Period_PERIOD_HOUR, "Asia/Kolkata", `2024-03-04T00:30:00Z "" 1
2024-03-04T01:30:00Z "" 1
2024-03-04T23:30:00Z "" 1
2024-03-05T01:30:00Z "" 1
2024-03-10T19:30:00Z "" 1
2024-03-31T15:30:00Z "" 1
`},
		// 23:30 UTC is the next morning in Tokyo.
		{cdrv1.Period_PERIOD_DAY, "Asia/Tokyo", `2024-03-03T15:00:00Z "" 2
2024-03-04T15:00:00Z "" 2
2024-03-10T15:00:00Z "" 1
2024-03-31T15:00:00Z "" 1
`},
		{cdrv1.Period_PERIOD_DAY, "", `2024-03-04T00:00:00Z "" 3
2024-03-05T00:00:00Z "" 1
2024-03-10T00:00:00Z "" 1
2024-03-31T00:00:00Z "" 1
`},
		// Sunday 20:00 UTC is Monday in Tokyo: the next ISO week.
		{cdrv1.Period_PERIOD_WEEK, "Asia/Tokyo", `2024-03-03T15:00:00Z "" 4
2024-03-10T15:00:00Z "" 1
2024-03-31T15:00:00Z "" 1
`},
		{cdrv1.Period_PERIOD_WEEK, "UTC", `2024-03-04T00:00:00Z "" 5
2024-03-25T00:00:00Z "" 1
`},
		{cdrv1.Period_PERIOD_MONTH, "Asia/Tokyo", `2024-02-29T15:00:00Z "" 5
2024-03-31T15:00:00Z "" 1
`},
		{cdrv1.Period_PERIOD_MONTH, "", `2024-03-01T00:00:00Z "" 6
`},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s %s", tt.period, tt.zone), func(t *testing.T) {
			resp, err := srv.GetStatistics(tdbAs("acct-a"), &cdrv1.GetStatisticsRequest{Filter: march(nil), Period: tt.period, TimeZone: tt.zone})
			if err != nil {
				t.Fatal(err)
			}
			if got := rowsDigest(resp.GetRows()); got != tt.want {
				t.Fatalf("rows:\n%s\nwant:\n%s", got, tt.want)
			}
			if resp.GetTotal().GetCalls() != 6 {
				t.Fatalf("total calls = %d, want 6", resp.GetTotal().GetCalls())
			}
		})
	}

	// A bucket's figures are exact: Tokyo's March 4th is c1 and c2.
	resp, err := srv.GetStatistics(tdbAs("acct-a"), &cdrv1.GetStatisticsRequest{Filter: march(nil), Period: cdrv1.Period_PERIOD_DAY, TimeZone: "Asia/Tokyo"})
	if err != nil {
		t.Fatal(err)
	}
	wantProto(t, "Tokyo's March 4th", resp.GetRows()[0].GetStats(), &cdrv1.Stats{
		Calls: 2, Completed: 1, Failed: 1, FailedSecond: 1, FailuresByReason: map[string]int64{"BUSY": 1},
		AnswerRate: 0.5, TotalDurationS: 80, AverageDurationS: 40, TotalBillsec: 45, AverageBillsec: 45,
		CostMicros: 355_000, Currency: "USD",
	})
}

func TestStatisticsGroups(t *testing.T) {
	t.Parallel()
	srv := statsEnv(t)
	ctx := tdbAs("acct-a")

	resp, err := srv.GetStatistics(ctx, &cdrv1.GetStatisticsRequest{Filter: march(nil), GroupBy: cdrv1.GroupBy_GROUP_BY_CAMPAIGN})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rowsDigest(resp.GetRows()), "- \"\" 1\n- \"camp-a\" 3\n- \"camp-b\" 2\n"; got != want {
		t.Fatalf("rows by campaign:\n%s\nwant:\n%s", got, want)
	}
	rows := resp.GetRows()
	wantProto(t, "no campaign", rows[0].GetStats(), &cdrv1.Stats{
		Calls: 1, Completed: 1, AnswerRate: 1, TotalDurationS: 120, AverageDurationS: 120, TotalBillsec: 100, AverageBillsec: 100,
		CostMicros: 300_000, Currency: "USD",
	})
	wantProto(t, "camp-a", rows[1].GetStats(), &cdrv1.Stats{
		Calls: 3, Completed: 1, Failed: 2, FailedFirst: 1, FailedSecond: 1, FailuresByReason: map[string]int64{"BUSY": 2},
		AnswerRate: 1.0 / 3, TotalDurationS: 95, AverageDurationS: 95.0 / 3, TotalBillsec: 45, AverageBillsec: 45,
		CostMicros: 355_000, Currency: "USD",
	})
	// c5 was not rated: the campaign's currency is still c4's.
	wantProto(t, "camp-b", rows[2].GetStats(), &cdrv1.Stats{
		Calls: 2, Failed: 1, FailedFirst: 1, Canceled: 1, FailuresByReason: map[string]int64{"NO_ANSWER": 1},
		TotalDurationS: 40, AverageDurationS: 20, Currency: "USD",
	})

	// A call counts for each distinct endpoint of its legs; the total
	// counts it once.
	resp, err = srv.GetStatistics(ctx, &cdrv1.GetStatisticsRequest{Filter: march(nil), GroupBy: cdrv1.GroupBy_GROUP_BY_ENDPOINT})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rowsDigest(resp.GetRows()), "- \"\" 2\n- \"ep-1\" 3\n- \"ep-2\" 2\n"; got != want {
		t.Fatalf("rows by endpoint:\n%s\nwant:\n%s", got, want)
	}
	if resp.GetTotal().GetCalls() != 6 || resp.GetTotal().GetCostMicros() != 655_000 {
		t.Fatalf("total by endpoint = %v, want each call once", resp.GetTotal())
	}
	wantProto(t, "ep-2", resp.GetRows()[2].GetStats(), &cdrv1.Stats{
		Calls: 2, Failed: 2, FailedFirst: 1, FailedSecond: 1, FailuresByReason: map[string]int64{"BUSY": 1, "NO_ANSWER": 1},
		TotalDurationS: 50, AverageDurationS: 25, CostMicros: 5_000, Currency: "USD",
	})

	// Period and key together, by period then key; the endpoint filter
	// keeps ep-1's calls, which still count for their other endpoints.
	resp, err = srv.GetStatistics(ctx, &cdrv1.GetStatisticsRequest{Filter: march(&cdrv1.CdrFilter{EndpointId: "ep-1"}),
		Period: cdrv1.Period_PERIOD_DAY, GroupBy: cdrv1.GroupBy_GROUP_BY_ENDPOINT, TimeZone: "Asia/Tokyo"})
	if err != nil {
		t.Fatal(err)
	}
	want := "2024-03-03T15:00:00Z \"ep-1\" 2\n2024-03-03T15:00:00Z \"ep-2\" 1\n2024-03-31T15:00:00Z \"ep-1\" 1\n"
	if got := rowsDigest(resp.GetRows()); got != want {
		t.Fatalf("rows by day and endpoint:\n%s\nwant:\n%s", got, want)
	}
}

func TestStatisticsTenantIsolation(t *testing.T) {
	t.Parallel()
	srv := statsEnv(t)
	resp, err := srv.GetStatistics(tdbAs("acct-b"), &cdrv1.GetStatisticsRequest{Filter: march(nil), GroupBy: cdrv1.GroupBy_GROUP_BY_ENDPOINT})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rowsDigest(resp.GetRows()), "- \"ep-1\" 1\n"; got != want {
		t.Fatalf("acct-b's rows:\n%s\nwant:\n%s", got, want)
	}
	if tot := resp.GetTotal(); tot.GetCalls() != 1 || tot.GetCostMicros() != 9_000_001 || tot.GetTotalDurationS() != 3600 {
		t.Fatalf("acct-b's total = %v", tot)
	}
	resp, err = srv.GetStatistics(tdbAs("acct-c"), &cdrv1.GetStatisticsRequest{Filter: march(nil), Period: cdrv1.Period_PERIOD_DAY})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.GetRows()) != 0 {
		t.Fatalf("acct-c's rows = %s", rowsDigest(resp.GetRows()))
	}
	wantProto(t, "acct-c's total", resp.GetTotal(), &cdrv1.Stats{})
	today, err := srv.GetTodayStatistics(tdbAs("acct-b"), &cdrv1.GetTodayStatisticsRequest{TimeZone: "Asia/Tokyo"})
	if err != nil {
		t.Fatal(err)
	}
	if today.GetToday().GetCalls() != 0 || len(today.GetHours()) != 0 {
		t.Fatalf("acct-b's today = %v", today)
	}
	cmp, err := srv.CompareStatistics(tdbAs("acct-b"), &cdrv1.CompareStatisticsRequest{Filter: march(nil),
		CompareStartTime: timestamppb.New(utc("2024-02-01T00:00:00Z")), CompareEndTime: timestamppb.New(utc("2024-03-01T00:00:00Z"))})
	if err != nil {
		t.Fatal(err)
	}
	if cmp.GetCurrent().GetCalls() != 1 || cmp.GetPrevious().GetCalls() != 0 || len(cmp.GetChange()) != 0 {
		t.Fatalf("acct-b's comparison = %v", cmp)
	}
}

func TestStatisticsCompare(t *testing.T) {
	t.Parallel()
	srv := statsEnv(t)
	// Current: 03-05 to 03-12 (c6, c4: two first-leg failures); previous:
	// 03-04 (c1, c2, c3).
	resp, err := srv.CompareStatistics(tdbAs("acct-a"), &cdrv1.CompareStatisticsRequest{
		Filter:           &cdrv1.CdrFilter{StartTime: timestamppb.New(utc("2024-03-05T00:00:00Z")), EndTime: timestamppb.New(utc("2024-03-12T00:00:00Z"))},
		CompareStartTime: timestamppb.New(utc("2024-03-04T00:00:00Z")), CompareEndTime: timestamppb.New(utc("2024-03-05T00:00:00Z")),
	})
	if err != nil {
		t.Fatal(err)
	}
	cur := &cdrv1.Stats{Calls: 2, Failed: 2, FailedFirst: 2, FailuresByReason: map[string]int64{"BUSY": 1, "NO_ANSWER": 1},
		TotalDurationS: 45, AverageDurationS: 22.5, Currency: "USD"}
	prev := &cdrv1.Stats{Calls: 3, Completed: 2, Failed: 1, FailedSecond: 1, FailuresByReason: map[string]int64{"BUSY": 1},
		AnswerRate: 2.0 / 3, TotalDurationS: 200, AverageDurationS: 200.0 / 3, TotalBillsec: 145, AverageBillsec: 72.5,
		CostMicros: 655_000, Currency: "USD"}
	wantProto(t, "current", resp.GetCurrent(), cur)
	wantProto(t, "previous", resp.GetPrevious(), prev)
	rel := func(c, p float64) float64 { return (c - p) / p }
	want := map[string]float64{
		"calls":              rel(2, 3),
		"completed":          -1,
		"failed":             1,
		"failed_second":      -1,
		"answer_rate":        -1,
		"total_duration_s":   rel(45, 200),
		"average_duration_s": rel(22.5, 200.0/3),
		"total_billsec":      -1,
		"average_billsec":    -1,
		"cost_micros":        -1,
	} // failed_first and canceled were 0: left out
	got := resp.GetChange()
	if len(got) != len(want) {
		t.Fatalf("change = %v, want %v", got, want)
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Fatalf("change[%s] = %v (present %v), want %v; change = %v", k, g, ok, v, got)
		}
	}

	// Both ranges are validated; the second's errors say it is the second.
	_, err = srv.CompareStatistics(tdbAs("acct-a"), &cdrv1.CompareStatisticsRequest{Filter: march(nil),
		CompareStartTime: timestamppb.New(utc("2024-03-05T00:00:00Z")), CompareEndTime: timestamppb.New(utc("2024-03-04T00:00:00Z"))})
	tdbWantErr(t, err, codes.InvalidArgument, "INVALID_RANGE", "compare range (compare_start_time, compare_end_time): start_time")
	_, err = srv.CompareStatistics(tdbAs("acct-a"), &cdrv1.CompareStatisticsRequest{Filter: march(nil),
		CompareStartTime: timestamppb.New(utc("2022-01-01T00:00:00Z")), CompareEndTime: timestamppb.New(utc("2024-03-04T00:00:00Z"))})
	tdbWantErr(t, err, codes.InvalidArgument, "INVALID_RANGE", "366 days")
	_, err = srv.CompareStatistics(tdbAs("acct-a"), &cdrv1.CompareStatisticsRequest{Filter: &cdrv1.CdrFilter{
		StartTime: timestamppb.New(utc("2024-03-05T00:00:00Z")), EndTime: timestamppb.New(utc("2024-03-01T00:00:00Z"))}})
	tdbWantErr(t, err, codes.InvalidArgument, "INVALID_RANGE", "is not before")
	_, err = srv.CompareStatistics(tdbAs("acct-a"), &cdrv1.CompareStatisticsRequest{Filter: march(&cdrv1.CdrFilter{Country: "Mexico"})})
	tdbWantErr(t, err, codes.InvalidArgument, "INVALID_ARGUMENT", "country")
}

func TestStatisticsToday(t *testing.T) {
	t.Parallel()
	srv := statsEnv(t) // now: 2024-03-05T03:20Z, 12:20 in Tokyo
	tests := []struct {
		zone  string
		since string
		hours string
		calls int64
	}{
		// Tokyo's today began at 15:00 UTC the day before: c3 and c6.
		{"Asia/Tokyo", "2024-03-04T15:00:00Z", "2024-03-04T23:00:00Z \"\" 1\n2024-03-05T02:00:00Z \"\" 1\n", 2},
		{"", "2024-03-05T00:00:00Z", "2024-03-05T02:00:00Z \"\" 1\n", 1},
		// Still the 4th in Mexico City (UTC-6): c1 and c2 were the 3rd.
		{"America/Mexico_City", "2024-03-04T06:00:00Z", "2024-03-04T23:00:00Z \"\" 1\n2024-03-05T02:00:00Z \"\" 1\n", 2},
	}
	for _, tt := range tests {
		t.Run(tt.zone, func(t *testing.T) {
			resp, err := srv.GetTodayStatistics(tdbAs("acct-a"), &cdrv1.GetTodayStatisticsRequest{TimeZone: tt.zone})
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.GetSince().AsTime(); !got.Equal(utc(tt.since)) {
				t.Fatalf("since = %v, want %s", got, tt.since)
			}
			if got := rowsDigest(resp.GetHours()); got != tt.hours {
				t.Fatalf("hours:\n%s\nwant:\n%s", got, tt.hours)
			}
			if resp.GetToday().GetCalls() != tt.calls {
				t.Fatalf("today = %v, want %d calls", resp.GetToday(), tt.calls)
			}
		})
	}
	resp, err := srv.GetTodayStatistics(tdbAs("acct-a"), &cdrv1.GetTodayStatisticsRequest{TimeZone: "Asia/Tokyo"})
	if err != nil {
		t.Fatal(err)
	}
	wantProto(t, "Tokyo's today", resp.GetToday(), &cdrv1.Stats{
		Calls: 2, Completed: 1, Failed: 1, FailedFirst: 1, FailuresByReason: map[string]int64{"BUSY": 1},
		AnswerRate: 0.5, TotalDurationS: 135, AverageDurationS: 67.5, TotalBillsec: 100, AverageBillsec: 100,
		CostMicros: 300_000, Currency: "USD",
	})
	wantProto(t, "Tokyo's 08:00", resp.GetHours()[0].GetStats(), &cdrv1.Stats{
		Calls: 1, Completed: 1, AnswerRate: 1, TotalDurationS: 120, AverageDurationS: 120, TotalBillsec: 100, AverageBillsec: 100,
		CostMicros: 300_000, Currency: "USD",
	})
}

func TestStatisticsValidation(t *testing.T) {
	t.Parallel()
	srv := &StatisticsServer{Store: tdbOpen(t)}
	ctx := tdbAs("acct-a")
	tests := []struct {
		name   string
		req    *cdrv1.GetStatisticsRequest
		code   codes.Code
		reason string
		msg    string
	}{
		{"unknown time zone", &cdrv1.GetStatisticsRequest{Period: cdrv1.Period_PERIOD_DAY, TimeZone: "Mars/Olympus"}, codes.InvalidArgument, "INVALID_TIME_ZONE", "Mars/Olympus"},
		{"Go's Local", &cdrv1.GetStatisticsRequest{TimeZone: "Local"}, codes.InvalidArgument, "INVALID_TIME_ZONE", "Local"},
		{"unknown period", &cdrv1.GetStatisticsRequest{Period: 9}, codes.InvalidArgument, "INVALID_ARGUMENT", "period 9"},
		{"unknown group", &cdrv1.GetStatisticsRequest{GroupBy: 9}, codes.InvalidArgument, "INVALID_ARGUMENT", "group_by 9"},
		{"empty range", &cdrv1.GetStatisticsRequest{Filter: &cdrv1.CdrFilter{StartTime: timestamppb.New(utc("2024-03-01T00:00:00Z")),
			EndTime: timestamppb.New(utc("2024-03-01T00:00:00Z"))}}, codes.InvalidArgument, "INVALID_RANGE", "is not before"},
		{"range over 366 days", &cdrv1.GetStatisticsRequest{Filter: &cdrv1.CdrFilter{StartTime: timestamppb.New(utc("2023-01-01T00:00:00Z")),
			EndTime: timestamppb.New(utc("2024-03-01T00:00:00Z"))}}, codes.InvalidArgument, "INVALID_RANGE", "366 days"},
		{"bad status", &cdrv1.GetStatisticsRequest{Filter: &cdrv1.CdrFilter{Statuses: []originationv1.CallStatus{originationv1.CallStatus_CALL_STATUS_RINGING}}},
			codes.InvalidArgument, "INVALID_ARGUMENT", "not a final status"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := srv.GetStatistics(ctx, tt.req)
			tdbWantErr(t, err, tt.code, tt.reason, tt.msg)
		})
	}
	_, err := srv.GetTodayStatistics(ctx, &cdrv1.GetTodayStatisticsRequest{TimeZone: "Europe/Nowhere"})
	tdbWantErr(t, err, codes.InvalidArgument, "INVALID_TIME_ZONE", "Europe/Nowhere")
	_, err = srv.GetStatistics(context.Background(), &cdrv1.GetStatisticsRequest{})
	tdbWantErr(t, err, codes.Unauthenticated, "UNAUTHENTICATED", "")
	_, err = srv.CompareStatistics(context.Background(), &cdrv1.CompareStatisticsRequest{})
	tdbWantErr(t, err, codes.Unauthenticated, "UNAUTHENTICATED", "")
	_, err = srv.GetTodayStatistics(context.Background(), &cdrv1.GetTodayStatisticsRequest{})
	tdbWantErr(t, err, codes.Unauthenticated, "UNAUTHENTICATED", "")
}

func TestStatsStartOfDay(t *testing.T) {
	t.Parallel()
	load := func(name string) *time.Location {
		loc, err := time.LoadLocation(name)
		if err != nil {
			t.Fatal(err)
		}
		return loc
	}
	tests := []struct {
		at, zone, want string
	}{
		{"2024-03-05T03:20:00Z", "Asia/Tokyo", "2024-03-04T15:00:00Z"},
		{"2024-03-04T23:59:59Z", "UTC", "2024-03-04T00:00:00Z"},
		{"2024-03-10T12:00:00Z", "America/New_York", "2024-03-10T05:00:00Z"}, // DST begins at 02:00 that day
		// Santiago skipped midnight on 2022-09-11: the day began at 01:00
		// local, as PostgreSQL's date_trunc says too.
		{"2022-09-11T12:00:00Z", "America/Santiago", "2022-09-11T04:00:00Z"},
	}
	for _, tt := range tests {
		if got := startOfDay(utc(tt.at), load(tt.zone)); !got.Equal(utc(tt.want)) {
			t.Errorf("startOfDay(%s, %s) = %v, want %s", tt.at, tt.zone, got.UTC(), tt.want)
		}
	}
}

// tevOutcomeCalls are acct-a's click-to-call campaign calls of March 2024
// (UTC) the outcome tests aggregate; camp-v calls its visitors first,
// camp-k its company first (the visitor is the second leg). Prices in EUR.
//
//	v1 03-04 10:00 camp-v visitor FIRST   FAILED    FIRST  BUSY       attempt 3  2.5 EUR  -> user
//	v2 03-04 11:00 camp-v visitor FIRST   FAILED    SECOND NO_ANSWER  attempt 1  2.5 EUR  -> company
//	k1 03-04 12:00 camp-k visitor SECOND  FAILED    SECOND BUSY       attempt 1  1 EUR    -> user
//	k2 03-05 09:00 camp-k visitor SECOND  FAILED    FIRST  NO_ANSWER  attempt 1  1 EUR    -> company
//	p1 03-05 10:00 camp-v visitor FIRST   COMPLETED                   attempt 1  2.5 EUR  billed
//	r1 03-05 11:00 camp-k visitor SECOND  COMPLETED                   attempt 3  1 EUR    billed
//	n1 03-05 12:00 camp-k visitor SECOND  CANCELED                    attempt 2  1 EUR
//	x1 03-05 13:00 -      (API call)      FAILED    FIRST  BUSY       -> neither
//	o1 03-05 14:00 camp-v (old record, no visitor leg nor attempt) FAILED SECOND BUSY -> neither
func tevOutcomeCalls() []tevSpec {
	const price, priceK = 2_500_000, 1_000_000
	return []tevSpec{
		{ID: "v1", Created: utc("2024-03-04T10:00:00Z"), Campaign: "camp-v", VisitorLeg: legFirst, Attempt: 3, PriceMicros: price,
			Status: sFailed, FailedLeg: legFirst, Reason: rBusy, SecondEndpoint: "op-1"},
		{ID: "v2", Created: utc("2024-03-04T11:00:00Z"), Campaign: "camp-v", VisitorLeg: legFirst, PriceMicros: price,
			Status: sFailed, FailedLeg: legSecond, Reason: rNoAnswer, SecondEndpoint: "op-1"},
		{ID: "k1", Created: utc("2024-03-04T12:00:00Z"), Campaign: "camp-k", VisitorLeg: legSecond, PriceMicros: priceK,
			Status: sFailed, FailedLeg: legSecond, Reason: rBusy, FirstEndpoint: "op-2"},
		{ID: "k2", Created: utc("2024-03-05T09:00:00Z"), Campaign: "camp-k", VisitorLeg: legSecond, PriceMicros: priceK,
			Status: sFailed, FailedLeg: legFirst, Reason: rNoAnswer, FirstEndpoint: "op-2"},
		{ID: "p1", Created: utc("2024-03-05T10:00:00Z"), Campaign: "camp-v", VisitorLeg: legFirst, PriceMicros: price,
			Status: sCompleted, SecondEndpoint: "op-1", DurationS: 90, Billsec: 80},
		{ID: "r1", Created: utc("2024-03-05T11:00:00Z"), Campaign: "camp-k", VisitorLeg: legSecond, Attempt: 3, PriceMicros: priceK,
			Status: sCompleted, FirstEndpoint: "op-2", DurationS: 60, Billsec: 40},
		{ID: "n1", Created: utc("2024-03-05T12:00:00Z"), Campaign: "camp-k", VisitorLeg: legSecond, Attempt: 2, PriceMicros: priceK,
			Status: sCanceled, FirstEndpoint: "op-2"},
		{ID: "x1", Created: utc("2024-03-05T13:00:00Z"), Status: sFailed, FailedLeg: legFirst, Reason: rBusy},
		{ID: "o1", Created: utc("2024-03-05T14:00:00Z"), Campaign: "camp-v", Status: sFailed, FailedLeg: legSecond, Reason: rBusy},
	}
}

// tevOutcomeTotal is the outcomeDigest of all of tevOutcomeCalls.
const tevOutcomeTotal = "calls 9 completed 2 failed 6 first/second 3/3 visitor/company 2/2 canceled 1 redials 5 price 3500000"

func outcomeEnv(t *testing.T) *StatisticsServer {
	st := tdbOpen(t)
	tdbInsert(t, st, tevOutcomeCalls()...)
	return &StatisticsServer{Store: st, Now: func() time.Time { return utc("2024-03-05T15:00:00Z") }}
}

// outcomeDigest is the outcome figures of a Stats: "calls completed
// failed first/second visitor/company canceled redials price".
func outcomeDigest(s *cdrv1.Stats) string {
	return fmt.Sprintf("calls %d completed %d failed %d first/second %d/%d visitor/company %d/%d canceled %d redials %d price %d",
		s.GetCalls(), s.GetCompleted(), s.GetFailed(), s.GetFailedFirst(), s.GetFailedSecond(),
		s.GetFailedVisitor(), s.GetFailedCompany(), s.GetCanceled(), s.GetRedials(), s.GetCompletedPriceMicros())
}

// outcomeRows is "period_start key outcomeDigest" of each row, one a line.
func outcomeRows(rows []*cdrv1.StatsRow) string {
	var b strings.Builder
	for _, r := range rows {
		start := "-"
		if r.GetPeriodStart() != nil {
			start = r.GetPeriodStart().AsTime().Format(time.DateOnly)
		}
		fmt.Fprintf(&b, "%s %q %s\n", start, r.GetKey(), outcomeDigest(r.GetStats()))
	}
	return b.String()
}

func TestStatisticsCampaignOutcomes(t *testing.T) {
	t.Parallel()
	srv := outcomeEnv(t)
	ctx := tdbAs("acct-a")
	// x1 and o1 fail on a leg too, but no leg of theirs is a visitor's:
	// failed_first/second count them, failed_visitor/company do not.
	// Only the completed campaign calls are billed (p1 and r1; v1 failed
	// after two redials and n1 was canceled during its second attempt).
	const total = tevOutcomeTotal
	tests := []struct {
		name    string
		period  cdrv1.Period
		groupBy cdrv1.GroupBy
		rows    string
	}{
		{"total", cdrv1.Period_PERIOD_UNSPECIFIED, cdrv1.GroupBy_GROUP_BY_UNSPECIFIED, "- \"\" " + total + "\n"},
		{"by campaign", cdrv1.Period_PERIOD_UNSPECIFIED, cdrv1.GroupBy_GROUP_BY_CAMPAIGN, `- "" calls 1 completed 0 failed 1 first/second 1/0 visitor/company 0/0 canceled 0 redials 0 price 0
- "camp-k" calls 4 completed 1 failed 2 first/second 1/1 visitor/company 1/1 canceled 1 redials 3 price 1000000
- "camp-v" calls 4 completed 1 failed 3 first/second 1/2 visitor/company 1/1 canceled 0 redials 2 price 2500000
`},
		{"by day and campaign", cdrv1.Period_PERIOD_DAY, cdrv1.GroupBy_GROUP_BY_CAMPAIGN, `2024-03-04 "camp-k" calls 1 completed 0 failed 1 first/second 0/1 visitor/company 1/0 canceled 0 redials 0 price 0
2024-03-04 "camp-v" calls 2 completed 0 failed 2 first/second 1/1 visitor/company 1/1 canceled 0 redials 2 price 0
2024-03-05 "" calls 1 completed 0 failed 1 first/second 1/0 visitor/company 0/0 canceled 0 redials 0 price 0
2024-03-05 "camp-k" calls 3 completed 1 failed 1 first/second 1/0 visitor/company 0/1 canceled 1 redials 3 price 1000000
2024-03-05 "camp-v" calls 2 completed 1 failed 1 first/second 0/1 visitor/company 0/0 canceled 0 redials 0 price 2500000
`},
		// A call counts for each endpoint of its legs: the operators.
		{"by endpoint", cdrv1.Period_PERIOD_UNSPECIFIED, cdrv1.GroupBy_GROUP_BY_ENDPOINT, `- "" calls 2 completed 0 failed 2 first/second 1/1 visitor/company 0/0 canceled 0 redials 0 price 0
- "op-1" calls 3 completed 1 failed 2 first/second 1/1 visitor/company 1/1 canceled 0 redials 2 price 2500000
- "op-2" calls 4 completed 1 failed 2 first/second 1/1 visitor/company 1/1 canceled 1 redials 3 price 1000000
`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := srv.GetStatistics(ctx, &cdrv1.GetStatisticsRequest{Filter: march(nil), Period: tt.period, GroupBy: tt.groupBy})
			if err != nil {
				t.Fatal(err)
			}
			if got := outcomeRows(resp.GetRows()); got != tt.rows {
				t.Fatalf("rows:\n%s\nwant:\n%s", got, tt.rows)
			}
			if got := outcomeDigest(resp.GetTotal()); got != total {
				t.Fatalf("total = %s\nwant    %s", got, total)
			}
		})
	}

	// The filter applies: failures on the second leg are the company's
	// for camp-v, the visitor's for camp-k.
	resp, err := srv.GetStatistics(ctx, &cdrv1.GetStatisticsRequest{Filter: march(&cdrv1.CdrFilter{FailedLeg: legSecond}),
		GroupBy: cdrv1.GroupBy_GROUP_BY_CAMPAIGN})
	if err != nil {
		t.Fatal(err)
	}
	want := `- "camp-k" calls 1 completed 0 failed 1 first/second 0/1 visitor/company 1/0 canceled 0 redials 0 price 0
- "camp-v" calls 2 completed 0 failed 2 first/second 0/2 visitor/company 0/1 canceled 0 redials 0 price 0
`
	if got := outcomeRows(resp.GetRows()); got != want {
		t.Fatalf("second-leg failures by campaign:\n%s\nwant:\n%s", got, want)
	}

	// Whole figures of one campaign: the price is apart from the legs'
	// rated cost and currency (USD, here nothing: no leg cost anything).
	resp, err = srv.GetStatistics(ctx, &cdrv1.GetStatisticsRequest{Filter: march(&cdrv1.CdrFilter{CampaignId: "camp-k"})})
	if err != nil {
		t.Fatal(err)
	}
	wantProto(t, "camp-k", resp.GetTotal(), &cdrv1.Stats{
		Calls: 4, Completed: 1, Failed: 2, FailedFirst: 1, FailedSecond: 1, Canceled: 1,
		FailuresByReason: map[string]int64{"BUSY": 1, "NO_ANSWER": 1}, AnswerRate: 0.25,
		TotalDurationS: 60, AverageDurationS: 15, TotalBillsec: 40, AverageBillsec: 40, Currency: "USD",
		FailedVisitor: 1, FailedCompany: 1, Redials: 3, CompletedPriceMicros: 1_000_000,
	})
}

func TestStatisticsCampaignOutcomesTodayAndCompare(t *testing.T) {
	t.Parallel()
	srv := outcomeEnv(t) // now: 2024-03-05T15:00Z
	ctx := tdbAs("acct-a")

	today, err := srv.GetTodayStatistics(ctx, &cdrv1.GetTodayStatisticsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := outcomeDigest(today.GetToday()),
		"calls 6 completed 2 failed 3 first/second 2/1 visitor/company 0/1 canceled 1 redials 3 price 3500000"; got != want {
		t.Fatalf("today = %s\nwant    %s", got, want)
	}
	// Each hour's figures add up to the day's.
	var sum tally
	for _, h := range today.GetHours() {
		s := h.GetStats()
		sum.add(tally{calls: s.GetCalls(), failedVisitor: s.GetFailedVisitor(), failedCompany: s.GetFailedCompany(),
			redials: s.GetRedials(), completedPriceMicros: s.GetCompletedPriceMicros()})
	}
	if len(today.GetHours()) != 6 || sum.calls != 6 || sum.failedVisitor != 0 || sum.failedCompany != 1 || sum.redials != 3 ||
		sum.completedPriceMicros != 3_500_000 {
		t.Fatalf("hours:\n%s", outcomeRows(today.GetHours()))
	}

	// Current: 03-05; previous: 03-04 (v1, v2, k1).
	resp, err := srv.CompareStatistics(ctx, &cdrv1.CompareStatisticsRequest{
		Filter:           &cdrv1.CdrFilter{StartTime: timestamppb.New(utc("2024-03-05T00:00:00Z")), EndTime: timestamppb.New(utc("2024-03-06T00:00:00Z"))},
		CompareStartTime: timestamppb.New(utc("2024-03-04T00:00:00Z")), CompareEndTime: timestamppb.New(utc("2024-03-05T00:00:00Z")),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := outcomeDigest(resp.GetCurrent()), outcomeDigest(today.GetToday()); got != want {
		t.Fatalf("current = %s\nwant      %s", got, want)
	}
	if got, want := outcomeDigest(resp.GetPrevious()),
		"calls 3 completed 0 failed 3 first/second 1/2 visitor/company 2/1 canceled 0 redials 2 price 0"; got != want {
		t.Fatalf("previous = %s\nwant       %s", got, want)
	}
	ch := resp.GetChange()
	for k, v := range map[string]float64{"failed_visitor": -1, "failed_company": 0, "redials": 0.5} {
		if g, ok := ch[k]; !ok || g != v {
			t.Fatalf("change[%s] = %v (present %v), want %v; change = %v", k, g, ok, v, ch)
		}
	}
	if _, ok := ch["completed_price_micros"]; ok {
		t.Fatalf("change has completed_price_micros, which was 0: %v", ch)
	}
}

// TestRecordCampaignColumns checks what ingest stores of a campaign call:
// the price as the call gives it, whatever its status (the statistics bill
// completed calls only).
func TestRecordCampaignColumns(t *testing.T) {
	t.Parallel()
	st := tdbOpen(t)
	tdbInsert(t, st, tevOutcomeCalls()...)
	tests := []struct {
		id                   string
		visitorLeg, attempts int16
		price                int64
	}{
		{"v1", 1, 3, 2_500_000},
		{"k1", 2, 1, 1_000_000},
		{"r1", 2, 3, 1_000_000},
		{"n1", 2, 2, 1_000_000},
		{"x1", 0, 1, 0},
		{"o1", 0, 1, 0}, // a snapshot without attempt: one attempt
	}
	for _, tt := range tests {
		var leg, att int16
		var price int64
		err := st.DB.QueryRow(context.Background(), `SELECT visitor_leg, attempts, price_micros FROM cdr.cdrs WHERE call_id = $1`, tt.id).
			Scan(&leg, &att, &price)
		if err != nil {
			t.Fatalf("%s: %v", tt.id, err)
		}
		if leg != tt.visitorLeg || att != tt.attempts || price != tt.price {
			t.Errorf("%s: visitor_leg %d attempts %d price_micros %d, want %d %d %d", tt.id, leg, att, price, tt.visitorLeg, tt.attempts, tt.price)
		}
	}
}

// TestMigrationCampaignOutcomes applies 0003 over a table that already has
// records: they keep counting as before (no visitor leg, one attempt, no
// price), without a backfill.
func TestMigrationCampaignOutcomes(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := store.Open(ctx, storetest.NewDatabase(t), store.Options{AppName: "cdr-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	before := fstest.MapFS{}
	for _, name := range []string{"0001_cdr.sql", "0002_cdr_filter_indexes.sql"} {
		b, err := fs.ReadFile(Migrations(), name)
		if err != nil {
			t.Fatal(err)
		}
		before[name] = &fstest.MapFile{Data: b}
	}
	if err := store.Migrate(ctx, pool, "cdr", before); err != nil {
		t.Fatal(err)
	}
	// A failed campaign call recorded by the previous version.
	_, err = pool.Exec(ctx, `INSERT INTO cdr.cdrs (call_id, account_id, created_at, ended_at, status, source, campaign_id,
    failed_leg, failure_reason, duration_s, billsec, cost_micros, access_fee_micros, sequence, call)
VALUES ('old-1', 'acct-a', '2024-03-04T10:00:00Z', '2024-03-04T10:00:20Z', $1, $2, 'camp-v', $3, $4, 20, 0, 0, 0, 12, '\x')`,
		sFailed, originationv1.CallSource_CALL_SOURCE_BANNER, legFirst, rBusy)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(ctx, pool, "cdr", Migrations()); err != nil {
		t.Fatal(err)
	}
	srv := &StatisticsServer{Store: &Store{DB: pool}}
	resp, err := srv.GetStatistics(tdbAs("acct-a"), &cdrv1.GetStatisticsRequest{Filter: march(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := outcomeDigest(resp.GetTotal()),
		"calls 1 completed 0 failed 1 first/second 1/0 visitor/company 0/0 canceled 0 redials 0 price 0"; got != want {
		t.Fatalf("total = %s\nwant    %s", got, want)
	}
}

// TestIngestCampaignOutcomes records campaign calls through JetStream, as
// origination publishes them, and reads their outcome figures back.
func TestIngestCampaignOutcomes(t *testing.T) {
	t.Parallel()
	e := newSvcEnv(t)
	specs := tevOutcomeCalls()
	for i := range specs {
		specs[i].Account = "acct-ingest"
		e.publish(t, tevCall(specs[i]))
	}
	e.waitCount(t, "acct-ingest", int64(len(specs)))
	srv := &StatisticsServer{Store: e.svc.Store}
	resp, err := srv.GetStatistics(tdbAs("acct-ingest"), &cdrv1.GetStatisticsRequest{Filter: march(nil)})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := outcomeDigest(resp.GetTotal()),
		tevOutcomeTotal; got != want {
		t.Fatalf("total = %s\nwant    %s", got, want)
	}
}
