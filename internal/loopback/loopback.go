// Package loopback keeps tests on this machine.
package loopback

import (
	"context"
	"errors"
	"net"
)

// RefuseDNS makes every name lookup that would go to a DNS server fail at
// once: names must come from /etc/hosts (localhost) or be IP literals. A
// test that follows a redirect to rp.test, say, fails instead of leaving the
// loopback. Call it from TestMain.
func RefuseDNS() {
	net.DefaultResolver = &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			return nil, errors.New("tests must not query DNS (" + address + "): use 127.0.0.1")
		},
	}
}
