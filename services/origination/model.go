// Package origination places and controls two-leg calls on FreeSWITCH: it
// dials each leg parked, plays announcements, bridges the parties, enforces
// the maximum duration and turns every change into an event. A call may
// also have one party, who only hears an announcement (the dialer's
// broadcasts) or a menu of digits to press, or who is put in a conference
// room (an agent's session, or a customer waiting for an agent until
// ConnectCall), and answering machines may be detected on the first
// party's answer. All decisions live here; FreeSWITCH is only asked to
// dial, play, bridge, hang up and run one extension of the ringback
// dialplan context at a time.
package origination

import (
	"time"

	"github.com/ringback/ringback/services/internal/billing"
	"github.com/ringback/ringback/services/internal/phone"
)

// Status is a call's overall state.
type Status string

// Call statuses (the brief's list).
const (
	StatusQueued    Status = "QUEUED"
	StatusDialing   Status = "DIALING"
	StatusRinging   Status = "RINGING"
	StatusAnswered  Status = "ANSWERED"
	StatusBridged   Status = "BRIDGED"
	StatusCompleted Status = "COMPLETED"
	StatusFailed    Status = "FAILED"
	StatusCanceled  Status = "CANCELED"
)

// Final reports whether the call has ended.
func (s Status) Final() bool {
	return s == StatusCompleted || s == StatusFailed || s == StatusCanceled
}

// LegStatus is one leg's state.
type LegStatus string

// Leg statuses.
const (
	LegPending  LegStatus = "PENDING"
	LegDialing  LegStatus = "DIALING"
	LegRinging  LegStatus = "RINGING"
	LegAnswered LegStatus = "ANSWERED"
	LegHungup   LegStatus = "HUNGUP"
	LegFailed   LegStatus = "FAILED"
)

// Up reports whether FreeSWITCH may still have this leg's channel.
func (s LegStatus) Up() bool { return s == LegDialing || s == LegRinging || s == LegAnswered }

// Role names a leg: the first party dialed (or both, simultaneously).
type Role string

// Leg roles; they are also the ringback_leg channel variable.
const (
	RoleFirst  Role = "first"
	RoleSecond Role = "second"
)

// Mode is how the two parties are dialed.
type Mode string

// Call modes.
const (
	// ModeSequential dials the first party, optionally plays it an
	// announcement, then dials the second party and bridges them.
	ModeSequential Mode = "SEQUENTIAL"
	// ModeSimultaneous dials both at once and bridges when both answered.
	ModeSimultaneous Mode = "SIMULTANEOUS"
)

// Leg is one party of a call and the FreeSWITCH channel that reaches it.
type Leg struct {
	Role           Role      `json:"role"`
	Number         string    `json:"number,omitempty"`      // E.164, when dialing a number
	EndpointID     string    `json:"endpoint_id,omitempty"` // when dialing an endpoint
	EndpointName   string    `json:"endpoint_name,omitempty"`
	Address        string    `json:"address,omitempty"` // the number, or the endpoint's address
	DialString     string    `json:"dial_string"`
	CallerIDNumber string    `json:"caller_id_number,omitempty"`
	CallerIDName   string    `json:"caller_id_name,omitempty"`
	RingTimeoutMS  int       `json:"ring_timeout_ms"`
	Status         LegStatus `json:"status"`
	UUID           string    `json:"uuid"`
	HangupCause    string    `json:"hangup_cause,omitempty"`
	SIPStatus      int       `json:"sip_status,omitempty"`
	DialedAt       time.Time `json:"dialed_at,omitzero"`
	RingingAt      time.Time `json:"ringing_at,omitzero"`
	AnsweredAt     time.Time `json:"answered_at,omitzero"`
	EndedAt        time.Time `json:"ended_at,omitzero"`
	// Rate, Direction and MaxDurationS come from rating when the leg is
	// authorized (numbers only: the account's own endpoints are not rated).
	Rate         *LegRate   `json:"rate,omitempty"`
	Direction    *Direction `json:"direction,omitempty"`
	MaxDurationS int        `json:"max_duration_s,omitempty"` // 0: no limit from billing
	// Billsec and CostMicros are set when an answered leg ends.
	Billsec    int   `json:"billsec,omitempty"`
	CostMicros int64 `json:"cost_micros,omitempty"`
	// Targets are the ways to reach a party with several phones (a
	// campaign's operators); empty for a leg with one. The leg's own fields
	// describe the channel of Targets[Target]; with RingAll the other
	// targets ring at the same time as Forks.
	Targets []Target `json:"targets,omitempty"`
	Target  int      `json:"target,omitempty"`
	RingAll bool     `json:"ring_all,omitempty"`
	Forks   []Fork   `json:"forks,omitempty"`
	// Tries are the channels the leg had before its current one: operators
	// rung in turn, losers of a ring-all race, earlier attempts of a
	// redialed call.
	Tries []LegTry `json:"tries,omitempty"`
}

// Target is one phone a leg may ring, resolved and rated when the call is
// created.
type Target struct {
	EndpointID     string     `json:"endpoint_id,omitempty"`
	EndpointName   string     `json:"endpoint_name,omitempty"`
	Number         string     `json:"number,omitempty"`
	Address        string     `json:"address,omitempty"`
	DialString     string     `json:"dial_string"`
	CallerIDNumber string     `json:"caller_id_number,omitempty"`
	CallerIDName   string     `json:"caller_id_name,omitempty"`
	RingTimeoutMS  int        `json:"ring_timeout_ms"`
	Rate           *LegRate   `json:"rate,omitempty"`
	Direction      *Direction `json:"direction,omitempty"`
	MaxDurationS   int        `json:"max_duration_s,omitempty"`
}

// Fork is a channel ringing a target alongside the leg's own channel. The
// first channel to answer becomes the leg's; the others are hung up
// (LOSE_RACE, as FreeSWITCH's own group dialing does).
type Fork struct {
	UUID      string    `json:"uuid"`
	Target    int       `json:"target"`
	Status    LegStatus `json:"status"`
	DialedAt  time.Time `json:"dialed_at,omitzero"`
	RingingAt time.Time `json:"ringing_at,omitzero"`
}

// LegTry is a channel a leg had before its current one.
type LegTry struct {
	EndpointID   string    `json:"endpoint_id,omitempty"`
	EndpointName string    `json:"endpoint_name,omitempty"`
	Address      string    `json:"address,omitempty"`
	UUID         string    `json:"uuid"`
	HangupCause  string    `json:"hangup_cause,omitempty"`
	SIPStatus    int       `json:"sip_status,omitempty"`
	DialedAt     time.Time `json:"dialed_at,omitzero"`
	EndedAt      time.Time `json:"ended_at,omitzero"`
}

// Attempt is a failed attempt of a redialed call.
type Attempt struct {
	Number      int           `json:"number"`
	FailedLeg   Role          `json:"failed_leg"`
	Reason      FailureReason `json:"reason"`
	HangupCause string        `json:"hangup_cause,omitempty"`
	SIPStatus   int           `json:"sip_status,omitempty"`
	StartedAt   time.Time     `json:"started_at,omitzero"`
	EndedAt     time.Time     `json:"ended_at,omitzero"`
}

// LegRate is the rate a leg was authorized with (ringback.rating.v1.AppliedRate).
type LegRate struct {
	TariffID            string `json:"tariff_id"`
	Prefix              string `json:"prefix"`
	Destination         string `json:"destination"`
	PerMinuteMicros     int64  `json:"rate_per_minute_micros"`
	ConnectionFeeMicros int64  `json:"connection_fee_micros"`
	MinSeconds          int32  `json:"min_seconds"`
	IncrementSeconds    int32  `json:"increment_seconds"`
	Currency            string `json:"currency"`
}

// Billing is the part of the rate that prices the leg.
func (r *LegRate) Billing() billing.Rate {
	return billing.Rate{PerMinuteMicros: r.PerMinuteMicros, ConnectionFeeMicros: r.ConnectionFeeMicros,
		MinSeconds: r.MinSeconds, IncrementSeconds: r.IncrementSeconds}
}

// Direction is where a leg's number is (ringback.rating.v1.Direction).
type Direction struct {
	Country     string   `json:"country,omitempty"`
	CountryName string   `json:"country_name,omitempty"`
	Region      string   `json:"region,omitempty"`
	Carrier     string   `json:"carrier,omitempty"`
	LineType    string   `json:"line_type,omitempty"` // LINE_TYPE_* name
	TimeZones   []string `json:"time_zones,omitempty"`
	Valid       bool     `json:"valid,omitempty"`
}

// Call is one request to connect two parties, or to play one party an
// announcement. It is the engine's unit of state: kept in Redis while live
// and published whole with every event.
//
// An AnnouncementOnly call has one party: First hears the announcement and
// is hung up when it ends. Its Second is the zero Leg (no role, no channel,
// never up and never pending), and the API shows no second leg.
type Call struct {
	ID               string        `json:"id"`
	AccountID        string        `json:"account_id"`
	Source           string        `json:"source"`
	CampaignID       string        `json:"campaign_id,omitempty"`
	Mode             Mode          `json:"mode"`
	Status           Status        `json:"status"`
	FailedLeg        Role          `json:"failed_leg,omitempty"`
	FailureReason    FailureReason `json:"failure_reason,omitempty"`
	First            Leg           `json:"first"`
	Second           Leg           `json:"second"`
	Announcement     string        `json:"announcement,omitempty"`
	Announced        bool          `json:"announced,omitempty"`
	AnnouncementOnly bool          `json:"announcement_only,omitempty"` // one party: see Call
	// Menu, when set, makes the announcement a menu's prompt (see Menu);
	// Digits and MenuChoice are what the party chose.
	Menu       *Menu      `json:"menu,omitempty"`
	Digits     string     `json:"digits,omitempty"`
	MenuChoice MenuAction `json:"menu_choice,omitempty"`
	// MachineDetection runs mod_amd on the first party's answer;
	// MachineResult is its amd_result. MachineMessage is left on a machine
	// after its beep; MachineMessageLeft says it played to the end.
	MachineDetection   bool   `json:"machine_detection,omitempty"`
	MachineMessage     string `json:"machine_message,omitempty"`
	MachineResult      string `json:"machine_result,omitempty"`
	MachineMessageLeft bool   `json:"machine_message_left,omitempty"`
	// Media is what the first leg is doing in the ringback dialplan
	// context, where FreeSWITCH rather than the engine drives it for a
	// while; empty when it is parked under the engine's control.
	Media MediaStep `json:"media,omitempty"`
	// Session, set, makes the call an agent's session: its one party is
	// put in this conference room on answer and kept there (see
	// agentroom.go). AwaitAgent, set, makes the answered party wait for
	// ConnectCall; AwaitUntil is when the wait ends while it lasts.
	// Conference is the room the first party was sent to (and is in once
	// BridgedAt is set); Abandoned says the wait ended with no agent.
	Session    string      `json:"session,omitempty"`
	AwaitAgent *AwaitAgent `json:"await_agent,omitempty"`
	AwaitUntil time.Time   `json:"await_until,omitzero"`
	Conference string      `json:"conference,omitempty"`
	Abandoned  bool        `json:"abandoned,omitempty"`
	// Released: the dialer ended the call unanswered (Engine.Release).
	// RingSeen is when this service saw the first leg ring, on its own
	// clock (the legs' times are the switch's): Release counts the ring
	// from it, never longer than the switch rang.
	Released         bool      `json:"released,omitempty"`
	RingSeen         time.Time `json:"ring_seen,omitzero"`
	MaxDurationS     int       `json:"max_duration_s,omitempty"`
	ReminderTimeoutS int       `json:"reminder_timeout_s,omitempty"`
	// VisitorLeg is the leg reaching a banner's visitor (campaign calls).
	VisitorLeg Role `json:"visitor_leg,omitempty"`
	// Attempt counts the attempts from 1; a campaign call whose visitor
	// could not be reached is redialed up to MaxAttempts, RedialIntervalS
	// apart. NextAttemptAt is set while the call waits, QUEUED, for its
	// next attempt (or for the campaign to open).
	Attempt          int       `json:"attempt,omitempty"`
	MaxAttempts      int       `json:"max_attempts,omitempty"`
	RedialIntervalS  int       `json:"redial_interval_s,omitempty"`
	NextAttemptAt    time.Time `json:"next_attempt_at,omitzero"`
	AttemptStartedAt time.Time `json:"attempt_started_at,omitzero"`
	Attempts         []Attempt `json:"attempts,omitempty"`
	// Outcome is a campaign call's end in the click-to-call spec's words.
	Outcome       string            `json:"outcome,omitempty"`
	CallbackOf    string            `json:"callback_of,omitempty"`
	PriceMicros   int64             `json:"price_micros,omitempty"`
	PriceCurrency string            `json:"price_currency,omitempty"`
	Variables     map[string]string `json:"variables,omitempty"`
	Node          string            `json:"node"`
	HangupCause   string            `json:"hangup_cause,omitempty"`
	Owner         string            `json:"owner"`           // origination instance driving it
	Seq           int64             `json:"seq"`             // last event sequence published
	Version       int64             `json:"version"`         // optimistic concurrency in the store
	Locks         []string          `json:"locks,omitempty"` // endpoint IDs held busy by this call
	// Ending is the outcome decided while legs are still being torn down;
	// it becomes Status once no leg is up.
	Ending Status `json:"ending,omitempty"`
	// Pending is the outbox: events recorded with a state change and not
	// yet acknowledged by the bus.
	Pending    []Pending `json:"pending,omitempty"`
	outbox     []Pending // recorded by the change being applied
	CreatedAt  time.Time `json:"created_at"`
	AnsweredAt time.Time `json:"answered_at,omitzero"`
	BridgedAt  time.Time `json:"bridged_at,omitzero"`
	EndedAt    time.Time `json:"ended_at,omitzero"`
}

// oneParty reports whether the call has no second party: an
// announcement-only call, an agent's session or a call waiting for an
// agent.
func (c *Call) oneParty() bool {
	return c.AnnouncementOnly || c.Session != "" || c.AwaitAgent != nil
}

// Leg returns the leg with the given role.
func (c *Call) Leg(r Role) *Leg {
	if r == RoleSecond {
		return &c.Second
	}
	return &c.First
}

// Other returns the other leg.
func (c *Call) Other(r Role) *Leg {
	if r == RoleSecond {
		return &c.First
	}
	return &c.Second
}

// DurationS is the call's length so far or in total, in whole seconds.
func (c *Call) DurationS(now time.Time) int {
	end := c.EndedAt
	if end.IsZero() {
		end = now
	}
	return int(end.Sub(c.CreatedAt) / time.Second)
}

// Billsec is how long the parties were connected, in whole seconds: from
// the bridge to the end. An announcement-only call has no bridge; its
// billsec is its one leg's, from the answer to the end, whether the
// announcement played to the end or not: that is the time the leg is
// charged for.
func (c *Call) Billsec(now time.Time) int {
	start := c.BridgedAt
	if c.AnnouncementOnly {
		start = c.First.AnsweredAt
	}
	if start.IsZero() {
		return 0
	}
	end := c.EndedAt
	if end.IsZero() {
		end = now
	}
	return int(end.Sub(start) / time.Second)
}

// NormalizeNumber validates a phone number and returns it in E.164 form
// (+ and 7 to 15 digits, no leading zero). Spaces, dashes, dots and
// parentheses are tolerated as people type them.
func NormalizeNumber(s string) (string, error) { return phone.E164(s) }
