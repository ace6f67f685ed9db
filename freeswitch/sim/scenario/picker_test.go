package scenario

import (
	"fmt"
	"math"
	"reflect"
	"regexp"
	"sync"
	"testing"
)

func mustParse(t testing.TB, text string) *Scenario {
	t.Helper()
	s, err := Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestWeightedProportions(t *testing.T) {
	s, err := ParseFile("testdata/weighted.yaml") // 5:3:2 answer:busy:no_answer
	if err != nil {
		t.Fatal(err)
	}
	const n = 100_000
	want := map[Kind]float64{Answer: 0.5, Busy: 0.3, NoAnswer: 0.2}
	tests := []struct {
		name   string
		number func(i int) string
	}{
		{"one number, many attempts", func(int) string { return "15551234567" }},
		{"many numbers, one attempt each", func(i int) string { return fmt.Sprintf("+1555%07d", i) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := s.MustCompile()
			counts := map[Kind]int{}
			for i := range n {
				counts[p.Pick(tt.number(i)).Kind]++
			}
			for k, w := range want {
				// sd of a proportion at n=100k is <= 0.0016; 0.01 is > 6 sd.
				if got := float64(counts[k]) / n; math.Abs(got-w) > 0.01 {
					t.Errorf("%s: %.4f of picks, want %.2f ± 0.01 (counts %v)", k, got, w, counts)
				}
			}
			if len(counts) != len(want) {
				t.Errorf("unexpected kinds: %v", counts)
			}
		})
	}
}

func TestDeterminism(t *testing.T) {
	numbers := []string{"15551234567", "+441234567890", "5550486", "", "1000"}
	seq := func(p *Picker, number string, n int) []Outcome {
		out := make([]Outcome, n)
		for i := range out {
			out[i] = p.Pick(number)
		}
		return out
	}
	mix := mustParse(t, `
seed: 77
rules:
  - outcomes:
      - {weight: 4, kind: answer, ring: {mean: 3s, stddev: 1s}, talk: {min: 1s, max: 60s}, dtmf: "12", dtmf_delay: {min: 0s, max: 5s}}
      - {weight: 2, kind: machine}
      - {weight: 1, kind: busy}
      - {weight: 1, kind: no_answer}
`)

	t.Run("same seed, same sequence", func(t *testing.T) {
		for _, number := range numbers {
			a := seq(mix.MustCompile(), number, 200)
			b := seq(mix.MustCompile(), number, 200)
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("%q: two pickers with the same seed differ", number)
			}
		}
	})

	t.Run("different seed, different sequence", func(t *testing.T) {
		other := *mix
		other.Seed = 78
		a := seq(mix.MustCompile(), "15551234567", 50)
		b := seq(other.MustCompile(), "15551234567", 50)
		if reflect.DeepEqual(a, b) {
			t.Fatal("seeds 77 and 78 gave the same sequence")
		}
	})

	t.Run("numbers get different streams", func(t *testing.T) {
		p := mix.MustCompile()
		if reflect.DeepEqual(seq(p, "15551234567", 50), seq(p, "15551234568", 50)) {
			t.Fatal("two numbers gave the same sequence")
		}
	})

	t.Run("sequence varies within a number", func(t *testing.T) {
		s := seq(mix.MustCompile(), "15551234567", 50)
		distinct := map[Outcome]bool{}
		for _, o := range s {
			distinct[o] = true
		}
		if len(distinct) < 45 {
			t.Fatalf("only %d distinct outcomes in 50 picks", len(distinct))
		}
	})

	t.Run("PickAt equals the n-th Pick", func(t *testing.T) {
		p, q := mix.MustCompile(), mix.MustCompile()
		for i, o := range seq(p, "15551234567", 100) {
			if at := q.PickAt("15551234567", uint64(i)); at != o {
				t.Fatalf("PickAt(%d) = %v, Pick gave %v", i, at, o)
			}
		}
		// PickAt does not advance the counter.
		if q.Pick("15551234567") != q.PickAt("15551234567", 0) {
			t.Fatal("PickAt advanced the counter")
		}
	})

	t.Run("serial interleaving with other numbers does not matter", func(t *testing.T) {
		want := seq(mix.MustCompile(), "A", 300)
		p := mix.MustCompile()
		var got []Outcome
		for i := range 300 {
			for j := range i % 7 {
				p.Pick(fmt.Sprint("B", j))
			}
			p.User("1000")
			got = append(got, p.Pick("A"))
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatal("A's sequence changed when other numbers were picked in between")
		}
	})

	t.Run("concurrent picks of other numbers do not matter", func(t *testing.T) {
		const n = 2000
		for _, sc := range []*Scenario{mix, Default()} {
			want := map[string][]Outcome{}
			for _, number := range numbers {
				want[number] = seq(sc.MustCompile(), number, n)
			}
			p := sc.MustCompile()
			got := map[string][]Outcome{}
			var mu sync.Mutex
			var wg sync.WaitGroup
			for _, number := range numbers { // one goroutine per number, all at once
				wg.Go(func() {
					s := seq(p, number, n)
					mu.Lock()
					got[number] = s
					mu.Unlock()
				})
			}
			for g := range 4 { // and noise on other numbers and users
				wg.Go(func() {
					for i := range n {
						p.Pick(fmt.Sprintf("noise-%d-%d", g, i%13))
						p.User("1001")
					}
				})
			}
			wg.Wait()
			if !reflect.DeepEqual(got, want) {
				t.Fatal("concurrent picks changed a number's sequence")
			}
		}
	})

	t.Run("Reset restarts sequences", func(t *testing.T) {
		p := mix.MustCompile()
		a := seq(p, "15551234567", 10)
		_, _, u := p.User("1000")
		p.Reset()
		if b := seq(p, "15551234567", 10); !reflect.DeepEqual(a, b) {
			t.Fatal("sequence after Reset differs")
		}
		if _, _, v := p.User("1000"); v != u {
			t.Fatal("user sequence after Reset differs")
		}
	})
}

// TestGolden pins concrete values so a change of hashing or seeding (which
// would silently change every reproduced load run) is noticed. If only the Go
// version changed, math/rand/v2's algorithms may have: update the values.
func TestGolden(t *testing.T) {
	p := Default().MustCompile()
	got := []string{
		p.Pick("15551234567").String(),
		p.Pick("15551234567").String(),
		p.PickAt("+4420794600", 3).String(),
		p.Pick("0666").String(),
	}
	_, _, u := p.User("1005")
	got = append(got, u.String())
	want := []string{
		"answer ring=1.051995659s talk=5.032050533s sip=200",
		"answer ring=876.625899ms talk=4.533692851s sip=200",
		"rejected ring=273.586615ms sip=603 cause=CALL_REJECTED",
		"machine ring=1.158636458s talk=30s greeting=4s sip=200",
		"answer ring=343.311759ms talk=0s sip=200",
	}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("value %d = %q, want %q", i, got[i], want[i])
		}
	}
}

func TestCompileCopies(t *testing.T) {
	s := mustParse(t, `rules: [{match: "^1$", kind: busy}]`)
	p := s.MustCompile()
	s.Rules[0].Outcomes[0].Spec.Kind = Answer
	s.Rules[0].Match = "^2$"
	if o := p.Pick("1"); o.Kind != Busy {
		t.Fatalf("Picker saw a change to its source scenario: %v", o)
	}
	sc := p.Scenario()
	sc.Rules[0].Outcomes[0].Spec.Kind = Machine
	if p.Scenario().Rules[0].Outcomes[0].Spec.Kind != Busy {
		t.Fatal("Scenario() returned shared state")
	}
	if p.Scenario().Rules[0].Match != "^1$" {
		t.Fatal("Scenario() lost the match")
	}
}

func TestCompileFillsDefaults(t *testing.T) {
	// A Go-built scenario with gaps: zero users policy, empty kinds.
	s := &Scenario{Rules: []Rule{{Match: "7$", Outcomes: []Weighted{{Weight: 1}}}}}
	p := s.MustCompile()
	sc := p.Scenario()
	if sc.Users.Registered != DefaultRegistered || sc.Users.Known != DefaultKnown || sc.Users.Answer != DefaultUsers().Answer {
		t.Errorf("users = %+v", sc.Users)
	}
	if got := sc.Rules[0].Outcomes[0].Spec; got != (OutcomeSpec{}).WithDefaults() {
		t.Errorf("spec = %+v", got)
	}
	if known, registered, _ := p.User("1010"); !known || !registered {
		t.Error("default registered range not applied")
	}
}

func TestMatcherFastPaths(t *testing.T) {
	patterns := []struct {
		expr string
		op   matchOp
	}{
		{"", matchAll},
		{".*", matchAll},
		{"(?s).*", matchAll},
		{"486$", matchSuffix},
		{"0000$", matchSuffix},
		{`^\+44`, matchPrefix},
		{"^1000$", matchExact},
		{"555", matchContains},
		{"^$", matchRegexp},
		{"(?i)abc$", matchRegexp},
		{"(?m)486$", matchRegexp},
		{"486$|^1", matchRegexp},
		{"^10(0[0-9]|1[0-9])$", matchRegexp},
		{"4.6$", matchRegexp},
		{`\d{3}486$`, matchRegexp},
		{".+", matchRegexp},
		{"^.*$", matchRegexp},
	}
	inputs := []string{"", "486", "1486", "4861", "+441234", "44", "1000", "10000", "01000", "5551", "abc", "xABC", "1\n486", "486\n", "4x6", "1234486", "+"}
	for _, pt := range patterns {
		t.Run(pt.expr, func(t *testing.T) {
			m, err := newMatcher(pt.expr)
			if err != nil {
				t.Fatal(err)
			}
			if m.op != pt.op {
				t.Errorf("op = %d, want %d", m.op, pt.op)
			}
			re := regexp.MustCompile(pt.expr)
			for _, in := range inputs {
				if got, want := m.match(in), re.MatchString(in); got != want {
					t.Errorf("match(%q) = %v, regexp says %v", in, got, want)
				}
			}
		})
	}
}
