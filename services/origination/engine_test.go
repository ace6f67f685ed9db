package origination

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ringback/ringback/services/internal/ids"
)

// fakeSwitch records the commands the engine gives FreeSWITCH; the test
// plays FreeSWITCH by injecting the events that would follow.
type fakeSwitch struct {
	mu       sync.Mutex
	cmds     []string
	failNext map[string]error             // command prefix -> error
	vars     map[string]map[string]string // channel variables Vars answers with
	gone     map[string]bool              // channels Exists says are gone
	// existsFails: the next so many Exists fail (the switch not answering).
	existsFails int
}

func (f *fakeSwitch) add(cmd string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cmds = append(f.cmds, cmd)
	for prefix, err := range f.failNext {
		if strings.HasPrefix(cmd, prefix) {
			delete(f.failNext, prefix)
			return err
		}
	}
	return nil
}

func (f *fakeSwitch) PickNode() (string, error) { return "fs1", nil }
func (f *fakeSwitch) HasNode(node string) bool  { return node == "fs1" }
func (f *fakeSwitch) Originate(_ context.Context, _ string, o OriginateLeg) error {
	return f.add(fmt.Sprintf("originate %s %s %s cid=%s timeout=%s", o.Variables["ringback_leg"], o.UUID, o.DialString, o.CallerIDNumber, o.RingTimeout))
}
func (f *fakeSwitch) Bridge(_ context.Context, _, a, b string) error {
	return f.add("bridge " + a + " " + b)
}
func (f *fakeSwitch) Hangup(_ context.Context, _, uuid, cause string) error {
	return f.add("hangup " + uuid + " " + cause)
}
func (f *fakeSwitch) Play(_ context.Context, _, uuid, path string) error {
	return f.add("play " + uuid + " " + path)
}
func (f *fakeSwitch) HangupAfter(_ context.Context, _, uuid string, d time.Duration, cause string) error {
	return f.add(fmt.Sprintf("sched_hangup %s %s %s", uuid, d, cause))
}
func (f *fakeSwitch) Exists(_ context.Context, _, uuid string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.existsFails > 0 {
		f.existsFails--
		return false, errors.New("-ERR no reply")
	}
	return !f.gone[uuid], nil
}
func (f *fakeSwitch) SetVars(_ context.Context, _, uuid string, vars map[string]string) error {
	if len(vars) == 0 {
		return nil
	}
	var kv []string
	for k, v := range vars {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return f.add("setvars " + uuid + " " + strings.Join(kv, ";"))
}
func (f *fakeSwitch) Transfer(_ context.Context, _, uuid, ext string) error {
	return f.add("transfer " + uuid + " " + ext)
}

// Vars answers from f.vars (uuid -> name -> value).
func (f *fakeSwitch) Vars(_ context.Context, _, uuid string, names ...string) (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]string{}
	for _, n := range names {
		out[n] = f.vars[uuid][n]
	}
	return out, nil
}

func (f *fakeSwitch) commands() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.cmds...)
}

// recorder is the Publisher: it keeps what was published, in order.
type recorder struct {
	mu     sync.Mutex
	events []string
	seqs   map[string][]int64
}

func (r *recorder) Publish(_ context.Context, c *Call, p Pending) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.seqs == nil {
		r.seqs = map[string][]int64{}
	}
	r.seqs[c.ID] = append(r.seqs[c.ID], p.Seq)
	name := string(p.Type)
	if p.Leg != "" {
		name += "(" + string(p.Leg) + ")"
	}
	r.events = append(r.events, name)
	return nil
}

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

// memLocker is a Locker for engine tests (the Redis one is tested apart).
type memLocker struct {
	mu    sync.Mutex
	owner map[string]string
}

func (m *memLocker) Lock(_ context.Context, key, owner string, _ time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.owner == nil {
		m.owner = map[string]string{}
	}
	if _, held := m.owner[key]; held {
		return false, nil
	}
	m.owner[key] = owner
	return true, nil
}

func (m *memLocker) Unlock(_ context.Context, key, owner string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.owner[key] == owner {
		delete(m.owner, key)
	}
	return nil
}

type staticEndpoints map[string]*Endpoint

func (s staticEndpoints) Get(_ context.Context, _, id string) (*Endpoint, error) {
	if ep, ok := s[id]; ok {
		return ep, nil
	}
	return nil, fmt.Errorf("%w: %s", ErrUnknownEndpoint, id)
}

func testRedis(t *testing.T) redis.UniversalClient {
	t.Helper()
	url := os.Getenv("REDIS_URL")
	if url == "" {
		url = "redis://127.0.0.1:6379/0"
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("Redis at %s is required (scripts/setup starts it): %v", url, err)
	}
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

type harness struct {
	t     *testing.T
	e     *Engine
	sw    *fakeSwitch
	pub   *recorder
	store *RedisStore
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	h := &harness{t: t, sw: &fakeSwitch{failNext: map[string]error{}}, pub: &recorder{}, store: NewRedisStore(testRedis(t))}
	h.store.WaitingKey = "test:origination:waiting:" + ids.NewV4()
	h.store.InstancesKey = "test:origination:instances:" + ids.NewV4()
	eps := staticEndpoints{"agent-7": {ID: "agent-7", Kind: KindRegisteredUser, Address: "1007", CallerIDNumber: "+15550001007", RingTimeoutMS: 15000}}
	h.e = NewEngine(Config{Instance: "test-" + ids.NewV4()}, h.sw, h.store, h.pub, &memLocker{}, DialPlan{Endpoints: eps},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(h.e.Close)
	return h
}

// bridgedCall is a simultaneous call both of whose parties answered and
// were bridged.
func (h *harness) bridgedCall() *Call {
	h.t.Helper()
	c := h.create(CreateRequest{Mode: ModeSimultaneous, First: PartySpec{Number: "+15551230001"}, Second: PartySpec{Number: "+15551230002"}})
	h.waitCmd("originate second")
	h.event(c, RoleFirst, "CHANNEL_ANSWER", "", 0)
	h.event(c, RoleSecond, "CHANNEL_ANSWER", "", 0)
	h.waitCmd("bridge")
	h.event(c, RoleFirst, "CHANNEL_BRIDGE", "", 0)
	return h.waitStatus(c.ID, StatusBridged)
}

// waitCmd waits for a command with the prefix and returns it.
func (h *harness) waitCmd(prefix string) string {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, c := range h.sw.commands() {
			if strings.HasPrefix(c, prefix) {
				return c
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	h.t.Fatalf("no command %q; got %q", prefix, h.sw.commands())
	return ""
}

// restart stands for a new origination process on the harness's store:
// the old engine closes, and a new one, its switch showing the call's
// first leg with those channel variables, recovers.
func (h *harness) restart(c *Call, vars map[string]string) *harness {
	h.t.Helper()
	h.e.Close()
	sw := &fakeSwitch{failNext: map[string]error{}, vars: map[string]map[string]string{c.First.UUID: vars}}
	e := NewEngine(h.e.cfg, sw, h.store, h.pub, &memLocker{}, DialPlan{}, h.e.log)
	h.t.Cleanup(e.Close)
	if err := e.Recover(context.Background(), nil); err != nil {
		h.t.Fatal(err)
	}
	return &harness{t: h.t, e: e, sw: sw, pub: h.pub, store: h.store}
}

func (h *harness) noCmd(prefix string) {
	h.t.Helper()
	for _, c := range h.sw.commands() {
		if strings.HasPrefix(c, prefix) {
			h.t.Fatalf("unexpected command %q", c)
		}
	}
}

func (h *harness) event(c *Call, role Role, name, cause string, sip int) {
	h.e.HandleEvent(SwitchEvent{Node: "fs1", Name: name, UUID: c.Leg(role).UUID, CallID: c.ID, Leg: string(role), Cause: cause, SIPStatus: sip})
}

func (h *harness) waitStatus(id string, want Status) *Call {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	var c *Call
	for time.Now().Before(deadline) {
		var err error
		if c, err = h.e.Get(context.Background(), id); err != nil {
			h.t.Fatal(err)
		}
		if c.Status == want {
			return c
		}
		time.Sleep(2 * time.Millisecond)
	}
	h.t.Fatalf("call %s status %s, want %s (%+v)", id, c.Status, want, c)
	return nil
}

func (h *harness) create(req CreateRequest) *Call {
	h.t.Helper()
	if req.AccountID == "" {
		req.AccountID = "acct-1"
	}
	c, err := h.e.Create(context.Background(), req)
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

func (h *harness) wantEvents(want ...string) {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && len(h.pub.list()) < len(want) {
		time.Sleep(2 * time.Millisecond)
	}
	if got := h.pub.list(); strings.Join(got, " ") != strings.Join(want, " ") {
		h.t.Fatalf("events:\n got %v\nwant %v", got, want)
	}
}

func TestSequentialCallAnsweredBridgedCompleted(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := h.create(CreateRequest{
		First:        PartySpec{Number: "+1 555 123 0001", CallerIDNumber: "+15550009999"},
		Second:       PartySpec{Number: "15551230002"},
		MaxDurationS: 600,
		Variables:    map[string]string{"crm_id": "42"},
	})
	if c.Status != StatusQueued || c.First.Number != "+15551230001" {
		t.Fatalf("created call: %+v", c)
	}
	if got := h.waitCmd("originate first"); !strings.Contains(got, "sofia/gateway/carrier/15551230001 cid=+15550009999 timeout=30s") {
		t.Fatalf("first originate: %s", got)
	}
	h.noCmd("originate second") // sequential: the second party waits for the first
	h.event(c, RoleFirst, "CHANNEL_PROGRESS", "", 0)
	h.waitStatus(c.ID, StatusRinging)
	h.event(c, RoleFirst, "CHANNEL_ANSWER", "", 0)
	h.waitCmd("originate second")
	h.event(c, RoleSecond, "CHANNEL_ANSWER", "", 0)
	h.waitCmd("bridge " + c.First.UUID + " " + c.Second.UUID)
	h.event(c, RoleFirst, "CHANNEL_BRIDGE", "", 0)
	h.waitStatus(c.ID, StatusBridged)
	h.waitCmd("sched_hangup " + c.First.UUID + " 10m0s ALLOTTED_TIMEOUT")
	h.event(c, RoleSecond, "CHANNEL_HANGUP_COMPLETE", "NORMAL_CLEARING", 200)
	h.waitCmd("hangup " + c.First.UUID + " NORMAL_CLEARING")
	h.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "NORMAL_CLEARING", 0)
	done := h.waitStatus(c.ID, StatusCompleted)
	if done.First.Status != LegHungup || done.Second.Status != LegHungup || done.BridgedAt.IsZero() || done.Variables["crm_id"] != "42" {
		t.Fatalf("completed call: %+v", done)
	}
	h.wantEvents("CALL_QUEUED", "CALL_DIALING(first)", "LEG_RINGING(first)", "LEG_ANSWERED(first)", "LEG_DIALING(second)",
		"LEG_ANSWERED(second)", "CALL_BRIDGED", "LEG_HANGUP(second)", "LEG_HANGUP(first)", "CALL_COMPLETED")
	for i, s := range h.pub.seqs[c.ID] {
		if s != int64(i+1) {
			t.Fatalf("event sequence %v is not 1..n", h.pub.seqs[c.ID])
		}
	}
}

func TestFailedLegs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		mode       Mode
		failRole   Role
		cause      string
		viaJob     bool // the failure arrives as BACKGROUND_JOB -ERR only (no channel was created)
		wantReason FailureReason
		wantHangup string // the command that tears the other leg down
	}{
		{"first party busy", ModeSequential, RoleFirst, "USER_BUSY", false, ReasonBusy, ""},
		{"first party no route (no channel)", ModeSequential, RoleFirst, "INVALID_GATEWAY", true, ReasonNoRoute, ""},
		{"second party never answers", ModeSequential, RoleSecond, "NO_ANSWER", false, ReasonNoAnswer, "hangup first NORMAL_CLEARING"},
		{"second party congested", ModeSequential, RoleSecond, "NORMAL_TEMPORARY_FAILURE", false, ReasonCongestion, "hangup first NORMAL_CLEARING"},
		{"simultaneous: second rejects, first still ringing", ModeSimultaneous, RoleSecond, "CALL_REJECTED", false, ReasonRejected, "hangup first ORIGINATOR_CANCEL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			c := h.create(CreateRequest{Mode: tt.mode, First: PartySpec{Number: "+15551230001"}, Second: PartySpec{Number: "+15551230002"}})
			h.waitCmd("originate first")
			if tt.failRole == RoleSecond && tt.mode == ModeSequential {
				h.event(c, RoleFirst, "CHANNEL_ANSWER", "", 0)
			}
			h.waitCmd("originate " + string(tt.failRole))
			name := "CHANNEL_HANGUP_COMPLETE"
			if tt.viaJob {
				name = "BACKGROUND_JOB"
			}
			h.event(c, tt.failRole, name, tt.cause, 486)
			if tt.wantHangup != "" {
				parts := strings.Fields(tt.wantHangup)
				h.waitCmd("hangup " + c.Leg(Role(parts[1])).UUID + " " + parts[2])
				h.event(c, Role(parts[1]), "CHANNEL_HANGUP_COMPLETE", parts[2], 0)
			} else {
				h.noCmd("originate second")
			}
			got := h.waitStatus(c.ID, StatusFailed)
			if got.FailedLeg != tt.failRole || got.FailureReason != tt.wantReason || got.Leg(tt.failRole).HangupCause != tt.cause {
				t.Fatalf("failed call: leg %s reason %s cause %s; want %s %s %s", got.FailedLeg, got.FailureReason,
					got.Leg(tt.failRole).HangupCause, tt.failRole, tt.wantReason, tt.cause)
			}
		})
	}
}

func TestAnnouncementBeforeSecondParty(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := h.create(CreateRequest{First: PartySpec{Number: "+15551230001"}, Second: PartySpec{Number: "+15551230002"}, Announcement: "/sounds/connecting.wav"})
	h.waitCmd("originate first")
	h.event(c, RoleFirst, "CHANNEL_ANSWER", "", 0)
	h.waitCmd("play " + c.First.UUID + " /sounds/connecting.wav")
	h.noCmd("originate second") // not before the announcement ends
	h.event(c, RoleFirst, "PLAYBACK_STOP", "", 0)
	h.waitCmd("originate second")
	h.wantEvents("CALL_QUEUED", "CALL_DIALING(first)", "LEG_ANSWERED(first)", "ANNOUNCEMENT_STARTED(first)",
		"ANNOUNCEMENT_FINISHED(first)", "LEG_DIALING(second)")
}

func TestHangupThroughAPI(t *testing.T) {
	t.Parallel()
	t.Run("while ringing: canceled", func(t *testing.T) {
		t.Parallel()
		h, c := dialingCall(t)
		if _, err := h.e.Hangup(context.Background(), c.ID, ""); err != nil {
			t.Fatal(err)
		}
		h.waitCmd("hangup " + c.First.UUID + " NORMAL_CLEARING")
		h.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "ORIGINATOR_CANCEL", 0)
		got := h.waitStatus(c.ID, StatusCanceled)
		if got.Second.Status != LegFailed {
			t.Fatalf("second leg: %+v", got.Second)
		}
		h.noCmd("originate second")
	})
	t.Run("while bridged: completed", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		c := h.bridgedCall()
		if _, err := h.e.Hangup(context.Background(), c.ID, ""); err != nil {
			t.Fatal(err)
		}
		h.waitCmd("hangup " + c.Second.UUID)
		h.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "NORMAL_CLEARING", 0)
		h.event(c, RoleSecond, "CHANNEL_HANGUP_COMPLETE", "NORMAL_CLEARING", 0)
		h.waitStatus(c.ID, StatusCompleted)
	})
	t.Run("unknown call", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t)
		if _, err := h.e.Hangup(context.Background(), ids.NewV7(), ""); !errorsIs(err, ErrNotFound) {
			t.Fatalf("err = %v, want ErrNotFound", err)
		}
	})
}

func TestEndpointBusyAndReleased(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := h.create(CreateRequest{First: PartySpec{EndpointID: "agent-7"}, Second: PartySpec{Number: "+15551230002"}})
	if got := h.waitCmd("originate first"); !strings.Contains(got, "user/1007 cid=+15550001007 timeout=15s") {
		t.Fatalf("endpoint leg: %s", got)
	}
	_, err := h.e.Create(context.Background(), CreateRequest{AccountID: "acct-1", First: PartySpec{EndpointID: "agent-7"}, Second: PartySpec{Number: "+15551230003"}})
	if !errorsIs(err, ErrEndpointBusy) {
		t.Fatalf("second call on a busy endpoint: err = %v, want ErrEndpointBusy", err)
	}
	h.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "NO_ANSWER", 0)
	h.waitStatus(c.ID, StatusFailed)
	if _, err := h.e.Create(context.Background(), CreateRequest{AccountID: "acct-1", First: PartySpec{EndpointID: "agent-7"}, Second: PartySpec{Number: "+15551230003"}}); err != nil {
		t.Fatalf("endpoint not released after the call ended: %v", err)
	}
}

func TestCreateValidation(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	tests := []struct {
		name string
		req  CreateRequest
		want error
	}{
		{"letters in number", CreateRequest{First: PartySpec{Number: "+1555abc"}, Second: PartySpec{Number: "+15551230002"}}, ErrInvalid},
		{"too short", CreateRequest{First: PartySpec{Number: "123"}, Second: PartySpec{Number: "+15551230002"}}, ErrInvalid},
		{"no second party", CreateRequest{First: PartySpec{Number: "+15551230001"}}, ErrInvalid},
		{"both number and endpoint", CreateRequest{First: PartySpec{Number: "+15551230001", EndpointID: "agent-7"}, Second: PartySpec{Number: "+15551230002"}}, ErrInvalid},
		{"unknown endpoint", CreateRequest{First: PartySpec{EndpointID: "nope"}, Second: PartySpec{Number: "+15551230002"}}, ErrUnknownEndpoint},
		{"caller id name breaks dial string", CreateRequest{First: PartySpec{Number: "+15551230001", CallerIDName: "a,b}"}, Second: PartySpec{Number: "+15551230002"}}, ErrInvalid},
		{"ring timeout too long", CreateRequest{First: PartySpec{Number: "+15551230001", RingTimeoutMS: 600000}, Second: PartySpec{Number: "+15551230002"}}, ErrInvalid},
		{"bad mode", CreateRequest{Mode: "PARALLEL", First: PartySpec{Number: "+15551230001"}, Second: PartySpec{Number: "+15551230002"}}, ErrInvalid},
		{"negative reminder timeout", CreateRequest{First: PartySpec{Number: "+15551230001"}, Second: PartySpec{Number: "+15551230002"}, ReminderTimeoutS: -1}, ErrInvalid},
		{"reminder timeout over a week", CreateRequest{First: PartySpec{Number: "+15551230001"}, Second: PartySpec{Number: "+15551230002"}, ReminderTimeoutS: MaxReminderTimeoutS + 1}, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.AccountID = "acct-1"
			if _, err := h.e.Create(context.Background(), tt.req); !errorsIs(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	if cmds := h.sw.commands(); len(cmds) != 0 {
		t.Fatalf("invalid requests reached the switch: %v", cmds)
	}
}

func TestOriginateCommandFailureEndsLeg(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.sw.failNext["originate first"] = causeErr("DESTINATION_OUT_OF_ORDER")
	c := h.create(CreateRequest{First: PartySpec{Number: "+15551230001"}, Second: PartySpec{Number: "+15551230002"}})
	got := h.waitStatus(c.ID, StatusFailed)
	if got.FailedLeg != RoleFirst || got.FailureReason != ReasonCongestion {
		t.Fatalf("call: %+v", got)
	}
}

type causeErr string

func (e causeErr) Error() string { return "-ERR " + string(e) }
func (e causeErr) Cause() string { return string(e) }

func TestRecoverAfterRestart(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := h.create(CreateRequest{Mode: ModeSimultaneous, First: PartySpec{Number: "+15551230001"}, Second: PartySpec{Number: "+15551230002"}})
	h.waitCmd("originate second")
	h.event(c, RoleFirst, "CHANNEL_ANSWER", "", 0)
	h.event(c, RoleSecond, "CHANNEL_ANSWER", "", 0)
	h.event(c, RoleFirst, "CHANNEL_BRIDGE", "", 0)
	h.waitStatus(c.ID, StatusBridged)

	// The process restarts: a new engine with the same instance ID and store.
	h.e.Close()
	sw2 := &fakeSwitch{failNext: map[string]error{}}
	e2 := NewEngine(h.e.cfg, sw2, h.store, h.pub, &memLocker{}, DialPlan{}, h.e.log)
	t.Cleanup(e2.Close)
	if err := e2.Recover(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	// The hangup that happens after the restart is still recorded.
	e2.HandleEvent(SwitchEvent{Name: "CHANNEL_HANGUP_COMPLETE", UUID: c.First.UUID, CallID: c.ID, Cause: "NORMAL_CLEARING"})
	h2 := &harness{t: t, e: e2, sw: sw2, pub: h.pub, store: h.store}
	h2.waitCmd("hangup " + c.Second.UUID + " NORMAL_CLEARING")
	e2.HandleEvent(SwitchEvent{Name: "CHANNEL_HANGUP_COMPLETE", UUID: c.Second.UUID, CallID: c.ID, Cause: "NORMAL_CLEARING"})
	got := h2.waitStatus(c.ID, StatusCompleted)
	if got.BridgedAt.IsZero() || got.HangupCause != "NORMAL_CLEARING" {
		t.Fatalf("call after restart: %+v", got)
	}
}

func TestRecoverWhenNodeRestarted(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	c := h.create(CreateRequest{First: PartySpec{Number: "+15551230001"}, Second: PartySpec{Number: "+15551230002"}})
	h.event(c, RoleFirst, "CHANNEL_ANSWER", "", 0)
	h.waitCmd("originate second")
	// FreeSWITCH restarted (new Core-UUID): both legs are gone, no events came.
	if err := h.e.Recover(context.Background(), map[string]bool{"fs1": true}); err != nil {
		t.Fatal(err)
	}
	got := h.waitStatus(c.ID, StatusFailed)
	if got.First.Status != LegHungup || got.Second.Status != LegFailed {
		t.Fatalf("legs after node restart: %+v / %+v", got.First, got.Second)
	}
}

func TestReleaseUnansweredCall(t *testing.T) {
	t.Parallel()
	t.Run("ringing long enough: failed, no answer", func(t *testing.T) {
		t.Parallel()
		h, c := dialingCall(t)
		if _, err := h.e.Release(context.Background(), c.ID, time.Millisecond); !errorsIs(err, ErrNotReleasable) {
			t.Fatalf("dialing, not ringing yet: err = %v, want ErrNotReleasable", err)
		}
		h.event(c, RoleFirst, "CHANNEL_PROGRESS", "", 0)
		h.waitStatus(c.ID, StatusRinging)
		if _, err := h.e.Release(context.Background(), c.ID, time.Hour); !errorsIs(err, ErrNotReleasable) {
			t.Fatalf("rung less than the least ring: err = %v, want ErrNotReleasable", err)
		}
		h.noCmd("hangup")
		time.Sleep(5 * time.Millisecond)
		if _, err := h.e.Release(context.Background(), c.ID, time.Millisecond); err != nil {
			t.Fatal(err)
		}
		h.waitCmd("hangup " + c.First.UUID + " ORIGINATOR_CANCEL")
		if _, err := h.e.Release(context.Background(), c.ID, time.Millisecond); !errorsIs(err, ErrNotReleasable) {
			t.Fatalf("released twice: err = %v, want ErrNotReleasable", err)
		}
		h.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "ORIGINATOR_CANCEL", 0)
		got := h.waitStatus(c.ID, StatusFailed)
		if got.FailedLeg != RoleFirst || got.FailureReason != ReasonNoAnswer || !got.Released || got.Abandoned ||
			got.First.HangupCause != "ORIGINATOR_CANCEL" {
			t.Fatalf("released call: %+v", got)
		}
		h.noCmd("originate second")
	})
	t.Run("answered: not released", func(t *testing.T) {
		t.Parallel()
		h, c := ringingCall(t)
		h.event(c, RoleFirst, "CHANNEL_ANSWER", "", 0)
		h.waitCmd("originate second")
		if _, err := h.e.Release(context.Background(), c.ID, time.Millisecond); !errorsIs(err, ErrNotReleasable) {
			t.Fatalf("err = %v, want ErrNotReleasable", err)
		}
		h.noCmd("hangup")
	})
	t.Run("answered as the release went out: abandoned", func(t *testing.T) {
		t.Parallel()
		h, c := ringingCall(t)
		time.Sleep(5 * time.Millisecond)
		if _, err := h.e.Release(context.Background(), c.ID, time.Millisecond); err != nil {
			t.Fatal(err)
		}
		h.waitCmd("hangup " + c.First.UUID + " ORIGINATOR_CANCEL")
		h.event(c, RoleFirst, "CHANNEL_ANSWER", "", 0)
		h.event(c, RoleFirst, "CHANNEL_HANGUP_COMPLETE", "NORMAL_CLEARING", 0)
		got := h.waitStatus(c.ID, StatusCompleted)
		if !got.Abandoned || !got.Released || got.First.AnsweredAt.IsZero() {
			t.Fatalf("a person hung up on at the answer must count as abandoned: %+v", got)
		}
		h.noCmd("originate second")
	})
}

// dialingCall is a call whose first party is being dialed.
func dialingCall(t *testing.T) (*harness, *Call) {
	t.Helper()
	h := newHarness(t)
	c := h.create(CreateRequest{First: PartySpec{Number: "+15551230001"}, Second: PartySpec{Number: "+15551230002"}})
	h.waitCmd("originate first")
	return h, c
}

// ringingCall is a call whose first party rings.
func ringingCall(t *testing.T) (*harness, *Call) {
	t.Helper()
	h, c := dialingCall(t)
	h.event(c, RoleFirst, "CHANNEL_PROGRESS", "", 0)
	h.waitStatus(c.ID, StatusRinging)
	return h, c
}
