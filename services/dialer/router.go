package dialer

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	dialerv1 "github.com/ringback/ringback/proto/gen/go/ringback/dialer/v1"
	eventsv1 "github.com/ringback/ringback/proto/gen/go/ringback/events/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	"github.com/ringback/ringback/services/internal/natsbus"
)

// AgentsDurable is the router's durable consumer on the CALLS stream,
// shared by the replicas that run a router (each event is handled by one).
const AgentsDurable = "dialer-agents"

// AgentSubjects are the call events the router needs: a customer waiting
// for an agent, a room joined (an agent's phone in its room), a customer
// abandoned, and the three ends (of a session or of a customer's call).
var AgentSubjects = []string{
	"calls.*.*.agent_awaited", "calls.*.*.conference_joined", "calls.*.*.call_abandoned",
	"calls.*.*.call_completed", "calls.*.*.call_failed", "calls.*.*.call_canceled",
}

// AgentFreeSubject is the core NATS subject on which a replica tells the
// others' routers that an agent may have become free, so that the calls
// waiting for one are served at once rather than at their next look.
const AgentFreeSubject = "dialer.agents.free"

// RouterConfig tunes the Router.
type RouterConfig struct {
	// Registerer receives the router's metrics (nil: not exported).
	Registerer prometheus.Registerer
	// Now is the agents' clock (default time.Now). The waiting calls'
	// deadlines come from origination's timestamps, so it must be the
	// wall clock outside tests of the store alone.
	Now func() time.Time
	// RPCTimeout bounds each request to origination (default 2s: a
	// customer waits at most agent_wait_ms anyway).
	RPCTimeout time.Duration
	// Poll is how often the calls waiting for an agent are looked at
	// (default 50ms), besides when an agent becomes free: an agent whose
	// wrap-up ends has no event.
	Poll time.Duration
	// Reconcile is how often the logged-in agents' calls are checked with
	// origination, for an event that never came (default 30s; one replica
	// does it each time).
	Reconcile time.Duration
	// LoginTimeout is how long an agent may stay LOGGING_IN without a
	// session call (its Login died between the two) before it is logged
	// out (default 2m).
	LoginTimeout time.Duration
	// Workers is how many batches of events are handled at once (default 4).
	Workers int
}

// Defaults of RouterConfig.
const (
	DefaultRouterRPCTimeout = 2 * time.Second
	DefaultRouterPoll       = 50 * time.Millisecond
	DefaultRouterReconcile  = 30 * time.Second
	DefaultLoginTimeout     = 2 * time.Minute
	DefaultRouterWorkers    = 4
	// DefaultAgentWait is how long an answered call waits for an agent when
	// its await_agent says 0 (origination's default).
	DefaultAgentWait = 2 * time.Second
	// matchBatch is the most waiting calls one look connects per campaign.
	matchBatch = 64
	// maxGroups bounds the calls whose events one batch handles at once.
	maxGroups = 64
)

// Router gives the answered calls of AGENTS and PREDICTIVE campaigns to
// their agents and follows the agents' sessions, from the call events:
//
//   - CONFERENCE_JOINED of a session call (variable dialer_agent_id): the
//     agent is READY.
//   - A session call's end: the agent is LOGGED_OUT. If it was ON_CALL, the
//     customer's call is left alone: it ends by itself (whoever hangs up),
//     and its end then changes nothing.
//   - AGENT_AWAITED of a customer call (variable dialer_campaign_id): the
//     campaign's agent free longest is claimed and the call connected to its
//     room (ConnectCall). With none free, the call waits in Redis until its
//     deadline (answer + await_agent.timeout_ms); every replica's router
//     looks at the waiting calls every Poll and at once when an agent
//     becomes free, the oldest first (one script takes a waiting call and an
//     agent together, so one replica serves each). Past the deadline the
//     entry is dropped: origination plays the safe-harbour message itself.
//   - CALL_ABANDONED: the call stops waiting.
//   - A customer call's end: its agent goes to WRAP_UP.
//
// Only calls the dialer placed count (their source is set by internal
// callers only). Every step is idempotent, so events seen twice or out of
// order between batches change nothing more.
type Router struct {
	cfg   RouterConfig
	store *AgentStore
	calls originationv1.CallServiceClient
	bus   *natsbus.Bus
	log   *slog.Logger
	m     *agentMetrics
	wake  chan struct{}
	// conns counts the connections the waiting loop started.
	conns sync.WaitGroup
}

// NewRouter returns a router; bus (nil in tests of HandleBatch alone)
// carries its consumer and the wake-ups between replicas. Start runs it.
func NewRouter(cfg RouterConfig, store *AgentStore, calls originationv1.CallServiceClient, bus *natsbus.Bus, log *slog.Logger) *Router {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.RPCTimeout <= 0 {
		cfg.RPCTimeout = DefaultRouterRPCTimeout
	}
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultRouterPoll
	}
	if cfg.Reconcile <= 0 {
		cfg.Reconcile = DefaultRouterReconcile
	}
	if cfg.LoginTimeout <= 0 {
		cfg.LoginTimeout = DefaultLoginTimeout
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultRouterWorkers
	}
	return &Router{cfg: cfg, store: store, calls: calls, bus: bus, log: log, m: newAgentMetrics(cfg.Registerer), wake: make(chan struct{}, 1)}
}

// Start runs the router until the returned stop: its consumer of the call
// events, its subscription to the other replicas' wake-ups and its loop
// over the waiting calls. The CALLS stream must exist. stop waits for the
// connections in progress and the consumer's last batch.
func (r *Router) Start(ctx context.Context) (stop func(context.Context) error, err error) {
	unsubscribe, err := r.bus.Subscribe(AgentFreeSubject, func([]byte) { r.wakeLocal() })
	if err != nil {
		return nil, err
	}
	cons, err := r.consume(ctx)
	if err != nil {
		unsubscribe()
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.Run(runCtx)
	}()
	return func(sctx context.Context) error {
		unsubscribe()
		cancel()
		<-done
		return cons.Stop(sctx)
	}, nil
}

// consume starts HandleBatch on the durable consumer AgentsDurable. The
// batches are small and short (2 ms at most): a customer waits for the
// connection.
func (r *Router) consume(ctx context.Context) (*natsbus.Consumer, error) {
	spec := natsbus.BatchSpec{
		ConsumerSpec: natsbus.ConsumerSpec{
			Stream: natsbus.CallsStream, Durable: AgentsDurable, FilterSubjects: AgentSubjects,
			// Redis down: retry (every step is idempotent).
			MaxDeliver: -1,
		},
		MaxBatch:    100,
		MaxWait:     2 * time.Millisecond,
		Concurrency: r.cfg.Workers,
	}
	c, err := r.bus.ConsumeBatch(ctx, spec, r.HandleBatch)
	if err != nil {
		// NATS before 2.10 has no multi-subject filters: read every call
		// event and skip the others (HandleBatch looks at the subject first).
		r.log.Warn("dialer: agents' consumer with several filter subjects refused; reading every call event", "err", err)
		spec.FilterSubjects = []string{natsbus.CallsSubjects}
		if c, err = r.bus.ConsumeBatch(ctx, spec, r.HandleBatch); err != nil {
			return nil, fmt.Errorf("agents' consumer: %w", err)
		}
	}
	return c, nil
}

// Wake makes every replica's router look at the waiting calls now: an
// agent may have become free.
func (r *Router) Wake() {
	r.wakeLocal()
	if r.bus != nil {
		_ = r.bus.Notify(AgentFreeSubject, nil) // best effort: the loop polls anyway
	}
}

func (r *Router) wakeLocal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run serves the waiting calls until ctx ends, and reconciles the agents
// every Reconcile; then it waits for the connections it started.
func (r *Router) Run(ctx context.Context) {
	poll := time.NewTicker(r.cfg.Poll)
	defer poll.Stop()
	rec := time.NewTicker(r.cfg.Reconcile)
	defer rec.Stop()
	defer r.conns.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-rec.C:
			r.reconcile(ctx)
			continue
		case <-poll.C:
		case <-r.wake:
		}
		r.serveWaiting(ctx)
	}
}

// serveWaiting gives the waiting calls the free agents, campaign by
// campaign, and connects them (at once: each in its own goroutine). A
// queue's callers that leave when it is empty (turnAwayWhenEmpty) are
// turned away once the campaign has no agent left to take them.
func (r *Router) serveWaiting(ctx context.Context) {
	camps, err := r.store.waitingCampaigns(ctx)
	if err != nil {
		logErr(ctx, r.log, "dialer: campaigns with calls waiting for an agent", "err", err)
		return
	}
	for _, camp := range camps {
		m, err := r.store.match(ctx, camp, r.cfg.Now(), matchBatch)
		if err != nil {
			logErr(ctx, r.log, "dialer: match waiting calls with agents", "campaign_id", camp, "err", err)
			continue
		}
		if m.expired > 0 {
			r.m.connects.WithLabelValues("none_free").Add(float64(m.expired))
			r.log.Debug("dialer: calls waited for an agent past their deadline", "campaign_id", camp, "calls", m.expired)
		}
		for _, w := range m.left {
			r.conns.Add(1)
			go func() {
				defer r.conns.Done()
				r.turnAway(context.WithoutCancel(ctx), r.log.With("call_id", w.call, "campaign_id", camp), w, "empty")
			}()
		}
		pairs := m.pairs
		for _, p := range pairs {
			r.conns.Add(1)
			go func() {
				defer r.conns.Done()
				r.connect(context.WithoutCancel(ctx), p.w, p.agent, p.room)
			}()
		}
	}
}

// HandleBatch applies a batch of call events to the agents. The events of
// one call are handled in order; different calls' at once (connecting one
// customer must not wait for another's connection).
func (r *Router) HandleBatch(ctx context.Context, msgs []natsbus.Msg) error {
	var (
		order  []string
		groups = map[string][]*eventsv1.CallEvent{}
	)
	for _, m := range msgs {
		switch m.Subject[strings.LastIndexByte(m.Subject, '.')+1:] {
		case "agent_awaited", "conference_joined", "call_abandoned", "call_completed", "call_failed", "call_canceled":
		default:
			continue // a server without multi-filter consumers sends every event
		}
		ev := &eventsv1.CallEvent{}
		if err := proto.Unmarshal(m.Data, ev); err != nil || ev.GetCall() == nil {
			r.log.Error("dialer: dropping undecodable call event", "subject", m.Subject, "msg_id", m.MsgID, "err", err)
			continue
		}
		c := ev.GetCall()
		if c.GetSource() != originationv1.CallSource_CALL_SOURCE_DIALER || c.GetId() == "" {
			continue
		}
		if _, ok := groups[c.GetId()]; !ok {
			order = append(order, c.GetId())
		}
		groups[c.GetId()] = append(groups[c.GetId()], ev)
	}
	run := func(evs []*eventsv1.CallEvent) error {
		for _, ev := range evs {
			if err := r.handle(ctx, ev); err != nil {
				return err
			}
		}
		return nil
	}
	if len(order) == 1 {
		return run(groups[order[0]])
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		slots = make(chan struct{}, maxGroups)
	)
	for _, id := range order {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			if err := run(groups[id]); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return first
}

// handle applies one call event.
func (r *Router) handle(ctx context.Context, ev *eventsv1.CallEvent) error {
	c := ev.GetCall()
	vars := c.GetVariables()
	ended := false
	switch ev.GetType() {
	case eventsv1.EventType_EVENT_TYPE_CALL_COMPLETED, eventsv1.EventType_EVENT_TYPE_CALL_FAILED, eventsv1.EventType_EVENT_TYPE_CALL_CANCELED:
		ended = true
	}
	if agent := vars[VarAgent]; agent != "" {
		if !uuidPattern.MatchString(agent) {
			return nil
		}
		log := r.log.With("agent_id", agent, "call_id", c.GetId())
		switch {
		case ev.GetType() == eventsv1.EventType_EVENT_TYPE_CONFERENCE_JOINED:
			ok, err := r.store.joined(ctx, agent, c.GetId(), vars[VarAgentSession], r.cfg.Now())
			if err != nil {
				return err
			}
			if ok {
				log.Info("dialer: agent ready: its phone is in its room")
				r.Wake()
			}
		case ended:
			ok, err := r.store.sessionEnded(ctx, agent, c.GetId(), vars[VarAgentSession])
			if err != nil {
				return err
			}
			if ok {
				log.Info("dialer: agent logged out: its session call ended", "status", c.GetStatus().String())
				r.Wake() // its campaigns' queues may be left with no agent
			}
		}
		return nil
	}
	campaign := vars[VarCampaign]
	if !uuidPattern.MatchString(campaign) {
		return nil
	}
	switch {
	case ev.GetType() == eventsv1.EventType_EVENT_TYPE_AGENT_AWAITED:
		return r.awaited(ctx, ev, campaign)
	case ev.GetType() == eventsv1.EventType_EVENT_TYPE_CALL_ABANDONED:
		// Counted by whoever drops it: here, or the waiting loop when it
		// saw the deadline pass first.
		dropped, err := r.store.dropWaiting(ctx, campaign, c.GetId())
		if dropped {
			r.m.connects.WithLabelValues("none_free").Inc()
			r.log.Debug("dialer: call abandoned waiting for an agent", "call_id", c.GetId(), "campaign_id", campaign)
		}
		return err
	case ended:
		agent, err := r.store.callEnded(ctx, campaign, c.GetId(), r.cfg.Now())
		if err != nil {
			return err
		}
		if agent != "" {
			r.log.Debug("dialer: customer call ended; agent in wrap-up", "agent_id", agent, "call_id", c.GetId(), "campaign_id", campaign)
			r.Wake() // ready at once without a wrap-up
		}
	}
	return nil
}

// awaited gives an answered call its agent, or makes it wait for one.
func (r *Router) awaited(ctx context.Context, ev *eventsv1.CallEvent, campaign string) error {
	c := ev.GetCall()
	now := r.cfg.Now()
	w := waitingCall{campaign: campaign, call: c.GetId(), account: c.GetAccountId(), answered: now}
	if t := c.GetAnsweredAt(); t != nil {
		w.answered = t.AsTime()
	}
	// The wait runs from the answer, or from machine detection's verdict
	// when it ran: the moment origination sent this event.
	start := w.answered
	if t := ev.GetOccurredAt(); t != nil && t.AsTime().After(start) {
		start = t.AsTime()
	}
	// Neither is after the router saw the call: a media server's clock
	// ahead of the dialer's would otherwise stretch the wait (the
	// regulators' 2 s among them) and show waits not started yet.
	if w.answered.After(now) {
		w.answered = now
	}
	if start.After(now) {
		start = now
	}
	wait := time.Duration(c.GetAwaitAgent().GetTimeoutMs()) * time.Millisecond
	if wait <= 0 {
		wait = DefaultAgentWait
	}
	w.deadline = start.Add(wait)
	if c.GetMenuChoice() == originationv1.MenuAction_MENU_ACTION_CONNECT {
		// A BLAST's recipient who asked for an agent: the queue's wait
		// runs from the choice.
		w.queue, w.answered = true, start
	}
	log := r.log.With("call_id", w.call, "campaign_id", campaign)
	if !now.Before(w.deadline) {
		// Handled too late (a redelivery): origination has given up on it.
		r.m.connects.WithLabelValues("none_free").Inc()
		log.Debug("dialer: awaited call seen after its deadline")
		return nil
	}
	var lim queueLimits
	if w.queue {
		lim = limitsOf(c.GetVariables())
		w.leaveEmpty = lim.turnAwayWhenEmpty
	}
	res, err := r.store.await(ctx, w, now, lim)
	if err != nil {
		return err
	}
	switch res.kind {
	case "claimed":
		r.connect(ctx, w, res.agent, res.room)
	case "empty", "full":
		r.turnAway(ctx, log, w, res.kind)
	case "waiting":
		log.Debug("dialer: call waits for a free agent", "deadline", w.deadline)
		r.wakeLocal() // others of the campaign were waiting: one may be served now
	}
	return nil
}

// limitsOf reads a queue's limits from its call's variables
// (queueVariables).
func limitsOf(vars map[string]string) queueLimits {
	n, _ := strconv.Atoi(vars[VarQueueMaxWaiting])
	return queueLimits{maxWaiting: min(max(n, 0), MaxQueueWaiting), turnAwayWhenEmpty: vars[VarQueueTurnAway] == "true"}
}

// turnAway ends the wait of a recipient the queue does not take (why:
// "empty" or "full"): origination plays the queue's message at once and
// ends the call QUEUE_EMPTY or QUEUE_FULL. When origination cannot be
// told, the recipient waits after all (its wait ends as any wait does).
func (r *Router) turnAway(ctx context.Context, log *slog.Logger, w waitingCall, why string) {
	reason := originationv1.FailureReason_FAILURE_REASON_QUEUE_EMPTY
	if why == "full" {
		reason = originationv1.FailureReason_FAILURE_REASON_QUEUE_FULL
	}
	rctx, cancel := context.WithTimeout(outgoingDialer(ctx, w.account), r.cfg.RPCTimeout)
	_, err := r.calls.TurnAwayCall(rctx, &originationv1.TurnAwayCallRequest{Id: w.call, Reason: reason})
	cancel()
	if err == nil {
		r.m.connects.WithLabelValues("queue_" + why).Inc()
		log.Debug("dialer: queued call turned away", "why", why)
		return
	}
	st := status.Convert(err)
	if errorReason(st) == "CALL_NOT_WAITING" || st.Code() == codes.NotFound {
		return // gone meanwhile
	}
	log.Warn("dialer: could not turn a queued call away; it waits", "why", why, "code", st.Code().String(), "err", st.Message())
	if _, err := r.store.requeue(ctx, w, r.cfg.Now()); err != nil {
		log.Error("dialer: queue a call that could not be turned away", "err", err)
	}
}

// connect puts a call in its claimed agent's room. When the call no longer
// waits (it ended, or was abandoned), the agent is given back with its
// place. When origination's answer is lost, its call says what happened.
func (r *Router) connect(ctx context.Context, w waitingCall, agent, room string) {
	log := r.log.With("call_id", w.call, "agent_id", agent, "campaign_id", w.campaign)
	rctx, cancel := context.WithTimeout(outgoingDialer(ctx, w.account), r.cfg.RPCTimeout)
	_, err := r.calls.ConnectCall(rctx, &originationv1.ConnectCallRequest{Id: w.call, Conference: room})
	cancel()
	if err == nil {
		r.connected(log, w)
		return
	}
	st := status.Convert(err)
	reason := errorReason(st)
	log = log.With("code", st.Code().String(), "reason", reason, "err", st.Message())
	switch {
	case reason == "CALL_NOT_WAITING" || st.Code() == codes.NotFound:
		r.m.connects.WithLabelValues("not_waiting").Inc()
		log.Debug("dialer: call no longer waits; agent given back")
		r.giveBack(ctx, log, w, agent, false)
	case st.Code() == codes.InvalidArgument || st.Code() == codes.FailedPrecondition || st.Code() == codes.PermissionDenied:
		r.m.connects.WithLabelValues("error").Inc()
		log.Error("dialer: origination refused to connect a call to its agent; agent given back")
		r.giveBack(ctx, log, w, agent, false)
	default:
		// Unavailable, a timeout: the call may be in the room or not.
		rctx, cancel := context.WithTimeout(outgoingDialer(ctx, w.account), r.cfg.RPCTimeout)
		got, gerr := r.calls.GetCall(rctx, &originationv1.GetCallRequest{Id: w.call})
		cancel()
		switch {
		case gerr != nil:
			// Unknown: the agent keeps the call, whose end (or the
			// reconciliation) releases it.
			r.m.connects.WithLabelValues("error").Inc()
			log.Warn("dialer: connecting a call to its agent failed, and origination cannot say how it is; agent kept", "get_err", gerr)
		case got.GetCall().GetConference() == room && !finalCall(got.GetCall().GetStatus()):
			r.connected(log, w)
		default:
			r.m.connects.WithLabelValues("error").Inc()
			log.Warn("dialer: connecting a call to its agent failed; agent given back")
			r.giveBack(ctx, log, w, agent, !finalCall(got.GetCall().GetStatus()))
		}
	}
}

func (r *Router) connected(log *slog.Logger, w waitingCall) {
	// From the answer (a queue: the choice) on origination's clock to now
	// on this one.
	d := time.Since(w.answered)
	r.m.connects.WithLabelValues("connected").Inc()
	if w.queue {
		r.m.queueSeconds.Observe(d.Seconds())
		log.Debug("dialer: queued call connected to its agent", "waited", d.String())
		return
	}
	r.m.connectSeconds.Observe(d.Seconds())
	log.Debug("dialer: call connected to its agent", "since_answer", d.String())
}

// giveBack makes a claimed agent READY again in its place and, with
// requeue, puts the call back among the waiting ones (if its deadline is
// ahead).
func (r *Router) giveBack(ctx context.Context, log *slog.Logger, w waitingCall, agent string, requeue bool) {
	ctx = context.WithoutCancel(ctx)
	if err := r.store.Release(ctx, agent, w.call, r.cfg.Now(), true); err != nil {
		log.Error("dialer: give an agent back", "err", err)
		return
	}
	if requeue {
		if _, err := r.store.requeue(ctx, w, r.cfg.Now()); err != nil {
			log.Error("dialer: requeue a waiting call", "err", err)
		}
	}
	r.Wake()
}

// reconcile asks origination about the logged-in agents' calls, in case an
// event was lost: a session call that ended logs its agent out, a customer
// call that ended releases its agent, and a login that made no call in
// LoginTimeout is undone. One replica does it each round.
func (r *Router) reconcile(ctx context.Context) {
	if ok, err := r.store.reconcileTurn(ctx, r.cfg.Reconcile*9/10); err != nil || !ok {
		return
	}
	ids, err := r.store.loggedIn(ctx)
	if err != nil {
		logErr(ctx, r.log, "dialer: agents to reconcile", "err", err)
		return
	}
	now := r.cfg.Now()
	lives, err := r.store.states(ctx, ids, now)
	if err != nil {
		logErr(ctx, r.log, "dialer: agents to reconcile", "err", err)
		return
	}
	ended := func(account, call string) bool {
		rctx, cancel := context.WithTimeout(outgoingDialer(ctx, account), r.cfg.RPCTimeout)
		defer cancel()
		got, err := r.calls.GetCall(rctx, &originationv1.GetCallRequest{Id: call})
		if status.Code(err) == codes.NotFound {
			return true
		}
		return err == nil && finalCall(got.GetCall().GetStatus())
	}
	for i, l := range lives {
		id := ids[i]
		log := r.log.With("agent_id", id)
		switch {
		case l.state == dialerv1.AgentState_AGENT_STATE_LOGGED_OUT:
		case l.session == "":
			if l.state == dialerv1.AgentState_AGENT_STATE_LOGGING_IN && now.Sub(l.since) > r.cfg.LoginTimeout {
				log.Warn("dialer: login without a session call; agent logged out")
				n, _ := parseLogin(l.login)
				if err := r.store.abortLogin(ctx, id, n); err != nil {
					logErr(ctx, log, "dialer: log out a stuck login", "err", err)
				}
			}
		case ended(l.account, l.session):
			log.Warn("dialer: the agent's session call ended unseen; agent logged out", "call_id", l.session)
			if _, err := r.store.sessionEnded(ctx, id, l.session, l.login); err != nil {
				logErr(ctx, log, "dialer: log out an agent", "err", err)
			}
		case l.state == dialerv1.AgentState_AGENT_STATE_ON_CALL && now.Sub(l.since) > r.cfg.Reconcile && ended(l.account, l.call):
			log.Warn("dialer: the agent's customer call ended unseen; agent released", "call_id", l.call)
			if _, err := r.store.callEnded(ctx, l.campaign, l.call, now); err != nil {
				logErr(ctx, log, "dialer: release an agent", "err", err)
			}
			r.Wake()
		}
	}
}

func parseLogin(s string) (int64, error) {
	var n int64
	_, err := fmt.Sscan(s, &n)
	return n, err
}
