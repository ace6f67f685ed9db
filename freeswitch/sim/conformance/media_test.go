package conformance

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// Capture 24: DTMF events from the far end: DTMF-Digit, DTMF-Duration in
// samples (1600 = 200 ms for the captured RFC 2833 digits), DTMF-Source RTP
// (RFC 2833) or ENDPOINT (SIP INFO). The 0095 far end presses 1, 9, 5.
func TestDTMFEventsFromFarEnd(t *testing.T) {
	tg := newTarget(t)
	c := tg.Login()
	subscribe(t, c, "event json DTMF CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE CHANNEL_HANGUP_COMPLETE")
	uid := newUUID()
	okUUID(t, "originate", c.API("originate {origination_uuid="+uid+"}"+carrier(numDTMF)+" &park"))
	digits := c.WaitN("DTMF", 3, isEvent("DTMF", uid))
	var got []string
	for _, e := range digits {
		got = append(got, e.Get("DTMF-Digit"))
		// DTMF-Duration is in samples at 8 kHz: the capture has 1600 (200 ms)
		// for RFC 2833 and 1280 for SIP INFO; the exact value depends on the far
		// end, so accept 100 ms..1 s worth of samples (a value in milliseconds
		// would fall below that).
		if d := wantUint(t, e, "DTMF-Duration"); d < 800 || d > 8000 {
			t.Errorf("%s: DTMF-Duration = %d, want samples (capture: 1600 RTP, 1280 INFO)", e, d)
		}
		wantHeader(t, e, "Channel-Call-UUID", uid)
		wantHeader(t, e, "Answer-State", "answered")
	}
	// The far end sends 1 and 9 as RFC 2833 events and 5 as SIP INFO
	// (capture 24; the real-mode far end, freeswitch/conf/farend, does the
	// same): DTMF-Source RTP, RTP, ENDPOINT.
	var srcs []string
	for _, e := range digits {
		srcs = append(srcs, e.Get("DTMF-Source"))
	}
	if strings.Join(srcs, ",") != "RTP,RTP,ENDPOINT" {
		t.Errorf("DTMF-Source of 1,9,5: want RTP,RTP,ENDPOINT (capture 24), got %v", srcs)
	}
	if strings.Join(got, "") != "195" {
		t.Errorf("DTMF digits: want 1,9,5 in order, got %v", got)
	}
	wantBody(t, "uuid_kill", c.API("uuid_kill "+uid), "+OK\n")
	hangupComplete(c, uid)
}

// Capture 24: sendmsg execute play_and_get_digits; the Event-UUID sent comes
// back as Application-UUID; the application sets pagd_digits, read_result.
func TestSendmsgPlayAndGetDigits(t *testing.T) {
	tg := newTarget(t)
	c := tg.Login()
	subscribe(t, c, "event json DTMF CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE CHANNEL_HANGUP_COMPLETE")
	uid := newUUID()
	okUUID(t, "originate", c.API("originate {origination_uuid="+uid+"}"+carrier(numDTMF)+" &park"))
	evUUID := newUUID()
	args := `2 5 1 5000 # silence_stream://500 silence_stream://250 pagd_digits \d+ 2000`
	f := c.Cmd("sendmsg "+uid, "call-command: execute", "execute-app-name: play_and_get_digits", "execute-app-arg: "+args, "Event-UUID: "+evUUID)
	if string(f.Raw) != "Content-Type: command/reply\nReply-Text: +OK\n\n" {
		t.Fatalf("sendmsg: want +OK, got %q", f.Raw)
	}
	ex := c.WaitEvent("CHANNEL_EXECUTE play_and_get_digits", func(e *Event) bool {
		return e.Name() == "CHANNEL_EXECUTE" && e.UID() == uid && e.Get("Application") == "play_and_get_digits"
	})
	wantHeader(t, ex, "Application-UUID", evUUID)
	wantHeader(t, ex, "Application-Data", args)
	done := c.WaitEvent("CHANNEL_EXECUTE_COMPLETE play_and_get_digits", func(e *Event) bool {
		return e.Name() == "CHANNEL_EXECUTE_COMPLETE" && e.UID() == uid && e.Get("Application") == "play_and_get_digits"
	})
	wantHeader(t, done, "Application-UUID", evUUID)
	wantHeader(t, done, "Application-Data", args)
	rr := done.Get("variable_read_result")
	t.Logf("play_and_get_digits: read_result=%q pagd_digits=%q", rr, done.Get("variable_pagd_digits"))
	var during strings.Builder
	for _, e := range ofUUID(c.Events(), uid) {
		if e.Name() == "DTMF" && e.Index() > ex.Index() && e.Index() < done.Index() {
			during.WriteString(e.Get("DTMF-Digit"))
		}
	}
	switch rr {
	case "success":
		// With min 2 / max 5 digits and terminator #, the collected digits are
		// those pressed while the application ran.
		wantHeader(t, done, "variable_pagd_digits", strings.TrimSuffix(during.String(), "#"))
		if !regexp.MustCompile(`^\d{2,5}$`).MatchString(done.Get("variable_pagd_digits")) {
			t.Errorf("pagd_digits %q does not match \\d{2,5}", done.Get("variable_pagd_digits"))
		}
	case "timeout":
		// switch_ivr_read: the digit timeout ended the read (no #). With at
		// least the minimum, switch_play_and_get_digits still takes the
		// digits (a timeout with enough digits is a success) but
		// read_result keeps the read's "timeout".
		if during.Len() >= 2 {
			wantHeader(t, done, "variable_pagd_digits", during.String())
		} else if done.Get("variable_pagd_digits") != "" {
			t.Errorf("read_result timeout with %q pressed, yet pagd_digits = %q", during.String(), done.Get("variable_pagd_digits"))
		}
	case "failure":
		if during.Len() >= 2 {
			t.Errorf("read_result %s although %q was pressed during the application", rr, during.String())
		}
	default:
		t.Errorf("CHANNEL_EXECUTE_COMPLETE play_and_get_digits: variable_read_result = %q, want success|failure|timeout", rr)
	}
	wantBody(t, "uuid_getvar read_result", c.API("uuid_getvar "+uid+" read_result"), rr)
	wantBody(t, "uuid_kill", c.API("uuid_kill "+uid), "+OK\n")
	hangupComplete(c, uid)
}

// Capture 27: HEARTBEAT every 20 s followed by RE_SCHEDULE. In sim mode the
// 20 s are simulated (2 s real at TimeScale 10); against a real FreeSWITCH the
// test waits up to one full interval (kept: at most ~20 s).
func TestHeartbeatThenReSchedule(t *testing.T) {
	tg := newTarget(t)
	c := tg.Login()
	subscribe(t, c, "event json HEARTBEAT RE_SCHEDULE")
	wait := 25 * time.Second
	if !tg.Real {
		wait = 20 * time.Second / simTimeScale * 3
	}
	f, err := c.WaitFrame(wait, func(f *Frame) bool { return f.Event != nil && f.Event.Name() == "HEARTBEAT" })
	if err != nil {
		t.Fatalf("no HEARTBEAT within %v: %v", wait, err)
	}
	hb := f.Event
	rs := c.WaitEvent("RE_SCHEDULE", func(e *Event) bool { return e.Name() == "RE_SCHEDULE" && e.Index() > hb.Index() })
	for _, e := range c.Events() {
		if e.Index() > hb.Index() && e.Index() < rs.Index() {
			t.Errorf("%s between HEARTBEAT and RE_SCHEDULE", e)
		}
	}
	if rs.Seq() <= hb.Seq() {
		t.Errorf("RE_SCHEDULE Event-Sequence %d not after HEARTBEAT's %d", rs.Seq(), hb.Seq())
	}
	golden := captureEvents(t, "27_heartbeat_and_re_schedule.recv.raw")
	for i, e := range []*Event{hb, rs} {
		for _, h := range golden[i].Headers {
			if !e.Has(h.Key) {
				t.Errorf("%s: header %s (capture 27) missing", e.Name(), h.Key)
			}
		}
	}
	wantHeader(t, hb, "Event-Info", "System Ready")
	wantHeader(t, hb, "Event-Calling-Function", "send_heartbeat")
	if !regexp.MustCompile(`^\d+ years?, \d+ days?, \d+ hours?, \d+ minutes?, \d+ seconds?, \d+ milliseconds?, \d+ microseconds?$`).MatchString(hb.Get("Up-Time")) {
		t.Errorf("HEARTBEAT Up-Time %q lacks the captured shape", hb.Get("Up-Time"))
	}
	for _, k := range []string{"Uptime-msec", "Session-Count", "Max-Sessions", "Session-Per-Sec", "Session-Since-Startup"} {
		wantUint(t, hb, k)
	}
	wantHeader(t, rs, "Task-Desc", "heartbeat")
	wantHeader(t, rs, "Task-Group", "core")
	wantUint(t, rs, "Task-ID")
	wantUint(t, rs, "Task-Runtime")
	wantHeader(t, rs, "Event-Calling-Function", "switch_scheduler_execute")
}

// The ringback dialplan's ivr_digits extension (freeswitch/conf/dialplan/
// ringback.xml), driven as origination drives it: uuid_setvar_multi with
// the ringback_pagd_* inputs, then uuid_transfer ... ivr_digits XML
// ringback. The inputs not set fall back to the pre-processor globals
// (digit timeout 3000). play_and_get_digits's CHANNEL_EXECUTE_COMPLETE
// carries the channel variables (switch_core_session_exec sets extended
// data on it): the variable named by ringback_pagd_var and read_result. The
// 0095 far end presses 1 one second after the answer, during the wait for
// a digit.
func TestRingbackIVRDigits(t *testing.T) {
	tg := newTarget(t)
	c := tg.Login()
	subscribe(t, c, "event json CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE CHANNEL_PARK CHANNEL_HANGUP_COMPLETE")
	uid := newUUID()
	okUUID(t, "originate", c.API("originate {origination_uuid="+uid+"}"+carrier(numDTMF)+" &park"))
	wantBody(t, "uuid_setvar_multi", c.API("uuid_setvar_multi "+uid+" ringback_pagd_tries=1;ringback_pagd_timeout_ms=8000;"+
		"ringback_pagd_terminators=none;ringback_pagd_prompt=silence_stream://250;ringback_pagd_var=ringback_digits;"+
		"ringback_pagd_regexp=^[19*#]$"), "+OK\n")
	wantBody(t, "uuid_transfer", c.API("uuid_transfer "+uid+" ivr_digits XML ringback"), "+OK\n")
	ex := c.WaitEvent("CHANNEL_EXECUTE play_and_get_digits", func(e *Event) bool {
		return e.Name() == "CHANNEL_EXECUTE" && e.UID() == uid && e.Get("Application") == "play_and_get_digits"
	})
	// The extension's argument order, with the globals' defaults for what
	// was not set.
	wantHeader(t, ex, "Application-Data", "1 1 1 8000 none silence_stream://250 silence_stream://250 ringback_digits ^[19*#]$ 3000")
	done := c.WaitEvent("CHANNEL_EXECUTE_COMPLETE play_and_get_digits", func(e *Event) bool {
		return e.Name() == "CHANNEL_EXECUTE_COMPLETE" && e.UID() == uid && e.Get("Application") == "play_and_get_digits"
	})
	// The far end presses 1 at 1.0 s after the answer and 9 at 1.4 s, and
	// play_and_get_digits flushes the digits that came before it. The test's
	// commands normally start it well before the 1; on a loaded machine
	// they can take longer, and then the 9 is the digit read.
	lag := time.Duration(wantUint(t, ex, "Event-Date-Timestamp")-wantUint(t, ex, "Caller-Channel-Answered-Time")) * time.Microsecond
	switch got := done.Get("variable_ringback_digits"); {
	case lag < 900*time.Millisecond && got != "1":
		t.Errorf("collection started %s after the answer: read %q, want the 1 pressed at 1 s", lag, got)
	case lag >= 900*time.Millisecond && lag < 1300*time.Millisecond && got != "1" && got != "9":
		t.Errorf("collection started %s after the answer: read %q, want the 1 or the 9 pressed at 1 s and 1.4 s", lag, got)
	case lag >= 1300*time.Millisecond:
		t.Skipf("the collection started %s after the answer, past the digits the regexp takes (the machine is loaded)", lag)
	}
	wantHeader(t, done, "variable_read_result", "success")
	// The globals are not channel variables.
	wantNoHeader(t, done, "variable_ringback_pagd_min")
	// Then the extension parks the leg again.
	c.WaitEvent("CHANNEL_PARK after ivr_digits", func(e *Event) bool {
		return e.Name() == "CHANNEL_PARK" && e.UID() == uid && e.Index() > done.Index()
	})
	wantBody(t, "uuid_kill", c.API("uuid_kill "+uid), "+OK\n")
	hangupComplete(c, uid)
}

// A queue's hold music and its end, as origination drives them: the music
// is uuid_broadcast endless_playback::FILE (each round a playback of its
// own), and the no-agent message is the ringback dialplan's goodbye
// extension, whose transfer ends endless_playback (uuid_break would only
// start its file over), plays ringback_message and hangs up.
func TestRingbackHoldMusicThenGoodbye(t *testing.T) {
	tg := newTarget(t)
	c := tg.Login()
	subscribe(t, c, "event json PLAYBACK_START PLAYBACK_STOP CHANNEL_EXECUTE_COMPLETE CHANNEL_HANGUP_COMPLETE")
	uid := newUUID()
	okUUID(t, "originate", c.API("originate {origination_uuid="+uid+"}"+carrier(numAnswer)+" &park"))
	const hold, msg = "tone_stream://%(200,0,440)", "silence_stream://300"
	wantBody(t, "uuid_broadcast", c.API("uuid_broadcast "+uid+" endless_playback::"+hold+" aleg"), "+OK Message sent\n")
	rounds := 0
	for rounds < 2 {
		stop := c.WaitEvent("PLAYBACK_STOP of a hold music round", func(e *Event) bool {
			return e.Name() == "PLAYBACK_STOP" && e.UID() == uid && e.Get("Playback-File-Path") == hold
		})
		wantHeader(t, stop, "Playback-Status", "done")
		rounds++
	}
	wantBody(t, "uuid_setvar", c.API("uuid_setvar "+uid+" ringback_message "+msg), "+OK\n")
	wantBody(t, "uuid_transfer", c.API("uuid_transfer "+uid+" goodbye XML ringback"), "+OK\n")
	c.WaitEvent("CHANNEL_EXECUTE_COMPLETE endless_playback", func(e *Event) bool {
		return e.Name() == "CHANNEL_EXECUTE_COMPLETE" && e.UID() == uid && e.Get("Application") == "endless_playback"
	})
	start := c.WaitEvent("PLAYBACK_START of the message", func(e *Event) bool {
		return e.Name() == "PLAYBACK_START" && e.UID() == uid && e.Get("Playback-File-Path") == msg
	})
	stop := c.WaitEvent("PLAYBACK_STOP of the message", func(e *Event) bool {
		return e.Name() == "PLAYBACK_STOP" && e.UID() == uid && e.Get("Playback-File-Path") == msg && e.Index() > start.Index()
	})
	wantHeader(t, stop, "Playback-Status", "done")
	end := hangupComplete(c, uid)
	wantHeader(t, end, "Hangup-Cause", "NORMAL_CLEARING")
	if end.Index() < stop.Index() {
		t.Errorf("the leg hung up before its message ended")
	}
}

// A playback the party's hangup cuts: switch_ivr_play_file ends with a
// status other than BREAK, so PLAYBACK_STOP says "done" (Answer-State
// hangup: the channel is going), and playback answers PLAYBACK ERROR. Only
// uuid_break (or a digit that ends a prompt) says "break". The 0002 far end
// hangs up 2 s after its answer, during a 20 s tone.
func TestPlaybackCutByHangup(t *testing.T) {
	tg := newTarget(t)
	c := tg.Login()
	subscribe(t, c, "event json PLAYBACK_START PLAYBACK_STOP CHANNEL_EXECUTE_COMPLETE CHANNEL_HANGUP_COMPLETE")
	uid := newUUID()
	okUUID(t, "originate", c.API("originate {origination_uuid="+uid+"}"+carrier(numBye)+" &park"))
	const tone = "tone_stream://%(20000,0,440)"
	wantBody(t, "uuid_broadcast", c.API("uuid_broadcast "+uid+" "+tone+" aleg"), "+OK Message sent\n")
	c.WaitEvent("PLAYBACK_START", isEvent("PLAYBACK_START", uid))
	stop := c.WaitEvent("PLAYBACK_STOP", isEvent("PLAYBACK_STOP", uid))
	wantHeader(t, stop, "Playback-Status", "done")
	wantHeader(t, stop, "Answer-State", "hangup")
	done := c.WaitEvent("CHANNEL_EXECUTE_COMPLETE playback", func(e *Event) bool {
		return e.Name() == "CHANNEL_EXECUTE_COMPLETE" && e.UID() == uid && e.Get("Application") == "playback"
	})
	wantHeader(t, done, "Application-Response", "PLAYBACK ERROR")
	hangupComplete(c, uid)
}
