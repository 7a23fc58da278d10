package bridge

import (
	"os"
	"testing"

	"github.com/wechat-oidc/wechat-oidc/internal/loopback"
)

// TestMain keeps the tests on this machine (loopback.RefuseDNS).
// Afterwards it stops the Gitea that tests share, if one was started.
func TestMain(m *testing.M) {
	loopback.RefuseDNS()
	code := m.Run()
	stopSharedGitea() // started by the first test that needed it (gitea_harness_test.go)
	os.Exit(code)
}
