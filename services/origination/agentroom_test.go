package origination

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/ringback/ringback/freeswitch/sim"
	eventsv1 "github.com/ringback/ringback/proto/gen/go/ringback/events/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	"github.com/ringback/ringback/services/internal/esl"
)

// Agent rooms: agents' sessions (conference) and calls that wait for an
// agent (await_agent, ConnectCall). The engine tests play FreeSWITCH by
// hand; the TestThroughSimulator ones run agent_conference and
// mod_conference in the simulator.

// memberEvent is mod_conference's conference::maintenance event of the
// call's first leg.
func memberEvent(c *Call, action, room string, down bool) SwitchEvent {
	return SwitchEvent{Node: "fs1", Name: evConference, UUID: c.First.UUID, CallID: c.ID, Leg: "first",
		Conference: room, ConferenceAction: action, ChannelDown: down}
}

const safeHarbour = "/sounds/safe-harbour.wav"

func TestAgentSession(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// run plays FreeSWITCH once the leg was sent to its room.
		run        func(h *harness, c *Call)
		wantStatus Status
		wantReason FailureReason
		wantRoom   string
		wantEvents []string
	}{
		{
			name: "joins its room and stays until the agent hangs up",
			run: func(h *harness, c *Call) {
				h.e.HandleEvent(memberEvent(c, "add-member", "agent-1007", false))
				h.waitStatus(c.ID, StatusBridged)
				h.waitCmd("sched_hangup " + c.First.UUID + " 1h0m0s ALLOTTED_TIMEOUT")
				// Other members come and go; the agent stays.
				h.e.HandleEvent(SwitchEvent{Node: "fs1", Name: evConference, UUID: "customer", CallID: "other-call",
					Conference: "agent-1007", ConferenceAction: "del-member"})
				h.e.HandleEvent(memberEvent(c, "del-member", "agent-1007", true))
				h.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "NORMAL_CLEARING", 200)
			},
			wantStatus: StatusCompleted, wantRoom: "agent-1007",
			wantEvents: []string{"CALL_QUEUED", "CALL_DIALING(first)", "LEG_ANSWERED(first)", "CONFERENCE_JOINED(first)",
				"LEG_HANGUP(first)", "CALL_COMPLETED"},
		},
		{
			name: "kicked out of its room alive: hung up",
			run: func(h *harness, c *Call) {
				h.e.HandleEvent(memberEvent(c, "add-member", "agent-1007", false))
				h.waitStatus(c.ID, StatusBridged)
				h.e.HandleEvent(memberEvent(c, "del-member", "agent-1007", false))
				h.waitCmd("hangup " + c.First.UUID + " NORMAL_CLEARING")
				h.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "NORMAL_CLEARING", 0)
			},
			wantStatus: StatusCompleted, wantRoom: "agent-1007",
			wantEvents: []string{"CALL_QUEUED", "CALL_DIALING(first)", "LEG_ANSWERED(first)", "CONFERENCE_JOINED(first)",
				"LEG_HANGUP(first)", "CALL_COMPLETED"},
		},
		{
			name: "hangs up before reaching the room",
			run: func(h *harness, c *Call) {
				h.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "NORMAL_CLEARING", 200)
			},
			wantStatus: StatusFailed, wantReason: ReasonCanceled, wantRoom: "agent-1007",
			wantEvents: []string{"CALL_QUEUED", "CALL_DIALING(first)", "LEG_ANSWERED(first)", "LEG_HANGUP(first)", "CALL_FAILED(first)"},
		},
		{
			name: "FreeSWITCH refuses the transfer",
			run: func(h *harness, c *Call) {
				h.waitCmd("hangup " + c.First.UUID + " NORMAL_TEMPORARY_FAILURE")
				h.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "NORMAL_TEMPORARY_FAILURE", 0)
			},
			wantStatus: StatusFailed, wantReason: ReasonInternal, wantRoom: "agent-1007",
			wantEvents: []string{"CALL_QUEUED", "CALL_DIALING(first)", "LEG_ANSWERED(first)", "LEG_HANGUP(first)", "CALL_FAILED(first)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			if strings.Contains(tt.name, "refuses") {
				h.sw.failNext["transfer "] = causeErr("-ERR invalid session id")
			}
			c := h.create(CreateRequest{First: PartySpec{EndpointID: "agent-7"}, Conference: "agent-1007", MaxDurationS: 3600})
			if c.AnnouncementOnly || c.Session != "agent-1007" || c.Conference != "" {
				t.Fatalf("created call: %+v", c)
			}
			if p := ToProto(c, time.Now()); p.GetSecond() != nil || p.GetConference() != "" {
				t.Fatalf("API: second %v, conference %q", p.GetSecond(), p.GetConference())
			}
			// The agent's phone is busy for other calls meanwhile.
			if _, err := h.e.Create(context.Background(), CreateRequest{AccountID: "acct-1", First: PartySpec{Number: "+15551230001"},
				Second: PartySpec{EndpointID: "agent-7"}}); !errors.Is(err, ErrEndpointBusy) {
				t.Fatalf("second call to the agent's phone: %v, want ErrEndpointBusy", err)
			}
			h.waitCmd("originate first " + c.First.UUID + " user/1007")
			h.event(c, RoleFirst, "CHANNEL_ANSWER", "", 0)
			if got, want := h.waitCmd("setvars "), "setvars "+c.First.UUID+" conference_member_flags=moderator;ringback_conference=agent-1007"; got != want {
				t.Fatalf("variables:\n got %s\nwant %s", got, want)
			}
			h.waitCmd("transfer " + c.First.UUID + " agent_conference")
			tt.run(h, c)
			got := h.waitStatus(c.ID, tt.wantStatus)
			if got.FailureReason != tt.wantReason || got.Conference != tt.wantRoom || got.Abandoned {
				t.Fatalf("call: reason %q room %q abandoned %v", got.FailureReason, got.Conference, got.Abandoned)
			}
			if (tt.wantStatus == StatusCompleted) == got.BridgedAt.IsZero() {
				t.Fatalf("bridged_at %v for a %s call", got.BridgedAt, got.Status)
			}
			h.wantEvents(tt.wantEvents...)
			// The phone is free again.
			c2 := h.create(CreateRequest{First: PartySpec{EndpointID: "agent-7"}, Conference: "agent-1007"})
			if _, err := h.e.Hangup(context.Background(), c2.ID, ""); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestAwaitAgent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		announcement string
		detection    bool
		timeoutMS    int
		// run plays FreeSWITCH (and the API) once the call was answered.
		run           func(h *harness, c *Call)
		wantStatus    Status
		wantReason    FailureReason
		wantRoom      string
		wantAbandoned bool
		wantEvents    []string
	}{
		{
			name: "connected to an agent's room", timeoutMS: 30000,
			run: func(h *harness, c *Call) {
				connected, err := h.e.Connect(context.Background(), "acct-1", c.ID, "agent-1007")
				if err != nil {
					h.t.Fatal(err)
				}
				if connected.Conference != "agent-1007" || connected.Status != StatusAnswered {
					h.t.Fatalf("ConnectCall's call: %+v", connected)
				}
				if got, want := h.waitCmd("setvars "), "setvars "+c.First.UUID+" ringback_conference=agent-1007"; got != want {
					h.t.Fatalf("variables: %s, want %s", got, want)
				}
				h.waitCmd("transfer " + c.First.UUID + " agent_conference")
				// Only once: a second agent cannot take it.
				if _, err := h.e.Connect(context.Background(), "acct-1", c.ID, "agent-1008"); !errors.Is(err, ErrNotWaiting) {
					h.t.Fatalf("second ConnectCall: %v", err)
				}
				h.e.HandleEvent(memberEvent(c, "add-member", "agent-1007", false))
				h.waitStatus(c.ID, StatusBridged)
				h.e.HandleEvent(memberEvent(c, "del-member", "agent-1007", true))
				h.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "NORMAL_CLEARING", 200)
			},
			wantStatus: StatusCompleted, wantRoom: "agent-1007",
			wantEvents: []string{"CALL_QUEUED", "CALL_DIALING(first)", "LEG_ANSWERED(first)", "AGENT_AWAITED(first)",
				"CONFERENCE_JOINED(first)", "LEG_HANGUP(first)", "CALL_COMPLETED"},
		},
		{
			name: "no agent in time: safe harbour, then hung up", timeoutMS: 100,
			run: func(h *harness, c *Call) {
				h.waitCmd("sched_hangup " + c.First.UUID + " 2m0s NORMAL_CLEARING")
				h.waitCmd("play " + c.First.UUID + " " + safeHarbour)
				if _, err := h.e.Connect(context.Background(), "acct-1", c.ID, "agent-1007"); !errors.Is(err, ErrNotWaiting) {
					h.t.Fatalf("late ConnectCall: %v", err)
				}
				h.noCmd("hangup ")
				h.event(c, RoleFirst, "PLAYBACK_STOP", "", 0)
				h.waitCmd("hangup " + c.First.UUID + " NORMAL_CLEARING")
				h.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "NORMAL_CLEARING", 0)
			},
			wantStatus: StatusCompleted, wantAbandoned: true,
			wantEvents: []string{"CALL_QUEUED", "CALL_DIALING(first)", "LEG_ANSWERED(first)", "AGENT_AWAITED(first)",
				"CALL_ABANDONED(first)", "LEG_HANGUP(first)", "CALL_COMPLETED"},
		},
		{
			// The announcement plays while the party waits; the safe
			// harbour, queued behind it, ends the call.
			name: "announcement while waiting, then abandoned", announcement: "/sounds/hold.wav", timeoutMS: 100,
			run: func(h *harness, c *Call) {
				h.waitCmd("play " + c.First.UUID + " /sounds/hold.wav")
				h.waitCmd("play " + c.First.UUID + " " + safeHarbour)
				h.event(c, RoleFirst, "PLAYBACK_STOP", "", 0) // the announcement's
				time.Sleep(20 * time.Millisecond)
				h.noCmd("hangup ")
				h.event(c, RoleFirst, "PLAYBACK_STOP", "", 0) // the safe harbour's
				h.waitCmd("hangup " + c.First.UUID + " NORMAL_CLEARING")
				h.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "NORMAL_CLEARING", 0)
			},
			wantStatus: StatusCompleted, wantAbandoned: true,
			wantEvents: []string{"CALL_QUEUED", "CALL_DIALING(first)", "LEG_ANSWERED(first)", "AGENT_AWAITED(first)",
				"ANNOUNCEMENT_STARTED(first)", "CALL_ABANDONED(first)", "ANNOUNCEMENT_FINISHED(first)", "LEG_HANGUP(first)", "CALL_COMPLETED"},
		},
		{
			// The transfer to the room cuts the announcement: it did not
			// finish.
			name: "announcement while waiting, then connected", announcement: "/sounds/hold.wav", timeoutMS: 30000,
			run: func(h *harness, c *Call) {
				h.waitCmd("play " + c.First.UUID + " /sounds/hold.wav")
				if _, err := h.e.Connect(context.Background(), "acct-1", c.ID, "agent-1007"); err != nil {
					h.t.Fatal(err)
				}
				h.event(c, RoleFirst, "PLAYBACK_STOP", "", 0)
				h.e.HandleEvent(memberEvent(c, "add-member", "agent-1007", false))
				h.waitStatus(c.ID, StatusBridged)
				h.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "NORMAL_CLEARING", 200)
			},
			wantStatus: StatusCompleted, wantRoom: "agent-1007",
			wantEvents: []string{"CALL_QUEUED", "CALL_DIALING(first)", "LEG_ANSWERED(first)", "AGENT_AWAITED(first)",
				"ANNOUNCEMENT_STARTED(first)", "CONFERENCE_JOINED(first)", "LEG_HANGUP(first)", "CALL_COMPLETED"},
		},
		{
			name: "the party hangs up while waiting", timeoutMS: 30000,
			run: func(h *harness, c *Call) {
				h.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "NORMAL_CLEARING", 200)
				h.waitStatus(c.ID, StatusCompleted)
				if _, err := h.e.Connect(context.Background(), "acct-1", c.ID, "agent-1007"); !errors.Is(err, ErrNotWaiting) {
					h.t.Fatalf("ConnectCall after the hangup: %v", err)
				}
			},
			wantStatus: StatusCompleted,
			wantEvents: []string{"CALL_QUEUED", "CALL_DIALING(first)", "LEG_ANSWERED(first)", "AGENT_AWAITED(first)",
				"LEG_HANGUP(first)", "CALL_COMPLETED"},
		},
		{
			name: "the party hangs up as it is being connected", timeoutMS: 30000,
			run: func(h *harness, c *Call) {
				h.sw.mu.Lock()
				h.sw.failNext["transfer "] = causeErr("-ERR No such channel!")
				h.sw.gone = map[string]bool{c.First.UUID: true}
				h.sw.mu.Unlock()
				if _, err := h.e.Connect(context.Background(), "acct-1", c.ID, "agent-1007"); !errors.Is(err, ErrNotWaiting) {
					h.t.Fatalf("ConnectCall to a party gone: %v", err)
				}
				h.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "NORMAL_CLEARING", 200)
			},
			wantStatus: StatusCompleted, wantRoom: "agent-1007",
			wantEvents: []string{"CALL_QUEUED", "CALL_DIALING(first)", "LEG_ANSWERED(first)", "AGENT_AWAITED(first)",
				"LEG_HANGUP(first)", "CALL_COMPLETED"},
		},
		{
			name: "machine: ended as without an agent to wait for", detection: true, timeoutMS: 100,
			run: func(h *harness, c *Call) {
				h.e.HandleEvent(amdExec(c, "MACHINE"))
				h.waitCmd("hangup " + c.First.UUID + " NORMAL_CLEARING")
				h.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "NORMAL_CLEARING", 0)
			},
			wantStatus: StatusFailed, wantReason: ReasonMachine,
			wantEvents: []string{"CALL_QUEUED", "CALL_DIALING(first)", "LEG_ANSWERED(first)", "MACHINE_DETECTED(first)",
				"LEG_HANGUP(first)", "CALL_FAILED(first)"},
		},
		{
			name: "human: the wait starts at the verdict", detection: true, timeoutMS: 30000,
			run: func(h *harness, c *Call) {
				if _, err := h.e.Connect(context.Background(), "acct-1", c.ID, "agent-1007"); !errors.Is(err, ErrNotWaiting) {
					h.t.Fatalf("ConnectCall during machine detection: %v", err)
				}
				h.e.HandleEvent(amdExec(c, "HUMAN"))
				h.waitWaiting(c.ID)
				if _, err := h.e.Connect(context.Background(), "acct-1", c.ID, "agent-1007"); err != nil {
					h.t.Fatalf("ConnectCall after HUMAN: %v", err)
				}
				h.waitCmd("transfer " + c.First.UUID + " agent_conference")
				h.e.HandleEvent(memberEvent(c, "add-member", "agent-1007", false))
				h.waitStatus(c.ID, StatusBridged)
				if _, err := h.e.Hangup(context.Background(), c.ID, ""); err != nil {
					h.t.Fatal(err)
				}
				h.waitCmd("hangup " + c.First.UUID + " NORMAL_CLEARING")
				h.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "NORMAL_CLEARING", 0)
			},
			wantStatus: StatusCompleted, wantRoom: "agent-1007",
			wantEvents: []string{"CALL_QUEUED", "CALL_DIALING(first)", "LEG_ANSWERED(first)", "MACHINE_DETECTED(first)",
				"AGENT_AWAITED(first)", "CONFERENCE_JOINED(first)", "LEG_HANGUP(first)", "CALL_COMPLETED"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			c := h.create(CreateRequest{First: PartySpec{Number: "+15551230001"}, Announcement: tt.announcement,
				MachineDetection: MachineDetection{Enabled: tt.detection}, AwaitAgent: &AwaitAgent{TimeoutMS: tt.timeoutMS, SafeHarbour: safeHarbour}})
			if c.AnnouncementOnly || c.AwaitAgent.TimeoutMS != tt.timeoutMS {
				t.Fatalf("created call: %+v", c)
			}
			if _, err := h.e.Connect(context.Background(), "acct-1", c.ID, "agent-1007"); !errors.Is(err, ErrNotWaiting) {
				t.Fatalf("ConnectCall before the answer: %v", err)
			}
			h.waitCmd("originate first")
			h.event(c, RoleFirst, "CHANNEL_ANSWER", "", 0)
			if tt.detection {
				h.waitCmd("transfer " + c.First.UUID + " amd")
			} else {
				h.waitWaiting(c.ID)
			}
			tt.run(h, c)
			got := h.waitStatus(c.ID, tt.wantStatus)
			if got.FailureReason != tt.wantReason || got.Conference != tt.wantRoom || got.Abandoned != tt.wantAbandoned {
				t.Fatalf("call: reason %q room %q abandoned %v; want %q %q %v", got.FailureReason, got.Conference, got.Abandoned,
					tt.wantReason, tt.wantRoom, tt.wantAbandoned)
			}
			if got.Abandoned && (!got.BridgedAt.IsZero() || got.Billsec(time.Now()) != 0) {
				t.Fatalf("abandoned call: bridged %v", got.BridgedAt)
			}
			h.wantEvents(tt.wantEvents...)
			p := ToProto(got, time.Now())
			if p.GetAbandoned() != tt.wantAbandoned || p.GetConference() != tt.wantRoom || p.GetSecond() != nil ||
				p.GetAwaitAgent().GetTimeoutMs() != int32(tt.timeoutMS) || p.GetAwaitAgent().GetSafeHarbour() != safeHarbour {
				t.Fatalf("API: %v", p)
			}
		})
	}
}

// waitWaiting waits until the call's party waits for an agent.
func (h *harness) waitWaiting(id string) {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := h.e.Get(context.Background(), id); err == nil && (c.waiting() || c.Abandoned) {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	h.t.Fatalf("call %s never waited for an agent", id)
}

// ConnectCall and the end of the wait at the same moment: exactly one of
// them wins, and the switch hears only the winner.
func TestAwaitAgentConnectRacesTimeout(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	const calls = 40
	var wg sync.WaitGroup
	results := make([]error, calls)
	created := make([]*Call, calls)
	for i := range calls {
		c := h.create(CreateRequest{First: PartySpec{Number: fmt.Sprintf("+1555123%04d", i)}, AwaitAgent: &AwaitAgent{TimeoutMS: 1500, SafeHarbour: safeHarbour}})
		created[i] = c
		h.waitCmd("originate first " + c.First.UUID)
		h.event(c, RoleFirst, "CHANNEL_ANSWER", "", 0)
	}
	for i, c := range created {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				got, err := h.e.Get(context.Background(), c.ID)
				if err != nil {
					results[i] = err
					return
				}
				if got.Abandoned {
					break // already: ConnectCall must be refused
				}
				if !got.AwaitUntil.IsZero() {
					// Aim at the deadline, a little either side.
					time.Sleep(time.Until(got.AwaitUntil) + time.Duration(i%5-2)*time.Millisecond)
					break
				}
				time.Sleep(time.Millisecond)
			}
			_, results[i] = h.e.Connect(context.Background(), "acct-1", c.ID, "agent-1007")
		}()
	}
	wg.Wait()
	connected := 0
	for i, c := range created {
		var got *Call
		deadline := time.Now().Add(5 * time.Second)
		for {
			got, _ = h.e.Get(context.Background(), c.ID)
			if got.Abandoned || got.Conference != "" || time.Now().After(deadline) {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		cmds := strings.Join(h.sw.commands(), "\n")
		transferred := strings.Contains(cmds, "transfer "+c.First.UUID+" agent_conference")
		played := strings.Contains(cmds, "play "+c.First.UUID+" ")
		switch {
		case results[i] == nil:
			connected++
			if got.Abandoned || got.Conference != "agent-1007" || !transferred || played {
				t.Fatalf("call %d connected: abandoned %v room %q transferred %v played %v", i, got.Abandoned, got.Conference, transferred, played)
			}
		case errors.Is(results[i], ErrNotWaiting):
			time.Sleep(20 * time.Millisecond) // a wrong transfer would have its chance to show
			cmds = strings.Join(h.sw.commands(), "\n")
			if !got.Abandoned || got.Conference != "" || strings.Contains(cmds, "transfer "+c.First.UUID) ||
				!strings.Contains(cmds, "play "+c.First.UUID+" "+safeHarbour) {
				t.Fatalf("call %d refused ConnectCall: abandoned %v room %q commands %v", i, got.Abandoned, got.Conference, h.sw.commands())
			}
		default:
			t.Fatalf("call %d: ConnectCall: %v", i, results[i])
		}
	}
	t.Logf("%d of %d connected, the others abandoned", connected, calls)
}

func TestAgentRoomValidation(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	srv := &CallServer{Engine: h.e, Redis: h.store.rdb}
	number := func(n string) *originationv1.PartySpec {
		return &originationv1.PartySpec{Target: &originationv1.PartySpec_Number{Number: n}}
	}
	await := func(ms int32, sh string) *originationv1.AwaitAgent {
		return &originationv1.AwaitAgent{TimeoutMs: ms, SafeHarbour: sh}
	}
	first := number("+15551230001")
	tests := []struct {
		name string
		req  *originationv1.CreateCallRequest
		want string // in the error message
	}{
		{"room with a space", &originationv1.CreateCallRequest{First: first, Conference: "agent 1"}, "letters, digits"},
		{"room with a profile", &originationv1.CreateCallRequest{First: first, Conference: "agent@default"}, "letters, digits"},
		{"room with a PIN", &originationv1.CreateCallRequest{First: first, Conference: "agent+1234"}, "letters, digits"},
		{"room too long", &originationv1.CreateCallRequest{First: first, Conference: strings.Repeat("a", 65)}, "at most 64"},
		{"empty room to await", &originationv1.CreateCallRequest{First: first, Conference: "", AwaitAgent: &originationv1.AwaitAgent{}}, "safe_harbour is required"},
		{"conference with a second party", &originationv1.CreateCallRequest{First: first, Second: number("+15551230002"),
			Conference: "agent-1"}, "no second"},
		{"conference with an announcement", &originationv1.CreateCallRequest{First: first, Conference: "agent-1",
			Announcement: "/s/a.wav"}, "no announcement"},
		{"conference with a menu", &originationv1.CreateCallRequest{First: first, Conference: "agent-1",
			Menu: &originationv1.Menu{Options: []*originationv1.MenuOption{{Digit: "1", Action: originationv1.MenuAction_MENU_ACTION_END}}}}, "no menu"},
		{"conference with machine detection", &originationv1.CreateCallRequest{First: first, Conference: "agent-1",
			MachineDetection: &originationv1.MachineDetection{Enabled: true}}, "no machine detection"},
		{"conference awaiting an agent", &originationv1.CreateCallRequest{First: first, Conference: "agent-1",
			AwaitAgent: await(0, safeHarbour)}, "does not await an agent"},
		{"conference, simultaneous", &originationv1.CreateCallRequest{First: first, Conference: "agent-1",
			Mode: originationv1.CallMode_CALL_MODE_SIMULTANEOUS}, "sequential"},
		{"await with a second party", &originationv1.CreateCallRequest{First: first, Second: number("+15551230002"),
			AwaitAgent: await(0, safeHarbour)}, "no second"},
		{"await with a menu without CONNECT", &originationv1.CreateCallRequest{First: first, Announcement: "/s/a.wav", AwaitAgent: await(0, safeHarbour),
			Menu: &originationv1.Menu{Options: []*originationv1.MenuOption{{Digit: "1", Action: originationv1.MenuAction_MENU_ACTION_END}}}}, "the menu has none"},
		{"await, simultaneous", &originationv1.CreateCallRequest{First: first, AwaitAgent: await(0, safeHarbour),
			Mode: originationv1.CallMode_CALL_MODE_SIMULTANEOUS}, "sequential"},
		{"await too long", &originationv1.CreateCallRequest{First: first, AwaitAgent: await(30001, safeHarbour)}, "timeout_ms"},
		{"await negative", &originationv1.CreateCallRequest{First: first, AwaitAgent: await(-1, safeHarbour)}, "timeout_ms"},
		{"no safe harbour", &originationv1.CreateCallRequest{First: first, AwaitAgent: await(2000, "")}, "safe_harbour is required"},
		{"safe harbour with a space", &originationv1.CreateCallRequest{First: first, AwaitAgent: await(2000, "/s/safe harbour.wav")},
			"safe_harbour must be"},
		{"safe harbour too long", &originationv1.CreateCallRequest{First: first, AwaitAgent: await(2000, "/"+strings.Repeat("a", 512))},
			"safe_harbour must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := srv.CreateCall(asAccount("acct-1"), tt.req)
			wantCode(t, err, codes.InvalidArgument, "INVALID_ARGUMENT")
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to say %q", err, tt.want)
			}
		})
	}
	if cmds := h.sw.commands(); len(cmds) != 0 {
		t.Fatalf("invalid requests reached the switch: %v", cmds)
	}
	// What is valid is kept, the default filled; one party, no second leg.
	resp, err := srv.CreateCall(asAccount("acct-1"), &originationv1.CreateCallRequest{First: first, AwaitAgent: await(0, "tone_stream://%(500,0,440);loops=2")})
	if err != nil {
		t.Fatal(err)
	}
	if c := resp.GetCall(); c.GetAwaitAgent().GetTimeoutMs() != DefaultAwaitTimeoutMS || c.GetSecond() != nil || c.GetConference() != "" {
		t.Fatalf("created call: %v", c)
	}
	resp, err = srv.CreateCall(asAccount("acct-1"), &originationv1.CreateCallRequest{First: first, Conference: strings.Repeat("a.b_c-9-", 8)})
	if err != nil {
		t.Fatal(err)
	}
	if c := resp.GetCall(); c.GetSecond() != nil || c.GetAwaitAgent() != nil {
		t.Fatalf("created session: %v", c)
	}
}

func TestConnectCallErrors(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	srv := &CallServer{Engine: h.e, Redis: h.store.rdb}
	waiting := h.create(CreateRequest{First: PartySpec{Number: "+15551230001"}, AwaitAgent: &AwaitAgent{TimeoutMS: 30000, SafeHarbour: safeHarbour}})
	plain := h.create(CreateRequest{First: PartySpec{Number: "+15551230002"}, Second: PartySpec{Number: "+15551230003"}})
	h.waitCmd("originate first " + waiting.First.UUID)
	h.waitCmd("originate first " + plain.First.UUID)
	h.event(plain, RoleFirst, "CHANNEL_ANSWER", "", 0)
	tests := []struct {
		name, account, id, room string
		code                    codes.Code
		reason                  string
	}{
		{"unknown call", "acct-1", "0190a000-0000-7000-8000-000000000000", "agent-1", codes.NotFound, "CALL_NOT_FOUND"},
		{"another account's call", "acct-2", waiting.ID, "agent-1", codes.NotFound, "CALL_NOT_FOUND"},
		{"no id", "acct-1", "", "agent-1", codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"bad room", "acct-1", waiting.ID, "agent 1", codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"no room", "acct-1", waiting.ID, "", codes.InvalidArgument, "INVALID_ARGUMENT"},
		{"not answered yet", "acct-1", waiting.ID, "agent-1", codes.FailedPrecondition, "CALL_NOT_WAITING"},
		{"not an await_agent call", "acct-1", plain.ID, "agent-1", codes.FailedPrecondition, "CALL_NOT_WAITING"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := srv.ConnectCall(asAccount(tt.account), &originationv1.ConnectCallRequest{Id: tt.id, Conference: tt.room})
			wantCode(t, err, tt.code, tt.reason)
		})
	}
	h.event(waiting, RoleFirst, "CHANNEL_ANSWER", "", 0)
	var resp *originationv1.ConnectCallResponse
	for deadline := time.Now().Add(5 * time.Second); ; {
		var err error
		if resp, err = srv.ConnectCall(asAccount("acct-1"), &originationv1.ConnectCallRequest{Id: waiting.ID, Conference: "agent-1"}); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if c := resp.GetCall(); c.GetConference() != "agent-1" || c.GetStatus() != originationv1.CallStatus_CALL_STATUS_ANSWERED {
		t.Fatalf("connected call: %v", c)
	}
	_, err := srv.ConnectCall(asAccount("acct-1"), &originationv1.ConnectCallRequest{Id: waiting.ID, Conference: "agent-2"})
	wantCode(t, err, codes.FailedPrecondition, "CALL_NOT_WAITING")
}

// A restarted origination finds its room calls where FreeSWITCH has them.
func TestAgentRoomRecovery(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// setup brings the call where it is when origination stops.
		setup func(h *harness, c *Call)
		vars  map[string]string // the channel's, after the restart
		// then checks what the new process does.
		then func(h *harness, c *Call)
	}{
		{
			name: "session in its room: left alone",
			setup: func(h *harness, c *Call) {
				h.e.HandleEvent(memberEvent(c, "add-member", "agent-1007", false))
				h.waitStatus(c.ID, StatusBridged)
			},
			vars: map[string]string{"current_application": "conference", "conference_name": "agent-1007"},
			then: func(h *harness, c *Call) {
				time.Sleep(20 * time.Millisecond)
				if got := h.waitStatus(c.ID, StatusBridged); len(h.sw.commands()) != 0 || got.Conference != "agent-1007" {
					h.t.Fatalf("commands %v, call %+v", h.sw.commands(), got)
				}
				h.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "NORMAL_CLEARING", 200)
				h.waitStatus(c.ID, StatusCompleted)
			},
		},
		{
			name:  "session joined while origination was down",
			setup: func(h *harness, c *Call) {},
			vars:  map[string]string{"current_application": "conference", "conference_name": "agent-1007"},
			then: func(h *harness, c *Call) {
				if got := h.waitStatus(c.ID, StatusBridged); got.BridgedAt.IsZero() {
					h.t.Fatalf("call: %+v", got)
				}
			},
		},
		{
			name:  "session's transfer lost: sent again",
			setup: func(h *harness, c *Call) {},
			vars:  map[string]string{"current_application": "park"},
			then: func(h *harness, c *Call) {
				h.waitCmd("setvars " + c.First.UUID + " conference_member_flags=moderator;ringback_conference=agent-1007")
				h.waitCmd("transfer " + c.First.UUID + " agent_conference")
			},
		},
		{
			name: "session kicked out while origination was down: hung up",
			setup: func(h *harness, c *Call) {
				h.e.HandleEvent(memberEvent(c, "add-member", "agent-1007", false))
				h.waitStatus(c.ID, StatusBridged)
			},
			vars: map[string]string{"current_application": "park", "conference_name": "agent-1007"},
			then: func(h *harness, c *Call) {
				h.waitCmd("hangup " + c.First.UUID + " NORMAL_CLEARING")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			c := h.create(CreateRequest{First: PartySpec{EndpointID: "agent-7"}, Conference: "agent-1007"})
			h.waitCmd("originate first")
			h.event(c, RoleFirst, "CHANNEL_ANSWER", "", 0)
			h.waitCmd("transfer " + c.First.UUID + " agent_conference")
			tt.setup(h, c)
			tt.then(h.restart(c, tt.vars), c)
		})
	}
	t.Run("waiting for an agent: the wait goes on", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		c := h.create(CreateRequest{First: PartySpec{Number: "+15551230001"}, AwaitAgent: &AwaitAgent{TimeoutMS: 30000, SafeHarbour: safeHarbour}})
		h.waitCmd("originate first")
		h.event(c, RoleFirst, "CHANNEL_ANSWER", "", 0)
		h.wantEvents("CALL_QUEUED", "CALL_DIALING(first)", "LEG_ANSWERED(first)", "AGENT_AWAITED(first)")
		// An event-socket reconnection in the same process leaves the
		// wait to its timer.
		if err := h.e.Recover(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		if got, _ := h.e.Get(context.Background(), c.ID); !got.waiting() {
			t.Fatalf("after a reconnection: %+v", got)
		}
		// A new process: the dialer still holds the call among its
		// waiting ones, and its ConnectCall reaches it there.
		h2 := h.restart(c, map[string]string{"current_application": "playback"})
		time.Sleep(20 * time.Millisecond)
		h2.noCmd("play ")
		if _, err := h2.e.Connect(context.Background(), "acct-1", c.ID, "agent-1007"); err != nil {
			t.Fatalf("ConnectCall after the restart: %v", err)
		}
		h2.waitCmd("transfer " + c.First.UUID + " agent_conference")
		h2.e.HandleEvent(memberEvent(c, "add-member", "agent-1007", false))
		if got := h2.waitStatus(c.ID, StatusBridged); got.Abandoned {
			t.Fatalf("call: %+v", got)
		}
	})
	t.Run("waiting for an agent, past the wait: abandoned", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		c := h.create(CreateRequest{First: PartySpec{Number: "+15551230001"}, AwaitAgent: &AwaitAgent{TimeoutMS: 300, SafeHarbour: safeHarbour}})
		h.waitCmd("originate first")
		h.event(c, RoleFirst, "CHANNEL_ANSWER", "", 0)
		h.wantEvents("CALL_QUEUED", "CALL_DIALING(first)", "LEG_ANSWERED(first)", "AGENT_AWAITED(first)")
		h.e.Close() // before the wait ends: its timer goes with the process
		time.Sleep(400 * time.Millisecond)
		h2 := h.restart(c, map[string]string{"current_application": "park"})
		h2.waitCmd("play " + c.First.UUID + " " + safeHarbour)
		time.Sleep(20 * time.Millisecond)
		h2.noCmd("hangup ") // the message is heard to its end
		h2.event(c, RoleFirst, "PLAYBACK_STOP", "", 0)
		h2.waitCmd("hangup " + c.First.UUID + " NORMAL_CLEARING")
		h2.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "NORMAL_CLEARING", 0)
		if got := h2.waitStatus(c.ID, StatusCompleted); !got.Abandoned {
			t.Fatalf("call: %+v", got)
		}
	})
}

// Of mod_conference's events, the engine is handed the members' arrivals
// and departures, with the room.
func TestSwitchEventConference(t *testing.T) {
	t.Parallel()
	member := func(action, subclass, answerState string) esl.Event {
		return esl.Event{Node: "fs1", Name: "CUSTOM", Headers: map[string]string{"Event-Subclass": subclass, "Action": action,
			"Unique-ID": "u1", "variable_ringback_call_id": "c1", "variable_ringback_leg": "first", "Conference-Name": "agent-1001",
			"Answer-State": answerState, "Member-ID": "7"}}
	}
	tests := []struct {
		name string
		ev   esl.Event
		want *SwitchEvent // nil: dropped
	}{
		{"add-member", member("add-member", "conference::maintenance", "answered"),
			&SwitchEvent{Name: evConference, ConferenceAction: "add-member", Conference: "agent-1001"}},
		{"del-member of a hangup", member("del-member", "conference::maintenance", "hangup"),
			&SwitchEvent{Name: evConference, ConferenceAction: "del-member", Conference: "agent-1001", ChannelDown: true}},
		{"start-talking", member("start-talking", "conference::maintenance", "answered"), nil},
		{"another subclass", member("add-member", "callcenter::info", "answered"), nil},
		{"not ours", esl.Event{Node: "fs1", Name: "CUSTOM", Headers: map[string]string{"Event-Subclass": "conference::maintenance", "Action": "add-member"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := switchEvent(tt.ev)
			if ok != (tt.want != nil) {
				t.Fatalf("kept %v, want %v", ok, tt.want != nil)
			}
			if !ok {
				return
			}
			if got.Name != tt.want.Name || got.ConferenceAction != tt.want.ConferenceAction || got.Conference != tt.want.Conference ||
				got.ChannelDown != tt.want.ChannelDown || got.CallID != "c1" || got.UUID != "u1" {
				t.Fatalf("event: %+v", got)
			}
		})
	}
	if !strings.Contains(strings.Join(Events, " "), "CUSTOM conference::maintenance") {
		t.Fatalf("not subscribed: %v", Events)
	}
}

// Through the simulator: agent_conference and mod_conference as
// FreeSWITCH runs them, the agents' phones registered users (1000-1019
// answer at once and stay up).

// agentPhones gives the stack's account endpoints in PostgreSQL, the
// agents' phones user/<ext>, and returns the API on the stack's engine.
func agentPhones(t *testing.T, st *stack, exts ...string) (*CallServer, map[string]string) {
	t.Helper()
	eps := endpointServer(t)
	ids := map[string]string{}
	for _, ext := range exts {
		resp, err := eps.CreateEndpoint(asAccount("acct-it"), &originationv1.CreateEndpointRequest{Endpoint: &originationv1.Endpoint{
			Name: "agent " + ext, Kind: originationv1.EndpointKind_ENDPOINT_KIND_REGISTERED_USER, Address: ext}})
		if err != nil {
			t.Fatal(err)
		}
		ids[ext] = resp.GetEndpoint().GetId()
	}
	st.engine.res = DialPlan{Endpoints: eps.Store}
	return &CallServer{Engine: st.engine, Redis: st.store.rdb}, ids
}

// waitEvent waits until the call's event of that type is on the bus.
func (st *stack) waitEvent(id string, want eventsv1.EventType) *eventsv1.CallEvent {
	st.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		st.mu.Lock()
		for _, ev := range st.events[id] {
			if ev.GetType() == want {
				st.mu.Unlock()
				return ev
			}
		}
		st.mu.Unlock()
		time.Sleep(2 * time.Millisecond)
	}
	st.t.Fatalf("call %s: no %s event", id, want)
	return nil
}

// roomMembers lists the channels in a room (`conference <room> list`)
// with their flags.
func (st *stack) roomMembers(room string) []string {
	st.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := st.client.API(ctx, st.sim.ESLAddr(), "conference "+room+" list")
	if err != nil {
		if strings.Contains(err.Error(), "not found") {
			return nil // no room: nobody in it
		}
		st.t.Fatal(err)
	}
	var uuids []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.Split(line, ";"); len(f) > 5 {
			uuids = append(uuids, f[2]+" "+f[5])
		}
	}
	return uuids
}

func (st *stack) waitRoom(room string, want ...string) {
	st.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var got []string
	for time.Now().Before(deadline) {
		if got = st.roomMembers(room); strings.Join(got, ",") == strings.Join(want, ",") {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	st.t.Fatalf("room %s: members %q, want %q", room, got, want)
}

func (st *stack) hangupChannel(uuid string) {
	st.t.Helper()
	st.hangupChannelWith(uuid, "NORMAL_CLEARING")
}

// hangupChannelWith has the far end of a channel hang up with cause.
func (st *stack) hangupChannelWith(uuid, cause string) {
	st.t.Helper()
	resp, err := http.Post(st.sim.ControlURL()+"/channels/"+uuid+"/hangup", "application/json", strings.NewReader(`{"cause":"`+cause+`"}`))
	if err != nil {
		st.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		st.t.Fatalf("hang up %s: %s", uuid, resp.Status)
	}
}

// playbacks watches the switch's PLAYBACK_START events and returns what
// was started on a channel so far.
func playbacks(t *testing.T, st *stack) func(uuid string) []string {
	t.Helper()
	var mu sync.Mutex
	files := map[string][]string{}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	client, err := esl.Dial(context.Background(), esl.Config{Addrs: []string{st.sim.ESLAddr()}, Password: "ClueCon",
		Events: []string{"PLAYBACK_START"}, Logger: log}, esl.Handlers{Event: func(ev esl.Event) {
		if ev.Name == "PLAYBACK_START" {
			mu.Lock()
			files[ev.UniqueID()] = append(files[ev.UniqueID()], ev.Get("Playback-File-Path"))
			mu.Unlock()
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	return func(uuid string) []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(files[uuid])
	}
}

func TestThroughSimulatorAgentSession(t *testing.T) {
	t.Parallel()
	st := newStack(t)
	srv, phones := agentPhones(t, st, "1000")
	resp, err := srv.CreateCall(asAccount("acct-it"), &originationv1.CreateCallRequest{
		First: &originationv1.PartySpec{Target: &originationv1.PartySpec_EndpointId{EndpointId: phones["1000"]}}, Conference: "agent-1000"})
	if err != nil {
		t.Fatal(err)
	}
	id := resp.GetCall().GetId()
	joined := st.waitEvent(id, eventsv1.EventType_EVENT_TYPE_CONFERENCE_JOINED)
	if c := joined.GetCall(); c.GetConference() != "agent-1000" || c.GetStatus() != originationv1.CallStatus_CALL_STATUS_BRIDGED ||
		c.GetBridgedAt() == nil || c.GetSecond() != nil || joined.GetLeg() != originationv1.LegRole_LEG_ROLE_FIRST {
		t.Fatalf("CONFERENCE_JOINED: %v", joined)
	}
	got, err := srv.GetCall(asAccount("acct-it"), &originationv1.GetCallRequest{Id: id})
	if err != nil {
		t.Fatal(err)
	}
	c := got.GetCall()
	if c.GetStatus() != originationv1.CallStatus_CALL_STATUS_BRIDGED || c.GetConference() != "agent-1000" ||
		c.GetFirst().GetParty().GetEndpointId() != phones["1000"] {
		t.Fatalf("GetCall: %v", c)
	}
	agent := c.GetFirst().GetUuid()
	// The agent is the room's moderator.
	st.waitRoom("agent-1000", agent+" hear|speak|moderator")
	// The agent's phone is busy for other calls while the session lasts.
	_, err = srv.CreateCall(asAccount("acct-it"), &originationv1.CreateCallRequest{
		First:  &originationv1.PartySpec{Target: &originationv1.PartySpec_Number{Number: "+15551230000"}},
		Second: &originationv1.PartySpec{Target: &originationv1.PartySpec_EndpointId{EndpointId: phones["1000"]}}})
	wantCode(t, err, codes.FailedPrecondition, "ENDPOINT_BUSY")
	_, err = srv.CreateCall(asAccount("acct-it"), &originationv1.CreateCallRequest{
		First: &originationv1.PartySpec{Target: &originationv1.PartySpec_EndpointId{EndpointId: phones["1000"]}}, Conference: "agent-1000b"})
	wantCode(t, err, codes.FailedPrecondition, "ENDPOINT_BUSY")
	// It stays in the room until the agent hangs up.
	time.Sleep(200 * time.Millisecond)
	st.waitStatus(id, StatusBridged)
	st.hangupChannel(agent)
	done := st.waitStatus(id, StatusCompleted, StatusFailed, StatusCanceled)
	if done.Status != StatusCompleted || done.Conference != "agent-1000" || done.Abandoned || done.First.HangupCause != "NORMAL_CLEARING" {
		t.Fatalf("ended session: %+v", done)
	}
	last, types := st.lastCall(id)
	want := "CALL_QUEUED/UNSPECIFIED CALL_DIALING/FIRST LEG_RINGING/FIRST LEG_ANSWERED/FIRST CONFERENCE_JOINED/FIRST " +
		"LEG_HANGUP/FIRST CALL_COMPLETED/UNSPECIFIED"
	if events := strings.Join(types, " "); events != want {
		t.Fatalf("events:\n got %s\nwant %s", events, want)
	}
	if last.GetConference() != "agent-1000" || last.GetBillsec() < 0 || last.GetSecond() != nil {
		t.Fatalf("final event's call: %v", last)
	}
	st.waitRoom("agent-1000")
	// The phone is free again.
	resp, err = srv.CreateCall(asAccount("acct-it"), &originationv1.CreateCallRequest{
		First: &originationv1.PartySpec{Target: &originationv1.PartySpec_EndpointId{EndpointId: phones["1000"]}}, Conference: "agent-1000"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.HangupCall(asAccount("acct-it"), &originationv1.HangupCallRequest{Id: resp.GetCall().GetId()}); err != nil {
		t.Fatal(err)
	}
}

// startSession logs an agent in: its phone in its room.
func startSession(t *testing.T, st *stack, srv *CallServer, endpointID, room string) (string, string) {
	t.Helper()
	resp, err := srv.CreateCall(asAccount("acct-it"), &originationv1.CreateCallRequest{
		First: &originationv1.PartySpec{Target: &originationv1.PartySpec_EndpointId{EndpointId: endpointID}}, Conference: room})
	if err != nil {
		t.Fatal(err)
	}
	id := resp.GetCall().GetId()
	st.waitEvent(id, eventsv1.EventType_EVENT_TYPE_CONFERENCE_JOINED)
	return id, resp.GetCall().GetFirst().GetUuid()
}

// awaitCall dials a customer who, once answered, waits for an agent.
func awaitCall(t *testing.T, srv *CallServer, number string, timeoutMS int32) *originationv1.Call {
	t.Helper()
	resp, err := srv.CreateCall(asAccount("acct-it"), &originationv1.CreateCallRequest{
		First:      &originationv1.PartySpec{Target: &originationv1.PartySpec_Number{Number: number}},
		AwaitAgent: &originationv1.AwaitAgent{TimeoutMs: timeoutMS, SafeHarbour: safeHarbour}})
	if err != nil {
		t.Fatal(err)
	}
	return resp.GetCall()
}

func TestThroughSimulatorAwaitAgentConnected(t *testing.T) {
	t.Parallel()
	st := newStack(t)
	srv, phones := agentPhones(t, st, "1001")
	session, agent := startSession(t, st, srv, phones["1001"], "agent-1001")
	customer := awaitCall(t, srv, "+15551230000", 30000)
	awaited := st.waitEvent(customer.GetId(), eventsv1.EventType_EVENT_TYPE_AGENT_AWAITED)
	if c := awaited.GetCall(); c.GetStatus() != originationv1.CallStatus_CALL_STATUS_ANSWERED || c.GetAwaitAgent().GetTimeoutMs() != 30000 ||
		c.GetAwaitAgent().GetSafeHarbour() != safeHarbour || c.GetConference() != "" {
		t.Fatalf("AGENT_AWAITED: %v", awaited)
	}
	resp, err := srv.ConnectCall(asAccount("acct-it"), &originationv1.ConnectCallRequest{Id: customer.GetId(), Conference: "agent-1001"})
	if err != nil {
		t.Fatal(err)
	}
	if c := resp.GetCall(); c.GetConference() != "agent-1001" || c.GetAbandoned() {
		t.Fatalf("ConnectCall: %v", c)
	}
	joined := st.waitEvent(customer.GetId(), eventsv1.EventType_EVENT_TYPE_CONFERENCE_JOINED)
	if c := joined.GetCall(); c.GetStatus() != originationv1.CallStatus_CALL_STATUS_BRIDGED || c.GetConference() != "agent-1001" || c.GetBridgedAt() == nil {
		t.Fatalf("CONFERENCE_JOINED: %v", joined)
	}
	st.waitStatus(customer.GetId(), StatusBridged)
	// The customer is with the agent: the room has both.
	st.waitRoom("agent-1001", customer.GetFirst().GetUuid()+" hear|speak", agent+" hear|speak|moderator")
	_, err = srv.ConnectCall(asAccount("acct-it"), &originationv1.ConnectCallRequest{Id: customer.GetId(), Conference: "agent-1001"})
	wantCode(t, err, codes.FailedPrecondition, "CALL_NOT_WAITING")
	// The customer hangs up: the customer's call ends, the agent stays in
	// the room for the next one.
	st.hangupChannel(customer.GetFirst().GetUuid())
	done := st.waitStatus(customer.GetId(), StatusCompleted, StatusFailed, StatusCanceled)
	if done.Status != StatusCompleted || done.Abandoned || done.Conference != "agent-1001" || done.BridgedAt.IsZero() {
		t.Fatalf("customer's call: %+v", done)
	}
	last, types := st.lastCall(customer.GetId())
	want := "CALL_QUEUED/UNSPECIFIED CALL_DIALING/FIRST LEG_RINGING/FIRST LEG_ANSWERED/FIRST AGENT_AWAITED/FIRST CONFERENCE_JOINED/FIRST " +
		"LEG_HANGUP/FIRST CALL_COMPLETED/UNSPECIFIED"
	if events := strings.Join(types, " "); events != want {
		t.Fatalf("events:\n got %s\nwant %s", events, want)
	}
	if last.GetAbandoned() || last.GetConference() != "agent-1001" {
		t.Fatalf("final event's call: %v", last)
	}
	st.waitRoom("agent-1001", agent+" hear|speak|moderator")
	if got := st.waitStatus(session, StatusBridged); got.Conference != "agent-1001" {
		t.Fatalf("session: %+v", got)
	}
	st.hangupChannel(agent)
	st.waitStatus(session, StatusCompleted)
}

func TestThroughSimulatorAwaitAgentAbandoned(t *testing.T) {
	t.Parallel()
	st := newStack(t)
	played := playbacks(t, st)
	srv := &CallServer{Engine: st.engine, Redis: st.store.rdb}
	customer := awaitCall(t, srv, "+15557770000", 300)
	st.waitEvent(customer.GetId(), eventsv1.EventType_EVENT_TYPE_AGENT_AWAITED)
	abandoned := st.waitEvent(customer.GetId(), eventsv1.EventType_EVENT_TYPE_CALL_ABANDONED)
	if c := abandoned.GetCall(); !c.GetAbandoned() || c.GetConference() != "" {
		t.Fatalf("CALL_ABANDONED: %v", abandoned)
	}
	// Too late for an agent.
	_, err := srv.ConnectCall(asAccount("acct-it"), &originationv1.ConnectCallRequest{Id: customer.GetId(), Conference: "agent-1002"})
	wantCode(t, err, codes.FailedPrecondition, "CALL_NOT_WAITING")
	// The far end stays up: the engine hangs it up once the safe harbour
	// (3 simulated seconds) has played.
	done := st.waitStatus(customer.GetId(), StatusCompleted, StatusFailed, StatusCanceled)
	if done.Status != StatusCompleted || !done.Abandoned || !done.BridgedAt.IsZero() || done.First.HangupCause != "NORMAL_CLEARING" ||
		done.First.Billsec < 3 {
		t.Fatalf("abandoned call: %+v", done)
	}
	if files := played(customer.GetFirst().GetUuid()); !slices.Equal(files, []string{safeHarbour}) {
		t.Fatalf("played %q, want the safe harbour", files)
	}
	last, types := st.lastCall(customer.GetId())
	want := "CALL_QUEUED/UNSPECIFIED CALL_DIALING/FIRST LEG_RINGING/FIRST LEG_ANSWERED/FIRST AGENT_AWAITED/FIRST CALL_ABANDONED/FIRST " +
		"LEG_HANGUP/FIRST CALL_COMPLETED/UNSPECIFIED"
	if events := strings.Join(types, " "); events != want {
		t.Fatalf("events:\n got %s\nwant %s", events, want)
	}
	if !last.GetAbandoned() || last.GetStatus() != originationv1.CallStatus_CALL_STATUS_COMPLETED || last.GetBillsec() != 0 {
		t.Fatalf("final event's call: %v", last)
	}
	_, err = srv.ConnectCall(asAccount("acct-it"), &originationv1.ConnectCallRequest{Id: customer.GetId(), Conference: "agent-1002"})
	wantCode(t, err, codes.FailedPrecondition, "CALL_NOT_WAITING")
	st.waitGone(t, "the abandoned party", func(ch sim.ChannelInfo) bool { return ch.UUID == customer.GetFirst().GetUuid() })
}

// origination restarts while an agent is in its room and a customer waits
// for an agent: the session goes on (its hangup still ends it), and so does
// the customer's wait (30 s): the dialer's ConnectCall reaches it after
// the restart.
func TestThroughSimulatorAgentSessionSurvivesRestart(t *testing.T) {
	t.Parallel()
	st := newStack(t)
	played := playbacks(t, st)
	srv, phones := agentPhones(t, st, "1003")
	session, agent := startSession(t, st, srv, phones["1003"], "agent-1003")
	customer := awaitCall(t, srv, "+15558880000", 30000)
	st.waitEvent(customer.GetId(), eventsv1.EventType_EVENT_TYPE_AGENT_AWAITED)

	res := st.engine.res
	st.client.Close()
	st.sw.Close()
	st.engine.Close()
	st.restart(t)
	st.engine.res = res // the same endpoints
	srv = &CallServer{Engine: st.engine, Redis: st.store.rdb}

	time.Sleep(100 * time.Millisecond)
	if got := st.waitStatus(customer.GetId(), StatusAnswered); !got.waiting() {
		t.Fatalf("customer after the restart: %+v", got)
	}
	if _, err := srv.ConnectCall(asAccount("acct-it"), &originationv1.ConnectCallRequest{Id: customer.GetId(), Conference: "agent-1003"}); err != nil {
		t.Fatalf("ConnectCall after the restart: %v", err)
	}
	st.waitStatus(customer.GetId(), StatusBridged)
	st.hangupChannel(customer.GetFirst().GetUuid())
	if got := st.waitStatus(customer.GetId(), StatusCompleted, StatusFailed, StatusCanceled); got.Status != StatusCompleted || got.Abandoned {
		t.Fatalf("customer: %+v", got)
	}
	if files := played(customer.GetFirst().GetUuid()); len(files) != 0 {
		t.Fatalf("played %q to the customer, want nothing", files)
	}
	if got := st.waitStatus(session, StatusBridged); got.Conference != "agent-1003" || got.BridgedAt.IsZero() {
		t.Fatalf("session after the restart: %+v", got)
	}
	st.waitRoom("agent-1003", agent+" hear|speak|moderator")
	// Still the phone's call.
	_, err := srv.CreateCall(asAccount("acct-it"), &originationv1.CreateCallRequest{
		First: &originationv1.PartySpec{Target: &originationv1.PartySpec_EndpointId{EndpointId: phones["1003"]}}, Conference: "agent-1003"})
	wantCode(t, err, codes.FailedPrecondition, "ENDPOINT_BUSY")
	st.hangupChannel(agent)
	done := st.waitStatus(session, StatusCompleted, StatusFailed, StatusCanceled)
	if done.Status != StatusCompleted || done.Conference != "agent-1003" {
		t.Fatalf("session: %+v", done)
	}
	want := "CALL_QUEUED/UNSPECIFIED CALL_DIALING/FIRST LEG_RINGING/FIRST LEG_ANSWERED/FIRST CONFERENCE_JOINED/FIRST " +
		"LEG_HANGUP/FIRST CALL_COMPLETED/UNSPECIFIED"
	if events := strings.Join(st.eventTypes(session), " "); events != want {
		t.Fatalf("session's events:\n got %s\nwant %s", events, want)
	}
	want = "CALL_QUEUED/UNSPECIFIED CALL_DIALING/FIRST LEG_RINGING/FIRST LEG_ANSWERED/FIRST AGENT_AWAITED/FIRST CONFERENCE_JOINED/FIRST " +
		"LEG_HANGUP/FIRST CALL_COMPLETED/UNSPECIFIED"
	if events := strings.Join(st.eventTypes(customer.GetId()), " "); events != want {
		t.Fatalf("customer's events:\n got %s\nwant %s", events, want)
	}
}

// The drain of a shutdown does not wait for the agents' sessions in their
// rooms (the replica that comes back takes them over:
// TestThroughSimulatorAgentSessionSurvivesRestart), but waits for a
// customer's call, and for a session whose phone still rings.
func TestDrainLeavesSessionsInTheirRooms(t *testing.T) {
	t.Parallel()
	st := newStack(t)
	srv, phones := agentPhones(t, st, "1004")
	svc := &Service{Engine: st.engine}
	drain := func(d time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		return svc.Drain(ctx)
	}
	session, agent := startSession(t, st, srv, phones["1004"], "agent-1004")
	if n := svc.LiveCount(context.Background()); n != 0 {
		t.Fatalf("LiveCount with only a session in its room: %d", n)
	}
	if err := drain(5 * time.Second); err != nil {
		t.Fatalf("drain with only a session in its room: %v", err)
	}
	customer := awaitCall(t, srv, "+15551230000", 30000)
	st.waitEvent(customer.GetId(), eventsv1.EventType_EVENT_TYPE_AGENT_AWAITED)
	if n := svc.LiveCount(context.Background()); n != 1 {
		t.Fatalf("LiveCount with a customer waiting: %d, want 1", n)
	}
	if err := drain(300 * time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("drain with a customer waiting: %v, want the deadline", err)
	}
	if _, err := srv.HangupCall(asAccount("acct-it"), &originationv1.HangupCallRequest{Id: customer.GetId()}); err != nil {
		t.Fatal(err)
	}
	st.waitStatus(customer.GetId(), StatusCompleted, StatusFailed, StatusCanceled)
	if err := drain(5 * time.Second); err != nil {
		t.Fatalf("drain once the customer's call ended: %v", err)
	}
	st.hangupChannel(agent)
	st.waitStatus(session, StatusCompleted)
}
