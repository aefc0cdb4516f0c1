package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/kinesis-network/portal/api/apitype"
)

// listFlag is a repeatable string flag; each value may also hold a comma-separated list.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}

// secondsFlag is a duration given as whole seconds ("3600") or a Go duration ("1h").
type secondsFlag struct{ d time.Duration }

func (s *secondsFlag) String() string { return s.d.String() }

func (s *secondsFlag) Set(v string) error {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		s.d = time.Duration(n) * time.Second
	} else if d, err := time.ParseDuration(v); err == nil {
		s.d = d
	} else {
		return fmt.Errorf("want seconds or a duration like 90s, 1h (got %q)", v)
	}
	if s.d < 0 {
		return fmt.Errorf("must not be negative")
	}
	return nil
}

func (s *secondsFlag) seconds() int { return int(s.d / time.Second) }

// epFlags are the endpoint settings of create and update.
type epFlags struct {
	name, typ, zone, region          string
	upstreams                        listFlag
	allow, deny, destAllow, destDeny listFlag
	sticky                           bool
	stickyTTL                        secondsFlag
	rps                              float64
	burst                            int
	balance, tlsMode, clientCA       string
	proxyProtocol                    bool
	maxConns, maxConnsPerIP          int
	clearFirewall, clearUpstreams    bool
}

func (f *epFlags) register(fs *flag.FlagSet, update bool) {
	fs.StringVar(&f.name, "name", "", "endpoint name")
	fs.Var(&f.upstreams, "upstream", "instance host:port (repeatable)")
	fs.BoolVar(&f.sticky, "sticky", false, "sticky sessions")
	fs.Var(&f.stickyTTL, "sticky-ttl", "sticky cookie lifetime (seconds or duration)")
	fs.Var(&f.allow, "allow", "allowed source CIDR (repeatable)")
	fs.Var(&f.deny, "deny", "denied source CIDR (repeatable)")
	fs.Var(&f.destAllow, "dest-allow", "allowed destination CIDR (ip endpoints, repeatable)")
	fs.Var(&f.destDeny, "dest-deny", "denied destination CIDR (ip endpoints, repeatable)")
	fs.Float64Var(&f.rps, "rps", 0, "rate limit, requests per second (0: unlimited)")
	fs.IntVar(&f.burst, "burst", 0, "rate limit burst (0: default)")
	fs.StringVar(&f.balance, "balance", "", "p2c or round_robin")
	fs.StringVar(&f.tlsMode, "tls-mode", "", "plain, tls, tls+plain, mtls or passthrough (tcp, ip)")
	fs.StringVar(&f.clientCA, "client-ca", "", "PEM file of the CA client certificates must chain to (mtls)")
	fs.BoolVar(&f.proxyProtocol, "proxy-protocol", false, "send a PROXY v2 header to the backend (tcp, ip)")
	fs.IntVar(&f.maxConns, "max-conns", 0, "concurrent connection limit of the endpoint (tcp, ip; 0: unlimited)")
	fs.IntVar(&f.maxConnsPerIP, "max-conns-per-ip", 0, "concurrent connection limit per client IP (tcp, ip; 0: unlimited)")
	if update {
		fs.BoolVar(&f.clearFirewall, "clear-firewall", false, "remove every firewall rule (before --allow/--deny)")
		fs.BoolVar(&f.clearUpstreams, "clear-upstreams", false, "remove every instance")
	} else {
		fs.StringVar(&f.typ, "type", "https", "https, tcp or ip")
		fs.StringVar(&f.zone, "zone", "", "zone (default: the portal's)")
		fs.StringVar(&f.region, "region", "", "region (default: the portal's)")
	}
}

func readCA(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read --client-ca: %w", err)
	}
	return string(b), nil
}

func (k *kctl) endpointCreate(args []string) error {
	fs := k.newFlagSet("endpoints create")
	var f epFlags
	f.register(fs, false)
	if _, err := k.parse(fs, args, 0, ""); err != nil {
		return err
	}
	if f.name == "" {
		return usagef("endpoints create: --name is required")
	}
	spec := apitype.EndpointSpec{
		Name: f.name, Type: f.typ, Zone: f.zone, Region: f.region, Upstreams: f.upstreams,
		Sticky:        apitype.Sticky{Enabled: f.sticky, TTLSeconds: f.stickyTTL.seconds()},
		Firewall:      apitype.Firewall{Allow: f.allow, Deny: f.deny, DestAllow: f.destAllow, DestDeny: f.destDeny},
		RateLimit:     apitype.RateLimit{RPS: f.rps, Burst: f.burst},
		Balance:       f.balance,
		ProxyProtocol: f.proxyProtocol,
	}
	if f.maxConns != 0 || f.maxConnsPerIP != 0 {
		spec.Limits = &apitype.Limits{MaxConns: f.maxConns, MaxConnsPerIP: f.maxConnsPerIP}
	}
	if f.tlsMode != "" || f.clientCA != "" {
		spec.TLS = &apitype.TLS{Mode: f.tlsMode}
		if f.clientCA != "" {
			ca, err := readCA(f.clientCA)
			if err != nil {
				return err
			}
			spec.TLS.ClientCAPEM = ca
		}
	}
	c, err := k.client()
	if err != nil {
		return err
	}
	ep, err := c.CreateEndpoint(k.ctx, spec)
	if err != nil {
		return err
	}
	return k.printEndpoint(ep)
}

func (k *kctl) endpointUpdate(args []string) error {
	fs := k.newFlagSet("endpoints update")
	var f epFlags
	f.register(fs, true)
	pos, err := k.parse(fs, args, 1, "ID [settings]")
	if err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })

	patch := map[string]any{}
	if set["name"] {
		patch["name"] = f.name
	}
	switch {
	case set["upstream"] && set["clear-upstreams"]:
		return usagef("endpoints update: --upstream and --clear-upstreams exclude each other")
	case set["upstream"]:
		patch["upstreams"] = []string(f.upstreams)
	case f.clearUpstreams:
		patch["upstreams"] = []string{}
	}
	sticky := map[string]any{}
	if set["sticky"] {
		sticky["enabled"] = f.sticky
	}
	if set["sticky-ttl"] {
		sticky["ttl_seconds"] = f.stickyTTL.seconds()
	}
	if len(sticky) > 0 {
		patch["sticky"] = sticky
	}
	fw := map[string]any{}
	if f.clearFirewall {
		for _, l := range []string{"allow", "deny", "dest_allow", "dest_deny"} {
			fw[l] = []string{}
		}
	}
	for flagName, l := range map[string]*listFlag{"allow": &f.allow, "deny": &f.deny, "dest-allow": &f.destAllow, "dest-deny": &f.destDeny} {
		if set[flagName] {
			fw[strings.ReplaceAll(flagName, "-", "_")] = []string(*l)
		}
	}
	if len(fw) > 0 {
		patch["firewall"] = fw
	}
	rl := map[string]any{}
	if set["rps"] {
		rl["rps"] = f.rps
	}
	if set["burst"] {
		rl["burst"] = f.burst
	}
	if len(rl) > 0 {
		patch["rate_limit"] = rl
	}
	if set["balance"] {
		patch["balance"] = f.balance
	}
	tls := map[string]any{}
	if set["tls-mode"] {
		tls["mode"] = f.tlsMode
	}
	if set["client-ca"] {
		ca, err := readCA(f.clientCA)
		if err != nil {
			return err
		}
		tls["client_ca_pem"] = ca
	}
	if len(tls) > 0 {
		patch["tls"] = tls
	}
	if set["proxy-protocol"] {
		patch["proxy_protocol"] = f.proxyProtocol
	}
	lim := map[string]any{}
	if set["max-conns"] {
		lim["max_conns"] = f.maxConns
	}
	if set["max-conns-per-ip"] {
		lim["max_conns_per_ip"] = f.maxConnsPerIP
	}
	if len(lim) > 0 {
		patch["limits"] = lim
	}
	if len(patch) == 0 {
		return usagef("endpoints update: nothing to change; give at least one setting flag")
	}
	c, err := k.client()
	if err != nil {
		return err
	}
	ep, err := c.PatchEndpoint(k.ctx, pos[0], patch)
	if err != nil {
		return err
	}
	return k.printEndpoint(ep)
}

func (k *kctl) endpointList(args []string) error {
	fs := k.newFlagSet("endpoints list")
	if _, err := k.parse(fs, args, 0, ""); err != nil {
		return err
	}
	c, err := k.client()
	if err != nil {
		return err
	}
	eps, err := c.ListEndpoints(k.ctx)
	if err != nil {
		return err
	}
	if k.json() {
		return k.printJSON(apitype.EndpointList{Endpoints: eps})
	}
	tw := k.table()
	fmt.Fprintln(tw, "ID\tNAME\tTYPE\tINSTANCES\tADDRESS")
	for _, e := range eps {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", e.ID, e.Name, e.Type, len(e.Instances), where(&e))
	}
	return tw.Flush()
}

func (k *kctl) endpointShow(args []string) error {
	fs := k.newFlagSet("endpoints show")
	pos, err := k.parse(fs, args, 1, "ID")
	if err != nil {
		return err
	}
	c, err := k.client()
	if err != nil {
		return err
	}
	ep, err := c.GetEndpoint(k.ctx, pos[0])
	if err != nil {
		return err
	}
	return k.printEndpoint(ep)
}

func (k *kctl) endpointDelete(args []string) error {
	fs := k.newFlagSet("endpoints delete")
	pos, err := k.parse(fs, args, 1, "ID")
	if err != nil {
		return err
	}
	c, err := k.client()
	if err != nil {
		return err
	}
	if err := c.DeleteEndpoint(k.ctx, pos[0]); err != nil {
		return err
	}
	if k.json() {
		return k.printJSON(map[string]any{"id": pos[0], "deleted": true})
	}
	fmt.Fprintf(k.stdout, "Deleted endpoint %s.\n", pos[0])
	return nil
}

func (k *kctl) endpointRotate(args []string) error {
	fs := k.newFlagSet("endpoints rotate-key")
	var grace secondsFlag
	fs.Var(&grace, "grace", "keep the old keys working this long (seconds or duration, e.g. 1h)")
	pos, err := k.parse(fs, args, 1, "ID [--grace 1h]")
	if err != nil {
		return err
	}
	c, err := k.client()
	if err != nil {
		return err
	}
	ep, err := c.RotateKey(k.ctx, pos[0], grace.d)
	if err != nil {
		return err
	}
	return k.printEndpoint(ep)
}

func (k *kctl) instanceList(args []string) error {
	fs := k.newFlagSet("instances list")
	pos, err := k.parse(fs, args, 1, "ENDPOINT_ID")
	if err != nil {
		return err
	}
	c, err := k.client()
	if err != nil {
		return err
	}
	ins, err := c.ListInstances(k.ctx, pos[0])
	if err != nil {
		return err
	}
	if k.json() {
		return k.printJSON(apitype.InstanceList{Instances: ins})
	}
	return k.printInstances(ins)
}

func (k *kctl) instanceAdd(args []string) error {
	fs := k.newFlagSet("instances add")
	pos, err := k.parse(fs, args, 2, "ENDPOINT_ID HOST:PORT")
	if err != nil {
		return err
	}
	c, err := k.client()
	if err != nil {
		return err
	}
	in, err := c.AddInstance(k.ctx, pos[0], pos[1])
	if err != nil {
		return err
	}
	if k.json() {
		return k.printJSON(in)
	}
	fmt.Fprintf(k.stdout, "Added instance %s (%s) to endpoint %s.\n", in.ID, in.Addr, pos[0])
	return nil
}

func (k *kctl) instanceRemove(args []string) error {
	fs := k.newFlagSet("instances remove")
	pos, err := k.parse(fs, args, 2, "ENDPOINT_ID INSTANCE_ID")
	if err != nil {
		return err
	}
	c, err := k.client()
	if err != nil {
		return err
	}
	if err := c.RemoveInstance(k.ctx, pos[0], pos[1]); err != nil {
		return err
	}
	if k.json() {
		return k.printJSON(map[string]any{"id": pos[1], "endpoint_id": pos[0], "deleted": true})
	}
	fmt.Fprintf(k.stdout, "Removed instance %s from endpoint %s.\n", pos[1], pos[0])
	return nil
}

func (k *kctl) whoami(args []string) error {
	fs := k.newFlagSet("whoami")
	if _, err := k.parse(fs, args, 0, ""); err != nil {
		return err
	}
	c, err := k.client()
	if err != nil {
		return err
	}
	w, err := c.Whoami(k.ctx)
	if err != nil {
		return err
	}
	if k.json() {
		return k.printJSON(w)
	}
	tw := k.table()
	fmt.Fprintf(tw, "API:\t%s\n", c.BaseURL())
	fmt.Fprintf(tw, "Tenant:\t%s\n", joinNonEmpty(w.TenantID, paren(w.TenantName)))
	fmt.Fprintf(tw, "Token:\t%s\n", joinNonEmpty(w.TokenID, paren(w.TokenName)))
	fmt.Fprintf(tw, "Admin:\t%v\n", w.Admin)
	return tw.Flush()
}

func (k *kctl) tenantCreate(args []string) error {
	fs := k.newFlagSet("tenants create")
	name := fs.String("name", "", "tenant name")
	id := fs.String("id", "", "tenant id (default: random)")
	if _, err := k.parse(fs, args, 0, ""); err != nil {
		return err
	}
	c, err := k.client()
	if err != nil {
		return err
	}
	t, err := c.CreateTenant(k.ctx, *id, *name)
	if err != nil {
		return err
	}
	if k.json() {
		return k.printJSON(t)
	}
	fmt.Fprintf(k.stdout, "Created tenant %s (%s).\n", t.ID, t.Name)
	return nil
}

func (k *kctl) tenantList(args []string) error {
	fs := k.newFlagSet("tenants list")
	if _, err := k.parse(fs, args, 0, ""); err != nil {
		return err
	}
	c, err := k.client()
	if err != nil {
		return err
	}
	ts, err := c.ListTenants(k.ctx)
	if err != nil {
		return err
	}
	if k.json() {
		return k.printJSON(apitype.TenantList{Tenants: ts})
	}
	tw := k.table()
	fmt.Fprintln(tw, "ID\tNAME\tCREATED")
	for _, t := range ts {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", t.ID, t.Name, stamp(t.CreatedAt))
	}
	return tw.Flush()
}

func (k *kctl) tokenCreate(args []string) error {
	fs := k.newFlagSet("tokens create")
	name := fs.String("name", "", "token name")
	admin := fs.Bool("admin", false, "allow the admin routes")
	pos, err := k.parse(fs, args, 1, "TENANT_ID [--name N] [--admin]")
	if err != nil {
		return err
	}
	c, err := k.client()
	if err != nil {
		return err
	}
	t, err := c.CreateToken(k.ctx, pos[0], *name, *admin)
	if err != nil {
		return err
	}
	if k.json() {
		return k.printJSON(t)
	}
	tw := k.table()
	fmt.Fprintf(tw, "Token ID:\t%s\n", t.ID)
	fmt.Fprintf(tw, "Tenant:\t%s\n", t.TenantID)
	fmt.Fprintf(tw, "Admin:\t%v\n", t.Admin)
	fmt.Fprintf(tw, "Token:\t%s\n", t.Token)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(k.stderr, "The token is shown only once: store it now.")
	return nil
}

func (k *kctl) tokenDelete(args []string) error {
	fs := k.newFlagSet("tokens delete")
	pos, err := k.parse(fs, args, 1, "TOKEN_ID")
	if err != nil {
		return err
	}
	c, err := k.client()
	if err != nil {
		return err
	}
	if err := c.DeleteToken(k.ctx, pos[0]); err != nil {
		return err
	}
	if k.json() {
		return k.printJSON(map[string]any{"id": pos[0], "deleted": true})
	}
	fmt.Fprintf(k.stdout, "Deleted token %s.\n", pos[0])
	return nil
}

// version returns kctl's module version or VCS revision.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return rev
}

func (k *kctl) version(args []string) error {
	fs := k.newFlagSet("version")
	if _, err := k.parse(fs, args, 0, ""); err != nil {
		return err
	}
	if k.json() {
		return k.printJSON(map[string]string{"version": version(), "go": runtime.Version()})
	}
	fmt.Fprintf(k.stdout, "kctl %s (%s)\n", version(), runtime.Version())
	return nil
}
