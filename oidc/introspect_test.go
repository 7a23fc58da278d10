package oidc

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"testing"
)

// TestIntrospectionByPublicClientIsRefused: RFC 7662 §2.1 requires the
// introspection caller to be authorized; a public client (method none)
// proves nothing about who it is, so anyone could use its id to probe
// tokens. It gets 401 invalid_client, the RFC 6749 §5.2 answer for a client
// authentication method the endpoint does not support, and learns nothing,
// not even about its own tokens.
func TestIntrospectionByPublicClientIsRefused(t *testing.T) {
	h := newRefreshHarness(t)
	own := h.exchange("spa", h.login("spa", offlineScopes, ""))
	other := h.exchange("app", h.login("app", offlineScopes, ""))
	for _, tok := range []string{own.AccessToken, own.RefreshToken, other.AccessToken, NewToken()} {
		w := h.post(h.p.HandleIntrospect, "spa", "", url.Values{"token": {tok}})
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("public client introspection: status %d, body %s; want 401", w.Code, w.Body)
		}
		var e ErrorResponse
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error != CodeInvalidClient || e.ErrorDescription == "" {
			t.Fatalf("body %s, want invalid_client with a description", w.Body)
		}
		var body map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		if _, ok := body["active"]; ok {
			t.Fatalf("an introspection answer was given: %s", w.Body)
		}
	}
	// Discovery no longer offers "none" at the introspection endpoint; the
	// token and revocation endpoints keep it (RFC 7009 §5 lets public
	// clients revoke their own tokens).
	d := h.p.Discovery()
	if slices.Contains(d.IntrospectionEndpointAuthMethodsSupported, AuthMethodNone) {
		t.Fatalf("introspection auth methods %v include none", d.IntrospectionEndpointAuthMethodsSupported)
	}
	if !slices.Contains(d.TokenEndpointAuthMethodsSupported, AuthMethodNone) || !slices.Contains(d.RevocationEndpointAuthMethodsSupported, AuthMethodNone) {
		t.Fatalf("token/revocation auth methods lost none: %v %v", d.TokenEndpointAuthMethodsSupported, d.RevocationEndpointAuthMethodsSupported)
	}
	// The public client's own tokens still work everywhere else.
	h.wantUserinfo(own.AccessToken, http.StatusOK)
	if w := h.revoke("spa", own.AccessToken, ""); w.Code != http.StatusOK {
		t.Fatalf("public client revoking its own token: %d", w.Code)
	}
	h.wantUserinfo(own.AccessToken, http.StatusUnauthorized)
}
