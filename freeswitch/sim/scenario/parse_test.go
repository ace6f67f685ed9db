package scenario

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func TestParseValid(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name  string
		in    string
		check func(t *testing.T, s *Scenario)
	}{
		{
			name: "inline single outcome has weight 1",
			in:   `rules: [{match: "486$", kind: busy}]`,
			check: func(t *testing.T, s *Scenario) {
				want := []Weighted{{Weight: 1, Spec: OutcomeSpec{Kind: Busy, Ring: defaultFailureRing, SIPStatus: 486, Cause: "USER_BUSY"}}}
				if got := s.Rules[0].Outcomes; !reflect.DeepEqual(got, want) {
					t.Errorf("outcomes = %+v, want %+v", got, want)
				}
				if s.Rules[0].Match != "486$" {
					t.Errorf("match = %q", s.Rules[0].Match)
				}
			},
		},
		{
			name: "weighted outcomes, weight defaults to 1",
			in: `
rules:
  - match: "^\\+44"
    outcomes:
      - {weight: 3, kind: answer}
      - {kind: no_answer}
`,
			check: func(t *testing.T, s *Scenario) {
				o := s.Rules[0].Outcomes
				if len(o) != 2 || o[0].Weight != 3 || o[1].Weight != 1 || o[1].Spec.Kind != NoAnswer {
					t.Errorf("outcomes = %+v", o)
				}
				if s.Rules[0].Match != `^\+44` {
					t.Errorf("match = %q", s.Rules[0].Match)
				}
			},
		},
		{
			name: "distribution forms",
			in: `
rules:
  - kind: answer
    ring: 1.5s
    talk: {min: 1s, max: 2s}
    dtmf: "1"
    dtmf_delay: {mean: 5s, stddev: 1s}
    dtmf_interval: 0
`,
			check: func(t *testing.T, s *Scenario) {
				sp := s.Rules[0].Outcomes[0].Spec
				if sp.Ring != Fixed(1500*ms) || sp.Talk != Uniform(time.Second, 2*time.Second) ||
					sp.DTMFDelay != Normal(5*time.Second, time.Second) || sp.DTMFInterval != Fixed(0) {
					t.Errorf("spec = %+v", sp)
				}
			},
		},
		{
			name: "distributions with a shape",
			in: `
rules:
  - kind: answer
    ring: {shape: uniform, min: 4s, max: 20s}
    talk: {shape: lognormal, mean: 120s, stddev: 120s}
    dtmf: "1"
    dtmf_delay: {shape: normal, mean: 5s, stddev: 1s}
    dtmf_interval: {stddev: 0s, shape: lognormal, mean: 400ms}
`,
			check: func(t *testing.T, s *Scenario) {
				sp := s.Rules[0].Outcomes[0].Spec
				if sp.Ring != Uniform(4*time.Second, 20*time.Second) || sp.Talk != Lognormal(2*time.Minute, 2*time.Minute) ||
					sp.DTMFDelay != Normal(5*time.Second, time.Second) || sp.DTMFInterval != Lognormal(400*ms, 0) {
					t.Errorf("spec = %+v", sp)
				}
			},
		},
		{
			name: "kind and match omitted: answer everything",
			in:   `rules: [{ring: 2s}]`,
			check: func(t *testing.T, s *Scenario) {
				r := s.Rules[0]
				if r.Match != "" || r.Outcomes[0].Spec.Kind != Answer || r.Outcomes[0].Spec.Talk != defaultAnswerTalk {
					t.Errorf("rule = %+v", r)
				}
			},
		},
		{
			name: "null match is empty",
			in:   `rules: [{match: ~, kind: busy}]`,
			check: func(t *testing.T, s *Scenario) {
				if s.Rules[0].Match != "" {
					t.Errorf("match = %q", s.Rules[0].Match)
				}
			},
		},
		{
			name: "dtmf normalised and defaults filled",
			in:   `rules: [{kind: answer, dtmf: "12ab#*", dtmf_source: endpoint}]`,
			check: func(t *testing.T, s *Scenario) {
				sp := s.Rules[0].Outcomes[0].Spec
				if sp.DTMF != "12AB#*" || sp.DTMFSource != "ENDPOINT" || sp.DTMFDelay != defaultDTMFDelay || sp.DTMFInterval != defaultDTMFInterval {
					t.Errorf("spec = %+v", sp)
				}
			},
		},
		{
			name: "numeric dtmf scalar",
			in:   `rules: [{kind: answer, dtmf: 0195}]`,
			check: func(t *testing.T, s *Scenario) {
				if got := s.Rules[0].Outcomes[0].Spec.DTMF; got != "0195" {
					t.Errorf("dtmf = %q", got)
				}
			},
		},
		{
			name: "custom sip status derives the cause as FreeSWITCH does",
			in:   `rules: [{kind: rejected, sip_status: 403}, {kind: busy, sip_status: 600}, {kind: congestion, cause: SWITCH_CONGESTION}, {kind: unavailable, sip_status: 410, cause: NUMBER_CHANGED}]`,
			check: func(t *testing.T, s *Scenario) {
				want := [][2]any{{403, "CALL_REJECTED"}, {600, "USER_BUSY"}, {503, "SWITCH_CONGESTION"}, {410, "NUMBER_CHANGED"}}
				for i, w := range want {
					sp := s.Rules[i].Outcomes[0].Spec
					if sp.SIPStatus != w[0] || sp.Cause != w[1] {
						t.Errorf("rule %d: status %d cause %q, want %v", i, sp.SIPStatus, sp.Cause, w)
					}
				}
			},
		},
		{
			name: "no users section: default users",
			in:   `seed: 3`,
			check: func(t *testing.T, s *Scenario) {
				if !reflect.DeepEqual(s.Users, DefaultUsers()) {
					t.Errorf("users = %+v, want %+v", s.Users, DefaultUsers())
				}
				if s.Seed != 3 || len(s.Rules) != 0 {
					t.Errorf("scenario = %+v", s)
				}
			},
		},
		{
			name: "partial users section keeps the other defaults",
			in:   `users: {registered: "^200[0-9]$", answer: {ring: 1s}}`,
			check: func(t *testing.T, s *Scenario) {
				u := s.Users
				if u.Registered != "^200[0-9]$" || u.Known != DefaultKnown || !u.BusyWhenInCall {
					t.Errorf("users = %+v", u)
				}
				if u.Answer.Ring != Fixed(time.Second) || u.Answer.Talk != defaultUserTalk || u.Answer.Kind != Answer {
					t.Errorf("users.answer = %+v", u.Answer)
				}
			},
		},
		{
			name: "users that are busy",
			in:   `users: {answer: {kind: busy}, busy_when_in_call: false}`,
			check: func(t *testing.T, s *Scenario) {
				u := s.Users
				if u.BusyWhenInCall || u.Answer.Kind != Busy || u.Answer.Cause != "USER_BUSY" {
					t.Errorf("users = %+v", u)
				}
			},
		},
		{
			name: "JSON",
			in:   `{"name": "j", "seed": 18446744073709551615, "rules": [{"match": "^1$", "kind": "machine", "machine_greeting": {"min": "1s", "max": "2s"}}]}`,
			check: func(t *testing.T, s *Scenario) {
				sp := s.Rules[0].Outcomes[0].Spec
				if s.Name != "j" || s.Seed != 1<<64-1 || sp.Kind != Machine || sp.MachineGreeting != Uniform(time.Second, 2*time.Second) || sp.Talk != defaultMachineTalk {
					t.Errorf("scenario = %+v", s)
				}
			},
		},
		{
			name: "merge keys: explicit keys win",
			in: `
rules:
  - match: a
    outcomes:
      - &o {weight: 2, kind: answer, ring: 1s}
      - {<<: *o, ring: 2s}
`,
			check: func(t *testing.T, s *Scenario) {
				o := s.Rules[0].Outcomes
				if o[1].Weight != 2 || o[1].Spec.Ring != Fixed(2*time.Second) || o[0].Spec.Ring != Fixed(time.Second) {
					t.Errorf("outcomes = %+v", o)
				}
			},
		},
		{
			name: "empty rules",
			in:   `rules: []`,
			check: func(t *testing.T, s *Scenario) {
				if len(s.Rules) != 0 {
					t.Errorf("rules = %+v", s.Rules)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse([]byte(tt.in))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tt.check(t, s)
			if _, err := s.Compile(); err != nil {
				t.Fatalf("Compile: %v", err)
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"not yaml", "rules: [", "scenario: not valid YAML or JSON: line 1: did not find expected node content"},
		{"empty document", "", "scenario: empty document"},
		{"only a comment", "# nothing\n", "scenario: empty document"},
		{"top level list", "- a", "scenario: must be a mapping, not a list (line 1)"},
		{"unknown top-level key", "ruls: []", `scenario: unknown key "ruls" (known: name, seed, rules, users) (line 1)`},
		{"duplicate key", "seed: 1\nseed: 2", `scenario: duplicate key "seed" (line 2)`},
		{"negative seed", "seed: -1", `scenario: seed: must be a non-negative integer, not "-1" (line 1)`},
		{"name not a string", "name: [a]", `scenario: name: must be a string, not a list (line 1)`},
		{"rules not a list", "rules: {a: b}", "scenario: rules: must be a list, not a mapping (line 1)"},
		{"rule not a mapping", "rules: [busy]", `scenario: rules[0]: must be a mapping, not "busy" (line 1)`},
		{"bad regexp", "rules:\n  - kind: busy\n  - match: \"(486\"", "scenario: rules[1].match: invalid regexp \"(486\": error parsing regexp: missing closing ): `(486` (line 3)"},
		{"unknown kind", "rules:\n  - {match: x, kind: bussy}", `scenario: rules[0].kind: unknown kind "bussy" (want one of answer, busy, no_answer, congestion, unallocated, unavailable, rejected, machine) (line 2)`},
		{"kind not a string", "rules: [{kind: {a: 1}}]", `scenario: rules[0].kind: must be a string, not a mapping (line 1)`},
		{"unknown rule key", "rules: [{match: x, rign: 1s}]", `scenario: rules[0]: unknown key "rign" (known: match, outcomes, kind, ring, talk, early_media, dtmf, dtmf_delay, dtmf_interval, dtmf_source, machine_greeting, sip_status, cause) (line 1)`},
		{"unknown key beside outcomes", "rules: [{match: x, rign: 1s, outcomes: [{kind: busy}]}]", `scenario: rules[0]: unknown key "rign" (known: match, outcomes) (line 1)`},
		{"unknown outcome key", "rules: [{outcomes: [{kind: busy, wieght: 2}]}]", `scenario: rules[0].outcomes[0]: unknown key "wieght" (known: weight, kind, ring, talk, early_media, dtmf, dtmf_delay, dtmf_interval, dtmf_source, machine_greeting, sip_status, cause) (line 1)`},
		{"zero weight", "rules:\n  - outcomes:\n      - {kind: busy}\n      - {weight: 0, kind: answer}", "scenario: rules[0].outcomes[1].weight: must be a positive integer, got 0 (line 4)"},
		{"negative weight", "rules: [{outcomes: [{weight: -2, kind: busy}]}]", "scenario: rules[0].outcomes[0].weight: must be a positive integer, got -2 (line 1)"},
		{"fractional weight", "rules: [{outcomes: [{weight: 1.5, kind: busy}]}]", `scenario: rules[0].outcomes[0].weight: must be a positive integer, not "1.5" (line 1)`},
		{"huge weight", "rules: [{outcomes: [{weight: 1000000001}]}]", "scenario: rules[0].outcomes[0].weight: 1000000001 is larger than the maximum 1000000000 (line 1)"},
		{"weight on an inline rule", "rules: [{kind: busy, weight: 2}]", "scenario: rules[0].weight: only allowed on an entry of outcomes (line 1)"},
		{"both outcomes and inline", "rules: [{outcomes: [{kind: busy}], kind: answer}]", "scenario: rules[0]: give either outcomes or an inline outcome (kind), not both (line 1)"},
		{"empty outcomes", "rules: [{match: x, outcomes: []}]", "scenario: rules[0].outcomes: empty: give at least one outcome (line 1)"},
		{"outcome not a mapping", "rules: [{outcomes: [busy]}]", `scenario: rules[0].outcomes[0]: must be a mapping, not "busy" (line 1)`},
		{"negative duration", "rules:\n- kind: answer\n  talk: -1s", "scenario: rules[0].talk: negative duration -1s (line 3)"},
		{"negative min", "rules: [{ring: {min: -1s, max: 1s}}]", "scenario: rules[0].ring: min: negative duration -1s (line 1)"},
		{"min greater than max", "rules:\n  - kind: answer\n  - outcomes:\n    - ring: {min: 2s, max: 1s}", "scenario: rules[1].outcomes[0].ring: min 2s is greater than max 1s (line 4)"},
		{"negative mean", "rules: [{talk: {mean: -5s, stddev: 1s}}]", "scenario: rules[0].talk: mean: negative duration -5s (line 1)"},
		{"negative stddev", "rules: [{talk: {mean: 5s, stddev: -1s}}]", "scenario: rules[0].talk: stddev: negative duration -1s (line 1)"},
		{"duration without unit", "rules: [{ring: 5}]", `scenario: rules[0].ring: duration "5" has no unit; write e.g. "5s" or "5ms" (line 1)`},
		{"bad duration", "rules: [{ring: soon}]", `scenario: rules[0].ring: invalid duration "soon" (want e.g. "1.5s", "300ms") (line 1)`},
		{"empty duration", "rules: [{ring: }]", `scenario: rules[0].ring: empty; give a duration such as "1s" (line 1)`},
		{"uniform without max", "rules: [{ring: {min: 1s}}]", "scenario: rules[0].ring: uniform needs both min and max (line 1)"},
		{"normal without stddev", "rules: [{ring: {mean: 1s}}]", "scenario: rules[0].ring: normal needs both mean and stddev (line 1)"},
		{"mixed distribution", "rules: [{ring: {min: 1s, max: 2s, mean: 1s}}]", "scenario: rules[0].ring: give either min and max (uniform) or mean and stddev (normal), not both (line 1)"},
		{"empty distribution", "rules: [{ring: {}}]", "scenario: rules[0].ring: empty; give min and max, or mean and stddev (line 1)"},
		{"unknown distribution key", "rules: [{ring: {low: 1s}}]", `scenario: rules[0].ring: unknown key "low" (known: shape, min, max, mean, stddev) (line 1)`},
		{"unknown shape", "rules:\n  - talk: {shape: lognorm, mean: 1s, stddev: 1s}", `scenario: rules[0].talk.shape: unknown shape "lognorm" (want uniform, normal or lognormal) (line 2)`},
		{"fixed is not a shape", "rules: [{talk: {shape: fixed, mean: 1s}}]", `scenario: rules[0].talk.shape: unknown shape "fixed" (want uniform, normal or lognormal) (line 1)`},
		{"shape not a string", "rules: [{talk: {shape: [lognormal], mean: 1s, stddev: 1s}}]", "scenario: rules[0].talk.shape: must be a string, not a list (line 1)"},
		{"lognormal without stddev", "rules: [{talk: {shape: lognormal, mean: 120s}}]", "scenario: rules[0].talk: lognormal needs both mean and stddev (line 1)"},
		{"lognormal alone", "rules: [{talk: {shape: lognormal}}]", "scenario: rules[0].talk: lognormal needs both mean and stddev (line 1)"},
		{"lognormal with bounds", "rules: [{talk: {shape: lognormal, min: 1s, max: 2s}}]", "scenario: rules[0].talk: shape lognormal takes mean and stddev, not min and max (line 1)"},
		{"uniform with moments", "rules: [{talk: {shape: uniform, mean: 1s, stddev: 2s}}]", "scenario: rules[0].talk: shape uniform takes min and max, not mean and stddev (line 1)"},
		{"lognormal zero mean", "rules: [{talk: {shape: lognormal, mean: 0s, stddev: 1s}}]", "scenario: rules[0].talk: mean: a lognormal's mean must be positive (line 1)"},
		{"lognormal negative stddev", "rules: [{talk: {shape: lognormal, mean: 1s, stddev: -1s}}]", "scenario: rules[0].talk: stddev: negative duration -1s (line 1)"},
		{"lognormal without unit", "rules: [{talk: {shape: lognormal, mean: 120, stddev: 120s}}]", `scenario: rules[0].talk.mean: duration "120" has no unit; write e.g. "120s" or "120ms" (line 1)`},
		{"distribution as a list", "rules: [{ring: [1s, 2s]}]", "scenario: rules[0].ring: must be a duration string, {min, max} or {mean, stddev}, not a list (line 1)"},
		{"talk on a failure", "rules:\n  - kind: busy\n    talk: 1s", "scenario: rules[0].talk: not allowed for kind busy: only answer and machine answer the call (line 3)"},
		{"dtmf on no_answer", "rules: [{kind: no_answer, dtmf: '1'}]", "scenario: rules[0].dtmf: not allowed for kind no_answer: only answer and machine answer the call (line 1)"},
		{"ring on no_answer", "rules: [{kind: no_answer, ring: 1s}]", "scenario: rules[0].ring: not used by no_answer: it never sends a final response (the originate timeout ends the call) (line 1)"},
		{"greeting on answer", "rules: [{kind: answer, machine_greeting: 3s}]", "scenario: rules[0].machine_greeting: not allowed for kind answer: only machine has a greeting (line 1)"},
		{"bad dtmf digit", "rules: [{dtmf: '12x'}]", `scenario: rules[0].dtmf: invalid digit 'x' in "12x" (want 0-9, *, #, A-D) (line 1)`},
		{"dtmf_delay without dtmf", "rules: [{dtmf_delay: 1s}]", "scenario: rules[0].dtmf_delay: set but dtmf is empty (line 1)"},
		{"dtmf_source without dtmf", "rules: [{dtmf_source: RTP}]", "scenario: rules[0].dtmf_source: set but dtmf is empty (line 1)"},
		{"bad dtmf_source", "rules: [{dtmf: '1', dtmf_source: INBAND}]", `scenario: rules[0].dtmf_source: "INBAND" is not RTP or ENDPOINT (or a comma-separated list of them, one per digit) (line 1)`},
		{"non-2xx status for answer", "rules: [{kind: machine, sip_status: 486}]", "scenario: rules[0].sip_status: 486 is not a 2xx status, which kind machine needs (line 1)"},
		{"cause for answer", "rules: [{cause: NORMAL_CLEARING}]", "scenario: rules[0].cause: not allowed for kind answer: it answers, the cause is set when someone hangs up (line 1)"},
		{"status for no_answer", "rules: [{kind: no_answer, sip_status: 487}]", "scenario: rules[0].sip_status: not allowed for kind no_answer: it sends no final response (line 1)"},
		{"cause for no_answer", "rules: [{kind: no_answer, cause: NO_ANSWER}]", "scenario: rules[0].cause: not allowed for kind no_answer: FreeSWITCH sets NO_ANSWER when the originate times out (line 1)"},
		{"success status for a failure", "rules: [{kind: busy, sip_status: 200}]", "scenario: rules[0].sip_status: 200 is not a failure status (want 400-699) (line 1)"},
		{"status not an integer", "rules: [{kind: busy, sip_status: busy}]", `scenario: rules[0].sip_status: must be an integer SIP status, not "busy" (line 1)`},
		{"unknown cause", "rules: [{kind: busy, cause: user_busy}]", `scenario: rules[0].cause: unknown FreeSWITCH hangup cause "user_busy" (line 1)`},
		{"early_media not a bool", "rules: [{early_media: sometimes}]", `scenario: rules[0].early_media: must be true or false, not "sometimes" (line 1)`},
		{"users not a mapping", "users: [1000]", "scenario: users: must be a mapping, not a list (line 1)"},
		{"unknown users key", "users: {registerd: x}", `scenario: users: unknown key "registerd" (known: registered, known, answer, busy_when_in_call) (line 1)`},
		{"bad users regexp", "users:\n  known: '[0-9'", "scenario: users.known: invalid regexp \"[0-9\": error parsing regexp: missing closing ]: `[0-9` (line 2)"},
		{"bad users answer", "users: {answer: {kind: answer, talk: {min: 3s, max: 1s}}}", "scenario: users.answer.talk: min 3s is greater than max 1s (line 1)"},
		{"weight in users answer", "users: {answer: {weight: 2}}", `scenario: users.answer: unknown key "weight" (known: kind, ring, talk, early_media, dtmf, dtmf_delay, dtmf_interval, dtmf_source, machine_greeting, sip_status, cause) (line 1)`},
		{"busy_when_in_call not a bool", "users: {busy_when_in_call: 2}", `scenario: users.busy_when_in_call: must be true or false, not "2" (line 1)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Parse([]byte(tt.in))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", s)
			}
			if err.Error() != tt.want {
				t.Errorf("error:\n got: %s\nwant: %s", err, tt.want)
			}
			var se *Error
			if !errors.As(err, &se) {
				t.Errorf("error %T is not a *Error", err)
			}
		})
	}
}

func TestValidateGoScenario(t *testing.T) {
	ok := Weighted{Weight: 1, Spec: OutcomeSpec{Kind: Answer}}
	tests := []struct {
		name string
		s    *Scenario
		want string
	}{
		{"nil", nil, "scenario: nil scenario"},
		{"bad regexp", &Scenario{Rules: []Rule{{Match: "a", Outcomes: []Weighted{ok}}, {Match: "*", Outcomes: []Weighted{ok}}}},
			"scenario: rules[1].match: invalid regexp \"*\": error parsing regexp: missing argument to repetition operator: `*`"},
		{"no outcomes", &Scenario{Rules: []Rule{{Match: "a"}}}, "scenario: rules[0].outcomes: no outcomes"},
		{"zero weight", &Scenario{Rules: []Rule{{Outcomes: []Weighted{ok, {Spec: OutcomeSpec{Kind: Busy}}}}}},
			"scenario: rules[0].outcomes[1].weight: must be a positive integer, got 0"},
		{"unknown kind", &Scenario{Rules: []Rule{{Outcomes: []Weighted{{Weight: 1, Spec: OutcomeSpec{Kind: "ANSWER"}}}}}},
			`scenario: rules[0].outcomes[0].kind: unknown kind "ANSWER" (want one of answer, busy, no_answer, congestion, unallocated, unavailable, rejected, machine)`},
		{"bad shape", &Scenario{Rules: []Rule{{Outcomes: []Weighted{{Weight: 1, Spec: OutcomeSpec{Ring: Dist{Shape: "poisson"}}}}}}},
			`scenario: rules[0].outcomes[0].ring: unknown distribution shape "poisson"`},
		{"min greater than max", &Scenario{Rules: []Rule{{Outcomes: []Weighted{{Weight: 1, Spec: OutcomeSpec{Talk: Uniform(2*time.Second, time.Second)}}}}}},
			"scenario: rules[0].outcomes[0].talk: min 2s is greater than max 1s"},
		{"lognormal without a mean", &Scenario{Rules: []Rule{{Outcomes: []Weighted{{Weight: 1, Spec: OutcomeSpec{Talk: Lognormal(0, time.Second)}}}}}},
			"scenario: rules[0].outcomes[0].talk: mean: a lognormal's mean must be positive"},
		{"users regexp", &Scenario{Users: UserPolicy{Registered: "("}},
			"scenario: users.registered: invalid regexp \"(\": error parsing regexp: missing closing ): `(`"},
		{"users answer", &Scenario{Users: UserPolicy{Answer: OutcomeSpec{Kind: Busy, DTMF: "1"}}},
			"scenario: users.answer.dtmf: not allowed for kind busy: only answer and machine answer the call"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.Validate()
			if err == nil || err.Error() != tt.want {
				t.Fatalf("Validate() = %v, want %s", err, tt.want)
			}
			if _, err := tt.s.Compile(); err == nil || err.Error() != tt.want {
				t.Fatalf("Compile() error = %v, want %s", err, tt.want)
			}
		})
	}
}

func TestParseFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/*")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "example.yaml")
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			s, err := ParseFile(f)
			if err != nil {
				t.Fatal(err)
			}
			p, err := s.Compile()
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range []string{"5550000", "+441234567", "1000", ""} {
				p.Pick(n)
			}
			// What Marshal writes, Parse reads back identically.
			out, err := yaml.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			back, err := Parse(out)
			if err != nil {
				t.Fatalf("re-parse: %v\n%s", err, out)
			}
			if !reflect.DeepEqual(back, s) {
				t.Errorf("round trip differs:\n got %+v\nwant %+v", back, s)
			}
		})
	}
}

func TestParseFileErrorNamesFile(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(f, []byte("rules: [{kind: nope}]"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := ParseFile(f)
	var se *Error
	if err == nil || !strings.HasPrefix(err.Error(), f+": scenario: rules[0].kind") || !errors.As(err, &se) || se.Line != 1 {
		t.Fatalf("ParseFile error = %v", err)
	}
	if _, err := ParseFile(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file error = %v", err)
	}
}

func TestDefaultYAMLMatchesDefault(t *testing.T) {
	s, err := ParseFile("testdata/default.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if want := Default(); !reflect.DeepEqual(s, want) {
		t.Errorf("testdata/default.yaml differs from Default():\n got %+v\nwant %+v", s, want)
	}
}

func TestMarshalDefaultRoundTrip(t *testing.T) {
	out, err := yaml.Marshal(Default())
	if err != nil {
		t.Fatal(err)
	}
	s, err := Parse(out)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !reflect.DeepEqual(s, Default()) {
		t.Errorf("round trip differs:\n%s", out)
	}
}
