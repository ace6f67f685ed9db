package webhook

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	webhookv1 "github.com/ringback/ringback/proto/gen/go/ringback/webhook/v1"
	"github.com/ringback/ringback/services/internal/netguard"
)

// DispatchConfig tunes delivery.
type DispatchConfig struct {
	// Schedule is the delay before each attempt: Schedule[0] before the
	// first (0: at once), Schedule[n] before the (n+1)-th; a delivery is
	// given up after len(Schedule) attempts.
	Schedule []time.Duration
	// Jitter adds up to this fraction to each retry delay (0.2: up to 20%),
	// so that an endpoint coming back is not hit by every retry at once.
	Jitter float64
	// Lease is how long an instance holds a delivery without renewing it:
	// after a crash, its deliveries are taken over this late.
	Lease time.Duration
	// GapWait is how long a delivery waits for its call's earlier events
	// to be seen before it is sent anyway.
	GapWait time.Duration
	// HoldHorizon: retries due sooner than this stay in memory; later ones
	// go back to the database until due.
	HoldHorizon time.Duration
	// PollInterval is how often due deliveries are claimed from the
	// database (retries, other instances' leftovers, redeliveries).
	PollInterval time.Duration
	// MaxInFlight bounds requests in flight across all endpoints.
	MaxInFlight int
	// MaxHeld bounds the deliveries held in memory per endpoint; beyond it
	// they wait in the database (a slow endpoint cannot fill memory).
	MaxHeld int
	// BreakerFailures consecutive failures (no answer, timeout, 5xx, 429)
	// open an endpoint's circuit for BreakerCooldown (doubling while the
	// probes fail, up to MaxBreakerCooldown).
	BreakerFailures    int
	BreakerCooldown    time.Duration
	MaxBreakerCooldown time.Duration
	// DisableAfter: a subscription whose attempts all failed for this long
	// is disabled (0: never).
	DisableAfter time.Duration
	// MaxResponseBytes is the most of a response body read.
	MaxResponseBytes int64
	// Guard refuses forbidden destinations at connect time.
	Guard *netguard.Guard
}

// DefaultSchedule is the retry schedule: at once, 5 s, 5 min, 30 min, 2 h,
// 5 h, 10 h.
var DefaultSchedule = []time.Duration{0, 5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour}

// excerptBytes is how much of a response the attempt log keeps.
const excerptBytes = 1024

// userAgent identifies Ringback's requests.
const userAgent = "Ringback-Webhooks/1"

// parked is the due time of deliveries of a disabled subscription:
// enabling it makes them due again.
var parked = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

type chainKey struct{ sub, call string }

// job is a delivery held in memory by this instance.
type job struct {
	d        *Delivery
	key      chainKey
	due      time.Time
	active   bool // scheduled: waiting on its timer, the gate, a slot or its request
	inFlight bool
	released bool // handed back to the database; ignore wherever it is queued
	// gateRetry: timer is a recheck of a job the gate blocked.
	gateRetry bool
	timer     *time.Timer
	blocked   time.Time     // when the gate first blocked it
	backoff   time.Duration // next gate recheck
	// again: the delivery, claimed again (redelivered) while this job's
	// last outcome was being written; held anew once that is applied.
	again    *Delivery
	againDue time.Time
}

// endpoint is the dispatcher's state of one subscription.
type endpoint struct {
	queue     []*job // open jobs waiting for a request slot
	inFlight  int
	held      int
	failures  int // consecutive, counting only the endpoint's health
	openUntil time.Time
	cooldown  time.Duration
	wake      *time.Timer
}

// Dispatcher sends held deliveries: per (subscription, call) strictly one
// at a time in sequence order, per subscription at most its concurrency,
// behind a circuit breaker, and records every attempt.
type Dispatcher struct {
	cfg   DispatchConfig
	st    *Store
	subs  *subCache
	http  *http.Client
	log   *slog.Logger
	m     *metrics
	owner string
	// disabled is told of subscriptions the dispatcher disabled.
	disabled func([]disabledSub)

	mu        sync.Mutex
	jobs      map[string]*job
	chains    map[chainKey][]*job
	endpoints map[string]*endpoint
	inFlight  int
	gateQ     []*job
	relIDs    []string
	relDue    []time.Time
	stopping  bool

	gateKick, relKick, pollKick chan struct{}
	outQ                        chan outcome
	ctx                         context.Context
	cancel                      context.CancelFunc
	loops, sends                sync.WaitGroup
}

func newDispatcher(cfg DispatchConfig, st *Store, subs *subCache, owner string, log *slog.Logger, m *metrics, disabled func([]disabledSub)) *Dispatcher {
	tr := cfg.Guard.Transport(nil)
	tr.MaxIdleConnsPerHost = 256
	tr.ResponseHeaderTimeout = 0 // the request's context bounds it
	ctx, cancel := context.WithCancel(context.Background())
	return &Dispatcher{
		cfg: cfg, st: st, subs: subs, log: log, m: m, owner: owner, disabled: disabled,
		http: &http.Client{
			Transport: tr,
			// A redirect is the receiver's answer, not an invitation to
			// follow it somewhere the guard has not seen.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		jobs: map[string]*job{}, chains: map[chainKey][]*job{}, endpoints: map[string]*endpoint{},
		gateKick: make(chan struct{}, 1), relKick: make(chan struct{}, 1), pollKick: make(chan struct{}, 1),
		outQ: make(chan outcome, 4096), ctx: ctx, cancel: cancel,
	}
}

// start runs the dispatcher's loops.
func (d *Dispatcher) start() {
	for _, loop := range []func(){d.gateLoop, d.releaseLoop, d.writeLoop, d.pollLoop, d.renewLoop} {
		d.loops.Add(1)
		go func() { defer d.loops.Done(); loop() }()
	}
}

// stop stops claiming, lets the requests in flight finish and their
// outcomes be written (until ctx ends), then hands every held delivery back
// so that another instance takes it at once.
func (d *Dispatcher) stop(ctx context.Context) {
	d.mu.Lock()
	d.stopping = true
	d.mu.Unlock()
	done := make(chan struct{})
	go func() { d.sends.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	// Let the writer drain what the requests produced.
	for len(d.outQ) > 0 && ctx.Err() == nil {
		time.Sleep(5 * time.Millisecond)
	}
	d.mu.Lock()
	var ids []string
	var due []time.Time
	for id, j := range d.jobs {
		if j.timer != nil {
			j.timer.Stop()
		}
		if !j.inFlight {
			ids, due = append(ids, id), append(due, time.Now())
		}
	}
	d.mu.Unlock()
	if len(ids) > 0 {
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := d.st.release(rctx, d.owner, ids, due); err != nil {
			d.log.Warn("could not hand held deliveries back; they are taken over when their lease ends", "count", len(ids), "err", err)
		}
		cancel()
	}
	d.cancel()
	d.loops.Wait()
}

func kick(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func (d *Dispatcher) endpoint(sub string) *endpoint {
	ep := d.endpoints[sub]
	if ep == nil {
		ep = &endpoint{}
		d.endpoints[sub] = ep
	}
	return ep
}

// add holds deliveries this instance inserted or claimed, due at their
// time.
func (d *Dispatcher) add(ds []*Delivery, due time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.addLocked(ds, due)
}

func (d *Dispatcher) addLocked(ds []*Delivery, due time.Time) {
	now := time.Now()
	for _, del := range ds {
		if old, ok := d.jobs[del.ID]; ok {
			if old.inFlight {
				// Its outcome (given up, delivered) is written but not yet
				// applied, and a redelivery made it due again: once the
				// outcome is applied, the old job goes and this one is held.
				old.again, old.againDue = del, due
			}
			continue
		}
		if d.subs.get(del.SubscriptionID) == nil {
			d.releaseLocked(del.ID, parked) // disabled (or deleted)
			continue
		}
		ep := d.endpoint(del.SubscriptionID)
		if ep.held >= d.cfg.MaxHeld || d.stopping {
			d.releaseLocked(del.ID, now.Add(d.overflowDelay()))
			continue
		}
		j := &job{d: del, key: chainKey{del.SubscriptionID, del.CallID}, due: due}
		d.jobs[del.ID] = j
		ep.held++
		d.m.held.Inc()
		chain := d.chains[j.key]
		i, _ := slices.BinarySearchFunc(chain, j.d.Seq, func(a *job, seq int) int { return a.d.Seq - seq })
		d.chains[j.key] = slices.Insert(chain, i, j)
		if i == 0 {
			// A late earlier event goes ahead; the head it displaces, if
			// already on its way, is held back by the gate until it is done.
			d.scheduleLocked(j, now)
		}
	}
}

// overflowDelay is how long deliveries beyond an endpoint's MaxHeld wait
// in the database before they are claimed again: long enough that the
// poller does not rescan a stalled endpoint's backlog at every turn.
func (d *Dispatcher) overflowDelay() time.Duration { return max(4*d.cfg.PollInterval, 5*time.Second) }

// markOverflow marks the deliveries of endpoints that already hold their
// share in memory: the ingest stores them unheld, for the poller, rather
// than holding and handing them back at once.
func (d *Dispatcher) markOverflow(ds []*Delivery) {
	d.mu.Lock()
	defer d.mu.Unlock()
	pending := map[string]int{}
	for _, del := range ds {
		held := pending[del.SubscriptionID]
		if ep := d.endpoints[del.SubscriptionID]; ep != nil {
			held += ep.held
		}
		del.overflow = held >= d.cfg.MaxHeld || d.stopping
		pending[del.SubscriptionID]++
	}
}

// scheduleLocked starts a chain head on its way: now or at its time; a
// retry far away goes back to the database with its chain.
func (d *Dispatcher) scheduleLocked(j *job, now time.Time) {
	if j.released {
		return
	}
	if j.active {
		// Blocked at the gate by what just finished: check again now.
		if j.gateRetry && j.timer.Stop() {
			j.gateRetry = false
			d.gateLocked(j)
		}
		return
	}
	wait := j.due.Sub(now)
	if wait > d.cfg.HoldHorizon {
		d.releaseChainLocked(j.key, j.due)
		return
	}
	j.active = true
	if wait > 0 {
		j.timer = time.AfterFunc(wait, func() { d.toGate(j) })
		return
	}
	d.gateLocked(j)
}

func (d *Dispatcher) toGate(j *job) {
	d.mu.Lock()
	d.gateLocked(j)
	d.mu.Unlock()
}

// gateLocked queues j for the gate; the first event of a call needs none.
func (d *Dispatcher) gateLocked(j *job) {
	if j.released {
		return
	}
	if j.d.Seq <= 1 {
		d.openLocked(j)
		return
	}
	d.gateQ = append(d.gateQ, j)
	kick(d.gateKick)
}

// gateLoop checks queued jobs against the database in batches.
func (d *Dispatcher) gateLoop() {
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-d.gateKick:
		}
		for {
			d.mu.Lock()
			batch := d.gateQ
			if len(batch) > 1000 {
				batch, d.gateQ = batch[:1000:1000], batch[1000:]
			} else {
				d.gateQ = nil
			}
			d.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			ids := make([]string, 0, len(batch))
			for _, j := range batch {
				ids = append(ids, j.d.ID)
			}
			verdicts, err := d.st.gate(d.ctx, ids, d.cfg.GapWait)
			if err != nil {
				if d.ctx.Err() != nil {
					return
				}
				d.log.Warn("delivery gate query failed; retrying", "err", err)
				time.Sleep(200 * time.Millisecond)
				d.mu.Lock()
				d.gateQ = append(batch, d.gateQ...)
				d.mu.Unlock()
				continue
			}
			now := time.Now()
			d.mu.Lock()
			for _, j := range batch {
				if j.released {
					continue
				}
				switch verdicts[j.d.ID] {
				case gateOpen:
					j.blocked, j.backoff = time.Time{}, 0
					d.openLocked(j)
				case gateBlocked:
					d.blockedLocked(j, now)
				default:
					j.active = false
					d.dropLocked(j, now)
				}
			}
			d.mu.Unlock()
		}
	}
}

// blockedLocked rechecks a blocked job later, or hands it back when it has
// been blocked for long (its predecessor is held elsewhere or far away).
func (d *Dispatcher) blockedLocked(j *job, now time.Time) {
	if j.blocked.IsZero() {
		j.blocked = now
	}
	if now.Sub(j.blocked) > d.cfg.HoldHorizon {
		j.active = false
		d.releaseChainLocked(j.key, now.Add(d.cfg.HoldHorizon))
		return
	}
	j.backoff = min(max(2*j.backoff, 50*time.Millisecond), 2*time.Second)
	j.gateRetry = true
	j.timer = time.AfterFunc(j.backoff, func() {
		d.mu.Lock()
		j.gateRetry = false
		d.gateLocked(j)
		d.mu.Unlock()
	})
}

// openLocked queues an open job for a request slot of its endpoint.
func (d *Dispatcher) openLocked(j *job) {
	ep := d.endpoint(j.d.SubscriptionID)
	ep.queue = append(ep.queue, j)
	d.pumpLocked(j.d.SubscriptionID, ep)
}

// pumpLocked starts as many of an endpoint's open jobs as its concurrency,
// its circuit and the global bound allow.
func (d *Dispatcher) pumpLocked(id string, ep *endpoint) {
	sub := d.subs.get(id)
	if sub == nil {
		for _, j := range ep.queue {
			j.active = false
			d.releaseChainLocked(j.key, parked)
		}
		ep.queue = nil
		return
	}
	now := time.Now()
	if now.Before(ep.openUntil) {
		if ep.wake == nil {
			ep.wake = time.AfterFunc(ep.openUntil.Sub(now), func() {
				d.mu.Lock()
				ep.wake = nil
				d.pumpLocked(id, ep)
				d.mu.Unlock()
			})
		}
		return
	}
	limit := sub.MaxConcurrency
	if ep.failures >= d.cfg.BreakerFailures {
		limit = 1 // half-open: one probe
	}
	for len(ep.queue) > 0 && ep.inFlight < limit && d.inFlight < d.cfg.MaxInFlight && !d.stopping {
		j := ep.queue[0]
		ep.queue = ep.queue[1:]
		if j.released {
			continue
		}
		ep.inFlight++
		d.inFlight++
		j.inFlight = true
		d.sends.Add(1)
		go d.send(j, sub)
	}
}

// send makes one attempt and hands its outcome to the writer.
func (d *Dispatcher) send(j *job, sub *endpointSub) {
	defer d.sends.Done()
	a := d.attempt(j, sub)
	if a.Number == 1 {
		d.m.firstAttempt.Observe(a.StartedAt.Sub(j.d.OccurredAt).Seconds())
	}
	d.m.attempted(a)
	o := outcome{job: j, attempt: a}
	now := time.Now()

	d.mu.Lock()
	ep := d.endpoint(j.d.SubscriptionID)
	ep.inFlight--
	wasFull := d.inFlight >= d.cfg.MaxInFlight
	d.inFlight--
	d.breakerLocked(ep, a, now)
	switch {
	case a.Success:
		o.state = stateDelivered
	case j.d.Step+1 >= len(d.cfg.Schedule):
		o.state, o.step = stateFailed, j.d.Step+1
	default:
		o.state, o.step = statePending, j.d.Step+1
		delay := d.cfg.Schedule[o.step]
		delay += time.Duration(float64(delay) * d.cfg.Jitter * rand.Float64())
		o.due = now.Add(delay)
		o.held = delay <= d.cfg.HoldHorizon
	}
	j.d.Attempts, j.d.Step = a.Number, o.step
	if wasFull {
		for id, other := range d.endpoints {
			d.pumpLocked(id, other)
		}
	} else {
		d.pumpLocked(j.d.SubscriptionID, ep)
	}
	d.mu.Unlock()
	d.outQ <- o
}

// breakerLocked counts an attempt against its endpoint's circuit.
func (d *Dispatcher) breakerLocked(ep *endpoint, a Attempt, now time.Time) {
	if a.Success || !unhealthy(a) {
		ep.failures, ep.cooldown = 0, 0
		return
	}
	ep.failures++
	if ep.failures < d.cfg.BreakerFailures {
		return
	}
	switch {
	case ep.cooldown == 0:
		ep.cooldown = d.cfg.BreakerCooldown
	case a.StartedAt.Before(ep.openUntil):
		// Sent before the circuit opened (in flight with the failures
		// that opened it): not a failed probe, the circuit stays as it is.
		return
	default:
		ep.cooldown = min(2*ep.cooldown, d.cfg.MaxBreakerCooldown)
	}
	ep.openUntil = now.Add(ep.cooldown)
	d.m.breakerOpened.Inc()
}

// unhealthy reports whether a failed attempt says the endpoint itself is
// unwell (no answer, a timeout, 5xx, 429) rather than refusing this event.
func unhealthy(a Attempt) bool {
	return a.Status == 0 || a.Status >= 500 || a.Status == http.StatusTooManyRequests
}

// attempt makes one signed request.
func (d *Dispatcher) attempt(j *job, sub *endpointSub) Attempt {
	a := Attempt{Number: j.d.Attempts + 1, StartedAt: time.Now()}
	timeout := time.Duration(sub.TimeoutMS) * time.Millisecond
	ctx, cancel := context.WithTimeout(d.ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sub.URL, bytes.NewReader(j.d.Payload))
	if err != nil {
		a.Error, a.Latency = "invalid url", time.Since(a.StartedAt)
		return a
	}
	ts := a.StartedAt.Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("webhook-id", j.d.ID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", Sign(sub.key, j.d.ID, ts, j.d.Payload))
	resp, err := d.http.Do(req)
	if err != nil {
		a.Error, a.Latency = describe(err), time.Since(a.StartedAt)
		return a
	}
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, d.cfg.MaxResponseBytes))
	resp.Body.Close()
	a.Latency, a.Status = time.Since(a.StartedAt), resp.StatusCode
	a.ResponseExcerpt = excerpt(body)
	switch {
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		a.Error = "status " + strconv.Itoa(resp.StatusCode)
	case rerr != nil:
		a.Error = "reading the response: " + describe(rerr)
	case sub.format == webhookv1.WebhookFormat_WEBHOOK_FORMAT_CARRIER && !carrierAcked(body):
		a.Error = `no ack: the carrier format needs {"ack":"ok"}`
	default:
		a.Success = true
	}
	return a
}

// describe is a short, stable account of a request error (never the URL,
// which may carry a token).
func describe(err error) string {
	var ge *netguard.Error
	var ne net.Error
	switch {
	case errors.As(err, &ge):
		return "destination not allowed"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	s := err.Error()
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

func excerpt(body []byte) string {
	if len(body) > excerptBytes {
		body = body[:excerptBytes]
	}
	return strings.ToValidUTF8(string(body), "\uFFFD")
}

// writeLoop records outcomes in batches, then moves their chains on.
func (d *Dispatcher) writeLoop() {
	var batch []outcome
	for {
		select {
		case <-d.ctx.Done():
			return
		case o := <-d.outQ:
			batch = append(batch[:0], o)
		}
	fill:
		for len(batch) < 1000 {
			select {
			case o := <-d.outQ:
				batch = append(batch, o)
			default:
				break fill
			}
		}
		for {
			disabled, err := d.st.writeOutcomes(d.ctx, d.owner, batch, d.cfg.Lease, d.cfg.DisableAfter, time.Now())
			if err == nil {
				if len(disabled) > 0 && d.disabled != nil {
					for _, s := range disabled {
						d.log.Warn("webhook disabled: every delivery failed", "webhook_id", s.ID, "account_id", s.AccountID,
							"failing_since", s.FailingSince)
					}
					d.disabled(disabled)
				}
				break
			}
			if d.ctx.Err() != nil {
				return // unwritten: the leases run out and the deliveries are retried
			}
			d.log.Warn("recording delivery attempts failed; retrying", "count", len(batch), "err", err)
			time.Sleep(500 * time.Millisecond)
		}
		d.applied(batch)
	}
}

// applied moves chains on once their outcomes are committed.
func (d *Dispatcher) applied(batch []outcome) {
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, o := range batch {
		j := o.job
		j.inFlight, j.active = false, false
		switch {
		case o.state != statePending:
			d.dropLocked(j, now)
			if j.again != nil {
				d.addLocked([]*Delivery{j.again}, j.againDue)
			}
		case o.held:
			j.due = o.due
			d.scheduleLocked(j, now)
		default:
			// Written back with its due time; its successors follow it.
			d.forgetLocked(j)
			d.releaseChainLocked(j.key, o.due)
		}
	}
}

// dropLocked forgets a finished job and starts its chain's next one.
func (d *Dispatcher) dropLocked(j *job, now time.Time) {
	d.forgetLocked(j)
	if chain := d.chains[j.key]; len(chain) > 0 {
		d.scheduleLocked(chain[0], now)
	}
}

// forgetLocked removes j from memory.
func (d *Dispatcher) forgetLocked(j *job) {
	if _, ok := d.jobs[j.d.ID]; !ok {
		return
	}
	delete(d.jobs, j.d.ID)
	if j.timer != nil {
		j.timer.Stop()
	}
	j.released = true
	chain := d.chains[j.key]
	if i := slices.Index(chain, j); i >= 0 {
		chain = slices.Delete(chain, i, i+1)
	}
	if len(chain) == 0 {
		delete(d.chains, j.key)
	} else {
		d.chains[j.key] = chain
	}
	ep := d.endpoint(j.d.SubscriptionID)
	ep.held--
	d.m.held.Dec()
	if ep.held == 0 && ep.inFlight == 0 && len(ep.queue) == 0 && ep.failures == 0 {
		delete(d.endpoints, j.d.SubscriptionID)
	}
}

// releaseChainLocked hands a chain's jobs that are not in flight back to
// the database, due at due.
func (d *Dispatcher) releaseChainLocked(key chainKey, due time.Time) {
	for _, j := range slices.Clone(d.chains[key]) {
		if j.inFlight {
			continue
		}
		d.forgetLocked(j)
		d.releaseLocked(j.d.ID, due)
	}
}

func (d *Dispatcher) releaseLocked(id string, due time.Time) {
	d.relIDs, d.relDue = append(d.relIDs, id), append(d.relDue, due)
	kick(d.relKick)
}

// releaseLoop writes released jobs back in batches.
func (d *Dispatcher) releaseLoop() {
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-d.relKick:
		}
		d.mu.Lock()
		ids, due := d.relIDs, d.relDue
		d.relIDs, d.relDue = nil, nil
		d.mu.Unlock()
		if len(ids) == 0 {
			continue
		}
		if err := d.st.release(d.ctx, d.owner, ids, due); err != nil && d.ctx.Err() == nil {
			// Their leases run out and they are claimed again.
			d.log.Warn("handing deliveries back failed", "count", len(ids), "err", err)
		}
	}
}

// pollLoop claims due deliveries: retries, redeliveries and what dead
// instances held.
func (d *Dispatcher) pollLoop() {
	t := time.NewTicker(d.cfg.PollInterval)
	defer t.Stop()
	const limit = 500
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-t.C:
		case <-d.pollKick:
		}
		for {
			d.mu.Lock()
			if d.stopping {
				d.mu.Unlock()
				return
			}
			now := time.Now()
			var skip []string
			for id, ep := range d.endpoints {
				if ep.held >= d.cfg.MaxHeld || now.Before(ep.openUntil) {
					skip = append(skip, id)
				}
			}
			d.mu.Unlock()
			ds, err := d.st.claimDue(d.ctx, d.owner, d.cfg.Lease, limit, skip)
			if err != nil {
				if d.ctx.Err() == nil {
					d.log.Warn("claiming due deliveries failed", "err", err)
				}
				break
			}
			d.add(ds, time.Now())
			if len(ds) < limit {
				break
			}
		}
	}
}

// renewLoop keeps this instance's leases alive.
func (d *Dispatcher) renewLoop() {
	t := time.NewTicker(d.cfg.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-t.C:
			if err := d.st.renewLeases(d.ctx, d.owner, d.cfg.Lease); err != nil && d.ctx.Err() == nil {
				d.log.Warn("renewing delivery leases failed", "err", err)
			}
		}
	}
}

// heldCount is how many deliveries this instance holds (for tests).
func (d *Dispatcher) heldCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.jobs)
}
