package api

import (
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/kinesis-network/portal/api/apitype"
	"github.com/kinesis-network/portal/firewall"
	"github.com/kinesis-network/portal/gateway/balance"
)

// Limits on request values.
const (
	maxUpstreams   = 1000
	maxTenantName  = 200
	maxTokenName   = 100
	maxStickyTTL   = 365 * 24 * 3600
	maxRateLimitRP = 1e9
	maxConnLimit   = 10_000_000
)

// isLabel reports whether s is a DNS label: 1–63 of a-z, 0-9 and '-', not starting or ending with '-'.
// extra lists further allowed characters (tenant ids also allow '_').
func isLabel(s, extra string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || strings.IndexByte(extra, c) >= 0) {
			return false
		}
	}
	return true
}

// isHostname reports whether s is a DNS host name (labels of letters, digits, '-' and '_').
func isHostname(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range []byte(l) {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// validateAddr checks an upstream "host:port": host an IP address (IPv6 in brackets) or a host name,
// port 1–65535.
func validateAddr(field, s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return invalid(field, "invalid address %q: want host:port", s)
	}
	if host == "" {
		return invalid(field, "invalid address %q: empty host", s)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return invalid(field, "invalid address %q: IPv6 zones are not allowed", s)
		}
	} else if !isHostname(host) {
		return invalid(field, "invalid address %q: %q is neither an IP address nor a host name", s, host)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 || port != strconv.Itoa(n) {
		return invalid(field, "invalid address %q: port must be a number from 1 to 65535", s)
	}
	return nil
}

// validateUpstreams checks every entry and rejects duplicates.
func validateUpstreams(field string, ups []string) error {
	if len(ups) > maxUpstreams {
		return invalid(field, "at most %d upstreams", maxUpstreams)
	}
	seen := make(map[string]int, len(ups))
	for i, u := range ups {
		f := fmt.Sprintf("%s[%d]", field, i)
		if err := validateAddr(f, u); err != nil {
			return err
		}
		if j, ok := seen[u]; ok {
			return invalid(f, "duplicate address %q (also %s[%d])", u, field, j)
		}
		seen[u] = i
	}
	return nil
}

// firewallError renders a firewall.Compile error as "firewall.deny[0]: invalid CIDR ...".
func firewallError(err error) error {
	var re *firewall.RuleError
	if !errors.As(err, &re) {
		return invalid("firewall", "%s", strings.TrimPrefix(err.Error(), "firewall: "))
	}
	field := fmt.Sprintf("firewall.%s[%d]", re.List, re.Index)
	detail := strings.TrimPrefix(re.Error(), "firewall: "+re.List+": ")
	if strings.TrimSpace(re.Entry) == "" {
		detail = "empty entry"
	}
	return invalid(field, "%s", detail)
}

// validTLSModes lists the TLS modes in the order error messages give them.
var validTLSModes = []string{apitype.TLSPlain, apitype.TLSTerminate, apitype.TLSOrPlain, apitype.TLSMutual, apitype.TLSPassthrough}

// validateSpec checks s and normalises it in place: zone and region default, balance gets its canonical
// name, a TCP/IP endpoint gets a TLS object (mode "plain" when empty), a rate limit with RPS > 0 and no
// burst gets the default burst. Upstreams are checked only when checkUpstreams (a PATCH that does not
// touch them leaves the instances alone). The error is an httpError naming the field.
func validateSpec(s *apitype.EndpointSpec, checkUpstreams bool) error {
	if s.Name == "" {
		return invalid("name", "required")
	}
	if !isLabel(s.Name, "") {
		return invalid("name", "must be 1-63 characters of a-z, 0-9 and '-', starting and ending with a letter or digit (got %q)", s.Name)
	}
	switch s.Type {
	case apitype.TypeHTTPS, apitype.TypeTCP, apitype.TypeIP:
	case "":
		return invalid("type", `required: "https", "tcp" or "ip"`)
	default:
		return invalid("type", `must be "https", "tcp" or "ip" (got %q)`, s.Type)
	}
	if !isLabel(s.Zone, "") {
		return invalid("zone", "must be 1-63 characters of a-z, 0-9 and '-' (got %q)", s.Zone)
	}
	if !isLabel(s.Region, "") {
		return invalid("region", "must be 1-63 characters of a-z, 0-9 and '-' (got %q)", s.Region)
	}
	if checkUpstreams {
		if err := validateUpstreams("upstreams", s.Upstreams); err != nil {
			return err
		}
	}

	if s.Sticky.TTLSeconds < 0 || s.Sticky.TTLSeconds > maxStickyTTL {
		return invalid("sticky.ttl_seconds", "must be between 0 and %d (got %d)", maxStickyTTL, s.Sticky.TTLSeconds)
	}

	if s.Type != apitype.TypeIP {
		if len(s.Firewall.DestAllow) > 0 {
			return invalid("firewall.dest_allow", `only "ip" endpoints have destination rules`)
		}
		if len(s.Firewall.DestDeny) > 0 {
			return invalid("firewall.dest_deny", `only "ip" endpoints have destination rules`)
		}
	}
	if _, err := firewall.Compile(firewall.Rules{
		Allow: s.Firewall.Allow, Deny: s.Firewall.Deny, DestAllow: s.Firewall.DestAllow, DestDeny: s.Firewall.DestDeny,
	}); err != nil {
		return firewallError(err)
	}
	if s.Firewall.Allow == nil {
		s.Firewall.Allow = []string{}
	}
	if s.Firewall.Deny == nil {
		s.Firewall.Deny = []string{}
	}

	rl := &s.RateLimit
	if math.IsNaN(rl.RPS) || rl.RPS < 0 || rl.RPS > maxRateLimitRP {
		return invalid("rate_limit.rps", "must be between 0 and %g (got %g)", float64(maxRateLimitRP), rl.RPS)
	}
	if rl.Burst < 0 || rl.Burst > maxRateLimitRP {
		return invalid("rate_limit.burst", "must be between 0 and %d (got %d)", int(maxRateLimitRP), rl.Burst)
	}
	if rl.RPS > 0 && rl.Burst == 0 {
		rl.Burst = max(1, int(math.Ceil(rl.RPS)))
	}

	p, ok := balance.ParsePolicy(s.Balance)
	if !ok {
		return invalid("balance", `must be "p2c", "round_robin" or "source_ip" (got %q)`, s.Balance)
	}
	s.Balance = p.String()

	if s.Type == apitype.TypeHTTPS {
		if s.TLS != nil && (s.TLS.Mode != "" || s.TLS.ClientCAPEM != "") {
			return invalid("tls", "only tcp and ip endpoints have TLS settings (https endpoints always terminate TLS)")
		}
		s.TLS = nil
		if s.ProxyProtocol {
			return invalid("proxy_protocol", "only tcp and ip endpoints send a PROXY protocol header")
		}
		if s.Limits != nil && (s.Limits.MaxConns != 0 || s.Limits.MaxConnsPerIP != 0) {
			return invalid("limits", "only tcp and ip endpoints have connection limits")
		}
		s.Limits = nil
		return nil
	}
	if s.Limits == nil {
		s.Limits = &apitype.Limits{}
	}
	if s.Limits.MaxConns < 0 || s.Limits.MaxConns > maxConnLimit {
		return invalid("limits.max_conns", "must be between 0 (unlimited) and %d (got %d)", maxConnLimit, s.Limits.MaxConns)
	}
	if s.Limits.MaxConnsPerIP < 0 || s.Limits.MaxConnsPerIP > maxConnLimit {
		return invalid("limits.max_conns_per_ip", "must be between 0 (unlimited) and %d (got %d)", maxConnLimit, s.Limits.MaxConnsPerIP)
	}
	if s.TLS == nil {
		s.TLS = &apitype.TLS{}
	}
	if s.TLS.Mode == "" {
		s.TLS.Mode = apitype.TLSPlain
	}
	if !slices.Contains(validTLSModes, s.TLS.Mode) {
		return invalid("tls.mode", "must be one of %s (got %q)", strings.Join(validTLSModes, ", "), s.TLS.Mode)
	}
	if s.TLS.ClientCAPEM != "" {
		if !x509.NewCertPool().AppendCertsFromPEM([]byte(s.TLS.ClientCAPEM)) {
			return invalid("tls.client_ca_pem", "holds no PEM certificate")
		}
	} else if s.TLS.Mode == apitype.TLSMutual {
		return invalid("tls.client_ca_pem", `required when tls.mode is "mtls": the PEM CA bundle client certificates must chain to`)
	}
	return nil
}
