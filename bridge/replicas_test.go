package bridge

import (
	"context"
	"github.com/wechat-oidc/wechat-oidc/config"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
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
		srv, err := New(opt, Deps{Store: st, Directory: testDirectory(t, opt), Keys: ks, Connector: newWeChatConnector(t, opt, st, slog.New(slog.NewTextHandler(io.Discard, nil)), nil), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
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
