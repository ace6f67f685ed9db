package origination

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	"github.com/ringback/ringback/services/internal/esl"
)

// BLASTs: a menu of digits after the first party's answer, and
// answering-machine detection. The engine tests play FreeSWITCH by hand;
// the TestThroughSimulator ones run the ringback dialplan in the simulator.

// menuExec is the CHANNEL_EXECUTE_COMPLETE of the menu's
// play_and_get_digits, as FreeSWITCH sends it.
func menuExec(c *Call, digits, readResult string, down bool) SwitchEvent {
	return SwitchEvent{Node: "fs1", Name: "CHANNEL_EXECUTE_COMPLETE", UUID: c.First.UUID, CallID: c.ID, Leg: "first",
		Application: "play_and_get_digits", Digits: digits, ReadResult: readResult, ChannelDown: down}
}

func amdExec(c *Call, result string) SwitchEvent {
	return SwitchEvent{Node: "fs1", Name: "CHANNEL_EXECUTE_COMPLETE", UUID: c.First.UUID, CallID: c.ID, Leg: "first",
		Application: "amd", AMDResult: result}
}

var blastMenu = Menu{Options: []MenuOption{{"1", MenuConnect}, {"9", MenuOptOut}}, TimeoutMS: 2000}

func TestMenuChoices(t *testing.T) {
	t.Parallel()
	const wantVars = "setvars %s ringback_pagd_invalid=silence_stream://250;ringback_pagd_max=1;ringback_pagd_min=1;" +
		"ringback_pagd_prompt=/sounds/offer.wav;ringback_pagd_regexp=^[19]$;ringback_pagd_terminators=none;" +
		"ringback_pagd_timeout_ms=2000;ringback_pagd_tries=3;ringback_pagd_var=ringback_digits"
	tests := []struct {
		name string
		// run plays FreeSWITCH once the menu is running.
		run        func(h *harness, c *Call)
		wantStatus Status
		wantReason FailureReason
		wantDigits string
		wantChoice MenuAction
		wantEvents []string
	}{
		{
			name: "CONNECT dials the second party",
			run: func(h *harness, c *Call) {
				h.e.HandleEvent(menuExec(c, "1", "success", false))
				h.waitCmd("originate second")
				h.event(c, RoleSecond, "CHANNEL_ANSWER", "", 0)
				h.waitCmd("bridge " + c.First.UUID + " " + c.Second.UUID)
				h.event(c, RoleFirst, "CHANNEL_BRIDGE", "", 0)
				h.waitStatus(c.ID, StatusBridged)
				h.event(c, RoleSecond, "CHANNEL_HANGUP_COMPLETE", "NORMAL_CLEARING", 200)
				h.waitCmd("hangup " + c.First.UUID + " NORMAL_CLEARING")
				h.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "NORMAL_CLEARING", 0)
			},
			wantStatus: StatusCompleted, wantDigits: "1", wantChoice: MenuConnect,
			wantEvents: []string{"CALL_QUEUED", "CALL_DIALING(first)", "LEG_ANSWERED(first)", "ANNOUNCEMENT_STARTED(first)",
				"ANNOUNCEMENT_FINISHED(first)", "MENU_CHOICE(first)", "LEG_DIALING(second)", "LEG_ANSWERED(second)", "CALL_BRIDGED",
				"LEG_HANGUP(second)", "LEG_HANGUP(first)", "CALL_COMPLETED"},
		},
		{
			name: "OPT_OUT ends the call",
			run: func(h *harness, c *Call) {
				h.e.HandleEvent(menuExec(c, "9", "success", false))
				h.waitCmd("hangup " + c.First.UUID + " NORMAL_CLEARING")
				h.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "NORMAL_CLEARING", 0)
			},
			wantStatus: StatusCompleted, wantDigits: "9", wantChoice: MenuOptOut,
			wantEvents: []string{"CALL_QUEUED", "CALL_DIALING(first)", "LEG_ANSWERED(first)", "ANNOUNCEMENT_STARTED(first)",
				"ANNOUNCEMENT_FINISHED(first)", "MENU_CHOICE(first)", "LEG_HANGUP(first)", "CALL_COMPLETED"},
		},
		{
			name: "no option pressed",
			run: func(h *harness, c *Call) {
				h.e.HandleEvent(menuExec(c, "", "failure", false))
				h.waitCmd("hangup " + c.First.UUID + " NORMAL_CLEARING")
				h.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "NORMAL_CLEARING", 0)
			},
			wantStatus: StatusCompleted,
			wantEvents: []string{"CALL_QUEUED", "CALL_DIALING(first)", "LEG_ANSWERED(first)", "ANNOUNCEMENT_STARTED(first)",
				"ANNOUNCEMENT_FINISHED(first)", "LEG_HANGUP(first)", "CALL_COMPLETED"},
		},
		{
			// The playback of the prompt inside play_and_get_digits is not
			// the end of the menu.
			name: "prompt's PLAYBACK_STOP, then the party hangs up",
			run: func(h *harness, c *Call) {
				h.event(c, RoleFirst, "PLAYBACK_STOP", "", 0)
				h.e.HandleEvent(menuExec(c, "", "failure", true))
				h.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "NORMAL_CLEARING", 200)
			},
			wantStatus: StatusFailed, wantReason: ReasonCanceled,
			wantEvents: []string{"CALL_QUEUED", "CALL_DIALING(first)", "LEG_ANSWERED(first)", "ANNOUNCEMENT_STARTED(first)",
				"LEG_HANGUP(first)", "CALL_FAILED(first)"},
		},
		{
			name: "chose, then hung up at once",
			run: func(h *harness, c *Call) {
				h.e.HandleEvent(menuExec(c, "9", "success", true))
				h.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "NORMAL_CLEARING", 200)
			},
			wantStatus: StatusCompleted, wantDigits: "9", wantChoice: MenuOptOut,
			wantEvents: []string{"CALL_QUEUED", "CALL_DIALING(first)", "LEG_ANSWERED(first)", "ANNOUNCEMENT_STARTED(first)",
				"ANNOUNCEMENT_FINISHED(first)", "MENU_CHOICE(first)", "LEG_HANGUP(first)", "CALL_COMPLETED"},
		},
		{
			name: "FreeSWITCH refuses the transfer",
			run: func(h *harness, c *Call) {
				h.waitCmd("hangup " + c.First.UUID + " NORMAL_TEMPORARY_FAILURE")
				h.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "NORMAL_TEMPORARY_FAILURE", 0)
			},
			wantStatus: StatusFailed, wantReason: ReasonInternal,
			wantEvents: []string{"CALL_QUEUED", "CALL_DIALING(first)", "LEG_ANSWERED(first)", "ANNOUNCEMENT_STARTED(first)",
				"LEG_HANGUP(first)", "CALL_FAILED(first)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			if strings.Contains(tt.name, "refuses") {
				h.sw.failNext["transfer "] = causeErr("No such channel!")
			}
			m := blastMenu
			c := h.create(CreateRequest{First: PartySpec{Number: "+15551230001"}, Second: PartySpec{Number: "+15551230002"},
				Announcement: "/sounds/offer.wav", Menu: &m})
			if c.AnnouncementOnly || c.Menu.Tries != DefaultMenuTries {
				t.Fatalf("created call: announcement-only %v, menu %+v", c.AnnouncementOnly, c.Menu)
			}
			h.waitCmd("originate first")
			h.event(c, RoleFirst, "CHANNEL_ANSWER", "", 0)
			if got, want := h.waitCmd("setvars "), strings.ReplaceAll(wantVars, "%s", c.First.UUID); got != want {
				t.Fatalf("variables:\n got %s\nwant %s", got, want)
			}
			h.waitCmd("transfer " + c.First.UUID + " ivr_digits")
			h.noCmd("originate second") // only on CONNECT
			h.noCmd("play ")            // the prompt is the menu's
			tt.run(h, c)
			got := h.waitStatus(c.ID, tt.wantStatus)
			if got.FailureReason != tt.wantReason || got.Digits != tt.wantDigits || got.MenuChoice != tt.wantChoice || got.Media != "" {
				t.Fatalf("call: reason %q digits %q choice %q media %q; want %q %q %q", got.FailureReason, got.Digits, got.MenuChoice,
					got.Media, tt.wantReason, tt.wantDigits, tt.wantChoice)
			}
			if tt.wantChoice != MenuConnect {
				h.noCmd("originate second")
				if got.Second.Status != LegFailed || !got.Second.DialedAt.IsZero() {
					t.Fatalf("second leg: %+v", got.Second)
				}
			}
			h.wantEvents(tt.wantEvents...)
			p := ToProto(got, time.Now())
			if p.GetDigits() != tt.wantDigits || p.GetMenuChoice() != menuActionToProto[tt.wantChoice] {
				t.Fatalf("API: digits %q choice %v", p.GetDigits(), p.GetMenuChoice())
			}
		})
	}
}

func TestMachineDetection(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		message string
		second  bool
		// run plays FreeSWITCH once the leg is in the amd extension.
		run        func(h *harness, c *Call)
		wantStatus Status
		wantReason FailureReason
		wantResult string
		wantLeft   bool
		wantEvents []string
	}{
		{
			name: "machine, no message: hung up at once",
			run: func(h *harness, c *Call) {
				h.e.HandleEvent(amdExec(c, "MACHINE"))
				h.waitCmd("hangup " + c.First.UUID + " NORMAL_CLEARING")
				h.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "NORMAL_CLEARING", 0)
			},
			wantStatus: StatusFailed, wantReason: ReasonMachine, wantResult: "MACHINE",
			wantEvents: []string{"CALL_QUEUED", "CALL_DIALING(first)", "LEG_ANSWERED(first)", "MACHINE_DETECTED(first)",
				"LEG_HANGUP(first)", "CALL_FAILED(first)"},
		},
		{
			name: "machine, message left after the beep", message: "/sounds/vm.wav",
			run: func(h *harness, c *Call) {
				h.e.HandleEvent(amdExec(c, "MACHINE"))
				h.waitCmd("setvars " + c.First.UUID + " ringback_message=/sounds/vm.wav")
				h.waitCmd("transfer " + c.First.UUID + " voicemail_drop")
				h.event(c, RoleFirst, "PLAYBACK_STOP", "", 0)
				h.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "NORMAL_CLEARING", 0)
			},
			wantStatus: StatusFailed, wantReason: ReasonMachine, wantResult: "MACHINE", wantLeft: true,
			wantEvents: []string{"CALL_QUEUED", "CALL_DIALING(first)", "LEG_ANSWERED(first)", "MACHINE_DETECTED(first)",
				"LEG_HANGUP(first)", "CALL_FAILED(first)"},
		},
		{
			name: "machine hangs up before its beep", message: "/sounds/vm.wav",
			run: func(h *harness, c *Call) {
				h.e.HandleEvent(amdExec(c, "MACHINE"))
				h.waitCmd("transfer " + c.First.UUID + " voicemail_drop")
				h.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "NORMAL_CLEARING", 200)
			},
			wantStatus: StatusFailed, wantReason: ReasonMachine, wantResult: "MACHINE",
			wantEvents: []string{"CALL_QUEUED", "CALL_DIALING(first)", "LEG_ANSWERED(first)", "MACHINE_DETECTED(first)",
				"LEG_HANGUP(first)", "CALL_FAILED(first)"},
		},
		{
			name: "human: the announcement plays",
			run: func(h *harness, c *Call) {
				h.e.HandleEvent(amdExec(c, "HUMAN"))
				h.waitCmd("play " + c.First.UUID + " /sounds/offer.wav")
				h.event(c, RoleFirst, "PLAYBACK_STOP", "", 0)
				h.waitCmd("hangup " + c.First.UUID + " NORMAL_CLEARING")
				h.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "NORMAL_CLEARING", 0)
			},
			wantStatus: StatusCompleted, wantResult: "HUMAN",
			wantEvents: []string{"CALL_QUEUED", "CALL_DIALING(first)", "LEG_ANSWERED(first)", "MACHINE_DETECTED(first)",
				"ANNOUNCEMENT_STARTED(first)", "ANNOUNCEMENT_FINISHED(first)", "LEG_HANGUP(first)", "CALL_COMPLETED"},
		},
		{
			// Without mod_amd the extension sets NOTSURE itself and parks:
			// no amd application completes, its "set amd_cause=..." does.
			name: "not sure (mod_amd not loaded), two parties: the second is dialed", second: true,
			run: func(h *harness, c *Call) {
				h.e.HandleEvent(SwitchEvent{Node: "fs1", Name: "CHANNEL_EXECUTE_COMPLETE", UUID: c.First.UUID, CallID: c.ID,
					Application: "set", AMDResult: "NOTSURE"})
				h.waitCmd("play " + c.First.UUID + " /sounds/offer.wav")
				h.event(c, RoleFirst, "PLAYBACK_STOP", "", 0)
				h.waitCmd("originate second")
				h.event(c, RoleSecond, "CHANNEL_HANGUP_COMPLETE", "USER_BUSY", 486)
				h.waitCmd("hangup " + c.First.UUID + " NORMAL_CLEARING")
				h.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "NORMAL_CLEARING", 0)
			},
			wantStatus: StatusFailed, wantReason: ReasonBusy, wantResult: "NOTSURE",
			wantEvents: []string{"CALL_QUEUED", "CALL_DIALING(first)", "LEG_ANSWERED(first)", "MACHINE_DETECTED(first)",
				"ANNOUNCEMENT_STARTED(first)", "ANNOUNCEMENT_FINISHED(first)", "LEG_DIALING(second)", "LEG_HANGUP(second)",
				"LEG_HANGUP(first)", "CALL_FAILED(second)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			req := CreateRequest{First: PartySpec{Number: "+15551230001"}, Announcement: "/sounds/offer.wav",
				MachineDetection: MachineDetection{Enabled: true, Message: tt.message}}
			if tt.second {
				req.Second = PartySpec{Number: "+15551230002"}
			}
			c := h.create(req)
			h.waitCmd("originate first")
			h.event(c, RoleFirst, "CHANNEL_ANSWER", "", 0)
			h.waitCmd("transfer " + c.First.UUID + " amd")
			h.noCmd("play ") // not before the verdict
			// Other applications complete meanwhile (the amd extension's
			// answer).
			h.e.HandleEvent(SwitchEvent{Node: "fs1", Name: "CHANNEL_EXECUTE_COMPLETE", UUID: c.First.UUID, CallID: c.ID, Application: "answer"})
			tt.run(h, c)
			got := h.waitStatus(c.ID, tt.wantStatus)
			if got.FailureReason != tt.wantReason || got.MachineResult != tt.wantResult || got.MachineMessageLeft != tt.wantLeft {
				t.Fatalf("call: reason %q result %q left %v; want %q %q %v", got.FailureReason, got.MachineResult, got.MachineMessageLeft,
					tt.wantReason, tt.wantResult, tt.wantLeft)
			}
			if tt.wantReason == ReasonMachine && (got.FailedLeg != RoleFirst || got.First.Status != LegHungup || got.Announced) {
				t.Fatalf("machine call: %+v", got)
			}
			h.wantEvents(tt.wantEvents...)
			p := ToProto(got, time.Now())
			if p.GetMachineResult() != tt.wantResult || p.GetMachineMessageLeft() != tt.wantLeft ||
				(tt.wantReason == ReasonMachine) != (p.GetFailureReason() == originationv1.FailureReason_FAILURE_REASON_MACHINE) {
				t.Fatalf("API: %v %v %v", p.GetMachineResult(), p.GetMachineMessageLeft(), p.GetFailureReason())
			}
		})
	}
}

func TestBlastValidation(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	srv := &CallServer{Engine: h.e, Redis: h.store.rdb}
	number := func(n string) *originationv1.PartySpec {
		return &originationv1.PartySpec{Target: &originationv1.PartySpec_Number{Number: n}}
	}
	opt := func(d string, a originationv1.MenuAction) *originationv1.MenuOption {
		return &originationv1.MenuOption{Digit: d, Action: a}
	}
	const (
		connect = originationv1.MenuAction_MENU_ACTION_CONNECT
		optOut  = originationv1.MenuAction_MENU_ACTION_OPT_OUT
		end     = originationv1.MenuAction_MENU_ACTION_END
	)
	menu := func(opts ...*originationv1.MenuOption) *originationv1.Menu { return &originationv1.Menu{Options: opts} }
	tests := []struct {
		name string
		req  *originationv1.CreateCallRequest
		want string // in the error message
	}{
		{"menu without announcement", &originationv1.CreateCallRequest{First: number("+15551230001"),
			Menu: menu(opt("9", optOut))}, "needs an announcement"},
		{"menu without options", &originationv1.CreateCallRequest{First: number("+15551230001"), Announcement: "/s/a.wav",
			Menu: menu()}, "at least one option"},
		{"digit twice", &originationv1.CreateCallRequest{First: number("+15551230001"), Announcement: "/s/a.wav",
			Menu: menu(opt("9", optOut), opt("9", end))}, "used twice"},
		{"digit not a key", &originationv1.CreateCallRequest{First: number("+15551230001"), Announcement: "/s/a.wav",
			Menu: menu(opt("A", optOut))}, "one of 0-9"},
		{"two digits", &originationv1.CreateCallRequest{First: number("+15551230001"), Announcement: "/s/a.wav",
			Menu: menu(opt("12", optOut))}, "one of 0-9"},
		{"no action", &originationv1.CreateCallRequest{First: number("+15551230001"), Announcement: "/s/a.wav",
			Menu: menu(opt("1", originationv1.MenuAction_MENU_ACTION_UNSPECIFIED))}, "action is required"},
		{"CONNECT without a second party", &originationv1.CreateCallRequest{First: number("+15551230001"), Announcement: "/s/a.wav",
			Menu: menu(opt("1", connect))}, "needs a second party"},
		{"second party without CONNECT", &originationv1.CreateCallRequest{First: number("+15551230001"), Second: number("+15551230002"),
			Announcement: "/s/a.wav", Menu: menu(opt("9", optOut))}, "dialed only when the party presses a CONNECT option"},
		{"menu, simultaneous", &originationv1.CreateCallRequest{First: number("+15551230001"), Second: number("+15551230002"),
			Mode: originationv1.CallMode_CALL_MODE_SIMULTANEOUS, Announcement: "/s/a.wav", Menu: menu(opt("1", connect))}, "sequential"},
		{"machine detection, simultaneous", &originationv1.CreateCallRequest{First: number("+15551230001"), Second: number("+15551230002"),
			Mode: originationv1.CallMode_CALL_MODE_SIMULTANEOUS, MachineDetection: &originationv1.MachineDetection{Enabled: true}}, "sequential"},
		{"too many tries", &originationv1.CreateCallRequest{First: number("+15551230001"), Announcement: "/s/a.wav",
			Menu: &originationv1.Menu{Options: []*originationv1.MenuOption{opt("9", optOut)}, Tries: 6}}, "tries"},
		{"timeout too short", &originationv1.CreateCallRequest{First: number("+15551230001"), Announcement: "/s/a.wav",
			Menu: &originationv1.Menu{Options: []*originationv1.MenuOption{opt("9", optOut)}, TimeoutMs: 500}}, "timeout_ms"},
		{"timeout too long", &originationv1.CreateCallRequest{First: number("+15551230001"), Announcement: "/s/a.wav",
			Menu: &originationv1.Menu{Options: []*originationv1.MenuOption{opt("9", optOut)}, TimeoutMs: 30001}}, "timeout_ms"},
		{"invalid prompt with a space", &originationv1.CreateCallRequest{First: number("+15551230001"), Announcement: "/s/a.wav",
			Menu: &originationv1.Menu{Options: []*originationv1.MenuOption{opt("9", optOut)}, Invalid: "/s/b c.wav"}}, "invalid must be"},
		{"prompt with a semicolon", &originationv1.CreateCallRequest{First: number("+15551230001"),
			Announcement: "tone_stream://%(1000,0,440);loops=2", Menu: menu(opt("9", optOut))}, "without spaces or \";\""},
		{"message with a semicolon", &originationv1.CreateCallRequest{First: number("+15551230001"), Announcement: "/s/a.wav",
			MachineDetection: &originationv1.MachineDetection{Enabled: true, Message: "/s/a.wav;x=y"}}, "machine_detection.message"},
		{"message without detection", &originationv1.CreateCallRequest{First: number("+15551230001"), Announcement: "/s/a.wav",
			MachineDetection: &originationv1.MachineDetection{Message: "/s/vm.wav"}}, "requires machine_detection.enabled"},
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
	// What is valid is kept, defaults filled.
	resp, err := srv.CreateCall(asAccount("acct-1"), &originationv1.CreateCallRequest{First: number("+15551230001"),
		Announcement: "/s/a.wav", Menu: &originationv1.Menu{Options: []*originationv1.MenuOption{opt("*", end), opt("#", optOut)}},
		MachineDetection: &originationv1.MachineDetection{Enabled: true, Message: "/s/vm.wav"}})
	if err != nil {
		t.Fatal(err)
	}
	c, err := h.e.Get(context.Background(), resp.GetCall().GetId())
	if err != nil {
		t.Fatal(err)
	}
	if !c.AnnouncementOnly || c.Menu.Tries != 3 || c.Menu.TimeoutMS != 5000 || c.Menu.regexp() != "^[*#]$" ||
		!c.MachineDetection || c.MachineMessage != "/s/vm.wav" || resp.GetCall().GetSecond() != nil {
		t.Fatalf("stored call: %+v menu %+v", c, c.Menu)
	}
}

// A restarted origination finds the menu's outcome on the channel: the
// CHANNEL_EXECUTE_COMPLETE went to nobody.
func TestMenuRecoveredAfterRestart(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	m := Menu{Options: []MenuOption{{"9", MenuOptOut}}}
	c := h.create(CreateRequest{First: PartySpec{Number: "+15551230001"}, Announcement: "/sounds/offer.wav", Menu: &m})
	h.waitCmd("originate first")
	h.event(c, RoleFirst, "CHANNEL_ANSWER", "", 0)
	h.waitCmd("transfer " + c.First.UUID + " ivr_digits")
	h.wantEvents("CALL_QUEUED", "CALL_DIALING(first)", "LEG_ANSWERED(first)", "ANNOUNCEMENT_STARTED(first)")
	h.e.Close()

	restart := func(vars map[string]string) *harness {
		sw := &fakeSwitch{failNext: map[string]error{}, vars: map[string]map[string]string{c.First.UUID: vars}}
		e := NewEngine(h.e.cfg, sw, h.store, h.pub, &memLocker{}, DialPlan{}, h.e.log)
		t.Cleanup(e.Close)
		if err := e.Recover(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		return &harness{t: t, e: e, sw: sw, pub: h.pub, store: h.store}
	}
	// Still in the menu: nothing to do.
	h2 := restart(map[string]string{"current_application": "play_and_get_digits"})
	if got, _ := h2.e.Get(context.Background(), c.ID); got.Media != MediaMenu || len(h2.sw.commands()) != 0 {
		t.Fatalf("call still in its menu: media %q, commands %v", got.Media, h2.sw.commands())
	}
	h2.e.Close()
	// The party pressed 9 while nobody listened; the leg is parked again.
	h3 := restart(map[string]string{"current_application": "park", "ringback_digits": "9", "read_result": "success"})
	h3.waitCmd("hangup " + c.First.UUID + " NORMAL_CLEARING")
	h3.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "NORMAL_CLEARING", 0)
	got := h3.waitStatus(c.ID, StatusCompleted)
	if got.Digits != "9" || got.MenuChoice != MenuOptOut || got.Menu == nil || got.Menu.Options[0].Digit != "9" {
		t.Fatalf("recovered call: %+v", got)
	}
	// Each restart publishes the outbox again under the same sequence
	// numbers (the bus drops such duplicates): count each event once. The
	// outbox publishes after the status is stored: wait for the last ones
	// (up to 5 s, as wantEvents).
	events := func() string {
		h.pub.mu.Lock()
		defer h.pub.mu.Unlock()
		var events []string
		seen := map[int64]bool{}
		for i, seq := range h.pub.seqs[c.ID] {
			if !seen[seq] {
				seen[seq] = true
				events = append(events, h.pub.events[i])
			}
		}
		return strings.Join(events, " ")
	}
	want := "CALL_QUEUED CALL_DIALING(first) LEG_ANSWERED(first) ANNOUNCEMENT_STARTED(first) ANNOUNCEMENT_FINISHED(first) " +
		"MENU_CHOICE(first) LEG_HANGUP(first) CALL_COMPLETED"
	for deadline := time.Now().Add(5 * time.Second); events() != want && time.Now().Before(deadline); {
		time.Sleep(2 * time.Millisecond)
	}
	if got := events(); got != want {
		t.Fatalf("events:\n got %s\nwant %s", got, want)
	}
}

// Through the simulator: the ringback dialplan's ivr_digits, amd and
// voicemail_drop run as FreeSWITCH runs them.

// waitChannelVar waits until a live channel has a variable with a value.
func (st *stack) waitChannelVar(uuid, name, value string) {
	st.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, ch := range st.sim.Channels() {
			if ch.UUID == uuid && ch.Variables[name] == value {
				return
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	st.t.Fatalf("channel %s: %s never became %q", uuid, name, value)
}

// press sends DTMF from a leg's far end (the simulator's control API).
func (st *stack) press(uuid, digits string) {
	st.t.Helper()
	resp, err := http.Post(st.sim.ControlURL()+"/channels/"+uuid+"/dtmf", "application/json", strings.NewReader(`{"digits":"`+digits+`"}`))
	if err != nil {
		st.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		st.t.Fatalf("dtmf %s: %s", digits, resp.Status)
	}
}

// lastCall is the call of a call's final event, as consumers read it.
func (st *stack) lastCall(id string) (*originationv1.Call, []string) {
	st.t.Helper()
	types := st.eventTypes(id)
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.events[id][len(st.events[id])-1].GetCall(), types
}

func TestThroughSimulatorMenu(t *testing.T) {
	t.Parallel()
	// At this time scale the 0095 far end's first digit (1 s after the
	// answer) comes 500 ms after it: the menu runs by then, even on a
	// loaded machine. A digit pressed while the leg is still parked is
	// dropped, as FreeSWITCH drops it.
	st := newStackScale(t, 2)
	menu := func(opts ...MenuOption) *Menu { return &Menu{Options: opts, Tries: 2, TimeoutMS: 1000} }
	tests := []struct {
		name, first string
		menu        *Menu
		second      string
		press       string // through the simulator's control API, once the menu runs
		wantDigits  string
		wantChoice  originationv1.MenuAction
		wantEvents  string
	}{
		{
			// 0095 presses 1 as the prompt ends; 0002 answers and hangs
			// up 2 s later.
			name: "CONNECT", first: "+15551230095", second: "+15551230002",
			menu:       menu(MenuOption{"1", MenuConnect}, MenuOption{"9", MenuOptOut}),
			wantDigits: "1", wantChoice: originationv1.MenuAction_MENU_ACTION_CONNECT,
			wantEvents: "CALL_QUEUED/UNSPECIFIED CALL_DIALING/FIRST LEG_RINGING/FIRST LEG_ANSWERED/FIRST ANNOUNCEMENT_STARTED/FIRST " +
				"ANNOUNCEMENT_FINISHED/FIRST MENU_CHOICE/FIRST LEG_DIALING/SECOND LEG_RINGING/SECOND LEG_ANSWERED/SECOND " +
				"CALL_BRIDGED/UNSPECIFIED LEG_HANGUP/SECOND LEG_HANGUP/FIRST CALL_COMPLETED/UNSPECIFIED",
		},
		{
			name: "OPT_OUT", first: "+15551230000", second: "+15557770000", press: "9",
			menu:       menu(MenuOption{"1", MenuConnect}, MenuOption{"9", MenuOptOut}),
			wantDigits: "9", wantChoice: originationv1.MenuAction_MENU_ACTION_OPT_OUT,
			wantEvents: "CALL_QUEUED/UNSPECIFIED CALL_DIALING/FIRST LEG_RINGING/FIRST LEG_ANSWERED/FIRST ANNOUNCEMENT_STARTED/FIRST " +
				"ANNOUNCEMENT_FINISHED/FIRST MENU_CHOICE/FIRST LEG_HANGUP/FIRST CALL_COMPLETED/UNSPECIFIED",
		},
		{
			// Nothing pressed: two tries, then the end.
			name: "nothing pressed", first: "+15551230000",
			menu: menu(MenuOption{"9", MenuOptOut}),
			wantEvents: "CALL_QUEUED/UNSPECIFIED CALL_DIALING/FIRST LEG_RINGING/FIRST LEG_ANSWERED/FIRST ANNOUNCEMENT_STARTED/FIRST " +
				"ANNOUNCEMENT_FINISHED/FIRST LEG_HANGUP/FIRST CALL_COMPLETED/UNSPECIFIED",
		},
		{
			// A key that is no option, then nothing.
			name: "no option pressed", first: "+15551230000", press: "5",
			menu: menu(MenuOption{"9", MenuOptOut}, MenuOption{"#", MenuEnd}),
			wantEvents: "CALL_QUEUED/UNSPECIFIED CALL_DIALING/FIRST LEG_RINGING/FIRST LEG_ANSWERED/FIRST ANNOUNCEMENT_STARTED/FIRST " +
				"ANNOUNCEMENT_FINISHED/FIRST LEG_HANGUP/FIRST CALL_COMPLETED/UNSPECIFIED",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := st.engine.Create(context.Background(), CreateRequest{AccountID: "acct-it", Source: "DIALER",
				First: PartySpec{Number: tt.first}, Second: PartySpec{Number: tt.second},
				Announcement: "tone_stream://%(1000,0,440)", Menu: tt.menu})
			if err != nil {
				t.Fatal(err)
			}
			if tt.press != "" {
				st.waitChannelVar(c.First.UUID, "current_application", "play_and_get_digits")
				st.press(c.First.UUID, tt.press)
			}
			got := st.waitStatus(c.ID, StatusCompleted, StatusFailed, StatusCanceled)
			if got.Status != StatusCompleted || got.Digits != tt.wantDigits || menuActionToProto[got.MenuChoice] != tt.wantChoice {
				t.Fatalf("call: %s digits %q choice %q (%+v)", got.Status, got.Digits, got.MenuChoice, got)
			}
			last, types := st.lastCall(c.ID)
			if events := strings.Join(types, " "); events != tt.wantEvents {
				t.Fatalf("events:\n got %s\nwant %s", events, tt.wantEvents)
			}
			// What the dialer reads: the final event's call.
			if last.GetDigits() != tt.wantDigits || last.GetMenuChoice() != tt.wantChoice || last.GetStatus() != originationv1.CallStatus_CALL_STATUS_COMPLETED {
				t.Fatalf("final event's call: %v", last)
			}
			if tt.wantChoice != originationv1.MenuAction_MENU_ACTION_CONNECT && tt.second != "" && !got.Second.DialedAt.IsZero() {
				t.Fatalf("second party dialed: %+v", got.Second)
			}
			st.waitGone(t, "a channel of the ended call", ofCall(c.ID))
		})
	}
}

func TestThroughSimulatorMachineDetection(t *testing.T) {
	t.Parallel()
	st := newStack(t)
	tests := []struct {
		name, number, message string
		wantStatus            Status
		wantReason            FailureReason
		wantResult            string
		wantLeft              bool
		wantEvents            string
	}{
		{
			// ...0666 is a machine: a 4 s greeting, then a beep.
			name: "machine", number: "+15551230666",
			wantStatus: StatusFailed, wantReason: ReasonMachine, wantResult: "MACHINE",
			wantEvents: "CALL_QUEUED/UNSPECIFIED CALL_DIALING/FIRST LEG_RINGING/FIRST LEG_ANSWERED/FIRST MACHINE_DETECTED/FIRST " +
				"LEG_HANGUP/FIRST CALL_FAILED/FIRST",
		},
		{
			name: "machine, message left", number: "+15551230666", message: "tone_stream://%(1500,0,440)",
			wantStatus: StatusFailed, wantReason: ReasonMachine, wantResult: "MACHINE", wantLeft: true,
			wantEvents: "CALL_QUEUED/UNSPECIFIED CALL_DIALING/FIRST LEG_RINGING/FIRST LEG_ANSWERED/FIRST MACHINE_DETECTED/FIRST " +
				"LEG_HANGUP/FIRST CALL_FAILED/FIRST",
		},
		{
			// ...0001 is a person who talks for 4-6 s: the 1 s
			// announcement plays to the end.
			name: "human", number: "+15551230001", message: "tone_stream://%(1500,0,440)",
			wantStatus: StatusCompleted, wantResult: "HUMAN",
			wantEvents: "CALL_QUEUED/UNSPECIFIED CALL_DIALING/FIRST LEG_RINGING/FIRST LEG_ANSWERED/FIRST MACHINE_DETECTED/FIRST " +
				"ANNOUNCEMENT_STARTED/FIRST ANNOUNCEMENT_FINISHED/FIRST LEG_HANGUP/FIRST CALL_COMPLETED/UNSPECIFIED",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := st.engine.Create(context.Background(), CreateRequest{AccountID: "acct-it", Source: "DIALER",
				First: PartySpec{Number: tt.number}, Announcement: "tone_stream://%(1000,0,440)",
				MachineDetection: MachineDetection{Enabled: true, Message: tt.message}})
			if err != nil {
				t.Fatal(err)
			}
			got := st.waitStatus(c.ID, StatusCompleted, StatusFailed, StatusCanceled)
			if got.Status != tt.wantStatus || got.FailureReason != tt.wantReason || got.MachineResult != tt.wantResult ||
				got.MachineMessageLeft != tt.wantLeft {
				t.Fatalf("call: %s %s result %q left %v (%+v)", got.Status, got.FailureReason, got.MachineResult, got.MachineMessageLeft, got)
			}
			last, types := st.lastCall(c.ID)
			if events := strings.Join(types, " "); events != tt.wantEvents {
				t.Fatalf("events:\n got %s\nwant %s", events, tt.wantEvents)
			}
			if last.GetMachineResult() != tt.wantResult || last.GetMachineMessageLeft() != tt.wantLeft {
				t.Fatalf("final event's call: %v", last)
			}
			if tt.wantReason == ReasonMachine {
				if got.FailedLeg != RoleFirst || got.First.Status != LegHungup || got.First.Billsec < 1 ||
					last.GetFailureReason() != originationv1.FailureReason_FAILURE_REASON_MACHINE {
					t.Fatalf("machine call: %+v", got)
				}
			}
			if tt.wantLeft && got.First.Billsec < 5 {
				// The message starts after the beep, 4 s into the greeting.
				t.Fatalf("message left after %d s of call", got.First.Billsec)
			}
		})
	}
}

// origination restarts while the party is in the menu, and the party
// chooses while it is down: the new process finds the choice on the
// channel.
func TestThroughSimulatorMenuSurvivesRestart(t *testing.T) {
	t.Parallel()
	st := newStack(t)
	c, err := st.engine.Create(context.Background(), CreateRequest{AccountID: "acct-it", First: PartySpec{Number: "+15551230000"},
		Announcement: "tone_stream://%(20000,0,440)", Menu: &Menu{Options: []MenuOption{{"9", MenuOptOut}, {"1", MenuEnd}}, Tries: 1, TimeoutMS: 30000}})
	if err != nil {
		t.Fatal(err)
	}
	st.waitChannelVar(c.First.UUID, "current_application", "play_and_get_digits")
	st.client.Close()
	st.sw.Close()
	st.engine.Close()
	st.press(c.First.UUID, "9")
	st.waitChannelVar(c.First.UUID, "ringback_digits", "9")
	st.waitChannelVar(c.First.UUID, "current_application", "park")

	st.restart(t)
	got := st.waitStatus(c.ID, StatusCompleted, StatusFailed)
	if got.Status != StatusCompleted || got.Digits != "9" || got.MenuChoice != MenuOptOut {
		t.Fatalf("after restart: %+v", got)
	}
	last, types := st.lastCall(c.ID)
	want := "CALL_QUEUED/UNSPECIFIED CALL_DIALING/FIRST LEG_RINGING/FIRST LEG_ANSWERED/FIRST ANNOUNCEMENT_STARTED/FIRST " +
		"ANNOUNCEMENT_FINISHED/FIRST MENU_CHOICE/FIRST LEG_HANGUP/FIRST CALL_COMPLETED/UNSPECIFIED"
	if events := strings.Join(types, " "); events != want {
		t.Fatalf("events:\n got %s\nwant %s", events, want)
	}
	if last.GetMenuChoice() != originationv1.MenuAction_MENU_ACTION_OPT_OUT {
		t.Fatalf("final event's call: %v", last)
	}
}

// Of every application completing on a leg, the engine is handed the few
// that end a ringback extension, with what they set.
func TestSwitchEventExecuteComplete(t *testing.T) {
	t.Parallel()
	exec := func(app, data string, vars ...string) esl.Event {
		h := map[string]string{"Unique-ID": "u1", "variable_ringback_call_id": "c1", "variable_ringback_leg": "first",
			"Application": app, "Application-Data": data, "Answer-State": "answered"}
		for i := 0; i+1 < len(vars); i += 2 {
			h["variable_"+vars[i]] = vars[i+1]
		}
		return esl.Event{Node: "fs1", Name: "CHANNEL_EXECUTE_COMPLETE", Headers: h}
	}
	tests := []struct {
		name string
		ev   esl.Event
		want *SwitchEvent // nil: dropped
	}{
		{"amd", exec("amd", "", "amd_result", "MACHINE", "amd_cause", "LONGGREETING"),
			&SwitchEvent{Application: "amd", AMDResult: "MACHINE"}},
		{"menu", exec("play_and_get_digits", "1 1 3 5000 none /s/a.wav silence_stream://250 ringback_digits ^[19]$", "ringback_digits", "9", "read_result", "success"),
			&SwitchEvent{Application: "play_and_get_digits", Digits: "9", ReadResult: "success"}},
		{"amd extension without mod_amd", exec("set", "amd_cause=MOD_AMD_NOT_LOADED", "amd_result", "NOTSURE", "amd_cause", "MOD_AMD_NOT_LOADED"),
			&SwitchEvent{Application: "set", AMDResult: "NOTSURE"}},
		{"its first set", exec("set", "amd_result=NOTSURE", "amd_result", "NOTSURE"), nil},
		{"park", exec("park", ""), nil},
		{"playback", exec("playback", "/s/a.wav"), nil},
		{"not ours", esl.Event{Node: "fs1", Name: "CHANNEL_EXECUTE_COMPLETE", Headers: map[string]string{"Application": "amd"}}, nil},
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
			if got.Application != tt.want.Application || got.AMDResult != tt.want.AMDResult || got.Digits != tt.want.Digits ||
				got.ReadResult != tt.want.ReadResult || got.CallID != "c1" || got.UUID != "u1" {
				t.Fatalf("event: %+v", got)
			}
		})
	}
}

// A transfer whose reply was lost with the connection may or may not have
// run: the reconciliation after the reconnection asks the leg, and sends
// it again if it is still parked without a verdict.
func TestMachineDetectionTransferLost(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.sw.failNext["transfer "] = fmt.Errorf("uuid_transfer: %w: %w", ErrSwitchUnreachable, errors.New("esl: connection lost"))
	c := h.create(CreateRequest{First: PartySpec{Number: "+15551230001"}, Announcement: "/sounds/offer.wav",
		MachineDetection: MachineDetection{Enabled: true}})
	h.waitCmd("originate first")
	h.event(c, RoleFirst, "CHANNEL_ANSWER", "", 0)
	h.waitCmd("transfer " + c.First.UUID + " amd")
	time.Sleep(50 * time.Millisecond) // a wrong verdict would have its chance to come
	h.noCmd("hangup ")
	h.sw.mu.Lock()
	h.sw.vars = map[string]map[string]string{c.First.UUID: {"current_application": "park"}}
	h.sw.mu.Unlock()
	if err := h.e.Recover(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	transfers := func() int {
		n := 0
		for _, cmd := range h.sw.commands() {
			if cmd == "transfer "+c.First.UUID+" amd" {
				n++
			}
		}
		return n
	}
	for deadline := time.Now().Add(5 * time.Second); transfers() < 2 && time.Now().Before(deadline); {
		time.Sleep(2 * time.Millisecond)
	}
	if n := transfers(); n != 2 {
		t.Fatalf("transfers to amd: %d, want the lost one sent again", n)
	}
	h.e.HandleEvent(amdExec(c, "HUMAN"))
	h.waitCmd("play " + c.First.UUID + " /sounds/offer.wav")
	if got, _ := h.e.Get(context.Background(), c.ID); got.MachineResult != "HUMAN" || got.Status != StatusAnswered {
		t.Fatalf("call: %+v", got)
	}
}
