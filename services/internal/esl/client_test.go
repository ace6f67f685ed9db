package esl_test

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringback/ringback/services/internal/esl"
)

// TestDialSilentPeer: a server that accepts the TCP connection but never
// sends auth/request must not hang Dial past DialTimeout.
func TestDialSilentPeer(t *testing.T) {
	t.Parallel()
	silent := startFake(t, func(c net.Conn) {
		// Read and discard until the client goes away; never answer.
		_, _ = bufio.NewReader(c).ReadString(0)
	})
	cfg := testConfig(silent.addr())
	cfg.DialTimeout = 300 * time.Millisecond
	start := time.Now()
	c, err := esl.Dial(context.Background(), cfg, esl.Handlers{})
	took := time.Since(start)
	if err == nil {
		c.Close()
		t.Fatal("Dial succeeded against a silent peer")
	}
	if !errors.Is(err, esl.ErrTimeout) {
		t.Errorf("Dial error = %v, want ErrTimeout", err)
	}
	if took > time.Second {
		t.Errorf("Dial took %s with DialTimeout %s", took, cfg.DialTimeout)
	}
}

// TestDialWrongPassword: FreeSWITCH answers -ERR invalid and hangs up; Dial
// must report ErrAuth at once and never echo the password.
func TestDialWrongPassword(t *testing.T) {
	t.Parallel()
	s := startSim(t, 10)
	cfg := testConfig(s.ESLAddr())
	cfg.Password = "not-the-Secret-42"
	start := time.Now()
	c, err := esl.Dial(context.Background(), cfg, esl.Handlers{})
	if err == nil {
		c.Close()
		t.Fatal("Dial succeeded with a wrong password")
	}
	if !errors.Is(err, esl.ErrAuth) {
		t.Errorf("Dial error = %v, want ErrAuth", err)
	}
	if strings.Contains(err.Error(), cfg.Password) {
		t.Errorf("error message leaks the password: %v", err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("Dial took %s", took)
	}
}

func TestDialConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mod  func(*esl.Config)
	}{
		{"no address", func(c *esl.Config) { c.Addrs = nil }},
		{"address without port", func(c *esl.Config) { c.Addrs = []string{"fs1"} }},
		{"duplicate address", func(c *esl.Config) { c.Addrs = []string{"fs1:8021", "fs1:8021"} }},
		{"no password", func(c *esl.Config) { c.Password = "" }},
		{"negative timeout", func(c *esl.Config) { c.CommandTimeout = -time.Second }},
		{"negative sps", func(c *esl.Config) { c.SessionsPerSecond = -1 }},
		{"event name with newline", func(c *esl.Config) { c.Events = []string{"CHANNEL_ANSWER\nexit"} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig("127.0.0.1:1")
			tc.mod(&cfg)
			if _, err := esl.Dial(context.Background(), cfg, esl.Handlers{}); !errors.Is(err, esl.ErrInvalid) {
				t.Errorf("Dial error = %v, want ErrInvalid", err)
			}
		})
	}
}

// TestAPIErrors covers the typed errors of API and BgAPI.
func TestAPIErrors(t *testing.T) {
	t.Parallel()
	s := startSim(t, 10)
	c := dial(t, testConfig(s.ESLAddr()), esl.Handlers{})
	node := s.ESLAddr()
	ctx := context.Background()

	if got, err := c.API(ctx, node, "eval hello world"); err != nil || got != "hello world" {
		t.Errorf("eval = %q, %v", got, err)
	}
	_, err := c.API(ctx, node, "uuid_kill "+esl.NewUUID())
	var ce *esl.CommandError
	if !errors.As(err, &ce) || ce.Command != "uuid_kill" || !strings.HasPrefix(ce.Reply, "-ERR") {
		t.Errorf("uuid_kill of unknown uuid: %v, want *CommandError", err)
	}
	if _, err := c.API(ctx, node, "status\nexit"); !errors.Is(err, esl.ErrInvalid) {
		t.Errorf("newline in command: %v, want ErrInvalid", err)
	}
	if _, err := c.API(ctx, "10.0.0.1:8021", "status"); !errors.Is(err, esl.ErrUnknownNode) {
		t.Errorf("unknown node: %v, want ErrUnknownNode", err)
	}
	job, err := c.BgAPI(ctx, node, "status")
	if err != nil || len(job) != 36 {
		t.Errorf("BgAPI = %q, %v", job, err)
	}
	c.Close()
	if _, err := c.API(ctx, node, "status"); !errors.Is(err, esl.ErrClosed) {
		t.Errorf("after Close: %v, want ErrClosed", err)
	}
	if _, err := c.Originate(ctx, node, esl.OriginateRequest{Dialstring: "null/1"}); !errors.Is(err, esl.ErrClosed) {
		t.Errorf("Originate after Close: %v, want ErrClosed", err)
	}
}

// TestEventsSurviveReconnect: events reach the handler with their node;
// after the switch drops every connection mid-call the client reconnects,
// re-subscribes, reports the call in NodeUp.Channels, and the call's
// CHANNEL_HANGUP_COMPLETE still arrives.
func TestEventsSurviveReconnect(t *testing.T) {
	t.Parallel()
	s := startSim(t, 10)
	rec := newRecorder()
	c := dial(t, testConfig(s.ESLAddr()), rec.handlers())
	node := s.ESLAddr()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	first := rec.waitUps(t, 5*time.Second, 1)[0]
	if first.Node != node || first.Reconnects != 0 || first.Restarted || first.PreviousCoreUUID != "" || first.CoreUUID == "" {
		t.Errorf("first NodeUp = %+v", first)
	}
	leg, err := c.Originate(ctx, node, esl.OriginateRequest{Dialstring: "sofia/gateway/carrier/15551110000", Timeout: answerTimeout})
	if err != nil {
		t.Fatal(err)
	}
	ans := rec.waitEvent(t, 5*time.Second, "CHANNEL_ANSWER", leg.UUID)
	if ans.Node != node || ans.CoreUUID() != first.CoreUUID || ans.Sequence() == 0 {
		t.Errorf("CHANNEL_ANSWER node %q core %q seq %d", ans.Node, ans.CoreUUID(), ans.Sequence())
	}

	control(t, s, "/faults/drop-connections", "")
	ups := rec.waitUps(t, 5*time.Second, 2)
	up := ups[1]
	if up.Reconnects != 1 || up.Restarted || up.CoreUUID != first.CoreUUID || up.PreviousCoreUUID != first.CoreUUID {
		t.Errorf("NodeUp after drop = %+v", up)
	}
	if !hasChannel(up.Channels, leg.UUID) {
		t.Errorf("NodeUp.Channels lacks the live leg %s: %+v", leg.UUID, up.Channels)
	}
	rec.mu.Lock()
	downs := len(rec.downs)
	rec.mu.Unlock()
	if downs != 1 {
		t.Errorf("%d NodeDown, want 1", downs)
	}

	control(t, s, "/channels/"+leg.UUID+"/hangup", `{"cause":"NORMAL_CLEARING"}`)
	hup := rec.waitEvent(t, 5*time.Second, "CHANNEL_HANGUP_COMPLETE", leg.UUID)
	if hup.Get("Hangup-Cause") != "NORMAL_CLEARING" || hup.Node != node {
		t.Errorf("hangup event: cause %q node %q", hup.Get("Hangup-Cause"), hup.Node)
	}
	st := c.Nodes()[0]
	if !st.Connected || st.Reconnects != 1 || st.Restarts != 0 {
		t.Errorf("status = %+v", st)
	}
}

// TestRestartIsReported: a FreeSWITCH restart (new Core-UUID, every channel
// gone without events) is reported as such, with an empty channel list.
func TestRestartIsReported(t *testing.T) {
	t.Parallel()
	s := startSim(t, 10)
	rec := newRecorder()
	c := dial(t, testConfig(s.ESLAddr()), rec.handlers())
	node := s.ESLAddr()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	before := rec.waitUps(t, 5*time.Second, 1)[0]
	leg, err := c.Originate(ctx, node, esl.OriginateRequest{Dialstring: "sofia/gateway/carrier/15552220000", Timeout: answerTimeout})
	if err != nil {
		t.Fatal(err)
	}

	control(t, s, "/faults/restart", "")
	up := rec.waitUps(t, 5*time.Second, 2)[1]
	if !up.Restarted || up.PreviousCoreUUID != before.CoreUUID || up.CoreUUID == before.CoreUUID {
		t.Errorf("NodeUp after restart = %+v (core before %s)", up, before.CoreUUID)
	}
	if hasChannel(up.Channels, leg.UUID) || len(up.Channels) != 0 {
		t.Errorf("channels after restart: %+v, want none", up.Channels)
	}
	if got, err := c.API(ctx, node, "uuid_exists "+leg.UUID); err != nil || got != "false" {
		t.Errorf("uuid_exists after restart = %q, %v", got, err)
	}
	if st := c.Nodes()[0]; st.Restarts != 1 || st.CoreUUID != up.CoreUUID {
		t.Errorf("status = %+v", st)
	}
}

// TestReconnectBackoff: a node that accepts and immediately hangs up is
// retried with growing, jittered pauses capped at ReconnectMax, while the
// healthy node keeps working.
func TestReconnectBackoff(t *testing.T) {
	t.Parallel()
	s := startSim(t, 10)
	var mu sync.Mutex
	var accepts []time.Time
	flapping := startFake(t, func(c net.Conn) {
		mu.Lock()
		accepts = append(accepts, time.Now())
		mu.Unlock()
		c.Close()
	})
	cfg := testConfig(s.ESLAddr(), flapping.addr())
	cfg.ReconnectMin, cfg.ReconnectMax = 20*time.Millisecond, 160*time.Millisecond
	c := dial(t, cfg, esl.Handlers{})

	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(accepts)
		mu.Unlock()
		if n >= 7 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	mu.Lock()
	got := append([]time.Time(nil), accepts...)
	mu.Unlock()
	if len(got) < 7 {
		t.Fatalf("only %d attempts in 10s", len(got))
	}
	// Pause before attempt k+1 is in [base/2, base], base = min(20ms*2^(k-1), 160ms).
	for k := 1; k < 7; k++ {
		base := min(cfg.ReconnectMin<<(k-1), cfg.ReconnectMax)
		gap := got[k].Sub(got[k-1])
		if gap < base/2 || gap > base+300*time.Millisecond {
			t.Errorf("pause before attempt %d = %s, want in [%s, ~%s]", k+1, gap, base/2, base)
		}
	}
	st := c.Nodes()
	if !st[0].Connected || st[1].Connected || st[1].LastError == nil {
		t.Errorf("statuses = %+v", st)
	}
	if _, err := c.API(context.Background(), flapping.addr(), "status"); !errors.Is(err, esl.ErrNotConnected) {
		t.Errorf("API on the down node: %v, want ErrNotConnected", err)
	}
}

// TestCommandTimeoutReconnects: a reply later than CommandTimeout means a
// dead or wedged switch: the command fails with ErrTimeout and the session
// is rebuilt.
func TestCommandTimeoutReconnects(t *testing.T) {
	t.Parallel()
	s := startSim(t, 10)
	rec := newRecorder()
	cfg := testConfig(s.ESLAddr())
	cfg.CommandTimeout = 200 * time.Millisecond
	c := dial(t, cfg, rec.handlers())
	rec.waitUps(t, 5*time.Second, 1)

	control(t, s, "/faults/stall", `{"ms":400}`)
	_, err := c.API(context.Background(), s.ESLAddr(), "status")
	control(t, s, "/faults/stall", `{"ms":0}`)
	if !errors.Is(err, esl.ErrTimeout) {
		t.Fatalf("API during stall: %v, want ErrTimeout", err)
	}
	up := rec.waitUps(t, 10*time.Second, 2)[1]
	if up.Reconnects != 1 || up.Restarted {
		t.Errorf("NodeUp = %+v", up)
	}
	if _, err := c.API(context.Background(), s.ESLAddr(), "status"); err != nil {
		t.Errorf("API after reconnect: %v", err)
	}
}

// TestPingDetectsWedgedSwitch: with no traffic at all, the periodic probe
// notices a switch that stopped answering and rebuilds the session.
func TestPingDetectsWedgedSwitch(t *testing.T) {
	t.Parallel()
	s := startSim(t, 10)
	rec := newRecorder()
	cfg := testConfig(s.ESLAddr())
	cfg.PingInterval = 50 * time.Millisecond
	cfg.CommandTimeout = 150 * time.Millisecond
	dial(t, cfg, rec.handlers())
	rec.waitUps(t, 5*time.Second, 1)

	control(t, s, "/faults/stall", `{"ms":400}`)
	rec.wait(t, 5*time.Second, "NodeDown", func() bool { return len(rec.downs) > 0 })
	control(t, s, "/faults/stall", `{"ms":0}`)
	rec.mu.Lock()
	err := rec.downs[0].Err
	rec.mu.Unlock()
	if !errors.Is(err, esl.ErrTimeout) {
		t.Errorf("NodeDown error = %v, want ErrTimeout", err)
	}
	rec.waitUps(t, 10*time.Second, 2)
}

// TestAbandonedReplyIsNotHandedOn: a caller that gives up (its ctx ends)
// keeps its place in the reply queue, so the late reply is dropped and the
// next command gets its own. This is the case eslgo gets wrong (see
// TestEslgoHandsStaleReplyToNextCommand).
func TestAbandonedReplyIsNotHandedOn(t *testing.T) {
	t.Parallel()
	s := startSim(t, 10)
	cfg := testConfig(s.ESLAddr())
	cfg.CommandConns = 1
	c := dial(t, cfg, esl.Handlers{})
	node := s.ESLAddr()

	control(t, s, "/faults/stall", `{"ms":300}`)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	_, err := c.API(ctx, node, "eval first")
	cancel()
	if !errors.Is(err, esl.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("abandoned API: %v, want ErrTimeout and DeadlineExceeded", err)
	}
	control(t, s, "/faults/stall", `{"ms":0}`)
	for i, want := range []string{"second", "third"} {
		got, err := c.API(context.Background(), node, "eval "+want)
		if err != nil || got != want {
			t.Errorf("command %d after an abandoned one = %q, %v; want %q", i+2, got, err, want)
		}
	}
}

// TestOriginateCancelledHangsUp: when the caller gives up on a ringing
// originate, the leg is hung up rather than left ringing untracked.
func TestOriginateCancelledHangsUp(t *testing.T) {
	t.Parallel()
	s := startSim(t, 10)
	rec := newRecorder()
	c := dial(t, testConfig(s.ESLAddr()), rec.handlers())
	node := s.ESLAddr()
	uuid := esl.NewUUID()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Originate(ctx, node, esl.OriginateRequest{UUID: uuid, Dialstring: "sofia/gateway/carrier/15553330408"})
		done <- err
	}()
	rec.waitEvent(t, 5*time.Second, "CHANNEL_CREATE", uuid)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Originate = %v, want context.Canceled", err)
	}
	hup := rec.waitEvent(t, 5*time.Second, "CHANNEL_HANGUP_COMPLETE", uuid)
	if cause := hup.Get("Hangup-Cause"); cause != "ORIGINATOR_CANCEL" {
		t.Errorf("hangup cause %q, want ORIGINATOR_CANCEL", cause)
	}
}

// TestSessionsPerSecond: with a budget of 5 per second, 20 originates need
// at least 3 seconds (5 at once, then one every 200 ms), and while they
// queue, an originate whose deadline comes before its turn fails at once
// with ErrRateLimited instead of waiting out its deadline.
func TestSessionsPerSecond(t *testing.T) {
	t.Parallel()
	s := startSim(t, 100)
	cfg := testConfig(s.ESLAddr())
	cfg.SessionsPerSecond = 5
	c := dial(t, cfg, esl.Handlers{})
	node := s.ESLAddr()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	start := time.Now()
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Originate(ctx, node, esl.OriginateRequest{Dialstring: "sofia/gateway/carrier/15554440000", Timeout: answerTimeout}); err != nil {
				t.Errorf("Originate: %v", err)
			}
		}()
	}

	// 500 ms in, about 12 originates are queued for tokens: the next free
	// slot is seconds away.
	time.Sleep(500 * time.Millisecond)
	short, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	t0 := time.Now()
	_, err := c.Originate(short, node, esl.OriginateRequest{Dialstring: "sofia/gateway/carrier/15554440000"})
	if !errors.Is(err, esl.ErrRateLimited) || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Originate with a 1s deadline behind a queue: %v, want an immediate ErrRateLimited", err)
	}
	if d := time.Since(t0); d > 500*time.Millisecond {
		t.Errorf("rate-limited originate took %s, want an immediate failure", d)
	}

	wg.Wait()
	took := time.Since(start)
	if took < 2900*time.Millisecond {
		t.Errorf("20 originates at 5/s took %s, want >= ~3s", took)
	}
	t.Logf("20 originates at 5/s took %s", took)
}

// TestMultipleNodes: Pick spreads originates over the nodes, and one node
// dropping its connections does not disturb the other.
func TestMultipleNodes(t *testing.T) {
	t.Parallel()
	a, b := startSim(t, 10), startSim(t, 10)
	rec := newRecorder()
	c := dial(t, testConfig(a.ESLAddr(), b.ESLAddr()), rec.handlers())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	rec.waitUps(t, 5*time.Second, 2)

	picks := map[string]int{}
	for range 100 {
		picks[c.Pick()]++
	}
	if picks[a.ESLAddr()] != 50 || picks[b.ESLAddr()] != 50 {
		t.Errorf("idle picks = %v, want 50/50", picks)
	}

	// Concurrent originates through Pick land on both nodes.
	var mu sync.Mutex
	placed := map[string]int{}
	var wg sync.WaitGroup
	for range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			leg, err := c.Originate(ctx, "", esl.OriginateRequest{Dialstring: "sofia/gateway/carrier/15555550000", Timeout: answerTimeout})
			if err != nil {
				t.Errorf("Originate: %v", err)
				return
			}
			mu.Lock()
			placed[leg.Node]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if placed[a.ESLAddr()] < 10 || placed[b.ESLAddr()] < 10 {
		t.Errorf("originates per node = %v, want both used", placed)
	}

	// Node A drops; B keeps serving without a hiccup.
	stop := make(chan struct{})
	var bErrs atomic.Int32
	var bOK atomic.Int32
	var bg sync.WaitGroup
	bg.Add(1)
	go func() {
		defer bg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := c.Originate(ctx, b.ESLAddr(), esl.OriginateRequest{Dialstring: "sofia/gateway/carrier/15556660000", Timeout: answerTimeout}); err != nil {
				bErrs.Add(1)
				t.Errorf("originate on B while A drops: %v", err)
			} else {
				bOK.Add(1)
			}
		}
	}()
	time.Sleep(50 * time.Millisecond)
	control(t, a, "/faults/drop-connections", "")
	rec.wait(t, 5*time.Second, "A back up", func() bool {
		n := 0
		for _, u := range rec.ups {
			if u.Node == a.ESLAddr() {
				n++
			}
		}
		return n >= 2
	})
	time.Sleep(50 * time.Millisecond)
	close(stop)
	bg.Wait()
	if bOK.Load() == 0 {
		t.Error("no originate on B succeeded")
	}
	rec.mu.Lock()
	for _, d := range rec.downs {
		if d.Node != a.ESLAddr() {
			t.Errorf("unexpected NodeDown for %s: %v", d.Node, d.Err)
		}
	}
	rec.mu.Unlock()
	st := c.Nodes()
	if st[0].Reconnects != 1 || st[1].Reconnects != 0 || !st[0].Connected || !st[1].Connected {
		t.Errorf("statuses = %+v", st)
	}
}

func hasChannel(chans []esl.Channel, uuid string) bool {
	for _, ch := range chans {
		if ch.UUID == uuid {
			return true
		}
	}
	return false
}
