package sim_test

// Tests of fault injection through the control API: dropped connections,
// stalled replies and a simulated FreeSWITCH restart.

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ringback/ringback/freeswitch/sim"
)

func TestFaultDropConnections(t *testing.T) {
	t.Parallel()
	s := startTestSim(t)
	cmd := dialESL(t, s)
	listener := dialESL(t, s)
	listener.cmdOK("event json ALL", "+OK event listener enabled json")
	idle := dialESL(t, s)
	uuid := originatePark(t, cmd, "15551230000")

	code, out := ctlJSON(t, s, "POST", "/faults/drop-connections", "")
	if code != http.StatusOK || out["dropped"] != true {
		t.Fatalf("POST /faults/drop-connections: %d %v", code, out)
	}
	for _, k := range []struct {
		name        string
		c           *eslClient
		allowEvents bool
	}{{"command", cmd, false}, {"listener", listener, true}, {"idle", idle, false}} {
		t.Run(k.name, func(t *testing.T) {
			k.c.t = t
			k.c.expectEOF(k.allowEvents)
		})
	}

	// A new connection works, and the channels survived: dropping inbound
	// connections does not touch calls.
	c := dialESL(t, s)
	if got := c.api("status"); !strings.Contains(got, "is ready") {
		t.Errorf("api status on a new connection: %q", got)
	}
	if got := c.api("uuid_exists " + uuid); got != "true" {
		t.Errorf("uuid_exists %s after dropping connections = %q, want true", uuid, got)
	}
	c.cmdOK("event json DTMF", "+OK event listener enabled json")
	if code, out := ctlJSON(t, s, "POST", "/channels/"+uuid+"/dtmf", `{"digits":"5"}`); code != http.StatusOK {
		t.Fatalf("POST dtmf: %d %v", code, out)
	}
	if ev, _ := c.waitNamed("DTMF", uuid); ev["DTMF-Digit"] != "5" {
		t.Errorf("DTMF-Digit %q, want 5", ev["DTMF-Digit"])
	}
}

func TestFaultStall(t *testing.T) {
	t.Parallel()
	const stall = 300 * time.Millisecond
	cases := []struct {
		name string
		cmd  string
		ok   func(*eslFrame) bool
	}{
		{"api", "api status", func(f *eslFrame) bool {
			return f.contentType() == "api/response" && strings.Contains(string(f.body), "is ready")
		}},
		{"bgapi", "bgapi status", func(f *eslFrame) bool {
			return strings.HasPrefix(f.get("Reply-Text"), "+OK Job-UUID: ")
		}},
		{"command/reply", "event json HEARTBEAT", func(f *eslFrame) bool {
			return f.get("Reply-Text") == "+OK event listener enabled json"
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startTestSim(t)
			c := dialESL(t, s)
			code, out := ctlJSON(t, s, "POST", "/faults/stall", fmt.Sprintf(`{"ms":%d}`, stall.Milliseconds()))
			if code != http.StatusOK || out["stall_ms"] != float64(stall.Milliseconds()) {
				t.Fatalf("POST /faults/stall: %d %v", code, out)
			}
			start := time.Now()
			r := c.cmd(tc.cmd)
			if took := time.Since(start); took < stall*9/10 {
				t.Errorf("%s with a %v stall replied after %v", tc.cmd, stall, took)
			}
			if !tc.ok(r) {
				t.Errorf("%s under stall: %s", tc.cmd, r)
			}

			code, out = ctlJSON(t, s, "POST", "/faults/stall", `{"ms":0}`)
			if code != http.StatusOK || out["stall_ms"] != float64(0) {
				t.Fatalf("POST /faults/stall 0: %d %v", code, out)
			}
			// Cleared: four replies together take less time than one stall
			// would (a functional check with a wide margin).
			const n = 4
			start = time.Now()
			for i := 0; i < n; i++ {
				if r := c.cmd(tc.cmd); !tc.ok(r) {
					t.Fatalf("%s after clearing the stall: %s", tc.cmd, r)
				}
			}
			if took := time.Since(start); took >= n*stall*9/10 {
				t.Errorf("%d x %s after clearing the stall took %v: still stalled", n, tc.cmd, took)
			}
		})
	}
}

func TestFaultStallBadRequest(t *testing.T) {
	t.Parallel()
	s := startTestSim(t)
	cases := []struct{ name, body string }{
		{"negative", `{"ms":-1}`},
		{"too long", `{"ms":600001}`},
		{"not a number", `{"ms":"300"}`},
		{"malformed", `{"ms":`},
		{"no body", ``},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctlExpectError(t, s, "POST", "/faults/stall", tc.body, http.StatusBadRequest, "BAD_REQUEST")
		})
	}
	t.Cleanup(func() {
		// Nothing was stalled: a refused request leaves the stall at 0.
		c := dialESL(t, s)
		start := time.Now()
		c.api("status")
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("api status after refused stall requests took %v", took)
		}
	})
}

// restartSim runs POST /faults/restart and returns the old and the new
// Core-UUID.
func restartSim(t *testing.T, s *sim.Sim) (string, string) {
	t.Helper()
	_, health := ctlJSON(t, s, "GET", "/healthz", "")
	oldCore, _ := health["core_uuid"].(string)
	code, out := ctlJSON(t, s, "POST", "/faults/restart", "")
	newCore, _ := out["core_uuid"].(string)
	if code != http.StatusOK || len(newCore) != 36 || newCore == oldCore {
		t.Fatalf("POST /faults/restart: %d %v (core_uuid before: %s)", code, out, oldCore)
	}
	if _, health := ctlJSON(t, s, "GET", "/healthz", ""); health["core_uuid"] != newCore {
		t.Errorf("GET /healthz after restart: core_uuid %v, want %s", health["core_uuid"], newCore)
	}
	return oldCore, newCore
}

func TestFaultRestart(t *testing.T) {
	t.Parallel()
	s := startTestSim(t)

	// Before the restart: an answered outbound call, a ringing one, a parked
	// inbound call, one under an outbound socket, and a listener.
	cmd := dialESL(t, s)
	oldListener := dialESL(t, s)
	oldListener.cmdOK("event json ALL", "+OK event listener enabled json")
	answered := originatePark(t, cmd, "15551230000")
	ringing, _ := bgOriginatePark(t, s, cmd, "15551230408")
	parked := placeInbound(t, s, fmt.Sprintf(`{"caller_id_number":%q,"destination_number":%q}`, inboundCaller, inboundDID))
	srv := newOutboundServer(t)
	socketed := placeInbound(t, s, fmt.Sprintf(`{"caller_id_number":%q,"destination_number":%q,"socket":"%s async full"}`,
		inboundCaller, inboundDID, srv.addr()))
	sock := srv.accept(t)
	srv.connect(t, sock)
	sock.cmdOK("myevents", "+OK Events Enabled")
	vanished := []string{answered, ringing, parked, socketed}
	waitUntil(t, "four channels", func() bool { return len(ctlChannels(t, s)) == 4 })

	_, newCore := restartSim(t, s)

	// Every connection, inbound and outbound, was dropped.
	for _, k := range []struct {
		name        string
		c           *eslClient
		allowEvents bool
	}{{"command", cmd, false}, {"listener", oldListener, true}, {"outbound socket", sock, true}} {
		t.Run("dropped "+k.name, func(t *testing.T) {
			k.c.t = t
			k.c.expectEOF(k.allowEvents)
		})
	}

	// The channels are gone.
	l := dialESL(t, s)
	l.cmdOK("event json ALL", "+OK event listener enabled json")
	c := dialESL(t, s)
	for _, uuid := range vanished {
		if got := c.api("uuid_exists " + uuid); got != "false" {
			t.Errorf("uuid_exists %s after restart = %q, want false", uuid, got)
		}
		ctlExpectError(t, s, "POST", "/channels/"+uuid+"/hangup", "", http.StatusNotFound, "NO_SUCH_CHANNEL")
	}
	if chans := ctlChannels(t, s); len(chans) != 0 {
		t.Errorf("GET /channels after restart: %+v", chans)
	}
	if got := c.api("show channels count"); !strings.HasPrefix(strings.TrimSpace(got), "0 total") {
		t.Errorf("show channels count after restart: %q", got)
	}
	if got := c.api("status"); !strings.Contains(got, "\n0 session(s) since startup\n0 session(s) - peak 0") {
		t.Errorf("api status after restart: %q", got)
	}
	if counters := ctlCounters(t, s); counters["channels"] != 0 || counters["sessions_since_startup"] != 0 {
		t.Errorf("counters after restart: %v", counters)
	}

	// New originates work; the new listener sees them, on the new
	// Core-UUID, and nothing of the vanished channels.
	fresh := originatePark(t, c, "15551230000")
	if got := c.api("uuid_kill " + fresh); got != "+OK\n" {
		t.Fatalf("uuid_kill %s: %q", fresh, got)
	}
	_, seen := l.waitNamed("CHANNEL_DESTROY", fresh)
	sawAnswer := false
	for _, ev := range seen {
		for _, uuid := range vanished {
			if ev["Unique-ID"] == uuid || strings.Contains(ev["Job-Command-Arg"], uuid) || strings.Contains(ev["_body"], uuid) {
				t.Errorf("the new listener got an event of a vanished channel: %v", ev)
				break
			}
		}
		if ev["Core-UUID"] != newCore {
			t.Errorf("event %v after restart: Core-UUID %q, want %s", ev, ev["Core-UUID"], newCore)
		}
		if ev["Unique-ID"] == fresh && ev.name() == "CHANNEL_ANSWER" {
			sawAnswer = true
		}
	}
	if !sawAnswer {
		t.Errorf("the new listener did not see the new call answer; saw %v", seen)
	}

	// The vanished channels' uuids are free again, as in a new process.
	if got := c.api("originate {origination_uuid=" + answered + "}sofia/gateway/carrier/15551230000 &park"); got != "+OK "+answered+"\n" {
		t.Errorf("originate reusing a vanished channel's uuid: %q", got)
	}
}

// TestFaultRestartCoreUUIDGlobal: after a restart the core_uuid global
// variable is the new Core-UUID, as in the new process FreeSWITCH would be.
func TestFaultRestartCoreUUIDGlobal(t *testing.T) {
	t.Parallel()
	s := startTestSim(t)
	oldCore, newCore := restartSim(t, s)
	c := dialESL(t, s)
	if got := c.api("global_getvar core_uuid"); got != newCore {
		t.Errorf("global_getvar core_uuid after restart = %q, want the new Core-UUID %s (the old one was %s)", got, newCore, oldCore)
	}
}

// TestFaultRestartKillsOriginateInFlight: an originate running when the
// switch restarts dies with the process. A failover dial string must not go
// on to its next leg on the restarted switch.
func TestFaultRestartKillsOriginateInFlight(t *testing.T) {
	t.Parallel()
	s := startTestSim(t)
	cmd := dialESL(t, s)
	// The first leg rings forever; the second would answer at once.
	firstLeg, secondLeg := testUUID(), testUUID()
	r := cmd.cmd("bgapi originate [origination_uuid=" + firstLeg + "]sofia/gateway/carrier/15551230408|[origination_uuid=" +
		secondLeg + "]sofia/gateway/carrier/15551230000 &park")
	if !strings.HasPrefix(r.get("Reply-Text"), "+OK Job-UUID: ") {
		t.Fatalf("bgapi originate: %s", r)
	}
	waitUntil(t, "the first leg to ring", func() bool {
		ch := findChannel(ctlChannels(t, s), firstLeg)
		return ch != nil && ch.CallState == "RINGING"
	})

	restartSim(t, s)

	// The second leg would ring for 100 ms of simulated time (10 ms here);
	// watch for it for 5 simulated seconds.
	c := dialESL(t, s)
	for deadline := time.Now().Add(500 * time.Millisecond); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if chans := ctlChannels(t, s); len(chans) != 0 {
			t.Fatalf("after the restart the old originate dialed its failover leg: GET /channels = %+v", chans)
		}
	}
	for _, uuid := range []string{firstLeg, secondLeg} {
		if got := c.api("uuid_exists " + uuid); got != "false" {
			t.Errorf("uuid_exists %s after restart = %q, want false", uuid, got)
		}
	}
}
