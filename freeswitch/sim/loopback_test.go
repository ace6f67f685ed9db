package sim_test

// Tests of loopback/ channels (mod_loopback) through a raw event socket,
// against the real FreeSWITCH 1.10.12 captures: 07_loopback_causes_api (busy,
// no answer, answered), the loopback part of 06_originate_errors_api (context
// "default") and nc_session_loopback_9664. The captured frames the tests
// compare with are copied verbatim into testdata/loopback/ (event frames
// only, same directory and file names as /work/shared/freeswitch/captures/frames).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// loopbackEvents are the events capture 07 subscribed to; every loopback
// test subscribes to the same ones.
const loopbackEvents = "event json CHANNEL_CREATE CHANNEL_PROGRESS CHANNEL_ANSWER CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE BACKGROUND_JOB"

// orderedEvent is a JSON event with its headers in wire order, repeated
// headers kept (CHANNEL_HANGUP_COMPLETE has Hangup-Cause twice).
type orderedEvent [][2]string

func (e orderedEvent) get(name string) string {
	for _, h := range e {
		if h[0] == name {
			return h[1]
		}
	}
	return ""
}

func (e orderedEvent) has(name string) bool {
	for _, h := range e {
		if h[0] == name {
			return true
		}
	}
	return false
}

func (e orderedEvent) names() []string {
	out := make([]string, len(e))
	for i, h := range e {
		out[i] = h[0]
	}
	return out
}

// parseOrderedJSON decodes a text/event-json body keeping header order and
// duplicates. Array values (variable_DP_MATCH) are joined with commas.
func parseOrderedJSON(body []byte) (orderedEvent, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, fmt.Errorf("event body is not a JSON object: %v", err)
	}
	var ev orderedEvent
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, err
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			var arr []string
			if err := json.Unmarshal(raw, &arr); err != nil {
				return nil, fmt.Errorf("header %s: %s is neither a string nor an array of strings", key, raw)
			}
			s = strings.Join(arr, ",")
		}
		ev = append(ev, [2]string{key, s})
	}
	return ev, nil
}

// captureEvents loads the event frames of testdata/loopback/<dir>, in file
// (that is, capture) order.
func captureEvents(t *testing.T, dir string) []orderedEvent {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "loopback", dir, "*.frame"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no capture frames in testdata/loopback/%s: %v", dir, err)
	}
	sort.Strings(paths)
	var out []orderedEvent
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		head, body, ok := bytes.Cut(data, []byte("\n\n"))
		if !ok || !bytes.Contains(head, []byte("Content-Type: text/event-json")) {
			t.Fatalf("%s is not a text/event-json frame", p)
		}
		ev, err := parseOrderedJSON(body)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		out = append(out, ev)
	}
	return out
}

// legEvent is one event of a loopback pair, named by leg ("a" or "b").
type legEvent struct {
	leg string
	ev  orderedEvent
}

func (l legEvent) String() string {
	s := l.ev.get("Event-Name") + "/" + l.leg
	if c := l.ev.get("Hangup-Cause"); c != "" {
		s += "(" + c + ")"
	}
	return s
}

// legOf names the leg of a loopback channel from its name.
func legOf(ev orderedEvent) string {
	switch name := ev.get("Channel-Name"); {
	case strings.HasSuffix(name, "-a"):
		return "a"
	case strings.HasSuffix(name, "-b"):
		return "b"
	}
	return ""
}

// capturedPair is the captured events of the loopback call to ext.
func capturedPair(t *testing.T, dir, ext string) []legEvent {
	t.Helper()
	var out []legEvent
	for _, ev := range captureEvents(t, dir) {
		if ev.get("Caller-Destination-Number") == ext && legOf(ev) != "" {
			out = append(out, legEvent{legOf(ev), ev})
		}
	}
	if len(out) == 0 {
		t.Fatalf("capture %s has no events for loopback/%s", dir, ext)
	}
	return out
}

// collectPair reads events from c until both legs of loopback/<ext> have
// reported CHANNEL_HANGUP_COMPLETE (or, with stopAfter, until that many pair
// events arrived) and returns the pair's events in order; bg collects
// BACKGROUND_JOB events seen meanwhile.
func collectPair(t *testing.T, c *eslClient, ext string, stopAfter int, bg *[]orderedEvent) []legEvent {
	t.Helper()
	var out []legEvent
	done := map[string]bool{}
	for !(done["a"] && done["b"]) && (stopAfter == 0 || len(out) < stopAfter) {
		f := c.next()
		if f.contentType() != "text/event-json" {
			continue
		}
		ev, err := parseOrderedJSON(f.body)
		if err != nil {
			t.Fatalf("bad event from the simulator: %v", err)
		}
		if ev.get("Event-Name") == "BACKGROUND_JOB" {
			if bg != nil {
				*bg = append(*bg, ev)
			}
			continue
		}
		if !strings.HasPrefix(ev.get("Channel-Name"), "loopback/"+ext+"-") {
			continue
		}
		le := legEvent{legOf(ev), ev}
		out = append(out, le)
		if le.ev.get("Event-Name") == "CHANNEL_HANGUP_COMPLETE" {
			done[le.leg] = true
		}
	}
	return out
}

// pairUUIDs returns the a and b uuids of a pair, checking that the legs
// name each other in other_loopback_leg_uuid.
func pairUUIDs(t *testing.T, evs []legEvent) (a, b string) {
	t.Helper()
	for _, e := range evs {
		switch e.leg {
		case "a":
			a = e.ev.get("Unique-ID")
		case "b":
			b = e.ev.get("Unique-ID")
		}
	}
	if a == "" || b == "" {
		t.Fatalf("pair without both legs: %v", evs)
	}
	for _, e := range evs {
		self, other := a, b
		if e.leg == "b" {
			self, other = b, a
		}
		for _, h := range []string{"Unique-ID", "Channel-Call-UUID", "Caller-Unique-ID", "variable_uuid", "variable_call_uuid"} {
			if v := e.ev.get(h); v != self {
				t.Errorf("%v: %s %q, want the leg's uuid %s", e, h, v, self)
			}
		}
		if v := e.ev.get("variable_other_loopback_leg_uuid"); v != other {
			t.Errorf("%v: variable_other_loopback_leg_uuid %q, want the other leg %s", e, v, other)
		}
	}
	return a, b
}

// sequence renders a pair's events as "CHANNEL_CREATE/a CHANNEL_CREATE/b ...".
func sequence(evs []legEvent) string {
	s := make([]string, len(evs))
	for i, e := range evs {
		s[i] = e.String()
	}
	return strings.Join(s, " ")
}

// stableHeaders are compared value for value with the capture; uuids,
// times, sequence numbers and the host's identity are not.
var stableHeaders = []string{
	"Event-Name", "Event-Calling-File", "Event-Calling-Function", "Event-Calling-Line-Number",
	"Channel-State", "Channel-Call-State", "Channel-State-Number", "Channel-Name",
	"Call-Direction", "Presence-Call-Direction", "Channel-HIT-Dialplan", "Answer-State", "Hangup-Cause",
	"Channel-Read-Codec-Name", "Channel-Read-Codec-Rate", "Channel-Read-Codec-Bit-Rate",
	"Channel-Write-Codec-Name", "Channel-Write-Codec-Rate", "Channel-Write-Codec-Bit-Rate",
	"Caller-Direction", "Caller-Logical-Direction", "Caller-Dialplan",
	"Caller-Caller-ID-Name", "Caller-Caller-ID-Number", "Caller-Orig-Caller-ID-Name", "Caller-Orig-Caller-ID-Number",
	"Caller-Callee-ID-Name", "Caller-Callee-ID-Number", "Caller-ANI", "Caller-Destination-Number",
	"Caller-Source", "Caller-Context", "Caller-Channel-Name", "Caller-Profile-Index",
	"variable_direction", "variable_is_outbound", "variable_channel_name",
	"variable_read_codec", "variable_read_rate", "variable_write_codec", "variable_write_rate",
	"variable_origination_caller_id_number", "variable_origination_caller_id_name", "variable_originate_timeout",
	"variable_originate_early_media", "variable_originate_endpoint", "variable_loopback_leg",
	"variable_current_application", "variable_current_application_data", "variable_endpoint_disposition",
	"variable_pre_transfer_caller_id_number", "variable_channel_cid_flipped",
	"variable_hangup_cause", "variable_hangup_cause_q850", "variable_digits_dialed",
	"variable_last_app", "variable_last_arg", "variable_caller_id", "variable_is_loopback",
}

// timeHeaders are zero or not in the capture; the simulator must agree on
// which (the values themselves depend on the clock).
var timeHeaders = []string{
	"Caller-Channel-Answered-Time", "Caller-Channel-Progress-Time", "Caller-Channel-Progress-Media-Time",
	"Caller-Channel-Hangup-Time", "Caller-Channel-Transfer-Time", "Caller-Channel-Bridged-Time",
	"variable_answer_epoch", "variable_progress_epoch", "variable_progress_media_epoch", "variable_bridge_epoch",
}

// compareWithCapture checks one simulator event against the captured one:
// the same header names in the same order (variables included), the stable
// values equal, the times zero where the capture's are.
func compareWithCapture(t *testing.T, label string, got, want orderedEvent) {
	t.Helper()
	if g, w := strings.Join(got.names(), "\n"), strings.Join(want.names(), "\n"); g != w {
		t.Errorf("%s: header names differ from the capture:\n%s", label, lineDiff(w, g))
	}
	for _, name := range stableHeaders {
		if got.has(name) != want.has(name) || got.get(name) != want.get(name) {
			t.Errorf("%s: %s = %q (present %v), capture has %q (present %v)", label, name, got.get(name), got.has(name), want.get(name), want.has(name))
		}
	}
	for _, name := range timeHeaders {
		if gz, wz := got.get(name) == "0", want.get(name) == "0"; gz != wz || got.has(name) != want.has(name) {
			t.Errorf("%s: %s = %q, capture has %q", label, name, got.get(name), want.get(name))
		}
	}
}

// lineDiff is a minimal diff of two line lists ("-" capture only, "+"
// simulator only), enough to read a header-order mismatch.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	// Longest common subsequence.
	n, m := len(w), len(g)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if w[i] == g[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var b strings.Builder
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && w[i] == g[j]:
			i, j = i+1, j+1
		case j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
			fmt.Fprintf(&b, "  + %s (simulator only, before capture line %d)\n", g[j], i+1)
			j++
		default:
			fmt.Fprintf(&b, "  - %s (capture only, line %d)\n", w[i], i+1)
			i++
		}
	}
	return b.String()
}

// want is one expected event of a pair where no capture shows the exact
// call: its name, leg and the values of a few headers.
type want struct {
	name, leg string
	headers   map[string]string
}

func (w want) String() string {
	s := w.name + "/" + w.leg
	if c := w.headers["Hangup-Cause"]; c != "" {
		s += "(" + c + ")"
	}
	return s
}

func TestLoopback(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		// cmd is sent as `api <cmd>`; wantReply is its body, with "<a>"
		// standing for the A-leg's uuid.
		cmd, ext, wantReply string
		// captureDir/captureExt: the captured call this one must equal,
		// event for event (07), or whose CHANNEL_CREATE events it must
		// equal (06), else nothing.
		captureDir, captureExt string
		createsOnly            bool
		// want, when there is no capture of the whole call.
		want []want
		// kill: `api uuid_kill <a>` once both legs answered.
		kill bool
	}{
		{
			// fsref 6002: hangup USER_BUSY on the B-leg; the A-leg follows.
			name: "07 busy", cmd: "originate {origination_caller_id_number=1000}loopback/6002/fsref &park", ext: "6002",
			wantReply: "-ERR USER_BUSY\n", captureDir: "07_loopback_causes_api", captureExt: "6002",
		},
		{
			// fsref 6003: ring_ready then park; originate_timeout hangs up
			// the A-leg NO_ANSWER, which takes the B-leg with it.
			name: "07 no answer", cmd: "originate {originate_timeout=2}loopback/6003/fsref &park", ext: "6003",
			wantReply: "-ERR NO_ANSWER\n", captureDir: "07_loopback_causes_api", captureExt: "6003",
		},
		{
			// fsref 6001: answer, sleep 1000, hangup NORMAL_CLEARING: the
			// A-leg answers with the B-leg, is parked, and is hung up when
			// the B-leg hangs up.
			name: "07 answered", cmd: "originate {origination_caller_id_number=1000}loopback/6001/fsref &park", ext: "6001",
			wantReply: "+OK <a>\n", captureDir: "07_loopback_causes_api", captureExt: "6001",
		},
		{
			// No capture kills an answered loopback A-leg; mod_loopback's
			// on_hangup takes the B-leg down with the same cause, the leg
			// hung up first reporting first (as capture 07's NO_ANSWER call).
			name: "uuid_kill A-leg", cmd: "originate {origination_caller_id_number=1000}loopback/6006/fsref &park", ext: "6006",
			wantReply: "+OK <a>\n", kill: true,
			want: []want{
				{"CHANNEL_CREATE", "a", map[string]string{"Channel-State": "CS_INIT", "Call-Direction": "outbound", "Caller-Context": "fsref", "Caller-Callee-ID-Number": "fsref"}},
				{"CHANNEL_CREATE", "b", map[string]string{"Channel-State": "CS_INIT", "Call-Direction": "inbound", "Caller-Context": "fsref", "Channel-HIT-Dialplan": "true"}},
				{"CHANNEL_ANSWER", "a", map[string]string{"Channel-State": "CS_CONSUME_MEDIA", "Channel-Call-State": "DOWN"}},
				{"CHANNEL_ANSWER", "b", map[string]string{"Channel-State": "CS_EXECUTE", "Channel-Call-State": "RINGING", "variable_current_application": "answer"}},
				{"CHANNEL_HANGUP", "a", map[string]string{"Hangup-Cause": "NORMAL_CLEARING", "Channel-State": "CS_EXECUTE", "Channel-Call-State": "ACTIVE",
					"Caller-Caller-ID-Name": "Outbound Call", "Caller-Caller-ID-Number": "fsref", "variable_current_application": "park"}},
				{"CHANNEL_HANGUP", "b", map[string]string{"Hangup-Cause": "NORMAL_CLEARING", "Channel-State": "CS_EXECUTE", "Channel-Call-State": "ACTIVE"}},
				{"CHANNEL_HANGUP_COMPLETE", "a", map[string]string{"Hangup-Cause": "NORMAL_CLEARING", "variable_is_loopback": "1", "variable_caller_id": `"Outbound Call" <fsref>`}},
				{"CHANNEL_HANGUP_COMPLETE", "b", map[string]string{"Hangup-Cause": "NORMAL_CLEARING", "variable_is_loopback": "1", "variable_caller_id": "1000"}},
			},
		},
		{
			// Capture 06 dialled the same extensions in context "default",
			// where that box had vanilla's valet_park extension (^60\d{2}$:
			// answer, valet_park; DP_MATCH in the capture) without
			// mod_valet_parking, hence answer then DESTINATION_OUT_OF_ORDER.
			// The simulator has no "default" context (neither has Ringback's
			// FreeSWITCH configuration): no route, so the B-leg ends
			// NO_ROUTE_DESTINATION in CS_ROUTING and the A-leg with it. The
			// channels are created exactly as captured.
			name: "06 no route in default", cmd: "originate {origination_caller_id_number=1000}loopback/6002 &park", ext: "6002",
			wantReply: "-ERR NO_ROUTE_DESTINATION\n", captureDir: "06_originate_errors_api", captureExt: "6002", createsOnly: true,
			want: noRoute("default", "1000"),
		},
		{
			name: "06 no route in default, originate_timeout", cmd: "originate {originate_timeout=2}loopback/6003 &park", ext: "6003",
			wantReply: "-ERR NO_ROUTE_DESTINATION\n", captureDir: "06_originate_errors_api", captureExt: "6003", createsOnly: true,
			want: noRoute("default", "0000000000"),
		},
		{
			name: "missing extension in fsref", cmd: "originate {origination_caller_id_number=1000}loopback/9999/fsref &park", ext: "9999",
			wantReply: "-ERR NO_ROUTE_DESTINATION\n", want: noRoute("fsref", "1000"),
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startTestSim(t)
			c := dialESL(t, s)
			c.cmdOK(loopbackEvents, "+OK event listener enabled json")
			reply := c.api(tc.cmd)

			stop := 0
			if tc.kill {
				stop = 4 // both creates and both answers
			}
			got := collectPair(t, c, tc.ext, stop, nil)
			a, _ := pairUUIDs(t, got)
			if w := strings.ReplaceAll(tc.wantReply, "<a>", a); reply != w {
				t.Fatalf("api %s: %q, want %q", tc.cmd, reply, w)
			}
			if tc.kill {
				if r := c.api("uuid_kill " + a); r != "+OK\n" {
					t.Fatalf("uuid_kill: %q", r)
				}
				got = append(got, collectPair(t, c, tc.ext, 0, nil)...)
				pairUUIDs(t, got)
			}

			if tc.captureDir != "" {
				captured := capturedPair(t, tc.captureDir, tc.captureExt)
				if tc.createsOnly {
					captured = captured[:2]
					if len(got) < 2 {
						t.Fatalf("got %s", sequence(got))
					}
					for i := range captured {
						compareWithCapture(t, fmt.Sprintf("event %d %v", i+1, got[i]), got[i].ev, captured[i].ev)
					}
				} else {
					if sequence(got) != sequence(captured) {
						t.Fatalf("event order:\n got  %s\n want %s (capture %s)", sequence(got), sequence(captured), tc.captureDir)
					}
					for i := range captured {
						compareWithCapture(t, fmt.Sprintf("event %d %v", i+1, got[i]), got[i].ev, captured[i].ev)
					}
				}
			}
			if tc.want != nil {
				ws := make([]string, len(tc.want))
				for i, w := range tc.want {
					ws[i] = w.String()
				}
				if sequence(got) != strings.Join(ws, " ") {
					t.Fatalf("event order:\n got  %s\n want %s", sequence(got), strings.Join(ws, " "))
				}
				for i, w := range tc.want {
					for h, v := range w.headers {
						if g := got[i].ev.get(h); g != v {
							t.Errorf("event %d %v: %s = %q, want %q", i+1, got[i], h, g, v)
						}
					}
				}
			}
			// Nothing is left behind: both channels are gone.
			waitChannelGone(t, s, a)
			if n := len(ctlChannels(t, s)); n != 0 {
				t.Errorf("%d channels left after the pair hung up", n)
			}
		})
	}
}

// noRoute is a loopback pair whose B-leg finds no extension: no answer,
// the B-leg hung up NO_ROUTE_DESTINATION in CS_ROUTING (callstate RINGING,
// as every captured B-leg before answer), the A-leg with the same cause,
// the B-leg reporting first.
func noRoute(context, cid string) []want {
	return []want{
		{"CHANNEL_CREATE", "a", map[string]string{"Channel-State": "CS_INIT", "Caller-Context": context, "Caller-Caller-ID-Number": cid}},
		{"CHANNEL_CREATE", "b", map[string]string{"Channel-State": "CS_INIT", "Caller-Context": context, "Caller-Caller-ID-Number": cid}},
		{"CHANNEL_HANGUP", "b", map[string]string{"Hangup-Cause": "NO_ROUTE_DESTINATION", "Channel-State": "CS_ROUTING", "Channel-Call-State": "RINGING", "Answer-State": "hangup"}},
		{"CHANNEL_HANGUP", "a", map[string]string{"Hangup-Cause": "NO_ROUTE_DESTINATION", "Channel-State": "CS_CONSUME_MEDIA", "Channel-Call-State": "DOWN"}},
		{"CHANNEL_HANGUP_COMPLETE", "b", map[string]string{"Hangup-Cause": "NO_ROUTE_DESTINATION", "variable_hangup_cause_q850": "3", "variable_is_loopback": "1"}},
		{"CHANNEL_HANGUP_COMPLETE", "a", map[string]string{"Hangup-Cause": "NO_ROUTE_DESTINATION", "variable_hangup_cause_q850": "3", "variable_is_loopback": "1"}},
	}
}

// TestLoopback9664 replays nc_session_loopback_9664's originate (bgapi, a
// caller ID name, context "default"): both channels are created exactly as
// captured. That box's default context answered 9664 (vanilla's music on
// hold); the simulator has no default context, so the call ends
// NO_ROUTE_DESTINATION (see TestLoopback).
func TestLoopback9664(t *testing.T) {
	t.Parallel()
	s := startTestSim(t)
	c := dialESL(t, s)
	c.cmdOK(loopbackEvents, "+OK event listener enabled json")
	r := c.cmd("bgapi originate {origination_caller_id_number=1000,origination_caller_id_name=Tester}loopback/9664 &park")
	job := r.get("Job-UUID")
	if job == "" {
		t.Fatalf("bgapi: %s", r)
	}
	var bg []orderedEvent
	got := collectPair(t, c, "9664", 0, &bg)
	pairUUIDs(t, got)
	captured := captureEvents(t, "nc_session_loopback_9664")
	if len(got) < 2 {
		t.Fatalf("got %s", sequence(got))
	}
	for i := range captured {
		compareWithCapture(t, fmt.Sprintf("event %d %v", i+1, got[i]), got[i].ev, captured[i])
	}
	for len(bg) == 0 {
		f := c.next()
		if ev, err := parseOrderedJSON(f.body); err == nil && ev.get("Event-Name") == "BACKGROUND_JOB" {
			bg = append(bg, ev)
		}
	}
	if bg[0].get("Job-UUID") != job || bg[0].get("_body") != "-ERR NO_ROUTE_DESTINATION\n" {
		t.Errorf("BACKGROUND_JOB %v, want Job-UUID %s and -ERR NO_ROUTE_DESTINATION", bg[0], job)
	}
}

// TestLoopbackCaptureFixtures guards the copied fixtures: they must stay
// byte-identical to the captures when those are present.
func TestLoopbackCaptureFixtures(t *testing.T) {
	const captures = "/work/shared/freeswitch/captures/frames"
	if _, err := os.Stat(captures); err != nil {
		t.Skip("captures not available:", err)
	}
	paths, _ := filepath.Glob(filepath.Join("testdata", "loopback", "*", "*.frame"))
	for _, p := range paths {
		rel, _ := filepath.Rel(filepath.Join("testdata", "loopback"), p)
		mine, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(filepath.Join(captures, rel))
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			continue
		}
		orig, err := io.ReadAll(f)
		f.Close()
		if err != nil || !bytes.Equal(mine, orig) {
			t.Errorf("%s differs from the capture", rel)
		}
	}
}

// TestLoopbackControlFarEnd drives a loopback/ pair from the control API:
// the far end of the A-leg is its B-leg, so answering or hanging up the
// A-leg's far end acts on the B-leg and reaches the A-leg through the pair,
// in mod_loopback's order.
func TestLoopbackControlFarEnd(t *testing.T) {
	t.Parallel()
	s := startTestSim(t)
	c := dialESL(t, s)
	c.cmdOK(loopbackEvents, "+OK event listener enabled json")
	r := c.cmd("bgapi originate {origination_caller_id_number=1000}loopback/6003/fsref &park")
	if r.get("Job-UUID") == "" {
		t.Fatalf("bgapi: %s", r)
	}
	got := collectPair(t, c, "6003", 4, nil) // both creates, both PROGRESS (6003 rings)
	a, b := pairUUIDs(t, got)
	if code, out := ctlJSON(t, s, "POST", "/channels/"+a+"/answer", ""); code != 200 || out["uuid"] != a {
		t.Fatalf("POST answer: %d %v", code, out)
	}
	got = append(got, collectPair(t, c, "6003", 2, nil)...)
	if code, out := ctlJSON(t, s, "POST", "/channels/"+a+"/hangup", `{"cause":"USER_BUSY"}`); code != 200 || out["uuid"] != a {
		t.Fatalf("POST hangup: %d %v", code, out)
	}
	got = append(got, collectPair(t, c, "6003", 0, nil)...)
	pairUUIDs(t, got)
	want := "CHANNEL_CREATE/a CHANNEL_CREATE/b CHANNEL_PROGRESS/a CHANNEL_PROGRESS/b CHANNEL_ANSWER/a CHANNEL_ANSWER/b " +
		"CHANNEL_HANGUP/b(USER_BUSY) CHANNEL_HANGUP/a(USER_BUSY) CHANNEL_HANGUP_COMPLETE/b(USER_BUSY) CHANNEL_HANGUP_COMPLETE/a(USER_BUSY)"
	if sequence(got) != want {
		t.Fatalf("event order:\n got  %s\n want %s", sequence(got), want)
	}
	for _, e := range got {
		if e.ev.get("variable_sip_term_status") != "" {
			t.Errorf("%v: a loopback leg has sip_term_status %q", e, e.ev.get("variable_sip_term_status"))
		}
	}
	waitChannelGone(t, s, a)
	waitChannelGone(t, s, b)
}

// TestLoopbackCountsTwoSessions: both halves are sessions (mod_loopback
// requests the B-leg with switch_core_session_request), so a loopback/
// originate needs room for two under max_sessions.
func TestLoopbackCountsTwoSessions(t *testing.T) {
	t.Parallel()
	s := startTestSim(t)
	c := dialESL(t, s)
	if r := c.api("fsctl max_sessions 1"); r != "+OK max sessions: 1\n" {
		t.Fatalf("fsctl max_sessions 1: %q", r)
	}
	if r := c.api("originate loopback/6006/fsref &park"); r != "-ERR DESTINATION_OUT_OF_ORDER\n" {
		t.Fatalf("originate with room for one session: %q, want -ERR DESTINATION_OUT_OF_ORDER", r)
	}
	if n := len(ctlChannels(t, s)); n != 0 {
		t.Fatalf("%d channels after a refused originate", n)
	}
	if r := c.api("fsctl max_sessions 2"); r != "+OK max sessions: 2\n" {
		t.Fatalf("fsctl max_sessions 2: %q", r)
	}
	r := c.api("originate loopback/6006/fsref &park")
	if !strings.HasPrefix(r, "+OK ") {
		t.Fatalf("originate with room for two sessions: %q", r)
	}
	if n := len(ctlChannels(t, s)); n != 2 {
		t.Errorf("%d channels, want the A-leg and the B-leg", n)
	}
	a := strings.TrimSpace(strings.TrimPrefix(r, "+OK "))
	if r := c.api("uuid_kill " + a); r != "+OK\n" {
		t.Fatalf("uuid_kill: %q", r)
	}
	waitUntil(t, "both legs gone", func() bool { return len(ctlChannels(t, s)) == 0 })
}
