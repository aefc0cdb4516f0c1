// Command streamd runs the Kinesis Data Streams–compatible stream service as a standalone workload.
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
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/kinesis-network/portal/stream/streamd"
)

func main() {
	if err := streamd.Run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "streamd:", err)
		}
		os.Exit(1)
	}
}
