package conformance

import (
	"encoding/json"
	"strings"
	"testing"
)

// parkedCall originates a parked call on c and waits for its CHANNEL_PARK
// (c must be subscribed to CHANNEL_PARK).
func parkedCall(t *testing.T, c *Conn, number string) string {
	t.Helper()
	uid := newUUID()
	okUUID(t, "originate", c.API("originate {origination_uuid="+uid+"}"+carrier(number)+" &park"))
	c.WaitEvent("CHANNEL_PARK", isEvent("CHANNEL_PARK", uid))
	return uid
}

// Capture 22: uuid_broadcast replies, playback event order, Playback-Status
// done and break, the leg stays parked.
func TestUUIDBroadcastPlaybackAndBreak(t *testing.T) {
	tg := newTarget(t)
	c := tg.Login()
	subscribe(t, c, "event json CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE PLAYBACK_START PLAYBACK_STOP CHANNEL_PARK CHANNEL_UNPARK CHANNEL_HANGUP_COMPLETE")
	uid := parkedCall(t, c, numAnswer)

	play := func(t *testing.T, arg, app, data, status string, breakIt bool) {
		t.Helper()
		start := len(c.Frames())
		wantBody(t, "uuid_broadcast "+arg, c.API("uuid_broadcast "+uid+" "+arg+" aleg"), "+OK Message sent\n")
		after := func(pred func(*Event) bool) func(*Event) bool {
			return func(e *Event) bool { return e.Index() >= start && pred(e) }
		}
		ex := c.WaitEvent("CHANNEL_EXECUTE "+app, after(func(e *Event) bool {
			return e.Name() == "CHANNEL_EXECUTE" && e.UID() == uid && e.Get("Application") == app
		}))
		wantHeader(t, ex, "Application-Data", data)
		ps := c.WaitEvent("PLAYBACK_START", after(isEvent("PLAYBACK_START", uid)))
		wantHeader(t, ps, "Playback-File-Path", data)
		if breakIt {
			wantBody(t, "uuid_break", c.API("uuid_break "+uid), "+OK\n")
		}
		pe := c.WaitEvent("PLAYBACK_STOP", after(isEvent("PLAYBACK_STOP", uid)))
		wantHeader(t, pe, "Playback-Status", status)
		wantHeader(t, pe, "Playback-File-Path", data)
		// The file's type is named for tone_stream (and local_stream) only.
		for _, e := range []*Event{ps, pe} {
			if strings.HasPrefix(data, "tone_stream:") {
				wantHeader(t, e, "Playback-File-Type", "tone_stream")
			} else {
				wantNoHeader(t, e, "Playback-File-Type")
			}
		}
		done := c.WaitEvent("CHANNEL_EXECUTE_COMPLETE "+app, after(func(e *Event) bool {
			return e.Name() == "CHANNEL_EXECUTE_COMPLETE" && e.UID() == uid && e.Get("Application") == app
		}))
		wantHeader(t, done, "Application-UUID", ex.Get("Application-UUID"))
		wantHeader(t, done, "Application-Data", data)
		wantHeader(t, done, "Application-Response", "FILE PLAYED")
		var got []string
		for _, e := range ofUUID(c.Events(), uid) {
			if e.Index() >= start && e.Index() <= done.Index() {
				got = append(got, e.Name())
			}
		}
		if w := "CHANNEL_EXECUTE,PLAYBACK_START,PLAYBACK_STOP,CHANNEL_EXECUTE_COMPLETE"; strings.Join(got, ",") != w {
			t.Errorf("broadcast %s: want %s (capture 22; the leg stays parked), got %s", arg, w, strings.Join(got, ","))
		}
	}
	play(t, "tone_stream://%(500,500,440);loops=2", "playback", "tone_stream://%(500,500,440);loops=2", "done", false)
	play(t, "playback::silence_stream://1000", "playback", "silence_stream://1000", "done", false)
	play(t, "tone_stream://%(1000,0,440);loops=-1", "playback", "tone_stream://%(1000,0,440);loops=-1", "break", true)

	gone := newUUID()
	wantBody(t, "uuid_broadcast unknown", c.API("uuid_broadcast "+gone+" tone_stream://%(100,0,440) aleg"), "-ERR invalid uuid\n")
	wantBody(t, "uuid_break unknown", c.API("uuid_break "+gone), "-ERR No such channel!\n")
	if n := countEvents(c.Events(), isEvent("CHANNEL_UNPARK", uid)); n != 0 {
		t.Errorf("the parked leg was unparked by the broadcasts (%d CHANNEL_UNPARK)", n)
	}
	wantBody(t, "uuid_kill", c.API("uuid_kill "+uid), "+OK\n")
	hangupComplete(c, uid)
	var tailSteps []string
	for _, e := range ofUUID(c.Events(), uid) {
		if e.Name() == "CHANNEL_UNPARK" || (e.Name() == "CHANNEL_EXECUTE_COMPLETE" && e.Get("Application") == "park") || e.Name() == "CHANNEL_HANGUP_COMPLETE" {
			tailSteps = append(tailSteps, step(e))
		}
	}
	if w := "CHANNEL_UNPARK,CHANNEL_EXECUTE_COMPLETE(park),CHANNEL_HANGUP_COMPLETE"; strings.Join(tailSteps, ",") != w {
		t.Errorf("after uuid_kill: want %s (capture 22), got %s", w, strings.Join(tailSteps, ","))
	}
}

// Capture 23: uuid_transfer to an extension of context fsref (6006: answer,
// tone, park), to a missing extension (NO_ROUTE_DESTINATION), unknown uuid.
func TestUUIDTransfer(t *testing.T) {
	tg := newTarget(t)
	c := tg.Login()
	subscribe(t, c, "event json CHANNEL_STATE CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE CHANNEL_PARK CHANNEL_UNPARK CHANNEL_HANGUP_COMPLETE")
	uid := parkedCall(t, c, numAnswer)
	start := len(c.Frames())
	wantBody(t, "uuid_transfer to 6006 XML fsref", c.API("uuid_transfer "+uid+" 6006 XML fsref"), "+OK\n")
	p := c.WaitEvent("CHANNEL_PARK after the transfer", func(e *Event) bool {
		return e.Name() == "CHANNEL_PARK" && e.UID() == uid && e.Index() >= start
	})
	wantHeader(t, p, "Caller-Destination-Number", "6006")
	wantHeader(t, p, "Caller-Context", "fsref")
	var got []string
	for _, e := range ofUUID(c.Events(), uid) {
		if e.Index() >= start && e.Index() <= p.Index() {
			got = append(got, step(e))
		}
	}
	want := "CHANNEL_UNPARK,CHANNEL_EXECUTE_COMPLETE(park),CHANNEL_STATE(CS_ROUTING),CHANNEL_STATE(CS_EXECUTE)," +
		"CHANNEL_EXECUTE(answer),CHANNEL_EXECUTE_COMPLETE(answer),CHANNEL_EXECUTE(playback),CHANNEL_EXECUTE_COMPLETE(playback)," +
		"CHANNEL_EXECUTE(park),CHANNEL_PARK"
	if strings.Join(got, ",") != want {
		t.Errorf("transfer to 6006: want %s (capture 23), got %s", want, strings.Join(got, ","))
	}
	if h := c.API("uuid_getvar " + uid + " transfer_history"); !strings.HasSuffix(h, ":bl_xfer:6006/fsref/XML") || strings.HasSuffix(h, "\n") {
		t.Errorf("transfer_history: want \"<epoch>:<uuid>:bl_xfer:6006/fsref/XML\" without newline (capture 23), got %q", h)
	}
	wantBody(t, "uuid_kill", c.API("uuid_kill "+uid), "+OK\n")
	hangupComplete(c, uid)

	u2 := parkedCall(t, c, numAnswerB)
	wantBody(t, "uuid_transfer to a missing extension", c.API("uuid_transfer "+u2+" 9999 XML fsref"), "+OK\n")
	h2 := hangupComplete(c, u2)
	wantHeader(t, h2, "Hangup-Cause", "NO_ROUTE_DESTINATION")
	wantHeader(t, h2, "variable_hangup_cause_q850", "3")
	wantHeader(t, h2, "Caller-Destination-Number", "9999")
	wantHeader(t, h2, "Caller-Context", "fsref")
	wantBody(t, "uuid_transfer unknown uuid", c.API("uuid_transfer "+newUUID()+" 6006 XML fsref"), "-ERR No such channel!\n")
}

// Capture 26: variables, uuid_dump json.
func TestUUIDVariablesAndDump(t *testing.T) {
	tg := newTarget(t)
	c := tg.Login()
	subscribe(t, c, "event json CHANNEL_BRIDGE CHANNEL_HANGUP_COMPLETE BACKGROUND_JOB")
	a, b := newUUID(), newUUID()
	c.BgAPI("originate {origination_uuid="+a+"}"+carrier(numAnswer)+" &bridge({origination_uuid="+b+"}"+carrier(numAnswerB)+")", "")
	c.WaitEvent("CHANNEL_BRIDGE", isEvent("CHANNEL_BRIDGE", a))
	gone := newUUID()
	steps := []struct{ cmd, want string }{
		{"uuid_exists " + a, "true"},
		{"uuid_exists " + gone, "false"},
		{"uuid_getvar " + a + " origination_uuid", a},
		{"uuid_getvar " + a + " bridge_to", b},
		{"uuid_getvar " + a + " no_such_variable", "_undef_"},
		{"uuid_setvar " + a + " dialer_campaign_id c-42", "+OK\n"},
		{"uuid_getvar " + a + " dialer_campaign_id", "c-42"},
		{"uuid_setvar " + a + " dialer_campaign_id", "+OK\n"},
		{"uuid_getvar " + a + " dialer_campaign_id", "_undef_"},
		{"uuid_setvar_multi " + a + " dialer_a=1;dialer_b=two", "+OK\n"},
		{"uuid_getvar " + a + " dialer_a", "1"},
		{"uuid_getvar " + a + " dialer_b", "two"},
		{"uuid_getvar " + gone + " origination_uuid", "-ERR No such channel!\n"},
		{"uuid_setvar " + gone + " x 1", "-ERR No such channel!\n"},
		{"originate {origination_uuid=" + a + "}" + carrier(numAnswer) + " &park", "-ERR DESTINATION_OUT_OF_ORDER\n"},
	}
	for _, s := range steps {
		wantBody(t, "api "+s.cmd, c.API(s.cmd), s.want)
	}
	dump := c.API("uuid_dump " + a + " json")
	if strings.HasSuffix(dump, "\n") {
		t.Errorf("uuid_dump json: the captured body has no trailing newline")
	}
	ev := &Event{}
	if err := parseJSONEvent(ev, []byte(dump)); err != nil {
		t.Fatalf("uuid_dump json: not a flat JSON object of strings: %v\n%q", err, trunc(dump))
	}
	golden := &Event{}
	gf := readFixture(t, "26_uuid_dump_json.frame")
	_, gbody, _ := strings.Cut(string(gf), "\n\n")
	if err := parseJSONEvent(golden, []byte(gbody)); err != nil {
		t.Fatal(err)
	}
	wantHeader(t, ev, "Event-Name", "CHANNEL_DATA")
	wantHeader(t, ev, "Unique-ID", a)
	wantHeader(t, ev, "Other-Leg-Unique-ID", b)
	wantHeader(t, ev, "variable_dialer_b", "two")
	for _, h := range golden.Headers {
		if !strings.HasPrefix(h.Key, "variable_") && !ev.Has(h.Key) {
			t.Errorf("uuid_dump json: header %s of the captured dump is missing", h.Key)
		}
	}
	var anyJSON map[string]any
	if err := json.Unmarshal([]byte(dump), &anyJSON); err != nil {
		t.Errorf("uuid_dump json is not valid JSON: %v", err)
	}
	wantBody(t, "uuid_kill", c.API("uuid_kill "+a), "+OK\n")
	hangupComplete(c, a)
	hangupComplete(c, b)
}

// Capture 26: show channels/calls as json and count, hupall.
func TestShowChannelsCallsAndHupall(t *testing.T) {
	tg := newGlobalTarget(t)
	c := tg.Login()
	subscribe(t, c, "event json CHANNEL_BRIDGE CHANNEL_HANGUP_COMPLETE BACKGROUND_JOB")
	a, b := newUUID(), newUUID()
	c.BgAPI("originate {origination_uuid="+a+"}"+carrier(numAnswer)+" &bridge({origination_uuid="+b+"}"+carrier(numAnswerB)+")", "")
	c.WaitEvent("CHANNEL_BRIDGE", isEvent("CHANNEL_BRIDGE", a))

	type rows struct {
		RowCount int                 `json:"row_count"`
		Rows     []map[string]string `json:"rows"`
	}
	var ch, calls rows
	chBody := c.API("show channels as json")
	if err := json.Unmarshal([]byte(chBody), &ch); err != nil {
		t.Fatalf("show channels as json: %v\n%q", err, chBody)
	}
	if strings.HasSuffix(chBody, "\n") {
		t.Errorf("show channels as json (non-empty): the captured body has no trailing newline")
	}
	if ch.RowCount != 2 || len(ch.Rows) != 2 || ch.Rows[0]["uuid"] != a || ch.Rows[1]["uuid"] != b {
		t.Errorf("show channels as json: want row_count 2 with rows %s then %s, got %q", a, b, trunc(chBody))
	}
	for _, r := range ch.Rows {
		for _, k := range []string{"uuid", "direction", "created", "created_epoch", "name", "state", "cid_name", "cid_num", "dest", "application", "application_data", "callstate", "call_uuid", "read_codec", "hostname"} {
			if _, ok := r[k]; !ok {
				t.Errorf("show channels as json: row %s lacks %q (capture 26)", r["uuid"], k)
			}
		}
		if r["call_uuid"] != a {
			t.Errorf("show channels as json: row %s call_uuid = %q, want %s", r["uuid"], r["call_uuid"], a)
		}
	}
	if len(ch.Rows) == 2 {
		if ch.Rows[0]["application"] != "bridge" || ch.Rows[0]["state"] != "CS_EXECUTE" || ch.Rows[1]["state"] != "CS_EXCHANGE_MEDIA" {
			t.Errorf("show channels as json: want A application=bridge state=CS_EXECUTE, B state=CS_EXCHANGE_MEDIA (capture 26), got A %q/%q, B %q",
				ch.Rows[0]["application"], ch.Rows[0]["state"], ch.Rows[1]["state"])
		}
	}
	callsBody := c.API("show calls as json")
	if err := json.Unmarshal([]byte(callsBody), &calls); err != nil {
		t.Fatalf("show calls as json: %v\n%q", err, callsBody)
	}
	if calls.RowCount != 1 || len(calls.Rows) != 1 || calls.Rows[0]["uuid"] != a || calls.Rows[0]["b_uuid"] != b {
		t.Errorf("show calls as json: want one row uuid=%s b_uuid=%s, got %q", a, b, trunc(callsBody))
	}
	wantBody(t, "show channels count", c.API("show channels count"), "\n2 total.\n")
	wantBody(t, "show calls count", c.API("show calls count"), "\n1 total.\n")
	wantBody(t, "hupall", c.API("hupall NORMAL_CLEARING"), "+OK hangup all channels with cause NORMAL_CLEARING\n")
	wantHeader(t, hangupComplete(c, a), "Hangup-Cause", "NORMAL_CLEARING")
	wantHeader(t, hangupComplete(c, b), "Hangup-Cause", "NORMAL_CLEARING")
	wantBody(t, "show channels as json after hupall", c.API("show channels as json"), "{\"row_count\": 0}\n")
	wantBody(t, "show calls as json after hupall", c.API("show calls as json"), "{\"row_count\": 0}\n")
}

// Capture 29: sched_hangup by api and by execute_on_answer (ALLOTTED_TIMEOUT,
// q850 16); sched_del.
func TestSchedHangupAndSchedDel(t *testing.T) {
	tg := newTarget(t)
	c := tg.Login()
	subscribe(t, c, "event json CHANNEL_ANSWER CHANNEL_EXECUTE CHANNEL_PARK CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE")

	u1 := newUUID()
	okUUID(t, "originate", c.API("originate {origination_uuid="+u1+"}"+carrier(numAnswer)+" &park"))
	wantBody(t, "sched_hangup", c.API("sched_hangup +2 "+u1+" ALLOTTED_TIMEOUT"), "+OK\n")
	h1 := hangupComplete(c, u1)
	wantHeader(t, h1, "Hangup-Cause", "ALLOTTED_TIMEOUT")
	wantHeader(t, h1, "variable_hangup_cause_q850", "16")

	u2 := newUUID()
	okUUID(t, "originate with execute_on_answer", c.API("originate {origination_uuid="+u2+",execute_on_answer='sched_hangup +2 ALLOTTED_TIMEOUT'}"+carrier(numAnswerB)+" &park"))
	if h2 := c.TryWaitEvent(tg.Wait, isEvent("CHANNEL_HANGUP_COMPLETE", u2)); h2 == nil {
		t.Errorf("execute_on_answer='sched_hangup +2 ALLOTTED_TIMEOUT': the leg was not hung up (capture 29: ALLOTTED_TIMEOUT ~2 s after answer)")
		c.API("uuid_kill " + u2)
	} else {
		wantHeader(t, h2, "Hangup-Cause", "ALLOTTED_TIMEOUT")
	}
	evs := c.Events()
	ex := c.TryWaitEvent(0, func(e *Event) bool {
		return e.Name() == "CHANNEL_EXECUTE" && e.UID() == u2 && e.Get("Application") == "sched_hangup"
	})
	if ex == nil {
		t.Errorf("execute_on_answer: no CHANNEL_EXECUTE sched_hangup (capture 29)")
	} else {
		wantHeader(t, ex, "Application-Data", "+2 ALLOTTED_TIMEOUT")
		if firstIndex(evs, isEvent("CHANNEL_ANSWER", u2)) > ex.Index() {
			t.Errorf("capture 29: CHANNEL_ANSWER comes before CHANNEL_EXECUTE sched_hangup")
		}
	}

	u3 := parkedCall(t, c, numAnswer)
	wantBody(t, "sched_hangup", c.API("sched_hangup +2 "+u3+" ALLOTTED_TIMEOUT"), "+OK\n")
	wantBody(t, "sched_del", c.API("sched_del "+u3), "+OK Deleted: 1\n")
	tg.SimSleep(3e9)
	wantBody(t, "uuid_exists after the deleted schedule's time", c.API("uuid_exists "+u3), "true")
	wantBody(t, "uuid_kill", c.API("uuid_kill "+u3), "+OK\n")
	wantHeader(t, hangupComplete(c, u3), "Hangup-Cause", "NORMAL_CLEARING")
	wantBody(t, "sched_hangup unknown uuid", c.API("sched_hangup +2 "+newUUID()+" ALLOTTED_TIMEOUT"), "-ERR No such channel!\n")
}

// uuid_break stops what plays; with "all" it also drops the broadcasts
// queued behind it (mod_commands' break_function flushes the channel's
// private events). A marker broadcast sent after the break shows what came
// before it.
func TestUUIDBreakAll(t *testing.T) {
	tg := newTarget(t)
	c := tg.Login()
	subscribe(t, c, "event json PLAYBACK_START PLAYBACK_STOP CHANNEL_PARK CHANNEL_HANGUP_COMPLETE")
	uid := parkedCall(t, c, numAnswer)
	const endless, queued, marker = "tone_stream://%(1000,0,440);loops=-1", "silence_stream://200", "silence_stream://150"
	for _, flag := range []string{"", " all"} {
		start := len(c.Frames())
		wantBody(t, "uuid_broadcast", c.API("uuid_broadcast "+uid+" "+endless+" aleg"), "+OK Message sent\n")
		c.WaitEvent("PLAYBACK_START "+endless, func(e *Event) bool {
			return e.Index() >= start && e.Name() == "PLAYBACK_START" && e.UID() == uid && e.Get("Playback-File-Path") == endless
		})
		wantBody(t, "uuid_broadcast", c.API("uuid_broadcast "+uid+" "+queued+" aleg"), "+OK Message sent\n")
		wantBody(t, "uuid_break"+flag, c.API("uuid_break "+uid+flag), "+OK\n")
		wantBody(t, "uuid_broadcast", c.API("uuid_broadcast "+uid+" "+marker+" aleg"), "+OK Message sent\n")
		end := c.WaitEvent("PLAYBACK_STOP "+marker, func(e *Event) bool {
			return e.Index() >= start && e.Name() == "PLAYBACK_STOP" && e.UID() == uid && e.Get("Playback-File-Path") == marker
		})
		var got []string
		for _, e := range ofUUID(c.Events(), uid) {
			if e.Index() >= start && e.Index() <= end.Index() && e.Name() == "PLAYBACK_START" {
				got = append(got, e.Get("Playback-File-Path"))
			}
		}
		want := []string{endless, queued, marker}
		if flag != "" {
			want = []string{endless, marker}
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("uuid_break%s: played %v, want %v", flag, got, want)
		}
	}
	wantBody(t, "uuid_kill", c.API("uuid_kill "+uid), "+OK\n")
	hangupComplete(c, uid)
}
