package esl_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ringback/ringback/freeswitch/sim"
	"github.com/ringback/ringback/services/internal/esl"
)

// TestMain fails the run if any goroutine (ours, the simulator's, eslgo's)
// outlives the tests: every Client must be Closed and leave nothing behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const password = "ClueCon"

// answerTimeout is the originate_timeout of legs expected to answer. It is
// simulated time (10 min is 6 s at scale 100), generous so that a loaded
// test machine never turns an answered call into NO_ANSWER.
const answerTimeout = 10 * time.Minute

// startSim starts an in-process simulator at the given time scale and
// closes it when the test ends.
func startSim(t testing.TB, scale float64) *sim.Sim {
	t.Helper()
	s, err := sim.Start(context.Background(), sim.Config{
		ESLAddr: "127.0.0.1:0", ControlAddr: "127.0.0.1:0", TimeScale: scale, Password: password,
	})
	if err != nil {
		t.Fatalf("start simulator: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// control POSTs to the simulator's control API. Keep-alives are off so no
// idle HTTP connection (and its goroutines) outlives the test.
func control(t testing.TB, s *sim.Sim, path, body string) {
	t.Helper()
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := c.Post(s.ControlURL()+path, "application/json", bytes.NewBufferString(body))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("POST %s: %s %s", path, resp.Status, b)
	}
}

// testConfig is a Config with test-sized timings. Set ESL_TEST_LOG=1 to see
// the client's logs.
func testConfig(addrs ...string) esl.Config {
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("ESL_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return esl.Config{
		Addrs:          addrs,
		Password:       password,
		DialTimeout:    2 * time.Second,
		CommandTimeout: 5 * time.Second,
		ReconnectMin:   10 * time.Millisecond,
		ReconnectMax:   200 * time.Millisecond,
		Events:         []string{"CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_HANGUP_COMPLETE"},
		Logger:         log,
	}
}

// dial connects a Client and closes it when the test ends.
func dial(t testing.TB, cfg esl.Config, h esl.Handlers) *esl.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := esl.Dial(ctx, cfg, h)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// recorder keeps everything the handlers receive and lets a test wait for
// what it expects.
type recorder struct {
	mu      sync.Mutex
	events  []esl.Event
	ups     []esl.NodeUp
	downs   []esl.NodeDown
	changed chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{})} }

func (r *recorder) handlers() esl.Handlers {
	return esl.Handlers{
		Event: func(e esl.Event) { r.add(func() { r.events = append(r.events, e) }) },
		Up:    func(u esl.NodeUp) { r.add(func() { r.ups = append(r.ups, u) }) },
		Down:  func(d esl.NodeDown) { r.add(func() { r.downs = append(r.downs, d) }) },
	}
}

func (r *recorder) add(f func()) {
	r.mu.Lock()
	f()
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

// wait polls cond (under the lock) until it is true or timeout passes.
func (r *recorder) wait(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		ok := cond()
		ch := r.changed
		r.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
	}
}

// waitEvent waits for an event named name about leg uuid.
func (r *recorder) waitEvent(t testing.TB, timeout time.Duration, name, uuid string) esl.Event {
	t.Helper()
	var got esl.Event
	r.wait(t, timeout, name+" of "+uuid, func() bool {
		for _, e := range r.events {
			if e.Name == name && e.UniqueID() == uuid {
				got = e
				return true
			}
		}
		return false
	})
	return got
}

// waitUps waits until n NodeUp have been received and returns them.
func (r *recorder) waitUps(t testing.TB, timeout time.Duration, n int) []esl.NodeUp {
	t.Helper()
	var got []esl.NodeUp
	r.wait(t, timeout, "NodeUp", func() bool {
		got = append([]esl.NodeUp(nil), r.ups...)
		return len(got) >= n
	})
	return got
}

// fakeServer is a TCP listener whose connections are handled by serve;
// it closes everything when the test ends. It stands in for peers the
// simulator cannot play: one that never says anything, one that flaps.
type fakeServer struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	wg    sync.WaitGroup
}

func startFake(t testing.TB, serve func(net.Conn)) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeServer{ln: ln}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.conns = append(f.conns, c)
			f.mu.Unlock()
			f.wg.Add(1)
			go func() { defer f.wg.Done(); serve(c) }()
		}
	}()
	t.Cleanup(f.close)
	return f
}

func (f *fakeServer) addr() string { return f.ln.Addr().String() }

func (f *fakeServer) close() {
	f.ln.Close()
	f.mu.Lock()
	for _, c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

func eslHandlersNone() esl.Handlers { return esl.Handlers{} }
