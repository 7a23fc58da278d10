package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPeopleAndAuditAreDispatched: `wechat-oidc people` and `wechat-oidc
// audit` reach package peoplecli, with its exit codes.
func TestPeopleAndAuditAreDispatched(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"people", "help"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "invite") {
		t.Fatalf("people help: %d %q %q", code, out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"people", "add"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "--username is required") {
		t.Fatalf("people add without flags: %d %q", code, errb.String())
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	text := "issuer: https://sso.example.com\nwechat:\n  official_account: { app_id: wx1, app_secret: \"${TEST_UNSET_SECRET}\" }\n" +
		"directory: { type: sqlite, path: " + filepath.Join(dir, "d.db") + " }\n"
	if err := os.WriteFile(cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"people", "add", "--username", "alice", "--config", cfg}, &out, &errb); code != 0 {
		t.Fatalf("people add: %d %q", code, errb.String())
	}
	out.Reset()
	if code := run([]string{"audit", "--config", cfg}, &out, &errb); code != 0 || !strings.Contains(out.String(), "person.create") {
		t.Fatalf("audit: %d %q %q", code, out.String(), errb.String())
	}
	if !strings.Contains(usage, "wechat-oidc people") || !strings.Contains(usage, "wechat-oidc audit") {
		t.Error("the usage does not list people and audit")
	}
}
