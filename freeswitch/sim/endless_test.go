package sim_test

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// Tests of endless_playback (mod_dptools) and of local_stream:// (mod_local_stream's music on hold), both of
// which play until something outside stops them.

// nextFor returns the next event of channel uuid, consuming the events before it.
func nextFor(l *eslClient, uuid string) eslEvent {
	l.t.Helper()
	for {
		if ev := l.nextEvent(); ev["Unique-ID"] == uuid {
			return ev
		}
	}
}

// step names an event with what tells it apart here: the application, or the playback status.
func step(ev eslEvent) string {
	switch {
	case ev["Application"] != "":
		return ev.name() + "(" + ev["Application"] + ")"
	case ev["Playback-Status"] != "":
		return ev.name() + "(" + ev["Playback-Status"] + ")"
	}
	return ev.name()
}

// simMicros is an event's Event-Date-Timestamp: simulated microseconds.
func simMicros(t *testing.T, ev eslEvent) int64 {
	t.Helper()
	n, err := strconv.ParseInt(ev["Event-Date-Timestamp"], 10, 64)
	if err != nil {
		t.Fatalf("%s: Event-Date-Timestamp %q: %v", step(ev), ev["Event-Date-Timestamp"], err)
	}
	return n
}

// endless_playback from uuid_broadcast on a parked leg: each round is an ordinary playback ending "done";
// uuid_break ends the round ("break") but not the application, which starts the file over (FreeSWITCH 1.10's
// endless_playback_function goes on after SWITCH_STATUS_BREAK); a transfer ends it, and the leg, parked
// again by the new extension, plays the next broadcast.
func TestEndlessPlaybackBreakStartsOverTransferEnds(t *testing.T) {
	t.Parallel()
	s := startTestSim(t)
	l := dialESL(t, s)
	l.cmdOK("event plain CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE PLAYBACK_START PLAYBACK_STOP CHANNEL_PARK CHANNEL_UNPARK",
		"+OK event listener enabled plain")
	uuid := originatePark(t, l, "15551230000")
	const file = "tone_stream://%(100,0,440)"
	if got := l.api("uuid_broadcast " + uuid + " endless_playback::" + file + " aleg"); got != "+OK Message sent\n" {
		t.Fatalf("uuid_broadcast: %q", got)
	}
	var ex eslEvent
	for ex == nil || step(ex) != "CHANNEL_EXECUTE(endless_playback)" {
		ex = nextFor(l, uuid)
	}
	if ex["Application-Data"] != file {
		t.Fatalf("CHANNEL_EXECUTE endless_playback: Application-Data %q, want %q", ex["Application-Data"], file)
	}
	// round reads one round, PLAYBACK_START then PLAYBACK_STOP, and returns the stop's status.
	round := func(what string) string {
		t.Helper()
		start, stop := nextFor(l, uuid), nextFor(l, uuid)
		if step(start) != "PLAYBACK_START" || !strings.HasPrefix(step(stop), "PLAYBACK_STOP") {
			t.Fatalf("%s: got %s, %s; want PLAYBACK_START, PLAYBACK_STOP", what, step(start), step(stop))
		}
		for _, ev := range []eslEvent{start, stop} {
			if ev["Playback-File-Path"] != file {
				t.Fatalf("%s: %s of %q, want %q", what, step(ev), ev["Playback-File-Path"], file)
			}
		}
		return stop["Playback-Status"]
	}
	for i := 1; i <= 3; i++ {
		if st := round("round " + strconv.Itoa(i)); st != "done" {
			t.Fatalf("round %d ended %q, want done", i, st)
		}
	}

	if got := l.api("uuid_break " + uuid + " all"); got != "+OK\n" {
		t.Fatalf("uuid_break: %q", got)
	}
	// Rounds may end "done" before the break lands; the broken one ends "break".
	for st := ""; st != "break"; {
		if st = round("the round uuid_break ends"); st != "done" && st != "break" {
			t.Fatalf("a round ended %q", st)
		}
	}
	if st := round("the round after uuid_break"); st != "done" {
		t.Fatalf("the round after uuid_break ended %q, want done", st)
	}

	if got := l.api("uuid_transfer " + uuid + " park XML ringback"); got != "+OK\n" {
		t.Fatalf("uuid_transfer: %q", got)
	}
	var steps []string
	for ev := nextFor(l, uuid); step(ev) != "CHANNEL_PARK"; ev = nextFor(l, uuid) {
		steps = append(steps, step(ev))
		if step(ev) == "CHANNEL_EXECUTE_COMPLETE(endless_playback)" {
			if ev["Application-UUID"] != ex["Application-UUID"] || ev["Application-Response"] != "PLAYBACK ERROR" {
				t.Errorf("CHANNEL_EXECUTE_COMPLETE endless_playback: Application-UUID %q (want %q), Application-Response %q (want PLAYBACK ERROR)",
					ev["Application-UUID"], ex["Application-UUID"], ev["Application-Response"])
			}
		}
	}
	// Rounds go on until the transfer lands; the one it lands in ends "done"
	// too (switch_ivr_play_file says "break" only for a break or a digit).
	got := strings.Join(steps, ",")
	for strings.HasPrefix(got, "PLAYBACK_START,PLAYBACK_STOP(done),") {
		got = strings.TrimPrefix(got, "PLAYBACK_START,PLAYBACK_STOP(done),")
	}
	if want := "CHANNEL_EXECUTE_COMPLETE(endless_playback),CHANNEL_UNPARK,CHANNEL_EXECUTE_COMPLETE(park),CHANNEL_EXECUTE(park)"; got != want {
		t.Fatalf("after uuid_transfer: %s, want rounds ending \"done\", then %s", strings.Join(steps, ","), want)
	}

	if got := l.api("uuid_broadcast " + uuid + " silence_stream://200 aleg"); got != "+OK Message sent\n" {
		t.Fatalf("uuid_broadcast silence_stream: %q", got)
	}
	steps = steps[:0]
	for len(steps) < 4 {
		steps = append(steps, step(nextFor(l, uuid)))
	}
	if got, want := strings.Join(steps, ","), "CHANNEL_EXECUTE(playback),PLAYBACK_START,PLAYBACK_STOP(done),CHANNEL_EXECUTE_COMPLETE(playback)"; got != want {
		t.Fatalf("broadcast after endless_playback: %s, want %s", got, want)
	}
}

// A far-end hangup during endless_playback ends the round and the application: no round starts after the
// CHANNEL_HANGUP.
func TestEndlessPlaybackEndsOnHangup(t *testing.T) {
	t.Parallel()
	s := startTestSim(t)
	l := dialESL(t, s)
	l.cmdOK("event plain CHANNEL_EXECUTE CHANNEL_EXECUTE_COMPLETE PLAYBACK_START PLAYBACK_STOP CHANNEL_HANGUP CHANNEL_HANGUP_COMPLETE",
		"+OK event listener enabled plain")
	uuid := originatePark(t, l, "15551230000")
	if got := l.api("uuid_broadcast " + uuid + " endless_playback::tone_stream://%(100,0,440) aleg"); got != "+OK Message sent\n" {
		t.Fatalf("uuid_broadcast: %q", got)
	}
	for stops := 0; stops < 2; {
		if ev := nextFor(l, uuid); step(ev) == "PLAYBACK_STOP(done)" {
			stops++
		}
	}
	if code, out := ctlJSON(t, s, "POST", "/channels/"+uuid+"/hangup", `{"cause":"NORMAL_CLEARING"}`); code != 200 {
		t.Fatalf("far-end hangup: %d %v", code, out)
	}
	var after []string
	hungUp := false
	for ev := nextFor(l, uuid); ev.name() != "CHANNEL_HANGUP_COMPLETE"; ev = nextFor(l, uuid) {
		if ev.name() == "CHANNEL_HANGUP" {
			hungUp = true
			continue
		}
		if hungUp {
			after = append(after, step(ev))
		}
	}
	// The round playing at the hangup stops; the one the hangup may have overtaken never starts.
	got := strings.TrimPrefix(strings.Join(after, ","), "PLAYBACK_STOP(done),")
	if want := "CHANNEL_EXECUTE_COMPLETE(endless_playback),CHANNEL_EXECUTE_COMPLETE(park)"; got != want {
		t.Fatalf("after CHANNEL_HANGUP: %s, want %s", strings.Join(after, ","), want)
	}
}

// A file the simulator gives no length still takes a 20 ms frame per round: endless_playback does not spin.
func TestEndlessPlaybackEmptyFileDoesNotSpin(t *testing.T) {
	t.Parallel()
	s := startTestSim(t)
	l := dialESL(t, s)
	l.cmdOK("event plain PLAYBACK_START CHANNEL_HANGUP_COMPLETE", "+OK event listener enabled plain")
	uuid := originatePark(t, l, "15551230000")
	if got := l.api("uuid_broadcast " + uuid + " endless_playback::silence_stream://0 aleg"); got != "+OK Message sent\n" {
		t.Fatalf("uuid_broadcast: %q", got)
	}
	var starts []int64
	for len(starts) < 6 {
		if ev := nextFor(l, uuid); ev.name() == "PLAYBACK_START" {
			starts = append(starts, simMicros(t, ev))
		}
	}
	if got := l.api("uuid_kill " + uuid); got != "+OK\n" {
		t.Fatalf("uuid_kill: %q", got)
	}
	l.waitNamed("CHANNEL_HANGUP_COMPLETE", uuid)
	// 20 ms a round, less the moment between a round's clock reading and its PLAYBACK_START.
	for i := 1; i < len(starts); i++ {
		if gap := time.Duration(starts[i]-starts[i-1]) * time.Microsecond; gap < 10*time.Millisecond {
			t.Fatalf("round %d started %v (simulated) after the one before; want about 20 ms", i+1, gap)
		}
	}
}

// local_stream:// never ends by itself: a broadcast plays it until uuid_break ("break"); sim_playback_ms, the
// length the simulator gives other files, does not apply to it.
func TestLocalStreamPlaysUntilBreak(t *testing.T) {
	t.Parallel()
	s := startTestSim(t)
	l := dialESL(t, s)
	l.cmdOK("event plain PLAYBACK_START PLAYBACK_STOP CHANNEL_EXECUTE_COMPLETE", "+OK event listener enabled plain")
	uuid := originatePark(t, l, "15551230000")
	if got := l.api("uuid_setvar " + uuid + " sim_playback_ms 100"); got != "+OK\n" {
		t.Fatalf("uuid_setvar: %q", got)
	}
	const file = "local_stream://moh"
	if got := l.api("uuid_broadcast " + uuid + " " + file + " aleg"); got != "+OK Message sent\n" {
		t.Fatalf("uuid_broadcast: %q", got)
	}
	start := nextFor(l, uuid)
	if step(start) != "PLAYBACK_START" || start["Playback-File-Path"] != file || start["Playback-File-Type"] != "local_stream" {
		t.Fatalf("%s: path %q type %q, want PLAYBACK_START of %s (local_stream)", step(start), start["Playback-File-Path"],
			start["Playback-File-Type"], file)
	}
	// 300 ms at startTestSim's time scale of 10: 3 simulated seconds, 30 times sim_playback_ms.
	time.Sleep(300 * time.Millisecond)
	if got := l.api("uuid_break " + uuid); got != "+OK\n" {
		t.Fatalf("uuid_break: %q", got)
	}
	stop := nextFor(l, uuid)
	if step(stop) != "PLAYBACK_STOP(break)" {
		t.Fatalf("%s, want PLAYBACK_STOP(break): %s ended by itself", step(stop), file)
	}
	if played := time.Duration(simMicros(t, stop)-simMicros(t, start)) * time.Microsecond; played < 2*time.Second {
		t.Fatalf("%s played %v (simulated) before uuid_break, want at least 2 s", file, played)
	}
	if done := nextFor(l, uuid); step(done) != "CHANNEL_EXECUTE_COMPLETE(playback)" || done["Application-Response"] != "FILE PLAYED" {
		t.Fatalf("%s %q, want CHANNEL_EXECUTE_COMPLETE(playback) FILE PLAYED", step(done), done["Application-Response"])
	}
}
