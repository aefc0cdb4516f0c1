package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kinesis-network/portal/internal/portal"
	"github.com/kinesis-network/portal/registry"
	"github.com/kinesis-network/portal/stream/streamd"
)

// devStreamRegion is the region the demo stream service names in its ARNs.
const devStreamRegion = "us-east-1"

// runStreamd is the hidden "portal streamd" command: the stream service, run by `portal dev` as a child
// process of this same binary (until node agents run workloads). It takes streamd's flags.
func runStreamd(args []string, stdout, stderr io.Writer) int {
	if err := streamd.Run(context.Background(), args, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "streamd:", err)
		return 1
	}
	return 0
}

// startDevStream starts the stream service as a child process on a free loopback port, with its data
// in the state directory, and puts an HTTPS relay endpoint in front of it.
func startDevStream(ctx context.Context, p *portal.Portal, info *DevInfo, cleanups *[]func()) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	dataDir := filepath.Join(p.Config().StateDir, "stream")
	cmd := exec.Command(self, "streamd", "--listen", "127.0.0.1:0", "--data-dir", dataDir,
		"--region", devStreamRegion, "--log-level", "warn")
	cmd.Stderr = os.Stderr
	// The child dies with the portal even when the portal is killed without a chance to clean up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start streamd: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	*cleanups = append(*cleanups, func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if rest, ok := strings.CutPrefix(sc.Text(), "streamd listening on http://"); ok {
				addrc <- rest
			}
		}
		io.Copy(io.Discard, out)
	}()
	var addr string
	select {
	case addr = <-addrc:
	case <-exited:
		return fmt.Errorf("streamd exited before listening (see its log above)")
	case <-time.After(30 * time.Second):
		return fmt.Errorf("streamd did not start listening in 30 s")
	case <-ctx.Done():
		return ctx.Err()
	}
	c := p.Config()
	key := registry.NewSecret()
	ep, err := p.Store.CreateEndpoint(ctx, &registry.Endpoint{
		TenantID: "dev", Name: "stream", Type: registry.HTTPS, Zone: c.Zone, Region: c.Region,
		Keys:      []registry.AccessKey{{Hash: registry.HashSecret(key), CreatedAt: time.Now().UTC()}},
		Instances: []registry.Instance{{ID: registry.NewID("in"), Addr: addr, CreatedAt: time.Now().UTC()}},
	})
	if err != nil {
		return fmt.Errorf("create stream endpoint: %w", err)
	}
	info.StreamURL, info.StreamID, info.StreamRegion = p.RelayURL(key), ep.ID, devStreamRegion
	return nil
}
