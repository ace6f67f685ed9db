package dialer

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	dialerv1 "github.com/ringback/ringback/proto/gen/go/ringback/dialer/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	"github.com/ringback/ringback/services/dialer/pacing"
)

// pacer is a campaign's pacing state on this replica: the estimator, fed
// from the campaign's ended attempts in PostgreSQL (so every replica
// learns from every outcome, whichever replica applied it), and the last
// decision for the metrics and the API.
type pacer struct {
	mu  sync.Mutex
	run int
	est *pacing.Estimator
	// seen and talkSeen are the latest resolved_at and ended_at fed;
	// fed and talked the attempts fed lately (by call), so that reads
	// that overlap feed each once.
	seen, talkSeen time.Time
	fed, talked    map[string]time.Time
	last           pacing.Decision
	lastIn         pacing.Input
	// dialing: the campaign had calls in progress or records due when it
	// last knew (its shared agents count for it: AgentStore.Snapshot).
	dialing bool
}

// pacers are the engine's pacers by campaign.
type pacers struct {
	mu sync.Mutex
	m  map[string]*pacer
}

func (p *pacers) get(campaign string, run int) *pacer {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]*pacer{}
	}
	pc := p.m[campaign]
	if pc == nil || pc.run != run {
		pc = &pacer{run: run, est: pacing.NewEstimator(), fed: map[string]time.Time{}, talked: map[string]time.Time{}, dialing: true}
		p.m[campaign] = pc
	}
	return pc
}

// peek is a campaign's last decision on this replica, nil if it has none.
func (p *pacers) peek(campaign string) *pacing.Decision {
	p.mu.Lock()
	pc := p.m[campaign]
	p.mu.Unlock()
	if pc == nil {
		return nil
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	d := pc.last
	return &d
}

// claimPaced is claim for AGENTS and PREDICTIVE campaigns: under the
// campaign's advisory lock (so the replicas' decisions never add up past
// the pacing), it reads the calls ringing and talking, asks the pacing how
// many to place given the campaign's agents (Redis) and its abandonment
// windows, and leases that many due records.
func (e *Engine) claimPaced(ctx context.Context, c engineCampaign, now time.Time) (recs []claimedRecord, live int, err error) {
	if e.cfg.Agents == nil {
		return nil, 0, fmt.Errorf("campaign %s paces by agents, and this engine has no agent store", c.id)
	}
	pc := e.pacers.get(c.id, c.run)
	if err := e.feed(ctx, c, pc); err != nil {
		return nil, 0, err
	}
	pc.mu.Lock()
	dialing := pc.dialing
	pc.mu.Unlock()
	snap, err := e.cfg.Agents.Snapshot(ctx, c.id, now, dialing)
	if err != nil {
		return nil, 0, fmt.Errorf("agents of campaign %s: %w", c.id, err)
	}
	tx, err := e.db.Begin(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("claim records: %w", err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, "dialer.campaign:"+c.id); err != nil {
		return nil, 0, fmt.Errorf("lock campaign: %w", err)
	}
	in := pacing.Input{Now: now, Ready: snap.Ready, WrapUpEnds: snap.WrapUpEnds, OnCallSince: snap.OnCallSince,
		Active: max(0, snap.LoggedIn-snap.Paused)}
	// The calls in progress: ringing (placed, not answered; a record
	// claimed and not placed yet counts as placed now) and answered.
	rows, err := tx.Query(ctx, `SELECT r.status = 'talking', coalesce(a.started_at, $2), r.call_id
		FROM dialer.records r LEFT JOIN dialer.attempts a ON r.call_id <> '' AND a.call_id = r.call_id
		WHERE r.campaign_id = $1 AND r.status IN ('running', 'talking') ORDER BY 2`, c.id, now)
	if err != nil {
		return nil, 0, fmt.Errorf("calls in progress: %w", err)
	}
	talking := 0
	var answered bool
	var placed time.Time
	var call string
	var ringingCalls []string // the calls of in.Ringing
	if _, err := pgx.ForEachRow(rows, []any{&answered, &placed, &call}, func() error {
		if answered {
			talking++
		} else {
			in.Ringing = append(in.Ringing, placed)
			ringingCalls = append(ringingCalls, call)
		}
		return nil
	}); err != nil {
		return nil, 0, fmt.Errorf("calls in progress: %w", err)
	}
	in.Live = talking + len(in.Ringing)
	// Answered calls no agent has yet.
	in.Waiting = max(0, talking-len(snap.OnCallSince))
	if c.s.Queue != nil {
		// A BLAST's answered calls are listening to its message: only
		// those that pressed CONNECT wait for an agent.
		if in.Waiting, err = e.cfg.Agents.WaitingCalls(ctx, c.id); err != nil {
			return nil, 0, err
		}
	}
	var wrapS float64
	if err := tx.QueryRow(ctx, `SELECT coalesce(avg(a.wrap_up_s), 10) FROM dialer.agents a
		JOIN dialer.agent_campaigns ac ON ac.agent_id = a.id WHERE ac.campaign_id = $1`, c.id).Scan(&wrapS); err != nil {
		return nil, 0, fmt.Errorf("wrap-up of campaign %s: %w", c.id, err)
	}
	in.Wrap = time.Duration(wrapS * float64(time.Second))
	if in.Day, in.Month, err = abandonmentWindows(ctx, tx, c.id, now); err != nil {
		return nil, 0, err
	}
	in.Shift, in.ShiftLeft = shiftOf(c.s, now)
	cfg := c.s.Pacing
	if cfg.Mode == pacing.Agents && cfg.Multiplier == 0 {
		cfg.Multiplier = e.cfg.AgentMultiplier
	}
	k := e.pacingScale()
	in = scaleInput(in, e.epoch, k)
	cfg.AgentWait = time.Duration(float64(cfg.AgentWait) * k)
	pc.mu.Lock()
	model := pc.est.Model(in.Now, in.Ringing, in.OnCallSince)
	d := pacing.Decide(cfg, in, model)
	pc.last, pc.lastIn = d, in
	pc.mu.Unlock()
	e.m.observePacing(c.id, d, in)
	if d.Dials > 0 {
		rows, err := tx.Query(ctx, claimSQL, c.id, c.run, e.cfg.Instance, now.Add(e.cfg.Lease), now,
			int16(dialerv1.ListStatus_LIST_STATUS_READY), in.Live+d.Dials)
		if err != nil {
			return nil, 0, fmt.Errorf("claim records: %w", err)
		}
		if recs, _, err = scanClaimed(rows); err != nil {
			return nil, 0, err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, 0, fmt.Errorf("claim records: %w", err)
	}
	// Whether the campaign dials for its agents (Snapshot): calls in
	// progress, or records found when it looked for some; when it did not
	// look, as it was.
	pc.mu.Lock()
	if d.Dials > 0 || in.Live > 0 {
		pc.dialing = in.Live > 0 || len(recs) > 0
	}
	pc.mu.Unlock()
	if len(d.Release) > 0 {
		var ids []string
		for _, i := range d.Release {
			if ringingCalls[i] != "" {
				ids = append(ids, ringingCalls[i])
			}
		}
		e.releaseCalls(ctx, c, ids, releaseRing(cfg, k))
	}
	return recs, in.Live, nil
}

// releaseRing is the least ring origination must check before it releases
// a call of a campaign paced by cfg: the lawful ring the pacing counted
// from the dial, which the switch's side counts from the ringing, on the
// real clock (the pacing's runs k times faster under a simulator).
func releaseRing(cfg pacing.Config, k float64) time.Duration {
	return time.Duration(float64(cfg.MinRing()) / k)
}

// releaseCalls hangs up calls the pacing released: unanswered, rung at
// least minRing (origination checks both, under the call's lock, and
// refuses otherwise: the call then goes on). Each ends NO_ANSWER, its
// record retried as such; the estimator learns only that nobody answered
// it in that time (feed).
func (e *Engine) releaseCalls(ctx context.Context, c engineCampaign, ids []string, minRing time.Duration) {
	for _, id := range ids {
		rctx, cancel := context.WithTimeout(e.outgoing(ctx, c.account), e.cfg.RPCTimeout)
		_, err := e.calls.HangupCall(rctx, &originationv1.HangupCallRequest{Id: id, UnansweredRingingMs: int32(max(1, minRing.Milliseconds()))})
		cancel()
		switch status.Code(err) {
		case codes.OK:
			e.m.released.WithLabelValues(c.id).Inc()
		case codes.FailedPrecondition, codes.NotFound:
			// Answered, ended or not rung that long meanwhile: it goes on.
		default:
			e.log.Warn("dialer: release a call", "campaign_id", c.id, "call_id", id, "err", err)
		}
	}
}

// feed gives the pacer's estimator what the campaign's attempts told since
// it last looked (at first, the latest pacing.DefaultOutcomes): each
// attempt when it was resolved (a person answered, on the dialer's clock,
// as the call goes on; or the call ended unanswered), and the talk of each
// ended call an agent took. The reads overlap the last ones by a margin
// (batches of outcomes commit out of order) and an attempt seen once is
// skipped.
func (e *Engine) feed(ctx context.Context, c engineCampaign, pc *pacer) error {
	pc.mu.Lock()
	since, talkSince := pc.seen, pc.talkSeen
	pc.mu.Unlock()
	limit := pacing.DefaultOutcomes
	// A call the dialer hung up unanswered (released, or a campaign
	// stopped with its calls: the cause is the originator's cancel) says
	// only that nobody answered it so far.
	rows, err := e.db.Query(ctx, `SELECT call_id, started_at, resolved_at, live, released FROM (
			SELECT call_id, started_at, resolved_at, live, NOT live AND hangup_cause = 'ORIGINATOR_CANCEL' AS released FROM dialer.attempts
			WHERE campaign_id = $1 AND resolved_at > $2 ORDER BY resolved_at DESC LIMIT $3) a ORDER BY resolved_at`,
		c.id, since.Add(-feedOverlap), limit)
	if err != nil {
		return fmt.Errorf("attempts of campaign %s: %w", c.id, err)
	}
	var (
		call              string
		started, resolved time.Time
		live, released    bool
	)
	k := e.pacingScale()
	pc.mu.Lock()
	defer pc.mu.Unlock()
	_, err = pgx.ForEachRow(rows, []any{&call, &started, &resolved, &live, &released}, func() error {
		if _, ok := pc.fed[call]; ok {
			return nil
		}
		pc.fed[call] = resolved
		pc.est.AddOutcome(pacing.Outcome{Placed: scaleAt(e.epoch, started, k), Live: live, Delay: scaleDur(resolved.Sub(started), k),
			Released: released})
		if resolved.After(pc.seen) {
			pc.seen = resolved
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("attempts of campaign %s: %w", c.id, err)
	}
	// Talk times are the switch's own (answer to end): not scaled, since
	// a simulator's clock already runs at its scale.
	rows, err = e.db.Query(ctx, `SELECT call_id, connected_at, ended_at FROM (
			SELECT call_id, connected_at, ended_at FROM dialer.attempts
			WHERE campaign_id = $1 AND connected_at IS NOT NULL AND ended_at > $2 ORDER BY ended_at DESC LIMIT $3) a ORDER BY ended_at`,
		c.id, talkSince.Add(-feedOverlap*time.Duration(k)), pacing.DefaultTalks)
	if err != nil {
		return fmt.Errorf("talks of campaign %s: %w", c.id, err)
	}
	var connected, ended time.Time
	now := scaleAt(e.epoch, e.now(), k)
	_, err = pgx.ForEachRow(rows, []any{&call, &connected, &ended}, func() error {
		if _, ok := pc.talked[call]; ok {
			return nil
		}
		pc.talked[call] = ended
		talk := ended.Sub(connected)
		pc.est.AddTalk(now.Add(-talk), talk)
		if ended.After(pc.talkSeen) {
			pc.talkSeen = ended
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("talks of campaign %s: %w", c.id, err)
	}
	pc.prune(k)
	return nil
}

// feedOverlap is how far back each read of the attempts goes before the
// last one's latest: longer than any batch of outcomes takes to commit.
const feedOverlap = 10 * time.Second

// prune forgets the attempts older than the reads' overlap.
func (pc *pacer) prune(k float64) {
	for call, t := range pc.fed {
		if t.Before(pc.seen.Add(-2 * feedOverlap)) {
			delete(pc.fed, call)
		}
	}
	for call, t := range pc.talked {
		if t.Before(pc.talkSeen.Add(-2 * feedOverlap * time.Duration(k))) {
			delete(pc.talked, call)
		}
	}
}

// pacingScale is EngineConfig.PacingScale, 1 when unset.
func (e *Engine) pacingScale() float64 {
	if e.cfg.PacingScale <= 0 {
		return 1
	}
	return e.cfg.PacingScale
}

// scaleDur and scaleAt stretch durations, and instants away from an epoch,
// by k (the simulator's time scale; 1 leaves them as they are): the pacing
// then runs on a virtual clock k times faster, every instant it sees on
// the same clock.
func scaleDur(d time.Duration, k float64) time.Duration {
	if k == 1 {
		return d
	}
	return time.Duration(float64(d) * k)
}

func scaleAt(epoch, t time.Time, k float64) time.Time {
	if k == 1 {
		return t
	}
	return epoch.Add(scaleDur(t.Sub(epoch), k))
}

// scaleInput is in with its instants and durations stretched by k.
func scaleInput(in pacing.Input, epoch time.Time, k float64) pacing.Input {
	if k == 1 {
		return in
	}
	at := func(ts []time.Time) []time.Time {
		out := make([]time.Time, len(ts))
		for i, t := range ts {
			out[i] = scaleAt(epoch, t, k)
		}
		return out
	}
	in.Now = scaleAt(epoch, in.Now, k)
	in.WrapUpEnds, in.OnCallSince, in.Ringing = at(in.WrapUpEnds), at(in.OnCallSince), at(in.Ringing)
	in.Wrap = scaleDur(in.Wrap, k)
	in.Shift, in.ShiftLeft = scaleDur(in.Shift, k), scaleDur(in.ShiftLeft, k)
	return in
}

// abandonmentWindows are a campaign's live answers and abandoned calls in
// the last 24 hours and 30 days (by the hour: the current hour and the
// 23 or 719 before it).
func abandonmentWindows(ctx context.Context, q querier, campaign string, now time.Time) (day, month pacing.Window, err error) {
	err = q.QueryRow(ctx, `SELECT coalesce(sum(answered) FILTER (WHERE hour > $2::timestamptz - interval '24 hours'), 0),
			coalesce(sum(abandoned) FILTER (WHERE hour > $2::timestamptz - interval '24 hours'), 0),
			coalesce(sum(answered), 0), coalesce(sum(abandoned), 0)
		FROM dialer.answer_counts WHERE campaign_id = $1 AND hour > $2::timestamptz - interval '30 days'`, campaign, now).
		Scan(&day.Answered, &day.Abandoned, &month.Answered, &month.Abandoned)
	if err != nil {
		return day, month, fmt.Errorf("abandonment of campaign %s: %w", campaign, err)
	}
	return day, month, nil
}

// abandonmentOf is the API's view of the windows.
func abandonmentOf(day, month pacing.Window) *dialerv1.Abandonment {
	return &dialerv1.Abandonment{Answered_24H: day.Answered, Abandoned_24H: day.Abandoned, Rate_24H: day.Rate(),
		Answered_30D: month.Answered, Abandoned_30D: month.Abandoned, Rate_30D: month.Rate()}
}

// shiftOf is the shift of a TAPERED campaign at now: from the start of its
// first calling window of the day to shift_end (21:00 by default), in
// shift_time_zone (by default the first time zone of its default country).
func shiftOf(s Settings, now time.Time) (shift, left time.Duration) {
	if s.Pacing.Method != pacing.Tapered {
		return 0, 0
	}
	loc := s.ShiftZone
	if loc == nil {
		loc = time.UTC
	}
	local := now.In(loc)
	end := s.ShiftEnd
	if end == "" {
		end = "21:00"
	}
	start := "08:00"
	for _, w := range s.Hours.GetWindows() {
		for _, d := range w.GetDays() {
			if int(local.Weekday()) == int(d) && w.GetStart() < start {
				start = w.GetStart()
			}
		}
	}
	at := func(hhmm string) time.Time {
		t, err := time.ParseInLocation("15:04", hhmm, loc)
		if err != nil {
			return local
		}
		return time.Date(local.Year(), local.Month(), local.Day(), t.Hour(), t.Minute(), 0, 0, loc)
	}
	shift = at(end).Sub(at(start))
	left = max(0, at(end).Sub(local))
	return max(shift, 0), min(left, max(shift, 0))
}
