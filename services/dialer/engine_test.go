package dialer

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	dialerv1 "github.com/ringback/ringback/proto/gen/go/ringback/dialer/v1"
	eventsv1 "github.com/ringback/ringback/proto/gen/go/ringback/events/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	"github.com/ringback/ringback/services/internal/ids"
	"github.com/ringback/ringback/services/internal/natsbus"
	"github.com/ringback/ringback/services/internal/natsbus/natstest"
	"github.com/ringback/ringback/services/internal/store"
	"github.com/ringback/ringback/services/internal/store/storetest"
)

// engAccount is the account of every campaign in these tests.
const engAccount = "acc-dialer"

// engBase is the tests' wall clock at their start: a Wednesday at 15:00
// UTC, within the default calling hours of Madrid (16:00) and New York
// (10:00).
var engBase = time.Date(2026, 3, 4, 15, 0, 0, 0, time.UTC)

// testClock runs at real speed from engBase and can be moved forward.
type testClock struct {
	start time.Time
	mu    sync.Mutex
	off   time.Duration
}

func newTestClock() *testClock { return &testClock{start: time.Now()} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return engBase.Add(time.Since(c.start) + c.off)
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

func engLogger() *slog.Logger {
	if os.Getenv("DIALER_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// engHarness is a dialer over real PostgreSQL and NATS, with a fake
// origination on a loopback gRPC listener.
type engHarness struct {
	db    *pgxpool.Pool
	bus   *natsbus.Bus
	fake  *fakeOrigination
	calls originationv1.CallServiceClient
	eps   originationv1.EndpointServiceClient
	clock *testClock
}

func newEngHarness(t testing.TB) *engHarness {
	t.Helper()
	ctx := context.Background()
	// The pool of a service (store.Open's default of 10), not pgxpool's
	// default of 4: dials and outcomes share it.
	db, err := store.Open(ctx, storetest.NewDatabase(t), store.Options{AppName: "dialer-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if err := store.Migrate(ctx, db, "dialer", Migrations()); err != nil {
		t.Fatal(err)
	}
	ns := natstest.Start(t)
	bus, err := natsbus.Connect(ctx, ns.URL(), "dialer-test", slog.New(slog.NewTextHandler(io.Discard, nil)), natsbus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	if err := bus.EnsureStream(ctx, natsbus.Calls(0)); err != nil {
		t.Fatal(err)
	}
	fake := newFakeOrigination(bus)
	t.Cleanup(fake.close)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	originationv1.RegisterCallServiceServer(srv, fake)
	originationv1.RegisterEndpointServiceServer(srv, fakeEndpoints{f: fake})
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &engHarness{db: db, bus: bus, fake: fake, calls: originationv1.NewCallServiceClient(conn),
		eps: originationv1.NewEndpointServiceClient(conn), clock: newTestClock()}
}

// runningEngine is an engine with its outcome consumer.
type runningEngine struct {
	*Engine
	stop func()
}

// start runs an engine named instance (and its consumer) until stop or the
// test's end.
func (h *engHarness) start(t testing.TB, instance string, tune func(*EngineConfig)) *runningEngine {
	t.Helper()
	cfg := EngineConfig{Instance: instance, Tick: 20 * time.Millisecond, Lease: 3 * time.Second, Endpoints: h.eps,
		RPCTimeout: time.Second, Now: h.clock.Now}
	if tune != nil {
		tune(&cfg)
	}
	e := NewEngine(cfg, h.db, h.calls, engLogger())
	cons, err := e.ConsumeOutcomes(context.Background(), h.bus)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		e.Run(ctx)
		close(done)
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-done
			sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = cons.Stop(sctx)
			scancel()
		})
	}
	t.Cleanup(stop)
	return &runningEngine{Engine: e, stop: stop}
}

// engCampaign inserts a campaign in status st (run 1) and returns its id.
func (h *engHarness) engCampaign(t testing.TB, c *dialerv1.Campaign, st dialerv1.CampaignStatus) string {
	t.Helper()
	id := ids.NewV4()
	if c.Name == "" {
		c.Name = "campaign " + id
	}
	if c.CallingHours == nil {
		c.CallingHours = chours(cwin(hoursEveryDay, "00:00", "24:00"))
	}
	settings, err := protojson.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.db.Exec(context.Background(), `INSERT INTO dialer.campaigns (id, account_id, name, status, settings, run, started_at)
		VALUES ($1, $2, $3, $4, $5, 1, now())`, id, engAccount, c.Name, int16(st), settings); err != nil {
		t.Fatal(err)
	}
	return id
}

// engRecord is a record to insert.
type engRecord struct {
	numbers     []string
	fields      map[string]string
	scheduleAt  time.Time
	scheduleExt string
}

// engList inserts a READY active list of records and returns their ids.
func (h *engHarness) engList(t testing.TB, campaign string, recs ...engRecord) []int64 {
	t.Helper()
	ctx := context.Background()
	list := ids.NewV4()
	if _, err := h.db.Exec(ctx, `INSERT INTO dialer.lists (id, campaign_id, account_id, name, columns, status, records)
		VALUES ($1, $2, $3, $4, '{TelNumber,Name}', $5, $6)`, list, campaign, engAccount, "list "+list,
		int16(dialerv1.ListStatus_LIST_STATUS_READY), len(recs)); err != nil {
		t.Fatal(err)
	}
	var out []int64
	for i, r := range recs {
		if r.fields == nil {
			r.fields = map[string]string{"Name": fmt.Sprint("n", i)}
		}
		var sched *time.Time
		next := time.Time{}
		if !r.scheduleAt.IsZero() {
			sched, next = &r.scheduleAt, r.scheduleAt
		}
		var id int64
		if err := h.db.QueryRow(ctx, `INSERT INTO dialer.records (campaign_id, list_id, line, raw, numbers, fields, schedule_at, schedule_ext, next_at, run)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, CASE WHEN $7::timestamptz IS NULL THEN '-infinity'::timestamptz ELSE $9::timestamptz END, 1) RETURNING id`,
			campaign, list, i+2, strings.Join(r.numbers, "|"), r.numbers, r.fields, sched, r.scheduleExt, next).Scan(&id); err != nil {
			t.Fatal(err)
		}
		out = append(out, id)
	}
	return out
}

// engNumbers returns n records of one number each, +34 91 (Madrid).
func engNumbers(prefix string, n int) []engRecord {
	out := make([]engRecord, n)
	for i := range out {
		out[i] = engRecord{numbers: []string{fmt.Sprintf("+3491%s%05d", prefix, i)}}
	}
	return out
}

type engRecordRow struct {
	status      string
	final       bool
	tries, run  int
	nextAt      time.Time
	callID      string
	duration    int
	owner       string
	destination string
}

func (h *engHarness) record(t testing.TB, id int64) engRecordRow {
	t.Helper()
	var (
		r    engRecordRow
		next pgtype.Timestamptz // -infinity: due since always
	)
	if err := h.db.QueryRow(context.Background(), `SELECT status, final, tries, run, next_at, call_id, last_duration_s, lease_owner, destination
		FROM dialer.records WHERE id = $1`, id).Scan(&r.status, &r.final, &r.tries, &r.run, &next, &r.callID, &r.duration, &r.owner, &r.destination); err != nil {
		t.Fatal(err)
	}
	if next.InfinityModifier == pgtype.Finite {
		r.nextAt = next.Time
	}
	return r
}

type engAttemptRow struct {
	callID, number, outcome, cause string
	destination                    string
	n, billsec                     int
	ended                          bool
}

func (h *engHarness) attempts(t testing.TB, record int64) []engAttemptRow {
	t.Helper()
	rows, err := h.db.Query(context.Background(), `SELECT call_id, number, outcome, hangup_cause, destination, n, billsec, ended_at IS NOT NULL
		FROM dialer.attempts WHERE record_id = $1 ORDER BY n, started_at`, record)
	if err != nil {
		t.Fatal(err)
	}
	var (
		out []engAttemptRow
		a   engAttemptRow
	)
	if _, err := pgx.ForEachRow(rows, []any{&a.callID, &a.number, &a.outcome, &a.cause, &a.destination, &a.n, &a.billsec, &a.ended}, func() error {
		out = append(out, a)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func (h *engHarness) campaignStatus(t testing.TB, id string) dialerv1.CampaignStatus {
	t.Helper()
	var st int16
	if err := h.db.QueryRow(context.Background(), `SELECT status FROM dialer.campaigns WHERE id = $1`, id).Scan(&st); err != nil {
		t.Fatal(err)
	}
	return dialerv1.CampaignStatus(st)
}

// eventually polls cond until it holds or 20s pass.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// quietly asserts cond keeps holding for d.
func quietly(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !cond() {
			t.Fatalf("%s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (h *engHarness) waitStatus(t testing.TB, campaign string, want dialerv1.CampaignStatus) {
	t.Helper()
	eventually(t, "campaign "+want.String(), func() bool { return h.campaignStatus(t, campaign) == want })
}

func (h *engHarness) waitRecord(t testing.TB, id int64, what string, cond func(engRecordRow) bool) engRecordRow {
	t.Helper()
	var r engRecordRow
	eventually(t, fmt.Sprintf("record %d %s", id, what), func() bool {
		r = h.record(t, id)
		return cond(r)
	})
	return r
}

// --- the fake origination ---

// fakeOrigination is a CallService that places no call: each number
// follows its script (behaviors in order, the last repeating; answer by
// default) and its calls' events are published on the real NATS as
// origination would.
type fakeOrigination struct {
	originationv1.UnimplementedCallServiceServer
	bus        *natsbus.Bus
	ring, talk time.Duration
	done       chan struct{}
	wg         sync.WaitGroup

	mu         sync.Mutex
	script     map[string][]string
	calls      map[string]*fakeCall
	idem       map[string]string
	live       map[string]int // campaign -> calls live
	maxLive    map[string]int
	liveRecord map[string]string // record -> its live call
	violations []string
	dials      []fakeDial // every call created, in order
	endpoints  []*originationv1.Endpoint
	refuseNext []error // CreateCall answers these first, in order
	hangups    []*originationv1.HangupCallRequest
}

type fakeDial struct {
	id, number, record, campaign, try, second string
	req                                       *originationv1.CreateCallRequest
}

type fakeCall struct {
	call    *originationv1.Call
	req     *originationv1.CreateCallRequest
	seq     uint32
	release chan string // a held call's end: "complete", "fail", "silent"
}

func newFakeOrigination(bus *natsbus.Bus) *fakeOrigination {
	return &fakeOrigination{
		bus: bus, ring: 5 * time.Millisecond, talk: 10 * time.Millisecond, done: make(chan struct{}),
		script: map[string][]string{}, calls: map[string]*fakeCall{}, idem: map[string]string{},
		live: map[string]int{}, maxLive: map[string]int{}, liveRecord: map[string]string{},
	}
}

func (f *fakeOrigination) close() {
	close(f.done)
	f.wg.Wait()
}

// setScript makes the number's calls behave in order: answer, hold (answer
// and stay live until released), busy, noanswer, congestion, noroute,
// rejected, cancel, hangup (answered, gone before connected),
// agent-noanswer (the endpoint leg failed), refuse:REASON (a
// FAILED_PRECONDITION), unavailable.
func (f *fakeOrigination) setScript(number string, behaviors ...string) {
	f.mu.Lock()
	f.script[number] = behaviors
	f.mu.Unlock()
}

func (f *fakeOrigination) dialed() []fakeDial {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.dials)
}

func (f *fakeOrigination) dialedNumbers(record int64) []string {
	var out []string
	for _, d := range f.dialed() {
		if d.record == strconv.FormatInt(record, 10) {
			out = append(out, d.number)
		}
	}
	return out
}

func (f *fakeOrigination) liveCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, v := range f.live {
		n += v
	}
	return n
}

func (f *fakeOrigination) maxLiveOf(campaign string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxLive[campaign]
}

func (f *fakeOrigination) problems() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.violations)
}

// release ends a held call: "complete", "fail" (no answer), or "silent"
// (completed without publishing its end, as if the event were lost).
func (f *fakeOrigination) release(callID, how string) {
	f.mu.Lock()
	fc := f.calls[callID]
	f.mu.Unlock()
	if fc != nil && fc.release != nil {
		fc.release <- how
	}
}

func (f *fakeOrigination) heldCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for id, fc := range f.calls {
		if fc.release != nil && !finalCall(fc.call.GetStatus()) {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

func refusal(code codes.Code, reason string) error {
	st, _ := status.New(code, strings.ToLower(reason)).WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: "rating.ringback.dev"})
	return st.Err()
}

func (f *fakeOrigination) CreateCall(ctx context.Context, req *originationv1.CreateCallRequest) (*originationv1.CreateCallResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	account, source := first(md.Get(AccountHeader)), first(md.Get(callSourceHeader))
	f.mu.Lock()
	defer f.mu.Unlock()
	if source != "CALL_SOURCE_DIALER" || account != engAccount {
		f.violations = append(f.violations, fmt.Sprintf("CreateCall with account %q source %q", account, source))
	}
	if len(f.refuseNext) > 0 {
		err := f.refuseNext[0]
		f.refuseNext = f.refuseNext[1:]
		return nil, err
	}
	key := account + "/" + req.GetIdempotencyKey()
	if id, ok := f.idem[key]; ok && req.GetIdempotencyKey() != "" {
		return &originationv1.CreateCallResponse{Call: proto.Clone(f.calls[id].call).(*originationv1.Call)}, nil
	}
	number := req.GetFirst().GetNumber()
	behavior := "answer"
	if s := f.script[number]; len(s) > 0 {
		behavior = s[0]
		if len(s) > 1 {
			f.script[number] = s[1:]
		}
	}
	switch {
	case strings.HasPrefix(behavior, "refuse:"):
		return nil, refusal(codes.FailedPrecondition, strings.TrimPrefix(behavior, "refuse:"))
	case behavior == "unavailable":
		return nil, status.Error(codes.Unavailable, "no FreeSWITCH node")
	}
	vars := req.GetVariables()
	record, campaign := vars[VarRecord], vars[VarCampaign]
	if other, ok := f.liveRecord[record]; ok {
		f.violations = append(f.violations, fmt.Sprintf("record %s dialed while its call %s is live", record, other))
	}
	id := fmt.Sprintf("call-%03d", len(f.dials)+1)
	c := &originationv1.Call{
		Id: id, AccountId: account, Source: originationv1.CallSource_CALL_SOURCE_DIALER, Status: originationv1.CallStatus_CALL_STATUS_DIALING,
		First: &originationv1.Leg{Role: originationv1.LegRole_LEG_ROLE_FIRST, Party: &originationv1.PartyRef{Target: &originationv1.PartyRef_Number{Number: number}},
			Status: originationv1.LegStatus_LEG_STATUS_DIALING},
		Announcement: req.GetAnnouncement(), Variables: vars, CreatedAt: timestamppb.Now(),
	}
	second := ""
	if ep := req.GetSecond().GetEndpointId(); ep != "" {
		second = ep
		c.Second = &originationv1.Leg{Role: originationv1.LegRole_LEG_ROLE_SECOND,
			Party: &originationv1.PartyRef{Target: &originationv1.PartyRef_EndpointId{EndpointId: ep}}, Status: originationv1.LegStatus_LEG_STATUS_PENDING}
	}
	fc := &fakeCall{call: c, req: req}
	if behavior == "hold" {
		fc.release = make(chan string, 1)
	}
	f.calls[id] = fc
	f.idem[key] = id
	f.live[campaign]++
	f.maxLive[campaign] = max(f.maxLive[campaign], f.live[campaign])
	f.liveRecord[record] = id
	f.dials = append(f.dials, fakeDial{id: id, number: number, record: record, campaign: campaign, try: vars[VarTry], second: second, req: req})
	f.wg.Add(1)
	go f.play(fc, behavior)
	return &originationv1.CreateCallResponse{Call: proto.Clone(c).(*originationv1.Call)}, nil
}

// HangupCall records the request; the fake's calls end by their script.
func (f *fakeOrigination) HangupCall(ctx context.Context, req *originationv1.HangupCallRequest) (*originationv1.HangupCallResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hangups = append(f.hangups, req)
	return &originationv1.HangupCallResponse{}, nil
}

func (f *fakeOrigination) hangupRequests() []*originationv1.HangupCallRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.hangups)
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

func (f *fakeOrigination) GetCall(ctx context.Context, req *originationv1.GetCallRequest) (*originationv1.GetCallResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fc, ok := f.calls[req.GetId()]
	if !ok {
		return nil, refusal(codes.NotFound, "CALL_NOT_FOUND")
	}
	return &originationv1.GetCallResponse{Call: proto.Clone(fc.call).(*originationv1.Call)}, nil
}

// play runs a call's life after it was created.
func (f *fakeOrigination) play(fc *fakeCall, behavior string) {
	defer f.wg.Done()
	if !f.sleep(f.ring) {
		return
	}
	fail := func(reason originationv1.FailureReason, cause string) {
		f.end(fc, func(c *originationv1.Call) {
			c.Status, c.FailedLeg, c.FailureReason, c.HangupCause = originationv1.CallStatus_CALL_STATUS_FAILED, originationv1.LegRole_LEG_ROLE_FIRST, reason, cause
			c.First.Status, c.First.HangupCause = originationv1.LegStatus_LEG_STATUS_FAILED, cause
		}, true)
	}
	switch behavior {
	case "busy":
		fail(originationv1.FailureReason_FAILURE_REASON_BUSY, "USER_BUSY")
	case "noanswer":
		fail(originationv1.FailureReason_FAILURE_REASON_NO_ANSWER, "NO_ANSWER")
	case "congestion":
		fail(originationv1.FailureReason_FAILURE_REASON_CONGESTION, "NORMAL_CIRCUIT_CONGESTION")
	case "noroute":
		fail(originationv1.FailureReason_FAILURE_REASON_NO_ROUTE, "NO_ROUTE_DESTINATION")
	case "rejected":
		fail(originationv1.FailureReason_FAILURE_REASON_REJECTED, "CALL_REJECTED")
	case "cancel":
		f.end(fc, func(c *originationv1.Call) {
			c.Status, c.FailureReason, c.HangupCause = originationv1.CallStatus_CALL_STATUS_CANCELED, originationv1.FailureReason_FAILURE_REASON_CANCELED, "ORIGINATOR_CANCEL"
		}, true)
	case "hangup":
		f.answer(fc, false)
		fail(originationv1.FailureReason_FAILURE_REASON_CANCELED, "NORMAL_CLEARING")
	case "agent-noanswer":
		f.answer(fc, false)
		f.end(fc, func(c *originationv1.Call) {
			c.Status, c.FailedLeg, c.FailureReason, c.HangupCause = originationv1.CallStatus_CALL_STATUS_FAILED, originationv1.LegRole_LEG_ROLE_SECOND,
				originationv1.FailureReason_FAILURE_REASON_NO_ANSWER, "NO_ANSWER"
		}, true)
	case "machine":
		// Machine detection on: origination hangs up a machine (after its
		// message, if any) and fails the call.
		f.answer(fc, false)
		f.end(fc, func(c *originationv1.Call) {
			c.Status, c.FailedLeg, c.FailureReason, c.HangupCause = originationv1.CallStatus_CALL_STATUS_FAILED, originationv1.LegRole_LEG_ROLE_FIRST,
				originationv1.FailureReason_FAILURE_REASON_MACHINE, "NORMAL_CLEARING"
			c.MachineResult, c.MachineMessageLeft = "MACHINE", fc.req.GetMachineDetection().GetMessage() != ""
			c.First.Status = originationv1.LegStatus_LEG_STATUS_HUNGUP
		}, true)
	case "press:1", "press:2", "press:9", "press:":
		// A BLAST's menu: the recipient presses the digit (or none), which
		// does what the request's menu says.
		digit := strings.TrimPrefix(behavior, "press:")
		choice := originationv1.MenuAction_MENU_ACTION_UNSPECIFIED
		for _, o := range fc.req.GetMenu().GetOptions() {
			if o.GetDigit() == digit {
				choice = o.GetAction()
			}
		}
		if choice == originationv1.MenuAction_MENU_ACTION_UNSPECIFIED {
			digit = ""
		}
		f.answer(fc, false)
		f.mu.Lock()
		fc.call.Digits, fc.call.MenuChoice = digit, choice
		f.mu.Unlock()
		if choice == originationv1.MenuAction_MENU_ACTION_CONNECT && fc.call.GetSecond() != nil {
			f.answer(fc, true)
		}
		f.complete(fc, true)
	case "hold":
		f.answer(fc, true)
		select {
		case how := <-fc.release:
			switch how {
			case "fail":
				fail(originationv1.FailureReason_FAILURE_REASON_NO_ANSWER, "NO_ANSWER")
			default:
				f.complete(fc, how != "silent")
			}
		case <-f.done:
		}
	default: // answer
		f.answer(fc, true)
		if f.sleep(f.talk) {
			f.complete(fc, true)
		}
	}
}

func (f *fakeOrigination) sleep(d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-f.done:
		return false
	}
}

// answer publishes the recipient's answer and, with an endpoint, the bridge.
func (f *fakeOrigination) answer(fc *fakeCall, bridge bool) {
	f.update(fc, eventsv1.EventType_EVENT_TYPE_LEG_ANSWERED, originationv1.LegRole_LEG_ROLE_FIRST, func(c *originationv1.Call) {
		c.Status, c.AnsweredAt = originationv1.CallStatus_CALL_STATUS_ANSWERED, timestamppb.Now()
		c.First.Status, c.First.AnsweredAt = originationv1.LegStatus_LEG_STATUS_ANSWERED, c.AnsweredAt
	})
	if bridge && fc.call.GetSecond() != nil {
		f.update(fc, eventsv1.EventType_EVENT_TYPE_CALL_BRIDGED, originationv1.LegRole_LEG_ROLE_UNSPECIFIED, func(c *originationv1.Call) {
			c.Status, c.BridgedAt = originationv1.CallStatus_CALL_STATUS_BRIDGED, timestamppb.Now()
			c.Second.Status = originationv1.LegStatus_LEG_STATUS_ANSWERED
		})
	}
}

func (f *fakeOrigination) complete(fc *fakeCall, publish bool) {
	f.end(fc, func(c *originationv1.Call) {
		c.Status, c.Billsec, c.HangupCause = originationv1.CallStatus_CALL_STATUS_COMPLETED, 42, "NORMAL_CLEARING"
		c.First.Status = originationv1.LegStatus_LEG_STATUS_HUNGUP
	}, publish)
}

// end makes the call final: no longer live for the cap, then its event.
func (f *fakeOrigination) end(fc *fakeCall, change func(*originationv1.Call), publish bool) {
	f.mu.Lock()
	c := fc.call
	change(c)
	c.EndedAt = timestamppb.Now()
	campaign, record := c.GetVariables()[VarCampaign], c.GetVariables()[VarRecord]
	f.live[campaign]--
	if f.liveRecord[record] == c.GetId() {
		delete(f.liveRecord, record)
	}
	f.mu.Unlock()
	if !publish {
		return
	}
	typ := map[originationv1.CallStatus]eventsv1.EventType{
		originationv1.CallStatus_CALL_STATUS_COMPLETED: eventsv1.EventType_EVENT_TYPE_CALL_COMPLETED,
		originationv1.CallStatus_CALL_STATUS_FAILED:    eventsv1.EventType_EVENT_TYPE_CALL_FAILED,
		originationv1.CallStatus_CALL_STATUS_CANCELED:  eventsv1.EventType_EVENT_TYPE_CALL_CANCELED,
	}[c.GetStatus()]
	f.update(fc, typ, c.GetFailedLeg(), func(*originationv1.Call) {})
}

// update changes the call and publishes the event.
func (f *fakeOrigination) update(fc *fakeCall, typ eventsv1.EventType, leg originationv1.LegRole, change func(*originationv1.Call)) {
	f.mu.Lock()
	change(fc.call)
	fc.seq++
	ev := &eventsv1.CallEvent{
		EventId: fmt.Sprintf("%s.%d", fc.call.GetId(), fc.seq), Sequence: fc.seq, OccurredAt: timestamppb.Now(),
		AccountId: fc.call.GetAccountId(), CallId: fc.call.GetId(), Type: typ, Call: proto.Clone(fc.call).(*originationv1.Call),
		Leg: leg, Variables: fc.call.GetVariables(),
	}
	f.mu.Unlock()
	data, _ := proto.Marshal(ev)
	subject := fmt.Sprintf("calls.%s.%s.%s", ev.GetAccountId(), ev.GetCallId(), strings.ToLower(strings.TrimPrefix(typ.String(), "EVENT_TYPE_")))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = f.bus.Publish(ctx, subject, ev.GetEventId(), data)
}

// fakeEndpoints is the fake's EndpointService: only ListEndpoints.
type fakeEndpoints struct {
	originationv1.UnimplementedEndpointServiceServer
	f *fakeOrigination
}

func (e fakeEndpoints) ListEndpoints(context.Context, *originationv1.ListEndpointsRequest) (*originationv1.ListEndpointsResponse, error) {
	e.f.mu.Lock()
	defer e.f.mu.Unlock()
	return &originationv1.ListEndpointsResponse{Endpoints: e.f.endpoints}, nil
}

// --- the tests ---

func TestEngineCapNeverExceeded(t *testing.T) {
	t.Parallel()
	h := newEngHarness(t)
	campaign := h.engCampaign(t, &dialerv1.Campaign{MaxConcurrentCalls: 3, OnAnswer: &dialerv1.OnAnswer{EndpointId: "ep-agents"}},
		dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING)
	recs := h.engList(t, campaign, engNumbers("1", 30)...)
	h.start(t, "a", nil)
	h.waitStatus(t, campaign, dialerv1.CampaignStatus_CAMPAIGN_STATUS_FINISHED)

	if got := h.fake.maxLiveOf(campaign); got > 3 || got < 2 {
		t.Errorf("most calls at once %d, want 3 at most (and the cap used)", got)
	}
	if p := h.fake.problems(); len(p) > 0 {
		t.Errorf("origination saw: %v", p)
	}
	if n := len(h.fake.dialed()); n != 30 {
		t.Errorf("%d calls, want 30", n)
	}
	for _, id := range recs {
		r := h.record(t, id)
		if r.status != StatusAnswered || !r.final || r.tries != 1 || r.duration != 42 || r.callID == "" || r.owner != "" {
			t.Fatalf("record %d: %+v, want answered, final, 1 try, 42 s, its call, no lease", id, r)
		}
		as := h.attempts(t, id)
		if len(as) != 1 || as[0].outcome != StatusAnswered || !as[0].ended || as[0].billsec != 42 || as[0].callID != r.callID || as[0].cause != "NORMAL_CLEARING" {
			t.Fatalf("record %d attempts %+v", id, as)
		}
	}
	d := h.fake.dialed()[0]
	if d.second != "ep-agents" || d.req.GetFirst().GetRingTimeoutMs() != 30000 || d.req.GetIdempotencyKey() != fmt.Sprintf("dialer:%s:1:1", d.record) ||
		d.req.GetVariables()["Name"] == "" || d.req.GetVariables()[VarRun] != "1" || d.req.GetVariables()[VarTry] != "1" {
		t.Errorf("CreateCall %v", d.req)
	}
	var finished *time.Time
	if err := h.db.QueryRow(context.Background(), `SELECT finished_at FROM dialer.campaigns WHERE id = $1`, campaign).Scan(&finished); err != nil || finished == nil {
		t.Errorf("finished_at %v (%v)", finished, err)
	}
}

func TestEngineRetriesRotateNumbers(t *testing.T) {
	t.Parallel()
	h := newEngHarness(t)
	campaign := h.engCampaign(t, &dialerv1.Campaign{DialAttempts: 4,
		RetryIntervals: &dialerv1.RetryIntervals{BusyS: 300, NoAnswerS: 900, CongestionS: 60}}, dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING)
	a, b, c := "+34911000001", "+34911000002", "+34911000003"
	h.fake.setScript(a, "busy", "answer")
	h.fake.setScript(b, "noanswer")
	h.fake.setScript(c, "congestion")
	exhausted := "+34911000009"
	h.fake.setScript(exhausted, "busy")
	recs := h.engList(t, campaign, engRecord{numbers: []string{a, b, c}}, engRecord{numbers: []string{exhausted}})
	rec, lone := recs[0], recs[1]
	h.start(t, "a", nil)

	// Each attempt waits for its outcome's interval, then dials the next
	// number.
	steps := []struct {
		status string
		wait   time.Duration
	}{{StatusBusy, 300 * time.Second}, {StatusNoAnswer, 900 * time.Second}, {StatusFailed, 60 * time.Second}}
	for i, s := range steps {
		r := h.waitRecord(t, rec, "after try "+strconv.Itoa(i+1), func(r engRecordRow) bool { return r.tries == i+1 && r.status == s.status })
		if now := h.clock.Now(); r.final || r.nextAt.Before(now.Add(s.wait-5*time.Second)) || r.nextAt.After(now.Add(s.wait)) {
			t.Fatalf("try %d: %+v, want not final, next in %v", i+1, r, s.wait)
		}
		quietly(t, 150*time.Millisecond, "dialed before its retry interval", func() bool { return len(h.fake.dialedNumbers(rec)) == i+1 })
		h.clock.Advance(s.wait)
	}
	r := h.waitRecord(t, rec, "answered", func(r engRecordRow) bool { return r.final })
	if r.status != StatusAnswered || r.tries != 4 {
		t.Fatalf("record %+v, want answered on try 4", r)
	}
	if got, want := h.fake.dialedNumbers(rec), []string{a, b, c, a}; !slices.Equal(got, want) {
		t.Errorf("numbers dialed %v, want %v", got, want)
	}
	var outcomes []string
	for i, at := range h.attempts(t, rec) {
		if at.n != i+1 {
			t.Errorf("attempt %d numbered %d", i+1, at.n)
		}
		outcomes = append(outcomes, at.number+" "+at.outcome)
	}
	if want := []string{a + " busy", b + " noanswer", c + " failed", a + " answered"}; !slices.Equal(outcomes, want) {
		t.Errorf("attempts %v, want %v", outcomes, want)
	}
	// Out of attempts: final with the last outcome.
	for range 4 {
		r := h.waitRecord(t, lone, "settled", func(r engRecordRow) bool { return !Live(r.status) })
		if r.final {
			break
		}
		h.clock.Advance(301 * time.Second)
		h.waitRecord(t, lone, "tried again", func(r2 engRecordRow) bool { return r2.tries > r.tries })
	}
	l := h.record(t, lone)
	if l.status != StatusBusy || l.tries != 4 || len(h.fake.dialedNumbers(lone)) != 4 {
		t.Errorf("record %+v, %d calls; want busy after 4", l, len(h.fake.dialedNumbers(lone)))
	}
	h.waitStatus(t, campaign, dialerv1.CampaignStatus_CAMPAIGN_STATUS_FINISHED)
}

func TestEngineOutcomesFinalOrRetried(t *testing.T) {
	t.Parallel()
	h := newEngHarness(t)
	campaign := h.engCampaign(t, &dialerv1.Campaign{DialAttempts: 3, OnAnswer: &dialerv1.OnAnswer{EndpointId: "ep-1"},
		RetryIntervals: &dialerv1.RetryIntervals{FailedS: 1000}}, dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING)
	tests := []struct {
		behavior, status string
		final            bool
	}{
		{"noroute", StatusFailed, true},
		{"rejected", StatusFailed, true},
		{"hangup", StatusAnswered, true},
		{"agent-noanswer", StatusFailed, false},
		{"cancel", StatusCancel, false},
		{"refuse:DESTINATION_NOT_SUPPORTED", StatusFailed, true},
		{"refuse:BLOCKED_DESTINATION", StatusFailed, true},
	}
	var recs []engRecord
	for i, tc := range tests {
		n := fmt.Sprintf("+3491200%04d", i)
		// The cancelled one answers when dialed again at once.
		h.fake.setScript(n, tc.behavior, "hold")
		recs = append(recs, engRecord{numbers: []string{n}})
	}
	ids := h.engList(t, campaign, recs...)
	h.start(t, "a", nil)
	for i, tc := range tests {
		t.Run(tc.behavior, func(t *testing.T) {
			r := h.waitRecord(t, ids[i], "after its first try", func(r engRecordRow) bool { return !Live(r.status) && r.tries >= 1 || r.tries >= 2 })
			if tc.behavior == "cancel" {
				// Not final, due at once: dialed again (and held).
				r = h.waitRecord(t, ids[i], "dialed again", func(r engRecordRow) bool { return r.tries == 2 })
				as := h.attempts(t, ids[i])
				if as[0].outcome != StatusCancel {
					t.Errorf("attempts %+v", as)
				}
				return
			}
			if r.status != tc.status || r.final != tc.final || r.tries != 1 {
				t.Errorf("record %+v, want %s final=%v after 1 try", r, tc.status, tc.final)
			}
			as := h.attempts(t, ids[i])
			if len(as) != 1 || as[0].outcome != tc.status || !as[0].ended {
				t.Errorf("attempts %+v", as)
			}
			if reason, ok := strings.CutPrefix(tc.behavior, "refuse:"); ok && (as[0].cause != reason || as[0].callID != fmt.Sprintf("dialer:%d:1:1", ids[i])) {
				t.Errorf("refused attempt %+v, want its key and reason", as[0])
			}
		})
	}
	if h.campaignStatus(t, campaign) != dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING {
		t.Errorf("campaign %v, want running", h.campaignStatus(t, campaign))
	}
}

func TestEngineRefusedNumberTriesTheNext(t *testing.T) {
	t.Parallel()
	h := newEngHarness(t)
	campaign := h.engCampaign(t, &dialerv1.Campaign{DialAttempts: 3}, dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING)
	bad, good := "+882000000001", "+34913000001"
	h.fake.setScript(bad, "refuse:DESTINATION_NOT_SUPPORTED")
	id := h.engList(t, campaign, engRecord{numbers: []string{bad, good}})[0]
	h.start(t, "a", nil)
	r := h.waitRecord(t, id, "answered", func(r engRecordRow) bool { return r.final })
	if r.status != StatusAnswered || r.tries != 2 {
		t.Errorf("record %+v, want answered on the second number", r)
	}
	if got := h.fake.dialedNumbers(id); !slices.Equal(got, []string{good}) {
		t.Errorf("calls to %v", got)
	}
}

func TestEngineInsufficientBalancePauses(t *testing.T) {
	t.Parallel()
	h := newEngHarness(t)
	campaign := h.engCampaign(t, &dialerv1.Campaign{MaxConcurrentCalls: 1}, dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING)
	h.fake.mu.Lock()
	h.fake.refuseNext = []error{refusal(codes.FailedPrecondition, "INSUFFICIENT_BALANCE")}
	h.fake.mu.Unlock()
	ids := h.engList(t, campaign, engNumbers("4", 3)...)
	e := h.start(t, "a", nil)
	h.waitStatus(t, campaign, dialerv1.CampaignStatus_CAMPAIGN_STATUS_PAUSED)
	for _, id := range ids {
		h.waitRecord(t, id, "ready and untried", func(r engRecordRow) bool { return r.status == StatusReady && r.tries == 0 && !r.final })
	}
	quietly(t, 200*time.Millisecond, "a paused campaign dialed", func() bool { return len(h.fake.dialed()) == 0 })
	// Topped up and resumed: it goes on where it stopped.
	if _, err := h.db.Exec(context.Background(), `UPDATE dialer.campaigns SET status = 2 WHERE id = $1`, campaign); err != nil {
		t.Fatal(err)
	}
	e.Wake()
	h.waitStatus(t, campaign, dialerv1.CampaignStatus_CAMPAIGN_STATUS_FINISHED)
	if n := len(h.fake.dialed()); n != 3 {
		t.Errorf("%d calls, want 3", n)
	}
}

func TestEngineUnavailableBacksOff(t *testing.T) {
	t.Parallel()
	h := newEngHarness(t)
	campaign := h.engCampaign(t, &dialerv1.Campaign{}, dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING)
	h.fake.mu.Lock()
	h.fake.refuseNext = []error{status.Error(codes.Unavailable, "down"), status.Error(codes.DeadlineExceeded, "slow")}
	h.fake.mu.Unlock()
	id := h.engList(t, campaign, engNumbers("5", 1)...)[0]
	start := time.Now()
	h.start(t, "a", nil)
	r := h.waitRecord(t, id, "answered", func(r engRecordRow) bool { return r.final })
	if r.status != StatusAnswered || r.tries != 1 {
		t.Errorf("record %+v, want answered on its first try (the refused ones given back)", r)
	}
	// Backs off 0.5s, then 1s.
	if d := time.Since(start); d < 1400*time.Millisecond {
		t.Errorf("answered after %v: no back-off", d)
	}
	if as := h.attempts(t, id); len(as) != 1 {
		t.Errorf("attempts %+v, want 1", as)
	}
}

func TestEngineDoNotCallAddedMidCampaign(t *testing.T) {
	t.Parallel()
	h := newEngHarness(t)
	campaign := h.engCampaign(t, &dialerv1.Campaign{DialAttempts: 3, RetryIntervals: &dialerv1.RetryIntervals{BusyS: 60}},
		dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING)
	lone, c, d := "+34914000001", "+34914000002", "+34914000003"
	for _, n := range []string{lone, c, d} {
		h.fake.setScript(n, "busy")
	}
	ids := h.engList(t, campaign, engRecord{numbers: []string{lone}}, engRecord{numbers: []string{c, d}})
	h.start(t, "a", nil)
	for _, id := range ids {
		h.waitRecord(t, id, "busy once", func(r engRecordRow) bool { return r.status == StatusBusy && r.tries == 1 })
	}
	// The account's list blocks lone; the campaign's blocks d.
	if _, err := h.db.Exec(context.Background(), `INSERT INTO dialer.dnc (account_id, scope, number) VALUES ($1, '', $2), ($1, $3, $4)`,
		engAccount, lone, campaign, d); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(61 * time.Second)
	r := h.waitRecord(t, ids[0], "dnc", func(r engRecordRow) bool { return r.final })
	if r.status != StatusDNC || r.tries != 1 {
		t.Errorf("record %+v, want dnc after its one try", r)
	}
	h.waitRecord(t, ids[1], "tried again", func(r engRecordRow) bool { return r.tries == 2 && !Live(r.status) })
	if got := h.fake.dialedNumbers(ids[1]); !slices.Equal(got, []string{c, c}) {
		t.Errorf("dialed %v, want %s twice (its other number is blocked)", got, c)
	}
	if got := h.fake.dialedNumbers(ids[0]); len(got) != 1 {
		t.Errorf("dialed %v after its number was blocked", got)
	}
}

func TestEngineCallingHoursDefer(t *testing.T) {
	t.Parallel()
	h := newEngHarness(t)
	// 15:30-17:00 local: open in Madrid (16:00), not yet in New York
	// (10:00 EST, opening at 20:30 UTC).
	campaign := h.engCampaign(t, &dialerv1.Campaign{CallingHours: chours(cwin(hoursEveryDay, "15:30", "17:00"))},
		dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING)
	ids := h.engList(t, campaign, engRecord{numbers: []string{"+34915000001"}}, engRecord{numbers: []string{"+12125550123"}})
	madrid, newYork := ids[0], ids[1]
	h.start(t, "a", nil)
	h.waitRecord(t, madrid, "answered", func(r engRecordRow) bool { return r.status == StatusAnswered })
	r := h.waitRecord(t, newYork, "deferred", func(r engRecordRow) bool { return r.nextAt.After(engBase) })
	if want := time.Date(2026, 3, 4, 20, 30, 0, 0, time.UTC); r.status != StatusReady || r.tries != 0 || !r.nextAt.Equal(want) {
		t.Errorf("record %+v, want ready, untried, due %v", r, want)
	}
	if len(h.fake.dialedNumbers(newYork)) != 0 || len(h.attempts(t, newYork)) != 0 {
		t.Error("New York dialed outside its calling hours")
	}
	h.clock.Advance(5*time.Hour + 31*time.Minute)
	r = h.waitRecord(t, newYork, "answered", func(r engRecordRow) bool { return r.final })
	if r.status != StatusAnswered || r.tries != 1 {
		t.Errorf("record %+v", r)
	}
}

func TestEngineScheduleAndExtension(t *testing.T) {
	t.Parallel()
	h := newEngHarness(t)
	h.fake.endpoints = []*originationv1.Endpoint{{Id: "ep-1101", Name: "Desk 1", Address: "1101"}, {Id: "ep-desk2", Name: "desk2", Address: "sip:1102@pbx"}}
	campaign := h.engCampaign(t, &dialerv1.Campaign{OnAnswer: &dialerv1.OnAnswer{Announcement: "ivr/welcome.wav"}},
		dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING)
	later := engBase.Add(2 * time.Hour)
	ids := h.engList(t, campaign,
		engRecord{numbers: []string{"+34916000001"}, scheduleAt: later, scheduleExt: "1101"},
		engRecord{numbers: []string{"+34916000002"}, scheduleExt: "desk2"},
		engRecord{numbers: []string{"+34916000003"}, scheduleExt: "9999"},
		engRecord{numbers: []string{"+34916000004"}})
	h.start(t, "a", nil)
	for _, id := range ids[1:] {
		h.waitRecord(t, id, "answered", func(r engRecordRow) bool { return r.final })
	}
	if n := len(h.fake.dialedNumbers(ids[0])); n != 0 {
		t.Fatal("a scheduled record dialed before its time")
	}
	h.clock.Advance(2 * time.Hour)
	h.waitRecord(t, ids[0], "answered", func(r engRecordRow) bool { return r.final })
	seconds := map[string]string{}
	for _, d := range h.fake.dialed() {
		seconds[d.number] = d.second
		if d.req.GetAnnouncement() != "ivr/welcome.wav" {
			t.Errorf("announcement %q", d.req.GetAnnouncement())
		}
	}
	want := map[string]string{"+34916000001": "ep-1101", "+34916000002": "ep-desk2", "+34916000003": "", "+34916000004": ""}
	for n, w := range want {
		if seconds[n] != w {
			t.Errorf("%s answered to %q, want %q (none: announcement only)", n, seconds[n], w)
		}
	}
}

func TestEngineAnnouncementOnlyTalking(t *testing.T) {
	t.Parallel()
	h := newEngHarness(t)
	campaign := h.engCampaign(t, &dialerv1.Campaign{OnAnswer: &dialerv1.OnAnswer{Announcement: "tone_stream://%(200,0,500)"}},
		dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING)
	n := "+34917000001"
	h.fake.setScript(n, "hold")
	id := h.engList(t, campaign, engRecord{numbers: []string{n}})[0]
	h.start(t, "a", nil)
	r := h.waitRecord(t, id, "talking", func(r engRecordRow) bool { return r.status == StatusTalking })
	if d := h.fake.dialed(); len(d) != 1 || d[0].req.GetSecond() != nil {
		t.Fatalf("CreateCall %v, want no second party", d)
	}
	h.fake.release(r.callID, "complete")
	r = h.waitRecord(t, id, "answered", func(r engRecordRow) bool { return r.final })
	if r.status != StatusAnswered || r.duration != 42 {
		t.Errorf("record %+v", r)
	}
	h.waitStatus(t, campaign, dialerv1.CampaignStatus_CAMPAIGN_STATUS_FINISHED)
}

func TestEngineTwoInstancesShareTheCap(t *testing.T) {
	t.Parallel()
	h := newEngHarness(t)
	h.fake.talk = 30 * time.Millisecond
	campaign := h.engCampaign(t, &dialerv1.Campaign{MaxConcurrentCalls: 4}, dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING)
	ids := h.engList(t, campaign, engNumbers("8", 60)...)
	h.start(t, "a", nil)
	h.start(t, "b", nil)
	h.waitStatus(t, campaign, dialerv1.CampaignStatus_CAMPAIGN_STATUS_FINISHED)
	if got := h.fake.maxLiveOf(campaign); got > 4 {
		t.Errorf("%d calls at once, cap 4", got)
	}
	if p := h.fake.problems(); len(p) > 0 {
		t.Errorf("origination saw: %v", p)
	}
	perRecord := map[string]int{}
	for _, d := range h.fake.dialed() {
		perRecord[d.record]++
	}
	for _, id := range ids {
		if n := perRecord[strconv.FormatInt(id, 10)]; n != 1 {
			t.Errorf("record %d dialed %d times", id, n)
		}
		if r := h.record(t, id); r.status != StatusAnswered {
			t.Errorf("record %d %+v", id, r)
		}
	}
	var n int
	if err := h.db.QueryRow(context.Background(), `SELECT count(*) FROM dialer.attempts WHERE campaign_id = $1`, campaign).Scan(&n); err != nil || n != 60 {
		t.Errorf("%d attempts (%v), want 60", n, err)
	}
}

func TestEngineAdoptsAfterLeaseExpiry(t *testing.T) {
	t.Parallel()
	h := newEngHarness(t)
	campaign := h.engCampaign(t, &dialerv1.Campaign{MaxConcurrentCalls: 5, OnAnswer: &dialerv1.OnAnswer{EndpointId: "ep-1"}},
		dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING)
	recs := engNumbers("9", 3)
	for _, r := range recs {
		h.fake.setScript(r.numbers[0], "hold")
	}
	ids := h.engList(t, campaign, recs...)
	lease := func(c *EngineConfig) { c.Lease = 600 * time.Millisecond }
	a := h.start(t, "a", lease)
	for _, id := range ids {
		h.waitRecord(t, id, "talking", func(r engRecordRow) bool { return r.status == StatusTalking })
	}
	// A record whose replica died between its claim and its call: nothing
	// is known of a call.
	orphan := h.engList(t, campaign, engRecord{numbers: []string{"+34919900001"}})[0]
	if _, err := h.db.Exec(context.Background(), `UPDATE dialer.records SET status = 'running', tries = 1, lease_owner = 'ghost', lease_until = $2
		WHERE id = $1`, orphan, engBase.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	a.stop()
	held := h.fake.heldCalls()
	if len(held) != 3 {
		t.Fatalf("held calls %v", held)
	}
	// One call ends while no replica holds it, and its event is lost.
	h.fake.release(held[0], "silent")
	var lost int64
	for _, d := range h.fake.dialed() {
		if d.id == held[0] {
			lost, _ = strconv.ParseInt(d.record, 10, 64)
		}
	}

	h.start(t, "b", lease)
	for _, id := range ids {
		h.waitRecord(t, id, "adopted or ended", func(r engRecordRow) bool { return r.owner == "b" || r.final })
	}
	if r := h.waitRecord(t, lost, "its lost outcome applied", func(r engRecordRow) bool { return r.final }); r.status != StatusAnswered {
		t.Errorf("record %+v", r)
	}
	o := h.waitRecord(t, orphan, "dialed by b", func(r engRecordRow) bool { return r.final })
	if o.tries != 1 || o.status != StatusAnswered {
		t.Errorf("orphan %+v, want answered on try 1", o)
	}
	for _, id := range ids {
		if id == lost {
			continue
		}
		h.waitRecord(t, id, "talking, held by b", func(r engRecordRow) bool { return r.status == StatusTalking && r.owner == "b" })
	}
	for _, c := range held[1:] {
		h.fake.release(c, "complete")
	}
	h.waitStatus(t, campaign, dialerv1.CampaignStatus_CAMPAIGN_STATUS_FINISHED)
	if n := len(h.fake.dialed()); n != 4 {
		t.Errorf("%d calls, want 4 (adopted calls are not dialed again)", n)
	}
	if p := h.fake.problems(); len(p) > 0 {
		t.Errorf("origination saw: %v", p)
	}
}

func TestEnginePausedDialsNothing(t *testing.T) {
	t.Parallel()
	h := newEngHarness(t)
	campaign := h.engCampaign(t, &dialerv1.Campaign{MaxConcurrentCalls: 2}, dialerv1.CampaignStatus_CAMPAIGN_STATUS_PAUSED)
	ids := h.engList(t, campaign, engNumbers("6", 4)...)
	for _, id := range ids {
		h.fake.setScript(h.dialNumber(t, id), "hold")
	}
	e := h.start(t, "a", nil)
	quietly(t, 300*time.Millisecond, "a paused campaign dialed", func() bool { return len(h.fake.dialed()) == 0 })

	if _, err := h.db.Exec(context.Background(), `UPDATE dialer.campaigns SET status = 2 WHERE id = $1`, campaign); err != nil {
		t.Fatal(err)
	}
	e.Wake()
	eventually(t, "two calls", func() bool { return len(h.fake.heldCalls()) == 2 })
	// Paused again: the live calls go on, nothing new is dialed.
	if _, err := h.db.Exec(context.Background(), `UPDATE dialer.campaigns SET status = 3 WHERE id = $1`, campaign); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	for _, c := range h.fake.heldCalls() {
		h.fake.release(c, "complete")
	}
	eventually(t, "the live calls' outcomes", func() bool {
		var n int
		_ = h.db.QueryRow(context.Background(), `SELECT count(*) FROM dialer.records WHERE campaign_id = $1 AND status = 'answered'`, campaign).Scan(&n)
		return n == 2
	})
	quietly(t, 300*time.Millisecond, "a paused campaign dialed", func() bool { return len(h.fake.dialed()) == 2 })
	if st := h.campaignStatus(t, campaign); st != dialerv1.CampaignStatus_CAMPAIGN_STATUS_PAUSED {
		t.Errorf("campaign %v, want still paused", st)
	}
}

func (h *engHarness) dialNumber(t testing.TB, id int64) string {
	t.Helper()
	var ns []string
	if err := h.db.QueryRow(context.Background(), `SELECT numbers FROM dialer.records WHERE id = $1`, id).Scan(&ns); err != nil {
		t.Fatal(err)
	}
	return ns[0]
}

func TestEngineEndTimeExpires(t *testing.T) {
	t.Parallel()
	h := newEngHarness(t)
	end := engBase.Add(time.Hour)
	campaign := h.engCampaign(t, &dialerv1.Campaign{DialAttempts: 3, RetryIntervals: &dialerv1.RetryIntervals{BusyS: 3600},
		EndTime: timestamppb.New(end), StartTime: timestamppb.New(engBase.Add(-time.Hour))}, dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING)
	live, busy := "+34918000001", "+34918000002"
	h.fake.setScript(live, "hold")
	h.fake.setScript(busy, "busy")
	ids := h.engList(t, campaign, engRecord{numbers: []string{live}}, engRecord{numbers: []string{busy}})
	h.start(t, "a", nil)
	h.waitRecord(t, ids[0], "talking", func(r engRecordRow) bool { return r.status == StatusTalking })
	h.waitRecord(t, ids[1], "busy", func(r engRecordRow) bool { return r.status == StatusBusy })
	h.clock.Advance(time.Hour)
	r := h.waitRecord(t, ids[1], "expired", func(r engRecordRow) bool { return r.final })
	if r.status != StatusExpired || r.tries != 1 {
		t.Errorf("record %+v, want expired after 1 try", r)
	}
	// The live call goes on; the campaign finishes when it ends.
	quietly(t, 200*time.Millisecond, "finished with a live call", func() bool {
		return h.campaignStatus(t, campaign) == dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING
	})
	h.fake.release(h.fake.heldCalls()[0], "complete")
	h.waitStatus(t, campaign, dialerv1.CampaignStatus_CAMPAIGN_STATUS_FINISHED)
	if r := h.record(t, ids[0]); r.status != StatusAnswered {
		t.Errorf("live record %+v, want answered", r)
	}
	if n := len(h.fake.dialed()); n != 2 {
		t.Errorf("%d calls, want 2", n)
	}
}

func TestEngineStartTimeWaits(t *testing.T) {
	t.Parallel()
	h := newEngHarness(t)
	campaign := h.engCampaign(t, &dialerv1.Campaign{StartTime: timestamppb.New(engBase.Add(time.Hour))}, dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING)
	id := h.engList(t, campaign, engNumbers("7", 1)...)[0]
	h.start(t, "a", nil)
	quietly(t, 200*time.Millisecond, "dialed before the start time", func() bool { return len(h.fake.dialed()) == 0 })
	h.clock.Advance(time.Hour)
	h.waitRecord(t, id, "answered", func(r engRecordRow) bool { return r.final })
}

func TestEngineCallVariables(t *testing.T) {
	t.Parallel()
	fields := map[string]any{"Name": "Henry Case", "Code": "0023", VarRecord: "spoof", "": "x", "Long": strings.Repeat("é", 600), "N": 7}
	for i := range 80 {
		fields[fmt.Sprintf("f%02d", i)] = "v"
	}
	vars := callVariables(fields, "c-1", 12, 3, 2)
	if vars[VarRecord] != "12" || vars[VarRun] != "3" || vars[VarTry] != "2" || vars[VarCampaign] != "c-1" {
		t.Errorf("engine variables %v", vars)
	}
	if len(vars) != 64 || vars["Code"] != "0023" || vars["Name"] != "Henry Case" {
		t.Errorf("%d variables: %v", len(vars), vars)
	}
	if _, ok := vars[""]; ok {
		t.Error("empty variable name kept")
	}
	if v := vars["Long"]; len(v) > 1024 || !strings.HasPrefix(strings.Repeat("é", 600), v) {
		t.Errorf("long value %d bytes", len(v))
	}
	if vars["N"] != "7" {
		t.Errorf("number field %q", vars["N"])
	}
}

func TestEngineRotate(t *testing.T) {
	t.Parallel()
	ns := []string{"a", "b", "c"}
	tests := []struct {
		try     int
		blocked map[string]bool
		want    string
	}{
		{1, nil, "a"}, {2, nil, "b"}, {3, nil, "c"}, {4, nil, "a"},
		{1, map[string]bool{"a": true}, "b"}, {3, map[string]bool{"c": true}, "a"},
		{2, map[string]bool{"a": true, "b": true, "c": true}, ""},
	}
	for _, tc := range tests {
		got, ok := rotate(ns, tc.try, tc.blocked)
		if got != tc.want || ok != (tc.want != "") {
			t.Errorf("rotate(try %d, %v) = %q, %v; want %q", tc.try, tc.blocked, got, ok, tc.want)
		}
	}
}

func TestEngineReconcilesLostOutcome(t *testing.T) {
	t.Parallel()
	h := newEngHarness(t)
	campaign := h.engCampaign(t, &dialerv1.Campaign{}, dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING)
	n := "+34919100001"
	h.fake.setScript(n, "hold")
	id := h.engList(t, campaign, engRecord{numbers: []string{n}})[0]
	h.start(t, "a", func(c *EngineConfig) { c.Lease, c.Reconcile = 600*time.Millisecond, 300*time.Millisecond })
	r := h.waitRecord(t, id, "talking", func(r engRecordRow) bool { return r.status == StatusTalking })
	// The call ends and its event is lost: origination, asked, tells.
	h.fake.release(r.callID, "silent")
	r = h.waitRecord(t, id, "answered", func(r engRecordRow) bool { return r.final })
	if r.status != StatusAnswered || r.duration != 42 {
		t.Errorf("record %+v", r)
	}
	h.waitStatus(t, campaign, dialerv1.CampaignStatus_CAMPAIGN_STATUS_FINISHED)
}

func TestEngineEndpointBusyWaits(t *testing.T) {
	t.Parallel()
	h := newEngHarness(t)
	h.fake.mu.Lock()
	h.fake.refuseNext = []error{refusal(codes.FailedPrecondition, "ENDPOINT_BUSY")}
	h.fake.mu.Unlock()
	campaign := h.engCampaign(t, &dialerv1.Campaign{OnAnswer: &dialerv1.OnAnswer{EndpointId: "ep-agent"}}, dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING)
	id := h.engList(t, campaign, engNumbers("2", 1)...)[0]
	start := time.Now()
	h.start(t, "a", nil)
	r := h.waitRecord(t, id, "answered", func(r engRecordRow) bool { return r.final })
	if r.status != StatusAnswered || r.tries != 1 || len(h.attempts(t, id)) != 1 {
		t.Errorf("record %+v, %d attempts: the busy endpoint's refusal must not count", r, len(h.attempts(t, id)))
	}
	if d := time.Since(start); d < endpointBusyHoldOff {
		t.Errorf("dialed again after %v, before the hold-off", d)
	}
}

// The engine's metrics count what it did: calls placed, records settled
// without a call, and the outcomes.
func TestEngineMetrics(t *testing.T) {
	t.Parallel()
	h := newEngHarness(t)
	campaign := h.engCampaign(t, &dialerv1.Campaign{DialAttempts: 1}, dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING)
	answered, busy, optedOut := "+34911500001", "+34911500002", "+34911500003"
	h.fake.setScript(answered, "answer")
	h.fake.setScript(busy, "busy")
	if _, err := h.db.Exec(context.Background(), `INSERT INTO dialer.dnc (account_id, scope, number) VALUES ($1, '', $2)`, engAccount, optedOut); err != nil {
		t.Fatal(err)
	}
	ids := h.engList(t, campaign, engRecord{numbers: []string{answered}}, engRecord{numbers: []string{busy}}, engRecord{numbers: []string{optedOut}})
	reg := prometheus.NewRegistry()
	e := h.start(t, "m", func(c *EngineConfig) { c.Registerer = reg })
	for _, id := range ids {
		h.waitRecord(t, id, "final", func(r engRecordRow) bool { return r.final })
	}
	for _, c := range []struct {
		got  prometheus.Collector
		want float64
	}{
		{e.m.dials.WithLabelValues("placed"), 2}, {e.m.dials.WithLabelValues(StatusDNC), 1},
		{e.m.outcomes.WithLabelValues(StatusAnswered), 1}, {e.m.outcomes.WithLabelValues(StatusBusy), 1},
	} {
		if got := testutil.ToFloat64(c.got); got != c.want {
			t.Errorf("%v = %v, want %v", c.got, got, c.want)
		}
	}
	if n, err := testutil.GatherAndCount(reg, "ringback_dialer_dials_total", "ringback_dialer_outcomes_total"); err != nil || n != 4 {
		t.Fatalf("exported series %d (%v), want 4", n, err)
	}
}

// A BLAST: the announcement is a menu whose options the request carries;
// the digit pressed is the record's tag, 9 puts the number on the
// account's do-not-call list (so another campaign never dials it), 1
// connects to the endpoint.
func TestEngineBlastOptions(t *testing.T) {
	t.Parallel()
	h := newEngHarness(t)
	onAnswer := &dialerv1.OnAnswer{Announcement: "/audio/offer.wav", EndpointId: "ep-agents", OptionTries: 2, OptionTimeoutMs: 4000,
		Options: []*dialerv1.BlastOption{
			{Digit: "1", Action: dialerv1.BlastAction_BLAST_ACTION_CONNECT},
			{Digit: "9", Action: dialerv1.BlastAction_BLAST_ACTION_OPT_OUT},
			{Digit: "2", Action: dialerv1.BlastAction_BLAST_ACTION_END},
		}}
	campaign := h.engCampaign(t, &dialerv1.Campaign{OnAnswer: onAnswer}, dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING)
	agent, optOut, end, silent := "+34918000001", "+34918000009", "+34918000002", "+34918000000"
	h.fake.setScript(agent, "press:1")
	h.fake.setScript(optOut, "press:9")
	h.fake.setScript(end, "press:2")
	h.fake.setScript(silent, "press:")
	ids := h.engList(t, campaign, engRecord{numbers: []string{agent}}, engRecord{numbers: []string{optOut}},
		engRecord{numbers: []string{end}}, engRecord{numbers: []string{silent}})
	h.start(t, "a", nil)
	h.waitStatus(t, campaign, dialerv1.CampaignStatus_CAMPAIGN_STATUS_FINISHED)
	for i, want := range [][]string{{"1"}, {"9"}, {"2"}, {}} {
		r := h.record(t, ids[i])
		var tags []string
		if err := h.db.QueryRow(context.Background(), `SELECT tags FROM dialer.records WHERE id = $1`, ids[i]).Scan(&tags); err != nil {
			t.Fatal(err)
		}
		if r.status != StatusAnswered || !r.final || !slices.Equal(tags, want) {
			t.Errorf("record %d: %+v tags %v, want answered with tags %v", i, r, tags, want)
		}
	}
	d := h.fake.dialed()
	if len(d) != 4 {
		t.Fatalf("%d calls, want 4", len(d))
	}
	req := d[0].req
	m := req.GetMenu()
	if req.GetAnnouncement() != "/audio/offer.wav" || req.GetSecond().GetEndpointId() != "ep-agents" || m.GetTries() != 2 || m.GetTimeoutMs() != 4000 ||
		len(m.GetOptions()) != 3 || m.GetOptions()[0].GetAction() != originationv1.MenuAction_MENU_ACTION_CONNECT ||
		m.GetOptions()[1].GetAction() != originationv1.MenuAction_MENU_ACTION_OPT_OUT || m.GetOptions()[2].GetAction() != originationv1.MenuAction_MENU_ACTION_END {
		t.Errorf("CreateCall %v", req)
	}
	// The opt-out is on the account's list, and only it.
	var blocked []string
	rows, err := h.db.Query(context.Background(), `SELECT number FROM dialer.dnc WHERE account_id = $1 AND scope = '' ORDER BY number`, engAccount)
	if err != nil {
		t.Fatal(err)
	}
	if blocked, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil || !slices.Equal(blocked, []string{optOut}) {
		t.Fatalf("account's do-not-call list %v (%v), want [%s]", blocked, err, optOut)
	}
	// Another campaign of the account never dials it.
	// Created, then running once its list is in: the engine is running,
	// and a running campaign with nothing to dial is finished.
	other := h.engCampaign(t, &dialerv1.Campaign{}, dialerv1.CampaignStatus_CAMPAIGN_STATUS_CREATED)
	again := h.engList(t, other, engRecord{numbers: []string{optOut}})[0]
	if _, err := h.db.Exec(context.Background(), `UPDATE dialer.campaigns SET status = $2 WHERE id = $1`, other,
		int16(dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING)); err != nil {
		t.Fatal(err)
	}
	r := h.waitRecord(t, again, "final", func(r engRecordRow) bool { return r.final })
	if r.status != StatusDNC || len(h.fake.dialedNumbers(again)) != 0 {
		t.Errorf("opted-out number in another campaign: %+v, dialed %v", r, h.fake.dialedNumbers(again))
	}
	// Without a CONNECT option, the endpoint is never called.
	plain := proto.Clone(onAnswer).(*dialerv1.OnAnswer)
	plain.Options = plain.Options[1:]
	if req := callRequest(SettingsOf(&dialerv1.Campaign{OnAnswer: plain}), "+34918000003", "ep-agents", false); req.GetSecond() != nil || len(req.GetMenu().GetOptions()) != 2 {
		t.Errorf("CreateCall without CONNECT: %v", req)
	}
}

// Machine detection: a machine is ANSWMACHINE and retried after the
// machine interval; the request asks for detection and the message.
func TestEngineAnsweringMachine(t *testing.T) {
	t.Parallel()
	h := newEngHarness(t)
	campaign := h.engCampaign(t, &dialerv1.Campaign{DialAttempts: 2, RetryIntervals: &dialerv1.RetryIntervals{MachineS: 600},
		OnAnswer: &dialerv1.OnAnswer{Announcement: "/audio/offer.wav", DetectMachine: true, MachineMessage: "/audio/sorry.wav"}},
		dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING)
	n := "+34919000666"
	h.fake.setScript(n, "machine", "answer")
	id := h.engList(t, campaign, engRecord{numbers: []string{n}})[0]
	h.start(t, "a", nil)
	r := h.waitRecord(t, id, "machine", func(r engRecordRow) bool { return r.status == StatusAnsMachine })
	if now := h.clock.Now(); r.final || r.tries != 1 || r.nextAt.Before(now.Add(590*time.Second)) || r.nextAt.After(now.Add(600*time.Second)) {
		t.Errorf("record %+v, want answmachine, retried at +600 s", r)
	}
	if a := h.attempts(t, id); len(a) != 1 || a[0].outcome != StatusAnsMachine {
		t.Errorf("attempts %+v", a)
	}
	if d := h.fake.dialed(); len(d) != 1 || !d[0].req.GetMachineDetection().GetEnabled() || d[0].req.GetMachineDetection().GetMessage() != "/audio/sorry.wav" {
		t.Fatalf("CreateCall %v", d)
	}
	h.clock.Advance(601 * time.Second)
	r = h.waitRecord(t, id, "answered", func(r engRecordRow) bool { return r.final })
	if r.status != StatusAnswered || r.tries != 2 {
		t.Errorf("record %+v, want answered at the second try", r)
	}
}
