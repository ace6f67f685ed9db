package origination

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Agent rooms: the calls of campaigns whose answered customers go to
// agents. An agent's session is a one-party call (CreateRequest.Conference)
// that puts the agent's phone in the agent's conference room on answer and
// keeps it there between customers. A customer's call waits, once
// answered (and found human when machine detection runs), for an agent
// (CreateRequest.AwaitAgent): ConnectCall puts the party in the agent's
// room before the wait ends, or the safe-harbour message is played and the
// call ends abandoned.
//
// The room is FreeSWITCH's: the engine sets the leg's ringback_conference
// (and, for the agent, conference_member_flags=moderator) and sends it to
// the agent_conference extension of the ringback context, which runs
// mod_conference with the ringback_agent profile. mod_conference's
// CUSTOM conference::maintenance add-member event, which carries the
// leg's Unique-ID and channel variables, says the party is in the room:
// only then is the call BRIDGED (CONFERENCE_JOINED). uuid_transfer's +OK,
// which comes a little earlier, only says the transfer was queued; the leg
// may still hang up, or fail to join, before anyone hears it. A party that
// leaves its room alive (conference ROOM kick) is parked by the extension
// and hung up here: its call was only for the room.

// Await defaults and limits (the API's). A queue (a menu's CONNECT that
// awaits an agent) waits longer: the party asked for an agent.
const (
	DefaultAwaitTimeoutMS = 2000
	MaxAwaitTimeoutMS     = 30000
	DefaultQueueTimeoutMS = 60000
	MinQueueTimeoutMS     = 1000
	MaxQueueTimeoutMS     = 600000
	// DefaultHoldMusic is FreeSWITCH's music on hold (vanilla config's
	// local_stream "moh").
	DefaultHoldMusic = "local_stream://moh"
	// MaxRoomName bounds a conference room's name.
	MaxRoomName = 64
)

// Extension and variables of the ringback context's agent rooms.
const (
	extRoom       = "agent_conference"
	varRoom       = "ringback_conference"
	varRoomFlags  = "conference_member_flags"
	appConference = "conference"
	// MediaConference: the first leg was sent to agent_conference (it is in
	// the room once the call is BRIDGED).
	MediaConference MediaStep = "CONFERENCE"
	// evConference is a conference::maintenance event of a member;
	// SwitchEvent.ConferenceAction says which (add-member, del-member).
	evConference = "conference::maintenance"
	// evAwaitTimeout is the engine's own event for a wait for an agent
	// that ran out.
	evAwaitTimeout = "\x00await-timeout"
	// safeHarbourGuard hangs up an abandoned party should the end of the
	// safe-harbour message never be seen (a file FreeSWITCH cannot play, or
	// its PLAYBACK_STOP missed while origination restarted). It is
	// scheduled in FreeSWITCH (sched_hangup), so it holds across restarts.
	safeHarbourGuard = 2 * time.Minute
)

// Agent-room events (ringback.events.v1.EventType without the prefix).
const (
	EventAgentAwaited     EventType = "AGENT_AWAITED"
	EventConferenceJoined EventType = "CONFERENCE_JOINED"
	EventCallAbandoned    EventType = "CALL_ABANDONED"
)

// ErrNotWaiting: ConnectCall on a call that does not wait for an agent
// (not answered yet, already connected, abandoned, ended, or not an
// await_agent call).
var ErrNotWaiting = errors.New("call not waiting for an agent")

// AwaitAgent is how an answered party waits for an agent: from the answer,
// or, with a menu, from a CONNECT choice (a queue, with hold music; past
// the wait the call ends FAILED NO_AGENT instead of abandoned).
type AwaitAgent struct {
	TimeoutMS   int    `json:"timeout_ms"`
	SafeHarbour string `json:"safe_harbour"`
	HoldMusic   string `json:"hold_music,omitempty"`
}

// roomRe: what mod_conference takes as a plain room name ("@" would pick a
// profile, "+" a PIN), as agent_conference checks it too.
var roomRe = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)

func validRoom(room string) error {
	if !roomRe.MatchString(room) {
		return fmt.Errorf("%w: conference must be letters, digits, '.', '_' or '-' only, at most %d", ErrInvalid, MaxRoomName)
	}
	return nil
}

// validateAgentRoom checks a request's conference and await_agent, and
// fills the wait's default.
func validateAgentRoom(req *CreateRequest) error {
	second := req.Second != PartySpec{}
	if req.Conference != "" {
		if err := validRoom(req.Conference); err != nil {
			return err
		}
		switch {
		case second:
			return fmt.Errorf("%w: a conference call has one party: no second", ErrInvalid)
		case req.Announcement != "":
			return fmt.Errorf("%w: a conference call has no announcement", ErrInvalid)
		case req.Menu != nil:
			return fmt.Errorf("%w: a conference call has no menu", ErrInvalid)
		case req.MachineDetection.Enabled || req.MachineDetection.Message != "":
			return fmt.Errorf("%w: a conference call has no machine detection", ErrInvalid)
		case req.AwaitAgent != nil:
			return fmt.Errorf("%w: a conference call does not await an agent: it is the agent's", ErrInvalid)
		}
	}
	if a := req.AwaitAgent; a != nil {
		if second {
			return fmt.Errorf("%w: a call awaiting an agent has one party: no second", ErrInvalid)
		}
		if req.Menu == nil {
			if a.TimeoutMS == 0 {
				a.TimeoutMS = DefaultAwaitTimeoutMS
			}
			if a.TimeoutMS < 0 || a.TimeoutMS > MaxAwaitTimeoutMS {
				return fmt.Errorf("%w: await_agent.timeout_ms must be between 0 and %d (0: %d)", ErrInvalid, MaxAwaitTimeoutMS, DefaultAwaitTimeoutMS)
			}
			if a.HoldMusic != "" {
				return fmt.Errorf("%w: await_agent.hold_music is for a menu's queue: without a menu the announcement plays while the party waits", ErrInvalid)
			}
		} else {
			if a.TimeoutMS == 0 {
				a.TimeoutMS = DefaultQueueTimeoutMS
			}
			if a.TimeoutMS < MinQueueTimeoutMS || a.TimeoutMS > MaxQueueTimeoutMS {
				return fmt.Errorf("%w: with a menu, await_agent.timeout_ms must be between %d and %d (0: %d)", ErrInvalid, MinQueueTimeoutMS, MaxQueueTimeoutMS, DefaultQueueTimeoutMS)
			}
			if a.HoldMusic == "" {
				a.HoldMusic = DefaultHoldMusic
			}
			if !mediaValueOK(a.HoldMusic) {
				return fmt.Errorf("%w: await_agent.hold_music must be a file path or URL without spaces or \";\" (at most 512 characters)", ErrInvalid)
			}
		}
		if a.SafeHarbour == "" {
			return fmt.Errorf("%w: await_agent.safe_harbour is required", ErrInvalid)
		}
		if !announcementRe.MatchString(a.SafeHarbour) {
			return fmt.Errorf("%w: await_agent.safe_harbour must be a file path or URL without spaces (at most 512 characters)", ErrInvalid)
		}
		if req.Menu != nil && a.SafeHarbour == a.HoldMusic {
			// Surely a mistake: the party would hear the no-agent message
			// as music while it waits.
			return fmt.Errorf("%w: await_agent.safe_harbour and hold_music must differ", ErrInvalid)
		}
	}
	if (req.Conference != "" || req.AwaitAgent != nil) && req.Campaign != nil {
		return fmt.Errorf("%w: campaign calls have no conference or await_agent", ErrInvalid)
	}
	if (req.Conference != "" || req.AwaitAgent != nil) && req.Mode != ModeSequential {
		return fmt.Errorf("%w: a call with one party is sequential", ErrInvalid)
	}
	return nil
}

// waiting reports whether the call's answered party waits for an agent
// (what ConnectCall needs).
func (c *Call) waiting() bool {
	return c.AwaitAgent != nil && !c.AwaitUntil.IsZero() && c.Conference == "" && !c.Abandoned &&
		c.Ending == "" && !c.Status.Final() && c.First.Status == LegAnswered
}

// awaitAgent starts the wait of an answered party: AGENT_AWAITED, the
// timer, and the announcement if there is one, played while the party
// waits (ConnectCall's transfer cuts it); in a queue, the hold music.
func (e *Engine) awaitAgent(c *Call) []action {
	c.AwaitUntil = e.now().UTC().Add(time.Duration(c.AwaitAgent.TimeoutMS) * time.Millisecond)
	e.record(c, EventAgentAwaited, RoleFirst)
	acts := []action{armAwaitAction}
	if c.Menu != nil {
		return append(acts, holdAction(c.AwaitAgent.HoldMusic))
	}
	if c.Announcement != "" && !c.Announced {
		e.record(c, EventAnnouncementStarted, RoleFirst)
		acts = append(acts, playAction(c.Announcement))
	}
	return acts
}

// armAwaitAction wakes the call when its wait ends; the wake-up is an
// event of the call, handled in order with its others, so it and
// ConnectCall (which takes the same lock as the event's handling) cannot
// both win.
func armAwaitAction(_ context.Context, e *Engine, c *Call) error {
	if !c.waiting() {
		return nil
	}
	id, node, uuid, at := c.ID, c.Node, c.First.UUID, c.AwaitUntil
	select {
	case <-e.stop:
		return nil
	default:
	}
	w := &awaitTimer{}
	w.t = time.AfterFunc(max(time.Until(at), 0), func() {
		e.awaitTimers.CompareAndDelete(id, w)
		e.enqueue(SwitchEvent{Node: node, Name: evAwaitTimeout, UUID: uuid, CallID: id, At: time.Now().UTC()})
	})
	if old, loaded := e.awaitTimers.Swap(id, w); loaded {
		old.(*awaitTimer).t.Stop()
	}
	return nil
}

// awaitTimer is the timer of one wait; its own address tells it from the
// timer of a later wait of the same call.
type awaitTimer struct{ t *time.Timer }

func (e *Engine) stopAwaitTimer(id string) {
	if w, ok := e.awaitTimers.LoadAndDelete(id); ok {
		w.(*awaitTimer).t.Stop()
	}
}

// holdAction plays the hold music of a queue over and over
// (endless_playback) until a transfer cuts it: ConnectCall's to the agent's
// room, or the end of the wait's to goodbye.
func holdAction(path string) action {
	return func(ctx context.Context, e *Engine, c *Call) error {
		if !c.waiting() {
			return nil
		}
		if err := e.sw.Play(ctx, c.Node, c.First.UUID, appEndless+"::"+path); err != nil {
			// Silence while waiting is no reason to give up on the wait.
			e.log.Warn("play the hold music", "call_id", c.ID, "leg_uuid", c.First.UUID, "err", err)
		}
		return nil
	}
}

// appEndless is mod_dptools' endless_playback: a file played again and
// again until the leg is moved or hangs up (uuid_break only starts it
// over).
const appEndless = "endless_playback"

// awaitTimedOut applies the end of a wait: abandonment (in a queue, no
// agent), unless ConnectCall (or the party's hangup) came first.
func (e *Engine) awaitTimedOut(c *Call) []action {
	if !c.waiting() {
		return nil
	}
	if c.AwaitUntil.Sub(e.now()) > 5*time.Millisecond {
		return []action{armAwaitAction} // early (a timer of an earlier wait)
	}
	if c.Menu != nil {
		return e.noAgent(c, ReasonNoAgent)
	}
	return e.abandon(c)
}

// noAgent ends a queue's wait with no agent: the party is sent to the
// goodbye extension, whose transfer ends the hold music, which plays the
// message and hangs up; the call ends FAILED with failed leg second and
// the reason (NO_AGENT when the wait ran out, QUEUE_EMPTY or QUEUE_FULL
// when the party was turned away). The party asked for an agent after the
// greeting, so this is no abandoned call.
func (e *Engine) noAgent(c *Call, reason FailureReason) []action {
	c.AwaitUntil = time.Time{}
	c.HangupCause = "NORMAL_CLEARING"
	c.setEnding(StatusFailed, RoleSecond, reason)
	c.Media = MediaGoodbye
	goodbye := mediaAction(MediaGoodbye, goodbyeVars(c), extGoodbye)
	return []action{func(ctx context.Context, e *Engine, c *Call) error {
		if err := e.sw.HangupAfter(ctx, c.Node, c.First.UUID, safeHarbourGuard, "NORMAL_CLEARING"); err != nil {
			e.log.Warn("schedule the party's hangup after the no-agent message", "call_id", c.ID, "leg_uuid", c.First.UUID, "err", err)
		}
		return goodbye(ctx, e, c)
	}}
}

func goodbyeVars(c *Call) map[string]string {
	return map[string]string{"ringback_message": c.AwaitAgent.SafeHarbour}
}

// abandon ends a wait with no agent: CALL_ABANDONED, the safe-harbour
// message (played as announcements are), and the hangup when it ends; the
// call ends COMPLETED with Abandoned set.
func (e *Engine) abandon(c *Call) []action {
	c.AwaitUntil = time.Time{}
	c.Abandoned = true
	c.HangupCause = "NORMAL_CLEARING"
	c.setEnding(StatusCompleted, "", "")
	e.record(c, EventCallAbandoned, RoleFirst)
	return []action{safeHarbourAction(c.AwaitAgent.SafeHarbour)}
}

func safeHarbourAction(path string) action {
	return func(ctx context.Context, e *Engine, c *Call) error {
		if err := e.sw.HangupAfter(ctx, c.Node, c.First.UUID, safeHarbourGuard, "NORMAL_CLEARING"); err != nil {
			e.log.Warn("schedule the abandoned party's hangup", "call_id", c.ID, "leg_uuid", c.First.UUID, "err", err)
		}
		err := e.sw.Play(ctx, c.Node, c.First.UUID, path)
		if err == nil {
			return nil
		}
		if up, xerr := e.sw.Exists(ctx, c.Node, c.First.UUID); xerr == nil && !up {
			return err // the party left: its hangup ends the call
		}
		// Nothing else would end the leg: hang it up now.
		go e.HandleEvent(SwitchEvent{Node: c.Node, Name: evPlayFailed, UUID: c.First.UUID, CallID: c.ID, At: e.now().UTC()})
		return fmt.Errorf("play the safe-harbour message: %w", err)
	}
}

// roomPlaybackStopped applies a PLAYBACK_STOP of a room call's first leg
// (from a live channel): the end of the announcement heard while waiting,
// or of the safe-harbour message. The safe harbour may be queued behind an
// announcement still playing when the wait ended, or played inside it: in
// either order, the leg is hung up at the second playback's end.
func (e *Engine) roomPlaybackStopped(c *Call) []action {
	if c.Announcement != "" && !c.Announced {
		c.Announced = true
		if c.Conference == "" {
			// Not cut by the transfer to a room.
			e.record(c, EventAnnouncementFinished, RoleFirst)
		}
		return nil
	}
	if c.Abandoned && c.First.Status == LegAnswered {
		return []action{hangupAction(RoleFirst, "NORMAL_CLEARING")}
	}
	return nil
}

// enterRoom sends the first leg to a room: the session's on answer, or the
// agent's one on ConnectCall.
func (e *Engine) enterRoom(c *Call, room string, moderator bool) action {
	c.Conference, c.Media, c.AwaitUntil = room, MediaConference, time.Time{}
	vars := map[string]string{varRoom: room}
	if moderator {
		vars[varRoomFlags] = "moderator"
	}
	return joinAction(vars)
}

// joinAction sets the leg's room variables and transfers it to
// agent_conference. A channel that is gone refuses, and its hangup ends
// the call; a live one that FreeSWITCH would not send is hung up
// (evMediaFailed). When the switch could not be asked (ErrSwitchUnreachable)
// the reconciliation after the reconnection finds out (resumeRoom).
func joinAction(vars map[string]string) action {
	return func(ctx context.Context, e *Engine, c *Call) error {
		err := e.sw.SetVars(ctx, c.Node, c.First.UUID, vars)
		if err == nil {
			err = e.sw.Transfer(ctx, c.Node, c.First.UUID, extRoom)
		}
		if err == nil || errors.Is(err, ErrSwitchUnreachable) {
			return err
		}
		if up, xerr := e.sw.Exists(ctx, c.Node, c.First.UUID); xerr == nil && !up {
			return fmt.Errorf("send the leg to %s: %w", extRoom, err)
		}
		go e.HandleEvent(SwitchEvent{Node: c.Node, Name: evMediaFailed, UUID: c.First.UUID, CallID: c.ID,
			Application: string(MediaConference), At: e.now().UTC()})
		return fmt.Errorf("send the leg to %s: %w", extRoom, err)
	}
}

// joined marks the first party in its room: the call is BRIDGED.
func (e *Engine) joined(c *Call, at time.Time) []action {
	if !c.BridgedAt.IsZero() || c.Ending != "" {
		return nil
	}
	c.BridgedAt, c.Status = at, StatusBridged
	e.record(c, EventConferenceJoined, RoleFirst)
	if c.MaxDurationS > 0 {
		return []action{maxDurationAction(time.Duration(c.MaxDurationS) * time.Second)}
	}
	return nil
}

// roomEvent applies a conference::maintenance event of the first leg.
func (e *Engine) roomEvent(c *Call, role Role, ev SwitchEvent, now time.Time) []action {
	if role != RoleFirst || c.Media != MediaConference || c.First.Status != LegAnswered {
		return nil
	}
	switch ev.ConferenceAction {
	case "add-member":
		if ev.Conference != c.Conference {
			e.log.Warn("leg joined another room than the one it was sent to", "call_id", c.ID, "leg_uuid", c.First.UUID,
				"conference", ev.Conference, "want", c.Conference)
			return nil
		}
		return e.joined(c, now)
	case "del-member":
		if ev.ChannelDown || c.Ending != "" || ev.Conference != c.Conference {
			return nil // hung up: the hangup ends the call
		}
		// Out of the room alive (kicked): the extension parked it. The
		// call was only for the room.
		e.log.Info("leg left its room without hanging up; hanging it up", "call_id", c.ID, "leg_uuid", c.First.UUID, "conference", c.Conference)
		c.Media = ""
		return []action{hangupAction(RoleFirst, "NORMAL_CLEARING")}
	}
	return nil
}

// Connect puts the party of an account's call that waits for an agent in
// a room (ConnectCall). Deciding it is a change of the call made under the lock
// its events are applied under and saved with the store's compare-and-swap:
// of ConnectCall and the end of the wait, whichever is saved first wins,
// whichever instance runs it. The call comes back with Conference set,
// ANSWERED: it is BRIDGED once the party is in the room (CONFERENCE_JOINED).
func (e *Engine) Connect(ctx context.Context, account, id, room string) (*Call, error) {
	if err := validRoom(room); err != nil {
		return nil, err
	}
	for attempt := 0; attempt < 3; attempt++ {
		unlock := e.lock(id)
		c, err := e.load(ctx, id)
		if err == nil && c.AccountID != account {
			err = fmt.Errorf("call %s: %w", id, ErrNotFound) // another account's calls are not shown
		}
		if err != nil {
			unlock()
			return nil, err
		}
		if !c.waiting() || !e.now().Before(c.AwaitUntil) {
			unlock()
			return c, fmt.Errorf("%w: call %s is %s", ErrNotWaiting, id, waitState(c))
		}
		var joinErr error
		join := e.enterRoom(c, room, false)
		err = e.commit(ctx, c, []action{func(ctx context.Context, e *Engine, c *Call) error {
			joinErr = join(ctx, e, c)
			return joinErr
		}})
		unlock()
		if errors.Is(err, ErrConflict) {
			e.live.Delete(id)
			continue
		}
		if err != nil {
			return nil, err
		}
		e.stopAwaitTimer(id)
		if joinErr != nil && !errors.Is(joinErr, ErrSwitchUnreachable) {
			// The party left meanwhile (its hangup ends the call), or
			// FreeSWITCH would not move it (it is hung up): the agent is
			// free again.
			return c, fmt.Errorf("%w: the party could not be put in room %s: %v", ErrNotWaiting, room, joinErr)
		}
		e.log.Info("call connected to a room", "call_id", c.ID, "leg_uuid", c.First.UUID, "conference", room)
		return c, nil
	}
	return nil, fmt.Errorf("connect call %s: %w", id, ErrConflict)
}

// TurnAway ends at once the wait of a call in a queue (a menu's CONNECT
// with AwaitAgent), as the end of its wait would (noAgent), with reason
// QUEUE_EMPTY or QUEUE_FULL: the dialer found no agent logged in to take
// it, or its queue full. ErrNotWaiting when the call does not wait in a
// queue (no menu, connected, past its wait, ended).
func (e *Engine) TurnAway(ctx context.Context, account, id string, reason FailureReason) (*Call, error) {
	if reason != ReasonQueueEmpty && reason != ReasonQueueFull {
		return nil, fmt.Errorf("%w: a call is turned away for QUEUE_EMPTY or QUEUE_FULL, not %q", ErrInvalid, reason)
	}
	for attempt := 0; attempt < 3; attempt++ {
		unlock := e.lock(id)
		c, err := e.load(ctx, id)
		if err == nil && c.AccountID != account {
			err = fmt.Errorf("call %s: %w", id, ErrNotFound)
		}
		if err != nil {
			unlock()
			return nil, err
		}
		if !c.waiting() || c.Menu == nil || !e.now().Before(c.AwaitUntil) {
			unlock()
			state := waitState(c)
			if c.Menu == nil && c.waiting() {
				state = "waiting for an agent, not in a queue"
			}
			return c, fmt.Errorf("%w: call %s is %s", ErrNotWaiting, id, state)
		}
		err = e.commit(ctx, c, e.noAgent(c, reason))
		unlock()
		if errors.Is(err, ErrConflict) {
			e.live.Delete(id)
			continue
		}
		if err != nil {
			return nil, err
		}
		e.stopAwaitTimer(id)
		e.log.Info("queued call turned away", "call_id", c.ID, "leg_uuid", c.First.UUID, "reason", string(reason))
		return c, nil
	}
	return nil, fmt.Errorf("turn call %s away: %w", id, ErrConflict)
}

// waitState says why a call is not waiting for an agent.
func waitState(c *Call) string {
	switch {
	case c.AwaitAgent == nil:
		return "not awaiting an agent"
	case c.Abandoned:
		return "abandoned"
	case c.Conference != "":
		return "already connected to room " + c.Conference
	case c.Status.Final() || c.Ending != "":
		return "ended"
	case c.AwaitUntil.IsZero():
		return "not answered yet"
	}
	return "past its wait"
}

// resumeRoom catches up with a first leg sent to a room while events may
// have been missed: in the room (current_application conference), it is
// joined; parked, it either never got there (the transfer was lost: sent
// again) or left alive (hung up).
func (e *Engine) resumeRoom(ctx context.Context, c *Call) ([]action, error) {
	vars, err := e.sw.Vars(ctx, c.Node, c.First.UUID, "current_application", "conference_name")
	if err != nil {
		return nil, fmt.Errorf("read the variables of leg %s: %w", c.First.UUID, err)
	}
	in := vars["conference_name"] == c.Conference
	switch vars["current_application"] {
	case appConference:
		if in {
			return e.joined(c, e.now().UTC()), nil
		}
	case "park":
		if in {
			e.log.Info("leg left its room while events were missed; hanging it up", "call_id", c.ID, "leg_uuid", c.First.UUID)
			c.Media = ""
			return []action{hangupAction(RoleFirst, "NORMAL_CLEARING")}, nil
		}
		e.log.Info("leg still parked: sending it to its room again", "call_id", c.ID, "leg_uuid", c.First.UUID, "conference", c.Conference)
		return []action{joinAction(roomVars(c))}, nil
	}
	return nil, nil
}

// roomVars are the room variables of the call's first leg.
func roomVars(c *Call) map[string]string {
	vars := map[string]string{varRoom: c.Conference}
	if c.Session != "" {
		vars[varRoomFlags] = "moderator"
	}
	return vars
}

// resumeWait decides, at recovery, about a call whose party waited for an
// agent when its events were last seen. Recovery after a reconnection of
// the event socket leaves a wait this process still times alone. After a
// restart (or an adoption) a wait still ahead goes on: the dialer keeps the
// call among its waiting ones until the wait's end, and its ConnectCall
// reaches whichever instance drives the call (a queue's wait is minutes
// long; its hold music plays on in FreeSWITCH). A wait that ran out
// meanwhile ends as it would have, unless the party is in a room already.
func (e *Engine) resumeWait(ctx context.Context, c *Call) ([]action, error) {
	if _, armed := e.awaitTimers.Load(c.ID); armed {
		return nil, nil
	}
	vars, err := e.sw.Vars(ctx, c.Node, c.First.UUID, "current_application", "conference_name")
	if err != nil {
		return nil, fmt.Errorf("read the variables of leg %s: %w", c.First.UUID, err)
	}
	if room := vars["conference_name"]; vars["current_application"] == appConference && room != "" {
		c.Conference, c.Media, c.AwaitUntil = room, MediaConference, time.Time{}
		return e.joined(c, e.now().UTC()), nil
	}
	if e.now().Before(c.AwaitUntil) {
		e.log.Info("origination restarted while the party waited for an agent: the wait goes on", "call_id", c.ID,
			"leg_uuid", c.First.UUID, "until", c.AwaitUntil)
		return []action{armAwaitAction}, nil
	}
	e.log.Info("origination restarted while the party waited for an agent, past its wait", "call_id", c.ID, "leg_uuid", c.First.UUID)
	if c.Menu != nil {
		return e.noAgent(c, ReasonNoAgent), nil
	}
	return e.abandon(c), nil
}
