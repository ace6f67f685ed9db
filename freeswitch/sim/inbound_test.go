package sim_test

// Tests of inbound calls (POST /calls/inbound, Sim.PlaceInbound): parked for
// inbound event-socket listeners, or routed to an outbound event-socket
// server by the socket application (mod_event_socket's outbound mode; see
// capture 19_outbound_socket).

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ringback/ringback/freeswitch/sim"
)

const (
	inboundCaller = "15557654321"
	inboundDID    = "18005550100"
)

// placeInbound posts an inbound call and returns its uuid.
func placeInbound(t testing.TB, s *sim.Sim, body string) string {
	t.Helper()
	code, out := ctlJSON(t, s, "POST", "/calls/inbound", body)
	uuid, _ := out["uuid"].(string)
	if code != http.StatusOK || uuid == "" {
		t.Fatalf("POST /calls/inbound %s: %d %v", body, code, out)
	}
	return uuid
}

func TestInboundParked(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		answerFirst bool
	}{
		{"controller answers", false},
		{"answer_first", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startTestSim(t)
			l := dialESL(t, s)
			l.cmdOK("event json CHANNEL_CREATE CHANNEL_PARK CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE", "+OK event listener enabled json")
			uuid := placeInbound(t, s, fmt.Sprintf(`{"caller_id_number":%q,"destination_number":%q,"answer_first":%v}`,
				inboundCaller, inboundDID, tc.answerFirst))

			create := l.nextEvent()
			if create.name() != "CHANNEL_CREATE" || create["Unique-ID"] != uuid {
				t.Fatalf("first event %v, want CHANNEL_CREATE for %s", create, uuid)
			}
			if tc.answerFirst {
				if ev := l.nextEvent(); ev.name() != "CHANNEL_ANSWER" || ev["Unique-ID"] != uuid {
					t.Fatalf("second event %v, want CHANNEL_ANSWER (answer_first)", ev)
				}
			}
			park := l.nextEvent()
			if park.name() != "CHANNEL_PARK" || park["Unique-ID"] != uuid {
				t.Fatalf("event %v, want CHANNEL_PARK for %s", park, uuid)
			}
			wantAnswerState := "ringing"
			if tc.answerFirst {
				wantAnswerState = "answered"
			}
			for _, ev := range []eslEvent{create, park} {
				want := map[string]string{
					"Call-Direction":            "inbound",
					"Caller-Direction":          "inbound",
					"Caller-Caller-ID-Number":   inboundCaller,
					"Caller-ANI":                inboundCaller,
					"Caller-Destination-Number": inboundDID,
					"Channel-Call-UUID":         uuid,
				}
				if ev.name() == "CHANNEL_PARK" {
					want["Channel-State"] = "CS_EXECUTE"
					want["Answer-State"] = wantAnswerState
				}
				for k, v := range want {
					if ev[k] != v {
						t.Errorf("%s: %s = %q, want %q", ev.name(), k, ev[k], v)
					}
				}
			}

			ch := findChannel(ctlChannels(t, s), uuid)
			if ch == nil || ch.Direction != "inbound" || ch.Destination != inboundDID || ch.CallerID != inboundCaller {
				t.Fatalf("GET /channels: %+v", ch)
			}

			c := dialESL(t, s)
			if !tc.answerFirst {
				if got := c.api("uuid_answer " + uuid); got != "+OK\n" {
					t.Fatalf("uuid_answer: %q", got)
				}
				if ev := l.nextEvent(); ev.name() != "CHANNEL_ANSWER" || ev["Unique-ID"] != uuid || ev["Answer-State"] != "answered" {
					t.Fatalf("after uuid_answer: %v (Answer-State %q)", ev, ev["Answer-State"])
				}
			}
			if got := c.api("uuid_getvar " + uuid + " destination_number"); got != inboundDID {
				t.Errorf("uuid_getvar destination_number = %q, want %s", got, inboundDID)
			}
			if got := c.api("uuid_kill " + uuid); got != "+OK\n" {
				t.Fatalf("uuid_kill: %q", got)
			}
			hc := l.nextEvent()
			if hc.name() != "CHANNEL_HANGUP_COMPLETE" || hc["Unique-ID"] != uuid || hc["Hangup-Cause"] != "NORMAL_CLEARING" {
				t.Fatalf("after uuid_kill: %v (Hangup-Cause %q)", hc, hc["Hangup-Cause"])
			}
			waitChannelGone(t, s, uuid)
		})
	}
}

// outboundServer is the test's outbound event-socket server: the simulator
// connects to it when a call reaches the socket application.
type outboundServer struct {
	ln *net.TCPListener
}

func newOutboundServer(t testing.TB) *outboundServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return &outboundServer{ln: ln.(*net.TCPListener)}
}

func (o *outboundServer) addr() string { return o.ln.Addr().String() }

// accept waits for the simulator to connect.
func (o *outboundServer) accept(t testing.TB) *eslClient {
	t.Helper()
	o.ln.SetDeadline(time.Now().Add(waitLimit))
	nc, err := o.ln.Accept()
	if err != nil {
		t.Fatalf("the simulator did not connect to the outbound socket server: %v", err)
	}
	return newESLClient(t, nc)
}

// connect sends `connect` and returns the reply's headers, URL-decoded.
func (o *outboundServer) connect(t testing.TB, c *eslClient) map[string]string {
	t.Helper()
	r := c.cmd("connect")
	if r.contentType() != "command/reply" {
		t.Fatalf("connect: got %s, want a command/reply", r)
	}
	if raw := r.get("Reply-Text"); raw != "%2BOK%0A" {
		t.Errorf("connect: raw Reply-Text %q, want %%2BOK%%0A as FreeSWITCH URL-encodes it", raw)
	}
	hs := map[string]string{}
	for _, h := range r.headers {
		v, err := url.PathUnescape(h[1])
		if err != nil {
			t.Errorf("connect reply header %s: %q is not URL-encoded: %v", h[0], h[1], err)
			v = h[1]
		}
		if _, dup := hs[h[0]]; !dup {
			hs[h[0]] = v
		}
	}
	return hs
}

func TestInboundOutboundSocket(t *testing.T) {
	t.Parallel()
	s := startTestSim(t)
	srv := newOutboundServer(t)
	uuid := placeInbound(t, s, fmt.Sprintf(`{"caller_id_number":%q,"destination_number":%q,"socket":"%s async full"}`,
		inboundCaller, inboundDID, srv.addr()))
	c := srv.accept(t)

	// connect: the channel data, then Socket-Mode and Control.
	hs := srv.connect(t, c)
	want := map[string]string{
		"Event-Name":                        "CHANNEL_DATA",
		"Unique-ID":                         uuid,
		"Channel-Unique-ID":                 uuid,
		"Caller-Unique-ID":                  uuid,
		"Call-Direction":                    "inbound",
		"Channel-Destination-Number":        inboundDID,
		"Caller-Destination-Number":         inboundDID,
		"Channel-Caller-ID-Number":          inboundCaller,
		"Caller-Caller-ID-Number":           inboundCaller,
		"Answer-State":                      "ringing",
		"variable_current_application":      "socket",
		"variable_current_application_data": srv.addr() + " async full",
		"variable_socket_host":              "127.0.0.1",
		"Content-Type":                      "command/reply",
		"Reply-Text":                        "+OK\n",
		"Socket-Mode":                       "async",
		"Control":                           "full",
	}
	for k, v := range want {
		if hs[k] != v {
			t.Errorf("connect reply: %s = %q, want %q", k, hs[k], v)
		}
	}
	if hs["Core-UUID"] == "" {
		t.Errorf("connect reply has no Core-UUID")
	}

	c.cmdOK("myevents", "+OK Events Enabled")
	c.cmdOK("linger", "+OK will linger")

	// sendmsg execute answer: +OK, then the application's events, in plain
	// format, for this session only.
	appUUID := testUUID()
	c.cmdOK("sendmsg\ncall-command: execute\nexecute-app-name: answer\nEvent-UUID: "+appUUID, "+OK")
	var seq []string
	for len(seq) < 3 {
		ev := c.nextEvent()
		if ev["Unique-ID"] != uuid {
			t.Fatalf("event for another channel on a session socket: %v", ev)
		}
		if ev.name() == "CHANNEL_PARK" {
			continue // may arrive after myevents, as in capture 19
		}
		seq = append(seq, ev.name())
		switch ev.name() {
		case "CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE":
			if ev["Application"] != "answer" || ev["Application-UUID"] != appUUID {
				t.Errorf("%s: Application %q Application-UUID %q, want answer %s", ev.name(), ev["Application"], ev["Application-UUID"], appUUID)
			}
		case "CHANNEL_ANSWER":
			if ev["Answer-State"] != "answered" || ev["Caller-Destination-Number"] != inboundDID {
				t.Errorf("CHANNEL_ANSWER: Answer-State %q Caller-Destination-Number %q", ev["Answer-State"], ev["Caller-Destination-Number"])
			}
		}
	}
	if got := strings.Join(seq, " "); got != "CHANNEL_EXECUTE CHANNEL_ANSWER CHANNEL_EXECUTE_COMPLETE" {
		t.Errorf("events after sendmsg answer: %s", got)
	}
	// myevents without a format: plain events, URL-decoded here.
	for _, ev := range c.events {
		if ev["_content_type"] != "text/event-plain" {
			t.Errorf("myevents (plain) sent %v as %s", ev, ev["_content_type"])
		}
		if ev["Channel-Name"] != "sofia/external/"+inboundCaller+"@127.0.0.1" || !strings.Contains(ev["Event-Date-GMT"], " GMT") {
			t.Errorf("%v: values not URL-decoded as expected: Channel-Name %q Event-Date-GMT %q", ev, ev["Channel-Name"], ev["Event-Date-GMT"])
		}
	}

	// api works on a full-control outbound socket.
	if got := c.api("uuid_getvar " + uuid + " caller_id_number"); got != inboundCaller {
		t.Errorf("uuid_getvar caller_id_number = %q, want %s", got, inboundCaller)
	}
	if r := c.cmd("getvar destination_number"); r.get("Reply-Text") != inboundDID {
		t.Errorf("getvar destination_number: %s", r)
	}

	// The server hangs up. The socket sees the session end as in capture
	// 19: CHANNEL_HANGUP ... CHANNEL_HANGUP_COMPLETE, then the linger
	// notice, and never CHANNEL_DESTROY.
	c.cmdOK("sendmsg\ncall-command: hangup\nhangup-cause: CALL_REJECTED", "+OK")
	var notice *eslFrame
	var ending []string
	for notice == nil {
		f := c.next()
		if f.contentType() == "text/disconnect-notice" {
			notice = f
			break
		}
		ev, ok, _ := parseEvent(f)
		if !ok {
			t.Fatalf("unexpected frame before the disconnect notice: %s", f)
		}
		switch ev.name() {
		case "CHANNEL_PARK":
			continue
		case "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE":
			if ev["Hangup-Cause"] != "CALL_REJECTED" {
				t.Errorf("%s Hangup-Cause %q, want CALL_REJECTED", ev.name(), ev["Hangup-Cause"])
			}
			ending = append(ending, ev.name())
		case "CHANNEL_EXECUTE_COMPLETE":
			ending = append(ending, ev.name()+"("+ev["Application"]+")")
		case "CHANNEL_STATE":
			ending = append(ending, ev.name()+"("+ev["Channel-State"]+")")
		default:
			ending = append(ending, ev.name())
		}
	}
	wantEnding := "CHANNEL_HANGUP CHANNEL_UNPARK CHANNEL_EXECUTE_COMPLETE(socket) CHANNEL_STATE(CS_HANGUP) " +
		"CHANNEL_STATE(CS_REPORTING) CHANNEL_HANGUP_COMPLETE"
	if got := strings.Join(ending, " "); got != wantEnding {
		t.Errorf("events after sendmsg hangup:\n got %s\nwant %s", got, wantEnding)
	}
	for k, v := range map[string]string{
		"Controlled-Session-UUID": uuid,
		"Content-Disposition":     "linger",
		"Channel-Name":            "sofia/external/" + inboundCaller + "@127.0.0.1",
		"Linger-Time":             "-1",
	} {
		if notice.get(k) != v {
			t.Errorf("disconnect notice %s = %q, want %q (%s)", k, notice.get(k), v, notice)
		}
	}
	waitChannelGone(t, s, uuid)

	// Lingering, the socket still takes commands; exit ends it.
	if r := c.cmd("exit"); r.get("Reply-Text") != "+OK bye" {
		t.Errorf("exit: %s", r)
	}
	for {
		f, err := c.readFrame()
		if err != nil {
			break
		}
		if ct := f.contentType(); ct != "text/disconnect-notice" {
			t.Errorf("after exit: unexpected %s", f)
		}
	}
}

// TestInboundOutboundSocketGone: when the outbound socket server goes away,
// the call it controlled is hung up (no socket_resume).
func TestInboundOutboundSocketGone(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// before: close the server before placing the call (unreachable).
		before bool
		close  func(t *testing.T, srv *outboundServer)
	}{
		{"server unreachable", true, func(t *testing.T, srv *outboundServer) { srv.ln.Close() }},
		{"server closes before connect", false, func(t *testing.T, srv *outboundServer) { srv.accept(t).nc.Close() }},
		{"server closes after connect", false, func(t *testing.T, srv *outboundServer) {
			c := srv.accept(t)
			srv.connect(t, c)
			c.nc.Close()
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startTestSim(t)
			srv := newOutboundServer(t)
			if tc.before {
				tc.close(t, srv)
			}
			uuid := placeInbound(t, s, fmt.Sprintf(`{"caller_id_number":%q,"destination_number":%q,"socket":"%s async full"}`,
				inboundCaller, inboundDID, srv.addr()))
			if !tc.before {
				tc.close(t, srv)
			}
			waitChannelGone(t, s, uuid)
		})
	}
}

func TestInboundBadRequest(t *testing.T) {
	t.Parallel()
	s := startTestSim(t)
	cases := []struct{ name, body string }{
		{"missing destination", `{"caller_id_number":"15557654321"}`},
		{"empty destination", `{"caller_id_number":"15557654321","destination_number":""}`},
		{"missing caller", `{"destination_number":"18005550100"}`},
		{"empty object", `{}`},
		{"malformed JSON", `{"caller_id_number":`},
		{"no body", ``},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctlExpectError(t, s, "POST", "/calls/inbound", tc.body, http.StatusBadRequest, "BAD_REQUEST")
		})
	}
	t.Cleanup(func() {
		if chans := ctlChannels(t, s); len(chans) != 0 {
			t.Errorf("refused inbound calls created channels: %+v", chans)
		}
	})
}

func TestInboundPlaceInboundAPI(t *testing.T) {
	t.Parallel()
	s := startTestSim(t)
	bad := []struct {
		name string
		call sim.InboundCall
	}{
		{"empty", sim.InboundCall{}},
		{"no destination", sim.InboundCall{CallerIDNumber: inboundCaller}},
		{"no caller", sim.InboundCall{Destination: inboundDID}},
		{"name only", sim.InboundCall{CallerIDName: "Alice", Socket: "127.0.0.1:1 async full"}},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			uuid, err := s.PlaceInbound(tc.call)
			if err == nil || uuid != "" {
				t.Fatalf("PlaceInbound(%+v) = %q, %v; want an error", tc.call, uuid, err)
			}
		})
	}
	if chans := s.Channels(); len(chans) != 0 {
		t.Fatalf("refused calls created channels: %+v", chans)
	}
	t.Run("valid", func(t *testing.T) {
		uuid, err := s.PlaceInbound(sim.InboundCall{CallerIDNumber: inboundCaller, CallerIDName: "Alice", Destination: inboundDID})
		if err != nil || uuid == "" {
			t.Fatalf("PlaceInbound: %q, %v", uuid, err)
		}
		ch := findChannel(s.Channels(), uuid)
		if ch == nil || ch.Direction != "inbound" || ch.Destination != inboundDID || ch.CallerID != inboundCaller {
			t.Fatalf("Channels() after PlaceInbound: %+v", s.Channels())
		}
	})
}

// TestInboundPlaceInboundAfterClose: a closed simulator takes no calls. A
// channel created after Close would never end (nothing hangs it up any
// more) and a later Close would wait for it forever.
func TestInboundPlaceInboundAfterClose(t *testing.T) {
	t.Parallel()
	s := startTestSim(t)
	s.Close()
	uuid, err := s.PlaceInbound(sim.InboundCall{CallerIDNumber: inboundCaller, Destination: inboundDID})
	if err == nil {
		t.Errorf("PlaceInbound on a closed simulator = %q, nil; want an error (channels: %d)", uuid, len(s.Channels()))
		// Reap the channel it created, so that the test's own Close (and
		// the package's goroutine-leak check) do not hang on it.
		s.Restart()
	}
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(waitLimit):
		t.Fatalf("Close after PlaceInbound on a closed simulator did not return")
	}
}
