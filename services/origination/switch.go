package origination

import (
	"context"
	"errors"
	"time"
)

// ErrSwitchUnreachable wraps a command's error when FreeSWITCH could not
// be asked or its answer was lost with the connection: the command may or
// may not have run, and the reconciliation that follows the reconnection
// (Engine.Recover) finds out from the legs.
var ErrSwitchUnreachable = errors.New("FreeSWITCH unreachable")

// Switch is what origination needs from FreeSWITCH. It is declared here, by
// its consumer, so the engine can be driven by the event-socket client in
// production and by the simulator through the same client in tests; nothing
// of eslgo leaks past it.
type Switch interface {
	// PickNode chooses the FreeSWITCH node for a new call.
	PickNode() (string, error)
	// HasNode says whether node is one of this instance's FreeSWITCH
	// nodes, connected or not (only such a node's calls can be adopted).
	HasNode(node string) bool
	// Originate starts dialing one leg and returns once FreeSWITCH took the
	// job; the outcome arrives as events carrying the leg's UUID.
	Originate(ctx context.Context, node string, o OriginateLeg) error
	// Bridge joins two parked legs (uuid_bridge).
	Bridge(ctx context.Context, node, a, b string) error
	// Hangup ends a leg with a FreeSWITCH cause (uuid_kill).
	Hangup(ctx context.Context, node, uuid, cause string) error
	// Play plays a file or tone to a parked leg (uuid_broadcast); path may
	// name an application instead, as app::args (endless_playback::file).
	Play(ctx context.Context, node, uuid, path string) error
	// HangupAfter schedules a leg's hangup (sched_hangup), enforcing the
	// maximum call duration inside FreeSWITCH itself, so it holds even if
	// origination is down.
	HangupAfter(ctx context.Context, node, uuid string, after time.Duration, cause string) error
	// Exists reports whether a leg is still up (reconciliation).
	Exists(ctx context.Context, node, uuid string) (bool, error)
	// SetVars sets channel variables of a leg at once (uuid_setvar_multi),
	// the inputs of a ringback dialplan extension. Values must not contain
	// ";" or spaces; nil or empty sets nothing.
	SetVars(ctx context.Context, node, uuid string, vars map[string]string) error
	// Transfer sends a leg to an extension of the ringback dialplan
	// context (uuid_transfer <uuid> <ext> XML ringback).
	Transfer(ctx context.Context, node, uuid, ext string) error
	// Vars reads channel variables of a leg (uuid_getvar); a variable the
	// channel does not have is "".
	Vars(ctx context.Context, node, uuid string, names ...string) (map[string]string, error)
}

// OriginateLeg is one leg to dial, parked on answer.
type OriginateLeg struct {
	UUID           string // origination_uuid: ours, so every event maps to the leg
	DialString     string // e.g. sofia/gateway/carrier/15551230001
	CallerIDNumber string
	CallerIDName   string
	RingTimeout    time.Duration
	// Variables become channel variables and come back on every event of
	// the leg (ringback_call_id, ringback_leg, ...).
	Variables map[string]string
}

// SwitchEvent is a FreeSWITCH event reduced to what the engine uses.
type SwitchEvent struct {
	Node      string
	Name      string // CHANNEL_ANSWER, CHANNEL_HANGUP_COMPLETE, BACKGROUND_JOB, conference::maintenance (a CUSTOM's subclass), ...
	UUID      string // Unique-ID; for BACKGROUND_JOB the Job-UUID (we set it to the leg UUID)
	CallID    string // variable_ringback_call_id
	Leg       string // variable_ringback_leg: "first" or "second"
	Cause     string // Hangup-Cause, or the cause of a failed BACKGROUND_JOB
	SIPStatus int    // variable_sip_term_status
	JobOK     bool   // BACKGROUND_JOB said +OK
	// ChannelDown: the channel was hanging up when the event fired
	// (Answer-State: hangup), e.g. the PLAYBACK_STOP of a playback cut
	// short by the party's hangup.
	ChannelDown bool
	// Application is the dialplan application of a
	// CHANNEL_EXECUTE_COMPLETE (amd, play_and_get_digits, set).
	Application string
	// What the ringback extensions leave in channel variables, as the
	// event carries them: amd_result (HUMAN, MACHINE, NOTSURE), the menu's
	// digit (ringback_digits) and read_result.
	AMDResult  string
	Digits     string
	ReadResult string
	// Conference and ConferenceAction are a conference::maintenance
	// event's room (Conference-Name) and Action (add-member, del-member).
	Conference       string
	ConferenceAction string
	At               time.Time
}
