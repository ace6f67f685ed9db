package scenario

import (
	"math/rand/v2"
	"regexp"
	"regexp/syntax"
	"strings"
	"sync"
)

// Picker draws outcomes from a compiled Scenario. It is safe for concurrent
// use.
//
// Pick is deterministic in (Seed, number, n), where n counts the earlier
// Picks of the same number on this Picker: the sequence of outcomes for one
// number does not depend on picks of other numbers, however they interleave.
// (Two goroutines picking the same number at once still race for n.) The
// per-number counters live as long as the Picker; Reset clears them.
type Picker struct {
	sc       *Scenario // normalized deep copy
	seed     uint64
	rules    []compiledRule
	fallback compiledRule

	known, registered matcher
	user              OutcomeSpec

	numbers, exts counters
	rngs          sync.Pool // of *rng
}

type compiledRule struct {
	match matcher
	specs []OutcomeSpec // defaults filled
	cum   []uint64      // cumulative weights; cum[len-1] is the total
}

// Compile validates s (see Validate) and returns a Picker for it. The Picker
// works on its own copy: later changes to s do not affect it.
func (s *Scenario) Compile() (*Picker, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	n := s.normalized()
	p := &Picker{sc: n, seed: n.Seed, user: n.Users.Answer}
	p.rngs.New = func() any {
		g := &rng{}
		g.r = rand.New(&g.src)
		return g
	}
	p.rules = make([]compiledRule, len(n.Rules))
	for i, r := range n.Rules {
		m, err := newMatcher(r.Match)
		if err != nil { // unreachable: Validate compiled it
			return nil, &Error{Path: "rules", Msg: err.Error()}
		}
		cr := compiledRule{match: m}
		var total uint64
		for _, w := range r.Outcomes {
			total += uint64(w.Weight)
			cr.specs = append(cr.specs, w.Spec)
			cr.cum = append(cr.cum, total)
		}
		p.rules[i] = cr
	}
	p.fallback = compiledRule{match: matcher{op: matchAll}, specs: []OutcomeSpec{catchAll}, cum: []uint64{1}}
	var err error
	if p.known, err = newMatcher(n.Users.Known); err != nil {
		return nil, &Error{Path: "users.known", Msg: err.Error()}
	}
	if p.registered, err = newMatcher(n.Users.Registered); err != nil {
		return nil, &Error{Path: "users.registered", Msg: err.Error()}
	}
	return p, nil
}

// MustCompile is Compile that panics on error; for tests and fixed scenarios.
func (s *Scenario) MustCompile() *Picker {
	p, err := s.Compile()
	if err != nil {
		panic(err)
	}
	return p
}

// Scenario returns a copy of the scenario p was compiled from, with every
// default filled in.
func (p *Picker) Scenario() *Scenario { return p.sc.normalized() }

// Pick returns the far end's behaviour for the next call attempt to number
// (the number as dialed). It advances number's counter n; see Picker.
func (p *Picker) Pick(number string) Outcome {
	h := hashString(number)
	return p.pick(number, h, p.numbers.next(number, h))
}

// PickAt returns the outcome of the n-th (0-based) Pick of number without
// touching the counter: PickAt(x, n) equals what the n-th Pick(x) returns.
func (p *Picker) PickAt(number string, n uint64) Outcome {
	return p.pick(number, hashString(number), n)
}

// Rule returns the index of the rule that decides number, or -1 when no
// rule matches and the Default catch-all applies.
func (p *Picker) Rule(number string) int {
	for i := range p.rules {
		if p.rules[i].match.match(number) {
			return i
		}
	}
	return -1
}

func (p *Picker) pick(number string, h, n uint64) Outcome {
	cr := &p.fallback
	for i := range p.rules {
		if p.rules[i].match.match(number) {
			cr = &p.rules[i]
			break
		}
	}
	g := p.rngs.Get().(*rng)
	g.seed(p.seed, domainNumber, h, n)
	spec := &cr.specs[0]
	if len(cr.specs) > 1 {
		x := g.r.Uint64N(cr.cum[len(cr.cum)-1])
		i := 0
		for x >= cr.cum[i] {
			i++
		}
		spec = &cr.specs[i]
	}
	o := spec.Sample(g.r)
	p.rngs.Put(g)
	return o
}

// User reports how user/<ext> behaves for the next call to it: whether ext is
// in the directory (known), whether it is registered, and, when registered,
// the phone's behaviour. Otherwise o carries only Cause, the hangup cause
// FreeSWITCH fails the originate with without sending any INVITE
// ("SUBSCRIBER_ABSENT" or "USER_NOT_REGISTERED"), and an empty Kind.
//
// Only calls to registered extensions advance the extension's counter, so the
// n-th call to a registered ext returns UserAt(ext, n). Whether the user is
// already in a call (UserPolicy.BusyWhenInCall) is the simulator's business.
func (p *Picker) User(ext string) (known, registered bool, o Outcome) {
	known, registered = p.userState(ext)
	if !registered {
		return known, false, unreachableUser(known)
	}
	h := hashString(ext)
	return true, true, p.sampleUser(h, p.exts.next(ext, h))
}

// UserAt is User for the n-th (0-based) call to ext, without touching the
// counter.
func (p *Picker) UserAt(ext string, n uint64) (known, registered bool, o Outcome) {
	known, registered = p.userState(ext)
	if !registered {
		return known, false, unreachableUser(known)
	}
	return true, true, p.sampleUser(hashString(ext), n)
}

func (p *Picker) userState(ext string) (known, registered bool) {
	known = p.known.match(ext)
	return known, known && p.registered.match(ext)
}

func unreachableUser(known bool) Outcome {
	if known {
		return Outcome{Cause: "USER_NOT_REGISTERED"}
	}
	return Outcome{Cause: "SUBSCRIBER_ABSENT"}
}

func (p *Picker) sampleUser(h, n uint64) Outcome {
	g := p.rngs.Get().(*rng)
	g.seed(p.seed, domainUser, h, n)
	o := p.user.Sample(g.r)
	p.rngs.Put(g)
	return o
}

// Reset forgets every per-number and per-extension counter: the next Pick of
// any number is its 0th again.
func (p *Picker) Reset() {
	p.numbers.reset()
	p.exts.reset()
}

// ---- randomness ----

// Domain separators so a number and an extension with the same digits draw
// from unrelated streams.
const (
	domainNumber uint64 = 0x6e756d6265720000 // "number"
	domainUser   uint64 = 0x7573657200000000 // "user"
)

type rng struct {
	src rand.PCG
	r   *rand.Rand
}

// seed points g at the stream for (seed, domain, key hash h, n).
func (g *rng) seed(seed, domain, h, n uint64) {
	a := mix64(seed ^ mix64(h^domain))
	b := mix64(a ^ mix64(n+0x9e3779b97f4a7c15))
	g.src.Seed(a, b)
}

// hashString is 64-bit FNV-1a: stable across runs and platforms (unlike
// hash/maphash), so seeds reproduce.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// mix64 is the SplitMix64 finalizer.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// ---- per-key counters ----

const counterShards = 64

type counters struct {
	shards [counterShards]counterShard
}

type counterShard struct {
	mu sync.Mutex
	m  map[string]uint64
	_  [48]byte // pad to 64 bytes: shards on separate cache lines
}

// next returns key's counter and increments it.
func (c *counters) next(key string, h uint64) uint64 {
	s := &c.shards[h>>58] // top 6 bits: 64 shards
	s.mu.Lock()
	n, ok := s.m[key]
	if ok {
		s.m[key] = n + 1
	} else {
		if s.m == nil {
			s.m = make(map[string]uint64)
		}
		s.m[strings.Clone(key)] = 1
	}
	s.mu.Unlock()
	return n
}

func (c *counters) reset() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		s.m = nil
		s.mu.Unlock()
	}
}

// ---- matching ----

type matchOp uint8

const (
	matchRegexp   matchOp = iota // general case
	matchAll                     // "", ".*"
	matchSuffix                  // "lit$"
	matchPrefix                  // "^lit"
	matchExact                   // "^lit$"
	matchContains                // "lit"
)

// matcher is a regexp with fast paths for the literal shapes scenario files
// mostly use; it matches exactly what regexp.MatchString would.
type matcher struct {
	op  matchOp
	lit string
	re  *regexp.Regexp
}

func newMatcher(expr string) (matcher, error) {
	re, err := regexp.Compile(expr)
	if err != nil {
		return matcher{}, err
	}
	m := matcher{op: matchRegexp, re: re}
	tree, err := syntax.Parse(expr, syntax.Perl) // the flags regexp.Compile uses
	if err != nil {
		return m, nil
	}
	tree = tree.Simplify()
	literal := func(t *syntax.Regexp) (string, bool) {
		if t.Op != syntax.OpLiteral || t.Flags&syntax.FoldCase != 0 {
			return "", false
		}
		return string(t.Rune), true
	}
	switch t := tree; t.Op {
	case syntax.OpEmptyMatch:
		return matcher{op: matchAll}, nil
	case syntax.OpStar:
		if t.Sub[0].Op == syntax.OpAnyChar || t.Sub[0].Op == syntax.OpAnyCharNotNL {
			return matcher{op: matchAll}, nil // unanchored and matches "": always matches
		}
	case syntax.OpLiteral:
		if lit, ok := literal(t); ok {
			return matcher{op: matchContains, lit: lit}, nil
		}
	case syntax.OpConcat:
		subs := t.Sub
		begin := subs[0].Op == syntax.OpBeginText
		end := subs[len(subs)-1].Op == syntax.OpEndText
		if begin {
			subs = subs[1:]
		}
		if end && len(subs) > 0 {
			subs = subs[:len(subs)-1]
		}
		if len(subs) == 1 && (begin || end) {
			if lit, ok := literal(subs[0]); ok {
				switch {
				case begin && end:
					return matcher{op: matchExact, lit: lit}, nil
				case begin:
					return matcher{op: matchPrefix, lit: lit}, nil
				default:
					return matcher{op: matchSuffix, lit: lit}, nil
				}
			}
		}
	}
	return m, nil
}

func (m *matcher) match(s string) bool {
	switch m.op {
	case matchAll:
		return true
	case matchSuffix:
		return strings.HasSuffix(s, m.lit)
	case matchPrefix:
		return strings.HasPrefix(s, m.lit)
	case matchExact:
		return s == m.lit
	case matchContains:
		return strings.Contains(s, m.lit)
	}
	return m.re.MatchString(s)
}
