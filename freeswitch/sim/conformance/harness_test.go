package conformance

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/ringback/ringback/freeswitch/sim"
)

// simTimeScale is the simulator's speed-up in sim mode: simulated seconds per
// real second. Ring, talk, timeouts, playback and the heartbeat all run that
// much faster.
const simTimeScale = 10

// Target is the event socket a test talks to: a simulator started for the
// test, or the real FreeSWITCH named by FREESWITCH_ESL_ADDR.
type Target struct {
	t        *testing.T
	Addr     string
	Password string
	Real     bool
	// Wait is a generous upper bound for anything the test waits for. The
	// tests never assert timing, only order and content.
	Wait time.Duration
}

// realAddr is the real FreeSWITCH to test, or "" for sim mode.
func realAddr() string { return os.Getenv("FREESWITCH_ESL_ADDR") }

// newTarget returns the target for a test that only touches its own channels.
// It marks the test parallel.
func newTarget(t *testing.T) *Target {
	t.Helper()
	t.Parallel()
	return startTarget(t)
}

// newGlobalTarget returns the target for a test that changes or depends on
// switch-wide state (fsctl, hupall, show channels). In sim mode every test has
// its own simulator, so it runs in parallel like the others; against a real
// FreeSWITCH it runs serially (Go runs non-parallel top-level tests before it
// releases the parallel ones), so no other test's channels are up.
func newGlobalTarget(t *testing.T) *Target {
	t.Helper()
	if realAddr() == "" {
		t.Parallel()
	}
	return startTarget(t)
}

func startTarget(t *testing.T) *Target {
	t.Helper()
	if addr := realAddr(); addr != "" {
		pw := os.Getenv("FREESWITCH_ESL_PASSWORD")
		if pw == "" {
			pw = "ClueCon"
		}
		return &Target{t: t, Addr: addr, Password: pw, Real: true, Wait: 40 * time.Second}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := sim.Start(ctx, sim.Config{
		ESLAddr:     "127.0.0.1:0",
		ControlAddr: "127.0.0.1:0",
		Password:    "ClueCon",
		TimeScale:   simTimeScale,
		Seed:        1,
	})
	if err != nil {
		cancel()
		t.Fatalf("sim.Start: %v", err)
	}
	t.Cleanup(func() {
		s.Close()
		cancel()
	})
	return &Target{t: t, Addr: s.ESLAddr(), Password: "ClueCon", Wait: 10 * time.Second}
}

// With returns the same target bound to another (sub)test, so that failures
// and cleanups of connections it opens belong to that test.
func (tg *Target) With(t *testing.T) *Target {
	c := *tg
	c.t = t
	return &c
}

// Dial connects and checks the auth/request greeting, without logging in.
func (tg *Target) Dial() *Conn {
	tg.t.Helper()
	c := dialRaw(tg.t, tg.Addr, tg.Wait)
	f, err := c.WaitFrame(tg.Wait, func(*Frame) bool { return true })
	if err != nil {
		tg.t.Fatalf("no greeting: %v", err)
	}
	if string(f.Raw) != "Content-Type: auth/request\n\n" {
		tg.t.Fatalf("greeting: want exactly %q, got %q", "Content-Type: auth/request\n\n", f.Raw)
	}
	return c
}

// Login connects and authenticates.
func (tg *Target) Login() *Conn {
	tg.t.Helper()
	c := tg.Dial()
	f := c.Cmd("auth " + tg.Password)
	if f.ContentType() != "command/reply" || f.ReplyText() != "+OK accepted" {
		tg.t.Fatalf("auth: want command/reply +OK accepted, got %s", f)
	}
	return c
}

// SimSleep waits for the given simulated duration (scaled in sim mode). It is
// only used to let something that must NOT happen have its chance to happen.
func (tg *Target) SimSleep(d time.Duration) {
	if !tg.Real {
		d /= simTimeScale
	}
	time.Sleep(d)
}

// newUUID returns a random version-4 UUID, so that every test uses its own
// origination_uuid and Job-UUID values.
func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Numbers of the default far-end scenario (keyed on the dialed number's
// ending; the real-mode far end behind gateway "carrier" behaves the same).
const (
	numBusy     = "15551230486" // 486 -> USER_BUSY
	numNoAnswer = "15551230408" // rings forever -> NO_ANSWER at originate_timeout
	numCongest  = "15551230503" // 503 -> NORMAL_TEMPORARY_FAILURE
	numUnalloc  = "15551230404" // 404 -> UNALLOCATED_NUMBER
	numUnavail  = "15551230480" // 480 -> NO_USER_RESPONSE
	numReject   = "15551230600" // 603 -> CALL_REJECTED
	numAnswer   = "15551230000" // answers after 100 ms, stays up
	numAnswerB  = "15551240000" // a second stays-up number (B legs)
	numBye      = "15551230002" // answers, far end sends BYE after 2 s
	numDTMF     = "15551230095" // answers, sends DTMF 1,9,5 from 1 s after answer
)

// carrier is the dial string of a number through gateway "carrier".
func carrier(number string) string { return "sofia/gateway/carrier/" + number }

// okUUID checks an originate reply "+OK <uuid>\n" and returns the uuid.
func okUUID(t *testing.T, what, body string) string {
	t.Helper()
	m := regexp.MustCompile(`^\+OK ([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\n$`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("%s: want \"+OK <uuid>\\n\", got %q", what, body)
	}
	return m[1]
}

// wantBody compares an api/response body exactly.
func wantBody(t *testing.T, what, got, want string) {
	t.Helper()
	if got != want {
		t.Errorf("%s: want body %q, got %q", what, want, got)
	}
}

// ofUUID selects the events of one channel.
func ofUUID(evs []*Event, uid string) []*Event {
	var out []*Event
	for _, e := range evs {
		if e.UID() == uid {
			out = append(out, e)
		}
	}
	return out
}

// names lists Event-Name values.
func names(evs []*Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Name()
	}
	return out
}

// isEvent builds a predicate for an event name on a channel ("" = any channel).
func isEvent(name, uid string) func(*Event) bool {
	return func(e *Event) bool {
		return e.Name() == name && (uid == "" || e.UID() == uid)
	}
}

// firstIndex returns the arrival index of the first event matching pred, or -1.
func firstIndex(evs []*Event, pred func(*Event) bool) int {
	for _, e := range evs {
		if pred(e) {
			return e.Index()
		}
	}
	return -1
}

// countEvents counts events matching pred.
func countEvents(evs []*Event, pred func(*Event) bool) int {
	n := 0
	for _, e := range evs {
		if pred(e) {
			n++
		}
	}
	return n
}

// hangupComplete waits for a channel's CHANNEL_HANGUP_COMPLETE.
func hangupComplete(c *Conn, uid string) *Event {
	return c.WaitEvent("CHANNEL_HANGUP_COMPLETE of "+uid, isEvent("CHANNEL_HANGUP_COMPLETE", uid))
}

// wantHeader checks one header of an event.
func wantHeader(t *testing.T, e *Event, name, want string) {
	t.Helper()
	if got := e.Get(name); got != want || !e.Has(name) {
		if !e.Has(name) {
			t.Errorf("%s %s: header %s missing, want %q", e.Name(), e.UID(), name, want)
			return
		}
		t.Errorf("%s %s: %s = %q, want %q", e.Name(), e.UID(), name, got, want)
	}
}

// wantNoHeader checks that an event lacks a header.
func wantNoHeader(t *testing.T, e *Event, name string) {
	t.Helper()
	if e.Has(name) {
		t.Errorf("%s %s: header %s = %q present, the capture has none", e.Name(), e.UID(), name, e.Get(name))
	}
}

// wantUint checks that a header is an unsigned integer and returns it.
func wantUint(t *testing.T, e *Event, name string) uint64 {
	t.Helper()
	v := e.Get(name)
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		t.Errorf("%s %s: %s = %q, want an unsigned integer", e.Name(), e.UID(), name, v)
	}
	return n
}

// statusValue extracts a number from `api status` output with a regexp of one
// group.
func statusValue(t *testing.T, status, re string) int {
	t.Helper()
	m := regexp.MustCompile(re).FindStringSubmatch(status)
	if m == nil {
		t.Fatalf("api status: %q not found in %q", re, status)
	}
	n, err := strconv.Atoi(m[1])
	if err != nil {
		t.Fatalf("api status: %v", err)
	}
	return n
}

// disconnectBody is the exact text/disconnect-notice body (67 bytes).
const disconnectBody = "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"

// plainDisconnect is the exact disconnect notice of a connection that does
// not control a session.
const plainDisconnect = "Content-Type: text/disconnect-notice\nContent-Length: 67\n\n" + disconnectBody

// waitDisconnect waits for the next text/disconnect-notice frame.
func waitDisconnect(t *testing.T, c *Conn, wait time.Duration) *Frame {
	t.Helper()
	f, err := c.WaitFrame(wait, func(f *Frame) bool { return f.ContentType() == "text/disconnect-notice" })
	if err != nil {
		t.Fatalf("waiting for text/disconnect-notice: %v", err)
	}
	return f
}

// wantCleanClose waits for the server to close the connection after whole
// frames only.
func wantCleanClose(t *testing.T, c *Conn, wait time.Duration) {
	t.Helper()
	if err := c.WaitClosed(wait); !errors.Is(err, io.EOF) {
		t.Errorf("want the server to close the connection cleanly (EOF after whole frames), got %v", err)
	}
}
