package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"
)

// BenchmarkColdStart measures `wechat-oidc serve` from exec to /healthz
// answering 200: the built binary, a configuration with the memory store,
// an existing key directory and SQLite directory (the first start, which
// creates the key and the database, is not counted). It reports the median and the slowest start.
//
//	go test -run '^$' -bench ColdStart -benchtime 20x ./cmd/wechat-oidc
func BenchmarkColdStart(b *testing.B) {
	dir := b.TempDir()
	bin := filepath.Join(dir, "wechat-oidc")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	addr := freePort(b)
	path := filepath.Join(dir, "config.yaml")
	cfg := fmt.Sprintf(`issuer: http://%s
listen: %s
wechat:
  official_account: { app_id: wx1, app_secret: oa-secret-value }
clients:
  - { id: app, secret: app-secret-0123456789, redirect_uris: [https://app.example.com/cb] }
store: { type: memory }
keys: { dir: %s }
directory: { type: sqlite, path: %s }
`, addr, addr, filepath.Join(dir, "keys"), filepath.Join(dir, "wechat-oidc.db"))
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	healthz := "http://" + addr + "/healthz"
	client := &http.Client{Timeout: time.Second}
	// start execs serve and returns how long until /healthz answered.
	start := func() time.Duration {
		began := time.Now()
		cmd := exec.Command(bin, "serve", "--config", path)
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		defer func() {
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
		}()
		for time.Since(began) < 10*time.Second {
			resp, err := client.Get(healthz)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return time.Since(began)
				}
			}
			time.Sleep(500 * time.Microsecond) // polling a start, not waiting for an expiry
		}
		b.Fatal("serve did not answer /healthz within 10s")
		return 0
	}
	start() // creates the signing key
	var took []time.Duration
	b.ResetTimer()
	for range b.N {
		took = append(took, start())
	}
	b.StopTimer()
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2])/float64(time.Millisecond), "ms-median")
	b.ReportMetric(float64(took[len(took)-1])/float64(time.Millisecond), "ms-max")
}
