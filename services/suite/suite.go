// Package suite runs every Ringback service in one process, with the
// FreeSWITCH simulator and an in-process NATS server unless real ones are
// configured: the development setup behind `make run`, and what the
// end-to-end tests drive. Production runs each service's own binary.
package suite

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/ringback/ringback/freeswitch/sim"
	"github.com/ringback/ringback/freeswitch/sim/scenario"
	"github.com/ringback/ringback/services/cdr"
	"github.com/ringback/ringback/services/dialer"
	"github.com/ringback/ringback/services/gateway"
	"github.com/ringback/ringback/services/internal/server"
	"github.com/ringback/ringback/services/origination"
	"github.com/ringback/ringback/services/rating"
	"github.com/ringback/ringback/services/webhook"
)

// Options configure a suite run.
type Options struct {
	// Lookup reads configuration (os.LookupEnv when nil). FREESWITCH_ESL_ADDR
	// and NATS_URL, when set, point at real ones instead of the simulator
	// and the in-process NATS server.
	Lookup func(string) (string, bool)
	// SimESLAddr and SimControlAddr are where the simulator listens
	// (defaults 127.0.0.1:8021 and 127.0.0.1:8022); SimTimeScale speeds
	// its far ends up (default 1); SimScenario scripts them from the
	// first call on (nil: scenario.Default(); PUT /scenario on the control
	// API replaces it later).
	SimESLAddr, SimControlAddr string
	SimTimeScale               float64
	SimScenario                *scenario.Scenario
	// DevAccount is created at start with DevKey as an API key (a new key
	// when empty); "" creates none.
	DevAccount, DevKey string
	Log                *slog.Logger
	// Ready is called once everything serves.
	Ready func(Info)
	// DemoCampaign, if set and it returns an id, names the campaign the
	// gateway's /demo/banner shows; otherwise it shows the development
	// campaign.
	DemoCampaign func() string
}

// Info says where the suite serves.
type Info struct {
	HTTPURL       string // the gateway
	OriginationAt string // origination's gRPC address
	RatingAt      string // rating's gRPC address
	CDRAt         string // cdr's gRPC address
	WebhookAt     string // the webhook service's gRPC address
	DialerAt      string // the dialer's gRPC address
	NATSURL       string
	ESLAddr       string
	SimControlURL string // "" when a real FreeSWITCH is used
	DevAccountID  string
	DevKey        string
	DevTariffID   string // the development tariff, assigned to the development account
	// DevCampaignID and DevCampaignKey are the development click-to-call
	// campaign (its banner is the gateway's /demo/banner).
	DevCampaignID  string
	DevCampaignKey string
}

// Run runs the suite until ctx ends, then shuts every service down in two
// stages (a second signal forces it, see server.NotifyContext).
func Run(ctx context.Context, opts Options) error {
	lookup := opts.Lookup
	if lookup == nil {
		lookup = os.LookupEnv
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.NewJSONHandler(os.Stderr, nil))
	}
	var info Info
	over := map[string]string{}

	if addr, ok := lookup("FREESWITCH_ESL_ADDR"); ok && addr != "" {
		info.ESLAddr = addr
	} else {
		eslAddr, ctlAddr := opts.SimESLAddr, opts.SimControlAddr
		if eslAddr == "" {
			eslAddr = "127.0.0.1:8021"
		}
		if ctlAddr == "" {
			ctlAddr = "127.0.0.1:8022"
		}
		s, err := sim.Start(ctx, sim.Config{ESLAddr: eslAddr, ControlAddr: ctlAddr, TimeScale: opts.SimTimeScale,
			Scenario: opts.SimScenario, Logger: log.With("component", "fssim")})
		if err != nil {
			return fmt.Errorf("start the FreeSWITCH simulator: %w", err)
		}
		defer s.Close()
		info.ESLAddr, info.SimControlURL = s.ESLAddr(), s.ControlURL()
		over["FREESWITCH_ESL_ADDR"] = s.ESLAddr()
		over["FREESWITCH_ESL_PASSWORD"] = s.Password()
		log.Info("FreeSWITCH simulator started", "esl", s.ESLAddr(), "control", s.ControlURL())
	}
	if u, ok := lookup("NATS_URL"); ok && u != "" {
		info.NATSURL = u
	} else {
		dir, err := os.MkdirTemp("", "ringback-nats-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
		if err != nil {
			return fmt.Errorf("start in-process NATS: %w", err)
		}
		go ns.Start()
		if !ns.ReadyForConnections(10 * time.Second) {
			return errors.New("in-process NATS did not start")
		}
		defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
		info.NATSURL = ns.ClientURL()
		over["NATS_URL"] = ns.ClientURL()
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	reg := prometheus.NewRegistry()
	errs := make(chan error, 6)
	var wg sync.WaitGroup

	// rating first: origination authorizes every leg with it.
	type ratingUp struct {
		srv *server.Server
		svc *rating.Service
	}
	rateReady := make(chan ratingUp, 1)
	rateLookup := overlay(lookup, over, map[string]string{
		"RINGBACK_ADMIN_ADDR": envOr(lookup, "RINGBACK_RATING_ADMIN_ADDR", "127.0.0.1:9093"),
		"RINGBACK_GRPC_ADDR":  envOr(lookup, "RINGBACK_RATING_GRPC_ADDR", "127.0.0.1:50053"),
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		errs <- rating.Run(ctx, rateLookup, log.With("component", "rating"), rating.RunOptions{
			Registry: reg, Ready: func(s *server.Server, svc *rating.Service) { rateReady <- ratingUp{s, svc} },
		})
	}()
	var rate ratingUp
	select {
	case rate = <-rateReady:
	case err := <-errs:
		cancel()
		wg.Wait()
		return fmt.Errorf("rating: %w", err)
	}
	info.RatingAt = rate.srv.GRPCAddr().String()
	over["RINGBACK_RATING_ADDR"] = info.RatingAt

	// cdr: records every call's end; the gateway forwards queries to it.
	cdrReady := make(chan *server.Server, 1)
	cdrLookup := overlay(lookup, over, map[string]string{
		"RINGBACK_ADMIN_ADDR": envOr(lookup, "RINGBACK_CDR_ADMIN_ADDR", "127.0.0.1:9094"),
		"RINGBACK_GRPC_ADDR":  envOr(lookup, "RINGBACK_CDR_GRPC_ADDR", "127.0.0.1:50054"),
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		errs <- cdr.Run(ctx, cdrLookup, log.With("component", "cdr"), cdr.RunOptions{
			Registry: reg, Ready: func(s *server.Server, _ *cdr.Service) { cdrReady <- s },
		})
	}()
	select {
	case s := <-cdrReady:
		info.CDRAt = s.GRPCAddr().String()
		over["RINGBACK_CDR_ADDR"] = info.CDRAt
	case err := <-errs:
		cancel()
		wg.Wait()
		return fmt.Errorf("cdr: %w", err)
	}

	// webhook: delivers call events to subscribers. Development allows
	// loopback receivers and writes emails to the log unless told
	// otherwise.
	webhookReady := make(chan *server.Server, 1)
	webhookLookup := overlay(withDefaults(lookup, map[string]string{
		"RINGBACK_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8,::1/128",
		"RINGBACK_SMTP_ADDR":              "log",
	}), over, map[string]string{
		"RINGBACK_ADMIN_ADDR": envOr(lookup, "RINGBACK_WEBHOOK_ADMIN_ADDR", "127.0.0.1:9095"),
		"RINGBACK_GRPC_ADDR":  envOr(lookup, "RINGBACK_WEBHOOK_GRPC_ADDR", "127.0.0.1:50055"),
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		errs <- webhook.Run(ctx, webhookLookup, log.With("component", "webhook"), webhook.RunOptions{
			Registry: reg, Ready: func(s *server.Server, _ *webhook.Service) { webhookReady <- s },
		})
	}()
	select {
	case s := <-webhookReady:
		info.WebhookAt = s.GRPCAddr().String()
	case err := <-errs:
		cancel()
		wg.Wait()
		return fmt.Errorf("webhook: %w", err)
	}

	// then origination: the gateway needs its address.
	origReady := make(chan *server.Server, 1)
	origLookup := overlay(lookup, over, map[string]string{
		"RINGBACK_ADMIN_ADDR": envOr(lookup, "RINGBACK_ORIGINATION_ADMIN_ADDR", "127.0.0.1:9091"),
		"RINGBACK_GRPC_ADDR":  envOr(lookup, "RINGBACK_ORIGINATION_GRPC_ADDR", "127.0.0.1:50051"),
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		errs <- origination.Run(ctx, origLookup, log.With("component", "origination"), origination.RunOptions{
			Registry: reg, Ready: func(s *server.Server) { origReady <- s },
		})
	}()
	var origSrv *server.Server
	select {
	case origSrv = <-origReady:
	case err := <-errs:
		cancel()
		wg.Wait()
		return fmt.Errorf("origination: %w", err)
	}
	info.OriginationAt = origSrv.GRPCAddr().String()

	// dialer: outbound campaigns, placed through origination.
	dialerReady := make(chan *server.Server, 1)
	// Development: a campaign without calling hours may call at any hour
	// (trying the dialer must not depend on the time of day where its
	// numbers are); RINGBACK_DIALER_DEFAULT_HOURS sets it otherwise.
	dialerLookup := overlay(withDefaults(lookup, map[string]string{
		"RINGBACK_DIALER_DEFAULT_HOURS": "00:00-24:00",
	}), over, map[string]string{
		"RINGBACK_ADMIN_ADDR":       envOr(lookup, "RINGBACK_DIALER_ADMIN_ADDR", "127.0.0.1:9096"),
		"RINGBACK_GRPC_ADDR":        envOr(lookup, "RINGBACK_DIALER_GRPC_ADDR", "127.0.0.1:50056"),
		"RINGBACK_ORIGINATION_ADDR": info.OriginationAt,
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		errs <- dialer.Run(ctx, dialerLookup, log.With("component", "dialer"), dialer.RunOptions{
			Registry: reg, Ready: func(s *server.Server) { dialerReady <- s },
		})
	}()
	select {
	case s := <-dialerReady:
		info.DialerAt = s.GRPCAddr().String()
	case err := <-errs:
		cancel()
		wg.Wait()
		return fmt.Errorf("dialer: %w", err)
	}

	gwCfg, err := gateway.Load(overlay(lookup, over, map[string]string{
		"RINGBACK_ADMIN_ADDR":       envOr(lookup, "RINGBACK_GATEWAY_ADMIN_ADDR", "127.0.0.1:9090"),
		"RINGBACK_GRPC_ADDR":        envOr(lookup, "RINGBACK_GATEWAY_GRPC_ADDR", "127.0.0.1:50050"),
		"RINGBACK_ORIGINATION_ADDR": info.OriginationAt,
		"RINGBACK_CDR_ADDR":         info.CDRAt,
		"RINGBACK_WEBHOOK_ADDR":     info.WebhookAt,
		"RINGBACK_DIALER_ADDR":      info.DialerAt,
	}))
	if err != nil {
		cancel()
		wg.Wait()
		return err
	}
	gwReady := make(chan struct{})
	var demo atomic.Value // the development campaign's id, once created
	demo.Store("")
	wg.Add(1)
	go func() {
		defer wg.Done()
		errs <- gateway.Run(ctx, gwCfg, log.With("component", "gateway"), reg, gateway.RunOptions{
			DevAccount: opts.DevAccount, DevKey: opts.DevKey,
			DevAccountReady: func(id, key string) { info.DevAccountID, info.DevKey = id, key },
			DemoCampaign: func() string {
				if opts.DemoCampaign != nil {
					if id := opts.DemoCampaign(); id != "" {
						return id
					}
				}
				return demo.Load().(string)
			},
			Ready: func(s *server.Server) {
				info.HTTPURL = "http://" + s.PublicAddr().String()
				close(gwReady)
			},
		})
	}()
	select {
	case <-gwReady:
		if info.DevAccountID != "" {
			tctx, tcancel := context.WithTimeout(ctx, 30*time.Second)
			id, err := rate.svc.EnsureDevTariff(tctx, info.DevAccountID)
			tcancel()
			if err != nil {
				cancel()
				wg.Wait()
				return fmt.Errorf("development tariff: %w", err)
			}
			info.DevTariffID = id
			cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
			camp, err := EnsureDevCampaign(cctx, info.OriginationAt, info.DevAccountID)
			ccancel()
			if err != nil {
				cancel()
				wg.Wait()
				return fmt.Errorf("development campaign: %w", err)
			}
			info.DevCampaignID, info.DevCampaignKey = camp.GetId(), camp.GetPublicKey()
			demo.Store(camp.GetId())
		}
		if opts.Ready != nil {
			opts.Ready(info)
		}
	case err := <-errs:
		cancel()
		wg.Wait()
		return fmt.Errorf("gateway: %w", err)
	}
	// Either service ending ends the suite.
	first := <-errs
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		first = errors.Join(first, err)
	}
	return first
}

// overlay answers from the maps first (later ones win), then lookup.
func overlay(lookup func(string) (string, bool), maps ...map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		for i := len(maps) - 1; i >= 0; i-- {
			if v, ok := maps[i][name]; ok {
				return v, true
			}
		}
		return lookup(name)
	}
}

// withDefaults answers from lookup, or from defs for what lookup does not
// set.
func withDefaults(lookup func(string) (string, bool), defs map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		if v, ok := lookup(name); ok && v != "" {
			return v, true
		}
		if v, ok := defs[name]; ok {
			return v, true
		}
		return lookup(name)
	}
}

func envOr(lookup func(string) (string, bool), name, def string) string {
	if v, ok := lookup(name); ok && v != "" {
		return v
	}
	return def
}
