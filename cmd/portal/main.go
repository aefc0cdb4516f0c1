// Command portal runs the Kinesis Portal: the edge portal that serves HTTPS relay endpoints and TCP
// endpoints and exposes the control API.
//
//	portal dev   [flags]   a complete working system on one machine (in-memory registry, local CA,
//	                       demo workload and endpoints); prints what to call and writes dev.json
//	portal serve [flags]   a portal without the demo
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kinesis-network/portal/api"
	"github.com/kinesis-network/portal/internal/portal"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func usage(w io.Writer) {
	fmt.Fprintln(w, `usage: portal <command> [flags]

commands:
  dev     start a complete portal on this machine with a demo workload (try: portal dev)
  serve   start a portal without the demo
  help    show this text

Run "portal <command> -h" for the flags of a command.`)
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "dev":
		return runDev(args[1:], stdout, stderr)
	case "serve":
		return runServe(args[1:], stdout, stderr)
	case "streamd": // hidden: the demo stream service child of `portal dev`
		return runStreamd(args[1:], stdout, stderr)
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	}
	fmt.Fprintf(stderr, "portal: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

// commonFlags binds the flags shared by dev and serve.
func commonFlags(fs *flag.FlagSet, cfg *portal.Config, portRange *string, logLevel *string) {
	fs.StringVar(&cfg.StateDir, "state-dir", cfg.StateDir, "directory for the CA, secrets and dev.json")
	fs.StringVar(&cfg.Domain, "domain", "localhost", "portal domain: hosts are <zone>.<region>.portal.<domain>")
	fs.StringVar(&cfg.Region, "region", "dev", "region name")
	fs.StringVar(&cfg.Zone, "zone", "z1", "zone (availability zone) name")
	fs.StringVar(&cfg.RelayListen, "relay-listen", "127.0.0.1:8443", "HTTPS relay listen address")
	fs.StringVar(&cfg.APIListen, "api-listen", "127.0.0.1:8444", "control API (HTTPS) listen address")
	fs.StringVar(&cfg.MetricsListen, "metrics-listen", "127.0.0.1:9464", `Prometheus metrics listen address ("off" disables)`)
	fs.StringVar(&cfg.TCPBindHost, "tcp-host", "127.0.0.1", "local address TCP endpoints listen on")
	fs.IntVar(&cfg.PublicRelayPort, "public-relay-port", 0, "port written into relay URLs (0: the relay listener's port)")
	fs.StringVar(portRange, "tcp-ports", "20000-20999", "port range for TCP endpoints, MIN-MAX")
	fs.DurationVar(&cfg.TCPDrain, "tcp-drain", 30*time.Second, "how long a deleted TCP endpoint's open connections may live")
	fs.BoolVar(&cfg.TCPDenyReset, "tcp-deny-rst", false, "refuse firewalled TCP connections with RST instead of a normal close")
	fs.BoolFunc("no-http3", "do not serve HTTP/3 (QUIC) on the relay port", func(string) error { cfg.DisableHTTP3 = true; return nil })
	fs.StringVar(logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.Func("trusted-proxies", "comma-separated CIDRs of load balancers that send PROXY v2 headers to the relay", func(v string) error {
		for _, c := range strings.Split(v, ",") {
			if c = strings.TrimSpace(c); c != "" {
				cfg.TrustedProxies = append(cfg.TrustedProxies, c)
			}
		}
		return nil
	})
}

func parseRange(s string) (int, int, error) {
	a, b, ok := strings.Cut(s, "-")
	lo, err1 := strconv.Atoi(a)
	hi, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || lo < 1 || hi > 65535 || lo > hi {
		return 0, 0, fmt.Errorf("bad port range %q: want MIN-MAX within 1-65535", s)
	}
	return lo, hi, nil
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("bad -log-level %q", level)
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})), nil
}

// bootstrapAdmin creates the "admin" tenant with an admin token on a registry that has no tenant yet
// and writes the token to <state-dir>/admin.token (mode 0600); the log names the file, never the token.
func bootstrapAdmin(ctx context.Context, p *portal.Portal, log *slog.Logger) error {
	ts, err := p.Store.ListTenants(ctx)
	if err != nil || len(ts) > 0 {
		return err
	}
	token, err := api.Bootstrap(ctx, p.Store, "admin", "Operators")
	if err != nil {
		return fmt.Errorf("bootstrap admin tenant: %w", err)
	}
	path := filepath.Join(p.Config().StateDir, "admin.token")
	if err := os.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return fmt.Errorf("write admin token: %w", err)
	}
	log.Info("portal: created the admin tenant; its API token is in the file", "file", path)
	return nil
}

func runServe(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("portal serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := portal.Config{StateDir: "/var/lib/kinesis-portal"}
	var portRange, level string
	commonFlags(fs, &cfg, &portRange, &level)
	fs.StringVar(&cfg.RegistryFile, "registry-file", "", `registry state file (default: <state-dir>/registry.json; "memory" keeps nothing)`)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	switch cfg.RegistryFile {
	case "":
		cfg.RegistryFile = filepath.Join(cfg.StateDir, "registry.json")
	case "memory":
		cfg.RegistryFile = ""
	}
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		fmt.Fprintln(stderr, "portal:", err)
		return 1
	}
	log, err := newLogger(stderr, level)
	if err != nil {
		fmt.Fprintln(stderr, "portal:", err)
		return 2
	}
	if cfg.PortMin, cfg.PortMax, err = parseRange(portRange); err != nil {
		fmt.Fprintln(stderr, "portal: -tcp-ports:", err)
		return 2
	}
	cfg.Logger = log
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	p, err := portal.Start(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "portal:", err)
		return 1
	}
	if err := bootstrapAdmin(ctx, p, log); err != nil {
		fmt.Fprintln(stderr, "portal:", err)
		return 1
	}
	fmt.Fprintf(stdout, "portal serving: relay https://%s  api %s\n", p.RelayAddr(), p.APIURL())
	<-ctx.Done()
	log.Info("portal: shutting down")
	if err := p.Close(context.Background()); err != nil {
		log.Error("portal: shutdown", "err", err)
		return 1
	}
	return 0
}
