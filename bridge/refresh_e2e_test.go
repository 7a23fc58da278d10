package bridge

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// TestRefreshFlowWithGoOIDC: x/oauth2's TokenSource refreshes through the
// token endpoint; the new ID token verifies with go-oidc and keeps sub and
// claims; WeChat is not called; the old refresh token, replayed after the
// grace window, revokes the family.
func TestRefreshFlowWithGoOIDC(t *testing.T) {
	h := newHarness(t)
	r := h.rp(rpClientID, rpSecret, rpRedirect, gooidc.ScopeOpenID, "profile", "offline_access")
	res := h.login(r, h.browser(), "alice")
	if res.token.RefreshToken == "" {
		t.Fatal("no refresh token for offline_access")
	}
	wechatCalls := len(h.sim.Calls())

	expired := *res.token
	expired.Expiry = time.Now().Add(-time.Minute) // make x/oauth2 refresh
	fresh, err := r.conf.TokenSource(r.ctx, &expired).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if fresh.RefreshToken == "" || fresh.RefreshToken == res.token.RefreshToken || fresh.AccessToken == res.token.AccessToken {
		t.Fatal("refresh tokens are not rotated")
	}
	raw, _ := fresh.Extra("id_token").(string)
	idt, err := r.verifier.Verify(r.ctx, raw)
	if err != nil {
		t.Fatalf("refreshed ID token: %v", err)
	}
	var c map[string]any
	_ = idt.Claims(&c)
	if idt.Subject != res.idToken.Subject || c["name"] != "Alice 爱丽丝" || c["auth_time"] != res.claims["auth_time"] || c["sid"] != res.claims["sid"] {
		t.Fatalf("refresh changed the identity: %v vs %v", c, res.claims)
	}
	if _, ok := c["nonce"]; ok {
		t.Error("a refreshed ID token must not carry the nonce (Core §12.2)")
	}
	if len(h.sim.Calls()) != wechatCalls {
		t.Fatal("a refresh called WeChat")
	}
	if _, err := r.provider.UserInfo(r.ctx, oauth2.StaticTokenSource(fresh)); err != nil {
		t.Fatalf("userinfo with the refreshed access token: %v", err)
	}

	// Replay of the first refresh token after the grace window: theft.
	h.advance(time.Minute)
	status, body, _ := h.tokenRequest(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {res.token.RefreshToken}}, rpClientID, rpSecret)
	if status != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("refresh token reuse: %d %v", status, body)
	}
	status, body, _ = h.tokenRequest(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {fresh.RefreshToken}}, rpClientID, rpSecret)
	if status != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("the family survived a reuse: %d %v", status, body)
	}
	if _, err := r.provider.UserInfo(r.ctx, oauth2.StaticTokenSource(fresh)); err == nil {
		t.Fatal("an access token of a revoked family still works")
	}
}

func TestCrossClientRefreshOverHTTP(t *testing.T) {
	h := newHarness(t)
	res := h.login(h.rp(rpClientID, rpSecret, rpRedirect, gooidc.ScopeOpenID, "offline_access"), h.browser(), "alice")
	status, body, _ := h.tokenRequest(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {res.token.RefreshToken}}, rp2ClientID, rp2Secret)
	if status != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("rp2 refreshed rp's token: %d %v", status, body)
	}
	// rp's own refresh still works: the attempt did not burn it.
	status, body, _ = h.tokenRequest(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {res.token.RefreshToken}}, rpClientID, rpSecret)
	if status != 200 {
		t.Fatalf("rp's refresh after the attack: %d %v", status, body)
	}
}

func postForm(t *testing.T, h *harness, path string, form url.Values, id, secret string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("POST", h.issuer()+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = jsonDecode(resp, &m)
	return resp.StatusCode, m
}

func TestIntrospectionAndRevocationOverHTTP(t *testing.T) {
	h := newHarness(t)
	r := h.rp(rpClientID, rpSecret, rpRedirect, gooidc.ScopeOpenID, "profile", "offline_access")
	res := h.login(r, h.browser(), "alice")
	at := res.token.AccessToken

	status, m := postForm(t, h, "/introspect", url.Values{"token": {at}}, rpClientID, rpSecret)
	if status != 200 || m["active"] != true || m["sub"] != res.idToken.Subject || m["client_id"] != rpClientID {
		t.Fatalf("introspection by the owner: %d %v", status, m)
	}
	// Access token of client A introspected by client B.
	status, m = postForm(t, h, "/introspect", url.Values{"token": {at}}, rp2ClientID, rp2Secret)
	if status != 200 || m["active"] != false || len(m) != 1 {
		t.Fatalf("introspection by another client: %d %v", status, m)
	}
	status, _ = postForm(t, h, "/introspect", url.Values{"token": {at}}, rpClientID, "wrong")
	if status != 401 {
		t.Fatalf("unauthenticated introspection: %d", status)
	}
	// Another client cannot revoke it (answer 200, token survives).
	if status, _ := postForm(t, h, "/revoke", url.Values{"token": {res.token.RefreshToken}}, rp2ClientID, rp2Secret); status != 200 {
		t.Fatalf("revoke by another client: %d", status)
	}
	if _, m := postForm(t, h, "/introspect", url.Values{"token": {res.token.RefreshToken}}, rpClientID, rpSecret); m["active"] != true {
		t.Fatalf("another client revoked rp's refresh token: %v", m)
	}
	// The owner revokes the refresh token: the family (with its access token) ends.
	if status, _ := postForm(t, h, "/revoke", url.Values{"token": {res.token.RefreshToken}, "token_type_hint": {"refresh_token"}}, rpClientID, rpSecret); status != 200 {
		t.Fatalf("revoke: %d", status)
	}
	if _, m := postForm(t, h, "/introspect", url.Values{"token": {at}}, rpClientID, rpSecret); m["active"] != false {
		t.Fatalf("access token active after its refresh token was revoked: %v", m)
	}
	if _, err := r.provider.UserInfo(r.ctx, oauth2.StaticTokenSource(res.token)); err == nil {
		t.Fatal("userinfo accepts a revoked access token")
	}
}

func TestDiscoveryListsExactlyWhatIsImplemented(t *testing.T) {
	h := newHarness(t)
	resp, err := http.Get(h.issuer() + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var d map[string]any
	_ = jsonDecode(resp, &d)
	resp.Body.Close()
	want := map[string]string{
		"authorization_endpoint": "/authorize", "token_endpoint": "/token", "userinfo_endpoint": "/userinfo",
		"jwks_uri": "/jwks", "revocation_endpoint": "/revoke", "introspection_endpoint": "/introspect",
		"end_session_endpoint": "/logout",
	}
	for k, path := range want {
		u, _ := d[k].(string)
		if u != h.issuer()+path {
			t.Errorf("%s = %q", k, u)
			continue
		}
		// Each advertised endpoint exists (anything but 404/405 on its method).
		method := "POST"
		if k == "jwks_uri" || k == "end_session_endpoint" || k == "authorization_endpoint" || k == "userinfo_endpoint" {
			method = "GET"
		}
		req, _ := http.NewRequest(method, u, nil)
		b := h.browser()
		b.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		r, err := b.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		if r.StatusCode == 404 || r.StatusCode == 405 {
			t.Errorf("%s advertised but %s %s answers %d", k, method, u, r.StatusCode)
		}
	}
	if d["backchannel_logout_supported"] != true || d["backchannel_logout_session_supported"] != true ||
		d["authorization_response_iss_parameter_supported"] != true || d["frontchannel_logout_supported"] != false {
		t.Errorf("logout/iss flags: %v", d)
	}
	check := func(key string, want ...string) {
		got, _ := d[key].([]any)
		var gs []string
		for _, g := range got {
			gs = append(gs, g.(string))
		}
		if strings.Join(gs, ",") != strings.Join(want, ",") {
			t.Errorf("%s = %v, want %v", key, gs, want)
		}
	}
	check("response_types_supported", "code")
	check("response_modes_supported", "query", "form_post")
	check("code_challenge_methods_supported", "S256")
	check("id_token_signing_alg_values_supported", "RS256")
	// none: the admin console is a public client (PKCE) of every deployment.
	check("token_endpoint_auth_methods_supported", "client_secret_basic", "client_secret_post", "none")
	check("scopes_supported", "openid", "address", "email", "groups", "offline_access", "profile", "wechat")
	check("grant_types_supported", "authorization_code", "refresh_token")
}
