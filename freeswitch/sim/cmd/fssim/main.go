// Command fssim runs the FreeSWITCH simulator: an event socket on
// 127.0.0.1:8021 (password ClueCon) and an HTTP control API on
// 127.0.0.1:8022, with far ends played from a scenario.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ringback/ringback/freeswitch/sim"
	"github.com/ringback/ringback/freeswitch/sim/scenario"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "fssim:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("fssim", flag.ContinueOnError)
	var (
		eslAddr  = fs.String("esl", envOr("FSSIM_ESL_ADDR", "127.0.0.1:8021"), "event socket listen address")
		password = fs.String("password", envOr("FSSIM_ESL_PASSWORD", "ClueCon"), "event socket password")
		control  = fs.String("control", envOr("FSSIM_CONTROL_ADDR", "127.0.0.1:8022"), `control API listen address ("-" disables)`)
		scale    = fs.Float64("time-scale", 1, "simulated seconds per real second (e.g. 100 runs a day of campaign in ~15 minutes)")
		seed     = fs.Uint64("seed", 0, "random seed for far-end behaviour (0: the scenario's own)")
		scenFile = fs.String("scenario", "", "scenario file (YAML or JSON); default: the built-in default scenario")
		maxSess  = fs.Int("max-sessions", 10000, "fsctl max_sessions at start (vanilla FreeSWITCH: 1000)")
		sps      = fs.Int("sps", 5000, "fsctl sps at start (vanilla FreeSWITCH: 30)")
		hostname = fs.String("hostname", "fssim", "FreeSWITCH-Hostname in events")
		verbose  = fs.Bool("v", false, "debug logging")
	)
	if err := fs.Parse(args); err != nil {
		return err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	cfg := sim.Config{
		ESLAddr: *eslAddr, Password: *password, ControlAddr: *control, TimeScale: *scale, Seed: *seed,
		MaxSessions: *maxSess, SessionsPerSecond: *sps, Hostname: *hostname, Logger: log,
	}
	if *scenFile != "" {
		data, err := os.ReadFile(*scenFile)
		if err != nil {
			return fmt.Errorf("read scenario: %w", err)
		}
		sc, err := scenario.Parse(data)
		if err != nil {
			return fmt.Errorf("scenario %s: %w", *scenFile, err)
		}
		cfg.Scenario = sc
	}
	s, err := sim.Start(ctx, cfg)
	if err != nil {
		return err
	}
	log.Info("fssim ready", "esl", s.ESLAddr(), "control", s.ControlURL())
	<-ctx.Done()
	log.Info("fssim stopping")
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		return errors.New("shutdown timed out")
	}
	return nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
