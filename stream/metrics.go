package stream

import "github.com/prometheus/client_golang/prometheus"

// metrics are the Prometheus collectors of an engine (namespace "portal", subsystem "stream"). A nil
// *metrics records nothing.
type metrics struct {
	records   *prometheus.CounterVec
	bytes     *prometheus.CounterVec
	throttles *prometheus.CounterVec
	requests  *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "portal", Subsystem: "stream",
			Name: "records_total", Help: "Records written (direction=in) and read (direction=out)."}, []string{"stream", "direction"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "portal", Subsystem: "stream",
			Name: "bytes_total", Help: "Record bytes (data plus partition key) written and read."}, []string{"stream", "direction"}),
		throttles: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "portal", Subsystem: "stream",
			Name: "throttled_total", Help: "Records or calls refused with ProvisionedThroughputExceededException."}, []string{"stream", "kind"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "portal", Subsystem: "stream",
			Name: "requests_total", Help: "API requests by operation and outcome (ok or error type)."}, []string{"operation", "outcome"}),
	}
	for _, c := range []prometheus.Collector{m.records, m.bytes, m.throttles, m.requests} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) put(stream string, n, size int) {
	if m == nil {
		return
	}
	m.records.WithLabelValues(stream, "in").Add(float64(n))
	m.bytes.WithLabelValues(stream, "in").Add(float64(size))
}

func (m *metrics) get(stream string, n, size int) {
	if m == nil || n == 0 {
		return
	}
	m.records.WithLabelValues(stream, "out").Add(float64(n))
	m.bytes.WithLabelValues(stream, "out").Add(float64(size))
}

func (m *metrics) throttled(stream, kind string) {
	if m == nil {
		return
	}
	m.throttles.WithLabelValues(stream, kind).Inc()
}

func (m *metrics) request(op, outcome string) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(op, outcome).Inc()
}
