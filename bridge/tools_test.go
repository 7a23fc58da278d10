package bridge

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// Programs that other people wrote, run by the tests as their users run
// them. scripts/install-test-deps.sh builds them from the Go module proxy
// (scripts/install-gitea.sh, scripts/install-oauth2-proxy.sh) into a cache
// shared by every clone on the machine:
//
//	${WECHAT_OIDC_TOOLS:-/var/cache/wechat-oidc-tools}/NAME-VERSION/
//
// An environment variable per tool (GITEA_BIN, OAUTH2_PROXY_BIN) points at
// another build instead. The versions here and in the scripts must agree
// (TestToolVersionsMatchInstallScripts).
const (
	giteaVersion       = "v1.24.6"
	oauth2ProxyVersion = "v7.15.6"
)

// toolsDir is the cache the install scripts build into.
func toolsDir() string {
	if d := os.Getenv("WECHAT_OIDC_TOOLS"); d != "" {
		return d
	}
	return "/var/cache/wechat-oidc-tools"
}

// toolBinary finds a tool's binary: $envVar, else
// toolsDir()/name-version/binary. Missing, it skips the test, or fails it
// under CI, where scripts/install-test-deps.sh must have built it.
func toolBinary(t *testing.T, envVar, name, version, binary, script string) string {
	t.Helper()
	bin := os.Getenv(envVar)
	if bin == "" {
		bin = filepath.Join(toolsDir(), name+"-"+version, binary)
	}
	if _, err := os.Stat(bin); err != nil {
		missingTool(t, fmt.Sprintf("%s %s not found (%v): run %s (or set %s to a binary)", name, version, err, script, envVar))
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		t.Fatalf("%s: %v", bin, err)
	}
	return abs
}

// missingTool skips the test, or fails it under CI.
func missingTool(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// TestToolVersionsMatchInstallScripts: the tests look for the versions the
// scripts build, so a version moved in one place only fails here rather than
// as a skipped (or, in CI, missing) tool.
func TestToolVersionsMatchInstallScripts(t *testing.T) {
	for script, want := range map[string]string{
		"install-gitea.sh":        giteaVersion,
		"install-oauth2-proxy.sh": oauth2ProxyVersion,
	} {
		raw, err := os.ReadFile(filepath.Join("..", "scripts", script))
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`(?m)^version="([^"]+)"$`).FindSubmatch(raw)
		if m == nil {
			t.Errorf("scripts/%s has no version=\"…\" line", script)
			continue
		}
		if got := string(m[1]); got != want {
			t.Errorf("scripts/%s builds %s, the tests look for %s", script, got, want)
		}
	}
}
