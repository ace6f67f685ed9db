package origination

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
)

// Announcement-only calls: one party, who hears the announcement and is
// hung up when it ends (the dialer's broadcasts).

func TestAnnouncementOnlyPlayedToTheEnd(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	rater := &fakeRater{}
	h.e.UseRater(rater)
	c := h.create(CreateRequest{First: PartySpec{Number: "+15551230001"}, Announcement: "/sounds/broadcast.wav", MaxDurationS: 120})
	if !c.AnnouncementOnly || c.Second.Status != "" || c.Second.UUID != "" {
		t.Fatalf("created call: %+v", c)
	}
	if p := ToProto(c, time.Now()); p.GetSecond() != nil {
		t.Fatalf("the API shows a second leg: %v", p.GetSecond())
	}
	h.waitCmd("originate first")
	answered := time.Now().UTC()
	at := func(name string, d time.Duration, cause string) {
		h.e.HandleEvent(SwitchEvent{Node: "fs1", Name: name, UUID: c.First.UUID, CallID: c.ID, Cause: cause, At: answered.Add(d)})
	}
	at("CHANNEL_PROGRESS", -time.Second, "")
	at("CHANNEL_ANSWER", 0, "")
	h.waitCmd("play " + c.First.UUID + " /sounds/broadcast.wav")
	h.waitCmd("sched_hangup " + c.First.UUID + " 2m0s ALLOTTED_TIMEOUT")
	h.noCmd("hangup")
	at("PLAYBACK_STOP", 3*time.Second, "")
	h.waitCmd("hangup " + c.First.UUID + " NORMAL_CLEARING")
	at("CHANNEL_HANGUP_COMPLETE", 3*time.Second+20*time.Millisecond, "NORMAL_CLEARING")
	got := h.waitStatus(c.ID, StatusCompleted)
	h.noCmd("originate second")
	h.wantEvents("CALL_QUEUED", "CALL_DIALING(first)", "LEG_RINGING(first)", "LEG_ANSWERED(first)", "ANNOUNCEMENT_STARTED(first)",
		"ANNOUNCEMENT_FINISHED(first)", "LEG_HANGUP(first)", "CALL_COMPLETED")
	if got.First.Status != LegHungup || got.First.Billsec != 3 || got.First.CostMicros == 0 || got.HangupCause != "NORMAL_CLEARING" ||
		got.FailedLeg != "" || got.FailureReason != "" {
		t.Fatalf("completed call: %+v", got)
	}
	p := ToProto(got, time.Now())
	if p.GetBillsec() != 3 || p.GetSecond() != nil || p.GetBridgedAt() != nil {
		t.Fatalf("billsec %d, want the leg's %d; second %v; bridged_at %v", p.GetBillsec(), got.First.Billsec, p.GetSecond(), p.GetBridgedAt())
	}
	if len(rater.authorized) != 1 || rater.authorized[0] != "+15551230001" {
		t.Fatalf("rated numbers: %v", rater.authorized)
	}
}

func TestAnnouncementOnlyEnds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// run plays FreeSWITCH (and the API) once the first leg is dialed.
		run        func(h *harness, c *Call)
		wantStatus Status
		wantLeg    Role
		wantReason FailureReason
		wantEvents []string
	}{
		{
			name: "busy",
			run: func(h *harness, c *Call) {
				h.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "USER_BUSY", 486)
			},
			wantStatus: StatusFailed, wantLeg: RoleFirst, wantReason: ReasonBusy,
			wantEvents: []string{"CALL_QUEUED", "CALL_DIALING(first)", "LEG_HANGUP(first)", "CALL_FAILED(first)"},
		},
		{
			// FreeSWITCH stops the playback when the channel hangs up and
			// fires PLAYBACK_STOP (Playback-Status done) from the hung-up
			// channel, before CHANNEL_HANGUP_COMPLETE.
			name: "party hangs up during the announcement",
			run: func(h *harness, c *Call) {
				h.event(c, RoleFirst, "CHANNEL_ANSWER", "", 0)
				h.waitCmd("play ")
				h.e.HandleEvent(SwitchEvent{Node: "fs1", Name: "PLAYBACK_STOP", UUID: c.First.UUID, CallID: c.ID, ChannelDown: true})
				h.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "NORMAL_CLEARING", 200)
			},
			wantStatus: StatusFailed, wantLeg: RoleFirst, wantReason: ReasonCanceled,
			wantEvents: []string{"CALL_QUEUED", "CALL_DIALING(first)", "LEG_ANSWERED(first)", "ANNOUNCEMENT_STARTED(first)",
				"LEG_HANGUP(first)", "CALL_FAILED(first)"},
		},
		{
			name: "hung up through the API during the announcement",
			run: func(h *harness, c *Call) {
				h.event(c, RoleFirst, "CHANNEL_ANSWER", "", 0)
				h.waitCmd("play ")
				if _, err := h.e.Hangup(context.Background(), c.ID, ""); err != nil {
					h.t.Fatal(err)
				}
				h.waitCmd("hangup " + c.First.UUID + " NORMAL_CLEARING")
				h.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "NORMAL_CLEARING", 0)
			},
			wantStatus: StatusCanceled, wantReason: ReasonCanceled,
			wantEvents: []string{"CALL_QUEUED", "CALL_DIALING(first)", "LEG_ANSWERED(first)", "ANNOUNCEMENT_STARTED(first)",
				"LEG_HANGUP(first)", "CALL_CANCELED"},
		},
		{
			name: "announcement does not play",
			run: func(h *harness, c *Call) {
				h.sw.mu.Lock()
				h.sw.failNext["play "] = errors.New("-ERR no reply")
				h.sw.mu.Unlock()
				h.event(c, RoleFirst, "CHANNEL_ANSWER", "", 0)
				h.waitCmd("hangup " + c.First.UUID + " NORMAL_TEMPORARY_FAILURE")
				h.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "NORMAL_TEMPORARY_FAILURE", 0)
			},
			wantStatus: StatusFailed, wantLeg: RoleFirst, wantReason: ReasonInternal,
			wantEvents: []string{"CALL_QUEUED", "CALL_DIALING(first)", "LEG_ANSWERED(first)", "ANNOUNCEMENT_STARTED(first)",
				"LEG_HANGUP(first)", "CALL_FAILED(first)"},
		},
		{
			// The party hung up while the answer was being handled: the
			// playback is refused, and that reply overtakes the channel's
			// CHANNEL_HANGUP_COMPLETE. The party left; nothing failed.
			name: "party gone before the announcement could start",
			run: func(h *harness, c *Call) {
				h.sw.mu.Lock()
				h.sw.failNext["play "] = errors.New("-ERR invalid uuid")
				h.sw.gone = map[string]bool{c.First.UUID: true}
				h.sw.mu.Unlock()
				h.event(c, RoleFirst, "CHANNEL_ANSWER", "", 0)
				h.waitCmd("play ")
				h.noCmd("hangup")
				h.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "NORMAL_CLEARING", 200)
			},
			wantStatus: StatusFailed, wantLeg: RoleFirst, wantReason: ReasonCanceled,
			wantEvents: []string{"CALL_QUEUED", "CALL_DIALING(first)", "LEG_ANSWERED(first)", "ANNOUNCEMENT_STARTED(first)",
				"LEG_HANGUP(first)", "CALL_FAILED(first)"},
		},
		{
			name: "FreeSWITCH restarted during the announcement",
			run: func(h *harness, c *Call) {
				h.event(c, RoleFirst, "CHANNEL_ANSWER", "", 0)
				h.waitCmd("play ")
				if err := h.e.Recover(context.Background(), map[string]bool{"fs1": true}); err != nil {
					h.t.Fatal(err)
				}
			},
			wantStatus: StatusFailed, wantLeg: RoleFirst, wantReason: ReasonCanceled,
			wantEvents: []string{"CALL_QUEUED", "CALL_DIALING(first)", "LEG_ANSWERED(first)", "ANNOUNCEMENT_STARTED(first)",
				"LEG_HANGUP(first)", "CALL_FAILED(first)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			c := h.create(CreateRequest{First: PartySpec{Number: "+15551230001"}, Announcement: "tone_stream://%(10000,0,440)"})
			h.waitCmd("originate first")
			tt.run(h, c)
			got := h.waitStatus(c.ID, tt.wantStatus)
			if got.FailedLeg != tt.wantLeg || got.FailureReason != tt.wantReason || got.Announced {
				t.Fatalf("call: leg %q reason %q announced %v; want %q %q", got.FailedLeg, got.FailureReason, got.Announced, tt.wantLeg, tt.wantReason)
			}
			if got.Second.Status != "" || got.EndedAt.IsZero() {
				t.Fatalf("legs: %+v / %+v", got.First, got.Second)
			}
			h.wantEvents(tt.wantEvents...)
			h.noCmd("originate second")
		})
	}
}

func TestAnnouncementOnlyValidation(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	srv := &CallServer{Engine: h.e, Redis: h.store.rdb}
	tests := []struct {
		name string
		req  *originationv1.CreateCallRequest
		want string // in the error message
	}{
		{"no second party and no announcement", &originationv1.CreateCallRequest{
			First: &originationv1.PartySpec{Target: &originationv1.PartySpec_Number{Number: "+15551230001"}},
		}, "second is required unless the call is announcement-only"},
		{"empty second party and no announcement", &originationv1.CreateCallRequest{
			First:  &originationv1.PartySpec{Target: &originationv1.PartySpec_Number{Number: "+15551230001"}},
			Second: &originationv1.PartySpec{},
		}, "second is required unless the call is announcement-only"},
		{"simultaneous", &originationv1.CreateCallRequest{
			First:        &originationv1.PartySpec{Target: &originationv1.PartySpec_Number{Number: "+15551230001"}},
			Mode:         originationv1.CallMode_CALL_MODE_SIMULTANEOUS,
			Announcement: "/sounds/broadcast.wav",
		}, "sequential"},
		{"second party without a target", &originationv1.CreateCallRequest{
			First:        &originationv1.PartySpec{Target: &originationv1.PartySpec_Number{Number: "+15551230001"}},
			Second:       &originationv1.PartySpec{CallerIdNumber: "+15550009999"},
			Announcement: "/sounds/broadcast.wav",
		}, "a party needs a number or an endpoint_id"},
		{"no first party", &originationv1.CreateCallRequest{Announcement: "/sounds/broadcast.wav"}, "a party needs a number or an endpoint_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := srv.CreateCall(asAccount("acct-1"), tt.req)
			wantCode(t, err, codes.InvalidArgument, "INVALID_ARGUMENT")
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to say %q", err, tt.want)
			}
			if _, err := h.e.Create(context.Background(), CreateRequest{AccountID: "acct-1", Mode: modeOf(tt.req),
				First: partyFromProto(tt.req.GetFirst()), Second: partyFromProto(tt.req.GetSecond()), Announcement: tt.req.GetAnnouncement(),
			}); !errors.Is(err, ErrInvalid) {
				t.Fatalf("engine: err = %v, want ErrInvalid", err)
			}
		})
	}
	if cmds := h.sw.commands(); len(cmds) != 0 {
		t.Fatalf("invalid requests reached the switch: %v", cmds)
	}
	// Through the API, an announcement-only call has no second leg.
	resp, err := srv.CreateCall(asAccount("acct-1"), &originationv1.CreateCallRequest{
		First:        &originationv1.PartySpec{Target: &originationv1.PartySpec_Number{Number: "+15551230001"}},
		Announcement: "/sounds/broadcast.wav",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c := resp.GetCall(); c.GetSecond() != nil || c.GetFirst().GetParty().GetNumber() != "+15551230001" || c.GetAnnouncement() != "/sounds/broadcast.wav" {
		t.Fatalf("created call: %v", c)
	}
}

func modeOf(req *originationv1.CreateCallRequest) Mode {
	if req.GetMode() == originationv1.CallMode_CALL_MODE_SIMULTANEOUS {
		return ModeSimultaneous
	}
	return ModeSequential
}

func TestThroughSimulatorAnnouncementOnly(t *testing.T) {
	t.Parallel()
	st := newStack(t)
	tests := []struct {
		name, number, announcement string
		ringMS                     int
		minBillsec                 int // the announcement's length
		wantStatus                 Status
		wantReason                 FailureReason
		wantEvents                 string
	}{
		{
			// ...0000 answers and stays up: only the engine ends the call,
			// once the 2 s tone has played.
			name: "tone played to the end", number: "+15551230000", announcement: "tone_stream://%(1000,0,440);loops=2",
			minBillsec: 2, wantStatus: StatusCompleted,
			wantEvents: "CALL_QUEUED/UNSPECIFIED CALL_DIALING/FIRST LEG_RINGING/FIRST LEG_ANSWERED/FIRST ANNOUNCEMENT_STARTED/FIRST " +
				"ANNOUNCEMENT_FINISHED/FIRST LEG_HANGUP/FIRST CALL_COMPLETED/UNSPECIFIED",
		},
		{
			// A file plays for sim_playback_ms (3 s).
			name: "file played to the end", number: "+15557770000", announcement: "/sounds/broadcast.wav",
			minBillsec: 3, wantStatus: StatusCompleted,
			wantEvents: "CALL_QUEUED/UNSPECIFIED CALL_DIALING/FIRST LEG_RINGING/FIRST LEG_ANSWERED/FIRST ANNOUNCEMENT_STARTED/FIRST " +
				"ANNOUNCEMENT_FINISHED/FIRST LEG_HANGUP/FIRST CALL_COMPLETED/UNSPECIFIED",
		},
		{
			// ...0002 hangs up 2 s after answering, 8 s before the end.
			name: "party hangs up during the announcement", number: "+15551230002", announcement: "tone_stream://%(10000,0,440)",
			wantStatus: StatusFailed, wantReason: ReasonCanceled,
			wantEvents: "CALL_QUEUED/UNSPECIFIED CALL_DIALING/FIRST LEG_RINGING/FIRST LEG_ANSWERED/FIRST ANNOUNCEMENT_STARTED/FIRST " +
				"LEG_HANGUP/FIRST CALL_FAILED/FIRST",
		},
		{
			name: "busy", number: "+15551230486", announcement: "/sounds/broadcast.wav",
			wantStatus: StatusFailed, wantReason: ReasonBusy,
			wantEvents: "CALL_QUEUED/UNSPECIFIED CALL_DIALING/FIRST LEG_HANGUP/FIRST CALL_FAILED/FIRST",
		},
		{
			name: "no answer", number: "+15551230408", announcement: "/sounds/broadcast.wav", ringMS: 2000,
			wantStatus: StatusFailed, wantReason: ReasonNoAnswer,
			wantEvents: "CALL_QUEUED/UNSPECIFIED CALL_DIALING/FIRST LEG_RINGING/FIRST LEG_HANGUP/FIRST CALL_FAILED/FIRST",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := st.engine.Create(context.Background(), CreateRequest{AccountID: "acct-it", Source: "DIALER",
				First: PartySpec{Number: tt.number, RingTimeoutMS: tt.ringMS}, Announcement: tt.announcement})
			if err != nil {
				t.Fatal(err)
			}
			got := st.waitStatus(c.ID, StatusCompleted, StatusFailed, StatusCanceled)
			if got.Status != tt.wantStatus || got.FailureReason != tt.wantReason {
				t.Fatalf("call: %s %s, want %s %s (%+v)", got.Status, got.FailureReason, tt.wantStatus, tt.wantReason, got)
			}
			if tt.wantStatus == StatusFailed && got.FailedLeg != RoleFirst {
				t.Fatalf("failed leg %q", got.FailedLeg)
			}
			if events := strings.Join(st.eventTypes(c.ID), " "); events != tt.wantEvents {
				t.Fatalf("events:\n got %s\nwant %s", events, tt.wantEvents)
			}
			st.mu.Lock()
			last := st.events[c.ID][len(st.events[c.ID])-1].GetCall()
			st.mu.Unlock()
			if last.GetSecond() != nil || last.GetBillsec() != int32(got.First.Billsec) || last.GetSource() != originationv1.CallSource_CALL_SOURCE_DIALER {
				t.Fatalf("final snapshot: second %v, billsec %d (leg %d), source %v", last.GetSecond(), last.GetBillsec(), got.First.Billsec, last.GetSource())
			}
			if tt.wantStatus == StatusCompleted {
				// The engine hung the leg up when the announcement ended
				// (the far end stays up), and not before: the engine's
				// latency counts 20 times over at this time scale, so
				// there is no tight upper bound.
				if got.First.HangupCause != "NORMAL_CLEARING" || got.HangupCause != "NORMAL_CLEARING" || got.First.Billsec < tt.minBillsec {
					t.Fatalf("completed call's leg: %+v", got.First)
				}
			}
			st.waitGone(t, "a channel of the ended call", ofCall(c.ID))
		})
	}
}
