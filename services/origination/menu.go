package origination

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// A BLAST on the first party of a sequential call: answering-machine
// detection on the answer, then a menu of digits the party may press while
// hearing the announcement. Both run in the ringback dialplan context
// (freeswitch/conf/dialplan/ringback.xml): the engine sets the extension's
// channel variables (uuid_setvar_multi), sends the leg there
// (uuid_transfer), and while it runs FreeSWITCH drives the leg
// (Call.Media says which). The outcome comes back on the
// CHANNEL_EXECUTE_COMPLETE of the extension's application, whose
// variable_* headers carry what it set; the extension then parks the leg,
// under the engine's control again. The voicemail drop ends in a hangup
// instead; the PLAYBACK_STOP of its message, from a channel still up,
// says the message was left.

// MenuAction is what a menu option does.
type MenuAction string

// Menu actions (ringback.origination.v1.MenuAction without the prefix).
const (
	// MenuConnect dials the second party and bridges the two, or, in a
	// call that awaits an agent, starts the wait (a queue).
	MenuConnect MenuAction = "CONNECT"
	// MenuOptOut ends the call: the party asks not to be called again.
	MenuOptOut MenuAction = "OPT_OUT"
	// MenuEnd ends the call.
	MenuEnd MenuAction = "END"
)

// Menu is played to the first party once it answered (and machine
// detection, if any, found no machine): the call's announcement is the
// prompt, and the party presses one digit.
type Menu struct {
	Options   []MenuOption `json:"options"`
	Tries     int          `json:"tries"`             // prompts played while no option is pressed
	TimeoutMS int          `json:"timeout_ms"`        // wait for a digit after the prompt, milliseconds
	Invalid   string       `json:"invalid,omitempty"` // played after a try without an option
}

// MenuOption is one digit of a menu.
type MenuOption struct {
	Digit  string     `json:"digit"`
	Action MenuAction `json:"action"`
}

// MachineDetection asks for answering-machine detection on the first
// party's answer; Message, when set, is left on a machine after its beep.
type MachineDetection struct {
	Enabled bool
	Message string
}

// MediaStep is the ringback extension the first leg is in.
type MediaStep string

// Media steps.
const (
	MediaAMD       MediaStep = "AMD"       // amd: mod_amd listens to the greeting
	MediaMenu      MediaStep = "MENU"      // ivr_digits: play_and_get_digits
	MediaVoicemail MediaStep = "VOICEMAIL" // voicemail_drop: the message after the beep, then hangup
	MediaGoodbye   MediaStep = "GOODBYE"   // goodbye: a queue's no-agent message, then hangup
)

// Extensions of the ringback context, and the applications whose
// completion ends them.
const (
	extAMD       = "amd"
	extMenu      = "ivr_digits"
	extVoicemail = "voicemail_drop"
	extGoodbye   = "goodbye"
	appAMD       = "amd"
	appMenu      = "play_and_get_digits"
	// varDigits is where play_and_get_digits leaves the digit
	// (ringback_pagd_var).
	varDigits = "ringback_digits"
)

// Menu limits and defaults (the API's).
const (
	DefaultMenuTries     = 3
	MaxMenuTries         = 5
	DefaultMenuTimeoutMS = 5000
	MinMenuTimeoutMS     = 1000 // play_and_get_digits waits at least a second
	MaxMenuTimeoutMS     = 30000
	// menuSilence is played after a try without an option when the menu
	// has no invalid prompt: play_and_get_digits always plays something.
	menuSilence = "silence_stream://250"
	menuDigits  = "0123456789*#"
)

// mediaValueOK reports whether a file or URL can be handed to the
// dialplan: uuid_setvar_multi splits its list on ";" and the extension
// pastes values into space-separated arguments.
func mediaValueOK(v string) bool {
	return announcementRe.MatchString(v) && !strings.Contains(v, ";")
}

// validateBlast checks a request's menu and machine detection, and fills
// the menu's defaults.
func validateBlast(req *CreateRequest) error {
	md, m := req.MachineDetection, req.Menu
	if !md.Enabled && md.Message != "" {
		return fmt.Errorf("%w: machine_detection.message requires machine_detection.enabled", ErrInvalid)
	}
	if !md.Enabled && m == nil {
		return nil
	}
	if req.Campaign != nil {
		return fmt.Errorf("%w: campaign calls have no menu or machine detection", ErrInvalid)
	}
	if req.Mode != ModeSequential {
		return fmt.Errorf("%w: a menu or machine detection needs a sequential call", ErrInvalid)
	}
	if md.Message != "" && !mediaValueOK(md.Message) {
		return fmt.Errorf("%w: machine_detection.message must be a file path or URL without spaces or \";\" (at most 512 characters)", ErrInvalid)
	}
	if m == nil {
		return nil
	}
	if req.Announcement == "" {
		return fmt.Errorf("%w: a menu needs an announcement (its prompt)", ErrInvalid)
	}
	if !mediaValueOK(req.Announcement) {
		return fmt.Errorf("%w: with a menu, the announcement must be a file path or URL without spaces or \";\"", ErrInvalid)
	}
	if len(m.Options) == 0 {
		return fmt.Errorf("%w: a menu needs at least one option", ErrInvalid)
	}
	seen := map[string]bool{}
	connect := false
	for _, o := range m.Options {
		if len(o.Digit) != 1 || !strings.Contains(menuDigits, o.Digit) {
			return fmt.Errorf("%w: menu option digit %q: one of 0-9, * and #", ErrInvalid, o.Digit)
		}
		if seen[o.Digit] {
			return fmt.Errorf("%w: menu option digit %q is used twice", ErrInvalid, o.Digit)
		}
		seen[o.Digit] = true
		switch o.Action {
		case MenuConnect:
			connect = true
		case MenuOptOut, MenuEnd:
		default:
			return fmt.Errorf("%w: menu option %q: action is required (CONNECT, OPT_OUT or END)", ErrInvalid, o.Digit)
		}
	}
	second := req.Second != PartySpec{}
	switch {
	case connect && !second && req.AwaitAgent == nil:
		return fmt.Errorf("%w: a CONNECT menu option needs a second party or await_agent", ErrInvalid)
	case !connect && second:
		return fmt.Errorf("%w: the second party of a menu call is dialed only when the party presses a CONNECT option, and the menu has none", ErrInvalid)
	case !connect && req.AwaitAgent != nil:
		return fmt.Errorf("%w: with a menu, the party waits for an agent when it presses a CONNECT option, and the menu has none", ErrInvalid)
	}
	if m.Tries == 0 {
		m.Tries = DefaultMenuTries
	}
	if m.Tries < 1 || m.Tries > MaxMenuTries {
		return fmt.Errorf("%w: menu tries must be between 1 and %d (0: %d)", ErrInvalid, MaxMenuTries, DefaultMenuTries)
	}
	if m.TimeoutMS == 0 {
		m.TimeoutMS = DefaultMenuTimeoutMS
	}
	if m.TimeoutMS < MinMenuTimeoutMS || m.TimeoutMS > MaxMenuTimeoutMS {
		return fmt.Errorf("%w: menu timeout_ms must be between %d and %d (0: %d)", ErrInvalid, MinMenuTimeoutMS, MaxMenuTimeoutMS, DefaultMenuTimeoutMS)
	}
	if m.Invalid != "" && !mediaValueOK(m.Invalid) {
		return fmt.Errorf("%w: menu invalid must be a file path or URL without spaces or \";\" (at most 512 characters)", ErrInvalid)
	}
	return nil
}

// action is the option of a digit; "" if it is none.
func (m *Menu) action(digit string) MenuAction {
	for _, o := range m.Options {
		if o.Digit == digit {
			return o.Action
		}
	}
	return ""
}

// regexp accepts exactly one of the options' digits. In a bracket
// expression * and # are literal, so nothing needs a backslash (which
// would have to survive uuid_setvar_multi and the dialplan's argument
// splitting).
func (m *Menu) regexp() string {
	var b strings.Builder
	b.WriteString("^[")
	for _, o := range m.Options {
		b.WriteString(o.Digit)
	}
	b.WriteString("]$")
	return b.String()
}

// vars are the ivr_digits extension's inputs for c's menu.
func (m *Menu) vars(prompt string) map[string]string {
	invalid := m.Invalid
	if invalid == "" {
		invalid = menuSilence
	}
	return map[string]string{
		"ringback_pagd_min":         "1",
		"ringback_pagd_max":         "1",
		"ringback_pagd_tries":       strconv.Itoa(m.Tries),
		"ringback_pagd_timeout_ms":  strconv.Itoa(m.TimeoutMS),
		"ringback_pagd_terminators": "none", // every key may be an option
		"ringback_pagd_prompt":      prompt,
		"ringback_pagd_invalid":     invalid,
		"ringback_pagd_var":         varDigits,
		"ringback_pagd_regexp":      m.regexp(),
	}
}

func (m *Menu) clone() *Menu {
	if m == nil {
		return nil
	}
	cp := *m
	cp.Options = slices.Clone(m.Options)
	return &cp
}

// firstAnswered decides what follows the first party's answer in a
// sequential call: machine detection first when asked for, else what a
// human gets.
func (e *Engine) firstAnswered(c *Call) []action {
	if c.Session != "" {
		return []action{e.enterRoom(c, c.Session, true)}
	}
	if c.MachineDetection && c.MachineResult == "" {
		c.Media = MediaAMD
		return []action{mediaAction(MediaAMD, nil, extAMD)}
	}
	return e.firstHuman(c)
}

// firstHuman is what the first party gets once it is known not to be a
// machine: the wait for an agent, the menu (whose CONNECT starts the wait
// of a queue), the announcement, or the second party.
func (e *Engine) firstHuman(c *Call) []action {
	switch {
	case c.AwaitAgent != nil && c.Menu == nil:
		return e.awaitAgent(c)
	case c.Menu != nil && !c.Announced:
		c.Media = MediaMenu
		e.record(c, EventAnnouncementStarted, RoleFirst)
		return []action{mediaAction(MediaMenu, c.Menu.vars(c.Announcement), extMenu)}
	case c.Announcement != "" && !c.Announced:
		e.record(c, EventAnnouncementStarted, RoleFirst)
		return []action{playAction(c.Announcement)}
	}
	return []action{e.dial(c, RoleSecond)}
}

// machineDetected applies amd's verdict. A machine ends the call FAILED
// (reason MACHINE), after the message if there is one; a human, or a
// verdict the detector is not sure of, goes on as without detection.
func (e *Engine) machineDetected(c *Call, ev SwitchEvent) []action {
	c.Media = ""
	switch ev.AMDResult {
	case "HUMAN", "MACHINE", "NOTSURE":
		c.MachineResult = ev.AMDResult
	default:
		c.MachineResult = "NOTSURE" // e.g. amd stopped by a hangup before deciding
	}
	e.record(c, EventMachineDetected, RoleFirst)
	if c.MachineResult == "MACHINE" {
		c.HangupCause = "NORMAL_CLEARING"
		c.setEnding(StatusFailed, RoleFirst, ReasonMachine)
		switch {
		case ev.ChannelDown:
			return nil // hung up already: the hangup ends the call
		case c.MachineMessage != "":
			// voicemail_drop waits for the beep, plays the message and
			// hangs the leg up itself.
			c.Media = MediaVoicemail
			return []action{mediaAction(MediaVoicemail, map[string]string{"ringback_message": c.MachineMessage}, extVoicemail)}
		}
		return []action{hangupAction(RoleFirst, "NORMAL_CLEARING")}
	}
	if ev.ChannelDown {
		return nil
	}
	return e.firstHuman(c)
}

// menuDone applies play_and_get_digits's outcome: the option pressed (its
// digit is the one variable ringback_digits holds: the regexp admits the
// options only), or none once the tries ran out.
func (e *Engine) menuDone(c *Call, ev SwitchEvent) []action {
	c.Media = ""
	choice := c.Menu.action(ev.Digits)
	if ev.ChannelDown && choice == "" {
		// The party hung up during the menu: the hangup that follows
		// ends the call (FAILED, CANCELED), as for an announcement cut short.
		return nil
	}
	c.Announced = true
	if choice != "" {
		c.Digits, c.MenuChoice = ev.Digits, choice
	}
	e.record(c, EventAnnouncementFinished, RoleFirst)
	if choice != "" {
		e.record(c, EventMenuChoice, RoleFirst)
	}
	if choice == MenuConnect {
		switch {
		case ev.ChannelDown:
			return nil
		case c.AwaitAgent != nil:
			// A queue: the party asked for an agent.
			if !c.AwaitUntil.IsZero() || c.Conference != "" {
				return nil // waiting already (a menu's end seen twice)
			}
			return e.awaitAgent(c)
		case c.Second.Status != LegPending:
			return nil
		}
		return []action{e.dial(c, RoleSecond)}
	}
	// Opted out, ended, or no option pressed: the party heard the prompt,
	// which is what the call was for.
	c.HangupCause = "NORMAL_CLEARING"
	c.setEnding(StatusCompleted, "", "")
	if ev.ChannelDown {
		return nil
	}
	return []action{hangupAction(RoleFirst, "NORMAL_CLEARING")}
}

// mediaEvent applies the first leg's CHANNEL_EXECUTE_COMPLETE events
// while it is in a ringback extension.
func (e *Engine) mediaEvent(c *Call, ev SwitchEvent) []action {
	if c.First.Status != LegAnswered {
		return nil
	}
	switch c.Media {
	case MediaAMD:
		// Without mod_amd the extension sets amd_result and amd_cause
		// itself: the set of amd_cause, the last, carries both.
		if ev.Application == appAMD || (ev.Application == "set" && ev.AMDResult != "") {
			if c.Ending != "" {
				c.Media = ""
				return nil
			}
			return e.machineDetected(c, ev)
		}
	case MediaMenu:
		if ev.Application == appMenu {
			if c.Ending != "" {
				c.Media = ""
				return nil
			}
			return e.menuDone(c, ev)
		}
	}
	return nil
}

// mediaAction sets a leg's variables and sends it to a ringback
// extension. Should FreeSWITCH refuse (e.g. "-ERR No such channel!") or
// not answer in time, the engine hears of it as evMediaFailed. When the
// switch could not be asked or its answer was lost with the connection
// (ErrSwitchUnreachable), the command may or may not have run: the
// reconciliation that follows the reconnection finds out from the leg
// (resumeMedia).
func mediaAction(step MediaStep, vars map[string]string, ext string) action {
	return func(ctx context.Context, e *Engine, c *Call) error {
		err := e.sw.SetVars(ctx, c.Node, c.First.UUID, vars)
		if err == nil {
			err = e.sw.Transfer(ctx, c.Node, c.First.UUID, ext)
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrSwitchUnreachable) {
			go e.HandleEvent(SwitchEvent{Node: c.Node, Name: evMediaFailed, UUID: c.First.UUID, CallID: c.ID,
				Application: string(step), At: e.now().UTC()})
		}
		return fmt.Errorf("send the leg to %s: %w", ext, err)
	}
}

// mediaFailed ends a call whose leg FreeSWITCH would not send to an
// extension: nothing else would take it out of its park.
func (e *Engine) mediaFailed(c *Call, ev SwitchEvent) []action {
	if c.First.Status != LegAnswered || string(c.Media) != ev.Application {
		return nil
	}
	c.Media = ""
	if c.Ending != "" {
		// The machine's message could not be left: hang up now.
		return []action{hangupAction(RoleFirst, "NORMAL_CLEARING")}
	}
	c.HangupCause = "NORMAL_TEMPORARY_FAILURE"
	c.setEnding(StatusFailed, RoleFirst, ReasonInternal)
	return []action{hangupAction(RoleFirst, "NORMAL_TEMPORARY_FAILURE")}
}

// resumeMedia catches up with a first leg that was in a ringback extension
// while events may have been missed (origination restarted, or its event
// socket reconnected): the channel's variables say whether the extension
// ran and what it decided. An extension that is still running reports on
// its own; one that never started (its transfer was lost) is started
// again.
func (e *Engine) resumeMedia(ctx context.Context, c *Call) ([]action, error) {
	if c.Media == MediaConference {
		return e.resumeRoom(ctx, c)
	}
	vars, err := e.sw.Vars(ctx, c.Node, c.First.UUID, "current_application", "amd_result", varDigits, "read_result")
	if err != nil {
		return nil, fmt.Errorf("read the variables of leg %s: %w", c.First.UUID, err)
	}
	if c.Media == MediaGoodbye {
		if vars["current_application"] == "playback" {
			return nil, nil // its message playing: the extension hangs up
		}
		// The transfer was lost: the party still hears the hold music.
		return []action{mediaAction(MediaGoodbye, goodbyeVars(c), extGoodbye)}, nil
	}
	if vars["current_application"] != "park" {
		return nil, nil // still in the extension (or a voicemail drop playing)
	}
	ev := SwitchEvent{Node: c.Node, Name: "CHANNEL_EXECUTE_COMPLETE", UUID: c.First.UUID, CallID: c.ID,
		AMDResult: vars["amd_result"], Digits: vars[varDigits], ReadResult: vars["read_result"], At: e.now().UTC()}
	e.log.Info("leg back in park after a ringback extension while events were missed", "call_id", c.ID,
		"leg_uuid", c.First.UUID, "media", c.Media, "amd_result", ev.AMDResult, "read_result", ev.ReadResult)
	switch c.Media {
	case MediaAMD:
		if ev.AMDResult == "" {
			return []action{mediaAction(MediaAMD, nil, extAMD)}, nil
		}
		return e.machineDetected(c, ev), nil
	case MediaMenu:
		if ev.ReadResult == "" {
			return []action{mediaAction(MediaMenu, c.Menu.vars(c.Announcement), extMenu)}, nil
		}
		return e.menuDone(c, ev), nil
	case MediaVoicemail:
		// voicemail_drop ends in a hangup, never in a park: the transfer
		// was lost.
		return []action{mediaAction(MediaVoicemail, map[string]string{"ringback_message": c.MachineMessage}, extVoicemail)}, nil
	}
	return nil, nil
}
