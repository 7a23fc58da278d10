package bridge

import (
	"net/http"
	"net/url"
	"regexp"
	"testing"

	gooidc "github.com/coreos/go-oidc/v3/oidc"

	"github.com/wechat-oidc/wechat-oidc/config"
)

// Issue 9 §2: signing out reaches every application of the session, and
// ends the session's tokens.

// userinfoStatus calls userinfo with an access token.
func (h *harness) userinfoStatus(accessToken string) int {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.issuer()+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// refresh redeems a refresh token; it returns the status and the error code.
func (h *harness) refresh(clientID, secret, refreshToken string) (int, any) {
	h.t.Helper()
	status, body, _ := h.tokenRequest(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}, clientID, secret)
	return status, body["error"]
}

// TestReplacedSessionKeepsItsApplications: two applications are signed in
// through one SSO session; the same person signs in again in the same
// browser (prompt=login at one of them), which replaces the session; then
// signs out. Both applications receive a logout_token with the sid they
// know, and the tokens of the session are dead: the refresh token (a
// client with refresh_tokens: true, no offline_access) and the access
// token. (Before: the replaced session's list was dropped, so the other
// application was never told, and every token outlived the logout.)
func TestReplacedSessionKeepsItsApplications(t *testing.T) {
	rp1, rp2 := newLogoutRP(t, 0), newLogoutRP(t, 0)
	h := newHarness(t,
		withClient(rpClientID, func(c *config.ClientConfig) {
			c.BackchannelLogoutURI = rp1.srv.URL
			c.RefreshTokens = true
		}),
		withClient(rp2ClientID, func(c *config.ClientConfig) { c.BackchannelLogoutURI = rp2.srv.URL }))
	b, first := ssoLogin(t, h)
	if first.token.RefreshToken == "" {
		t.Fatal("no refresh token for a client with refresh_tokens: true")
	}
	second := h.login(h.rp(rp2ClientID, rp2Secret, rp2Redirect), b, "alice")
	sid := first.claims["sid"]

	var lastCode string
	for _, prompt := range []string{"login", "consent", "select_account"} {
		h.sim.AutoApprove("alice")
		_, q := h.authorize(b, h.authorizeURL(map[string]string{"prompt": prompt, "client_id": rp2ClientID, "redirect_uri": rp2Redirect}))
		if q.Get("code") == "" {
			t.Fatalf("prompt=%s: %v", prompt, q)
		}
		lastCode = q.Get("code")
	}
	h.srv.WaitBackchannel()
	if len(rp1.received())+len(rp2.received()) != 0 {
		t.Fatal("signing in again as the same person signed an application out")
	}
	// The same person again: the session keeps its id, so the applications
	// that hold it are the ones told at logout.
	status, body, _ := h.tokenRequest(url.Values{"grant_type": {"authorization_code"}, "code": {lastCode}, "redirect_uri": {rp2Redirect}}, rp2ClientID, rp2Secret)
	if status != http.StatusOK {
		t.Fatalf("token: %d %v", status, body)
	}
	if c := decodeJWT(t, body["id_token"].(string)); c["sid"] != sid {
		t.Fatalf("the same person's new sign-in changed the sid: %v → %v", sid, c["sid"])
	}

	hint, _ := second.token.Extra("id_token").(string)
	resp, err := b.Get(h.issuer() + PathLogout + "?" + url.Values{"id_token_hint": {hint}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	h.srv.WaitBackchannel()
	for i, rp := range []*logoutRP{rp1, rp2} {
		got := rp.received()
		if len(got) != 1 {
			t.Fatalf("application %d received %d logout tokens, want 1", i+1, len(got))
		}
		if c := decodeJWT(t, got[0]); c["sid"] != sid {
			t.Errorf("application %d: logout token sid %v, want %v", i+1, c["sid"], sid)
		}
	}
	if status, e := h.refresh(rpClientID, rpSecret, first.token.RefreshToken); status != http.StatusBadRequest || e != "invalid_grant" {
		t.Errorf("the refresh token of the session after logout: %d %v", status, e)
	}
	if status := h.userinfoStatus(first.token.AccessToken); status != http.StatusUnauthorized {
		t.Errorf("userinfo with an access token of the session after logout: %d", status)
	}
	if status := h.userinfoStatus(second.token.AccessToken); status != http.StatusUnauthorized {
		t.Errorf("userinfo with the other application's access token after logout: %d", status)
	}
}

// TestLogoutRevokesSessionTokens: every way of ending a session (the
// confirmed sign-out page, a server-side call with id_token_hint and no
// cookie, another person signing in on the browser) revokes the session's
// tokens, except those issued for offline_access, which exist to work
// while the person is away (Back-Channel Logout 1.0 §2.7).
func TestLogoutRevokesSessionTokens(t *testing.T) {
	refreshing := func(c *config.ClientConfig) { c.RefreshTokens = true }
	type tokens struct{ online, offline *loginResult }
	signIn := func(h *harness, b *http.Client, user string) tokens {
		online := h.login(h.rp(rpClientID, rpSecret, rpRedirect), b, user)
		offline := h.login(h.rp(rp2ClientID, rp2Secret, rp2Redirect, gooidc.ScopeOpenID, "offline_access"), b, user)
		if online.token.RefreshToken == "" || offline.token.RefreshToken == "" {
			t.Fatal("no refresh tokens")
		}
		return tokens{online, offline}
	}
	check := func(t *testing.T, h *harness, tk tokens) {
		t.Helper()
		if status, e := h.refresh(rpClientID, rpSecret, tk.online.token.RefreshToken); status != http.StatusBadRequest || e != "invalid_grant" {
			t.Errorf("refresh token without offline_access after the session ended: %d %v", status, e)
		}
		if status := h.userinfoStatus(tk.online.token.AccessToken); status != http.StatusUnauthorized {
			t.Errorf("its access token after the session ended: %d", status)
		}
		if status, e := h.refresh(rp2ClientID, rp2Secret, tk.offline.token.RefreshToken); status != http.StatusOK {
			t.Errorf("an offline_access refresh token died with the session: %d %v", status, e)
		}
	}
	t.Run("id_token_hint without the cookie", func(t *testing.T) {
		h := newHarness(t, withClient(rpClientID, refreshing))
		tk := signIn(h, h.browser(), "alice")
		hint, _ := tk.online.token.Extra("id_token").(string)
		resp, err := http.Get(h.issuer() + PathLogout + "?" + url.Values{"id_token_hint": {hint}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		check(t, h, tk)
	})
	t.Run("confirmed on the sign-out page", func(t *testing.T) {
		h := newHarness(t, withClient(rpClientID, refreshing))
		b := h.browser()
		tk := signIn(h, b, "alice")
		page, err := b.Get(h.issuer() + PathLogout)
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`name="confirm" value="([^"]+)"`).FindStringSubmatch(readBody(t, page))
		if m == nil {
			t.Fatal("no confirmation form")
		}
		resp, err := b.PostForm(h.issuer()+PathLogout, url.Values{"confirm": {m[1]}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		check(t, h, tk)
	})
	t.Run("another person signs in on the browser", func(t *testing.T) {
		h := newHarness(t, withClient(rpClientID, refreshing))
		b := h.browser()
		tk := signIn(h, b, "alice")
		h.sim.AutoApprove("bob")
		if _, q := h.authorize(b, h.authorizeURL(map[string]string{"prompt": "login"})); q.Get("code") == "" {
			t.Fatalf("bob's sign-in: %v", q)
		}
		check(t, h, tk)
	})
}
