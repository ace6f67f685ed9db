package sim

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/ringback/ringback/freeswitch/sim/scenario"
)

// controlHandler serves the control API tests and demos drive the far ends
// with. Every response is JSON; errors are {"error": code, "message": text}.
func (s *Sim) controlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "core_uuid": s.coreUUID()})
	})
	mux.HandleFunc("GET /channels", s.ctlListChannels)
	mux.HandleFunc("POST /channels/{uuid}/answer", s.ctlChannelAction("answer"))
	mux.HandleFunc("POST /channels/{uuid}/hangup", s.ctlChannelAction("hangup"))
	mux.HandleFunc("POST /channels/{uuid}/dtmf", s.ctlChannelAction("dtmf"))
	mux.HandleFunc("PUT /scenario", s.ctlLoadScenario)
	mux.HandleFunc("GET /scenario", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.picker.Load().Scenario())
	})
	mux.HandleFunc("GET /counters", s.ctlCounters)
	mux.HandleFunc("POST /calls/inbound", s.ctlInbound)
	mux.HandleFunc("POST /faults/drop-connections", func(w http.ResponseWriter, r *http.Request) {
		s.dropConnections()
		writeJSON(w, http.StatusOK, map[string]any{"dropped": true})
	})
	mux.HandleFunc("POST /faults/stall", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			MS int64 `json:"ms"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil || req.MS < 0 || req.MS > 600000 {
			writeErr(w, http.StatusBadRequest, "BAD_REQUEST", "body must be {\"ms\": 0..600000}")
			return
		}
		s.stall.Store(req.MS)
		writeJSON(w, http.StatusOK, map[string]any{"stall_ms": req.MS})
	})
	mux.HandleFunc("POST /faults/restart", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"core_uuid": s.Restart()})
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, code int, reason, msg string) {
	writeJSON(w, code, map[string]string{"error": reason, "message": msg})
}

func (s *Sim) coreUUID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hs.coreUUID
}

// ChannelInfo is a channel as the control API lists it.
type ChannelInfo struct {
	UUID        string            `json:"uuid"`
	Name        string            `json:"name"`
	Direction   string            `json:"direction"`
	State       string            `json:"state"`
	CallState   string            `json:"call_state"`
	AnswerState string            `json:"answer_state"`
	Destination string            `json:"destination"`
	CallerID    string            `json:"caller_id_number"`
	BridgedTo   string            `json:"bridged_to,omitempty"`
	Created     time.Time         `json:"created"`
	Variables   map[string]string `json:"variables"`
}

// Channels lists live channels, oldest first.
func (s *Sim) Channels() []ChannelInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ChannelInfo
	for _, c := range s.sortedChannels() {
		ci := ChannelInfo{
			UUID: c.uuid, Name: c.name, Direction: c.prof.direction, State: c.running, CallState: c.callState,
			AnswerState: c.answerState, Destination: c.prof.destination, CallerID: c.prof.origCIDNumber,
			Created: time.UnixMicro(c.prof.created).UTC(), Variables: map[string]string{},
		}
		if c.bridgePeer != nil {
			ci.BridgedTo = c.bridgePeer.uuid
		}
		for _, v := range c.vars {
			ci.Variables[v.Name] = v.Value
		}
		out = append(out, ci)
	}
	return out
}

func (s *Sim) ctlListChannels(w http.ResponseWriter, r *http.Request) {
	chans := s.Channels()
	if chans == nil {
		chans = []ChannelInfo{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"channels": chans})
}

// ctlChannelAction acts as the far end of a channel: answer, hang up (with
// a cause), or press DTMF digits.
func (s *Sim) ctlChannelAction(action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Cause  string `json:"cause"`
			Digits string `json:"digits"`
			Source string `json:"source"`
		}
		if r.ContentLength != 0 {
			if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil {
				writeErr(w, http.StatusBadRequest, "BAD_REQUEST", "invalid JSON body: "+err.Error())
				return
			}
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		c := s.channel(r.PathValue("uuid"))
		if c == nil || !c.ready() {
			writeErr(w, http.StatusNotFound, "NO_SUCH_CHANNEL", "no live channel with that uuid")
			return
		}
		uuid := c.uuid
		if c.loopLeg == "A" && c.loopPeer != nil && c.loopPeer.ready() && action != "dtmf" {
			// A loopback/ A-leg's far end is its B-leg: answering or
			// hanging up there reaches the A-leg as mod_loopback relays it.
			c = c.loopPeer
		}
		switch action {
		case "answer":
			// Answering an answered leg is a no-op: its far end keeps its
			// script (talk time, DTMF).
			if c.prof.answered == 0 {
				for _, t := range c.timers {
					t.Stop()
				}
				c.timers = nil
				c.progress()
				c.markAnswered()
				s.scriptAnswered(c, c.outcome)
			}
		case "hangup":
			cause := req.Cause
			if cause == "" {
				cause = "NORMAL_CLEARING"
			}
			if !validCause(cause) {
				writeErr(w, http.StatusBadRequest, "BAD_CAUSE", "unknown hangup cause "+cause)
				return
			}
			if c.prof.answered != 0 && c.endpoint == "sofia" {
				c.sipStatus = 200
				c.vars.set("sip_hangup_disposition", "recv_bye")
			}
			c.hangup(cause)
		case "dtmf":
			if req.Digits == "" || strings.Trim(req.Digits, "0123456789*#ABCDabcd") != "" {
				writeErr(w, http.StatusBadRequest, "BAD_DIGITS", "digits must be 0-9 * # A-D")
				return
			}
			src := req.Source
			if src == "" {
				src = "RTP"
			}
			for i := 0; i < len(req.Digits); i++ {
				c.receiveDTMF(req.Digits[i], src)
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"uuid": uuid, "action": action})
	}
}

func (s *Sim) ctlLoadScenario(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeErr(w, http.StatusBadRequest, "BAD_REQUEST", err.Error())
		return
	}
	sc, err := scenario.Parse(body)
	if err != nil {
		writeErr(w, http.StatusBadRequest, "BAD_SCENARIO", err.Error())
		return
	}
	if err := s.LoadScenario(sc); err != nil {
		writeErr(w, http.StatusBadRequest, "BAD_SCENARIO", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"loaded": sc.Name, "rules": len(sc.Rules)})
}

// LoadScenario replaces the far-end scenario for calls placed from now on.
func (s *Sim) LoadScenario(sc *scenario.Scenario) error {
	p, err := sc.Compile()
	if err != nil {
		return err
	}
	s.picker.Store(p)
	return nil
}

func (s *Sim) ctlCounters(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	live := len(s.channels)
	since := s.sinceStart
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"channels": live, "sessions_since_startup": since,
		"originates": s.counts.originates.Load(), "answered": s.counts.answered.Load(),
		"failed": s.counts.failed.Load(), "esl_connections": s.counts.eslConns.Load(),
		"events_sent": s.counts.eventsSent.Load(), "api_commands": s.counts.commands.Load(),
	})
}

// InboundCall describes a call arriving from the network.
type InboundCall struct {
	CallerIDNumber string `json:"caller_id_number"`
	CallerIDName   string `json:"caller_id_name"`
	Destination    string `json:"destination_number"` // the DID dialed
	// Socket, when set, routes the call like a dialplan `socket` action to
	// an outbound event-socket server ("host:port async full"); otherwise
	// the call is answered and parked, for inbound listeners to pick up.
	Socket string `json:"socket"`
	// AnswerFirst answers before handing over (default: the controller
	// answers).
	AnswerFirst bool `json:"answer_first"`
}

func (s *Sim) ctlInbound(w http.ResponseWriter, r *http.Request) {
	var req InboundCall
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil {
		writeErr(w, http.StatusBadRequest, "BAD_REQUEST", "invalid JSON body: "+err.Error())
		return
	}
	uuid, err := s.PlaceInbound(req)
	if err != nil {
		writeErr(w, http.StatusBadRequest, "BAD_REQUEST", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"uuid": uuid})
}

type ctlError string

func (e ctlError) Error() string { return string(e) }

// PlaceInbound makes a call arrive on the internal profile from the
// network and routes it.
func (s *Sim) PlaceInbound(req InboundCall) (string, error) {
	if req.CallerIDNumber == "" || req.Destination == "" {
		return "", ctlError("caller_id_number and destination_number are required")
	}
	select {
	case <-s.closed:
		return "", ctlError("the simulator is closed")
	default:
	}
	s.mu.Lock()
	if !s.takeSession() {
		s.mu.Unlock()
		return "", ctlError("session limit reached")
	}
	uuid := newUUID()
	name := "sofia/external/" + req.CallerIDNumber + "@127.0.0.1"
	c := s.newChannel(uuid, name, "sofia", "inbound")
	c.prof.cidName, c.prof.cidNumber = req.CallerIDName, req.CallerIDNumber
	c.prof.origCIDName, c.prof.origCIDNumber = req.CallerIDName, req.CallerIDNumber
	c.prof.ani, c.prof.destination = req.CallerIDNumber, req.Destination
	c.prof.calleeName, c.prof.calleeNumber = "", ""
	c.prof.source, c.prof.context, c.prof.dialplan = "mod_sofia", "public", "XML"
	c.prof.networkAddr = "127.0.0.1"
	c.vars.set("sip_profile_name", "external")
	c.vars.set("channel_name", name)
	c.vars.set("sip_from_user", req.CallerIDNumber)
	c.vars.set("sip_to_user", req.Destination)
	c.vars.set("sip_req_user", req.Destination)
	c.vars.set("caller_id_number", req.CallerIDNumber)
	c.vars.set("destination_number", req.Destination)
	c.running, c.stateNum = "CS_INIT", 1
	c.setRunning("CS_INIT")
	c.stateNum = stateNumbers["CS_ROUTING"]
	c.emit("CHANNEL_CREATE", nil, nil)
	c.setRunning("CS_ROUTING")
	c.progress()
	var apps []app
	if req.AnswerFirst {
		apps = append(apps, app{"answer", ""})
	}
	if req.Socket != "" {
		apps = append(apps, app{"socket", req.Socket})
	} else {
		apps = append(apps, app{"park", ""})
	}
	s.mu.Unlock()
	c.execStart <- apps
	return uuid, nil
}

// Restart simulates FreeSWITCH crashing and coming back: connections drop,
// every channel vanishes without events, and the Core-UUID changes.
func (s *Sim) Restart() string {
	s.dropConnections()
	s.mu.Lock()
	for _, c := range s.channels {
		for _, t := range c.timers {
			t.Stop()
		}
		c.ghost = true
	}
	old := s.channels
	s.channels = make(map[string]*Channel)
	s.userCalls = make(map[string]int)
	s.confs = make(map[string]*conference)
	s.hs.coreUUID = newUUID()
	s.globals = s.initialGlobals()
	s.epoch++
	s.startedAt = s.clock.Now()
	s.sinceStart, s.peak = 0, 0
	id := s.hs.coreUUID
	// The old channels' session threads must still end; as ghosts their
	// hangups fire no events.
	for _, c := range old {
		c.hangup("CRASH")
	}
	s.mu.Unlock()
	return id
}
