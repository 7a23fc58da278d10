package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wechat-oidc/wechat-oidc/store/storetest"
	"github.com/wechat-oidc/wechat-oidc/wechat/simulator"
)

const (
	opsAppID     = "wxops000000000001"
	opsAppSecret = "ops-app-secret-0123456789"
	opsClient    = "app"
	opsSecret    = "app-secret-0123456789"
	opsRedirect  = "https://app.example.com/cb"
	wechatUA     = "Mozilla/5.0 (iPhone) AppleWebKit/605.1.15 Mobile/15E148 MicroMessenger/8.0.49 NetType/WIFI"
	testKEK      = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// opsEnv is a real `serve` with a WeChat simulator, restartable.
type opsEnv struct {
	t       *testing.T
	sim     *simulator.Simulator
	addr    string
	issuer  string
	path    string // the config file
	logs    *syncBuf
	cancel  context.CancelFunc
	done    chan error
	metrics string
}

func newOpsEnv(t *testing.T, extra string) *opsEnv {
	t.Helper()
	sim := simulator.New(simulator.Config{
		Apps:      []simulator.App{{ID: opsAppID, Secret: opsAppSecret, Kind: simulator.OfficialAccount, Bound: true}},
		AllowPort: true,
	})
	simSrv := httptest.NewServer(sim)
	t.Cleanup(simSrv.Close)
	e := &opsEnv{t: t, sim: sim, addr: freePort(t), logs: &syncBuf{}, metrics: freePort(t)}
	e.issuer = "http://" + e.addr
	cfg := fmt.Sprintf(`issuer: %s
listen: %s
wechat:
  official_account: { app_id: %s, app_secret: "${OPS_OA_SECRET}", scope: snsapi_userinfo }
  open_base_url: %s
  api_base_url: %s
clients:
  - { id: %s, secret: "${OPS_CLIENT_SECRET}", redirect_uris: [%s], refresh_tokens: true }
metrics: { listen: %s }
directory: { type: sqlite, path: %s }
access: { mode: open }
%s`, e.issuer, e.addr, opsAppID, simSrv.URL, simSrv.URL, opsClient, opsRedirect, e.metrics, filepath.Join(t.TempDir(), "people.db"), extra)
	e.path = filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(e.path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("OPS_OA_SECRET", opsAppSecret)
	t.Setenv("OPS_CLIENT_SECRET", opsSecret)
	return e
}

func (e *opsEnv) start() {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.done = cancel, make(chan error, 1)
	go func() { e.done <- serve(ctx, e.path, e.logs) }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(e.issuer + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case err := <-e.done:
			e.t.Fatalf("serve ended at start: %v\n%s", err, e.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("serve not ready: %v\n%s", err, e.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop is SIGTERM: a graceful stop.
func (e *opsEnv) stop() {
	e.t.Helper()
	e.cancel()
	select {
	case err := <-e.done:
		if err != nil {
			e.t.Fatalf("serve returned %v\n%s", err, e.logs.String())
		}
	case <-time.After(30 * time.Second):
		e.t.Fatal("serve did not stop")
	}
}

func (e *opsEnv) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Transport: uaTransport{wechatUA}, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if req.URL.Host == "app.example.com" {
			return http.ErrUseLastResponse
		}
		return nil
	}}
}

type uaTransport struct{ ua string }

func (u uaTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("User-Agent", u.ua)
	return http.DefaultTransport.RoundTrip(r)
}

func (e *opsEnv) authorizeURL(extra url.Values) string {
	v := url.Values{"client_id": {opsClient}, "redirect_uri": {opsRedirect}, "response_type": {"code"}, "scope": {"openid profile"}, "state": {"s"}}
	for k, x := range extra {
		v[k] = x
	}
	return e.issuer + "/authorize?" + v.Encode()
}

// code opens u in b and returns the code the client got.
func (e *opsEnv) code(b *http.Client, u string) string {
	e.t.Helper()
	resp, err := b.Get(u)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if loc == nil || loc.Query().Get("code") == "" {
		e.t.Fatalf("no code: %d %s\n%s", resp.StatusCode, resp.Header.Get("Location"), e.logs.String())
	}
	return loc.Query().Get("code")
}

func (e *opsEnv) token(form url.Values) (int, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.issuer+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(opsClient, opsSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// TestGracefulRestartKeepsTheMemoryStore: a single instance with the memory
// store and store.snapshot_file, stopped gracefully (SIGTERM) and started
// again, keeps its SSO sessions, refresh tokens and pending logins: the
// session signs the browser in without WeChat, the refresh token refreshes,
// and a login that was on WeChat's page when the process stopped finishes.
// The snapshot is mode 0600 and is used once. Metrics are served on their
// own listener, not on the public one.
func TestGracefulRestartKeepsTheMemoryStore(t *testing.T) {
	dir := t.TempDir()
	snapshot := filepath.Join(dir, "store.snapshot")
	e := newOpsEnv(t, fmt.Sprintf("keys: { dir: %s }\nstore: { type: memory, snapshot_file: %s }\n", filepath.Join(dir, "keys"), snapshot))
	e.start()
	e.sim.AutoApprove("alice")
	sso := e.browser()
	code := e.code(sso, e.authorizeURL(nil))
	status, tokens := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {opsRedirect}})
	if status != 200 || tokens["refresh_token"] == nil {
		t.Fatalf("token: %d %v", status, tokens)
	}
	// A login left on WeChat's page: the browser is sent back to our callback only after the restart.
	pending := e.browser()
	pending.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
		if req.URL.Path == "/wechat/callback" || req.URL.Host == "app.example.com" {
			return http.ErrUseLastResponse
		}
		return nil
	}
	resp, err := pending.Get(e.authorizeURL(url.Values{"prompt": {"login"}, "state": {"pending"}}))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	callback := resp.Header.Get("Location")
	if !strings.Contains(callback, "/wechat/callback") {
		t.Fatalf("no callback: %d %s", resp.StatusCode, callback)
	}
	m := scrape(t, e.metrics)
	for _, want := range []string{`wechat_oidc_sign_ins_total{flow="official_account",result="ok"} 1`, `wechat_oidc_pending_logins 1`, "wechat_oidc_store_entries", `wechat_oidc_token_requests_total{grant="authorization_code",result="ok"} 1`} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if resp, err := http.Get(e.issuer + "/metrics"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("/metrics is served on the public listener")
		}
	}

	e.stop()
	info, err := os.Stat(snapshot)
	if err != nil {
		t.Fatalf("no snapshot after a graceful stop: %v\n%s", err, e.logs.String())
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("snapshot mode %v, want 0600", info.Mode().Perm())
	}
	raw, _ := os.ReadFile(snapshot)
	if strings.Contains(string(raw), tokens["refresh_token"].(string)) || strings.Contains(string(raw), tokens["access_token"].(string)) {
		t.Error("the snapshot holds a token in clear")
	}

	e.start()
	if _, err := os.Stat(snapshot); !os.IsNotExist(err) {
		t.Errorf("the snapshot is still there after it was loaded: %v", err)
	}
	if status, body := e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tokens["refresh_token"].(string)}}); status != 200 {
		t.Errorf("refresh after the restart: %d %v", status, body)
	}
	e.code(sso, e.authorizeURL(url.Values{"prompt": {"none"}})) // the SSO session
	resp, err = pending.Get(callback)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc, _ := url.Parse(resp.Header.Get("Location")); loc == nil || loc.Query().Get("code") == "" || loc.Query().Get("state") != "pending" {
		t.Errorf("the pending login did not finish after the restart: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	e.stop()

	// Without a snapshot (a crash, or snapshot_file unset) nothing survives.
	os.Remove(snapshot)
	e.start()
	if status, _ := e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tokens["refresh_token"].(string)}}); status == 200 {
		t.Error("a refresh token survived a restart without a snapshot")
	}
	e.stop()
	if strings.Contains(e.logs.String(), opsSecret) || strings.Contains(e.logs.String(), opsAppSecret) {
		t.Error("a secret reached the log")
	}
}

// TestServeWithKeysInRedis: with the Redis store and no keys.dir the
// signing keys live in Redis, sealed with keys.encryption_key; discovery
// lists exactly the configured algorithms (keys.algorithm and the clients'
// id_token_signed_response_alg), the JWKS one key each; `keys list` and
// `keys rotate` work with only the store's and the keys' secrets set.
func TestServeWithKeysInRedis(t *testing.T) {
	redis := storetest.StartRedisServer(t)
	keysSection := fmt.Sprintf(`store: { type: redis, redis: { url: "%s/0", prefix: "ops:" } }
keys: { encryption_key: "${OPS_KEK}", algorithm: ES256, publish_before_use: 1h }
`, redis.URL())
	e := newOpsEnv(t, keysSection)
	// A second client that wants EdDSA.
	cfg, _ := os.ReadFile(e.path)
	cfg = bytes.Replace(cfg, []byte("refresh_tokens: true }"), []byte("refresh_tokens: true }\n  - { id: ed, secret: ed-secret-0123456789, redirect_uris: [https://ed.example.com/cb], id_token_signed_response_alg: EdDSA }"), 1)
	os.WriteFile(e.path, cfg, 0o600)
	t.Setenv("OPS_KEK", testKEK)
	e.start()
	var doc struct {
		Algs []string `json:"id_token_signing_alg_values_supported"`
	}
	getJSON(t, e.issuer+"/.well-known/openid-configuration", &doc)
	if !slices.Equal(doc.Algs, []string{"ES256", "EdDSA"}) {
		t.Errorf("id_token_signing_alg_values_supported = %v, want [ES256 EdDSA]", doc.Algs)
	}
	var jwks struct {
		Keys []struct {
			Alg string `json:"alg"`
			D   string `json:"d"`
		} `json:"keys"`
	}
	getJSON(t, e.issuer+"/jwks", &jwks)
	if len(jwks.Keys) != 2 {
		t.Fatalf("JWKS has %d keys, want one ES256 and one EdDSA", len(jwks.Keys))
	}
	e.stop()

	// The keys commands need neither the WeChat nor the client secrets.
	os.Unsetenv("OPS_OA_SECRET")
	os.Unsetenv("OPS_CLIENT_SECRET")
	var out, errb bytes.Buffer
	if code := run([]string{"keys", "list", "--config", e.path}, &out, &errb); code != 0 {
		t.Fatalf("keys list: %d %s", code, errb.String())
	}
	if strings.Count(out.String(), " active ") != 2 || !strings.Contains(out.String(), "ES256") || !strings.Contains(out.String(), "EdDSA") {
		t.Errorf("keys list:\n%s", out.String())
	}
	out.Reset()
	if code := run([]string{"keys", "rotate", "--config", e.path}, &out, &errb); code != 0 || strings.Count(out.String(), "added signing key") != 2 {
		t.Fatalf("keys rotate: %d %s %s", code, out.String(), errb.String())
	}
	out.Reset()
	run([]string{"keys", "list", "--config", e.path}, &out, &errb)
	if strings.Count(out.String(), " next ") != 2 || strings.Count(out.String(), " active ") != 2 {
		t.Errorf("keys list after rotate, want 2 next and 2 active:\n%s", out.String())
	}
	// keys rekey: the configuration names the new key, the environment
	// variable given by --old-key-env the old one; the same keys come out.
	listed := out.String()
	newKEK := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0x5c}, 32))
	t.Setenv("OPS_OLD_KEK", testKEK)
	t.Setenv("OPS_KEK", newKEK)
	errb.Reset()
	if code := run([]string{"keys", "rekey", "--config", e.path}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "--old-key-env") {
		t.Fatalf("keys rekey without --old-key-env: %d %s", code, errb.String())
	}
	out.Reset()
	if code := run([]string{"keys", "list", "--config", e.path}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "another keys.encryption_key") {
		t.Fatalf("keys list with the new key before the rekey: %d %s", code, errb.String())
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"keys", "rekey", "--config", e.path, "--old-key-env", "OPS_OLD_KEK"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "sealed 4 signing keys") {
		t.Fatalf("keys rekey: %d %s %s", code, out.String(), errb.String())
	}
	if strings.Contains(out.String()+errb.String(), newKEK) || strings.Contains(out.String()+errb.String(), testKEK) {
		t.Fatal("keys rekey printed an encryption key")
	}
	out.Reset()
	if code := run([]string{"keys", "list", "--config", e.path}, &out, &errb); code != 0 || out.String() != listed {
		t.Fatalf("keys list after the rekey: %d\n%s\nwant the same keys as before:\n%s", code, out.String(), listed)
	}
	out.Reset()
	if code := run([]string{"keys", "rekey", "--config", e.path, "--old-key-env", "OPS_OLD_KEK"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "nothing to do") {
		t.Fatalf("a second keys rekey: %d %s %s", code, out.String(), errb.String())
	}
	// Without the encryption key the command says how to make one.
	os.Unsetenv("OPS_KEK")
	errb.Reset()
	if code := run([]string{"keys", "list", "--config", e.path}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "OPS_KEK") {
		t.Errorf("keys list without the encryption key: %d %s", code, errb.String())
	}
	noKEK := bytes.Replace(cfg, []byte(`keys: { encryption_key: "${OPS_KEK}", `), []byte(`keys: { `), 1)
	os.WriteFile(e.path, noKEK, 0o600)
	errb.Reset()
	if code := run([]string{"keys", "list", "--config", e.path}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "openssl rand -base64 32") {
		t.Errorf("keys list with no encryption_key: %d %s", code, errb.String())
	}
}

// TestServeUntilDoneDrains: on the stop signal, readiness is told first,
// requests keep being served for the drain delay, then the listener closes
// and a request in flight finishes within the timeout.
func TestServeUntilDoneDrains(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started <- struct{}{}
			<-release
		}
		io.WriteString(w, "done")
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	var told sync.WaitGroup
	told.Add(1)
	var logs syncBuf
	done := make(chan error, 1)
	go func() {
		done <- serveUntilDone(ctx, ln, h, newLogger(&logs, "info", "text"), drain{tell: told.Done, delay: 300 * time.Millisecond, timeout: 5 * time.Second})
	}()
	slow := make(chan string, 1)
	go func() {
		resp, err := http.Get(base + "/slow")
		if err != nil {
			slow <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		slow <- string(b)
	}()
	<-started
	cancel()
	told.Wait() // readiness was told
	// Still serving during the drain delay.
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	if resp, err := c.Get(base + "/fast"); err != nil {
		t.Fatalf("a request during the drain delay: %v", err)
	} else {
		resp.Body.Close()
	}
	// After the drain delay the listener closes: new connections are refused.
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := c.Get(base + "/fast")
		if err != nil {
			break
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("new connections are still accepted long after the drain delay")
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(release)
	if got := <-slow; got != "done" {
		t.Errorf("the request in flight got %q, want it finished", got)
	}
	if err := <-done; err != nil {
		t.Fatalf("serveUntilDone: %v", err)
	}
}
