package gateway

import (
	"time"

	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
)

// States of a banner call as the visitor's widget shows them. The widget
// depends on these exact codes.
const (
	StateQueued         = "queued"          // accepted, waiting to be dialed
	StateScheduled      = "scheduled"       // waiting for the campaign's opening hours
	StateRedialing      = "redialing"       // the visitor was not reached; another attempt is scheduled
	StateCallingYou     = "calling_you"     // the visitor's phone is dialed or rings
	StateCallingCompany = "calling_company" // the company is dialed before the visitor
	StateConnecting     = "connecting"      // the visitor answered; the company is being connected
	StateConnected      = "connected"       // both talk
	StateEnded          = "ended"           // completed after talking
	StateCanceled       = "canceled"
	StateFailedVisitor  = "failed_visitor" // the visitor could not be reached
	StateFailedCompany  = "failed_company" // the company could not be reached
)

// PublicCall is what a visitor may see of a banner call: its progress in
// the widget's words, never legs, numbers, endpoints or prices.
type PublicCall struct {
	ID         string `json:"id"`
	CampaignID string `json:"campaignId"`
	// State is one of the State* codes.
	State string `json:"state"`
	// Status is the CallStatus name (CALL_STATUS_RINGING, ...).
	Status string `json:"status"`
	// Outcome is the click-to-call outcome once the call ended
	// ("FAILED CALLING TO USER", ...); omitted while live.
	Outcome string `json:"outcome,omitempty"`
	// FailureReason is the FailureReason name, omitted when unspecified.
	FailureReason string `json:"failureReason,omitempty"`
	Attempt       int32  `json:"attempt"`
	MaxAttempts   int32  `json:"maxAttempts"`
	// NextAttemptAt (RFC 3339) is when a redial or a scheduled call starts.
	NextAttemptAt string `json:"nextAttemptAt,omitempty"`
	// RetryInS is the whole seconds until NextAttemptAt (rounded up, at
	// least 0), only in the redialing and scheduled states.
	RetryInS *int64 `json:"retryInS,omitempty"`
	// FirstParty is who is called first: "visitor" or "company".
	FirstParty string `json:"firstParty"`
}

// publicCallBody is the JSON of GET /v1/calls/{id}?token= and of each SSE
// message.
type publicCallBody struct {
	Call PublicCall `json:"call"`
}

// publicView computes a call's public view at now.
func publicView(c *originationv1.Call, now time.Time) PublicCall {
	v := PublicCall{
		ID:          c.GetId(),
		CampaignID:  c.GetCampaignId(),
		State:       callState(c),
		Status:      c.GetStatus().String(),
		Outcome:     c.GetOutcome(),
		Attempt:     c.GetAttempt(),
		MaxAttempts: c.GetMaxAttempts(),
		FirstParty:  "visitor",
	}
	if fr := c.GetFailureReason(); fr != originationv1.FailureReason_FAILURE_REASON_UNSPECIFIED {
		v.FailureReason = fr.String()
	}
	if c.GetVisitorLeg() == originationv1.LegRole_LEG_ROLE_SECOND {
		v.FirstParty = "company"
	}
	if next := c.GetNextAttemptAt(); next != nil {
		at := next.AsTime()
		v.NextAttemptAt = at.UTC().Format(time.RFC3339)
		if v.State == StateRedialing || v.State == StateScheduled {
			s := int64(0)
			if d := at.Sub(now); d > 0 {
				s = int64((d + time.Second - 1) / time.Second)
			}
			v.RetryInS = &s
		}
	}
	return v
}

// callState maps a call to its State* code.
func callState(c *originationv1.Call) string {
	switch c.GetStatus() {
	case originationv1.CallStatus_CALL_STATUS_COMPLETED:
		return StateEnded
	case originationv1.CallStatus_CALL_STATUS_CANCELED:
		return StateCanceled
	case originationv1.CallStatus_CALL_STATUS_FAILED:
		if c.GetFailedLeg() == visitorRole(c) {
			return StateFailedVisitor
		}
		return StateFailedCompany
	case originationv1.CallStatus_CALL_STATUS_QUEUED:
		switch {
		case c.GetNextAttemptAt() == nil:
			return StateQueued
		case c.GetAttempt() > 1:
			return StateRedialing
		default:
			return StateScheduled
		}
	case originationv1.CallStatus_CALL_STATUS_BRIDGED:
		return StateConnected
	}
	visitor, company := legs(c)
	switch visitor.GetStatus() {
	case originationv1.LegStatus_LEG_STATUS_DIALING, originationv1.LegStatus_LEG_STATUS_RINGING:
		return StateCallingYou
	case originationv1.LegStatus_LEG_STATUS_ANSWERED:
		return StateConnecting
	case originationv1.LegStatus_LEG_STATUS_FAILED:
		// The attempt is ending without the visitor: the next snapshot
		// says whether it is redialed or failed. Until then the visitor
		// is still "being called", never back to "queued".
		return StateCallingYou
	case originationv1.LegStatus_LEG_STATUS_HUNGUP:
		if c.GetBridgedAt() != nil {
			return StateConnected // about to complete
		}
		return StateConnecting
	case originationv1.LegStatus_LEG_STATUS_PENDING, originationv1.LegStatus_LEG_STATUS_UNSPECIFIED:
		// A leg not created yet counts as pending.
		switch company.GetStatus() {
		case originationv1.LegStatus_LEG_STATUS_DIALING, originationv1.LegStatus_LEG_STATUS_RINGING, originationv1.LegStatus_LEG_STATUS_ANSWERED,
			originationv1.LegStatus_LEG_STATUS_HUNGUP, originationv1.LegStatus_LEG_STATUS_FAILED:
			return StateCallingCompany
		}
	}
	return StateQueued
}

// visitorRole is the visitor's leg: LEG_ROLE_FIRST unless the call says otherwise.
func visitorRole(c *originationv1.Call) originationv1.LegRole {
	if c.GetVisitorLeg() == originationv1.LegRole_LEG_ROLE_SECOND {
		return originationv1.LegRole_LEG_ROLE_SECOND
	}
	return originationv1.LegRole_LEG_ROLE_FIRST
}

// legs returns the visitor's leg and the company's.
func legs(c *originationv1.Call) (visitor, company *originationv1.Leg) {
	if visitorRole(c) == originationv1.LegRole_LEG_ROLE_SECOND {
		return c.GetSecond(), c.GetFirst()
	}
	return c.GetFirst(), c.GetSecond()
}

// finalStatus reports whether a call has ended.
func finalStatus(s originationv1.CallStatus) bool {
	switch s {
	case originationv1.CallStatus_CALL_STATUS_COMPLETED, originationv1.CallStatus_CALL_STATUS_FAILED, originationv1.CallStatus_CALL_STATUS_CANCELED:
		return true
	}
	return false
}

// progress orders the snapshots of one call: it only grows as the call
// advances (a redial raises the attempt, so its QUEUED is ahead of the
// failed attempt's states). The status stream uses it to drop an event
// older than the state it already sent, which the core NATS subscription
// may deliver after the GetCall it was opened with (the outbox publishes
// events after they are committed).
func progress(c *originationv1.Call) int {
	rank := 0
	switch s := c.GetStatus(); {
	case finalStatus(s):
		rank = 9
	case s >= originationv1.CallStatus_CALL_STATUS_QUEUED && s <= originationv1.CallStatus_CALL_STATUS_BRIDGED:
		rank = int(s) // QUEUED 1 ... BRIDGED 5, in the order a call goes through them
	}
	leg := func(l *originationv1.Leg) int {
		switch l.GetStatus() {
		case originationv1.LegStatus_LEG_STATUS_DIALING:
			return 1
		case originationv1.LegStatus_LEG_STATUS_RINGING:
			return 2
		case originationv1.LegStatus_LEG_STATUS_ANSWERED:
			return 3
		case originationv1.LegStatus_LEG_STATUS_HUNGUP, originationv1.LegStatus_LEG_STATUS_FAILED:
			return 4
		}
		return 0
	}
	return int(c.GetAttempt())*1000 + rank*10 + leg(c.GetFirst()) + leg(c.GetSecond())
}
