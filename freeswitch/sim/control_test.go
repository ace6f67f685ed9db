package sim_test

// Tests of the HTTP control API (control.go), driven from outside the
// package: the simulator is started with sim.Start and observed through the
// control API and a small raw event-socket client defined here (shared with
// inbound_test.go and faults_test.go).

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ringback/ringback/freeswitch/sim"
)

// waitLimit bounds every wait in these tests. It is generous: waits end as
// soon as what they wait for happens.
const waitLimit = 10 * time.Second

// startTestSim starts a simulator on ephemeral ports, closed when the test
// ends.
func startTestSim(t testing.TB) *sim.Sim {
	t.Helper()
	s, err := sim.Start(context.Background(), sim.Config{ESLAddr: "127.0.0.1:0", ControlAddr: "127.0.0.1:0", TimeScale: 10})
	if err != nil {
		t.Fatalf("sim.Start: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// testUUID returns a random version-4 UUID.
func testUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// waitUntil polls cond until it holds or waitLimit passes.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ---------------------------------------------------------------------------
// Control API client

// ctlHTTP keeps no idle connections, so no client goroutine outlives a test.
var ctlHTTP = &http.Client{Timeout: waitLimit, Transport: &http.Transport{DisableKeepAlives: true}}

// ctlDo sends a request to the control API and returns the status and the
// raw body.
func ctlDo(t testing.TB, s *sim.Sim, method, path, body string) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.ControlURL()+path, rd)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	resp, err := ctlHTTP.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s %s: Content-Type %q, want application/json", method, path, ct)
	}
	return resp.StatusCode, data
}

// ctlJSON is ctlDo decoding a JSON object response.
func ctlJSON(t testing.TB, s *sim.Sim, method, path, body string) (int, map[string]any) {
	t.Helper()
	code, data := ctlDo(t, s, method, path, body)
	var out map[string]any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("%s %s: response %q is not a JSON object: %v", method, path, data, err)
	}
	return code, out
}

// ctlExpectError checks a {"error": code, "message": ...} response.
func ctlExpectError(t testing.TB, s *sim.Sim, method, path, body string, wantStatus int, wantCode string) {
	t.Helper()
	code, out := ctlJSON(t, s, method, path, body)
	if code != wantStatus || out["error"] != wantCode {
		t.Fatalf("%s %s %s: got %d %v, want %d with error %s", method, path, body, code, out, wantStatus, wantCode)
	}
	if msg, _ := out["message"].(string); msg == "" {
		t.Errorf("%s %s: error response without a message: %v", method, path, out)
	}
}

// ctlChannels is GET /channels.
func ctlChannels(t testing.TB, s *sim.Sim) []sim.ChannelInfo {
	t.Helper()
	code, data := ctlDo(t, s, "GET", "/channels", "")
	if code != http.StatusOK {
		t.Fatalf("GET /channels: status %d: %s", code, data)
	}
	var out struct {
		Channels []sim.ChannelInfo `json:"channels"`
	}
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("GET /channels: %v in %s", err, data)
	}
	if out.Channels == nil {
		t.Fatalf("GET /channels: no channels array in %s", data)
	}
	return out.Channels
}

// findChannel returns the channel with that uuid in a listing, or nil.
func findChannel(chans []sim.ChannelInfo, uuid string) *sim.ChannelInfo {
	for i := range chans {
		if chans[i].UUID == uuid {
			return &chans[i]
		}
	}
	return nil
}

// waitChannelGone waits until GET /channels no longer lists uuid.
func waitChannelGone(t testing.TB, s *sim.Sim, uuid string) {
	t.Helper()
	waitUntil(t, "channel "+uuid+" to leave GET /channels", func() bool {
		return findChannel(ctlChannels(t, s), uuid) == nil
	})
}

// ctlCounters is GET /counters.
func ctlCounters(t testing.TB, s *sim.Sim) map[string]int64 {
	t.Helper()
	code, data := ctlDo(t, s, "GET", "/counters", "")
	if code != http.StatusOK {
		t.Fatalf("GET /counters: status %d: %s", code, data)
	}
	var out map[string]int64
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("GET /counters: %v in %s", err, data)
	}
	return out
}

// ---------------------------------------------------------------------------
// Raw event-socket client

// eslFrame is one frame: its outer header block (values as on the wire) and
// its Content-Length body.
type eslFrame struct {
	headers [][2]string
	body    []byte
}

func (f *eslFrame) get(name string) string {
	for _, h := range f.headers {
		if h[0] == name {
			return h[1]
		}
	}
	return ""
}

func (f *eslFrame) contentType() string { return f.get("Content-Type") }

func (f *eslFrame) isReply() bool {
	ct := f.contentType()
	return ct == "command/reply" || ct == "api/response"
}

func (f *eslFrame) String() string {
	var b strings.Builder
	for _, h := range f.headers {
		fmt.Fprintf(&b, "%s: %s\n", h[0], h[1])
	}
	body := string(f.body)
	if len(body) > 300 {
		body = body[:300] + "..."
	}
	fmt.Fprintf(&b, "\n%s", body)
	return strconv.Quote(b.String())
}

// eslEvent is a parsed text/event-json or text/event-plain frame: header
// names to (URL-decoded) values, the body under "_body", the frame's
// Content-Type under "_content_type".
type eslEvent map[string]string

func (e eslEvent) name() string { return e["Event-Name"] }

func (e eslEvent) String() string {
	return fmt.Sprintf("%s uuid=%s", e["Event-Name"], e["Unique-ID"])
}

// parseEvent parses an event frame; ok is false for other frames.
func parseEvent(f *eslFrame) (eslEvent, bool, error) {
	switch f.contentType() {
	case "text/event-json":
		var raw map[string]any
		if err := json.Unmarshal(f.body, &raw); err != nil {
			return nil, true, fmt.Errorf("bad JSON event %s: %v", f, err)
		}
		ev := eslEvent{"_content_type": f.contentType()}
		for k, v := range raw {
			if s, ok := v.(string); ok {
				ev[k] = s
			} else {
				ev[k] = fmt.Sprint(v)
			}
		}
		return ev, true, nil
	case "text/event-plain":
		ev := eslEvent{"_content_type": f.contentType()}
		rest := string(f.body)
		for {
			line, more, found := strings.Cut(rest, "\n")
			if !found {
				return nil, true, fmt.Errorf("plain event without a blank line: %s", f)
			}
			rest = more
			if line == "" {
				break
			}
			k, v, _ := strings.Cut(line, ": ")
			if dv, err := url.PathUnescape(v); err == nil {
				v = dv
			}
			if _, dup := ev[k]; !dup {
				ev[k] = v
			}
		}
		if _, ok := ev["Content-Length"]; ok {
			ev["_body"] = rest
		}
		return ev, true, nil
	}
	return nil, false, nil
}

// eslClient is a raw event-socket connection. Frames read while waiting for
// something else (events before a reply, replies while waiting for events)
// are kept in order and handed out later.
type eslClient struct {
	t       testing.TB
	nc      net.Conn
	br      *bufio.Reader
	pending []*eslFrame
	events  []eslEvent // every event parsed on this connection, in order
}

func newESLClient(t testing.TB, nc net.Conn) *eslClient {
	t.Cleanup(func() { nc.Close() })
	return &eslClient{t: t, nc: nc, br: bufio.NewReader(nc)}
}

// dialESL connects to the simulator's event socket and authenticates.
func dialESL(t testing.TB, s *sim.Sim) *eslClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", s.ESLAddr(), waitLimit)
	if err != nil {
		t.Fatalf("dial event socket: %v", err)
	}
	c := newESLClient(t, nc)
	if f := c.next(); f.contentType() != "auth/request" {
		t.Fatalf("expected auth/request, got %s", f)
	}
	if r := c.cmd("auth ClueCon"); r.get("Reply-Text") != "+OK accepted" {
		t.Fatalf("auth: %s", r)
	}
	return c
}

// readFrame reads one frame from the socket.
func (c *eslClient) readFrame() (*eslFrame, error) {
	return c.readFrameBy(time.Now().Add(waitLimit))
}

// readFrameBy reads one frame from the socket, failing at deadline.
func (c *eslClient) readFrameBy(deadline time.Time) (*eslFrame, error) {
	c.nc.SetReadDeadline(deadline)
	f := &eslFrame{}
	for {
		line, err := c.br.ReadString('\n')
		if err != nil {
			if err == io.EOF && (len(f.headers) > 0 || line != "") {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			if len(f.headers) == 0 {
				continue
			}
			break
		}
		k, v, _ := strings.Cut(line, ":")
		f.headers = append(f.headers, [2]string{k, strings.TrimPrefix(v, " ")})
	}
	if cl := f.get("Content-Length"); cl != "" {
		n, err := strconv.Atoi(cl)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("bad Content-Length in %s", f)
		}
		f.body = make([]byte, n)
		if _, err := io.ReadFull(c.br, f.body); err != nil {
			return nil, fmt.Errorf("reading %d-byte body: %w", n, err)
		}
	}
	return f, nil
}

// next returns the next frame, pending ones first.
func (c *eslClient) next() *eslFrame {
	c.t.Helper()
	if len(c.pending) > 0 {
		f := c.pending[0]
		c.pending = c.pending[1:]
		return f
	}
	f, err := c.readFrame()
	if err != nil {
		c.t.Fatalf("reading a frame: %v", err)
	}
	if ev, ok, err := parseEvent(f); ok {
		if err != nil {
			c.t.Fatal(err)
		}
		c.events = append(c.events, ev)
	}
	return f
}

// send writes a command (its lines separated by "\n") and the blank line.
func (c *eslClient) send(cmd string) {
	c.t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(waitLimit))
	if _, err := io.WriteString(c.nc, cmd+"\n\n"); err != nil {
		c.t.Fatalf("send %q: %v", cmd, err)
	}
}

// reply returns the next command/reply or api/response, keeping the frames
// before it for later.
func (c *eslClient) reply() *eslFrame {
	c.t.Helper()
	for i, f := range c.pending {
		if f.isReply() {
			c.pending = append(c.pending[:i:i], c.pending[i+1:]...)
			return f
		}
	}
	var skipped []*eslFrame
	for {
		f, err := c.readFrame()
		if err != nil {
			c.t.Fatalf("waiting for a reply: %v", err)
		}
		if ev, ok, err := parseEvent(f); ok {
			if err != nil {
				c.t.Fatal(err)
			}
			c.events = append(c.events, ev)
		}
		if f.isReply() {
			c.pending = append(c.pending, skipped...)
			return f
		}
		skipped = append(skipped, f)
	}
}

// cmd sends a command and returns its reply.
func (c *eslClient) cmd(cmd string) *eslFrame {
	c.t.Helper()
	c.send(cmd)
	return c.reply()
}

// cmdOK sends a command and checks its Reply-Text.
func (c *eslClient) cmdOK(cmd, want string) {
	c.t.Helper()
	if r := c.cmd(cmd); r.contentType() != "command/reply" || r.get("Reply-Text") != want {
		c.t.Fatalf("%q: got %s, want Reply-Text %q", cmd, r, want)
	}
}

// api runs `api <cmd>` and returns the response body.
func (c *eslClient) api(cmd string) string {
	c.t.Helper()
	r := c.cmd("api " + cmd)
	if r.contentType() != "api/response" {
		c.t.Fatalf("api %s: got %s, want an api/response", cmd, r)
	}
	return string(r.body)
}

// nextEvent returns the next event frame, skipping other frames.
func (c *eslClient) nextEvent() eslEvent {
	c.t.Helper()
	for {
		f := c.next()
		if ev, ok, _ := parseEvent(f); ok {
			return ev
		}
	}
}

// waitEvent returns the first not yet consumed event for which match holds.
// The frames before it stay queued, in order, for later reads; they are
// also returned as events.
func (c *eslClient) waitEvent(what string, match func(eslEvent) bool) (eslEvent, []eslEvent) {
	c.t.Helper()
	var skippedFrames []*eslFrame
	var skipped []eslEvent
	defer func() { c.pending = append(skippedFrames, c.pending...) }()
	deadline := time.Now().Add(waitLimit)
	for time.Now().Before(deadline) {
		f := c.next()
		ev, ok, _ := parseEvent(f)
		if ok && match(ev) {
			return ev, skipped
		}
		skippedFrames = append(skippedFrames, f)
		if ok {
			skipped = append(skipped, ev)
		}
	}
	c.t.Fatalf("timed out waiting for %s; saw %v", what, skipped)
	return nil, nil
}

// waitNamed waits for an event of that name on that channel.
func (c *eslClient) waitNamed(name, uuid string) (eslEvent, []eslEvent) {
	c.t.Helper()
	return c.waitEvent(name+" for "+uuid, func(ev eslEvent) bool {
		return ev.name() == name && ev["Unique-ID"] == uuid
	})
}

// expectEOF reads until the connection ends and checks it ended with EOF,
// without a goodbye. With allowEvents, events written before the drop may
// come first; otherwise the very next read must hit EOF.
func (c *eslClient) expectEOF(allowEvents bool) {
	c.t.Helper()
	c.pending = nil
	for {
		f, err := c.readFrame()
		if err == nil {
			if _, isEvent, _ := parseEvent(f); !isEvent || !allowEvents {
				c.t.Fatalf("expected EOF, got %s", f)
			}
			continue
		}
		if !errors.Is(err, io.EOF) {
			c.t.Fatalf("expected EOF, got %v", err)
		}
		return
	}
}

// originatePark originates a gateway call to number with a fresh
// origination_uuid and parks it, as `api originate` does (it blocks until
// the far end answers); it returns the uuid.
func originatePark(t testing.TB, c *eslClient, number string) string {
	t.Helper()
	uuid := testUUID()
	if got := c.api("originate {origination_uuid=" + uuid + "}sofia/gateway/carrier/" + number + " &park"); got != "+OK "+uuid+"\n" {
		t.Fatalf("originate %s: got %q, want +OK %s", number, got, uuid)
	}
	return uuid
}

// bgOriginatePark starts an originate of a number that rings forever (the
// Default scenario's ...408) with bgapi and returns the channel uuid and the
// Job-UUID. It returns once the channel exists.
func bgOriginatePark(t testing.TB, s *sim.Sim, c *eslClient, number string) (string, string) {
	t.Helper()
	uuid := testUUID()
	r := c.cmd("bgapi originate {origination_uuid=" + uuid + "}sofia/gateway/carrier/" + number + " &park")
	job := r.get("Job-UUID")
	if job == "" || r.get("Reply-Text") != "+OK Job-UUID: "+job {
		t.Fatalf("bgapi originate: %s", r)
	}
	waitUntil(t, "ringing channel "+uuid, func() bool {
		ch := findChannel(ctlChannels(t, s), uuid)
		return ch != nil && ch.CallState == "RINGING"
	})
	return uuid, job
}

// ---------------------------------------------------------------------------
// Tests

func TestControlHealthz(t *testing.T) {
	t.Parallel()
	s := startTestSim(t)
	code, out := ctlJSON(t, s, "GET", "/healthz", "")
	if code != http.StatusOK || out["status"] != "ok" {
		t.Fatalf("GET /healthz: %d %v", code, out)
	}
	core, _ := out["core_uuid"].(string)
	if len(core) != 36 || strings.Count(core, "-") != 4 {
		t.Fatalf("core_uuid %q is not a UUID", core)
	}
	// The same Core-UUID is on events and in the core_uuid global.
	c := dialESL(t, s)
	if got := c.api("global_getvar core_uuid"); got != core {
		t.Errorf("global_getvar core_uuid = %q, healthz says %q", got, core)
	}
	c.cmdOK("event json CUSTOM test::ping", "+OK event listener enabled json")
	if r := c.cmd("sendevent CUSTOM\nEvent-Subclass: test::ping"); !strings.HasPrefix(r.get("Reply-Text"), "+OK ") {
		t.Fatalf("sendevent: %s", r)
	}
	if ev := c.nextEvent(); ev["Event-Subclass"] != "test::ping" || ev["Core-UUID"] != core {
		t.Errorf("event %v: Event-Subclass %q Core-UUID %q, want test::ping %s", ev, ev["Event-Subclass"], ev["Core-UUID"], core)
	}
}

func TestControlChannels(t *testing.T) {
	t.Parallel()
	s := startTestSim(t)
	if chans := ctlChannels(t, s); len(chans) != 0 {
		t.Fatalf("a new simulator lists channels: %+v", chans)
	}
	c := dialESL(t, s)
	uuid := originatePark(t, c, "15551230000")

	var ch *sim.ChannelInfo
	waitUntil(t, "the parked channel in CS_EXECUTE", func() bool {
		ch = findChannel(ctlChannels(t, s), uuid)
		return ch != nil && ch.State == "CS_EXECUTE"
	})
	checks := []struct{ field, got, want string }{
		{"name", ch.Name, "sofia/external/15551230000"},
		{"direction", ch.Direction, "outbound"},
		{"call_state", ch.CallState, "ACTIVE"},
		{"answer_state", ch.AnswerState, "answered"},
		{"destination", ch.Destination, "15551230000"},
		{"variables.origination_uuid", ch.Variables["origination_uuid"], uuid},
		{"variables.uuid", ch.Variables["uuid"], uuid},
		{"variables.direction", ch.Variables["direction"], "outbound"},
	}
	for _, k := range checks {
		if k.got != k.want {
			t.Errorf("GET /channels %s = %q, want %q", k.field, k.got, k.want)
		}
	}
	if ch.Created.IsZero() {
		t.Errorf("GET /channels: created is zero")
	}
	// The Go API agrees with the HTTP one.
	if got := findChannel(s.Channels(), uuid); got == nil || got.State != ch.State {
		t.Errorf("Sim.Channels() = %+v, want the channel listed by GET /channels", s.Channels())
	}

	// A second channel is listed after the first (oldest first).
	uuid2 := originatePark(t, c, "15559870000")
	chans := ctlChannels(t, s)
	if len(chans) != 2 || chans[0].UUID != uuid || chans[1].UUID != uuid2 {
		t.Fatalf("GET /channels = %+v, want [%s %s]", chans, uuid, uuid2)
	}
}

func TestControlHangup(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		ringing   bool   // a leg that is still ringing (bgapi originate)
		body      string // request body
		wantCause string
	}{
		{name: "answered leg, USER_BUSY", body: `{"cause":"USER_BUSY"}`, wantCause: "USER_BUSY"},
		{name: "answered leg, no body", body: "", wantCause: "NORMAL_CLEARING"},
		{name: "answered leg, empty cause", body: `{}`, wantCause: "NORMAL_CLEARING"},
		{name: "ringing leg, CALL_REJECTED", ringing: true, body: `{"cause":"CALL_REJECTED"}`, wantCause: "CALL_REJECTED"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startTestSim(t)
			l := dialESL(t, s)
			l.cmdOK("event json CHANNEL_HANGUP_COMPLETE BACKGROUND_JOB", "+OK event listener enabled json")
			var uuid, job string
			if tc.ringing {
				uuid, job = bgOriginatePark(t, s, l, "15551230408")
			} else {
				uuid = originatePark(t, l, "15551230000")
			}
			code, out := ctlJSON(t, s, "POST", "/channels/"+uuid+"/hangup", tc.body)
			if code != http.StatusOK || out["uuid"] != uuid || out["action"] != "hangup" {
				t.Fatalf("POST hangup: %d %v", code, out)
			}
			ev, _ := l.waitNamed("CHANNEL_HANGUP_COMPLETE", uuid)
			if ev["Hangup-Cause"] != tc.wantCause || ev["variable_hangup_cause"] != tc.wantCause {
				t.Errorf("CHANNEL_HANGUP_COMPLETE Hangup-Cause %q, variable_hangup_cause %q; want %s",
					ev["Hangup-Cause"], ev["variable_hangup_cause"], tc.wantCause)
			}
			if tc.ringing {
				bj, _ := l.waitEvent("BACKGROUND_JOB "+job, func(ev eslEvent) bool {
					return ev.name() == "BACKGROUND_JOB" && ev["Job-UUID"] == job
				})
				if want := "-ERR " + tc.wantCause + "\n"; bj["_body"] != want {
					t.Errorf("BACKGROUND_JOB body %q, want %q", bj["_body"], want)
				}
			} else if ev["variable_sip_hangup_disposition"] != "recv_bye" {
				t.Errorf("far-end hangup after answer: sip_hangup_disposition %q, want recv_bye", ev["variable_sip_hangup_disposition"])
			}
			waitChannelGone(t, s, uuid)
			// Hanging up a channel that is gone is a 404.
			ctlExpectError(t, s, "POST", "/channels/"+uuid+"/hangup", `{"cause":"USER_BUSY"}`, http.StatusNotFound, "NO_SUCH_CHANNEL")
		})
	}
}

// TestControlChannelErrors checks the control API's refusals; none of them
// may affect the live channel they target.
func TestControlChannelErrors(t *testing.T) {
	t.Parallel()
	s := startTestSim(t)
	c := dialESL(t, s)
	live := originatePark(t, c, "15551230000")
	unknown := testUUID()
	cases := []struct {
		name   string
		path   string
		body   string
		status int
		code   string
	}{
		{"bad cause", "/channels/" + live + "/hangup", `{"cause":"NOT_A_CAUSE"}`, 400, "BAD_CAUSE"},
		{"lower-case cause", "/channels/" + live + "/hangup", `{"cause":"user_busy"}`, 400, "BAD_CAUSE"},
		{"hangup unknown uuid", "/channels/" + unknown + "/hangup", `{"cause":"USER_BUSY"}`, 404, "NO_SUCH_CHANNEL"},
		{"answer unknown uuid", "/channels/" + unknown + "/answer", "", 404, "NO_SUCH_CHANNEL"},
		{"dtmf unknown uuid", "/channels/" + unknown + "/dtmf", `{"digits":"1"}`, 404, "NO_SUCH_CHANNEL"},
		{"bad digits", "/channels/" + live + "/dtmf", `{"digits":"12x"}`, 400, "BAD_DIGITS"},
		{"space in digits", "/channels/" + live + "/dtmf", `{"digits":"1 2"}`, 400, "BAD_DIGITS"},
		{"empty digits", "/channels/" + live + "/dtmf", `{"digits":""}`, 400, "BAD_DIGITS"},
		{"no digits", "/channels/" + live + "/dtmf", "", 400, "BAD_DIGITS"},
		{"malformed JSON hangup", "/channels/" + live + "/hangup", `{"cause":`, 400, "BAD_REQUEST"},
		{"malformed JSON dtmf", "/channels/" + live + "/dtmf", `digits=12`, 400, "BAD_REQUEST"},
		{"malformed JSON answer", "/channels/" + live + "/answer", `[1,2`, 400, "BAD_REQUEST"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctlExpectError(t, s, "POST", tc.path, tc.body, tc.status, tc.code)
		})
	}
	t.Cleanup(func() {
		// After every refusal the channel is still up and nothing was
		// pressed on it.
		if got := c.api("uuid_exists " + live); got != "true" {
			t.Errorf("uuid_exists %s after refused requests = %q, want true", live, got)
		}
		ch := findChannel(ctlChannels(t, s), live)
		if ch == nil || ch.AnswerState != "answered" {
			t.Errorf("channel after refused requests: %+v", ch)
		}
	})
}

func TestControlAnswer(t *testing.T) {
	t.Parallel()
	s := startTestSim(t)
	l := dialESL(t, s)
	l.cmdOK("event json CHANNEL_ANSWER BACKGROUND_JOB", "+OK event listener enabled json")
	uuid, job := bgOriginatePark(t, s, l, "15551230408")

	ch := findChannel(ctlChannels(t, s), uuid)
	if ch.AnswerState != "ringing" {
		t.Fatalf("before POST answer: answer_state %q, want ringing", ch.AnswerState)
	}
	code, out := ctlJSON(t, s, "POST", "/channels/"+uuid+"/answer", "")
	if code != http.StatusOK || out["uuid"] != uuid || out["action"] != "answer" {
		t.Fatalf("POST answer: %d %v", code, out)
	}
	ans, _ := l.waitNamed("CHANNEL_ANSWER", uuid)
	if ans["Answer-State"] != "answered" || ans["Call-Direction"] != "outbound" {
		t.Errorf("CHANNEL_ANSWER: Answer-State %q Call-Direction %q", ans["Answer-State"], ans["Call-Direction"])
	}
	bj, _ := l.waitEvent("BACKGROUND_JOB "+job, func(ev eslEvent) bool {
		return ev.name() == "BACKGROUND_JOB" && ev["Job-UUID"] == job
	})
	if want := "+OK " + uuid + "\n"; bj["_body"] != want {
		t.Errorf("BACKGROUND_JOB body %q, want %q", bj["_body"], want)
	}
	if bj["Job-Command"] != "originate" {
		t.Errorf("BACKGROUND_JOB Job-Command %q, want originate", bj["Job-Command"])
	}
	waitUntil(t, "the answered channel to be listed as answered and parked", func() bool {
		ch := findChannel(ctlChannels(t, s), uuid)
		return ch != nil && ch.AnswerState == "answered" && ch.CallState == "ACTIVE" && ch.State == "CS_EXECUTE"
	})
	// Answering again changes nothing and fires no second CHANNEL_ANSWER.
	if code, out := ctlJSON(t, s, "POST", "/channels/"+uuid+"/answer", ""); code != http.StatusOK {
		t.Fatalf("second POST answer: %d %v", code, out)
	}
	if got := l.api("uuid_kill " + uuid); got != "+OK\n" {
		t.Fatalf("uuid_kill: %q", got)
	}
	l.cmdOK("event json CHANNEL_HANGUP_COMPLETE", "+OK event listener enabled json")
	waitChannelGone(t, s, uuid)
	for _, ev := range l.events {
		if ev.name() == "CHANNEL_ANSWER" && ev["Unique-ID"] == uuid && ev["Event-Sequence"] != ans["Event-Sequence"] {
			t.Errorf("a second CHANNEL_ANSWER: %v", ev)
		}
	}
}

func TestControlDTMF(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, body string
		digits     string
		source     string
	}{
		{"default source", `{"digits":"12#"}`, "12#", "RTP"},
		{"SIP INFO", `{"digits":"*0D","source":"ENDPOINT"}`, "*0D", "ENDPOINT"},
		{"lower-case letters", `{"digits":"a9"}`, "a9", "RTP"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startTestSim(t)
			l := dialESL(t, s)
			l.cmdOK("event json DTMF", "+OK event listener enabled json")
			uuid := originatePark(t, l, "15551230000")
			code, out := ctlJSON(t, s, "POST", "/channels/"+uuid+"/dtmf", tc.body)
			if code != http.StatusOK || out["uuid"] != uuid || out["action"] != "dtmf" {
				t.Fatalf("POST dtmf: %d %v", code, out)
			}
			for i := 0; i < len(tc.digits); i++ {
				ev := l.nextEvent()
				if ev.name() != "DTMF" || ev["Unique-ID"] != uuid {
					t.Fatalf("event %d: %v, want DTMF for %s", i, ev, uuid)
				}
				if ev["DTMF-Digit"] != tc.digits[i:i+1] || ev["DTMF-Source"] != tc.source {
					t.Errorf("DTMF %d: digit %q source %q, want %q %q", i, ev["DTMF-Digit"], ev["DTMF-Source"], tc.digits[i:i+1], tc.source)
				}
			}
		})
	}
}

func TestControlScenario(t *testing.T) {
	t.Parallel()
	t.Run("load", func(t *testing.T) {
		t.Parallel()
		cases := []struct{ name, body string }{
			{"yaml", "name: all-busy\nrules: [{match: \".\", kind: busy}]\n"},
			{"json", `{"name":"all-busy","rules":[{"match":".","kind":"busy"}]}`},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				s := startTestSim(t)
				c := dialESL(t, s)
				code, out := ctlJSON(t, s, "PUT", "/scenario", tc.body)
				if code != http.StatusOK || out["loaded"] != "all-busy" || out["rules"] != float64(1) {
					t.Fatalf("PUT /scenario: %d %v", code, out)
				}
				if got := c.api("originate sofia/gateway/carrier/15551230000 &park"); got != "-ERR USER_BUSY\n" {
					t.Errorf("originate after loading an all-busy scenario: %q, want -ERR USER_BUSY", got)
				}
				code, data := ctlDo(t, s, "GET", "/scenario", "")
				if code != http.StatusOK || !bytes.Contains(data, []byte("all-busy")) || !bytes.Contains(data, []byte("busy")) {
					t.Errorf("GET /scenario after PUT: %d %s", code, data)
				}
			})
		}
	})
	t.Run("invalid", func(t *testing.T) {
		t.Parallel()
		s := startTestSim(t)
		if code, out := ctlJSON(t, s, "PUT", "/scenario", "rules: [{match: \".\", kind: busy}]\n"); code != http.StatusOK {
			t.Fatalf("PUT /scenario: %d %v", code, out)
		}
		cases := []struct{ name, body string }{
			{"unknown kind", "rules: [{match: \".\", kind: bogus}]\n"},
			{"bad regexp", "rules: [{match: \"(\", kind: busy}]\n"},
			{"unknown key", "rules: [{match: \".\", kind: busy, colour: red}]\n"},
			{"not YAML", "rules: [{match: \".\", kind: busy\n"},
			{"empty", ""},
			{"ring on no_answer", "rules: [{match: \".\", kind: no_answer, ring: 1s}]\n"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				ctlExpectError(t, s, "PUT", "/scenario", tc.body, http.StatusBadRequest, "BAD_SCENARIO")
				// The scenario loaded before still applies: all busy.
				c := dialESL(t, s)
				if got := c.api("originate sofia/gateway/carrier/15551230000 &park"); got != "-ERR USER_BUSY\n" {
					t.Errorf("originate after a refused scenario: %q, want -ERR USER_BUSY (the scenario loaded before)", got)
				}
			})
		}
	})
}

func TestControlCounters(t *testing.T) {
	t.Parallel()
	s := startTestSim(t)
	before := ctlCounters(t, s)
	for _, k := range []string{"channels", "originates", "answered", "failed", "events_sent"} {
		if before[k] != 0 {
			t.Errorf("a new simulator: counter %s = %d, want 0", k, before[k])
		}
	}
	l := dialESL(t, s)
	l.cmdOK("event json CHANNEL_ANSWER", "+OK event listener enabled json")
	c := dialESL(t, s)
	uuid := originatePark(t, c, "15551230000")
	if got := c.api("originate sofia/gateway/carrier/15551230486 &park"); got != "-ERR USER_BUSY\n" {
		t.Fatalf("originate ...486: %q, want -ERR USER_BUSY", got)
	}
	l.waitNamed("CHANNEL_ANSWER", uuid)

	var got map[string]int64
	waitUntil(t, "the busy leg to be destroyed", func() bool {
		got = ctlCounters(t, s)
		return got["channels"] == 1
	})
	want := map[string]int64{"channels": 1, "originates": 2, "answered": 1, "failed": 1, "sessions_since_startup": 2}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("counter %s = %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
	if got["esl_connections"] < 2 {
		t.Errorf("esl_connections = %d, want >= 2", got["esl_connections"])
	}
	if got["api_commands"] < 2 {
		t.Errorf("api_commands = %d, want >= 2", got["api_commands"])
	}
	if got["events_sent"] < 1 {
		t.Errorf("events_sent = %d, want >= 1", got["events_sent"])
	}
}

// TestControlAnswerAnswered: POST answer on a channel the far end already
// answered changes nothing; in particular the scenario's scripted DTMF and
// BYE still happen.
func TestControlAnswerAnswered(t *testing.T) {
	t.Parallel()
	s := startTestSim(t)
	// Talk 10 s and a digit after 2 s: 1 s and 200 ms at this time scale.
	code, out := ctlJSON(t, s, "PUT", "/scenario",
		"rules: [{match: \".\", kind: answer, ring: 100ms, talk: 10s, dtmf: \"7\", dtmf_delay: 2s}]\n")
	if code != http.StatusOK {
		t.Fatalf("PUT /scenario: %d %v", code, out)
	}
	l := dialESL(t, s)
	l.cmdOK("event json DTMF CHANNEL_HANGUP_COMPLETE", "+OK event listener enabled json")
	uuid := originatePark(t, l, "15551230000")
	if code, out := ctlJSON(t, s, "POST", "/channels/"+uuid+"/answer", ""); code != http.StatusOK {
		t.Fatalf("POST answer on an answered channel: %d %v", code, out)
	}
	// Wait up to 30 simulated seconds for the digit and the far end's BYE.
	deadline := time.Now().Add(3 * time.Second)
	var gotDTMF bool
	for {
		if time.Now().After(deadline) {
			t.Fatalf("POST answer on an answered channel cancelled its scripted far end: DTMF seen %v, no BYE after 30 simulated seconds (talk is 10 s)", gotDTMF)
		}
		var f *eslFrame
		if len(l.pending) > 0 {
			f, l.pending = l.pending[0], l.pending[1:]
		} else {
			var err error
			if f, err = l.readFrameBy(deadline); err != nil {
				continue
			}
		}
		ev, ok, _ := parseEvent(f)
		if !ok || ev["Unique-ID"] != uuid {
			continue
		}
		if ev.name() == "DTMF" && ev["DTMF-Digit"] == "7" {
			gotDTMF = true
		}
		if ev.name() == "CHANNEL_HANGUP_COMPLETE" {
			if !gotDTMF {
				t.Errorf("no DTMF 7 before the far end's BYE")
			}
			if ev["Hangup-Cause"] != "NORMAL_CLEARING" || ev["variable_sip_hangup_disposition"] != "recv_bye" {
				t.Errorf("far-end BYE: Hangup-Cause %q sip_hangup_disposition %q", ev["Hangup-Cause"], ev["variable_sip_hangup_disposition"])
			}
			return
		}
	}
}
