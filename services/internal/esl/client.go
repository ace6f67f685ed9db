package esl

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Handlers receive what happens on the switches. Each node has one
// dispatcher goroutine, so calls for one node are sequential and in the
// order the switch sent them; calls for different nodes run concurrently.
// A handler that blocks delays its node's later events (never the commands
// or originates, which do not depend on it): hand long work to your own
// goroutines. A handler may call the Client, but must not call Close.
type Handlers struct {
	// Event receives every subscribed event (and BACKGROUND_JOB).
	Event func(Event)
	// Up is called when a node's session is established or re-established;
	// it carries the live channels for reconciliation.
	Up func(NodeUp)
	// Down is called when a node's session ends.
	Down func(NodeDown)
}

// Client talks to a pool of FreeSWITCH nodes over the inbound event
// socket. It keeps a session to every node alive (reconnecting with backoff
// and re-subscribing), reports restarts, and budgets originates per node.
// It is safe for concurrent use.
type Client struct {
	cfg    Config
	nodes  []*node
	byName map[string]*node
	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
	rr     atomic.Uint64
	once   sync.Once
}

// Dial validates cfg, starts a supervisor per node, and waits until every
// node has had its first connection attempt (each bounded by DialTimeout
// plus the set-up commands). It returns the Client if at least one node is
// up; nodes that are down keep reconnecting in the background (watch
// Nodes, or Handlers.Up). If no node is up it returns every node's error,
// so a wrong password or address fails the service at start with a clear
// message. ctx bounds only this wait; the Client lives until Close.
func Dial(ctx context.Context, cfg Config, h Handlers) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	lctx, cancel := context.WithCancel(context.Background())
	c := &Client{cfg: cfg, byName: map[string]*node{}, ctx: lctx, cancel: cancel}
	for _, addr := range cfg.Addrs {
		n := &node{
			name: addr, cfg: &c.cfg, log: cfg.Logger,
			q:         newDispatcher(h, cfg.Logger, addr),
			firstDone: make(chan error, 1),
		}
		if cfg.SessionsPerSecond > 0 {
			n.limiter = newBucket(cfg.SessionsPerSecond)
		}
		c.nodes = append(c.nodes, n)
		c.byName[addr] = n
		c.wg.Add(2)
		go func() { defer c.wg.Done(); n.q.run() }()
		go func() { defer c.wg.Done(); n.run(lctx) }()
	}
	var errs []error
	up := 0
	for _, n := range c.nodes {
		select {
		case err := <-n.firstDone:
			if err != nil {
				errs = append(errs, fmt.Errorf("node %s: %w", n.name, err))
				continue
			}
			up++
		case <-ctx.Done():
			c.Close()
			return nil, fmt.Errorf("esl dial: %w", ctxErr(ctx))
		}
	}
	if up == 0 {
		c.Close()
		return nil, fmt.Errorf("esl dial: no FreeSWITCH node reachable: %w", errors.Join(errs...))
	}
	for _, err := range errs {
		cfg.Logger.Warn("FreeSWITCH node down at start; retrying in the background", "err", err)
	}
	return c, nil
}

// Close stops every supervisor, closes every connection and waits for all
// goroutines of the Client to end. Commands and originates in flight fail
// with ErrConnectionLost (wrapping ErrClosed). It is idempotent.
func (c *Client) Close() error {
	c.once.Do(func() {
		c.cancel()
		for _, n := range c.nodes {
			close(n.q.quit)
		}
		c.wg.Wait()
	})
	return nil
}

// Nodes reports every node's state, in Config.Addrs order.
func (c *Client) Nodes() []NodeStatus {
	out := make([]NodeStatus, len(c.nodes))
	for i, n := range c.nodes {
		out[i] = n.status()
	}
	return out
}

// Pick returns the connected node with the fewest originates in flight,
// rotating among equals so that idle nodes share the load; "" if no node is
// connected.
func (c *Client) Pick() string {
	start := c.rr.Add(1)
	var best *node
	var bestLoad int64
	for i := range uint64(len(c.nodes)) {
		n := c.nodes[(start+i)%uint64(len(c.nodes))]
		if n.sess.Load() == nil {
			continue
		}
		if l := n.inflight.Load(); best == nil || l < bestLoad {
			best, bestLoad = n, l
		}
	}
	if best == nil {
		return ""
	}
	return best.name
}

// session resolves a node name to the node and its current session.
func (c *Client) session(name string) (*node, *session, error) {
	if c.ctx.Err() != nil {
		return nil, nil, ErrClosed
	}
	n, ok := c.byName[name]
	if !ok {
		return nil, nil, fmt.Errorf("%w: %q", ErrUnknownNode, name)
	}
	s := n.sess.Load()
	if s == nil {
		return n, nil, fmt.Errorf("%w: %s", ErrNotConnected, name)
	}
	return n, s, nil
}

// API runs `api <cmd>` on node and returns the body without its trailing
// newline. A "-ERR ..." or "-USAGE ..." body is returned as a *CommandError.
// The round trip is bounded by ctx and CommandTimeout.
func (c *Client) API(ctx context.Context, node, cmd string) (string, error) {
	name := commandName(cmd)
	if err := checkLine(cmd); err != nil {
		return "", fmt.Errorf("api %s: %w", name, err)
	}
	_, s, err := c.session(node)
	if err != nil {
		return "", fmt.Errorf("api %s: %w", name, err)
	}
	f, err := s.command(ctx, ctAPIResponse, "api "+cmd)
	if err != nil {
		return "", fmt.Errorf("api %s on %s: %w", name, node, err)
	}
	body := trimBody(f.body)
	if isNegative(body) {
		return body, fmt.Errorf("api %s on %s: %w", name, node, &CommandError{Command: name, Reply: body})
	}
	return body, nil
}

// BgAPI runs `bgapi <cmd>` on node with a Job-UUID we choose, and returns
// it once the switch has accepted the job. The result arrives later as a
// BACKGROUND_JOB event with that Job-UUID (Event.Body), on the handler:
// matching is by id, never by order.
func (c *Client) BgAPI(ctx context.Context, node, cmd string) (string, error) {
	name := commandName(cmd)
	if err := checkLine(cmd); err != nil {
		return "", fmt.Errorf("bgapi %s: %w", name, err)
	}
	_, s, err := c.session(node)
	if err != nil {
		return "", fmt.Errorf("bgapi %s: %w", name, err)
	}
	job := NewUUID()
	if err := s.bgapi(ctx, name, cmd, job); err != nil {
		return "", fmt.Errorf("bgapi %s on %s: %w", name, node, err)
	}
	return job, nil
}

// bgapi sends a bgapi and checks that the switch took our Job-UUID.
func (s *session) bgapi(ctx context.Context, name, cmd, job string) error {
	f, err := s.command(ctx, ctReply, "bgapi "+cmd, "Job-UUID", job)
	if err != nil {
		return err
	}
	if isNegative(f.replyText) {
		return &CommandError{Command: name, Reply: f.replyText}
	}
	if f.jobUUID != job {
		// The switch always echoes the Job-UUID we sent; anything else
		// means this reply belongs to another command.
		err := fmt.Errorf("%w: bgapi reply has Job-UUID %q, sent %q", ErrProtocol, f.jobUUID, job)
		s.fail(err)
		return err
	}
	return nil
}

// bgapiWait runs a bgapi and waits for its BACKGROUND_JOB body.
func (s *session) bgapiWait(ctx context.Context, name, cmd string) (string, error) {
	job := NewUUID()
	ch := s.expectJob(job)
	defer s.forgetJob(job)
	if err := s.bgapi(ctx, name, cmd, job); err != nil {
		return "", err
	}
	ev, err := s.waitJob(ctx, job, ch, 0)
	return ev.Body, err
}

// expectJob registers a waiter for a BACKGROUND_JOB. It must be called
// before the bgapi is sent: the event travels on the event connection and
// may overtake the command's own reply.
func (s *session) expectJob(job string) chan Event {
	ch := make(chan Event, 1)
	s.jobsMu.Lock()
	s.jobs[job] = ch
	s.jobsMu.Unlock()
	return ch
}

func (s *session) forgetJob(job string) {
	s.jobsMu.Lock()
	delete(s.jobs, job)
	s.jobsMu.Unlock()
}

// waitJob waits for the job's event, the end of the session or of ctx, and
// for at most timeout if it is positive.
func (s *session) waitJob(ctx context.Context, job string, ch chan Event, timeout time.Duration) (Event, error) {
	var expire <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		expire = t.C
	}
	select {
	case ev := <-ch:
		return ev, nil
	case <-s.done:
		select {
		case ev := <-ch:
			return ev, nil
		default:
		}
		return Event{}, fmt.Errorf("%w: waiting for job %s: %w", ErrConnectionLost, job, s.err)
	case <-ctx.Done():
		return Event{}, ctxErr(ctx)
	case <-expire:
		return Event{}, fmt.Errorf("%w: no BACKGROUND_JOB for %s within %s", ErrTimeout, job, timeout)
	}
}

// awaitJob runs a bgapi on connection c while the session is being built
// and returns its BACKGROUND_JOB, within the command timeout.
func (s *session) awaitJob(ctx context.Context, c *conn, cmd string) (Event, error) {
	job := NewUUID()
	ch := s.expectJob(job)
	defer s.forgetJob(job)
	f, err := c.roundTrip(ctx, newCall(ctReply), "bgapi "+cmd, "Job-UUID", job)
	if err != nil {
		return Event{}, err
	}
	if f.jobUUID != job {
		return Event{}, fmt.Errorf("%w: bgapi reply %q, Job-UUID %q, sent %q", ErrProtocol, f.replyText, f.jobUUID, job)
	}
	return s.waitJob(ctx, job, ch, s.n.cfg.CommandTimeout)
}

// checkLine refuses text that would break out of the command line: a line
// break would let the rest be read as headers or as another command.
func checkLine(s string) error {
	if strings.TrimSpace(s) == "" {
		return fmt.Errorf("%w: empty command", ErrInvalid)
	}
	if strings.ContainsAny(s, "\r\n\x00") {
		return fmt.Errorf("%w: command contains a line break or NUL", ErrInvalid)
	}
	return nil
}

// commandName is the first word of an api command, which is what errors
// and logs show (arguments may carry phone numbers).
func commandName(cmd string) string {
	name, _, _ := strings.Cut(strings.TrimSpace(cmd), " ")
	if len(name) > 64 {
		name = name[:64]
	}
	return name
}
