package dialer

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	dialerv1 "github.com/ringback/ringback/proto/gen/go/ringback/dialer/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	"github.com/ringback/ringback/services/rating/direction"
)

// EngineConfig tunes the Engine.
type EngineConfig struct {
	// Instance names this replica in the leases it takes (the pod name);
	// required, and stable across restarts is best.
	Instance string
	// Tick is how often running campaigns are looked at (default 200ms).
	Tick time.Duration
	// Lease is how long a record being dialed stays this replica's without
	// renewal (default 10s). Leases are renewed every Lease/3, and records
	// whose lease expired are adopted by any replica.
	Lease time.Duration
	// Endpoints resolves records' schedule extensions to endpoints of the
	// account. Nil: a schedule's extension is ignored (logged) and the
	// campaign's on_answer applies.
	Endpoints originationv1.EndpointServiceClient
	// RPCTimeout bounds each call to origination (default 5s; keep it well
	// under Lease).
	RPCTimeout time.Duration
	// Reconcile is how long a call this replica holds may go without an
	// outcome before origination is asked whether it ended (a lost event, a
	// call that ended before it was recorded); default 1m.
	Reconcile time.Duration
	// OutcomeWorkers is how many batches of call events are handled at
	// once (default 4).
	OutcomeWorkers int
	// DefaultHours are the calling hours of campaigns that set none
	// (nil: DefaultCallingHours, every day 08:00-21:00).
	DefaultHours *dialerv1.CallingHours
	// Registerer receives the engine's metrics (nil: not exported).
	Registerer prometheus.Registerer
	// Agents is the agents' live state, for the pacing of AGENTS and
	// PREDICTIVE campaigns (AgentStore.Snapshot); nil: no agents.
	Agents *AgentStore
	// AgentMultiplier is AGENTS campaigns' calls per free agent when they
	// set none (0: 1). PacingScale multiplies the durations the pacing sees
	// (0: 1; the simulator's time scale in tests).
	AgentMultiplier, PacingScale float64
	// Now is the campaigns' clock: calling hours, retry intervals, start
	// and end times, leases (default time.Now). Back-offs from origination's
	// errors run on the real clock.
	Now func() time.Time
}

// Defaults of EngineConfig.
const (
	DefaultTick           = 200 * time.Millisecond
	DefaultLease          = 10 * time.Second
	DefaultRPCTimeout     = 5 * time.Second
	DefaultReconcile      = time.Minute
	DefaultOutcomeWorkers = 4
)

const (
	// maxDials bounds the CreateCall requests in flight from one replica.
	maxDials = 64
	// endpointCacheTTL is how long an account's endpoints are trusted for
	// resolving schedule extensions.
	endpointCacheTTL = time.Minute
	// endpointBusyHoldOff is how long a campaign is left alone after its
	// answering endpoint was found on another call: origination allows one
	// call per endpoint, so the next record would be refused the same way.
	endpointBusyHoldOff = time.Second
	// Back-off of every dial after origination did not answer.
	minBackoff, maxBackoff = 500 * time.Millisecond, 30 * time.Second
	// recoverBatch is the most expired leases looked at per round.
	recoverBatch = 100
	// wakeGap is the least time between two ticks a wake-up starts.
	wakeGap = 10 * time.Millisecond
	// maxFieldVars leaves room among origination's 64 variables for the
	// engine's four.
	maxFieldVars = 60
)

// Metadata the engine sets on every request to origination.
const callSourceHeader = "ringback-call-source"

// Variables on every call the engine places: the outcomes find the record
// (and the run and try the call belongs to) by them.
const (
	VarCampaign = "dialer_campaign_id"
	VarRecord   = "dialer_record_id"
	VarRun      = "dialer_run"
	VarTry      = "dialer_try"
	// On a BLAST queue's calls, the queue's limits for the router (see
	// queueVariables).
	VarQueueMaxWaiting = "dialer_queue_max_waiting"
	VarQueueTurnAway   = "dialer_queue_turn_away_when_empty"
)

// Engine dials the records of running campaigns through origination.
//
// Each tick it takes every RUNNING campaign and, in a transaction holding
// the campaign's advisory lock (so that replicas never exceed the cap
// together), claims up to MaxConcurrent minus the live records: the due
// ones, oldest next_at first, leased to this replica. Each claimed record is
// then checked (end time, do-not-call, its recipient's calling hours) and
// dialed; the call's outcome comes back through the call events (see
// HandleEvent). A replica renews the leases of the records it holds; one
// that stops renewing (it died) has its records adopted by another, which
// asks origination what became of their calls.
//
// A call is made at most once per record, run and try: CreateCall's
// idempotency key is "dialer:<record>:<run>:<try>", and a try given back
// (origination unavailable, a lost replica) keeps its number, so dialing it
// again returns the call already made if there was one.
//
// Besides finishing a campaign, the engine changes its status in one case:
// origination's INSUFFICIENT_BALANCE, or an answering endpoint that no
// longer exists, pauses it (every other record would be refused the same
// way; resuming after topping up or fixing the campaign goes on where it
// stopped), with the record given back untouched.
type Engine struct {
	cfg   EngineConfig
	db    *pgxpool.Pool
	calls originationv1.CallServiceClient
	log   *slog.Logger
	dir   *direction.Resolver
	wake  chan struct{}
	dials sync.WaitGroup
	slots chan struct{} // bounds the dials in flight
	m     *metrics
	// pacers are the AGENTS and PREDICTIVE campaigns' pacing state; epoch
	// is the origin of their virtual clock when PacingScale is set.
	pacers pacers
	epoch  time.Time

	mu        sync.Mutex
	settings  map[string]cachedSettings // by campaign id
	endpoints map[string]endpointDir    // by account
	holdOff   map[string]time.Time      // campaign -> no claims before (real clock)
	pauseAll  time.Time                 // no claims before (real clock): origination unavailable
	backoff   time.Duration
	checked   map[int64]time.Time // record -> when reconcile last asked about its call (engine clock)
}

type cachedSettings struct {
	run int
	s   Settings
}

type endpointDir struct {
	at    time.Time
	byExt map[string]string // address or name -> endpoint id
}

// NewEngine returns an engine; Run starts it.
func NewEngine(cfg EngineConfig, db *pgxpool.Pool, calls originationv1.CallServiceClient, log *slog.Logger) *Engine {
	if cfg.Tick <= 0 {
		cfg.Tick = DefaultTick
	}
	if cfg.Lease <= 0 {
		cfg.Lease = DefaultLease
	}
	if cfg.RPCTimeout <= 0 {
		cfg.RPCTimeout = DefaultRPCTimeout
	}
	if cfg.Reconcile <= 0 {
		cfg.Reconcile = DefaultReconcile
	}
	if cfg.OutcomeWorkers <= 0 {
		cfg.OutcomeWorkers = DefaultOutcomeWorkers
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Instance == "" {
		cfg.Instance = "dialer"
	}
	return &Engine{
		cfg: cfg, db: db, calls: calls, log: log.With("instance", cfg.Instance),
		dir:       direction.NewResolver(0),
		m:         newMetrics(cfg.Registerer),
		wake:      make(chan struct{}, 1),
		slots:     make(chan struct{}, maxDials),
		settings:  map[string]cachedSettings{},
		endpoints: map[string]endpointDir{},
		holdOff:   map[string]time.Time{},
		checked:   map[int64]time.Time{},
		epoch:     cfg.Now(),
	}
}

// Wake makes the engine look at the campaigns now rather than at the next
// tick: a campaign started or resumed, a call ended and freed a slot.
func (e *Engine) Wake() {
	select {
	case e.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
}

func (e *Engine) now() time.Time { return e.cfg.Now() }

// Run dials until ctx ends, then waits for the dials in flight (each bounded
// by RPCTimeout) so that what they did is recorded. The leases it holds are
// left to expire: the calls go on, and a replica adopts them.
func (e *Engine) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { e.keepLeases(ctx) })
	wg.Go(func() { e.sweepImports(ctx) })
	t := time.NewTicker(e.cfg.Tick)
	defer t.Stop()
	for {
		began := time.Now()
		e.tick(ctx)
		select {
		case <-ctx.Done():
			wg.Wait()
			e.dials.Wait()
			return
		case <-t.C:
		case <-e.wake:
			// Wake-ups (one per ended call) are gathered for a moment, so
			// that a busy campaign's slots are claimed in batches rather
			// than one statement per freed slot.
			if d := wakeGap - time.Since(began); d > 0 {
				select {
				case <-ctx.Done():
				case <-time.After(d):
				}
			}
		}
	}
}

// engineCampaign is a running campaign as the engine sees it.
type engineCampaign struct {
	id, account string
	run         int
	s           Settings
}

// claimedRecord is a record this replica leased to dial.
type claimedRecord struct {
	id          int64
	numbers     []string
	fields      map[string]any
	scheduleExt string
	tries       int // this try, from 1
}

func (e *Engine) tick(ctx context.Context) {
	cs, err := e.running(ctx)
	if err != nil {
		if ctx.Err() == nil {
			e.log.Error("dialer: list running campaigns", "err", err)
		}
		return
	}
	for _, c := range cs {
		if ctx.Err() != nil {
			return
		}
		e.step(ctx, c)
	}
}

// running returns the RUNNING campaigns with their settings.
func (e *Engine) running(ctx context.Context) ([]engineCampaign, error) {
	rows, err := e.db.Query(ctx, `SELECT id::text, account_id, settings, run FROM dialer.campaigns WHERE status = $1`,
		int16(dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING))
	if err != nil {
		return nil, err
	}
	var out []engineCampaign
	var (
		c   engineCampaign
		raw []byte
	)
	_, err = pgx.ForEachRow(rows, []any{&c.id, &c.account, &raw, &c.run}, func() error {
		s, err := e.settingsOf(c.id, c.run, raw)
		if err != nil {
			e.log.Error("dialer: campaign settings do not parse; skipped", "campaign_id", c.id, "err", err)
			return nil
		}
		c.s = s
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Forget the settings of campaigns no longer running (an outcome of
	// one parses them again).
	e.mu.Lock()
	if len(e.settings) > len(out) {
		keep := make(map[string]cachedSettings, len(out))
		for _, c := range out {
			if cs, ok := e.settings[c.id]; ok {
				keep[c.id] = cs
			}
		}
		e.settings = keep
	}
	e.mu.Unlock()
	return out, nil
}

// settingsOf parses a campaign's settings, once per run: they cannot
// change during one (a campaign is edited only while CREATED or FINISHED,
// and starting it again begins a new run).
func (e *Engine) settingsOf(id string, run int, raw []byte) (Settings, error) {
	e.mu.Lock()
	cs, ok := e.settings[id]
	e.mu.Unlock()
	if ok && cs.run == run {
		return cs.s, nil
	}
	c := &dialerv1.Campaign{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(raw, c); err != nil {
		return Settings{}, err
	}
	if c.GetCallingHours() == nil && e.cfg.DefaultHours != nil {
		c.CallingHours = e.cfg.DefaultHours
	}
	s := SettingsOf(c)
	e.mu.Lock()
	e.settings[id] = cachedSettings{run: run, s: s}
	e.mu.Unlock()
	return s, nil
}

// runSettings are a campaign's settings for an outcome of its run: from the
// cache when that run's are there, else read. ok is false when the
// campaign is gone or on another run (the outcome's record is not live in
// it any more).
func (e *Engine) runSettings(ctx context.Context, id string, run int) (s Settings, ok bool, err error) {
	e.mu.Lock()
	cs, cached := e.settings[id]
	e.mu.Unlock()
	if cached && cs.run == run {
		return cs.s, true, nil
	}
	var (
		raw []byte
		cur int
	)
	err = e.db.QueryRow(ctx, `SELECT settings, run FROM dialer.campaigns WHERE id = $1`, id).Scan(&raw, &cur)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && cur != run) {
		return Settings{}, false, nil
	}
	if err != nil {
		return Settings{}, false, err
	}
	s, err = e.settingsOf(id, run, raw)
	return s, err == nil, err
}

// step does one campaign's tick: expire it past its end, else claim and
// dial what is due, else finish it if nothing is left.
func (e *Engine) step(ctx context.Context, c engineCampaign) {
	now := e.now()
	if !c.s.Start.IsZero() && now.Before(c.s.Start) {
		return
	}
	if !c.s.End.IsZero() && !now.Before(c.s.End) {
		e.expire(ctx, c, now)
		return
	}
	if e.heldOff(c.id) {
		return
	}
	claim := e.claim
	if c.s.Paced() {
		claim = e.claimPaced
	}
	recs, live, err := claim(ctx, c, now)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			e.log.Error("dialer: claim records", "campaign_id", c.id, "err", err)
		}
		return
	case len(recs) == 0 && live == 0:
		// Nothing due and nothing being dialed: perhaps nothing is left.
		e.finishIfDone(ctx, c, now)
		return
	case len(recs) == 0:
		return // every slot is taken, or what is left is not due yet
	}
	// Dials outlive a shutdown's cancellation so that what they did is
	// recorded; each is bounded by RPCTimeout.
	dctx := context.WithoutCancel(ctx)
	// The do-not-call lists are read now, for the whole batch, not at
	// import: a number may be added to them at any time.
	var numbers []string
	for _, r := range recs {
		numbers = append(numbers, r.numbers...)
	}
	blocked, err := BlockedNumbers(dctx, e.db, c.account, c.id, numbers)
	var locked map[string]time.Time
	if err == nil {
		locked, err = LockedNumbers(dctx, e.db, c.account, numbers, now)
	}
	if err != nil {
		e.log.Error("dialer: check do-not-call; records given back", "campaign_id", c.id, "err", err)
		for _, r := range recs {
			e.release(dctx, e.log, c, r, time.Time{})
		}
		return
	}
	for _, r := range recs {
		e.dials.Add(1)
		go func() {
			defer e.dials.Done()
			e.slots <- struct{}{}
			defer func() { <-e.slots }()
			e.dial(dctx, c, r, blocked, locked)
		}()
	}
}

// claimSQL counts a campaign's live records and leases up to $7 minus them
// of its due ones, while the campaign is RUNNING (2) on run $2: the tick
// read it running, but a dial refused since may have paused it (as
// INSUFFICIENT_BALANCE does) and given its record back, and the statement
// that sees the record back sees the pause.
const claimSQL = `WITH live AS (
			SELECT count(*) AS n FROM dialer.records WHERE campaign_id = $1 AND status IN ('running', 'talking')),
		claimed AS (
			UPDATE dialer.records r SET status = 'running', tries = r.tries + 1, run = $2,
				lease_owner = $3, lease_until = $4, call_id = ''
			FROM (SELECT id FROM dialer.records
				WHERE campaign_id = $1 AND NOT final AND status NOT IN ('running', 'talking') AND next_at <= $5
					AND list_id IN (SELECT id FROM dialer.lists WHERE campaign_id = $1 AND active AND status = $6)
					AND EXISTS (SELECT 1 FROM dialer.campaigns WHERE id = $1 AND status = 2 AND run = $2)
				ORDER BY next_at, id LIMIT greatest($7 - (SELECT n FROM live), 0) FOR UPDATE SKIP LOCKED) due
			WHERE r.id = due.id
			RETURNING r.id, r.numbers, r.fields, r.schedule_ext, r.tries)
		SELECT id, numbers, fields, schedule_ext, tries, (SELECT n FROM live) FROM claimed
		UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, (SELECT n FROM live)`

// claim leases up to the campaign's free slots of due records: the
// campaign's free slots are counted and filled in one statement, under the
// campaign's advisory lock, so that replicas never exceed the cap
// together. live is how many of its records were being dialed before.
//
// One round trip: the lock (waited for: another replica's claim is one
// short statement) and the claim go as one pipelined batch, which runs as
// one implicit transaction; the claim statement takes its snapshot after
// the lock is held, so it sees every claim committed before.
func (e *Engine) claim(ctx context.Context, c engineCampaign, now time.Time) (recs []claimedRecord, live int, err error) {
	b := &pgx.Batch{}
	b.Queue(`SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, "dialer.campaign:"+c.id)
	b.Queue(claimSQL,
		c.id, c.run, e.cfg.Instance, now.Add(e.cfg.Lease), now, int16(dialerv1.ListStatus_LIST_STATUS_READY), c.s.MaxConcurrent)
	br := e.db.SendBatch(ctx, b)
	defer br.Close()
	if _, err := br.Exec(); err != nil {
		return nil, 0, fmt.Errorf("lock campaign: %w", err)
	}
	rows, err := br.Query()
	if err != nil {
		return nil, 0, fmt.Errorf("claim records: %w", err)
	}
	if recs, live, err = scanClaimed(rows); err != nil {
		return nil, 0, err
	}
	return recs, live, br.Close()
}

// scanClaimed reads claimSQL's rows.
func scanClaimed(rows pgx.Rows) (recs []claimedRecord, live int, err error) {
	var (
		id      *int64
		numbers []string
		fields  []byte
		ext     *string
		tries   *int
		liveNow int64
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &numbers, &fields, &ext, &tries, &liveNow}, func() error {
		live = int(liveNow)
		if id == nil {
			return nil // the row that carries live alone
		}
		r := claimedRecord{id: *id, numbers: numbers, scheduleExt: *ext, tries: *tries}
		if len(fields) > 0 {
			_ = json.Unmarshal(fields, &r.fields) // a field map that does not parse only loses the variables
		}
		recs = append(recs, r)
		numbers = nil // the next row's scan must not reuse it
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("claim records: %w", err)
	}
	return recs, live, nil
}

// dial checks a claimed record and calls its recipient; blocked are the
// numbers on a do-not-call list, locked those whose call was abandoned
// lately, with the end of their lockout.
func (e *Engine) dial(ctx context.Context, c engineCampaign, r claimedRecord, blocked map[string]bool, locked map[string]time.Time) {
	log := e.log.With("campaign_id", c.id, "record_id", r.id, "run", c.run, "try", r.tries)
	now := e.now()
	if !c.s.End.IsZero() && !now.Before(c.s.End) {
		e.settle(ctx, log, c, r, StatusExpired, true, time.Time{}, true)
		return
	}
	if len(r.numbers) == 0 {
		log.Warn("dialer: record without numbers")
		e.settle(ctx, log, c, r, StatusFailed, true, time.Time{}, true)
		return
	}
	number, ok := rotate(r.numbers, r.tries, blocked)
	if !ok {
		log.Info("dialer: every number of the record is on a do-not-call list")
		e.settle(ctx, log, c, r, StatusDNC, true, time.Time{}, true)
		return
	}
	log = log.With("number", number)
	if until, ok := locked[number]; ok {
		// Its last call was abandoned: not again before the lockout
		// ends (not counted as an attempt).
		log.Debug("dialer: number locked out after an abandoned call", "until", until)
		e.settle(ctx, log, c, r, StatusReady, false, until, true)
		return
	}
	if allowed, next := NextAllowed(recipientZones(e.dir, number, c.s.DefaultCountry), c.s.Hours, now); !allowed {
		if next.IsZero() {
			log.Warn("dialer: the calling hours never open in every time zone of the number")
			e.settle(ctx, log, c, r, StatusFailed, true, time.Time{}, true)
			return
		}
		e.settle(ctx, log, c, r, StatusReady, false, next, true)
		return
	}

	endpoint, scheduled := c.s.EndpointID, false
	if r.scheduleExt != "" {
		if id, ok := e.scheduleEndpoint(ctx, c.account, r.scheduleExt); ok {
			endpoint, scheduled = id, true
		} else {
			log.Warn("dialer: schedule extension is no endpoint of the account; the campaign's on_answer applies", "extension", r.scheduleExt)
		}
	}
	if e.heldOff(c.id) {
		// Claimed before a back-off began: not dialed into it.
		e.release(ctx, log, c, r, time.Time{})
		return
	}
	key := attemptKey(r.id, c.run, r.tries)
	req := callRequest(c.s, number, endpoint, scheduled)
	req.Variables = callVariables(r.fields, c.id, r.id, c.run, r.tries)
	queueVariables(c.s, req)
	req.IdempotencyKey = key
	rctx, cancel := context.WithTimeout(e.outgoing(ctx, c.account), e.cfg.RPCTimeout)
	resp, err := e.calls.CreateCall(rctx, req)
	cancel()
	if err != nil {
		e.refused(ctx, log, c, r, number, key, scheduled, err)
		return
	}
	e.originationAnswered()
	call := resp.GetCall()
	log = log.With("call_id", call.GetId())
	e.m.dials.WithLabelValues("placed").Inc()
	if err := e.recordAttempt(ctx, c, r, number, call.GetId(), now); err != nil {
		// The call is made: its events record it (HandleEvent fills in
		// what is missing), and reconcile finds it if they do not.
		log.Error("dialer: record the attempt", "err", err)
	}
	log.Debug("dialer: call placed")
	if finalCall(call.GetStatus()) {
		// A try dialed again after a lost answer: the idempotency key gave
		// back its call, which has ended; its events may have been skipped.
		if err := e.applyCall(ctx, call); err != nil {
			log.Error("dialer: apply the outcome of an ended call", "err", err)
		}
	}
}

// callRequest is the call of one attempt at number: the announcement, then
// the endpoint (empty: none); with BLAST options, the announcement is a
// menu whose CONNECT options call the endpoint, or, with a queue and no
// endpoint of the record's own (its schedule's), make the recipient wait
// for one of the campaign's agents; without a CONNECT option no endpoint
// is called.
func callRequest(s Settings, number, endpoint string, scheduled bool) *originationv1.CreateCallRequest {
	req := &originationv1.CreateCallRequest{
		First: &originationv1.PartySpec{Target: &originationv1.PartySpec_Number{Number: number},
			CallerIdNumber: s.CallerIDNumber, CallerIdName: s.CallerIDName, RingTimeoutMs: int32(s.DialTimeout / time.Millisecond)},
		Announcement: s.Announcement,
	}
	if s.AnswersToAgents() {
		// The campaign's agents take the answer: origination holds the
		// recipient for one (the router connects it), else plays the
		// safe-harbour message.
		req.Announcement = ""
		req.AwaitAgent = &originationv1.AwaitAgent{TimeoutMs: int32(s.Pacing.AgentWait / time.Millisecond), SafeHarbour: s.SafeHarbour}
		if s.DetectMachine {
			req.MachineDetection = &originationv1.MachineDetection{Enabled: true, Message: s.MachineMessage}
		}
		return req
	}
	connects := len(s.Options) == 0
	if len(s.Options) > 0 {
		m := &originationv1.Menu{Tries: int32(s.OptionTries), TimeoutMs: int32(s.OptionTimeout / time.Millisecond)}
		for _, o := range s.Options {
			act := originationv1.MenuAction_MENU_ACTION_END
			switch o.GetAction() {
			case dialerv1.BlastAction_BLAST_ACTION_CONNECT:
				act, connects = originationv1.MenuAction_MENU_ACTION_CONNECT, true
			case dialerv1.BlastAction_BLAST_ACTION_OPT_OUT:
				act = originationv1.MenuAction_MENU_ACTION_OPT_OUT
			}
			m.Options = append(m.Options, &originationv1.MenuOption{Digit: o.GetDigit(), Action: act})
		}
		req.Menu = m
	}
	switch {
	case !connects:
	case s.Queue != nil && len(s.Options) > 0 && !scheduled:
		req.AwaitAgent = &originationv1.AwaitAgent{TimeoutMs: int32(s.Queue.Wait / time.Millisecond),
			SafeHarbour: s.Queue.NoAgentMessage, HoldMusic: s.Queue.HoldMusic}
	case endpoint != "":
		req.Second = &originationv1.PartySpec{Target: &originationv1.PartySpec_EndpointId{EndpointId: endpoint}}
	}
	if s.DetectMachine {
		req.MachineDetection = &originationv1.MachineDetection{Enabled: true, Message: s.MachineMessage}
	}
	return req
}

// attemptKey is CreateCall's idempotency key for one try of a record.
func attemptKey(record int64, run, try int) string {
	return "dialer:" + strconv.FormatInt(record, 10) + ":" + strconv.Itoa(run) + ":" + strconv.Itoa(try)
}

// rotate picks the number of a try: numbers[(try-1) % len], or the next one
// in rotation that is not blocked; ok is false when all are.
func rotate(numbers []string, try int, blocked map[string]bool) (string, bool) {
	n := len(numbers)
	for i := range n {
		if nb := numbers[(max(try-1, 0)+i)%n]; !blocked[nb] {
			return nb, true
		}
	}
	return "", false
}

// callVariables are a call's custom variables: the record's fields (what
// origination accepts of them: at most 60, names up to 64 bytes, values cut
// at 1024 bytes; the engine's own names win) and the engine's.
func callVariables(fields map[string]any, campaign string, record int64, run, try int) map[string]string {
	vars := make(map[string]string, min(len(fields), maxFieldVars)+4)
	keys := make([]string, 0, len(fields))
	for k := range fields {
		if k != "" && len(k) <= 64 && k != VarCampaign && k != VarRecord && k != VarRun && k != VarTry && k != VarQueueMaxWaiting && k != VarQueueTurnAway {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys[:min(len(keys), maxFieldVars)] {
		var v string
		switch x := fields[k].(type) {
		case string:
			v = x
		case nil:
		default:
			b, _ := json.Marshal(x)
			v = string(b)
		}
		vars[k] = truncateUTF8(v, 1024)
	}
	vars[VarCampaign] = campaign
	vars[VarRecord] = strconv.FormatInt(record, 10)
	vars[VarRun] = strconv.Itoa(run)
	vars[VarTry] = strconv.Itoa(try)
	return vars
}

// queueVariables gives a call that may wait in a BLAST's queue the queue's
// limits, which the router applies when the recipient presses CONNECT: it
// learns them from the call's AGENT_AWAITED, without reading the campaign.
func queueVariables(s Settings, req *originationv1.CreateCallRequest) {
	if s.Queue == nil || req.GetAwaitAgent() == nil || req.GetMenu() == nil {
		return
	}
	if s.Queue.MaxWaiting > 0 {
		req.Variables[VarQueueMaxWaiting] = strconv.Itoa(s.Queue.MaxWaiting)
	}
	if s.Queue.TurnAwayWhenEmpty {
		req.Variables[VarQueueTurnAway] = "true"
	}
}

func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// outgoing is ctx with the metadata origination wants from the dialer.
func (e *Engine) outgoing(ctx context.Context, account string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, AccountHeader, account, callSourceHeader,
		originationv1.CallSource_CALL_SOURCE_DIALER.String())
}

// recordAttempt records a placed call: its attempt row, and the record's
// call (unless its events got there first).
func (e *Engine) recordAttempt(ctx context.Context, c engineCampaign, r claimedRecord, number, callID string, now time.Time) error {
	// One statement: a round trip per call less than a transaction.
	_, err := e.db.Exec(ctx, `WITH attempt AS (
			INSERT INTO dialer.attempts (call_id, record_id, campaign_id, run, n, number, started_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (call_id) DO NOTHING)
		UPDATE dialer.records SET call_id = $1, last_attempt_at = $7
		WHERE id = $2 AND run = $4 AND tries = $5 AND call_id = '' AND status IN ('running', 'talking')`,
		callID, r.id, c.id, c.run, r.tries, number, now)
	return err
}

// refused deals with a CreateCall error.
func (e *Engine) refused(ctx context.Context, log *slog.Logger, c engineCampaign, r claimedRecord, number, key string, scheduled bool, err error) {
	e.m.dials.WithLabelValues("refused").Inc()
	st := status.Convert(err)
	reason := errorReason(st)
	log = log.With("code", st.Code().String(), "reason", reason, "err", st.Message())
	switch {
	case reason == "INSUFFICIENT_BALANCE":
		// Paused before the record is given back: its slot stays taken
		// until no other replica or tick can dial in the meantime.
		log.Warn("dialer: the account's balance is exhausted; campaign paused")
		e.pause(ctx, c)
		e.release(ctx, log, c, r, time.Time{})
	case reason == "ENDPOINT_BUSY":
		// One call per endpoint: the record waits for the one in progress.
		log.Debug("dialer: answering endpoint on another call; record given back")
		e.release(ctx, log, c, r, time.Time{})
		e.holdCampaign(c.id, endpointBusyHoldOff)
	case st.Code() == codes.NotFound && scheduled:
		log.Warn("dialer: the schedule's endpoint is gone; record given back")
		e.mu.Lock()
		delete(e.endpoints, c.account)
		e.mu.Unlock()
		e.release(ctx, log, c, r, time.Time{})
	case st.Code() == codes.NotFound:
		log.Error("dialer: the campaign's answering endpoint does not exist; campaign paused")
		e.pause(ctx, c)
		e.release(ctx, log, c, r, time.Time{})
	case st.Code() == codes.FailedPrecondition || st.Code() == codes.InvalidArgument:
		// Rating or origination refused the number: dialing it again cannot
		// help, another of the record's numbers may.
		log.Info("dialer: call refused")
		e.refusal(ctx, log, c, r, number, key, cmp.Or(reason, st.Code().String()))
	default:
		// Unavailable, a timeout, an internal error: nothing is known to be
		// dialed. The try is given back with its key, so if the call was
		// made after all, dialing the try again returns it.
		d := e.originationFailed()
		log.Warn("dialer: origination did not answer; record given back", "backoff", d.String())
		e.release(ctx, log, c, r, time.Time{})
	}
}

// errorReason is the google.rpc.ErrorInfo reason of a status, if any.
func errorReason(st *status.Status) string {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

// refusal records a refused try as an attempt (no call: its call_id is the
// try's key) that failed; the record is final unless another of its numbers
// is left to try.
func (e *Engine) refusal(ctx context.Context, log *slog.Logger, c engineCampaign, r claimedRecord, number, key, reason string) {
	now := e.now()
	final := len(r.numbers) < 2 || r.tries >= c.s.DialAttempts
	err := pgx.BeginFunc(ctx, e.db, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO dialer.attempts (call_id, record_id, campaign_id, run, n, number, started_at, ended_at, outcome, hangup_cause)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9) ON CONFLICT (call_id) DO NOTHING`,
			key, r.id, c.id, c.run, r.tries, number, now, StatusFailed, reason); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE dialer.records SET status = $5, final = $6, next_at = CASE WHEN $6 THEN next_at ELSE $7 END,
				lease_owner = '', lease_until = NULL, last_attempt_at = $7, last_duration_s = 0
			WHERE id = $1 AND run = $2 AND tries = $3 AND lease_owner = $4 AND status = 'running'`,
			r.id, c.run, r.tries, e.cfg.Instance, StatusFailed, final, now)
		return err
	})
	if err != nil {
		log.Error("dialer: record a refused call", "err", err)
		return
	}
	e.Wake()
}

// settle ends a claimed try that placed no call: the record gets status
// (final or not), next_at (zero: unchanged), and its try back if undo.
func (e *Engine) settle(ctx context.Context, log *slog.Logger, c engineCampaign, r claimedRecord, st string, final bool, next time.Time, undo bool) {
	var nextAt *time.Time
	if !next.IsZero() {
		nextAt = &next
	}
	undone := 0
	if undo {
		undone = 1
	}
	_, err := e.db.Exec(ctx, `UPDATE dialer.records SET status = $5, final = $6, next_at = coalesce($7, next_at), tries = tries - $8,
			lease_owner = '', lease_until = NULL
		WHERE id = $1 AND run = $2 AND tries = $3 AND lease_owner = $4 AND status = 'running'`,
		r.id, c.run, r.tries, e.cfg.Instance, st, final, nextAt, undone)
	if err != nil {
		log.Error("dialer: update record", "status", st, "err", err)
		return
	}
	e.m.dials.WithLabelValues(st).Inc()
	log.Debug("dialer: record settled without a call", "status", st, "final", final, "next_at", next)
	e.Wake()
}

// release gives a claimed record back, ready with its try undone, due at
// next (zero: as it was).
func (e *Engine) release(ctx context.Context, log *slog.Logger, c engineCampaign, r claimedRecord, next time.Time) {
	e.m.dials.WithLabelValues("returned").Inc()
	var nextAt *time.Time
	if !next.IsZero() {
		nextAt = &next
	}
	_, err := e.db.Exec(ctx, `UPDATE dialer.records SET status = 'ready', next_at = coalesce($5, next_at), tries = tries - 1,
			lease_owner = '', lease_until = NULL
		WHERE id = $1 AND run = $2 AND tries = $3 AND lease_owner = $4 AND status = 'running'`,
		r.id, c.run, r.tries, e.cfg.Instance, nextAt)
	if err != nil {
		// The lease expires and recovery gives it back.
		log.Error("dialer: give a record back", "err", err)
	}
}

// pause pauses a running campaign (a pause or cancel since wins).
func (e *Engine) pause(ctx context.Context, c engineCampaign) {
	if _, err := e.db.Exec(ctx, `UPDATE dialer.campaigns SET status = $2, updated_at = $3 WHERE id = $1 AND status = $4`,
		c.id, int16(dialerv1.CampaignStatus_CAMPAIGN_STATUS_PAUSED), e.now(), int16(dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING)); err != nil {
		e.log.Error("dialer: pause campaign", "campaign_id", c.id, "err", err)
	}
}

// expire ends a campaign past its end time: its records not being dialed
// are final EXPIRED, and it finishes once the live ones have ended.
func (e *Engine) expire(ctx context.Context, c engineCampaign, now time.Time) {
	tag, err := e.db.Exec(ctx, `UPDATE dialer.records SET status = $2, final = true, lease_owner = '', lease_until = NULL
		WHERE campaign_id = $1 AND NOT final AND status NOT IN ('running', 'talking')`, c.id, StatusExpired)
	if err != nil {
		logErr(ctx, e.log, "dialer: expire records", "campaign_id", c.id, "err", err)
		return
	}
	if n := tag.RowsAffected(); n > 0 {
		e.log.Info("dialer: campaign past its end time; records expired", "campaign_id", c.id, "records", n)
	}
	e.finishIfDone(ctx, c, now)
}

// finishIfDone sets the campaign FINISHED when no call of it is live and no
// record of its active, imported lists is left to dial. Only a RUNNING
// campaign finishes: a pause or a cancel meanwhile wins.
func (e *Engine) finishIfDone(ctx context.Context, c engineCampaign, now time.Time) {
	tag, err := e.db.Exec(ctx, `UPDATE dialer.campaigns SET status = $2, finished_at = $3, updated_at = $3
		WHERE id = $1 AND status = $4
			AND NOT EXISTS (SELECT 1 FROM dialer.records WHERE campaign_id = $1 AND status IN ('running', 'talking'))
			AND NOT EXISTS (SELECT 1 FROM dialer.records r JOIN dialer.lists l ON l.id = r.list_id
				WHERE r.campaign_id = $1 AND NOT r.final AND l.active AND l.status = $5)`,
		c.id, int16(dialerv1.CampaignStatus_CAMPAIGN_STATUS_FINISHED), now,
		int16(dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING), int16(dialerv1.ListStatus_LIST_STATUS_READY))
	if err != nil {
		logErr(ctx, e.log, "dialer: finish campaign", "campaign_id", c.id, "err", err)
		return
	}
	if tag.RowsAffected() > 0 {
		e.log.Info("dialer: campaign finished", "campaign_id", c.id, "run", c.run)
	}
}

// heldOff reports whether the campaign must not be dialed now: origination
// is backing off, or the campaign's endpoint was busy.
func (e *Engine) heldOff(campaign string) bool {
	now := time.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	if now.Before(e.pauseAll) {
		return true
	}
	if t, ok := e.holdOff[campaign]; ok {
		if now.Before(t) {
			return true
		}
		delete(e.holdOff, campaign)
	}
	return false
}

func (e *Engine) holdCampaign(campaign string, d time.Duration) {
	e.mu.Lock()
	e.holdOff[campaign] = time.Now().Add(d)
	e.mu.Unlock()
}

// originationFailed doubles the back-off and returns it.
func (e *Engine) originationFailed() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.backoff = min(max(2*e.backoff, minBackoff), maxBackoff)
	e.pauseAll = time.Now().Add(e.backoff)
	return e.backoff
}

func (e *Engine) originationAnswered() {
	e.mu.Lock()
	e.backoff = 0
	e.mu.Unlock()
}

// scheduleEndpoint resolves a schedule's extension: the account's endpoint
// whose address or name it is.
func (e *Engine) scheduleEndpoint(ctx context.Context, account, ext string) (string, bool) {
	if e.cfg.Endpoints == nil {
		return "", false
	}
	e.mu.Lock()
	d, ok := e.endpoints[account]
	e.mu.Unlock()
	if !ok || time.Since(d.at) > endpointCacheTTL {
		byExt, err := e.listEndpoints(ctx, account)
		if err != nil {
			e.log.Warn("dialer: list the account's endpoints", "account_id", account, "err", err)
			return "", false
		}
		d = endpointDir{at: time.Now(), byExt: byExt}
		e.mu.Lock()
		for a, old := range e.endpoints {
			if time.Since(old.at) > endpointCacheTTL {
				delete(e.endpoints, a)
			}
		}
		e.endpoints[account] = d
		e.mu.Unlock()
	}
	id, ok := d.byExt[ext]
	return id, ok
}

func (e *Engine) listEndpoints(ctx context.Context, account string) (map[string]string, error) {
	byExt := map[string]string{}
	token := ""
	for range 100 { // 50,000 endpoints
		rctx, cancel := context.WithTimeout(e.outgoing(ctx, account), e.cfg.RPCTimeout)
		resp, err := e.cfg.Endpoints.ListEndpoints(rctx, &originationv1.ListEndpointsRequest{PageSize: 500, PageToken: token})
		cancel()
		if err != nil {
			return nil, err
		}
		for _, ep := range resp.GetEndpoints() {
			// An address names an endpoint better than a name does.
			if _, taken := byExt[ep.GetName()]; !taken && ep.GetName() != "" {
				byExt[ep.GetName()] = ep.GetId()
			}
		}
		for _, ep := range resp.GetEndpoints() {
			if ep.GetAddress() != "" {
				byExt[ep.GetAddress()] = ep.GetId()
			}
		}
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	return byExt, nil
}

// keepLeases renews this replica's leases every Lease/3, adopts the
// records of replicas that stopped renewing theirs, and asks origination
// about calls held too long without an outcome.
func (e *Engine) keepLeases(ctx context.Context) {
	t := time.NewTicker(e.cfg.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// Rows being written meanwhile (an outcome, which ends the lease
		// anyway) are skipped rather than waited for: waiting on rows
		// locked in another order is how a renewal would deadlock with a
		// batch of outcomes. A skipped lease is renewed at the next round,
		// two before it could expire.
		if _, err := e.db.Exec(ctx, `UPDATE dialer.records r SET lease_until = $2
			FROM (SELECT id FROM dialer.records WHERE lease_owner = $1 AND status IN ('running', 'talking') FOR UPDATE SKIP LOCKED) mine
			WHERE r.id = mine.id`,
			e.cfg.Instance, e.now().Add(e.cfg.Lease)); err != nil && ctx.Err() == nil {
			e.log.Error("dialer: renew leases", "err", err)
		}
		e.recoverExpired(ctx)
		e.reconcile(ctx)
	}
}

// recoverExpired adopts records whose lease expired while being dialed.
func (e *Engine) recoverExpired(ctx context.Context) {
	rows, err := e.db.Query(ctx, `SELECT id FROM dialer.records WHERE status IN ('running', 'talking') AND lease_until < $1
		ORDER BY lease_until LIMIT $2`, e.now(), recoverBatch)
	if err != nil {
		if ctx.Err() == nil {
			e.log.Error("dialer: look for expired leases", "err", err)
		}
		return
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return
	}
	for _, id := range ids {
		if ctx.Err() != nil {
			return
		}
		e.adopt(ctx, id)
	}
}

// adopt takes over a record whose replica stopped renewing its lease and
// finds out what became of its call: still live, it is this replica's now;
// ended, its outcome is applied (whether or not its event was); unknown,
// the record is ready again with its try given back.
func (e *Engine) adopt(ctx context.Context, id int64) {
	now := e.now()
	var (
		callID, campaign, account, prev string
		run, tries                      int
	)
	err := e.db.QueryRow(ctx, `UPDATE dialer.records r SET lease_owner = $2, lease_until = $3
		FROM dialer.campaigns c, (SELECT id, lease_owner FROM dialer.records WHERE id = $1 FOR UPDATE) p
		WHERE r.id = $1 AND p.id = r.id AND c.id = r.campaign_id AND r.status IN ('running', 'talking') AND r.lease_until < $4
		RETURNING r.call_id, r.campaign_id::text, c.account_id, r.run, r.tries, p.lease_owner`,
		id, e.cfg.Instance, now.Add(e.cfg.Lease), now).Scan(&callID, &campaign, &account, &run, &tries, &prev)
	if errors.Is(err, pgx.ErrNoRows) {
		return // another replica was first, or the call ended meanwhile
	}
	log := e.log.With("record_id", id, "campaign_id", campaign, "run", run, "try", tries, "previous_owner", prev)
	if err != nil {
		logErr(ctx, log, "dialer: adopt record", "err", err)
		return
	}
	giveBack := func() {
		if _, err := e.db.Exec(ctx, `UPDATE dialer.records SET status = 'ready', tries = tries - 1, lease_owner = '', lease_until = NULL
			WHERE id = $1 AND run = $2 AND tries = $3 AND lease_owner = $4 AND status IN ('running', 'talking')`,
			id, run, tries, e.cfg.Instance); err != nil {
			logErr(ctx, log, "dialer: give an adopted record back", "err", err)
		}
		e.Wake()
	}
	if callID == "" {
		// Lost between its claim and its call being recorded: whether the
		// call was made is unknown. Dialing the try again (same key) returns
		// it if it was.
		log.Info("dialer: adopted a record without a call; ready again")
		giveBack()
		return
	}
	log = log.With("call_id", callID)
	rctx, cancel := context.WithTimeout(e.outgoing(ctx, account), e.cfg.RPCTimeout)
	resp, err := e.calls.GetCall(rctx, &originationv1.GetCallRequest{Id: callID})
	cancel()
	switch {
	case status.Code(err) == codes.NotFound:
		log.Info("dialer: adopted a record whose call origination does not know; ready again")
		giveBack()
	case err != nil:
		// Leave it expired for the next round (here or elsewhere).
		log.Warn("dialer: ask origination about an adopted call", "err", err)
		if _, err := e.db.Exec(ctx, `UPDATE dialer.records SET lease_owner = '', lease_until = $3 WHERE id = $1 AND lease_owner = $2`,
			id, e.cfg.Instance, now); err != nil {
			logErr(ctx, log, "dialer: release an adopted record", "err", err)
		}
	case finalCall(resp.GetCall().GetStatus()):
		log.Info("dialer: adopted a record whose call has ended; applying its outcome")
		if err := e.applyCall(ctx, resp.GetCall()); err != nil {
			logErr(ctx, log, "dialer: apply the outcome of an adopted call", "err", err)
		}
	default:
		log.Info("dialer: adopted a live call")
	}
}

// reconcile asks origination about the calls this replica holds that have
// had no outcome for Reconcile, each at most once per Reconcile: an event
// that never came (or came before the call was recorded) must not keep a
// record, and a slot of its campaign, taken forever.
func (e *Engine) reconcile(ctx context.Context) {
	now := e.now()
	// The calls asked about within Reconcile are left out, so that more
	// long calls than a batch are all asked about in turn.
	e.mu.Lock()
	recent := make([]int64, 0, len(e.checked))
	for id, at := range e.checked {
		if now.Sub(at) >= e.cfg.Reconcile || now.Before(at) {
			delete(e.checked, id)
			continue
		}
		recent = append(recent, id)
	}
	e.mu.Unlock()
	rows, err := e.db.Query(ctx, `SELECT r.id, r.call_id, c.account_id FROM dialer.records r JOIN dialer.campaigns c ON c.id = r.campaign_id
		WHERE r.lease_owner = $1 AND r.status IN ('running', 'talking') AND r.call_id <> '' AND r.last_attempt_at < $2
			AND NOT r.id = ANY($4)
		ORDER BY r.last_attempt_at LIMIT $3`, e.cfg.Instance, now.Add(-e.cfg.Reconcile), recoverBatch, recent)
	if err != nil {
		logErr(ctx, e.log, "dialer: look for calls to reconcile", "err", err)
		return
	}
	type held struct {
		id            int64
		call, account string
	}
	var (
		due []held
		h   held
	)
	if _, err := pgx.ForEachRow(rows, []any{&h.id, &h.call, &h.account}, func() error {
		due = append(due, h)
		return nil
	}); err != nil {
		logErr(ctx, e.log, "dialer: look for calls to reconcile", "err", err)
		return
	}
	e.mu.Lock()
	for _, h := range due {
		e.checked[h.id] = now
	}
	e.mu.Unlock()
	for _, h := range due {
		rctx, cancel := context.WithTimeout(e.outgoing(ctx, h.account), e.cfg.RPCTimeout)
		resp, err := e.calls.GetCall(rctx, &originationv1.GetCallRequest{Id: h.call})
		cancel()
		if err != nil || !finalCall(resp.GetCall().GetStatus()) {
			continue
		}
		e.log.Warn("dialer: a held call ended without its outcome being applied; applying it", "record_id", h.id, "call_id", h.call)
		if err := e.applyCall(ctx, resp.GetCall()); err != nil {
			logErr(ctx, e.log, "dialer: apply a reconciled outcome", "record_id", h.id, "call_id", h.call, "err", err)
		}
	}
}

// logErr logs an error, unless it is the shutdown's cancellation.
func logErr(ctx context.Context, log *slog.Logger, msg string, args ...any) {
	if ctx.Err() == nil {
		log.Error(msg, args...)
	}
}

func finalCall(s originationv1.CallStatus) bool {
	switch s {
	case originationv1.CallStatus_CALL_STATUS_COMPLETED, originationv1.CallStatus_CALL_STATUS_FAILED, originationv1.CallStatus_CALL_STATUS_CANCELED:
		return true
	}
	return false
}
