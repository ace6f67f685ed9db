package cdr

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/ringback/ringback/proto/gen/go/ringback/events/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	ratingv1 "github.com/ringback/ringback/proto/gen/go/ringback/rating/v1"
	"github.com/ringback/ringback/services/internal/ids"
	"github.com/ringback/ringback/services/internal/store"
	"github.com/ringback/ringback/services/internal/store/storetest"
)

// tdbOpen returns a Store on a fresh database of the test's own, with
// cdr's schema applied.
func tdbOpen(t testing.TB) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := store.Open(ctx, storetest.NewDatabase(t), store.Options{AppName: "cdr-test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if err := store.Migrate(ctx, pool, "cdr", Migrations()); err != nil {
		t.Fatal(err)
	}
	return &Store{DB: pool}
}

// tdbAs is a request context acting for account, as the gateway sends it.
func tdbAs(account string) context.Context {
	return metadata.NewIncomingContext(context.Background(), metadata.Pairs(AccountHeader, account))
}

// tdbClock is a clock that starts at start and advances a second at every
// reading, so that what is stamped in turn is ordered.
func tdbClock(start time.Time) func() time.Time {
	var n atomic.Int64
	return func() time.Time { return start.Add(time.Duration(n.Add(1)-1) * time.Second) }
}

// tdbWantErr fails unless err is an Error with code and reason whose
// message contains msg.
func tdbWantErr(t *testing.T, err error, code codes.Code, reason, msg string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want %s %s", err, code, reason)
	}
	if e.Code != code || e.Reason != reason || !strings.Contains(e.Msg, msg) {
		t.Fatalf("err = %s %s %q, want %s %s with %q", e.Code, e.Reason, e.Msg, code, reason, msg)
	}
}

// tevSpec describes a test call; zero fields get tevCall's defaults.
type tevSpec struct {
	ID        string // default: a new id
	Account   string // default: acct-a
	Campaign  string
	Created   time.Time                   // detect time; default 2024-03-04T01:00:00Z
	Status    originationv1.CallStatus    // default COMPLETED
	FailedLeg originationv1.LegRole       // of a FAILED call
	Reason    originationv1.FailureReason // of a FAILED call
	// Endpoints the legs dial; empty: a phone number.
	FirstEndpoint, SecondEndpoint string
	DurationS, Billsec            int32
	FirstCost, SecondCost         int64
	Unrated                       bool // legs without a rate (no currency)
	// A click-to-call campaign call: the leg reaching the banner's visitor
	// (unset: none, as calls outside campaigns and records from before
	// campaigns have), the attempt it ended on (default 1 for campaign
	// calls; earlier ones failed on the visitor's leg) and the campaign's
	// price per completed call (in EUR).
	VisitorLeg  originationv1.LegRole
	Attempt     int32
	PriceMicros int64
}

// tevCall builds the final event of a call as origination publishes it:
// the whole call, both legs with their parties, rates, directions, times,
// statuses, causes and costs.
func tevCall(s tevSpec) *eventsv1.CallEvent {
	if s.ID == "" {
		s.ID = ids.NewV7()
	}
	if s.Account == "" {
		s.Account = "acct-a"
	}
	if s.Created.IsZero() {
		s.Created = time.Date(2024, 3, 4, 1, 0, 0, 0, time.UTC)
	}
	if s.Status == 0 {
		s.Status = originationv1.CallStatus_CALL_STATUS_COMPLETED
	}
	at := func(sec int) *timestamppb.Timestamp {
		return timestamppb.New(s.Created.Add(time.Duration(sec) * time.Second))
	}
	end := at(int(s.DurationS))
	leg := func(role originationv1.LegRole, endpoint, number string, cost int64) *originationv1.Leg {
		l := &originationv1.Leg{
			Role: role, CallerIdNumber: "+15550001111", RingTimeoutMs: 30000, Uuid: ids.NewV4(),
			Direction:  &ratingv1.Direction{Country: "MX", CountryName: "Mexico", Region: "Ciudad de México", LineType: ratingv1.LineType_LINE_TYPE_MOBILE, Valid: true},
			CostMicros: cost, StartedAt: at(1), RingingAt: at(2), EndedAt: end,
			Status: originationv1.LegStatus_LEG_STATUS_HUNGUP, HangupCause: "NORMAL_CLEARING", SipStatus: 200,
		}
		if endpoint != "" {
			l.Party = &originationv1.PartyRef{Target: &originationv1.PartyRef_EndpointId{EndpointId: endpoint}}
			l.Address = "user/" + endpoint
			l.EndpointName = "Agent " + endpoint
		} else {
			l.Party = &originationv1.PartyRef{Target: &originationv1.PartyRef_Number{Number: number}}
			l.Address = number
		}
		if !s.Unrated {
			l.Rate = &ratingv1.AppliedRate{TariffId: "tariff-1", Prefix: "52", Destination: "Mexico", RatePerMinuteMicros: 100_000,
				ConnectionFeeMicros: 1_000, MinSeconds: 60, IncrementSeconds: 60, Currency: "USD"}
		}
		return l
	}
	first := leg(originationv1.LegRole_LEG_ROLE_FIRST, s.FirstEndpoint, "+525512345678", s.FirstCost)
	second := leg(originationv1.LegRole_LEG_ROLE_SECOND, s.SecondEndpoint, "+525587654321", s.SecondCost)
	c := &originationv1.Call{
		Id: s.ID, AccountId: s.Account, Source: originationv1.CallSource_CALL_SOURCE_API,
		Mode: originationv1.CallMode_CALL_MODE_SEQUENTIAL, Status: s.Status, First: first, Second: second,
		CreatedAt: at(0), EndedAt: end, DurationS: s.DurationS, Billsec: s.Billsec, CampaignId: s.Campaign,
		Variables: map[string]string{"crm_id": "42"},
	}
	if s.VisitorLeg != originationv1.LegRole_LEG_ROLE_UNSPECIFIED {
		tevCampaign(c, s)
	}
	typ := eventsv1.EventType_EVENT_TYPE_CALL_COMPLETED
	switch s.Status {
	case originationv1.CallStatus_CALL_STATUS_COMPLETED:
		first.AnsweredAt, second.AnsweredAt = at(3), at(5)
		first.Billsec, second.Billsec = s.Billsec, s.Billsec
		c.AnsweredAt, c.BridgedAt, c.HangupCause = at(3), at(5), "NORMAL_CLEARING"
	case originationv1.CallStatus_CALL_STATUS_FAILED:
		typ = eventsv1.EventType_EVENT_TYPE_CALL_FAILED
		c.FailedLeg, c.FailureReason = s.FailedLeg, s.Reason
		failed := first
		if s.FailedLeg == originationv1.LegRole_LEG_ROLE_SECOND {
			failed = second
			first.AnsweredAt, c.AnsweredAt = at(3), at(3)
		} else {
			second.StartedAt, second.RingingAt, second.EndedAt = nil, nil, nil
			second.Status, second.HangupCause, second.SipStatus = originationv1.LegStatus_LEG_STATUS_PENDING, "", 0
		}
		failed.Status, failed.HangupCause, failed.SipStatus = originationv1.LegStatus_LEG_STATUS_FAILED, "USER_BUSY", 486
		c.HangupCause = failed.HangupCause
	case originationv1.CallStatus_CALL_STATUS_CANCELED:
		typ = eventsv1.EventType_EVENT_TYPE_CALL_CANCELED
		second.StartedAt, second.RingingAt, second.EndedAt = nil, nil, nil
		second.Status, second.HangupCause, second.SipStatus = originationv1.LegStatus_LEG_STATUS_PENDING, "", 0
		first.HangupCause, c.HangupCause = "ORIGINATOR_CANCEL", "ORIGINATOR_CANCEL"
	}
	if c.GetVisitorLeg() != originationv1.LegRole_LEG_ROLE_UNSPECIFIED {
		c.Outcome = tevOutcome(c)
	}
	return &eventsv1.CallEvent{EventId: ids.NewV7(), Sequence: 12, OccurredAt: end, AccountId: s.Account, CallId: s.ID,
		Type: typ, Call: c, Node: "node-1"}
}

// tevCampaign makes c a banner's campaign call as origination does: the
// visitor's leg, the attempts (the earlier ones failed on the visitor's
// leg, which is what makes origination redial) and the campaign's price.
func tevCampaign(c *originationv1.Call, s tevSpec) {
	c.Source, c.VisitorLeg = originationv1.CallSource_CALL_SOURCE_BANNER, s.VisitorLeg
	c.Attempt = max(s.Attempt, 1)
	c.MaxAttempts = c.Attempt
	for n := int32(1); n < c.Attempt; n++ {
		c.Attempts = append(c.Attempts, &originationv1.CallAttempt{Number: n, FailedLeg: s.VisitorLeg,
			FailureReason: originationv1.FailureReason_FAILURE_REASON_NO_ANSWER, HangupCause: "NO_ANSWER", SipStatus: 480,
			StartedAt: c.GetCreatedAt(), EndedAt: c.GetCreatedAt()})
	}
	if s.PriceMicros > 0 {
		c.PriceMicros, c.PriceCurrency = s.PriceMicros, "EUR"
	}
}

// tevOutcome names a campaign call's end as origination does.
func tevOutcome(c *originationv1.Call) string {
	switch c.GetStatus() {
	case originationv1.CallStatus_CALL_STATUS_COMPLETED:
		return "COMPLETED"
	case originationv1.CallStatus_CALL_STATUS_FAILED:
		if c.GetFailedLeg() == c.GetVisitorLeg() {
			return "FAILED CALLING TO USER"
		}
		return "FAILED CALLING TO COMPANY"
	case originationv1.CallStatus_CALL_STATUS_CANCELED:
		return "CANCELED"
	}
	return ""
}

// tdbInsert records calls as ingest does: RowFrom on their final events,
// then Store.Insert. It returns the calls' ids.
func tdbInsert(t *testing.T, st *Store, specs ...tevSpec) []string {
	t.Helper()
	rows := make([]Row, 0, len(specs))
	out := make([]string, 0, len(specs))
	for _, s := range specs {
		ev := tevCall(s)
		raw, err := proto.Marshal(ev.GetCall())
		if err != nil {
			t.Fatal(err)
		}
		r, ok := RowFrom(ev, raw)
		if !ok {
			t.Fatalf("RowFrom(%v) made no record", ev)
		}
		rows = append(rows, r)
		out = append(out, r.CallID)
	}
	n, err := st.Insert(context.Background(), rows)
	if err != nil {
		t.Fatal(err)
	}
	if n != int64(len(rows)) {
		t.Fatalf("inserted %d records, want %d", n, len(rows))
	}
	return out
}
