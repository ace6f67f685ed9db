package sim

import (
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ringback/ringback/freeswitch/sim/internal/event"
	"github.com/ringback/ringback/freeswitch/sim/scenario"
)

// app is one dialplan application with its argument.
type app struct{ name, arg string }

// parseAppString parses "&name(args)" or "&name" (originate's inline
// application syntax).
func parseAppString(s string) (app, bool) {
	if !strings.HasPrefix(s, "&") {
		return app{}, false
	}
	s = s[1:]
	if i := strings.IndexByte(s, '('); i >= 0 {
		arg := s[i+1:]
		arg = strings.TrimSuffix(arg, ")")
		return app{name: s[:i], arg: arg}, true
	}
	if name, arg, ok := strings.Cut(s, ":"); ok {
		return app{name: name, arg: arg}, true
	}
	return app{name: s}, true
}

// appResult says how an application ended, beyond its response text.
type appResult struct {
	response string
	transfer *message // leave the extension and route elsewhere
	bridge   *Channel // leave the extension for a uuid_bridge
	passive  bool     // this leg is uuid_bridge's B side: the A side runs the bridge
}

// runApps is the session thread's dialplan execution.
func (c *Channel) runApps(apps []app) {
	s := c.sim
	s.mu.Lock()
	c.hitDialplan = true
	if c.prof.direction == "outbound" && !c.flipped {
		// switch_channel_set_caller_extension flips the caller ID of an
		// outbound channel given its first extension (switch_channel_sort_cid):
		// the answered loopback/ A-leg shows "Outbound Call" <fsref> from
		// then on (capture 07, nc_session_loopback_9664), a null/ leg
		// "Outbound Call" <1234> (capture 18). Sofia legs flipped on answer.
		c.flipCID()
	}
	// Entering an extension sets call_uuid again: it moves after the
	// variables set so far (captures 01, 07, 19).
	c.vars.set("call_uuid", c.callUUID)
	if c.running != "CS_EXECUTE" {
		c.setRunning("CS_EXECUTE")
	}
	s.mu.Unlock()
	for i := 0; i < len(apps); i++ {
		s.mu.Lock()
		ok := c.ready()
		s.mu.Unlock()
		if !ok {
			return
		}
		res := c.execute(apps[i].name, apps[i].arg, "", true)
		switch {
		case res.transfer != nil:
			next, ok := c.route(res.transfer.exten, res.transfer.context)
			if !ok {
				s.mu.Lock()
				c.hangup("NO_ROUTE_DESTINATION")
				s.mu.Unlock()
				return
			}
			apps, i = next, -1
		case res.bridge != nil && res.passive:
			<-c.hungup
			return
		case res.bridge != nil:
			c.runUUIDBridge(res.bridge)
			return
		}
	}
}

// route runs CS_ROUTING for a transfer: it looks the extension up in the
// simulator's dialplan and enters CS_EXECUTE.
func (c *Channel) route(exten, context string) ([]app, bool) {
	s := c.sim
	s.mu.Lock()
	defer s.mu.Unlock()
	if !c.ready() {
		return nil, false
	}
	if context == "" {
		context = "default"
	}
	c.prof.transfer = s.micro()
	c.prof.destination = exten
	c.prof.context = context
	c.vars.set("transfer_history", strconv.FormatInt(s.clock.Now().Unix(), 10)+":"+newUUID()+":bl_xfer:"+exten+"/"+context+"/XML")
	c.setRunning("CS_ROUTING")
	apps, ok := dialplanLookup(context, exten, c.expand)
	if !ok {
		return nil, false
	}
	c.setRunning("CS_EXECUTE")
	return apps, true
}

// execute runs one application as switch_core_session_exec does, with
// CHANNEL_EXECUTE before and CHANNEL_EXECUTE_COMPLETE after.
func (c *Channel) execute(name, arg, appUUID string, fromDialplan bool) appResult {
	s := c.sim
	s.mu.Lock()
	arg = c.expand(arg)
	if appUUID == "" {
		appUUID = newUUID()
	}
	c.vars.set("current_application_data", arg)
	c.vars.set("current_application", name)
	post := []event.Header{h("Application", name)}
	if arg != "" {
		post = append(post, h("Application-Data", arg))
	}
	post = append(post, h("Application-UUID", appUUID))
	c.emit("CHANNEL_EXECUTE", nil, post)
	c.lastApp, c.lastArg = name, arg
	s.mu.Unlock()

	res := c.runApp(name, arg)

	s.mu.Lock()
	resp := res.response
	if resp == "" {
		resp = "_none_"
	}
	post = []event.Header{h("Application", name)}
	if arg != "" {
		post = append(post, h("Application-Data", arg))
	}
	post = append(post, h("Application-Response", resp), h("Application-UUID", appUUID))
	c.emit("CHANNEL_EXECUTE_COMPLETE", nil, post)
	s.mu.Unlock()
	return res
}

// runApp dispatches an application. It runs without s.mu held.
func (c *Channel) runApp(name, arg string) appResult {
	s := c.sim
	switch name {
	case "park":
		return c.park()
	case "answer":
		s.mu.Lock()
		c.markAnswered()
		s.mu.Unlock()
	case "pre_answer":
		s.mu.Lock()
		c.preAnswer()
		s.mu.Unlock()
	case "ring_ready":
		s.mu.Lock()
		c.progress()
		s.mu.Unlock()
	case "hangup":
		s.mu.Lock()
		cause := strings.TrimSpace(arg)
		if cause == "" {
			cause = "NORMAL_CLEARING"
		}
		c.hangup(cause)
		s.mu.Unlock()
	case "log":
		// mod_dptools' log writes to the FreeSWITCH log; nothing to simulate.
	case "unset":
		s.mu.Lock()
		c.vars.unset(strings.TrimSpace(arg))
		s.mu.Unlock()
	case "set", "export":
		k, v, _ := strings.Cut(arg, "=")
		s.mu.Lock()
		if v == "" {
			c.vars.unset(k)
		} else {
			c.vars.set(k, v)
		}
		s.mu.Unlock()
	case "sleep":
		ms, _ := strconv.Atoi(strings.TrimSpace(arg))
		return c.wait(time.Duration(ms)*time.Millisecond, false)
	case "playback":
		return c.playback(arg)
	case "endless_playback":
		return c.endlessPlayback(arg)
	case "bridge":
		return c.bridgeApp(arg)
	case "transfer":
		f := strings.Fields(arg)
		if len(f) == 0 {
			return appResult{}
		}
		m := message{kind: msgTransfer, exten: f[0]}
		if len(f) > 2 {
			m.context = f[2]
		}
		return appResult{transfer: &m}
	case "sched_hangup":
		if d, cause, ok := parseSchedHangup(arg); ok {
			s.mu.Lock()
			s.schedHangup(c, d, cause)
			s.mu.Unlock()
		}
	case "play_and_get_digits":
		return c.playAndGetDigits(arg)
	case "conference":
		return c.conferenceApp(arg)
	case "amd":
		return c.amd()
	case "avmd_start":
		return c.avmdStart()
	case "avmd_stop":
		s.mu.Lock()
		c.avmdOn = false
		s.mu.Unlock()
	case "socket":
		return c.socketApp(arg)
	default:
		s.log.Debug("application not simulated; treated as a no-op", "app", name, "uuid", c.uuid)
	}
	return appResult{}
}

// park holds the channel until a message takes it elsewhere or it hangs up,
// executing queued applications inline as switch_ivr_park does.
func (c *Channel) park() appResult {
	s := c.sim
	s.mu.Lock()
	c.parked = true
	c.emit("CHANNEL_PARK", nil, nil)
	s.mu.Unlock()
	for {
		s.mu.Lock()
		if !c.ready() {
			c.parked = false
			c.emit("CHANNEL_UNPARK", nil, nil)
			s.mu.Unlock()
			return appResult{}
		}
		// switch_ivr_park dequeues the digits it gets and, with no input
		// callback, drops them: a digit pressed while parked is not read by
		// the next play_and_get_digits (capture 24: the 1 and 9 pressed
		// before the sendmsg are not in pagd_digits).
		c.dtmf = c.dtmf[:0]
		if len(c.queue) > 0 {
			m := c.queue[0]
			c.queue = c.queue[1:]
			switch m.kind {
			case msgTransfer:
				c.parked = false
				c.emit("CHANNEL_UNPARK", nil, nil)
				s.mu.Unlock()
				return appResult{transfer: &m}
			case msgBridge:
				c.parked = false
				c.emit("CHANNEL_UNPARK", nil, nil)
				s.mu.Unlock()
				return appResult{bridge: m.peer, passive: m.lock}
			case msgExecute:
				s.mu.Unlock()
				c.executeMessage(m)
				continue
			}
			s.mu.Unlock()
			continue
		}
		s.mu.Unlock()
		select {
		case <-c.wake:
		case <-c.dtmfWake:
		case <-c.hungup:
		}
	}
}

// executeMessage runs a sendmsg/broadcast application, looping as asked.
func (c *Channel) executeMessage(m message) {
	loops := max(m.loops, 1)
	for i := 0; i < loops; i++ {
		c.sim.mu.Lock()
		ok := c.ready()
		c.sim.mu.Unlock()
		if !ok {
			return
		}
		res := c.execute(m.app, m.arg, m.eventUUID, false)
		if res.transfer != nil || res.bridge != nil {
			// A transfer or bridge requested while executing a queued
			// application is re-queued so the park loop acts on it.
			c.sim.mu.Lock()
			if res.transfer != nil {
				c.queue = append([]message{*res.transfer}, c.queue...)
			} else {
				c.queue = append([]message{{kind: msgBridge, peer: res.bridge, lock: res.passive}}, c.queue...)
			}
			c.sim.mu.Unlock()
			return
		}
	}
}

// wait sleeps for a simulated duration, interruptible by hangup and by
// transfer/bridge messages (left queued for park); with breakable, also by
// uuid_break.
func (c *Channel) wait(d time.Duration, breakable bool) appResult {
	res, _, _ := c.waitFor(d, breakable, false)
	return res
}

// waitFor is wait that, with digits, also ends at the first DTMF digit
// queued (one queued before the wait included), which it consumes and
// returns.
func (c *Channel) waitFor(d time.Duration, breakable, digits bool) (appResult, byte, bool) {
	s := c.sim
	t := time.NewTimer(s.clock.Real(d))
	defer t.Stop()
	var dtmfWake chan struct{}
	if digits {
		dtmfWake = c.dtmfWake
	}
	for {
		if digits {
			s.mu.Lock()
			if len(c.dtmf) > 0 {
				dg := c.dtmf[0]
				c.dtmf = c.dtmf[1:]
				s.mu.Unlock()
				return appResult{response: "break"}, dg, true
			}
			s.mu.Unlock()
		}
		select {
		case <-t.C:
			return appResult{}, 0, false
		case <-c.hungup:
			return appResult{response: "break"}, 0, false
		case <-dtmfWake:
		case <-c.wake:
			s.mu.Lock()
			for i, m := range c.queue {
				switch {
				case m.kind == msgBreak && breakable:
					c.queue = append(c.queue[:i], c.queue[i+1:]...)
					s.mu.Unlock()
					return appResult{response: "break"}, 0, false
				case m.kind == msgTransfer:
					c.queue = append(c.queue[:i], c.queue[i+1:]...)
					s.mu.Unlock()
					return appResult{response: "break", transfer: &m}, 0, false
				case m.kind == msgBridge:
					c.queue = append(c.queue[:i], c.queue[i+1:]...)
					s.mu.Unlock()
					return appResult{response: "break", bridge: m.peer, passive: m.lock}, 0, false
				}
			}
			s.mu.Unlock()
		}
	}
}

var toneRe = regexp.MustCompile(`%\(([0-9]+),([0-9]+)`)

// playbackLength estimates how long a file plays: tone_stream and
// silence_stream lengths are computed; a local_stream (music on hold) never
// ends; other files last sim_playback_ms (default 3 s).
func (c *Channel) playbackLength(path string) (time.Duration, bool) {
	switch {
	case strings.HasPrefix(path, "local_stream://"):
		return 0, true
	case strings.HasPrefix(path, "silence_stream://"):
		ms, _ := strconv.Atoi(strings.TrimPrefix(path, "silence_stream://"))
		if ms < 0 {
			return 0, true
		}
		return time.Duration(ms) * time.Millisecond, false
	case strings.HasPrefix(path, "tone_stream://"):
		loops := 1
		if i := strings.Index(path, "loops="); i >= 0 {
			loops, _ = strconv.Atoi(path[i+6:])
		}
		if loops < 0 {
			return 0, true
		}
		var total time.Duration
		for _, m := range toneRe.FindAllStringSubmatch(path, -1) {
			on, _ := strconv.Atoi(m[1])
			off, _ := strconv.Atoi(m[2])
			total += time.Duration(on+off) * time.Millisecond
		}
		return total * time.Duration(max(loops, 1)), false
	}
	if v, ok := c.vars.get("sim_playback_ms"); ok {
		if ms, err := strconv.Atoi(v); err == nil {
			return time.Duration(ms) * time.Millisecond, false
		}
	}
	return 3 * time.Second, false
}

// playbackHeaders are a PLAYBACK_START's or PLAYBACK_STOP's own headers:
// switch_ivr_play_file names the file's type only for local_stream and
// tone_stream (capture 22: a silence_stream's events have no
// Playback-File-Type), then its path.
func playbackHeaders(path string) []event.Header {
	var hs []event.Header
	for _, typ := range []string{"local_stream", "tone_stream"} {
		if len(path) > len(typ) && strings.EqualFold(path[:len(typ)+1], typ+":") {
			hs = append(hs, h("Playback-File-Type", typ))
		}
	}
	return append(hs, h("Playback-File-Path", path))
}

// playback plays a file: PLAYBACK_START, wait, PLAYBACK_STOP.
func (c *Channel) playback(path string) appResult {
	res, _, _ := c.playbackWith(path, false)
	return res
}

// playbackWith is playback that, with digits, stops at the first DTMF
// digit and returns it, as switch_ivr_play_file does given an input buffer
// (switch_ivr_read's prompt): the digit is the first one read.
func (c *Channel) playbackWith(path string, digits bool) (appResult, byte, bool) {
	s := c.sim
	s.mu.Lock()
	if !c.ready() {
		s.mu.Unlock()
		return appResult{response: "FILE NOT FOUND"}, 0, false
	}
	if !c.media {
		c.preAnswer()
	}
	d, forever := c.playbackLength(path)
	c.emit("PLAYBACK_START", nil, playbackHeaders(path))
	s.mu.Unlock()
	if forever {
		d = 1<<62 - 1
	}
	res, dg, got := c.waitFor(d, true, digits)
	// switch_ivr_play_file says "break" for a uuid_break or a digit that
	// ends the prompt (SWITCH_STATUS_BREAK) and "done" otherwise, a
	// channel gone or moved (hangup, transfer, bridge) included; playback
	// then answers PLAYBACK ERROR rather than FILE PLAYED.
	s.mu.Lock()
	moved := res.transfer != nil || res.bridge != nil || !c.ready()
	status := "done"
	if res.response == "break" && !moved {
		status = "break"
	}
	c.vars.set("playback_last_offset_pos", "0")
	c.emit("PLAYBACK_STOP", nil, append(playbackHeaders(path), h("Playback-Status", status)))
	s.mu.Unlock()
	res.response = "FILE PLAYED"
	if moved {
		res.response = "PLAYBACK ERROR"
	}
	return res, dg, got
}

// endlessFrame is the least simulated time one endless_playback round
// takes: one 20 ms frame, so that a file the simulator deems empty (a tone of
// no length, silence_stream://0) repeats at that pace instead of spinning.
const endlessFrame = 20 * time.Millisecond

// endlessPlayback is mod_dptools' endless_playback: the file plays again and
// again while the channel is ready, each round an ordinary playback
// (PLAYBACK_START, PLAYBACK_STOP "done"). uuid_break does not end it: in
// FreeSWITCH 1.10 endless_playback_function stops only on a status other than
// SUCCESS or BREAK, so the broken round (Playback-Status "break") starts over.
// A hangup ends it, and so does a transfer or bridge (switch_channel_ready is
// false while the state change is pending); either makes
// switch_ivr_play_file return FALSE, hence "PLAYBACK ERROR".
func (c *Channel) endlessPlayback(path string) appResult {
	s := c.sim
	for {
		s.mu.Lock()
		ok := c.ready()
		s.mu.Unlock()
		if !ok {
			return appResult{response: "PLAYBACK ERROR"}
		}
		start := s.clock.Now()
		res := c.playback(path)
		if res.transfer == nil && res.bridge == nil {
			if rest := endlessFrame - s.clock.Now().Sub(start); rest > 0 {
				res = c.wait(rest, true)
			}
		}
		if res.transfer != nil || res.bridge != nil {
			res.response = "PLAYBACK ERROR"
			return res
		}
	}
}

// bridgeApp is mod_dptools' bridge: originate the B-leg with this channel as
// the caller, then bridge until one side hangs up.
func (c *Channel) bridgeApp(dial string) appResult {
	s := c.sim
	s.mu.Lock()
	cidName, cidNum := c.prof.cidName, c.prof.cidNumber
	s.mu.Unlock()
	b, cause := s.originate(dial, originateOpts{caller: c, cidName: cidName, cidNum: cidNum})
	s.mu.Lock()
	defer s.mu.Unlock()
	if b == nil {
		c.vars.set("originate_disposition", cause)
		c.vars.set("DIALSTATUS", dialStatus(cause))
		c.vars.set("last_bridge_hangup_cause", cause)
		// mod_dptools: "no answer is *always* a reason to continue".
		switch cause {
		case "NO_ANSWER", "NO_USER_RESPONSE", "ORIGINATOR_CANCEL":
		default:
			if v, _ := c.vars.get("continue_on_fail"); v != "true" && !strings.Contains(v, cause) {
				c.hangup(cause)
			}
		}
		return appResult{}
	}
	c.bridgeWith(b)
	s.mu.Unlock()
	b.execStart <- nil
	c.awaitBridgeEnd(b)
	s.mu.Lock()
	c.unbridge(b)
	return appResult{}
}

func dialStatus(cause string) string {
	switch cause {
	case "USER_BUSY":
		return "BUSY"
	case "NO_ANSWER", "NO_USER_RESPONSE":
		return "NOANSWER"
	case "NORMAL_TEMPORARY_FAILURE", "NORMAL_CIRCUIT_CONGESTION", "SWITCH_CONGESTION":
		return "CONGESTION"
	case "CALL_REJECTED":
		return "CANCEL"
	}
	return "CHANUNAVAIL"
}

// bridgeWith joins a (this channel) and b. Callers hold s.mu.
func (c *Channel) bridgeWith(b *Channel) {
	s := c.sim
	now := s.micro()
	c.bridgePeer, b.bridgePeer = b, c
	c.prof.bridged, b.prof.bridged = now, now
	snap := b.prof
	c.other, c.otherTyp = &snap, "originatee"
	// The A side now presents the B side as its callee.
	c.prof.calleeName, c.prof.calleeNumber = b.prof.cidName, b.prof.cidNumber
	c.vars.set("last_sent_callee_id_name", b.prof.cidName)
	c.vars.set("last_sent_callee_id_number", b.prof.cidNumber)
	if b.other == nil {
		asnap := c.prof
		b.other, b.otherTyp = &asnap, "originator"
	}
	c.vars.set("bridge_to", b.uuid)
	c.vars.set("last_bridge_to", b.uuid)
	c.vars.set("bridge_channel", b.name)
	c.vars.set("bridge_uuid", b.uuid)
	c.vars.set("signal_bond", b.uuid)
	b.vars.set("bridge_to", c.uuid)
	b.vars.set("last_bridge_to", c.uuid)
	b.vars.set("bridge_channel", c.name)
	b.vars.set("bridge_uuid", c.uuid)
	if b.running != "CS_EXCHANGE_MEDIA" {
		b.setRunning("CS_EXCHANGE_MEDIA")
	}
	c.emit("CHANNEL_BRIDGE", []event.Header{h("Bridge-A-Unique-ID", c.uuid), h("Bridge-B-Unique-ID", b.uuid)}, nil)
}

// awaitBridgeEnd waits until either side hangs up, then for the B-leg to be
// torn down: FreeSWITCH's A side sees the bridge end only after B reported
// CHANNEL_HANGUP_COMPLETE (captures 09, 13).
func (c *Channel) awaitBridgeEnd(b *Channel) {
	s := c.sim
	select {
	case <-c.hungup:
	case <-b.hungup:
	}
	s.mu.Lock()
	if c.hangupCause != "" {
		b.vars.set("last_bridge_hangup_cause", c.hangupCause)
	}
	if b.ready() {
		b.hangup("NORMAL_CLEARING")
	}
	s.mu.Unlock()
	select {
	case <-b.finished:
	case <-s.closed:
	}
}

// unbridge ends a bridge from the A side: CHANNEL_UNBRIDGE, and the other
// leg hung up if it is still up. Callers hold s.mu.
func (c *Channel) unbridge(b *Channel) {
	if c.bridgePeer != b {
		return
	}
	c.bridgePeer, b.bridgePeer = nil, nil
	if b.ready() {
		b.hangup("NORMAL_CLEARING")
	}
	if c.hangupCause != "" {
		b.vars.set("last_bridge_hangup_cause", c.hangupCause)
	}
	if b.hangupCause != "" {
		c.vars.set("last_bridge_hangup_cause", b.hangupCause)
		c.vars.set("bridge_hangup_cause", b.hangupCause)
	}
	c.emit("CHANNEL_UNBRIDGE", []event.Header{h("Bridge-A-Unique-ID", c.uuid), h("Bridge-B-Unique-ID", b.uuid)}, nil)
}

// runUUIDBridge is the A side of uuid_bridge: both legs run uuid_bridge in
// CS_SOFT_EXECUTE; when the bridge ends, A is parked if park_after_bridge is
// set, else hung up.
func (c *Channel) runUUIDBridge(b *Channel) {
	s := c.sim
	s.mu.Lock()
	if !c.ready() || !b.ready() {
		if c.ready() {
			c.hangup("NORMAL_CLEARING")
		}
		s.mu.Unlock()
		return
	}
	c.running, c.stateNum = "CS_SOFT_EXECUTE", 3
	b.running, b.stateNum = "CS_SOFT_EXECUTE", 3
	site := callerSite{"switch_ivr_bridge.c", "uuid_bridge_on_soft_execute", 1236}
	c.emitSite("CHANNEL_EXECUTE", site, nil, []event.Header{h("Application", "uuid_bridge"), h("Application-Data", b.uuid)})
	site.line = 1243
	b.emitSite("CHANNEL_EXECUTE", site, nil, []event.Header{h("Application", "uuid_bridge"), h("Application-Data", c.uuid)})
	c.bridgeWith(b)
	s.mu.Unlock()
	c.awaitBridgeEnd(b)
	s.mu.Lock()
	c.unbridge(b)
	park, _ := c.vars.get("park_after_bridge")
	if c.ready() && park == "true" {
		c.running, c.stateNum = "CS_PARK", 6
		c.queue = nil
		s.mu.Unlock()
		c.park()
		return
	}
	if c.ready() {
		c.hangup("NORMAL_CLEARING")
	}
	s.mu.Unlock()
}

// readStatus is switch_ivr_read's outcome.
type readStatus int

const (
	readSuccess  readStatus = iota // enough digits, or a terminator
	readTimeout                    // no further digit in time
	readTooSmall                   // fewer than the minimum
	readFailed                     // hung up, or a transfer took the channel elsewhere
)

// playAndGetDigits is mod_dptools' play_and_get_digits <min> <max> <tries>
// <timeout ms> <terminators> <prompt> <invalid> <var> <regexp> [<digit
// timeout ms>] [<transfer on failure>], as switch_play_and_get_digits runs
// it: each try reads (switch_ivr_read); a try whose digits match the regexp
// ends the application; any other plays <invalid>. Digits that do not match
// clear <var> and go to <var>_invalid. read_result is the last try's:
// success, timeout (the digit timeout ended a read that may still have had
// enough digits) or failure (too few, e.g. none).
func (c *Channel) playAndGetDigits(arg string) appResult {
	s := c.sim
	f := strings.SplitN(strings.TrimSpace(arg), " ", 11)
	if len(f) == 0 || f[0] == "" {
		return appResult{}
	}
	get := func(i int) string {
		if i < len(f) {
			return f[i]
		}
		return ""
	}
	atoi := func(i int) int { n, _ := strconv.Atoi(get(i)); return n }
	minD, maxD, tries, timeoutMS := max(atoi(0), 0), atoi(1), atoi(2), 1000
	if len(f) > 3 {
		timeoutMS = atoi(3)
	}
	terms, prompt, invalid, varName, reText := get(4), get(5), get(6), get(7), get(8)
	digitTimeoutMS, onFailure := atoi(9), get(10)
	maxD = max(maxD, minD)
	timeoutMS = max(timeoutMS, 1000)
	if terms == "" {
		terms = "#"
	}
	if digitTimeoutMS == 0 {
		digitTimeoutMS = timeoutMS
	}
	// An expression that does not compile matches nothing, as
	// switch_regex_match fails.
	re, reErr := regexp.Compile(reText)
	if reText != "" && varName != "" {
		s.mu.Lock()
		c.vars.unset(varName + "_invalid")
		s.mu.Unlock()
	}
	for ; tries > 0; tries-- {
		s.mu.Lock()
		ok := c.ready()
		s.mu.Unlock()
		if !ok {
			break
		}
		digits, term, st, res := c.readDigits(minD, maxD, prompt, varName, time.Duration(timeoutMS)*time.Millisecond,
			terms, time.Duration(digitTimeoutMS)*time.Millisecond)
		if res.transfer != nil || res.bridge != nil {
			return res
		}
		if st == readTimeout && len(digits) >= minD {
			st = readSuccess
		}
		if minD == 0 && digits == "" && term != "" {
			return appResult{}
		}
		if st == readSuccess && digits != "" {
			if reText == "" {
				return appResult{}
			}
			if reErr == nil && re.MatchString(digits) {
				return appResult{}
			}
			s.mu.Lock()
			if varName != "" {
				c.vars.unset(varName)
				c.vars.set(varName+"_invalid", digits)
			}
			s.mu.Unlock()
		}
		s.mu.Lock()
		ok = c.ready()
		s.mu.Unlock()
		if !ok {
			break
		}
		if invalid != "" {
			if res := c.playback(invalid); res.transfer != nil || res.bridge != nil {
				return res
			}
		}
	}
	if onFailure != "" {
		t := strings.Fields(onFailure)
		m := message{kind: msgTransfer, exten: t[0]}
		if len(t) > 2 {
			m.context = t[2]
		}
		return appResult{transfer: &m}
	}
	return appResult{}
}

// readDigits is one try of switch_ivr_read: it clears read_result and the
// variable, plays the prompt (a digit stops it and is the first read),
// collects up to maxD digits, and sets read_result,
// read_terminator_used and the variable.
func (c *Channel) readDigits(minD, maxD int, prompt, varName string, timeout time.Duration, terms string, digitTimeout time.Duration) (string, string, readStatus, appResult) {
	s := c.sim
	s.mu.Lock()
	c.vars.unset("read_result")
	if varName != "" {
		c.vars.unset(varName)
	}
	s.mu.Unlock()
	var buf []byte
	st := readSuccess
	if prompt != "" && !strings.EqualFold(prompt, "silence") {
		res, d, got := c.playbackWith(prompt, true)
		if res.transfer != nil || res.bridge != nil {
			return "", "", readFailed, res
		}
		if got {
			buf = append(buf, d)
		}
	}
	term := ""
	if (minD > 0 && len(buf) < minD) || len(buf) < maxD {
		wait := timeout
		if len(buf) > 0 {
			wait = digitTimeout
		}
		for len(buf) < maxD {
			res, d, got := c.waitFor(wait, false, true)
			if res.transfer != nil || res.bridge != nil {
				return "", "", readFailed, res
			}
			if !got {
				st = readTimeout
				if res.response == "break" {
					st = readFailed // hung up
				}
				break
			}
			if strings.IndexByte(terms, d) >= 0 {
				term = string(d)
				break
			}
			buf = append(buf, d)
			wait = digitTimeout
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if term != "" {
		c.vars.set("read_terminator_used", term)
	}
	if minD > 0 && len(buf) < minD {
		st = readTooSmall
	}
	switch st {
	case readSuccess:
		c.vars.set("read_result", "success")
	case readTimeout:
		c.vars.set("read_result", "timeout")
	default:
		c.vars.set("read_result", "failure")
	}
	if maxD == 1 && len(buf) == 1 && strings.IndexByte(terms, buf[0]) >= 0 {
		buf = nil // a lone terminator read as the prompt's digit
	}
	if varName != "" && len(buf) > 0 {
		c.vars.set(varName, string(buf))
	}
	return string(buf), term, st, appResult{}
}

// amd is mod_amd's answering-machine detection: it listens to the greeting
// and sets amd_result (MACHINE, HUMAN or NOTSURE) and amd_cause.
func (c *Channel) amd() appResult {
	s := c.sim
	s.mu.Lock()
	o := c.outcome
	s.mu.Unlock()
	listen := 2500 * time.Millisecond
	result, cause := "HUMAN", "HUMAN"
	if o.Kind == scenario.Machine {
		result, cause = "MACHINE", "LONGGREETING"
		listen = min(o.MachineGreeting, 1500*time.Millisecond+o.MachineGreeting/4)
	} else {
		listen = 800 * time.Millisecond
	}
	if res := c.wait(listen, false); res.transfer != nil || res.bridge != nil {
		return res
	}
	s.mu.Lock()
	c.vars.set("amd_result", result)
	c.vars.set("amd_cause", cause)
	s.mu.Unlock()
	return appResult{}
}

// avmdStart is mod_avmd: on a machine, when the greeting's beep is heard, a
// CUSTOM avmd::beep event fires and the channel's execute_on_avmd_beep
// runs (unless avmd_stop came first).
func (c *Channel) avmdStart() appResult {
	s := c.sim
	s.mu.Lock()
	defer s.mu.Unlock()
	c.avmdOn = true
	o := c.outcome
	if o.Kind != scenario.Machine {
		return appResult{}
	}
	elapsed := time.Duration(s.micro()-c.prof.answered) * time.Microsecond
	c.addTimer(max(o.MachineGreeting-elapsed, 0), func() {
		if !c.avmdOn {
			return
		}
		c.vars.set("avmd_detect", "TRUE")
		s.bus.fire("CUSTOM", "avmd::beep", func(e *eventBuilder) {
			e.file, e.fn, e.line = "mod_avmd.c", "avmd_fire_event", 1340
			e.uuid = c.uuid
			e.headers = append(e.headers, h("Beep-Status", "DETECTED"), h("Frequency", "1000.000000"),
				h("Frequency-variance", "0.000000"), h("Amplitude", "0.500000"), h("Amplitude-variance", "0.000000"),
				h("Detection-start-time", strconv.FormatInt(s.micro(), 10)), h("Detection-stop-time", strconv.FormatInt(s.micro(), 10)))
			e.headers = c.eventData("CUSTOM", e.headers)
		})
		if v, ok := c.vars.get("execute_on_avmd_beep"); ok {
			c.executeOn(v)
		}
	})
	return appResult{}
}

// executeOn runs an execute_on_* variable's value, "app arg", "app:arg" or
// "app::arg", as switch_channel_execute_on_value does; the simulator queues
// it to the session thread as the asynchronous "::" form does (a
// synchronous run from a media thread is not simulated). A transfer breaks
// the application running (sleep, playback) as the queued transfer does.
// Callers hold s.mu.
func (c *Channel) executeOn(value string) {
	app, arg := value, ""
	if i := strings.Index(value, "::"); i >= 0 && !strings.ContainsAny(value[:i], " :") {
		app, arg = value[:i], value[i+2:]
	} else if i := strings.IndexAny(value, " :"); i >= 0 {
		app, arg = value[:i], value[i+1:]
	}
	if app == "transfer" {
		f := strings.Fields(arg)
		if len(f) == 0 {
			return
		}
		m := message{kind: msgTransfer, exten: f[0]}
		if len(f) > 2 {
			m.context = f[2]
		}
		c.push(m)
		return
	}
	c.push(message{kind: msgExecute, app: app, arg: arg})
}

// parseSchedHangup reads the sched_hangup application's "+<secs> [cause]".
func parseSchedHangup(arg string) (time.Duration, string, bool) {
	f := strings.Fields(arg)
	if len(f) == 0 {
		return 0, "", false
	}
	secs, _ := strconv.Atoi(strings.TrimPrefix(f[0], "+"))
	cause := "ALLOTTED_TIMEOUT"
	if len(f) > 1 {
		cause = f[1]
	}
	return time.Duration(secs) * time.Second, cause, true
}

// schedHangup schedules a hangup (sched_hangup). Callers hold s.mu.
func (s *Sim) schedHangup(c *Channel, d time.Duration, cause string) {
	t := s.clock.AfterFunc(d, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if c.ready() {
			c.hangup(cause)
		}
	})
	s.scheduled[c.uuid] = append(s.scheduled[c.uuid], t)
}

// dialplan is the simulator's XML dialplan: the contexts Ringback transfers
// calls to, mirroring freeswitch/conf/dialplan.
var dialplan = map[string]map[string][]app{
	// fsref is the reference context the real-FreeSWITCH captures used
	// (freeswitch/conf/dialplan/fsref.xml); the conformance tests transfer
	// to it in both modes.
	"fsref": {
		"6001": {{"answer", ""}, {"sleep", "1000"}, {"hangup", "NORMAL_CLEARING"}},
		"6002": {{"hangup", "USER_BUSY"}},
		"6003": {{"ring_ready", ""}, {"park", ""}},
		"6006": {{"answer", ""}, {"playback", "tone_stream://%(300,200,600);loops=2"}, {"park", ""}},
	},
	// ringback is freeswitch/conf/dialplan/ringback.xml, action for action.
	// Its conditions on ${module_exists(mod_amd)} and
	// ${module_exists(mod_avmd)} take the branch of a switch with both
	// modules loaded (the simulator simulates amd and avmd_start).
	"ringback": {
		"announce":         {{"answer", ""}, {"playback", "${ringback_announcement}"}, {"park", ""}},
		"park":             {{"park", ""}},
		"agent_conference": {{"answer", ""}, {"conference", "${ringback_conference}@ringback_agent"}, {"park", ""}},
		"ivr_digits": {{"answer", ""}, {"play_and_get_digits", "${ringback_pagd_min} ${ringback_pagd_max} ${ringback_pagd_tries} " +
			"${ringback_pagd_timeout_ms} ${ringback_pagd_terminators} ${ringback_pagd_prompt} ${ringback_pagd_invalid} " +
			"${ringback_pagd_var} ${ringback_pagd_regexp} ${ringback_pagd_digit_timeout_ms}"}, {"park", ""}},
		"amd": {{"answer", ""}, {"amd", ""}, {"park", ""}},
		"voicemail_drop": {{"answer", ""}, {"set", "execute_on_avmd_beep=transfer::voicemail_drop_play XML ringback"},
			{"avmd_start", ""}, {"sleep", "${ringback_beep_timeout_ms}"}, {"transfer", "voicemail_drop_play XML ringback"}},
		"voicemail_drop_play": {{"unset", "execute_on_avmd_beep"}, {"avmd_stop", ""}, {"playback", "${ringback_message}"},
			{"hangup", "NORMAL_CLEARING"}},
		"goodbye": {{"playback", "${ringback_message}"}, {"hangup", "NORMAL_CLEARING"}},
	},
}

// dialplanDefaults are ringback.xml's X-PRE-PROCESS "set" lines: global
// variables, which ${var} falls back to when the channel has no such
// variable. They are not channel variables: events do not show them.
var dialplanDefaults = vars{
	{Name: "ringback_announcement", Value: "silence_stream://500"},
	{Name: "ringback_message", Value: "silence_stream://500"},
	{Name: "ringback_beep_timeout_ms", Value: "30000"},
	{Name: "ringback_pagd_min", Value: "1"},
	{Name: "ringback_pagd_max", Value: "1"},
	{Name: "ringback_pagd_tries", Value: "3"},
	{Name: "ringback_pagd_timeout_ms", Value: "5000"},
	{Name: "ringback_pagd_terminators", Value: "#"},
	{Name: "ringback_pagd_prompt", Value: "silence_stream://250"},
	{Name: "ringback_pagd_invalid", Value: "silence_stream://250"},
	{Name: "ringback_pagd_var", Value: "pagd_digits"},
	{Name: "ringback_pagd_regexp", Value: `\d+`},
	{Name: "ringback_pagd_digit_timeout_ms", Value: "3000"},
}

// condition is an extension's second <condition> in the XML dialplan: a
// field (a ${variable} expansion) tested against a regular expression at
// routing time. When it fails, the extension runs its anti-actions instead
// of its actions.
type condition struct {
	field string
	expr  *regexp.Regexp
	anti  []app
}

// dialplanConditions are the extensions of dialplan that have a condition
// on a channel variable, as their XML has.
var dialplanConditions = map[string]map[string]condition{
	"ringback": {
		// A room name mod_conference would misread ("@" picks a profile,
		// "+" a PIN) or an empty one never reaches the conference.
		"agent_conference": {field: "${ringback_conference}", expr: regexp.MustCompile(`^[A-Za-z0-9_.-]+$`),
			anti: []app{{"log", "ERR agent_conference: ringback_conference is missing or invalid"}, {"hangup", "MANDATORY_IE_MISSING"}}},
	},
}

// dialplanLookup finds an extension and decides, as mod_dialplan_xml does
// while routing, between its actions and anti-actions; expand resolves the
// condition's field with the channel's variables (and the globals).
func dialplanLookup(context, exten string, expand func(string) string) ([]app, bool) {
	ctx, ok := dialplan[context]
	if !ok {
		return nil, false
	}
	apps, ok := ctx[exten]
	if !ok {
		return nil, false
	}
	if cond, ok := dialplanConditions[context][exten]; ok && !cond.expr.MatchString(expand(cond.field)) {
		return cond.anti, true
	}
	return apps, true
}
