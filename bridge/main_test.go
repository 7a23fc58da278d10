package bridge

import (
	"context"
	"errors"
	"net"
	"os"
	"testing"
)

// TestMain keeps the tests on this machine: every name they use must come
// from /etc/hosts (localhost) or be an IP literal. A lookup that would go to
// a DNS server (a test following a redirect to rp.test, say) fails at once
// instead of leaving the loopback. Afterwards it stops the Gitea that tests
// share, if one was started.
func TestMain(m *testing.M) {
	net.DefaultResolver = &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, address string) (net.Conn, error) {
			return nil, errors.New("tests must not query DNS (" + address + "): use 127.0.0.1")
		},
	}
	code := m.Run()
	stopSharedGitea() // started by the first test that needed it (gitea_harness_test.go)
	os.Exit(code)
}
