package origination

import (
	"time"

	eventsv1 "github.com/ringback/ringback/proto/gen/go/ringback/events/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	ratingv1 "github.com/ringback/ringback/proto/gen/go/ringback/rating/v1"
	"google.golang.org/protobuf/types/known/timestamppb"
)

func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

var (
	statusToProto = map[Status]originationv1.CallStatus{
		StatusQueued: originationv1.CallStatus_CALL_STATUS_QUEUED, StatusDialing: originationv1.CallStatus_CALL_STATUS_DIALING,
		StatusRinging: originationv1.CallStatus_CALL_STATUS_RINGING, StatusAnswered: originationv1.CallStatus_CALL_STATUS_ANSWERED,
		StatusBridged: originationv1.CallStatus_CALL_STATUS_BRIDGED, StatusCompleted: originationv1.CallStatus_CALL_STATUS_COMPLETED,
		StatusFailed: originationv1.CallStatus_CALL_STATUS_FAILED, StatusCanceled: originationv1.CallStatus_CALL_STATUS_CANCELED,
	}
	legStatusToProto = map[LegStatus]originationv1.LegStatus{
		LegPending: originationv1.LegStatus_LEG_STATUS_PENDING, LegDialing: originationv1.LegStatus_LEG_STATUS_DIALING,
		LegRinging: originationv1.LegStatus_LEG_STATUS_RINGING, LegAnswered: originationv1.LegStatus_LEG_STATUS_ANSWERED,
		LegHungup: originationv1.LegStatus_LEG_STATUS_HUNGUP, LegFailed: originationv1.LegStatus_LEG_STATUS_FAILED,
	}
	reasonToProto = map[FailureReason]originationv1.FailureReason{
		ReasonBusy: originationv1.FailureReason_FAILURE_REASON_BUSY, ReasonNoAnswer: originationv1.FailureReason_FAILURE_REASON_NO_ANSWER,
		ReasonCongestion: originationv1.FailureReason_FAILURE_REASON_CONGESTION, ReasonUnavailable: originationv1.FailureReason_FAILURE_REASON_UNAVAILABLE,
		ReasonNoRoute: originationv1.FailureReason_FAILURE_REASON_NO_ROUTE, ReasonRejected: originationv1.FailureReason_FAILURE_REASON_REJECTED,
		ReasonCanceled: originationv1.FailureReason_FAILURE_REASON_CANCELED, ReasonNotAuthorized: originationv1.FailureReason_FAILURE_REASON_NOT_AUTHORIZED,
		ReasonInternal: originationv1.FailureReason_FAILURE_REASON_INTERNAL, ReasonMachine: originationv1.FailureReason_FAILURE_REASON_MACHINE,
		ReasonNoAgent:    originationv1.FailureReason_FAILURE_REASON_NO_AGENT,
		ReasonQueueEmpty: originationv1.FailureReason_FAILURE_REASON_QUEUE_EMPTY, ReasonQueueFull: originationv1.FailureReason_FAILURE_REASON_QUEUE_FULL,
	}
	menuActionToProto = map[MenuAction]originationv1.MenuAction{
		MenuConnect: originationv1.MenuAction_MENU_ACTION_CONNECT, MenuOptOut: originationv1.MenuAction_MENU_ACTION_OPT_OUT,
		MenuEnd: originationv1.MenuAction_MENU_ACTION_END,
	}
	menuActionFromProto = map[originationv1.MenuAction]MenuAction{
		originationv1.MenuAction_MENU_ACTION_CONNECT: MenuConnect, originationv1.MenuAction_MENU_ACTION_OPT_OUT: MenuOptOut,
		originationv1.MenuAction_MENU_ACTION_END: MenuEnd,
	}
	sourceToProto = map[string]originationv1.CallSource{
		"API": originationv1.CallSource_CALL_SOURCE_API, "BANNER": originationv1.CallSource_CALL_SOURCE_BANNER,
		"CALLBACK": originationv1.CallSource_CALL_SOURCE_CALLBACK, "DIALER": originationv1.CallSource_CALL_SOURCE_DIALER,
		"CLICK_TO_DIAL_LEGACY": originationv1.CallSource_CALL_SOURCE_CLICK_TO_DIAL_LEGACY,
	}
	eventToProto = map[EventType]eventsv1.EventType{
		EventCallQueued: eventsv1.EventType_EVENT_TYPE_CALL_QUEUED, EventCallDialing: eventsv1.EventType_EVENT_TYPE_CALL_DIALING,
		EventLegDialing: eventsv1.EventType_EVENT_TYPE_LEG_DIALING,
		EventLegRinging: eventsv1.EventType_EVENT_TYPE_LEG_RINGING, EventLegAnswered: eventsv1.EventType_EVENT_TYPE_LEG_ANSWERED,
		EventLegHangup: eventsv1.EventType_EVENT_TYPE_LEG_HANGUP, EventCallBridged: eventsv1.EventType_EVENT_TYPE_CALL_BRIDGED,
		EventCallCompleted: eventsv1.EventType_EVENT_TYPE_CALL_COMPLETED, EventCallFailed: eventsv1.EventType_EVENT_TYPE_CALL_FAILED,
		EventCallCanceled: eventsv1.EventType_EVENT_TYPE_CALL_CANCELED, EventAnnouncementStarted: eventsv1.EventType_EVENT_TYPE_ANNOUNCEMENT_STARTED,
		EventAnnouncementFinished: eventsv1.EventType_EVENT_TYPE_ANNOUNCEMENT_FINISHED,
		EventCallRedialScheduled:  eventsv1.EventType_EVENT_TYPE_CALL_REDIAL_SCHEDULED,
		EventMenuChoice:           eventsv1.EventType_EVENT_TYPE_MENU_CHOICE,
		EventMachineDetected:      eventsv1.EventType_EVENT_TYPE_MACHINE_DETECTED,
		EventAgentAwaited:         eventsv1.EventType_EVENT_TYPE_AGENT_AWAITED,
		EventConferenceJoined:     eventsv1.EventType_EVENT_TYPE_CONFERENCE_JOINED,
		EventCallAbandoned:        eventsv1.EventType_EVENT_TYPE_CALL_ABANDONED,
	}
)

func roleToProto(r Role) originationv1.LegRole {
	switch r {
	case RoleFirst:
		return originationv1.LegRole_LEG_ROLE_FIRST
	case RoleSecond:
		return originationv1.LegRole_LEG_ROLE_SECOND
	}
	return originationv1.LegRole_LEG_ROLE_UNSPECIFIED
}

func legToProto(l *Leg) *originationv1.Leg {
	out := &originationv1.Leg{
		Role: roleToProto(l.Role), CallerIdNumber: l.CallerIDNumber, CallerIdName: l.CallerIDName,
		RingTimeoutMs: int32(l.RingTimeoutMS), Status: legStatusToProto[l.Status], Uuid: l.UUID,
		HangupCause: l.HangupCause, SipStatus: int32(l.SIPStatus),
		StartedAt: ts(l.DialedAt), RingingAt: ts(l.RingingAt), AnsweredAt: ts(l.AnsweredAt), EndedAt: ts(l.EndedAt),
		EndpointName: l.EndpointName, Address: l.Address,
		MaxDurationS: int32(l.MaxDurationS), Billsec: int32(l.Billsec), CostMicros: l.CostMicros,
	}
	if r := l.Rate; r != nil {
		out.Rate = &ratingv1.AppliedRate{TariffId: r.TariffID, Prefix: r.Prefix, Destination: r.Destination,
			RatePerMinuteMicros: r.PerMinuteMicros, ConnectionFeeMicros: r.ConnectionFeeMicros,
			MinSeconds: r.MinSeconds, IncrementSeconds: r.IncrementSeconds, Currency: r.Currency}
	}
	if d := l.Direction; d != nil {
		out.Direction = &ratingv1.Direction{Country: d.Country, CountryName: d.CountryName, Region: d.Region,
			Carrier: d.Carrier, LineType: ratingv1.LineType(ratingv1.LineType_value[d.LineType]), TimeZones: d.TimeZones, Valid: d.Valid}
	}
	for _, t := range l.Tries {
		out.Tries = append(out.Tries, &originationv1.LegTry{EndpointId: t.EndpointID, EndpointName: t.EndpointName,
			Address: t.Address, Uuid: t.UUID, HangupCause: t.HangupCause, SipStatus: int32(t.SIPStatus),
			StartedAt: ts(t.DialedAt), EndedAt: ts(t.EndedAt)})
	}
	switch {
	case l.EndpointID != "":
		out.Party = &originationv1.PartyRef{Target: &originationv1.PartyRef_EndpointId{EndpointId: l.EndpointID}}
	case l.Number != "":
		out.Party = &originationv1.PartyRef{Target: &originationv1.PartyRef_Number{Number: l.Number}}
	}
	return out
}

// ToProto renders a call for the API and events.
func ToProto(c *Call, now time.Time) *originationv1.Call {
	mode := originationv1.CallMode_CALL_MODE_SEQUENTIAL
	if c.Mode == ModeSimultaneous {
		mode = originationv1.CallMode_CALL_MODE_SIMULTANEOUS
	}
	out := &originationv1.Call{
		Id: c.ID, AccountId: c.AccountID, Source: sourceToProto[c.Source], CampaignId: c.CampaignID, Mode: mode, Status: statusToProto[c.Status],
		FailedLeg: roleToProto(c.FailedLeg), FailureReason: reasonToProto[c.FailureReason],
		First: legToProto(&c.First), Announcement: c.Announcement,
		MaxDurationS: int32(c.MaxDurationS), Variables: c.Variables, ReminderTimeoutS: int32(c.ReminderTimeoutS),
		CreatedAt: ts(c.CreatedAt), AnsweredAt: ts(c.AnsweredAt), BridgedAt: ts(c.BridgedAt), EndedAt: ts(c.EndedAt),
		DurationS: int32(c.DurationS(now)), Billsec: int32(c.Billsec(now)), HangupCause: c.HangupCause,
		VisitorLeg: roleToProto(c.VisitorLeg), Attempt: int32(c.Attempt), MaxAttempts: int32(c.MaxAttempts),
		NextAttemptAt: ts(c.NextAttemptAt), Outcome: c.Outcome, CallbackOf: c.CallbackOf,
		PriceMicros: c.PriceMicros, PriceCurrency: c.PriceCurrency,
		Digits: c.Digits, MenuChoice: menuActionToProto[c.MenuChoice], MachineResult: c.MachineResult,
		MachineMessageLeft: c.MachineMessageLeft, Conference: c.Conference, Abandoned: c.Abandoned,
	}
	if a := c.AwaitAgent; a != nil {
		out.AwaitAgent = &originationv1.AwaitAgent{TimeoutMs: int32(a.TimeoutMS), SafeHarbour: a.SafeHarbour, HoldMusic: a.HoldMusic}
	}
	if !c.oneParty() {
		// An announcement-only call, an agent's session and a call
		// awaiting an agent have no second party: no second leg.
		out.Second = legToProto(&c.Second)
	}
	for _, a := range c.Attempts {
		out.Attempts = append(out.Attempts, &originationv1.CallAttempt{Number: int32(a.Number), FailedLeg: roleToProto(a.FailedLeg),
			FailureReason: reasonToProto[a.Reason], HangupCause: a.HangupCause, SipStatus: int32(a.SIPStatus),
			StartedAt: ts(a.StartedAt), EndedAt: ts(a.EndedAt)})
	}
	return out
}

// EventToProto renders a recorded event; its ID is stable for a (call,
// sequence) so a republished outbox entry is deduplicated by the bus.
func EventToProto(c *Call, snap *Call, p Pending) *eventsv1.CallEvent {
	return &eventsv1.CallEvent{
		EventId: EventID(c.ID, p.Seq), Sequence: uint32(p.Seq), OccurredAt: ts(p.At), AccountId: c.AccountID,
		CallId: c.ID, Type: eventToProto[p.Type], Call: ToProto(snap, p.At), Leg: roleToProto(p.Leg),
		Variables: snap.Variables, Node: snap.Node,
	}
}

// EventID is the event's message ID on the bus.
func EventID(callID string, seq int64) string {
	return callID + "." + itoa(seq)
}

func itoa(n int64) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}
