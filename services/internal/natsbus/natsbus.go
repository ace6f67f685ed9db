// Package natsbus is Ringback's event bus on NATS JetStream: it connects
// (and keeps reconnecting, forever), declares the streams the services
// share (CALLS: every call event, on calls.<account>.<call_id>.<event>),
// publishes idempotently (the message id goes in Nats-Msg-Id, so a retried
// publish is stored once) and runs durable pull consumers that ack a message
// only after the handler has committed its work (at-least-once delivery:
// handlers must be idempotent).
//
// The NATS client types stay inside this package: services see Bus,
// Consumer and Msg.
package natsbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ringback/ringback/services/internal/config"
	"github.com/ringback/ringback/services/internal/logging"
)

// Stream and subject names shared by the services.
const (
	CallsStream   = "CALLS"
	CallsSubjects = "calls.>"
)

// Defaults of the CALLS stream.
const (
	DefaultCallsMaxAge = 7 * 24 * time.Hour
	// DefaultDuplicates is the window in which a repeated Nats-Msg-Id is
	// dropped: longer than any publish retry loop.
	DefaultDuplicates = 2 * time.Minute
)

// Bus is a connection to NATS with JetStream. It is safe for concurrent use.
type Bus struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	log      *slog.Logger
	replicas int // Options.StreamReplicas
}

// Options tunes Connect; the zero value is what services use.
type Options struct {
	// ReconnectWait is the pause between reconnect attempts (default 1s, with jitter).
	ReconnectWait time.Duration
	// PingInterval is how often the client checks the server is alive
	// (default 10s; a dead server is noticed after 3 missed pings).
	PingInterval time.Duration
	// StreamReplicas is the replica count of the streams EnsureStream
	// declares without one (0: 1, a single server's). In a NATS cluster, 3
	// keeps the call events through the loss of a server.
	StreamReplicas int
}

// Connect connects to the comma-separated NATS URLs in url, naming the
// connection name (the service), and waits until connected or ctx is done:
// if NATS is still starting the service waits instead of crashing, and ctx's
// deadline says how long. Once connected, the client reconnects forever and
// logs each disconnect and reconnect.
func Connect(ctx context.Context, url, name string, log *slog.Logger, opts Options) (*Bus, error) {
	if opts.ReconnectWait <= 0 {
		opts.ReconnectWait = time.Second
	}
	if opts.PingInterval <= 0 {
		opts.PingInterval = 10 * time.Second
	}
	log = log.With("nats_url", config.RedactURL(url))
	nc, err := nats.Connect(url,
		nats.Name(name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(opts.ReconnectWait),
		nats.ReconnectJitter(opts.ReconnectWait/10, opts.ReconnectWait/10),
		nats.PingInterval(opts.PingInterval),
		nats.MaxPingsOutstanding(3),
		nats.ConnectHandler(func(c *nats.Conn) {
			log.Info("nats connected", "server", c.ConnectedUrlRedacted())
		}),
		nats.DisconnectErrHandler(func(c *nats.Conn, err error) {
			if c.IsClosed() { // our own Close, not an outage
				return
			}
			log.Warn("nats disconnected, reconnecting", logging.Err(err))
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			log.Info("nats reconnected", "server", c.ConnectedUrlRedacted())
		}),
		nats.ClosedHandler(func(*nats.Conn) {
			log.Info("nats connection closed")
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			log.Error("nats error", "subject", subject, logging.Err(err))
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", config.RedactURL(url), err)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !nc.IsConnected() {
		select {
		case <-ctx.Done():
			nc.Close()
			return nil, fmt.Errorf("connect to nats %s: %w", config.RedactURL(url), context.Cause(ctx))
		case <-tick.C:
		}
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return &Bus{nc: nc, js: js, log: log, replicas: opts.StreamReplicas}, nil
}

// Close closes the connection. Stop consumers first.
func (b *Bus) Close() { b.nc.Close() }

// Ready is a readiness check: nil while connected.
func (b *Bus) Ready(context.Context) error {
	if st := b.nc.Status(); st != nats.CONNECTED {
		return fmt.Errorf("nats %s", strings.ToLower(st.String()))
	}
	return nil
}

// StreamSpec declares a stream. Storage is always file: events must survive
// a NATS restart.
type StreamSpec struct {
	Name     string
	Subjects []string
	// MaxAge (a duration) is how long messages are kept; consumers that fall
	// further behind lose them.
	MaxAge time.Duration
	// Duplicates (a duration) is the Nats-Msg-Id deduplication window
	// (0: DefaultDuplicates).
	Duplicates time.Duration
	// Replicas in a clustered NATS (0: the Bus's Options.StreamReplicas).
	// EnsureStream changes an existing stream's count to it: NATS adds or
	// removes the copies while the stream serves.
	Replicas int
}

// Calls is the spec of the CALLS stream, keeping events for maxAge (0: DefaultCallsMaxAge).
func Calls(maxAge time.Duration) StreamSpec {
	if maxAge <= 0 {
		maxAge = DefaultCallsMaxAge
	}
	return StreamSpec{Name: CallsStream, Subjects: []string{CallsSubjects}, MaxAge: maxAge}
}

// EnsureStream creates the stream or updates it to spec; every service
// declares the streams it uses at start, so the order they start in does
// not matter. A NATS cluster that is electing its leaders (it has just
// started, or lost a server) leaves a request unanswered or answers it
// "unavailable": each attempt waits at most ensureAttempt, and those are
// tried again until ctx ends. A refusal (a replica count the servers
// cannot hold, subjects another stream has) is returned at once.
func (b *Bus) EnsureStream(ctx context.Context, spec StreamSpec) error {
	if spec.Duplicates <= 0 {
		spec.Duplicates = DefaultDuplicates
	}
	if spec.Replicas <= 0 {
		spec.Replicas = max(1, b.replicas)
	}
	cfg := jetstream.StreamConfig{
		Name:       spec.Name,
		Subjects:   spec.Subjects,
		Storage:    jetstream.FileStorage,
		Retention:  jetstream.LimitsPolicy,
		Discard:    jetstream.DiscardOld,
		MaxAge:     spec.MaxAge,
		Duplicates: spec.Duplicates,
		Replicas:   spec.Replicas,
	}
	for {
		actx, cancel := context.WithTimeout(ctx, ensureAttempt)
		_, err := b.js.CreateOrUpdateStream(actx, cfg)
		cancel()
		if err == nil {
			return nil
		}
		var apiErr *jetstream.APIError
		again := errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrNoResponders) ||
			errors.As(err, &apiErr) && apiErr.Code == 503
		if !again || ctx.Err() != nil {
			return fmt.Errorf("ensure stream %s: %w", spec.Name, err)
		}
		b.log.Warn("nats: stream not ensured yet, trying again", "stream", spec.Name, logging.Err(err))
		select {
		case <-ctx.Done():
			return fmt.Errorf("ensure stream %s: %w", spec.Name, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// ensureAttempt bounds one attempt of EnsureStream.
const ensureAttempt = 5 * time.Second

// PubAck says where a published message was stored.
type PubAck struct {
	Stream   string
	Sequence uint64
	// Duplicate is true when a message with the same id was already stored
	// within the duplicates window: this publish stored nothing.
	Duplicate bool
}

// Publish stores data on subject and waits for JetStream's ack (bounded by
// ctx, or 5s without a deadline). msgID is required: derive it from what the
// message is about (e.g. "<call_id>.<event>.<leg>"), never from time or
// randomness, so that publishing the same fact twice stores it once.
func (b *Bus) Publish(ctx context.Context, subject, msgID string, data []byte) (PubAck, error) {
	if msgID == "" {
		return PubAck{}, fmt.Errorf("publish %s: empty message id", subject)
	}
	ack, err := b.js.Publish(ctx, subject, data, jetstream.WithMsgID(msgID))
	if err != nil {
		return PubAck{}, fmt.Errorf("publish %s (id %s): %w", subject, msgID, err)
	}
	return PubAck{Stream: ack.Stream, Sequence: ack.Sequence, Duplicate: ack.Duplicate}, nil
}

// ErrPermanent marks a handler error that retrying cannot fix (a payload
// that does not parse): the message is terminated instead of redelivered.
var ErrPermanent = errors.New("permanent failure")

// Permanent wraps err so the consumer terminates the message.
func Permanent(err error) error { return fmt.Errorf("%w: %w", ErrPermanent, err) }
