package conformance

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// captureEvents parses the events of a captured .recv.raw fixture.
func captureEvents(t *testing.T, fixture string) []*Event {
	t.Helper()
	r := bufio.NewReader(bytes.NewReader(readFixture(t, fixture)))
	var evs []*Event
	for i := 0; ; i++ {
		f, err := readFrame(r)
		if errors.Is(err, io.EOF) && f == nil {
			break
		}
		if err != nil {
			t.Fatalf("fixture %s: %v", fixture, err)
		}
		f.Index = i
		if f.Event != nil {
			if f.Event.ParseErr != nil {
				t.Fatalf("fixture %s: %v", fixture, f.Event.ParseErr)
			}
			evs = append(evs, f.Event)
		}
	}
	return evs
}

// step describes an event for order comparison: its name plus the detail that
// distinguishes repeated names (the state for CHANNEL_STATE, the call state for
// CHANNEL_CALLSTATE, the application for CHANNEL_EXECUTE[_COMPLETE]).
func step(e *Event) string {
	switch e.Name() {
	case "CHANNEL_STATE":
		return "CHANNEL_STATE(" + e.Get("Channel-State") + ")"
	case "CHANNEL_CALLSTATE":
		return "CHANNEL_CALLSTATE(" + e.Get("Channel-Call-State") + ")"
	case "CHANNEL_EXECUTE", "CHANNEL_EXECUTE_COMPLETE":
		return e.Name() + "(" + e.Get("Application") + ")"
	}
	return e.Name()
}

func steps(evs []*Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = step(e)
	}
	return out
}

// capture17Steps is the sequence of one answered, parked SIP call that the far
// end hangs up, as seen with `event json ALL` (capture 17).
func capture17Steps(t *testing.T) []string {
	t.Helper()
	evs := captureEvents(t, "17_event_json_ALL_sip_call_remote_bye.recv.raw")
	return steps(ofUUID(evs, "e5e5e5e5-0000-4000-8000-0000000000a1"))
}

func diffSteps(want, got []string) string {
	var b strings.Builder
	n := max(len(want), len(got))
	for i := 0; i < n; i++ {
		w, g := "", ""
		if i < len(want) {
			w = want[i]
		}
		if i < len(got) {
			g = got[i]
		}
		mark := "  "
		if w != g {
			mark = "!="
		}
		b.WriteString(mark + " " + padRight(w, 42) + " | " + g + "\n")
	}
	return b.String()
}

func padRight(s string, n int) string {
	if len(s) >= n {
		return s
	}
	return s + strings.Repeat(" ", n-len(s))
}

// checkSeqIncreasing asserts that Event-Sequence values are distinct and
// strictly increasing in arrival order. Capture 17 shows that FreeSWITCH
// delivers the API event (sequence taken when the api call starts) late, so
// API events are left out; everything else is in sequence order.
func checkSeqIncreasing(t *testing.T, what string, evs []*Event) {
	t.Helper()
	var last uint64
	var lastEv *Event
	for _, e := range evs {
		if e.Name() == "API" {
			continue
		}
		s := e.Seq()
		if s == 0 {
			t.Errorf("%s: %s has no valid Event-Sequence", what, e)
			continue
		}
		if lastEv != nil && s <= last {
			t.Errorf("%s: Event-Sequence not strictly increasing: %s arrived after %s", what, e, lastEv)
		}
		last, lastEv = s, e
	}
}

// runJSONAllCall subscribes `event json ALL`, originates one parked call to
// number with extra channel variables, lets end() finish it, and returns the
// connection once the channel's last event (CHANNEL_STATE CS_DESTROY) arrived.
func runJSONAllCall(t *testing.T, tg *Target, number, vars string, end func(c *Conn, uid string)) (*Conn, string, string) {
	t.Helper()
	c := tg.Login()
	if f := c.Cmd("event json ALL"); f.ReplyText() != "+OK event listener enabled json" {
		t.Fatalf("event json ALL: %s", f)
	}
	uid := newUUID()
	job := c.BgAPI("originate {origination_uuid="+uid+",origination_caller_id_number=1000"+vars+"}"+carrier(number)+" &park", "")
	c.WaitEvent("CHANNEL_PARK", isEvent("CHANNEL_PARK", uid))
	end(c, uid)
	c.WaitEvent("CHANNEL_STATE CS_DESTROY", func(e *Event) bool {
		return e.Name() == "CHANNEL_STATE" && e.UID() == uid && e.Get("Channel-State") == "CS_DESTROY"
	})
	c.WaitEvent("BACKGROUND_JOB", func(e *Event) bool { return e.Name() == "BACKGROUND_JOB" && e.Get("Job-UUID") == job })
	return c, uid, job
}

func waitRemoteHangup(c *Conn, uid string) {}

func killCall(c *Conn, uid string) {
	if b := c.API("uuid_kill " + uid); b != "+OK\n" {
		c.t.Errorf("uuid_kill: want +OK, got %q", b)
	}
}

func checkOrderAgainstCapture17(t *testing.T, c *Conn, uid, job string) {
	t.Helper()
	evs := c.Events()
	want := withoutRinging(capture17Steps(t), ofUUID(evs, uid))
	got := steps(ofUUID(evs, uid))
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("event order of the call differs from capture 17 (want | got):\n%s", diffSteps(want, got))
	}
	var mine []*Event
	for _, e := range evs {
		if e.UID() == uid || (e.Name() == "BACKGROUND_JOB" && e.Get("Job-UUID") == job) {
			mine = append(mine, e)
		}
	}
	checkSeqIncreasing(t, "events of the call and its job", mine)
	if realAddr() == "" {
		checkSeqIncreasing(t, "every event on the connection", evs)
	}
	ans := firstIndex(evs, isEvent("CHANNEL_ANSWER", uid))
	bj := firstIndex(evs, func(e *Event) bool { return e.Name() == "BACKGROUND_JOB" && e.Get("Job-UUID") == job })
	if bj < ans {
		t.Errorf("BACKGROUND_JOB (+OK) of the originate arrived before the leg's CHANNEL_ANSWER")
	}
	if n := countEvents(evs, isEvent("CHANNEL_DESTROY", uid)); n != 1 {
		t.Errorf("CHANNEL_DESTROY count = %d, want 1", n)
	}
}

// Capture 17: every event of an answered, parked call that the far end hangs
// up, in order. Nothing is ignored: CODEC and CALL_UPDATE are part of the
// expected sequence because FreeSWITCH emits them deterministically for every
// answered SIP leg. Only the two steps a 180 causes (CHANNEL_PROGRESS,
// CHANNEL_CALLSTATE RINGING) are dropped when the far end did not ring.
func TestEventOrderAnsweredParkedRemoteHangup(t *testing.T) {
	tgt := newTarget(t)
	c, uid, job := runJSONAllCall(t, tgt, numBye, "", waitRemoteHangup)
	checkOrderAgainstCapture17(t, c, uid, job)
	hc := hangupComplete(c, uid)
	wantHeader(t, hc, "Hangup-Cause", "NORMAL_CLEARING")
	wantHeader(t, hc, "variable_sip_term_status", "200")
}

// The same call ended by uuid_kill instead of a BYE. Captures 01, 22 and 23
// (subsets of the event types) show the same hangup tail as capture 17:
// CHANNEL_HANGUP, CHANNEL_UNPARK, CHANNEL_EXECUTE_COMPLETE(park),
// CHANNEL_STATE(CS_HANGUP), ..., CHANNEL_HANGUP_COMPLETE, ..., CS_DESTROY.
func TestEventOrderAnsweredParkedKilled(t *testing.T) {
	tgt := newTarget(t)
	c, uid, job := runJSONAllCall(t, tgt, numAnswer, "", killCall)
	checkOrderAgainstCapture17(t, c, uid, job)
	hc := hangupComplete(c, uid)
	wantHeader(t, hc, "Hangup-Cause", "NORMAL_CLEARING")
	wantHeader(t, hc, "variable_hangup_cause_q850", "16")
	// Capture 01: a leg we hang up has no sip_term_status.
	wantNoHeader(t, hc, "variable_sip_term_status")
}

// Events that carry channel variables in capture 17, and those that do not.
var (
	varEvents = map[string]bool{
		"CHANNEL_CREATE": true, "CHANNEL_ORIGINATE": true, "CHANNEL_PROGRESS": true, "CHANNEL_ANSWER": true,
		"CALL_UPDATE": true, "CHANNEL_EXECUTE": true, "CHANNEL_PARK": true, "CHANNEL_HANGUP": true,
		"CHANNEL_UNPARK": true, "CHANNEL_EXECUTE_COMPLETE": true, "CHANNEL_HANGUP_COMPLETE": true, "CHANNEL_DESTROY": true,
	}
	noVarEvents = map[string]bool{"CHANNEL_OUTGOING": true, "CHANNEL_STATE": true, "CHANNEL_CALLSTATE": true, "CODEC": true}
)

// Capture 17 / README: key headers of an answered outbound leg.
func TestKeyHeadersAnsweredOutboundLeg(t *testing.T) {
	tgt := newTarget(t)
	tag := "ct-" + newUUID()[:8]
	c, uid, _ := runJSONAllCall(t, tgt, numBye, ",conformance_tag="+tag, waitRemoteHangup)
	evs := ofUUID(c.Events(), uid)
	answered := false
	for _, e := range evs {
		wantHeader(t, e, "Channel-Call-UUID", uid)
		wantHeader(t, e, "Caller-Orig-Caller-ID-Number", "1000")
		wantHeader(t, e, "Call-Direction", "outbound")
		if !strings.HasPrefix(e.Get("Channel-Name"), "sofia/") || !strings.HasSuffix(e.Get("Channel-Name"), numBye) {
			t.Errorf("%s: Channel-Name = %q, want sofia/<profile>/%s (capture 20)", e, e.Get("Channel-Name"), numBye)
		}
		switch {
		case varEvents[e.Name()]:
			wantHeader(t, e, "variable_conformance_tag", tag)
			wantHeader(t, e, "variable_origination_caller_id_number", "1000")
			wantHeader(t, e, "variable_uuid", uid)
		case noVarEvents[e.Name()]:
			for _, h := range e.Headers {
				if strings.HasPrefix(h.Key, "variable_") {
					t.Errorf("%s: carries %s; in capture 17 %s events carry no channel variables", e, h.Key, e.Name())
					break
				}
			}
		}
		if e.Name() == "CHANNEL_ANSWER" {
			// Capture 17: CHANNEL_ANSWER still has the original caller id.
			wantHeader(t, e, "Caller-Caller-ID-Number", "1000")
			wantHeader(t, e, "Answer-State", "answered")
			answered = true
			continue
		}
		if !answered {
			wantHeader(t, e, "Caller-Caller-ID-Number", "1000")
		}
	}
	if !answered {
		t.Fatal("no CHANNEL_ANSWER")
	}
	hc := hangupComplete(c, uid)
	// The flip: Caller-Caller-ID-Number becomes the destination after answer.
	wantHeader(t, hc, "Caller-Caller-ID-Number", numBye)
	wantHeader(t, hc, "variable_channel_cid_flipped", "yes")
	wantHeader(t, hc, "Caller-Callee-ID-Number", "1000")
	wantHeader(t, hc, "Caller-Destination-Number", numBye)
	wantHeader(t, hc, "Hangup-Cause", "NORMAL_CLEARING")
	wantHeader(t, hc, "variable_hangup_cause", "NORMAL_CLEARING")
	wantHeader(t, hc, "variable_hangup_cause_q850", "16")
	wantHeader(t, hc, "variable_sip_term_status", "200")
	wantHeader(t, hc, "Answer-State", "hangup")
	wantHeader(t, hc, "Channel-Call-State", "HANGUP")
	wantHeader(t, hc, "Channel-State", "CS_REPORTING")
	wantUint(t, hc, "variable_duration")
	wantUint(t, hc, "variable_billsec")
	if wantUint(t, hc, "variable_answer_epoch") == 0 {
		t.Errorf("answered leg: variable_answer_epoch is 0")
	}
	if wantUint(t, hc, "variable_progress_epoch") == 0 && ringing(evs) {
		t.Errorf("answered leg that rang: variable_progress_epoch is 0")
	}
	if wantUint(t, hc, "Caller-Channel-Answered-Time") == 0 {
		t.Errorf("answered leg: Caller-Channel-Answered-Time is 0")
	}
	if v := hc.Values("Hangup-Cause"); len(v) != 2 {
		t.Errorf("CHANNEL_HANGUP_COMPLETE: Hangup-Cause appears %d times, want 2", len(v))
	}
	// Capture 17: CALL_UPDATE right after answer already has the flipped number.
	for _, e := range evs {
		if e.Name() == "CALL_UPDATE" {
			wantHeader(t, e, "Caller-Caller-ID-Number", numBye)
			wantHeader(t, e, "variable_channel_cid_flipped", "yes")
		}
	}
}

// Captures 02, 04 and 08: key headers of legs that never answer.
func TestKeyHeadersUnansweredLegs(t *testing.T) {
	tgt := newTarget(t)
	cases := []struct {
		name, number, vars, reply, cause, q850, sipStatus string
		progress                                          bool
	}{
		{"busy 486", numBusy, "", "-ERR USER_BUSY\n", "USER_BUSY", "17", "486", false},
		{"no answer", numNoAnswer, ",originate_timeout=2", "-ERR NO_ANSWER\n", "NO_ANSWER", "19", "", true},
		{"congestion 503", numCongest, "", "-ERR NORMAL_TEMPORARY_FAILURE\n", "NORMAL_TEMPORARY_FAILURE", "41", "503", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := tgt.With(t).Login()
			if f := c.Cmd("event json CHANNEL_CREATE CHANNEL_PROGRESS CHANNEL_ANSWER CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE"); f.ReplyText() != "+OK event listener enabled json" {
				t.Fatalf("event json: %s", f)
			}
			uid := newUUID()
			wantBody(t, "originate", c.API("originate {origination_uuid="+uid+",origination_caller_id_number=1000"+tc.vars+"}"+carrier(tc.number)+" &park"), tc.reply)
			hc := hangupComplete(c, uid)
			evs := ofUUID(c.Events(), uid)
			if countEvents(evs, isEvent("CHANNEL_ANSWER", "")) != 0 {
				t.Errorf("unanswered leg got CHANNEL_ANSWER")
			}
			wantHeader(t, hc, "Hangup-Cause", tc.cause)
			wantHeader(t, hc, "variable_hangup_cause_q850", tc.q850)
			if tc.sipStatus != "" {
				wantHeader(t, hc, "variable_sip_term_status", tc.sipStatus)
				h := c.WaitEvent("CHANNEL_HANGUP", isEvent("CHANNEL_HANGUP", uid))
				wantHeader(t, h, "variable_sip_term_status", tc.sipStatus)
			} else {
				// Capture 04: NO_ANSWER (CANCEL sent) has no sip_term_status.
				wantNoHeader(t, hc, "variable_sip_term_status")
			}
			wantHeader(t, hc, "variable_billsec", "0")
			wantHeader(t, hc, "variable_answer_epoch", "0")
			wantHeader(t, hc, "Caller-Channel-Answered-Time", "0")
			// No flip without answer.
			wantHeader(t, hc, "Caller-Caller-ID-Number", "1000")
			wantNoHeader(t, hc, "variable_channel_cid_flipped")
			if v := hc.Values("Hangup-Cause"); len(v) != 2 {
				t.Errorf("CHANNEL_HANGUP_COMPLETE: Hangup-Cause appears %d times, want 2", len(v))
			}
			got := strings.Join(names(evs), ",")
			if tc.progress {
				// Capture 04: the ringing leg reports CHANNEL_PROGRESS (180).
				if want := "CHANNEL_CREATE,CHANNEL_PROGRESS,CHANNEL_HANGUP,CHANNEL_HANGUP_COMPLETE"; got != want {
					t.Errorf("event order: want %s (capture 04), got %s", want, got)
				}
			} else if got != "CHANNEL_CREATE,CHANNEL_HANGUP,CHANNEL_HANGUP_COMPLETE" && got != "CHANNEL_CREATE,CHANNEL_PROGRESS,CHANNEL_HANGUP,CHANNEL_HANGUP_COMPLETE" {
				// Captures 02/08 (far end sent no 180): CREATE, HANGUP,
				// HANGUP_COMPLETE; a far end that rings first adds PROGRESS.
				t.Errorf("event order: want CHANNEL_CREATE[,CHANNEL_PROGRESS],CHANNEL_HANGUP,CHANNEL_HANGUP_COMPLETE (captures 02/08), got %s", got)
			}
		})
	}
}

// Capture 17, 06, 18: the api originate reply arrives before that call's
// CHANNEL_CREATE on the same connection (a blocking api holds the
// connection's events back).
func TestAPIOriginateReplyBeforeChannelEvents(t *testing.T) {
	tgt := newTarget(t)
	c := tgt.Login()
	if f := c.Cmd("event json CHANNEL_CREATE CHANNEL_PROGRESS CHANNEL_ANSWER CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE"); f.ReplyText() != "+OK event listener enabled json" {
		t.Fatalf("event json: %s", f)
	}
	for _, number := range []string{numAnswer, numBusy} {
		uid := newUUID()
		reply := c.APIFrame("originate {origination_uuid=" + uid + "}" + carrier(number) + " &park")
		create := c.WaitEvent("CHANNEL_CREATE "+uid, isEvent("CHANNEL_CREATE", uid))
		if create.Index() < reply.Index {
			t.Errorf("%s: CHANNEL_CREATE (frame #%d) arrived before the api/response (frame #%d)", number, create.Index(), reply.Index)
		}
		for _, e := range ofUUID(c.Events(), uid) {
			if e.Index() < reply.Index {
				t.Errorf("%s: %s arrived before the api/response", number, e)
			}
		}
		if number == numAnswer {
			wantBody(t, "uuid_kill", c.API("uuid_kill "+uid), "+OK\n")
		}
		hangupComplete(c, uid)
	}
}

// Captures 25 and 31f: a leg originated without caller-id variables. Empty
// caller-profile fields are left out of events (no Caller-Caller-ID-Name;
// switch_caller.c switch_caller_profile_event_set_data adds each field only
// when it is not empty),
// the number defaults to 0000000000, and after answer the flip copies the
// callee ("Outbound Call", the destination) into the caller fields.
func TestKeyHeadersDefaultCallerID(t *testing.T) {
	tgt := newTarget(t)
	c := tgt.Login()
	subscribe(t, c, "event json CHANNEL_CREATE CHANNEL_PARK CHANNEL_HANGUP_COMPLETE")
	uid := parkedCall(t, c, numAnswer)
	cr := c.WaitEvent("CHANNEL_CREATE", isEvent("CHANNEL_CREATE", uid))
	wantHeader(t, cr, "Caller-Caller-ID-Number", "0000000000")
	wantHeader(t, cr, "Caller-Orig-Caller-ID-Number", "0000000000")
	wantHeader(t, cr, "Caller-ANI", "0000000000")
	wantNoHeader(t, cr, "Caller-Caller-ID-Name")
	wantNoHeader(t, cr, "variable_origination_caller_id_number")
	wantHeader(t, cr, "Caller-Callee-ID-Name", "Outbound Call")
	wantHeader(t, cr, "Caller-Callee-ID-Number", numAnswer)
	wantHeader(t, cr, "Caller-Destination-Number", numAnswer)
	wantHeader(t, cr, "Caller-Context", "default")
	wantHeader(t, cr, "Channel-HIT-Dialplan", "false")
	wantHeader(t, cr, "Call-Direction", "outbound")
	wantHeader(t, cr, "Caller-Logical-Direction", "outbound")
	wantHeader(t, cr, "Channel-State", "CS_INIT")
	wantHeader(t, cr, "Channel-Call-State", "DOWN")
	wantHeader(t, cr, "Answer-State", "ringing")
	wantHeader(t, cr, "Unique-ID", uid)
	wantHeader(t, cr, "Channel-Call-UUID", uid)
	p := c.WaitEvent("CHANNEL_PARK", isEvent("CHANNEL_PARK", uid))
	wantHeader(t, p, "Caller-Caller-ID-Number", numAnswer)
	wantHeader(t, p, "Caller-Caller-ID-Name", "Outbound Call")
	wantHeader(t, p, "Caller-Orig-Caller-ID-Number", "0000000000")
	wantHeader(t, p, "Channel-State", "CS_EXECUTE")
	wantHeader(t, p, "Channel-Call-State", "ACTIVE")
	wantHeader(t, p, "Answer-State", "answered")
	wantBody(t, "uuid_kill", c.API("uuid_kill "+uid), "+OK\n")
	hangupComplete(c, uid)
}
