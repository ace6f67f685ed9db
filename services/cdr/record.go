package cdr

import (
	"math"
	"sort"
	"strconv"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	cdrv1 "github.com/ringback/ringback/proto/gen/go/ringback/cdr/v1"
	eventsv1 "github.com/ringback/ringback/proto/gen/go/ringback/events/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
)

// Row is one record as stored: the columns queries filter on and the call
// snapshot it was built from.
type Row struct {
	CallID, AccountID                         string
	CreatedAt, AnsweredAt, BridgedAt, EndedAt time.Time // zero: unset
	Status, Source, FailedLeg, FailureReason  int16
	CampaignID, HangupCause                   string
	FirstNumber, SecondNumber                 string
	FirstEndpoint, SecondEndpoint             string
	FirstCountry, SecondCountry               string
	DurationS, Billsec                        int32
	CostMicros, AccessFeeMicros               int64
	Currency                                  string
	Sequence                                  int32
	Call                                      []byte // originationv1.Call, protobuf
	// VisitorLeg is the LegRole reaching a campaign's visitor (0 outside
	// campaigns); Attempts the attempts the call took, at least 1.
	VisitorLeg, Attempts int16
	// PriceMicros is the call's price as given, whatever its status: the
	// statistics bill it for completed calls only, and keeping it lets a
	// query tell a priced campaign's failed calls from an unpriced one's.
	PriceMicros int64
}

// Final reports whether an event ends its call (and so makes a record).
func Final(t eventsv1.EventType) bool {
	switch t {
	case eventsv1.EventType_EVENT_TYPE_CALL_COMPLETED, eventsv1.EventType_EVENT_TYPE_CALL_FAILED,
		eventsv1.EventType_EVENT_TYPE_CALL_CANCELED:
		return true
	}
	return false
}

// FinalSubjects are the subjects of the events that make records.
var FinalSubjects = []string{"calls.*.*.call_completed", "calls.*.*.call_failed", "calls.*.*.call_canceled"}

// legNumber is what a leg dialed when it is a phone number: the party's
// number, or an external-number endpoint's address.
func legNumber(l *originationv1.Leg) string {
	if n := l.GetParty().GetNumber(); n != "" {
		return n
	}
	if a := l.GetAddress(); len(a) > 1 && a[0] == '+' {
		return a
	}
	return ""
}

// Charges are a call's money figures from its legs: the total cost, the
// connection fees of the answered legs and the currency of the rated legs.
func Charges(c *originationv1.Call) (cost, accessFee int64, currency string) {
	for _, l := range []*originationv1.Leg{c.GetFirst(), c.GetSecond()} {
		cost += l.GetCostMicros()
		r := l.GetRate()
		if r == nil {
			continue
		}
		if currency == "" {
			currency = r.GetCurrency()
		}
		if l.GetAnsweredAt() != nil {
			accessFee += r.GetConnectionFeeMicros()
		}
	}
	return cost, accessFee, currency
}

func tsTime(t *timestamppb.Timestamp) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.AsTime()
}

// RowFrom builds the record of a call from its final event; raw is the
// event's call snapshot encoded (stored as is). ok is false when the event
// cannot make a record (not final, or without a call).
func RowFrom(ev *eventsv1.CallEvent, raw []byte) (Row, bool) {
	c := ev.GetCall()
	if !Final(ev.GetType()) || c.GetId() == "" || c.GetAccountId() == "" || c.GetCreatedAt() == nil {
		return Row{}, false
	}
	cost, fee, cur := Charges(c)
	end := tsTime(c.GetEndedAt())
	if end.IsZero() {
		end = tsTime(ev.GetOccurredAt())
	}
	r := Row{
		CallID: c.GetId(), AccountID: c.GetAccountId(),
		CreatedAt: tsTime(c.GetCreatedAt()), AnsweredAt: tsTime(c.GetAnsweredAt()), BridgedAt: tsTime(c.GetBridgedAt()), EndedAt: end,
		Status: int16(c.GetStatus()), Source: int16(c.GetSource()), FailedLeg: int16(c.GetFailedLeg()), FailureReason: int16(c.GetFailureReason()),
		CampaignID: c.GetCampaignId(), HangupCause: c.GetHangupCause(),
		FirstNumber: legNumber(c.GetFirst()), SecondNumber: legNumber(c.GetSecond()),
		FirstEndpoint: c.GetFirst().GetParty().GetEndpointId(), SecondEndpoint: c.GetSecond().GetParty().GetEndpointId(),
		FirstCountry: c.GetFirst().GetDirection().GetCountry(), SecondCountry: c.GetSecond().GetDirection().GetCountry(),
		DurationS: c.GetDurationS(), Billsec: c.GetBillsec(),
		CostMicros: cost, AccessFeeMicros: fee, Currency: cur,
		Sequence: int32(ev.GetSequence()), Call: raw,
		VisitorLeg: int16(c.GetVisitorLeg()), Attempts: attempts(c.GetAttempt()), PriceMicros: c.GetPriceMicros(),
	}
	return r, true
}

// attempts is a call's attempt number as the attempts column holds it:
// snapshots from before redials have 0, which was one attempt; the column
// is a smallint, and origination allows far fewer attempts than it holds.
func attempts(n int32) int16 {
	return int16(min(max(n, 1), math.MaxInt16))
}

// Record is the API form of a stored call.
func Record(c *originationv1.Call, recordedAt time.Time) *cdrv1.Cdr {
	cost, fee, cur := Charges(c)
	return &cdrv1.Cdr{Call: c, CostMicros: cost, AccessFeeMicros: fee, Currency: cur, RecordedAt: timestamppb.New(recordedAt)}
}

// Timeline is what happened to a call, in order, as its final snapshot
// tells it.
func Timeline(c *originationv1.Call) []*cdrv1.TimelineEntry {
	var out []*cdrv1.TimelineEntry
	add := func(t *timestamppb.Timestamp, typ eventsv1.EventType, leg originationv1.LegRole, detail string) {
		if t != nil {
			out = append(out, &cdrv1.TimelineEntry{At: t, Type: typ, Leg: leg, Detail: detail})
		}
	}
	add(c.GetCreatedAt(), eventsv1.EventType_EVENT_TYPE_CALL_QUEUED, 0, "")
	for _, l := range []*originationv1.Leg{c.GetFirst(), c.GetSecond()} {
		role := l.GetRole()
		add(l.GetStartedAt(), eventsv1.EventType_EVENT_TYPE_LEG_DIALING, role, l.GetAddress())
		add(l.GetRingingAt(), eventsv1.EventType_EVENT_TYPE_LEG_RINGING, role, "")
		add(l.GetAnsweredAt(), eventsv1.EventType_EVENT_TYPE_LEG_ANSWERED, role, "")
		if l.GetEndedAt() != nil {
			d := l.GetHangupCause()
			if s := l.GetSipStatus(); s != 0 {
				d += " (SIP " + strconv.Itoa(int(s)) + ")"
			}
			add(l.GetEndedAt(), eventsv1.EventType_EVENT_TYPE_LEG_HANGUP, role, d)
		}
	}
	add(c.GetBridgedAt(), eventsv1.EventType_EVENT_TYPE_CALL_BRIDGED, 0, "")
	switch c.GetStatus() {
	case originationv1.CallStatus_CALL_STATUS_COMPLETED:
		add(c.GetEndedAt(), eventsv1.EventType_EVENT_TYPE_CALL_COMPLETED, 0, c.GetHangupCause())
	case originationv1.CallStatus_CALL_STATUS_CANCELED:
		add(c.GetEndedAt(), eventsv1.EventType_EVENT_TYPE_CALL_CANCELED, 0, c.GetHangupCause())
	case originationv1.CallStatus_CALL_STATUS_FAILED:
		add(c.GetEndedAt(), eventsv1.EventType_EVENT_TYPE_CALL_FAILED, c.GetFailedLeg(), c.GetFailureReason().String())
	}
	// Stable: equal times keep the order above (call, then first leg,
	// then second, then the end).
	sort.SliceStable(out, func(i, j int) bool { return out[i].GetAt().AsTime().Before(out[j].GetAt().AsTime()) })
	return out
}
