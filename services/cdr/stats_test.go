package cdr

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	cdrv1 "github.com/ringback/ringback/proto/gen/go/ringback/cdr/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
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
