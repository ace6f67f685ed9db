package origination

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	eventsv1 "github.com/ringback/ringback/proto/gen/go/ringback/events/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	"github.com/ringback/ringback/services/internal/esl"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// BenchmarkConnectCall measures how fast a waiting customer reaches an
// agent, one customer at a time through the real gRPC API, state in Redis
// and events on JetStream, the simulator running agent_conference and
// mod_conference: an agent's session sits in its room; each iteration
// dials a customer (...0000 answers at once) awaiting an agent, and as
// soon as its AGENT_AWAITED arrives on the bus calls ConnectCall, then
// waits for CONFERENCE_JOINED. It reports the medians (and p99s) of
//
//	connect-to-joined-ms   ConnectCall's request to CONFERENCE_JOINED's arrival
//	awaited-to-return-ms   AGENT_AWAITED's occurred_at (recorded with the
//	                       change, just before it is saved and published)
//	                       to ConnectCall returning
//	connect-rpc-ms         ConnectCall's round trip alone
//	awaited-delivery-ms    AGENT_AWAITED's occurred_at to its arrival
//	press-to-awaited-ms    (queue) the digit sent to the simulator to
//	                       AGENT_AWAITED's arrival: play_and_get_digits's
//	                       end, the choice applied, the event on the bus
//
// (in the queue, awaited-to-return also holds the wait for the hold music
// to be playing before ConnectCall, a poll of the simulator's channels).
// and, as the same run's baseline, what the parts cost without the engine:
// baseline-getcall-ms (a GetCall round trip: gRPC and one Redis read) and
// baseline-switch-join-ms (uuid_setvar_multi and uuid_transfer sent
// straight to the simulator until its add-member event arrives).
//
// Two kinds of customer: answer, a predictive dialer's (waiting from its
// answer, in silence), and queue, a BLAST's recipient who pressed 1 in the
// menu and waits hearing the hold music (endless_playback of
// local_stream://moh, which the transfer to the room has to cut); the
// queue's AGENT_AWAITED comes at the press, through the simulator's control
// API (so the queue runs only with the simulator in process). answer is the
// queue's baseline in the same run.
// Run: go test -run '^$' -bench ConnectCall -benchtime 300x ./origination/
func BenchmarkConnectCall(b *testing.B) {
	b.Run("answer", func(b *testing.B) { benchConnectCall(b, false) })
	b.Run("queue", func(b *testing.B) { benchConnectCall(b, true) })
}

func benchConnectCall(b *testing.B, queue bool) {
	st := newBenchStack(b)
	if queue && st.sim == nil {
		b.Skip("the queue needs the simulator in process (its control API presses the digit)")
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	gs := grpc.NewServer()
	originationv1.RegisterCallServiceServer(gs, &CallServer{Engine: st.engine, Redis: st.store.rdb})
	go gs.Serve(lis)
	b.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	client := originationv1.NewCallServiceClient(conn)
	ctx := metadata.AppendToOutgoingContext(context.Background(), AccountHeader, "acct-bench")

	// The events as a consumer sees them arrive (core NATS: the stream's
	// subjects are delivered to plain subscribers too, with no consumer
	// acknowledgements in the measure).
	type arrival struct {
		ev *eventsv1.CallEvent
		at time.Time
	}
	var mu sync.Mutex
	waiters := map[string]chan arrival{}
	wait := func(callID string, t eventsv1.EventType) chan arrival {
		ch := make(chan arrival, 1)
		mu.Lock()
		waiters[callID+t.String()] = ch
		mu.Unlock()
		return ch
	}
	sub, err := st.nc.Subscribe("calls.acct-bench.>", func(m *nats.Msg) {
		at := time.Now()
		var ev eventsv1.CallEvent
		if proto.Unmarshal(m.Data, &ev) != nil {
			return
		}
		mu.Lock()
		ch := waiters[ev.GetCallId()+ev.GetType().String()]
		mu.Unlock()
		if ch != nil {
			select {
			case ch <- arrival{&ev, at}:
			default:
			}
		}
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sub.Unsubscribe() })
	recv := func(ch chan arrival, what string) arrival {
		select {
		case a := <-ch:
			return a
		case <-time.After(10 * time.Second):
			b.Fatalf("no %s", what)
		}
		return arrival{}
	}

	// The agent, in its room.
	resp, err := client.CreateCall(ctx, &originationv1.CreateCallRequest{
		First: &originationv1.PartySpec{Target: &originationv1.PartySpec_Number{Number: "+15550010000"}}, Conference: "bench-agent"})
	if err != nil {
		b.Fatal(err)
	}
	joined := wait(resp.GetCall().GetId(), eventsv1.EventType_EVENT_TYPE_CONFERENCE_JOINED)
	recv(joined, "agent joining")

	var connectToJoined, awaitedToReturn, rpc, delivery, getCall, pressToAwaited []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		number := fmt.Sprintf("+1556%06d0000", i%1000000)
		req := &originationv1.CreateCallRequest{
			First:      &originationv1.PartySpec{Target: &originationv1.PartySpec_Number{Number: number}},
			AwaitAgent: &originationv1.AwaitAgent{TimeoutMs: 30000, SafeHarbour: "/sounds/safe-harbour.wav"}}
		if queue {
			req.Announcement = "tone_stream://%(100,0,440)"
			req.Menu = &originationv1.Menu{Options: []*originationv1.MenuOption{{Digit: "1", Action: originationv1.MenuAction_MENU_ACTION_CONNECT}}}
			req.AwaitAgent.TimeoutMs, req.AwaitAgent.HoldMusic = 60000, DefaultHoldMusic
		}
		created, err := client.CreateCall(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		id := created.GetCall().GetId()
		awaitedCh := wait(id, eventsv1.EventType_EVENT_TYPE_AGENT_AWAITED)
		joinedCh := wait(id, eventsv1.EventType_EVENT_TYPE_CONFERENCE_JOINED)
		var pressed time.Time
		if queue {
			uuid := created.GetCall().GetFirst().GetUuid()
			st.waitChannelVar(uuid, "current_application", "play_and_get_digits")
			pressed = time.Now()
			st.press(uuid, "1")
		}
		awaited := recv(awaitedCh, "AGENT_AWAITED")
		if queue {
			pressToAwaited = append(pressToAwaited, awaited.at.Sub(pressed))
		}
		if queue {
			// On hold: the transfer to the room cuts the music.
			st.waitChannelVar(created.GetCall().GetFirst().GetUuid(), "current_application", "endless_playback")
		}
		t0 := time.Now()
		if _, err := client.ConnectCall(ctx, &originationv1.ConnectCallRequest{Id: id, Conference: "bench-agent"}); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		j := recv(joinedCh, "CONFERENCE_JOINED")
		published := awaited.ev.GetOccurredAt().AsTime()
		connectToJoined = append(connectToJoined, j.at.Sub(t0))
		awaitedToReturn = append(awaitedToReturn, t1.Sub(published))
		rpc = append(rpc, t1.Sub(t0))
		delivery = append(delivery, awaited.at.Sub(published))
		g0 := time.Now()
		if _, err := client.GetCall(ctx, &originationv1.GetCallRequest{Id: id}); err != nil {
			b.Fatal(err)
		}
		getCall = append(getCall, time.Since(g0))
		if _, err := client.HangupCall(ctx, &originationv1.HangupCallRequest{Id: id}); err != nil {
			b.Fatal(err)
		}
		mu.Lock()
		delete(waiters, id+eventsv1.EventType_EVENT_TYPE_AGENT_AWAITED.String())
		delete(waiters, id+eventsv1.EventType_EVENT_TYPE_CONFERENCE_JOINED.String())
		mu.Unlock()
	}
	b.StopTimer()
	switchJoin := benchSwitchJoin(b, st, min(b.N, 200))
	report := func(name string, d []time.Duration) {
		slices.Sort(d)
		ms := func(p float64) float64 { return float64(d[int(float64(len(d)-1)*p)]) / float64(time.Millisecond) }
		b.ReportMetric(ms(0.50), name+"-ms")
		b.ReportMetric(ms(0.99), name+"-p99-ms")
	}
	report("connect-to-joined", connectToJoined)
	report("awaited-to-return", awaitedToReturn)
	report("connect-rpc", rpc)
	report("awaited-delivery", delivery)
	report("baseline-getcall", getCall)
	report("baseline-switch-join", switchJoin)
	if queue {
		report("press-to-awaited", pressToAwaited)
	}
}

// benchSwitchJoin is the switch's own part of a join: a parked leg's room
// variables set and its transfer sent over the event socket, until the
// room's add-member event for it arrives.
func benchSwitchJoin(b *testing.B, st *stack, n int) []time.Duration {
	b.Helper()
	addr := st.client.Pick()
	var mu sync.Mutex
	added := map[string]chan time.Time{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	c, err := esl.Dial(context.Background(), esl.Config{Addrs: []string{addr}, Password: "ClueCon",
		Events: []string{"CUSTOM conference::maintenance"}, Logger: log}, esl.Handlers{Event: func(ev esl.Event) {
		if ev.Get("Action") != "add-member" {
			return
		}
		at := time.Now()
		mu.Lock()
		ch := added[ev.UniqueID()]
		mu.Unlock()
		if ch != nil {
			ch <- at
		}
	}})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	out := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		uuid := fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
		if _, err := c.API(ctx, addr, "originate {origination_uuid="+uuid+"}sofia/gateway/carrier/1557"+fmt.Sprintf("%06d", i)+"0000 &park"); err != nil {
			b.Fatal(err)
		}
		ch := make(chan time.Time, 1)
		mu.Lock()
		added[uuid] = ch
		mu.Unlock()
		t0 := time.Now()
		if _, err := c.API(ctx, addr, "uuid_setvar_multi "+uuid+" ringback_conference=bench-baseline"); err != nil {
			b.Fatal(err)
		}
		if _, err := c.API(ctx, addr, "uuid_transfer "+uuid+" agent_conference XML ringback"); err != nil {
			b.Fatal(err)
		}
		select {
		case at := <-ch:
			out = append(out, at.Sub(t0))
		case <-time.After(10 * time.Second):
			b.Fatal("no add-member for the baseline leg")
		}
		if _, err := c.API(ctx, addr, "uuid_kill "+uuid); err != nil && !strings.Contains(err.Error(), "No such channel") {
			b.Fatal(err)
		}
	}
	return out
}
