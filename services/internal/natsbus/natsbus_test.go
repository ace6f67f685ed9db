package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ringback/ringback/services/internal/natsbus/natstest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// connect starts a private server and connects a Bus with the CALLS stream.
func connect(t *testing.T) (*natstest.Server, *Bus) {
	t.Helper()
	srv := natstest.Start(t)
	b := dial(t, srv.URL())
	if err := b.EnsureStream(t.Context(), Calls(0)); err != nil {
		t.Fatal(err)
	}
	return srv, b
}

func dial(t *testing.T, url string) *Bus {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	b, err := Connect(ctx, url, "test", slog.New(slog.DiscardHandler), Options{ReconnectWait: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func publish(t *testing.T, b *Bus, subject, id string) PubAck {
	t.Helper()
	ack, err := b.Publish(t.Context(), subject, id, []byte(id))
	if err != nil {
		t.Fatal(err)
	}
	return ack
}

// recorder is a handler that records deliveries and fails on demand.
type recorder struct {
	mu    sync.Mutex
	got   []Msg
	at    []time.Time
	fail  func(Msg) error
	added chan struct{}
}

func newRecorder(fail func(Msg) error) *recorder {
	return &recorder{fail: fail, added: make(chan struct{}, 1000)}
}

func (r *recorder) handle(_ context.Context, m Msg) error {
	r.mu.Lock()
	r.got = append(r.got, m)
	r.at = append(r.at, time.Now())
	r.mu.Unlock()
	r.added <- struct{}{}
	if r.fail != nil {
		return r.fail(m)
	}
	return nil
}

func (r *recorder) msgs() []Msg {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// waitFor waits until n deliveries were recorded.
func (r *recorder) waitFor(t *testing.T, n int) []Msg {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for len(r.msgs()) < n {
		select {
		case <-r.added:
		case <-deadline:
			t.Fatalf("got %d deliveries, want %d", len(r.msgs()), n)
		}
	}
	return r.msgs()
}

// quiet asserts no delivery beyond n happens within d.
func (r *recorder) quiet(t *testing.T, n int, d time.Duration) {
	t.Helper()
	time.Sleep(d)
	if got := len(r.msgs()); got != n {
		t.Fatalf("got %d deliveries, want exactly %d", got, n)
	}
}

func consume(t *testing.T, b *Bus, spec ConsumerSpec, h Handler) *Consumer {
	t.Helper()
	if spec.Stream == "" {
		spec.Stream = CallsStream
	}
	c, err := b.Consume(t.Context(), spec, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	return c
}

func TestConnectFailsAtDeadline(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	url := srv.URL()
	srv.Shutdown() // nothing listens there now
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Connect(ctx, url, "test", slog.New(slog.DiscardHandler), Options{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Connect = %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Connect took %v", d)
	}
}

func TestEnsureStreamIsIdempotent(t *testing.T) {
	t.Parallel()
	_, b := connect(t)
	tests := []struct {
		name   string
		spec   StreamSpec
		maxAge time.Duration
	}{
		{"again", Calls(0), DefaultCallsMaxAge},
		{"new max age", Calls(time.Hour), time.Hour},
		{"back", Calls(0), DefaultCallsMaxAge},
	}
	for _, tt := range tests { // sequential: each step builds on the last
		t.Run(tt.name, func(t *testing.T) {
			if err := b.EnsureStream(t.Context(), tt.spec); err != nil {
				t.Fatal(err)
			}
			s, err := b.js.Stream(t.Context(), CallsStream)
			if err != nil {
				t.Fatal(err)
			}
			cfg := s.CachedInfo().Config
			if cfg.MaxAge != tt.maxAge || cfg.Duplicates != DefaultDuplicates ||
				cfg.Storage.String() != "File" || !slices.Equal(cfg.Subjects, []string{CallsSubjects}) {
				t.Errorf("stream config = %+v", cfg)
			}
		})
	}
}

func TestPublishDeduplicatesByMsgID(t *testing.T) {
	t.Parallel()
	_, b := connect(t)
	tests := []struct {
		subject, id string
		wantSeq     uint64
		wantDup     bool
	}{
		{"calls.acc1.c1.answered", "c1.answered.a", 1, false},
		{"calls.acc1.c1.answered", "c1.answered.a", 1, true}, // retried publish
		{"calls.acc1.c1.answered", "c1.answered.b", 2, false},
		{"calls.acc1.c1.hangup", "c1.answered.a", 1, true}, // the id alone decides
	}
	for _, tt := range tests { // sequential: sequence numbers depend on order
		t.Run(tt.id, func(t *testing.T) {
			ack := publish(t, b, tt.subject, tt.id)
			if ack.Sequence != tt.wantSeq || ack.Duplicate != tt.wantDup || ack.Stream != CallsStream {
				t.Errorf("ack = %+v, want seq %d dup %v", ack, tt.wantSeq, tt.wantDup)
			}
		})
	}
	s, err := b.js.Stream(t.Context(), CallsStream)
	if err != nil {
		t.Fatal(err)
	}
	if n := s.CachedInfo().State.Msgs; n != 2 {
		t.Errorf("stream holds %d messages, want 2", n)
	}
}

func TestPublishErrors(t *testing.T) {
	t.Parallel()
	_, b := connect(t)
	tests := []struct {
		name, subject, id, want string
	}{
		{"empty id", "calls.a.c.x", "", "empty message id"},
		{"no stream for subject", "nothing.here", "id1", "nothing.here"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer cancel()
			_, err := b.Publish(ctx, tt.subject, tt.id, []byte("x"))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Publish = %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

func TestConsumerRedeliversAfterHandlerError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		fail          func(Msg) error
		maxDeliver    int
		wantDelivered []uint64
	}{
		{
			name: "succeeds on third attempt",
			fail: func(m Msg) error {
				if m.Delivered < 3 {
					return errors.New("database unavailable")
				}
				return nil
			},
			wantDelivered: []uint64{1, 2, 3},
		},
		{
			name:          "permanent error is not retried",
			fail:          func(Msg) error { return Permanent(errors.New("bad payload")) },
			wantDelivered: []uint64{1},
		},
		{
			name:          "gives up at max deliver",
			fail:          func(Msg) error { return errors.New("always") },
			maxDeliver:    3,
			wantDelivered: []uint64{1, 2, 3},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, b := connect(t)
			publish(t, b, "calls.acc.c1.answered", "c1.answered")
			r := newRecorder(tt.fail)
			consume(t, b, ConsumerSpec{
				Durable:    "cdr",
				MaxDeliver: tt.maxDeliver,
				Backoff:    []time.Duration{20 * time.Millisecond, 60 * time.Millisecond},
			}, r.handle)
			got := r.waitFor(t, len(tt.wantDelivered))
			r.quiet(t, len(tt.wantDelivered), 300*time.Millisecond)
			var delivered []uint64
			for _, m := range got {
				delivered = append(delivered, m.Delivered)
				if m.MsgID != "c1.answered" || string(m.Data) != "c1.answered" || m.StreamSeq != 1 {
					t.Errorf("delivery = %+v", m)
				}
			}
			if !slices.Equal(delivered, tt.wantDelivered) {
				t.Errorf("deliveries %v, want %v", delivered, tt.wantDelivered)
			}
			// The backoff is applied: 20ms after the first failure, 60ms after the others.
			r.mu.Lock()
			for i := 1; i < len(r.at); i++ {
				want := 20 * time.Millisecond
				if i > 1 {
					want = 60 * time.Millisecond
				}
				if gap := r.at[i].Sub(r.at[i-1]); gap < want {
					t.Errorf("delivery %d came %v after the previous one, want >= %v", i+1, gap, want)
				}
			}
			r.mu.Unlock()
			// Nothing is left pending: acked or terminated.
			info := consumerInfo(t, b, "cdr")
			if info.NumAckPending != 0 || info.NumPending != 0 {
				t.Errorf("consumer still has ack pending %d, pending %d", info.NumAckPending, info.NumPending)
			}
		})
	}
}

type consumerState struct{ NumAckPending, NumPending uint64 }

func consumerInfo(t *testing.T, b *Bus, durable string) consumerState {
	t.Helper()
	var st consumerState
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, err := b.js.Consumer(t.Context(), CallsStream, durable)
		if err != nil {
			t.Fatal(err)
		}
		info, err := c.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		st = consumerState{uint64(info.NumAckPending), info.NumPending}
		if st == (consumerState{}) || time.Now().After(deadline) {
			return st
		}
		time.Sleep(10 * time.Millisecond) // acks are asynchronous to the handler's return
	}
}

func TestConsumerKeepsOrderPerSubject(t *testing.T) {
	t.Parallel()
	_, b := connect(t)
	const calls, events = 6, 15
	for e := range events {
		for c := range calls {
			publish(t, b, fmt.Sprintf("calls.acc.c%d.e", c), fmt.Sprintf("c%d.%d", c, e))
		}
	}
	r := newRecorder(func(Msg) error {
		time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond) // shuffle timing across workers
		return nil
	})
	consume(t, b, ConsumerSpec{Durable: "webhook", Workers: 4}, r.handle)
	got := r.waitFor(t, calls*events)
	perSubject := map[string][]string{}
	for _, m := range got {
		perSubject[m.Subject] = append(perSubject[m.Subject], m.MsgID)
	}
	for c := range calls {
		subject := fmt.Sprintf("calls.acc.c%d.e", c)
		var want []string
		for e := range events {
			want = append(want, fmt.Sprintf("c%d.%d", c, e))
		}
		if !slices.Equal(perSubject[subject], want) {
			t.Errorf("%s handled in order %v, want %v", subject, perSubject[subject], want)
		}
	}
}

func TestConsumerResumesAfterRestart(t *testing.T) {
	t.Parallel()
	_, b := connect(t)
	for i := range 5 {
		publish(t, b, "calls.acc.c1.e", fmt.Sprintf("first-%d", i))
	}
	r1 := newRecorder(nil)
	c1, err := b.Consume(t.Context(), ConsumerSpec{Stream: CallsStream, Durable: "dialer"}, r1.handle)
	if err != nil {
		t.Fatal(err)
	}
	r1.waitFor(t, 5)
	if err := c1.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		publish(t, b, "calls.acc.c1.e", fmt.Sprintf("second-%d", i))
	}
	r2 := newRecorder(nil)
	consume(t, b, ConsumerSpec{Durable: "dialer"}, r2.handle)
	got := r2.waitFor(t, 5)
	r2.quiet(t, 5, 200*time.Millisecond)
	for i, m := range got {
		if want := fmt.Sprintf("second-%d", i); m.MsgID != want || m.Delivered != 1 {
			t.Errorf("after restart delivery %d = %s (delivered %d), want %s once", i, m.MsgID, m.Delivered, want)
		}
	}
}

func TestConsumerStopWaitsForRunningHandler(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		stopTimeout time.Duration
		wantErr     bool
	}{
		{"handler finishes and is acked", 5 * time.Second, false},
		{"deadline cancels handler", 50 * time.Millisecond, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, b := connect(t)
			publish(t, b, "calls.acc.c1.e", "m1")
			started := make(chan struct{})
			release := make(chan struct{})
			var handlerErr error
			c, err := b.Consume(t.Context(), ConsumerSpec{Stream: CallsStream, Durable: "cdr", AckWait: time.Second}, func(ctx context.Context, m Msg) error {
				close(started)
				select {
				case <-release:
					return nil
				case <-ctx.Done():
					handlerErr = ctx.Err()
					return ctx.Err()
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			<-started
			ctx, cancel := context.WithTimeout(t.Context(), tt.stopTimeout)
			defer cancel()
			stopped := make(chan error)
			go func() { stopped <- c.Stop(ctx) }()
			if !tt.wantErr {
				select {
				case err := <-stopped:
					t.Fatalf("Stop returned (%v) while the handler ran", err)
				case <-time.After(100 * time.Millisecond):
				}
				close(release)
			}
			err = <-stopped
			if (err != nil) != tt.wantErr {
				t.Fatalf("Stop = %v, want error %v", err, tt.wantErr)
			}
			<-c.Done()
			if !tt.wantErr {
				if got := consumerInfo(t, b, "cdr"); got != (consumerState{}) {
					t.Errorf("consumer state %+v after an acked message", got)
				}
				return
			}
			if !errors.Is(handlerErr, context.Canceled) {
				t.Errorf("handler ctx error = %v, want canceled", handlerErr)
			}
			// Not acked: the next consumer instance gets it again, at once.
			r := newRecorder(nil)
			consume(t, b, ConsumerSpec{Durable: "cdr"}, r.handle)
			if got := r.waitFor(t, 1); got[0].MsgID != "m1" || got[0].Delivered != 2 {
				t.Errorf("redelivery = %+v, want m1 delivered twice", got[0])
			}
		})
	}
}

func TestBusSurvivesServerRestart(t *testing.T) {
	t.Parallel()
	srv, b := connect(t)
	r := newRecorder(nil)
	consume(t, b, ConsumerSpec{Durable: "cdr"}, r.handle)
	publish(t, b, "calls.acc.c1.e", "before")
	r.waitFor(t, 1)

	srv.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for b.Ready(t.Context()) != nil {
		if time.Now().After(deadline) {
			t.Fatal("bus did not reconnect")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// JetStream may need a moment after a restart to answer publishes.
	for {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		_, err := b.Publish(ctx, "calls.acc.c1.e", "after", []byte("after"))
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("publish after restart: %v", err)
		}
	}
	got := r.waitFor(t, 2)
	if got[1].MsgID != "after" {
		t.Errorf("second delivery %q, want after", got[1].MsgID)
	}
}

func TestConsumeValidates(t *testing.T) {
	t.Parallel()
	_, b := connect(t)
	tests := []struct {
		name string
		spec ConsumerSpec
		h    Handler
		want string
	}{
		{"no durable", ConsumerSpec{Stream: CallsStream}, func(context.Context, Msg) error { return nil }, "required"},
		{"no handler", ConsumerSpec{Stream: CallsStream, Durable: "x"}, nil, "required"},
		{"no such stream", ConsumerSpec{Stream: "NOPE", Durable: "x"}, func(context.Context, Msg) error { return nil }, "NOPE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := b.Consume(t.Context(), tt.spec, tt.h)
			if err == nil {
				_ = c.Stop(t.Context())
				t.Fatal("Consume succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

// In a NATS cluster, a Bus with StreamReplicas 3 declares the CALLS stream
// on three servers, and the events survive the loss of the stream's leader;
// a single server refuses the count rather than keep one copy silently.
func TestEnsureStreamReplicated(t *testing.T) {
	t.Parallel()
	servers := natstest.StartCluster(t, 3)
	var urls []string
	for _, s := range servers {
		urls = append(urls, s.URL())
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	b, err := Connect(ctx, strings.Join(urls, ","), "test", slog.New(slog.DiscardHandler),
		Options{ReconnectWait: 50 * time.Millisecond, StreamReplicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := b.EnsureStream(ctx, Calls(0)); err != nil {
		t.Fatal(err)
	}
	s, err := b.js.Stream(ctx, CallsStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Replicas != 3 || info.Cluster == nil || info.Cluster.Leader == "" {
		t.Fatalf("stream: %d replicas, cluster %+v", info.Config.Replicas, info.Cluster)
	}
	if _, err := b.Publish(ctx, "calls.c1.call_queued", "c1.queued", []byte("before")); err != nil {
		t.Fatal(err)
	}
	// The stream's leader goes; the other two elect another and keep both
	// the event stored before and the ones published after.
	lost := false
	for i, s := range servers {
		if "n"+fmt.Sprint(i) == info.Cluster.Leader {
			s.Shutdown()
			lost = true
		}
	}
	if !lost {
		t.Fatalf("no server is the stream's leader %q", info.Cluster.Leader)
	}
	// An attempt sent as the client reconnects may go unanswered: each one
	// waits 2 s (the message id makes a retry store it once).
	var ack PubAck
	for {
		actx, acancel := context.WithTimeout(ctx, 2*time.Second)
		ack, err = b.Publish(actx, "calls.c1.call_dialing", "c1.dialing", []byte("after"))
		acancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("publish after the leader's loss: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if ack.Sequence != 2 {
		t.Fatalf("published after the leader's loss at sequence %d, want 2", ack.Sequence)
	}
	for seq, want := range map[uint64]string{1: "before", 2: "after"} {
		m, err := s.GetMsg(ctx, seq)
		if err != nil || string(m.Data) != want {
			t.Fatalf("message %d: %q, %v; want %q", seq, m.Data, err, want)
		}
	}

	single := natstest.Start(t)
	b1, err := Connect(ctx, single.URL(), "test", slog.New(slog.DiscardHandler), Options{StreamReplicas: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer b1.Close()
	// A refusal is returned at once, not tried again until the deadline.
	rctx, rcancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer rcancel()
	if err := b1.EnsureStream(rctx, Calls(0)); err == nil || !strings.Contains(err.Error(), "replica") {
		t.Fatalf("3 replicas on a single server: %v, want a refusal", err)
	}
	if rctx.Err() != nil {
		t.Fatal("3 replicas on a single server: the refusal was tried again until the deadline")
	}
}
