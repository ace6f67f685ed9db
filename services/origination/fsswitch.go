package origination

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ringback/ringback/services/internal/esl"
)

// Events origination subscribes to on every FreeSWITCH node.
// CHANNEL_EXECUTE_COMPLETE ends the ringback extensions (machine
// detection, menus); switchEvent keeps only the completions that do.
// CHANNEL_PARK would do as well, but it fires after every answer, carrying
// every variable of the channel, just when a call is busiest.
// conference::maintenance's add-member and del-member say a leg entered or
// left its agent room (mod_conference's other actions, such as
// start-talking, are dropped by switchEvent).
var Events = []string{
	"CHANNEL_PROGRESS", "CHANNEL_PROGRESS_MEDIA", "CHANNEL_ANSWER", "CHANNEL_BRIDGE",
	"CHANNEL_HANGUP_COMPLETE", "PLAYBACK_STOP", "CHANNEL_EXECUTE_COMPLETE",
	"CUSTOM " + evConference,
}

// ESLSwitch is the Switch over the event-socket client: commands go out as
// api/bgapi, and the client's events are fed to the engine.
type ESLSwitch struct {
	Client *esl.Client
	Log    *slog.Logger

	mu      sync.Mutex
	engine  *Engine
	wg      sync.WaitGroup
	closing chan struct{}
	once    sync.Once
}

// NewESLSwitch returns a Switch; call Attach once the engine exists, and use
// Handlers when dialing the client.
func NewESLSwitch(log *slog.Logger) *ESLSwitch {
	return &ESLSwitch{Log: log, closing: make(chan struct{})}
}

// Attach gives the switch the engine its events and failures go to.
func (s *ESLSwitch) Attach(e *Engine) {
	s.mu.Lock()
	s.engine = e
	s.mu.Unlock()
}

func (s *ESLSwitch) eng() *Engine {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.engine
}

// Handlers are what the esl client calls: events become SwitchEvents, and
// every (re)connection triggers reconciliation of the live calls.
func (s *ESLSwitch) Handlers() esl.Handlers {
	return esl.Handlers{
		Event: func(ev esl.Event) {
			e := s.eng()
			if e == nil {
				return
			}
			if se, ok := switchEvent(ev); ok {
				e.HandleEvent(se)
			}
		},
		Up: func(up esl.NodeUp) {
			e := s.eng()
			if e == nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				defer cancel()
				if err := e.Recover(ctx, map[string]bool{up.Node: up.Restarted}); err != nil {
					s.Log.Error("reconcile calls after FreeSWITCH connection", "node", up.Node, "err", err)
				}
			}()
		},
		Down: func(d esl.NodeDown) {
			s.Log.Warn("FreeSWITCH node down", "node", d.Node, "err", d.Err)
		},
	}
}

// switchEvent reduces an event-socket event to what the engine uses.
func switchEvent(ev esl.Event) (SwitchEvent, bool) {
	se := SwitchEvent{
		Node: ev.Node, Name: ev.Name, UUID: ev.UniqueID(), CallID: ev.Var("ringback_call_id"), Leg: ev.Var("ringback_leg"),
		Cause: ev.Get("Hangup-Cause"), ChannelDown: ev.Get("Answer-State") == "hangup",
	}
	if se.CallID == "" {
		return se, false // not one of ours
	}
	if ev.Name == "CUSTOM" {
		// A member's events carry its channel's variables, so the
		// call's id.
		se.ConferenceAction = ev.Get("Action")
		if ev.Get("Event-Subclass") != evConference || (se.ConferenceAction != "add-member" && se.ConferenceAction != "del-member") {
			return se, false
		}
		se.Name, se.Conference = evConference, ev.Get("Conference-Name")
	}
	if ev.Name == "CHANNEL_EXECUTE_COMPLETE" {
		// Every application of every leg completes; few end an extension
		// the engine waits for: amd, play_and_get_digits, and the amd
		// extension's "set amd_cause=..." when mod_amd is not loaded (it
		// sets the result itself, then parks).
		se.Application = ev.Get("Application")
		switch {
		case se.Application == appAMD, se.Application == appMenu:
		case se.Application == "set" && strings.HasPrefix(ev.Get("Application-Data"), "amd_cause="):
		default:
			return se, false
		}
		se.AMDResult, se.Digits, se.ReadResult = ev.Var("amd_result"), ev.Var(varDigits), ev.Var("read_result")
	}
	if v := ev.Var("sip_term_status"); v != "" {
		se.SIPStatus, _ = strconv.Atoi(v)
	}
	if us, err := strconv.ParseInt(ev.Get("Event-Date-Timestamp"), 10, 64); err == nil && us > 0 {
		se.At = time.UnixMicro(us).UTC()
	}
	return se, true
}

// Close waits for the originates and reconciliations in flight.
func (s *ESLSwitch) Close() {
	s.once.Do(func() { close(s.closing) })
	s.wg.Wait()
}

// PickNode implements Switch.
func (s *ESLSwitch) PickNode() (string, error) {
	if n := s.Client.Pick(); n != "" {
		return n, nil
	}
	return "", esl.ErrNotConnected
}

// HasNode implements Switch.
func (s *ESLSwitch) HasNode(node string) bool {
	return slices.ContainsFunc(s.Client.Nodes(), func(n esl.NodeStatus) bool { return n.Node == node })
}

// Originate implements Switch. The client's Originate waits for the
// outcome, so it runs on its own goroutine; a refusal is fed back to the
// engine as the failed BACKGROUND_JOB it is, while an answer arrives as
// CHANNEL_ANSWER on the event stream.
func (s *ESLSwitch) Originate(ctx context.Context, node string, o OriginateLeg) error {
	req := esl.OriginateRequest{
		UUID: o.UUID, Dialstring: o.DialString, CallerIDNumber: o.CallerIDNumber, CallerIDName: o.CallerIDName,
		Timeout: o.RingTimeout, Vars: o.Variables,
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		// The wait is bounded by the ring timeout plus FreeSWITCH's own
		// margins; it does not follow the API request's context, which
		// ends as soon as the call is created.
		ctx, cancel := context.WithTimeout(context.Background(), o.RingTimeout+30*time.Second)
		defer cancel()
		go func() {
			select {
			case <-s.closing:
				cancel()
			case <-ctx.Done():
			}
		}()
		_, err := s.Client.Originate(ctx, node, req)
		if err == nil {
			return
		}
		cause := "NORMAL_TEMPORARY_FAILURE"
		var ce *esl.CommandError
		if errors.As(err, &ce) && ce.Cause() != "" {
			cause = ce.Cause()
		} else if errors.Is(err, esl.ErrConnectionLost) {
			return // outcome unknown: the next NodeUp reconciles the leg
		}
		if e := s.eng(); e != nil {
			e.HandleEvent(SwitchEvent{Node: node, Name: "BACKGROUND_JOB", UUID: o.UUID, CallID: o.Variables["ringback_call_id"], Cause: cause, At: time.Now().UTC()})
		}
	}()
	return nil
}

func (s *ESLSwitch) api(ctx context.Context, node, cmd string) (string, error) {
	out, err := s.Client.API(ctx, node, cmd)
	switch {
	case errors.Is(err, esl.ErrConnectionLost), errors.Is(err, esl.ErrNotConnected), errors.Is(err, esl.ErrClosed):
		return "", fmt.Errorf("%s: %w: %w", strings.Fields(cmd)[0], ErrSwitchUnreachable, err)
	case err != nil:
		return "", fmt.Errorf("%s: %w", strings.Fields(cmd)[0], err)
	}
	return out, nil
}

// Bridge implements Switch.
func (s *ESLSwitch) Bridge(ctx context.Context, node, a, b string) error {
	_, err := s.api(ctx, node, "uuid_bridge "+a+" "+b)
	return err
}

// Hangup implements Switch. A leg that is already gone is not an error.
func (s *ESLSwitch) Hangup(ctx context.Context, node, uuid, cause string) error {
	_, err := s.api(ctx, node, "uuid_kill "+uuid+" "+cause)
	var ce *esl.CommandError
	if errors.As(err, &ce) && strings.Contains(ce.Reply, "No such channel") {
		return nil
	}
	return err
}

// Play implements Switch.
func (s *ESLSwitch) Play(ctx context.Context, node, uuid, path string) error {
	_, err := s.api(ctx, node, "uuid_broadcast "+uuid+" "+path+" aleg")
	return err
}

// HangupAfter implements Switch.
func (s *ESLSwitch) HangupAfter(ctx context.Context, node, uuid string, after time.Duration, cause string) error {
	_, err := s.api(ctx, node, fmt.Sprintf("sched_hangup +%d %s %s", int(after/time.Second), uuid, cause))
	return err
}

// SetVars implements Switch.
func (s *ESLSwitch) SetVars(ctx context.Context, node, uuid string, vars map[string]string) error {
	if len(vars) == 0 {
		return nil
	}
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Strings(names)
	list := make([]string, 0, len(vars))
	for _, k := range names {
		v := vars[k]
		if k == "" || strings.ContainsAny(k, "=; \t\r\n") || strings.ContainsAny(v, "; \t\r\n") {
			return fmt.Errorf("uuid_setvar_multi %s: variable %q=%q cannot be passed", uuid, k, v)
		}
		list = append(list, k+"="+v)
	}
	_, err := s.api(ctx, node, "uuid_setvar_multi "+uuid+" "+strings.Join(list, ";"))
	return err
}

// Transfer implements Switch.
func (s *ESLSwitch) Transfer(ctx context.Context, node, uuid, ext string) error {
	_, err := s.api(ctx, node, "uuid_transfer "+uuid+" "+ext+" XML ringback")
	return err
}

// Vars implements Switch.
func (s *ESLSwitch) Vars(ctx context.Context, node, uuid string, names ...string) (map[string]string, error) {
	out := make(map[string]string, len(names))
	for _, n := range names {
		v, err := s.api(ctx, node, "uuid_getvar "+uuid+" "+n)
		if err != nil {
			return nil, err
		}
		if v == "_undef_" {
			v = ""
		}
		out[n] = v
	}
	return out, nil
}

// Exists implements Switch.
func (s *ESLSwitch) Exists(ctx context.Context, node, uuid string) (bool, error) {
	out, err := s.api(ctx, node, "uuid_exists "+uuid)
	if err != nil {
		return false, err
	}
	return strings.TrimSpace(out) == "true", nil
}
