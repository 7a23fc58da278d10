package bridge

import (
	"context"
	"fmt"
	"github.com/wechat-oidc/wechat-oidc/config"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/wechat-oidc/wechat-oidc/keys"
	"github.com/wechat-oidc/wechat-oidc/store"
	"github.com/wechat-oidc/wechat-oidc/store/storetest"
	"github.com/wechat-oidc/wechat-oidc/wechat/simulator"
)

// TestTwoReplicasBehindARoundRobinBalancer runs two wechat-oidc processes'
// worth of servers on one real Redis and one key directory, behind a
// balancer that alternates every request between them: every step of a
// login (authorize, WeChat callback, token, userinfo, refresh, logout) lands
// on the other replica than the one before.
func TestTwoReplicasBehindARoundRobinBalancer(t *testing.T) {
	redisAddr := storetest.StartRedis(t)
	sim := simulator.New(simulator.Config{
		Apps:      []simulator.App{{ID: testAppID, Secret: testAppSecret, Kind: simulator.OfficialAccount, Bound: true}},
		AllowPort: true,
	})
	simSrv := httptest.NewServer(sim)
	t.Cleanup(simSrv.Close)

	var replicas [2]atomic.Pointer[Server]
	var turn atomic.Int64
	var hits [2]atomic.Int64
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := turn.Add(1) % 2
		hits[i].Add(1)
		replicas[i].Load().ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)

	keyDir := t.TempDir()
	dbPath := filepath.Join(t.TempDir(), "directory.db") // both replicas share it, as they would share PostgreSQL
	prefix := "replicas-" + randomID(6) + ":"
	var first *config.File
	for i := range replicas {
		cfg := &config.File{
			Issuer:  front.URL,
			Subject: config.SubjectUnionID,
			WeChat: config.WeChatConfig{
				OfficialAccount: &config.WeChatAppConfig{AppID: testAppID, AppSecret: testAppSecret, Scope: config.ScopeUserInfo},
				OpenBaseURL:     simSrv.URL, APIBaseURL: simSrv.URL,
			},
			Clients:   []config.ClientConfig{{ID: rpClientID, Secret: rpSecret, RedirectURIs: []string{rpRedirect}}},
			Store:     config.StoreConfig{Type: "redis", Redis: config.RedisConfig{URL: "redis://" + redisAddr, Prefix: prefix}},
			Keys:      config.KeysConfig{Dir: keyDir},
			Directory: config.DirectoryConfig{Type: "sqlite", Path: dbPath},
			Access:    config.AccessConfig{Mode: config.AccessOpen},
		}
		opt, err := cfg.Resolve()
		if err != nil {
			t.Fatal(err)
		}
		st, err := store.NewRedis(context.Background(), store.RedisOptions{URL: "redis://" + redisAddr, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		ks, err := keys.LoadOrCreate(keyDir) // the first creates the key, the second loads it
		if err != nil {
			t.Fatal(err)
		}
		dir := testDirectory(t, opt)
		srv, err := New(opt, Deps{Store: st, Directory: dir, Keys: ks, Connector: newWeChatConnector(t, opt, dir, slog.New(slog.NewTextHandler(io.Discard, nil)), nil), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		replicas[i].Store(srv)
		if i == 0 {
			first = cfg
		}
	}
	if replicas[0].Load().keys.KeyID() != replicas[1].Load().keys.KeyID() {
		t.Fatal("the replicas sign with different keys")
	}

	h := &harness{t: t, sim: sim, cfg: first, logs: &syncBuffer{}}
	r := h.rp(rpClientID, rpSecret, rpRedirect, gooidc.ScopeOpenID, "profile", "offline_access")
	b := h.browser()
	res := h.login(r, b, "alice")
	if res.idToken.Subject != sim.UnionID("alice") {
		t.Fatalf("sub = %q", res.idToken.Subject)
	}
	for i := 0; i < 4; i++ { // userinfo on both replicas
		if _, err := r.provider.UserInfo(r.ctx, oauth2.StaticTokenSource(res.token)); err != nil {
			t.Fatalf("userinfo %d: %v", i, err)
		}
	}
	// The SSO session is shared: prompt=none works whichever replica answers.
	for i := 0; i < 2; i++ {
		if _, q := h.authorize(b, h.authorizeURL(map[string]string{"prompt": "none"})); q.Get("code") == "" {
			t.Fatalf("prompt=none on replica turn %d: %v", i, q)
		}
	}
	// Refresh rotation and reuse detection hold across replicas.
	expired := *res.token
	expired.Expiry = time.Now().Add(-time.Minute)
	fresh, err := r.conf.TokenSource(r.ctx, &expired).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if _, err := r.verifier.Verify(r.ctx, fresh.Extra("id_token").(string)); err != nil {
		t.Fatalf("refreshed ID token: %v", err)
	}
	// A code is single-use across replicas: replaying the redeemed one fails on either.
	code := h.codeFor("bob", nil)
	for i := 0; i < 2; i++ {
		status, body, _ := h.tokenRequest(map[string][]string{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {rpRedirect}}, rpClientID, rpSecret)
		if want := []int{200, 400}[i]; status != want {
			t.Fatalf("redemption %d: %d %v", i+1, status, body)
		}
	}
	if hits[0].Load() < 5 || hits[1].Load() < 5 {
		t.Fatalf("the balancer did not spread the requests: %d / %d", hits[0].Load(), hits[1].Load())
	}
}

// TestPendingLoginCapSharedByReplicas: the caps on pending sign-ins are
// counted in the store, so two replicas on one Redis enforce one cap (not
// one each), also under concurrent requests (store.Update serialises the
// counts).
func TestPendingLoginCapSharedByReplicas(t *testing.T) {
	redisAddr := storetest.StartRedis(t)
	var replicas [2]atomic.Pointer[Server]
	var turn atomic.Int64
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		replicas[turn.Add(1)%2].Load().ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	prefix := "caps-" + randomID(6) + ":"
	const perIP, total = 3, 20
	var first *config.File
	for i := range replicas {
		cfg := &config.File{
			Issuer:         front.URL,
			WeChat:         config.WeChatConfig{OfficialAccount: &config.WeChatAppConfig{AppID: testAppID, AppSecret: testAppSecret, Scope: config.ScopeUserInfo}, OpenBaseURL: "https://wechat.invalid"},
			Clients:        []config.ClientConfig{{ID: rpClientID, Secret: rpSecret, RedirectURIs: []string{rpRedirect}}},
			Store:          config.StoreConfig{Type: "redis", Redis: config.RedisConfig{URL: "redis://" + redisAddr, Prefix: prefix}},
			Keys:           config.KeysConfig{Dir: "unused"},
			Directory:      config.DirectoryConfig{Type: "sqlite", Path: ":memory:"},
			Access:         config.AccessConfig{Mode: config.AccessOpen},
			Login:          config.LoginConfig{MaxPendingPerIP: perIP, MaxPending: total},
			TrustedProxies: []string{"127.0.0.0/8"},
			Limits:         config.LimitsConfig{AuthorizePerIP: config.RateConfig{Rate: 1000, Burst: 1000}},
		}
		opt, err := cfg.Resolve()
		if err != nil {
			t.Fatal(err)
		}
		st := openTestRedis(t, opt.Store.Redis.URL, prefix)
		ks, err := keys.NewEphemeral()
		if err != nil {
			t.Fatal(err)
		}
		discard := slog.New(slog.NewTextHandler(io.Discard, nil))
		dir := testDirectory(t, opt)
		srv, err := New(opt, Deps{Store: st, Directory: dir, Keys: ks, Connector: newWeChatConnector(t, opt, dir, discard, nil), Logger: discard})
		if err != nil {
			t.Fatal(err)
		}
		replicas[i].Store(srv)
		first = cfg
	}
	h := &harness{t: t, cfg: first, logs: &syncBuffer{}}
	start := func(ip string) int {
		resp, err := noFollow(h.browserFrom(uaWeChat, ip)).Get(h.authorizeURL(nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusFound && !strings.HasPrefix(resp.Header.Get("Location"), "https://wechat.invalid/") {
			return -1 // an error sent to the client
		}
		return resp.StatusCode
	}
	for i := range perIP {
		if got := start("198.51.100.7"); got != http.StatusFound {
			t.Fatalf("sign-in %d from one address (replica %d): %d", i+1, turn.Load()%2, got)
		}
	}
	if got := start("198.51.100.7"); got != http.StatusTooManyRequests {
		t.Fatalf("the 4th from one address, over two replicas: %d", got)
	}
	// Concurrently from many addresses: the total holds exactly.
	var admitted, refused, other atomic.Int64
	var wg sync.WaitGroup
	for n := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 2 {
				switch start(fmt.Sprintf("203.0.113.%d", n+1)) {
				case http.StatusFound:
					admitted.Add(1)
				case http.StatusTooManyRequests:
					refused.Add(1)
				default:
					other.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if admitted.Load() > total-perIP || admitted.Load()+refused.Load()+other.Load() != 60 {
		t.Fatalf("admitted %d (room for %d), refused %d, other %d", admitted.Load(), total-perIP, refused.Load(), other.Load())
	}
	t.Logf("60 concurrent sign-ins over two replicas: %d admitted (room for %d), %d refused with 429, %d temporarily unavailable", admitted.Load(), total-perIP, refused.Load(), other.Load())
}
