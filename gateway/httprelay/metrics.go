package httprelay

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the relay's Prometheus metrics (namespace "portal", subsystem "relay"), labelled by
// endpoint id, never by key. A nil *Metrics records nothing.
type Metrics struct {
	requests     *prometheus.CounterVec
	duration     *prometheus.HistogramVec
	bytesTotal   *prometheus.CounterVec
	deniedTotal  *prometheus.CounterVec
	limitedTotal *prometheus.CounterVec
	upstreamErr  *prometheus.CounterVec
	// ActiveConns counts open client connections; the server's ConnState hook updates it.
	ActiveConns prometheus.Gauge
}

// NewMetrics creates the metrics and registers them with reg (nil: not registered).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "portal", Subsystem: "relay", Name: "requests_total",
			Help: "Relay requests by endpoint and status class."}, []string{"endpoint", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "portal", Subsystem: "relay", Name: "request_duration_seconds",
			Help: "Relay request latency, from request read to response end.", Buckets: prometheus.ExponentialBuckets(0.0005, 2.5, 14)}, []string{"endpoint"}),
		bytesTotal: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "portal", Subsystem: "relay", Name: "bytes_total",
			Help: "Body bytes relayed by direction (in: from clients, out: to clients)."}, []string{"endpoint", "direction"}),
		deniedTotal: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "portal", Subsystem: "relay", Name: "firewall_denied_total",
			Help: "Requests refused by the endpoint's firewall."}, []string{"endpoint"}),
		limitedTotal: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "portal", Subsystem: "relay", Name: "rate_limited_total",
			Help: "Requests refused by the endpoint's rate limit."}, []string{"endpoint"}),
		upstreamErr: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "portal", Subsystem: "relay", Name: "upstream_errors_total",
			Help: "Requests that failed reaching an instance."}, []string{"endpoint"}),
		ActiveConns: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "portal", Subsystem: "relay", Name: "active_connections",
			Help: "Open client connections to the relay listener."}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.duration, m.bytesTotal, m.deniedTotal, m.limitedTotal, m.upstreamErr, m.ActiveConns)
	}
	return m
}

var classes = [...]string{"1xx", "1xx", "2xx", "3xx", "4xx", "5xx"}

func class(code int) string {
	if code >= 100 && code < 600 {
		return classes[code/100]
	}
	return strconv.Itoa(code)
}

func (m *Metrics) result(ep string, code int, start, end time.Time) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(ep, class(code)).Inc()
	m.duration.WithLabelValues(ep).Observe(end.Sub(start).Seconds())
}

func (m *Metrics) bytes(ep string, in, out int64) {
	if m == nil {
		return
	}
	m.bytesTotal.WithLabelValues(ep, "in").Add(float64(in))
	m.bytesTotal.WithLabelValues(ep, "out").Add(float64(out))
}

func (m *Metrics) denied(ep string) {
	if m != nil {
		m.deniedTotal.WithLabelValues(ep).Inc()
	}
}

func (m *Metrics) limited(ep string) {
	if m != nil {
		m.limitedTotal.WithLabelValues(ep).Inc()
	}
}

func (m *Metrics) upstreamError(ep string) {
	if m != nil {
		m.upstreamErr.WithLabelValues(ep).Inc()
	}
}

// Forget drops the series of a deleted endpoint.
func (m *Metrics) Forget(ep string) {
	if m == nil {
		return
	}
	for _, v := range []*prometheus.CounterVec{m.requests, m.bytesTotal, m.deniedTotal, m.limitedTotal, m.upstreamErr} {
		v.DeletePartialMatch(prometheus.Labels{"endpoint": ep})
	}
	m.duration.DeletePartialMatch(prometheus.Labels{"endpoint": ep})
}
