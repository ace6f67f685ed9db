package origination

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ringback/ringback/services/internal/billing"
)

// fakeRater rates every number with one rate, except refused prefixes;
// Reserve grants what granted says.
type fakeRater struct {
	mu       sync.Mutex
	refuse   map[string]error // number prefix -> refusal
	maxS     int              // Authorize's max_duration_s (0: postpaid)
	granted  int
	reserved []string
	fail     error // Authorize transport failure
	// authorized lists the numbers asked about, in order.
	authorized []string
}

var testRate = &LegRate{TariffID: "t1", Prefix: "1", Destination: "US", PerMinuteMicros: 60_000, ConnectionFeeMicros: 1_000,
	MinSeconds: 30, IncrementSeconds: 6, Currency: "USD"}

func (f *fakeRater) Authorize(_ context.Context, _, number string, _ Role, _ string) (LegRating, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.authorized = append(f.authorized, number)
	if f.fail != nil {
		return LegRating{}, f.fail
	}
	for p, err := range f.refuse {
		if strings.HasPrefix(number, p) {
			return LegRating{}, err
		}
	}
	return LegRating{Rate: testRate, Direction: &Direction{Country: "US", LineType: "LINE_TYPE_FIXED_LINE_OR_MOBILE"}, MaxDurationS: f.maxS}, nil
}

func (f *fakeRater) Reserve(_ context.Context, c *Call, role Role) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reserved = append(f.reserved, c.ID+"/"+string(role))
	return f.granted, nil
}

func refusalStatus(reason string) error {
	st, _ := status.New(codes.FailedPrecondition, "no rate").WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: "rating.ringback.dev"})
	return st.Err()
}

// reasonOf is the ErrorInfo reason clients see for an engine error.
func reasonOf(err error) string {
	for _, d := range status.Convert(GRPCError(err)).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

func TestRatingRefusalDialsNothing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		rater  *fakeRater
		second string
		want   string
	}{
		{"second party not supported", &fakeRater{refuse: map[string]error{"+88": refusalStatus("DESTINATION_NOT_SUPPORTED")}}, "+8801712345678", "DESTINATION_NOT_SUPPORTED"},
		{"rating down", &fakeRater{fail: fmt.Errorf("%w: connection refused", ErrRatingUnavailable)}, "+15551230002", "RATING_UNAVAILABLE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			h.e.UseRater(tt.rater)
			_, err := h.e.Create(context.Background(), CreateRequest{AccountID: "acct-1",
				First: PartySpec{Number: "+15551230001"}, Second: PartySpec{Number: tt.second}})
			if err == nil || reasonOf(err) != tt.want {
				t.Fatalf("Create: %v, want %s", err, tt.want)
			}
			if tt.want == "RATING_UNAVAILABLE" && status.Code(GRPCError(err)) != codes.Unavailable {
				t.Fatalf("rating down maps to %v", status.Code(GRPCError(err)))
			}
			if tt.want == "DESTINATION_NOT_SUPPORTED" && status.Code(GRPCError(err)) != codes.FailedPrecondition {
				t.Fatalf("refusal maps to %v", status.Code(GRPCError(err)))
			}
			time.Sleep(20 * time.Millisecond)
			h.noCmd("originate")
			if len(h.pub.list()) != 0 {
				t.Fatalf("a refused call published %v", h.pub.list())
			}
		})
	}
}

func TestRatedLegsCarryRateAndCost(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := &fakeRater{maxS: 120, granted: 90}
	h.e.UseRater(r)
	// The first party is the account's own endpoint: not rated.
	c := h.create(CreateRequest{First: PartySpec{EndpointID: "agent-7"}, Second: PartySpec{Number: "+15551230002"}})
	if c.First.Rate != nil || c.Second.Rate == nil || c.Second.Direction.Country != "US" || c.Second.MaxDurationS != 120 {
		t.Fatalf("legs: first %+v second %+v", c.First, c.Second)
	}
	h.waitCmd("originate first")
	h.event(c, RoleFirst, "CHANNEL_ANSWER", "", 0)
	h.waitCmd("originate second")
	h.noCmd("sched_hangup " + c.First.UUID) // unrated legs have no paid time
	answered := time.Now().UTC()
	h.e.HandleEvent(SwitchEvent{Node: "fs1", Name: "CHANNEL_ANSWER", UUID: c.Second.UUID, CallID: c.ID, At: answered})
	if got := h.waitCmd("sched_hangup " + c.Second.UUID); got != "sched_hangup "+c.Second.UUID+" 1m30s ALLOTTED_TIMEOUT" {
		t.Fatalf("paid time: %q", got)
	}
	h.e.HandleEvent(SwitchEvent{Node: "fs1", Name: "CHANNEL_HANGUP_COMPLETE", UUID: c.Second.UUID, CallID: c.ID,
		Cause: "NORMAL_CLEARING", At: answered.Add(31500 * time.Millisecond)})
	h.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "NORMAL_CLEARING", 0)
	done := h.waitStatus(c.ID, StatusFailed)
	// 31.5 s is billsec 31 (truncated); 30/6 bills 36 s: 36000 + the 1000 fee.
	if done.Second.Billsec != 31 || done.Second.CostMicros != 37_000 ||
		done.Second.CostMicros != billing.Cost(testRate.Billing(), 31) || done.First.CostMicros != 0 {
		t.Fatalf("billed: second %d s %d micros; first %d micros", done.Second.Billsec, done.Second.CostMicros, done.First.CostMicros)
	}
	if len(r.reserved) != 1 || r.reserved[0] != c.ID+"/second" {
		t.Fatalf("reservations: %v", r.reserved)
	}
}

func TestLegCutWhenTheBalanceIsGone(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.e.UseRater(&fakeRater{maxS: 60, granted: 0}) // spent by other calls since authorization
	c := h.create(CreateRequest{First: PartySpec{Number: "+15551230001"}, Second: PartySpec{Number: "+15551230002"}})
	h.waitCmd("originate first")
	h.event(c, RoleFirst, "CHANNEL_ANSWER", "", 0)
	h.waitCmd("hangup " + c.First.UUID + " OUTGOING_CALL_BARRED")
	h.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "OUTGOING_CALL_BARRED", 0)
	// The second party, dialed on the first's answer, is called off.
	h.waitCmd("hangup " + c.Second.UUID + " ORIGINATOR_CANCEL")
	h.event(c, RoleSecond, "CHANNEL_HANGUP_COMPLETE", "ORIGINATOR_CANCEL", 0)
	done := h.waitStatus(c.ID, StatusFailed)
	if done.FailedLeg != RoleFirst || done.FailureReason != ReasonNotAuthorized {
		t.Fatalf("call: %s %s", done.FailedLeg, done.FailureReason)
	}
}

// TestSecondLegReauthorizedWhenDialed: the second party of a sequential
// call is dialed minutes later; a refusal by then fails the call as
// NOT_AUTHORIZED without dialing it.
func TestSecondLegReauthorizedWhenDialed(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := &fakeRater{refuse: map[string]error{}}
	h.e.UseRater(r)
	c := h.create(CreateRequest{First: PartySpec{Number: "+15551230001"}, Second: PartySpec{Number: "+15551230002"}})
	h.waitCmd("originate first")
	r.mu.Lock()
	r.refuse["+15551230002"] = refusalStatus("BLOCKED_DESTINATION") // blocked since the call was created
	r.mu.Unlock()
	h.event(c, RoleFirst, "CHANNEL_ANSWER", "", 0)
	h.waitCmd("hangup " + c.First.UUID + " NORMAL_CLEARING")
	h.noCmd("originate second")
	h.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "NORMAL_CLEARING", 0)
	done := h.waitStatus(c.ID, StatusFailed)
	if done.FailedLeg != RoleSecond || done.FailureReason != ReasonNotAuthorized || done.Second.HangupCause != causeBarred {
		t.Fatalf("call: failed leg %s reason %s second cause %s", done.FailedLeg, done.FailureReason, done.Second.HangupCause)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if strings.Join(r.authorized, " ") != "+15551230001 +15551230002 +15551230002" && strings.Join(r.authorized, " ") != "+15551230002 +15551230001 +15551230002" {
		t.Fatalf("authorizations: %v", r.authorized)
	}
}
