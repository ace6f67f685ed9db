package suite

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/percipia/eslgo"
	"github.com/percipia/eslgo/command"

	"github.com/ringback/ringback/freeswitch/sim/scenario"
	"github.com/ringback/ringback/services/dialer/pacing"
	"github.com/ringback/ringback/services/dialer/pacing/pacingsim"
)

// The pacing benchmark's fixed parameters. Everything the pacing sees is
// simulated time: the simulator runs pacingScale times faster than the
// wall clock and the engine multiplies what it gives the pacing by the same
// (RINGBACK_DIALER_PACING_SCALE).
const (
	pacingScale = 10
	// pacingWarmup (simulated) is left out of the measurement: the first
	// dials of a run, with every agent free and nothing learnt yet.
	pacingWarmup = time.Minute
	// pacingMaxCalls is both sides' cap on calls at once; far over what 20
	// agents at dial level 4 need, so it never binds.
	pacingMaxCalls = 200
	pacingHarbour  = "tone_stream://%(300,0,440)"
	// The issue's times, simulated; the campaign and the agents are given
	// them divided by pacingScale (which must divide the wrap-up).
	pacingAgentWait = 2 * time.Second
	pacingWrapUp    = 10 * time.Second
	pacingTick      = 200 * time.Millisecond // the engine's default
)

// The tolerances' floors: the harness and the real services must agree at
// least this well whatever the noise (the issue's figures). The tolerance
// used is the wider of the floor and three standard deviations of the
// difference between one end-to-end run and the mean of the harness's
// seeds, sd*sqrt(1+1/seeds), sd being the seeds' spread: one hour of 20
// agents is a small sample, and a tolerance under the noise would fail one
// sound run in several. Measured (5 seeds, an hour at p 0.3): occupancy
// 0.022 progressive (its agents idle while calls ring, for as long as the
// lognormal talks and the ring times draw), 0.006 predictive (its agents
// are rarely idle); abandonment 0.0035 predictive. So the tolerances are
// the floors but for progressive occupancy, 0.07.
const (
	occupancyFloor   = 0.05
	abandonmentFloor = 0.015
)

// BenchmarkPacingEndToEnd checks the pacing harness (package pacingsim)
// against the real services: the issue's scenario run through the whole
// suite and the FreeSWITCH simulator, and through the harness with the same
// parameters, first PREDICTIVE, then progressive (AGENTS, one call per free
// agent).
//
// The scenario: a dial reaches a person with probability PACING_E2E_P
// (0.3), who answers after 4-20 s of ringing and talks a lognormal time
// (mean 120 s, coefficient of variation 1); the others end busy after
// 1-25 s; PACING_E2E_AGENTS agents (20, the simulator's users 1000-1019)
// wrap up 10 s after each call; an answered person waits at most 2 s
// (agent_wait) for an agent before the safe-harbour message (abandoned).
// The simulator runs at time scale 10, the engine ticks every 20 ms (its
// 200 ms in simulated time) and paces on simulated time
// (RINGBACK_DIALER_PACING_SCALE=10), agent_wait_ms is 200 and wrap_up_s 1.
// Each campaign runs PACING_E2E_DURATION (6 min: an hour simulated) and is
// cancelled with its live calls hung up.
//
// Measured from PostgreSQL (dialer.attempts) over the run less its first
// simulated minute: the occupancy (the talk time of the agents' calls
// inside the window over agents x window), the abandonment (abandoned over
// live answers among the attempts that ended in the window), the dial level
// (calls ringing per agent, on average) and the mean wait from a person's
// answer to their agent. The harness runs PACING_E2E_SEEDS (5) seeds over
// the same simulated span and is measured over the same window (a run of
// the warm-up's length is a prefix of the full run: the difference of the
// two is the window).
//
// Reported for each mode: e2e-* and harness-* figures, their difference
// (diff-*) and the tolerance applied (tol-*); they are logged as well, a
// failed benchmark printing no metrics. A difference over the tolerance is
// an error. Occupancy's floor is 0.05 and abandonment's 0.015 (absolute),
// widened to 3 standard deviations of the difference as the seeds' spread
// gives it (see occupancyFloor).
//
// It takes twice PACING_E2E_DURATION and a minute or two more: run it with
// -benchtime 1x -timeout 20m. BENCH_LOG names a file for the suite's
// warnings and errors.
func BenchmarkPacingEndToEnd(b *testing.B) {
	p := envFloat(b, "PACING_E2E_P", 0.3)
	agents := envInt("PACING_E2E_AGENTS", 20)
	if agents > 20 {
		b.Fatalf("PACING_E2E_AGENTS=%d: the simulator registers 20 users (1000-1019)", agents)
	}
	run := 6 * time.Minute
	if v := os.Getenv("PACING_E2E_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 30*time.Second {
			b.Fatalf("PACING_E2E_DURATION=%q: want a duration of at least 30s", v)
		}
		run = d
	}
	records := min(envInt("PACING_E2E_RECORDS", 30000), 599*800)
	seeds := envInt("PACING_E2E_SEEDS", 5)
	if f := flag.Lookup("test.timeout"); f != nil {
		if d, ok := f.Value.(flag.Getter).Get().(time.Duration); ok && d > 0 && d < 2*run+4*time.Minute {
			b.Fatalf("-timeout %s is too short for two runs of %s: give -timeout %s", d, run, (2*run + 6*time.Minute).Round(time.Minute))
		}
	}

	sc, err := scenario.Parse(fmt.Appendf(nil, `
name: pacing-e2e
seed: 1
rules:
  - outcomes:
      - {weight: %d, kind: answer, ring: {min: 4s, max: 20s}, talk: {shape: lognormal, mean: 120s, stddev: 120s}}
      - {weight: %d, kind: busy, ring: {min: 1s, max: 25s}}
`, int(math.Round(p*1000)), 1000-int(math.Round(p*1000))))
	if err != nil {
		b.Fatal(err)
	}
	info, dbURL := startBench(b, pacingScale, sc, map[string]string{
		"RINGBACK_DIALER_TICK":          (pacingTick / pacingScale).String(),
		"RINGBACK_DIALER_PACING_SCALE":  strconv.Itoa(pacingScale),
		"RINGBACK_DIALER_DEFAULT_HOURS": "00:00-24:00",
	})
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	clock := watchSimClock(b, info.ESLAddr, pacingScale)
	pb := &pacingBench{b: b, e: &e2e{info: info, key: info.DevKey}, pool: pool, clock: clock, agents: agents, records: records}

	wait := fmt.Sprintf(`"agentWaitMs":%d,"safeHarbour":%q`, (pacingAgentWait / pacingScale).Milliseconds(), pacingHarbour)
	modes := []struct {
		name, pacing string
		cfg          pacing.Config
	}{
		{"predictive", `{"mode":"PACING_MODE_PREDICTIVE",` + wait + `}`, pacing.Config{Mode: pacing.Predictive}},
		{"progressive", `{"mode":"PACING_MODE_AGENTS","dialMultiplier":1,` + wait + `}`, pacing.Config{Mode: pacing.Agents, Multiplier: 1}},
	}
	agentIDs := pb.loginAgents()
	sums := map[string]float64{}
	n := 0
	for b.Loop() {
		b.StopTimer()
		for _, m := range modes {
			campaign := pb.campaign(m.name, m.pacing, n)
			n++
			pb.assign(agentIDs, campaign)
			b.StartTimer()
			e2eFig := pb.run(campaign, run)
			b.StopTimer()
			cfg := m.cfg
			cfg.MaxCalls, cfg.AgentWait = pacingMaxCalls, pacingAgentWait
			h := harness(agents, p, cfg, pacingWarmup, e2eFig.span, seeds)
			pb.compare(m.name, e2eFig, h, seeds, sums)
		}
		b.StartTimer()
	}
	pb.logout(agentIDs)
	for name, v := range sums {
		b.ReportMetric(v/float64(b.N), name)
	}
}

// pacingBench is the suite and the agents of BenchmarkPacingEndToEnd.
type pacingBench struct {
	b       *testing.B
	e       *e2e
	pool    *pgxpool.Pool
	clock   *simClock
	agents  int
	records int
}

// figures are one run's measurements over its window.
type figures struct {
	occupancy, abandonment, level float64
	wait                          time.Duration // mean, from a person's answer to their agent
	live, abandoned, dials        int64
	span                          time.Duration // simulated, start to cancel
}

// campaign creates a campaign and imports its records: distinct numbers
// (area, 201-799 so that no premium-rate 900 is refused by rating, and
// exchange from the record's index, the line's first digit from the
// campaign's n), so that no number is locked out by another campaign's
// abandoned call.
func (pb *pacingBench) campaign(name, pacingJSON string, n int) string {
	b, e := pb.b, pb.e
	code, out := e.do(b, "POST", "/v1/dialer/campaigns", e.key, fmt.Sprintf(`{"name":"Pacing %s %d","defaultCountry":"US",`+
		`"maxConcurrentCalls":%d,"dialAttempts":1,"pacing":%s,%s}`, name, time.Now().UnixNano(), pacingMaxCalls, pacingJSON, allDay))
	if code != 200 {
		b.Fatalf("create %s: %d %v", name, code, out)
	}
	id := dig(out, "campaign", "id")
	var csv strings.Builder
	csv.WriteString("Phone,Name\n")
	for i := range pb.records {
		fmt.Fprintf(&csv, "%03d%03d%d000,Recipient %d\n", 201+i%599, 200+(i/599)%800, 1+n%9, i)
	}
	if imp := e.importList(b, e.key, id, csv.String()); dig(imp, "list", "records") != strconv.Itoa(pb.records) {
		b.Fatalf("import: %v", imp)
	}
	return id
}

// loginAgents creates the agents on the simulator's users 1000-1019, with
// no campaign yet, logs them in and waits until every one is READY.
func (pb *pacingBench) loginAgents() []string {
	b, e := pb.b, pb.e
	var out []string
	for i := range pb.agents {
		user := strconv.Itoa(1000 + i)
		code, ep := e.do(b, "POST", "/v1/endpoints", e.key, `{"name":"pacing phone `+user+`","kind":"ENDPOINT_KIND_REGISTERED_USER","address":"`+user+`"}`)
		if code != 200 {
			b.Fatalf("endpoint: %d %v", code, ep)
		}
		code, ag := e.do(b, "POST", "/v1/dialer/agents", e.key, fmt.Sprintf(`{"name":"pacing %s","endpointId":%q,"wrapUpS":%d}`,
			user, dig(ep, "endpoint", "id"), int((pacingWrapUp/pacingScale).Seconds())))
		if code != 200 {
			b.Fatalf("agent: %d %v", code, ag)
		}
		id := dig(ag, "agent", "id")
		if code, out := e.do(b, "POST", "/v1/dialer/agents/"+id+":login", e.key, `{}`); code != 200 {
			b.Fatalf("login: %d %v", code, out)
		}
		out = append(out, id)
	}
	pb.waitAgents("", "AGENT_STATE_READY")
	return out
}

// assign gives the agents to campaign, and waits until every one is READY
// for it (the last run's calls and wrap-ups over).
func (pb *pacingBench) assign(agents []string, campaign string) {
	for _, id := range agents {
		code, out := pb.e.do(pb.b, "PATCH", "/v1/dialer/agents/"+id, pb.e.key, `{"campaignIds":["`+campaign+`"]}`)
		if code != 200 || dig(out, "agent", "wrapUpS") != strconv.Itoa(int((pacingWrapUp/pacingScale).Seconds())) {
			pb.b.Fatalf("assign: %d %v", code, out)
		}
	}
	pb.waitAgents(campaign, "AGENT_STATE_READY")
}

// waitAgents waits until the campaign's agents ("": the account's) are all
// in state.
func (pb *pacingBench) waitAgents(campaign, state string) {
	var got map[string]int
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		code, out := pb.e.do(pb.b, "GET", "/v1/dialer/agents?pageSize=100&campaignId="+campaign, pb.e.key, "")
		if code != 200 {
			pb.b.Fatalf("agents: %d %v", code, out)
		}
		got = map[string]int{}
		for _, a := range asList(out["agents"]) {
			got[dig(a.(map[string]any), "state")]++
		}
		if got[state] == pb.agents {
			return
		}
	}
	pb.b.Fatalf("the agents of campaign %q are %v, want %d %s", campaign, got, pb.agents, state)
}

func (pb *pacingBench) logout(agents []string) {
	for _, id := range agents {
		if code, out := pb.e.do(pb.b, "POST", "/v1/dialer/agents/"+id+":logout", pb.e.key, `{}`); code != 200 {
			pb.b.Fatalf("logout: %d %v", code, out)
		}
	}
}

// run starts campaign, cancels it after d with its live calls hung up,
// waits for every attempt to end and measures the run.
func (pb *pacingBench) run(campaign string, d time.Duration) figures {
	b, e := pb.b, pb.e
	began := time.Now()
	if code, out := e.do(b, "POST", "/v1/dialer/campaigns/"+campaign+":start", e.key, `{}`); code != 200 {
		b.Fatalf("start: %d %v", code, out)
	}
	for time.Since(began) < d {
		time.Sleep(min(2*time.Second, d-time.Since(began)))
		if _, out := e.do(b, "GET", "/v1/dialer/campaigns/"+campaign, e.key, ""); dig(out, "campaign", "status") != "CAMPAIGN_STATUS_RUNNING" {
			b.Fatalf("campaign %s is no longer running after %s (not enough records?): %v", campaign, time.Since(began).Round(time.Second), out)
		}
	}
	ended := time.Now()
	if code, out := e.do(b, "POST", "/v1/dialer/campaigns/"+campaign+":cancel", e.key, `{"hangupLiveCalls":true}`); code != 200 {
		b.Fatalf("cancel: %d %v", code, out)
	}
	pb.drain(campaign)
	from, to := pb.clock.at(began.Add(pacingWarmup/pacingScale)), pb.clock.at(ended)
	f := pb.measure(campaign, from, to)
	f.span = pb.clock.at(ended).Sub(pb.clock.at(began))
	return f
}

// drain waits until no call of the campaign is live and every attempt has
// its outcome. A dial in flight at the cancel (claimed, its call not made
// yet) escapes the cancel's hang-ups: such calls are hung up here.
func (pb *pacingBench) drain(campaign string) {
	b, ctx := pb.b, context.Background()
	hungUp := map[string]bool{}
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		var open int
		var live []string
		if err := pb.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM dialer.attempts WHERE campaign_id = $1 AND ended_at IS NULL),
				coalesce((SELECT array_agg(call_id) FROM dialer.records WHERE campaign_id = $1 AND status IN ('running', 'talking') AND call_id <> ''), '{}')`,
			campaign).Scan(&open, &live); err != nil {
			b.Fatal(err)
		}
		if open == 0 && len(live) == 0 {
			return
		}
		for _, id := range live {
			if !hungUp[id] {
				hungUp[id] = true
				_, _ = pb.e.do(b, "POST", "/v1/calls/"+id+":hangup", pb.e.key, `{}`)
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("campaign %s: %d attempts still open, calls %v live, 2 minutes after the cancel", campaign, open, live)
		}
	}
}

// measure reads a run's figures over [from, to), simulated time. The
// attempts' started_at is the dialer's clock, real time, turned into
// simulated time with the simulator's clock. answered_at, connected_at and
// ended_at are origination's, which takes the switch's event times:
// simulated time under the simulator, running minutes ahead of the wall
// clock; a time origination set from its own clock (a call that ended
// without the switch's word) is found earlier than the attempt's start in
// simulated time and is turned into simulated time as started_at is.
func (pb *pacingBench) measure(campaign string, from, to time.Time) figures {
	b, ctx := pb.b, context.Background()
	var (
		f                figures
		talkS, ringS     float64
		waitS            *float64
		rawDelay, delayS *float64
		realEnds         []string
	)
	sim := func(col string) string {
		return "CASE WHEN " + col + " < placed - interval '5 seconds' THEN $4::timestamptz + (" + col + " - $4::timestamptz) * $5::float8 ELSE " + col + " END"
	}
	window := to.Sub(from).Seconds()
	err := pb.pool.QueryRow(ctx, `WITH r AS (
			SELECT *, $4::timestamptz + (started_at - $4::timestamptz) * $5::float8 AS placed FROM dialer.attempts WHERE campaign_id = $1),
		a AS (
			SELECT live, abandoned, started_at, answered_at, placed, outcome, hangup_cause, ended_at < placed - interval '5 seconds' AS real_end,
				`+sim("answered_at")+` AS answered, `+sim("connected_at")+` AS connected, `+sim("ended_at")+` AS ended FROM r)
		SELECT
			coalesce(sum(extract(epoch FROM least(ended, $3) - greatest(connected, $2))) FILTER (WHERE connected < $3 AND ended > $2), 0),
			count(*) FILTER (WHERE live AND ended >= $2 AND ended < $3),
			count(*) FILTER (WHERE abandoned AND ended >= $2 AND ended < $3),
			count(*) FILTER (WHERE placed >= $2 AND placed < $3),
			coalesce(sum(extract(epoch FROM least(coalesce(answered, ended), $3) - greatest(placed, $2)))
				FILTER (WHERE placed < $3 AND coalesce(answered, ended) > $2), 0),
			avg(extract(epoch FROM connected - answered)) FILTER (WHERE connected >= $2 AND connected < $3),
			percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM answered_at - started_at)) FILTER (WHERE live),
			percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM answered - placed)) FILTER (WHERE live),
			coalesce(array_agg(DISTINCT outcome || ' ' || hangup_cause || CASE WHEN answered_at IS NULL THEN '' ELSE ' answered' END) FILTER (WHERE real_end), '{}')
		FROM a`, campaign, from, to, pb.clock.base(), float64(pacingScale)).
		Scan(&talkS, &f.live, &f.abandoned, &f.dials, &ringS, &waitS, &rawDelay, &delayS, &realEnds)
	if err != nil {
		b.Fatal(err)
	}
	if len(realEnds) > 0 {
		var n int
		if err := pb.pool.QueryRow(ctx, `SELECT count(*) FROM dialer.attempts WHERE campaign_id = $1
				AND ended_at < $2::timestamptz + (started_at - $2::timestamptz) * $3::float8 - interval '5 seconds'`,
			campaign, pb.clock.base(), float64(pacingScale)).Scan(&n); err != nil {
			b.Fatal(err)
		}
		b.Logf("campaign %s: %d attempts ended on origination's clock, not the switch's: %v", campaign, n, realEnds)
	}
	f.occupancy = talkS / (float64(pb.agents) * window)
	f.level = ringS / (float64(pb.agents) * window)
	if f.live > 0 {
		f.abandonment = float64(f.abandoned) / float64(f.live)
	}
	if waitS != nil {
		f.wait = time.Duration(*waitS * float64(time.Second))
	}
	// The live answers' delays: 4-20 s (median 12 s) in simulated time.
	// The raw difference of the columns is what the engine's estimator is
	// fed: with the switch's times simulated, it mixes two clocks.
	if rawDelay != nil && delayS != nil {
		b.Logf("campaign %s: median delay to a live answer %.1fs simulated (answered_at - started_at as stored: %.1fs)", campaign, *delayS, *rawDelay)
	}
	// The abandonment windows the pacing reads count what the attempts do.
	var answered, abandoned, live, aband int64
	if err := pb.pool.QueryRow(ctx, `SELECT
			(SELECT coalesce(sum(answered), 0) FROM dialer.answer_counts WHERE campaign_id = $1),
			(SELECT coalesce(sum(abandoned), 0) FROM dialer.answer_counts WHERE campaign_id = $1),
			(SELECT count(*) FILTER (WHERE live) FROM dialer.attempts WHERE campaign_id = $1),
			(SELECT count(*) FILTER (WHERE abandoned) FROM dialer.attempts WHERE campaign_id = $1)`, campaign).
		Scan(&answered, &abandoned, &live, &aband); err != nil {
		b.Fatal(err)
	}
	if answered != live || abandoned != aband {
		b.Errorf("campaign %s: answer_counts has %d answered, %d abandoned; the attempts %d live, %d abandoned", campaign, answered, abandoned, live, aband)
	}
	return f
}

// harnessFigures are the harness's seeds' means and standard deviations.
type harnessFigures struct {
	occupancy, abandonment, level [2]float64
}

// harness runs the harness's seeds over span (simulated) and measures each
// over [warm, span): a run of warm is the prefix of the run of span (the
// same seed draws the same until then), so the window's figures are the
// differences of the two runs' totals.
func harness(agents int, p float64, cfg pacing.Config, warm, span time.Duration, seeds int) harnessFigures {
	var occ, ab, lvl []float64
	for seed := range seeds {
		sc := pacingsim.Issue(agents, p, uint64(seed+1), cfg)
		sc.Shift = span
		full := pacingsim.Run(sc)
		sc.Shift = warm
		pre := pacingsim.Run(sc)
		talk := full.Occupancy*span.Seconds() - pre.Occupancy*warm.Seconds() // per agent
		occ = append(occ, talk/(span-warm).Seconds())
		if live := full.Live - pre.Live; live > 0 {
			ab = append(ab, float64(full.Abandoned-pre.Abandoned)/float64(live))
		}
		// Level is the mean over the decisions, one per tick.
		nFull, nPre := ticks(span, sc.Tick), ticks(warm, sc.Tick)
		lvl = append(lvl, (full.Level*nFull-pre.Level*nPre)/(nFull-nPre))
	}
	return harnessFigures{occupancy: meanSD(occ), abandonment: meanSD(ab), level: meanSD(lvl)}
}

func ticks(d, tick time.Duration) float64 { return math.Ceil(float64(d) / float64(tick)) }

// meanSD is xs' mean and sample standard deviation.
func meanSD(xs []float64) [2]float64 {
	if len(xs) == 0 {
		return [2]float64{}
	}
	var sum, sq float64
	for _, x := range xs {
		sum += x
	}
	m := sum / float64(len(xs))
	for _, x := range xs {
		sq += (x - m) * (x - m)
	}
	if len(xs) < 2 {
		return [2]float64{m, 0}
	}
	return [2]float64{m, math.Sqrt(sq / float64(len(xs)-1))}
}

// compare adds a mode's figures to the metrics and checks the differences
// against the tolerances.
func (pb *pacingBench) compare(mode string, e figures, h harnessFigures, seeds int, sums map[string]float64) {
	b := pb.b
	spread := math.Sqrt(1 + 1/float64(seeds))
	occTol := math.Max(occupancyFloor, 3*h.occupancy[1]*spread)
	abTol := math.Max(abandonmentFloor, 3*h.abandonment[1]*spread)
	// The figures are in the log too: a failed benchmark prints no metrics.
	b.Logf("%s: e2e occupancy %.3f, abandonment %.4f (%d of %d live), level %.2f, wait %s, %d dials; "+
		"harness occupancy %.3f ± %.3f, abandonment %.4f ± %.4f, level %.2f ± %.2f (%d seeds, %s simulated); "+
		"differences: occupancy %+.3f (tolerance %.3f), abandonment %+.4f (tolerance %.4f)",
		mode, e.occupancy, e.abandonment, e.abandoned, e.live, e.level, e.wait.Round(time.Millisecond), e.dials,
		h.occupancy[0], h.occupancy[1], h.abandonment[0], h.abandonment[1], h.level[0], h.level[1], seeds, e.span.Round(time.Second),
		e.occupancy-h.occupancy[0], occTol, e.abandonment-h.abandonment[0], abTol)
	for name, v := range map[string]float64{
		"e2e-occupancy": e.occupancy, "harness-occupancy": h.occupancy[0], "diff-occupancy": e.occupancy - h.occupancy[0], "tol-occupancy": occTol,
		"e2e-abandonment": e.abandonment, "harness-abandonment": h.abandonment[0], "diff-abandonment": e.abandonment - h.abandonment[0], "tol-abandonment": abTol,
		"e2e-level": e.level, "harness-level": h.level[0], "e2e-wait-s": e.wait.Seconds(),
	} {
		sums[mode+"-"+name] += v
	}
	if d := e.occupancy - h.occupancy[0]; math.Abs(d) > occTol {
		b.Errorf("%s: occupancy %.3f end to end, %.3f in the harness: %+.3f, over the tolerance %.3f", mode, e.occupancy, h.occupancy[0], d, occTol)
	}
	if d := e.abandonment - h.abandonment[0]; math.Abs(d) > abTol {
		b.Errorf("%s: abandonment %.4f end to end, %.4f in the harness: %+.4f, over the tolerance %.4f", mode, e.abandonment, h.abandonment[0], d, abTol)
	}
}

// simClock maps the wall clock to the simulator's: simulated time runs
// scale times faster from the simulator's start, base, when both read the
// same. Each HEARTBEAT (every 20 s simulated) gives base = r - (s - r) /
// (scale - 1) for its timestamp s received at r; the delivery's delay only
// makes r later, so the least estimate is the best.
type simClock struct {
	scale float64
	mu    sync.Mutex
	b     time.Time
}

func watchSimClock(b *testing.B, eslAddr string, scale float64) *simClock {
	c := &simClock{scale: scale}
	opts := eslgo.DefaultInboundOptions
	opts.Logger = eslgo.NilLogger{}
	conn, err := opts.Dial(eslAddr)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	conn.RegisterEventListener(eslgo.EventListenAll, func(ev *eslgo.Event) {
		r := time.Now()
		us, err := strconv.ParseInt(ev.GetHeader("Event-Date-Timestamp"), 10, 64)
		if ev.GetName() != "HEARTBEAT" || err != nil {
			return
		}
		base := r.Add(-time.Duration(float64(time.UnixMicro(us).Sub(r)) / (scale - 1)))
		c.mu.Lock()
		if c.b.IsZero() || base.Before(c.b) {
			c.b = base
		}
		c.mu.Unlock()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := conn.SendCommand(ctx, command.Event{Format: "plain", Listen: []string{"HEARTBEAT"}}); err != nil {
		b.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); c.base().IsZero(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatal("no HEARTBEAT from the simulator in 30 s")
		}
	}
	return c
}

func (c *simClock) base() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.b
}

// at is the simulated time at wall-clock time t.
func (c *simClock) at(t time.Time) time.Time {
	base := c.base()
	return base.Add(time.Duration(float64(t.Sub(base)) * c.scale))
}

func envFloat(b *testing.B, name string, def float64) float64 {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f <= 0 || f >= 1 {
		b.Fatalf("%s=%q: want a probability between 0 and 1", name, v)
	}
	return f
}
