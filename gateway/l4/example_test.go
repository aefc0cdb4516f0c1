package l4_test

import (
	"fmt"
	"net"
	"time"

	"github.com/kinesis-network/portal/firewall"
	"github.com/kinesis-network/portal/gateway/balance"
	"github.com/kinesis-network/portal/gateway/l4"
)

// A portal TCP endpoint: two instances, a source allow list, PROXY v2 to the backends. A later Set
// with the same ID and an empty address swaps the configuration (say, to mTLS) for new connections.
func ExampleServer_Set() {
	srv := l4.New(l4.Options{DrainPeriod: 10 * time.Second})
	defer srv.Close()

	pool := balance.NewPool(balance.P2C, []*balance.Instance{
		balance.NewInstance("inst-1", "10.0.0.5:5432", nil),
		balance.NewInstance("inst-2", "10.0.0.6:5432", nil),
	}, nil)
	fw, err := firewall.Compile(firewall.Rules{Allow: []string{"192.0.2.0/24", "2001:db8::/32"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	addr, err := srv.Set("127.0.0.1:0", &l4.EndpointConfig{
		ID: "ep-db", Pool: pool, Firewall: fw, ProxyProtocol: true, MaxConnsPerIP: 100,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	_, isTCP := addr.(*net.TCPAddr)
	fmt.Println("listening:", isTCP)

	// Remove stops accepting at once and drains for DrainPeriod.
	srv.Remove("ep-db")
	fmt.Println("after remove:", srv.Addr("ep-db"))
	// Output:
	// listening: true
	// after remove: <nil>
}

// The node agent serves direct IP:port endpoints on listeners it opens itself.
func ExampleServer_Serve() {
	srv := l4.New(l4.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	done := make(chan error, 1)
	go func() {
		done <- srv.Serve(ln, &l4.EndpointConfig{ID: "direct-1", Pool: balance.NewPool(balance.P2C, nil, nil)})
	}()
	for srv.Addr("direct-1") == nil { // wait until Serve registered the endpoint
		time.Sleep(time.Millisecond)
	}
	srv.Close() // Serve returns nil once the server is closed
	fmt.Println("serve:", <-done)
	// Output: serve: <nil>
}
