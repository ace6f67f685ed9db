// Package sim is a FreeSWITCH 1.10 simulator: it speaks the real event-socket
// wire protocol (inbound and outbound modes), runs a switch core with channels,
// originate, bridging and dialplan applications, and plays the far ends of calls
// from a deterministic, time-scaled scenario. Ringback's services, tests, demos
// and benchmarks use it wherever a real FreeSWITCH is not available.
//
// It deliberately imports nothing from Ringback's services or from eslgo: it is
// an independent implementation of the server side, so a client bug cannot be
// mirrored by a matching server bug.
package sim

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringback/ringback/freeswitch/sim/internal/event"
	"github.com/ringback/ringback/freeswitch/sim/scenario"
)

// Config configures a simulator. The zero value is a vanilla-like switch on
// the default ports.
type Config struct {
	// ESLAddr is the inbound event socket address; default 127.0.0.1:8021.
	ESLAddr string
	// Password is the event socket password; default ClueCon.
	Password string
	// ControlAddr is the HTTP control API address; default 127.0.0.1:8022.
	// "-" disables it.
	ControlAddr string
	// Hostname is FreeSWITCH-Hostname; default "fssim".
	Hostname string
	// TimeScale is simulated seconds per real second; default 1.
	TimeScale float64
	// Seed makes far-end behaviour reproducible; it overrides the
	// scenario's own seed when non-zero.
	Seed uint64
	// Scenario scripts the far ends; nil means scenario.Default().
	Scenario *scenario.Scenario
	// MaxSessions is fsctl max_sessions; default 10000 (vanilla: 1000).
	MaxSessions int
	// SessionsPerSecond is fsctl sps; default 5000 (vanilla: 30). The
	// simulator must not be the bottleneck of load tests, so its defaults
	// are higher than vanilla's; both can be lowered at run time.
	SessionsPerSecond int
	// HeartbeatInterval is the HEARTBEAT period in simulated time;
	// default 20s.
	HeartbeatInterval time.Duration
	// Logger receives operational logs; default discards.
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.ESLAddr == "" {
		c.ESLAddr = "127.0.0.1:8021"
	}
	if c.Password == "" {
		c.Password = "ClueCon"
	}
	if c.ControlAddr == "" {
		c.ControlAddr = "127.0.0.1:8022"
	}
	if c.Hostname == "" {
		c.Hostname = "fssim"
	}
	if c.TimeScale <= 0 {
		c.TimeScale = 1
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = 10000
	}
	if c.SessionsPerSecond <= 0 {
		c.SessionsPerSecond = 5000
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = 20 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// Sim is a running simulator.
type Sim struct {
	cfg   Config
	log   *slog.Logger
	clock *Clock
	bus   *bus
	hs    *headerSource

	mu          sync.Mutex // guards the switch core: channels and their state
	channels    map[string]*Channel
	picker      atomic.Pointer[scenario.Picker]
	maxSessions int
	spsLimit    int
	spsTokens   int
	spsLast     int
	spsPeak     int
	sinceStart  int
	peak        int
	userCalls   map[string]int
	scheduled   map[string][]*time.Timer
	confs       map[string]*conference
	globals     vars
	startedAt   time.Time
	sessionID   int
	epoch       int // bumped by Restart: work begun before it must leave no trace

	eslLn   net.Listener
	ctlLn   net.Listener
	ctlSrv  *http.Server
	connsMu sync.Mutex
	conns   map[*eslConn]struct{}
	stall   atomic.Int64 // ms to delay every reply (fault injection)
	counts  counters

	closeOnce sync.Once
	closed    chan struct{}
	wg        sync.WaitGroup
}

// counters are exposed by the control API.
type counters struct {
	originates, answered, failed, eslConns, eventsSent, commands atomic.Int64
}

// Start starts a simulator and returns once it is listening.
func Start(ctx context.Context, cfg Config) (*Sim, error) {
	cfg.setDefaults()
	sc := cfg.Scenario
	if sc == nil {
		sc = scenario.Default()
	}
	if cfg.Seed != 0 {
		cp := *sc
		cp.Seed = cfg.Seed
		sc = &cp
	}
	p, err := sc.Compile()
	if err != nil {
		return nil, fmt.Errorf("compile scenario: %w", err)
	}
	s := &Sim{
		cfg:         cfg,
		log:         cfg.Logger,
		clock:       NewClock(cfg.TimeScale),
		channels:    make(map[string]*Channel),
		maxSessions: cfg.MaxSessions,
		spsLimit:    cfg.SessionsPerSecond,
		spsTokens:   cfg.SessionsPerSecond,
		userCalls:   make(map[string]int),
		scheduled:   make(map[string][]*time.Timer),
		confs:       make(map[string]*conference),
		conns:       make(map[*eslConn]struct{}),
		closed:      make(chan struct{}),
	}
	s.picker.Store(p)
	s.startedAt = s.clock.Now()
	s.hs = &headerSource{coreUUID: newUUID(), hostname: cfg.Hostname, ipv4: "127.0.0.1", ipv6: "::1", clock: s.clock}
	s.bus = newBus(s.hs)
	s.globals = s.initialGlobals()

	var lc net.ListenConfig
	s.eslLn, err = lc.Listen(ctx, "tcp", cfg.ESLAddr)
	if err != nil {
		return nil, fmt.Errorf("listen event socket on %s: %w", cfg.ESLAddr, err)
	}
	if cfg.ControlAddr != "-" {
		s.ctlLn, err = lc.Listen(ctx, "tcp", cfg.ControlAddr)
		if err != nil {
			s.eslLn.Close()
			return nil, fmt.Errorf("listen control API on %s: %w", cfg.ControlAddr, err)
		}
		s.ctlSrv = &http.Server{Handler: s.controlHandler(), ReadHeaderTimeout: 5 * time.Second}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := s.ctlSrv.Serve(s.ctlLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("control API stopped", "err", err)
			}
		}()
	}
	s.wg.Add(3)
	go func() { defer s.wg.Done(); s.acceptLoop() }()
	go func() { defer s.wg.Done(); s.tickLoop() }()
	go func() { defer s.wg.Done(); s.heartbeatLoop() }()
	s.log.Info("simulator listening", "esl", s.ESLAddr(), "control", s.ControlURL(), "time_scale", cfg.TimeScale)
	return s, nil
}

// ESLAddr is the event socket's listening address.
func (s *Sim) ESLAddr() string { return s.eslLn.Addr().String() }

// ControlURL is the control API's base URL, or "" when disabled.
func (s *Sim) ControlURL() string {
	if s.ctlLn == nil {
		return ""
	}
	return "http://" + s.ctlLn.Addr().String()
}

// Password is the event socket password in force.
func (s *Sim) Password() string { return s.cfg.Password }

// Close stops listening, drops every connection and channel, and waits for
// the simulator's goroutines to end.
func (s *Sim) Close() error {
	s.closeOnce.Do(func() {
		close(s.closed)
		s.eslLn.Close()
		if s.ctlSrv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			s.ctlSrv.Shutdown(ctx)
			cancel()
		}
		s.dropConnections()
		s.mu.Lock()
		for _, c := range s.channels {
			c.hangup("SYSTEM_SHUTDOWN")
		}
		s.mu.Unlock()
	})
	s.wg.Wait()
	return nil
}

// tickLoop refills the sessions-per-second budget once per simulated
// second, as the core's heartbeat thread does.
func (s *Sim) tickLoop() {
	t := time.NewTicker(s.clock.Real(time.Second))
	defer t.Stop()
	for {
		select {
		case <-s.closed:
			return
		case <-t.C:
			s.mu.Lock()
			used := s.spsLimit - s.spsTokens
			s.spsLast = used
			if used > s.spsPeak {
				s.spsPeak = used
			}
			s.spsTokens = s.spsLimit
			s.mu.Unlock()
		}
	}
}

func (s *Sim) heartbeatLoop() {
	t := time.NewTicker(s.clock.Real(s.cfg.HeartbeatInterval))
	defer t.Stop()
	task := 0
	for {
		select {
		case <-s.closed:
			return
		case <-t.C:
			task++
			s.mu.Lock()
			s.fireHeartbeat(task)
			s.mu.Unlock()
		}
	}
}

// takeSession reserves a session for a new channel, failing the way
// switch_core_session_request does when max_sessions or sps is exceeded.
// Callers hold s.mu.
func (s *Sim) takeSession() bool { return s.takeSessions(1) }

// takeSessions reserves n sessions at once (a loopback/ channel is two).
// Callers hold s.mu.
func (s *Sim) takeSessions(n int) bool {
	select {
	case <-s.closed:
		return false
	default:
	}
	if len(s.channels)+n > s.maxSessions {
		return false
	}
	s.spsTokens -= n
	if s.spsTokens <= 0 && s.spsLimit > 0 {
		return false
	}
	return true
}

// newChannel creates and registers a channel and starts its session thread.
// Callers hold s.mu.
func (s *Sim) newChannel(uuid, name, endpoint, direction string) *Channel {
	s.sessionID++
	s.sinceStart++
	c := &Channel{
		sim:         s,
		uuid:        uuid,
		name:        name,
		endpoint:    endpoint,
		callUUID:    uuid,
		running:     "CS_NEW",
		callState:   "DOWN",
		answerState: "ringing",
		hungup:      make(chan struct{}),
		wake:        make(chan struct{}, 1),
		execStart:   make(chan []app, 1),
		dtmfWake:    make(chan struct{}, 1),
		finished:    make(chan struct{}),
	}
	c.prof = profile{
		direction: direction, logicalDirection: direction, uuid: uuid, channelName: name,
		context: "default", created: s.micro(),
	}
	c.vars.set("direction", direction)
	if direction == "outbound" {
		c.vars.set("is_outbound", "true")
	}
	c.vars.set("uuid", uuid)
	c.vars.set("session_id", fmt.Sprint(s.sessionID))
	s.channels[uuid] = c
	if n := len(s.channels); n > s.peak {
		s.peak = n
	}
	s.wg.Add(1)
	go c.thread()
	return c
}

// thread is the channel's session thread: it waits to be given an
// extension to run (or to be hung up), runs it, then reports and destroys
// the channel.
func (c *Channel) thread() {
	defer c.sim.wg.Done()
	select {
	case apps := <-c.execStart:
		if apps == nil {
			<-c.hungup // a bridged B-leg: it only waits for its end
		} else {
			c.runApps(apps)
		}
	case <-c.hungup:
	}
	c.sim.mu.Lock()
	if c.ready() {
		c.hangup("NORMAL_CLEARING")
	}
	c.finish()
	c.sim.mu.Unlock()
}

// finish runs CS_HANGUP, CS_REPORTING and CS_DESTROY. Callers hold s.mu.
func (c *Channel) finish() {
	s := c.sim
	// switch_core_session_hangup_state: the cause variables, the CDR
	// timestamps, callstate HANGUP, then the endpoint's on_hangup.
	c.setRunning("CS_HANGUP")
	// Caller-Channel-Hangup-Time is 0 in every captured CHANNEL_HANGUP: the
	// core stamps it here (switch_channel_set_hangup_time).
	c.prof.hangup = s.micro()
	c.vars.set("hangup_cause", c.hangupCause)
	c.vars.set("hangup_cause_q850", strconv.Itoa(q850(c.hangupCause)))
	c.reportingData()
	c.setCallState("HANGUP")
	if c.loopLeg != "" {
		// mod_loopback's channel_on_hangup: is_loopback, and the other leg
		// hung up with this leg's cause. This leg reports first (capture 07).
		c.vars.set("is_loopback", "1")
		if p := c.loopPeer; p != nil && p.ready() {
			p.hangup(c.hangupCause)
		}
	}
	c.setRunning("CS_REPORTING")
	c.emit("CHANNEL_HANGUP_COMPLETE", []event.Header{h("Hangup-Cause", c.hangupCause)}, nil)
	// Sockets bound to this session close after HANGUP_COMPLETE; they never
	// see CHANNEL_DESTROY (captures 31a, 31b).
	for _, l := range c.controlled {
		l.sessionGone(c)
	}
	c.controlled = nil
	c.stateNum = stateNumbers["CS_DESTROY"]
	c.emit("CHANNEL_DESTROY", nil, nil)
	c.setRunning("CS_DESTROY")
	c.destroyed = true
	if s.channels[c.uuid] == c {
		delete(s.channels, c.uuid)
	}
	if ts, ok := s.scheduled[c.uuid]; ok {
		for _, t := range ts {
			t.Stop()
		}
		delete(s.scheduled, c.uuid)
	}
	close(c.finished)
}

// onAnswer and onHangup keep per-user call counts and counters.
func (s *Sim) onAnswer(c *Channel) {
	s.counts.answered.Add(1)
	if c.waiter != nil {
		c.waiter <- legOutcome{c: c, answered: true}
	}
}

func (s *Sim) onHangup(c *Channel) {
	if c.waiter != nil {
		c.waiter <- legOutcome{c: c, cause: c.hangupCause}
		c.waiter = nil
	}
	if c.user != "" {
		if s.userCalls[c.user]--; s.userCalls[c.user] <= 0 {
			delete(s.userCalls, c.user)
		}
		c.user = ""
	}
	if c.prof.answered == 0 {
		s.counts.failed.Add(1)
	}
	if c.bridgePeer != nil {
		peer := c.bridgePeer
		peer.push(message{kind: msgUnbridge, peer: c})
	}
	if c.conference != nil {
		c.conference.leave(c)
	}
}

func (s *Sim) globalVar(name string) (string, bool) { return s.globals.get(name) }

// initialGlobals are the global variables a (re)started switch has.
func (s *Sim) initialGlobals() vars {
	g := vars{
		{Name: "hostname", Value: s.cfg.Hostname},
		{Name: "local_ip_v4", Value: "127.0.0.1"},
		{Name: "domain", Value: "127.0.0.1"},
		{Name: "default_password", Value: "1234"},
		{Name: "core_uuid", Value: s.hs.coreUUID},
	}
	return append(g, dialplanDefaults...)
}

// channel looks up a live channel. Callers hold s.mu.
func (s *Sim) channel(uuid string) *Channel {
	c := s.channels[uuid]
	if c == nil || c.destroyed {
		return nil
	}
	return c
}

// sortedChannels lists live channels oldest first. Callers hold s.mu.
func (s *Sim) sortedChannels() []*Channel {
	out := make([]*Channel, 0, len(s.channels))
	for _, c := range s.channels {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].prof.created != out[j].prof.created {
			return out[i].prof.created < out[j].prof.created
		}
		return out[i].uuid < out[j].uuid
	})
	return out
}

// newUUID returns a random (version 4) UUID as FreeSWITCH formats them.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	const hexd = "0123456789abcdef"
	out := make([]byte, 36)
	j := 0
	for i, v := range b {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			out[j] = '-'
			j++
		}
		out[j] = hexd[v>>4]
		out[j+1] = hexd[v&0xf]
		j += 2
	}
	return string(out)
}
