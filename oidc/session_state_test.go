package oidc

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// tokenBody posts form to the token endpoint as clientID and returns the
// raw JSON members of a 200 answer: what goes on the wire, not what
// TokenResponse happens to decode.
func (h *refreshHarness) tokenBody(clientID string, form url.Values) map[string]any {
	h.t.Helper()
	w := h.post(h.p.HandleToken, clientID, secretOf(clientID), form)
	if w.Code != http.StatusOK {
		h.t.Fatalf("token endpoint: status %d, body %s", w.Code, w.Body)
	}
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		h.t.Fatalf("token response is not JSON: %v: %s", err, w.Body)
	}
	return m
}

// TestCodeExchangeSessionStateIsIDTokenSid: the authorization_code response
// of tokens bound to an SSO session carries session_state equal to the ID
// token's sid — what Keycloak records as its broker session id and matches
// a logout_token's sid against. A refresh response does not carry it
// (Keycloak reads it at login only); discovery offers no
// check_session_iframe (this is not Session Management's session_state).
func TestCodeExchangeSessionStateIsIDTokenSid(t *testing.T) {
	h := newRefreshHarness(t)
	code := h.login("app", offlineScopes, "n-1")
	body := h.tokenBody("app", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {appRedirect}})
	idToken, _ := body["id_token"].(string)
	if idToken == "" {
		t.Fatalf("no id_token: %v", body)
	}
	sid := h.idTokenClaims(idToken)["sid"]
	if sid != "sid-1" {
		t.Fatalf("ID token sid = %v, want the session's sid-1", sid)
	}
	if body["session_state"] != sid {
		t.Fatalf("session_state = %v, want the ID token's sid %v", body["session_state"], sid)
	}

	rt, _ := body["refresh_token"].(string)
	if rt == "" {
		t.Fatalf("no refresh token to test the refresh response with: %v", body)
	}
	refreshed := h.tokenBody("app", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
	if v, ok := refreshed["session_state"]; ok {
		t.Fatalf("refresh response carries session_state %v", v)
	}
	if idt, _ := refreshed["id_token"].(string); idt == "" || h.idTokenClaims(idt)["sid"] != sid {
		t.Fatalf("refreshed ID token lost the sid: %v", refreshed)
	}

	d, err := json.Marshal(h.p.Discovery())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(d), "check_session_iframe") {
		t.Fatalf("discovery advertises Session Management: %s", d)
	}
}

// TestCodeExchangeWithoutSessionHasNoSessionState: tokens bound to no SSO
// session (a code issued without a sid) get no session_state and no sid —
// an empty session_state would make Keycloak record the broker session
// "<alias>." and match nothing.
func TestCodeExchangeWithoutSessionHasNoSessionState(t *testing.T) {
	h := newRefreshHarness(t)
	code, err := h.p.IssueCode(context.Background(), &AuthRequest{
		ClientID: "app", RedirectURI: appRedirect, Scopes: []string{"openid", "profile"}, Nonce: "n-2",
	}, Identity{Subject: "o_user_1", AuthTime: h.clock.Now(), Claims: testClaims})
	if err != nil {
		t.Fatal(err)
	}
	body := h.tokenBody("app", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {appRedirect}})
	if v, ok := body["session_state"]; ok {
		t.Fatalf("session_state %v without a session", v)
	}
	idToken, _ := body["id_token"].(string)
	if idToken == "" {
		t.Fatalf("no id_token: %v", body)
	}
	if v, ok := h.idTokenClaims(idToken)["sid"]; ok {
		t.Fatalf("ID token sid %v without a session", v)
	}
}

// TestTokenExchangeHasNoSessionState: the mini program's token exchange
// starts no SSO session, so its response names none, even when the
// exchanger's identity carries a SessionID.
func TestTokenExchangeHasNoSessionState(t *testing.T) {
	h, _ := newExchangeHarness(t)
	for _, scope := range []string{"", "openid email"} {
		status, body := h.tokenExchange("app", map[string]string{"scope": scope})
		if status != http.StatusOK {
			t.Fatalf("scope %q: status %d: %v", scope, status, body)
		}
		if v, ok := body["session_state"]; ok {
			t.Fatalf("scope %q: token exchange response carries session_state %v", scope, v)
		}
		if idt, _ := body["id_token"].(string); idt != "" {
			if v, ok := h.idTokenClaims(idt)["sid"]; ok {
				t.Fatalf("scope %q: exchanged ID token has sid %v", scope, v)
			}
		}
	}
}
