// Package server runs what every Ringback service exposes: a gRPC server
// (with the standard gRPC health service; reflection only on request), an
// admin HTTP server (/metrics from the process's own Prometheus registry,
// /healthz, /readyz) and optionally a public HTTP handler, and it stops them
// in two stages (STYLE rule 2, after livekit/sip):
//
//  1. First SIGINT/SIGTERM (Run's ctx is canceled): /readyz answers 503, the
//     gRPC health service reports NOT_SERVING, Draining() turns true and
//     Inflight().Begin refuses new work; the OnDrain callbacks run, then the
//     drain function, then Run waits for live work (Inflight) to end while
//     logging how much remains. Listeners stay open meanwhile: live calls
//     still need their control RPCs (hangup, transfer) and the load balancer
//     needs /readyz to take the pod out of rotation.
//  2. When draining is done, the servers stop gracefully within StopTimeout.
//     A second signal (Forced) or ShutdownTimeout cuts stage 1 short and the
//     servers stop at once.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/ringback/ringback/services/internal/logging"
)

// Errors Run returns when draining was cut short.
var (
	ErrForced          = errors.New("shutdown forced by a second signal")
	ErrShutdownTimeout = errors.New("shutdown timeout elapsed")
)

// Defaults for zero Config fields.
const (
	DefaultShutdownTimeout  = 5 * time.Minute
	DefaultStopTimeout      = 10 * time.Second
	DefaultDrainLogInterval = 5 * time.Second
	DefaultCheckTimeout     = 2 * time.Second
)

// Config says what to serve where. Addresses are host:port; port 0 picks a
// free port (see AdminAddr and friends for the one picked).
type Config struct {
	// Service names the service in logs, in metric names
	// (ringback_<service>_...) and in the gRPC health service. Lower case,
	// digits and underscores.
	Service string
	// AdminAddr is where /metrics, /healthz and /readyz are served. Required.
	AdminAddr string
	// GRPCAddr is where gRPC is served; empty serves no gRPC.
	GRPCAddr string
	// PublicAddr and Public: an HTTP handler for the outside world (the
	// gateway's REST API and banner endpoint); empty/nil serves none.
	PublicAddr string
	Public     http.Handler
	// ShutdownTimeout is the longest stage 1 (drain) may take (0: DefaultShutdownTimeout).
	ShutdownTimeout time.Duration
	// StopTimeout is how long in-flight RPCs and HTTP requests get to finish
	// once draining is over, before connections are closed (0: DefaultStopTimeout).
	StopTimeout time.Duration
	// DrainLogInterval is how often stage 1 logs the live work remaining
	// (0: DefaultDrainLogInterval).
	DrainLogInterval time.Duration
	// CheckTimeout bounds each readiness check (0: DefaultCheckTimeout).
	CheckTimeout time.Duration
	// Reflection registers the gRPC reflection service (for grpcurl in development).
	Reflection bool
	// Pprof serves net/http/pprof under /debug/pprof/ on the admin server.
	Pprof bool
	// GRPCOptions are extra options for grpc.NewServer (interceptors are chained
	// after the server's metrics interceptor).
	GRPCOptions []grpc.ServerOption
	// MaxConnectionAge, when positive, asks each gRPC client to move to a new
	// connection once its connection is that old (HTTP/2 GOAWAY; grpc-go adds
	// ±10% jitter). Kubernetes balances connections, not requests: without
	// it, a client keeps the replica it first reached for good, and after a
	// rollout every client may sit on the replica that restarted first. RPCs
	// in flight, streams included, finish on the old connection however long
	// they take; new ones go to the new connection.
	MaxConnectionAge time.Duration
}

var serviceName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

type check struct {
	name string
	fn   func(context.Context) error
}

// Server is one service's set of servers. Make it with New, register gRPC
// services and readiness checks, then call Run once. If Run is never called,
// Close releases the listeners.
type Server struct {
	cfg      Config
	log      *slog.Logger
	reg      *prometheus.Registry
	grpc     *grpc.Server
	health   *health.Server
	admin    *http.Server
	adminMux *http.ServeMux
	public   *http.Server

	adminLis, grpcLis, publicLis net.Listener

	inflight Inflight
	draining atomic.Bool
	started  atomic.Bool

	mu      sync.Mutex
	checks  []check
	onDrain []func()
}

// New validates cfg, binds the listeners (so a busy port fails here, before
// any work starts) and builds the servers. reg is the process's registry
// (never the global one); the Go and process collectors are added to it
// unless already there. log is the service's logger.
func New(cfg Config, log *slog.Logger, reg *prometheus.Registry) (*Server, error) {
	if !serviceName.MatchString(cfg.Service) {
		return nil, fmt.Errorf("server: service name %q must match %s", cfg.Service, serviceName)
	}
	if cfg.AdminAddr == "" {
		return nil, errors.New("server: admin address not set")
	}
	if (cfg.PublicAddr == "") != (cfg.Public == nil) {
		return nil, errors.New("server: public address and public handler go together")
	}
	if log == nil || reg == nil {
		return nil, errors.New("server: logger and registry are required")
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = DefaultShutdownTimeout
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = DefaultStopTimeout
	}
	if cfg.DrainLogInterval <= 0 {
		cfg.DrainLogInterval = DefaultDrainLogInterval
	}
	if cfg.CheckTimeout <= 0 {
		cfg.CheckTimeout = DefaultCheckTimeout
	}
	s := &Server{cfg: cfg, log: log, reg: reg}

	m, err := newMetrics(cfg.Service, reg, s)
	if err != nil {
		return nil, err
	}

	opts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(m.unary),
		grpc.ChainStreamInterceptor(m.stream),
	}
	if cfg.MaxConnectionAge > 0 {
		// MaxConnectionAgeGrace stays infinite: a long export is not cut.
		opts = append(opts, grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionAge: cfg.MaxConnectionAge}))
	}
	opts = append(opts, cfg.GRPCOptions...)
	s.grpc = grpc.NewServer(opts...)
	s.health = health.NewServer()
	healthpb.RegisterHealthServer(s.grpc, s.health)
	if cfg.Reflection {
		reflection.Register(s.grpc)
	}

	s.adminMux = http.NewServeMux()
	s.adminMux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		Registry:          reg,
		EnableOpenMetrics: true,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelError),
	}))
	s.adminMux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	s.adminMux.HandleFunc("GET /readyz", s.serveReadyz)
	if cfg.Pprof {
		s.adminMux.HandleFunc("/debug/pprof/", pprof.Index)
		s.adminMux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		s.adminMux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		s.adminMux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		s.adminMux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	errLog := slog.NewLogLogger(log.Handler(), slog.LevelWarn)
	s.admin = &http.Server{Handler: s.adminMux, ReadHeaderTimeout: 5 * time.Second, ErrorLog: errLog}
	if cfg.Public != nil {
		// No WriteTimeout: the gateway streams live call status (SSE).
		s.public = &http.Server{
			Handler:           m.instrumentHTTP(cfg.Public),
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          errLog,
		}
	}

	if err := s.listen(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *Server) listen() error {
	var lc net.ListenConfig
	var err error
	ctx := context.Background()
	if s.adminLis, err = lc.Listen(ctx, "tcp", s.cfg.AdminAddr); err != nil {
		return fmt.Errorf("server: listen admin: %w", err)
	}
	if s.cfg.GRPCAddr != "" {
		if s.grpcLis, err = lc.Listen(ctx, "tcp", s.cfg.GRPCAddr); err != nil {
			return fmt.Errorf("server: listen grpc: %w", err)
		}
	}
	if s.public != nil {
		if s.publicLis, err = lc.Listen(ctx, "tcp", s.cfg.PublicAddr); err != nil {
			return fmt.Errorf("server: listen public: %w", err)
		}
	}
	return nil
}

// Close releases the listeners of a Server whose Run was never called.
func (s *Server) Close() {
	if s.started.Load() {
		return
	}
	for _, l := range []net.Listener{s.adminLis, s.grpcLis, s.publicLis} {
		if l != nil {
			_ = l.Close()
		}
	}
	s.grpc.Stop()
}

// GRPC is where the service registers its gRPC services, before Run.
func (s *Server) GRPC() grpc.ServiceRegistrar { return s.grpc }

// HandleAdmin adds a handler to the admin server (e.g. /debug/calls), before Run.
func (s *Server) HandleAdmin(pattern string, h http.Handler) { s.adminMux.Handle(pattern, h) }

// AdminAddr, GRPCAddr and PublicAddr return the bound addresses (nil when
// not served), useful when the configured port was 0.
func (s *Server) AdminAddr() net.Addr { return s.adminLis.Addr() }

func (s *Server) GRPCAddr() net.Addr {
	if s.grpcLis == nil {
		return nil
	}
	return s.grpcLis.Addr()
}

func (s *Server) PublicAddr() net.Addr {
	if s.publicLis == nil {
		return nil
	}
	return s.publicLis.Addr()
}

// Inflight is the live-work counter Run waits on when draining. A service
// that carries calls wraps each call in Begin/end and refuses the call when
// Begin says no.
func (s *Server) Inflight() *Inflight { return &s.inflight }

// Draining reports whether the first shutdown stage has begun: the service
// must take no new work.
func (s *Server) Draining() bool { return s.draining.Load() }

// OnDrain registers f to run (synchronously, in order) when draining begins,
// before the drain function: stop consumers, stop the dialer's pacing loop.
func (s *Server) OnDrain(f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onDrain = append(s.onDrain, f)
}

// AddReadiness registers a check /readyz runs on every request (with
// CheckTimeout): e.g. the database ping, the switch connection. A failing
// check makes the service unready, not unhealthy: it stays up and retries.
func (s *Server) AddReadiness(name string, fn func(ctx context.Context) error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks = append(s.checks, check{name: name, fn: fn})
}

func (s *Server) serveReadyz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if s.Draining() {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "draining")
		return
	}
	s.mu.Lock()
	checks := append([]check(nil), s.checks...)
	s.mu.Unlock()

	failures := make([]string, len(checks))
	var wg sync.WaitGroup
	for i, c := range checks {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(r.Context(), s.cfg.CheckTimeout)
			defer cancel()
			if err := c.fn(ctx); err != nil {
				failures[i] = fmt.Sprintf("%s: %v", c.name, err)
			}
		})
	}
	wg.Wait()
	var failed []string
	for _, f := range failures {
		if f != "" {
			failed = append(failed, f)
		}
	}
	if len(failed) > 0 {
		sort.Strings(failed)
		s.log.Warn("not ready", "failed", failed)
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, strings.Join(failed, "\n"))
		return
	}
	fmt.Fprintln(w, "ok")
}

// Run serves until ctx is canceled, then shuts down in two stages (see the
// package doc). drain, which may be nil, does the service's own draining
// (its ctx ends at the second signal or ShutdownTimeout); Run then waits
// for Inflight to reach zero. Run returns nil after a complete drain, an
// error wrapping ErrForced or ErrShutdownTimeout when draining was cut
// short, or the error of a server that failed.
func (s *Server) Run(ctx context.Context, drain func(ctx context.Context) error) error {
	if !s.started.CompareAndSwap(false, true) {
		return errors.New("server: Run called twice")
	}
	serveErr := make(chan error, 3)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := s.admin.Serve(s.adminLis); !errors.Is(err, http.ErrServerClosed) {
			serveErr <- fmt.Errorf("admin server: %w", err)
		}
	})
	if s.grpcLis != nil {
		wg.Go(func() {
			if err := s.grpc.Serve(s.grpcLis); err != nil {
				serveErr <- fmt.Errorf("grpc server: %w", err)
			}
		})
	}
	if s.public != nil {
		wg.Go(func() {
			if err := s.public.Serve(s.publicLis); !errors.Is(err, http.ErrServerClosed) {
				serveErr <- fmt.Errorf("public server: %w", err)
			}
		})
	}
	s.health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	for name := range s.grpc.GetServiceInfo() {
		s.health.SetServingStatus(name, healthpb.HealthCheckResponse_SERVING)
	}
	s.log.Info("serving", "admin_addr", s.AdminAddr().String(),
		"grpc_addr", addrString(s.GRPCAddr()), "public_addr", addrString(s.PublicAddr()))

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		s.log.Error("server failed, stopping", logging.Err(err))
		s.beginDrain()
		s.stopNow()
		wg.Wait()
		return err
	}

	err := s.drain(ctx, drain)
	if err != nil {
		s.stopNow()
	} else {
		s.stopGracefully(Forced(ctx))
	}
	wg.Wait()
	return err
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

func (s *Server) beginDrain() {
	s.draining.Store(true)
	s.inflight.Close()
	s.health.Shutdown() // every service NOT_SERVING from now on
	s.mu.Lock()
	callbacks := append([]func(){}, s.onDrain...)
	s.mu.Unlock()
	for _, f := range callbacks {
		f()
	}
}

// drain is stage 1. It returns nil when all work ended, or why it stopped waiting.
func (s *Server) drain(ctx context.Context, drain func(context.Context) error) error {
	start := time.Now()
	s.log.Info("draining: refusing new work, waiting for live work to end",
		"cause", context.Cause(ctx).Error(), "live", s.inflight.Len(), "timeout", s.cfg.ShutdownTimeout.String())
	s.beginDrain()

	dctx, cancel := context.WithTimeoutCause(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout, ErrShutdownTimeout)
	defer cancel()
	force := Forced(ctx)
	stopForce := make(chan struct{})
	defer close(stopForce)
	go func() {
		select {
		case <-force:
			cancel()
		case <-stopForce:
		}
	}()

	done := make(chan error, 1)
	go func() {
		if drain != nil {
			if err := drain(dctx); err != nil {
				done <- fmt.Errorf("drain: %w", err)
				return
			}
		}
		done <- s.inflight.Wait(dctx)
	}()

	tick := time.NewTicker(s.cfg.DrainLogInterval)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			if err == nil {
				s.log.Info("drained", "elapsed", time.Since(start).Round(time.Millisecond).String())
				return nil
			}
			if dctx.Err() == nil {
				s.log.Error("drain failed", logging.Err(err))
				return err
			}
			return s.interrupted(dctx, force, start)
		case <-dctx.Done():
			// Don't wait for a drain function that ignores its context.
			return s.interrupted(dctx, force, start)
		case <-tick.C:
			s.log.Info("draining", "live", s.inflight.Len(), "elapsed", time.Since(start).Round(time.Second).String())
		}
	}
}

func (s *Server) interrupted(dctx context.Context, force <-chan struct{}, start time.Time) error {
	cause := ErrShutdownTimeout
	select {
	case <-force:
		cause = ErrForced
	default:
	}
	live := s.inflight.Len()
	s.log.Warn("drain cut short, exiting now", "cause", cause.Error(), "live", live,
		"elapsed", time.Since(start).Round(time.Millisecond).String())
	return fmt.Errorf("shutdown with %d live: %w", live, cause)
}

// stopGracefully is stage 2: in-flight requests get StopTimeout (cut short by
// force), then connections are closed.
func (s *Server) stopGracefully(force <-chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.StopTimeout)
	defer cancel()
	go func() {
		select {
		case <-force:
			cancel()
		case <-ctx.Done():
		}
	}()
	var wg sync.WaitGroup
	wg.Go(func() {
		done := make(chan struct{})
		go func() { s.grpc.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			s.log.Warn("grpc: in-flight calls did not finish in time, closing")
			s.grpc.Stop()
			<-done
		}
	})
	if s.public != nil {
		wg.Go(func() {
			if err := s.public.Shutdown(ctx); err != nil {
				s.log.Warn("public http: requests did not finish in time, closing", logging.Err(err))
				_ = s.public.Close()
			}
		})
	}
	wg.Wait()
	// Admin last, so /metrics and /readyz are observable until the end.
	if err := s.admin.Shutdown(ctx); err != nil {
		_ = s.admin.Close()
	}
	s.log.Info("stopped")
}

func (s *Server) stopNow() {
	s.grpc.Stop()
	if s.public != nil {
		_ = s.public.Close()
	}
	_ = s.admin.Close()
	s.log.Info("stopped")
}

// metrics are the server's own: gRPC and public HTTP requests, live work, draining.
type metrics struct {
	grpcRequests *prometheus.CounterVec
	grpcDuration *prometheus.HistogramVec
	httpRequests *prometheus.CounterVec
	httpDuration *prometheus.HistogramVec
}

func newMetrics(service string, reg *prometheus.Registry, s *Server) (*metrics, error) {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "ringback", Subsystem: service, Name: name, Help: help}
	}
	m := &metrics{
		grpcRequests: prometheus.NewCounterVec(prometheus.CounterOpts(opts("grpc_requests_total",
			"gRPC requests handled, by full method and status code.")), []string{"method", "code"}),
		grpcDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "ringback", Subsystem: service, Name: "grpc_request_duration_seconds",
			Help: "Time to handle a gRPC request (for streams: the stream's life), by full method.",
		}, []string{"method"}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts(opts("http_requests_total",
			"Public HTTP requests handled, by method and status code.")), []string{"method", "code"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "ringback", Subsystem: service, Name: "http_request_duration_seconds",
			Help: "Time to handle a public HTTP request, by method.",
		}, []string{"method"}),
	}
	draining := prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("draining",
		"1 while the service drains after a shutdown signal, else 0.")), func() float64 {
		if s.Draining() {
			return 1
		}
		return 0
	})
	live := prometheus.NewGaugeFunc(prometheus.GaugeOpts(opts("inflight",
		"Live units of work (calls) the service would wait for when draining.")), func() float64 {
		return float64(s.inflight.Len())
	})
	for _, c := range []prometheus.Collector{m.grpcRequests, m.grpcDuration, m.httpRequests, m.httpDuration, draining, live} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("server: register metrics: %w", err)
		}
	}
	// One process may run several services (cmd/ringback) on one registry:
	// the runtime collectors are shared.
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	} {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("server: register runtime metrics: %w", err)
			}
		}
	}
	return m, nil
}

func (m *metrics) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := h(ctx, req)
	m.grpcRequests.WithLabelValues(info.FullMethod, status.Code(err).String()).Inc()
	m.grpcDuration.WithLabelValues(info.FullMethod).Observe(time.Since(start).Seconds())
	return resp, err
}

func (m *metrics) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	start := time.Now()
	err := h(srv, ss)
	m.grpcRequests.WithLabelValues(info.FullMethod, status.Code(err).String()).Inc()
	m.grpcDuration.WithLabelValues(info.FullMethod).Observe(time.Since(start).Seconds())
	return err
}

func (m *metrics) instrumentHTTP(h http.Handler) http.Handler {
	return promhttp.InstrumentHandlerDuration(m.httpDuration,
		promhttp.InstrumentHandlerCounter(m.httpRequests, h))
}
