package wechatoidc_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestArrows checks the room boundaries of docs/architecture.md: which
// package may depend on which. An arrow the wrong way is a design error,
// caught here rather than in review.
func TestArrows(t *testing.T) {
	const mod = "github.com/wechat-oidc/wechat-oidc/"
	forbidden := map[string][]string{
		// The login core talks to upstreams only through package connector,
		// and carries no dev-mode or relying-party code.
		"bridge": {mod + "wechat", mod + "wechat/simulator", mod + "connector/wechat", mod + "dev",
			"github.com/coreos/go-oidc/v3/oidc", "golang.org/x/oauth2"},
		// The protocol knows no upstream.
		"oidc": {mod + "wechat", mod + "connector", mod + "bridge", mod + "config"},
		// The WeChat API client knows nothing of OIDC.
		"wechat": {mod + "oidc", mod + "bridge", mod + "connector"},
		// Connectors return identities; they never reach into the core.
		"connector/wechat": {mod + "bridge", mod + "dev"},
		"connector":        {mod + "bridge", mod + "wechat"},
		"config":           {mod + "bridge", mod + "wechat", mod + "connector"},
		"keys":             {mod + "bridge", mod + "oidc", "net/http"},
		"store":            {mod + "bridge", mod + "oidc"},
		// The console is a client of the core through admin.Core and the
		// provider; it knows no upstream.
		"admin": {mod + "bridge", mod + "wechat", mod + "connector", mod + "dev"},
		// Metrics are recorded by the rooms; they know none of them but the store they time.
		"metrics": {mod + "bridge", mod + "oidc", mod + "wechat", mod + "connector", mod + "config"},
	}
	for pkg, bad := range forbidden {
		out, err := exec.Command("go", "list", "-deps", "./"+pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps ./%s: %v", pkg, err)
		}
		deps := map[string]bool{}
		for _, d := range strings.Fields(string(out)) {
			deps[d] = true
		}
		for _, b := range bad {
			if deps[b] {
				t.Errorf("%s depends on %s", pkg, b)
			}
		}
	}
}
