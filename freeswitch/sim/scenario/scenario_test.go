package scenario

import (
	"fmt"
	"reflect"
	"testing"
	"time"
)

const (
	ms = time.Millisecond
	s1 = time.Second
)

func TestWithDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   OutcomeSpec
		want OutcomeSpec
	}{
		{"empty is answer", OutcomeSpec{},
			OutcomeSpec{Kind: Answer, Ring: Uniform(800*ms, 1200*ms), Talk: Uniform(4*s1, 6*s1), SIPStatus: 200}},
		{"answer", OutcomeSpec{Kind: Answer},
			OutcomeSpec{Kind: Answer, Ring: Uniform(800*ms, 1200*ms), Talk: Uniform(4*s1, 6*s1), SIPStatus: 200}},
		{"answer keeps given values", OutcomeSpec{Kind: Answer, Ring: Fixed(0), Talk: Fixed(0), SIPStatus: 202},
			OutcomeSpec{Kind: Answer, Ring: Fixed(0), Talk: Fixed(0), SIPStatus: 202}},
		{"answer with dtmf", OutcomeSpec{Kind: Answer, DTMF: "1a"},
			OutcomeSpec{Kind: Answer, Ring: defaultAnswerRing, Talk: defaultAnswerTalk, DTMF: "1A", DTMFDelay: Fixed(s1), DTMFInterval: Fixed(400 * ms), DTMFSource: "RTP", SIPStatus: 200}},
		{"dtmf source kept", OutcomeSpec{Kind: Machine, DTMF: "#", DTMFSource: "endpoint", DTMFInterval: Fixed(0)},
			OutcomeSpec{Kind: Machine, Ring: defaultAnswerRing, Talk: Fixed(30 * s1), MachineGreeting: Uniform(3*s1, 5*s1), DTMF: "#", DTMFDelay: Fixed(s1), DTMFInterval: Fixed(0), DTMFSource: "ENDPOINT", SIPStatus: 200}},
		{"machine", OutcomeSpec{Kind: Machine},
			OutcomeSpec{Kind: Machine, Ring: Uniform(800*ms, 1200*ms), Talk: Fixed(30 * s1), MachineGreeting: Uniform(3*s1, 5*s1), SIPStatus: 200}},
		{"busy", OutcomeSpec{Kind: Busy},
			OutcomeSpec{Kind: Busy, Ring: Uniform(100*ms, 300*ms), SIPStatus: 486, Cause: "USER_BUSY"}},
		{"no answer", OutcomeSpec{Kind: NoAnswer}, OutcomeSpec{Kind: NoAnswer}},
		{"no answer with early media", OutcomeSpec{Kind: NoAnswer, EarlyMedia: true}, OutcomeSpec{Kind: NoAnswer, EarlyMedia: true}},
		{"congestion", OutcomeSpec{Kind: Congestion},
			OutcomeSpec{Kind: Congestion, Ring: defaultFailureRing, SIPStatus: 503, Cause: "NORMAL_TEMPORARY_FAILURE"}},
		{"unallocated", OutcomeSpec{Kind: Unallocated},
			OutcomeSpec{Kind: Unallocated, Ring: defaultFailureRing, SIPStatus: 404, Cause: "UNALLOCATED_NUMBER"}},
		{"unavailable", OutcomeSpec{Kind: Unavailable},
			OutcomeSpec{Kind: Unavailable, Ring: defaultFailureRing, SIPStatus: 480, Cause: "NO_USER_RESPONSE"}},
		{"rejected", OutcomeSpec{Kind: Rejected},
			OutcomeSpec{Kind: Rejected, Ring: defaultFailureRing, SIPStatus: 603, Cause: "CALL_REJECTED"}},
		{"custom status derives cause", OutcomeSpec{Kind: Rejected, SIPStatus: 488, Ring: Fixed(0)},
			OutcomeSpec{Kind: Rejected, Ring: Fixed(0), SIPStatus: 488, Cause: "INCOMPATIBLE_DESTINATION"}},
		{"unmapped status gives NORMAL_UNSPECIFIED", OutcomeSpec{Kind: Congestion, SIPStatus: 499},
			OutcomeSpec{Kind: Congestion, Ring: defaultFailureRing, SIPStatus: 499, Cause: "NORMAL_UNSPECIFIED"}},
		{"custom cause keeps default status", OutcomeSpec{Kind: Busy, Cause: "BUSY_EVERYWHERE"},
			OutcomeSpec{Kind: Busy, Ring: defaultFailureRing, SIPStatus: 486, Cause: "BUSY_EVERYWHERE"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.in.Validate(); err != nil {
				t.Fatalf("input invalid: %v", err)
			}
			got := tt.in.WithDefaults()
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("WithDefaults:\n got %+v\nwant %+v", got, tt.want)
			}
			if again := got.WithDefaults(); !reflect.DeepEqual(again, got) {
				t.Errorf("not idempotent: %+v", again)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("filled spec invalid: %v", err)
			}
		})
	}
}

func TestKinds(t *testing.T) {
	tests := []struct {
		kind           Kind
		answers, fails bool
		status         int
		cause          string
	}{
		{Answer, true, false, 200, ""},
		{Busy, false, true, 486, "USER_BUSY"},
		{NoAnswer, false, false, 0, ""},
		{Congestion, false, true, 503, "NORMAL_TEMPORARY_FAILURE"},
		{Unallocated, false, true, 404, "UNALLOCATED_NUMBER"},
		{Unavailable, false, true, 480, "NO_USER_RESPONSE"},
		{Rejected, false, true, 603, "CALL_REJECTED"},
		{Machine, true, false, 200, ""},
		{"bogus", false, false, 0, ""},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			k := tt.kind
			if k.Valid() != (k != "bogus") || k.Answers() != tt.answers || k.Fails() != tt.fails ||
				k.DefaultSIPStatus() != tt.status || k.DefaultCause() != tt.cause {
				t.Errorf("%s: valid=%v answers=%v fails=%v status=%d cause=%q", k, k.Valid(), k.Answers(), k.Fails(), k.DefaultSIPStatus(), k.DefaultCause())
			}
		})
	}
	if got := len(Kinds()); got != 8 {
		t.Errorf("len(Kinds()) = %d", got)
	}
}

func TestCauses(t *testing.T) {
	for status, want := range map[int]string{
		200: "NORMAL_CLEARING", 403: "CALL_REJECTED", 404: "UNALLOCATED_NUMBER", 480: "NO_USER_RESPONSE",
		486: "USER_BUSY", 600: "USER_BUSY", 503: "NORMAL_TEMPORARY_FAILURE", 603: "CALL_REJECTED",
		607: "UNWANTED", 484: "INVALID_NUMBER_FORMAT", 408: "RECOVERY_ON_TIMER_EXPIRE", 499: "NORMAL_UNSPECIFIED",
	} {
		if got := CauseForSIPStatus(status); got != want {
			t.Errorf("CauseForSIPStatus(%d) = %q, want %q", status, got, want)
		}
		if !ValidCause(want) {
			t.Errorf("ValidCause(%q) = false", want)
		}
	}
	for _, c := range []string{"SUBSCRIBER_ABSENT", "USER_NOT_REGISTERED", "NO_ANSWER"} {
		if !ValidCause(c) {
			t.Errorf("ValidCause(%q) = false", c)
		}
	}
	for _, c := range []string{"", "user_busy", "BUSY"} {
		if ValidCause(c) {
			t.Errorf("ValidCause(%q) = true", c)
		}
	}
}

// TestDefaultScenario pins the documented Default scenario, suffix by suffix.
func TestDefaultScenario(t *testing.T) {
	type want struct {
		rule               int
		kind               Kind
		ringMin, ringMax   time.Duration
		talkMin, talkMax   time.Duration
		early              bool
		dtmf               string
		dtmfDelay, dtmfGap time.Duration
		dtmfSource         string
		greeting           time.Duration
		status             int
		cause              string
	}
	fail := func(rule int, k Kind, status int, cause string) want {
		return want{rule: rule, kind: k, ringMin: 100 * ms, ringMax: 300 * ms, status: status, cause: cause}
	}
	tests := []struct {
		suffix string
		want   want
	}{
		{"486", fail(0, Busy, 486, "USER_BUSY")},
		{"408", want{rule: 1, kind: NoAnswer}},
		{"503", fail(2, Congestion, 503, "NORMAL_TEMPORARY_FAILURE")},
		{"404", fail(3, Unallocated, 404, "UNALLOCATED_NUMBER")},
		{"480", fail(4, Unavailable, 480, "NO_USER_RESPONSE")},
		{"600", fail(5, Rejected, 603, "CALL_REJECTED")},
		{"0000", want{rule: 6, kind: Answer, ringMin: 100 * ms, ringMax: 100 * ms, status: 200}},
		{"0002", want{rule: 7, kind: Answer, ringMin: 100 * ms, ringMax: 100 * ms, talkMin: 2 * s1, talkMax: 2 * s1, status: 200}},
		{"0095", want{rule: 8, kind: Answer, ringMin: 100 * ms, ringMax: 100 * ms, dtmf: "195", dtmfDelay: s1, dtmfGap: 400 * ms, dtmfSource: "RTP,RTP,ENDPOINT", status: 200}},
		{"0666", want{rule: 9, kind: Machine, ringMin: 800 * ms, ringMax: 1200 * ms, talkMin: 30 * s1, talkMax: 30 * s1, greeting: 4 * s1, status: 200}},
		{"0183", want{rule: 10, kind: Answer, ringMin: s1, ringMax: s1, talkMin: 4 * s1, talkMax: 6 * s1, early: true, status: 200}},
		{"1234567", want{rule: 11, kind: Answer, ringMin: 800 * ms, ringMax: 1200 * ms, talkMin: 4 * s1, talkMax: 6 * s1, status: 200}},
	}
	p := Default().MustCompile()
	for _, tt := range tests {
		t.Run("ends in "+tt.suffix, func(t *testing.T) {
			w := tt.want
			for _, prefix := range []string{"", "1555", "+1555123", "0044"} {
				number := prefix + tt.suffix
				if got := p.Rule(number); got != w.rule {
					t.Errorf("Rule(%q) = %d, want %d", number, got, w.rule)
				}
				for range 50 {
					o := p.Pick(number)
					if o.Kind != w.kind || o.RingFor < w.ringMin || o.RingFor > w.ringMax ||
						o.TalkFor < w.talkMin || o.TalkFor > w.talkMax || o.EarlyMedia != w.early ||
						o.DTMF != w.dtmf || o.DTMFDelay != w.dtmfDelay || o.DTMFInterval != w.dtmfGap || o.DTMFSource != w.dtmfSource ||
						o.MachineGreeting != w.greeting || o.SIPStatus != w.status || o.Cause != w.cause {
						t.Fatalf("Pick(%q) = %v, want %+v", number, o, w)
					}
				}
			}
		})
	}
	t.Run("scenario basics", func(t *testing.T) {
		d := Default()
		if d.Name != "default" || d.Seed != 1 || len(d.Rules) != len(tests) {
			t.Errorf("Default() = %+v", d)
		}
		if !reflect.DeepEqual(d.Users, DefaultUsers()) {
			t.Errorf("Default().Users = %+v", d.Users)
		}
	})
}

func TestNoRuleMatchesUsesCatchAll(t *testing.T) {
	s := &Scenario{Seed: 9, Rules: []Rule{{Match: "^9$", Outcomes: []Weighted{{Weight: 1, Spec: OutcomeSpec{Kind: Busy}}}}}}
	p := s.MustCompile()
	if p.Rule("8") != -1 || p.Rule("9") != 0 {
		t.Fatalf("Rule: %d %d", p.Rule("8"), p.Rule("9"))
	}
	for i := range 200 {
		o := p.Pick(fmt.Sprint(i + 10))
		if o.Kind != Answer || o.RingFor < 800*ms || o.RingFor > 1200*ms || o.TalkFor < 4*s1 || o.TalkFor > 6*s1 || o.SIPStatus != 200 {
			t.Fatalf("catch-all outcome %v", o)
		}
	}
	if o := p.Pick("9"); o.Kind != Busy {
		t.Fatalf("Pick(9) = %v", o)
	}
}

func TestUsers(t *testing.T) {
	tests := []struct {
		name, ext         string
		known, registered bool
		cause             string
	}{
		{"first registered", "1000", true, true, ""},
		{"last registered", "1019", true, true, ""},
		{"known, not registered", "1020", true, false, "USER_NOT_REGISTERED"},
		{"known, not registered, top of range", "1999", true, false, "USER_NOT_REGISTERED"},
		{"unknown", "2000", false, false, "SUBSCRIBER_ABSENT"},
		{"unknown, too long", "10000", false, false, "SUBSCRIBER_ABSENT"},
		{"unknown, empty", "", false, false, "SUBSCRIBER_ABSENT"},
	}
	p := Default().MustCompile()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 20 {
				known, registered, o := p.User(tt.ext)
				if known != tt.known || registered != tt.registered {
					t.Fatalf("User(%q): known=%v registered=%v", tt.ext, known, registered)
				}
				if !registered {
					if o != (Outcome{Cause: tt.cause}) {
						t.Fatalf("User(%q) outcome %+v, want cause %s only", tt.ext, o, tt.cause)
					}
					continue
				}
				if o.Kind != Answer || o.RingFor < 200*ms || o.RingFor > 400*ms || o.TalkFor != 0 || o.SIPStatus != 200 || o.Cause != "" {
					t.Fatalf("User(%q) outcome %v", tt.ext, o)
				}
			}
		})
	}

	t.Run("custom policy", func(t *testing.T) {
		s, err := Parse([]byte(`
seed: 5
users:
  registered: "^2[0-9]{2}$"      # 200-299 ...
  known: "^2[0-4][0-9]$"         # ... but only 200-249 exist
  answer: {kind: answer, ring: 2s, talk: {min: 10s, max: 20s}}
  busy_when_in_call: false
`))
		if err != nil {
			t.Fatal(err)
		}
		if s.Users.BusyWhenInCall {
			t.Error("BusyWhenInCall = true")
		}
		p := s.MustCompile()
		for ext, want := range map[string][2]bool{"200": {true, true}, "249": {true, true}, "250": {false, false}, "1000": {false, false}} {
			known, registered, o := p.User(ext)
			if known != want[0] || registered != want[1] {
				t.Errorf("User(%q): known=%v registered=%v", ext, known, registered)
			}
			if registered && (o.RingFor != 2*s1 || o.TalkFor < 10*s1 || o.TalkFor > 20*s1) {
				t.Errorf("User(%q) outcome %v", ext, o)
			}
		}
	})

	t.Run("deterministic and independent of Pick", func(t *testing.T) {
		a, b := Default().MustCompile(), Default().MustCompile()
		var seqA, seqB []Outcome
		for i := range 50 {
			_, _, o := a.User("1001")
			seqA = append(seqA, o)
			b.Pick("1001") // same digits dialed as a number: separate counter and stream
			b.User("1002")
			_, _, o = b.User("1001")
			seqB = append(seqB, o)
			if _, _, at := a.UserAt("1001", uint64(i)); at != o {
				t.Fatalf("UserAt(1001, %d) = %v, want %v", i, at, o)
			}
		}
		if !reflect.DeepEqual(seqA, seqB) {
			t.Error("user sequence depends on other calls")
		}
		if seqA[0] == seqA[1] && seqA[1] == seqA[2] {
			t.Error("user outcomes do not vary")
		}
	})
}

func TestErrorFormat(t *testing.T) {
	for _, tt := range []struct {
		e    Error
		want string
	}{
		{Error{Msg: "m"}, "scenario: m"},
		{Error{Path: "rules[1].ring", Msg: "m"}, "scenario: rules[1].ring: m"},
		{Error{Path: "seed", Line: 4, Msg: "m"}, "scenario: seed: m (line 4)"},
	} {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("%+v: got %q want %q", tt.e, got, tt.want)
		}
	}
}

func TestOutcomeString(t *testing.T) {
	o := Outcome{Kind: Machine, RingFor: s1, TalkFor: 30 * s1, MachineGreeting: 4 * s1, SIPStatus: 200, DTMF: "1", DTMFSource: "RTP", DTMFDelay: s1, DTMFInterval: 400 * ms, EarlyMedia: true}
	if got, want := o.String(), `machine ring=1s talk=30s early_media greeting=4s dtmf="1"/RTP delay=1s interval=400ms sip=200`; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, want := (Outcome{Kind: Busy, RingFor: 200 * ms, SIPStatus: 486, Cause: "USER_BUSY"}).String(), "busy ring=200ms sip=486 cause=USER_BUSY"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
