package scenario

import (
	"fmt"
	"testing"
)

// BenchmarkPick measures Pick on the originate path (target < 1 µs, 0 allocs
// once a number has been seen).
func BenchmarkPick(b *testing.B) {
	regexpHeavy := &Scenario{Seed: 3, Rules: []Rule{
		{Match: `^\+?1?900[0-9]{7}$`, Outcomes: []Weighted{{Weight: 1, Spec: OutcomeSpec{Kind: Rejected}}}},
		{Match: `^\+44(20|161)[0-9]+$`, Outcomes: []Weighted{{Weight: 3, Spec: OutcomeSpec{Kind: Answer}}, {Weight: 1, Spec: OutcomeSpec{Kind: Busy}}}},
		{Match: `(486|600)$`, Outcomes: []Weighted{{Weight: 1, Spec: OutcomeSpec{Kind: Busy}}}},
		{Match: `^[2-9][0-9]{9}$`, Outcomes: []Weighted{
			{Weight: 60, Spec: OutcomeSpec{Kind: Answer, Ring: Normal(5e9, 2e9), Talk: Normal(60e9, 30e9)}},
			{Weight: 15, Spec: OutcomeSpec{Kind: NoAnswer}},
			{Weight: 10, Spec: OutcomeSpec{Kind: Busy}},
			{Weight: 10, Spec: OutcomeSpec{Kind: Machine}},
			{Weight: 5, Spec: OutcomeSpec{Kind: Congestion}},
		}},
	}}
	cases := []struct {
		name    string
		s       *Scenario
		numbers []string
	}{
		{"default/catch-all", Default(), []string{"15551234567"}},
		{"default/busy", Default(), []string{"15551230486"}},
		{"default/mixed", Default(), []string{"15551234567", "15551230486", "5550095", "15550000", "+441234560666", "0183"}},
		{"regexp/weighted", regexpHeavy, []string{"2125551234", "3125559876"}},
		{"regexp/no-match", regexpHeavy, []string{"+33123456789"}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			p := c.s.MustCompile()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				p.Pick(c.numbers[i%len(c.numbers)])
				i++
			}
		})
	}
	b.Run("default/parallel", func(b *testing.B) {
		p := Default().MustCompile()
		numbers := make([]string, 1024)
		for i := range numbers {
			numbers[i] = fmt.Sprintf("1555%07d", i)
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				p.Pick(numbers[i%len(numbers)])
				i++
			}
		})
	})
}

// BenchmarkUser measures User for a registered extension.
func BenchmarkUser(b *testing.B) {
	p := Default().MustCompile()
	b.ReportAllocs()
	for b.Loop() {
		p.User("1005")
	}
}
