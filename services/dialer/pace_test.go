package dialer

import (
	"context"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	dialerv1 "github.com/ringback/ringback/proto/gen/go/ringback/dialer/v1"
	eventsv1 "github.com/ringback/ringback/proto/gen/go/ringback/events/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	"github.com/ringback/ringback/services/dialer/pacing"
)

func predictiveCampaign() *dialerv1.Campaign {
	return &dialerv1.Campaign{DialAttempts: 3, Pacing: &dialerv1.Pacing{Mode: dialerv1.PacingMode_PACING_MODE_PREDICTIVE,
		SafeHarbour: "/var/lib/ringback/audio/sorry.wav", AgentWaitMs: 1500, AbandonLockoutS: 3600}}
}

// An abandoned call: the record is ABANDONED and tried again only after the
// lockout, the number is locked out for every campaign of the account, and
// the windows count one live answer, abandoned; a redelivered end counts
// nothing twice.
func TestOutcomeAbandoned(t *testing.T) {
	t.Parallel()
	f := newOutcomeFixture(t, predictiveCampaign())
	c := f.call("call-1", 1, originationv1.CallStatus_CALL_STATUS_COMPLETED)
	c.Second = nil
	c.Abandoned = true
	c.First.AnsweredAt = timestamppb.New(f.now.Add(-50 * time.Second))
	f.deliver(t, eventsv1.EventType_EVENT_TYPE_CALL_COMPLETED, 0, c)
	f.deliver(t, eventsv1.EventType_EVENT_TYPE_CALL_COMPLETED, 0, proto.Clone(c).(*originationv1.Call))
	r := f.h.record(t, f.record)
	if r.status != StatusAbandoned || r.final {
		t.Fatalf("record %+v, want abandoned, not final", r)
	}
	ctx := context.Background()
	var next time.Time
	if err := f.h.db.QueryRow(ctx, `SELECT next_at FROM dialer.records WHERE id = $1`, f.record).Scan(&next); err != nil {
		t.Fatal(err)
	}
	if want := f.now.Add(time.Hour); !next.Equal(want) {
		t.Errorf("next attempt %s, want the lockout's end %s", next, want)
	}
	locked, err := LockedNumbers(ctx, f.h.db, engAccount, []string{"+34911111111", "+34922222222"}, f.now)
	if err != nil {
		t.Fatal(err)
	}
	if until, ok := locked["+34911111111"]; !ok || !until.Equal(f.now.Add(time.Hour)) || len(locked) != 1 {
		t.Errorf("locked numbers %v, want +34911111111 until %s", locked, f.now.Add(time.Hour))
	}
	if later, _ := LockedNumbers(ctx, f.h.db, engAccount, []string{"+34911111111"}, f.now.Add(2*time.Hour)); len(later) != 0 {
		t.Errorf("locked after the lockout: %v", later)
	}
	day, month, err := abandonmentWindows(ctx, f.h.db, f.campaign, f.now)
	if err != nil {
		t.Fatal(err)
	}
	if day != (pacing.Window{Answered: 1, Abandoned: 1}) || month != day {
		t.Errorf("windows day %+v month %+v, want one answer, abandoned", day, month)
	}
	var live, abandoned bool
	var answered *time.Time
	if err := f.h.db.QueryRow(ctx, `SELECT live, abandoned, answered_at FROM dialer.attempts WHERE call_id = 'call-1'`).Scan(&live, &abandoned, &answered); err != nil {
		t.Fatal(err)
	}
	if !live || !abandoned || answered == nil {
		t.Errorf("attempt live=%v abandoned=%v answered_at=%v", live, abandoned, answered)
	}
}

// A machine answer is not live: it counts in neither window.
func TestOutcomeMachineNotLive(t *testing.T) {
	t.Parallel()
	f := newOutcomeFixture(t, predictiveCampaign())
	c := f.call("call-m", 1, originationv1.CallStatus_CALL_STATUS_FAILED)
	c.Second, c.FailedLeg, c.FailureReason, c.MachineResult = nil, originationv1.LegRole_LEG_ROLE_FIRST, originationv1.FailureReason_FAILURE_REASON_MACHINE, "MACHINE"
	c.First.AnsweredAt = timestamppb.New(f.now.Add(-10 * time.Second))
	f.deliver(t, eventsv1.EventType_EVENT_TYPE_CALL_FAILED, originationv1.LegRole_LEG_ROLE_FIRST, c)
	if r := f.h.record(t, f.record); r.status != StatusAnsMachine {
		t.Fatalf("record %+v, want answmachine", r)
	}
	day, _, err := abandonmentWindows(context.Background(), f.h.db, f.campaign, f.now)
	if err != nil {
		t.Fatal(err)
	}
	if day != (pacing.Window{}) {
		t.Errorf("day window %+v, want nothing counted", day)
	}
}

func TestCallRequestAwaitsAgent(t *testing.T) {
	t.Parallel()
	c := predictiveCampaign()
	c.OnAnswer = &dialerv1.OnAnswer{DetectMachine: true}
	req := callRequest(SettingsOf(c), "+34911111111", "")
	if req.GetSecond() != nil || req.GetAnnouncement() != "" || req.GetMenu() != nil {
		t.Fatalf("request %v: a paced call has no second party, announcement or menu", req)
	}
	if aw := req.GetAwaitAgent(); aw.GetTimeoutMs() != 1500 || aw.GetSafeHarbour() != "/var/lib/ringback/audio/sorry.wav" {
		t.Errorf("await_agent %v", aw)
	}
	if !req.GetMachineDetection().GetEnabled() {
		t.Error("machine detection lost")
	}
	// FIXED keeps its announcement and endpoint.
	fixed := callRequest(SettingsOf(&dialerv1.Campaign{OnAnswer: &dialerv1.OnAnswer{Announcement: "a.wav", EndpointId: "ep"}}), "+34911111111", "ep")
	if fixed.GetAwaitAgent() != nil || fixed.GetSecond() == nil {
		t.Errorf("fixed request %v", fixed)
	}
}

func TestValidatePacing(t *testing.T) {
	t.Parallel()
	ok := func() *dialerv1.Campaign { return predictiveCampaign() }
	tests := []struct {
		name string
		edit func(*dialerv1.Campaign)
	}{
		{"no safe harbour", func(c *dialerv1.Campaign) { c.Pacing.SafeHarbour = "" }},
		{"safe harbour with spaces", func(c *dialerv1.Campaign) { c.Pacing.SafeHarbour = "a b.wav" }},
		{"an endpoint", func(c *dialerv1.Campaign) { c.OnAnswer = &dialerv1.OnAnswer{EndpointId: "x"} }},
		{"an announcement", func(c *dialerv1.Campaign) { c.OnAnswer = &dialerv1.OnAnswer{Announcement: "a.wav"} }},
		{"target too high", func(c *dialerv1.Campaign) { c.Pacing.AbandonTarget = 0.2 }},
		{"wait too long", func(c *dialerv1.Campaign) { c.Pacing.AgentWaitMs = 2500 }},
		{"wait too short", func(c *dialerv1.Campaign) { c.Pacing.AgentWaitMs = 100 }},
		{"multiplier", func(c *dialerv1.Campaign) { c.Pacing.DialMultiplier = 0.5 }},
		{"level", func(c *dialerv1.Campaign) { c.Pacing.MaxDialLevel = 20 }},
		{"lockout", func(c *dialerv1.Campaign) { c.Pacing.AbandonLockoutS = -1 }},
		{"shift end", func(c *dialerv1.Campaign) { c.Pacing.ShiftEnd = "9pm" }},
		{"mode", func(c *dialerv1.Campaign) { c.Pacing.Mode = 99 }},
	}
	if err := validatePacing(ok()); err != nil {
		t.Fatalf("valid campaign refused: %v", err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := ok()
			tc.edit(c)
			if err := validatePacing(c); err == nil {
				t.Error("accepted")
			}
		})
	}
}

func TestShiftOf(t *testing.T) {
	t.Parallel()
	c := predictiveCampaign()
	c.DefaultCountry = "DE"
	c.Pacing.Method = dialerv1.AdaptMethod_ADAPT_METHOD_TAPERED
	c.Pacing.ShiftEnd = "20:00"
	// 15:00 in Berlin (UTC+1 in March): 12 h of shift from 08:00, 5 left.
	now := time.Date(2026, 3, 4, 14, 0, 0, 0, time.UTC)
	shift, left := shiftOf(SettingsOf(c), now)
	if shift != 12*time.Hour || left != 5*time.Hour {
		t.Errorf("shift %s, left %s; want 12h, 5h", shift, left)
	}
	// Past the shift's end: nothing left.
	if _, left := shiftOf(SettingsOf(c), now.Add(7*time.Hour)); left != 0 {
		t.Errorf("after the shift: %s left", left)
	}
}
