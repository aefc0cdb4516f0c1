// Package streamd is the stream service's process: flag parsing, storage backend, HTTP server (HTTP/1.1,
// h2c, or h2 over TLS), metrics and graceful shutdown. cmd/streamd runs it as a standalone binary and
// `portal dev` runs it as a child process of its own binary.
//
// Usage, as streamd:
//
//	streamd --listen 127.0.0.1:4567 --data-dir /var/lib/streamd
//
// It serves the Kinesis API (JSON 1.1 and CBOR 1.1, POST at any path) over HTTP/1.1 and HTTP/2 with
// prior knowledge (h2c) on a plain listener, or over HTTP/1.1 and HTTP/2 with TLS when --tls-cert and
// --tls-key are given. Records are kept durably in --data-dir (fsync before acknowledging by default).
// Once listening it prints one line to standard output:
//
//	streamd listening on http://127.0.0.1:4567
//
// (https:// with TLS), so a parent process started with --listen 127.0.0.1:0 can learn the port. Logs
// are JSON on standard error. SIGINT or SIGTERM shut it down gracefully. GET /metrics serves Prometheus
// metrics and GET /healthz answers "ok"; neither collides with the API, which is POST only.
package streamd

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kinesis-network/portal/stream"
	"github.com/kinesis-network/portal/stream/storage"
	"github.com/kinesis-network/portal/stream/storage/disk"
)

// memoryDataDir selects the in-memory backend instead of a directory.
const memoryDataDir = ":memory:"

// options are the command-line settings of streamd.
type options struct {
	listen, dataDir          string
	tlsCert, tlsKey          string
	fsync                    string
	syncPeriod               time.Duration
	segmentBytes             int64
	region, accountID        string
	accessKey, secretKey     string
	createDelay, deleteDelay time.Duration
	updateDelay, consDelay   time.Duration
	iteratorTTL              time.Duration
	subDuration              time.Duration
	retentionHour            time.Duration
	retentionCheck           time.Duration
	autoScaleInterval        time.Duration
	noThrottle, noCtlLimits  bool
	shardLimit               int
	writeBytes, writeRecords int
	readBytes, readCalls     int
	logLevel                 string
	grace                    time.Duration
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("streamd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.listen, "listen", "127.0.0.1:4567", "`HOST:PORT` to listen on (port 0 picks a free port)")
	fs.StringVar(&o.dataDir, "data-dir", "streamd-data", "`DIR` holding records and stream metadata; \":memory:\" keeps nothing")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "PEM certificate `file`; with --tls-key serves HTTPS (h2 and HTTP/1.1)")
	fs.StringVar(&o.tlsKey, "tls-key", "", "PEM private key `file`")
	fs.StringVar(&o.fsync, "fsync", "always", "when records reach stable storage: always (before acknowledging), interval, never")
	fs.DurationVar(&o.syncPeriod, "sync-period", time.Second, "flush period for --fsync=interval")
	fs.Int64Var(&o.segmentBytes, "segment-bytes", 64<<20, "segment file size in bytes (retention deletes whole segments)")
	fs.StringVar(&o.region, "region", "us-east-1", "region named in ARNs")
	fs.StringVar(&o.accountID, "account-id", "000000000000", "12-digit account id named in ARNs")
	fs.StringVar(&o.accessKey, "access-key", os.Getenv("STREAMD_ACCESS_KEY"), "access key id; with --secret-key, SigV4 signatures are verified ($STREAMD_ACCESS_KEY)")
	fs.StringVar(&o.secretKey, "secret-key", os.Getenv("STREAMD_SECRET_KEY"), "secret access key ($STREAMD_SECRET_KEY)")
	fs.DurationVar(&o.createDelay, "create-delay", 0, "time a new stream stays CREATING")
	fs.DurationVar(&o.deleteDelay, "delete-delay", 0, "time a deleted stream stays DELETING")
	fs.DurationVar(&o.updateDelay, "update-delay", 0, "time a stream stays UPDATING while resharding")
	fs.DurationVar(&o.consDelay, "consumer-delay", 0, "time a registered consumer stays CREATING")
	fs.DurationVar(&o.iteratorTTL, "iterator-ttl", 5*time.Minute, "shard iterator lifetime")
	fs.DurationVar(&o.subDuration, "subscription-duration", 5*time.Minute, "SubscribeToShard event stream lifetime")
	fs.DurationVar(&o.retentionHour, "retention-hour", time.Hour, "wall-clock length of one retention hour (shrink for tests)")
	fs.DurationVar(&o.retentionCheck, "retention-check", time.Minute, "how often expired records are trimmed")
	fs.DurationVar(&o.autoScaleInterval, "autoscale-interval", 10*time.Second, "how often ON_DEMAND streams are rescaled (negative disables)")
	fs.BoolVar(&o.noThrottle, "no-throttle", false, "lift the per-shard read and write throughput limits")
	fs.BoolVar(&o.noCtlLimits, "no-control-limits", false, "lift the per-account control-plane call rates")
	fs.IntVar(&o.shardLimit, "shard-limit", 0, "open shards per account (0: 500 in us-east-1, us-west-2, eu-west-1, else 200)")
	fs.IntVar(&o.writeBytes, "shard-write-bytes", 0, "shard write limit in bytes/s (0: 1 MiB)")
	fs.IntVar(&o.writeRecords, "shard-write-records", 0, "shard write limit in records/s (0: 1000)")
	fs.IntVar(&o.readBytes, "shard-read-bytes", 0, "shard read limit in bytes/s (0: 2 MiB)")
	fs.IntVar(&o.readCalls, "shard-read-calls", 0, "shard GetRecords calls/s (0: 5)")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.DurationVar(&o.grace, "shutdown-grace", 10*time.Second, "how long in-flight requests may finish on shutdown")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	if (o.accessKey == "") != (o.secretKey == "") {
		return nil, errors.New("--access-key and --secret-key go together")
	}
	return o, nil
}

// Run starts streamd with command-line args and blocks until ctx is done or a termination signal
// arrives. It prints "streamd listening on <scheme>://<addr>" to stdout once listening and logs JSON to
// stderr. flag.ErrHelp is returned for -h.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))

	var backend storage.Backend
	if o.dataDir == memoryDataDir {
		backend = storage.NewMemory()
		log.Warn("in-memory storage: records are lost when streamd stops")
	} else {
		var sync disk.SyncPolicy
		switch o.fsync {
		case "always":
			sync = disk.SyncAlways
		case "interval":
			sync = disk.SyncInterval
		case "never":
			sync = disk.SyncNever
		default:
			return fmt.Errorf("--fsync: unknown policy %q", o.fsync)
		}
		b, err := disk.Open(o.dataDir, disk.Options{Sync: sync, SyncPeriod: o.syncPeriod, SegmentBytes: o.segmentBytes,
			Logger: log.With("component", "disk")})
		if err != nil {
			return fmt.Errorf("open data dir: %w", err)
		}
		backend = b
	}
	defer backend.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cfg := stream.Config{
		Backend: backend, Region: o.region, AccountID: o.accountID, Logger: log.With("component", "stream"),
		CreateDelay: o.createDelay, DeleteDelay: o.deleteDelay, UpdateDelay: o.updateDelay, ConsumerDelay: o.consDelay,
		IteratorTTL: o.iteratorTTL, SubscriptionDuration: o.subDuration, RetentionHour: o.retentionHour,
		RetentionCheckInterval: o.retentionCheck, DisableThrottling: o.noThrottle, DisableControlPlaneLimits: o.noCtlLimits,
		AutoScale: stream.AutoScaleConfig{Interval: o.autoScaleInterval}, Registerer: reg,
		Limits: stream.Limits{ShardLimit: o.shardLimit, ShardWriteBytesPerSec: o.writeBytes, ShardWriteRecordsPerSec: o.writeRecords,
			ShardReadBytesPerSec: o.readBytes, ShardReadCallsPerSec: o.readCalls},
	}
	if o.accessKey != "" {
		cfg.Credentials = map[string]string{o.accessKey: o.secretKey}
	}
	srv, err := stream.NewServer(cfg)
	if err != nil {
		return err
	}
	defer srv.Close()

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.Handle("/", srv)

	hs := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		Protocols:         new(http.Protocols),
	}
	hs.Protocols.SetHTTP1(true)
	scheme := "http"
	if o.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
		if err != nil {
			return fmt.Errorf("load TLS key pair: %w", err)
		}
		hs.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		hs.Protocols.SetHTTP2(true)
		scheme = "https"
	} else {
		hs.Protocols.SetUnencryptedHTTP2(true)
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	addr := ln.Addr().String()
	fmt.Fprintf(stdout, "streamd listening on %s://%s\n", scheme, addr)
	log.Info("listening", "addr", addr, "scheme", scheme, "data_dir", o.dataDir, "fsync", o.fsync,
		"sigv4", o.accessKey != "", "access_key", redact(o.accessKey), "region", o.region, "account_id", o.accountID)

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() {
		if scheme == "https" {
			errc <- hs.ServeTLS(ln, "", "")
			return
		}
		errc <- hs.Serve(ln)
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "grace_seconds", o.grace.Seconds())
	// End event streams first: they would otherwise hold the graceful shutdown for minutes.
	if err := srv.Close(); err != nil {
		log.Error("close stream service", "err", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), o.grace)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		log.Warn("graceful shutdown incomplete", "err", err)
		hs.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("serve", "err", err)
	}
	if err := backend.Close(); err != nil {
		return fmt.Errorf("close data dir: %w", err)
	}
	log.Info("stopped")
	return nil
}

// redact hides all but the first four characters of a secret for logs.
func redact(s string) string {
	if len(s) <= 4 {
		return strings.Repeat("*", len(s))
	}
	return s[:4] + strings.Repeat("*", len(s)-4)
}
