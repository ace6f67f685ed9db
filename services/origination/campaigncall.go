package origination

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ringback/ringback/services/internal/ids"
)

// What a click-to-call campaign adds to the engine: the company's side is
// a leg with several targets (its operators), rung all at once or one
// after the other; a visitor who could not be reached is redialed; a call
// may wait for the campaign's opening hours.

// FreeSWITCH's cause for the losers of a group dial.
const causeLoseRace = "LOSE_RACE"

// causeBusy is what an operator already on a call looks like.
const causeBusy = "USER_BUSY"

// The click-to-call spec's outcomes.
const (
	OutcomeCompleted       = "COMPLETED"
	OutcomeFailedToUser    = "FAILED CALLING TO USER"
	OutcomeFailedToCompany = "FAILED CALLING TO COMPANY"
	OutcomeCanceled        = "CANCELED"
)

// Limits of a campaign call.
const (
	MaxOperators   = 20
	MaxAttempts    = 11 // the first and 10 redials
	MaxRedialDelay = time.Hour
)

func (r Role) other() Role {
	if r == RoleFirst {
		return RoleSecond
	}
	return RoleFirst
}

// campaignCall validates and applies a campaign's part of a request.
func (e *Engine) campaignCall(c *Call, cc *CampaignCall) error {
	switch {
	case cc.ID == "":
		return fmt.Errorf("%w: campaign call without a campaign", ErrInvalid)
	case cc.VisitorRole != RoleFirst && cc.VisitorRole != RoleSecond:
		return fmt.Errorf("%w: visitor leg %q", ErrInvalid, cc.VisitorRole)
	case len(cc.Operators) == 0 || len(cc.Operators) > MaxOperators:
		return fmt.Errorf("%w: a campaign call needs 1 to %d operators", ErrInvalid, MaxOperators)
	case cc.MaxAttempts < 0 || cc.MaxAttempts > MaxAttempts:
		return fmt.Errorf("%w: at most %d attempts", ErrInvalid, MaxAttempts)
	case cc.RedialInterval < 0 || cc.RedialInterval > MaxRedialDelay:
		return fmt.Errorf("%w: redial interval above %v", ErrInvalid, MaxRedialDelay)
	case c.Mode != ModeSequential:
		return fmt.Errorf("%w: campaign calls are sequential", ErrInvalid)
	}
	c.CampaignID, c.VisitorLeg = cc.ID, cc.VisitorRole
	c.MaxAttempts = max(cc.MaxAttempts, 1)
	c.RedialIntervalS = int(cc.RedialInterval / time.Second)
	if cc.RedialInterval > 0 && c.RedialIntervalS == 0 {
		c.RedialIntervalS = 1
	}
	c.PriceMicros, c.PriceCurrency, c.CallbackOf = cc.PriceMicros, cc.PriceCurrency, cc.CallbackOf
	if cc.NotBefore.After(c.CreatedAt) {
		c.NextAttemptAt = cc.NotBefore.UTC()
	}
	return nil
}

// resolveTargets builds the company's leg: one target per operator, the
// leg's own fields describing the first.
func (e *Engine) resolveTargets(ctx context.Context, account string, cc *CampaignCall) (Leg, error) {
	var leg Leg
	for _, p := range cc.Operators {
		r, err := e.res.Resolve(ctx, account, p)
		if errors.Is(err, ErrUnknownEndpoint) && len(cc.Operators) > 1 {
			continue // deleted since the campaign was saved: ring the others
		}
		if err != nil {
			return Leg{}, err
		}
		if r.RingTimeoutMS <= 0 {
			r.RingTimeoutMS = int(DefaultOperatorRingTimeout / time.Millisecond)
		}
		if time.Duration(r.RingTimeoutMS)*time.Millisecond > e.cfg.MaxRingTimeout {
			r.RingTimeoutMS = int(e.cfg.MaxRingTimeout / time.Millisecond)
		}
		leg.Targets = append(leg.Targets, Target{
			EndpointID: r.EndpointID, EndpointName: r.EndpointName, Number: r.Number, Address: r.Address,
			DialString: r.DialString, CallerIDNumber: r.CallerIDNumber, CallerIDName: r.CallerIDName, RingTimeoutMS: r.RingTimeoutMS,
		})
	}
	if len(leg.Targets) == 0 {
		return Leg{}, fmt.Errorf("%w: none of the campaign's operators exists", ErrUnknownEndpoint)
	}
	leg.RingAll = cc.RingAll
	leg.useTarget(0)
	return leg, nil
}

// useTarget points the leg's own channel at target i.
func (l *Leg) useTarget(i int) {
	t := l.Targets[i]
	l.Target = i
	l.EndpointID, l.EndpointName, l.Number, l.Address, l.DialString = t.EndpointID, t.EndpointName, t.Number, t.Address, t.DialString
	l.CallerIDNumber, l.CallerIDName, l.RingTimeoutMS = t.CallerIDNumber, t.CallerIDName, t.RingTimeoutMS
	l.Rate, l.Direction, l.MaxDurationS = t.Rate, t.Direction, t.MaxDurationS
}

// try is the leg's current channel as a past one.
func (l *Leg) try() LegTry {
	return LegTry{EndpointID: l.EndpointID, EndpointName: l.EndpointName, Address: l.Address, UUID: l.UUID,
		HangupCause: l.HangupCause, SIPStatus: l.SIPStatus, DialedAt: l.DialedAt, EndedAt: l.EndedAt}
}

// dialTargets dials a leg with several targets: its own channel rings the
// current target; with RingAll every later target rings too, as a fork.
func (e *Engine) dialTargets(c *Call, role Role) action {
	l := c.Leg(role)
	now := e.now().UTC()
	l.Status, l.DialedAt = LegDialing, now
	l.Forks = nil
	if l.RingAll {
		for i := l.Target + 1; i < len(l.Targets); i++ {
			l.Forks = append(l.Forks, Fork{UUID: ids.NewV4(), Target: i, Status: LegDialing, DialedAt: now})
		}
	}
	if c.Status == StatusQueued {
		c.Status = StatusDialing
		e.record(c, EventCallDialing, role)
	} else {
		e.record(c, EventLegDialing, role)
	}
	chans := []struct {
		uuid   string
		target int
	}{{l.UUID, l.Target}}
	for _, f := range l.Forks {
		chans = append(chans, struct {
			uuid   string
			target int
		}{f.UUID, f.Target})
	}
	return func(ctx context.Context, e *Engine, c *Call) error {
		for _, ch := range chans {
			e.ringTarget(ctx, c, role, ch.uuid, c.Leg(role).Targets[ch.target])
		}
		return nil
	}
}

// ringTarget takes the target's endpoint (one call at a time: an operator
// on another call looks busy) and originates its channel. What fails comes
// back as the channel's failed BACKGROUND_JOB.
func (e *Engine) ringTarget(ctx context.Context, c *Call, role Role, uuid string, t Target) {
	fail := func(cause string) {
		go e.HandleEvent(SwitchEvent{Node: c.Node, Name: "BACKGROUND_JOB", UUID: uuid, CallID: c.ID, Cause: cause, At: e.now().UTC()})
	}
	if err := e.store.IndexLeg(ctx, uuid, c.ID); err != nil {
		e.log.Warn("index a channel", "call_id", c.ID, "leg_uuid", uuid, "err", err)
		fail("NORMAL_TEMPORARY_FAILURE")
		return
	}
	if t.EndpointID != "" {
		ttl := time.Duration(c.MaxDurationS)*time.Second + 2*e.cfg.MaxRingTimeout + time.Minute
		ok, err := e.locks.Lock(ctx, endpointLockKey(t.EndpointID), c.ID, ttl)
		if err != nil {
			e.log.Warn("lock an operator", "call_id", c.ID, "endpoint_id", t.EndpointID, "err", err)
			fail("NORMAL_TEMPORARY_FAILURE")
			return
		}
		if !ok {
			fail(causeBusy)
			return
		}
	}
	err := e.sw.Originate(ctx, c.Node, OriginateLeg{
		UUID: uuid, DialString: t.DialString, CallerIDNumber: t.CallerIDNumber, CallerIDName: t.CallerIDName,
		RingTimeout: time.Duration(t.RingTimeoutMS) * time.Millisecond,
		Variables:   map[string]string{"ringback_call_id": c.ID, "ringback_leg": string(role), "ringback_account": c.AccountID},
	})
	if err != nil {
		var ce interface{ Cause() string }
		cause := "NORMAL_TEMPORARY_FAILURE"
		if errors.As(err, &ce) && ce.Cause() != "" {
			cause = ce.Cause()
		}
		e.log.Warn("originate an operator", "call_id", c.ID, "leg_uuid", uuid, "err", err)
		fail(cause)
	}
}

// applyFork applies an event of one of a leg's forks.
func (e *Engine) applyFork(ctx context.Context, c *Call, role Role, i int, ev SwitchEvent) []action {
	l := c.Leg(role)
	f := &l.Forks[i]
	now := ev.At
	if now.IsZero() {
		now = e.now().UTC()
	}
	switch ev.Name {
	case "CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA":
		if f.Status == LegDialing {
			f.Status, f.RingingAt = LegRinging, now
			e.legRinging(c, role, now)
		}
	case "CHANNEL_ANSWER":
		if !f.Status.Up() || f.Status == LegAnswered {
			return nil
		}
		if l.Status == LegAnswered || !l.Status.Up() || c.Ending != "" {
			f.Status = LegAnswered
			return []action{hangupUUIDAction(f.UUID, causeLoseRace)}
		}
		// This operator was first: their channel becomes the leg's, the
		// leg's own one a fork that lost.
		l.swapFork(i)
		return e.apply(ctx, c, role, ev)
	case "BACKGROUND_JOB", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_HANGUP":
		if !f.Status.Up() || (ev.Name == "BACKGROUND_JOB" && (ev.JobOK || f.Status == LegAnswered)) {
			return nil
		}
		t := l.Targets[f.Target]
		l.Tries = append(l.Tries, LegTry{EndpointID: t.EndpointID, EndpointName: t.EndpointName, Address: t.Address,
			UUID: f.UUID, HangupCause: ev.Cause, SIPStatus: ev.SIPStatus, DialedAt: f.DialedAt, EndedAt: now})
		l.Forks = slices.Delete(l.Forks, i, i+1)
		return []action{unlockEndpointAction(t.EndpointID)}
	}
	return nil
}

// swapFork exchanges the leg's own channel with fork i.
func (l *Leg) swapFork(i int) {
	f := l.Forks[i]
	l.Forks[i] = Fork{UUID: l.UUID, Target: l.Target, Status: l.Status, DialedAt: l.DialedAt, RingingAt: l.RingingAt}
	ringing := l.RingingAt
	l.useTarget(f.Target)
	l.UUID, l.Status, l.DialedAt, l.RingingAt = f.UUID, f.Status, f.DialedAt, f.RingingAt
	if l.RingingAt.IsZero() {
		l.RingingAt = ringing
	}
}

// channelEnded handles the end of a leg's own channel when the leg has
// other ways to reach its party: a fork still ringing takes its place, or
// the next operator in order is rung. ok is false when the leg itself has
// ended.
func (e *Engine) channelEnded(c *Call, role Role, cause string, sip int, now time.Time) ([]action, bool) {
	l := c.Leg(role)
	if len(l.Targets) == 0 || l.Status == LegAnswered {
		return nil, false
	}
	l.HangupCause, l.SIPStatus, l.EndedAt = cause, sip, now
	ended := l.try()
	live := -1
	for i, f := range l.Forks {
		if f.Status.Up() {
			live = i
			break
		}
	}
	switch {
	case live >= 0:
		l.Tries = append(l.Tries, ended)
		l.swapFork(live)
		l.Forks = slices.Delete(l.Forks, live, live+1)
		l.HangupCause, l.SIPStatus, l.EndedAt = "", 0, time.Time{}
		return []action{unlockEndpointAction(ended.EndpointID)}, true
	case !l.RingAll && l.Target+1 < len(l.Targets) && c.Ending == "" && cause != "ORIGINATOR_CANCEL":
		l.Tries = append(l.Tries, ended)
		l.useTarget(l.Target + 1)
		l.UUID, l.Status, l.DialedAt = ids.NewV4(), LegDialing, now
		l.HangupCause, l.SIPStatus, l.EndedAt = "", 0, time.Time{}
		e.record(c, EventLegDialing, role)
		uuid, t := l.UUID, l.Targets[l.Target]
		return []action{unlockEndpointAction(ended.EndpointID), func(ctx context.Context, e *Engine, c *Call) error {
			e.ringTarget(ctx, c, role, uuid, t)
			return nil
		}}, true
	}
	l.HangupCause, l.SIPStatus, l.EndedAt = "", 0, time.Time{}
	return nil, false
}

// redialable failures are the ones another try may fix.
func redialable(r FailureReason) bool {
	switch r {
	case ReasonBusy, ReasonNoAnswer, ReasonCongestion, ReasonUnavailable, ReasonInternal:
		return true
	}
	return false
}

// redial turns a campaign call whose visitor could not be reached, and
// which has attempts left, into a call waiting for its next attempt.
func (e *Engine) redial(c *Call) bool {
	if c.Ending != StatusFailed || c.VisitorLeg == "" || c.FailedLeg != c.VisitorLeg ||
		c.Attempt >= c.MaxAttempts || !redialable(c.FailureReason) {
		return false
	}
	now := e.now().UTC()
	failed := c.Leg(c.FailedLeg)
	end := lastEnd(c)
	if end.IsZero() {
		end = now
	}
	c.Attempts = append(c.Attempts, Attempt{Number: c.Attempt, FailedLeg: c.FailedLeg, Reason: c.FailureReason,
		HangupCause: failed.HangupCause, SIPStatus: failed.SIPStatus, StartedAt: c.AttemptStartedAt, EndedAt: end})
	for _, l := range []*Leg{&c.First, &c.Second} {
		if !l.DialedAt.IsZero() {
			l.Tries = append(l.Tries, l.try())
		}
		l.Status, l.UUID, l.Forks = LegPending, ids.NewV4(), nil
		l.DialedAt, l.RingingAt, l.AnsweredAt, l.EndedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		l.HangupCause, l.SIPStatus, l.Billsec, l.CostMicros = "", 0, 0, 0
		if len(l.Targets) > 0 {
			l.useTarget(0)
		}
	}
	c.Attempt++
	c.RingSeen = time.Time{}
	c.Ending, c.FailedLeg, c.FailureReason, c.HangupCause = "", "", "", ""
	c.AnsweredAt, c.AttemptStartedAt, c.Announced = time.Time{}, time.Time{}, false
	c.Status = StatusQueued
	c.NextAttemptAt = now.Add(time.Duration(c.RedialIntervalS) * time.Second)
	e.record(c, EventCallRedialScheduled, "")
	return true
}

// outcome names a campaign call's end as the click-to-call spec does.
func outcome(c *Call) string {
	switch c.Status {
	case StatusCompleted:
		return OutcomeCompleted
	case StatusFailed:
		if c.FailedLeg == c.VisitorLeg {
			return OutcomeFailedToUser
		}
		return OutcomeFailedToCompany
	case StatusCanceled:
		return OutcomeCanceled
	}
	return ""
}

// await records a waiting call where every instance sees it and wakes it
// at its time.
func (e *Engine) await(ctx context.Context, c *Call) {
	if err := e.store.Wait(ctx, c.ID, c.NextAttemptAt); err != nil {
		// The timer still wakes it; only a takeover by another instance,
		// should this one go away, depends on the record.
		e.log.Warn("record a waiting call", "call_id", c.ID, "err", err)
	}
	e.arm(c.ID, c.NextAttemptAt)
}

func unwaitAction(ctx context.Context, e *Engine, c *Call) error {
	if err := e.store.Unwait(ctx, c.ID); err != nil {
		e.log.Warn("unrecord a waiting call", "call_id", c.ID, "err", err)
	}
	return nil
}

// sweepEvery is how often the waiter looks for due waiting calls.
const sweepEvery = 250 * time.Millisecond

// waiter keeps this instance's heartbeat and wakes waiting calls that are
// due: its own (a timer lost to a restart) and those of instances that are
// gone (scaled down, crashed, renamed), which it adopts. A waiting call has
// no channel on any switch, so any instance may take it over.
func (e *Engine) waiter() {
	defer e.wg.Done()
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	var beat time.Time
	for first := true; ; first = false {
		if !first {
			select {
			case <-e.stop:
				return
			case <-t.C:
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if time.Since(beat) >= e.cfg.HeartbeatTTL/3 {
			if err := e.store.Heartbeat(ctx, e.cfg.Instance, e.cfg.HeartbeatTTL); err != nil {
				e.log.Warn("heartbeat", "err", err)
			} else {
				beat = time.Now()
			}
		}
		e.sweep(ctx)
		cancel()
	}
}

func (e *Engine) sweep(ctx context.Context) {
	due, err := e.store.Due(ctx, e.now(), 100)
	if err != nil {
		e.log.Warn("list waiting calls", "err", err)
		return
	}
	for _, id := range due {
		c, err := e.store.Get(ctx, id)
		if errors.Is(err, ErrNotFound) || (err == nil && (c.Status != StatusQueued || c.NextAttemptAt.IsZero())) {
			_ = e.store.Unwait(ctx, id) // started or ended meanwhile
			continue
		}
		if err != nil {
			e.log.Warn("load a waiting call", "call_id", id, "err", err)
			continue
		}
		if c.Owner != e.cfg.Instance {
			if !e.adoptable(ctx, c) {
				continue // its owner wakes it
			}
			unlock := e.lock(id)
			err = e.store.Adopt(ctx, c, e.cfg.Instance)
			unlock()
			if err != nil {
				continue // someone else adopted it first
			}
			e.log.Info("adopted a waiting call of an instance that is gone", "call_id", id, "from", c.Owner)
			e.live.Delete(id)
		}
		e.enqueue(SwitchEvent{Name: evStart, CallID: id})
	}
}

// arm wakes a waiting call at t (again: the latest time wins).
func (e *Engine) arm(id string, t time.Time) {
	select {
	case <-e.stop:
		return
	default:
	}
	timer := time.AfterFunc(max(time.Until(t), 0), func() {
		e.timers.Delete(id)
		e.enqueue(SwitchEvent{Name: evStart, CallID: id})
	})
	if old, loaded := e.timers.Swap(id, timer); loaded {
		old.(*time.Timer).Stop()
	}
}

func hangupUUIDAction(uuid, cause string) action {
	return func(ctx context.Context, e *Engine, c *Call) error {
		if err := e.sw.Hangup(ctx, c.Node, uuid, cause); err != nil {
			e.log.Warn("hang up a channel", "call_id", c.ID, "leg_uuid", uuid, "err", err)
		}
		return nil
	}
}

// unlockEndpointAction frees an operator whose channel ended (a no-op if
// another call holds them: the lock's token is the call ID).
func unlockEndpointAction(endpointID string) action {
	return func(ctx context.Context, e *Engine, c *Call) error {
		if endpointID == "" {
			return nil
		}
		if err := e.locks.Unlock(ctx, endpointLockKey(endpointID), c.ID); err != nil {
			e.log.Warn("release an operator", "endpoint_id", endpointID, "call_id", c.ID, "err", err)
		}
		return nil
	}
}
