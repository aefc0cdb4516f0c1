package certs

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestCAIssuesVerifiableServerCerts(t *testing.T) {
	dir := t.TempDir()
	ca, err := LoadOrCreateCA(dir, "test CA")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "ca.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("CA key file mode: %v %v", fi, err)
	}
	again, err := LoadOrCreateCA(dir, "test CA")
	if err != nil || string(again.CertPEM()) != string(ca.CertPEM()) {
		t.Fatalf("reload gave a different CA: %v", err)
	}
	get := ca.ServerCertificate(HostUnder("portal.localhost", "localhost"), []string{"127.0.0.1"})
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{GetCertificate: get})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { c.(*tls.Conn).Handshake(); c.Close() }()
		}
	}()
	dial := func(name string) error {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", ln.Addr().String(), &tls.Config{RootCAs: ca.Pool(), ServerName: name})
		if err == nil {
			c.Close()
		}
		return err
	}
	for _, ok := range []string{"z1.dev.portal.localhost", "localhost", "127.0.0.1"} {
		if err := dial(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	if err := dial("evil.example.com"); err == nil {
		t.Error("issued a certificate for a name outside the zone")
	}
}
