package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	eventsv1 "github.com/ringback/ringback/proto/gen/go/ringback/events/v1"
	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	"github.com/ringback/ringback/services/internal/logging"
)

// Defaults of the visitors' status streams.
const (
	// DefaultBannerStreamsPerIP bounds the streams one address (IPv6: /64)
	// may hold open on a replica.
	DefaultBannerStreamsPerIP = 20
	// DefaultBannerStreamMaxAge bounds a stream's life; the browser's
	// EventSource reconnects by itself if the call is still live.
	DefaultBannerStreamMaxAge = 2 * time.Hour
	// bannerWriteTimeout bounds each write to a visitor who stopped reading.
	bannerWriteTimeout = 10 * time.Second
	// bannerStreamBuffer is how many events a stream holds for a slow
	// visitor; past it the stream catches up with a GetCall.
	bannerStreamBuffer = 64
	// bannerPollFailures: a polling stream gives up after this many GetCall
	// failures in a row.
	bannerPollFailures = 20
)

// tokenCampaign authorizes a visitor's request for call id by its status
// token, and applies the campaign's origin rule. On failure it answers and
// returns nil.
func (b *bannerAPI) tokenCampaign(w http.ResponseWriter, r *http.Request, id string) *bannerCampaign {
	campaignID, err := b.tokens.verify(id, r.URL.Query().Get("token"), b.now())
	if err != nil || !validID(id) {
		b.refuse(w, ErrorDetail{Code: ReasonInvalidToken, HTTPStatus: http.StatusUnauthorized,
			Message: "missing, invalid or expired status token (?token=)"})
		return nil
	}
	c := b.campaign(w, r, campaignID)
	if c == nil {
		return nil
	}
	if !b.cors(w, r, c) {
		b.refuseOrigin(w, r)
		return nil
	}
	return c
}

// getCall serves GET /v1/calls/{id}: with ?token= and no Authorization
// header, the visitor's public view; anything else is the REST API's
// GetCall, forwarded unchanged.
func (b *bannerAPI) getCall(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "" || !r.URL.Query().Has("token") {
		b.rest.ServeHTTP(w, r)
		return
	}
	id := r.PathValue("id")
	c := b.tokenCampaign(w, r, id)
	if c == nil {
		return
	}
	call, err := b.fetchCall(r.Context(), c, id)
	if err != nil {
		b.serviceRefusal(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, publicCallBody{Call: publicView(call, b.now())})
}

// statusEvents streams a call's public view to its visitor as Server-Sent
// Events: the current state first, then every change, each as
//
//	event: status
//	id: <event sequence; 0 for a state read with GetCall>
//	data: {"call":{...}}
//
// with a ": keepalive" comment every 15 s, until the call ends (the final
// state is the last message), the stream reaches its age limit or the
// gateway shuts down.
//
// With NATS, the stream subscribes (core NATS, not a durable consumer) to
// the call's events before it reads the call, so no change falls in
// between, and re-reads the call every resyncEvery in case a message was
// lost while disconnected. Without NATS it polls GetCall every pollEvery.
func (b *bannerAPI) statusEvents(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	c := b.tokenCampaign(w, r, id)
	if c == nil {
		return
	}
	addr := limiterAddr(clientIP(r, b.trusted))
	if !b.streams.acquire(addr) {
		w.Header().Set("Retry-After", "30")
		b.refuse(w, ErrorDetail{Code: ReasonRateLimited, HTTPStatus: http.StatusTooManyRequests,
			Message: "too many status streams open from your address"})
		return
	}
	defer b.streams.release(addr)
	b.metrics.streams.Inc()
	defer b.metrics.streams.Dec()
	ctx := r.Context()

	var updates chan *eventsv1.CallEvent
	resync := make(chan struct{}, 1)
	if b.events != nil {
		updates = make(chan *eventsv1.CallEvent, bannerStreamBuffer)
		subject := "calls." + c.pc.GetAccountId() + "." + id + ".>"
		unsubscribe, err := b.events.Subscribe(subject, func(data []byte) {
			ev := &eventsv1.CallEvent{}
			if proto.Unmarshal(data, ev) != nil {
				return
			}
			select {
			case updates <- ev:
			default: // the visitor is slow: catch up with a GetCall
				select {
				case resync <- struct{}{}:
				default:
				}
			}
		})
		if err != nil {
			b.unavailable(w, r, "banner status subscription", err)
			return
		}
		// The channel is never closed: the NATS callback may still run
		// once after unsubscribe returns.
		defer unsubscribe()
		if err := b.events.Flush(); err != nil {
			b.unavailable(w, r, "banner status subscription", err)
			return
		}
	}
	call, err := b.fetchCall(ctx, c, id)
	if err != nil {
		b.serviceRefusal(w, r, err)
		return
	}

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	s := &statusStream{w: w, rc: http.NewResponseController(w), now: b.now}
	defer func() { _ = s.rc.SetWriteDeadline(time.Time{}) }()
	if err := s.snapshot(call); err != nil || s.done {
		return
	}

	every := b.pollEvery
	if b.events != nil {
		every = b.resyncEvery
	}
	poll := time.NewTicker(every)
	defer poll.Stop()
	keepalive := time.NewTicker(b.keepalive)
	defer keepalive.Stop()
	failures := 0
	log := logging.WithCall(b.log, id)
	for !s.done {
		var err error
		select {
		case <-ctx.Done():
			return
		case <-b.closing:
			return
		case <-keepalive.C:
			err = s.comment("keepalive")
		case ev := <-updates:
			err = s.event(ev)
		case <-resync:
			err = b.refresh(ctx, s, c, id, &failures)
		case <-poll.C:
			err = b.refresh(ctx, s, c, id, &failures)
		}
		if err != nil {
			if ctx.Err() == nil && err != errStreamGaveUp {
				log.Debug("banner status stream ended", logging.Err(err))
			}
			return
		}
	}
}

var errStreamGaveUp = errors.New("status stream gave up")

// refresh re-reads the call and sends it if it changed.
func (b *bannerAPI) refresh(ctx context.Context, s *statusStream, c *bannerCampaign, id string, failures *int) error {
	call, err := b.fetchCall(ctx, c, id)
	if err != nil {
		if ctx.Err() != nil || status.Code(err) == codes.NotFound {
			return errStreamGaveUp
		}
		if *failures++; *failures >= bannerPollFailures {
			b.logFailure("banner status stream: get call", err, logging.CallID(id))
			return errStreamGaveUp
		}
		return nil
	}
	*failures = 0
	return s.snapshot(call)
}

// statusStream writes one visitor's stream and remembers what it sent.
type statusStream struct {
	w   io.Writer
	rc  *http.ResponseController
	now func() time.Time
	// lastSeq is the sequence of the last event applied.
	lastSeq uint32
	// floor is the progress of the latest GetCall snapshot: an event behind
	// it is older than what the visitor saw (GetCall reads what is
	// committed; events are published after).
	floor int
	last  []byte // the last view sent, without its countdown
	done  bool   // a final state was sent
}

// snapshot sends a state read with GetCall, if it differs from the last sent.
func (s *statusStream) snapshot(c *originationv1.Call) error {
	if p := progress(c); p > s.floor {
		s.floor = p
	}
	return s.send(s.lastSeq, c)
}

// event sends an event's state: events at or below the last sequence are
// repeats, and those behind the last snapshot are stale.
func (s *statusStream) event(ev *eventsv1.CallEvent) error {
	c := ev.GetCall()
	if c == nil || ev.GetSequence() <= s.lastSeq || progress(c) < s.floor {
		return nil
	}
	s.lastSeq = ev.GetSequence()
	return s.send(s.lastSeq, c)
}

func (s *statusStream) send(id uint32, c *originationv1.Call) error {
	v := publicView(c, s.now())
	s.done = finalStatus(c.GetStatus())
	// The countdown alone is no change: the widget counts down itself.
	retry := v.RetryInS
	v.RetryInS = nil
	key, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if bytes.Equal(key, s.last) {
		return nil
	}
	s.last = key
	v.RetryInS = retry
	data, err := json.Marshal(publicCallBody{Call: v})
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	buf.Grow(len(data) + 48)
	buf.WriteString("event: status\nid: ")
	buf.WriteString(strconv.FormatUint(uint64(id), 10))
	buf.WriteString("\ndata: ")
	buf.Write(data)
	buf.WriteString("\n\n")
	return s.write(buf.Bytes())
}

func (s *statusStream) comment(text string) error {
	return s.write([]byte(": " + text + "\n\n"))
}

func (s *statusStream) write(p []byte) error {
	// Recorders and some wrappers cannot set deadlines; the write is then
	// only bounded by the stream's age.
	_ = s.rc.SetWriteDeadline(time.Now().Add(bannerWriteTimeout))
	if _, err := s.w.Write(p); err != nil {
		return err
	}
	return s.rc.Flush()
}
