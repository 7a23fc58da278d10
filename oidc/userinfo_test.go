package oidc

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestUserinfoWithoutOpenIDScopeIsInsufficientScope: the UserInfo endpoint
// serves only access tokens of an OpenID Connect sign-in (OpenID Connect
// Core 1.0 §5.3). A token whose scope lacks openid, e.g. one a refresh
// narrowed to offline_access, gets 403 insufficient_scope (RFC 6750 §3.1),
// not the subject.
func TestUserinfoWithoutOpenIDScopeIsInsufficientScope(t *testing.T) {
	h := newRefreshHarness(t)
	first := h.exchange("app", h.login("app", offlineScopes, ""))
	narrow, e := h.refresh("app", first.RefreshToken, ScopeOfflineAccess)
	if e != "" {
		t.Fatalf("narrowing to offline_access: %s", e)
	}
	if narrow.Scope != ScopeOfflineAccess || narrow.IDToken != "" {
		t.Fatalf("narrowed response: %+v", narrow)
	}
	r := httptest.NewRequest(http.MethodGet, "/userinfo", nil)
	r.Header.Set("Authorization", "Bearer "+narrow.AccessToken)
	w := httptest.NewRecorder()
	h.p.HandleUserinfo(w, r)
	if w.Code != http.StatusForbidden {
		t.Fatalf("status %d, body %s; want 403", w.Code, w.Body)
	}
	if got := w.Header().Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer ") || !strings.Contains(got, `error="insufficient_scope"`) || !strings.Contains(got, `scope="openid"`) {
		t.Fatalf("WWW-Authenticate = %q", got)
	}
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if body["error"] != "insufficient_scope" || body["sub"] != nil {
		t.Fatalf("body = %v", body)
	}
	// The full-scope token of the same sign-in still works.
	if ui := h.wantUserinfo(first.AccessToken, http.StatusOK); ui["sub"] != "o_user_1" {
		t.Fatalf("userinfo = %v", ui)
	}
}
