package oidc

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const testSubjectTokenType = "urn:example:params:token-type:upstream-code"

// fakeExchanger stands for an upstream login: "good" and "good2" are
// someone, "bad" is refused, "down" finds the upstream unavailable. It
// counts its calls, so tests can prove that a bad request never reaches it.
type fakeExchanger struct {
	calls      atomic.Int32
	lastClient atomic.Value // *Client
}

func (f *fakeExchanger) exchange(_ context.Context, client *Client, token string) (Identity, *Error) {
	f.calls.Add(1)
	f.lastClient.Store(client)
	switch token {
	case "good", "good2":
		return Identity{Subject: "u_exchanged", SessionID: "must-not-appear", Claims: testClaims}, nil
	case "bad":
		return Identity{}, ErrInvalidGrant("the upstream code is invalid")
	case "down":
		return Identity{}, ErrTemporarilyUnavailable("upstream is down; try again")
	}
	return Identity{}, ErrServerError("unexpected token %q", token)
}

// newExchangeHarness is the refresh harness with an exchanger installed and
// client "app" allowed to use it ("other" is not).
func newExchangeHarness(t *testing.T) (*refreshHarness, *fakeExchanger) {
	t.Helper()
	h := newRefreshHarness(t)
	f := &fakeExchanger{}
	h.p.TokenExchangers = map[string]TokenExchanger{testSubjectTokenType: f.exchange}
	h.p.Clients.Lookup("app").AllowTokenExchange = true
	return h, f
}

func exchangeForm(over map[string]string) url.Values {
	form := url.Values{
		"grant_type":         {GrantTokenExchange},
		"subject_token":      {"good"},
		"subject_token_type": {testSubjectTokenType},
	}
	for k, v := range over {
		if v == "" {
			form.Del(k)
		} else {
			form.Set(k, v)
		}
	}
	return form
}

// tokenExchange posts a token exchange request and returns the status and
// the decoded body (an ExchangeResponse as a map, or an error response).
func (h *refreshHarness) tokenExchange(clientID string, over map[string]string) (int, map[string]any) {
	h.t.Helper()
	w := h.post(h.p.HandleToken, clientID, secretOf(clientID), exchangeForm(over))
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		h.t.Fatalf("token exchange Cache-Control = %q, want no-store", cc)
	}
	if pr := w.Header().Get("Pragma"); pr != "no-cache" {
		h.t.Fatalf("token exchange Pragma = %q, want no-cache", pr)
	}
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		h.t.Fatalf("token exchange: status %d, body %s", w.Code, w.Body)
	}
	return w.Code, body
}

func TestTokenExchangeAccessToken(t *testing.T) {
	h, f := newExchangeHarness(t)
	status, body := h.tokenExchange("app", map[string]string{"scope": "openid profile unknown-scope offline_access"})
	if status != http.StatusOK {
		t.Fatalf("status %d: %v", status, body)
	}
	at, _ := body["access_token"].(string)
	if at == "" || strings.Count(at, ".") == 2 {
		t.Fatalf("access_token should be opaque: %q", at)
	}
	if body["issued_token_type"] != TokenTypeAccessToken || body["token_type"] != "Bearer" {
		t.Fatalf("issued_token_type %v, token_type %v", body["issued_token_type"], body["token_type"])
	}
	if body["expires_in"] != float64(time.Hour/time.Second) {
		t.Fatalf("expires_in = %v", body["expires_in"])
	}
	// Unknown scopes are dropped; offline_access too: no refresh token.
	if body["scope"] != "openid profile" {
		t.Fatalf("scope = %v", body["scope"])
	}
	if _, ok := body["refresh_token"]; ok {
		t.Fatalf("a token exchange must not issue a refresh token: %v", body)
	}
	if c, _ := f.lastClient.Load().(*Client); c == nil || c.ID != "app" {
		t.Fatalf("exchanger got client %v", c)
	}

	idToken, _ := body["id_token"].(string)
	c := h.idTokenClaims(idToken)
	now := h.clock.Now().Unix()
	want := map[string]any{
		"iss": h.p.Issuer, "sub": "u_exchanged", "aud": "app", "azp": "app",
		"iat": float64(now), "exp": float64(now + 3600), "auth_time": float64(now),
		"at_hash": leftHalfHash(at), "name": testClaims["name"], "preferred_username": testClaims["preferred_username"],
	}
	for k, v := range want {
		if c[k] != v {
			t.Errorf("ID token %s = %v, want %v", k, c[k], v)
		}
	}
	for _, k := range []string{"nonce", "sid", "email", "picture"} {
		if _, ok := c[k]; ok {
			t.Errorf("ID token has %s: %v", k, c[k])
		}
	}

	// The access token is a real one: userinfo, introspection, revocation.
	ui := h.wantUserinfo(at, http.StatusOK)
	if ui["sub"] != "u_exchanged" || ui["name"] != testClaims["name"] || ui["email"] != nil {
		t.Fatalf("userinfo = %v", ui)
	}
	ir, _ := h.introspect("app", at, "")
	if !ir.Active || ir.Subject != "u_exchanged" || ir.ClientID != "app" || ir.Scope != "openid profile" || ir.TokenType != "Bearer" {
		t.Fatalf("introspection = %+v", ir)
	}
	if ir, raw := h.introspect("other", at, ""); ir.Active {
		t.Fatalf("another client introspected the token: %s", raw)
	}
	if w := h.revoke("app", at, ""); w.Code != http.StatusOK {
		t.Fatalf("revoke: %d", w.Code)
	}
	h.wantUserinfo(at, http.StatusUnauthorized)

	// Expiry is the provider's own.
	_, body = h.tokenExchange("app", nil)
	at2, _ := body["access_token"].(string)
	h.wantUserinfo(at2, http.StatusOK)
	h.clock.Advance(time.Hour + time.Second)
	h.wantUserinfo(at2, http.StatusUnauthorized)
}

func TestTokenExchangeDefaultScope(t *testing.T) {
	h, _ := newExchangeHarness(t)
	status, body := h.tokenExchange("app", nil)
	if status != http.StatusOK || body["scope"] != "openid" || body["id_token"] == nil {
		t.Fatalf("status %d: %v", status, body)
	}
	// Claims are released by scope only: openid alone releases none.
	c := h.idTokenClaims(body["id_token"].(string))
	if _, ok := c["name"]; ok {
		t.Fatalf("name released without profile: %v", c)
	}
	// A scope without openid: an access token, no ID token.
	status, body = h.tokenExchange("app", map[string]string{"scope": "profile"})
	if status != http.StatusOK || body["scope"] != "profile" {
		t.Fatalf("status %d: %v", status, body)
	}
	if _, ok := body["id_token"]; ok {
		t.Fatalf("ID token without openid: %v", body)
	}
	// Not an OpenID Connect token: the UserInfo endpoint refuses it
	// (insufficient_scope), introspection still describes it.
	h.wantUserinfo(body["access_token"].(string), http.StatusForbidden)
	if ir, _ := h.introspect("app", body["access_token"].(string), ""); !ir.Active || ir.Scope != "profile" {
		t.Fatalf("introspection = %+v", ir)
	}
}

func TestTokenExchangeIDToken(t *testing.T) {
	h, _ := newExchangeHarness(t)
	status, body := h.tokenExchange("app", map[string]string{"requested_token_type": TokenTypeIDToken, "scope": "openid email"})
	if status != http.StatusOK {
		t.Fatalf("status %d: %v", status, body)
	}
	if body["issued_token_type"] != TokenTypeIDToken || body["token_type"] != "N_A" || body["scope"] != "openid email" {
		t.Fatalf("response = %v", body)
	}
	if body["expires_in"] != float64(time.Hour/time.Second) {
		t.Fatalf("expires_in = %v", body["expires_in"])
	}
	if _, ok := body["id_token"]; ok {
		t.Fatalf("the ID token is the access_token; no separate id_token: %v", body)
	}
	c := h.idTokenClaims(body["access_token"].(string))
	if c["sub"] != "u_exchanged" || c["aud"] != "app" || c["azp"] != "app" || c["email"] != testClaims["email"] {
		t.Fatalf("ID token = %v", c)
	}
	for _, k := range []string{"at_hash", "nonce", "sid", "name"} {
		if _, ok := c[k]; ok {
			t.Errorf("ID token has %s: %v", k, c[k])
		}
	}
	// The ID token is not an access token.
	h.wantUserinfo(body["access_token"].(string), http.StatusUnauthorized)
}

func TestTokenExchangeAudience(t *testing.T) {
	h, _ := newExchangeHarness(t)
	for _, k := range []string{"audience", "resource"} {
		if status, body := h.tokenExchange("app", map[string]string{k: "app"}); status != http.StatusOK {
			t.Fatalf("%s = own id: status %d: %v", k, status, body)
		}
	}
}

func TestTokenExchangeRequestErrors(t *testing.T) {
	cases := []struct {
		name   string
		client string
		over   map[string]string
		status int
		code   string
		called bool // whether the exchanger must have run
	}{
		{"client not allowed", "other", nil, 400, CodeUnauthorizedClient, false},
		{"subject_token missing", "app", map[string]string{"subject_token": ""}, 400, CodeInvalidRequest, false},
		{"subject_token_type missing", "app", map[string]string{"subject_token_type": ""}, 400, CodeInvalidRequest, false},
		{"subject_token_type unknown", "app", map[string]string{"subject_token_type": TokenTypeAccessToken}, 400, CodeInvalidRequest, false},
		{"actor_token: no delegation", "app", map[string]string{"actor_token": "x", "actor_token_type": TokenTypeAccessToken}, 400, CodeInvalidRequest, false},
		{"actor_token_type alone", "app", map[string]string{"actor_token_type": TokenTypeAccessToken}, 400, CodeInvalidRequest, false},
		{"requested_token_type unknown", "app", map[string]string{"requested_token_type": "urn:ietf:params:oauth:token-type:saml2"}, 400, CodeInvalidRequest, false},
		{"audience of another client", "app", map[string]string{"audience": "other"}, 400, CodeInvalidTarget, false},
		{"resource elsewhere", "app", map[string]string{"resource": "https://api.example.com/"}, 400, CodeInvalidTarget, false},
		{"id_token without openid", "app", map[string]string{"requested_token_type": TokenTypeIDToken, "scope": "profile"}, 400, CodeInvalidScope, false},
		{"only unknown scopes", "app", map[string]string{"scope": "nope"}, 400, CodeInvalidScope, false},
		{"subject token refused upstream", "app", map[string]string{"subject_token": "bad"}, 400, CodeInvalidGrant, true},
		{"upstream unavailable", "app", map[string]string{"subject_token": "down"}, 503, CodeTemporarilyUnavailable, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h, f := newExchangeHarness(t)
			status, body := h.tokenExchange(tc.client, tc.over)
			if status != tc.status || body["error"] != tc.code {
				t.Fatalf("got %d %v, want %d %s", status, body, tc.status, tc.code)
			}
			if d, _ := body["error_description"].(string); d == "" {
				t.Fatalf("no error_description: %v", body)
			}
			if called := f.calls.Load() > 0; called != tc.called {
				t.Fatalf("exchanger called = %v, want %v (a bad request must not use up the subject token)", called, tc.called)
			}
		})
	}

	t.Run("delegation error says so", func(t *testing.T) {
		h, _ := newExchangeHarness(t)
		_, body := h.tokenExchange("app", map[string]string{"actor_token": "x", "actor_token_type": TokenTypeAccessToken})
		if d, _ := body["error_description"].(string); !strings.Contains(d, "delegation not supported") {
			t.Fatalf("error_description = %q", d)
		}
	})
	t.Run("no exchangers: grant unsupported", func(t *testing.T) {
		h, _ := newExchangeHarness(t)
		h.p.TokenExchangers = nil
		if status, body := h.tokenExchange("app", nil); status != 400 || body["error"] != CodeUnsupportedGrantType {
			t.Fatalf("got %d %v", status, body)
		}
	})
	t.Run("bad client credentials", func(t *testing.T) {
		h, f := newExchangeHarness(t)
		w := h.post(h.p.HandleToken, "app", "wrong-secret", exchangeForm(nil))
		if w.Code != http.StatusUnauthorized || f.calls.Load() != 0 {
			t.Fatalf("status %d, exchanger calls %d", w.Code, f.calls.Load())
		}
	})
}

func TestTokenExchangeDiscovery(t *testing.T) {
	h, _ := newExchangeHarness(t)
	if d := h.p.Discovery(); !slices.Contains(d.GrantTypesSupported, GrantTokenExchange) {
		t.Fatalf("grant types %v", d.GrantTypesSupported)
	}
	h.p.Clients.Lookup("app").AllowTokenExchange = false
	if d := h.p.Discovery(); slices.Contains(d.GrantTypesSupported, GrantTokenExchange) {
		t.Fatalf("no client may exchange, yet grant types %v", d.GrantTypesSupported)
	}
	h.p.Clients.Lookup("app").AllowTokenExchange = true
	h.p.TokenExchangers = nil
	if d := h.p.Discovery(); slices.Contains(d.GrantTypesSupported, GrantTokenExchange) {
		t.Fatalf("no exchangers, yet grant types %v", d.GrantTypesSupported)
	}
}
