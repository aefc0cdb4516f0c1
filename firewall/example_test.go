package firewall_test

import (
	"fmt"
	"net/netip"

	"github.com/kinesis-network/portal/firewall"
)

func ExampleCompile() {
	p, err := firewall.Compile(firewall.Rules{
		Allow: []string{"10.0.0.0/8", "2001:db8::/32"},
		Deny:  []string{"10.6.0.0/16"},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, s := range []string{"10.1.2.3", "::ffff:10.1.2.3", "10.6.6.6", "192.0.2.1", "2001:db8::1"} {
		fmt.Println(s, p.AllowSource(netip.MustParseAddr(s)))
	}
	// Output:
	// 10.1.2.3 true
	// ::ffff:10.1.2.3 true
	// 10.6.6.6 false
	// 192.0.2.1 false
	// 2001:db8::1 true
}

func ExampleRules_Validate() {
	r := firewall.Rules{Deny: []string{"192.0.2.0/24", "fe80::1%eth0"}}
	fmt.Println(r.Validate())
	// Output:
	// firewall: deny: invalid address or CIDR "fe80::1%eth0": IPv6 zone not allowed in a rule
}
