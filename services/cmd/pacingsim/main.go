// Command pacingsim runs the dialer's pacing in the discrete-event harness
// (package pacingsim): progressive and predictive side by side over the
// issue's scenarios, one line per run. scripts/bench/pacing runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ringback/ringback/services/dialer/pacing"
	"github.com/ringback/ringback/services/dialer/pacing/pacingsim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "pacingsim:", err)
		os.Exit(1)
	}
}

type job struct {
	sc   pacingsim.Scenario
	mode string
	r    pacingsim.Result
	took time.Duration
	// told is a drop run's twin whose pacer is told p (not printed on
	// its own: its reaction goes on the run's line).
	told *job
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("pacingsim", flag.ContinueOnError)
	agentsFlag := fs.String("agents", "10,50,100", "agent counts")
	pFlag := fs.String("p", "0.1,0.2,0.3", "probabilities that a dial reaches a person")
	seeds := fs.Int("seeds", 5, "seeds per scenario")
	hours := fs.Float64("hours", 8, "simulated hours per run")
	modes := fs.String("modes", "progressive,predictive", "modes")
	drop := fs.Bool("drop", true, "also run the mid-shift drop of p from 0.3 to 0.1 (predictive, and the peer with -peer)")
	peer := fs.Bool("peer", true, "also run the peer baseline, VICIdial's adaptive method (-method's), tuned per team size (see peerDiffTarget); its lines go to stderr")
	method := fs.String("method", "hard_limit", "predictive method: hard_limit, tapered, average")
	theta := fs.Float64("theta", 0, "predictive: the risk per call at the aim (0: the default)")
	thetaMax := fs.Float64("thetamax", 0, "predictive: the most risk per call (0: the default)")
	thetaFixed := fs.Float64("theta-fixed", 0, "predictive: this risk per call whatever the abandonment (no budget control: the policy's frontier)")
	releaseAfter := fs.Duration("release-after", pacing.DefaultReleaseAfter, "predictive: release (hang up) a call unanswered this long that would find no agent; 0: never")
	releaseRisk := fs.Float64("release-risk", 0, "predictive: the risk above which such a call is released (0: the default)")
	wait := fs.Duration("wait", pacing.DefaultAgentWait, "how long an answered person waits for an agent")
	connect := fs.Duration("connect", 0, "delay from an answer to the agent (the router's)")
	parallel := fs.Int("parallel", runtime.GOMAXPROCS(0), "runs at once")
	step := fs.Int("step", 0, "instead of the runs above: the drop's step response, averaged over this many seeds per team size, for predictive, predictive told p, and the peer")
	stepAt := fs.Duration("step-at", time.Hour, "-step: when p drops (the run ends 15 min after)")
	fastWindows := fs.String("fast-windows", "", `predictive: the estimator's fast answer rates, narrowest first, as "weight,drop,rise;..." (dials' worth, standard errors; inf: never), e.g. "20,2,inf;60,3,2" (empty: pacing.DefaultFastWindows)`)
	stepModes := fs.String("step-modes", "predictive,predictive_told,vicidial", "-step: the modes to run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	agents, err := ints(*agentsFlag)
	if err != nil {
		return fmt.Errorf("-agents: %w", err)
	}
	ps, err := floats(*pFlag)
	if err != nil {
		return fmt.Errorf("-p: %w", err)
	}
	windows, err := parseWindows(*fastWindows)
	if err != nil {
		return fmt.Errorf("-fast-windows: %w", err)
	}
	m := map[string]pacing.Method{"hard_limit": pacing.HardLimit, "tapered": pacing.Tapered, "average": pacing.Average}[*method]
	if m == 0 {
		return fmt.Errorf("-method %q: want hard_limit, tapered or average", *method)
	}
	ra := *releaseAfter
	if ra == 0 {
		ra = -1 // the flag's 0 is "never"; the Config's, the default
	}
	peerFor := func(sc *pacingsim.Scenario) {
		sc.Adapt = &pacingsim.Adapt{Method: m, DiffTarget: peerDiffTarget(sc.Agents), MaxLevel: 3}
	}
	cfgFor := func(mode string) (pacing.Config, error) {
		switch mode {
		case "progressive":
			return pacing.Config{Mode: pacing.Agents, Multiplier: 1, AgentWait: *wait}, nil
		case "predictive":
			return pacing.Config{Mode: pacing.Predictive, Method: m, ThetaBase: *theta, ThetaMax: *thetaMax, FixedTheta: *thetaFixed, AgentWait: *wait,
				ReleaseAfter: ra, ReleaseRisk: *releaseRisk}, nil
		}
		return pacing.Config{}, fmt.Errorf("-modes: unknown mode %q", mode)
	}
	shift := time.Duration(*hours * float64(time.Hour))
	if *step > 0 {
		modes := strings.Split(*stepModes, ",")
		for _, mode := range modes {
			if !slices.Contains([]string{"predictive", "predictive_told", "vicidial"}, mode) {
				return fmt.Errorf("-step-modes: unknown mode %q", mode)
			}
		}
		return stepResponses(ctx, agents, modes, *step, *stepAt, *parallel, func(n int, seed uint64, mode string) pacingsim.Scenario {
			cfg, _ := cfgFor("predictive")
			sc := pacingsim.Issue(n, 0.3, seed, cfg)
			sc.Shift, sc.ConnectDelay = *stepAt+pacingsim.StepAfter, *connect
			sc.PAfter, sc.ChangeAt = 0.1, *stepAt
			sc.FastWindows = windows
			switch mode {
			case "predictive_told":
				sc.ToldP = true
			case "vicidial":
				sc.Pacing = pacing.Config{AgentWait: *wait}
				peerFor(&sc)
			}
			return sc
		})
	}
	var jobs []*job
	for _, n := range agents {
		for _, p := range ps {
			for seed := 1; seed <= *seeds; seed++ {
				for _, mode := range strings.Split(*modes, ",") {
					cfg, err := cfgFor(mode)
					if err != nil {
						return err
					}
					sc := pacingsim.Issue(n, p, uint64(seed), cfg)
					sc.Shift, sc.ConnectDelay = shift, *connect
					sc.FastWindows = windows
					jobs = append(jobs, &job{sc: sc, mode: mode})
				}
				if *peer {
					sc := pacingsim.Issue(n, p, uint64(seed), pacing.Config{AgentWait: *wait})
					sc.Shift, sc.ConnectDelay = shift, *connect
					peerFor(&sc)
					jobs = append(jobs, &job{sc: sc, mode: "vicidial"})
				}
			}
		}
	}
	if *drop {
		for _, n := range agents {
			for seed := 1; seed <= *seeds; seed++ {
				cfg, _ := cfgFor("predictive")
				sc := pacingsim.Issue(n, 0.3, uint64(seed), cfg)
				sc.Shift, sc.ConnectDelay = shift, *connect
				sc.PAfter, sc.ChangeAt = 0.1, shift/2
				sc.FastWindows = windows
				told := sc
				told.ToldP = true
				j := &job{sc: sc, mode: "predictive", told: &job{sc: told, mode: "predictive"}}
				jobs = append(jobs, j, j.told)
				if *peer {
					ps := sc
					ps.Pacing = pacing.Config{AgentWait: *wait}
					peerFor(&ps)
					jobs = append(jobs, &job{sc: ps, mode: "vicidial"})
				}
			}
		}
	}
	start := time.Now()
	runAll(ctx, jobs, *parallel)
	if err := ctx.Err(); err != nil {
		return err
	}
	// The contract's lines on stdout; the drop scenario's (its p changes
	// mid-shift, so it is no run of one p) and the peer's (no mode of the
	// contract's) on stderr, marked.
	for _, j := range jobs {
		switch {
		case j.sc.ToldP:
		case j.sc.PAfter > 0:
			fmt.Fprintln(os.Stderr, "# drop", format(j))
		case j.sc.Adapt != nil:
			fmt.Fprintln(os.Stderr, "# peer", format(j))
		default:
			fmt.Println(format(j))
		}
	}
	fmt.Fprintf(os.Stderr, "# %d runs of %s simulated in %s\n", len(jobs), shift, time.Since(start).Round(time.Millisecond))
	return nil
}

// runAll runs the jobs, parallel at once.
func runAll(ctx context.Context, jobs []*job, parallel int) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(1, parallel))
	for _, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if ctx.Err() != nil {
				return
			}
			t0 := time.Now()
			j.r = pacingsim.Run(j.sc)
			j.took = time.Since(t0)
		}()
	}
	wg.Wait()
}

// stepResponses runs the drop for seeds seeds per team size and mode, and
// prints each mode's step response (pacingsim.StepResponse): one line per
// team size and mode.
func stepResponses(ctx context.Context, agents []int, modes []string, seeds int, at time.Duration, parallel int,
	scenario func(n int, seed uint64, mode string) pacingsim.Scenario) error {
	var jobs []*job
	for _, n := range agents {
		for _, mode := range modes {
			for seed := 1; seed <= seeds; seed++ {
				jobs = append(jobs, &job{sc: scenario(n, uint64(seed), mode), mode: mode})
			}
		}
	}
	start := time.Now()
	runAll(ctx, jobs, parallel)
	if err := ctx.Err(); err != nil {
		return err
	}
	for i := 0; i < len(jobs); i += seeds {
		group := jobs[i : i+seeds]
		var steps [][]float64
		aband := 0.0
		for _, j := range group {
			steps = append(steps, j.r.Step)
			aband += j.r.Abandonment
		}
		j := group[0]
		st := pacingsim.StepResponse(j.sc.Tick, steps)
		z15 := 0.0
		if len(st.Z) >= 15 {
			z15 = st.Z[14]
		}
		fmt.Printf("step mode=%s agents=%d runs=%d p=%g p_after=%g change_at=%s level_before=%.3f level_after=%.3f noise=%.3f t10_s=%s t50_s=%s t90_s=%s departs_s=%s z_15s=%.1f abandonment_mean=%.4f\n",
			j.mode, j.sc.Agents, st.Runs, j.sc.P, j.sc.PAfter, at, st.Before, st.After, st.Noise, secs(st.T10), secs(st.T50), secs(st.T90),
			secs(st.Departs), z15, aband/float64(len(group)))
	}
	fmt.Fprintf(os.Stderr, "# %d runs in %s\n", len(jobs), time.Since(start).Round(time.Millisecond))
	return nil
}

// secs is a duration in seconds, or "never" for a negative one.
func secs(d time.Duration) string {
	if d < 0 {
		return "never"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 0, 64)
}

func format(j *job) string {
	sc, r := j.sc, j.r
	s := fmt.Sprintf("mode=%s agents=%d p=%s seed=%d occupancy=%.2f abandonment=%.3f", j.mode, sc.Agents,
		strconv.FormatFloat(sc.P, 'f', -1, 64), sc.Seed, r.Occupancy, r.Abandonment)
	s += fmt.Sprintf(" occupancy_exact=%.4f dials=%d live=%d abandoned=%d level=%.2f wait_ms=%d limited=%.3f",
		r.Occupancy, r.Dials, r.Live, r.Abandoned, r.Level, r.Wait.Milliseconds(), r.LimitedShare)
	s += fmt.Sprintf(" worst_day=%.3f worst_at=%s released=%d released_live=%d", r.WorstDay, r.WorstAt.Round(time.Second),
		r.Released, r.ReleasedLive)
	if a := sc.Adapt; a != nil {
		s += fmt.Sprintf(" dl_diff_target=%g max_level=%g", a.DiffTarget, a.MaxLevel)
	}
	if sc.PAfter > 0 {
		s += fmt.Sprintf(" scenario=drop p_after=%s change_at=%s react_s=%.1f level_before=%.2f level_after=%.2f",
			strconv.FormatFloat(sc.PAfter, 'f', -1, 64), sc.ChangeAt, r.React.Seconds(), r.LevelBefore, r.LevelAfter)
	}
	if t := j.told; t != nil {
		s += fmt.Sprintf(" react_told_s=%.1f abandonment_told=%.3f", t.r.React.Seconds(), t.r.Abandonment)
		ev := pacingsim.DropEvidence(sc, r.DialRate, pacingsim.ReactTarget, 4000, sc.Seed)
		s += fmt.Sprintf(" dial_rate_15s=%.2f evidence_15s=%.2f false_alarm_15s=%.3f", r.DialRate, ev.KL, ev.FalseAlarm)
	}
	return s + fmt.Sprintf(" sim_ms=%d", j.took.Milliseconds())
}

// peerDiffTarget is the peer's adaptive_dl_diff_target for a team of n
// agents: the agents it aims to keep ready on average. VICIdial's default,
// 0, aims at as many calls waiting as agents ready, which only the drop
// rules hold back (occupancy 0.61-0.63 at 3.0-3.3% abandonment, p = 0.2,
// about progressive's); these are the best of a scan of the targets
// (docs/benchmarks.md), an operator's best tuning found in hindsight;
// other sizes get 1.6·√n.
func peerDiffTarget(n int) float64 {
	switch n {
	case 10:
		return -4
	case 50:
		return -10
	case 100:
		return -16
	}
	return -math.Round(1.6 * math.Sqrt(float64(n)))
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}

// parseWindows reads -fast-windows: "weight,drop,rise;..." (empty: nil,
// the default windows).
func parseWindows(s string) ([]pacing.FastWindow, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []pacing.FastWindow
	for _, w := range strings.Split(s, ";") {
		f := strings.Split(w, ",")
		if len(f) != 3 {
			return nil, fmt.Errorf("%q is not weight,drop,rise", w)
		}
		var x [3]float64
		for i := range f {
			v, err := strconv.ParseFloat(strings.TrimSpace(f[i]), 64)
			if err != nil {
				return nil, fmt.Errorf("%q: %q is not a number", w, f[i])
			}
			x[i] = v
		}
		out = append(out, pacing.FastWindow{Weight: x[0], Drop: x[1], Rise: x[2]})
	}
	if err := pacing.NewEstimator().SetFastWindows(out); err != nil {
		return nil, err
	}
	return out, nil
}

func floats(s string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(s, ",") {
		x, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || x <= 0 || x > 1 {
			return nil, fmt.Errorf("%q is not a probability in (0, 1]", f)
		}
		out = append(out, x)
	}
	return out, nil
}
