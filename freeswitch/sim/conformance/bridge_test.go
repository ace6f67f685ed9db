package conformance

import (
	"strings"
	"testing"
)

const bridgeEvents = "event json CHANNEL_CREATE CHANNEL_PROGRESS CHANNEL_ANSWER CHANNEL_BRIDGE CHANNEL_UNBRIDGE CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE BACKGROUND_JOB"

func subscribe(t *testing.T, c *Conn, cmd string) {
	t.Helper()
	f := c.Cmd(cmd)
	fields := strings.Fields(cmd)
	if want := "+OK event listener enabled " + fields[1]; f.ReplyText() != want {
		t.Fatalf("%s: want %q, got %s", cmd, want, f)
	}
}

// checkBLeg asserts what captures 09-13 show for every event of a B leg
// created by &bridge: Other-Leg-Unique-ID and Channel-Call-UUID name A, and B
// never gets CHANNEL_BRIDGE/UNBRIDGE.
func checkBLeg(t *testing.T, evs []*Event, a, b string) {
	t.Helper()
	bevs := ofUUID(evs, b)
	if len(bevs) == 0 {
		t.Errorf("no events for the B leg %s", b)
	}
	for _, e := range bevs {
		wantHeader(t, e, "Other-Leg-Unique-ID", a)
		wantHeader(t, e, "Channel-Call-UUID", a)
		if e.Name() == "CHANNEL_BRIDGE" || e.Name() == "CHANNEL_UNBRIDGE" {
			t.Errorf("%s: only the A leg gets CHANNEL_BRIDGE/UNBRIDGE", e)
		}
	}
}

func checkBridgeEvent(t *testing.T, e *Event, a, b string) {
	t.Helper()
	wantHeader(t, e, "Bridge-A-Unique-ID", a)
	wantHeader(t, e, "Bridge-B-Unique-ID", b)
	wantHeader(t, e, "Other-Leg-Unique-ID", b)
}

func wantOrder(t *testing.T, what string, evs []*Event, want ...string) {
	t.Helper()
	if got := strings.Join(names(evs), ","); got != strings.Join(want, ",") {
		t.Errorf("%s: want %s, got %s", what, strings.Join(want, ","), got)
	}
}

// wantAnsweredOrder is wantOrder for a leg that answered: FreeSWITCH emits
// CHANNEL_PROGRESS only when the far end sent 180 before its 200 (the
// captures' sipp far ends did; a far end that answers at once does not), so
// when the leg has no CHANNEL_PROGRESS the expectation drops it too.
func wantAnsweredOrder(t *testing.T, what string, evs []*Event, want ...string) {
	t.Helper()
	wantOrder(t, what, evs, withoutRinging(want, evs)...)
}

// ringing reports whether a leg's events show a 180 from the far end.
func ringing(evs []*Event) bool {
	return countEvents(evs, func(e *Event) bool { return e.Name() == "CHANNEL_PROGRESS" }) > 0
}

// withoutRinging removes the 180-caused steps (CHANNEL_PROGRESS and the
// RINGING call state) from want when the leg did not ring.
func withoutRinging(want []string, evs []*Event) []string {
	if ringing(evs) {
		return want
	}
	var out []string
	for _, w := range want {
		if w != "CHANNEL_PROGRESS" && w != "CHANNEL_CALLSTATE(RINGING)" {
			out = append(out, w)
		}
	}
	return out
}

// Capture 09: A answered, &bridge to B, B hangs up; B's events name A as the
// other leg; only A gets CHANNEL_BRIDGE/UNBRIDGE; A ends NORMAL_CLEARING.
func TestBridgeFromOriginateBLegHangsUp(t *testing.T) {
	tg := newTarget(t)
	c := tg.Login()
	subscribe(t, c, bridgeEvents)
	a, b := newUUID(), newUUID()
	job := c.BgAPI("originate {origination_uuid="+a+",origination_caller_id_number=1000,origination_caller_id_name=LegA}"+carrier(numAnswer)+
		" &bridge({origination_uuid="+b+",origination_caller_id_number=1000}"+carrier(numBye)+")", "")
	ha := hangupComplete(c, a)
	hb := hangupComplete(c, b)
	bj := c.WaitEvent("BACKGROUND_JOB", func(e *Event) bool { return e.Name() == "BACKGROUND_JOB" && e.Get("Job-UUID") == job })
	if bj.Body != "+OK "+a+"\n" {
		t.Errorf("BACKGROUND_JOB body: want %q, got %q", "+OK "+a+"\n", bj.Body)
	}
	evs := c.Events()
	checkBLeg(t, evs, a, b)
	wantAnsweredOrder(t, "A leg events (capture 09)", ofUUID(evs, a),
		"CHANNEL_CREATE", "CHANNEL_PROGRESS", "CHANNEL_ANSWER", "CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE", "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE")
	wantAnsweredOrder(t, "B leg events (capture 09)", ofUUID(evs, b),
		"CHANNEL_CREATE", "CHANNEL_PROGRESS", "CHANNEL_ANSWER", "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE")
	for _, e := range ofUUID(evs, a) {
		switch e.Name() {
		case "CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE":
			checkBridgeEvent(t, e, a, b)
		}
	}
	wantHeader(t, hb, "Hangup-Cause", "NORMAL_CLEARING")
	wantHeader(t, hb, "variable_sip_term_status", "200")
	wantHeader(t, ha, "Hangup-Cause", "NORMAL_CLEARING")
	wantHeader(t, ha, "variable_hangup_cause_q850", "16")
	wantHeader(t, ha, "Other-Leg-Unique-ID", b)
	// Causality as captured: B hangs up, then A is unbridged, then A hangs up.
	bh := firstIndex(evs, isEvent("CHANNEL_HANGUP", b))
	au := firstIndex(evs, isEvent("CHANNEL_UNBRIDGE", a))
	ah := firstIndex(evs, isEvent("CHANNEL_HANGUP", a))
	if !(bh < au && au < ah) {
		t.Errorf("want B CHANNEL_HANGUP < A CHANNEL_UNBRIDGE < A CHANNEL_HANGUP (capture 09), got indexes %d, %d, %d", bh, au, ah)
	}
	if bjI, aAns := bj.Index(), firstIndex(evs, isEvent("CHANNEL_ANSWER", a)); bjI < aAns {
		t.Errorf("BACKGROUND_JOB arrived before A's CHANNEL_ANSWER")
	}
}

// Capture 10: &bridge to a busy B: both legs end USER_BUSY; no bridge events.
func TestBridgeToBusyBLeg(t *testing.T) {
	tg := newTarget(t)
	c := tg.Login()
	subscribe(t, c, bridgeEvents)
	a, b := newUUID(), newUUID()
	job := c.BgAPI("originate {origination_uuid="+a+",origination_caller_id_number=1000}"+carrier(numAnswer)+
		" &bridge({origination_uuid="+b+"}"+carrier(numBusy)+")", "")
	ha := hangupComplete(c, a)
	hb := hangupComplete(c, b)
	bj := c.WaitEvent("BACKGROUND_JOB", func(e *Event) bool { return e.Name() == "BACKGROUND_JOB" && e.Get("Job-UUID") == job })
	if bj.Body != "+OK "+a+"\n" {
		t.Errorf("BACKGROUND_JOB body: want %q (A answered), got %q", "+OK "+a+"\n", bj.Body)
	}
	evs := c.Events()
	checkBLeg(t, evs, a, b)
	wantHeader(t, hb, "Hangup-Cause", "USER_BUSY")
	wantHeader(t, hb, "variable_sip_term_status", "486")
	wantHeader(t, ha, "Hangup-Cause", "USER_BUSY")
	wantHeader(t, ha, "variable_hangup_cause_q850", "17")
	if n := countEvents(evs, func(e *Event) bool { return e.Name() == "CHANNEL_BRIDGE" || e.Name() == "CHANNEL_UNBRIDGE" }); n != 0 {
		t.Errorf("bridge to a busy leg produced %d CHANNEL_BRIDGE/UNBRIDGE events", n)
	}
	// B hangs up first (it causes A's hangup); capture 10 also shows B's
	// HANGUP_COMPLETE before A's HANGUP, but that is a race between two
	// session threads in FreeSWITCH, so it is not asserted.
	if firstIndex(evs, isEvent("CHANNEL_HANGUP", b)) > firstIndex(evs, isEvent("CHANNEL_HANGUP", a)) {
		t.Errorf("capture 10: B's CHANNEL_HANGUP (busy) comes before A's")
	}
}

// Capture 12: &bridge({originate_timeout=N}...) to a B that never answers: B
// ends NO_ANSWER, A NORMAL_CLEARING.
func TestBridgeNoAnswerWithOriginateTimeout(t *testing.T) {
	tg := newTarget(t)
	c := tg.Login()
	subscribe(t, c, bridgeEvents)
	a, b := newUUID(), newUUID()
	c.BgAPI("originate {origination_uuid="+a+",origination_caller_id_number=1000}"+carrier(numAnswer)+
		" &bridge({originate_timeout=2,origination_uuid="+b+"}"+carrier(numNoAnswer)+")", "")
	ha := hangupComplete(c, a)
	hb := hangupComplete(c, b)
	evs := c.Events()
	checkBLeg(t, evs, a, b)
	wantHeader(t, hb, "Hangup-Cause", "NO_ANSWER")
	wantHeader(t, hb, "variable_hangup_cause_q850", "19")
	wantHeader(t, ha, "Hangup-Cause", "NORMAL_CLEARING")
	wantOrder(t, "B leg events (capture 12)", ofUUID(evs, b), "CHANNEL_CREATE", "CHANNEL_PROGRESS", "CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE")
}

// Capture 11: &bridge([leg_timeout=N]...) to a B that never answers: both legs
// end ALLOTTED_TIMEOUT.
func TestBridgeNoAnswerWithLegTimeout(t *testing.T) {
	tg := newTarget(t)
	c := tg.Login()
	subscribe(t, c, bridgeEvents)
	a, b := newUUID(), newUUID()
	c.BgAPI("originate {origination_uuid="+a+",origination_caller_id_number=1000}"+carrier(numAnswer)+
		" &bridge([leg_timeout=2,origination_uuid="+b+"]"+carrier(numNoAnswer)+")", "")
	ha := hangupComplete(c, a)
	hb := hangupComplete(c, b)
	checkBLeg(t, c.Events(), a, b)
	wantHeader(t, hb, "Hangup-Cause", "ALLOTTED_TIMEOUT")
	wantHeader(t, ha, "Hangup-Cause", "ALLOTTED_TIMEOUT")
}

// Capture 13: bridged, `uuid_kill A USER_BUSY`: A ends USER_BUSY, B
// NORMAL_CLEARING (with last_bridge_hangup_cause USER_BUSY).
func TestUUIDKillALegWhileBridged(t *testing.T) {
	tg := newTarget(t)
	c := tg.Login()
	subscribe(t, c, bridgeEvents)
	a, b := newUUID(), newUUID()
	wantBody(t, "api originate &bridge", c.API("originate {origination_uuid="+a+",origination_caller_id_number=1000}"+carrier(numAnswer)+
		" &bridge({origination_uuid="+b+"}"+carrier(numAnswerB)+")"), "+OK "+a+"\n")
	br := c.WaitEvent("CHANNEL_BRIDGE", isEvent("CHANNEL_BRIDGE", a))
	checkBridgeEvent(t, br, a, b)
	wantBody(t, "uuid_kill A USER_BUSY", c.API("uuid_kill "+a+" USER_BUSY"), "+OK\n")
	ha := hangupComplete(c, a)
	hb := hangupComplete(c, b)
	wantHeader(t, ha, "Hangup-Cause", "USER_BUSY")
	wantHeader(t, ha, "variable_hangup_cause_q850", "17")
	wantHeader(t, hb, "Hangup-Cause", "NORMAL_CLEARING")
	wantHeader(t, hb, "variable_last_bridge_hangup_cause", "USER_BUSY")
	evs := c.Events()
	checkBLeg(t, evs, a, b)
	if firstIndex(evs, isEvent("CHANNEL_HANGUP", a)) > firstIndex(evs, isEvent("CHANNEL_HANGUP", b)) {
		t.Errorf("capture 13: A's CHANNEL_HANGUP comes before B's")
	}
	wantAnsweredOrder(t, "A leg events (capture 13)", ofUUID(evs, a),
		"CHANNEL_CREATE", "CHANNEL_PROGRESS", "CHANNEL_ANSWER", "CHANNEL_BRIDGE", "CHANNEL_HANGUP", "CHANNEL_UNBRIDGE", "CHANNEL_HANGUP_COMPLETE")
}

// Capture 21: two parked legs joined by uuid_bridge. The capture's B hangs up
// by BYE; here B is hung up by uuid_kill so the test does not race the far
// end's timer (A's side of the hangup is the same).
func TestUUIDBridgeParkedLegs(t *testing.T) {
	tg := newTarget(t)
	run := func(t *testing.T, aVars string) (c *Conn, a, b string) {
		c = tg.With(t).Login()
		subscribe(t, c, "event json CHANNEL_EXECUTE CHANNEL_BRIDGE CHANNEL_UNBRIDGE CHANNEL_PARK CHANNEL_UNPARK CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE")
		a, b = newUUID(), newUUID()
		okUUID(t, "originate A", c.API("originate {origination_uuid="+a+aVars+"}"+carrier(numAnswer)+" &park"))
		okUUID(t, "originate B", c.API("originate {origination_uuid="+b+"}"+carrier(numAnswerB)+" &park"))
		c.WaitEvent("CHANNEL_PARK A", isEvent("CHANNEL_PARK", a))
		c.WaitEvent("CHANNEL_PARK B", isEvent("CHANNEL_PARK", b))
		wantBody(t, "uuid_bridge A B", c.API("uuid_bridge "+a+" "+b), "+OK "+b+"\n")
		br := c.WaitEvent("CHANNEL_BRIDGE of A", isEvent("CHANNEL_BRIDGE", a))
		checkBridgeEvent(t, br, a, b)
		c.WaitEvent("CHANNEL_UNPARK of B", isEvent("CHANNEL_UNPARK", b))
		c.WaitEvent("CHANNEL_UNPARK of A", isEvent("CHANNEL_UNPARK", a))
		for _, x := range [][2]string{{a, b}, {b, a}} {
			e := c.WaitEvent("CHANNEL_EXECUTE uuid_bridge", func(e *Event) bool {
				return e.Name() == "CHANNEL_EXECUTE" && e.UID() == x[0] && e.Get("Application") == "uuid_bridge"
			})
			wantHeader(t, e, "Application-Data", x[1])
		}
		wantBody(t, "uuid_kill B", c.API("uuid_kill "+b), "+OK\n")
		hb := hangupComplete(c, b)
		wantHeader(t, hb, "Hangup-Cause", "NORMAL_CLEARING")
		wantHeader(t, hb, "Other-Leg-Unique-ID", a)
		un := c.WaitEvent("CHANNEL_UNBRIDGE of A", isEvent("CHANNEL_UNBRIDGE", a))
		checkBridgeEvent(t, un, a, b)
		return c, a, b
	}
	checkNoBLegBridge := func(t *testing.T, c *Conn, b string) {
		for _, e := range ofUUID(c.Events(), b) {
			if e.Name() == "CHANNEL_BRIDGE" || e.Name() == "CHANNEL_UNBRIDGE" {
				t.Errorf("%s: only A gets CHANNEL_BRIDGE/UNBRIDGE (capture 21)", e)
			}
		}
	}

	t.Run("A follows B", func(t *testing.T) {
		t.Parallel()
		c, a, b := run(t, "")
		ha := hangupComplete(c, a)
		wantHeader(t, ha, "Hangup-Cause", "NORMAL_CLEARING")
		evs := c.Events()
		if firstIndex(evs, isEvent("CHANNEL_UNBRIDGE", a)) > firstIndex(evs, isEvent("CHANNEL_HANGUP", a)) {
			t.Errorf("capture 21: A's CHANNEL_UNBRIDGE comes before its CHANNEL_HANGUP")
		}
		checkNoBLegBridge(t, c, b)
		wantBody(t, "uuid_exists A", c.API("uuid_exists "+a), "false")
		wantBody(t, "uuid_exists B", c.API("uuid_exists "+b), "false")
		wantBody(t, "uuid_bridge of gone legs", c.API("uuid_bridge "+a+" "+b), "-ERR Invalid uuid\n")
	})
	t.Run("park_after_bridge=true keeps A parked", func(t *testing.T) {
		t.Parallel()
		c, a, b := run(t, ",park_after_bridge=true")
		un := c.WaitEvent("CHANNEL_UNBRIDGE of A", isEvent("CHANNEL_UNBRIDGE", a))
		p := c.WaitEvent("CHANNEL_PARK of A after the bridge", func(e *Event) bool {
			return e.Name() == "CHANNEL_PARK" && e.UID() == a && e.Index() > un.Index()
		})
		wantHeader(t, p, "variable_park_after_bridge", "true")
		tg.SimSleep(1e9)
		wantBody(t, "uuid_exists A after B hung up", c.API("uuid_exists "+a), "true")
		if e := c.TryWaitEvent(0, isEvent("CHANNEL_HANGUP", a)); e != nil {
			t.Errorf("A was hung up despite park_after_bridge=true: %s", e)
		}
		checkNoBLegBridge(t, c, b)
		wantBody(t, "uuid_kill A", c.API("uuid_kill "+a), "+OK\n")
		ha := hangupComplete(c, a)
		wantHeader(t, ha, "Hangup-Cause", "NORMAL_CLEARING")
	})
	t.Run("hangup_after_bridge=false does not keep A", func(t *testing.T) {
		t.Parallel()
		c, a, b := run(t, ",hangup_after_bridge=false")
		ha := hangupComplete(c, a)
		wantHeader(t, ha, "Hangup-Cause", "NORMAL_CLEARING")
		wantHeader(t, ha, "variable_hangup_after_bridge", "false")
		checkNoBLegBridge(t, c, b)
		wantBody(t, "uuid_exists A", c.API("uuid_exists "+a), "false")
		wantBody(t, "uuid_bridge of gone legs", c.API("uuid_bridge "+a+" "+b), "-ERR Invalid uuid\n")
	})
}
