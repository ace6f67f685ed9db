package webhook

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the webhook service's own Prometheus metrics.
type metrics struct {
	events        prometheus.Counter
	deliveries    prometheus.Counter
	droppedEvents prometheus.Counter
	attempts      *prometheus.CounterVec // by result: delivered, failed
	attemptTime   prometheus.Histogram
	firstAttempt  prometheus.Histogram
	held          prometheus.Gauge
	breakerOpened prometheus.Counter
	reminded      prometheus.Counter
	emails        *prometheus.CounterVec // by result: sent, retry, failed
}

func newMetrics(reg prometheus.Registerer) *metrics {
	opts := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "ringback", Subsystem: "webhook", Name: name, Help: help}
	}
	m := &metrics{
		events:        prometheus.NewCounter(prometheus.CounterOpts(opts("events_total", "Call events ingested."))),
		deliveries:    prometheus.NewCounter(prometheus.CounterOpts(opts("deliveries_total", "Deliveries created (one per event and matching subscription)."))),
		droppedEvents: prometheus.NewCounter(prometheus.CounterOpts(opts("events_dropped_total", "Call events that could not be decoded."))),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts(opts("attempts_total", "Delivery attempts, by result (success, failure).")),
			[]string{"result"}),
		attemptTime: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "ringback", Subsystem: "webhook",
			Name: "attempt_seconds", Help: "Time receivers took to answer an attempt.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		firstAttempt: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "ringback", Subsystem: "webhook",
			Name: "first_attempt_delay_seconds", Help: "From a call event to its delivery's first attempt.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
		held:          prometheus.NewGauge(prometheus.GaugeOpts(opts("held_deliveries", "Deliveries this instance holds in memory."))),
		breakerOpened: prometheus.NewCounter(prometheus.CounterOpts(opts("circuit_opened_total", "Times an endpoint's circuit opened."))),
		reminded:      prometheus.NewCounter(prometheus.CounterOpts(opts("reminded_calls_total", "Failed calls included in a reminder email."))),
		emails: prometheus.NewCounterVec(prometheus.CounterOpts(opts("emails_total", "Emails handed to SMTP, by result (sent, retry, failed).")),
			[]string{"result"}),
	}
	if reg != nil {
		reg.MustRegister(m.events, m.deliveries, m.droppedEvents, m.attempts, m.attemptTime, m.firstAttempt,
			m.held, m.breakerOpened, m.reminded, m.emails)
	}
	return m
}

func (m *metrics) ingested(events, deliveries int) {
	m.events.Add(float64(events))
	m.deliveries.Add(float64(deliveries))
}

func (m *metrics) attempted(a Attempt) {
	if a.Success {
		m.attempts.WithLabelValues("success").Inc()
	} else {
		m.attempts.WithLabelValues("failure").Inc()
	}
	m.attemptTime.Observe(a.Latency.Seconds())
}
