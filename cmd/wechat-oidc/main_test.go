package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestVersionAndUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "wechat-oidc ") {
		t.Fatalf("version: %d %q", code, out.String())
	}
	out.Reset()
	if code := run(nil, &out, &errb); code != 2 || !strings.Contains(errb.String(), "serve --config") {
		t.Fatalf("no args: %d %q", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"serve"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "--config FILE is required") {
		t.Fatalf("serve without config: %d %q", code, errb.String())
	}
	errb.Reset()
	if code := run([]string{"frobnicate"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), `unknown command "frobnicate"`) {
		t.Fatalf("unknown command: %d %q", code, errb.String())
	}
}

func TestServeRefusesBadConfigWithKeyName(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(path, []byte("issuer: http://sso.example.com\n"), 0o600)
	var out, errb bytes.Buffer
	if code := run([]string{"serve", "--config", path}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "issuer") || !strings.Contains(errb.String(), "https") {
		t.Fatalf("got %d %q", code, errb.String())
	}
}

func freePort(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestServeStartsAndStops runs the real command: keys are created with mode
// 0600, discovery answers with the configured issuer, and a cancelled
// context shuts the server down cleanly.
func TestServeStartsAndStops(t *testing.T) {
	dir := t.TempDir()
	addr := freePort(t)
	issuer := "http://" + addr
	cfg := fmt.Sprintf(`issuer: %s
listen: %s
wechat:
  official_account: { app_id: wx1, app_secret: "${TEST_OA_SECRET}" }
clients:
  - { id: app, secret: app-secret-0123456789, redirect_uris: [https://app.example.com/cb] }
keys: { dir: %s }
directory: { type: sqlite, path: %s }
`, issuer, addr, filepath.Join(dir, "keys"), filepath.Join(dir, "people.db"))
	path := filepath.Join(dir, "config.yaml")
	os.WriteFile(path, []byte(cfg), 0o600)
	t.Setenv("TEST_OA_SECRET", "oa-secret-value")

	ctx, cancel := context.WithCancel(context.Background())
	var logs bytes.Buffer
	done := make(chan error, 1)
	go func() { done <- serve(ctx, path, &logs) }()

	var doc map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(issuer + "/.well-known/openid-configuration")
		if err == nil {
			json.NewDecoder(resp.Body).Decode(&doc)
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not start: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if doc["issuer"] != issuer {
		t.Fatalf("issuer = %v", doc["issuer"])
	}
	files, _ := filepath.Glob(filepath.Join(dir, "keys", "*.pem"))
	if len(files) != 1 {
		t.Fatalf("key files: %v", files)
	}
	if info, _ := os.Stat(files[0]); info.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v", info.Mode().Perm())
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop")
	}
	if strings.Contains(logs.String(), "oa-secret-value") || strings.Contains(logs.String(), "app-secret-0123456789") {
		t.Fatal("a secret reached the log")
	}
}

func TestKeysAdd(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	os.WriteFile(path, []byte(fmt.Sprintf(`issuer: https://sso.example.com
wechat:
  official_account: { app_id: wx1, app_secret: oa-secret }
clients:
  - { id: app, secret: app-secret-0123456789, redirect_uris: [https://app.example.com/cb] }
keys: { dir: %s }
directory: { type: sqlite, path: %s }
`, filepath.Join(dir, "keys"), filepath.Join(dir, "people.db"))), 0o600)
	os.MkdirAll(filepath.Join(dir, "keys"), 0o700)
	for i := 1; i <= 2; i++ {
		var out, errb bytes.Buffer
		if code := run([]string{"keys", "add", "--config", path}, &out, &errb); code != 0 || !strings.Contains(out.String(), "added signing key") {
			t.Fatalf("keys add: %d %q %q", code, out.String(), errb.String())
		}
		files, _ := filepath.Glob(filepath.Join(dir, "keys", "*.pem"))
		if len(files) != i {
			t.Fatalf("after %d adds: %v", i, files)
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"keys"}, &out, &errb); code != 2 {
		t.Fatalf("keys without add: %d", code)
	}
}
