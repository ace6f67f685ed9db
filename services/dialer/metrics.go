package dialer

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ringback/ringback/services/dialer/pacing"
)

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
	// abandonment is a paced campaign's abandonment rate in each window
	// (24h, 30d), as the replica that last paced it read it; dialLevel and
	// theta are that replica's last decision.
	abandonment *prometheus.GaugeVec
	dialLevel   *prometheus.GaugeVec
	theta       *prometheus.GaugeVec
	// released counts the calls a predictive campaign hung up unanswered
	// (pacing.Decision.Release) that origination did end.
	released *prometheus.CounterVec
}

// observePacing records a paced campaign's decision.
func (m *metrics) observePacing(campaign string, d pacing.Decision, in pacing.Input) {
	m.abandonment.WithLabelValues(campaign, "24h").Set(in.Day.Rate())
	m.abandonment.WithLabelValues(campaign, "30d").Set(in.Month.Rate())
	m.dialLevel.WithLabelValues(campaign).Set(d.Level)
	m.theta.WithLabelValues(campaign).Set(d.Theta)
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		dials: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "ringback", Subsystem: "dialer", Name: "dials_total",
			Help: "Records claimed for dialing, by what became of them (placed, refused, returned, or the status settled without a call)."}, []string{"result"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "ringback", Subsystem: "dialer", Name: "outcomes_total",
			Help: "Outcomes of the attempts, by the record's status (answered, busy, noanswer, failed, cancel)."}, []string{"status"}),
		abandonment: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "ringback", Subsystem: "dialer", Name: "abandonment_ratio",
			Help: "Abandoned calls over live answers of a paced campaign, by window (24h, 30d)."}, []string{"campaign_id", "window"}),
		dialLevel: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "ringback", Subsystem: "dialer", Name: "dial_level",
			Help: "Calls ringing per active agent of a paced campaign after the last decision."}, []string{"campaign_id"}),
		theta: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "ringback", Subsystem: "dialer", Name: "pacing_risk",
			Help: "The risk a predictive campaign's next call may carry (the chance it finds no agent), 0 at the hard limit."}, []string{"campaign_id"}),
		released: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "ringback", Subsystem: "dialer", Name: "released_calls_total",
			Help: "Calls a predictive campaign hung up unanswered after the lawful ring, as no agent would have been free to take them."}, []string{"campaign_id"}),
	}
	if reg != nil {
		reg.MustRegister(m.dials, m.outcomes, m.abandonment, m.dialLevel, m.theta, m.released)
	}
	return m
}

// agentMetrics are the router's series. The agents' states are not
// exported as a gauge: they live in Redis, shared by the replicas, so no
// replica's count would be the whole; the connections each replica makes
// add up.
type agentMetrics struct {
	// connects counts the answered calls awaiting an agent by what became
	// of them: "connected", "not_waiting" (the call ended or was abandoned
	// before ConnectCall: the agent was given back), "none_free" (no agent
	// was free before the call's deadline), "error" (origination refused or
	// failed).
	connects *prometheus.CounterVec
	// connectSeconds is the time from a call's answer to its connection to
	// an agent's room.
	connectSeconds prometheus.Histogram
	// queueSeconds is the time a BLAST's recipient who pressed CONNECT
	// waited for an agent (the queue's speed of answer).
	queueSeconds prometheus.Histogram
}

func newAgentMetrics(reg prometheus.Registerer) *agentMetrics {
	m := &agentMetrics{
		connects: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "ringback", Subsystem: "dialer", Name: "agent_connects_total",
			Help: "Answered calls awaiting an agent, by what became of them (connected, not_waiting, none_free, error)."}, []string{"result"}),
		connectSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "ringback", Subsystem: "dialer", Name: "agent_connect_seconds",
			Help:    "Time from a call's answer to its connection to an agent's room (ConnectCall's success).",
			Buckets: []float64{0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5}}),
		queueSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "ringback", Subsystem: "dialer", Name: "agent_queue_wait_seconds",
			Help:    "Time a BLAST's recipient who pressed a CONNECT option waited for an agent's room (agent_queue).",
			Buckets: []float64{0.1, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600}}),
	}
	if reg != nil {
		reg.MustRegister(m.connects, m.connectSeconds, m.queueSeconds)
	}
	return m
}
