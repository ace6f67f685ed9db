package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"github.com/ringback/ringback/services/internal/logging"
	"github.com/ringback/ringback/services/internal/server"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// syncBuffer is a log sink that Run's goroutines and the test share.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type harness struct {
	t      *testing.T
	srv    *server.Server
	logs   *syncBuffer
	http   *http.Client
	ctx    context.Context
	drain  func()
	force  func()
	result chan error
}

// start builds a Server on free loopback ports and runs it with drainFn.
func start(t *testing.T, cfg server.Config, drainFn func(context.Context) error) *harness {
	t.Helper()
	if cfg.Service == "" {
		cfg.Service = "test"
	}
	cfg.AdminAddr = "127.0.0.1:0"
	if cfg.GRPCAddr == "" {
		cfg.GRPCAddr = "127.0.0.1:0"
	}
	if cfg.DrainLogInterval == 0 {
		cfg.DrainLogInterval = 20 * time.Millisecond
	}
	logs := &syncBuffer{}
	srv, err := server.New(cfg, logging.New(logs, slog.LevelDebug, cfg.Service), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	h := &harness{t: t, srv: srv, logs: logs, http: &http.Client{Transport: tr, Timeout: 5 * time.Second}, result: make(chan error, 1)}
	h.ctx, h.drain, h.force = server.WithStages(t.Context())
	go func() { h.result <- srv.Run(h.ctx, drainFn) }()
	t.Cleanup(func() {
		h.force()
		select {
		case <-h.result:
		case <-time.After(5 * time.Second):
			t.Error("Run did not return after force")
		}
	})
	// Wait until the admin server answers.
	deadline := time.Now().Add(5 * time.Second)
	for {
		if code, _ := h.get("/healthz"); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("admin server never answered")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return h
}

func (h *harness) url(path string) string { return "http://" + h.srv.AdminAddr().String() + path }

func (h *harness) get(path string) (int, string) {
	resp, err := h.http.Get(h.url(path))
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (h *harness) wait() error {
	h.t.Helper()
	select {
	case err := <-h.result:
		h.result <- err // let Cleanup see it too
		return err
	case <-time.After(5 * time.Second):
		h.t.Fatal("Run did not return")
		return nil
	}
}

func (h *harness) healthStatus(service string) (healthpb.HealthCheckResponse_ServingStatus, error) {
	conn, err := grpc.NewClient(h.srv.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(h.t.Context(), 5*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return 0, err
	}
	return resp.GetStatus(), nil
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.DiscardHandler)
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() }) // parallel subtests outlive a defer
	tests := []struct {
		name string
		cfg  server.Config
		want string
	}{
		{"bad service name", server.Config{Service: "Call-Origination", AdminAddr: "127.0.0.1:0"}, "service name"},
		{"no admin address", server.Config{Service: "x"}, "admin address"},
		{"public without handler", server.Config{Service: "x", AdminAddr: "127.0.0.1:0", PublicAddr: "127.0.0.1:0"}, "go together"},
		{"busy port", server.Config{Service: "x", AdminAddr: "127.0.0.1:0", GRPCAddr: busy.Addr().String()}, "listen grpc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, err := server.New(tt.cfg, log, prometheus.NewRegistry())
			if err == nil {
				srv.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestAdminEndpoints(t *testing.T) {
	t.Parallel()
	h := start(t, server.Config{}, nil)
	// A hanging check must fail after CheckTimeout, not hang /readyz.
	h2 := start(t, server.Config{CheckTimeout: 50 * time.Millisecond}, nil)
	h2.srv.AddReadiness("switch", func(ctx context.Context) error {
		<-ctx.Done()
		return ctx.Err()
	})
	h2.srv.AddReadiness("database", func(ctx context.Context) error { return nil })

	tests := []struct {
		name     string
		h        *harness
		path     string
		wantCode int
		wantBody []string
	}{
		{"healthz", h, "/healthz", 200, []string{"ok"}},
		{"readyz without checks", h, "/readyz", 200, []string{"ok"}},
		{"readyz one check hangs", h2, "/readyz", 503, []string{"switch: context deadline exceeded"}},
		{"metrics", h, "/metrics", 200, []string{"ringback_test_draining 0", "ringback_test_inflight 0", "go_goroutines", "process_"}},
		{"unknown path", h, "/nope", 404, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, body := tt.h.get(tt.path)
			if code != tt.wantCode {
				t.Errorf("GET %s = %d, want %d: %s", tt.path, code, tt.wantCode, body)
			}
			for _, w := range tt.wantBody {
				if !strings.Contains(body, w) {
					t.Errorf("GET %s body lacks %q:\n%.2000s", tt.path, w, body)
				}
			}
		})
	}

	t.Run("readyz follows checks", func(t *testing.T) {
		t.Parallel()
		var mu sync.Mutex
		var dbErr error
		h3 := start(t, server.Config{}, nil)
		h3.srv.AddReadiness("database", func(ctx context.Context) error {
			mu.Lock()
			defer mu.Unlock()
			return dbErr
		})
		if code, body := h3.get("/readyz"); code != 200 {
			t.Fatalf("readyz = %d %s, want 200", code, body)
		}
		mu.Lock()
		dbErr = errors.New("connection refused")
		mu.Unlock()
		if code, body := h3.get("/readyz"); code != 503 || !strings.Contains(body, "database: connection refused") {
			t.Fatalf("readyz = %d %q, want 503 naming the database", code, body)
		}
		if code, _ := h3.get("/healthz"); code != 200 {
			t.Fatalf("healthz = %d while unready, want 200", code)
		}
	})
}

func TestGRPCHealthAndMetrics(t *testing.T) {
	t.Parallel()
	h := start(t, server.Config{}, nil)
	st, err := h.healthStatus("")
	if err != nil || st != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v; want SERVING", st, err)
	}
	st, err = h.healthStatus("grpc.health.v1.Health")
	if err != nil || st != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health of the health service = %v, %v; want SERVING", st, err)
	}
	if _, err := h.healthStatus("no.such.Service"); status.Code(err) != codes.NotFound {
		t.Fatalf("health of unknown service: %v, want NotFound", err)
	}
	_, body := h.get("/metrics")
	for _, want := range []string{
		`ringback_test_grpc_requests_total{code="OK",method="/grpc.health.v1.Health/Check"} 2`,
		`ringback_test_grpc_requests_total{code="NotFound",method="/grpc.health.v1.Health/Check"} 1`,
		`ringback_test_grpc_request_duration_seconds_count{method="/grpc.health.v1.Health/Check"} 3`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// With MaxConnectionAge a client is moved to new connections as they age
// (so that, behind a Kubernetes Service, clients spread again over the
// replicas), and no RPC fails for it: a stream open across the move ends
// normally on its old connection. Without it, one connection serves all.
func TestMaxConnectionAgeMovesClients(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		age      time.Duration
		minDials int64
		maxDials int64
	}{
		{age: 0, minDials: 1, maxDials: 1},
		{age: 200 * time.Millisecond, minDials: 3, maxDials: 1 << 20},
	} {
		t.Run(fmt.Sprint(tt.age), func(t *testing.T) {
			t.Parallel()
			h := start(t, server.Config{MaxConnectionAge: tt.age}, nil)
			var dials atomic.Int64
			conn, err := grpc.NewClient(h.srv.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
				grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
					dials.Add(1)
					return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
				}))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			client := healthpb.NewHealthClient(conn)
			// A Watch stream opened first stays open across the moves.
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			watch, err := client.Watch(ctx, &healthpb.HealthCheckRequest{})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := watch.Recv(); err != nil {
				t.Fatal(err)
			}
			for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
				rctx, rcancel := context.WithTimeout(t.Context(), 5*time.Second)
				_, err := client.Check(rctx, &healthpb.HealthCheckRequest{})
				rcancel()
				if err != nil {
					t.Fatalf("Check after %d dials: %v", dials.Load(), err)
				}
			}
			// The stream is still open: it ends when its client cancels it,
			// not when its connection was moved away from.
			cancel()
			if resp, err := watch.Recv(); status.Code(err) != codes.Canceled {
				t.Fatalf("the stream after %d dials: %v, %v (want it canceled by the client)", dials.Load(), resp, err)
			}
			if n := dials.Load(); n < tt.minDials || n > tt.maxDials {
				t.Fatalf("age %s: %d connections in a second, want %d to %d", tt.age, n, tt.minDials, tt.maxDials)
			}
		})
	}
}

func TestReflection(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		reflection bool
		want       codes.Code
	}{
		{"off by default", false, codes.Unimplemented},
		{"on request", true, codes.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := start(t, server.Config{Reflection: tt.reflection}, nil)
			conn, err := grpc.NewClient(h.srv.GRPCAddr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			// Send may see io.EOF when the server already ended the stream;
			// the status is what Recv returns.
			_ = stream.Send(&reflectionpb.ServerReflectionRequest{
				MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
			})
			_, err = stream.Recv()
			_ = stream.CloseSend()
			if status.Code(err) != tt.want {
				t.Fatalf("reflection: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestTwoStageShutdownDrainsLiveWork(t *testing.T) {
	t.Parallel()
	public := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "banner") })
	drainCalled := make(chan struct{})
	var onDrain []string
	var mu sync.Mutex
	h := start(t, server.Config{PublicAddr: "127.0.0.1:0", Public: public}, func(ctx context.Context) error {
		close(drainCalled)
		return nil
	})
	h.srv.OnDrain(func() { mu.Lock(); onDrain = append(onDrain, "consumers stopped"); mu.Unlock() })

	end, ok := h.srv.Inflight().Begin()
	if !ok {
		t.Fatal("Begin refused before draining")
	}
	if code, _ := h.get("/readyz"); code != 200 {
		t.Fatalf("readyz = %d before drain", code)
	}

	h.drain() // first signal

	<-drainCalled
	if !h.srv.Draining() {
		t.Error("Draining() false after the first signal")
	}
	mu.Lock()
	if len(onDrain) != 1 {
		t.Errorf("OnDrain callbacks ran %d times, want 1", len(onDrain))
	}
	mu.Unlock()
	if _, ok := h.srv.Inflight().Begin(); ok {
		t.Error("Begin accepted new work while draining")
	}
	if code, body := h.get("/readyz"); code != 503 || !strings.Contains(body, "draining") {
		t.Errorf("readyz = %d %q while draining, want 503 draining", code, body)
	}
	if code, _ := h.get("/healthz"); code != 200 {
		t.Errorf("healthz = %d while draining, want 200", code)
	}
	if st, err := h.healthStatus(""); err != nil || st != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("grpc health = %v, %v while draining; want NOT_SERVING", st, err)
	}
	if _, body := h.get("/metrics"); !strings.Contains(body, "ringback_test_draining 1") || !strings.Contains(body, "ringback_test_inflight 1") {
		t.Errorf("metrics do not show draining with 1 live")
	}
	// Live calls still need the public API while draining.
	resp, err := h.http.Get("http://" + h.srv.PublicAddr().String() + "/")
	if err != nil {
		t.Fatalf("public handler unreachable while draining: %v", err)
	}
	resp.Body.Close()

	eventually(t, "a progress line with the live count", func() bool {
		for _, line := range strings.Split(h.logs.String(), "\n") {
			if strings.Contains(line, `"msg":"draining"`) && strings.Contains(line, `"live":1`) {
				return true
			}
		}
		return false
	})
	select {
	case err := <-h.result:
		t.Fatalf("Run returned %v with a call still live", err)
	default:
	}

	end() // the last call hangs up
	end() // extra calls are ignored
	if err := h.wait(); err != nil {
		t.Fatalf("Run = %v, want nil after a full drain", err)
	}
	for _, addr := range []net.Addr{h.srv.AdminAddr(), h.srv.GRPCAddr(), h.srv.PublicAddr()} {
		if c, err := net.DialTimeout("tcp", addr.String(), time.Second); err == nil {
			c.Close()
			t.Errorf("%v still accepts connections after Run returned", addr)
		}
	}
	if !strings.Contains(h.logs.String(), `"msg":"drained"`) {
		t.Errorf("no drained log line:\n%s", h.logs.String())
	}
}

func TestDrainCutShort(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		cfg        server.Config
		stuckDrain bool // a drain function that ignores its ctx
		second     bool // send the second signal
		want       error
	}{
		{"second signal", server.Config{}, false, true, server.ErrForced},
		{"shutdown timeout", server.Config{ShutdownTimeout: 100 * time.Millisecond}, false, false, server.ErrShutdownTimeout},
		{"drain func ignoring ctx", server.Config{}, true, true, server.ErrForced},
		{"drain func ignoring ctx, timeout", server.Config{ShutdownTimeout: 100 * time.Millisecond}, true, false, server.ErrShutdownTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var drainFn func(context.Context) error
			stuck := make(chan struct{})
			t.Cleanup(func() { close(stuck) })
			if tt.stuckDrain {
				drainFn = func(context.Context) error { <-stuck; return nil }
			}
			h := start(t, tt.cfg, drainFn)
			if _, ok := h.srv.Inflight().Begin(); !ok { // a call that never ends
				t.Fatal("Begin refused")
			}
			h.drain()
			eventually(t, "draining", h.srv.Draining)
			if tt.second {
				h.force()
			}
			start := time.Now()
			err := h.wait()
			if !errors.Is(err, tt.want) {
				t.Fatalf("Run = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), "1 live") {
				t.Errorf("error %q does not say how many were live", err)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Errorf("Run took %v to return after the cut", d)
			}
			if c, err := net.DialTimeout("tcp", h.srv.AdminAddr().String(), time.Second); err == nil {
				c.Close()
				t.Error("admin still accepts connections")
			}
		})
	}
}

func TestDrainFuncError(t *testing.T) {
	t.Parallel()
	h := start(t, server.Config{}, func(context.Context) error { return errors.New("consumer stuck") })
	h.drain()
	err := h.wait()
	if err == nil || !strings.Contains(err.Error(), "drain: consumer stuck") {
		t.Fatalf("Run = %v, want the drain error", err)
	}
}

func TestRunTwice(t *testing.T) {
	t.Parallel()
	h := start(t, server.Config{}, nil)
	if err := h.srv.Run(t.Context(), nil); err == nil {
		t.Fatal("second Run succeeded")
	}
}

func TestInflight(t *testing.T) {
	t.Parallel()
	t.Run("wait returns when work ends", func(t *testing.T) {
		t.Parallel()
		var f server.Inflight
		ends := make([]func(), 3)
		for i := range ends {
			end, ok := f.Begin()
			if !ok {
				t.Fatal("Begin refused")
			}
			ends[i] = end
		}
		if f.Len() != 3 {
			t.Fatalf("Len = %d", f.Len())
		}
		done := make(chan error)
		go func() { done <- f.Wait(t.Context()) }()
		for _, end := range ends {
			select {
			case <-done:
				t.Fatal("Wait returned with work live")
			default:
			}
			end()
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
	t.Run("wait honours ctx", func(t *testing.T) {
		t.Parallel()
		var f server.Inflight
		f.Begin()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
		defer cancel()
		if err := f.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wait = %v", err)
		}
	})
	t.Run("close refuses new work only", func(t *testing.T) {
		t.Parallel()
		var f server.Inflight
		end, _ := f.Begin()
		f.Close()
		if !f.Closed() {
			t.Error("Closed false")
		}
		if _, ok := f.Begin(); ok {
			t.Error("Begin after Close succeeded")
		}
		if f.Len() != 1 {
			t.Errorf("Len = %d, want 1", f.Len())
		}
		end()
		if err := f.Wait(t.Context()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("concurrent begin and close", func(t *testing.T) {
		t.Parallel()
		var f server.Inflight
		var wg sync.WaitGroup
		for range 100 {
			wg.Go(func() {
				if end, ok := f.Begin(); ok {
					end()
				}
			})
		}
		f.Close()
		wg.Wait()
		if f.Len() != 0 {
			t.Fatalf("Len = %d after all ended", f.Len())
		}
	})
}

func TestNotifyContextTwoSignals(t *testing.T) {
	t.Parallel()
	ctx, stop := server.NotifyContext(t.Context())
	defer stop()
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("first SIGTERM did not cancel the context")
	}
	if cause := context.Cause(ctx); !errors.Is(cause, server.ErrDrainRequested) || !strings.Contains(cause.Error(), "terminated") {
		t.Errorf("cause = %v", cause)
	}
	select {
	case <-server.Forced(ctx):
		t.Fatal("forced after one signal")
	default:
	}
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-server.Forced(ctx):
	case <-time.After(5 * time.Second):
		t.Fatal("second signal did not force")
	}
}

func TestForcedOnPlainContextNeverFires(t *testing.T) {
	t.Parallel()
	if server.Forced(t.Context()) != nil {
		t.Fatal("Forced on a plain context is not nil")
	}
}
