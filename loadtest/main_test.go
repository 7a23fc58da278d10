package loadtest

import (
	"os"
	"testing"

	"github.com/wechat-oidc/wechat-oidc/internal/loopback"
)

// TestMain keeps the tests on this machine (loopback.RefuseDNS).
func TestMain(m *testing.M) {
	loopback.RefuseDNS()
	os.Exit(m.Run())
}
