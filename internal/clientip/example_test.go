package clientip_test

import (
	"fmt"
	"net/http"
	"net/netip"

	"github.com/scrapedefense/scrapedefense/internal/clientip"
)

func ExampleResolver_ClientAddr() {
	trusted, err := clientip.ParsePrefixes([]string{"10.0.0.0/8", "192.0.2.10"})
	if err != nil {
		panic(err)
	}
	r, err := clientip.NewResolver(trusted, nil)
	if err != nil {
		panic(err)
	}
	h := http.Header{}
	// The client claimed to be 1.1.1.1; our load balancer 10.0.0.5 appended
	// what it saw, and the request reached us from 192.0.2.10.
	h.Set("X-Forwarded-For", "1.1.1.1, 203.0.113.7, 10.0.0.5")
	addr, err := r.ClientAddr(netip.MustParseAddr("192.0.2.10"), h)
	fmt.Println(addr, err)
	// Output: 203.0.113.7 <nil>
}
