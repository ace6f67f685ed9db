// Package pacingsim runs the dialer's pacing (package pacing, the code the
// engine runs) against a discrete-event model of a contact centre on a
// virtual clock: agents, their calls, wrap-ups and the dials' outcomes, so
// that a shift of eight hours takes well under a second.
//
// The model is the issue's scenario: a dial reaches a person with
// probability P, after 4-20 s of ringing; otherwise it ends after 1-25 s;
// talk time is lognormal; after each call the agent wraps up; a person who
// answers waits up to AgentWait for an agent and is abandoned (the
// safe-harbour message) if none is free by then. The pacer is asked every
// Tick, as the engine asks it every RINGBACK_DIALER_TICK, with the same
// Input the engine builds (pacing.Input) and an Estimator fed as the
// engine feeds it.
package pacingsim

import (
	"container/heap"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/ringback/ringback/services/dialer/pacing"
)

// Scenario is one run.
type Scenario struct {
	Agents int
	// P is the probability that a dial reaches a person; PAfter from
	// ChangeAt on (0: no change).
	P, PAfter float64
	ChangeAt  time.Duration
	// TalkMean and TalkCV: the lognormal talk time.
	TalkMean time.Duration
	TalkCV   float64
	Wrap     time.Duration
	// LiveRing: a person answers after [min, max]; FailRing: a dial that
	// does not reach one ends after [min, max].
	LiveRing, FailRing [2]time.Duration
	Shift              time.Duration
	Seed               uint64
	Pacing             pacing.Config
	// Tick is how often the pacer is asked (the engine's tick).
	Tick time.Duration
	// ConnectDelay is the time from a person's answer to being put with a
	// free agent (the event, the router and the transfer).
	ConnectDelay time.Duration
	// ToldP tells the pacer the true P at every decision in place of the
	// estimate's: a baseline that is not a pacer, to tell the pacing's own
	// reaction to a change of P from the time the estimate takes to see it.
	ToldP bool
	// Adapt, when set, dials by VICIdial's adaptive method in place of
	// Pacing: the peer baseline (see Adapt).
	Adapt *Adapt
	// FastWindows, if set, replace the estimator's (see
	// pacing.Estimator.SetFastWindows, which must take them).
	FastWindows []pacing.FastWindow
}

// Issue returns the scenario the issue specifies, for n agents and
// probability p.
func Issue(agents int, p float64, seed uint64, cfg pacing.Config) Scenario {
	return Scenario{
		Agents: agents, P: p, TalkMean: 120 * time.Second, TalkCV: 1, Wrap: 10 * time.Second,
		LiveRing: [2]time.Duration{4 * time.Second, 20 * time.Second},
		FailRing: [2]time.Duration{1 * time.Second, 25 * time.Second},
		Shift:    8 * time.Hour, Seed: seed, Pacing: cfg, Tick: 200 * time.Millisecond,
	}
}

// Result is what a run measured.
type Result struct {
	// Occupancy is the agents' talk time over their time in the shift.
	Occupancy float64
	// Abandonment is abandoned calls over live answers.
	Abandonment float64
	Dials       int64
	Live        int64
	Abandoned   int64
	// Level is the mean dial level (calls ringing per agent).
	Level float64
	// Wait is the mean time a connected person waited for an agent.
	Wait time.Duration
	// LimitedShare is the share of decisions taken with the budget spent.
	LimitedShare float64
	// React (with a change of P): how long after the change the dial level
	// (its 5-second average) was half way from its level before to its
	// level after (see reaction); -1: never.
	React time.Duration
	// LevelBefore and LevelAfter are those levels.
	LevelBefore, LevelAfter float64
	// DialRate is the dials per second the pacer placed in the 15 s after
	// the change: what the evidence of the change rests on (DropEvidence).
	DialRate float64
	// Step (with a change of P) is the dial level at every tick from
	// StepBefore before the change to StepAfter after it, for the step
	// response over many runs (StepResponse).
	Step []float64
	// WorstDay is the highest the abandonment rate so far reached after
	// its first 100 live answers.
	WorstDay float64
	// WorstAt is when it did.
	WorstAt time.Duration
	// Released is the calls the pacer hung up unanswered; ReleasedLive,
	// those of them a person would have answered (not in Live).
	Released, ReleasedLive int64
}

type evKind uint8

const (
	evDial evKind = iota // a dial's outcome
	evTalkEnd
	evWrapEnd
	evDeadline
	evConnect
)

type event struct {
	at   time.Duration
	kind evKind
	id   int // dial or agent
	seq  int
}

type events []event

func (h events) Len() int { return len(h) }
func (h events) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}
func (h events) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *events) Push(x any)   { *h = append(*h, x.(event)) }
func (h *events) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

type agentState uint8

const (
	free agentState = iota
	talking
	wrapping
	reserved // a connect is on its way
)

type agent struct {
	state     agentState
	since     time.Duration // free since / talking since
	wrapUntil time.Duration
}

type dial struct {
	placed time.Duration
	live   bool
	idx    int // in ringing, -1 once answered or failed
	// answered: when the person answered (for the wait).
	answered time.Duration
	deadline time.Duration
	waiting  bool
	// released: the pacer hung it up unanswered (its outcome event is
	// void).
	released bool
	// abandoned: answered, and no agent within the wait.
	abandoned bool
}

type sim struct {
	sc      Scenario
	rng     *rand.Rand
	now     time.Duration
	q       events
	seq     int
	agents  []agent
	dials   []dial
	ringing []int // dial ids ringing
	waiting []int // dial ids answered, no agent yet (FIFO)
	est     *pacing.Estimator
	peer    *adapt // Scenario.Adapt's state
	base    time.Time
	talkMu  float64
	talkSig float64

	talkTotal          time.Duration
	live, abandoned    int64
	waitSum            time.Duration
	connected          int64
	decisions, limited int64
	levelSum           float64
	levelTrace         []float64 // per tick
	worst              float64
	worstAt            time.Duration
	released, relLive  int64
}

// Run runs a scenario.
func Run(sc Scenario) Result {
	if sc.Tick <= 0 {
		sc.Tick = 200 * time.Millisecond
	}
	s := &sim{sc: sc, rng: rand.New(rand.NewPCG(sc.Seed, uint64(sc.Agents)<<32|uint64(sc.P*1000))),
		agents: make([]agent, sc.Agents), est: pacing.NewEstimator(), base: time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)}
	if sc.Adapt != nil {
		s.peer = newAdapt(*sc.Adapt)
	}
	if sc.FastWindows != nil {
		if err := s.est.SetFastWindows(sc.FastWindows); err != nil {
			panic(err)
		}
	}
	s.talkSig = math.Sqrt(math.Log(1 + sc.TalkCV*sc.TalkCV))
	s.talkMu = math.Log(sc.TalkMean.Seconds()) - s.talkSig*s.talkSig/2
	for t := time.Duration(0); t < sc.Shift; t += sc.Tick {
		s.advance(t)
		s.decide()
	}
	s.advance(sc.Shift)
	// Calls still talking at the end count up to the end.
	for i := range s.agents {
		if s.agents[i].state == talking {
			s.talkTotal += sc.Shift - s.agents[i].since
		}
	}
	r := Result{Dials: int64(len(s.dials)), Live: s.live, Abandoned: s.abandoned, WorstDay: s.worst, WorstAt: s.worstAt,
		Released: s.released, ReleasedLive: s.relLive}
	r.Occupancy = s.talkTotal.Seconds() / (float64(sc.Agents) * sc.Shift.Seconds())
	if s.live > 0 {
		r.Abandonment = float64(s.abandoned) / float64(s.live)
	}
	if s.decisions > 0 {
		r.Level = s.levelSum / float64(s.decisions)
		r.LimitedShare = float64(s.limited) / float64(s.decisions)
	}
	if s.connected > 0 {
		r.Wait = s.waitSum / time.Duration(s.connected)
	}
	r.React, r.LevelBefore, r.LevelAfter = s.reaction()
	if sc.PAfter > 0 {
		n := 0
		for _, d := range s.dials {
			if d.placed >= sc.ChangeAt && d.placed < sc.ChangeAt+ReactTarget {
				n++
			}
		}
		r.DialRate = float64(n) / ReactTarget.Seconds()
		from := max(0, int((sc.ChangeAt-StepBefore)/sc.Tick))
		to := min(len(s.levelTrace), int((sc.ChangeAt+StepAfter)/sc.Tick))
		if from < to {
			r.Step = slices.Clone(s.levelTrace[from:to])
		}
	}
	return r
}

func (s *sim) at(d time.Duration) time.Time { return s.base.Add(d) }

func (s *sim) push(at time.Duration, k evKind, id int) {
	s.seq++
	heap.Push(&s.q, event{at: at, kind: k, id: id, seq: s.seq})
}

func (s *sim) uniform(r [2]time.Duration) time.Duration {
	return r[0] + time.Duration(s.rng.Float64()*float64(r[1]-r[0]))
}

func (s *sim) p() float64 {
	if s.sc.PAfter > 0 && s.now >= s.sc.ChangeAt {
		return s.sc.PAfter
	}
	return s.sc.P
}

// advance handles every event up to t.
func (s *sim) advance(t time.Duration) {
	for len(s.q) > 0 && s.q[0].at <= t {
		e := heap.Pop(&s.q).(event)
		s.now = e.at
		switch e.kind {
		case evDial:
			if !s.dials[e.id].released {
				s.outcome(e.id)
			}
		case evConnect:
			s.startTalk(e.id)
		case evTalkEnd:
			a := &s.agents[e.id]
			s.talkTotal += s.now - a.since
			s.est.AddTalk(s.at(a.since), s.now-a.since)
			a.state, a.wrapUntil = wrapping, s.now+s.sc.Wrap
			s.push(a.wrapUntil, evWrapEnd, e.id)
		case evWrapEnd:
			a := &s.agents[e.id]
			a.state, a.since = free, s.now
			s.serveWaiting()
		case evDeadline:
			d := &s.dials[e.id]
			if d.waiting {
				d.waiting = false
				d.abandoned = true
				s.removeWaiting(e.id)
				s.abandoned++
			}
		}
	}
	s.now = t
}

// outcome: a dial ends or a person answers.
func (s *sim) outcome(id int) {
	d := &s.dials[id]
	s.removeRinging(id)
	s.est.AddOutcome(pacing.Outcome{Placed: s.at(d.placed), Live: d.live, Delay: s.now - d.placed})
	if !d.live {
		return
	}
	s.live++
	d.answered = s.now
	if s.live >= 100 {
		if r := float64(s.abandoned) / float64(s.live); r > s.worst {
			s.worst, s.worstAt = r, s.now
		}
	}
	if a := s.longestIdle(); a >= 0 {
		s.connect(id, a)
		return
	}
	d.waiting, d.deadline = true, s.now+s.sc.AgentWait()
	s.waiting = append(s.waiting, id)
	s.push(d.deadline, evDeadline, id)
}

// AgentWait is the scenario's wait, the pacing's.
func (sc Scenario) AgentWait() time.Duration {
	if sc.Pacing.AgentWait > 0 {
		return sc.Pacing.AgentWait
	}
	return pacing.DefaultAgentWait
}

func (s *sim) longestIdle() int {
	best := -1
	for i := range s.agents {
		if s.agents[i].state == free && (best < 0 || s.agents[i].since < s.agents[best].since) {
			best = i
		}
	}
	return best
}

// connect gives dial id to agent a (after the connect delay).
func (s *sim) connect(id, a int) {
	s.agents[a].state = reserved
	s.waitSum += s.now - s.dials[id].answered
	s.connected++
	// The agent's index rides in the event; the dial's id is not needed
	// any more.
	s.push(s.now+s.sc.ConnectDelay, evConnect, a)
}

func (s *sim) startTalk(a int) {
	ag := &s.agents[a]
	ag.state, ag.since = talking, s.now
	talk := time.Duration(math.Exp(s.talkMu+s.talkSig*s.rng.NormFloat64()) * float64(time.Second))
	s.push(s.now+talk, evTalkEnd, a)
}

func (s *sim) serveWaiting() {
	for len(s.waiting) > 0 {
		a := s.longestIdle()
		if a < 0 {
			return
		}
		id := s.waiting[0]
		s.waiting = s.waiting[1:]
		s.dials[id].waiting = false
		s.connect(id, a)
	}
}

// release hangs up a ringing call: the estimator learns that nobody
// answered it so far.
func (s *sim) release(id int) {
	d := &s.dials[id]
	s.removeRinging(id)
	d.released = true
	s.released++
	if d.live {
		s.relLive++
	}
	s.est.AddOutcome(pacing.Outcome{Placed: s.at(d.placed), Delay: s.now - d.placed, Released: true})
}

func (s *sim) removeWaiting(id int) {
	for i, w := range s.waiting {
		if w == id {
			s.waiting = append(s.waiting[:i], s.waiting[i+1:]...)
			return
		}
	}
}

func (s *sim) removeRinging(id int) {
	i := s.dials[id].idx
	last := s.ringing[len(s.ringing)-1]
	s.ringing[i] = last
	s.dials[last].idx = i
	s.ringing = s.ringing[:len(s.ringing)-1]
	s.dials[id].idx = -1
}

// input is what the engine would give the pacer now.
func (s *sim) input() pacing.Input {
	in := pacing.Input{Now: s.at(s.now), Active: s.sc.Agents, Wrap: s.sc.Wrap, Waiting: len(s.waiting),
		Day: pacing.Window{Answered: s.live, Abandoned: s.abandoned}, Shift: s.sc.Shift, ShiftLeft: s.sc.Shift - s.now}
	in.Month = in.Day
	for i := range s.agents {
		a := &s.agents[i]
		switch a.state {
		case free:
			in.Ready++
		case talking, reserved:
			in.OnCallSince = append(in.OnCallSince, s.at(a.since))
		case wrapping:
			in.WrapUpEnds = append(in.WrapUpEnds, s.at(a.wrapUntil))
		}
	}
	in.Ringing = make([]time.Time, len(s.ringing))
	for i, id := range s.ringing {
		in.Ringing[i] = s.at(s.dials[id].placed)
	}
	in.Live = len(s.ringing) + len(s.waiting) + len(in.OnCallSince)
	return in
}

func (s *sim) decide() {
	var n int
	if s.peer != nil {
		n = s.peer.dials(s)
	} else {
		n = s.pace()
	}
	for range n {
		id := len(s.dials)
		live := s.rng.Float64() < s.p()
		var delay time.Duration
		if live {
			delay = s.uniform(s.sc.LiveRing)
		} else {
			delay = s.uniform(s.sc.FailRing)
		}
		s.dials = append(s.dials, dial{placed: s.now, live: live, idx: len(s.ringing)})
		s.ringing = append(s.ringing, id)
		s.push(s.now+delay, evDial, id)
	}
	s.decisions++
	level := float64(len(s.ringing)) / float64(s.sc.Agents)
	s.levelSum += level
	s.levelTrace = append(s.levelTrace, level)
}

// pace asks the pacing, releases the calls it releases, and returns the
// calls it places.
func (s *sim) pace() int {
	in := s.input()
	m := s.est.Model(in.Now, in.Ringing, in.OnCallSince)
	if s.sc.ToldP {
		m.P = s.p()
	}
	d := pacing.Decide(s.sc.Pacing, in, m)
	if d.Limited {
		s.limited++
	}
	ids := make([]int, len(d.Release))
	for i, j := range d.Release {
		ids[i] = s.ringing[j] // before any is removed: removal reorders
	}
	for _, id := range ids {
		s.release(id)
	}
	return d.Dials
}

// ReactTarget is how soon the issue wants the dial level to react to a
// change of p.
const ReactTarget = 15 * time.Second

// reaction measures how fast the dial level moved after a change of P:
// when its 5-second average was half way from its level before the change
// (the mean of the ten minutes before) to its level after (the mean of
// minutes 5-15 after); -1 if it never got there.
func (s *sim) reaction() (half time.Duration, before, after float64) {
	if s.sc.PAfter <= 0 {
		return 0, 0, 0
	}
	tick := s.sc.Tick
	win := int(5 * time.Second / tick)
	idx := func(d time.Duration) int { return min(len(s.levelTrace), max(0, int(d/tick))) }
	mean := func(a, b int) float64 {
		if b <= a {
			return 0
		}
		sum := 0.0
		for _, v := range s.levelTrace[a:b] {
			sum += v
		}
		return sum / float64(b-a)
	}
	c := s.sc.ChangeAt
	before = mean(idx(c-10*time.Minute), idx(c))
	after = mean(idx(c+5*time.Minute), idx(c+15*time.Minute))
	mid := (before + after) / 2
	for i := idx(c) + win; i <= len(s.levelTrace); i++ {
		v := mean(i-win, i)
		if (after > before && v >= mid) || (after < before && v <= mid) {
			return time.Duration(i)*tick - c, before, after
		}
	}
	return -1, before, after
}
