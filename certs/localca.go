// Package certs provides the portal's certificates: a local certificate authority for dev mode and for
// node identity (agents' client certificates), issuing leaf certificates on demand for the portal's host
// names. ACME via certmagic plugs in behind the same tls.Config GetCertificate hook when configured.
package certs

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// CA is a local certificate authority. Safe for concurrent use.
type CA struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte

	mu    sync.Mutex
	cache map[string]*tls.Certificate // by server name
}

// LoadOrCreateCA loads ca.pem and ca.key from dir, or creates a new P-256 CA there (key file mode 0600)
// when they are absent. name is the CA's common name.
func LoadOrCreateCA(dir, name string) (*CA, error) {
	certFile, keyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca.key")
	certPEM, err1 := os.ReadFile(certFile)
	keyPEM, err2 := os.ReadFile(keyFile)
	if err1 == nil && err2 == nil {
		return ParseCA(certPEM, keyPEM)
	}
	if !errors.Is(err1, os.ErrNotExist) && err1 != nil {
		return nil, fmt.Errorf("certs: read %s: %w", certFile, err1)
	}
	ca, keyPEM, err := NewCA(name)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("certs: %w", err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		return nil, fmt.Errorf("certs: write CA key: %w", err)
	}
	if err := os.WriteFile(certFile, ca.certPEM, 0o644); err != nil {
		return nil, fmt.Errorf("certs: write CA cert: %w", err)
	}
	return ca, nil
}

// NewCA creates a fresh CA valid for ten years and returns it with its PEM-encoded private key.
func NewCA(name string) (*CA, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: generate CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"Kinesis Portal local CA"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: create CA: %w", err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("certs: marshal CA key: %w", err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	ca, err := ParseCA(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM)
	return ca, keyPEM, err
}

// ParseCA builds a CA from PEM certificate and PKCS#8 (or EC) private key.
func ParseCA(certPEM, keyPEM []byte) (*CA, error) {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, errors.New("certs: CA certificate is not PEM")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("certs: parse CA certificate: %w", err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, errors.New("certs: CA key is not PEM")
	}
	var key crypto.Signer
	if k, err := x509.ParsePKCS8PrivateKey(kb.Bytes); err == nil {
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, errors.New("certs: CA key cannot sign")
		}
		key = s
	} else if k, err2 := x509.ParseECPrivateKey(kb.Bytes); err2 == nil {
		key = k
	} else {
		return nil, fmt.Errorf("certs: parse CA key: %w", err)
	}
	return &CA{cert: cert, key: key, certPEM: certPEM, cache: map[string]*tls.Certificate{}}, nil
}

// CertPEM returns the CA certificate in PEM form (what clients pass as --cacert).
func (ca *CA) CertPEM() []byte { return ca.certPEM }

// Pool returns a pool holding the CA certificate.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err)
	}
	return n
}

// Issue signs a leaf certificate for names (DNS names, "*.wildcards" or IP addresses) valid for
// validity. The first name becomes the common name. clientAuth adds the client-auth usage.
func (ca *CA) Issue(names []string, validity time.Duration, clientAuth bool) (*tls.Certificate, error) {
	if len(names) == 0 {
		return nil, errors.New("certs: no names to issue for")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("certs: generate key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: names[0]},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if clientAuth {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("certs: sign certificate: %w", err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return &tls.Certificate{Certificate: [][]byte{der, ca.cert.Raw}, PrivateKey: key, Leaf: leaf}, nil
}

// ServerCertificate returns a tls.Config GetCertificate hook that issues (and caches) a 90-day
// certificate for any SNI name for which allowed returns true, and for fallback when the client sends
// no SNI (IP address connections). A name not allowed fails the handshake.
func (ca *CA) ServerCertificate(allowed func(name string) bool, fallback []string) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
		names := fallback
		if name != "" {
			if !allowed(name) {
				return nil, fmt.Errorf("certs: no certificate for %q", name)
			}
			names = []string{name}
		}
		key := strings.Join(names, ",")
		ca.mu.Lock()
		defer ca.mu.Unlock()
		if c, ok := ca.cache[key]; ok && time.Until(c.Leaf.NotAfter) > 24*time.Hour {
			return c, nil
		}
		c, err := ca.Issue(names, 90*24*time.Hour, false)
		if err != nil {
			return nil, err
		}
		ca.cache[key] = c
		return c, nil
	}
}

// HostUnder returns an allowed-names predicate accepting suffix itself and any name ending in "."+suffix,
// plus the extra names given.
func HostUnder(suffix string, extra ...string) func(string) bool {
	suffix = strings.ToLower(suffix)
	return func(name string) bool {
		if name == suffix || strings.HasSuffix(name, "."+suffix) {
			return true
		}
		for _, e := range extra {
			if name == e {
				return true
			}
		}
		return false
	}
}
