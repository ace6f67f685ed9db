package sim_test

import (
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
