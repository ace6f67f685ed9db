package dialer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	dialerv1 "github.com/ringback/ringback/proto/gen/go/ringback/dialer/v1"
	"github.com/ringback/ringback/services/internal/ids"
	"github.com/ringback/ringback/services/internal/store"
	"github.com/ringback/ringback/services/internal/store/storetest"
)

// listEnv is the dialer API on a real gRPC server over loopback, on its
// own database.
type listEnv struct {
	db     *pgxpool.Pool
	srv    *Server
	client dialerv1.DialerServiceClient
	wakes  *wakeCounter
}

type wakeCounter struct{ n atomic.Int32 }

func (w *wakeCounter) Wake() { w.n.Add(1) }

func newListEnv(t testing.TB) *listEnv {
	t.Helper()
	db := storetest.NewDB(t)
	if err := store.Migrate(context.Background(), db, "dialer", Migrations()); err != nil {
		t.Fatal(err)
	}
	e := &listEnv{db: db, wakes: &wakeCounter{}}
	e.srv = &Server{DB: db, Engine: e.wakes, Log: slog.New(slog.DiscardHandler)}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	dialerv1.RegisterDialerServiceServer(gs, e.srv)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	e.client = dialerv1.NewDialerServiceClient(conn)
	return e
}

// campaign stores a campaign of account (what CreateCampaign would) with
// a default country, in a status, at a run.
func (e *listEnv) campaign(t testing.TB, account, country string, st dialerv1.CampaignStatus, run int) string {
	t.Helper()
	id := ids.NewV4()
	if _, err := e.db.Exec(context.Background(), `INSERT INTO dialer.campaigns (id, account_id, name, status, settings, run)
		VALUES ($1, $2, $3, $4, $5, $6)`, id, account, "c-"+id, int16(st), fmt.Sprintf(`{"default_country": %q}`, country), run); err != nil {
		t.Fatal(err)
	}
	return id
}

func callerCtx(ctx context.Context, account string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, AccountHeader, account)
}

// importCSV sends a file in chunks of size bytes.
func (e *listEnv) importCSV(ctx context.Context, account string, first *dialerv1.ImportListRequest, data []byte, size int) (*dialerv1.ImportListResponse, error) {
	stream, err := e.client.ImportList(callerCtx(ctx, account))
	if err != nil {
		return nil, err
	}
	msg := first
	for {
		n := min(size, len(data))
		msg.Chunk, data = data[:n], data[n:]
		if err := stream.Send(msg); err != nil {
			break // the server answered early: CloseAndRecv has its answer
		}
		if len(data) == 0 {
			break
		}
		msg = &dialerv1.ImportListRequest{}
	}
	return stream.CloseAndRecv()
}

func wantStatus(t testing.TB, err error, code codes.Code, reason string) {
	t.Helper()
	st, _ := status.FromError(err)
	if st.Code() != code {
		t.Fatalf("code %v (%v), want %v", st.Code(), err, code)
	}
	for _, d := range st.Details() {
		if info, ok := d.(interface{ GetReason() string }); ok && info.GetReason() == reason {
			return
		}
	}
	t.Fatalf("error %v has no reason %s", err, reason)
}

type storedRecord struct {
	line        int64
	raw         string
	numbers     []string
	fields      map[string]string
	scheduleAt  *time.Time
	scheduleExt string
	dueNow      bool // next_at is -infinity
	run         int
	status      string
}

func (e *listEnv) records(t testing.TB, list string) []storedRecord {
	t.Helper()
	rows, err := e.db.Query(context.Background(), `SELECT line, raw, numbers, fields, schedule_at, schedule_ext, next_at = '-infinity', run, status,
		next_at = coalesce(schedule_at, '-infinity'), campaign_id::text = (SELECT campaign_id::text FROM dialer.lists WHERE id = $1)
		FROM dialer.records WHERE list_id = $1 ORDER BY line`, list)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []storedRecord
	for rows.Next() {
		var r storedRecord
		var nextOK, campaignOK bool
		if err := rows.Scan(&r.line, &r.raw, &r.numbers, &r.fields, &r.scheduleAt, &r.scheduleExt, &r.dueNow, &r.run, &r.status, &nextOK, &campaignOK); err != nil {
			t.Fatal(err)
		}
		if !nextOK || !campaignOK {
			t.Fatalf("record at line %d: next_at is not its schedule, or campaign_id is not its list's", r.line)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestImportListSpecExample(t *testing.T) {
	t.Parallel()
	e := newListEnv(t)
	ctx := context.Background()
	camp := e.campaign(t, "acc-a", "BR", dialerv1.CampaignStatus_CAMPAIGN_STATUS_CREATED, 0)

	// Chunks of 7 bytes cut rows (and the BOM) anywhere.
	resp, err := e.importCSV(ctx, "acc-a", &dialerv1.ImportListRequest{CampaignId: camp, AccountCode: "cc-1"}, []byte("\ufeff"+specList), 7)
	if err != nil {
		t.Fatal(err)
	}
	l := resp.GetList()
	if l.GetStatus() != dialerv1.ListStatus_LIST_STATUS_READY || l.GetRecords() != 4 || l.GetRejected() != 0 || resp.GetErrorCount() != 0 ||
		l.GetName() != "list 1" || l.GetAccountCode() != "cc-1" || !l.GetActive() || l.GetCampaignId() != camp ||
		!slices.Equal(l.GetColumns(), []string{"TelNumber", "FullName", "CustomerCode"}) {
		t.Fatalf("list: %v, %d errors", l, resp.GetErrorCount())
	}
	recs := e.records(t, l.GetId())
	if len(recs) != 4 {
		t.Fatalf("%d records", len(recs))
	}
	r := recs[1]
	if r.line != 3 || r.raw != "1140637865|1156984628|1146120456,Peter Riviera,0156" ||
		!slices.Equal(r.numbers, []string{"+551140637865", "+551156984628", "+551146120456"}) ||
		r.fields["FullName"] != "Peter Riviera" || r.fields["CustomerCode"] != "0156" || len(r.fields) != 2 ||
		r.scheduleAt != nil || !r.dueNow || r.status != StatusReady || r.run != 0 {
		t.Fatalf("record: %+v", r)
	}
	if e.wakes.n.Load() != 1 {
		t.Errorf("engine woken %d times, want 1", e.wakes.n.Load())
	}

	// A second list, named; lists come oldest first.
	resp, err = e.importCSV(ctx, "acc-a", &dialerv1.ImportListRequest{CampaignId: camp, Name: "retry batch"}, []byte("num\n+14155550100\n"), 1<<20)
	if err != nil || resp.GetList().GetName() != "retry batch" || resp.GetList().GetRecords() != 1 {
		t.Fatalf("second import: %v %v", resp, err)
	}
	lists, err := e.client.ListLists(callerCtx(ctx, "acc-a"), &dialerv1.ListListsRequest{CampaignId: camp})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range lists.GetLists() {
		names = append(names, l.GetName())
	}
	if !slices.Equal(names, []string{"list 1", "retry batch"}) {
		t.Fatalf("lists: %q", names)
	}
}

func TestImportListRowErrors(t *testing.T) {
	t.Parallel()
	e := newListEnv(t)
	ctx := context.Background()
	camp := e.campaign(t, "acc-a", "US", dialerv1.CampaignStatus_CAMPAIGN_STATUS_CREATED, 0)
	in := "Phone,*Schedule*,Name\r\n" +
		"4155550100,1298635200:1101,Ann\r\n" + // 2
		"4155550101,,\"Bob, Jr.\nthe second\"\r\n" + // 3-4
		"4155550102|12,,Carl\r\n" + // 5
		"4155550103,1298635200,Dee\r\n" + // 6
		"4155550104,,Eve,extra\r\n" + // 7
		"\r\n" +
		"4155550105,1298635200:,Fay\r\n" // 9
	resp, err := e.importCSV(ctx, "acc-a", &dialerv1.ImportListRequest{CampaignId: camp}, []byte(in), 5)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, re := range resp.GetErrors() {
		got = append(got, fmt.Sprintf("%d: %s", re.GetLine(), re.GetMessage()))
	}
	if resp.GetErrorCount() != 3 || len(got) != 3 || !strings.HasPrefix(got[0], "5: number 2 of 2") ||
		!strings.HasPrefix(got[1], "6: *Schedule*") || got[2] != "7: 4 columns, the header has 3" {
		t.Fatalf("errors (%d): %q", resp.GetErrorCount(), got)
	}
	if l := resp.GetList(); l.GetRecords() != 3 || l.GetRejected() != 3 || l.GetStatus() != dialerv1.ListStatus_LIST_STATUS_READY {
		t.Fatalf("list: %v", l)
	}
	recs := e.records(t, resp.GetList().GetId())
	sched := time.Unix(1298635200, 0)
	if len(recs) != 3 || recs[0].scheduleAt == nil || !recs[0].scheduleAt.Equal(sched) || recs[0].scheduleExt != "1101" || recs[0].dueNow ||
		recs[0].fields["Name"] != "Ann" || len(recs[0].fields) != 1 ||
		recs[1].line != 3 || recs[1].fields["Name"] != "Bob, Jr.\nthe second" || recs[1].raw != "4155550101,,\"Bob, Jr.\nthe second\"" || !recs[1].dueNow ||
		recs[2].line != 9 || recs[2].scheduleAt == nil || recs[2].scheduleExt != "" || recs[2].numbers[0] != "+14155550105" {
		t.Fatalf("records: %+v", recs)
	}

	// Every bad row is counted, the first 1000 reported.
	var b strings.Builder
	b.WriteString("num\n")
	for i := range 1500 {
		if i%2 == 0 {
			b.WriteString("nope\n")
		} else {
			fmt.Fprintf(&b, "+1415555%04d\n", i)
		}
	}
	resp, err = e.importCSV(ctx, "acc-a", &dialerv1.ImportListRequest{CampaignId: camp}, []byte(b.String()), 4096)
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetErrorCount() != 750 || len(resp.GetErrors()) != 750 || resp.GetList().GetRecords() != 750 || resp.GetErrors()[749].GetLine() != 1500 {
		t.Fatalf("%d errors, %d reported, %d records", resp.GetErrorCount(), len(resp.GetErrors()), resp.GetList().GetRecords())
	}
	b.Reset()
	b.WriteString("num\n")
	for range 1200 {
		b.WriteString("nope\n")
	}
	resp, err = e.importCSV(ctx, "acc-a", &dialerv1.ImportListRequest{CampaignId: camp}, []byte(b.String()), 4096)
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetErrorCount() != 1200 || len(resp.GetErrors()) != MaxRowErrors || resp.GetList().GetRecords() != 0 ||
		resp.GetList().GetStatus() != dialerv1.ListStatus_LIST_STATUS_READY || resp.GetErrors()[MaxRowErrors-1].GetLine() != MaxRowErrors+1 {
		t.Fatalf("%d errors, %d reported, list %v", resp.GetErrorCount(), len(resp.GetErrors()), resp.GetList())
	}
}

func TestImportListRefused(t *testing.T) {
	t.Parallel()
	e := newListEnv(t)
	ctx := context.Background()
	camp := e.campaign(t, "acc-a", "", dialerv1.CampaignStatus_CAMPAIGN_STATUS_CREATED, 0)
	file := []byte("num\n+14155550100\n")
	tests := []struct {
		name    string
		account string
		first   *dialerv1.ImportListRequest
		file    []byte
		code    codes.Code
		reason  string
	}{
		{"another account's campaign", "acc-b", &dialerv1.ImportListRequest{CampaignId: camp}, file, codes.NotFound, "CAMPAIGN_NOT_FOUND"},
		{"no such campaign", "acc-a", &dialerv1.ImportListRequest{CampaignId: ids.NewV4()}, file, codes.NotFound, "CAMPAIGN_NOT_FOUND"},
		{"not an id", "acc-a", &dialerv1.ImportListRequest{CampaignId: "x'; DROP TABLE"}, file, codes.NotFound, "CAMPAIGN_NOT_FOUND"},
		{"no campaign", "acc-a", &dialerv1.ImportListRequest{}, file, codes.NotFound, "CAMPAIGN_NOT_FOUND"},
		{"bad header", "acc-a", &dialerv1.ImportListRequest{CampaignId: camp}, []byte("num,a,a\n+14155550100,1,2\n"), codes.InvalidArgument, "INVALID_HEADER"},
		{"empty file", "acc-a", &dialerv1.ImportListRequest{CampaignId: camp}, nil, codes.InvalidArgument, "INVALID_HEADER"},
		{"bad name", "acc-a", &dialerv1.ImportListRequest{CampaignId: camp, Name: "a\nb"}, file, codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"no account", "", &dialerv1.ImportListRequest{CampaignId: camp}, file, codes.Unauthenticated, "UNAUTHENTICATED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.importCSV(ctx, tt.account, tt.first, tt.file, 1024)
			wantStatus(t, err, tt.code, tt.reason)
		})
	}
	// None of them left a list behind.
	var n int
	if err := e.db.QueryRow(ctx, `SELECT count(*) FROM dialer.lists`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d lists, %v", n, err)
	}
	// Nor may another account list or change the campaign's lists.
	_, err := e.client.ListLists(callerCtx(ctx, "acc-b"), &dialerv1.ListListsRequest{CampaignId: camp})
	wantStatus(t, err, codes.NotFound, "CAMPAIGN_NOT_FOUND")
}

// waitList waits until the list of a campaign is in a status, and returns
// its id.
func (e *listEnv) waitList(t testing.TB, campaign string, want dialerv1.ListStatus) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var id string
		var st int16
		err := e.db.QueryRow(context.Background(), `SELECT id::text, status FROM dialer.lists WHERE campaign_id = $1`, campaign).Scan(&id, &st)
		if err == nil && dialerv1.ListStatus(st) == want {
			return id
		}
		if time.Now().After(deadline) {
			t.Fatalf("list of campaign %s: status %v (%v), want %v", campaign, dialerv1.ListStatus(st), err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestImportListBrokenStream: a client that goes away mid-file leaves a
// FAILED list without records, never a part of its rows.
func TestImportListBrokenStream(t *testing.T) {
	t.Parallel()
	e := newListEnv(t)
	camp := e.campaign(t, "acc-a", "", dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := e.client.ImportList(callerCtx(ctx, "acc-a"))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("num,name\n")
	for i := range 5000 {
		fmt.Fprintf(&b, "+1415555%04d,n%d\n", i, i)
	}
	if err := stream.Send(&dialerv1.ImportListRequest{CampaignId: camp, Chunk: []byte(b.String())}); err != nil {
		t.Fatal(err)
	}
	e.waitList(t, camp, dialerv1.ListStatus_LIST_STATUS_IMPORTING)
	// More rows, cut in the middle of one, then the client is gone.
	if err := stream.Send(&dialerv1.ImportListRequest{Chunk: []byte(b.String()[9:5000])}); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := stream.CloseAndRecv(); status.Code(err) != codes.Canceled {
		t.Fatalf("CloseAndRecv: %v", err)
	}
	list := e.waitList(t, camp, dialerv1.ListStatus_LIST_STATUS_FAILED)
	var n int
	if err := e.db.QueryRow(context.Background(), `SELECT count(*) FROM dialer.records WHERE list_id = $1`, list).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d records left, %v", n, err)
	}
	if e.wakes.n.Load() != 0 {
		t.Errorf("engine woken for a failed import")
	}
}

// TestImportListJoinsNewRun: a run started while a list is being imported
// (it did not see the list's rows) gets them.
func TestImportListJoinsNewRun(t *testing.T) {
	t.Parallel()
	e := newListEnv(t)
	ctx := context.Background()
	camp := e.campaign(t, "acc-a", "", dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING, 2)
	stream, err := e.client.ImportList(callerCtx(ctx, "acc-a"))
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&dialerv1.ImportListRequest{CampaignId: camp, Chunk: []byte("num\n+14155550100\n")}); err != nil {
		t.Fatal(err)
	}
	e.waitList(t, camp, dialerv1.ListStatus_LIST_STATUS_IMPORTING)
	if _, err := e.db.Exec(ctx, `UPDATE dialer.campaigns SET run = 3 WHERE id = $1`, camp); err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&dialerv1.ImportListRequest{Chunk: []byte("+14155550101\n")}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		t.Fatal(err)
	}
	recs := e.records(t, resp.GetList().GetId())
	if len(recs) != 2 || recs[0].run != 3 || recs[1].run != 3 {
		t.Fatalf("records: %+v", recs)
	}
}

func TestUpdateList(t *testing.T) {
	t.Parallel()
	e := newListEnv(t)
	ctx := callerCtx(context.Background(), "acc-a")
	camp := e.campaign(t, "acc-a", "", dialerv1.CampaignStatus_CAMPAIGN_STATUS_CREATED, 0)
	other := e.campaign(t, "acc-a", "", dialerv1.CampaignStatus_CAMPAIGN_STATUS_CREATED, 0)
	resp, err := e.importCSV(context.Background(), "acc-a", &dialerv1.ImportListRequest{CampaignId: camp, Name: "first"}, []byte("num\n+14155550100\n"), 64)
	if err != nil {
		t.Fatal(err)
	}
	id := resp.GetList().GetId()
	off := false
	up, err := e.client.UpdateList(ctx, &dialerv1.UpdateListRequest{CampaignId: camp, ListId: id, Active: &off})
	if err != nil || up.GetList().GetActive() || up.GetList().GetName() != "first" || up.GetList().GetRecords() != 1 {
		t.Fatalf("deactivate: %v %v", up, err)
	}
	up, err = e.client.UpdateList(ctx, &dialerv1.UpdateListRequest{CampaignId: camp, ListId: id, Name: "renamed"})
	if err != nil || up.GetList().GetActive() || up.GetList().GetName() != "renamed" {
		t.Fatalf("rename: %v %v", up, err)
	}
	for _, tt := range []struct {
		name   string
		ctx    context.Context
		req    *dialerv1.UpdateListRequest
		code   codes.Code
		reason string
	}{
		{"another campaign's list", ctx, &dialerv1.UpdateListRequest{CampaignId: other, ListId: id, Name: "x"}, codes.NotFound, "LIST_NOT_FOUND"},
		{"no such list", ctx, &dialerv1.UpdateListRequest{CampaignId: camp, ListId: ids.NewV4(), Name: "x"}, codes.NotFound, "LIST_NOT_FOUND"},
		{"not an id", ctx, &dialerv1.UpdateListRequest{CampaignId: camp, ListId: "nope", Name: "x"}, codes.NotFound, "LIST_NOT_FOUND"},
		{"another account", callerCtx(context.Background(), "acc-b"), &dialerv1.UpdateListRequest{CampaignId: camp, ListId: id, Name: "x"}, codes.NotFound, "CAMPAIGN_NOT_FOUND"},
		{"bad name", ctx, &dialerv1.UpdateListRequest{CampaignId: camp, ListId: id, Name: strings.Repeat("x", 101)}, codes.InvalidArgument, "INVALID_ARGUMENT"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.client.UpdateList(tt.ctx, tt.req)
			wantStatus(t, err, tt.code, tt.reason)
		})
	}
}

// failingStream is an ImportList stream whose client breaks after its
// chunks: what a fake stream can test that a network one cannot make
// happen at a chosen byte.
type failingStream struct {
	grpc.ServerStream
	ctx  context.Context
	msgs []*dialerv1.ImportListRequest
	err  error
}

func (f *failingStream) Context() context.Context { return f.ctx }
func (f *failingStream) Recv() (*dialerv1.ImportListRequest, error) {
	if len(f.msgs) == 0 {
		return nil, f.err
	}
	m := f.msgs[0]
	f.msgs = f.msgs[1:]
	return m, nil
}
func (f *failingStream) SendAndClose(*dialerv1.ImportListResponse) error {
	return errors.New("SendAndClose after a broken stream")
}

func TestImportListStreamError(t *testing.T) {
	t.Parallel()
	e := newListEnv(t)
	camp := e.campaign(t, "acc-a", "", dialerv1.CampaignStatus_CAMPAIGN_STATUS_CREATED, 0)
	broken := status.Error(codes.Unavailable, "connection reset")
	err := e.srv.ImportList(&failingStream{
		ctx: metadata.NewIncomingContext(context.Background(), metadata.Pairs(AccountHeader, "acc-a")),
		msgs: []*dialerv1.ImportListRequest{
			{CampaignId: camp, Chunk: []byte("num\n+14155550100\n+14155550101\n")},
			{Chunk: []byte("+141555")},
		},
		err: broken,
	})
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("err = %v, want the stream's", err)
	}
	list := e.waitList(t, camp, dialerv1.ListStatus_LIST_STATUS_FAILED)
	if recs := e.records(t, list); len(recs) != 0 {
		t.Fatalf("%d records left", len(recs))
	}
	// The stream ending right after the first message is an empty file.
	err = e.srv.ImportList(&failingStream{
		ctx:  metadata.NewIncomingContext(context.Background(), metadata.Pairs(AccountHeader, "acc-a")),
		msgs: []*dialerv1.ImportListRequest{{CampaignId: camp}},
		err:  io.EOF,
	})
	wantStatus(t, err, codes.InvalidArgument, "INVALID_HEADER")
}

// A list an import left IMPORTING (its process died before the commit that
// makes it READY with its rows) is marked FAILED once stale; a recent one,
// which may still be loading, is left alone.
func TestSweepStaleImports(t *testing.T) {
	t.Parallel()
	s := apiServer(t)
	ctx := asAccount("acct-sweep")
	c, err := s.CreateCampaign(ctx, &dialerv1.CreateCampaignRequest{Campaign: &dialerv1.Campaign{Name: "Sweep"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, age := range []string{"2 hours", "1 minute"} {
		if _, err := s.DB.Exec(context.Background(), `INSERT INTO dialer.lists (id, campaign_id, account_id, name, status, created_at)
			VALUES (gen_random_uuid(), $1, 'acct-sweep', $2::text, $3, now() - $2::text::interval)`,
			c.GetCampaign().GetId(), age, int16(dialerv1.ListStatus_LIST_STATUS_IMPORTING)); err != nil {
			t.Fatal(err)
		}
	}
	n, err := SweepStaleImports(context.Background(), s.DB, time.Now().Add(-StaleImport))
	if err != nil || n != 1 {
		t.Fatalf("swept %d (%v), want 1", n, err)
	}
	lists, err := s.ListLists(ctx, &dialerv1.ListListsRequest{CampaignId: c.GetCampaign().GetId()})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]dialerv1.ListStatus{}
	for _, l := range lists.GetLists() {
		got[l.GetName()] = l.GetStatus()
	}
	if got["2 hours"] != dialerv1.ListStatus_LIST_STATUS_FAILED || got["1 minute"] != dialerv1.ListStatus_LIST_STATUS_IMPORTING {
		t.Fatalf("lists after the sweep: %v", got)
	}
}
