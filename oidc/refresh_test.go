package oidc

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wechat-oidc/wechat-oidc/keys"
)

// ttlStorage is an in-memory Storage that honours TTLs on the provider's
// clock, so tests can move time. With ignoreTTL it keeps everything forever,
// which proves that the provider enforces lifetimes itself and does not
// merely rely on the store dropping entries.
type ttlStorage struct {
	mu        sync.Mutex
	now       func() time.Time
	ignoreTTL bool
	m         map[string]ttlEntry
	gets      map[string]int // Get calls by key prefix (up to the last ':')
}

type ttlEntry struct {
	value   []byte
	expires time.Time
}

func newTTLStorage(now func() time.Time) *ttlStorage {
	return &ttlStorage{now: now, m: map[string]ttlEntry{}, gets: map[string]int{}}
}

func (s *ttlStorage) Put(_ context.Context, key string, value []byte, ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("ttl must be > 0, got %v for %s", ttl, key)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = ttlEntry{value: slices.Clone(value), expires: s.now().Add(ttl)}
	return nil
}

func (s *ttlStorage) lookup(key string) []byte {
	e, ok := s.m[key]
	if !ok {
		return nil
	}
	if !s.ignoreTTL && !s.now().Before(e.expires) {
		delete(s.m, key)
		return nil
	}
	return slices.Clone(e.value)
}

func (s *ttlStorage) Get(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gets[key[:strings.LastIndexByte(key, ':')+1]]++
	return s.lookup(key), nil
}

func (s *ttlStorage) Take(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.lookup(key)
	delete(s.m, key)
	return v, nil
}

func (s *ttlStorage) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
	return nil
}

func (s *ttlStorage) Update(_ context.Context, key string, ttl time.Duration, fn func(old []byte) ([]byte, error)) error {
	if ttl <= 0 {
		return fmt.Errorf("ttl must be > 0, got %v for %s", ttl, key)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := fn(s.lookup(key))
	if err != nil {
		return err
	}
	if v == nil {
		delete(s.m, key)
		return nil
	}
	s.m[key] = ttlEntry{value: slices.Clone(v), expires: s.now().Add(ttl)}
	return nil
}

func (s *ttlStorage) getCount(prefix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gets[prefix]
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var (
	testKeysOnce sync.Once
	testKeys     *keys.Set
	testKeysErr  error
)

// testSigner is one ephemeral RSA key for the whole test binary: generating
// one per test would dominate the run time under -race.
func testSigner(t *testing.T) *keys.Set {
	t.Helper()
	testKeysOnce.Do(func() { testKeys, testKeysErr = keys.NewEphemeral() })
	if testKeysErr != nil {
		t.Fatal(testKeysErr)
	}
	return testKeys
}

const (
	appSecret   = "app-secret-app-secret"
	otherSecret = "other-secret-other-secret"
	appRedirect = "https://app.example.com/cb"
)

type refreshHarness struct {
	t     *testing.T
	p     *Provider
	store *ttlStorage
	clock *fakeClock
}

func newRefreshHarness(t *testing.T) *refreshHarness {
	t.Helper()
	clock := &fakeClock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	store := newTTLStorage(clock.Now)
	app := NewClient("app", appSecret, []string{appRedirect})
	other := NewClient("other", otherSecret, []string{"https://other.example.com/cb"})
	always := NewClient("always", appSecret, []string{appRedirect})
	always.RefreshTokens = true
	spa := &Client{ID: "spa", RedirectURIs: []string{"https://spa.example.com/cb"}, AuthMethods: []string{AuthMethodNone}}
	p := &Provider{
		Issuer:  "https://sso.example.com",
		Clients: NewRegistry(app, other, always, spa),
		Storage: store,
		Signer:  testSigner(t),
		ScopeClaims: map[string][]string{
			"profile":          {"name", "preferred_username"},
			"email":            {"email"},
			ScopeOfflineAccess: nil,
		},
		CodeTTL:        time.Minute,
		AccessTokenTTL: time.Hour,
		IDTokenTTL:     time.Hour,
		Now:            clock.Now,
	}
	return &refreshHarness{t: t, p: p, store: store, clock: clock}
}

var testClaims = map[string]any{
	"name":               "张三",
	"preferred_username": "zhangsan",
	"email":              "zs@example.com",
	"picture":            "https://img.example.com/zs.png", // no scope releases it
}

// login issues a code to clientID for scopes, as the bridge does after WeChat.
func (h *refreshHarness) login(clientID, scopes, nonce string) string {
	h.t.Helper()
	code, err := h.p.IssueCode(context.Background(), &AuthRequest{
		ClientID: clientID, RedirectURI: h.p.Clients.Lookup(clientID).RedirectURIs[0],
		Scopes: strings.Fields(scopes), Nonce: nonce,
	}, Identity{
		Subject: "o_user_1", AuthTime: h.clock.Now().Add(-time.Minute), SessionID: "sid-1", Claims: testClaims,
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return code
}

// post sends a client_secret_post form to handler.
func (h *refreshHarness) post(handler http.HandlerFunc, clientID, secret string, form url.Values) *httptest.ResponseRecorder {
	form = cloneValues(form)
	form.Set("client_id", clientID)
	if secret != "" {
		form.Set("client_secret", secret)
	}
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	w := httptest.NewRecorder()
	handler(w, r)
	return w
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

func secretOf(clientID string) string {
	switch clientID {
	case "other":
		return otherSecret
	case "spa":
		return ""
	}
	return appSecret
}

// token posts to the token endpoint and decodes the answer: a TokenResponse
// on 200, otherwise the error code.
func (h *refreshHarness) token(clientID string, form url.Values) (*TokenResponse, string) {
	h.t.Helper()
	w := h.post(h.p.HandleToken, clientID, secretOf(clientID), form)
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		h.t.Fatalf("token response Cache-Control = %q, want no-store", cc)
	}
	if w.Code != http.StatusOK {
		var e ErrorResponse
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" {
			h.t.Fatalf("token endpoint: status %d, body %s", w.Code, w.Body)
		}
		return nil, e.Error
	}
	var tr TokenResponse
	if err := json.Unmarshal(w.Body.Bytes(), &tr); err != nil {
		h.t.Fatal(err)
	}
	return &tr, ""
}

func (h *refreshHarness) exchange(clientID, code string) *TokenResponse {
	h.t.Helper()
	tr, e := h.token(clientID, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {h.p.Clients.Lookup(clientID).RedirectURIs[0]}})
	if e != "" {
		h.t.Fatalf("code exchange failed: %s", e)
	}
	return tr
}

func (h *refreshHarness) refresh(clientID, refreshToken, scope string) (*TokenResponse, string) {
	h.t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}
	if scope != "" {
		form.Set("scope", scope)
	}
	return h.token(clientID, form)
}

func (h *refreshHarness) mustRefresh(clientID, refreshToken string) *TokenResponse {
	h.t.Helper()
	tr, e := h.refresh(clientID, refreshToken, "")
	if e != "" {
		h.t.Fatalf("refresh failed: %s", e)
	}
	if tr.RefreshToken == "" || tr.RefreshToken == refreshToken {
		h.t.Fatalf("refresh did not rotate the refresh token: %q", tr.RefreshToken)
	}
	return tr
}

func (h *refreshHarness) wantRefreshError(clientID, refreshToken, scope, want string) {
	h.t.Helper()
	tr, e := h.refresh(clientID, refreshToken, scope)
	if e != want {
		h.t.Fatalf("refresh: got error %q (response %+v), want %q", e, tr, want)
	}
}

// userinfo returns the status and decoded body of a userinfo request.
func (h *refreshHarness) userinfo(accessToken string) (int, map[string]any) {
	h.t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/userinfo", nil)
	r.Header.Set("Authorization", "Bearer "+accessToken)
	w := httptest.NewRecorder()
	h.p.HandleUserinfo(w, r)
	var body map[string]any
	_ = json.Unmarshal(w.Body.Bytes(), &body)
	return w.Code, body
}

func (h *refreshHarness) wantUserinfo(accessToken string, status int) map[string]any {
	h.t.Helper()
	code, body := h.userinfo(accessToken)
	if code != status {
		h.t.Fatalf("userinfo status = %d (%v), want %d", code, body, status)
	}
	return body
}

func (h *refreshHarness) introspect(clientID, token, hint string) (*IntrospectionResponse, string) {
	h.t.Helper()
	form := url.Values{"token": {token}}
	if hint != "" {
		form.Set("token_type_hint", hint)
	}
	w := h.post(h.p.HandleIntrospect, clientID, secretOf(clientID), form)
	if w.Code != http.StatusOK {
		h.t.Fatalf("introspect: status %d, body %s", w.Code, w.Body)
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		h.t.Fatalf("introspect Content-Type = %q", ct)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		h.t.Fatalf("introspect Cache-Control = %q", cc)
	}
	var ir IntrospectionResponse
	if err := json.Unmarshal(w.Body.Bytes(), &ir); err != nil {
		h.t.Fatal(err)
	}
	return &ir, strings.TrimSpace(w.Body.String())
}

func (h *refreshHarness) revoke(clientID, token, hint string) *httptest.ResponseRecorder {
	h.t.Helper()
	form := url.Values{"token": {token}}
	if hint != "" {
		form.Set("token_type_hint", hint)
	}
	return h.post(h.p.HandleRevoke, clientID, secretOf(clientID), form)
}

// idTokenClaims verifies an ID token with the provider's keys and decodes it.
func (h *refreshHarness) idTokenClaims(idToken string) map[string]any {
	h.t.Helper()
	payload, err := h.p.Signer.Verify(idToken)
	if err != nil {
		h.t.Fatalf("ID token does not verify: %v", err)
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		h.t.Fatal(err)
	}
	return c
}

const offlineScopes = "openid profile offline_access"

func TestRefreshTokenIssuance(t *testing.T) {
	h := newRefreshHarness(t)
	cases := []struct {
		name, client, scopes string
		want                 bool
	}{
		{"no offline_access: no refresh token", "app", "openid profile", false},
		{"offline_access granted on request (no consent rule)", "app", offlineScopes, true},
		{"client configured with RefreshTokens", "always", "openid", true},
		{"public client with offline_access (rotation makes it safe, RFC 9700 §4.14.2)", "spa", offlineScopes, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h.t = t
			tr := h.exchange(tc.client, h.login(tc.client, tc.scopes, ""))
			if got := tr.RefreshToken != ""; got != tc.want {
				t.Fatalf("refresh token issued = %v, want %v", got, tc.want)
			}
			if tc.want {
				next := h.mustRefresh(tc.client, tr.RefreshToken)
				h.wantUserinfo(next.AccessToken, http.StatusOK)
			}
		})
	}
	t.Run("offline_access not configured: not honoured", func(t *testing.T) {
		h.t = t
		delete(h.p.ScopeClaims, ScopeOfflineAccess)
		defer func() { h.p.ScopeClaims[ScopeOfflineAccess] = nil }()
		tr := h.exchange("app", h.login("app", offlineScopes, ""))
		if tr.RefreshToken != "" {
			t.Fatal("a refresh token was issued for an unsupported offline_access scope")
		}
	})
	t.Run("refresh token stored only as a hash", func(t *testing.T) {
		h.t = t
		tr := h.exchange("app", h.login("app", offlineScopes, ""))
		h.store.mu.Lock()
		defer h.store.mu.Unlock()
		for k, e := range h.store.m {
			if strings.Contains(k, tr.RefreshToken) || strings.Contains(string(e.value), tr.RefreshToken) {
				t.Fatalf("the refresh token itself is in storage under %q", k)
			}
		}
		if _, ok := h.store.m[keyRefresh+HashToken(tr.RefreshToken)]; !ok {
			t.Fatal("no record under oidc:rt:<hash>")
		}
	})
}

func TestRefreshKeepsSubAndClaims(t *testing.T) {
	h := newRefreshHarness(t)
	first := h.exchange("app", h.login("app", offlineScopes, "n-0S6_WzA2Mj"))
	c1 := h.idTokenClaims(first.IDToken)
	if c1["nonce"] != "n-0S6_WzA2Mj" {
		t.Fatalf("original ID token nonce = %v", c1["nonce"])
	}
	h.clock.Advance(50 * time.Minute)
	second := h.mustRefresh("app", first.RefreshToken)
	if second.TokenType != "Bearer" || second.ExpiresIn != 3600 || second.AccessToken == first.AccessToken {
		t.Fatalf("refresh response: %+v", second)
	}
	if second.Scope != "openid profile offline_access" {
		t.Fatalf("scope = %q, want the granted scope", second.Scope)
	}
	c2 := h.idTokenClaims(second.IDToken)
	// OpenID Connect Core 1.0 §12.2: same iss, sub, aud, azp, auth_time (and
	// here sid and released claims); new iat and exp; no nonce.
	for _, k := range []string{"iss", "sub", "aud", "azp", "auth_time", "sid", "name", "preferred_username"} {
		if c2[k] == nil || c2[k] != c1[k] {
			t.Errorf("claim %s: refreshed %v, original %v", k, c2[k], c1[k])
		}
	}
	if c2["sub"] != "o_user_1" || c2["sid"] != "sid-1" || c2["name"] != "张三" {
		t.Fatalf("refreshed ID token lost the login's identity: %v", c2)
	}
	now := h.clock.Now().Unix()
	if c2["iat"] != float64(now) || c2["exp"] != float64(now+3600) {
		t.Errorf("iat/exp = %v/%v, want %d/%d", c2["iat"], c2["exp"], now, now+3600)
	}
	if _, ok := c2["nonce"]; ok {
		t.Error("a refreshed ID token must not carry the nonce")
	}
	if c2["at_hash"] != leftHalfHash(second.AccessToken) {
		t.Errorf("at_hash %v is not that of the new access token", c2["at_hash"])
	}
	for _, k := range []string{"email", "picture"} {
		if _, ok := c2[k]; ok {
			t.Errorf("claim %s was not granted but is in the refreshed ID token", k)
		}
	}
	info := h.wantUserinfo(second.AccessToken, http.StatusOK)
	if info["sub"] != "o_user_1" || info["name"] != "张三" || info["preferred_username"] != "zhangsan" || info["email"] != nil {
		t.Fatalf("userinfo with the refreshed access token: %v", info)
	}
}

func TestCrossClientRefresh(t *testing.T) {
	h := newRefreshHarness(t)
	first := h.exchange("app", h.login("app", offlineScopes, ""))
	// Client "other" got hold of app's refresh token.
	h.wantRefreshError("other", first.RefreshToken, "", CodeInvalidGrant)
	// The attempt neither used up nor rotated app's token: used long after
	// (past the reuse grace) it still works, so it was never marked used.
	h.clock.Advance(time.Hour)
	next := h.mustRefresh("app", first.RefreshToken)
	h.wantUserinfo(next.AccessToken, http.StatusOK)
	// And a public client cannot use it either.
	h.wantRefreshError("spa", next.RefreshToken, "", CodeInvalidGrant)
	h.mustRefresh("app", next.RefreshToken)
}

func TestRefreshScopeCannotWiden(t *testing.T) {
	h := newRefreshHarness(t)
	first := h.exchange("app", h.login("app", offlineScopes, ""))
	// email is a supported scope, but it was not granted at sign-in.
	h.wantRefreshError("app", first.RefreshToken, "openid profile email", CodeInvalidScope)
	h.wantRefreshError("app", first.RefreshToken, "openid admin", CodeInvalidScope)

	// A refused request does not use up the token: a minute later (past the
	// reuse grace) it still works, and narrowing is allowed.
	h.clock.Advance(time.Minute)
	narrow, e := h.refresh("app", first.RefreshToken, "openid offline_access")
	if e != "" {
		t.Fatalf("narrowing refused: %s", e)
	}
	if narrow.Scope != "openid offline_access" {
		t.Fatalf("narrowed scope = %q", narrow.Scope)
	}
	info := h.wantUserinfo(narrow.AccessToken, http.StatusOK)
	if info["name"] != nil {
		t.Fatalf("a token narrowed to openid releases profile claims: %v", info)
	}
	if c := h.idTokenClaims(narrow.IDToken); c["name"] != nil || c["sub"] != "o_user_1" {
		t.Fatalf("narrowed ID token: %v", c)
	}
	// RFC 6749 §6: the new refresh token keeps the original scope.
	full := h.mustRefresh("app", narrow.RefreshToken)
	if full.Scope != offlineScopes {
		t.Fatalf("scope after narrowing then refreshing = %q, want %q", full.Scope, offlineScopes)
	}
	h.wantRefreshError("app", full.RefreshToken, "openid profile offline_access email", CodeInvalidScope)
}

func TestRefreshIdleAndAbsoluteExpiry(t *testing.T) {
	for _, ignoreTTL := range []bool{false, true} {
		name := "store honours TTL"
		if ignoreTTL {
			name = "store keeps everything: provider enforces lifetimes"
		}
		t.Run(name, func(t *testing.T) {
			t.Run("idle", func(t *testing.T) {
				h := newRefreshHarness(t)
				h.store.ignoreTTL = ignoreTTL
				first := h.exchange("app", h.login("app", offlineScopes, ""))
				h.clock.Advance(DefaultRefreshTokenIdleTTL - time.Second)
				second := h.mustRefresh("app", first.RefreshToken)
				h.clock.Advance(DefaultRefreshTokenIdleTTL)
				h.wantRefreshError("app", second.RefreshToken, "", CodeInvalidGrant)
				if ir, _ := h.introspect("app", second.RefreshToken, ""); ir.Active {
					t.Fatal("an idle-expired refresh token is active")
				}
			})
			t.Run("configured idle", func(t *testing.T) {
				h := newRefreshHarness(t)
				h.store.ignoreTTL = ignoreTTL
				h.p.RefreshTokenIdleTTL = time.Hour
				first := h.exchange("app", h.login("app", offlineScopes, ""))
				h.clock.Advance(time.Hour)
				h.wantRefreshError("app", first.RefreshToken, "", CodeInvalidGrant)
			})
			t.Run("absolute", func(t *testing.T) {
				h := newRefreshHarness(t)
				h.store.ignoreTTL = ignoreTTL
				start := h.clock.Now()
				tr := h.exchange("app", h.login("app", offlineScopes, ""))
				// Refreshing every 6 days never hits the 7-day idle limit ...
				for range 4 {
					h.clock.Advance(6 * 24 * time.Hour)
					tr = h.mustRefresh("app", tr.RefreshToken)
				}
				h.clock.Advance(5 * 24 * time.Hour) // day 29
				tr = h.mustRefresh("app", tr.RefreshToken)
				ir, _ := h.introspect("app", tr.RefreshToken, TokenTypeHintRefreshToken)
				if want := start.Add(DefaultRefreshTokenAbsoluteTTL).Unix(); !ir.Active || ir.ExpiresAt != want {
					t.Fatalf("refresh token at day 29: active %v exp %d, want exp %d (the family's absolute expiry)", ir.Active, ir.ExpiresAt, want)
				}
				// ... but the family ends 30 days after the login.
				h.clock.Advance(24*time.Hour + time.Second)
				h.wantRefreshError("app", tr.RefreshToken, "", CodeInvalidGrant)
			})
		})
	}
}

func TestIntrospectionByAnotherClientIsInactive(t *testing.T) {
	h := newRefreshHarness(t)
	tr := h.exchange("app", h.login("app", offlineScopes, ""))
	for _, tok := range []struct{ name, token, hint string }{
		{"access token", tr.AccessToken, ""},
		{"access token, refresh hint", tr.AccessToken, TokenTypeHintRefreshToken},
		{"refresh token", tr.RefreshToken, TokenTypeHintRefreshToken},
		{"refresh token, no hint", tr.RefreshToken, ""},
	} {
		t.Run(tok.name, func(t *testing.T) {
			h.t = t
			// Client B learns nothing about client A's token. (A public
			// client cannot introspect at all: TestIntrospectionByPublicClientIsRefused.)
			for _, caller := range []string{"other"} {
				if _, body := h.introspect(caller, tok.token, tok.hint); body != `{"active":false}` {
					t.Fatalf("introspection by %s: %s, want {\"active\":false}", caller, body)
				}
			}
			// The owner sees it active.
			if ir, _ := h.introspect("app", tok.token, tok.hint); !ir.Active {
				t.Fatal("the owning client sees its own token inactive")
			}
		})
	}
	h.t = t

	at, _ := h.introspect("app", tr.AccessToken, TokenTypeHintAccessToken)
	now := h.clock.Now().Unix()
	want := IntrospectionResponse{
		Active: true, Scope: offlineScopes, ClientID: "app", Username: "zhangsan", TokenType: "Bearer",
		ExpiresAt: now + 3600, IssuedAt: now, Subject: "o_user_1", Audience: "app", Issuer: "https://sso.example.com",
	}
	if *at != want {
		t.Fatalf("access token introspection:\n got %+v\nwant %+v", *at, want)
	}
	rt, _ := h.introspect("app", tr.RefreshToken, "")
	want.TokenType, want.ExpiresAt = "refresh_token", now+int64(DefaultRefreshTokenIdleTTL/time.Second)
	if *rt != want {
		t.Fatalf("refresh token introspection:\n got %+v\nwant %+v", *rt, want)
	}

	// Unknown, expired and rotated tokens are inactive too.
	if _, body := h.introspect("app", NewToken(), ""); body != `{"active":false}` {
		t.Fatalf("unknown token: %s", body)
	}
	next := h.mustRefresh("app", tr.RefreshToken)
	if ir, _ := h.introspect("app", tr.RefreshToken, ""); ir.Active {
		t.Fatal("a rotated refresh token is active")
	}
	h.clock.Advance(time.Hour)
	if ir, _ := h.introspect("app", next.AccessToken, ""); ir.Active {
		t.Fatal("an expired access token is active")
	}

	// Client authentication is required (RFC 7662 §2.1).
	w := h.post(h.p.HandleIntrospect, "app", "wrong-secret", url.Values{"token": {next.AccessToken}})
	if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), CodeInvalidClient) {
		t.Fatalf("bad client credentials: %d %s", w.Code, w.Body)
	}
	w = h.post(h.p.HandleIntrospect, "app", appSecret, url.Values{})
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), CodeInvalidRequest) {
		t.Fatalf("missing token: %d %s", w.Code, w.Body)
	}
}

func TestRevokeRefreshTokenRevokesFamily(t *testing.T) {
	for _, hint := range []string{"", TokenTypeHintRefreshToken, TokenTypeHintAccessToken, "id_token"} {
		t.Run("hint="+hint, func(t *testing.T) {
			h := newRefreshHarness(t)
			first := h.exchange("app", h.login("app", offlineScopes, ""))
			second := h.mustRefresh("app", first.RefreshToken)
			w := h.revoke("app", second.RefreshToken, hint)
			if w.Code != http.StatusOK || w.Header().Get("Cache-Control") != "no-store" {
				t.Fatalf("revoke: %d %v", w.Code, w.Header())
			}
			h.wantRefreshError("app", second.RefreshToken, "", CodeInvalidGrant)
			// RFC 7009 §2.1: the access tokens of the same grant end too.
			h.wantUserinfo(first.AccessToken, http.StatusUnauthorized)
			h.wantUserinfo(second.AccessToken, http.StatusUnauthorized)
			// Revoking again is fine.
			if w := h.revoke("app", second.RefreshToken, hint); w.Code != http.StatusOK {
				t.Fatalf("second revoke: %d", w.Code)
			}
		})
	}
}

func TestRevokeAccessToken(t *testing.T) {
	h := newRefreshHarness(t)
	tr := h.exchange("app", h.login("app", offlineScopes, ""))
	if w := h.revoke("app", tr.AccessToken, TokenTypeHintRefreshToken); w.Code != http.StatusOK {
		t.Fatalf("revoke: %d %s", w.Code, w.Body)
	}
	h.wantUserinfo(tr.AccessToken, http.StatusUnauthorized)
	// Revoking an access token leaves the refresh token alone (RFC 7009 §2.1: MAY).
	next := h.mustRefresh("app", tr.RefreshToken)
	h.wantUserinfo(next.AccessToken, http.StatusOK)
}

func TestRevokeOtherClientsTokenIsNoop(t *testing.T) {
	h := newRefreshHarness(t)
	tr := h.exchange("app", h.login("app", offlineScopes, ""))
	for _, tok := range []string{tr.AccessToken, tr.RefreshToken, NewToken()} {
		for _, hint := range []string{"", TokenTypeHintAccessToken, TokenTypeHintRefreshToken} {
			w := h.revoke("other", tok, hint)
			if w.Code != http.StatusOK || w.Body.Len() != 0 {
				t.Fatalf("revoking another client's (or an unknown) token: %d %q, want 200 and no body", w.Code, w.Body)
			}
		}
	}
	h.wantUserinfo(tr.AccessToken, http.StatusOK)
	if ir, _ := h.introspect("app", tr.RefreshToken, ""); !ir.Active {
		t.Fatal("another client revoked app's refresh token")
	}
	h.mustRefresh("app", tr.RefreshToken)

	// Errors that are the caller's own (RFC 7009 §2.2.1, RFC 6749 §5.2).
	w := h.post(h.p.HandleRevoke, "app", "wrong-secret", url.Values{"token": {tr.AccessToken}})
	if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), CodeInvalidClient) {
		t.Fatalf("bad client credentials: %d %s", w.Code, w.Body)
	}
	h.wantUserinfo(tr.AccessToken, http.StatusOK)
	w = h.post(h.p.HandleRevoke, "app", appSecret, url.Values{})
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), CodeInvalidRequest) {
		t.Fatalf("missing token: %d %s", w.Code, w.Body)
	}
	r := httptest.NewRequest(http.MethodGet, "/revoke?token="+tr.AccessToken, nil)
	rw := httptest.NewRecorder()
	h.p.HandleRevoke(rw, r)
	if rw.Code != http.StatusMethodNotAllowed {
		t.Fatalf("GET /revoke: %d", rw.Code)
	}
}

func TestCodeReplayRevokesRefreshFamily(t *testing.T) {
	for _, delay := range []time.Duration{0, 2 * time.Hour} {
		// Two hours is past the access token lifetime: the redemption is
		// remembered as long as the family it could revoke lives.
		t.Run("replay after "+delay.String(), func(t *testing.T) {
			h := newRefreshHarness(t)
			code := h.login("app", offlineScopes, "")
			first := h.exchange("app", code)
			h.clock.Advance(delay)
			second := h.mustRefresh("app", first.RefreshToken)
			h.wantUserinfo(second.AccessToken, http.StatusOK)

			_, e := h.token("app", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {appRedirect}})
			if e != CodeInvalidGrant {
				t.Fatalf("code replay: %q, want invalid_grant", e)
			}
			// RFC 6749 §4.1.2: everything issued from the code is revoked,
			// including what was refreshed from it.
			h.wantUserinfo(first.AccessToken, http.StatusUnauthorized)
			h.wantUserinfo(second.AccessToken, http.StatusUnauthorized)
			for _, tok := range []string{second.AccessToken, second.RefreshToken} {
				if ir, _ := h.introspect("app", tok, ""); ir.Active {
					t.Fatal("a token descended from the code is active after a code replay")
				}
			}
			h.wantRefreshError("app", second.RefreshToken, "", CodeInvalidGrant)
		})
	}
}

// An access token without a family costs one read at userinfo; one with a
// family costs one more, the family.
func TestFamilyLookupOnlyForRefreshableTokens(t *testing.T) {
	h := newRefreshHarness(t)
	plain := h.exchange("app", h.login("app", "openid profile", ""))
	h.wantUserinfo(plain.AccessToken, http.StatusOK)
	if n := h.store.getCount(keyFamily); n != 0 {
		t.Fatalf("userinfo for an access token without a family read %d family records", n)
	}
	withFamily := h.exchange("app", h.login("app", offlineScopes, ""))
	h.wantUserinfo(withFamily.AccessToken, http.StatusOK)
	if n := h.store.getCount(keyFamily); n != 1 {
		t.Fatalf("userinfo for an access token with a family read %d family records, want 1", n)
	}
}

func TestDiscoveryRevocationIntrospectionRefresh(t *testing.T) {
	h := newRefreshHarness(t)
	d := h.p.Discovery()
	if d.RevocationEndpoint != "https://sso.example.com/revoke" || d.IntrospectionEndpoint != "https://sso.example.com/introspect" {
		t.Fatalf("endpoints: %q %q", d.RevocationEndpoint, d.IntrospectionEndpoint)
	}
	wantMethods := []string{AuthMethodBasic, AuthMethodPost, AuthMethodNone}
	if !slices.Equal(d.RevocationEndpointAuthMethodsSupported, wantMethods) || !slices.Equal(d.IntrospectionEndpointAuthMethodsSupported, wantMethods[:2]) {
		t.Fatalf("auth methods: %v %v", d.RevocationEndpointAuthMethodsSupported, d.IntrospectionEndpointAuthMethodsSupported)
	}
	if !slices.Equal(d.GrantTypesSupported, []string{GrantAuthorizationCode, GrantRefreshToken}) {
		t.Fatalf("grant types: %v", d.GrantTypesSupported)
	}
	if !slices.Contains(d.ScopesSupported, ScopeOfflineAccess) {
		t.Fatalf("scopes: %v", d.ScopesSupported)
	}

	// Nothing can get a refresh token: the grant is not advertised.
	p := testProvider()
	p.Signer = testSigner(t)
	d = p.Discovery()
	if !slices.Equal(d.GrantTypesSupported, []string{GrantAuthorizationCode}) || slices.Contains(d.ScopesSupported, ScopeOfflineAccess) {
		t.Fatalf("without offline_access or RefreshTokens clients: grants %v, scopes %v", d.GrantTypesSupported, d.ScopesSupported)
	}
	p.Clients.Lookup("app").RefreshTokens = true
	if d = p.Discovery(); !slices.Contains(d.GrantTypesSupported, GrantRefreshToken) {
		t.Fatalf("a client with RefreshTokens: grants %v", d.GrantTypesSupported)
	}
}

func TestRefreshGrantRequestErrors(t *testing.T) {
	h := newRefreshHarness(t)
	if _, e := h.token("app", url.Values{"grant_type": {"refresh_token"}}); e != CodeInvalidRequest {
		t.Fatalf("missing refresh_token: %q", e)
	}
	h.wantRefreshError("app", NewToken(), "", CodeInvalidGrant)
	tr := h.exchange("app", h.login("app", offlineScopes, ""))
	// An access token is not a refresh token.
	h.wantRefreshError("app", tr.AccessToken, "", CodeInvalidGrant)
	w := h.post(h.p.HandleToken, "app", "wrong", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}})
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("bad client secret: %d", w.Code)
	}
	h.mustRefresh("app", tr.RefreshToken)
}
