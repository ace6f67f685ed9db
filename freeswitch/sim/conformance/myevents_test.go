package conformance

import (
	"strings"
	"testing"
)

// sessionDisconnect is the disconnect notice of a connection bound to a
// session by myevents (captures 31a, 31b, 31d).
func sessionDisconnect(uid string) string {
	return "Content-Type: text/disconnect-notice\nControlled-Session-UUID: " + uid +
		"\nContent-Disposition: disconnect\nContent-Length: 67\n\n" + disconnectBody
}

// Capture 31a: myevents argument forms, "-ERR aready enabled." (sic), events
// of that session only, and a disconnect notice + close when the call ends
// (CHANNEL_DESTROY never arrives).
func TestMyEventsSessionBoundConnection(t *testing.T) {
	tg := newTarget(t)
	ctl := tg.Login()
	if f := ctl.Cmd("event json CHANNEL_PARK"); f.ReplyText() != "+OK event listener enabled json" {
		t.Fatalf("event json: %s", f)
	}
	uid := newUUID()
	okUUID(t, "originate", ctl.API("originate {origination_uuid="+uid+"}"+carrier(numAnswer)+" &park"))
	// As in capture 31a, bind the connection once the call is parked.
	ctl.WaitEvent("CHANNEL_PARK", isEvent("CHANNEL_PARK", uid))

	c := tg.Login()
	cmds := []struct{ cmd, want string }{
		// uuid "json" is unknown and a format follows: mod_event_socket.c
		// parse_command answers -ERR invalid uuid.
		{"myevents json " + uid, "-ERR invalid uuid"},
		{"myevents " + uid + " json", "+OK Events Enabled"},
		{"myevents " + uid, "-ERR aready enabled."},
	}
	for _, s := range cmds {
		f := c.Cmd(s.cmd)
		want := "Content-Type: command/reply\nReply-Text: " + s.want + "\n\n"
		if string(f.Raw) != want {
			t.Errorf("%q: want %q, got %q", s.cmd, want, f.Raw)
		}
	}
	wantBody(t, "uuid_getvar on the myevents connection", c.API("uuid_getvar "+uid+" origination_uuid"), uid)

	// Another call's events must not reach the session-bound connection.
	other := newUUID()
	okUUID(t, "originate other", ctl.API("originate {origination_uuid="+other+"}"+carrier(numAnswerB)+" &park"))
	wantBody(t, "uuid_kill other", ctl.API("uuid_kill "+other), "+OK\n")
	wantBody(t, "uuid_kill", ctl.API("uuid_kill "+uid), "+OK\n")

	d := waitDisconnect(t, c, tg.Wait)
	if string(d.Raw) != sessionDisconnect(uid) {
		t.Errorf("disconnect notice when the session ends: want %q, got %q", sessionDisconnect(uid), d.Raw)
	}
	wantCleanClose(t, c, tg.Wait)

	evs := c.Events()
	for _, e := range evs {
		if e.UID() != uid {
			t.Errorf("session-bound connection received an event of another channel: %s", e)
		}
		// Capture 31a: "myevents <uuid> json" still delivers text/event-plain
		// (parse_command cuts the format off before it looks for it).
		if e.Format != "plain" {
			t.Errorf("%s: Content-Type %s; after \"myevents <uuid> json\" FreeSWITCH sends text/event-plain (capture 31a)", e, e.Frame.ContentType())
		}
		if e.Index() > d.Index {
			t.Errorf("%s arrived after the disconnect notice", e)
		}
	}
	// The connection holds a read lock on the session (parse_command's
	// switch_core_session_locate) and read_packet disconnects as soon as the
	// channel is down, so CHANNEL_DESTROY can never reach it.
	if got, want := strings.Join(steps(evs), ","), myeventsHangupTail; got != want {
		t.Errorf("events on the session-bound connection: want %s (capture 31a: ends with HANGUP_COMPLETE, then the disconnect notice), got %s", want, got)
	}
}

// Capture 31b: "linger 3" on a myevents connection, the linger notice when the
// call ends, the connection still answering, then the final disconnect.
func TestMyEventsLinger(t *testing.T) {
	tg := newTarget(t)
	ctl := tg.Login()
	if f := ctl.Cmd("event json CHANNEL_PARK"); f.ReplyText() != "+OK event listener enabled json" {
		t.Fatalf("event json: %s", f)
	}
	uid := newUUID()
	okUUID(t, "originate", ctl.API("originate {origination_uuid="+uid+"}"+carrier(numAnswer)+" &park"))
	ctl.WaitEvent("CHANNEL_PARK", isEvent("CHANNEL_PARK", uid))
	c := tg.Login()
	if f := c.Cmd("myevents " + uid); f.ReplyText() != "+OK Events Enabled" {
		t.Fatalf("myevents: %s", f)
	}
	if f := c.Cmd("linger 3"); string(f.Raw) != "Content-Type: command/reply\nReply-Text: +OK will linger 3 seconds\n\n" {
		t.Errorf("linger 3: want +OK will linger 3 seconds, got %q", f.Raw)
	}
	wantBody(t, "uuid_kill", ctl.API("uuid_kill "+uid), "+OK\n")
	hangupComplete(c, uid)
	lf, err := c.WaitFrame(tg.Wait, func(f *Frame) bool { return f.ContentType() == "text/disconnect-notice" })
	if err != nil {
		t.Fatalf("linger notice: %v", err)
	}
	wantLinger := "Content-Type: text/disconnect-notice\nControlled-Session-UUID: " + uid +
		"\nContent-Disposition: linger\nChannel-Name: " + lf.Header("Channel-Name") + "\nLinger-Time: 3\nContent-Length: 0\n\n"
	if string(lf.Raw) != wantLinger || !strings.HasPrefix(lf.Header("Channel-Name"), "sofia/") {
		t.Errorf("linger notice: want %q (capture 31b), got %q", wantLinger, lf.Raw)
	}
	// While lingering the connection still answers.
	wantBody(t, "uuid_exists while lingering", c.API("uuid_exists "+uid), "false")
	f, err := c.WaitFrame(tg.Wait, func(f *Frame) bool {
		return f.ContentType() == "text/disconnect-notice" && f.Index > lf.Index
	})
	if err != nil {
		t.Fatalf("final disconnect notice after linger: %v", err)
	}
	if string(f.Raw) != sessionDisconnect(uid) {
		t.Errorf("final disconnect notice: want %q, got %q", sessionDisconnect(uid), f.Raw)
	}
	wantCleanClose(t, c, tg.Wait)
	// Capture 31b: the session's events up to HANGUP_COMPLETE, then the
	// linger notice; nothing after it (the listener's session lock keeps
	// CHANNEL_DESTROY from happening while it lingers).
	var before, after []*Event
	for _, e := range c.Events() {
		if e.Index() < lf.Index {
			before = append(before, e)
		} else {
			after = append(after, e)
		}
	}
	if got, want := strings.Join(steps(before), ","), myeventsHangupTail; got != want {
		t.Errorf("events before the linger notice: want %s (capture 31b), got %s", want, got)
	}
	if len(after) != 0 {
		t.Errorf("events after the linger notice (capture 31b has none):\n%s", dumpEvents(after))
	}
}

// myeventsHangupTail is what a myevents connection receives when its parked
// call ends (captures 31a and 31b).
const myeventsHangupTail = "CHANNEL_HANGUP,CHANNEL_UNPARK,CHANNEL_EXECUTE_COMPLETE(park),CHANNEL_STATE(CS_HANGUP),CHANNEL_STATE(CS_REPORTING),CHANNEL_HANGUP_COMPLETE"

// Captures 31c and 31d: exit on a myevents connection while the call is parked
// hangs the call up (NORMAL_CLEARING), and the disconnect notice names the
// session.
func TestMyEventsExitHangsUpParkedCall(t *testing.T) {
	tg := newTarget(t)
	watcher := tg.Login()
	uid := newUUID()
	if f := watcher.Cmd("event json CHANNEL_PARK CHANNEL_HANGUP_COMPLETE"); f.ReplyText() != "+OK event listener enabled json" {
		t.Fatalf("event json: %s", f)
	}
	if f := watcher.Cmd("filter Unique-ID " + uid); f.ReplyText() != "+OK filter added. [Unique-ID]=["+uid+"]" {
		t.Fatalf("filter: %s", f)
	}
	okUUID(t, "originate", watcher.API("originate {origination_uuid="+uid+"}"+carrier(numAnswer)+" &park"))
	watcher.WaitEvent("CHANNEL_PARK", isEvent("CHANNEL_PARK", uid))

	c := tg.Login()
	if f := c.Cmd("myevents " + uid); f.ReplyText() != "+OK Events Enabled" {
		t.Fatalf("myevents: %s", f)
	}
	wantBody(t, "uuid_exists", c.API("uuid_exists "+uid), "true")
	if f := c.Cmd("exit"); string(f.Raw) != "Content-Type: command/reply\nReply-Text: +OK bye\n\n" {
		t.Errorf("exit: got %q", f.Raw)
	}
	d := waitDisconnect(t, c, tg.Wait)
	if string(d.Raw) != sessionDisconnect(uid) {
		t.Errorf("disconnect notice after exit: want %q (capture 31d), got %q", sessionDisconnect(uid), d.Raw)
	}
	wantCleanClose(t, c, tg.Wait)
	hc := hangupComplete(watcher, uid)
	wantHeader(t, hc, "Hangup-Cause", "NORMAL_CLEARING")
	wantBody(t, "uuid_exists after exit", watcher.API("uuid_exists "+uid), "false")
}

// Capture 31f: myevents with an unknown uuid answers +OK Events Enabled and
// then delivers every channel's events (plain), of the myevents event types
// only (mod_event_socket.c parse_command sets that list; event_handler drops
// events without Unique-ID, so no BACKGROUND_JOB, API or HEARTBEAT).
func TestMyEventsUnknownUUIDGetsAllChannels(t *testing.T) {
	tg := newTarget(t)
	c := tg.Login()
	if f := c.Cmd("myevents " + newUUID()); string(f.Raw) != "Content-Type: command/reply\nReply-Text: +OK Events Enabled\n\n" {
		t.Fatalf("myevents <unknown uuid>: want +OK Events Enabled, got %q", f.Raw)
	}
	uid := newUUID()
	okUUID(t, "originate", c.API("originate {origination_uuid="+uid+"}"+carrier(numBye)+" &park"))
	c.WaitEvent("CHANNEL_STATE CS_DESTROY", func(e *Event) bool {
		return e.Name() == "CHANNEL_STATE" && e.UID() == uid && e.Get("Channel-State") == "CS_DESTROY"
	})
	evs := c.Events()
	for _, e := range evs {
		if e.Format != "plain" {
			t.Errorf("%s: want text/event-plain, got %s", e, e.Frame.ContentType())
		}
		if e.UID() == "" {
			t.Errorf("%s: event without Unique-ID delivered to a myevents connection", e)
		}
	}
	want := withoutRinging(steps(ofUUID(captureEvents(t, "31f_myevents_unknown_uuid_gets_all_channels.recv.raw"), "31000000-0000-4000-8000-0000000000f9")), ofUUID(evs, uid))
	got := steps(ofUUID(evs, uid))
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("events of the call differ from capture 31f (want | got):\n%s", diffSteps(want, got))
	}
	if f := c.Cmd("exit"); f.ReplyText() != "+OK bye" {
		t.Errorf("exit: %s", f)
	}
	// Capture 31f: no session was found, so the notice is the plain one.
	d := waitDisconnect(t, c, tg.Wait)
	if string(d.Raw) != plainDisconnect {
		t.Errorf("disconnect notice: want %q (capture 31f), got %q", plainDisconnect, d.Raw)
	}
}

// Capture 31e: filters select events by header value; a Unique-ID filter
// hides BACKGROUND_JOB (no Unique-ID) unless a Job-UUID filter matches;
// filters are OR-ed.
func TestFilterUniqueIDAndJobUUID(t *testing.T) {
	tg := newTarget(t)
	c := tg.Login()
	if f := c.Cmd("event json CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE BACKGROUND_JOB"); f.ReplyText() != "+OK event listener enabled json" {
		t.Fatalf("event json: %s", f)
	}
	a, b := newUUID(), newUUID()
	ja, jb, jk := newUUID(), newUUID(), newUUID()
	if f := c.Cmd("filter Unique-ID " + a); f.ReplyText() != "+OK filter added. [Unique-ID]=["+a+"]" {
		t.Errorf("filter: %s", f)
	}
	c.BgAPI("originate {origination_uuid="+a+"}"+carrier(numBye)+" &park", ja)
	c.BgAPI("originate {origination_uuid="+b+"}"+carrier(numAnswerB)+" &park", jb)
	hangupComplete(c, a)
	// Make sure b is up before switching filters.
	ctl := tg.Login()
	waitExists(t, tg, ctl, b)
	if f := c.Cmd("filter Job-UUID " + jk); f.ReplyText() != "+OK filter added. [Job-UUID]=["+jk+"]" {
		t.Errorf("filter Job-UUID: %s", f)
	}
	if f := c.Cmd("filter Unique-ID " + b); f.ReplyText() != "+OK filter added. [Unique-ID]=["+b+"]" {
		t.Errorf("filter: %s", f)
	}
	c.BgAPI("uuid_kill "+b, jk)
	bj := c.WaitEvent("BACKGROUND_JOB of uuid_kill", func(e *Event) bool { return e.Name() == "BACKGROUND_JOB" && e.Get("Job-UUID") == jk })
	wantHeader(t, bj, "Job-Command", "uuid_kill")
	wantHeader(t, bj, "Job-Command-Arg", b)
	if bj.Body != "+OK\n" {
		t.Errorf("BACKGROUND_JOB uuid_kill body: want %q, got %q", "+OK\n", bj.Body)
	}
	hb := hangupComplete(c, b)
	wantHeader(t, hb, "Hangup-Cause", "NORMAL_CLEARING")

	for _, e := range c.Events() {
		switch {
		case e.Name() == "BACKGROUND_JOB" && (e.Get("Job-UUID") == ja || e.Get("Job-UUID") == jb):
			t.Errorf("%s: a Unique-ID filter must hide BACKGROUND_JOB (capture 31e)", e)
		case e.UID() == b && e.Name() != "CHANNEL_HANGUP_COMPLETE":
			t.Errorf("%s: event of %s before its filter was added", e, b)
		case e.UID() != "" && e.UID() != a && e.UID() != b:
			t.Errorf("%s: event of an unfiltered channel", e)
		}
	}
	for _, n := range []string{"CHANNEL_CREATE", "CHANNEL_ANSWER", "CHANNEL_HANGUP_COMPLETE"} {
		if countEvents(c.Events(), isEvent(n, a)) != 1 {
			t.Errorf("filtered channel: want exactly one %s", n)
		}
	}
	deletes := []struct{ cmd, want string }{
		{"filter delete Unique-ID " + a, "+OK filter deleted. [Unique-ID][" + a + "]"},
		{"filter delete all", "+OK filter deleted. [all][]"},
		{"filter delete Unique-ID nosuchvalue", "+OK filter deleted. [Unique-ID][nosuchvalue]"},
	}
	for _, s := range deletes {
		if f := c.Cmd(s.cmd); f.ReplyText() != s.want {
			t.Errorf("%q: want %q, got %s", s.cmd, s.want, f)
		}
	}
}

// waitExists polls uuid_exists until the channel exists.
func waitExists(t *testing.T, tg *Target, c *Conn, uid string) {
	t.Helper()
	for i := 0; i < 400; i++ {
		if c.API("uuid_exists "+uid) == "true" {
			return
		}
		tg.SimSleep(100e6) // 100 ms simulated
	}
	t.Fatalf("channel %s never came up", uid)
}
