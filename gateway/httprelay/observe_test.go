package httprelay_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/kinesis-network/portal/registry"
)

// counterValue sums the counters (or histogram sample counts) of family name whose labels include the
// given name/value pairs.
func counterValue(t *testing.T, h *harness, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				sum += m.GetCounter().GetValue()
			case m.Histogram != nil:
				sum += float64(m.GetHistogram().GetSampleCount())
			case m.Gauge != nil:
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// TestMetricsAndAccessLog checks that requests, denials and rate-limited requests are counted by
// endpoint id, that every request has one access-log record with the facts an operator needs, and that
// neither metrics nor logs ever carry the access key.
func TestMetricsAndAccessLog(t *testing.T) {
	h := newHarness(t, harnessOptions{})
	h.clock.fixedAt(h.clock.Now())
	be := newBackend(t, "a", nil)
	ep, key := h.endpoint(func(e *registry.Endpoint) { e.RateLimit = registry.RateLimit{RPS: 1, Burst: 3} }, be.spec())
	denied, deniedKey := h.endpoint(func(e *registry.Endpoint) { e.Firewall.Deny = []string{"127.0.0.0/8"} }, be.spec())
	c := h.client("h1")

	for range 3 {
		resp, b := do(t, c, http.MethodPost, h.url(key, "/upload?token=abc"), strings.NewReader("0123456789"))
		decodeEcho(t, resp, b)
	}
	resp, _ := do(t, c, http.MethodGet, h.url(key, "/"), nil)
	if resp.StatusCode != 429 {
		t.Fatalf("want 429, got %d", resp.StatusCode)
	}
	resp, _ = do(t, c, http.MethodGet, h.url(deniedKey, "/"), nil)
	if resp.StatusCode != 403 {
		t.Fatalf("want 403, got %d", resp.StatusCode)
	}
	do(t, c, http.MethodGet, h.url(registry.NewSecret(), "/"), nil)

	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"portal_relay_requests_total", []string{"endpoint", ep.ID, "code", "2xx"}, 3},
		{"portal_relay_requests_total", []string{"endpoint", ep.ID, "code", "4xx"}, 1},
		{"portal_relay_requests_total", []string{"endpoint", denied.ID, "code", "4xx"}, 1},
		{"portal_relay_rate_limited_total", []string{"endpoint", ep.ID}, 1},
		{"portal_relay_firewall_denied_total", []string{"endpoint", denied.ID}, 1},
		{"portal_relay_bytes_total", []string{"endpoint", ep.ID, "direction", "in"}, 30},
		{"portal_relay_request_duration_seconds", []string{"endpoint", ep.ID}, 4},
	} {
		if got := counterValue(t, h, tc.name, tc.labels...); got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	if got := counterValue(t, h, "portal_relay_bytes_total", "endpoint", ep.ID, "direction", "out"); got < 3*100 {
		t.Errorf("bytes out %v: echo answers are larger", got)
	}
	if got := counterValue(t, h, "portal_relay_active_connections"); got < 1 {
		t.Errorf("active_connections = %v with a keep-alive connection open", got)
	}

	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if s := mf.String(); strings.Contains(s, key) || strings.Contains(s, deniedKey) || strings.Contains(s, key[:12]) {
			t.Fatalf("metric %s carries an access key", mf.GetName())
		}
	}

	recs := h.accessRecords()
	if len(recs) != 5 { // 3 served, 1 limited, 1 denied; the unknown key has no endpoint to log
		t.Fatalf("%d access records, want 5:\n%s", len(recs), h.logs.String())
	}
	wantStatus := []float64{200, 200, 200, 429, 403}
	for i, r := range recs {
		for _, f := range []string{"endpoint", "status", "bytes_in", "bytes_out", "duration_s", "client", "method"} {
			if _, ok := r[f]; !ok {
				t.Errorf("record %d lacks %q: %v", i, f, r)
			}
		}
		if r["status"] != wantStatus[i] {
			t.Errorf("record %d status %v, want %v", i, r["status"], wantStatus[i])
		}
		if i < 3 {
			if r["endpoint"] != ep.ID || r["instance"] != "in_a" || r["bytes_in"] != float64(10) {
				t.Errorf("record %d: %v", i, r)
			}
			if out, _ := r["bytes_out"].(float64); out < 100 {
				t.Errorf("record %d bytes_out %v", i, r["bytes_out"])
			}
		}
	}
	if recs[4]["endpoint"] != denied.ID {
		t.Errorf("denied record names %v", recs[4]["endpoint"])
	}
	all := h.logs.String()
	for _, k := range []string{key, deniedKey, key[:12], registry.HashSecret(key)} {
		if strings.Contains(all, k) {
			t.Fatalf("logs carry an access key or its hash:\n%s", all)
		}
	}
}
