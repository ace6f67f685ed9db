package sim

import (
	"strconv"
	"strings"
	"time"

	"github.com/ringback/ringback/freeswitch/sim/internal/event"
	"github.com/ringback/ringback/freeswitch/sim/scenario"
)

// errRestarted is the cause of an originate cut short by a simulated
// restart; such an originate reports nothing (no reply, no BACKGROUND_JOB).
const errRestarted = "\x00restarted"

const originateUsage = "-USAGE: <call url> <exten>|&<application_name>(<app_args>) [<dialplan>] [<context>] [<cid_name>] [<cid_num>] [<timeout_sec>]\n"

// splitArgs splits an API argument string on spaces the way
// switch_separate_string does: single-quoted runs keep their spaces (and
// their quotes, which the variable parser strips later).
func splitArgs(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote := false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '\'':
			inQuote = !inQuote
			cur.WriteByte(ch)
		case ch == ' ' && !inQuote:
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteByte(ch)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}

// dialLeg is one endpoint of a dial string with its [per-leg] variables.
type dialLeg struct {
	vars   vars
	target string
}

// dialString is a parsed originate dial string: {global} variables, then
// failover groups (|) of simultaneous legs (,).
type dialString struct {
	global vars
	groups [][]dialLeg
}

// splitTop splits s on sep outside [], {}, <> and single quotes.
func splitTop(s string, sep byte) []string {
	var out []string
	depth, start := 0, 0
	inQuote := false
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case ch == '\'':
			inQuote = !inQuote
		case inQuote:
		case ch == '[' || ch == '{' || ch == '<':
			depth++
		case ch == ']' || ch == '}' || ch == '>':
			if depth > 0 {
				depth--
			}
		case ch == sep && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// parseVars parses "a=b,c='d e'" into variables.
func parseVars(s string) vars {
	var v vars
	for _, kv := range splitTop(s, ',') {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, val, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		if len(val) >= 2 && val[0] == '\'' && val[len(val)-1] == '\'' {
			val = val[1 : len(val)-1]
		}
		v.set(strings.TrimSpace(k), val)
	}
	return v
}

// closing returns the index of the bracket closing the one at s[0], or -1.
func closing(s string, open, close byte) int {
	depth := 0
	inQuote := false
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case ch == '\'':
			inQuote = !inQuote
		case inQuote:
		case ch == open:
			depth++
		case ch == close:
			depth--
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

func parseDialString(s string) (dialString, bool) {
	var d dialString
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "{") {
		end := closing(s, '{', '}')
		if end < 0 {
			return d, false
		}
		d.global = parseVars(s[1:end])
		s = s[end+1:]
	}
	for _, grp := range splitTop(s, '|') {
		var legs []dialLeg
		for _, l := range splitTop(grp, ',') {
			l = strings.TrimSpace(l)
			var leg dialLeg
			for len(l) > 0 && (l[0] == '[' || l[0] == '<') {
				cl := byte(']')
				if l[0] == '<' {
					cl = '>'
				}
				end := closing(l, l[0], cl)
				if end < 0 {
					return d, false
				}
				for _, kv := range parseVars(l[1:end]) {
					leg.vars.set(kv.Name, kv.Value)
				}
				l = strings.TrimSpace(l[end+1:])
			}
			if l == "" {
				continue
			}
			leg.target = l
			legs = append(legs, leg)
		}
		if len(legs) > 0 {
			d.groups = append(d.groups, legs)
		}
	}
	return d, len(d.groups) > 0
}

// legOutcome is how a leg ended its part in an originate.
type legOutcome struct {
	c        *Channel
	answered bool
	cause    string
}

// originateOpts carries what the originate's caller adds.
type originateOpts struct {
	caller  *Channel // the A-leg when bridging
	timeout time.Duration
	cidName string
	cidNum  string
}

// originate dials a dial string and returns the answered leg, or the cause
// the whole attempt failed with. It blocks until one leg answers, every leg
// failed, or the originate timeout passes.
func (s *Sim) originate(dial string, o originateOpts) (*Channel, string) {
	s.counts.originates.Add(1)
	ds, ok := parseDialString(dial)
	if !ok {
		return nil, "DESTINATION_OUT_OF_ORDER"
	}
	timeout := 60 * time.Second
	if v, ok := ds.global.get("originate_timeout"); ok {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			timeout = time.Duration(n) * time.Second
		}
	} else if v, ok := ds.global.get("call_timeout"); ok {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			timeout = time.Duration(n) * time.Second
		}
	} else if o.timeout > 0 {
		timeout = o.timeout
	}
	deadline := time.NewTimer(s.clock.Real(timeout))
	defer deadline.Stop()
	var callerGone <-chan struct{}
	if o.caller != nil {
		callerGone = o.caller.hungup
	}
	lastCause := "NO_ANSWER"
	s.mu.Lock()
	epoch := s.epoch
	s.mu.Unlock()
	for _, group := range ds.groups {
		results := make(chan legOutcome, len(group)*2)
		s.mu.Lock()
		if s.epoch != epoch {
			// The switch "restarted" under this originate: like a process
			// that died, it goes no further.
			s.mu.Unlock()
			return nil, errRestarted
		}
		var legs []*Channel
		for _, leg := range group {
			c, cause := s.createLeg(ds.global, leg, o, results)
			if c == nil {
				lastCause = cause
				continue
			}
			legs = append(legs, c)
		}
		s.mu.Unlock()
		pending := len(legs)
		for pending > 0 {
			select {
			case r := <-results:
				if r.answered {
					s.mu.Lock()
					for _, c := range legs {
						c.waiter = nil
						if c != r.c && c.ready() {
							c.hangup("LOSE_RACE")
						}
					}
					ready := r.c.ready()
					s.mu.Unlock()
					if ready {
						return r.c, ""
					}
					pending--
					lastCause = "NORMAL_CLEARING"
					continue
				}
				pending--
				lastCause = r.cause
			case <-deadline.C:
				s.mu.Lock()
				for _, c := range legs {
					c.waiter = nil
					c.hangup("NO_ANSWER")
				}
				s.mu.Unlock()
				return nil, "NO_ANSWER"
			case <-callerGone:
				s.mu.Lock()
				for _, c := range legs {
					c.waiter = nil
					c.hangup("ORIGINATOR_CANCEL")
				}
				s.mu.Unlock()
				return nil, "ORIGINATOR_CANCEL"
			}
		}
	}
	return nil, lastCause
}

// createLeg creates one outgoing channel and scripts its far end. It
// returns a nil channel and a cause for failures FreeSWITCH reports before
// a channel exists. Callers hold s.mu.
func (s *Sim) createLeg(global vars, leg dialLeg, o originateOpts, results chan legOutcome) (*Channel, string) {
	lv := make(vars, 0, len(global)+len(leg.vars))
	lv = append(lv, global...)
	for _, kv := range leg.vars {
		lv.set(kv.Name, kv.Value)
	}
	target := leg.target
	endpoint, rest, _ := strings.Cut(target, "/")
	var (
		name, number, profileName, gateway, destURL, user string
		outcome                                           scenario.Outcome
		picker                                            = s.picker.Load()
	)
	switch endpoint {
	case "error":
		return nil, causeOrDefault(rest)
	case "sofia":
		prof, r, ok := strings.Cut(rest, "/")
		if !ok {
			return nil, "INVALID_PROFILE"
		}
		if prof == "gateway" {
			gw, num, _ := strings.Cut(r, "/")
			if gw != "carrier" || num == "" {
				return nil, "INVALID_GATEWAY"
			}
			gateway, number, profileName = gw, num, "external"
			name = "sofia/external/" + num
			destURL = "sip:" + num + "@127.0.0.1:5090"
		} else {
			if prof != "internal" && prof != "external" {
				return nil, "INVALID_PROFILE"
			}
			profileName = prof
			number, _, _ = strings.Cut(r, "@")
			name = "sofia/" + prof + "/" + r
			destURL = "sip:" + r
			if !strings.Contains(r, "@") {
				return nil, "INVALID_URL"
			}
		}
		outcome = picker.Pick(number)
	case "user":
		ext, _, _ := strings.Cut(rest, "@")
		known, registered, out := picker.User(ext)
		if !known {
			return nil, "SUBSCRIBER_ABSENT"
		}
		if !registered {
			return nil, "USER_NOT_REGISTERED"
		}
		user, number, profileName, outcome = ext, ext, "internal", out
		name = "sofia/internal/" + ext + "@127.0.0.1:5070"
		destURL = "sip:" + ext + "@127.0.0.1:5070"
		if picker.Scenario().Users.BusyWhenInCall && s.userCalls[ext] > 0 {
			outcome = scenario.Outcome{Kind: scenario.Busy, RingFor: 50 * time.Millisecond, SIPStatus: 486, Cause: "USER_BUSY"}
		}
	case "loopback":
		ext, _, _ := strings.Cut(rest, "/")
		number = ext
		name = "loopback/" + ext + "-a"
		outcome = picker.Pick(ext)
	case "null":
		number = rest
		name = "null/" + rest
		outcome = scenario.Outcome{Kind: scenario.Answer}
	default:
		return nil, "CHAN_NOT_IMPLEMENTED"
	}
	uuid, _ := lv.get("origination_uuid")
	if uuid != "" && s.channel(uuid) != nil {
		return nil, "DESTINATION_OUT_OF_ORDER"
	}
	if !s.takeSession() {
		return nil, "DESTINATION_OUT_OF_ORDER"
	}
	if uuid == "" {
		uuid = newUUID()
	}
	ep := endpoint
	if ep == "user" {
		ep = "sofia"
	}
	c := s.newChannel(uuid, name, ep, "outbound")
	c.waiter = results
	if user != "" {
		c.user = user
		s.userCalls[user]++
	}
	if ep == "null" || ep == "loopback" {
		c.codec, c.codecRate, c.media = "L16", 8000, true
	}

	// Caller ID: origination_* variables, else the caller's, else defaults.
	cidName, cidNum := "", "0000000000"
	if o.caller != nil {
		cidName, cidNum = o.caller.prof.cidName, o.caller.prof.cidNumber
	}
	if o.cidName != "" {
		cidName = o.cidName
	}
	if o.cidNum != "" {
		cidNum = o.cidNum
	}
	if v, ok := lv.get("origination_caller_id_name"); ok {
		cidName = v
	}
	if v, ok := lv.get("origination_caller_id_number"); ok {
		cidNum = v
	}
	c.prof.cidName, c.prof.cidNumber = cidName, cidNum
	c.prof.origCIDName, c.prof.origCIDNumber = cidName, cidNum
	c.prof.ani = cidNum
	c.prof.calleeName, c.prof.calleeNumber = "Outbound Call", number
	if v, ok := lv.get("origination_callee_id_name"); ok {
		c.prof.calleeName = v
	}
	c.prof.destination = number
	c.prof.source = "src/switch_ivr_originate.c"
	if ep == "loopback" || ep == "null" {
		c.prof.source = "mod_" + ep
		c.prof.dialplan = "xml"
	}

	if ep == "sofia" {
		c.vars.set("sip_profile_name", profileName)
		if gateway != "" {
			c.vars.set("sip_gateway_name", gateway)
			c.vars.set("sip_profile_name", "gateway")
		}
		c.vars.set("video_media_flow", "disabled")
		c.vars.set("text_media_flow", "disabled")
		c.vars.set("channel_name", name)
		c.vars.set("sip_destination_url", destURL)
	} else {
		c.vars.set("channel_name", name)
	}
	if o.caller != nil {
		a := o.caller
		c.callUUID = a.callUUID
		c.vars.set("max_forwards", "69")
		c.vars.set("originator_codec", "PCMU@8000h@20i@64000b")
		c.vars.set("originator", a.uuid)
		c.vars.set("signal_bond", a.uuid)
		snap := a.prof
		snap.created, snap.answered, snap.hangup, snap.transfer, snap.bridged = 0, 0, 0, 0, 0
		snap.logicalDirection = "inbound"
		c.other, c.otherTyp = &snap, "originator"
	}
	for _, kv := range lv {
		c.vars.set(kv.Name, kv.Value)
	}
	c.vars.set("call_uuid", c.callUUID)
	if o.caller != nil {
		c.vars.set("originating_leg_uuid", o.caller.uuid)
	}
	c.vars.set("originate_early_media", "true")
	c.vars.set("originate_endpoint", ep)
	if ep == "sofia" {
		c.vars.set("rtp_use_codec_string", "PCMU,PCMA")
		c.vars.set("local_media_ip", "127.0.0.1")
		c.vars.set("local_media_port", "16384")
		c.vars.set("advertised_media_ip", "127.0.0.1")
		c.vars.set("audio_media_flow", "sendrecv")
		c.vars.set("sip_req_uri", strings.TrimPrefix(destURL, "sip:"))
		c.vars.set("sofia_profile_name", profileName)
		c.vars.set("recovery_profile_name", profileName)
		c.vars.set("sofia_profile_url", "sip:mod_sofia@127.0.0.1:5060")
		c.vars.set("sip_call_id", newUUID())
	}

	// The state machine up to CS_CONSUME_MEDIA, in FreeSWITCH's order.
	c.running, c.stateNum = "CS_NONE", 1
	c.emit("CHANNEL_OUTGOING", nil, nil)
	c.setRunning("CS_INIT")
	c.stateNum = stateNumbers["CS_ROUTING"]
	c.emit("CHANNEL_CREATE", nil, nil)
	c.emit("CHANNEL_ORIGINATE", nil, nil)
	c.setRunning("CS_ROUTING")
	c.setRunning("CS_CONSUME_MEDIA")

	if v, ok := lv.get("leg_timeout"); ok {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			c.addTimer(time.Duration(n)*time.Second, func() { c.hangup("ALLOTTED_TIMEOUT") })
		}
	}
	s.scriptFarEnd(c, outcome)
	return c, ""
}

// scriptFarEnd schedules what the far end does on this leg. Callers hold s.mu.
func (s *Sim) scriptFarEnd(c *Channel, o scenario.Outcome) {
	c.outcome = o
	ring := o.RingFor
	if c.endpoint == "null" {
		c.markAnswered()
		return
	}
	switch o.Kind {
	case scenario.Answer, scenario.Machine:
		// 180 shortly after the INVITE, then 183 (early media) and 200.
		c.addTimer(min(ring/2, 20*time.Millisecond), func() {
			c.progress()
			if o.EarlyMedia {
				c.preAnswer()
			}
		})
		c.addTimer(ring, func() {
			c.markAnswered()
			s.scriptAnswered(c, o)
		})
	case scenario.NoAnswer:
		c.addTimer(min(ring, 20*time.Millisecond), func() {
			c.progress()
			if o.EarlyMedia {
				c.preAnswer()
			}
		})
	default:
		if o.EarlyMedia {
			c.addTimer(ring/2, func() { c.progress(); c.preAnswer() })
		}
		c.addTimer(ring, func() {
			c.sipStatus = o.SIPStatus
			c.vars.set("sip_hangup_disposition", "recv_refuse")
			c.hangup(o.Cause)
		})
	}
}

// scriptAnswered schedules the far end's behaviour after answer: DTMF and
// its own hangup (BYE). Callers hold s.mu.
func (s *Sim) scriptAnswered(c *Channel, o scenario.Outcome) {
	if o.TalkFor > 0 {
		c.addTimer(o.TalkFor, func() {
			c.sipStatus = 200
			c.vars.set("sip_hangup_disposition", "recv_bye")
			c.hangup("NORMAL_CLEARING")
		})
	}
	sources := strings.Split(o.DTMFSource, ",")
	for i := 0; i < len(o.DTMF); i++ {
		d := o.DTMF[i]
		src := strings.ToUpper(sources[min(i, len(sources)-1)])
		if src == "" {
			src = "RTP"
		}
		c.addTimer(o.DTMFDelay+time.Duration(i)*o.DTMFInterval, func() { c.receiveDTMF(d, src) })
	}
}

// receiveDTMF delivers a digit from the far end: the DTMF event, and the
// digit queued for applications collecting digits. Callers hold s.mu.
func (c *Channel) receiveDTMF(d byte, source string) {
	if !c.ready() {
		return
	}
	c.emit("DTMF", nil, []event.Header{h("DTMF-Digit", string(d)), h("DTMF-Duration", "1600"), h("DTMF-Source", source)})
	c.dtmf = append(c.dtmf, d)
	select {
	case c.dtmfWake <- struct{}{}:
	default:
	}
}
