package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ringback/ringback/services/internal/natsbus/natstest"
)

// batchRecorder is a BatchHandler that records batches and fails on demand.
type batchRecorder struct {
	mu      sync.Mutex
	batches [][]Msg
	fail    func([]Msg) error
	added   chan struct{}
}

func newBatchRecorder(fail func([]Msg) error) *batchRecorder {
	return &batchRecorder{fail: fail, added: make(chan struct{}, 1)}
}

func (r *batchRecorder) handle(_ context.Context, msgs []Msg) error {
	r.mu.Lock()
	r.batches = append(r.batches, slices.Clone(msgs)) // msgs is reused after we return
	r.mu.Unlock()
	select {
	case r.added <- struct{}{}:
	default: // a wake-up is already pending
	}
	if r.fail != nil {
		return r.fail(msgs)
	}
	return nil
}

func (r *batchRecorder) recorded() (batches [][]Msg, msgs []Msg) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.batches), slices.Concat(r.batches...)
}

// waitFor waits until n messages were delivered, in any number of batches.
func (r *batchRecorder) waitFor(t *testing.T, n int) (batches [][]Msg, msgs []Msg) {
	t.Helper()
	// Longer than any handler of these tests holds a batch (15 s at most,
	// on a loaded machine), so a slow run is not taken for a lost message.
	deadline := time.After(30 * time.Second)
	for {
		batches, msgs := r.recorded()
		if len(msgs) >= n {
			return batches, msgs
		}
		select {
		case <-r.added:
		case <-deadline:
			t.Fatalf("got %d deliveries, want %d", len(msgs), n)
		}
	}
}

// quiet asserts no delivery beyond n happens within d.
func (r *batchRecorder) quiet(t *testing.T, n int, d time.Duration) {
	t.Helper()
	time.Sleep(d)
	if _, msgs := r.recorded(); len(msgs) != n {
		t.Fatalf("got %d deliveries, want exactly %d", len(msgs), n)
	}
}

func consumeBatch(t *testing.T, b *Bus, spec BatchSpec, h BatchHandler) *Consumer {
	t.Helper()
	if spec.Stream == "" {
		spec.Stream = CallsStream
	}
	c, err := b.ConsumeBatch(t.Context(), spec, h)
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

// publishN publishes n messages with ids <prefix>-0 … <prefix>-(n-1).
func publishN(t *testing.T, b *Bus, prefix string, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range n {
		ids[i] = fmt.Sprintf("%s-%d", prefix, i)
		publish(t, b, fmt.Sprintf("calls.acc.c%d.call_completed", i), ids[i])
	}
	return ids
}

func msgIDs(msgs []Msg) []string {
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.MsgID
	}
	return ids
}

func TestConsumeBatchRespectsMaxBatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		maxBatch  int
		published int
		wantMax   int // the biggest batch a backlog fills
	}{
		{"one per batch", 1, 5, 1},
		{"backlog split in batches", 10, 25, 10},
		{"default fits the backlog", 0, 25, 25},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, b := connect(t)
			ids := publishN(t, b, "m", tt.published)
			r := newBatchRecorder(nil)
			consumeBatch(t, b, BatchSpec{
				ConsumerSpec: ConsumerSpec{Durable: "cdr"},
				MaxBatch:     tt.maxBatch,
				MaxWait:      200 * time.Millisecond, // ample for the backlog to arrive
				Concurrency:  1,                      // so that batches are handled in stream order
			}, r.handle)
			batches, got := r.waitFor(t, tt.published)
			r.quiet(t, tt.published, 100*time.Millisecond)

			biggest := 0
			for _, bt := range batches {
				biggest = max(biggest, len(bt))
			}
			if biggest != tt.wantMax {
				t.Errorf("biggest batch %d, want %d (batch sizes: %v)", biggest, tt.wantMax, batchSizes(batches))
			}
			if !slices.Equal(msgIDs(got), ids) {
				t.Errorf("delivered %v, want %v", msgIDs(got), ids)
			}
			for i, m := range got {
				if string(m.Data) != ids[i] || m.StreamSeq != uint64(i+1) || m.Delivered != 1 ||
					m.Published.IsZero() || m.Header[jetstream.MsgIDHeader][0] != ids[i] ||
					m.Subject != fmt.Sprintf("calls.acc.c%d.call_completed", i) {
					t.Errorf("delivery %d = %+v", i, m)
				}
			}
			if info := consumerInfo(t, b, "cdr"); info != (consumerState{}) {
				t.Errorf("consumer state %+v after acked batches", info)
			}
		})
	}
}

func batchSizes(batches [][]Msg) []int {
	sizes := make([]int, len(batches))
	for i, bt := range batches {
		sizes[i] = len(bt)
	}
	return sizes
}

func TestConsumeBatchDeliversLoneMessage(t *testing.T) {
	t.Parallel()
	_, b := connect(t)
	r := newBatchRecorder(nil)
	consumeBatch(t, b, BatchSpec{
		ConsumerSpec: ConsumerSpec{Durable: "cdr"},
		MaxBatch:     100,
		MaxWait:      50 * time.Millisecond,
	}, r.handle)
	for i, id := range []string{"lone-1", "lone-2"} { // one at a time, each waited for
		publish(t, b, "calls.acc.c1.call_completed", id)
		batches, _ := r.waitFor(t, i+1)
		if last := batches[len(batches)-1]; len(last) != 1 || last[0].MsgID != id {
			t.Errorf("batch %d = %v, want [%s]", i, msgIDs(last), id)
		}
	}
	if info := consumerInfo(t, b, "cdr"); info != (consumerState{}) {
		t.Errorf("consumer state %+v after acked batches", info)
	}
}

func TestConsumeBatchRedeliversWholeBatchOnError(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		fail          func([]Msg) error
		maxDeliver    int
		wantDelivered []uint64 // of every message, in order
	}{
		{
			name: "error naks every message",
			fail: func(msgs []Msg) error {
				for _, m := range msgs {
					if m.Delivered == 1 {
						return errors.New("database unavailable")
					}
				}
				return nil
			},
			wantDelivered: []uint64{1, 2},
		},
		{
			name:          "permanent error terminates every message",
			fail:          func([]Msg) error { return Permanent(errors.New("bad batch")) },
			wantDelivered: []uint64{1},
		},
		{
			name:          "gives up at max deliver",
			fail:          func([]Msg) error { return errors.New("always") },
			maxDeliver:    3,
			wantDelivered: []uint64{1, 2, 3},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, b := connect(t)
			const n = 8
			ids := publishN(t, b, "m", n)
			r := newBatchRecorder(tt.fail)
			consumeBatch(t, b, BatchSpec{
				ConsumerSpec: ConsumerSpec{
					Durable:    "cdr",
					MaxDeliver: tt.maxDeliver,
					Backoff:    []time.Duration{20 * time.Millisecond, 60 * time.Millisecond},
				},
				// The whole backlog in the first batch: a batch mixing first
				// deliveries and redeliveries would fail again as a whole.
				MaxBatch: n,
				MaxWait:  200 * time.Millisecond,
			}, r.handle)
			want := n * len(tt.wantDelivered)
			_, got := r.waitFor(t, want)
			r.quiet(t, want, 300*time.Millisecond)

			perID := map[string][]uint64{}
			for _, m := range got {
				perID[m.MsgID] = append(perID[m.MsgID], m.Delivered)
			}
			for _, id := range ids {
				if !slices.Equal(perID[id], tt.wantDelivered) {
					t.Errorf("%s delivered %v, want %v", id, perID[id], tt.wantDelivered)
				}
			}
			// Nothing is left pending: acked or terminated.
			if info := consumerInfo(t, b, "cdr"); info != (consumerState{}) {
				t.Errorf("consumer state %+v, want nothing pending", info)
			}
		})
	}
}

func TestConsumeBatchKeepsSlowBatchAlive(t *testing.T) {
	t.Parallel()
	_, b := connect(t)
	publish(t, b, "calls.acc.c1.call_completed", "slow")
	const ackWait = 300 * time.Millisecond
	r := newBatchRecorder(func([]Msg) error {
		time.Sleep(4 * ackWait) // without in-progress acks, redelivered meanwhile
		return nil
	})
	consumeBatch(t, b, BatchSpec{ConsumerSpec: ConsumerSpec{Durable: "cdr", AckWait: ackWait}}, r.handle)
	r.waitFor(t, 1)
	r.quiet(t, 1, 6*ackWait)
	if info := consumerInfo(t, b, "cdr"); info != (consumerState{}) {
		t.Errorf("consumer state %+v after an acked batch", info)
	}
}

func TestConsumeBatchStopWaitsForRunningBatch(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		stopTimeout time.Duration
		wantErr     bool
	}{
		{"batch finishes and is acked", 5 * time.Second, false},
		{"deadline cancels the handler", 50 * time.Millisecond, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, b := connect(t)
			ids := publishN(t, b, "m", 3)
			started := make(chan []Msg, 1)
			release := make(chan struct{})
			var handlerErr error
			const ackWait = 500 * time.Millisecond
			c, err := b.ConsumeBatch(t.Context(), BatchSpec{
				ConsumerSpec: ConsumerSpec{Stream: CallsStream, Durable: "cdr", AckWait: ackWait},
				MaxBatch:     10,
				MaxWait:      200 * time.Millisecond,
			}, func(ctx context.Context, msgs []Msg) error {
				started <- slices.Clone(msgs)
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
			first := <-started
			if !slices.Equal(msgIDs(first), ids) {
				t.Fatalf("first batch %v, want %v", msgIDs(first), ids)
			}
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

			r := newBatchRecorder(nil)
			if !tt.wantErr {
				if got := consumerInfo(t, b, "cdr"); got != (consumerState{}) {
					t.Errorf("consumer state %+v after an acked batch", got)
				}
				// The acks stuck: a new instance on the durable, waiting past
				// AckWait, gets nothing of the batch.
				consumeBatch(t, b, BatchSpec{ConsumerSpec: ConsumerSpec{Durable: "cdr", AckWait: ackWait}}, r.handle)
				r.quiet(t, 0, 2*ackWait)
				return
			}
			if !errors.Is(handlerErr, context.Canceled) {
				t.Errorf("handler ctx error = %v, want canceled", handlerErr)
			}
			// Not acked: the next instance gets the batch again, at once (in
			// the order the server redelivers in, not necessarily the stream's).
			consumeBatch(t, b, BatchSpec{ConsumerSpec: ConsumerSpec{Durable: "cdr"}}, r.handle)
			_, got := r.waitFor(t, len(ids))
			if gotIDs := msgIDs(got); !slices.Equal(slices.Sorted(slices.Values(gotIDs)), ids) {
				t.Errorf("redelivered %v, want %v", gotIDs, ids)
			}
			for _, m := range got {
				if m.Delivered != 2 {
					t.Errorf("%s delivered %d times, want 2", m.MsgID, m.Delivered)
				}
			}
		})
	}
}

func TestConsumeBatchStopHandsBackPulledMessages(t *testing.T) {
	t.Parallel()
	_, b := connect(t)
	ids := publishN(t, b, "m", 5)
	started := make(chan struct{})
	release := make(chan struct{})
	var handled []string
	c, err := b.ConsumeBatch(t.Context(), BatchSpec{
		// MaxAckPending 2: the running batch and one more pulled, which
		// waits for a worker when Stop comes.
		ConsumerSpec: ConsumerSpec{Stream: CallsStream, Durable: "cdr", MaxAckPending: 2},
		MaxBatch:     1,
		Concurrency:  1,
	}, func(_ context.Context, msgs []Msg) error {
		handled = append(handled, msgIDs(msgs)...)
		if len(handled) == 1 {
			close(started)
			<-release
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	<-started
	time.Sleep(100 * time.Millisecond) // for the second message to be pulled
	stopped := make(chan error)
	go func() { stopped <- c.Stop(t.Context()) }()
	time.Sleep(50 * time.Millisecond)
	close(release)
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(handled, ids[:1]) {
		t.Fatalf("handled %v before Stop, want only %v", handled, ids[:1])
	}
	// The rest comes to the next instance now, not after the default 30s
	// AckWait (the test would time out).
	r := newBatchRecorder(nil)
	consumeBatch(t, b, BatchSpec{ConsumerSpec: ConsumerSpec{Durable: "cdr"}, Concurrency: 1}, r.handle)
	_, got := r.waitFor(t, len(ids)-1)
	r.quiet(t, len(ids)-1, 200*time.Millisecond)
	if !slices.Equal(msgIDs(got), ids[1:]) {
		t.Errorf("next instance got %v, want %v", msgIDs(got), ids[1:])
	}
	if got[0].Delivered != 2 {
		t.Errorf("%s delivered %d times, want 2 (pulled, handed back, delivered again)", got[0].MsgID, got[0].Delivered)
	}
}

func TestConsumeBatchResumesAfterRestart(t *testing.T) {
	t.Parallel()
	_, b := connect(t)
	publishN(t, b, "first", 5)
	r1 := newBatchRecorder(nil)
	c1, err := b.ConsumeBatch(t.Context(), BatchSpec{ConsumerSpec: ConsumerSpec{Stream: CallsStream, Durable: "cdr"}}, r1.handle)
	if err != nil {
		t.Fatal(err)
	}
	r1.waitFor(t, 5)
	if err := c1.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	ids := publishN(t, b, "second", 5) // while stopped
	r2 := newBatchRecorder(nil)
	consumeBatch(t, b, BatchSpec{ConsumerSpec: ConsumerSpec{Durable: "cdr"}, Concurrency: 1}, r2.handle)
	_, got := r2.waitFor(t, 5)
	r2.quiet(t, 5, 200*time.Millisecond)
	for i, m := range got {
		if m.MsgID != ids[i] || m.Delivered != 1 {
			t.Errorf("after restart delivery %d = %s (delivered %d), want %s once", i, m.MsgID, m.Delivered, ids[i])
		}
	}
}

func TestConsumeBatchHandlesBatchesConcurrently(t *testing.T) {
	t.Parallel()
	for _, concurrency := range []int{1, 3} {
		t.Run(fmt.Sprint(concurrency), func(t *testing.T) {
			t.Parallel()
			_, b := connect(t)
			const n = 9
			publishN(t, b, "m", n)
			var running, most atomic.Int32
			r := newBatchRecorder(func([]Msg) error {
				now := running.Add(1)
				defer running.Add(-1)
				for {
					m := most.Load()
					if now <= m || most.CompareAndSwap(m, now) {
						break
					}
				}
				// Hold the first batches until as many run as may (at once
				// when the handler is healthy; the deadline only bounds a
				// failing run, and must outlast a loaded machine's delays).
				deadline := time.Now().Add(15 * time.Second)
				for most.Load() < int32(concurrency) && time.Now().Before(deadline) {
					time.Sleep(time.Millisecond)
				}
				return nil
			})
			consumeBatch(t, b, BatchSpec{
				// A short AckWait: under heavy load a pulled message was
				// once only seen again at its redelivery (30 s by default).
				ConsumerSpec: ConsumerSpec{Durable: "cdr", AckWait: 3 * time.Second},
				MaxBatch:     1,
				Concurrency:  concurrency,
			}, r.handle)
			r.waitFor(t, n)
			if got := most.Load(); got != int32(concurrency) {
				t.Errorf("at most %d batches ran at once, want %d", got, concurrency)
			}
		})
	}
}

func TestConsumeBatchValidates(t *testing.T) {
	t.Parallel()
	_, b := connect(t)
	ok := func(context.Context, []Msg) error { return nil }
	tests := []struct {
		name string
		spec ConsumerSpec
		h    BatchHandler
		want string
	}{
		{"no durable", ConsumerSpec{Stream: CallsStream}, ok, "required"},
		{"no handler", ConsumerSpec{Stream: CallsStream, Durable: "x"}, nil, "required"},
		{"no such stream", ConsumerSpec{Stream: "NOPE", Durable: "x"}, ok, "NOPE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := b.ConsumeBatch(t.Context(), BatchSpec{ConsumerSpec: tt.spec}, tt.h)
			if err == nil {
				_ = c.Stop(t.Context())
				t.Fatal("ConsumeBatch succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

// BenchmarkConsumeBatch measures how fast a backlog of b.N stored messages
// is consumed and acked with a handler that does nothing, batched and,
// as the baseline, one message at a time with Consume.
func BenchmarkConsumeBatch(b *testing.B) {
	run := func(b *testing.B, start func(*Bus, func(n int)) (*Consumer, error)) {
		srv := natstest.Start(b)
		bus, err := Connect(b.Context(), srv.URL(), "bench", slog.New(slog.DiscardHandler), Options{})
		if err != nil {
			b.Fatal(err)
		}
		defer bus.Close()
		if err := bus.EnsureStream(b.Context(), Calls(0)); err != nil {
			b.Fatal(err)
		}
		data := make([]byte, 200) // about a call record's size
		for i := range b.N {
			id := fmt.Sprintf("c%d.call_completed", i)
			// A slow disk stalls the publisher longer than the default 200ms.
			_, err := bus.js.PublishAsync("calls.acc."+id, data, jetstream.WithMsgID(id), jetstream.WithStallWait(10*time.Second))
			if err != nil {
				b.Fatal(err)
			}
		}
		select {
		case <-bus.js.PublishAsyncComplete():
		case <-time.After(time.Minute):
			b.Fatal("publishing timed out")
		}
		s, err := bus.js.Stream(b.Context(), CallsStream)
		if err != nil {
			b.Fatal(err)
		}
		if n := s.CachedInfo().State.Msgs; n != uint64(b.N) {
			b.Fatalf("stream holds %d messages, want %d", n, b.N)
		}

		var consumed atomic.Int64
		all := make(chan struct{})
		count := func(n int) {
			if consumed.Add(int64(n)) == int64(b.N) {
				close(all)
			}
		}
		b.ResetTimer()
		startAt := time.Now()
		c, err := start(bus, count)
		if err != nil {
			b.Fatal(err)
		}
		select {
		case <-all:
		case <-time.After(5 * time.Minute):
			b.Fatalf("consumed %d of %d", consumed.Load(), b.N)
		}
		elapsed := time.Since(startAt)
		b.StopTimer()
		if err := c.Stop(b.Context()); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
	}
	b.Run("batch", func(b *testing.B) {
		run(b, func(bus *Bus, count func(int)) (*Consumer, error) {
			return bus.ConsumeBatch(b.Context(), BatchSpec{ConsumerSpec: ConsumerSpec{Stream: CallsStream, Durable: "cdr"}},
				func(_ context.Context, msgs []Msg) error { count(len(msgs)); return nil })
		})
	})
	b.Run("per-message-baseline", func(b *testing.B) {
		run(b, func(bus *Bus, count func(int)) (*Consumer, error) {
			return bus.Consume(b.Context(), ConsumerSpec{Stream: CallsStream, Durable: "cdr", Workers: 4},
				func(context.Context, Msg) error { count(1); return nil })
		})
	})
}
