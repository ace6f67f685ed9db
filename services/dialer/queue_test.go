package dialer

import (
	"strings"
	"testing"
	"time"

	dialerv1 "github.com/ringback/ringback/proto/gen/go/ringback/dialer/v1"
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
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := queueOnAnswer()
			tc.edit(a)
			if err := validateBlast(a); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
	// A paced campaign gives every answer to its agents already.
	c := predictiveCampaign()
	c.OnAnswer = queueOnAnswer()
	if err := validatePacing(c); err == nil {
		t.Fatal("a PREDICTIVE campaign with a BLAST queue accepted")
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
	req = callRequest(s, "+34911111111", "ep-scheduled", true)
	if req.GetAwaitAgent() != nil || req.GetSecond().GetEndpointId() != "ep-scheduled" {
		t.Fatalf("scheduled record's request: %v", req)
	}
	// Without a CONNECT option nobody is waited for.
	a = queueOnAnswer()
	a.Options = a.Options[1:]
	if req := callRequest(SettingsOf(&dialerv1.Campaign{OnAnswer: a}), "+34911111111", "", false); req.GetAwaitAgent() != nil || req.GetSecond() != nil {
		t.Fatalf("request without CONNECT: %v", req)
	}
}
