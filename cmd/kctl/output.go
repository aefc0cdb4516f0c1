package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kinesis-network/portal/api/apitype"
)

func (k *kctl) table() *tabwriter.Writer { return tabwriter.NewWriter(k.stdout, 0, 4, 2, ' ', 0) }

// printJSON writes v as indented JSON, "<access-key>" unescaped.
func (k *kctl) printJSON(v any) error {
	enc := json.NewEncoder(k.stdout)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// where is an endpoint's address for tables: host:port for TCP/IP, the URL (template) for HTTPS.
func where(e *apitype.Endpoint) string {
	switch {
	case e.URL != "":
		return e.URL
	case e.Address != "":
		return e.Address
	}
	return e.URLTemplate
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func paren(s string) string {
	if s == "" {
		return ""
	}
	return "(" + s + ")"
}

func joinNonEmpty(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, " ")
}

func list(l []string) string {
	if len(l) == 0 {
		return "-"
	}
	return strings.Join(l, ", ")
}

// printEndpoint shows one endpoint; when the response carries a new access key it says loudly that the
// key is shown only once.
func (k *kctl) printEndpoint(e *apitype.Endpoint) error {
	if k.json() {
		return k.printJSON(e)
	}
	tw := k.table()
	row := func(label, format string, args ...any) { fmt.Fprintf(tw, label+":\t"+format+"\n", args...) }
	row("ID", "%s", e.ID)
	row("Name", "%s", e.Name)
	row("Type", "%s", e.Type)
	row("Zone/region", "%s / %s", e.Zone, e.Region)
	if e.AccessKey != "" {
		row("Access key", "%s", e.AccessKey)
		row("URL", "%s", e.URL)
	} else if e.URLTemplate != "" {
		row("URL", "%s", e.URLTemplate)
	}
	if e.Address != "" {
		row("Address", "%s", e.Address)
	}
	row("Balance", "%s", e.Balance)
	switch {
	case !e.Sticky.Enabled:
		row("Sticky", "off")
	case e.Sticky.TTLSeconds > 0:
		row("Sticky", "on (ttl %s)", time.Duration(e.Sticky.TTLSeconds)*time.Second)
	default:
		row("Sticky", "on")
	}
	fw := e.Firewall
	if len(fw.Allow)+len(fw.Deny)+len(fw.DestAllow)+len(fw.DestDeny) == 0 {
		row("Firewall", "none (all sources allowed)")
	} else {
		row("Firewall", "allow %s; deny %s", list(fw.Allow), list(fw.Deny))
		if len(fw.DestAllow)+len(fw.DestDeny) > 0 {
			row("Destinations", "allow %s; deny %s", list(fw.DestAllow), list(fw.DestDeny))
		}
	}
	if e.RateLimit.RPS > 0 {
		row("Rate limit", "%g/s, burst %d", e.RateLimit.RPS, e.RateLimit.Burst)
	} else {
		row("Rate limit", "unlimited")
	}
	if e.TLS != nil {
		if e.TLS.ClientCAPEM != "" {
			row("TLS", "%s (client CA set)", e.TLS.Mode)
		} else {
			row("TLS", "%s", e.TLS.Mode)
		}
		row("PROXY protocol", "%v", e.ProxyProtocol)
		if l := e.Limits; l != nil {
			row("Conn limits", "%s total, %s per client IP", limitText(l.MaxConns), limitText(l.MaxConnsPerIP))
		}
	}
	for i, key := range e.Keys {
		state := "active"
		if key.ExpiresAt != nil {
			if key.Active {
				state = "expires " + stamp(*key.ExpiresAt)
			} else {
				state = "expired " + stamp(*key.ExpiresAt)
			}
		}
		row(fmt.Sprintf("Key %d", i+1), "created %s, %s", stamp(key.CreatedAt), state)
	}
	row("Version", "%d", e.Version)
	row("Created", "%s", stamp(e.CreatedAt))
	row("Updated", "%s", stamp(e.UpdatedAt))
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(k.stdout)
	if err := k.printInstances(e.Instances); err != nil {
		return err
	}
	if e.AccessKey != "" {
		fmt.Fprintln(k.stderr, "The access key is shown only once: store it now. 'kctl endpoints rotate-key' issues a new one.")
	}
	return nil
}

func (k *kctl) printInstances(ins []apitype.Instance) error {
	if len(ins) == 0 {
		fmt.Fprintln(k.stdout, "No instances.")
		return nil
	}
	tw := k.table()
	fmt.Fprintln(tw, "INSTANCE\tADDRESS\tCREATED")
	for _, in := range ins {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", in.ID, in.Addr, stamp(in.CreatedAt))
	}
	return tw.Flush()
}

func limitText(n int) string {
	if n == 0 {
		return "unlimited"
	}
	return strconv.Itoa(n)
}
