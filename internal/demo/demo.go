// Package demo runs the small demo workload that `portal dev` puts behind its demo endpoint: HTTP
// instances that answer with their own id, the path they saw and the request headers, so a new user can
// watch balancing, stickiness and forwarded headers at work.
package demo

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"time"
)

// Instance is one running demo HTTP instance.
type Instance struct {
	ID   string
	Addr string // host:port it listens on
	srv  *http.Server
	done chan struct{}
}

// StartHTTP starts an instance named id on a free loopback port.
func StartHTTP(id string) (*Instance, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	in := &Instance{ID: id, Addr: ln.Addr().String(), done: make(chan struct{})}
	in.srv = &http.Server{Handler: Handler(id), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(in.done)
		if err := in.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			_ = err // the instance simply stops; the portal's health checks notice
		}
	}()
	return in, nil
}

// Close stops the instance and waits for it.
func (in *Instance) Close(ctx context.Context) error {
	err := in.srv.Shutdown(ctx)
	<-in.done
	return err
}

// Handler answers every request with JSON describing it. /redirect answers 302 to /landing with a
// cookie scoped to /app, to show the relay's Location and Set-Cookie rewriting.
func Handler(id string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.SetCookie(w, &http.Cookie{Name: "app", Value: "1", Path: "/app"})
			http.Redirect(w, r, "/landing", http.StatusFound)
			return
		}
		hdr := map[string]string{}
		for k := range r.Header {
			hdr[k] = r.Header.Get(k)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{
			"instance": id,
			"method":   r.Method,
			"path":     r.URL.RequestURI(),
			"headers":  hdr,
		})
	})
}
