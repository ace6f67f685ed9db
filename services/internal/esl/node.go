package esl

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// node is one FreeSWITCH switch: a supervisor goroutine keeps a session to
// it alive, and a dispatcher goroutine hands its events to the handlers in
// order.
type node struct {
	name     string
	cfg      *Config
	log      *slog.Logger
	limiter  *bucket // nil when unlimited
	inflight atomic.Int64
	sess     atomic.Pointer[session] // the usable session, nil while down
	q        *dispatcher

	firstDone chan error // the outcome of the first connect attempt

	mu         sync.Mutex // guards the status fields below
	coreUUID   string
	sessions   int // sessions established so far
	restarts   int
	lastErr    error
	lastChange time.Time
}

// NodeStatus is a node's state for readiness checks, metrics and logs.
type NodeStatus struct {
	// Node is the switch's address.
	Node string
	// Connected means commands can be sent now.
	Connected bool
	// CoreUUID is the FreeSWITCH process last connected to.
	CoreUUID string
	// Reconnects counts sessions established after the first.
	Reconnects int
	// Restarts counts Core-UUID changes seen on reconnect.
	Restarts int
	// InFlight counts originates waiting for their result.
	InFlight int
	// LastError is why the last session ended or the last attempt failed.
	LastError error
	// Since is when Connected last changed.
	Since time.Time
}

func (n *node) status() NodeStatus {
	n.mu.Lock()
	defer n.mu.Unlock()
	return NodeStatus{
		Node: n.name, Connected: n.sess.Load() != nil, CoreUUID: n.coreUUID,
		Reconnects: max(0, n.sessions-1), Restarts: n.restarts, InFlight: int(n.inflight.Load()),
		LastError: n.lastErr, Since: n.lastChange,
	}
}

// session is one generation of connections to a node: one that carries
// events and the commands that set it up, and CommandConns that carry the
// callers' commands. If any of them fails the whole session ends and a new
// one is built, so there is a single "connected" state per node and a
// single point (NodeUp) where the caller reconciles.
type session struct {
	n        *node
	coreUUID string
	upSent   atomic.Bool

	// cmu guards events and cmds while connect builds the session (a
	// failing connection reads them through fail); once the session is
	// published they no longer change and are read without the lock.
	cmu    sync.Mutex
	events *conn
	cmds   []*conn

	ended atomic.Bool
	done  chan struct{} // closed when the session ends
	err   error         // set before done is closed

	jobsMu sync.Mutex
	jobs   map[string]chan Event // Job-UUID -> originate waiting for it
}

func newSession(n *node) *session {
	return &session{n: n, done: make(chan struct{}), jobs: map[string]chan Event{}}
}

// fail ends the session once. It is called from conn.fail of each of its
// connections, hence the atomic flag rather than a sync.Once, whose Do would
// deadlock when re-entered through the connections it closes.
func (s *session) fail(err error) {
	if !s.ended.CompareAndSwap(false, true) {
		return
	}
	s.err = err
	close(s.done)
	for _, c := range s.conns() {
		c.fail(err)
	}
}

func (s *session) conns() []*conn {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	out := make([]*conn, 0, 1+len(s.cmds))
	if s.events != nil {
		out = append(out, s.events)
	}
	return append(out, s.cmds...)
}

// onEventFrame runs on the event connection's reader goroutine: it decodes
// the event, wakes an originate waiting for its BACKGROUND_JOB, and queues
// the event for the handler.
func (s *session) onEventFrame(f *frame) {
	ev, err := decodeEventJSON(s.n.name, f.body)
	if err != nil {
		s.n.log.Warn("dropping undecodable event", "node", s.n.name, "err", err)
		return
	}
	if ev.Name == "BACKGROUND_JOB" {
		if id := ev.JobUUID(); id != "" {
			s.jobsMu.Lock()
			ch, ok := s.jobs[id]
			delete(s.jobs, id)
			s.jobsMu.Unlock()
			if ok {
				ch <- ev
			}
		}
	}
	s.n.q.push(ev)
}

// command sends one command on the least busy command connection.
func (s *session) command(ctx context.Context, expect, line string, headers ...string) (*frame, error) {
	c := s.cmds[0]
	for _, o := range s.cmds[1:] {
		if o.load.Load() < c.load.Load() {
			c = o
		}
	}
	return c.roundTrip(ctx, newCall(expect), line, headers...)
}

// run is the node's supervisor: connect, serve, and after any failure
// reconnect with exponential backoff and jitter, until ctx ends.
func (n *node) run(ctx context.Context) {
	first := true
	attempt := 0
	for {
		s, err := n.connect(ctx)
		if first {
			n.firstDone <- err
			first = false
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			attempt++
			n.setErr(err)
			d := n.backoff(attempt)
			n.log.Warn("FreeSWITCH connect failed", "node", n.name, "attempt", attempt, "retry_in", d, "err", err)
			if !sleep(ctx, d) {
				return
			}
			continue
		}
		attempt = 0
		err = n.serve(ctx, s)
		n.teardown(s, err)
		if ctx.Err() != nil {
			return
		}
		n.log.Warn("FreeSWITCH session lost", "node", n.name, "err", err)
		if !sleep(ctx, n.backoff(1)) {
			return
		}
	}
}

// connect builds a session: the event connection, subscription, Core-UUID,
// the command connections, and finally the channel list, whose reply is
// the point where NodeUp enters the event stream.
func (n *node) connect(ctx context.Context) (*session, error) {
	s := newSession(n)
	abort := func(err error) (*session, error) {
		s.fail(err)
		for _, c := range s.conns() {
			<-c.readerDone
		}
		return nil, err
	}
	ev, err := dialConn(ctx, n.cfg, n.name, s.onEventFrame, s.fail)
	if err != nil {
		return nil, err
	}
	s.cmu.Lock()
	s.events = ev
	s.cmu.Unlock()
	sub := n.cfg.subscription()
	f, err := ev.roundTrip(ctx, newCall(ctReply), sub)
	if err != nil {
		return abort(fmt.Errorf("subscribe: %w", err))
	}
	if !strings.HasPrefix(f.replyText, "+OK") {
		return abort(fmt.Errorf("subscribe %q: %w", sub, &CommandError{Command: "event", Reply: f.replyText}))
	}
	// The Core-UUID is read from an event rather than from `global_getvar
	// core_uuid`: the Core-UUID header is what every later event carries,
	// and seeing a BACKGROUND_JOB arrive proves the subscription works
	// before the session is declared up.
	probe, err := s.awaitJob(ctx, ev, "eval ok")
	if err != nil {
		return abort(fmt.Errorf("probe events: %w", err))
	}
	s.coreUUID = probe.CoreUUID()
	if s.coreUUID == "" {
		return abort(fmt.Errorf("%w: BACKGROUND_JOB without Core-UUID", ErrProtocol))
	}
	for range n.cfg.CommandConns {
		c, err := dialConn(ctx, n.cfg, n.name, nil, s.fail)
		if err != nil {
			return abort(fmt.Errorf("command connection: %w", err))
		}
		s.cmu.Lock()
		s.cmds = append(s.cmds, c)
		s.cmu.Unlock()
		select {
		case <-s.done:
			return abort(fmt.Errorf("%w: %w", ErrConnectionLost, s.err))
		default:
		}
	}

	// The node is usable from here on, so that a handler reacting to
	// NodeUp can send commands. The restart bookkeeping is committed only
	// together with the NodeUp that reports it, so a session that fails
	// before reporting cannot swallow a restart.
	n.mu.Lock()
	n.lastErr = nil
	n.lastChange = time.Now()
	n.sess.Store(s)
	n.mu.Unlock()

	var parseErr error
	cl := newCall(ctAPIResponse)
	cl.inline = func(f *frame) {
		chans, err := parseChannels(f.body)
		if err != nil {
			parseErr = err
			return
		}
		n.mu.Lock()
		up := NodeUp{Node: n.name, CoreUUID: s.coreUUID, PreviousCoreUUID: n.coreUUID, Reconnects: n.sessions, Channels: chans}
		up.Restarted = up.PreviousCoreUUID != "" && up.PreviousCoreUUID != up.CoreUUID
		n.coreUUID = s.coreUUID
		n.sessions++
		if up.Restarted {
			n.restarts++
		}
		n.mu.Unlock()
		s.upSent.Store(true)
		n.q.push(up)
		n.log.Info("FreeSWITCH session up", "node", n.name, "core_uuid", up.CoreUUID,
			"restarted", up.Restarted, "reconnects", up.Reconnects, "channels", len(up.Channels))
	}
	if _, err := ev.roundTrip(ctx, cl, "api show channels as json"); err != nil {
		return nil, n.abortPublished(s, fmt.Errorf("list channels: %w", err))
	}
	if parseErr != nil {
		return nil, n.abortPublished(s, parseErr)
	}
	return s, nil
}

func (n *node) abortPublished(s *session, err error) error {
	n.teardown(s, err)
	return err
}

// serve waits for the session to end, probing it every PingInterval so a
// silently dead TCP connection (no RST, no FIN) is found within
// PingInterval+CommandTimeout.
func (n *node) serve(ctx context.Context, s *session) error {
	t := time.NewTicker(n.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return s.err
		case <-ctx.Done():
			return ErrClosed
		case <-t.C:
			for _, c := range s.conns() {
				if _, err := c.roundTrip(ctx, newCall(ctAPIResponse), "api eval ping"); err != nil && ctx.Err() == nil {
					s.fail(fmt.Errorf("ping: %w", err))
				}
			}
		}
	}
}

// teardown ends a session, waits for its readers (so all its events are
// queued), and only then queues NodeDown: the handler sees every event of a
// session before it hears that the session ended.
func (n *node) teardown(s *session, err error) {
	s.fail(err)
	for _, c := range s.conns() {
		<-c.readerDone
	}
	n.mu.Lock()
	if n.sess.CompareAndSwap(s, nil) {
		n.lastChange = time.Now()
	}
	n.lastErr = err
	n.mu.Unlock()
	if s.upSent.Load() {
		n.q.push(NodeDown{Node: n.name, Err: err})
	}
}

func (n *node) setErr(err error) {
	n.mu.Lock()
	n.lastErr = err
	n.mu.Unlock()
}

// backoff is the pause before reconnect attempt k (1-based): "equal
// jitter" over an exponential base capped at ReconnectMax, so a fleet of
// origination replicas does not redial a restarted switch in lockstep.
func (n *node) backoff(k int) time.Duration {
	return backoff(n.cfg.ReconnectMin, n.cfg.ReconnectMax, k, rand.Float64())
}

func backoff(lo, hi time.Duration, k int, r float64) time.Duration {
	base := lo
	for i := 1; i < k && base < hi; i++ {
		base *= 2
	}
	base = min(base, hi)
	return base/2 + time.Duration(r*float64(base/2))
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// dispatcher delivers a node's events, NodeUp and NodeDown to the handlers
// from one goroutine, in arrival order. The queue is unbounded so that a
// slow handler never stops the reader (which would stall originates waiting
// for their BACKGROUND_JOB, and make FreeSWITCH drop the listener after
// its own queue of 100,000 events overflows).
type dispatcher struct {
	h    Handlers
	log  *slog.Logger
	node string
	mu   sync.Mutex
	q    []any
	wake chan struct{}
	quit chan struct{}
	warn int // queue length that triggers the next warning
}

func newDispatcher(h Handlers, log *slog.Logger, node string) *dispatcher {
	return &dispatcher{h: h, log: log, node: node, wake: make(chan struct{}, 1), quit: make(chan struct{}), warn: 10000}
}

func (d *dispatcher) push(item any) {
	d.mu.Lock()
	d.q = append(d.q, item)
	if len(d.q) >= d.warn {
		d.log.Warn("event handler is falling behind", "node", d.node, "queued", len(d.q))
		d.warn *= 2
	}
	d.mu.Unlock()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

func (d *dispatcher) run() {
	var batch []any
	for {
		select {
		case <-d.wake:
		case <-d.quit:
			return
		}
		for {
			d.mu.Lock()
			batch, d.q = d.q, batch[:0]
			if len(batch) < d.warn/4 && d.warn > 10000 {
				d.warn = 10000
			}
			d.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			for i, it := range batch {
				select {
				case <-d.quit:
					return
				default:
				}
				d.deliver(it)
				batch[i] = nil
			}
		}
	}
}

func (d *dispatcher) deliver(it any) {
	switch v := it.(type) {
	case Event:
		if d.h.Event != nil {
			d.h.Event(v)
		}
	case NodeUp:
		if d.h.Up != nil {
			d.h.Up(v)
		}
	case NodeDown:
		if d.h.Down != nil {
			d.h.Down(v)
		}
	}
}
