package dialer

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	dialerv1 "github.com/ringback/ringback/proto/gen/go/ringback/dialer/v1"
	"github.com/ringback/ringback/services/internal/cache/cachetest"
)

// A BLAST whose CONNECT goes to the campaign's agents (on_answer.agent_queue).

func queueOnAnswer() *dialerv1.OnAnswer {
	return &dialerv1.OnAnswer{Announcement: "/audio/offer.wav", Options: []*dialerv1.BlastOption{
		{Digit: "1", Action: dialerv1.BlastAction_BLAST_ACTION_CONNECT}, {Digit: "9", Action: dialerv1.BlastAction_BLAST_ACTION_OPT_OUT}},
		AgentQueue: &dialerv1.AgentQueue{NoAgentMessage: "/audio/all-busy.wav"}}
}

func TestValidateAgentQueue(t *testing.T) {
	t.Parallel()
	if err := validateBlast(queueOnAnswer()); err != nil {
		t.Fatalf("valid queue refused: %v", err)
	}
	for _, tc := range []struct {
		name, want string
		edit       func(*dialerv1.OnAnswer)
	}{
		{"no CONNECT option", "needs a CONNECT option", func(a *dialerv1.OnAnswer) { a.Options = a.Options[1:] }},
		{"and an endpoint", "not both", func(a *dialerv1.OnAnswer) { a.EndpointId = "0197a0b2-0000-7000-8000-000000000001" }},
		{"no message", "no_agent_message is required", func(a *dialerv1.OnAnswer) { a.AgentQueue.NoAgentMessage = "" }},
		{"message with ;", "no_agent_message must be", func(a *dialerv1.OnAnswer) { a.AgentQueue.NoAgentMessage = "a;b.wav" }},
		{"hold music with a space", "hold_music must be", func(a *dialerv1.OnAnswer) { a.AgentQueue.HoldMusic = "a b.wav" }},
		{"hold music is the message", "must differ", func(a *dialerv1.OnAnswer) { a.AgentQueue.HoldMusic = a.AgentQueue.NoAgentMessage }},
		{"wait too long", "wait_s", func(a *dialerv1.OnAnswer) { a.AgentQueue.WaitS = MaxQueueWaitS + 1 }},
		{"wait negative", "wait_s", func(a *dialerv1.OnAnswer) { a.AgentQueue.WaitS = -1 }},
		{"too many waiting", "max_waiting", func(a *dialerv1.OnAnswer) { a.AgentQueue.MaxWaiting = MaxQueueWaiting + 1 }},
		{"waiting negative", "max_waiting", func(a *dialerv1.OnAnswer) { a.AgentQueue.MaxWaiting = -1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := queueOnAnswer()
			tc.edit(a)
			if err := validateBlast(a); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
	// PREDICTIVE promises every answer an agent: not with a BLAST queue.
	c := predictiveCampaign()
	c.OnAnswer = queueOnAnswer()
	if err := validatePacing(c); err == nil {
		t.Fatal("a PREDICTIVE campaign with a BLAST queue accepted")
	}
	// AGENTS paces a queue's dials by its free agents, with no safe harbour.
	c.Pacing = &dialerv1.Pacing{Mode: dialerv1.PacingMode_PACING_MODE_AGENTS, DialMultiplier: 5}
	if err := validatePacing(c); err != nil {
		t.Fatalf("an AGENTS BLAST queue refused: %v", err)
	}
	c.Pacing.SafeHarbour = "/audio/sorry.wav"
	if err := validatePacing(c); err == nil || !strings.Contains(err.Error(), "no_agent_message") {
		t.Fatalf("an AGENTS BLAST queue with a safe harbour: %v", err)
	}
	// Without a queue, AGENTS still gives every answer to an agent.
	c.OnAnswer.AgentQueue = nil
	if err := validatePacing(c); err == nil {
		t.Fatal("an AGENTS BLAST without a queue accepted")
	}
}

// The call of a queue's attempt: the menu, and a wait for an agent instead
// of a second party; a record scheduled to an extension of its own goes
// there instead.
func TestCallRequestAgentQueue(t *testing.T) {
	t.Parallel()
	a := queueOnAnswer()
	a.AgentQueue.WaitS, a.AgentQueue.HoldMusic = 90, "local_stream://jazz"
	s := SettingsOf(&dialerv1.Campaign{OnAnswer: a})
	req := callRequest(s, "+34911111111", "", false)
	w := req.GetAwaitAgent()
	if req.GetSecond() != nil || len(req.GetMenu().GetOptions()) != 2 || w == nil ||
		w.GetTimeoutMs() != int32(90*time.Second/time.Millisecond) || w.GetSafeHarbour() != "/audio/all-busy.wav" || w.GetHoldMusic() != "local_stream://jazz" {
		t.Fatalf("request: %v", req)
	}
	if s := SettingsOf(&dialerv1.Campaign{OnAnswer: queueOnAnswer()}); s.Queue.Wait != DefaultQueueWait {
		t.Fatalf("default wait %s", s.Queue.Wait)
	}
	// The queue's limits travel with the call, for the router; the
	// record's own columns cannot forge them.
	req.Variables = callVariables(map[string]any{VarQueueMaxWaiting: "1", VarQueueTurnAway: "true", "Name": "n"}, "c", 1, 1, 1)
	queueVariables(s, req)
	if v := req.GetVariables(); v[VarQueueMaxWaiting] != "" || v[VarQueueTurnAway] != "" || v["Name"] != "n" {
		t.Fatalf("variables without limits: %v", v)
	}
	a.AgentQueue.MaxWaiting, a.AgentQueue.TurnAwayWhenEmpty = 25, true
	limited := SettingsOf(&dialerv1.Campaign{OnAnswer: a})
	req = callRequest(limited, "+34911111111", "", false)
	req.Variables = callVariables(nil, "c", 1, 1, 1)
	queueVariables(limited, req)
	if lim := limitsOf(req.GetVariables()); lim != (queueLimits{maxWaiting: 25, turnAwayWhenEmpty: true}) {
		t.Fatalf("limits %+v from %v", lim, req.GetVariables())
	}
	req = callRequest(limited, "+34911111111", "ep-scheduled", true)
	req.Variables = callVariables(nil, "c", 1, 1, 1)
	queueVariables(limited, req)
	if req.GetAwaitAgent() != nil || req.GetSecond().GetEndpointId() != "ep-scheduled" || req.GetVariables()[VarQueueMaxWaiting] != "" {
		t.Fatalf("scheduled record's request: %v", req)
	}
	// Without a CONNECT option nobody is waited for.
	a = queueOnAnswer()
	a.Options = a.Options[1:]
	if req := callRequest(SettingsOf(&dialerv1.Campaign{OnAnswer: a}), "+34911111111", "", false); req.GetAwaitAgent() != nil || req.GetSecond() != nil {
		t.Fatalf("request without CONNECT: %v", req)
	}
}

// A BLAST's queue paced AGENTS: its answered calls are listening to the
// message, not waiting for an agent; only those queued (pressed CONNECT)
// hold the free agents back. One ready agent, a multiplier of 3, two
// recipients listening: three dials; one recipient queued: none.
func TestClaimPacedBlastQueue(t *testing.T) {
	t.Parallel()
	h := newEngHarness(t)
	store := NewAgentStore(cachetest.New(t))
	settings := &dialerv1.Campaign{MaxConcurrentCalls: 20, OnAnswer: queueOnAnswer(),
		Pacing: &dialerv1.Pacing{Mode: dialerv1.PacingMode_PACING_MODE_AGENTS, DialMultiplier: 3}}
	if err := validatePacing(settings); err != nil {
		t.Fatal(err)
	}
	campaign := h.engCampaign(t, settings, dialerv1.CampaignStatus_CAMPAIGN_STATUS_RUNNING)
	now := h.clock.Now()
	var recs []engRecord
	for i := range 10 {
		recs = append(recs, engRecord{numbers: []string{fmt.Sprintf("+3491800%04d", i)}})
	}
	ids := h.engList(t, campaign, recs...)
	if _, err := h.db.Exec(context.Background(), `UPDATE dialer.records SET status = 'talking' WHERE id = ANY($1)`, ids[:2]); err != nil {
		t.Fatal(err)
	}
	readyAgent(t, store, "00000000-0000-4000-8000-000000000001", []string{campaign}, 0, now.Add(-time.Second))
	e := NewEngine(EngineConfig{Instance: "a", Agents: store, Now: h.clock.Now}, h.db, h.calls, engLogger())
	ec := engineCampaign{id: campaign, account: engAccount, run: 1, s: SettingsOf(settings)}
	claimed, _, err := e.claimPaced(context.Background(), ec, now)
	if err != nil || len(claimed) != 3 {
		t.Fatalf("claimed %d (%v), want 3: one free agent times 3", len(claimed), err)
	}
	if _, err := h.db.Exec(context.Background(), `UPDATE dialer.records SET status = 'ready', lease_owner = '', lease_until = NULL WHERE status = 'running'`); err != nil {
		t.Fatal(err)
	}
	w := waitingCall{campaign: campaign, call: "queued-1", account: engAccount, answered: now, deadline: now.Add(time.Minute), queue: true}
	if ok, err := store.requeue(context.Background(), w, now); err != nil || !ok {
		t.Fatalf("queue a call: %v %v", ok, err)
	}
	if claimed, _, err := e.claimPaced(context.Background(), ec, now); err != nil || len(claimed) != 0 {
		t.Fatalf("claimed %d (%v) with the agent's next call queued, want 0", len(claimed), err)
	}
	// The queue's call, not the paced one, goes out for each record.
	if req := callRequest(ec.s, "+34918000000", "", false); req.GetMenu() == nil || req.GetAwaitAgent().GetTimeoutMs() != 60000 {
		t.Fatalf("request: %v", req)
	}
}
