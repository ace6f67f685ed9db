package natsbus

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ringback/ringback/services/internal/logging"
)

// BatchHandler processes a batch of messages. Returning nil acks every
// message of the batch, so return only after the work is committed (one
// multi-row INSERT); returning an error naks every one for redelivery after
// the spec's backoff (by each message's delivery count); an error wrapping
// ErrPermanent terminates them all. Handlers that want to drop a single bad
// message (undecodable) just skip it and return nil for the batch.
//
// msgs is in delivery order (stream order, except that redeliveries come
// when their backoff ends). The slice is reused for a later batch once the
// handler returns: keep Msg values, never msgs itself. ctx is canceled only
// when a Stop deadline passes.
type BatchHandler func(ctx context.Context, msgs []Msg) error

// Defaults of BatchSpec.
const (
	DefaultMaxBatch         = 500
	DefaultMaxWait          = 20 * time.Millisecond
	DefaultBatchConcurrency = 2
)

// BatchSpec declares a durable pull consumer whose messages are handled in
// batches, for sinks where one write per batch is much cheaper than one per
// message (cdr's multi-row INSERT).
type BatchSpec struct {
	// ConsumerSpec is as for Consume (Workers is not used), except that
	// MaxAckPending defaults to max(1000, 2*MaxBatch*Concurrency): every
	// running batch, the one being filled and the messages pulled ahead
	// count against it. An explicit MaxAckPending below MaxBatch lowers
	// MaxBatch to it, since no bigger batch could ever fill. AckWait runs
	// from delivery, so it must also cover the time a message pulled ahead
	// waits for a worker: about two batches' handling time.
	ConsumerSpec
	// MaxBatch is the most messages per batch (default 500).
	MaxBatch int
	// MaxWait (a duration) is the longest the first message of a batch waits
	// for more (default 20ms): the latency added when traffic is light.
	MaxWait time.Duration
	// Concurrency is how many batches are handled at once (default 2).
	// Batches are handed out in arrival order but may finish in any order,
	// so two events of one call in different batches can be handled out of
	// order (unlike Consume's Workers); use 1 when that matters.
	Concurrency int
}

// ConsumeBatch creates or updates the durable consumer spec describes and
// starts handling its messages in batches: a batch is handed out when it
// holds MaxBatch messages or MaxWait after its first message arrived. ctx
// bounds only the setup; the consumer runs until Stop (or the Bus closes).
//
// Successful batches are acked without waiting for the server's
// confirmation (a round trip per message would cap throughput); an ack lost
// in a reconnect means a redelivery, which idempotent handlers absorb. Stop
// returns once the last acks reached the server.
func (b *Bus) ConsumeBatch(ctx context.Context, spec BatchSpec, h BatchHandler) (*Consumer, error) {
	if spec.Stream == "" || spec.Durable == "" || h == nil {
		return nil, errors.New("consume batch: stream, durable and handler are required")
	}
	if spec.MaxBatch <= 0 {
		spec.MaxBatch = DefaultMaxBatch
	}
	if spec.MaxWait <= 0 {
		spec.MaxWait = DefaultMaxWait
	}
	if spec.Concurrency <= 0 {
		spec.Concurrency = DefaultBatchConcurrency
	}
	if spec.MaxAckPending <= 0 {
		spec.MaxAckPending = max(defaultMaxAckPending, 2*spec.MaxBatch*spec.Concurrency)
	}
	spec.MaxBatch = min(spec.MaxBatch, spec.MaxAckPending)
	spec.ConsumerSpec = spec.withDefaults()
	// Pull up to two batches ahead (the client asks for more when half is
	// used), so that the next batch fills while one is handed out.
	c, err := b.open(ctx, spec.ConsumerSpec, min(2*spec.MaxBatch, spec.MaxAckPending))
	if err != nil {
		return nil, err
	}
	r := &batcher{
		c:       c,
		spec:    spec,
		h:       h,
		nc:      b.nc,
		batches: make(chan *batch),
		free:    make(chan *batch, spec.Concurrency+1),
	}
	// One buffer per running batch and one being filled: the reader always
	// finds a free one, and no batch allocates.
	for range spec.Concurrency + 1 {
		r.free <- &batch{
			msgs:      make([]Msg, 0, spec.MaxBatch),
			js:        make([]jetstream.Msg, 0, spec.MaxBatch),
			delivered: make([]uint64, 0, spec.MaxBatch),
		}
	}
	var wg sync.WaitGroup
	for range spec.Concurrency {
		wg.Go(func() {
			for bt := range r.batches {
				r.handle(bt)
				bt.reset()
				r.free <- bt
			}
		})
	}
	go func() {
		r.read()
		close(r.batches)
		wg.Wait()
		r.flush()
		c.cancelHandler()
		close(c.done)
	}()
	return c, nil
}

// batcher runs a BatchHandler over a Consumer: one reader fills batches,
// Concurrency workers handle them.
type batcher struct {
	c       *Consumer
	spec    BatchSpec
	h       BatchHandler
	nc      *nats.Conn
	batches chan *batch // to the workers, unbuffered: a batch waits for a worker
	free    chan *batch // buffers back from the workers
}

// batch holds the messages of one batch as handlers see them (msgs) and as
// delivered (js, with their delivery counts), to settle them. Handlers may
// reorder or change msgs, so settling reads only js and delivered.
type batch struct {
	msgs      []Msg
	js        []jetstream.Msg
	delivered []uint64
	// firstSeq and lastSeq are stream sequences, for logs.
	firstSeq, lastSeq uint64
}

func (bt *batch) add(msg jetstream.Msg, m Msg) {
	if len(bt.msgs) == 0 {
		bt.firstSeq = m.StreamSeq
	}
	bt.lastSeq = m.StreamSeq
	bt.msgs = append(bt.msgs, m)
	bt.js = append(bt.js, msg)
	bt.delivered = append(bt.delivered, m.Delivered)
}

// reset empties bt for reuse, dropping its references to the messages.
func (bt *batch) reset() {
	clear(bt.msgs)
	clear(bt.js)
	bt.msgs, bt.js, bt.delivered = bt.msgs[:0], bt.js[:0], bt.delivered[:0]
}

// read fills batches and hands them to the workers in arrival order until
// the iterator closes (Stop, or the connection closed).
func (r *batcher) read() {
	c := r.c
	// Reused for every Next with a deadline: a fresh variadic slice would be
	// allocated per message.
	next := []jetstream.NextOpt{nil}
	bt := <-r.free
	for {
		// The first message of a batch: wait as long as it takes.
		msg, err := c.it.Next()
		if err != nil {
			if c.nextFailed(err) {
				return
			}
			continue
		}
		if c.isStopping() {
			c.release(msg)
			continue
		}
		m, err := c.toMsg(msg)
		if err != nil {
			continue
		}
		bt.add(msg, m)
		if len(bt.msgs) < r.spec.MaxBatch {
			// The rest: as many as arrive within MaxWait. Messages pulled
			// ahead are already here, so a backlog fills batches at once.
			ctx, cancel := context.WithTimeout(context.Background(), r.spec.MaxWait)
			next[0] = jetstream.NextContext(ctx)
			for len(bt.msgs) < r.spec.MaxBatch {
				msg, err := c.it.Next(next...)
				if err != nil {
					// The closed iterator is seen again by the first Next.
					if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
						c.log.Warn("consumer: fetching messages", logging.Err(err))
					}
					break
				}
				if m, err := c.toMsg(msg); err == nil {
					bt.add(msg, m)
				}
			}
			cancel()
			next[0] = nil
		}
		r.handOut(bt)
		bt = <-r.free
	}
}

// handOut gives bt to the next free worker or, if the consumer is stopping,
// hands its messages back so that another instance gets them now rather
// than after AckWait.
func (r *batcher) handOut(bt *batch) {
	if !r.c.isStopping() {
		select {
		case r.batches <- bt:
			return
		case <-r.c.stopping:
		}
	}
	for _, msg := range bt.js {
		r.c.release(msg)
	}
	bt.reset()
	r.free <- bt
}

// handle runs the handler over bt and settles every message of it.
func (r *batcher) handle(bt *batch) {
	c := r.c
	n := len(bt.msgs)
	stopKeepAlive := c.keepAlive(func() {
		for _, msg := range bt.js {
			_ = msg.InProgress()
		}
	})
	// Capped, so that a handler appending to msgs does not write into the
	// buffer.
	err := r.h(c.handlerCtx, bt.msgs[:n:n])
	stopKeepAlive()

	if err == nil {
		var failed int
		var ackErr error
		for _, msg := range bt.js {
			if aerr := msg.Ack(); aerr != nil {
				failed++
				ackErr = aerr
			}
		}
		if failed > 0 {
			c.log.Warn("consumer: acks not sent; the messages will be redelivered",
				"batch_size", n, "failed", failed, "first_seq", bt.firstSeq, "last_seq", bt.lastSeq, logging.Err(ackErr))
		}
		return
	}
	log := c.log.With("batch_size", n, "first_seq", bt.firstSeq, "last_seq", bt.lastSeq, logging.Err(err))
	switch {
	case c.handlerCtx.Err() != nil:
		// Stopped mid-work: hand them back now, without backoff.
		log.Info("consumer: stopped before the batch handler finished; messages handed back")
		for _, msg := range bt.js {
			_ = msg.Nak()
		}
	case errors.Is(err, ErrPermanent):
		log.Error("consumer: permanent failure, dropping the batch")
		reason := truncate(err.Error(), 200)
		for _, msg := range bt.js {
			_ = msg.TermWithReason(reason)
		}
	default:
		var gaveUp, nakFailed int
		var retryIn time.Duration
		giveUpReason := "max deliveries: " + truncate(err.Error(), 180)
		for i, msg := range bt.js {
			delivered := bt.delivered[i]
			if c.spec.MaxDeliver > 0 && delivered >= uint64(c.spec.MaxDeliver) {
				gaveUp++
				_ = msg.TermWithReason(giveUpReason)
				continue
			}
			delay := c.spec.Backoff[min(int(delivered), len(c.spec.Backoff))-1]
			retryIn = max(retryIn, delay)
			if msg.NakWithDelay(delay) != nil {
				nakFailed++
			}
		}
		if gaveUp > 0 {
			log.Error("consumer: giving up on messages after their last delivery", "max_deliver", c.spec.MaxDeliver, "given_up", gaveUp)
		}
		if gaveUp < n {
			log.Warn("consumer: batch handler failed, will retry", "retry_in_max", retryIn.String(), "nak_failed", nakFailed)
		}
	}
}

// flush waits until the server has the acks sent so far, so that when Stop
// returns a new instance is not handed messages this one completed.
func (r *batcher) flush() {
	if err := r.nc.FlushTimeout(5 * time.Second); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		r.c.log.Warn("consumer: flushing the last acks; their messages may be redelivered", logging.Err(err))
	}
}
