package cdr

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	cdrv1 "github.com/ringback/ringback/proto/gen/go/ringback/cdr/v1"
	eventsv1 "github.com/ringback/ringback/proto/gen/go/ringback/events/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	ratingv1 "github.com/ringback/ringback/proto/gen/go/ringback/rating/v1"
	"github.com/ringback/ringback/services/internal/config"
	"github.com/ringback/ringback/services/internal/ids"
	"github.com/ringback/ringback/services/internal/natsbus"
	"github.com/ringback/ringback/services/internal/natsbus/natstest"
	"github.com/ringback/ringback/services/internal/store"
	"github.com/ringback/ringback/services/internal/store/storetest"
)

func quietLog() *slog.Logger {
	if os.Getenv("CDR_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// svcEnv is a cdr service on a fresh database and NATS server, served over
// real gRPC on loopback.
type svcEnv struct {
	svc   *Service
	bus   *natsbus.Bus
	nats  *natstest.Server
	cdrs  cdrv1.CdrServiceClient
	conn  *grpc.ClientConn
	dbURL string
}

func newSvcEnv(t testing.TB) *svcEnv { return newSvcEnvAfter(t, nil) }

// newSvcEnvAfter is newSvcEnv with before run on the NATS server (its
// stream declared) before the service starts.
func newSvcEnvAfter(t testing.TB, before func(bus *natsbus.Bus, natsURL string)) *svcEnv {
	t.Helper()
	ns := natstest.Start(t)
	dbURL := storetest.NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := store.Open(ctx, dbURL, store.Options{AppName: "cdr-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	bus, err := natsbus.Connect(ctx, ns.URL(), "cdr-test", quietLog(), natsbus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	if before != nil {
		if err := bus.EnsureStream(ctx, natsbus.Calls(0)); err != nil {
			t.Fatal(err)
		}
		before(bus, ns.URL())
	}
	// The production defaults, as cmd/cdr has them.
	cfg := LoadConfig(config.NewLoader(func(string) (string, bool) { return "", false }))
	svc, err := NewService(ctx, cfg, Deps{DB: pool, Bus: bus}, quietLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	svc.Register(gs)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &svcEnv{svc: svc, bus: bus, nats: ns, cdrs: cdrv1.NewCdrServiceClient(conn), conn: conn, dbURL: dbURL}
}

func as(account string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), AccountHeader, account)
}

// publish publishes an event as origination does: subject
// calls.<account>.<call>.<event>, message id the event id.
func (e *svcEnv) publish(t testing.TB, ev *eventsv1.CallEvent) {
	t.Helper()
	b, err := proto.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	subj := fmt.Sprintf("calls.%s.%s.%s", ev.GetAccountId(), ev.GetCallId(),
		strings.ToLower(strings.TrimPrefix(ev.GetType().String(), "EVENT_TYPE_")))
	if _, err := e.bus.Publish(context.Background(), subj, ev.GetEventId(), b); err != nil {
		t.Fatal(err)
	}
}

// waitCount waits until account has n records.
func (e *svcEnv) waitCount(t testing.TB, account string, n int64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var got int64
	for time.Now().Before(deadline) {
		var err error
		if got, err = e.svc.Store.Count(context.Background(), account); err != nil {
			t.Fatal(err)
		}
		if got == n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("account %s: %d records, want %d", account, got, n)
}

var usd = &ratingv1.AppliedRate{TariffId: "t1", Prefix: "1555", Destination: "USA test", RatePerMinuteMicros: 12_000,
	ConnectionFeeMicros: 5_000, MinSeconds: 30, IncrementSeconds: 6, Currency: "USD"}

// outcome builds the final event of a call with a given ending, as
// origination publishes it.
type outcome struct {
	name   string
	status originationv1.CallStatus
	failed originationv1.LegRole
	reason originationv1.FailureReason
	cause  string
	// which legs answered; bridged when both did and status is COMPLETED
	firstAnswered, secondAnswered bool
	firstCause, secondCause       string
	talk                          time.Duration
}

var outcomes = []outcome{
	{name: "completed", status: originationv1.CallStatus_CALL_STATUS_COMPLETED, cause: "NORMAL_CLEARING",
		firstAnswered: true, secondAnswered: true, firstCause: "NORMAL_CLEARING", secondCause: "NORMAL_CLEARING", talk: 65 * time.Second},
	{name: "first busy", status: originationv1.CallStatus_CALL_STATUS_FAILED, failed: originationv1.LegRole_LEG_ROLE_FIRST,
		reason: originationv1.FailureReason_FAILURE_REASON_BUSY, cause: "USER_BUSY", firstCause: "USER_BUSY", secondCause: "ORIGINATOR_CANCEL"},
	{name: "second no answer", status: originationv1.CallStatus_CALL_STATUS_FAILED, failed: originationv1.LegRole_LEG_ROLE_SECOND,
		reason: originationv1.FailureReason_FAILURE_REASON_NO_ANSWER, cause: "NO_ANSWER", firstAnswered: true,
		firstCause: "NORMAL_CLEARING", secondCause: "NO_ANSWER"},
	{name: "not authorized", status: originationv1.CallStatus_CALL_STATUS_FAILED, failed: originationv1.LegRole_LEG_ROLE_SECOND,
		reason: originationv1.FailureReason_FAILURE_REASON_NOT_AUTHORIZED, cause: "OUTGOING_CALL_BARRED", firstAnswered: true,
		firstCause: "NORMAL_CLEARING", secondCause: "OUTGOING_CALL_BARRED"},
	{name: "canceled", status: originationv1.CallStatus_CALL_STATUS_CANCELED,
		reason: originationv1.FailureReason_FAILURE_REASON_CANCELED, cause: "ORIGINATOR_CANCEL", firstCause: "ORIGINATOR_CANCEL", secondCause: "ORIGINATOR_CANCEL"},
}

func finalEvent(account string, created time.Time, o outcome, mutate ...func(*originationv1.Call)) *eventsv1.CallEvent {
	id := ids.NewV7()
	ts := timestamppb.New
	c := &originationv1.Call{
		Id: id, AccountId: account, Source: originationv1.CallSource_CALL_SOURCE_API, Mode: originationv1.CallMode_CALL_MODE_SEQUENTIAL,
		Status: o.status, FailedLeg: o.failed, FailureReason: o.reason, HangupCause: o.cause,
		CreatedAt: ts(created), Variables: map[string]string{"crm_ticket": "T-42"},
	}
	first := &originationv1.Leg{Role: originationv1.LegRole_LEG_ROLE_FIRST,
		Party:   &originationv1.PartyRef{Target: &originationv1.PartyRef_Number{Number: "+15551230001"}},
		Address: "+15551230001", Rate: usd, StartedAt: ts(created.Add(10 * time.Millisecond)),
		RingingAt: ts(created.Add(200 * time.Millisecond)), HangupCause: o.firstCause,
		Direction: &ratingv1.Direction{Country: "US", CountryName: "United States", Valid: true}}
	second := &originationv1.Leg{Role: originationv1.LegRole_LEG_ROLE_SECOND,
		Party:   &originationv1.PartyRef{Target: &originationv1.PartyRef_EndpointId{EndpointId: "ep-agent-7"}},
		Address: "1007", EndpointName: "Agent Seven", HangupCause: o.secondCause}
	end := created.Add(3 * time.Second)
	first.Status = originationv1.LegStatus_LEG_STATUS_FAILED
	second.Status = originationv1.LegStatus_LEG_STATUS_FAILED
	if o.firstAnswered {
		first.Status, first.AnsweredAt = originationv1.LegStatus_LEG_STATUS_HUNGUP, ts(created.Add(2*time.Second))
		c.AnsweredAt = first.AnsweredAt
		second.StartedAt = ts(created.Add(2100 * time.Millisecond))
		end = created.Add(20 * time.Second)
	}
	if o.secondAnswered {
		second.Status, second.AnsweredAt = originationv1.LegStatus_LEG_STATUS_HUNGUP, ts(created.Add(5*time.Second))
		c.BridgedAt = ts(created.Add(5*time.Second + 20*time.Millisecond))
		end = created.Add(5*time.Second + 20*time.Millisecond + o.talk)
		c.Billsec = int32(o.talk / time.Second)
		second.Billsec = c.Billsec
	}
	if first.AnsweredAt != nil {
		first.Billsec = int32(end.Sub(first.AnsweredAt.AsTime()) / time.Second)
		// 30 s minimum, 6 s increments, 0.012/min, fee 0.005
		billed := max(int64(first.Billsec), 30)
		if r := billed % 6; r != 0 {
			billed += 6 - r
		}
		first.CostMicros = 5_000 + (billed*12_000+59)/60
	}
	first.EndedAt, second.EndedAt = ts(end), ts(end)
	c.First, c.Second, c.EndedAt = first, second, ts(end)
	c.DurationS = int32(end.Sub(created) / time.Second)
	for _, m := range mutate {
		m(c)
	}
	typ := eventsv1.EventType_EVENT_TYPE_CALL_COMPLETED
	switch o.status {
	case originationv1.CallStatus_CALL_STATUS_FAILED:
		typ = eventsv1.EventType_EVENT_TYPE_CALL_FAILED
	case originationv1.CallStatus_CALL_STATUS_CANCELED:
		typ = eventsv1.EventType_EVENT_TYPE_CALL_CANCELED
	}
	return &eventsv1.CallEvent{EventId: id + ".12", Sequence: 12, OccurredAt: c.EndedAt, AccountId: account, CallId: id,
		Type: typ, Call: c, Leg: o.failed, Variables: c.Variables}
}

func reasonOf(err error) string {
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

// Every outcome makes exactly one record, with both legs, times, causes,
// costs and the timeline; other events make none.
func TestIngestEveryOutcome(t *testing.T) {
	t.Parallel()
	e := newSvcEnv(t)
	account := "acc-" + ids.NewV4()
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	events := map[string]*eventsv1.CallEvent{}
	for i, o := range outcomes {
		ev := finalEvent(account, base.Add(time.Duration(i)*time.Minute), o)
		events[o.name] = ev
		// The call's other events come first, as origination publishes them.
		for _, typ := range []eventsv1.EventType{eventsv1.EventType_EVENT_TYPE_CALL_QUEUED, eventsv1.EventType_EVENT_TYPE_LEG_HANGUP} {
			other := proto.Clone(ev).(*eventsv1.CallEvent)
			other.Type, other.EventId, other.Sequence = typ, ev.GetCallId()+"."+typ.String(), 3
			e.publish(t, other)
		}
		e.publish(t, ev)
	}
	e.waitCount(t, account, int64(len(outcomes)))

	for _, o := range outcomes {
		ev := events[o.name]
		resp, err := e.cdrs.GetCdr(as(account), &cdrv1.GetCdrRequest{CallId: ev.GetCallId()})
		if err != nil {
			t.Fatalf("%s: %v", o.name, err)
		}
		got := resp.GetCdr()
		if !proto.Equal(got.GetCall(), ev.GetCall()) {
			t.Errorf("%s: stored call differs from the event's:\n got %v\nwant %v", o.name, got.GetCall(), ev.GetCall())
		}
		wantCost := ev.GetCall().GetFirst().GetCostMicros()
		wantFee := int64(0)
		if o.firstAnswered {
			wantFee = 5_000
		}
		if got.GetCostMicros() != wantCost || got.GetAccessFeeMicros() != wantFee || got.GetCurrency() != "USD" {
			t.Errorf("%s: cost %d fee %d %s, want %d %d USD", o.name, got.GetCostMicros(), got.GetAccessFeeMicros(), got.GetCurrency(), wantCost, wantFee)
		}
		tl := got.GetTimeline()
		if len(tl) < 3 || tl[0].GetType() != eventsv1.EventType_EVENT_TYPE_CALL_QUEUED || !Final(tl[len(tl)-1].GetType()) {
			t.Fatalf("%s: timeline %v", o.name, tl)
		}
		for i := 1; i < len(tl); i++ {
			if tl[i].GetAt().AsTime().Before(tl[i-1].GetAt().AsTime()) {
				t.Errorf("%s: timeline out of order at %d: %v", o.name, i, tl)
			}
		}
	}
	// The completed call's cost: 65 s talk + 5 s before: 70 s answered on
	// the first leg -> 72 s billed (6 s steps) = 0.0144 + fee 0.005.
	if c := events["completed"].GetCall().GetFirst().GetCostMicros(); c != 5_000+14_400 {
		t.Errorf("fixture cost %d", c)
	}
}

// A final event delivered again (redelivery, or republished by origination
// under another message id) never makes a second record, and an older
// snapshot never replaces a newer one.
func TestIngestIdempotent(t *testing.T) {
	t.Parallel()
	e := newSvcEnv(t)
	account := "acc-" + ids.NewV4()
	ev := finalEvent(account, time.Now().Add(-time.Minute), outcomes[0])
	e.publish(t, ev)
	e.waitCount(t, account, 1)

	again := proto.Clone(ev).(*eventsv1.CallEvent)
	again.EventId = ev.GetEventId() + "-republished" // past the stream's deduplication
	again.Sequence = 11                              // an older snapshot
	again.Call.HangupCause = "STALE"
	e.publish(t, again)
	newer := proto.Clone(ev).(*eventsv1.CallEvent)
	newer.EventId, newer.Sequence = ev.GetEventId()+"-newer", 13
	newer.Call.Variables = map[string]string{"crm_ticket": "T-43"}
	e.publish(t, newer)
	// A marker published last: once it is in, the two before it were handled.
	marker := finalEvent(account, time.Now().Add(-time.Minute), outcomes[1])
	e.publish(t, marker)
	e.waitCount(t, account, 2)

	resp, err := e.cdrs.GetCdr(as(account), &cdrv1.GetCdrRequest{CallId: ev.GetCallId()})
	if err != nil {
		t.Fatal(err)
	}
	c := resp.GetCdr().GetCall()
	if c.GetHangupCause() == "STALE" || c.GetVariables()["crm_ticket"] != "T-43" {
		t.Errorf("record is not the newest snapshot: cause %s vars %v", c.GetHangupCause(), c.GetVariables())
	}
}

// Undecodable events are dropped without holding back the good ones.
func TestIngestSkipsPoison(t *testing.T) {
	t.Parallel()
	e := newSvcEnv(t)
	account := "acc-" + ids.NewV4()
	if _, err := e.bus.Publish(context.Background(), "calls."+account+".bad.call_completed", "bad-1", []byte("\xff\xff not protobuf")); err != nil {
		t.Fatal(err)
	}
	e.publish(t, finalEvent(account, time.Now().Add(-time.Minute), outcomes[0]))
	e.waitCount(t, account, 1)
}

// Listing pages never repeat or skip a record while new ones arrive, in
// both orders, and tokens are bound to their query.
func TestListPagingStableAcrossInserts(t *testing.T) {
	t.Parallel()
	e := newSvcEnv(t)
	account := "acc-" + ids.NewV4()
	base := time.Now().Add(-2 * time.Hour).Truncate(time.Millisecond)
	var rows []Row
	want := map[string]bool{}
	mk := func(at time.Time) Row {
		ev := finalEvent(account, at, outcomes[len(rows)%len(outcomes)])
		raw, _ := proto.Marshal(ev.GetCall())
		r, ok := RowFrom(ev, raw)
		if !ok {
			t.Fatal("RowFrom refused a final event")
		}
		return r
	}
	for i := range 250 {
		// Several calls share a creation time: the call id breaks ties.
		r := mk(base.Add(time.Duration(i/3) * time.Second))
		rows = append(rows, r)
		want[r.CallID] = true
	}
	ctx := context.Background()
	if _, err := e.svc.Store.Insert(ctx, rows); err != nil {
		t.Fatal(err)
	}
	for _, asc := range []bool{false, true} {
		seen := map[string]int{}
		token := ""
		var last time.Time
		for page := 0; ; page++ {
			resp, err := e.cdrs.ListCdrs(as(account), &cdrv1.ListCdrsRequest{PageSize: 40, PageToken: token, Ascending: asc,
				Filter: &cdrv1.CdrFilter{StartTime: timestamppb.New(base.Add(-time.Minute))}})
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range resp.GetCdrs() {
				seen[c.GetCall().GetId()]++
				at := c.GetCall().GetCreatedAt().AsTime()
				if !last.IsZero() && ((asc && at.Before(last)) || (!asc && at.After(last))) {
					t.Fatalf("asc=%v: out of order at page %d", asc, page)
				}
				last = at
			}
			// Records arrive between pages: some inside the range, before
			// and after the cursor.
			if page < 3 {
				if _, err := e.svc.Store.Insert(ctx, []Row{mk(base.Add(30 * time.Second)), mk(base.Add(200 * time.Second))}); err != nil {
					t.Fatal(err)
				}
			}
			if token = resp.GetNextPageToken(); token == "" {
				break
			}
		}
		for id := range want {
			if seen[id] != 1 {
				t.Fatalf("asc=%v: record %s seen %d times", asc, id, seen[id])
			}
		}
		for id, n := range seen {
			if n != 1 {
				t.Fatalf("asc=%v: record %s seen %d times", asc, id, n)
			}
		}
	}

	// A token is for its own query.
	first, err := e.cdrs.ListCdrs(as(account), &cdrv1.ListCdrsRequest{PageSize: 5})
	if err != nil || first.GetNextPageToken() == "" {
		t.Fatalf("first page: %v %v", first, err)
	}
	_, err = e.cdrs.ListCdrs(as(account), &cdrv1.ListCdrsRequest{PageSize: 5, PageToken: first.GetNextPageToken(), Ascending: true})
	if reasonOf(err) != "INVALID_PAGE_TOKEN" {
		t.Errorf("token reused with another order: %v", err)
	}
	_, err = e.cdrs.ListCdrs(as(account), &cdrv1.ListCdrsRequest{PageSize: 5, PageToken: "garbage"})
	if reasonOf(err) != "INVALID_PAGE_TOKEN" {
		t.Errorf("garbage token: %v", err)
	}
}

// Filters select what they say; bad ranges and parameters get clear
// errors; one account never sees another's records.
func TestListFiltersErrorsAndIsolation(t *testing.T) {
	t.Parallel()
	e := newSvcEnv(t)
	a, b := "acc-"+ids.NewV4(), "acc-"+ids.NewV4()
	now := time.Now()
	var rows []Row
	add := func(account string, o outcome, mutate ...func(*originationv1.Call)) string {
		ev := finalEvent(account, now.Add(-time.Duration(len(rows)+1)*time.Minute), o, mutate...)
		raw, _ := proto.Marshal(ev.GetCall())
		r, _ := RowFrom(ev, raw)
		rows = append(rows, r)
		return ev.GetCallId()
	}
	completed := add(a, outcomes[0], func(c *originationv1.Call) { c.CampaignId = "camp-1" })
	busy := add(a, outcomes[1])
	mx := add(a, outcomes[2], func(c *originationv1.Call) {
		c.First.Party = &originationv1.PartyRef{Target: &originationv1.PartyRef_Number{Number: "+525512345678"}}
		c.First.Direction = &ratingv1.Direction{Country: "MX"}
	})
	other := add(b, outcomes[0])
	if _, err := e.svc.Store.Insert(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
	list := func(account string, f *cdrv1.CdrFilter) ([]string, error) {
		resp, err := e.cdrs.ListCdrs(as(account), &cdrv1.ListCdrsRequest{Filter: f})
		var out []string
		for _, c := range resp.GetCdrs() {
			out = append(out, c.GetCall().GetId())
		}
		return out, err
	}
	cases := []struct {
		name   string
		filter *cdrv1.CdrFilter
		want   []string
	}{
		{"all (newest first)", nil, []string{completed, busy, mx}},
		{"campaign", &cdrv1.CdrFilter{CampaignId: "camp-1"}, []string{completed}},
		{"failed", &cdrv1.CdrFilter{Statuses: []originationv1.CallStatus{originationv1.CallStatus_CALL_STATUS_FAILED}}, []string{busy, mx}},
		{"failed first leg", &cdrv1.CdrFilter{FailedLeg: originationv1.LegRole_LEG_ROLE_FIRST}, []string{busy}},
		{"country", &cdrv1.CdrFilter{Country: "mx"}, []string{mx}},
		{"number as typed", &cdrv1.CdrFilter{Number: "0052 (55) 1234-5678"}, []string{mx}},
		{"endpoint", &cdrv1.CdrFilter{EndpointId: "ep-agent-7"}, []string{completed, busy, mx}},
		{"out of range", &cdrv1.CdrFilter{StartTime: timestamppb.New(now.Add(-48 * time.Hour)), EndTime: timestamppb.New(now.Add(-47 * time.Hour))}, nil},
	}
	for _, c := range cases {
		got, err := list(a, c.filter)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
	if got, _ := list(b, nil); fmt.Sprint(got) != fmt.Sprint([]string{other}) {
		t.Errorf("account b sees %v", got)
	}
	if _, err := e.cdrs.GetCdr(as(b), &cdrv1.GetCdrRequest{CallId: completed}); reasonOf(err) != "CDR_NOT_FOUND" {
		t.Errorf("b reading a's record: %v", err)
	}
	if _, err := e.cdrs.ListCdrs(context.Background(), &cdrv1.ListCdrsRequest{}); reasonOf(err) != "UNAUTHENTICATED" {
		t.Errorf("no account: %v", err)
	}
	bad := []struct {
		name   string
		req    *cdrv1.ListCdrsRequest
		reason string
	}{
		{"start after end", &cdrv1.ListCdrsRequest{Filter: &cdrv1.CdrFilter{StartTime: timestamppb.New(now), EndTime: timestamppb.New(now.Add(-time.Hour))}}, "INVALID_RANGE"},
		{"range over a year", &cdrv1.ListCdrsRequest{Filter: &cdrv1.CdrFilter{StartTime: timestamppb.New(now.AddDate(-2, 0, 0))}}, "INVALID_RANGE"},
		{"bad number", &cdrv1.ListCdrsRequest{Filter: &cdrv1.CdrFilter{Number: "call me"}}, "INVALID_ARGUMENT"},
		{"bad country", &cdrv1.ListCdrsRequest{Filter: &cdrv1.CdrFilter{Country: "Mexico"}}, "INVALID_ARGUMENT"},
		{"live status", &cdrv1.ListCdrsRequest{Filter: &cdrv1.CdrFilter{Statuses: []originationv1.CallStatus{originationv1.CallStatus_CALL_STATUS_RINGING}}}, "INVALID_ARGUMENT"},
		{"page too big", &cdrv1.ListCdrsRequest{PageSize: 5000}, "INVALID_ARGUMENT"},
		{"negative offset", &cdrv1.ListCdrsRequest{Offset: -1}, "INVALID_ARGUMENT"},
	}
	for _, c := range bad {
		if _, err := e.cdrs.ListCdrs(as(a), c.req); reasonOf(err) != c.reason {
			t.Errorf("%s: got %v, want %s", c.name, err, c.reason)
		}
	}
}

// The export streams every record of the query as CSV, with the comment
// fields as columns, and nothing of other accounts.
func TestExportCSV(t *testing.T) {
	t.Parallel()
	e := newSvcEnv(t)
	a, b := "acc-"+ids.NewV4(), "acc-"+ids.NewV4()
	now := time.Now()
	var rows []Row
	const n = 4500 // more than two export pages
	for i := range n {
		ev := finalEvent(a, now.Add(-time.Duration(i+1)*time.Second), outcomes[i%len(outcomes)], func(c *originationv1.Call) {
			if i == 0 {
				c.Variables = map[string]string{"note": "=HYPERLINK(\"http://evil\")"}
			}
		})
		raw, _ := proto.Marshal(ev.GetCall())
		r, _ := RowFrom(ev, raw)
		rows = append(rows, r)
	}
	ev := finalEvent(b, now.Add(-time.Second), outcomes[0])
	raw, _ := proto.Marshal(ev.GetCall())
	r, _ := RowFrom(ev, raw)
	rows = append(rows, r)
	if _, err := e.svc.Store.Insert(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
	comments := cdrv1.NewCommentServiceClient(e.conn)
	ct, err := comments.CreateCommentType(as(a), &cdrv1.CreateCommentTypeRequest{CommentType: &cdrv1.CommentType{Name: "Outcome",
		Fields: []*cdrv1.CommentField{{Name: "result", Kind: cdrv1.CommentFieldKind_COMMENT_FIELD_KIND_CHOICE, Choices: []string{"sale", "no sale"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	newest := rows[0].CallID
	for _, v := range []string{"no sale", "sale"} {
		vals, _ := structpb.NewStruct(map[string]any{"result": v})
		if _, err := comments.AddComment(as(a), &cdrv1.AddCommentRequest{CallId: newest, Comment: &cdrv1.Comment{TypeId: ct.GetCommentType().GetId(), Values: vals}}); err != nil {
			t.Fatal(err)
		}
	}

	stream, err := e.cdrs.ExportCdrs(as(a), &cdrv1.ExportCdrsRequest{TimeZone: "America/Mexico_City"})
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	go func() {
		for {
			msg, err := stream.Recv()
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				pw.CloseWithError(err)
				return
			}
			if _, err := pw.Write(msg.GetChunk()); err != nil {
				return
			}
		}
	}()
	records, err := csv.NewReader(pr).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(records) != n+1 {
		t.Fatalf("%d rows, want header + %d", len(records), n)
	}
	col := map[string]int{}
	for i, h := range records[0] {
		col[h] = i
	}
	for _, h := range []string{"call_id", "status", "created_at", "cost", "outcome", "attempts", "visitor_leg", "first_number", "second_endpoint_name", "first_route_pattern", "variables", "comment:Outcome:result"} {
		if _, ok := col[h]; !ok {
			t.Fatalf("no column %q in %v", h, records[0])
		}
	}
	top := records[1]
	if top[col["call_id"]] != newest || top[col["comment:Outcome:result"]] != "no sale | sale" {
		t.Errorf("newest row: id %s comments %q", top[col["call_id"]], top[col["comment:Outcome:result"]])
	}
	if top[col["attempts"]] != "1" || top[col["outcome"]] != "" || top[col["visitor_leg"]] != "" {
		t.Errorf("a call outside campaigns: attempts %q outcome %q visitor_leg %q", top[col["attempts"]], top[col["outcome"]], top[col["visitor_leg"]])
	}
	if v := top[col["variables"]]; !strings.HasPrefix(v, "{") {
		t.Errorf("variables %q", v)
	}
	if got, want := top[col["created_at"]], rows[0].CreatedAt.In(mustLoc(t, "America/Mexico_City")).Format(time.DateTime); got != want {
		t.Errorf("created_at %s, want %s (Mexico City time)", got, want)
	}
	seen := map[string]bool{}
	for _, rec := range records[1:] {
		if seen[rec[col["call_id"]]] {
			t.Fatalf("duplicate row %s", rec[col["call_id"]])
		}
		seen[rec[col["call_id"]]] = true
		if rec[col["call_id"]] == ev.GetCallId() {
			t.Fatal("another account's record exported")
		}
	}
	// Errors of a server stream surface on the first Recv.
	s2, _ := e.cdrs.ExportCdrs(as(a), &cdrv1.ExportCdrsRequest{TimeZone: "Mars/Olympus"})
	if _, err := s2.Recv(); reasonOf(err) != "INVALID_TIME_ZONE" {
		t.Errorf("bad time zone: %v", err)
	}
}

func mustLoc(t testing.TB, name string) *time.Location {
	l, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// decodeFinal reads what proto.Unmarshal reads, and stores the call's own
// bytes; what it cannot take as is it decodes whole; garbage is an error.
func TestDecodeFinal(t *testing.T) {
	ev := finalEvent("acc", time.Now(), outcomes[0])
	data, err := proto.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, data []byte) {
		t.Helper()
		var want, got eventsv1.CallEvent
		if err := proto.Unmarshal(data, &want); err != nil {
			t.Fatal(err)
		}
		raw, err := decodeFinal(data, &got)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var call originationv1.Call
		if err := proto.Unmarshal(raw, &call); err != nil || !proto.Equal(&call, want.GetCall()) {
			t.Errorf("%s: stored call %v, want %v", name, &call, want.GetCall())
		}
		if got.GetType() != want.GetType() || got.GetSequence() != want.GetSequence() ||
			!proto.Equal(got.GetOccurredAt(), want.GetOccurredAt()) || !proto.Equal(got.GetCall(), want.GetCall()) {
			t.Errorf("%s: decoded %v, want %v", name, &got, &want)
		}
	}
	check("event", data)
	// A second call field merges into the first (here: another status).
	patch, _ := proto.Marshal(&eventsv1.CallEvent{Call: &originationv1.Call{HangupCause: "MERGED"}, Sequence: 99})
	check("repeated call", append(append([]byte(nil), data...), patch...))
	var ev2 eventsv1.CallEvent
	for _, bad := range [][]byte{data[:len(data)-3], {0xff}, {0x3a, 0x05, 0x01}} {
		if _, err := decodeFinal(bad, &ev2); err == nil {
			t.Errorf("decodeFinal(%x) accepted garbage", bad)
		}
	}
}
