package origination

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"regexp"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringback/ringback/services/internal/billing"
	"github.com/ringback/ringback/services/internal/ids"
)

// EventType names a state change published on the event bus.
type EventType string

// Event types (ringback.events.v1.EventType without the prefix).
const (
	EventCallQueued           EventType = "CALL_QUEUED"
	EventCallDialing          EventType = "CALL_DIALING"
	EventLegDialing           EventType = "LEG_DIALING"
	EventLegRinging           EventType = "LEG_RINGING"
	EventLegAnswered          EventType = "LEG_ANSWERED"
	EventLegHangup            EventType = "LEG_HANGUP"
	EventAnnouncementStarted  EventType = "ANNOUNCEMENT_STARTED"
	EventAnnouncementFinished EventType = "ANNOUNCEMENT_FINISHED"
	EventCallBridged          EventType = "CALL_BRIDGED"
	EventCallCompleted        EventType = "CALL_COMPLETED"
	EventCallFailed           EventType = "CALL_FAILED"
	EventCallCanceled         EventType = "CALL_CANCELED"
	EventCallRedialScheduled  EventType = "CALL_REDIAL_SCHEDULED"
	EventMenuChoice           EventType = "MENU_CHOICE"
	EventMachineDetected      EventType = "MACHINE_DETECTED"
)

// Pending is an event recorded with the state change that caused it and
// published after the state is saved (an outbox): a crash between the two
// leaves it in the stored call, and the next owner publishes it again under
// the same message id, which the bus deduplicates.
type Pending struct {
	Seq  int64     `json:"seq"`
	Type EventType `json:"type"`
	Leg  Role      `json:"leg,omitempty"`
	At   time.Time `json:"at"`
	// Call is the call as it was right after the change. It is kept in
	// memory only: persisting a snapshot per event tripled the work of
	// every save. An event republished after a crash carries the call as
	// it is at recovery, which is newer than the event; consumers use the
	// event type and sequence for what happened and the snapshot for the
	// latest state.
	Call *Call `json:"-"`
}

// Store keeps live calls. Implementations must make Update a
// compare-and-swap on Call.Version so two writers can't lose each other's
// changes.
type Store interface {
	Create(ctx context.Context, c *Call) error
	Get(ctx context.Context, id string) (*Call, error)
	Update(ctx context.Context, c *Call) error
	// CallForLeg maps a leg UUID to its call ID (BACKGROUND_JOB events
	// carry no channel variables).
	CallForLeg(ctx context.Context, legUUID string) (string, error)
	// Live lists the calls an owner drives that have not ended.
	Live(ctx context.Context, owner string) ([]*Call, error)
	// LiveForAccount lists an account's calls that have not ended.
	LiveForAccount(ctx context.Context, account string) ([]*Call, error)
	// Finish moves an ended call out of the live set (kept for lookups).
	Finish(ctx context.Context, c *Call) error
	// IndexLeg maps a channel dialed after the call was created (a
	// redial, an operator rung in turn or at once) to its call.
	IndexLeg(ctx context.Context, legUUID, callID string) error
	// Wait records that a call waits, QUEUED, until at (a redial or its
	// campaign's opening hours); Unwait that it no longer does; Due lists
	// the waiting calls due by now, whoever drives them.
	Wait(ctx context.Context, id string, at time.Time) error
	Unwait(ctx context.Context, id string) error
	Due(ctx context.Context, now time.Time, limit int) ([]string, error)
	// Heartbeat says an instance is alive for ttl; Alive asks.
	Heartbeat(ctx context.Context, instance string, ttl time.Duration) error
	Alive(ctx context.Context, instance string) (bool, error)
	// Gone lists the instances that heartbeat no more and still have
	// live calls; those with none are forgotten.
	Gone(ctx context.Context) ([]string, error)
	// Adopt makes owner drive c (a call whose owner is gone);
	// ErrConflict if c changed since it was loaded.
	Adopt(ctx context.Context, c *Call, owner string) error
}

// Publisher puts events on the bus (JetStream), idempotently per
// (call ID, sequence).
type Publisher interface {
	Publish(ctx context.Context, c *Call, p Pending) error
}

// Locker holds endpoints busy: one active call per endpoint.
type Locker interface {
	Lock(ctx context.Context, key, owner string, ttl time.Duration) (bool, error)
	Unlock(ctx context.Context, key, owner string) error
}

// announcementRe: what can follow uuid_broadcast <uuid> safely.
// MaxReminderTimeoutS bounds CreateRequest.ReminderTimeoutS: a week.
const MaxReminderTimeoutS = 7 * 24 * 3600

var announcementRe = regexp.MustCompile(`^[^\s\x00-\x1f'"{}]{1,512}$`)

// Sentinel errors the API maps to gRPC codes with stable reasons.
var (
	ErrNotFound     = errors.New("call not found")
	ErrEndpointBusy = errors.New("endpoint busy")
	ErrConflict     = errors.New("concurrent update")
	ErrInvalid      = errors.New("invalid request")
	// ErrNoSwitch: no FreeSWITCH node is connected to place the call on.
	ErrNoSwitch = errors.New("no FreeSWITCH node available")
	// ErrUnknownEndpoint: the endpoint does not exist in the account.
	ErrUnknownEndpoint = errors.New("unknown endpoint")
)

// PartySpec says whom a leg reaches.
type PartySpec struct {
	Number         string
	EndpointID     string
	CallerIDNumber string
	CallerIDName   string
	RingTimeoutMS  int
}

// CreateRequest is a new call. Second left zero, with an Announcement and
// no Campaign, makes it announcement-only: First hears the announcement and
// is hung up.
type CreateRequest struct {
	AccountID    string
	Source       string
	First        PartySpec
	Second       PartySpec
	Mode         Mode
	Announcement string
	MaxDurationS int
	Variables    map[string]string
	// ReminderTimeoutS: if the call fails, remind the account after this
	// many seconds unless the party was called back (see the webhook
	// service); 0: never.
	ReminderTimeoutS int
	// Campaign, when set, makes this a click-to-call campaign call.
	Campaign *CampaignCall
	// Menu makes the announcement a menu's prompt (sequential calls); a
	// second party is then dialed only on a CONNECT option.
	Menu *Menu
	// MachineDetection runs answering-machine detection on the first
	// party's answer (sequential calls).
	MachineDetection MachineDetection
	// Conference makes the call an agent's session: its one party is put
	// in this room on answer and kept there (see agentroom.go).
	Conference string
	// AwaitAgent makes the answered party wait for ConnectCall.
	AwaitAgent *AwaitAgent
}

// CampaignCall is what a click-to-call campaign adds to a call.
type CampaignCall struct {
	ID string
	// VisitorRole is the leg that reaches the visitor; the other one is
	// the company's operators.
	VisitorRole Role
	// Operators are the company's phones; the company leg rings them all at
	// once (RingAll) or one after the other. The PartySpec of the company's
	// role in CreateRequest is ignored.
	Operators []PartySpec
	RingAll   bool
	// MaxAttempts (1 + redials) and RedialInterval apply when the
	// visitor's leg fails unanswered.
	MaxAttempts    int
	RedialInterval time.Duration
	// NotBefore delays the first attempt (the campaign's opening hours).
	NotBefore     time.Time
	PriceMicros   int64
	PriceCurrency string
	CallbackOf    string
}

// Resolver turns a party into a dial string: numbers go out through the
// carrier gateway; endpoints are looked up (and may be busy-locked).
type Resolver interface {
	// DialString returns the dial string and, for endpoints, the endpoint's
	// defaults (caller ID, ring timeout) applied to the spec.
	Resolve(ctx context.Context, accountID string, p PartySpec) (Leg, error)
}

// DefaultHeartbeatTTL is Config.HeartbeatTTL's default.
const DefaultHeartbeatTTL = 15 * time.Second

// Config tunes the engine.
type Config struct {
	Instance           string        // this process's owner ID (stable across restarts: the pod name)
	DefaultRingTimeout time.Duration // default 30s
	MaxRingTimeout     time.Duration // default 120s
	MaxDuration        time.Duration // cap and default for max_duration_s; default 4h
	Workers            int           // event workers; events of one call always go to the same one; default 64
	// HeartbeatTTL is how long this instance counts as alive after its
	// last heartbeat (sent every third of it); after that the other
	// instances adopt its calls, waiting and live (adopt.go). Default 15s.
	HeartbeatTTL time.Duration
}

// Engine drives calls.
type Engine struct {
	cfg    Config
	sw     Switch
	store  Store
	pub    Publisher
	locks  Locker
	res    Resolver
	rater  Rater // nil: legs are not rated
	log    *slog.Logger
	now    func() time.Time
	stripe [256]sync.Mutex

	queues []chan SwitchEvent
	// live holds the calls this instance drives as last saved: the owner is
	// the only writer, so events need not read Redis back. A CAS conflict
	// (someone else wrote) drops the entry and the store is read again.
	live sync.Map // call ID -> *Call
	wg   sync.WaitGroup
	stop chan struct{}
	once sync.Once
	// timers wake calls waiting for a redial or for opening hours (call
	// ID -> *time.Timer); Recover re-arms them after a restart.
	timers sync.Map
	// awaitTimers end the waits for an agent (call ID -> *awaitTimer).
	awaitTimers sync.Map
	// leaving: this instance is shutting down and adopts nothing more.
	leaving atomic.Bool
	// others are the hangups seen of other instances' legs (adopt.go).
	others hangups
}

// NewEngine builds an engine and starts its event workers.
func NewEngine(cfg Config, sw Switch, store Store, pub Publisher, locks Locker, res Resolver, log *slog.Logger) *Engine {
	if cfg.DefaultRingTimeout <= 0 {
		cfg.DefaultRingTimeout = 30 * time.Second
	}
	if cfg.MaxRingTimeout <= 0 {
		cfg.MaxRingTimeout = 120 * time.Second
	}
	if cfg.MaxDuration <= 0 {
		cfg.MaxDuration = 4 * time.Hour
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 64
	}
	if cfg.HeartbeatTTL <= 0 {
		cfg.HeartbeatTTL = DefaultHeartbeatTTL
	}
	e := &Engine{cfg: cfg, sw: sw, store: store, pub: pub, locks: locks, res: res, log: log, now: time.Now, stop: make(chan struct{})}
	e.queues = make([]chan SwitchEvent, cfg.Workers)
	for i := range e.queues {
		e.queues[i] = make(chan SwitchEvent, 1024)
		e.wg.Add(1)
		go e.worker(e.queues[i])
	}
	e.wg.Add(2)
	go e.waiter()
	go e.adopter()
	return e
}

// UseRater makes the engine authorize every leg to a number with rating
// before dialing anything, and reserve each answered leg's time. Call it
// before the first Create.
func (e *Engine) UseRater(r Rater) { e.rater = r }

// Close stops the event workers after they drained what was queued.
func (e *Engine) Close() {
	e.once.Do(func() {
		close(e.stop)
		e.timers.Range(func(_, v any) bool { v.(*time.Timer).Stop(); return true })
		e.awaitTimers.Range(func(_, v any) bool { v.(*awaitTimer).t.Stop(); return true })
		e.wg.Wait()
	})
}

func (e *Engine) worker(q chan SwitchEvent) {
	defer e.wg.Done()
	for {
		select {
		case ev := <-q:
			e.handle(ev)
		case <-e.stop:
			for {
				select {
				case ev := <-q:
					e.handle(ev)
				default:
					return
				}
			}
		}
	}
}

// HandleEvent queues a FreeSWITCH event. Events of one call are handled in
// the order they arrive, by one worker.
func (e *Engine) HandleEvent(ev SwitchEvent) { e.enqueue(ev) }

func (e *Engine) enqueue(ev SwitchEvent) {
	key := ev.CallID
	if key == "" {
		key = ev.UUID
	}
	h := fnv.New32a()
	h.Write([]byte(key))
	select {
	case e.queues[int(h.Sum32())%len(e.queues)] <- ev:
	case <-e.stop:
	}
}

func (e *Engine) lock(id string) func() {
	h := fnv.New32a()
	h.Write([]byte(id))
	m := &e.stripe[h.Sum32()%uint32(len(e.stripe))]
	m.Lock()
	return m.Unlock
}

// action is a FreeSWITCH command decided by a state change, run after the
// state is saved.
type action func(ctx context.Context, e *Engine, c *Call) error

// Create validates a request, records the call and starts dialing. It
// returns the call at once (QUEUED or DIALING); progress is in events.
func (e *Engine) Create(ctx context.Context, req CreateRequest) (*Call, error) {
	if req.Mode == "" {
		req.Mode = ModeSequential
	}
	if req.Mode != ModeSequential && req.Mode != ModeSimultaneous {
		return nil, fmt.Errorf("%w: mode %q", ErrInvalid, req.Mode)
	}
	if req.Announcement != "" && !announcementRe.MatchString(req.Announcement) {
		return nil, fmt.Errorf("%w: announcement must be a file path or URL without spaces (at most 512 characters)", ErrInvalid)
	}
	if req.MaxDurationS < 0 || time.Duration(req.MaxDurationS)*time.Second > e.cfg.MaxDuration {
		return nil, fmt.Errorf("%w: max_duration_s must be between 0 and %d", ErrInvalid, int(e.cfg.MaxDuration/time.Second))
	}
	if req.MaxDurationS == 0 {
		req.MaxDurationS = int(e.cfg.MaxDuration / time.Second)
	}
	if req.ReminderTimeoutS < 0 || req.ReminderTimeoutS > MaxReminderTimeoutS {
		return nil, fmt.Errorf("%w: reminder_timeout_s must be between 0 and %d", ErrInvalid, MaxReminderTimeoutS)
	}
	req.Menu = req.Menu.clone() // validateBlast fills its defaults
	if req.AwaitAgent != nil {
		a := *req.AwaitAgent // validateAgentRoom fills its default
		req.AwaitAgent = &a
	}
	if err := validateAgentRoom(&req); err != nil {
		return nil, err
	}
	if err := validateBlast(&req); err != nil {
		return nil, err
	}
	// No second party (a campaign's company leg comes from its operators,
	// not from Second) makes the call announcement-only, unless its party
	// is for a room.
	single := req.Campaign == nil && req.Second == PartySpec{}
	room := req.Conference != "" || req.AwaitAgent != nil
	switch {
	case single && !room && req.Announcement == "":
		return nil, fmt.Errorf("%w: second is required unless the call is announcement-only", ErrInvalid)
	case single && req.Mode != ModeSequential:
		return nil, fmt.Errorf("%w: an announcement-only call is sequential", ErrInvalid)
	}
	c := &Call{
		ID: ids.NewV7(), AccountID: req.AccountID, Source: req.Source, Mode: req.Mode, Status: StatusQueued,
		Announcement: req.Announcement, AnnouncementOnly: single && !room, MaxDurationS: req.MaxDurationS, Variables: req.Variables,
		ReminderTimeoutS: req.ReminderTimeoutS, Owner: e.cfg.Instance, CreatedAt: e.now().UTC(), Attempt: 1, MaxAttempts: 1,
		Menu: req.Menu, MachineDetection: req.MachineDetection.Enabled, MachineMessage: req.MachineDetection.Message,
		Session: req.Conference, AwaitAgent: req.AwaitAgent,
	}
	var hunt Role
	if cc := req.Campaign; cc != nil {
		if err := e.campaignCall(c, cc); err != nil {
			return nil, err
		}
		hunt = c.VisitorLeg.other()
	}
	if c.Source == "" {
		c.Source = "API"
	}
	for _, p := range []struct {
		role Role
		spec PartySpec
	}{{RoleFirst, req.First}, {RoleSecond, req.Second}} {
		if p.role == RoleSecond && single {
			continue
		}
		if p.role == hunt {
			leg, err := e.resolveTargets(ctx, req.AccountID, req.Campaign)
			if err != nil {
				return nil, fmt.Errorf("%s party: %w", p.role, err)
			}
			leg.Role, leg.Status, leg.UUID = p.role, LegPending, ids.NewV4()
			*c.Leg(p.role) = leg
			continue
		}
		leg, err := e.res.Resolve(ctx, req.AccountID, p.spec)
		if err != nil {
			return nil, fmt.Errorf("%s party: %w", p.role, err)
		}
		leg.Role, leg.Status, leg.UUID = p.role, LegPending, ids.NewV4()
		if leg.RingTimeoutMS <= 0 {
			leg.RingTimeoutMS = int(e.cfg.DefaultRingTimeout / time.Millisecond)
		}
		if time.Duration(leg.RingTimeoutMS)*time.Millisecond > e.cfg.MaxRingTimeout {
			return nil, fmt.Errorf("%w: %s party: ring_timeout_ms above %d", ErrInvalid, p.role, int(e.cfg.MaxRingTimeout/time.Millisecond))
		}
		*c.Leg(p.role) = leg
	}
	if err := e.authorize(ctx, c); err != nil {
		return nil, err
	}
	node, err := e.sw.PickNode()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoSwitch, err)
	}
	c.Node = node
	// One active call per endpoint: the lock outlives the longest possible
	// call and is released when the call ends.
	ttl := time.Duration(c.MaxDurationS)*time.Second + 2*e.cfg.MaxRingTimeout + time.Minute
	for _, l := range []*Leg{&c.First, &c.Second} {
		if l.EndpointID == "" || len(l.Targets) > 0 {
			continue // a campaign's operators are taken when they are rung
		}
		ok, err := e.locks.Lock(ctx, endpointLockKey(l.EndpointID), c.ID, ttl)
		if err != nil {
			e.releaseLocks(ctx, c)
			return nil, fmt.Errorf("lock endpoint %s: %w", l.EndpointID, err)
		}
		if !ok {
			e.releaseLocks(ctx, c)
			return nil, fmt.Errorf("%w: endpoint %s is on another call", ErrEndpointBusy, l.EndpointID)
		}
		c.Locks = append(c.Locks, l.EndpointID)
	}
	e.record(c, EventCallQueued, "")
	c.Pending, c.outbox = c.outbox, nil
	// The call, its outbox included, is durable once this returns: the
	// request is answered now, and its events are published and its legs
	// dialed by the call's worker. A crash in between loses nothing: the
	// restarted instance publishes the outbox and reconciles the call.
	if err := e.store.Create(ctx, c); err != nil {
		e.releaseLocks(ctx, c)
		return nil, fmt.Errorf("store call: %w", err)
	}
	e.remember(c)
	if !c.NextAttemptAt.IsZero() {
		e.await(ctx, c)
	} else {
		e.enqueue(SwitchEvent{Name: evStart, CallID: c.ID})
	}
	return c, nil
}

// authorize asks rating about every leg to a number, both at once, before
// anything reaches the switch: a refused destination never rings.
func (e *Engine) authorize(ctx context.Context, c *Call) error {
	if e.rater == nil {
		return nil
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	rate := func(role Role, number string, set func(LegRating)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lr, err := e.rater.Authorize(ctx, c.AccountID, number, role, c.ID)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("%s party: %w", role, err))
				return
			}
			set(lr)
		}()
	}
	for _, l := range []*Leg{&c.First, &c.Second} {
		if len(l.Targets) > 0 {
			// A company's operators: those with phone numbers are rated,
			// each on its own.
			for i := range l.Targets {
				t := &l.Targets[i]
				if t.Number != "" {
					rate(l.Role, t.Number, func(lr LegRating) { t.Rate, t.Direction, t.MaxDurationS = lr.Rate, lr.Direction, lr.MaxDurationS })
				}
			}
			continue
		}
		if l.Number == "" {
			continue // the account's own endpoint: not rated
		}
		rate(l.Role, l.Number, func(lr LegRating) { l.Rate, l.Direction, l.MaxDurationS = lr.Rate, lr.Direction, lr.MaxDurationS })
	}
	wg.Wait()
	for _, l := range []*Leg{&c.First, &c.Second} {
		if len(l.Targets) > 0 {
			l.useTarget(l.Target)
		}
	}
	if len(errs) > 1 {
		return errors.Join(errs...)
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return nil
}

// evStart is the engine's own event that starts dialing a new call.
const evStart = "\x00start"

// evRefused is the engine's own event for a leg rating refused when it was
// about to be dialed.
const evRefused = "\x00refused"

// evPlayFailed is the engine's own event for an announcement FreeSWITCH
// would not play (uuid_broadcast failed).
const evPlayFailed = "\x00play-failed"

// evMediaFailed is the engine's own event for a leg FreeSWITCH would not
// send to a ringback extension; its Application is the MediaStep.
const evMediaFailed = "\x00media-failed"

// LiveCalls lists an account's calls that have not ended, oldest first
// (IDs are time-ordered).
func (e *Engine) LiveCalls(ctx context.Context, account string) ([]*Call, error) {
	all, err := e.store.LiveForAccount(ctx, account)
	if err != nil {
		return nil, err
	}
	var out []*Call
	for _, c := range all {
		if c.AccountID == account && !c.Status.Final() {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Get returns a call, live or ended.
func (e *Engine) Get(ctx context.Context, id string) (*Call, error) {
	return e.store.Get(ctx, id)
}

// Hangup ends a call: CANCELED before the parties were connected,
// COMPLETED after (an announcement-only call: CANCELED until its
// announcement has played to the end).
func (e *Engine) Hangup(ctx context.Context, id, cause string) (*Call, error) {
	if cause == "" {
		cause = "NORMAL_CLEARING"
	}
	unlock := e.lock(id)
	defer unlock()
	c, err := e.load(ctx, id)
	if err != nil {
		return nil, err
	}
	if c.Status.Final() {
		return c, nil
	}
	var acts []action
	if c.Ending == "" {
		if c.BridgedAt.IsZero() {
			c.setEnding(StatusCanceled, "", ReasonCanceled)
		} else {
			c.setEnding(StatusCompleted, "", "")
		}
	}
	for _, r := range []Role{RoleFirst, RoleSecond} {
		l := c.Leg(r)
		if l.Status.Up() {
			acts = append(acts, hangupAction(r, cause))
		} else if l.Status == LegPending {
			l.Status = LegFailed
			l.HangupCause = "ORIGINATOR_CANCEL"
		}
	}
	e.maybeFinish(ctx, c)
	if err := e.commit(ctx, c, acts); err != nil {
		return nil, err
	}
	return c, nil
}

// ErrNotReleasable: Release found the call answered, ended, or not ringing
// long enough.
var ErrNotReleasable = errors.New("call not releasable")

// Release ends a call whose first party has not answered and whose first
// leg has rung at least minRing (a predictive dialer's release of a call no
// agent would take; the FCC and Ofcom allow it after 15 s of ringing). The
// call ends FAILED on the first leg with reason NO_ANSWER and the leg's
// cause ORIGINATOR_CANCEL. Answered, over, or not ringing that long:
// ErrNotReleasable, and the call goes on. Should the party answer while
// the hangup is on its way, the call ends COMPLETED and abandoned.
func (e *Engine) Release(ctx context.Context, id string, minRing time.Duration) (*Call, error) {
	unlock := e.lock(id)
	defer unlock()
	c, err := e.load(ctx, id)
	if err != nil {
		return nil, err
	}
	l := &c.First
	now := e.now().UTC()
	switch {
	case c.Status.Final() || c.Ending != "":
		return nil, fmt.Errorf("call %s is over: %w", id, ErrNotReleasable)
	case l.Status != LegRinging || c.RingSeen.IsZero():
		return nil, fmt.Errorf("call %s: first party not ringing (%s): %w", id, l.Status, ErrNotReleasable)
	case now.Sub(c.RingSeen) < minRing:
		return nil, fmt.Errorf("call %s has rung %s, less than %s: %w", id, now.Sub(c.RingSeen).Round(time.Millisecond), minRing, ErrNotReleasable)
	}
	c.Released = true
	c.setEnding(StatusFailed, RoleFirst, ReasonNoAnswer)
	if err := e.commit(ctx, c, []action{hangupAction(RoleFirst, causeOriginatorCancel)}); err != nil {
		return nil, err
	}
	return c, nil
}

// causeOriginatorCancel is FreeSWITCH's cause for a call its originator
// ended before the answer.
const causeOriginatorCancel = "ORIGINATOR_CANCEL"

// Recover brings this instance's live calls back in line with FreeSWITCH.
// It runs at start (a restarted origination picks its calls up where they
// were) and after an event-socket reconnect (events may have been missed):
// pending events are published again, and legs FreeSWITCH no longer has are
// ended as if their hangup had been seen. With nodeRestarted set for a node
// (its Core-UUID changed), every leg on it is gone without asking.
func (e *Engine) Recover(ctx context.Context, nodeRestarted map[string]bool) error {
	calls, err := e.store.Live(ctx, e.cfg.Instance)
	if err != nil {
		return fmt.Errorf("recover live calls: %w", err)
	}
	forEach(calls, func(c *Call) {
		if err := e.recoverCall(ctx, c.ID, nodeRestarted[c.Node]); err != nil {
			e.log.Error("recover call", "call_id", c.ID, "err", err)
		}
	})
	return nil
}

// recoverWorkers bounds the calls recovered (or adopted) at once: each is a
// few round trips to Redis and to the switch, which overlap; each call
// under its own lock.
const recoverWorkers = 16

// forEach runs fn for every item, recoverWorkers at a time.
func forEach[T any](items []T, fn func(T)) {
	var wg sync.WaitGroup
	slots := make(chan struct{}, recoverWorkers)
	for _, it := range items {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			fn(it)
		})
	}
	wg.Wait()
}

func (e *Engine) recoverCall(ctx context.Context, id string, nodeGone bool) error {
	for attempt := 0; ; attempt++ {
		err := e.recoverOnce(ctx, id, nodeGone)
		if !errors.Is(err, ErrConflict) || attempt == 2 {
			return err
		}
		// Written meanwhile: by an API call, or by another instance that
		// adopted it while this one could not reach Redis. Read it again.
		e.live.Delete(id)
	}
}

func (e *Engine) recoverOnce(ctx context.Context, id string, nodeGone bool) error {
	unlock := e.lock(id)
	defer unlock()
	c, err := e.load(ctx, id)
	if err != nil {
		return err
	}
	if c.Owner != e.cfg.Instance {
		return nil // adopted by another instance
	}
	if c.Status == StatusQueued {
		// Created but not started (or starting right now), or waiting for
		// a redial: its worker publishes the outbox and dials when due;
		// evStart is idempotent.
		if !c.NextAttemptAt.IsZero() {
			e.flush(ctx, c)
			e.await(ctx, c)
			return nil
		}
		e.enqueue(SwitchEvent{Name: evStart, CallID: c.ID})
		return nil
	}
	e.flush(ctx, c)
	if c.Status.Final() {
		return e.store.Finish(ctx, c)
	}
	// An end decided before; one decided below comes with its own actions.
	endedBefore := c.Ending != ""
	var acts []action
	for _, r := range []Role{RoleFirst, RoleSecond} {
		// Operators rung at once: a fork gone unseen ends as if hung up.
		l := c.Leg(r)
		for i := len(l.Forks) - 1; i >= 0; i-- {
			f := l.Forks[i]
			if !f.Status.Up() || (!nodeGone && f.Status == LegDialing && e.now().Sub(f.DialedAt) < time.Duration(l.Targets[f.Target].RingTimeoutMS)*time.Millisecond+5*time.Second) {
				continue
			}
			exists := false
			if !nodeGone {
				if exists, err = e.sw.Exists(ctx, c.Node, f.UUID); err != nil {
					return fmt.Errorf("check channel %s: %w", f.UUID, err)
				}
			}
			if !exists {
				ev, seen := e.others.get(f.UUID)
				if !seen {
					ev = SwitchEvent{Name: "CHANNEL_HANGUP_COMPLETE", UUID: f.UUID, Cause: "NORMAL_TEMPORARY_FAILURE"}
				}
				acts = append(acts, e.applyFork(ctx, c, r, i, ev)...)
			}
		}
	}
	for _, r := range []Role{RoleFirst, RoleSecond} {
		l := c.Leg(r)
		if !l.Status.Up() {
			continue
		}
		// A leg still dialing may not have a channel yet: its BACKGROUND_JOB
		// is on the way. Only once it is overdue is absence conclusive.
		if !nodeGone && l.Status == LegDialing && e.now().Sub(l.DialedAt) < time.Duration(l.RingTimeoutMS)*time.Millisecond+5*time.Second {
			continue
		}
		exists := false
		if !nodeGone {
			if exists, err = e.sw.Exists(ctx, c.Node, l.UUID); err != nil {
				return fmt.Errorf("check leg %s: %w", l.UUID, err)
			}
		}
		if exists {
			var more []action
			switch {
			case r == RoleFirst && c.Media != "" && l.Status == LegAnswered:
				more, err = e.resumeMedia(ctx, c)
			case r == RoleFirst && c.waiting():
				more, err = e.resumeWait(ctx, c)
			}
			if err != nil {
				return err
			}
			acts = append(acts, more...)
			continue
		}
		cause, sip, at := "NORMAL_TEMPORARY_FAILURE", 0, e.now().UTC()
		if l.Status == LegAnswered {
			cause = "NORMAL_CLEARING"
		}
		if ev, seen := e.others.get(l.UUID); seen {
			// Adopted: this instance saw how and when the leg ended.
			cause, sip, at = ev.Cause, ev.SIPStatus, ev.At
		} else {
			e.log.Warn("leg gone from FreeSWITCH while we were not looking", "call_id", c.ID, "leg_uuid", l.UUID, "node_restarted", nodeGone)
		}
		if next, ok := e.channelEnded(c, r, cause, sip, at); ok {
			acts = append(acts, next...)
			continue
		}
		acts = append(acts, e.legEnded(c, r, cause, sip, at)...)
	}
	if endedBefore {
		// The call was decided to end while FreeSWITCH may not have heard
		// (a hangup sent while disconnected): say it again. Not to a party
		// still hearing its last message (a voicemail drop, a queue's
		// goodbye, the safe harbour), which ends the leg when it ends
		// (their guards, sched_hangup, hold if its end goes unseen): only
		// once the leg is parked again.
		for _, r := range []Role{RoleFirst, RoleSecond} {
			if !c.Leg(r).Status.Up() {
				continue
			}
			if r == RoleFirst && (c.Media == MediaVoicemail || c.Media == MediaGoodbye || c.Abandoned) {
				vars, err := e.sw.Vars(ctx, c.Node, c.First.UUID, "current_application")
				if err != nil {
					return fmt.Errorf("read the variables of leg %s: %w", c.First.UUID, err)
				}
				if app := vars["current_application"]; app != "park" && app != "" {
					continue
				}
			}
			acts = append(acts, hangupAction(r, "NORMAL_CLEARING"))
		}
	}
	if len(c.outbox) == 0 && len(acts) == 0 {
		return nil
	}
	return e.commit(ctx, c, acts)
}

// handle applies one FreeSWITCH event to its call.
func (e *Engine) handle(ev SwitchEvent) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id := ev.CallID
	if id == "" {
		var err error
		if id, err = e.store.CallForLeg(ctx, ev.UUID); err != nil {
			return // not one of ours
		}
	}
	log := e.log.With("call_id", id, "leg_uuid", ev.UUID, "event", ev.Name)
	for attempt := 0; attempt < 3; attempt++ {
		unlock := e.lock(id)
		c, err := e.load(ctx, id)
		if err != nil {
			unlock()
			if !errors.Is(err, ErrNotFound) {
				log.Error("load call", "err", err)
			}
			return
		}
		if c.Owner != e.cfg.Instance {
			unlock()
			if ev.Name == "CHANNEL_HANGUP_COMPLETE" && ev.UUID != "" {
				// Should its owner be gone, whoever adopts the call
				// ends the leg as it ended.
				if ev.At.IsZero() {
					ev.At = e.now().UTC()
				}
				e.others.add(ev, e.now())
			}
			return // another instance drives it
		}
		role, fork := ev.locate(c)
		if role == "" && ev.Name == evStart {
			role = RoleFirst
		}
		if role == "" {
			unlock()
			return
		}
		var acts []action
		if fork >= 0 {
			acts = e.applyFork(ctx, c, role, fork, ev)
		} else {
			acts = e.apply(ctx, c, role, ev)
		}
		err = e.commit(ctx, c, acts)
		unlock()
		if errors.Is(err, ErrConflict) {
			e.live.Delete(id)
			continue
		}
		if err != nil {
			log.Error("apply event", "err", err)
		}
		return
	}
}

// load returns a private copy of a call: from memory when this instance
// saved it last, else from the store.
func (e *Engine) load(ctx context.Context, id string) (*Call, error) {
	if v, ok := e.live.Load(id); ok {
		return v.(*Call).clone(), nil
	}
	return e.store.Get(ctx, id)
}

// remember keeps the saved state of a live call (and forgets an ended one).
func (e *Engine) remember(c *Call) {
	if c.Status.Final() || c.Owner != e.cfg.Instance {
		e.live.Delete(c.ID)
		return
	}
	e.live.Store(c.ID, c.clone())
}

// clone copies a call deeply enough that changing the copy never changes
// the original (legs are values; slices are copied; variables are not
// changed by the engine after creation).
func (c *Call) clone() *Call {
	cp := *c
	cp.Pending = append([]Pending(nil), c.Pending...)
	cp.Locks = append([]string(nil), c.Locks...)
	cp.Attempts = slices.Clone(c.Attempts)
	cp.First.Forks, cp.First.Tries = slices.Clone(c.First.Forks), slices.Clone(c.First.Tries)
	cp.Second.Forks, cp.Second.Tries = slices.Clone(c.Second.Forks), slices.Clone(c.Second.Tries)
	cp.Menu = c.Menu.clone()
	if c.AwaitAgent != nil {
		a := *c.AwaitAgent
		cp.AwaitAgent = &a
	}
	cp.outbox = nil
	return &cp
}

// locate finds which leg of c the event is about, and which of its forks
// (-1: the leg's own channel).
func (ev SwitchEvent) locate(c *Call) (Role, int) {
	if ev.UUID == "" {
		return "", -1 // an announcement-only call's absent leg has no UUID either
	}
	switch ev.UUID {
	case c.First.UUID:
		return RoleFirst, -1
	case c.Second.UUID:
		return RoleSecond, -1
	}
	for _, l := range []*Leg{&c.First, &c.Second} {
		for i := range l.Forks {
			if l.Forks[i].UUID == ev.UUID {
				return l.Role, i
			}
		}
	}
	return "", -1
}

// apply is the state machine: it changes c for one event and returns the
// FreeSWITCH commands that follow.
func (e *Engine) apply(ctx context.Context, c *Call, role Role, ev SwitchEvent) []action {
	l := c.Leg(role)
	now := ev.At
	if now.IsZero() {
		now = e.now().UTC()
	}
	var acts []action
	switch ev.Name {
	case evStart:
		if c.Status != StatusQueued {
			return nil // already started (a replay after a restart)
		}
		var acts []action
		if !c.NextAttemptAt.IsZero() {
			if c.NextAttemptAt.Sub(e.now()) > 5*time.Millisecond {
				return nil // early: its timer is armed
			}
			c.NextAttemptAt = time.Time{}
			acts = append(acts, unwaitAction)
		}
		c.AttemptStartedAt = e.now().UTC()
		if c.Mode == ModeSimultaneous {
			return append(acts, e.dial(c, RoleFirst), e.dial(c, RoleSecond))
		}
		return append(acts, e.dial(c, RoleFirst))
	case "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA":
		e.legRinging(c, role, now)
	case "CHANNEL_ANSWER":
		if !l.Status.Up() || l.Status == LegAnswered {
			return nil
		}
		l.Status, l.AnsweredAt = LegAnswered, now
		if c.AnsweredAt.IsZero() {
			c.AnsweredAt = now
		}
		if c.Ending != "" {
			// The call is ending (canceled, the other party gone): a late
			// answer is hung up at once.
			if c.Released && role == RoleFirst {
				// Answered as it was released: a person was hung up on,
				// which the regulators count as abandoned.
				c.Abandoned = true
				c.setEnding(StatusCompleted, "", "")
			}
			e.record(c, EventLegAnswered, role)
			return []action{hangupAction(role, "NORMAL_CLEARING")}
		}
		if c.Status != StatusBridged {
			c.Status = StatusAnswered
		}
		e.record(c, EventLegAnswered, role)
		// The operators still ringing lost the race.
		for _, f := range l.Forks {
			if f.Status.Up() {
				acts = append(acts, hangupUUIDAction(f.UUID, causeLoseRace))
			}
		}
		if l.Rate != nil && l.MaxDurationS > 0 && e.rater != nil {
			// Prepaid (rating limited the leg): hold its cost now.
			acts = append(acts, reserveAction(role))
		}
		switch {
		case c.First.Status == LegAnswered && c.Second.Status == LegAnswered:
			acts = append(acts, bridgeAction)
		case c.Mode == ModeSequential && role == RoleFirst:
			// Machine detection, the menu, the announcement or the
			// second party.
			acts = append(acts, e.firstAnswered(c)...)
			if c.AnnouncementOnly && c.MaxDurationS > 0 {
				// No bridge will start the clock: the leg's time counts
				// from its answer.
				acts = append(acts, maxDurationAction(time.Duration(c.MaxDurationS)*time.Second))
			}
		}
	case "PLAYBACK_STOP":
		if c.Media == MediaVoicemail && role == RoleFirst {
			// voicemail_drop plays one file, the message, and hangs up. A
			// playback stopped by the machine's own hangup fires from a
			// channel already hanging up.
			if !ev.ChannelDown {
				c.MachineMessageLeft = true
			}
			return nil
		}
		if c.Menu != nil {
			// The menu's prompt plays inside play_and_get_digits; its end
			// is the application's. A queue's hold music ends at the
			// transfer to the agent's room, or to goodbye (which hangs up
			// after its message).
			return nil
		}
		if ev.ChannelDown {
			// FreeSWITCH stops a playback when its channel hangs up, and
			// says so with Playback-Status "done" all the same: the party
			// hung up during the announcement, which did not finish. The
			// hangup that follows ends the leg.
			return nil
		}
		if role == RoleFirst && (c.AwaitAgent != nil || c.Session != "") {
			return e.roomPlaybackStopped(c)
		}
		if role == RoleFirst && c.Announcement != "" && !c.Announced && c.Ending == "" {
			c.Announced = true
			e.record(c, EventAnnouncementFinished, RoleFirst)
			switch {
			case c.AnnouncementOnly && l.Status == LegAnswered:
				// Played to the end: the call has done its job.
				c.HangupCause = "NORMAL_CLEARING"
				c.setEnding(StatusCompleted, "", "")
				acts = append(acts, hangupAction(RoleFirst, "NORMAL_CLEARING"))
			case c.Second.Status == LegPending && c.First.Status == LegAnswered:
				acts = append(acts, e.dial(c, RoleSecond))
			}
		}
	case evPlayFailed:
		if c.Abandoned && l.Status == LegAnswered {
			// The safe-harbour message would not play.
			return []action{hangupAction(RoleFirst, "NORMAL_CLEARING")}
		}
		if !c.AnnouncementOnly || l.Status != LegAnswered || c.Announced || c.Ending != "" {
			return nil
		}
		// Nothing else would end the leg before its maximum duration: the
		// party would wait in silence, and pay for it.
		c.HangupCause = "NORMAL_TEMPORARY_FAILURE"
		c.setEnding(StatusFailed, RoleFirst, ReasonInternal)
		acts = append(acts, hangupAction(RoleFirst, "NORMAL_TEMPORARY_FAILURE"))
	case "CHANNEL_EXECUTE_COMPLETE":
		if role == RoleFirst {
			acts = e.mediaEvent(c, ev)
		}
	case evMediaFailed:
		acts = e.mediaFailed(c, ev)
	case evConference:
		acts = e.roomEvent(c, role, ev, now)
	case evAwaitTimeout:
		acts = e.awaitTimedOut(c)
	case "CHANNEL_BRIDGE":
		if c.BridgedAt.IsZero() && c.Ending == "" {
			c.BridgedAt = now
			c.Status = StatusBridged
			e.record(c, EventCallBridged, "")
			if c.MaxDurationS > 0 {
				acts = append(acts, maxDurationAction(time.Duration(c.MaxDurationS)*time.Second))
			}
		}
	case evRefused:
		if l.Status != LegDialing {
			return nil
		}
		acts = e.legEndedWith(c, role, causeBarred, 0, now, ReasonNotAuthorized)
	case "BACKGROUND_JOB":
		if ev.JobOK || !l.Status.Up() || l.Status == LegAnswered {
			return nil
		}
		if next, ok := e.channelEnded(c, role, ev.Cause, 0, now); ok {
			return next
		}
		acts = e.legEnded(c, role, ev.Cause, 0, now)
	case "CHANNEL_HANGUP_COMPLETE", "CHANNEL_HANGUP":
		if !l.Status.Up() {
			return nil
		}
		if next, ok := e.channelEnded(c, role, ev.Cause, ev.SIPStatus, now); ok {
			return next
		}
		acts = e.legEnded(c, role, ev.Cause, ev.SIPStatus, now)
	}
	return acts
}

// legRinging marks a dialing leg ringing (its own channel's or a fork's
// first 180/183).
func (e *Engine) legRinging(c *Call, role Role, now time.Time) {
	l := c.Leg(role)
	if l.Status != LegDialing {
		return
	}
	l.Status, l.RingingAt = LegRinging, now
	if role == RoleFirst {
		c.RingSeen = e.now().UTC()
	}
	if c.Status == StatusDialing {
		c.Status = StatusRinging
	}
	e.record(c, EventLegRinging, role)
}

// legEnded records a leg's end and decides what happens to the call.
func (e *Engine) legEnded(c *Call, role Role, cause string, sip int, now time.Time) []action {
	return e.legEndedWith(c, role, cause, sip, now, "")
}

// legEndedWith is legEnded with the failure reason of an unanswered leg
// given rather than derived from its cause.
func (e *Engine) legEndedWith(c *Call, role Role, cause string, sip int, now time.Time, reason FailureReason) []action {
	l, other := c.Leg(role), c.Other(role)
	answered := l.Status == LegAnswered
	if answered {
		l.Status = LegHungup
	} else {
		l.Status = LegFailed
	}
	l.HangupCause, l.SIPStatus, l.EndedAt = cause, sip, now
	if answered && now.After(l.AnsweredAt) {
		// Whole seconds, truncated, as FreeSWITCH's billsec: the hangup
		// that ends a leg's paid time is scheduled when its answer is
		// handled, a few milliseconds late, and those must not bill another
		// increment.
		l.Billsec = int(now.Sub(l.AnsweredAt) / time.Second)
		if l.Rate != nil {
			l.CostMicros = billing.Cost(l.Rate.Billing(), int64(l.Billsec))
		}
	}
	e.record(c, EventLegHangup, role)
	var acts []action
	if c.Ending == "" {
		c.HangupCause = cause
		switch {
		case !c.BridgedAt.IsZero():
			c.setEnding(StatusCompleted, "", "")
		case !answered:
			if reason == "" {
				reason = ReasonForCause(cause)
			}
			c.setEnding(StatusFailed, role, reason)
		case cause == causeBarred:
			// Answered, then cut because the balance could not pay for it.
			c.setEnding(StatusFailed, role, ReasonNotAuthorized)
		case c.AwaitAgent != nil && (!c.AwaitUntil.IsZero() || c.Conference != ""):
			// Gone while waiting for an agent (or being connected to
			// one): an answered call the party ended, not an abandoned
			// one.
			c.setEnding(StatusCompleted, "", "")
		default:
			// Answered, then gone before the other party was connected
			// (an announcement-only call: before its announcement ended,
			// so the party did not hear it all).
			c.setEnding(StatusFailed, role, ReasonCanceled)
		}
	}
	switch {
	case other.Status.Up():
		hc := "NORMAL_CLEARING"
		if other.Status != LegAnswered {
			hc = "ORIGINATOR_CANCEL"
		}
		acts = append(acts, hangupAction(other.Role, hc))
	case other.Status == LegPending:
		other.Status = LegFailed
		other.HangupCause = "ORIGINATOR_CANCEL"
	}
	e.maybeFinish(context.Background(), c)
	return acts
}

// maybeFinish ends the call once no leg can still be up.
func (e *Engine) maybeFinish(ctx context.Context, c *Call) {
	if c.Status.Final() || c.First.Status.Up() || c.Second.Status.Up() {
		return
	}
	if e.redial(c) {
		return
	}
	end := c.Ending
	if end == "" {
		end = StatusCompleted
	}
	c.Status = end
	c.EndedAt = e.now().UTC()
	if t := lastEnd(c); !t.IsZero() {
		c.EndedAt = t
	}
	if c.CampaignID != "" {
		c.Outcome = outcome(c)
	}
	switch end {
	case StatusCompleted:
		e.record(c, EventCallCompleted, "")
	case StatusCanceled:
		e.record(c, EventCallCanceled, "")
	default:
		e.record(c, EventCallFailed, c.FailedLeg)
	}
}

func lastEnd(c *Call) time.Time {
	t := c.First.EndedAt
	if c.Second.EndedAt.After(t) {
		t = c.Second.EndedAt
	}
	return t
}

func (c *Call) setEnding(s Status, failed Role, reason FailureReason) {
	c.Ending, c.FailedLeg, c.FailureReason = s, failed, reason
}

// record appends an event to the call's outbox.
func (e *Engine) record(c *Call, t EventType, leg Role) {
	c.Seq++
	snap := *c
	snap.Version, snap.Pending, snap.outbox = 0, nil, nil
	snap.Locks = nil
	snap.First.Forks, snap.Second.Forks = slices.Clone(c.First.Forks), slices.Clone(c.Second.Forks)
	c.outbox = append(c.outbox, Pending{Seq: c.Seq, Type: t, Leg: leg, At: e.now().UTC(), Call: &snap})
}

// dial marks a leg dialing and returns the originate command.
func (e *Engine) dial(c *Call, role Role) action {
	l := c.Leg(role)
	if len(l.Targets) > 0 {
		return e.dialTargets(c, role)
	}
	l.Status, l.DialedAt = LegDialing, e.now().UTC()
	if c.Status == StatusQueued {
		c.Status = StatusDialing
		e.record(c, EventCallDialing, role)
	} else {
		e.record(c, EventLegDialing, role)
	}
	leg := *l
	// The second party of a sequential call is dialed once the first has
	// answered, maybe minutes after the call was authorized: ask rating
	// again (a blocklist or the balance may have changed).
	recheck := e.rater != nil && leg.Number != "" && role == RoleSecond && c.Mode == ModeSequential
	return func(ctx context.Context, e *Engine, c *Call) error {
		if recheck {
			_, err := e.rater.Authorize(ctx, c.AccountID, leg.Number, role, c.ID)
			switch {
			case errors.Is(err, ErrRatingUnavailable):
				// Authorized at creation; a rating outage now does not undo that.
				e.log.Warn("re-authorize the leg; dialing on the authorization given at creation", "call_id", c.ID, "leg_uuid", leg.UUID, "err", err)
			case err != nil:
				e.log.Info("rating refused the leg when it was to be dialed", "call_id", c.ID, "leg_uuid", leg.UUID, "err", err)
				go e.HandleEvent(SwitchEvent{Node: c.Node, Name: evRefused, UUID: leg.UUID, CallID: c.ID, At: e.now().UTC()})
				return nil
			}
		}
		vars := map[string]string{
			"ringback_call_id": c.ID,
			"ringback_leg":     string(role),
			"ringback_account": c.AccountID,
		}
		if c.Attempt > 1 {
			// A redial's new channel: BACKGROUND_JOB events find the call
			// through this index.
			if err := e.store.IndexLeg(ctx, leg.UUID, c.ID); err != nil {
				return err
			}
		}
		return e.sw.Originate(ctx, c.Node, OriginateLeg{
			UUID: leg.UUID, DialString: leg.DialString, CallerIDNumber: leg.CallerIDNumber,
			CallerIDName: leg.CallerIDName, RingTimeout: time.Duration(leg.RingTimeoutMS) * time.Millisecond,
			Variables: vars,
		})
	}
}

func bridgeAction(ctx context.Context, e *Engine, c *Call) error {
	return e.sw.Bridge(ctx, c.Node, c.First.UUID, c.Second.UUID)
}

func hangupAction(role Role, cause string) action {
	return func(ctx context.Context, e *Engine, c *Call) error {
		l := c.Leg(role)
		for _, f := range l.Forks {
			if f.Status.Up() {
				if err := e.sw.Hangup(ctx, c.Node, f.UUID, cause); err != nil {
					e.log.Warn("hang up a fork", "call_id", c.ID, "leg_uuid", f.UUID, "err", err)
				}
			}
		}
		return e.sw.Hangup(ctx, c.Node, l.UUID, cause)
	}
}

func playAction(path string) action {
	return func(ctx context.Context, e *Engine, c *Call) error {
		err := e.sw.Play(ctx, c.Node, c.First.UUID, path)
		if err != nil && c.AnnouncementOnly {
			// A channel that hung up while its answer was being handled
			// refuses the playback too, and the reply can overtake its
			// CHANNEL_HANGUP_COMPLETE: that party left, which its hangup
			// event says. Only a live channel that would not play failed.
			if up, xerr := e.sw.Exists(ctx, c.Node, c.First.UUID); xerr == nil && !up {
				return err
			}
			go e.HandleEvent(SwitchEvent{Node: c.Node, Name: evPlayFailed, UUID: c.First.UUID, CallID: c.ID, At: e.now().UTC()})
		}
		return err
	}
}

// causeBarred is the hangup cause of a leg cut for want of balance.
const causeBarred = "OUTGOING_CALL_BARRED"

// reserveAction holds an answered leg's cost on the balance and schedules
// its hangup when the time paid for runs out. Should rating not answer,
// the limit it gave at authorization holds.
func reserveAction(role Role) action {
	return func(ctx context.Context, e *Engine, c *Call) error {
		l := c.Leg(role)
		granted, err := e.rater.Reserve(ctx, c, role)
		if err != nil {
			e.log.Warn("reserve the leg's time; keeping the limit given at authorization", "call_id", c.ID,
				"leg_uuid", l.UUID, "max_duration_s", l.MaxDurationS, "err", err)
			granted = l.MaxDurationS
		} else if granted <= 0 {
			e.log.Info("balance spent since the leg was authorized: hanging it up", "call_id", c.ID, "leg_uuid", l.UUID)
			return e.sw.Hangup(ctx, c.Node, l.UUID, causeBarred)
		}
		return e.sw.HangupAfter(ctx, c.Node, l.UUID, time.Duration(granted)*time.Second, "ALLOTTED_TIMEOUT")
	}
}

func maxDurationAction(d time.Duration) action {
	return func(ctx context.Context, e *Engine, c *Call) error {
		return e.sw.HangupAfter(ctx, c.Node, c.First.UUID, d, "ALLOTTED_TIMEOUT")
	}
}

// commit saves the call, publishes its outbox and runs the commands the
// change decided. A command that fails is turned into the event FreeSWITCH
// would have sent (a failed originate ends the leg).
func (e *Engine) commit(ctx context.Context, c *Call, acts []action) error {
	pending := c.outbox
	c.outbox = nil
	c.Pending = append(c.Pending, pending...)
	if c.Status.Final() {
		// Before the final state is visible: whoever sees the call ended
		// may place the endpoint's next call at once.
		e.releaseLocks(ctx, c)
	}
	if err := e.store.Update(ctx, c); err != nil {
		return err
	}
	e.flush(ctx, c)
	e.remember(c)
	if c.Status == StatusQueued && !c.NextAttemptAt.IsZero() {
		// Waiting for a redial: the operators are free meanwhile.
		e.releaseLocks(ctx, c)
		e.await(ctx, c)
	}
	if c.Status.Final() {
		if err := e.store.Finish(ctx, c); err != nil {
			e.log.Error("finish call", "call_id", c.ID, "err", err)
		}
		e.stopAwaitTimer(c.ID)
	}
	for _, a := range acts {
		if err := a(ctx, e, c); err != nil {
			e.log.Warn("FreeSWITCH command failed", "call_id", c.ID, "err", err)
			e.commandFailed(c, err)
		}
	}
	return nil
}

// commandFailed feeds a failed command back as a synthetic event, handled
// in order after what is queued for the call.
func (e *Engine) commandFailed(c *Call, err error) {
	var ce interface{ Cause() string }
	cause := "NORMAL_TEMPORARY_FAILURE"
	if errors.As(err, &ce) && ce.Cause() != "" {
		cause = ce.Cause()
	}
	for _, l := range []*Leg{&c.First, &c.Second} {
		if l.Status == LegDialing {
			go e.HandleEvent(SwitchEvent{Node: c.Node, Name: "BACKGROUND_JOB", UUID: l.UUID, CallID: c.ID, Cause: cause, At: e.now().UTC()})
		}
	}
}

// flush publishes the call's outbox and clears what was published.
func (e *Engine) flush(ctx context.Context, c *Call) {
	if len(c.Pending) == 0 {
		return
	}
	done := 0
	for _, p := range c.Pending {
		if err := e.pub.Publish(ctx, c, p); err != nil {
			e.log.Warn("publish event; will retry", "call_id", c.ID, "seq", p.Seq, "err", err)
			break
		}
		done++
	}
	// Published entries leave the stored outbox with the call's next save
	// rather than with a save of their own: that halves the writes per
	// event. Should this instance die first, the next owner publishes them
	// again under the same message IDs; JetStream drops the duplicates
	// within its window, and consumers deduplicate by event_id anyway.
	c.Pending = c.Pending[done:]
}

func (e *Engine) releaseLocks(ctx context.Context, c *Call) {
	ids := slices.Clone(c.Locks)
	for _, l := range []*Leg{&c.First, &c.Second} {
		// Operators are locked when rung; whichever are still held go now
		// (releasing one held by another call is a no-op).
		for _, t := range l.Targets {
			if t.EndpointID != "" && !slices.Contains(ids, t.EndpointID) {
				ids = append(ids, t.EndpointID)
			}
		}
	}
	for _, id := range ids {
		if err := e.locks.Unlock(ctx, endpointLockKey(id), c.ID); err != nil {
			e.log.Warn("release endpoint", "endpoint_id", id, "call_id", c.ID, "err", err)
		}
	}
}

func endpointLockKey(id string) string { return "origination:endpoint-busy:" + id }
