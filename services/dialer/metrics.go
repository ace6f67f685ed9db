package dialer

import "github.com/prometheus/client_golang/prometheus"

// metrics are the dialer's Prometheus series.
type metrics struct {
	// dials counts claimed records by what became of them: "placed" (a
	// call), "refused" (origination or rating said no), "returned" (given
	// back: origination unavailable, a busy endpoint), or the status they
	// were settled with without a call (ready: outside their calling
	// hours; dnc; expired; failed).
	dials *prometheus.CounterVec
	// outcomes counts the attempts' outcomes by record status.
	outcomes *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		dials: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "ringback", Subsystem: "dialer", Name: "dials_total",
			Help: "Records claimed for dialing, by what became of them (placed, refused, returned, or the status settled without a call)."}, []string{"result"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "ringback", Subsystem: "dialer", Name: "outcomes_total",
			Help: "Outcomes of the attempts, by the record's status (answered, busy, noanswer, failed, cancel)."}, []string{"status"}),
	}
	if reg != nil {
		reg.MustRegister(m.dials, m.outcomes)
	}
	return m
}
