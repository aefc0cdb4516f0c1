package main

import (
	"context"

	"github.com/kinesis-network/portal/internal/portal"
)

// startDevStream starts the demo stream service and its relay endpoint (wired in once cmd/streamd exists).
func startDevStream(ctx context.Context, p *portal.Portal, info *DevInfo, cleanups *[]func()) error {
	return nil
}
