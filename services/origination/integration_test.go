package origination

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/ringback/ringback/freeswitch/sim"
	eventsv1 "github.com/ringback/ringback/proto/gen/go/ringback/events/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	"github.com/ringback/ringback/services/internal/cache/cachetest"
	"github.com/ringback/ringback/services/internal/esl"
	"github.com/ringback/ringback/services/internal/ids"
	"github.com/ringback/ringback/services/internal/natsbus"
	"github.com/ringback/ringback/services/internal/natsbus/natstest"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// stack is origination wired to real parts: the FreeSWITCH simulator over
// the event socket, Redis, and JetStream (an in-process NATS server).
type stack struct {
	t      testing.TB
	sim    *sim.Sim
	engine *Engine
	sw     *ESLSwitch
	client *esl.Client
	store  *RedisStore
	cfg    Config
	nc     *nats.Conn

	mu     sync.Mutex
	events map[string][]*eventsv1.CallEvent
}

func newStack(t *testing.T) *stack { return newStackScale(t, 20) }

func newBenchStack(b *testing.B) *stack { return newStackScale(b, 50) }

func newStackScale(t testing.TB, scale float64) *stack {
	t.Helper()
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	// Benchmarks may use a simulator and a NATS server in their own
	// processes (BENCH_FSSIM_ADDR, BENCH_NATS_URL), as in production, so
	// that their CPU and garbage collection are not charged to origination.
	var s *sim.Sim
	eslAddr := os.Getenv("BENCH_FSSIM_ADDR")
	if _, isBench := t.(*testing.B); !isBench || eslAddr == "" {
		var err error
		s, err = sim.Start(ctx, sim.Config{ESLAddr: "127.0.0.1:0", ControlAddr: "127.0.0.1:0", TimeScale: scale})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		eslAddr = s.ESLAddr()
	}
	natsURL := os.Getenv("BENCH_NATS_URL")
	if _, isBench := t.(*testing.B); !isBench || natsURL == "" {
		natsURL = natstest.Start(t).URL()
	}
	bus, err := natsbus.Connect(ctx, natsURL, "origination-test", log, natsbus.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	if err := bus.EnsureStream(ctx, natsbus.Calls(time.Hour)); err != nil {
		t.Fatal(err)
	}
	st := &stack{t: t, sim: s, events: map[string][]*eventsv1.CallEvent{}}
	st.nc, err = nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.nc.Close)
	// Read the events as consumers do: from the stream, where JetStream
	// has dropped republished duplicates (same message ID).
	js, err := jetstream.New(st.nc)
	if err != nil {
		t.Fatal(err)
	}
	cons, err := js.OrderedConsumer(ctx, "CALLS", jetstream.OrderedConsumerConfig{FilterSubjects: []string{"calls.>"}})
	if err != nil {
		t.Fatal(err)
	}
	cc2, err := cons.Consume(func(m jetstream.Msg) {
		var ev eventsv1.CallEvent
		if err := proto.Unmarshal(m.Data(), &ev); err != nil {
			t.Errorf("event on %s does not decode: %v", m.Subject(), err)
			return
		}
		if want := Subject(ev.GetAccountId(), ev.GetCallId(), EventType(strings.TrimPrefix(ev.GetType().String(), "EVENT_TYPE_"))); m.Subject() != want {
			t.Errorf("event subject %s, want %s", m.Subject(), want)
		}
		st.mu.Lock()
		st.events[ev.GetCallId()] = append(st.events[ev.GetCallId()], &ev)
		st.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc2.Stop)
	cc := cachetest.New(t)
	st.store = NewRedisStore(cc.Redis())
	st.store.WaitingKey = cc.Key("origination", "waiting") // this test's instances only
	st.store.InstancesKey = cc.Key("origination", "instances")
	st.sw = NewESLSwitch(log)
	st.client, err = esl.Dial(ctx, esl.Config{Addrs: []string{eslAddr}, Password: "ClueCon", Events: Events, Logger: log}, st.sw.Handlers())
	if err != nil {
		t.Fatal(err)
	}
	st.sw.Client = st.client
	st.cfg = Config{Instance: "it-" + ids.NewV4()}
	st.engine = NewEngine(st.cfg, st.sw, st.store, BusPublisher{Bus: bus}, CacheLocker{C: cc}, DialPlan{}, log)
	st.sw.Attach(st.engine)
	t.Cleanup(func() {
		st.client.Close()
		st.sw.Close()
		st.engine.Close()
	})
	return st
}

// restart is a new origination process with the same instance name: a
// new engine on a new event-socket connection, sharing the store, which
// recovers the calls the old one drove.
func (st *stack) restart(t testing.TB) {
	t.Helper()
	e2, sw, client := st.instance(t, st.cfg, DialPlan{})
	if err := e2.Recover(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	st.engine, st.sw, st.client = e2, sw, client
}

// instance is another origination process on the same switch and store: an
// engine of its own on an event-socket connection of its own. Closing the
// three (client, switch, engine) is the process gone.
func (st *stack) instance(t testing.TB, cfg Config, res Resolver) (*Engine, *ESLSwitch, *esl.Client) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	sw := NewESLSwitch(log)
	client, err := esl.Dial(context.Background(), esl.Config{Addrs: []string{st.sim.ESLAddr()}, Password: "ClueCon", Events: Events, Logger: log}, sw.Handlers())
	if err != nil {
		t.Fatal(err)
	}
	sw.Client = client
	e := NewEngine(cfg, sw, st.store, st.engine.pub, st.engine.locks, res, log)
	sw.Attach(e)
	t.Cleanup(func() { client.Close(); sw.Close(); e.Close() })
	return e, sw, client
}

func (st *stack) waitStatus(id string, want ...Status) *Call {
	st.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	var c *Call
	for time.Now().Before(deadline) {
		var err error
		if c, err = st.engine.Get(context.Background(), id); err != nil {
			st.t.Fatal(err)
		}
		for _, w := range want {
			if c.Status == w {
				return c
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	st.t.Fatalf("call %s: status %s, want %v (%+v)", id, c.Status, want, c)
	return nil
}

// eventTypes waits until the call's final event was published and returns
// the event types in order.
func (st *stack) eventTypes(id string) []string {
	st.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		st.mu.Lock()
		evs := st.events[id]
		st.mu.Unlock()
		if n := len(evs); n > 0 {
			last := evs[n-1].GetType()
			if last == eventsv1.EventType_EVENT_TYPE_CALL_COMPLETED || last == eventsv1.EventType_EVENT_TYPE_CALL_FAILED || last == eventsv1.EventType_EVENT_TYPE_CALL_CANCELED {
				var out []string
				for i, ev := range evs {
					if ev.GetSequence() != uint32(i+1) {
						st.t.Fatalf("event %d has sequence %d", i, ev.GetSequence())
					}
					out = append(out, strings.TrimPrefix(ev.GetType().String(), "EVENT_TYPE_")+"/"+strings.TrimPrefix(ev.GetLeg().String(), "LEG_ROLE_"))
				}
				return out
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	st.t.Fatalf("no final event for call %s", id)
	return nil
}

func (st *stack) control(path string) {
	st.t.Helper()
	resp, err := http.Post(st.sim.ControlURL()+path, "application/json", nil)
	if err != nil {
		st.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		st.t.Fatalf("control %s: %s", path, resp.Status)
	}
}

func TestThroughSimulatorAnsweredAndBridged(t *testing.T) {
	t.Parallel()
	st := newStack(t)
	// Default scenario: ...0001 answers after ~1 s and talks ~5 s;
	// ...0002 answers after 100 ms and hangs up after 2 s (simulated).
	c, err := st.engine.Create(context.Background(), CreateRequest{AccountID: "acct-it", First: PartySpec{Number: "+15551230001"},
		Second: PartySpec{Number: "+15551230002"}, Variables: map[string]string{"crm_id": "7"}})
	if err != nil {
		t.Fatal(err)
	}
	done := st.waitStatus(c.ID, StatusCompleted, StatusFailed)
	if done.Status != StatusCompleted || done.BridgedAt.IsZero() || done.Second.HangupCause != "NORMAL_CLEARING" || done.Second.SIPStatus != 200 {
		t.Fatalf("call: %+v", done)
	}
	got := strings.Join(st.eventTypes(c.ID), " ")
	want := "CALL_QUEUED/UNSPECIFIED CALL_DIALING/FIRST LEG_RINGING/FIRST LEG_ANSWERED/FIRST LEG_DIALING/SECOND LEG_RINGING/SECOND " +
		"LEG_ANSWERED/SECOND CALL_BRIDGED/UNSPECIFIED LEG_HANGUP/SECOND LEG_HANGUP/FIRST CALL_COMPLETED/UNSPECIFIED"
	if got != want {
		t.Fatalf("events:\n got %s\nwant %s", got, want)
	}
	st.mu.Lock()
	last := st.events[c.ID][len(st.events[c.ID])-1]
	st.mu.Unlock()
	if last.GetVariables()["crm_id"] != "7" || last.GetCall().GetBillsec() < 0 || last.GetCall().GetStatus().String() != "CALL_STATUS_COMPLETED" {
		t.Fatalf("final event: %v", last)
	}
}

// waitGone fails t unless, within a few seconds, no channel of the
// simulator matches: a channel being hung up is still listed for a moment
// after the call's end is known (its hangup is under way, as in
// FreeSWITCH).
func (st *stack) waitGone(t testing.TB, what string, match func(sim.ChannelInfo) bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var left *sim.ChannelInfo
		for _, ch := range st.sim.Channels() {
			if match(ch) {
				left = &ch
				break
			}
		}
		if left == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is still up: %+v", what, *left)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ofCall matches the channels of a call.
func ofCall(id string) func(sim.ChannelInfo) bool {
	return func(ch sim.ChannelInfo) bool { return ch.Variables["ringback_call_id"] == id }
}

func TestThroughSimulatorFailures(t *testing.T) {
	t.Parallel()
	st := newStack(t)
	tests := []struct {
		first, second string
		ringMS        int
		leg           Role
		reason        FailureReason
	}{
		{"+15551230486", "+15551230002", 0, RoleFirst, ReasonBusy},
		{"+15551230404", "+15551230002", 0, RoleFirst, ReasonNoRoute},
		{"+15551230503", "+15551230002", 0, RoleFirst, ReasonCongestion},
		{"+15551230000", "+15551230408", 2000, RoleSecond, ReasonNoAnswer},
	}
	for _, tt := range tests {
		t.Run(tt.first+"_"+tt.second, func(t *testing.T) {
			t.Parallel()
			c, err := st.engine.Create(context.Background(), CreateRequest{AccountID: "acct-it",
				First: PartySpec{Number: tt.first}, Second: PartySpec{Number: tt.second, RingTimeoutMS: tt.ringMS}})
			if err != nil {
				t.Fatal(err)
			}
			got := st.waitStatus(c.ID, StatusFailed, StatusCompleted)
			if got.Status != StatusFailed || got.FailedLeg != tt.leg || got.FailureReason != tt.reason {
				t.Fatalf("call: status %s leg %s reason %s, want FAILED %s %s", got.Status, got.FailedLeg, got.FailureReason, tt.leg, tt.reason)
			}
			if tt.leg == RoleSecond && got.First.Status != LegHungup {
				t.Fatalf("first leg left up: %+v", got.First)
			}
			if tt.leg == RoleFirst {
				st.waitGone(t, "a channel of the failed call", ofCall(c.ID))
			}
		})
	}
}

func TestThroughSimulatorHangupAndDrop(t *testing.T) {
	t.Parallel()
	st := newStack(t)
	// ...0000 answers at once and stays up: the call stays bridged until
	// we end it.
	c, err := st.engine.Create(context.Background(), CreateRequest{AccountID: "acct-it", Mode: ModeSimultaneous,
		First: PartySpec{Number: "+15551230000"}, Second: PartySpec{Number: "+15557770000"}})
	if err != nil {
		t.Fatal(err)
	}
	st.waitStatus(c.ID, StatusBridged)
	// The event socket drops mid-call and comes back; the call goes on.
	st.control("/faults/drop-connections")
	time.Sleep(300 * time.Millisecond)
	if got, _ := st.engine.Get(context.Background(), c.ID); got.Status != StatusBridged {
		t.Fatalf("after the drop: %s", got.Status)
	}
	// A far-end hangup after the reconnect is still seen.
	chans := st.sim.Channels()
	var first string
	for _, ch := range chans {
		if ch.UUID == c.First.UUID {
			first = ch.UUID
		}
	}
	if first == "" {
		t.Fatalf("first leg not on the switch: %+v", chans)
	}
	resp, err := http.Post(st.sim.ControlURL()+"/channels/"+first+"/hangup", "application/json", strings.NewReader(`{"cause":"NORMAL_CLEARING"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	done := st.waitStatus(c.ID, StatusCompleted)
	if done.First.HangupCause != "NORMAL_CLEARING" || done.Second.Status != LegHungup {
		t.Fatalf("call: %+v", done)
	}
	// Hang up through the API while ringing: canceled.
	c2, err := st.engine.Create(context.Background(), CreateRequest{AccountID: "acct-it", First: PartySpec{Number: "+15551230408"}, Second: PartySpec{Number: "+15551230002"}})
	if err != nil {
		t.Fatal(err)
	}
	st.waitStatus(c2.ID, StatusRinging)
	if _, err := st.engine.Hangup(context.Background(), c2.ID, ""); err != nil {
		t.Fatal(err)
	}
	if got := st.waitStatus(c2.ID, StatusCanceled); got.First.Status != LegFailed {
		t.Fatalf("canceled call: %+v", got)
	}
}

func TestThroughSimulatorOriginationRestart(t *testing.T) {
	t.Parallel()
	st := newStack(t)
	c, err := st.engine.Create(context.Background(), CreateRequest{AccountID: "acct-it", Mode: ModeSimultaneous,
		First: PartySpec{Number: "+15551230000"}, Second: PartySpec{Number: "+15558880000"}})
	if err != nil {
		t.Fatal(err)
	}
	st.waitStatus(c.ID, StatusBridged)
	// origination stops (its connections and engine go away) ...
	st.client.Close()
	st.sw.Close()
	st.engine.Close()
	// ... the far end hangs up while it is down ...
	resp, err := http.Post(st.sim.ControlURL()+"/channels/"+c.Second.UUID+"/hangup", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// ... and a new process with the same instance ID takes over.
	st.restart(t)
	got := st.waitStatus(c.ID, StatusCompleted)
	if got.Second.Status != LegHungup || got.First.Status != LegHungup {
		t.Fatalf("after restart: %+v", got)
	}
	for _, ch := range st.sim.Channels() {
		if ch.Variables["ringback_call_id"] == c.ID {
			t.Fatalf("leg left on the switch: %+v", ch)
		}
	}
}

// A release (HangupCall with unanswered_ringing_ms) through the simulator:
// refused while the call has not rung that long, then the call ends
// FAILED, NO_ANSWER, the switch reporting the leg's ORIGINATOR_CANCEL.
func TestThroughSimulatorRelease(t *testing.T) {
	t.Parallel()
	st := newStack(t)
	srv := &CallServer{Engine: st.engine, Redis: st.store.rdb}
	ctx := asAccount("acct-it")
	// ...0408 rings until the originate timeout.
	resp, err := srv.CreateCall(ctx, &originationv1.CreateCallRequest{
		First:  &originationv1.PartySpec{Target: &originationv1.PartySpec_Number{Number: "+15551230408"}},
		Second: &originationv1.PartySpec{Target: &originationv1.PartySpec_Number{Number: "+15551230002"}}})
	if err != nil {
		t.Fatal(err)
	}
	id := resp.GetCall().GetId()
	for _, bad := range []*originationv1.HangupCallRequest{
		{Id: id, UnansweredRingingMs: -1},
		{Id: id, UnansweredRingingMs: 1, Cause: "NORMAL_CLEARING"},
	} {
		if _, err := srv.HangupCall(ctx, bad); status.Code(err) != codes.InvalidArgument {
			t.Fatalf("%v: err = %v, want INVALID_ARGUMENT", bad, err)
		}
	}
	ringing := st.waitStatus(id, StatusRinging)
	if _, err := srv.HangupCall(ctx, &originationv1.HangupCallRequest{Id: id, UnansweredRingingMs: 60_000}); reasonOf(err) != "CALL_NOT_RELEASABLE" {
		t.Fatalf("rung under a minute: err = %v, want CALL_NOT_RELEASABLE", err)
	}
	if got, _ := st.engine.Get(context.Background(), id); got.Status != StatusRinging {
		t.Fatalf("a refused release ended the call: %+v", got)
	}
	time.Sleep(time.Until(ringing.RingSeen.Add(50 * time.Millisecond)))
	if _, err := srv.HangupCall(ctx, &originationv1.HangupCallRequest{Id: id, UnansweredRingingMs: 20}); err != nil {
		got, _ := st.engine.Get(context.Background(), id)
		t.Fatalf("%v; call %+v", err, got)
	}
	done := st.waitStatus(id, StatusFailed, StatusCanceled, StatusCompleted)
	if done.Status != StatusFailed || done.FailedLeg != RoleFirst || done.FailureReason != ReasonNoAnswer ||
		done.First.HangupCause != "ORIGINATOR_CANCEL" || !done.Released || done.Second.Status != LegFailed {
		t.Fatalf("released call: %+v", done)
	}
	got := strings.Join(st.eventTypes(id), " ")
	if want := "CALL_QUEUED/UNSPECIFIED CALL_DIALING/FIRST LEG_RINGING/FIRST LEG_HANGUP/FIRST CALL_FAILED/FIRST"; got != want {
		t.Fatalf("events:\n got %s\nwant %s", got, want)
	}
}
