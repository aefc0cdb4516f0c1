package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kinesis-network/portal/api"
	"github.com/kinesis-network/portal/internal/demo"
	"github.com/kinesis-network/portal/internal/portal"
	"github.com/kinesis-network/portal/registry"
)

// DevInfo is what `portal dev` writes to dev.json in its state directory once everything is serving.
type DevInfo struct {
	APIURL       string   `json:"api_url"`
	Token        string   `json:"token"`
	CAFile       string   `json:"ca_file"`
	RelayURL     string   `json:"relay_url"`
	EndpointID   string   `json:"endpoint_id"`
	EndpointURL  string   `json:"endpoint_url"`
	Instances    []string `json:"instances"`
	MetricsURL   string   `json:"metrics_url,omitempty"`
	Host         string   `json:"host"`
	StreamURL    string   `json:"stream_url,omitempty"`
	StreamID     string   `json:"stream_endpoint_id,omitempty"`
	StreamRegion string   `json:"stream_region,omitempty"`
	PID          int      `json:"pid"`
}

func runDev(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("portal dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := portal.Config{StateDir: ".portal-dev"}
	var portRange, level string
	commonFlags(fs, &cfg, &portRange, &level)
	noStream := fs.Bool("no-stream", false, "do not start the demo stream service")
	if err := fs.Parse(args); err != nil {
		return 2
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
	if cfg.StateDir, err = filepath.Abs(cfg.StateDir); err != nil {
		fmt.Fprintln(stderr, "portal:", err)
		return 1
	}
	cfg.Logger = log
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// A stale dev.json must not be mistaken for this run's.
	devFile := filepath.Join(cfg.StateDir, "dev.json")
	os.Remove(devFile)

	p, err := portal.Start(ctx, cfg)
	if err != nil {
		fmt.Fprintln(stderr, "portal:", err)
		return 1
	}
	var cleanups []func()
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
		p.Close(context.Background())
	}()

	info, err := setupDev(ctx, p, &cleanups, !*noStream)
	if err != nil {
		fmt.Fprintln(stderr, "portal dev:", err)
		return 1
	}
	if err := writeJSONAtomic(devFile, info); err != nil {
		fmt.Fprintln(stderr, "portal dev: write dev.json:", err)
		return 1
	}
	printDev(stdout, info, devFile)
	<-ctx.Done()
	log.Info("portal dev: shutting down")
	return 0
}

func setupDev(ctx context.Context, p *portal.Portal, cleanups *[]func(), withStream bool) (*DevInfo, error) {
	c := p.Config()
	token, err := api.Bootstrap(ctx, p.Store, "dev", "Dev tenant")
	if err != nil {
		return nil, fmt.Errorf("bootstrap tenant: %w", err)
	}
	caFile := filepath.Join(c.StateDir, "ca.pem")
	if err := os.WriteFile(caFile, p.CA.CertPEM(), 0o644); err != nil {
		return nil, err
	}
	var ins []registry.Instance
	var ids []string
	for _, id := range []string{"demo-1", "demo-2"} {
		in, err := demo.StartHTTP(id)
		if err != nil {
			return nil, fmt.Errorf("start demo instance: %w", err)
		}
		*cleanups = append(*cleanups, func() {
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			in.Close(sctx)
		})
		ins = append(ins, registry.Instance{ID: registry.NewID("in"), Addr: in.Addr})
		ids = append(ids, id+"@"+in.Addr)
	}
	key := registry.NewSecret()
	ep, err := p.Store.CreateEndpoint(ctx, &registry.Endpoint{
		TenantID: "dev", Name: "demo", Type: registry.HTTPS, Zone: c.Zone, Region: c.Region,
		Keys:      []registry.AccessKey{{Hash: registry.HashSecret(key), CreatedAt: time.Now().UTC()}},
		Instances: ins,
	})
	if err != nil {
		return nil, fmt.Errorf("create demo endpoint: %w", err)
	}
	info := &DevInfo{
		APIURL: p.APIURL(), Token: token, CAFile: caFile,
		RelayURL: p.RelayURL(key), EndpointID: ep.ID, EndpointURL: p.RelayURL(key),
		Instances: ids, Host: p.Host(), PID: os.Getpid(),
	}
	if a := p.MetricsAddr(); a != nil {
		info.MetricsURL = "http://" + a.String() + "/metrics"
	}
	if withStream {
		if err := startDevStream(ctx, p, info, cleanups); err != nil {
			return nil, fmt.Errorf("demo stream service: %w", err)
		}
	}
	if err := waitRoutes(ctx, p, ep.ID, info.StreamID); err != nil {
		return nil, err
	}
	return info, nil
}

// waitRoutes waits until the route cache serves the given endpoints.
func waitRoutes(ctx context.Context, p *portal.Portal, ids ...string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		ok := true
		for _, id := range ids {
			if id != "" && p.Routes.Table().Get(id) == nil {
				ok = false
			}
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("route cache did not pick up the demo endpoints")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func writeJSONAtomic(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func printDev(w io.Writer, info *DevInfo, devFile string) {
	fmt.Fprintf(w, `
Kinesis Portal dev is running (Ctrl-C stops it).

  Relay URL (demo endpoint %s, 2 instances):
    %s

  Try it:
    curl --cacert %s %s

  Control API: %s   (token in %s)
    kctl login --dev-json %s
    kctl endpoints list
`, info.EndpointID, info.RelayURL, info.CAFile, info.RelayURL, info.APIURL, devFile, devFile)
	if info.StreamURL != "" {
		fmt.Fprintf(w, `
  Stream service (Kinesis API, endpoint %s) through the relay:
    %s
  With the AWS CLI (the relay routes by path, so the loopback name works for clients whose resolver
  does not know *.localhost):
    AWS_ACCESS_KEY_ID=dev AWS_SECRET_ACCESS_KEY=dev AWS_CA_BUNDLE=%s \
      aws kinesis create-stream --stream-name demo --shard-count 2 --region %s --endpoint-url %s
`, info.StreamID, info.StreamURL, info.CAFile, info.StreamRegion, loopbackURL(info.StreamURL))
	}
	if info.MetricsURL != "" {
		fmt.Fprintf(w, "\n  Metrics: %s\n", info.MetricsURL)
	}
	fmt.Fprintf(w, "\n  Facts for scripts: %s\n\n", devFile)
}

// loopbackURL replaces a relay URL's host name with "localhost" (the portal's certificate covers it).
func loopbackURL(u string) string {
	rest, ok := strings.CutPrefix(u, "https://")
	if !ok {
		return u
	}
	hostport, path, _ := strings.Cut(rest, "/")
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 {
		return "https://localhost" + hostport[i:] + "/" + path
	}
	return "https://localhost/" + path
}
