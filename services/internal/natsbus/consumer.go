package natsbus

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ringback/ringback/services/internal/logging"
)

// Msg is one delivery of a stored message to a handler.
type Msg struct {
	Subject string
	Data    []byte
	// Header holds the message headers (Nats-Msg-Id among them).
	Header map[string][]string
	// MsgID is the id it was published with.
	MsgID string
	// Delivered counts deliveries of this message to this consumer, from 1.
	Delivered uint64
	// StreamSeq is the message's sequence number in its stream.
	StreamSeq uint64
	// Published is when the stream stored it.
	Published time.Time
}

// Handler processes one message. Returning nil acks it, so return only
// after the work is committed (the database transaction, the webhook
// delivery record). Returning an error naks it for redelivery after the
// consumer's backoff; an error wrapping ErrPermanent terminates it. ctx is
// canceled only when a Stop deadline passes.
type Handler func(ctx context.Context, m Msg) error

// ConsumerSpec declares a durable pull consumer and how it is run.
type ConsumerSpec struct {
	// Stream and Durable name the stream and the consumer; each service that
	// reads a stream has its own durable (cdr, webhook, dialer), and every
	// instance of the service shares it (work is split between them).
	Stream  string
	Durable string
	// FilterSubjects restricts the consumer to these subjects (all if empty;
	// more than one needs NATS 2.10+).
	FilterSubjects []string
	// AckWait (a duration) is how long a delivery may go unacked before the
	// server redelivers it (default 30s). Handlers running longer are kept
	// alive with in-progress acks.
	AckWait time.Duration
	// MaxDeliver is how many times a message is delivered before it is given
	// up (default 10; -1 for no limit).
	MaxDeliver int
	// Backoff is the redelivery delay after a handler error, by attempt: the
	// n-th failure waits Backoff[n-1], the last entry repeating (default
	// 1s, 5s, 30s, 1m).
	Backoff []time.Duration
	// MaxAckPending caps deliveries awaiting ack across all instances
	// (default 1000; for ConsumeBatch see BatchSpec). 1 gives strict stream
	// order even across redeliveries, at the cost of throughput.
	MaxAckPending int
	// Workers is how many messages are handled at once (default 1; not used
	// by ConsumeBatch). Messages on one subject always go to the same worker,
	// in stream order, so the events of one call are handled in order.
	Workers int
}

// Consumer runs a handler over a durable consumer until Stop. Consume and
// ConsumeBatch both return one.
type Consumer struct {
	spec ConsumerSpec
	log  *slog.Logger
	it   jetstream.MessagesContext

	// Consume's per-message handler and its workers (nil for ConsumeBatch).
	h       Handler
	workers []chan jetstream.Msg

	handlerCtx    context.Context
	cancelHandler context.CancelFunc
	stopping      chan struct{}
	stopOnce      sync.Once
	done          chan struct{}
}

// defaultMaxAckPending is ConsumerSpec.MaxAckPending's default for Consume.
const defaultMaxAckPending = 1000

// withDefaults returns spec with its unset fields set to their defaults.
func (spec ConsumerSpec) withDefaults() ConsumerSpec {
	if spec.AckWait <= 0 {
		spec.AckWait = 30 * time.Second
	}
	if spec.MaxDeliver == 0 {
		spec.MaxDeliver = 10
	}
	if len(spec.Backoff) == 0 {
		spec.Backoff = []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, time.Minute}
	}
	if spec.MaxAckPending <= 0 {
		spec.MaxAckPending = defaultMaxAckPending
	}
	if spec.Workers <= 0 {
		spec.Workers = 1
	}
	return spec
}

// Consume creates or updates the durable consumer spec describes and starts
// handling its messages. ctx bounds only the setup; the consumer runs until
// Stop (or the Bus closes).
func (b *Bus) Consume(ctx context.Context, spec ConsumerSpec, h Handler) (*Consumer, error) {
	if spec.Stream == "" || spec.Durable == "" || h == nil {
		return nil, errors.New("consume: stream, durable and handler are required")
	}
	spec = spec.withDefaults()
	// Pull a few messages ahead of the workers, never more than may be pending.
	c, err := b.open(ctx, spec, min(max(2*spec.Workers, 10), spec.MaxAckPending))
	if err != nil {
		return nil, err
	}
	c.h = h
	c.workers = make([]chan jetstream.Msg, spec.Workers)
	var wg sync.WaitGroup
	for i := range c.workers {
		c.workers[i] = make(chan jetstream.Msg)
		wg.Go(func() {
			for msg := range c.workers[i] {
				c.handle(msg)
			}
		})
	}
	go func() {
		c.read()
		for _, w := range c.workers {
			close(w)
		}
		wg.Wait()
		c.cancelHandler()
		close(c.done)
	}()
	return c, nil
}

// open creates or updates the durable consumer spec (defaults applied)
// declares and starts pulling up to pull messages ahead. The caller starts
// the goroutines that read c.it and close c.done.
func (b *Bus) open(ctx context.Context, spec ConsumerSpec, pull int) (*Consumer, error) {
	cfg := jetstream.ConsumerConfig{
		Durable:       spec.Durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       spec.AckWait,
		MaxDeliver:    spec.MaxDeliver,
		MaxAckPending: spec.MaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	switch len(spec.FilterSubjects) {
	case 0:
	case 1: // the single-filter form works on NATS 2.9 too
		cfg.FilterSubject = spec.FilterSubjects[0]
	default:
		cfg.FilterSubjects = spec.FilterSubjects
	}
	cons, err := b.js.CreateOrUpdateConsumer(ctx, spec.Stream, cfg)
	if err != nil {
		return nil, fmt.Errorf("consume %s/%s: %w", spec.Stream, spec.Durable, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(pull), jetstream.PullHeartbeat(pullHeartbeat))
	if err != nil {
		return nil, fmt.Errorf("consume %s/%s: %w", spec.Stream, spec.Durable, err)
	}
	c := &Consumer{
		spec:     spec,
		log:      b.log.With("stream", spec.Stream, "consumer", spec.Durable),
		it:       it,
		stopping: make(chan struct{}),
		done:     make(chan struct{}),
	}
	c.handlerCtx, c.cancelHandler = context.WithCancel(context.Background())
	return c, nil
}

// pullHeartbeat is how often the server confirms an open pull request while
// it has nothing to deliver; after two silent periods the client takes the
// request as lost and pulls again. nats.go's default (15s for its 30s
// requests) leaves a consumer idle for 30 s when a request is lost, and
// nats.go v1.55.0 loses one itself: a request whose messages are all read
// before the goroutine that sent it marks it sent is never followed by the
// next one (checkPending sees fetchInProgress still set). A second is cheap
// (one small message a second per idle consumer) and bounds that gap to 2 s.
const pullHeartbeat = time.Second

// read pulls messages and hands each to its subject's worker until the
// iterator closes (Stop, or the connection closed).
func (c *Consumer) read() {
	for {
		msg, err := c.it.Next()
		if err != nil {
			if c.nextFailed(err) {
				return
			}
			continue
		}
		w := c.workers[c.worker(msg.Subject())]
		if c.isStopping() {
			c.release(msg)
			continue
		}
		select {
		case w <- msg:
		case <-c.stopping:
			c.release(msg)
		}
	}
}

// nextFailed deals with an error from the iterator's Next: it reports
// whether the iterator is closed, so reading must end; other errors are
// logged, with a pause so that a lasting one does not spin.
func (c *Consumer) nextFailed(err error) (closed bool) {
	if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
		if !c.isStopping() {
			c.log.Error("consumer: stopped by the server or a closed connection", logging.Err(err))
		}
		return true
	}
	if errors.Is(err, jetstream.ErrNoHeartbeat) {
		// The open pull request is taken as lost; the next Next sends another.
		c.log.Warn("consumer: no heartbeat from the server, pulling again", "silent_for", (2 * pullHeartbeat).String())
		return false
	}
	c.log.Warn("consumer: fetching messages", logging.Err(err))
	select {
	case <-time.After(100 * time.Millisecond):
	case <-c.stopping:
	}
	return false
}

func (c *Consumer) isStopping() bool {
	select {
	case <-c.stopping:
		return true
	default:
		return false
	}
}

// release hands back a message pulled but not started, so that another
// instance gets it now rather than after AckWait.
func (c *Consumer) release(msg jetstream.Msg) {
	if err := msg.Nak(); err != nil {
		c.log.Debug("consumer: releasing message", "subject", msg.Subject(), logging.Err(err))
	}
}

func (c *Consumer) worker(subject string) int {
	if len(c.workers) == 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(subject))
	return int(h.Sum32() % uint32(len(c.workers)))
}

func (c *Consumer) handle(msg jetstream.Msg) {
	m, err := c.toMsg(msg)
	if err != nil {
		return
	}
	log := c.log.With("subject", m.Subject, "stream_seq", m.StreamSeq, "msg_id", m.MsgID, "delivered", m.Delivered)

	stopKeepAlive := c.keepAlive(func() { _ = msg.InProgress() })
	err = c.h(c.handlerCtx, m)
	stopKeepAlive()

	switch {
	case err == nil:
		// Wait for the server to confirm: an ack lost in a reconnect means a
		// redelivery, which idempotent handlers absorb.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if aerr := msg.DoubleAck(ctx); aerr != nil {
			log.Warn("consumer: ack not confirmed; the message may be redelivered", logging.Err(aerr))
		}
	case c.handlerCtx.Err() != nil:
		// Stopped mid-work: hand it back now, without backoff.
		log.Info("consumer: stopped before the handler finished; message handed back", logging.Err(err))
		_ = msg.Nak()
	case errors.Is(err, ErrPermanent):
		log.Error("consumer: permanent failure, dropping message", logging.Err(err))
		_ = msg.TermWithReason(truncate(err.Error(), 200))
	case c.spec.MaxDeliver > 0 && m.Delivered >= uint64(c.spec.MaxDeliver):
		log.Error("consumer: giving up after the last delivery", "max_deliver", c.spec.MaxDeliver, logging.Err(err))
		_ = msg.TermWithReason("max deliveries: " + truncate(err.Error(), 180))
	default:
		delay := c.spec.Backoff[min(int(m.Delivered), len(c.spec.Backoff))-1]
		log.Warn("consumer: handler failed, will retry", "retry_in", delay.String(), logging.Err(err))
		if nerr := msg.NakWithDelay(delay); nerr != nil {
			log.Warn("consumer: nak failed; redelivery after ack wait", logging.Err(nerr))
		}
	}
}

// toMsg is what handlers see of msg. A message without JetStream metadata
// (which a pull consumer never delivers) is terminated and an error returned.
func (c *Consumer) toMsg(msg jetstream.Msg) (Msg, error) {
	md, err := msg.Metadata()
	if err != nil {
		c.log.Error("consumer: message without metadata, terminating", "subject", msg.Subject(), logging.Err(err))
		_ = msg.Term()
		return Msg{}, err
	}
	h := msg.Headers()
	return Msg{
		Subject:   msg.Subject(),
		Data:      msg.Data(),
		Header:    h,
		MsgID:     h.Get(jetstream.MsgIDHeader),
		Delivered: md.NumDelivered,
		StreamSeq: md.Sequence.Stream,
		Published: md.Timestamp,
	}, nil
}

// keepAlive calls touch every half AckWait until stopped, to tell the
// server that the messages touch names are still being worked on, so a slow
// handler is not raced by a redelivery.
func (c *Consumer) keepAlive(touch func()) (stop func()) {
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(c.spec.AckWait / 2)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				touch()
			case <-done:
				return
			}
		}
	}()
	return func() { close(done); <-exited }
}

// Stop stops pulling, hands back messages pulled but not started, and waits
// for running handlers to finish and ack. If ctx ends first, handlers' ctx
// is canceled and Stop returns ctx's error without waiting further (their
// messages are redelivered after AckWait). Stop may be called more than once.
func (c *Consumer) Stop(ctx context.Context) error {
	c.stopOnce.Do(func() {
		close(c.stopping)
		c.it.Drain()
	})
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		c.cancelHandler()
		return fmt.Errorf("stop consumer %s: %w", c.spec.Durable, ctx.Err())
	}
}

// Done is closed once the consumer has stopped: after Stop, or when the
// Bus's connection was closed.
func (c *Consumer) Done() <-chan struct{} { return c.done }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
