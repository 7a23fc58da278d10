package oidc

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestAccountCheckRefusesEveryTokenUse: once AccountCheck refuses a person,
// none of their tokens work any more — no refresh, no userinfo, introspection
// inactive — and the account is never released as a claim.
func TestAccountCheckRefusesEveryTokenUse(t *testing.T) {
	h := newRefreshHarness(t)
	refused := map[string]bool{}
	var asked []string
	h.p.AccountCheck = func(_ context.Context, clientID, account string) *Error {
		asked = append(asked, clientID+"/"+account)
		if refused[account] {
			return ErrInvalidGrant("the person may no longer use %s", clientID)
		}
		return nil
	}
	code, err := h.p.IssueCode(context.Background(), &AuthRequest{
		ClientID: "app", RedirectURI: appRedirect, Scopes: []string{"openid", "profile", ScopeOfflineAccess},
	}, Identity{Subject: "o_user_1", AuthTime: h.clock.Now().Add(-time.Minute), SessionID: "sid-1", Claims: testClaims, Account: "p_alice"})
	if err != nil {
		t.Fatal(err)
	}
	tok := h.exchange("app", code)
	status, claims := h.userinfo(tok.AccessToken)
	if status != http.StatusOK {
		t.Fatalf("userinfo before: %d", status)
	}
	for k, v := range claims {
		if v == "p_alice" || strings.Contains(k, "acc") {
			t.Fatalf("the account leaked as claim %s=%v", k, v)
		}
	}
	if len(asked) == 0 || asked[0] != "app/p_alice" {
		t.Fatalf("AccountCheck not asked with the client and account: %v", asked)
	}
	refused["p_alice"] = true
	if status, _ := h.userinfo(tok.AccessToken); status != http.StatusUnauthorized {
		t.Fatalf("userinfo of a refused account: %d", status)
	}
	h.wantRefreshError("app", tok.RefreshToken, "", CodeInvalidGrant)
	w := h.post(h.p.HandleIntrospect, "app", appSecret, url.Values{"token": {tok.AccessToken}})
	if !strings.Contains(w.Body.String(), `"active":false`) {
		t.Fatalf("introspection of a refused account's token: %s", w.Body)
	}
	refused["p_alice"] = false
	if status, _ := h.userinfo(tok.AccessToken); status != http.StatusOK {
		t.Fatalf("the check is not a revocation: once it passes again, userinfo works: %d", status)
	}
	if _, e := h.refresh("app", tok.RefreshToken, ""); e != "" {
		t.Fatalf("a refused refresh must not have used up the token: %s", e)
	}
}
