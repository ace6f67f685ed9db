package rating

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/ringback/ringback/proto/gen/go/ringback/events/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	ratingv1 "github.com/ringback/ringback/proto/gen/go/ringback/rating/v1"
	"github.com/ringback/ringback/services/internal/billing"
	"github.com/ringback/ringback/services/internal/natsbus"
	"github.com/ringback/ringback/services/internal/natsbus/natstest"
	"github.com/ringback/ringback/services/internal/store"
	"github.com/ringback/ringback/services/internal/store/storetest"
)

// testEnv is a rating service on a fresh database and NATS server, served
// over real gRPC on loopback.
type testEnv struct {
	svc  *Service
	bus  *natsbus.Bus
	conn *grpc.ClientConn
	db   string
}

func testLog(t testing.TB) *slog.Logger {
	if os.Getenv("RATING_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newEnv(t testing.TB, cfg ServiceConfig) *testEnv {
	t.Helper()
	ns := natstest.Start(t)
	return newEnvOn(t, cfg, storetest.NewDatabase(t), ns.URL())
}

func newEnvOn(t testing.TB, cfg ServiceConfig, dbURL, natsURL string) *testEnv {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := store.Open(ctx, dbURL, store.Options{AppName: "rating-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	var bus *natsbus.Bus
	bus, err = natsbus.Connect(ctx, natsURL, "rating-test", testLog(t), natsbus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	if cfg.SyncInterval == 0 {
		cfg.SyncInterval = time.Hour
	}
	if cfg.ImportMaxRows == 0 {
		cfg.ImportMaxRows = 5_000_000
	}
	svc, err := NewService(ctx, cfg, Deps{DB: pool, Bus: bus}, testLog(t))
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
	return &testEnv{svc: svc, bus: bus, conn: conn, db: dbURL}
}

func operator(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, RoleHeader, "operator")
}

func asAccount(ctx context.Context, id string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, AccountHeader, id)
}

// tariff creates a tariff over gRPC and imports csv into it.
func (e *testEnv) tariff(t testing.TB, name, csv string) string {
	t.Helper()
	ctx := operator(context.Background())
	resp, err := ratingv1.NewTariffServiceClient(e.conn).CreateTariff(ctx, &ratingv1.CreateTariffRequest{
		Tariff: &ratingv1.Tariff{Name: name, Currency: "USD"}})
	if err != nil {
		t.Fatal(err)
	}
	id := resp.GetTariff().GetId()
	if res := e.importCSV(t, id, ratingv1.ImportMode_IMPORT_MODE_REPLACE, csv); res.GetErrorCount() > 0 {
		t.Fatalf("import: %v", res.GetErrors())
	}
	return id
}

func (e *testEnv) importCSV(t testing.TB, id string, mode ratingv1.ImportMode, csv string) *ratingv1.ImportRatesResponse {
	t.Helper()
	stream, err := ratingv1.NewTariffServiceClient(e.conn).ImportRates(operator(context.Background()))
	if err != nil {
		t.Fatal(err)
	}
	data := []byte(csv)
	first := true
	for len(data) > 0 || first {
		n := min(len(data), 64<<10)
		msg := &ratingv1.ImportRatesRequest{Chunk: data[:n]}
		if first {
			msg.TariffId, msg.Mode, first = id, mode, false
		}
		if err := stream.Send(msg); err != nil {
			break
		}
		data = data[n:]
	}
	res, err := stream.CloseAndRecv()
	if err != nil {
		t.Fatalf("import: %v", err)
	}
	return res
}

func (e *testEnv) assign(t testing.TB, account, tariff string, mode ratingv1.BillingMode) {
	t.Helper()
	_, err := ratingv1.NewBillingServiceClient(e.conn).UpdateBilling(operator(context.Background()), &ratingv1.UpdateBillingRequest{
		Billing: &ratingv1.Billing{AccountId: account, TariffId: tariff, Mode: mode}})
	if err != nil {
		t.Fatal(err)
	}
}

func (e *testEnv) topUp(t testing.TB, account string, micros int64) {
	t.Helper()
	_, err := ratingv1.NewBillingServiceClient(e.conn).TopUp(operator(context.Background()), &ratingv1.TopUpRequest{
		AccountId: account, AmountMicros: micros, Reference: fmt.Sprintf("test-%d", time.Now().UnixNano())})
	if err != nil {
		t.Fatal(err)
	}
}

// reason is the ErrorInfo reason of a gRPC error ("" for nil).
func reason(err error) string {
	if err == nil {
		return ""
	}
	st := status.Convert(err)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return "code " + st.Code().String() + ": " + st.Message()
}

const testTariff = `prefix,destination,rate_per_minute,connection_fee,min_seconds,increment_seconds,effective_from
1,North America,0.01,0,6,6,
1212,New York,0.008,0,1,1,
34,Spain,0.02,0,1,1,
346,Spain - Mobile,0.06,0.01,60,60,
3491,Madrid,0.015,0,1,1,
44,United Kingdom,0.012,0,1,1,
4420,London,0.011,0,1,1,2000-01-01
4420,London (new price),0.009,0,1,1,2999-01-01
`

func TestAuthorize(t *testing.T) {
	t.Parallel()
	e := newEnv(t, ServiceConfig{BlockPremium: true})
	id := e.tariff(t, "retail", testTariff)
	const acct = "acct-authorize"
	e.assign(t, acct, id, ratingv1.BillingMode_BILLING_MODE_POSTPAID)
	rc := ratingv1.NewRatingServiceClient(e.conn)
	ctx := context.Background()
	tests := []struct {
		name, number   string
		wantPrefix     string
		wantDest       string
		wantReason     string
		wantCountry    string
		wantLineType   ratingv1.LineType
		wantPerMinute  int64
		wantConnection int64
	}{
		{name: "country prefix", number: "+13125550123", wantPrefix: "1", wantDest: "North America", wantPerMinute: 10_000, wantCountry: "US"},
		{name: "longer prefix wins", number: "+12125550123", wantPrefix: "1212", wantDest: "New York", wantPerMinute: 8_000, wantCountry: "US"},
		{name: "overlapping prefixes, deepest", number: "+34911234567", wantPrefix: "3491", wantDest: "Madrid", wantCountry: "ES", wantLineType: ratingv1.LineType_LINE_TYPE_FIXED_LINE},
		{name: "sibling of a deeper prefix", number: "+34931234567", wantPrefix: "34", wantDest: "Spain", wantCountry: "ES"},
		{name: "mobile with connection fee", number: "+34612345678", wantPrefix: "346", wantDest: "Spain - Mobile", wantPerMinute: 60_000, wantConnection: 10_000, wantLineType: ratingv1.LineType_LINE_TYPE_MOBILE},
		{name: "future rate not yet in effect", number: "+442071234567", wantPrefix: "4420", wantDest: "London", wantPerMinute: 11_000},
		{name: "no rate", number: "+8801712345678", wantReason: ReasonDestinationNotSupported},
		{name: "premium rate blocked", number: "+34803123456", wantReason: ReasonBlockedDestination},
		{name: "not a number", number: "+34-abc", wantReason: ReasonInvalidNumber},
		{name: "too short", number: "+123", wantReason: ReasonInvalidNumber},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			resp, err := rc.Authorize(ctx, &ratingv1.AuthorizeRequest{AccountId: acct, Number: tt.number, Leg: "first"})
			if tt.wantReason != "" {
				if got := reason(err); got != tt.wantReason {
					t.Fatalf("Authorize(%s): %v, want %s", tt.number, err, tt.wantReason)
				}
				return
			}
			if err != nil {
				t.Fatalf("Authorize(%s): %v", tt.number, err)
			}
			r := resp.GetRate()
			if r.GetPrefix() != tt.wantPrefix || r.GetDestination() != tt.wantDest || r.GetTariffId() != id || r.GetCurrency() != "USD" {
				t.Fatalf("rate = %v, want prefix %s %q", r, tt.wantPrefix, tt.wantDest)
			}
			if tt.wantPerMinute != 0 && r.GetRatePerMinuteMicros() != tt.wantPerMinute {
				t.Fatalf("rate per minute %d, want %d", r.GetRatePerMinuteMicros(), tt.wantPerMinute)
			}
			if r.GetConnectionFeeMicros() != tt.wantConnection {
				t.Fatalf("connection fee %d, want %d", r.GetConnectionFeeMicros(), tt.wantConnection)
			}
			if resp.GetMaxDurationS() != 0 {
				t.Fatalf("postpaid max duration %d, want 0 (no limit)", resp.GetMaxDurationS())
			}
			d := resp.GetDirection()
			if tt.wantCountry != "" && d.GetCountry() != tt.wantCountry {
				t.Fatalf("direction country %q, want %q (%v)", d.GetCountry(), tt.wantCountry, d)
			}
			if tt.wantLineType != 0 && d.GetLineType() != tt.wantLineType {
				t.Fatalf("line type %v, want %v", d.GetLineType(), tt.wantLineType)
			}
		})
	}
	t.Run("no tariff", func(t *testing.T) {
		t.Parallel()
		_, err := rc.Authorize(ctx, &ratingv1.AuthorizeRequest{AccountId: "acct-without-tariff", Number: "+13125550123"})
		if reason(err) != ReasonDestinationNotSupported {
			t.Fatalf("account without tariff: %v", err)
		}
	})
}

func TestBlocklist(t *testing.T) {
	t.Parallel()
	e := newEnv(t, ServiceConfig{})
	id := e.tariff(t, "retail", testTariff)
	e.assign(t, "acct-a", id, ratingv1.BillingMode_BILLING_MODE_POSTPAID)
	e.assign(t, "acct-b", id, ratingv1.BillingMode_BILLING_MODE_POSTPAID)
	bl := ratingv1.NewBlocklistServiceClient(e.conn)
	rc := ratingv1.NewRatingServiceClient(e.conn)
	ctx := context.Background()
	authorize := func(acct, number string) error {
		_, err := rc.Authorize(ctx, &ratingv1.AuthorizeRequest{AccountId: acct, Number: number})
		return err
	}
	// Premium numbers pass when the installation allows them and the tariff rates them.
	if err := authorize("acct-a", "+34803123456"); err != nil {
		t.Fatalf("premium allowed by configuration: %v", err)
	}
	if _, err := bl.CreateBlockedPrefix(operator(ctx), &ratingv1.CreateBlockedPrefixRequest{
		BlockedPrefix: &ratingv1.BlockedPrefix{Prefix: "+3480", Reason: "premium"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := bl.CreateBlockedPrefix(asAccount(ctx, "acct-a"), &ratingv1.CreateBlockedPrefixRequest{
		BlockedPrefix: &ratingv1.BlockedPrefix{Prefix: "1212"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := bl.CreateBlockedPrefix(asAccount(ctx, "acct-a"), &ratingv1.CreateBlockedPrefixRequest{
		BlockedPrefix: &ratingv1.BlockedPrefix{Prefix: "44", AccountId: "acct-b"}}); reason(err) != ReasonPermissionDenied {
		t.Fatalf("an account blocking for another: %v", err)
	}
	for _, tc := range []struct {
		acct, number, want string
	}{
		{"acct-a", "+34803123456", ReasonBlockedDestination}, // global
		{"acct-b", "+34803123456", ReasonBlockedDestination}, // global
		{"acct-a", "+12125550123", ReasonBlockedDestination}, // acct-a's own
		{"acct-b", "+12125550123", ""},                       // not acct-b's
		{"acct-a", "+13125550123", ""},                       // shorter prefix not blocked
	} {
		if got := reason(authorize(tc.acct, tc.number)); got != tc.want {
			t.Errorf("%s dialing %s: %s, want %q", tc.acct, tc.number, got, tc.want)
		}
	}
	list, err := bl.ListBlockedPrefixes(asAccount(ctx, "acct-a"), &ratingv1.ListBlockedPrefixesRequest{})
	if err != nil || len(list.GetBlockedPrefixes()) != 1 || list.GetBlockedPrefixes()[0].GetPrefix() != "1212" {
		t.Fatalf("acct-a's list: %v %v", list, err)
	}
	if _, err := bl.DeleteBlockedPrefix(asAccount(ctx, "acct-a"), &ratingv1.DeleteBlockedPrefixRequest{Prefix: "1212"}); err != nil {
		t.Fatal(err)
	}
	if err := authorize("acct-a", "+12125550123"); err != nil {
		t.Fatalf("after unblocking: %v", err)
	}
}

func TestImportIsAtomicAndReportsEveryBadRow(t *testing.T) {
	t.Parallel()
	e := newEnv(t, ServiceConfig{})
	id := e.tariff(t, "retail", testTariff)
	e.assign(t, "acct", id, ratingv1.BillingMode_BILLING_MODE_POSTPAID)
	bad := `prefix,destination,rate_per_minute,connection_fee,min_seconds,increment_seconds,effective_from
1,North America,0.02,0,6,6,
34x,Spain,0.02,0,1,1,
44,United Kingdom,-1,0,1,1,
49,Germany,0.02,0,1,0,
1,North America again,0.03,0,6,6,
33,France,0.0000001,0,1,1,
`
	res := e.importCSV(t, id, ratingv1.ImportMode_IMPORT_MODE_REPLACE, bad)
	if res.GetImported() != 0 || res.GetErrorCount() != 5 {
		t.Fatalf("imported %d with %d errors, want 0 and 5: %v", res.GetImported(), res.GetErrorCount(), res.GetErrors())
	}
	wantLines := []int32{3, 4, 5, 6, 7}
	for i, re := range res.GetErrors() {
		if re.GetLine() != wantLines[i] || re.GetReason() == "" {
			t.Fatalf("error %d: %v, want line %d", i, re, wantLines[i])
		}
	}
	// Nothing changed: the old rates still apply, in the database and in memory.
	rc := ratingv1.NewRatingServiceClient(e.conn)
	resp, err := rc.Authorize(context.Background(), &ratingv1.AuthorizeRequest{AccountId: "acct", Number: "+13125550123"})
	if err != nil || resp.GetRate().GetRatePerMinuteMicros() != 10_000 {
		t.Fatalf("after a failed import: %v %v", resp, err)
	}
	tr, err := ratingv1.NewTariffServiceClient(e.conn).GetTariff(operator(context.Background()), &ratingv1.GetTariffRequest{Id: id})
	if err != nil || tr.GetTariff().GetRateCount() != 8 || tr.GetTariff().GetVersion() != 2 {
		t.Fatalf("tariff after a failed import: %v %v", tr, err)
	}

	// Merge adds and replaces; export gives back exactly what is stored.
	res = e.importCSV(t, id, ratingv1.ImportMode_IMPORT_MODE_MERGE, "prefix,destination,rate_per_minute\n88,Bangladesh,0.05\n1,North America,0.011\n")
	if res.GetErrorCount() != 0 || res.GetTariff().GetRateCount() != 9 {
		t.Fatalf("merge: %v", res)
	}
	resp, err = rc.Authorize(context.Background(), &ratingv1.AuthorizeRequest{AccountId: "acct", Number: "+8801712345678"})
	if err != nil || resp.GetRate().GetDestination() != "Bangladesh" {
		t.Fatalf("after merge: %v %v", resp, err)
	}
	stream, err := ratingv1.NewTariffServiceClient(e.conn).ExportRates(operator(context.Background()), &ratingv1.ExportRatesRequest{TariffId: id})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out.Write(m.GetChunk())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 10 || !strings.HasPrefix(lines[1], "1,North America,0.011,") || !strings.Contains(out.String(), "4420,London (new price),0.009,0,1,1,2999-01-01T00:00:00Z") {
		t.Fatalf("export:\n%s", out.String())
	}
	// Re-importing the export replaces the tariff with itself.
	res = e.importCSV(t, id, ratingv1.ImportMode_IMPORT_MODE_REPLACE, out.String())
	if res.GetErrorCount() != 0 || res.GetImported() != 9 {
		t.Fatalf("re-import of the export: %v", res)
	}
}

func TestPrepaidReservationsNeverOverspend(t *testing.T) {
	t.Parallel()
	e := newEnv(t, ServiceConfig{})
	// 0.06/min on 1/1: one second costs 1000 micros.
	id := e.tariff(t, "flat", "prefix,destination,rate_per_minute,connection_fee,min_seconds,increment_seconds\n1,US,0.06,0,1,1\n")
	const acct = "acct-prepaid"
	e.assign(t, acct, id, ratingv1.BillingMode_BILLING_MODE_PREPAID)
	rc := ratingv1.NewRatingServiceClient(e.conn)
	ctx := context.Background()
	if _, err := rc.Authorize(ctx, &ratingv1.AuthorizeRequest{AccountId: acct, Number: "+13125550123"}); reason(err) != ReasonInsufficientBalance {
		t.Fatalf("empty prepaid balance: %v", err)
	}
	e.topUp(t, acct, 100_000) // 100 seconds
	auth, err := rc.Authorize(ctx, &ratingv1.AuthorizeRequest{AccountId: acct, Number: "+13125550123"})
	if err != nil || auth.GetMaxDurationS() != 100 {
		t.Fatalf("authorize with 100 s of balance: %v %v", auth, err)
	}
	// 20 calls answered at once, each wanting 30 s: together they may be
	// granted at most the 100 s the balance pays for.
	var granted atomic.Int64
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := rc.Reserve(ctx, &ratingv1.ReserveRequest{AccountId: acct, CallId: fmt.Sprintf("call-%d", i), Leg: "first",
				Rate: auth.GetRate(), MaxDurationS: 30})
			if err != nil {
				t.Error(err)
				return
			}
			granted.Add(int64(r.GetGrantedS()))
		}()
	}
	wg.Wait()
	if g := granted.Load(); g != 100 {
		t.Fatalf("granted %d s in all, want exactly the 100 s paid for", g)
	}
	b, err := ratingv1.NewBillingServiceClient(e.conn).GetBilling(asAccount(ctx, acct), &ratingv1.GetBillingRequest{AccountId: acct})
	if err != nil || b.GetBilling().GetReservedMicros() != 100_000 || b.GetBilling().GetAvailableMicros() != 0 {
		t.Fatalf("billing while reserved: %v %v", b, err)
	}
	// A retry of a reservation is not a second one.
	r, err := rc.Reserve(ctx, &ratingv1.ReserveRequest{AccountId: acct, CallId: "call-0", Leg: "first", Rate: auth.GetRate(), MaxDurationS: 30})
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := ratingv1.NewBillingServiceClient(e.conn).GetBilling(asAccount(ctx, acct), &ratingv1.GetBillingRequest{AccountId: acct})
	if b2.GetBilling().GetReservedMicros() != 100_000 {
		t.Fatalf("retried reservation changed the hold: %v (granted %d)", b2, r.GetGrantedS())
	}
	// Another account may not read this one's billing.
	if _, err := ratingv1.NewBillingServiceClient(e.conn).GetBilling(asAccount(ctx, "someone-else"), &ratingv1.GetBillingRequest{AccountId: acct}); reason(err) != ReasonPermissionDenied {
		t.Fatalf("foreign billing read: %v", err)
	}
}

// TestSettlementFromEvents publishes LEG_HANGUP events on JetStream, as
// origination does, and checks the ledger: each answered leg charged once
// (redelivered events included), its hold released.
func TestSettlementFromEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t, ServiceConfig{})
	id := e.tariff(t, "flat", "prefix,destination,rate_per_minute,connection_fee,min_seconds,increment_seconds\n1,US,0.06,0.005,30,6\n")
	const acct = "acct-settle"
	e.assign(t, acct, id, ratingv1.BillingMode_BILLING_MODE_PREPAID)
	e.topUp(t, acct, 1_000_000)
	ctx := context.Background()
	rc := ratingv1.NewRatingServiceClient(e.conn)
	auth, err := rc.Authorize(ctx, &ratingv1.AuthorizeRequest{AccountId: acct, Number: "+13125550123"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Reserve(ctx, &ratingv1.ReserveRequest{AccountId: acct, CallId: "call-1", Leg: "first", Rate: auth.GetRate(), MaxDurationS: 600}); err != nil {
		t.Fatal(err)
	}
	answered := timestamppb.New(time.Now().Add(-time.Minute))
	ev := &eventsv1.CallEvent{
		EventId: "call-1.5", Sequence: 5, AccountId: acct, CallId: "call-1", Type: eventsv1.EventType_EVENT_TYPE_LEG_HANGUP,
		Leg: originationv1.LegRole_LEG_ROLE_FIRST,
		Call: &originationv1.Call{Id: "call-1", AccountId: acct,
			First: &originationv1.Leg{Rate: auth.GetRate(), AnsweredAt: answered, Billsec: 31}},
	}
	data, _ := proto.Marshal(ev)
	// Published twice under different message ids: the ledger, not the
	// bus, must make the second a no-op.
	for _, msgID := range []string{"call-1.5", "call-1.5-again"} {
		if _, err := e.bus.Publish(ctx, "calls."+acct+".call-1.leg_hangup", msgID, data); err != nil {
			t.Fatal(err)
		}
	}
	// An unanswered leg is not charged.
	ev2 := proto.Clone(ev).(*eventsv1.CallEvent)
	ev2.CallId, ev2.EventId, ev2.Call.First.AnsweredAt = "call-2", "call-2.3", nil
	data2, _ := proto.Marshal(ev2)
	if _, err := e.bus.Publish(ctx, "calls."+acct+".call-2.leg_hangup", "call-2.3", data2); err != nil {
		t.Fatal(err)
	}
	// 31 s on 30/6 bills 36 s: 36*60000/60 = 36000, plus the 5000 fee.
	want := billing.Cost(billing.Rate{PerMinuteMicros: 60_000, ConnectionFeeMicros: 5_000, MinSeconds: 30, IncrementSeconds: 6}, 31)
	if want != 41_000 {
		t.Fatalf("cost formula changed: %d", want)
	}
	bc := ratingv1.NewBillingServiceClient(e.conn)
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := bc.GetBilling(operator(ctx), &ratingv1.GetBillingRequest{AccountId: acct})
		if err != nil {
			t.Fatal(err)
		}
		if b.GetBilling().GetBalanceMicros() == 1_000_000-want && b.GetBilling().GetReservedMicros() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("billing never settled: %v", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // give the duplicate a chance to (wrongly) charge again
	tx, err := bc.ListTransactions(operator(ctx), &ratingv1.ListTransactionsRequest{AccountId: acct})
	if err != nil {
		t.Fatal(err)
	}
	var charges []*ratingv1.Transaction
	for _, x := range tx.GetTransactions() {
		if x.GetKind() == ratingv1.TransactionKind_TRANSACTION_KIND_CHARGE {
			charges = append(charges, x)
		}
	}
	if len(charges) != 1 || charges[0].GetAmountMicros() != -want || charges[0].GetBilledS() != 36 || charges[0].GetCallId() != "call-1" {
		t.Fatalf("charges: %v", charges)
	}
	if b, _ := bc.GetBilling(operator(ctx), &ratingv1.GetBillingRequest{AccountId: acct}); b.GetBilling().GetBalanceMicros() != 1_000_000-want {
		t.Fatalf("charged twice: %v", b)
	}
}

// TestReloadUnderLoadNeverFailsALookup re-imports a tariff again and again
// while lookups run flat out: every lookup must find a rate, from the old
// version or the new one, never nothing.
func TestReloadUnderLoadNeverFailsALookup(t *testing.T) {
	t.Parallel()
	e := newEnv(t, ServiceConfig{})
	var csv strings.Builder
	csv.WriteString("prefix,destination,rate_per_minute\n")
	for i := range 20_000 {
		fmt.Fprintf(&csv, "1%05d,Block %d,0.01\n", i, i)
	}
	id := e.tariff(t, "big", csv.String())
	e.assign(t, "acct", id, ratingv1.BillingMode_BILLING_MODE_POSTPAID)
	stop := make(chan struct{})
	var lookups, failures atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := 0
			for {
				select {
				case <-stop:
					return
				default:
				}
				number := fmt.Sprintf("+1%05d1234", n%20_000)
				n += 7919
				if _, err := e.svc.Rater.Authorize(context.Background(), "acct", number, ""); err != nil {
					failures.Add(1)
					t.Errorf("lookup of %s during reload: %v", number, err)
					return
				}
				lookups.Add(1)
			}
		}()
	}
	for range 5 {
		if res := e.importCSV(t, id, ratingv1.ImportMode_IMPORT_MODE_REPLACE, csv.String()); res.GetErrorCount() != 0 {
			t.Fatal(res.GetErrors())
		}
	}
	close(stop)
	wg.Wait()
	if failures.Load() != 0 || lookups.Load() == 0 {
		t.Fatalf("%d lookups, %d failures", lookups.Load(), failures.Load())
	}
	if v := e.svc.Rater.book.Get(id).Version; v != 7 {
		t.Fatalf("book holds version %d, want 7", v)
	}
}

// TestReplicasLearnChangesThroughNATS runs two rating replicas on one
// database and NATS: a tariff imported or a billing change made on one is
// used by the other without a restart.
func TestReplicasLearnChangesThroughNATS(t *testing.T) {
	t.Parallel()
	ns := natstest.Start(t)
	dbURL := storetest.NewDatabase(t)
	a := newEnvOn(t, ServiceConfig{}, dbURL, ns.URL())
	b := newEnvOn(t, ServiceConfig{}, dbURL, ns.URL())
	id := a.tariff(t, "shared", testTariff)
	a.assign(t, "acct", id, ratingv1.BillingMode_BILLING_MODE_POSTPAID)
	rcB := ratingv1.NewRatingServiceClient(b.conn)
	eventually(t, func() error {
		_, err := rcB.Authorize(context.Background(), &ratingv1.AuthorizeRequest{AccountId: "acct", Number: "+8801712345678"})
		if reason(err) != ReasonDestinationNotSupported {
			return fmt.Errorf("before: %v", err)
		}
		resp, err := rcB.Authorize(context.Background(), &ratingv1.AuthorizeRequest{AccountId: "acct", Number: "+34911234567"})
		if err != nil || resp.GetRate().GetDestination() != "Madrid" {
			return fmt.Errorf("replica b: %v %v", resp, err)
		}
		return nil
	})
	a.importCSV(t, id, ratingv1.ImportMode_IMPORT_MODE_MERGE, "prefix,destination,rate_per_minute\n880,Bangladesh,0.05\n")
	eventually(t, func() error {
		resp, err := rcB.Authorize(context.Background(), &ratingv1.AuthorizeRequest{AccountId: "acct", Number: "+8801712345678"})
		if err != nil || resp.GetRate().GetDestination() != "Bangladesh" {
			return fmt.Errorf("replica b after the import on a: %v %v", resp, err)
		}
		return nil
	})
	// Switching the account to prepaid with no money is seen by b at once.
	a.assign(t, "acct", "", ratingv1.BillingMode_BILLING_MODE_PREPAID)
	eventually(t, func() error {
		_, err := rcB.Authorize(context.Background(), &ratingv1.AuthorizeRequest{AccountId: "acct", Number: "+34911234567"})
		if reason(err) != ReasonInsufficientBalance {
			return fmt.Errorf("replica b after the switch to prepaid: %v", err)
		}
		return nil
	})
}

func eventually(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTariffAdministration(t *testing.T) {
	t.Parallel()
	e := newEnv(t, ServiceConfig{})
	ctx := context.Background()
	tc := ratingv1.NewTariffServiceClient(e.conn)
	if _, err := tc.CreateTariff(asAccount(ctx, "acct"), &ratingv1.CreateTariffRequest{Tariff: &ratingv1.Tariff{Name: "x", Currency: "USD"}}); reason(err) != ReasonPermissionDenied {
		t.Fatalf("an account creating a tariff: %v", err)
	}
	if _, err := tc.CreateTariff(ctx, &ratingv1.CreateTariffRequest{Tariff: &ratingv1.Tariff{Name: "x", Currency: "USD"}}); reason(err) != ReasonUnauthenticated {
		t.Fatalf("nobody creating a tariff: %v", err)
	}
	if _, err := tc.CreateTariff(operator(ctx), &ratingv1.CreateTariffRequest{Tariff: &ratingv1.Tariff{Name: "x", Currency: "usd"}}); err == nil {
		t.Fatal("lower-case currency accepted")
	}
	usd := e.tariff(t, "usd", testTariff)
	eur, err := tc.CreateTariff(operator(ctx), &ratingv1.CreateTariffRequest{Tariff: &ratingv1.Tariff{Name: "eur", Currency: "EUR"}})
	if err != nil {
		t.Fatal(err)
	}
	e.assign(t, "acct", usd, ratingv1.BillingMode_BILLING_MODE_POSTPAID)
	if _, err := ratingv1.NewBillingServiceClient(e.conn).UpdateBilling(operator(ctx), &ratingv1.UpdateBillingRequest{
		Billing: &ratingv1.Billing{AccountId: "acct", TariffId: eur.GetTariff().GetId()}}); reason(err) != ReasonCurrencyMismatch {
		t.Fatalf("tariff in another currency: %v", err)
	}
	if _, err := tc.DeleteTariff(operator(ctx), &ratingv1.DeleteTariffRequest{Id: usd}); reason(err) != ReasonTariffInUse {
		t.Fatalf("deleting a tariff in use: %v", err)
	}
	if _, err := tc.DeleteTariff(operator(ctx), &ratingv1.DeleteTariffRequest{Id: eur.GetTariff().GetId()}); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.GetTariff(operator(ctx), &ratingv1.GetTariffRequest{Id: eur.GetTariff().GetId()}); reason(err) != ReasonTariffNotFound {
		t.Fatalf("deleted tariff: %v", err)
	}
	// Campaign tariffs replace the account's for that campaign's calls.
	camp := e.tariff(t, "campaign", "prefix,destination,rate_per_minute\n1,US campaign price,0.001\n")
	if _, err := ratingv1.NewBillingServiceClient(e.conn).UpdateBilling(operator(ctx), &ratingv1.UpdateBillingRequest{
		Billing: &ratingv1.Billing{AccountId: "acct", CampaignTariffs: map[string]string{"camp-1": camp}}}); err != nil {
		t.Fatal(err)
	}
	rc := ratingv1.NewRatingServiceClient(e.conn)
	r1, err := rc.Authorize(ctx, &ratingv1.AuthorizeRequest{AccountId: "acct", Number: "+13125550123", CampaignId: "camp-1"})
	if err != nil || r1.GetRate().GetRatePerMinuteMicros() != 1_000 {
		t.Fatalf("campaign tariff: %v %v", r1, err)
	}
	r2, err := rc.Authorize(ctx, &ratingv1.AuthorizeRequest{AccountId: "acct", Number: "+13125550123", CampaignId: "camp-2"})
	if err != nil || r2.GetRate().GetRatePerMinuteMicros() != 10_000 {
		t.Fatalf("other campaign: %v %v", r2, err)
	}
	// Paging through rates.
	var got []string
	token := ""
	for {
		resp, err := tc.ListRates(operator(ctx), &ratingv1.ListRatesRequest{TariffId: usd, PageSize: 3, PageToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range resp.GetRates() {
			got = append(got, r.GetPrefix())
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	if strings.Join(got, ",") != "1,1212,34,346,3491,44,4420,4420" {
		t.Fatalf("paged rates: %v", got)
	}
}

// TestTariffMissedByAReplicaIsLoadedOnUse: a replica that missed the
// notification of a tariff loads it on first use instead of refusing calls.
func TestTariffMissedByAReplicaIsLoadedOnUse(t *testing.T) {
	t.Parallel()
	e := newEnv(t, ServiceConfig{})
	id := e.tariff(t, "retail", testTariff)
	e.assign(t, "acct", id, ratingv1.BillingMode_BILLING_MODE_POSTPAID)
	// The notifications of the tariff's creation and of its rates load it
	// here; once its rates are in, drop it as if they never came (a load
	// of the creation still in flight cannot put the empty version back).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, ok := e.svc.Rater.book.Get(id).Lookup("34911234567", time.Now()); ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the tariff's rates never reached the book")
		}
	}
	e.svc.Rater.book.forget(id)
	resp, err := ratingv1.NewRatingServiceClient(e.conn).Authorize(context.Background(), &ratingv1.AuthorizeRequest{AccountId: "acct", Number: "+34911234567"})
	if err != nil || resp.GetRate().GetDestination() != "Madrid" {
		t.Fatalf("authorize with the tariff missing from memory: %v %v", resp, err)
	}
}
