package bridge

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"

	"github.com/wechat-oidc/wechat-oidc/config"
	"github.com/wechat-oidc/wechat-oidc/keys"
	"github.com/wechat-oidc/wechat-oidc/store/storetest"
	"github.com/wechat-oidc/wechat-oidc/wechat/simulator"
)

// replica is one bridge process's worth of server behind the balancer.
type replica struct {
	srv      *Server
	ts       *httptest.Server
	up       atomic.Bool  // the balancer sends it requests
	inflight atomic.Int64 // requests the balancer is waiting on
}

// cluster is n replicas on one real Redis, keys in the shared store, behind
// a round-robin balancer that, like a real one, skips replicas marked down
// (readiness) and retries another one when a connection is refused (the
// request was not sent), but answers 502 when a replica dies while
// answering.
type cluster struct {
	t        *testing.T
	cfg      *config.File
	kek      []byte
	replicas []atomic.Pointer[replica]
	turn     atomic.Int64
	front    *httptest.Server
	logs     *syncBuffer
}

func newCluster(t *testing.T, n int, sim *simulator.Simulator, simURL, redisURL string) *cluster {
	c := &cluster{t: t, replicas: make([]atomic.Pointer[replica], n), logs: &syncBuffer{}}
	c.kek = []byte("0123456789abcdef0123456789abcdef")
	c.front = httptest.NewServer(http.HandlerFunc(c.balance))
	t.Cleanup(c.front.Close)
	c.cfg = &config.File{
		Issuer:  c.front.URL,
		Subject: config.SubjectUnionID,
		WeChat: config.WeChatConfig{
			OfficialAccount: &config.WeChatAppConfig{AppID: testAppID, AppSecret: testAppSecret, Scope: config.ScopeUserInfo},
			OpenBaseURL:     simURL, APIBaseURL: simURL,
		},
		Clients: []config.ClientConfig{{ID: rpClientID, Secret: rpSecret, RedirectURIs: []string{rpRedirect}}},
		Store:   config.StoreConfig{Type: "redis", Redis: config.RedisConfig{URL: redisURL, Prefix: "cluster-" + randomID(6) + ":"}},
		Keys:    config.KeysConfig{EncryptionKey: "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="},
		// The replicas share one directory database, as they would share PostgreSQL.
		Directory: config.DirectoryConfig{Type: "sqlite", Path: filepath.Join(t.TempDir(), "people.db")},
		Access:    config.AccessConfig{Mode: config.AccessOpen},
		Limits:    config.LimitsConfig{TokenPerClient: config.RateConfig{Rate: 1000, Burst: 1000}, AuthorizePerIP: config.RateConfig{Rate: 1000, Burst: 1000}},
	}
	for i := range n {
		c.start(i)
	}
	return c
}

// start builds replica i as a fresh process would: its own Redis client,
// its own keyring loaded from the shared store.
func (c *cluster) start(i int) {
	c.t.Helper()
	opt, err := c.cfg.Resolve()
	if err != nil {
		c.t.Fatal(err)
	}
	if !opt.Keys.Shared {
		c.t.Fatal("the cluster's keys are not in the shared store")
	}
	st := openTestRedis(c.t, opt.Store.Redis.URL, opt.Store.Redis.Prefix)
	src, err := keys.NewStoreSource(st, opt.Keys.EncryptionKey, "")
	if err != nil {
		c.t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(c.logs, nil))
	kr, err := keys.NewKeyring(context.Background(), src, keys.Options{Algorithms: opt.Keys.Algorithms,
		PublishBeforeUse: opt.Keys.PublishBeforeUse, RetainAfterRetire: opt.Keys.RetainAfterRetire, Logger: logger})
	if err != nil {
		c.t.Fatal(err)
	}
	dir := testDirectory(c.t, opt)
	srv, err := New(opt, Deps{Store: st, Directory: dir, Keys: kr, Connector: newWeChatConnector(c.t, opt, dir, logger, nil), Logger: logger})
	if err != nil {
		c.t.Fatal(err)
	}
	r := &replica{srv: srv, ts: httptest.NewServer(srv)}
	c.t.Cleanup(r.ts.Close)
	r.up.Store(true)
	c.replicas[i].Store(r)
}

// kill cuts replica i off at once, as a crash would: its open connections
// are closed mid-request and its port refuses new ones. The balancer is not
// told; it finds out.
func (c *cluster) kill(i int) (inflight int64) {
	r := c.replicas[i].Load()
	inflight = r.inflight.Load()
	r.ts.Listener.Close()
	r.ts.CloseClientConnections()
	return inflight
}

// restart stops replica i gracefully (out of the balancer, in-flight
// requests finished) and starts a new process's worth in its place.
func (c *cluster) restart(i int) {
	c.t.Helper()
	old := c.replicas[i].Load()
	old.up.Store(false) // /readyz fails: the balancer stops sending
	old.srv.Drain()
	waitFor(c.t, "in-flight requests of the stopping replica", 10*time.Second, func() bool { return old.inflight.Load() == 0 })
	old.ts.Close()
	c.start(i)
}

func (c *cluster) balance(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	for range 2 * len(c.replicas) {
		rep := c.replicas[int(c.turn.Add(1))%len(c.replicas)].Load()
		if rep == nil || !rep.up.Load() {
			continue
		}
		out, _ := http.NewRequestWithContext(r.Context(), r.Method, rep.ts.URL+r.URL.RequestURI(), bytes.NewReader(body))
		out.Header = r.Header.Clone()
		rep.inflight.Add(1)
		resp, err := http.DefaultTransport.RoundTrip(out)
		rep.inflight.Add(-1)
		if errors.Is(err, syscall.ECONNREFUSED) {
			rep.up.Store(false) // passive health check: never sent, try the next
			continue
		}
		if err != nil {
			http.Error(w, "replica failed while answering", http.StatusBadGateway)
			return
		}
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
		resp.Body.Close()
		return
	}
	http.Error(w, "no replica up", http.StatusServiceUnavailable)
}

// TestThreeReplicasKillAndRollingRestart: three replicas on one real Redis,
// signing keys in Redis (sealed), behind a round-robin balancer, under a
// steady load of whole sign-ins. Killing one fails only the requests it
// was answering at that moment; restarting every replica one after the
// other (a rolling upgrade) fails none, and afterwards the SSO session, the
// refresh token and the signing key from before are still good, and an ID
// token issued before verifies with a relying party that fetches the JWKS
// anew.
func TestThreeReplicasKillAndRollingRestart(t *testing.T) {
	redis := storetest.StartRedisServer(t)
	sim := simulator.New(simulator.Config{
		Apps:      []simulator.App{{ID: testAppID, Secret: testAppSecret, Kind: simulator.OfficialAccount, Bound: true}},
		AllowPort: true,
	})
	simSrv := httptest.NewServer(sim)
	t.Cleanup(simSrv.Close)
	c := newCluster(t, 3, sim, simSrv.URL, redis.URL())
	kid := c.replicas[0].Load().srv.keys.KeyID()
	for i := range 3 {
		if got := c.replicas[i].Load().srv.keys.KeyID(); got != kid {
			t.Fatalf("replica %d signs with %s, replica 0 with %s", i, got, kid)
		}
	}
	h := &harness{t: t, sim: sim, cfg: c.cfg, logs: c.logs}
	r := h.rp(rpClientID, rpSecret, rpRedirect, gooidc.ScopeOpenID, "profile", "offline_access")
	sso := h.browser()
	before := h.login(r, sso, "alice")

	type attempt struct {
		started time.Time
		outcome string
	}
	var mu sync.Mutex
	var attempts []attempt
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				o := attemptLogin(h, r, "bob")
				mu.Lock()
				attempts = append(attempts, attempt{start, o})
				mu.Unlock()
			}
		}()
	}
	count := func(from time.Time) (ok, failed int, failures []string) {
		mu.Lock()
		defer mu.Unlock()
		for _, a := range attempts {
			if a.started.Before(from) {
				continue
			}
			if a.outcome == attemptOK {
				ok++
			} else {
				failed++
				failures = append(failures, a.outcome)
			}
		}
		return
	}
	waitFor(t, "load before the kill", 20*time.Second, func() bool { ok, _, _ := count(time.Time{}); return ok >= 6 })

	killedAt := time.Now()
	inflight := c.kill(1)
	waitFor(t, "sign-ins after the kill", 20*time.Second, func() bool { ok, _, _ := count(killedAt); return ok >= 12 })
	_, failedAround, failures := count(time.Time{})
	if int64(failedAround) > inflight {
		t.Errorf("killing a replica with %d requests in flight failed %d sign-ins: %v", inflight, failedAround, failures)
	}
	if _, failedAfter, failures := count(killedAt.Add(50 * time.Millisecond)); failedAfter > 0 {
		t.Errorf("sign-ins started after the kill failed: %v", failures)
	}

	rollingFrom := time.Now()
	for i := range 3 {
		c.restart(i)
		waitFor(t, "sign-ins on the restarted cluster", 20*time.Second, func() bool { ok, _, _ := count(time.Now().Add(-time.Second)); return ok >= 3 })
	}
	close(stop)
	wg.Wait()
	if ok, failed, failures := count(rollingFrom); failed > 0 || ok == 0 {
		t.Errorf("during the rolling restart: %d ok, %d failed: %v", ok, failed, failures)
	}

	for i := range 3 {
		if got := c.replicas[i].Load().srv.keys.KeyID(); got != kid {
			t.Errorf("after the restarts replica %d signs with %s, before with %s", i, got, kid)
		}
	}
	// A relying party that starts now fetches the JWKS from the new replicas.
	fresh := h.rp(rpClientID, rpSecret, rpRedirect, gooidc.ScopeOpenID)
	if _, err := fresh.verifier.Verify(fresh.ctx, before.token.Extra("id_token").(string)); err != nil {
		t.Errorf("an ID token issued before the restarts: %v", err)
	}
	for range 3 { // each replica in turn
		if _, q := h.authorize(sso, h.authorizeURL(map[string]string{"prompt": "none"})); q.Get("code") == "" {
			t.Fatalf("the SSO session from before the restarts: %v", q)
		}
	}
	old := *before.token
	old.Expiry = time.Now().Add(-time.Minute)
	refreshed, err := r.conf.TokenSource(r.ctx, &old).Token()
	if err != nil {
		t.Fatalf("the refresh token from before the restarts: %v", err)
	}
	if _, err := r.verifier.Verify(r.ctx, refreshed.Extra("id_token").(string)); err != nil {
		t.Fatal(err)
	}
	ok, _, _ := count(time.Time{})
	t.Logf("%d sign-ins; %d requests in flight on the killed replica, %d sign-ins failed with it", ok, inflight, failedAround)
}
