package sim

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringback/ringback/freeswitch/sim/internal/event"
	"github.com/ringback/ringback/freeswitch/sim/scenario"
)

// Channel states as switch_channel_state_t numbers them.
var stateNumbers = map[string]int{
	"CS_NEW": 0, "CS_INIT": 1, "CS_ROUTING": 2, "CS_SOFT_EXECUTE": 3, "CS_EXECUTE": 4,
	"CS_EXCHANGE_MEDIA": 5, "CS_PARK": 6, "CS_CONSUME_MEDIA": 7, "CS_HIBERNATE": 8,
	"CS_RESET": 9, "CS_HANGUP": 10, "CS_REPORTING": 11, "CS_DESTROY": 12, "CS_NONE": 13,
}

var callStateNumbers = map[string]string{"DOWN": "0", "DIALING": "1", "RINGING": "2", "EARLY": "3", "ACTIVE": "4", "HELD": "5", "RING_WAIT": "6", "HANGUP": "7", "UNHELD": "8"}

// eventsWithVariables are the event types switch_channel_event_set_extended_data
// adds variable_* headers to; other channel events carry only basic data and
// the caller profile.
var eventsWithVariables = map[string]bool{
	"CHANNEL_CREATE": true, "CHANNEL_ORIGINATE": true, "CHANNEL_UUID": true, "CHANNEL_ANSWER": true,
	"CHANNEL_PARK": true, "CHANNEL_UNPARK": true, "CHANNEL_BRIDGE": true, "CHANNEL_UNBRIDGE": true,
	"CHANNEL_PROGRESS": true, "CHANNEL_PROGRESS_MEDIA": true, "CHANNEL_HANGUP": true,
	"CHANNEL_HANGUP_COMPLETE": true, "CHANNEL_DATA": true, "CHANNEL_EXECUTE": true,
	"CHANNEL_EXECUTE_COMPLETE": true, "CHANNEL_DESTROY": true, "API": true,
	"PLAYBACK_START": true, "PLAYBACK_STOP": true, "CALL_UPDATE": true, "CUSTOM": true,
	"RECORD_START": true, "RECORD_STOP": true, "CHANNEL_HOLD": true, "CHANNEL_UNHOLD": true,
}

// profile is a caller profile (switch_caller_profile_t) as events print it.
type profile struct {
	direction, logicalDirection string
	cidName, cidNumber          string
	origCIDName, origCIDNumber  string
	calleeName, calleeNumber    string
	networkAddr                 string
	ani, destination            string
	uuid, source, context       string
	dialplan                    string
	channelName                 string
	created, answered, progress int64 // µs since epoch
	progressMedia, hangup       int64
	transfer, bridged           int64
}

// prefixed interns prefix+name: events repeat the same few hundred header
// names, and concatenating them for every event was a measurable cost.
// The cache is bounded because variable names come from clients.
var (
	prefixed      sync.Map
	prefixedCount atomic.Int64
)

const maxPrefixed = 20000

func prefixedName(prefix, name string) string {
	key := [2]string{prefix, name}
	if v, ok := prefixed.Load(key); ok {
		return v.(string)
	}
	if prefixedCount.Load() >= maxPrefixed {
		return prefix + name
	}
	v, loaded := prefixed.LoadOrStore(key, prefix+name)
	if !loaded {
		prefixedCount.Add(1)
	}
	return v.(string)
}

func (p *profile) appendTo(hs []event.Header, prefix string, withIndex bool) []event.Header {
	// switch_caller_profile_event_set_data leaves empty strings out.
	add := func(n, v string) {
		if v != "" {
			hs = append(hs, event.Header{Name: prefixedName(prefix, n), Value: v})
		}
	}
	i64 := func(v int64) string { return strconv.FormatInt(v, 10) }
	add("Direction", p.direction)
	add("Logical-Direction", p.logicalDirection)
	if p.dialplan != "" {
		add("Dialplan", p.dialplan)
	}
	add("Caller-ID-Name", p.cidName)
	add("Caller-ID-Number", p.cidNumber)
	add("Orig-Caller-ID-Name", p.origCIDName)
	add("Orig-Caller-ID-Number", p.origCIDNumber)
	add("Callee-ID-Name", p.calleeName)
	add("Callee-ID-Number", p.calleeNumber)
	if p.networkAddr != "" {
		add("Network-Addr", p.networkAddr)
	}
	add("ANI", p.ani)
	add("Destination-Number", p.destination)
	add("Unique-ID", p.uuid)
	add("Source", p.source)
	add("Context", p.context)
	add("Channel-Name", p.channelName)
	if withIndex {
		add("Profile-Index", "1")
	}
	add("Profile-Created-Time", i64(p.created))
	add("Channel-Created-Time", i64(p.created))
	add("Channel-Answered-Time", i64(p.answered))
	add("Channel-Progress-Time", i64(p.progress))
	add("Channel-Progress-Media-Time", i64(p.progressMedia))
	add("Channel-Hangup-Time", i64(p.hangup))
	add("Channel-Transfer-Time", i64(p.transfer))
	add("Channel-Resurrect-Time", "0")
	add("Channel-Bridged-Time", i64(p.bridged))
	add("Channel-Last-Hold", "0")
	add("Channel-Hold-Accum", "0")
	add("Screen-Bit", "true")
	add("Privacy-Hide-Name", "false")
	add("Privacy-Hide-Number", "false")
	return hs
}

// vars is a channel's variable list: ordered like FreeSWITCH's (a set moves
// the variable to the end), small enough that a linear scan is fastest.
type vars []event.Header

func (v *vars) get(name string) (string, bool) {
	for _, h := range *v {
		if h.Name == name {
			return h.Value, true
		}
	}
	return "", false
}

func (v *vars) set(name, value string) {
	v.unset(name)
	if value == "" {
		return // switch_channel_set_variable with an empty value unsets
	}
	*v = append(*v, event.Header{Name: name, Value: value})
}

// setDefault sets name only when it has no value yet.
func (v *vars) setDefault(name, value string) {
	if _, ok := v.get(name); !ok {
		*v = append(*v, event.Header{Name: name, Value: value})
	}
}

func (v *vars) unset(name string) {
	for i, h := range *v {
		if h.Name == name {
			*v = append((*v)[:i], (*v)[i+1:]...)
			return
		}
	}
}

// msgKind is what a channel's session thread is asked to do.
type msgKind int

const (
	msgExecute  msgKind = iota // run an application (sendmsg execute, uuid_broadcast)
	msgBreak                   // stop the current playback (uuid_break)
	msgTransfer                // leave the current application and route to an extension
	msgBridge                  // leave the current application and bridge (uuid_bridge)
	msgUnbridge                // the bridge partner is gone
)

type message struct {
	kind      msgKind
	app, arg  string
	eventUUID string
	loops     int
	exten     string
	context   string
	peer      *Channel
	lock      bool // event-lock
}

// Channel is one leg: the simulator's switch_core_session.
type Channel struct {
	sim        *Sim
	uuid, name string
	endpoint   string // sofia, user, loopback, null
	callUUID   string

	running     string // running state name (Channel-State)
	stateNum    int    // requested state (Channel-State-Number)
	callState   string // DOWN RINGING EARLY ACTIVE HANGUP
	answerState string // ringing early answered hangup
	hitDialplan bool
	media       bool // codecs negotiated: Channel-Read-Codec-* present
	codec       string
	codecRate   int
	flipped     bool

	prof     profile
	other    *profile // Other-Leg-* profile
	otherTyp string   // originator | originatee
	vars     vars

	hangupCause string
	sipStatus   int
	hungup      chan struct{} // closed by hangup
	destroyed   bool

	// session thread control
	queue      []message
	wake       chan struct{}
	started    bool
	execStart  chan []app // the extension to run once the originate succeeded
	bridgePeer *Channel
	parked     bool
	playing    chan struct{} // closed to break the current playback
	dtmf       []byte        // digits received and not yet consumed
	dtmfWake   chan struct{}
	timers     []*time.Timer
	user       string // registered user extension this leg rings, if any
	conference *conferenceMember
	controlled []*eslConn      // myevents/outbound socket listeners bound to this session
	finished   chan struct{}   // closed once CS_DESTROY ran
	ghost      bool            // vanished in a simulated restart
	waiter     chan legOutcome // the originate waiting for this leg, until it concludes
	outcome    scenario.Outcome

	// loopback/ pairs: loopLeg is "A" (the outbound leg originate returns)
	// or "B" (the inbound leg running the dialplan); loopPeer is the other
	// half. What the B-leg signals (ring, pre-answer, answer) is signalled
	// on the A-leg first, as mod_loopback's receive_message does; whichever
	// leg hangs up takes the other down with the same cause.
	loopLeg  string
	loopPeer *Channel

	lastApp, lastArg string // the last application started (the app log)

	avmdOn bool // mod_avmd listens for a beep (avmd_start until avmd_stop)
}

// micro returns the simulated now in µs.
func (s *Sim) micro() int64 { return s.clock.Now().UnixMicro() }

// basicData appends switch_channel_event_set_basic_data's headers.
func (c *Channel) basicData(hs []event.Header) []event.Header {
	add := func(n, v string) { hs = append(hs, event.Header{Name: n, Value: v}) }
	add("Channel-State", c.running)
	add("Channel-Call-State", c.callState)
	add("Channel-State-Number", strconv.Itoa(c.stateNum))
	add("Channel-Name", c.name)
	add("Unique-ID", c.uuid)
	add("Call-Direction", c.prof.direction)
	add("Presence-Call-Direction", c.prof.direction)
	add("Channel-HIT-Dialplan", strconv.FormatBool(c.hitDialplan))
	add("Channel-Call-UUID", c.callUUID)
	add("Answer-State", c.answerState)
	if c.hangupCause != "" {
		add("Hangup-Cause", c.hangupCause)
	}
	if c.media {
		rate := strconv.Itoa(c.codecRate)
		bitrate := "64000"
		if c.codec == "L16" {
			bitrate = "128000"
		}
		add("Channel-Read-Codec-Name", c.codec)
		add("Channel-Read-Codec-Rate", rate)
		add("Channel-Read-Codec-Bit-Rate", bitrate)
		add("Channel-Write-Codec-Name", c.codec)
		add("Channel-Write-Codec-Rate", rate)
		add("Channel-Write-Codec-Bit-Rate", bitrate)
	}
	return hs
}

// eventData appends switch_channel_event_set_data's headers for an event.
func (c *Channel) eventData(name string, hs []event.Header) []event.Header {
	hs = c.basicData(hs)
	hs = c.prof.appendTo(hs, "Caller-", true)
	if c.other != nil {
		hs = append(hs, event.Header{Name: "Other-Type", Value: c.otherTyp})
		hs = c.other.appendTo(hs, "Other-Leg-", false)
	}
	if eventsWithVariables[name] {
		for _, v := range c.vars {
			hs = append(hs, event.Header{Name: prefixedName("variable_", v.Name), Value: v.Value})
		}
	}
	return hs
}

// callerSite is where FreeSWITCH fires an event from (Event-Calling-*).
type callerSite struct {
	file, fn string
	line     int
}

var sites = map[string]callerSite{
	"CHANNEL_OUTGOING":         {"switch_core_session.c", "switch_core_session_outgoing_channel", 768},
	"CHANNEL_STATE":            {"switch_channel.c", "switch_channel_perform_set_running_state", 2408},
	"CHANNEL_CREATE":           {"switch_core_state_machine.c", "switch_core_session_run", 626},
	"CHANNEL_ORIGINATE":        {"switch_core_state_machine.c", "switch_core_session_run", 632},
	"CHANNEL_PROGRESS":         {"switch_channel.c", "switch_channel_perform_mark_ring_ready_value", 3505},
	"CHANNEL_PROGRESS_MEDIA":   {"switch_channel.c", "switch_channel_perform_mark_pre_answered", 3745},
	"CHANNEL_CALLSTATE":        {"switch_channel.c", "switch_channel_perform_set_callstate", 301},
	"CODEC":                    {"switch_core_codec.c", "switch_core_session_set_real_read_codec", 168},
	"CHANNEL_ANSWER":           {"switch_channel.c", "switch_channel_perform_mark_answered", 3846},
	"CALL_UPDATE":              {"switch_channel.c", "switch_channel_flip_cid", 3277},
	"CHANNEL_EXECUTE":          {"switch_core_session.c", "switch_core_session_exec", 2944},
	"CHANNEL_EXECUTE_COMPLETE": {"switch_core_session.c", "switch_core_session_exec", 2967},
	"CHANNEL_PARK":             {"switch_ivr.c", "switch_ivr_park", 1002},
	"CHANNEL_UNPARK":           {"switch_ivr.c", "switch_ivr_park", 1213},
	"CHANNEL_BRIDGE":           {"switch_ivr_bridge.c", "switch_ivr_multi_threaded_bridge", 1689},
	"CHANNEL_UNBRIDGE":         {"switch_ivr_bridge.c", "switch_ivr_multi_threaded_bridge", 1879},
	"CHANNEL_HANGUP":           {"switch_channel.c", "switch_channel_perform_hangup", 3445},
	"CHANNEL_HANGUP_COMPLETE":  {"switch_core_state_machine.c", "switch_core_session_reporting_state", 943},
	"CHANNEL_DESTROY":          {"switch_core_session.c", "switch_core_session_perform_destroy", 1584},
	"PLAYBACK_START":           {"switch_ivr_play_say.c", "switch_ivr_play_file", 1646},
	"PLAYBACK_STOP":            {"switch_ivr_play_say.c", "switch_ivr_play_file", 2020},
	"DTMF":                     {"switch_channel.c", "switch_channel_dequeue_dtmf", 677},
	"CHANNEL_DATA":             {"switch_ivr.c", "switch_ivr_uuid_dump", 0},
}

// emit fires a channel event. pre are headers FreeSWITCH adds before the
// channel data (Hangup-Cause on HANGUP_COMPLETE, Bridge-*-Unique-ID); post
// are added after it (Application, Playback-*, DTMF-*). Callers hold s.mu.
func (c *Channel) emit(name string, pre, post []event.Header) {
	c.emitSite(name, sites[name], pre, post)
}

func (c *Channel) emitSite(name string, site callerSite, pre, post []event.Header) {
	if c.ghost {
		return // the switch "restarted": nothing of this channel is seen again
	}
	c.sim.bus.fire(name, "", func(e *eventBuilder) {
		e.file, e.fn, e.line = site.file, site.fn, site.line
		e.uuid = c.uuid
		e.headers = append(e.headers, pre...)
		e.headers = c.eventData(name, e.headers)
		e.headers = append(e.headers, post...)
	})
}

// setRunning moves the channel's state machine and fires CHANNEL_STATE.
func (c *Channel) setRunning(state string) {
	c.running = state
	c.stateNum = stateNumbers[state]
	c.emit("CHANNEL_STATE", nil, nil)
}

func (c *Channel) setCallState(cs string) {
	if c.callState == cs {
		return
	}
	old := c.callState
	c.callState = cs
	c.emit("CHANNEL_CALLSTATE", nil, []event.Header{h("Original-Channel-Call-State", old), h("Channel-Call-State-Number", callStateNumbers[cs])})
}

func h(name, value string) event.Header { return event.Header{Name: name, Value: value} }

// isHungup reports whether hangup has begun. Callers hold s.mu.
func (c *Channel) isHungup() bool { return c.hangupCause != "" }

// ready is switch_channel_ready: not hung up.
func (c *Channel) ready() bool { return !c.isHungup() }

// notify wakes the session thread.
func (c *Channel) notify() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// push queues a message for the session thread. Callers hold s.mu.
func (c *Channel) push(m message) {
	c.queue = append(c.queue, m)
	c.notify()
}

// progress marks 180 Ringing (or loopback's ring_ready).
func (c *Channel) progress() {
	// Once, and never after the answer (a 180 after the 200 does not happen).
	if c.isHungup() || c.prof.progress != 0 || c.prof.answered != 0 {
		return
	}
	if c.loopLeg == "B" && c.loopPeer != nil {
		c.loopPeer.progress()
	}
	c.prof.progress = c.sim.micro()
	if c.endpoint == "sofia" {
		c.prof.networkAddr = "127.0.0.1"
	}
	c.emit("CHANNEL_PROGRESS", nil, nil)
	c.setCallState("RINGING")
}

// preAnswer marks 183 Session Progress with media.
func (c *Channel) preAnswer() {
	if c.isHungup() || c.prof.progressMedia != 0 || c.prof.answered != 0 {
		return
	}
	if c.loopLeg == "B" && c.loopPeer != nil {
		c.loopPeer.preAnswer()
	}
	c.prof.progressMedia = c.sim.micro()
	c.enableMedia()
	c.answerState = "early"
	c.emit("CHANNEL_PROGRESS_MEDIA", nil, nil)
	c.setCallState("EARLY")
}

func (c *Channel) enableMedia() {
	if c.media {
		return
	}
	if c.codec == "" {
		c.codec, c.codecRate = "PCMU", 8000
	}
	if c.endpoint == "sofia" {
		rate := strconv.Itoa(c.codecRate)
		c.emitSite("CODEC", callerSite{"switch_core_codec.c", "switch_core_session_set_real_read_codec", 168}, nil,
			[]event.Header{h("channel-read-codec-name", c.codec), h("channel-read-codec-rate", rate), h("channel-read-codec-bit-rate", "64000")})
		c.emitSite("CODEC", callerSite{"switch_core_codec.c", "switch_core_session_set_write_codec", 450}, nil,
			[]event.Header{h("channel-write-codec-name", c.codec), h("channel-write-codec-rate", rate), h("channel-write-codec-bit-rate", "64000")})
	}
	c.media = true
	if c.endpoint == "sofia" {
		c.vars.set("read_codec", c.codec)
		c.vars.set("read_rate", strconv.Itoa(c.codecRate))
		c.vars.set("write_codec", c.codec)
		c.vars.set("write_rate", strconv.Itoa(c.codecRate))
		c.vars.set("dtmf_type", "rfc2833")
		c.vars.set("remote_media_ip", "127.0.0.1")
		c.vars.set("remote_media_port", "16000")
	}
}

// markAnswered is switch_channel_mark_answered plus the cid flip an answered
// outbound sofia leg does.
func (c *Channel) markAnswered() {
	if c.isHungup() || c.prof.answered != 0 {
		return
	}
	if c.loopLeg == "B" && c.loopPeer != nil {
		// switch_channel_answer indicates the answer to the endpoint
		// before marking the channel: the A-leg's CHANNEL_ANSWER comes
		// first (capture 07).
		c.loopPeer.markAnswered()
	}
	if c.prof.progress == 0 && c.endpoint == "sofia" {
		c.prof.progress = c.sim.micro()
		c.prof.networkAddr = "127.0.0.1"
	}
	c.enableMedia()
	c.prof.answered = c.sim.micro()
	c.answerState = "answered"
	c.emit("CHANNEL_ANSWER", nil, nil)
	// Set after CHANNEL_ANSWER: no captured CHANNEL_ANSWER carries it.
	c.vars.set("endpoint_disposition", "ANSWER")
	if v, ok := c.vars.get("execute_on_answer"); ok && v != "" {
		c.executeInline(v)
	}
	c.setCallState("ACTIVE")
	if c.prof.direction == "outbound" && c.endpoint == "sofia" && !c.flipped {
		c.flipCID()
	}
	c.sim.onAnswer(c)
}

// executeInline runs an execute_on_* application in the signalling
// thread, as switch_channel_execute_on does; only applications that return
// at once are meaningful there (sched_hangup, set, export). Callers hold s.mu.
func (c *Channel) executeInline(spec string) {
	name, arg, _ := strings.Cut(strings.TrimSpace(spec), " ")
	appUUID := newUUID()
	post := []event.Header{h("Application", name)}
	if arg != "" {
		post = append(post, h("Application-Data", arg))
	}
	c.emit("CHANNEL_EXECUTE", nil, append(post, h("Application-UUID", appUUID)))
	switch name {
	case "sched_hangup":
		if d, cause, ok := parseSchedHangup(arg); ok {
			c.sim.schedHangup(c, d, cause)
		}
	case "set", "export":
		k, v, _ := strings.Cut(arg, "=")
		c.vars.set(k, v)
	}
	c.emit("CHANNEL_EXECUTE_COMPLETE", nil, append(post, h("Application-Response", "_none_"), h("Application-UUID", appUUID)))
}

// flipCID swaps caller and callee on an answered outbound leg, as
// switch_channel_flip_cid does (Caller-Caller-ID-Number becomes the
// destination; the original stays in Caller-Orig-Caller-ID-Number).
func (c *Channel) flipCID() {
	c.flipped = true
	name, number := "Outbound Call", c.prof.destination
	if c.endpoint == "loopback" {
		// switch_channel_flip_cid proper: the callee becomes the caller
		// (loopback/6001/fsref: "Outbound Call" <fsref>, capture 07).
		name, number = c.prof.calleeName, c.prof.calleeNumber
	}
	c.vars.set("pre_transfer_caller_id_name", c.prof.cidName)
	c.vars.set("pre_transfer_caller_id_number", c.prof.cidNumber)
	c.prof.calleeName, c.prof.calleeNumber = c.prof.cidName, c.prof.cidNumber
	c.prof.cidName, c.prof.cidNumber = name, number
	c.vars.set("channel_cid_flipped", "yes")
	c.emit("CALL_UPDATE", nil, []event.Header{h("Direction", "RECV")})
}

// hangup starts tearing the channel down, as switch_channel_hangup does: the
// cause is set, CHANNEL_HANGUP fires in the current running state and the
// session thread finishes the rest. Callers hold s.mu.
func (c *Channel) hangup(cause string) {
	if c.isHungup() {
		return
	}
	cause = causeOrDefault(cause)
	c.hangupCause = cause
	c.answerState = "hangup"
	c.stateNum = stateNumbers["CS_HANGUP"]
	for _, t := range c.timers {
		t.Stop()
	}
	c.timers = nil
	if c.sipStatus != 0 {
		c.vars.set("sip_term_status", strconv.Itoa(c.sipStatus))
		c.vars.set("proto_specific_hangup_cause", "sip:"+strconv.Itoa(c.sipStatus))
	}
	// hangup_cause and hangup_cause_q850 are set later, in CS_HANGUP
	// (finish): no captured CHANNEL_HANGUP carries them.
	c.emit("CHANNEL_HANGUP", nil, nil)
	close(c.hungup)
	c.notify()
	c.sim.onHangup(c)
}

// addTimer runs f under s.mu after simulated duration d unless the channel
// hangs up first.
func (c *Channel) addTimer(d time.Duration, f func()) {
	var t *time.Timer
	t = c.sim.clock.AfterFunc(d, func() {
		c.sim.mu.Lock()
		defer c.sim.mu.Unlock()
		if c.isHungup() {
			return
		}
		f()
	})
	c.timers = append(c.timers, t)
}

// reportingData fills the CDR variables FreeSWITCH sets at CS_REPORTING.
func (c *Channel) reportingData() {
	v := &c.vars
	end := c.prof.hangup
	start := c.prof.created
	stamp := func(us int64) string {
		if us == 0 {
			return ""
		}
		return time.UnixMicro(us).Local().Format("2006-01-02 15:04:05")
	}
	sec := func(us int64) string { return strconv.FormatInt(us/1e6, 10) }
	usec := func(us int64) string { return strconv.FormatInt(us, 10) }
	diff := func(a, b int64) int64 {
		if a == 0 || b == 0 || b < a {
			return 0
		}
		return b - a
	}
	// digits_dialed is "none" in 56 of the 59 captured
	// CHANNEL_HANGUP_COMPLETE events, whatever the leg executed (01, 02,
	// 07, nc_session_loopback_9664...); the three without it (09, 12, 26)
	// are answered sofia legs that also have no last_app.
	v.set("digits_dialed", "none")
	v.set("start_stamp", stamp(start))
	v.set("profile_start_stamp", stamp(start))
	if c.prof.answered != 0 {
		v.set("answer_stamp", stamp(c.prof.answered))
	}
	if c.prof.bridged != 0 {
		v.set("bridge_stamp", stamp(c.prof.bridged))
	}
	if c.prof.progress != 0 {
		v.set("progress_stamp", stamp(c.prof.progress))
	}
	if c.prof.progressMedia != 0 {
		v.set("progress_media_stamp", stamp(c.prof.progressMedia))
	}
	v.set("end_stamp", stamp(end))
	for _, p := range []struct {
		name string
		us   int64
	}{{"start", start}, {"profile_start", start}, {"answer", c.prof.answered}, {"bridge", c.prof.bridged},
		{"last_hold", 0}, {"resurrect", 0}, {"progress", c.prof.progress}, {"progress_media", c.prof.progressMedia}, {"end", end}} {
		v.set(p.name+"_epoch", sec(p.us))
		v.set(p.name+"_uepoch", usec(p.us))
		if p.name == "last_hold" {
			v.set("hold_accum_seconds", "0")
			v.set("hold_accum_usec", "0")
			v.set("hold_accum_ms", "0")
		}
	}
	// last_app/last_arg come from the session's application log (the last
	// application started), set here rather than as applications run.
	v.set("last_app", c.lastApp)
	v.set("last_arg", c.lastArg)
	if c.prof.cidName == "" {
		v.set("caller_id", c.prof.cidNumber) // "1000", not "" <1000> (captures 02, 07)
	} else {
		v.set("caller_id", "\""+c.prof.cidName+"\" <"+c.prof.cidNumber+">")
	}
	dur := diff(start, end)
	bill := diff(c.prof.answered, end)
	prog := diff(start, c.prof.progress)
	ans := diff(start, c.prof.answered)
	wait := ans
	if c.prof.answered == 0 {
		wait = 0
	}
	pm := diff(start, c.prof.progressMedia)
	flow := bill
	for _, u := range []struct {
		suffix string
		div    int64
	}{{"sec", 1e6}, {"msec", 1e3}, {"usec", 1}} {
		pre := map[string]string{"sec": "", "msec": "m", "usec": "u"}[u.suffix]
		v.set(pre+"duration", strconv.FormatInt(dur/u.div, 10))
		name := func(s string) string { return s + u.suffix }
		v.set(name("bill"), strconv.FormatInt(bill/u.div, 10))
		v.set(name("progress"), strconv.FormatInt(prog/u.div, 10))
		v.set(name("answer"), strconv.FormatInt(ans/u.div, 10))
		v.set(name("wait"), strconv.FormatInt(wait/u.div, 10))
		v.set(name("progress_media"), strconv.FormatInt(pm/u.div, 10))
		v.set(name("flow_bill"), strconv.FormatInt(flow/u.div, 10))
	}
	if c.endpoint == "sofia" {
		disp := "recv_bye"
		if c.sipStatus == 0 || c.sipStatus == 200 {
			if s, _ := v.get("sip_hangup_disposition"); s == "" {
				disp = "send_bye"
				if c.prof.answered == 0 {
					disp = "send_cancel"
				}
			}
		} else {
			disp = "recv_refuse"
		}
		v.setDefault("sip_hangup_disposition", disp)
	}
}

// expand replaces ${var} references in s with the channel's variables, as
// the dialplan does for application arguments.
func (c *Channel) expand(s string) string {
	if !strings.Contains(s, "${") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.Index(s, "${")
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		name := s[i+2 : i+j]
		if v, ok := c.vars.get(name); ok {
			b.WriteString(v)
		} else if v, ok := c.sim.globalVar(name); ok {
			b.WriteString(v)
		}
		s = s[i+j+1:]
	}
}
