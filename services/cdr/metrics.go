package cdr

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ringback/ringback/services/internal/natsbus"
)

// metrics are cdr's own Prometheus metrics (gRPC request counts and
// latencies come from the server package). A nil *metrics records nothing.
type metrics struct {
	records *prometheus.CounterVec // by result: written, duplicate
	dropped prometheus.Counter
	batch   prometheus.Histogram
	lag     prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "ringback", Subsystem: "cdr",
			Name: "records_total", Help: "Final call events ingested: written (a new or newer record) or duplicate (already recorded)."},
			[]string{"result"}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "ringback", Subsystem: "cdr",
			Name: "events_dropped_total", Help: "Final call events that could not make a record (undecodable, no call)."}),
		batch: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "ringback", Subsystem: "cdr",
			Name: "insert_seconds", Help: "Time to write one batch of records.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "ringback", Subsystem: "cdr",
			Name: "ingest_lag_seconds", Help: "From the final event's publication to its record's commit.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}),
	}
	if reg != nil {
		reg.MustRegister(m.records, m.dropped, m.batch, m.lag)
	}
	return m
}

func (m *metrics) inserted(rows, written int, took time.Duration, msgs []natsbus.Msg) {
	if m == nil {
		return
	}
	m.records.WithLabelValues("written").Add(float64(written))
	m.records.WithLabelValues("duplicate").Add(float64(rows - written))
	m.batch.Observe(took.Seconds())
	now := time.Now()
	for _, msg := range msgs {
		m.lag.Observe(now.Sub(msg.Published).Seconds())
	}
}

func (m *metrics) droppedEvent() {
	if m != nil {
		m.dropped.Inc()
	}
}
