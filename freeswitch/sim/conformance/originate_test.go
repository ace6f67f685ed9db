package conformance

import (
	"strings"
	"testing"
)

const originateUsage = "-USAGE: <call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>] [<cid_name>] [<cid_num>] [<timeout_sec>]\n"

// api originate replies (captures 02, 04, 06, 08, 18, 20; the carrier rows
// rely on the far-end scenario contract, the others on the captures alone).
func TestOriginateReplies(t *testing.T) {
	tg := newTarget(t)
	cases := []struct {
		name, args, want string
	}{
		{"busy 486", "{origination_caller_id_number=1000}" + carrier(numBusy) + " &park", "-ERR USER_BUSY\n"},
		{"no answer within originate_timeout", "{origination_caller_id_number=1000,originate_timeout=2}" + carrier(numNoAnswer) + " &park", "-ERR NO_ANSWER\n"},
		{"congestion 503", carrier(numCongest) + " &park", "-ERR NORMAL_TEMPORARY_FAILURE\n"},
		// Scenario contract (sip_cause_to_freeswitch mapping), not captured:
		{"unallocated 404", carrier(numUnalloc) + " &park", "-ERR UNALLOCATED_NUMBER\n"},
		{"unavailable 480", carrier(numUnavail) + " &park", "-ERR NO_USER_RESPONSE\n"},
		{"rejected 603", carrier(numReject) + " &park", "-ERR CALL_REJECTED\n"},
		// Capture 06.
		{"unknown gateway", "sofia/gateway/nosuchgw/15551234567 &park", "-ERR INVALID_GATEWAY\n"},
		{"unknown profile", "sofia/nosuchprofile/15551234567@127.0.0.1:5090 &park", "-ERR INVALID_PROFILE\n"},
		{"unknown endpoint", "nosuchendpoint/15551234567 &park", "-ERR CHAN_NOT_IMPLEMENTED\n"},
		{"unknown user", "user/99999 &park", "-ERR SUBSCRIBER_ABSENT\n"},
		{"no arguments", "", originateUsage},
		{"dial string only", carrier(numAnswer), originateUsage},
		// Capture 18.
		{"error/USER_BUSY", "error/USER_BUSY &park", "-ERR USER_BUSY\n"},
		{"error/NO_ANSWER", "error/NO_ANSWER &park", "-ERR NO_ANSWER\n"},
		{"error/bogus_cause", "error/bogus_cause &park", "-ERR NORMAL_CLEARING\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := tg.With(t).Login()
			cmd := "originate"
			if tc.args != "" {
				cmd += " " + tc.args
			}
			wantBody(t, "api "+cmd, c.API(cmd), tc.want)
		})
	}
}

// Capture 18: null/ answers at once; &hangup(CALL_REJECTED) answers, then the
// leg ends CALL_REJECTED (q850 21).
func TestOriginateNullEndpoint(t *testing.T) {
	tg := newTarget(t)
	c := tg.Login()
	if f := c.Cmd("event json CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE"); f.ReplyText() != "+OK event listener enabled json" {
		t.Fatalf("event json: %s", f)
	}
	uid := newUUID()
	wantBody(t, "originate null/1234 &park", c.API("originate {origination_uuid="+uid+",origination_caller_id_number=1000}null/1234 &park"), "+OK "+uid+"\n")
	cr := c.WaitEvent("CHANNEL_CREATE", isEvent("CHANNEL_CREATE", uid))
	wantHeader(t, cr, "Channel-Name", "null/1234")
	c.WaitEvent("CHANNEL_ANSWER", isEvent("CHANNEL_ANSWER", uid))
	wantBody(t, "uuid_kill", c.API("uuid_kill "+uid), "+OK\n")
	hc := hangupComplete(c, uid)
	wantHeader(t, hc, "Hangup-Cause", "NORMAL_CLEARING")

	rej := okUUID(t, "originate &hangup(CALL_REJECTED)", c.API("originate {origination_caller_id_number=1000}null/1234 &hangup(CALL_REJECTED)"))
	hr := hangupComplete(c, rej)
	wantHeader(t, hr, "Hangup-Cause", "CALL_REJECTED")
	wantHeader(t, hr, "variable_hangup_cause_q850", "21")
}

// Capture 26 / README: an origination_uuid already in use gives
// -ERR DESTINATION_OUT_OF_ORDER and leaves the existing channel alone.
func TestOriginateDuplicateUUID(t *testing.T) {
	tg := newTarget(t)
	c := tg.Login()
	uid := newUUID()
	okUUID(t, "first originate", c.API("originate {origination_uuid="+uid+"}"+carrier(numAnswer)+" &park"))
	wantBody(t, "second originate with the same uuid", c.API("originate {origination_uuid="+uid+"}"+carrier(numAnswerB)+" &park"), "-ERR DESTINATION_OUT_OF_ORDER\n")
	wantBody(t, "null endpoint with the same uuid", c.API("originate {origination_uuid="+uid+"}null/1234 &park"), "-ERR DESTINATION_OUT_OF_ORDER\n")
	wantBody(t, "uuid_exists", c.API("uuid_exists "+uid), "true")
	wantBody(t, "uuid_getvar origination_uuid", c.API("uuid_getvar "+uid+" origination_uuid"), uid)
	wantBody(t, "uuid_kill", c.API("uuid_kill "+uid), "+OK\n")
}

// Capture 16: an unquoted space inside {...} splits the arguments;
// FreeSWITCH answers -ERR DESTINATION_OUT_OF_ORDER and creates no channel.
func TestOriginateUnquotedSpaceInVariables(t *testing.T) {
	tg := newTarget(t)
	c := tg.Login()
	if f := c.Cmd("event plain CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE BACKGROUND_JOB"); f.ReplyText() != "+OK event listener enabled plain" {
		t.Fatalf("event plain: %s", f)
	}
	uid := newUUID()
	arg := "{origination_uuid=" + uid + ",origination_caller_id_number=1000,origination_caller_id_name=Plain Tester}" + carrier(numAnswer) + " &park"
	job := c.BgAPI("originate "+arg, "")
	bj := c.WaitEvent("BACKGROUND_JOB", func(e *Event) bool { return e.Name() == "BACKGROUND_JOB" && e.Get("Job-UUID") == job })
	if bj.Body != "-ERR DESTINATION_OUT_OF_ORDER\n" {
		t.Errorf("BACKGROUND_JOB body: want %q (capture 16), got %q", "-ERR DESTINATION_OUT_OF_ORDER\n", bj.Body)
	}
	wantHeader(t, bj, "Job-Command-Arg", arg)
	tg.SimSleep(3e9)
	wantBody(t, "uuid_kill of the never-created channel", c.API("uuid_kill "+uid), "-ERR No such channel!\n")
	for _, e := range c.Events() {
		if e.Name() != "BACKGROUND_JOB" && strings.Contains(e.Get("Channel-Name"), numAnswer) {
			t.Errorf("a channel was created: %s", e)
		}
	}
	// The api form answers the same.
	wantBody(t, "api originate with an unquoted space", c.API("originate "+strings.Replace(arg, uid, newUUID(), 1)), "-ERR DESTINATION_OUT_OF_ORDER\n")
}

// Capture 25 (first call): simultaneous dialing; the answering leg wins
// (+OK <winner>), the other ends LOSE_RACE.
func TestOriginateSimultaneousLoserIsLoseRace(t *testing.T) {
	tg := newTarget(t)
	c := tg.Login()
	if f := c.Cmd("event json CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE"); f.ReplyText() != "+OK event listener enabled json" {
		t.Fatalf("event json: %s", f)
	}
	a, b := newUUID(), newUUID()
	wantBody(t, "originate a,b", c.API("originate {ignore_early_media=true}[origination_uuid="+a+"]"+carrier(numNoAnswer)+",[origination_uuid="+b+"]"+carrier(numAnswer)+" &park"), "+OK "+b+"\n")
	ha := hangupComplete(c, a)
	wantHeader(t, ha, "Hangup-Cause", "LOSE_RACE")
	// Capture 25 shows q850 16 for LOSE_RACE.
	wantHeader(t, ha, "variable_hangup_cause_q850", "16")
	evs := c.Events()
	if countEvents(evs, isEvent("CHANNEL_CREATE", a)) != 1 || countEvents(evs, isEvent("CHANNEL_CREATE", b)) != 1 {
		t.Errorf("want one CHANNEL_CREATE per leg:\n%s", dumpEvents(evs))
	}
	if countEvents(evs, isEvent("CHANNEL_ANSWER", a)) != 0 {
		t.Errorf("the losing leg was answered")
	}
	wantBody(t, "uuid_exists winner", c.API("uuid_exists "+b), "true")
	wantBody(t, "uuid_kill winner", c.API("uuid_kill "+b), "+OK\n")
	hb := hangupComplete(c, b)
	wantHeader(t, hb, "Hangup-Cause", "NORMAL_CLEARING")
}

// Capture 25 (second call): failover; the first leg ends USER_BUSY (486),
// then the second is dialed and wins.
func TestOriginateFailoverToSecondLeg(t *testing.T) {
	tg := newTarget(t)
	c := tg.Login()
	if f := c.Cmd("event json CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE"); f.ReplyText() != "+OK event listener enabled json" {
		t.Fatalf("event json: %s", f)
	}
	a, b := newUUID(), newUUID()
	wantBody(t, "originate a|b", c.API("originate [origination_uuid="+a+"]"+carrier(numBusy)+"|[origination_uuid="+b+"]"+carrier(numAnswer)+" &park"), "+OK "+b+"\n")
	ha := hangupComplete(c, a)
	wantHeader(t, ha, "Hangup-Cause", "USER_BUSY")
	wantHeader(t, ha, "variable_sip_term_status", "486")
	wantHeader(t, ha, "variable_hangup_cause_q850", "17")
	c.WaitEvent("CHANNEL_ANSWER of b", isEvent("CHANNEL_ANSWER", b))
	evs := c.Events()
	// Capture 25: A CREATE, A HANGUP_COMPLETE, B CREATE, B ANSWER. Only the
	// causal part is asserted: B is dialed after A failed (A's CHANNEL_HANGUP
	// fires when the 486 arrives); A's HANGUP_COMPLETE races B's CREATE in
	// FreeSWITCH (switch_ivr_originate does not wait for CS_REPORTING).
	if firstIndex(evs, isEvent("CHANNEL_HANGUP", a)) > firstIndex(evs, isEvent("CHANNEL_CREATE", b)) {
		t.Errorf("failover: the second leg was created before the first failed:\n%s", dumpEvents(evs))
	}
	wantBody(t, "uuid_kill winner", c.API("uuid_kill "+b), "+OK\n")
	hangupComplete(c, b)
}

// Capture 25 (third call): all legs fail; the reply is the last cause.
func TestOriginateAllLegsFailGivesLastCause(t *testing.T) {
	tg := newTarget(t)
	c := tg.Login()
	if f := c.Cmd("event json CHANNEL_CREATE CHANNEL_ANSWER CHANNEL_HANGUP_COMPLETE"); f.ReplyText() != "+OK event listener enabled json" {
		t.Fatalf("event json: %s", f)
	}
	a, b := newUUID(), newUUID()
	wantBody(t, "originate busy,noanswer", c.API("originate {originate_timeout=2}[origination_uuid="+a+"]"+carrier(numBusy)+",[origination_uuid="+b+"]"+carrier(numNoAnswer)+" &park"), "-ERR NO_ANSWER\n")
	ha := hangupComplete(c, a)
	wantHeader(t, ha, "Hangup-Cause", "USER_BUSY")
	wantHeader(t, ha, "variable_sip_term_status", "486")
	hb := hangupComplete(c, b)
	wantHeader(t, hb, "Hangup-Cause", "NO_ANSWER")
	wantHeader(t, hb, "variable_hangup_cause_q850", "19")
}
