package httprelay_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"

	"github.com/kinesis-network/portal/certs"
	"github.com/kinesis-network/portal/gateway/httprelay"
	"github.com/kinesis-network/portal/gateway/routes"
	"github.com/kinesis-network/portal/gateway/sticky"
	"github.com/kinesis-network/portal/registry"
)

// Example wires the relay as the portal does: a registry holding an HTTPS endpoint, a route cache
// following it, the relay handler behind NewServer on TLS, and a client calling
// https://<host>/relay/<key>/<path>.
func Example() {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "backend saw %s?%s", r.URL.Path, r.URL.RawQuery)
	}))
	defer backend.Close()

	store := registry.NewMemory(registry.Options{})
	defer store.Close()
	key := registry.NewSecret() // given to the customer once; the registry keeps only its hash
	_, err := store.CreateEndpoint(context.Background(), &registry.Endpoint{
		TenantID: "tn_demo", Name: "demo", Type: registry.HTTPS, Zone: "z1", Region: "r1",
		Keys:      []registry.AccessKey{{Hash: registry.HashSecret(key)}},
		Instances: []registry.Instance{{ID: "in_1", Addr: backend.Listener.Addr().String()}},
	})
	if err != nil {
		panic(err)
	}

	codec := sticky.NewCodec([]byte(registry.NewSecret())) // the fleet-wide cookie secret
	cache := routes.New(store, routes.Options{Sticky: codec})
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { defer close(ran); _ = cache.Run(ctx) }()
	defer func() { stop(); <-ran }()
	<-cache.Ready()

	ca, _, err := certs.NewCA("example CA")
	if err != nil {
		panic(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	relay := httprelay.New(httprelay.Options{Routes: cache, Sticky: codec, Logger: quiet})
	defer relay.Close()
	srv := httprelay.NewServer(relay, httprelay.ServerOptions{
		GetCertificate: ca.ServerCertificate(certs.HostUnder("portal.localhost"), nil),
		Logger:         quiet,
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.ServeTLS(ln, "", "") }()
	defer func() { srv.Close(); <-served }()

	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool()},
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", ln.Addr().String())
		},
		ForceAttemptHTTP2: true,
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("https://z1.r1.portal.localhost/relay/" + key + "/hello?name=world")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Proto, resp.StatusCode, string(body))
	// Output: HTTP/2.0 200 backend saw /hello?name=world
}
