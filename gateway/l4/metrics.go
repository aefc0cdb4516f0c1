package l4

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are one Server's collectors. Labels are endpoint ids and fixed reason strings only.
type metrics struct {
	active     *prometheus.GaugeVec
	accepted   *prometheus.CounterVec
	denied     *prometheus.CounterVec
	closed     *prometheus.CounterVec
	received   *prometheus.CounterVec
	sent       *prometheus.CounterVec
	connectErr *prometheus.CounterVec
	duration   *prometheus.HistogramVec
}

func newMetrics() *metrics {
	const ns, sub = "portal", "tcp"
	ep := []string{"endpoint"}
	return &metrics{
		active: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "connections_active",
			Help: "Client connections past the firewall and limits that are still open."}, ep),
		accepted: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "connections_accepted_total",
			Help: "Client connections accepted from the listener, including those then denied."}, ep),
		denied: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "connections_denied_total",
			Help: "Client connections refused before any byte was read, by reason (firewall, limit_endpoint, limit_source)."},
			[]string{"endpoint", "reason"}),
		closed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "connections_closed_total",
			Help: "Client connections that ended, by the reason recorded in the access log."}, []string{"endpoint", "reason"}),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "receive_bytes_total",
			Help: "Payload bytes received from clients and forwarded to instances (bytes in)."}, ep),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "transmit_bytes_total",
			Help: "Payload bytes received from instances and forwarded to clients (bytes out)."}, ep),
		connectErr: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "connect_errors_total",
			Help: "Failed dials to instances (each ejects the instance for a back-off period)."}, ep),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "connection_duration_seconds",
			Help:    "Lifetime of client connections past the firewall and limits.",
			Buckets: prometheus.ExponentialBuckets(0.005, 4, 12)}, ep),
	}
}

func (m *metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.active, m.accepted, m.denied, m.closed, m.received, m.sent, m.connectErr, m.duration}
}

// forget drops every series of endpoint id.
func (m *metrics) forget(id string) {
	l := prometheus.Labels{"endpoint": id}
	for _, c := range []interface {
		DeletePartialMatch(prometheus.Labels) int
	}{m.active, m.accepted, m.denied, m.closed, m.received, m.sent, m.connectErr, m.duration} {
		c.DeletePartialMatch(l)
	}
}

// epMetrics are the children of one endpoint, resolved once.
type epMetrics struct {
	active                   prometheus.Gauge
	accepted                 prometheus.Counter
	deniedFirewall           prometheus.Counter
	deniedLimit, deniedLimIP prometheus.Counter
	received, sent           prometheus.Counter
	connectErr               prometheus.Counter
	duration                 prometheus.Observer
	closed                   *prometheus.CounterVec
	id                       string
}

func (m *metrics) endpoint(id string) *epMetrics {
	return &epMetrics{
		id:             id,
		active:         m.active.WithLabelValues(id),
		accepted:       m.accepted.WithLabelValues(id),
		deniedFirewall: m.denied.WithLabelValues(id, "firewall"),
		deniedLimit:    m.denied.WithLabelValues(id, "limit_endpoint"),
		deniedLimIP:    m.denied.WithLabelValues(id, "limit_source"),
		received:       m.received.WithLabelValues(id),
		sent:           m.sent.WithLabelValues(id),
		connectErr:     m.connectErr.WithLabelValues(id),
		duration:       m.duration.WithLabelValues(id),
		closed:         m.closed,
	}
}
