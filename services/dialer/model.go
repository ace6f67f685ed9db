// Package dialer runs outbound campaigns over recipient lists: it imports
// the lists (CSV), keeps the do-not-call lists, and its engine dials each
// campaign's records through origination within the campaign's concurrency
// cap, attempts, retry intervals, the recipients' calling hours and
// schedules, rotating each record's numbers; the outcome of every attempt
// comes back from the call events on NATS. Several replicas run the same
// campaigns: a record being dialed is leased in PostgreSQL by one of them.
package dialer

import (
	"embed"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/nyaruka/phonenumbers"

	dialerv1 "github.com/ringback/ringback/proto/gen/go/ringback/dialer/v1"
	"github.com/ringback/ringback/services/dialer/pacing"
	"github.com/ringback/ringback/services/internal/phone"
)

// Migrations are the dialer's PostgreSQL schema, applied at start with
// store.Migrate(ctx, pool, "dialer", Migrations()).
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the migration files.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // embedded at build time
	}
	return sub
}

// Record statuses, the automated dialing spec's names (the records.status
// column and the reports).
const (
	StatusReady       = "ready"       // waiting to be dialed (first time, a retry, its hours or schedule)
	StatusRunning     = "running"     // being dialed
	StatusTalking     = "talking"     // answered and connected
	StatusAnswered    = "answered"    // reached: final
	StatusBusy        = "busy"        // busy on the last attempt
	StatusNoAnswer    = "noanswer"    // rang out on the last attempt
	StatusFailed      = "failed"      // could not be reached (congestion, no route, refused by rating, ...)
	StatusAnsMachine  = "answmachine" // an answering machine answered
	StatusDNC         = "dnc"         // every number is on a do-not-call list: never dialed
	StatusExpired     = "expired"     // the campaign's end came first
	StatusCancel      = "cancel"      // the attempt was hung up by a cancellation
	StatusRescheduled = "rescheduled" // scheduled for later, the campaign cancelled first
	StatusAbandoned   = "abandoned"   // a person answered, no agent was free in time: the safe-harbour message
)

// Destinations: where an answered attempt ended up, the automated dialing
// spec's report statuses "when the final destination was" an IVR, a queue
// or another extension (the attempts' and records' destination column; see
// destinationOf). The spec's QUEUE_INVALID has no counterpart: a
// campaign's queue is its own agents, which always exists.
const (
	DestIVRStarted    = "IVR_STARTED"    // hung up during the announcement or its menu
	DestIVRFinished   = "IVR_FINISHED"   // heard the announcement to the end (or took a menu option other than CONNECT)
	DestQueueJoin     = "QUEUE_JOIN"     // waited for an agent and hung up first
	DestQueueAnswer   = "QUEUE_ANSWER"   // an agent took the call
	DestQueueTimeout  = "QUEUE_TIMEOUT"  // no agent in time: the queue's message (or the safe harbour)
	DestQueueEmpty    = "QUEUE_EMPTY"    // turned away: no agent logged in to take it (agentQueue.turnAwayWhenEmpty)
	DestQueueFull     = "QUEUE_FULL"     // turned away: agentQueue.maxWaiting were waiting
	DestInAnswer      = "IN_ANSWER"      // the endpoint answered: bridged
	DestInBusy        = "IN_BUSY"        // the endpoint was busy
	DestInNoAnswer    = "IN_NOANSWER"    // the endpoint rang out
	DestInCancel      = "IN_CANCEL"      // the recipient hung up before the endpoint answered
	DestInCongestion  = "IN_CONGESTION"  // the endpoint could not be reached (congestion, no route, refused)
	DestInChanUnavail = "IN_CHANUNAVAIL" // the endpoint's phone is not registered
)

// Live reports whether a record status means a call is in progress.
func Live(status string) bool { return status == StatusRunning || status == StatusTalking }

// Defaults of a campaign's settings.
const (
	DefaultMaxConcurrent = 10
	DefaultDialAttempts  = 1
	MaxDialAttempts      = 20
	DefaultDialTimeout   = 30 * time.Second
	DefaultBusyRetry     = 300 * time.Second
	DefaultNoAnswerRetry = 900 * time.Second
	DefaultCongestRetry  = 120 * time.Second
	DefaultMachineRetry  = 3600 * time.Second
	DefaultFailedRetry   = 600 * time.Second
	// DefaultAnnouncement is what a recipient hears when the campaign says
	// neither an announcement nor an endpoint (FreeSWITCH's stock sounds).
	DefaultAnnouncement = "ivr/ivr-thank_you_for_calling.wav"
	// DefaultAbandonLockout is how long an abandoned number is not dialed
	// again (Ofcom: 72 hours).
	DefaultAbandonLockout = 72 * time.Hour
	// DefaultAgentMultiplier is the AGENTS mode's calls per free agent
	// when the campaign sets none (RINGBACK_DIALER_AGENT_MULTIPLIER).
	DefaultAgentMultiplier = 1.0
)

// DefaultCallingHours is every day 08:00-21:00 in the recipient's time.
func DefaultCallingHours() *dialerv1.CallingHours {
	return &dialerv1.CallingHours{Windows: []*dialerv1.CallingWindow{{Days: []int32{0, 1, 2, 3, 4, 5, 6}, Start: "08:00", End: "21:00"}}}
}

// Settings are a campaign's settings with the defaults applied, as the
// engine uses them.
type Settings struct {
	CallerIDNumber, CallerIDName string
	DefaultCountry               string
	MaxConcurrent                int
	DialAttempts                 int
	DialTimeout                  time.Duration
	Retry                        map[string]time.Duration // by record status of the failed attempt
	Announcement, EndpointID     string
	// A BLAST's options (none: a plain announcement), how often the
	// announcement is played while none is pressed, and how long a digit
	// is waited for after it.
	Options       []*dialerv1.BlastOption
	OptionTries   int
	OptionTimeout time.Duration
	// Answering-machine detection, and the message left after the beep.
	DetectMachine  bool
	MachineMessage string
	// Queue: a BLAST's CONNECT options go to the campaign's agents
	// (on_answer.agent_queue); nil: to EndpointID.
	Queue      *Queue
	Hours      *dialerv1.CallingHours
	Start, End time.Time // zero: none
	// Pacing: the mode and, for AGENTS and PREDICTIVE, how the answered
	// wait for an agent (AgentWait, then SafeHarbour), and how long an
	// abandoned number rests (Lockout). Pacing.MaxCalls is MaxConcurrent.
	Pacing      pacing.Config
	SafeHarbour string
	Lockout     time.Duration
	// ShiftEnd (TAPERED): "HH:MM" in ShiftZone.
	ShiftEnd string
	// ShiftZone (TAPERED) is the shift's time zone: shift_time_zone, else
	// the first zone of DefaultCountry.
	ShiftZone *time.Location
}

// Queue is a BLAST's queue of agents with its defaults applied.
type Queue struct {
	Wait                      time.Duration
	HoldMusic, NoAgentMessage string
	// MaxWaiting: the most recipients waiting at once (0: no limit);
	// TurnAwayWhenEmpty: turn a recipient away while no agent of the
	// campaign is logged in and unpaused, and those waiting once none is.
	MaxWaiting        int
	TurnAwayWhenEmpty bool
}

// Queue defaults and limits.
const (
	DefaultQueueWait = time.Minute
	MaxQueueWaitS    = 600
	MaxQueueWaiting  = 10000
)

// Paced reports whether the campaign's agents pace its dials.
func (s Settings) Paced() bool {
	return s.Pacing.Mode == pacing.Agents || s.Pacing.Mode == pacing.Predictive
}

// AnswersToAgents reports whether every answer goes to the campaign's
// agents (AGENTS and PREDICTIVE without a BLAST queue, whose recipients
// choose to wait for one).
func (s Settings) AnswersToAgents() bool {
	return s.Paced() && s.Queue == nil
}

// SettingsOf applies the defaults to a campaign.
func SettingsOf(c *dialerv1.Campaign) Settings {
	s := Settings{
		CallerIDNumber: c.GetCallerIdNumber(), CallerIDName: c.GetCallerIdName(), DefaultCountry: c.GetDefaultCountry(),
		MaxConcurrent: int(c.GetMaxConcurrentCalls()), DialAttempts: int(c.GetDialAttempts()),
		DialTimeout:  time.Duration(c.GetDialTimeoutMs()) * time.Millisecond,
		Announcement: c.GetOnAnswer().GetAnnouncement(), EndpointID: c.GetOnAnswer().GetEndpointId(),
		Options: c.GetOnAnswer().GetOptions(), OptionTries: int(c.GetOnAnswer().GetOptionTries()),
		OptionTimeout:  time.Duration(c.GetOnAnswer().GetOptionTimeoutMs()) * time.Millisecond,
		DetectMachine:  c.GetOnAnswer().GetDetectMachine(),
		MachineMessage: c.GetOnAnswer().GetMachineMessage(),
		Hours:          c.GetCallingHours(),
	}
	if q := c.GetOnAnswer().GetAgentQueue(); q != nil {
		s.Queue = &Queue{Wait: time.Duration(q.GetWaitS()) * time.Second, HoldMusic: q.GetHoldMusic(), NoAgentMessage: q.GetNoAgentMessage(),
			MaxWaiting: int(q.GetMaxWaiting()), TurnAwayWhenEmpty: q.GetTurnAwayWhenEmpty()}
		if s.Queue.Wait <= 0 {
			s.Queue.Wait = DefaultQueueWait
		}
	}
	if s.MaxConcurrent <= 0 {
		s.MaxConcurrent = DefaultMaxConcurrent
	}
	if s.DialAttempts <= 0 {
		s.DialAttempts = DefaultDialAttempts
	}
	if s.DialTimeout <= 0 {
		s.DialTimeout = DefaultDialTimeout
	}
	if s.Announcement == "" && s.EndpointID == "" {
		s.Announcement = DefaultAnnouncement
	}
	if s.Hours == nil || len(s.Hours.GetWindows()) == 0 {
		s.Hours = DefaultCallingHours()
	}
	ri := c.GetRetryIntervals()
	pick := func(v int32, def time.Duration) time.Duration {
		if v > 0 {
			return time.Duration(v) * time.Second
		}
		return def
	}
	s.Retry = map[string]time.Duration{
		StatusBusy: pick(ri.GetBusyS(), DefaultBusyRetry), StatusNoAnswer: pick(ri.GetNoAnswerS(), DefaultNoAnswerRetry),
		StatusAnsMachine: pick(ri.GetMachineS(), DefaultMachineRetry), StatusFailed: pick(ri.GetFailedS(), DefaultFailedRetry),
		"congestion": pick(ri.GetCongestionS(), DefaultCongestRetry),
	}
	p := c.GetPacing()
	s.Pacing = pacing.Config{MaxCalls: s.MaxConcurrent, Multiplier: p.GetDialMultiplier(), Target: p.GetAbandonTarget(),
		MaxLevel: p.GetMaxDialLevel(), AgentWait: time.Duration(p.GetAgentWaitMs()) * time.Millisecond,
		ReleaseAfter: time.Duration(p.GetReleaseAfterS()) * time.Second}
	switch p.GetMode() {
	case dialerv1.PacingMode_PACING_MODE_AGENTS:
		s.Pacing.Mode = pacing.Agents
	case dialerv1.PacingMode_PACING_MODE_PREDICTIVE:
		s.Pacing.Mode = pacing.Predictive
	default:
		s.Pacing.Mode = pacing.Fixed
	}
	switch p.GetMethod() {
	case dialerv1.AdaptMethod_ADAPT_METHOD_TAPERED:
		s.Pacing.Method = pacing.Tapered
	case dialerv1.AdaptMethod_ADAPT_METHOD_AVERAGE:
		s.Pacing.Method = pacing.Average
	default:
		s.Pacing.Method = pacing.HardLimit
	}
	if s.Pacing.AgentWait <= 0 {
		s.Pacing.AgentWait = pacing.DefaultAgentWait
	}
	s.SafeHarbour, s.ShiftEnd = p.GetSafeHarbour(), p.GetShiftEnd()
	if s.Pacing.Method == pacing.Tapered {
		s.ShiftZone = zoneOf(p.GetShiftTimeZone())
		if s.ShiftZone == nil { // campaigns from before shift_time_zone
			s.ShiftZone = locations(callingCodeZones(phonenumbers.GetCountryCodeForRegion(s.DefaultCountry)))[0]
		}
	}
	s.Lockout = pick(p.GetAbandonLockoutS(), DefaultAbandonLockout)
	s.Retry[StatusAbandoned] = s.Lockout
	if t := c.GetStartTime(); t != nil {
		s.Start = t.AsTime()
	}
	if t := c.GetEndTime(); t != nil {
		s.End = t.AsTime()
	}
	return s
}

// Normalize returns a number in E.164: as it is when it starts with + or
// 00 (any country code, so rating decides what it can reach), else read
// as a national number of country (ISO 3166-1 alpha-2).
func Normalize(number, country string) (string, error) {
	n := strings.TrimSpace(number)
	if strings.HasPrefix(n, "+") || strings.HasPrefix(n, "00") || country == "" {
		return phone.E164(n)
	}
	p, err := phonenumbers.Parse(n, country)
	if err != nil {
		return "", fmt.Errorf("%q is not a phone number of %s: %v", number, country, err)
	}
	return phone.E164(phonenumbers.Format(p, phonenumbers.E164))
}
