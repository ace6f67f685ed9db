package sim_test

import (
	"strings"
	"testing"
)

// Tests of the simulated ringback dialplan context (apps.go's dialplan, a
// mirror of freeswitch/conf/dialplan/ringback.xml) where the conformance
// suite cannot follow: far ends only the simulator's Default scenario has
// (...0666, an answering machine: 4 s greeting, then a beep).

func TestRingbackAMD(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ number, result, cause string }{
		{"15551230666", "MACHINE", "LONGGREETING"},
		{"15551230000", "HUMAN", "HUMAN"},
	} {
		t.Run(tc.number, func(t *testing.T) {
			t.Parallel()
			s := startTestSim(t)
			l := dialESL(t, s)
			l.cmdOK("event plain CHANNEL_EXECUTE_COMPLETE CHANNEL_PARK", "+OK event listener enabled plain")
			uuid := originatePark(t, l, tc.number)
			if got := l.api("uuid_transfer " + uuid + " amd XML ringback"); got != "+OK\n" {
				t.Fatalf("uuid_transfer: %q", got)
			}
			done, _ := l.waitEvent("CHANNEL_EXECUTE_COMPLETE amd", func(ev eslEvent) bool {
				return ev.name() == "CHANNEL_EXECUTE_COMPLETE" && ev["Unique-ID"] == uuid && ev["Application"] == "amd"
			})
			if done["variable_amd_result"] != tc.result || done["variable_amd_cause"] != tc.cause {
				t.Fatalf("amd: result %q cause %q, want %q %q", done["variable_amd_result"], done["variable_amd_cause"], tc.result, tc.cause)
			}
			// The extension parks the leg; the park carries the result too.
			park, _ := l.waitEvent("CHANNEL_PARK", func(ev eslEvent) bool {
				return ev.name() == "CHANNEL_PARK" && ev["Unique-ID"] == uuid && ev["variable_amd_result"] != ""
			})
			if park["variable_amd_result"] != tc.result {
				t.Fatalf("CHANNEL_PARK after amd: amd_result %q", park["variable_amd_result"])
			}
		})
	}
}

// voicemail_drop waits for the beep (mod_avmd's execute_on_avmd_beep
// transfers to voicemail_drop_play), or for ringback_beep_timeout_ms when
// no beep comes, then plays ringback_message and hangs up NORMAL_CLEARING.
func TestRingbackVoicemailDrop(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, number, vars string
		beep               bool
	}{
		{"machine beeps", "15551230666", "ringback_message=tone_stream://%(500,0,440)", true},
		{"no beep within the timeout", "15551230000", "ringback_message=tone_stream://%(500,0,440);ringback_beep_timeout_ms=1000", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startTestSim(t)
			l := dialESL(t, s)
			l.cmdOK("event plain PLAYBACK_START PLAYBACK_STOP CHANNEL_EXECUTE CHANNEL_HANGUP_COMPLETE CUSTOM avmd::beep",
				"+OK event listener enabled plain")
			uuid := originatePark(t, l, tc.number)
			if got := l.api("uuid_setvar_multi " + uuid + " " + tc.vars); got != "+OK\n" {
				t.Fatalf("uuid_setvar_multi: %q", got)
			}
			if got := l.api("uuid_transfer " + uuid + " voicemail_drop XML ringback"); got != "+OK\n" {
				t.Fatalf("uuid_transfer: %q", got)
			}
			stop, before := l.waitEvent("PLAYBACK_STOP", func(ev eslEvent) bool {
				return ev.name() == "PLAYBACK_STOP" && ev["Unique-ID"] == uuid
			})
			if stop["Playback-File-Path"] != "tone_stream://%(500,0,440)" || stop["Playback-Status"] != "done" || stop["Answer-State"] != "answered" {
				t.Fatalf("PLAYBACK_STOP: path %q status %q answer state %q", stop["Playback-File-Path"], stop["Playback-Status"], stop["Answer-State"])
			}
			beeps, sleepBroken := 0, false
			for _, ev := range before {
				if ev.name() == "CUSTOM" && ev["Event-Subclass"] == "avmd::beep" {
					beeps++
				}
				if ev.name() == "CHANNEL_EXECUTE" && ev["Application"] == "playback" && ev["variable_execute_on_avmd_beep"] != "" {
					t.Errorf("voicemail_drop_play did not unset execute_on_avmd_beep before the playback")
				}
				if ev.name() == "CHANNEL_EXECUTE" && ev["Application"] == "transfer" {
					sleepBroken = true // the timeout's transfer ran: no beep broke the sleep
				}
			}
			if (beeps == 1) != tc.beep || sleepBroken == tc.beep {
				t.Fatalf("beeps %d, transfer after the sleep %v; want a beep: %v", beeps, sleepBroken, tc.beep)
			}
			hup, _ := l.waitNamed("CHANNEL_HANGUP_COMPLETE", uuid)
			if hup["Hangup-Cause"] != "NORMAL_CLEARING" {
				t.Fatalf("hangup cause %q", hup["Hangup-Cause"])
			}
		})
	}
}

// agent_conference joins ringback_conference with the ringback_agent
// profile and, when the member is kicked out of the room without hanging
// up, parks the leg (so Ringback can send it elsewhere); without a valid
// room name it hangs the leg up MANDATORY_IE_MISSING and no room is made.
func TestRingbackAgentConference(t *testing.T) {
	t.Parallel()
	t.Run("joins, kicked, parks", func(t *testing.T) {
		t.Parallel()
		s := startTestSim(t)
		l := dialESL(t, s)
		l.cmdOK("event plain CHANNEL_EXECUTE_COMPLETE CHANNEL_PARK CHANNEL_HANGUP_COMPLETE CUSTOM conference::maintenance",
			"+OK event listener enabled plain")
		uuid := originatePark(t, l, "15551230000")
		if got := l.api("uuid_setvar_multi " + uuid + " ringback_conference=agent-1001;conference_member_flags=moderator"); got != "+OK\n" {
			t.Fatalf("uuid_setvar_multi: %q", got)
		}
		if got := l.api("uuid_transfer " + uuid + " agent_conference XML ringback"); got != "+OK\n" {
			t.Fatalf("uuid_transfer: %q", got)
		}
		add, _ := l.waitEvent("add-member", func(ev eslEvent) bool {
			return ev.name() == "CUSTOM" && ev["Event-Subclass"] == "conference::maintenance" && ev["Action"] == "add-member"
		})
		if add["Unique-ID"] != uuid || add["Conference-Name"] != "agent-1001" || add["Conference-Profile-Name"] != "ringback_agent" ||
			add["Member-Type"] != "moderator" || add["variable_ringback_conference"] != "agent-1001" {
			t.Fatalf("add-member: %v", add)
		}
		list := l.api("conference agent-1001 list")
		if !strings.Contains(list, ";"+uuid+";") || !strings.Contains(list, "hear|speak|moderator") {
			t.Fatalf("conference list: %q", list)
		}
		if got := l.api("conference agent-1001 kick " + add["Member-ID"]); got != "+OK kick "+add["Member-ID"]+"\n" {
			t.Fatalf("kick: %q", got)
		}
		del, _ := l.waitEvent("del-member", func(ev eslEvent) bool {
			return ev.name() == "CUSTOM" && ev["Action"] == "del-member" && ev["Unique-ID"] == uuid
		})
		if del["Answer-State"] != "answered" {
			t.Fatalf("del-member of a kicked member: Answer-State %q", del["Answer-State"])
		}
		done, _ := l.waitEvent("CHANNEL_EXECUTE_COMPLETE conference", func(ev eslEvent) bool {
			return ev.name() == "CHANNEL_EXECUTE_COMPLETE" && ev["Unique-ID"] == uuid && ev["Application"] == "conference"
		})
		if done["Application-Data"] != "agent-1001@ringback_agent" {
			t.Fatalf("conference ran with %q", done["Application-Data"])
		}
		// The park after the room: the leg is still up, under Ringback's
		// control again.
		l.waitEvent("CHANNEL_PARK after the room", func(ev eslEvent) bool {
			return ev.name() == "CHANNEL_PARK" && ev["Unique-ID"] == uuid && ev["variable_conference_name"] == "agent-1001"
		})
		if ch := findChannel(ctlChannels(t, s), uuid); ch == nil || ch.Variables["current_application"] != "park" {
			t.Fatalf("after the kick the leg is not parked: %+v", ch)
		}
		if got := l.api("conference list"); got != "+OK No active conferences.\n" {
			t.Fatalf("the empty room was not destroyed: %q", got)
		}
	})
	for _, tc := range []struct{ name, vars string }{
		{"no room", ""},
		{"profile in the name", "ringback_conference=agent@default"},
		{"PIN in the name", "ringback_conference=agent+1234"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := startTestSim(t)
			l := dialESL(t, s)
			l.cmdOK("event plain CHANNEL_EXECUTE CHANNEL_HANGUP_COMPLETE CUSTOM conference::maintenance", "+OK event listener enabled plain")
			uuid := originatePark(t, l, "15551230000")
			if tc.vars != "" {
				if got := l.api("uuid_setvar_multi " + uuid + " " + tc.vars); got != "+OK\n" {
					t.Fatalf("uuid_setvar_multi: %q", got)
				}
			}
			if got := l.api("uuid_transfer " + uuid + " agent_conference XML ringback"); got != "+OK\n" {
				t.Fatalf("uuid_transfer: %q", got)
			}
			hup, before := l.waitNamed("CHANNEL_HANGUP_COMPLETE", uuid)
			if hup["Hangup-Cause"] != "MANDATORY_IE_MISSING" {
				t.Fatalf("hangup cause %q", hup["Hangup-Cause"])
			}
			for _, ev := range before {
				if ev.name() == "CUSTOM" || (ev.name() == "CHANNEL_EXECUTE" && ev["Application"] == "conference") {
					t.Fatalf("the leg reached a room: %v", ev)
				}
			}
			if got := l.api("conference list"); got != "+OK No active conferences.\n" {
				t.Fatalf("conference list: %q", got)
			}
		})
	}
}
