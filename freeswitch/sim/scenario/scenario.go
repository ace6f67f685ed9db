package scenario

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"time"
)

// Kind names what the far end does with a call attempt.
type Kind string

// The kinds of far-end behaviour. For failures, the comment gives the final
// SIP response and the hangup cause FreeSWITCH reports for it by default.
const (
	Answer      Kind = "answer"      // 200 OK after RingFor; far end hangs up after TalkFor (0 = never, stays up until we hang up)
	Busy        Kind = "busy"        // 486 -> USER_BUSY
	NoAnswer    Kind = "no_answer"   // 180 forever; the originate timeout ends it -> NO_ANSWER (set by FreeSWITCH)
	Congestion  Kind = "congestion"  // 503 -> NORMAL_TEMPORARY_FAILURE
	Unallocated Kind = "unallocated" // 404 -> UNALLOCATED_NUMBER
	Unavailable Kind = "unavailable" // 480 -> NO_USER_RESPONSE
	Rejected    Kind = "rejected"    // 603 -> CALL_REJECTED
	Machine     Kind = "machine"     // answers like Answer; it is an answering machine: greeting of MachineGreeting, then a beep
)

var allKinds = []Kind{Answer, Busy, NoAnswer, Congestion, Unallocated, Unavailable, Rejected, Machine}

// Kinds returns every valid Kind, in declaration order.
func Kinds() []Kind { return append([]Kind(nil), allKinds...) }

// Valid reports whether k is one of the declared kinds.
func (k Kind) Valid() bool {
	for _, v := range allKinds {
		if k == v {
			return true
		}
	}
	return false
}

// Answers reports whether the far end answers the call (Answer, Machine).
func (k Kind) Answers() bool { return k == Answer || k == Machine }

// Fails reports whether the far end ends the attempt with a final failure
// response of its own (Busy, Congestion, Unallocated, Unavailable, Rejected).
// NoAnswer neither answers nor fails: FreeSWITCH's originate timeout ends it.
func (k Kind) Fails() bool { return k.Valid() && !k.Answers() && k != NoAnswer }

// DefaultSIPStatus is the final SIP status k sends unless a spec overrides it:
// 200 for Answer and Machine, 486, 503, 404, 480, 603 for the failures, and 0
// (no final response of its own) for NoAnswer and invalid kinds.
func (k Kind) DefaultSIPStatus() int {
	switch k {
	case Answer, Machine:
		return 200
	case Busy:
		return 486
	case Congestion:
		return 503
	case Unallocated:
		return 404
	case Unavailable:
		return 480
	case Rejected:
		return 603
	}
	return 0
}

// DefaultCause is the FreeSWITCH hangup cause for a failure kind's default
// SIP status ("USER_BUSY", ...); "" for Answer, Machine, NoAnswer.
func (k Kind) DefaultCause() string {
	if !k.Fails() {
		return ""
	}
	return CauseForSIPStatus(k.DefaultSIPStatus())
}

// DTMF sources, as FreeSWITCH reports them in the DTMF event's DTMF-Source.
const (
	DTMFSourceRTP      = "RTP"      // RFC 2833 telephone-events (the default)
	DTMFSourceEndpoint = "ENDPOINT" // SIP INFO
)

// Outcome is the far end's complete behaviour for one call attempt.
type Outcome struct {
	Kind            Kind
	RingFor         time.Duration // INVITE -> 180 (or 183 with EarlyMedia) -> final response (answer or failure). For NoAnswer unused (0).
	TalkFor         time.Duration // after answer until the far end sends BYE; 0 = stays up
	EarlyMedia      bool          // sends 183 with SDP before the final response (FreeSWITCH: CHANNEL_PROGRESS_MEDIA)
	DTMF            string        // digits the far end presses after answer ("" none); chars 0-9*#A-D
	DTMFDelay       time.Duration // answer -> first digit
	DTMFInterval    time.Duration // between digits
	DTMFSource      string        // "RTP" (RFC 2833, default) or "ENDPOINT" (SIP INFO), as FreeSWITCH reports DTMF-Source, or a comma-separated list per digit (the last repeats); "" when DTMF is ""
	MachineGreeting time.Duration // Machine: greeting length (from answer) before the beep
	SIPStatus       int           // final SIP status: 200 for Answer/Machine, 486, 503, 404, 480, 603, or a custom one; 0 for NoAnswer
	Cause           string        // FreeSWITCH hangup cause name for failures ("USER_BUSY", ...), "" for Answer/Machine and NoAnswer
}

// String is a compact description for logs and test failures.
func (o Outcome) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s ring=%s", o.Kind, o.RingFor)
	if o.Kind.Answers() {
		fmt.Fprintf(&b, " talk=%s", o.TalkFor)
	}
	if o.EarlyMedia {
		b.WriteString(" early_media")
	}
	if o.Kind == Machine {
		fmt.Fprintf(&b, " greeting=%s", o.MachineGreeting)
	}
	if o.DTMF != "" {
		fmt.Fprintf(&b, " dtmf=%q/%s delay=%s interval=%s", o.DTMF, o.DTMFSource, o.DTMFDelay, o.DTMFInterval)
	}
	if o.SIPStatus != 0 {
		fmt.Fprintf(&b, " sip=%d", o.SIPStatus)
	}
	if o.Cause != "" {
		fmt.Fprintf(&b, " cause=%s", o.Cause)
	}
	return b.String()
}

// OutcomeSpec is an Outcome with distributions instead of durations. Fields
// left at their zero value take per-kind defaults (see WithDefaults); an
// empty Kind means Answer.
type OutcomeSpec struct {
	Kind            Kind   `yaml:"kind"`
	Ring            Dist   `yaml:"ring,omitempty"`             // INVITE -> final response; not allowed for no_answer
	Talk            Dist   `yaml:"talk,omitempty"`             // answer -> far-end BYE; Fixed(0) = stays up; answer/machine only
	EarlyMedia      bool   `yaml:"early_media,omitempty"`      // 183 with SDP before the final response
	DTMF            string `yaml:"dtmf,omitempty"`             // digits pressed after answer; answer/machine only
	DTMFDelay       Dist   `yaml:"dtmf_delay,omitempty"`       // answer -> first digit; needs DTMF
	DTMFInterval    Dist   `yaml:"dtmf_interval,omitempty"`    // between digits (sampled once per call); needs DTMF
	DTMFSource      string `yaml:"dtmf_source,omitempty"`      // "RTP" or "ENDPOINT" (case-insensitive); needs DTMF
	MachineGreeting Dist   `yaml:"machine_greeting,omitempty"` // greeting before the beep; machine only
	SIPStatus       int    `yaml:"sip_status,omitempty"`       // 2xx for answer/machine, 400-699 for failures, not allowed for no_answer
	Cause           string `yaml:"cause,omitempty"`            // FreeSWITCH cause name; failures only; default derived from SIPStatus
}

// Default durations filled in by WithDefaults and for users.
var (
	defaultAnswerRing      = Uniform(800*time.Millisecond, 1200*time.Millisecond) // Answer and Machine
	defaultAnswerTalk      = Uniform(4*time.Second, 6*time.Second)                // Answer
	defaultMachineTalk     = Fixed(30 * time.Second)                              // Machine
	defaultMachineGreeting = Uniform(3*time.Second, 5*time.Second)                // Machine
	defaultFailureRing     = Uniform(100*time.Millisecond, 300*time.Millisecond)  // Busy, Congestion, Unallocated, Unavailable, Rejected
	defaultDTMFDelay       = Fixed(time.Second)                                   // when DTMF is set
	defaultDTMFInterval    = Fixed(400 * time.Millisecond)                        // when DTMF is set
	defaultUserRing        = Uniform(200*time.Millisecond, 400*time.Millisecond)  // registered users answering
	defaultUserTalk        = Fixed(0)                                             // registered users: stay up
)

// WithDefaults returns s with every unset field filled for its kind:
//
//   - Kind "" becomes Answer.
//   - Answer: Ring uniform 0.8-1.2 s, Talk uniform 4-6 s.
//   - Machine: Ring uniform 0.8-1.2 s, MachineGreeting uniform 3-5 s, Talk 30 s.
//   - Busy, Congestion, Unallocated, Unavailable, Rejected: Ring uniform 0.1-0.3 s.
//   - NoAnswer: nothing (it never sends a final response).
//   - With DTMF set: DTMFDelay 1 s, DTMFInterval 400 ms, DTMFSource RTP.
//     DTMF and DTMFSource are upper-cased.
//   - SIPStatus: the kind's DefaultSIPStatus. Cause for failures: derived
//     from SIPStatus as FreeSWITCH does (CauseForSIPStatus).
//
// It does not validate; invalid fields are left as they are.
func (s OutcomeSpec) WithDefaults() OutcomeSpec {
	if s.Kind == "" {
		s.Kind = Answer
	}
	fill := func(d *Dist, def Dist) {
		if d.IsZero() {
			*d = def
		}
	}
	switch {
	case s.Kind == Answer:
		fill(&s.Ring, defaultAnswerRing)
		fill(&s.Talk, defaultAnswerTalk)
	case s.Kind == Machine:
		fill(&s.Ring, defaultAnswerRing)
		fill(&s.Talk, defaultMachineTalk)
		fill(&s.MachineGreeting, defaultMachineGreeting)
	case s.Kind.Fails():
		fill(&s.Ring, defaultFailureRing)
	}
	s.DTMF = strings.ToUpper(s.DTMF)
	s.DTMFSource = strings.ToUpper(s.DTMFSource)
	if s.Kind.Answers() && s.DTMF != "" {
		fill(&s.DTMFDelay, defaultDTMFDelay)
		fill(&s.DTMFInterval, defaultDTMFInterval)
		if s.DTMFSource == "" {
			s.DTMFSource = DTMFSourceRTP
		}
	}
	if s.SIPStatus == 0 {
		s.SIPStatus = s.Kind.DefaultSIPStatus()
	}
	if s.Kind.Fails() && s.Cause == "" {
		s.Cause = CauseForSIPStatus(s.SIPStatus)
	}
	return s
}

// userDefaults fills a registered user's phone behaviour: like WithDefaults,
// but an answering phone answers after 200-400 ms and stays up.
func userDefaults(s OutcomeSpec) OutcomeSpec {
	if s.Kind == "" || s.Kind == Answer {
		s.Kind = Answer
		if s.Ring.IsZero() {
			s.Ring = defaultUserRing
		}
		if s.Talk.IsZero() {
			s.Talk = defaultUserTalk
		}
	}
	return s.WithDefaults()
}

// Sample draws one Outcome from s using r, which must not be nil. It does
// not fill defaults: call it on s.WithDefaults() (Picker does that once, at
// Compile). Unset distributions give 0.
func (s OutcomeSpec) Sample(r *rand.Rand) Outcome {
	o := Outcome{
		Kind:       s.Kind,
		RingFor:    s.Ring.Sample(r),
		TalkFor:    s.Talk.Sample(r),
		EarlyMedia: s.EarlyMedia,
		SIPStatus:  s.SIPStatus,
		Cause:      s.Cause,
	}
	if s.Kind == Machine {
		o.MachineGreeting = s.MachineGreeting.Sample(r)
	}
	if s.DTMF != "" {
		o.DTMF = s.DTMF
		o.DTMFSource = s.DTMFSource
		o.DTMFDelay = s.DTMFDelay.Sample(r)
		o.DTMFInterval = s.DTMFInterval.Sample(r)
	}
	return o
}

// Validate reports the first problem with s, as an *Error whose Path is the
// offending field's name ("ring", "dtmf", ...), or nil.
func (s OutcomeSpec) Validate() error {
	if field, msg := s.check(); msg != "" {
		return &Error{Path: field, Msg: msg}
	}
	return nil
}

// check returns the YAML name of the first invalid field and what is wrong.
func (s OutcomeSpec) check() (field, msg string) {
	k := s.Kind
	if k == "" {
		k = Answer
	}
	if !k.Valid() {
		return "kind", fmt.Sprintf("unknown kind %q (want one of %s)", string(s.Kind), kindList())
	}
	dists := []struct {
		name string
		d    Dist
	}{
		{"ring", s.Ring}, {"talk", s.Talk}, {"dtmf_delay", s.DTMFDelay},
		{"dtmf_interval", s.DTMFInterval}, {"machine_greeting", s.MachineGreeting},
	}
	for _, f := range dists {
		if m := f.d.check(); m != "" {
			return f.name, m
		}
	}
	if k == NoAnswer && !s.Ring.IsZero() {
		return "ring", "not used by no_answer: it never sends a final response (the originate timeout ends the call)"
	}
	if !k.Answers() {
		notAnswering := fmt.Sprintf("not allowed for kind %s: only answer and machine answer the call", k)
		switch {
		case !s.Talk.IsZero():
			return "talk", notAnswering
		case s.DTMF != "":
			return "dtmf", notAnswering
		case !s.DTMFDelay.IsZero():
			return "dtmf_delay", notAnswering
		case !s.DTMFInterval.IsZero():
			return "dtmf_interval", notAnswering
		case s.DTMFSource != "":
			return "dtmf_source", notAnswering
		}
	}
	if k != Machine && !s.MachineGreeting.IsZero() {
		return "machine_greeting", fmt.Sprintf("not allowed for kind %s: only machine has a greeting", k)
	}
	for _, c := range s.DTMF {
		if !validDigit(c) {
			return "dtmf", fmt.Sprintf("invalid digit %q in %q (want 0-9, *, #, A-D)", c, s.DTMF)
		}
	}
	if s.DTMF == "" {
		switch {
		case !s.DTMFDelay.IsZero():
			return "dtmf_delay", "set but dtmf is empty"
		case !s.DTMFInterval.IsZero():
			return "dtmf_interval", "set but dtmf is empty"
		case s.DTMFSource != "":
			return "dtmf_source", "set but dtmf is empty"
		}
	}
	for _, src := range strings.Split(s.DTMFSource, ",") {
		if s.DTMFSource != "" && !strings.EqualFold(src, DTMFSourceRTP) && !strings.EqualFold(src, DTMFSourceEndpoint) {
			return "dtmf_source", fmt.Sprintf("%q is not RTP or ENDPOINT (or a comma-separated list of them, one per digit)", s.DTMFSource)
		}
	}
	switch {
	case k.Answers():
		if s.SIPStatus != 0 && (s.SIPStatus < 200 || s.SIPStatus > 299) {
			return "sip_status", fmt.Sprintf("%d is not a 2xx status, which kind %s needs", s.SIPStatus, k)
		}
		if s.Cause != "" {
			return "cause", fmt.Sprintf("not allowed for kind %s: it answers, the cause is set when someone hangs up", k)
		}
	case k == NoAnswer:
		if s.SIPStatus != 0 {
			return "sip_status", "not allowed for kind no_answer: it sends no final response"
		}
		if s.Cause != "" {
			return "cause", "not allowed for kind no_answer: FreeSWITCH sets NO_ANSWER when the originate times out"
		}
	default:
		if s.SIPStatus != 0 && (s.SIPStatus < 400 || s.SIPStatus > 699) {
			return "sip_status", fmt.Sprintf("%d is not a failure status (want 400-699)", s.SIPStatus)
		}
		if s.Cause != "" && !ValidCause(s.Cause) {
			return "cause", fmt.Sprintf("unknown FreeSWITCH hangup cause %q", s.Cause)
		}
	}
	return "", ""
}

func validDigit(c rune) bool {
	return c >= '0' && c <= '9' || c == '*' || c == '#' || c >= 'A' && c <= 'D' || c >= 'a' && c <= 'd'
}

func kindList() string {
	names := make([]string, len(allKinds))
	for i, k := range allKinds {
		names[i] = string(k)
	}
	return strings.Join(names, ", ")
}

// Weighted is one outcome of a rule with its relative weight.
type Weighted struct {
	Weight int         `yaml:"weight"` // positive; chance is Weight / sum of the rule's weights
	Spec   OutcomeSpec `yaml:",inline"`
}

// MaxWeight is the largest weight a Weighted may have.
const MaxWeight = 1_000_000_000

// Rule maps dialed numbers to outcomes.
type Rule struct {
	// Match is a Go regexp (RE2 syntax) matched against the number as
	// dialed (digits, may start with +). It is not anchored for you: write
	// "486$" for "ends in 486". "" and ".*" match everything.
	Match string `yaml:"match"`
	// Outcomes is a weighted choice; at least one.
	Outcomes []Weighted `yaml:"outcomes"`
}

// Scenario is a set of rules; the first rule whose pattern matches the
// dialed number decides. Build one in Go, with Default, or with Parse; turn
// it into a Picker with Compile.
type Scenario struct {
	Name  string     `yaml:"name,omitempty"`
	Seed  uint64     `yaml:"seed"`  // seeds every Pick and User
	Rules []Rule     `yaml:"rules"` // tried in order; none matching -> the Default catch-all
	Users UserPolicy `yaml:"users"` // registered users for user/<ext> endpoints (agents)
}

// Default user policy values.
const (
	DefaultRegistered = `^10(0[0-9]|1[0-9])$` // 1000-1019, like vanilla FreeSWITCH
	DefaultKnown      = `^1[0-9]{3}$`         // 1000-1999 exist in the directory
)

// UserPolicy describes the user/<ext> endpoints (agents' phones).
//
// An extension not matching Known is not in the directory: FreeSWITCH fails
// the originate with SUBSCRIBER_ABSENT. One matching Known but not
// Registered fails with USER_NOT_REGISTERED. Registered implies Known: an
// extension matching Registered but not Known is treated as unknown.
//
// The zero UserPolicy is not the default one: empty Registered and Known
// take their defaults, but BusyWhenInCall is false. Start from DefaultUsers.
type UserPolicy struct {
	Registered     string      `yaml:"registered"`        // regexp of registered extensions; "" = DefaultRegistered
	Known          string      `yaml:"known"`             // regexp of extensions in the directory; "" = DefaultKnown
	Answer         OutcomeSpec `yaml:"answer"`            // a registered user's phone; default: answers after 200-400 ms, stays up
	BusyWhenInCall bool        `yaml:"busy_when_in_call"` // the simulator returns USER_BUSY while that user has a call (default true)
}

// DefaultUsers returns the default user policy: 1000-1019 registered, 1000-1999
// known, auto-answer after 200-400 ms and stay up, busy when in a call.
func DefaultUsers() UserPolicy {
	return UserPolicy{
		Registered:     DefaultRegistered,
		Known:          DefaultKnown,
		Answer:         userDefaults(OutcomeSpec{}),
		BusyWhenInCall: true,
	}
}

// Default returns the Default scenario documented in the package comment.
// Each call returns a new copy.
func Default() *Scenario {
	fast := Fixed(100 * time.Millisecond)
	one := func(match string, spec OutcomeSpec) Rule {
		return Rule{Match: match, Outcomes: []Weighted{{Weight: 1, Spec: spec}}}
	}
	s := &Scenario{
		Name: "default",
		Seed: 1,
		Rules: []Rule{
			one(`486$`, OutcomeSpec{Kind: Busy}),
			one(`408$`, OutcomeSpec{Kind: NoAnswer}),
			one(`503$`, OutcomeSpec{Kind: Congestion}),
			one(`404$`, OutcomeSpec{Kind: Unallocated}),
			one(`480$`, OutcomeSpec{Kind: Unavailable}),
			one(`600$`, OutcomeSpec{Kind: Rejected}),
			one(`0000$`, OutcomeSpec{Kind: Answer, Ring: fast, Talk: Fixed(0)}),
			one(`0002$`, OutcomeSpec{Kind: Answer, Ring: fast, Talk: Fixed(2 * time.Second)}),
			one(`0095$`, OutcomeSpec{Kind: Answer, Ring: fast, Talk: Fixed(0), DTMF: "195", DTMFSource: "RTP,RTP,ENDPOINT"}),
			one(`0666$`, OutcomeSpec{Kind: Machine, MachineGreeting: Fixed(4 * time.Second)}),
			one(`0183$`, OutcomeSpec{Kind: Answer, EarlyMedia: true, Ring: Fixed(time.Second)}),
			one(`.*`, OutcomeSpec{Kind: Answer}),
		},
		Users: DefaultUsers(),
	}
	return s.normalized()
}

// catchAll is the last-resort spec when no rule matches: the Default
// scenario's final rule.
var catchAll = OutcomeSpec{Kind: Answer}.WithDefaults()

// Error is a problem with a scenario. Path locates it ("rules[2].outcomes[0].ring",
// "users.known", "seed"; "" for the whole document) and Line is the 1-based
// line in the parsed text (0 when not parsed from text).
type Error struct {
	Path string
	Line int
	Msg  string
}

// Error formats e as "scenario: <path>: <msg> (line N)".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("scenario: ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", e.Line)
	}
	return b.String()
}

// Validate reports the first problem in s as an *Error naming the rule index
// and field, or nil: bad regexp, unknown kind, non-positive weight, negative
// durations, min > max, fields that make no sense for the kind, bad DTMF
// digits, SIP statuses out of range, unknown hangup causes.
func (s *Scenario) Validate() error {
	if s == nil {
		return &Error{Msg: "nil scenario"}
	}
	for i, r := range s.Rules {
		path := fmt.Sprintf("rules[%d]", i)
		if _, err := regexp.Compile(r.Match); err != nil {
			return &Error{Path: path + ".match", Msg: badRegexp(r.Match, err)}
		}
		if len(r.Outcomes) == 0 {
			return &Error{Path: path + ".outcomes", Msg: "no outcomes"}
		}
		for j, w := range r.Outcomes {
			opath := fmt.Sprintf("%s.outcomes[%d]", path, j)
			if m := checkWeight(w.Weight); m != "" {
				return &Error{Path: opath + ".weight", Msg: m}
			}
			if field, msg := w.Spec.check(); msg != "" {
				return &Error{Path: opath + "." + field, Msg: msg}
			}
		}
	}
	for _, f := range []struct{ name, expr string }{{"registered", s.Users.Registered}, {"known", s.Users.Known}} {
		if _, err := regexp.Compile(f.expr); err != nil {
			return &Error{Path: "users." + f.name, Msg: badRegexp(f.expr, err)}
		}
	}
	if field, msg := s.Users.Answer.check(); msg != "" {
		return &Error{Path: "users.answer." + field, Msg: msg}
	}
	return nil
}

func checkWeight(w int) string {
	switch {
	case w <= 0:
		return fmt.Sprintf("must be a positive integer, got %d", w)
	case w > MaxWeight:
		return fmt.Sprintf("%d is larger than the maximum %d", w, MaxWeight)
	}
	return ""
}

func badRegexp(expr string, err error) string {
	return fmt.Sprintf("invalid regexp %q: %v", expr, err)
}

// normalized returns a deep copy of s with every default filled. s must be
// valid.
func (s *Scenario) normalized() *Scenario {
	n := &Scenario{Name: s.Name, Seed: s.Seed, Users: s.Users}
	if s.Rules != nil {
		n.Rules = make([]Rule, len(s.Rules))
	}
	for i, r := range s.Rules {
		n.Rules[i] = Rule{Match: r.Match, Outcomes: make([]Weighted, len(r.Outcomes))}
		for j, w := range r.Outcomes {
			n.Rules[i].Outcomes[j] = Weighted{Weight: w.Weight, Spec: w.Spec.WithDefaults()}
		}
	}
	if n.Users.Registered == "" {
		n.Users.Registered = DefaultRegistered
	}
	if n.Users.Known == "" {
		n.Users.Known = DefaultKnown
	}
	n.Users.Answer = userDefaults(n.Users.Answer)
	return n
}
