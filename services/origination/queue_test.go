package origination

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	eventsv1 "github.com/ringback/ringback/proto/gen/go/ringback/events/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
)

// Queues: a menu whose CONNECT makes the party wait for an agent
// (await_agent with a menu), hearing hold music, instead of dialing a
// second party.

const noAgentMessage = "/sounds/all-busy.wav"

// queueCall creates a BLAST call whose CONNECT (1) waits for an agent, and
// brings it to the party's press of 1.
func queueCall(h *harness, await AwaitAgent) *Call {
	h.t.Helper()
	m := blastMenu
	c := h.create(CreateRequest{First: PartySpec{Number: "+15551230001"}, Announcement: "/sounds/offer.wav", Menu: &m, AwaitAgent: &await})
	h.waitCmd("originate first")
	h.event(c, RoleFirst, "CHANNEL_ANSWER", "", 0)
	h.waitCmd("transfer " + c.First.UUID + " ivr_digits")
	h.noCmd("play ") // no hold music before the party asks for an agent
	h.e.HandleEvent(menuExec(c, "1", "success", false))
	return c
}

func TestQueue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		timeoutMS int
		hold      string
		// run plays FreeSWITCH (and the dialer) once the party pressed 1.
		run        func(h *harness, c *Call)
		wantStatus Status
		wantFailed Role
		wantReason FailureReason
		wantRoom   string
		wantEvents []string
	}{
		{
			name: "an agent takes the call", timeoutMS: 60000,
			run: func(h *harness, c *Call) {
				h.waitCmd("play " + c.First.UUID + " endless_playback::" + DefaultHoldMusic)
				if _, err := h.e.Connect(context.Background(), "acct-1", c.ID, "agent-1007"); err != nil {
					h.t.Fatal(err)
				}
				h.waitCmd("transfer " + c.First.UUID + " agent_conference") // which ends the hold music
				h.e.HandleEvent(memberEvent(c, "add-member", "agent-1007", false))
				h.waitStatus(c.ID, StatusBridged)
				h.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "NORMAL_CLEARING", 200)
			},
			wantStatus: StatusCompleted, wantRoom: "agent-1007",
			wantEvents: []string{"CALL_QUEUED", "CALL_DIALING(first)", "LEG_ANSWERED(first)", "ANNOUNCEMENT_STARTED(first)",
				"ANNOUNCEMENT_FINISHED(first)", "MENU_CHOICE(first)", "AGENT_AWAITED(first)", "CONFERENCE_JOINED(first)",
				"LEG_HANGUP(first)", "CALL_COMPLETED"},
		},
		{
			name: "no agent in time: the message, then goodbye", timeoutMS: MinQueueTimeoutMS, hold: "local_stream://jazz",
			run: func(h *harness, c *Call) {
				h.waitCmd("play " + c.First.UUID + " endless_playback::local_stream://jazz")
				h.waitCmd("sched_hangup " + c.First.UUID + " 2m0s NORMAL_CLEARING")
				if got, want := h.waitCmd("setvars "+c.First.UUID+" ringback_message"), "setvars "+c.First.UUID+" ringback_message="+noAgentMessage; got != want {
					h.t.Fatalf("variables: %s, want %s", got, want)
				}
				// goodbye plays the message and hangs up: nothing more to do.
				h.waitCmd("transfer " + c.First.UUID + " goodbye")
				if _, err := h.e.Connect(context.Background(), "acct-1", c.ID, "agent-1007"); !errors.Is(err, ErrNotWaiting) {
					h.t.Fatalf("late ConnectCall: %v", err)
				}
				h.event(c, RoleFirst, "PLAYBACK_STOP", "", 0)
				h.noCmd("hangup ")
				h.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "NORMAL_CLEARING", 0)
			},
			wantStatus: StatusFailed, wantFailed: RoleSecond, wantReason: ReasonNoAgent,
			wantEvents: []string{"CALL_QUEUED", "CALL_DIALING(first)", "LEG_ANSWERED(first)", "ANNOUNCEMENT_STARTED(first)",
				"ANNOUNCEMENT_FINISHED(first)", "MENU_CHOICE(first)", "AGENT_AWAITED(first)", "LEG_HANGUP(first)", "CALL_FAILED(second)"},
		},
		{
			name: "turned away: nobody to take it", timeoutMS: 60000,
			run: func(h *harness, c *Call) {
				h.waitCmd("play " + c.First.UUID + " endless_playback::")
				if _, err := h.e.TurnAway(context.Background(), "acct-1", c.ID, ReasonQueueEmpty); err != nil {
					h.t.Fatal(err)
				}
				h.waitCmd("sched_hangup " + c.First.UUID + " 2m0s NORMAL_CLEARING")
				h.waitCmd("transfer " + c.First.UUID + " goodbye")
				// Turned away once: not again, and no agent now.
				if _, err := h.e.TurnAway(context.Background(), "acct-1", c.ID, ReasonQueueFull); !errors.Is(err, ErrNotWaiting) {
					h.t.Fatalf("turned away twice: %v", err)
				}
				if _, err := h.e.Connect(context.Background(), "acct-1", c.ID, "agent-1007"); !errors.Is(err, ErrNotWaiting) {
					h.t.Fatalf("ConnectCall after turned away: %v", err)
				}
				h.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "NORMAL_CLEARING", 0)
			},
			wantStatus: StatusFailed, wantFailed: RoleSecond, wantReason: ReasonQueueEmpty,
			wantEvents: []string{"CALL_QUEUED", "CALL_DIALING(first)", "LEG_ANSWERED(first)", "ANNOUNCEMENT_STARTED(first)",
				"ANNOUNCEMENT_FINISHED(first)", "MENU_CHOICE(first)", "AGENT_AWAITED(first)", "LEG_HANGUP(first)", "CALL_FAILED(second)"},
		},
		{
			name: "the party hangs up while waiting", timeoutMS: 60000,
			run: func(h *harness, c *Call) {
				h.waitCmd("play " + c.First.UUID + " endless_playback::")
				h.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "NORMAL_CLEARING", 200)
			},
			wantStatus: StatusCompleted,
			wantEvents: []string{"CALL_QUEUED", "CALL_DIALING(first)", "LEG_ANSWERED(first)", "ANNOUNCEMENT_STARTED(first)",
				"ANNOUNCEMENT_FINISHED(first)", "MENU_CHOICE(first)", "AGENT_AWAITED(first)", "LEG_HANGUP(first)", "CALL_COMPLETED"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			c := queueCall(h, AwaitAgent{TimeoutMS: tt.timeoutMS, SafeHarbour: noAgentMessage, HoldMusic: tt.hold})
			tt.run(h, c)
			got := h.waitStatus(c.ID, tt.wantStatus)
			if got.FailedLeg != tt.wantFailed || got.FailureReason != tt.wantReason || got.Conference != tt.wantRoom ||
				got.Abandoned || got.MenuChoice != MenuConnect || got.Digits != "1" {
				t.Fatalf("call: failed %q reason %q room %q abandoned %v choice %q digits %q", got.FailedLeg, got.FailureReason,
					got.Conference, got.Abandoned, got.MenuChoice, got.Digits)
			}
			h.noCmd("originate second")
			h.wantEvents(tt.wantEvents...)
			p := ToProto(got, time.Now())
			if p.GetFailureReason() != reasonToProto[tt.wantReason] || p.GetAbandoned() {
				t.Fatalf("API: reason %v abandoned %v", p.GetFailureReason(), p.GetAbandoned())
			}
			if tt.wantReason == ReasonNoAgent && (p.GetFailedLeg() != originationv1.LegRole_LEG_ROLE_SECOND ||
				p.GetFailureReason() != originationv1.FailureReason_FAILURE_REASON_NO_AGENT) {
				t.Fatalf("API: failed leg %v reason %v", p.GetFailedLeg(), p.GetFailureReason())
			}
		})
	}
}

// TurnAway refuses what is not a call waiting in a queue, and reasons
// other than a queue's.
func TestQueueTurnAwayRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	m := blastMenu
	c := h.create(CreateRequest{First: PartySpec{Number: "+15551230001"}, Announcement: "/sounds/offer.wav", Menu: &m,
		AwaitAgent: &AwaitAgent{TimeoutMS: 60000, SafeHarbour: noAgentMessage}})
	h.waitCmd("originate first")
	if _, err := h.e.TurnAway(ctx, "acct-1", c.ID, ReasonQueueEmpty); !errors.Is(err, ErrNotWaiting) {
		t.Fatalf("before the answer: %v", err)
	}
	h.event(c, RoleFirst, "CHANNEL_ANSWER", "", 0)
	h.waitCmd("transfer " + c.First.UUID + " ivr_digits")
	if _, err := h.e.TurnAway(ctx, "acct-1", c.ID, ReasonQueueEmpty); !errors.Is(err, ErrNotWaiting) {
		t.Fatalf("in the menu: %v", err)
	}
	h.e.HandleEvent(menuExec(c, "1", "success", false))
	h.waitCmd("play " + c.First.UUID + " endless_playback::")
	for _, r := range []FailureReason{ReasonNoAgent, ReasonBusy, ""} {
		if _, err := h.e.TurnAway(ctx, "acct-1", c.ID, r); !errors.Is(err, ErrInvalid) {
			t.Fatalf("reason %q: %v", r, err)
		}
	}
	if _, err := h.e.TurnAway(ctx, "acct-2", c.ID, ReasonQueueFull); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another account: %v", err)
	}
	// A predictive answer (no menu) waits for an agent, not in a queue:
	// its end is the safe harbour's, not a turning away.
	p := h.create(CreateRequest{First: PartySpec{Number: "+15551230002"}, AwaitAgent: &AwaitAgent{TimeoutMS: 2000, SafeHarbour: "/sounds/sh.wav"}})
	h.waitCmd("originate first")
	h.event(p, RoleFirst, "CHANNEL_ANSWER", "", 0)
	if _, err := h.e.TurnAway(ctx, "acct-1", p.ID, ReasonQueueEmpty); !errors.Is(err, ErrNotWaiting) {
		t.Fatalf("a predictive answer: %v", err)
	}
	// The queued call still waits.
	if got, err := h.e.Get(ctx, c.ID); err != nil || !got.waiting() {
		t.Fatalf("the queued call: %+v %v", got, err)
	}
}

// A party other options took, or who pressed nothing, never waits.
func TestQueueOtherChoicesDoNotWait(t *testing.T) {
	t.Parallel()
	for _, digits := range []string{"9", ""} {
		t.Run("digits "+digits, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			m := blastMenu
			c := h.create(CreateRequest{First: PartySpec{Number: "+15551230001"}, Announcement: "/sounds/offer.wav", Menu: &m,
				AwaitAgent: &AwaitAgent{SafeHarbour: noAgentMessage}})
			h.waitCmd("originate first")
			h.event(c, RoleFirst, "CHANNEL_ANSWER", "", 0)
			h.waitCmd("transfer " + c.First.UUID + " ivr_digits")
			h.e.HandleEvent(menuExec(c, digits, map[string]string{"9": "success", "": "failure"}[digits], false))
			h.waitCmd("hangup " + c.First.UUID + " NORMAL_CLEARING")
			h.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "NORMAL_CLEARING", 0)
			if got := h.waitStatus(c.ID, StatusCompleted); !got.AwaitUntil.IsZero() {
				t.Fatalf("call waits: %+v", got)
			}
			h.noCmd("play ")
			for _, ev := range h.pub.list() {
				if ev == "AGENT_AWAITED(first)" {
					t.Fatalf("events %v", h.pub.list())
				}
			}
		})
	}
}

// A queue's wait outlives a restart of origination (and an adoption): the
// hold music plays on in FreeSWITCH and the dialer's ConnectCall reaches
// whichever instance drives the call; a wait that ran out meanwhile ends
// in the no-agent message; a goodbye whose transfer was lost is sent
// again.
func TestQueueRecovery(t *testing.T) {
	t.Parallel()
	holding := map[string]string{"current_application": "endless_playback"}
	t.Run("the wait goes on", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		c := queueCall(h, AwaitAgent{TimeoutMS: 60000, SafeHarbour: noAgentMessage})
		h.waitCmd("play " + c.First.UUID + " endless_playback::")
		h2 := h.restart(c, holding)
		time.Sleep(20 * time.Millisecond)
		if cmds := h2.sw.commands(); len(cmds) != 0 {
			t.Fatalf("commands after the restart: %q", cmds)
		}
		if _, err := h2.e.Connect(context.Background(), "acct-1", c.ID, "agent-1007"); err != nil {
			t.Fatalf("ConnectCall after the restart: %v", err)
		}
		h2.waitCmd("transfer " + c.First.UUID + " agent_conference")
	})
	t.Run("the wait ran out meanwhile", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		c := queueCall(h, AwaitAgent{TimeoutMS: MinQueueTimeoutMS, SafeHarbour: noAgentMessage})
		h.waitCmd("play " + c.First.UUID + " endless_playback::")
		h.e.Close()
		time.Sleep(time.Duration(MinQueueTimeoutMS)*time.Millisecond + 100*time.Millisecond)
		h2 := h.restart(c, holding)
		h2.waitCmd("transfer " + c.First.UUID + " goodbye")
		h2.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "NORMAL_CLEARING", 0)
		if got := h2.waitStatus(c.ID, StatusFailed); got.FailureReason != ReasonNoAgent || got.Abandoned {
			t.Fatalf("call: %+v", got)
		}
	})
	t.Run("goodbye's transfer lost", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		c := queueCall(h, AwaitAgent{TimeoutMS: MinQueueTimeoutMS, SafeHarbour: noAgentMessage})
		h.waitCmd("transfer " + c.First.UUID + " goodbye")
		h2 := h.restart(c, holding) // the leg still hears its hold music
		h2.waitCmd("transfer " + c.First.UUID + " goodbye")
		h3 := h2.restart(c, map[string]string{"current_application": "playback"}) // the message playing
		time.Sleep(20 * time.Millisecond)
		if cmds := h3.sw.commands(); len(cmds) != 0 {
			t.Fatalf("commands while the message plays: %q", cmds)
		}
	})
}

func TestQueueValidation(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	menu := func() *Menu { m := blastMenu; return &m }
	noConnect := func() *Menu { return &Menu{Options: []MenuOption{{"9", MenuOptOut}}} }
	for _, tt := range []struct {
		name  string
		req   CreateRequest
		error string
	}{
		{"wait too long", CreateRequest{Menu: menu(), AwaitAgent: &AwaitAgent{TimeoutMS: MaxQueueTimeoutMS + 1, SafeHarbour: noAgentMessage}}, "between 1000 and 600000"},
		{"wait too short", CreateRequest{Menu: menu(), AwaitAgent: &AwaitAgent{TimeoutMS: 999, SafeHarbour: noAgentMessage}}, "between 1000 and 600000"},
		{"no message", CreateRequest{Menu: menu(), AwaitAgent: &AwaitAgent{}}, "safe_harbour is required"},
		{"hold music with a space", CreateRequest{Menu: menu(), AwaitAgent: &AwaitAgent{SafeHarbour: noAgentMessage, HoldMusic: "a b.wav"}}, "hold_music must be"},
		{"hold music with ;", CreateRequest{Menu: menu(), AwaitAgent: &AwaitAgent{SafeHarbour: noAgentMessage, HoldMusic: "a;b.wav"}}, "hold_music must be"},
		{"hold music is the message", CreateRequest{Menu: menu(), AwaitAgent: &AwaitAgent{SafeHarbour: noAgentMessage, HoldMusic: noAgentMessage}}, "must differ"},
		{"hold music without a menu", CreateRequest{AwaitAgent: &AwaitAgent{SafeHarbour: noAgentMessage, HoldMusic: DefaultHoldMusic}}, "hold_music is for a menu"},
		{"no CONNECT option", CreateRequest{Menu: noConnect(), AwaitAgent: &AwaitAgent{SafeHarbour: noAgentMessage}}, "menu has none"},
		{"and a second party", CreateRequest{Menu: menu(), Second: PartySpec{Number: "+15551230002"}, AwaitAgent: &AwaitAgent{SafeHarbour: noAgentMessage}}, "no second"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.req
			req.AccountID, req.First, req.Announcement = "acct-1", PartySpec{Number: "+15551230001"}, "/sounds/offer.wav"
			_, err := h.e.Create(context.Background(), req)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.error) {
				t.Fatalf("err %v, want ErrInvalid with %q", err, tt.error)
			}
		})
	}
	// The defaults: a minute, FreeSWITCH's music on hold.
	c := h.create(CreateRequest{First: PartySpec{Number: "+15551230001"}, Announcement: "/sounds/offer.wav", Menu: menu(),
		AwaitAgent: &AwaitAgent{SafeHarbour: noAgentMessage}})
	if a := c.AwaitAgent; a.TimeoutMS != DefaultQueueTimeoutMS || a.HoldMusic != DefaultHoldMusic {
		t.Fatalf("await_agent: %+v", a)
	}
	if p := ToProto(c, time.Now()).GetAwaitAgent(); p.GetHoldMusic() != DefaultHoldMusic || p.GetTimeoutMs() != DefaultQueueTimeoutMS {
		t.Fatalf("API: %v", p)
	}
}

// A queue through the simulator's ringback dialplan: the party presses 1 in
// the menu (ivr_digits), hears the hold music (endless_playback of a
// local_stream, which never ends by itself) and either an agent's
// ConnectCall puts it in the agent's room, or, past its wait, goodbye
// plays the no-agent message and hangs up.
func TestThroughSimulatorQueue(t *testing.T) {
	t.Parallel()
	st := newStack(t)
	played := playbacks(t, st)
	srv, phones := agentPhones(t, st, "1004")
	session, agent := startSession(t, st, srv, phones["1004"], "agent-1004")
	const hold, message = "local_stream://moh", "tone_stream://%(500,0,350)"
	queue := func(timeoutMS int) *Call {
		t.Helper()
		c, err := st.engine.Create(context.Background(), CreateRequest{AccountID: "acct-it", Source: "DIALER",
			First: PartySpec{Number: "+15557890000"}, Announcement: "tone_stream://%(300,0,440)",
			Menu:       &Menu{Options: []MenuOption{{"1", MenuConnect}, {"9", MenuOptOut}}, Tries: 3, TimeoutMS: 5000},
			AwaitAgent: &AwaitAgent{TimeoutMS: timeoutMS, SafeHarbour: message, HoldMusic: hold}})
		if err != nil {
			t.Fatal(err)
		}
		st.waitChannelVar(c.First.UUID, "current_application", "play_and_get_digits")
		st.press(c.First.UUID, "1")
		st.waitEvent(c.ID, eventsv1.EventType_EVENT_TYPE_AGENT_AWAITED)
		st.waitChannelVar(c.First.UUID, "current_application", "endless_playback")
		return c
	}

	// An agent takes the call.
	c := queue(60000)
	if _, err := srv.ConnectCall(asAccount("acct-it"), &originationv1.ConnectCallRequest{Id: c.ID, Conference: "agent-1004"}); err != nil {
		t.Fatal(err)
	}
	st.waitStatus(c.ID, StatusBridged)
	st.waitRoom("agent-1004", c.First.UUID+" hear|speak", agent+" hear|speak|moderator")
	st.hangupChannel(c.First.UUID)
	if got := st.waitStatus(c.ID, StatusCompleted, StatusFailed, StatusCanceled); got.Status != StatusCompleted || got.Conference != "agent-1004" {
		t.Fatalf("connected call: %+v", got)
	}
	if files := played(c.First.UUID); !slices.Contains(files, hold) || slices.Contains(files, message) {
		t.Fatalf("played %q: want the hold music, not the message", files)
	}

	// Nobody takes it: the message, then the hangup.
	c = queue(MinQueueTimeoutMS)
	got := st.waitStatus(c.ID, StatusCompleted, StatusFailed, StatusCanceled)
	if got.Status != StatusFailed || got.FailedLeg != RoleSecond || got.FailureReason != ReasonNoAgent || got.Abandoned ||
		got.First.HangupCause != "NORMAL_CLEARING" {
		t.Fatalf("call with no agent: %+v", got)
	}
	if files := played(c.First.UUID); len(files) < 2 || files[len(files)-1] != message || !slices.Contains(files, hold) {
		t.Fatalf("played %q: want the hold music, then the message", files)
	}
	last, types := st.lastCall(c.ID)
	want := "CALL_QUEUED/UNSPECIFIED CALL_DIALING/FIRST LEG_RINGING/FIRST LEG_ANSWERED/FIRST ANNOUNCEMENT_STARTED/FIRST " +
		"ANNOUNCEMENT_FINISHED/FIRST MENU_CHOICE/FIRST AGENT_AWAITED/FIRST LEG_HANGUP/FIRST CALL_FAILED/SECOND"
	if events := strings.Join(types, " "); events != want {
		t.Fatalf("events:\n got %s\nwant %s", events, want)
	}
	if last.GetFailureReason() != originationv1.FailureReason_FAILURE_REASON_NO_AGENT {
		t.Fatalf("final event's call: %v", last)
	}
	st.waitGone(t, "the party with no agent", ofCall(c.ID))
	if got := st.waitStatus(session, StatusBridged); got.Conference != "agent-1004" {
		t.Fatalf("session: %+v", got)
	}
}
