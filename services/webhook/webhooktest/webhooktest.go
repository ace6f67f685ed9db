// Package webhooktest is a webhook receiver for tests: a real HTTP server
// on loopback that records every request, answers as a test tells it, and
// checks signatures with the Standard Webhooks reference library (an
// implementation independent of Ringback's).
package webhooktest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// Request is one request the receiver got.
type Request struct {
	ID, Timestamp, Signature string
	Body                     []byte
	At                       time.Time
	// Action and CallID are read from a carrier-format body; Type and
	// CallID from a native one.
	Action, Type, CallID string
	// N counts the requests with this ID, from 1.
	N int
}

// Respond answers a request: status, body, and an optional delay (a stall)
// before answering.
type Respond func(r Request) (status int, body string, delay time.Duration)

// Reply is a full answer to a request, for receivers that fail in more
// ways than Respond can say.
type Reply struct {
	Status int
	Body   string
	// HangUp closes the connection without an answer.
	HangUp bool
	// Hold (until closed) and Delay hold the answer back, up to whichever
	// ends first; the client giving up ends both.
	Hold  <-chan struct{}
	Delay time.Duration
}

func (respond Respond) reply(r Request) Reply {
	status, body, delay := respond(r)
	return Reply{Status: status, Body: body, Delay: delay}
}

// Ack answers every request as the carrier format wants.
func Ack(Request) (int, string, time.Duration) { return 200, `{"ack":"ok"}`, 0 }

// Receiver is a recording webhook receiver.
type Receiver struct {
	URL string
	srv *httptest.Server

	mu       sync.Mutex
	reqs     []Request
	seen     map[string]int
	answered int
	reply    func(Request) Reply
	changed  chan struct{}
}

// Start starts a receiver answering with respond (Ack when nil); it is
// closed when the test ends.
func Start(t testing.TB, respond Respond) *Receiver {
	t.Helper()
	if respond == nil {
		respond = Ack
	}
	return StartReplying(t, respond.reply)
}

// StartReplying starts a receiver answering with reply; it is closed when
// the test ends.
func StartReplying(t testing.TB, reply func(Request) Reply) *Receiver {
	t.Helper()
	r := &Receiver{seen: map[string]int{}, reply: reply, changed: make(chan struct{}, 1)}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	r.URL = r.srv.URL + "/hook"
	t.Cleanup(r.srv.Close)
	return r
}

// SetRespond changes how the receiver answers.
func (r *Receiver) SetRespond(fn Respond) {
	r.mu.Lock()
	r.reply = fn.reply
	r.mu.Unlock()
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	in := Request{
		ID: req.Header.Get("webhook-id"), Timestamp: req.Header.Get("webhook-timestamp"),
		Signature: req.Header.Get("webhook-signature"), Body: body, At: time.Now(),
	}
	var v struct {
		Action string `json:"action"`
		Type   string `json:"type"`
		Data   struct {
			CallID  string `json:"callid"`
			CallID2 string `json:"callId"`
		} `json:"data"`
	}
	_ = json.Unmarshal(body, &v)
	in.Action, in.Type, in.CallID = v.Action, v.Type, v.Data.CallID
	if in.CallID == "" {
		in.CallID = v.Data.CallID2
	}
	r.mu.Lock()
	r.seen[in.ID]++
	in.N = r.seen[in.ID]
	r.reqs = append(r.reqs, in)
	reply := r.reply
	r.mu.Unlock()
	r.kick()
	a := reply(in)
	var wait <-chan time.Time
	if a.Delay > 0 {
		wait = time.After(a.Delay)
	}
	if a.Hold != nil || wait != nil {
		select {
		case <-a.Hold:
		case <-wait:
		case <-req.Context().Done():
			return
		}
	}
	if a.HangUp {
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			conn.Close()
		}
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.Status)
	_, _ = io.WriteString(w, a.Body)
	r.mu.Lock()
	r.answered++
	r.mu.Unlock()
	r.kick()
}

func (r *Receiver) kick() {
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

// Answered counts the requests answered (not hung up on or abandoned).
func (r *Receiver) Answered() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.answered
}

// Requests returns what the receiver got so far.
func (r *Receiver) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.reqs...)
}

// WaitFor waits until ok holds for the requests received.
func (r *Receiver) WaitFor(ctx context.Context, ok func([]Request) bool) ([]Request, error) {
	for {
		reqs := r.Requests()
		if ok(reqs) {
			return reqs, nil
		}
		select {
		case <-ctx.Done():
			return reqs, fmt.Errorf("waiting for webhook requests (%d so far): %w", len(reqs), ctx.Err())
		case <-r.changed:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Verify checks a request's signature with secret, as a receiver would.
func Verify(secret string, req Request) error {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		return err
	}
	h := http.Header{}
	h.Set("webhook-id", req.ID)
	h.Set("webhook-timestamp", req.Timestamp)
	h.Set("webhook-signature", req.Signature)
	return wh.Verify(req.Body, h)
}
