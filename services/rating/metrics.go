package rating

import "github.com/prometheus/client_golang/prometheus"

// metrics are rating's own Prometheus metrics (gRPC request counts and
// latencies come from the server package).
type metrics struct {
	authorizations *prometheus.CounterVec // by result: ok or the refusal reason
	settlements    *prometheus.CounterVec // by result: charged, duplicate
	tariffLoads    prometheus.Histogram
	tariffRates    *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		authorizations: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "ringback", Subsystem: "rating",
			Name: "authorizations_total", Help: "Legs authorized (result ok) or refused (result = the reason)."}, []string{"result"}),
		settlements: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "ringback", Subsystem: "rating",
			Name: "settlements_total", Help: "Answered legs settled from their hangup events (charged, or duplicate: already charged)."}, []string{"result"}),
		tariffLoads: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "ringback", Subsystem: "rating",
			Name: "tariff_compile_seconds", Help: "Time to compile a tariff and swap it in.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 9)}),
		tariffRates: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "ringback", Subsystem: "rating",
			Name: "tariff_rates", Help: "Rates held in memory per tariff."}, []string{"tariff_id"}),
	}
	if reg != nil {
		reg.MustRegister(m.authorizations, m.settlements, m.tariffLoads, m.tariffRates)
	}
	return m
}
