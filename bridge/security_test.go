package bridge

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"github.com/wechat-oidc/wechat-oidc/config"
	"github.com/wechat-oidc/wechat-oidc/oidc"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
)

// ssoLogin logs alice in through rp and returns the browser holding the session.
func ssoLogin(t *testing.T, h *harness) (*http.Client, *loginResult) {
	t.Helper()
	b := h.browser()
	res := h.login(h.rp(rpClientID, rpSecret, rpRedirect), b, "alice")
	return b, res
}

func TestSSOAcrossTwoClientsSkipsWeChat(t *testing.T) {
	h := newHarness(t)
	b, first := ssoLogin(t, h)
	authorizeCalls := h.sim.CallCount("/connect/oauth2/authorize")
	exchanges := h.sim.CallCount("/sns/oauth2/access_token")
	h.sim.AutoApprove("bob") // if WeChat were asked again, it would be bob

	second := h.login(h.rp(rp2ClientID, rp2Secret, rp2Redirect), b, "bob")
	if second.idToken.Subject != first.idToken.Subject {
		t.Fatalf("second client got sub %q, want the session's %q", second.idToken.Subject, first.idToken.Subject)
	}
	if h.sim.CallCount("/connect/oauth2/authorize") != authorizeCalls || h.sim.CallCount("/sns/oauth2/access_token") != exchanges {
		t.Fatal("the second client's login reached WeChat")
	}
	if first.claims["sid"] == nil || first.claims["sid"] != second.claims["sid"] {
		t.Fatalf("sid differs across the session: %v vs %v", first.claims["sid"], second.claims["sid"])
	}
	if first.claims["auth_time"] != second.claims["auth_time"] {
		t.Fatal("auth_time must be the WeChat login's time, not the SSO answer's")
	}
	if second.claims["name"] != "Alice 爱丽丝" {
		t.Fatalf("profile not kept with the session: %v", second.claims)
	}
}

func TestSessionCookieAttributes(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	h.sim.AutoApprove("alice")
	u, _ := url.Parse(h.issuer())
	h.authorize(b, h.authorizeURL(nil))
	var found bool
	for _, c := range b.Jar.Cookies(u) {
		if c.Name == sessionCookie {
			found = true
			if len(c.Value) != 43 || strings.Contains(c.Value, h.sim.UnionID("alice")) {
				t.Fatalf("session cookie is not an opaque id: %q", c.Value)
			}
		}
	}
	if !found {
		t.Fatal("no session cookie")
	}
	// Attributes are not visible through a jar: check the Set-Cookie header.
	s := &Server{opt: h.srv.opt, store: h.srv.store, prefix: "", secure: true, now: time.Now, log: h.srv.log}
	rec := httptest.NewRecorder()
	c := h.srv.echo.NewContext(httptest.NewRequest("GET", "/", nil), rec)
	if _, err := s.startSession(c, oidc.Identity{Subject: "sub", AuthTime: time.Now()}, rpClientID, true); err != nil {
		t.Fatal(err)
	}
	sc := rec.Header().Get("Set-Cookie")
	for _, want := range []string{"HttpOnly", "Secure", "SameSite=Lax", sessionCookie + "="} {
		if !strings.Contains(sc, want) {
			t.Errorf("Set-Cookie %q lacks %s", sc, want)
		}
	}
}

func TestPromptNone(t *testing.T) {
	h := newHarness(t)
	t.Run("without a session: login_required", func(t *testing.T) {
		_, q := h.authorize(h.browser(), h.authorizeURL(map[string]string{"prompt": "none"}))
		if q.Get("error") != "login_required" || q.Get("state") != "client-state" {
			t.Fatalf("got %v", q)
		}
	})
	t.Run("with a session: a code and no page", func(t *testing.T) {
		b, _ := ssoLogin(t, h)
		before := len(h.sim.Calls())
		resp, q := h.authorize(b, h.authorizeURL(map[string]string{"prompt": "none"}))
		if q.Get("code") == "" || resp.StatusCode != http.StatusFound {
			t.Fatalf("got %d %v", resp.StatusCode, q)
		}
		if len(h.sim.Calls()) != before {
			t.Fatal("prompt=none reached WeChat")
		}
	})
}

func TestPromptLoginAndConsentForceWeChat(t *testing.T) {
	h := newHarness(t)
	b, _ := ssoLogin(t, h)
	for _, prompt := range []string{"login", "select_account", "consent"} {
		before := h.sim.CallCount("/connect/oauth2/authorize")
		h.sim.AutoApprove("alice")
		_, q := h.authorize(b, h.authorizeURL(map[string]string{"prompt": prompt}))
		if q.Get("code") == "" {
			t.Fatalf("prompt=%s: %v", prompt, q)
		}
		if h.sim.CallCount("/connect/oauth2/authorize") != before+1 {
			t.Fatalf("prompt=%s did not force a WeChat login", prompt)
		}
		calls := h.sim.Calls()
		var last = calls[0]
		for _, c := range calls {
			if c.Endpoint == "/connect/oauth2/authorize" {
				last = c
			}
		}
		if last.ForcePopup != (prompt == "consent") {
			t.Fatalf("prompt=%s: forcePopup=%v", prompt, last.ForcePopup)
		}
	}
}

func TestMaxAge(t *testing.T) {
	h := newHarness(t)
	b, _ := ssoLogin(t, h)
	h.advance(10 * time.Minute)
	before := h.sim.CallCount("/connect/oauth2/authorize")
	_, q := h.authorize(b, h.authorizeURL(map[string]string{"max_age": "3600"}))
	if q.Get("code") == "" || h.sim.CallCount("/connect/oauth2/authorize") != before {
		t.Fatalf("a young enough session was not used: %v", q)
	}
	_, q = h.authorize(b, h.authorizeURL(map[string]string{"max_age": "60", "prompt": "none"}))
	if q.Get("error") != "login_required" {
		t.Fatalf("max_age=60 with a 10-minute-old session and prompt=none: %v", q)
	}
	h.sim.AutoApprove("alice")
	_, q = h.authorize(b, h.authorizeURL(map[string]string{"max_age": "60"}))
	if q.Get("code") == "" || h.sim.CallCount("/connect/oauth2/authorize") != before+1 {
		t.Fatalf("max_age=60 did not force a fresh WeChat login: %v", q)
	}
	// The fresh login's auth_time is now.
	status, body, _ := h.tokenRequest(url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {rpRedirect}}, rpClientID, rpSecret)
	if status != 200 {
		t.Fatal(body)
	}
	claims := decodeJWT(t, body["id_token"].(string))
	if at := int64(claims["auth_time"].(float64)); h.now().Unix()-at > 5 {
		t.Fatalf("auth_time %d is not the fresh login's", at)
	}
}

func decodeJWT(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", tok)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestSessionIdleAndAbsoluteLifetime(t *testing.T) {
	t.Run("absolute", func(t *testing.T) {
		h := newHarness(t, withConfig(func(c *config.File) {
			c.Session = config.SessionConfig{IdleTTL: config.Duration(time.Hour), AbsoluteTTL: config.Duration(2 * time.Hour)}
		}))
		b, _ := ssoLogin(t, h)
		for i := 0; i < 3; i++ { // keep it busy: idle never runs out
			h.advance(50 * time.Minute)
			_, q := h.authorize(b, h.authorizeURL(map[string]string{"prompt": "none"}))
			want := i < 2 // 50 and 100 minutes: alive; 150 minutes: past 2h
			if (q.Get("code") != "") != want {
				t.Fatalf("after %d min: %v", (i+1)*50, q)
			}
		}
	})
	t.Run("idle", func(t *testing.T) {
		h := newHarness(t, withConfig(func(c *config.File) {
			c.Session = config.SessionConfig{IdleTTL: config.Duration(time.Second), AbsoluteTTL: config.Duration(time.Hour)}
		}))
		b, _ := ssoLogin(t, h)
		// Used every 600ms, the session outlives its 1s idle lifetime...
		for i := 0; i < 2; i++ {
			h.advance(600 * time.Millisecond)
			if _, q := h.authorize(b, h.authorizeURL(map[string]string{"prompt": "none"})); q.Get("code") == "" {
				t.Fatalf("a session in use ended after %d00ms: %v", (i+1)*6, q)
			}
		}
		// ...and ends once left alone for longer than that.
		h.advance(1500 * time.Millisecond)
		if _, q := h.authorize(b, h.authorizeURL(map[string]string{"prompt": "none"})); q.Get("error") != "login_required" {
			t.Fatalf("an idle session did not end: %v", q)
		}
	})
}

func TestIDTokenHint(t *testing.T) {
	h := newHarness(t)
	b, alice := ssoLogin(t, h)
	aliceHint, _ := alice.token.Extra("id_token").(string)
	// bob's token, from another browser.
	bob := h.login(h.rp(rpClientID, rpSecret, rpRedirect), h.browser(), "bob")
	bobHint, _ := bob.token.Extra("id_token").(string)

	_, q := h.authorize(b, h.authorizeURL(map[string]string{"prompt": "none", "id_token_hint": aliceHint}))
	if q.Get("code") == "" {
		t.Fatalf("matching hint: %v", q)
	}
	_, q = h.authorize(b, h.authorizeURL(map[string]string{"prompt": "none", "id_token_hint": bobHint}))
	if q.Get("error") != "login_required" {
		t.Fatalf("hint of another subject with prompt=none: %v", q)
	}
	// Expired hints are accepted (expiry is ignored).
	h.advance(48 * time.Hour)
	b2, _ := ssoLogin(t, h)
	_, q = h.authorize(b2, h.authorizeURL(map[string]string{"prompt": "none", "id_token_hint": aliceHint}))
	if q.Get("code") == "" {
		t.Fatalf("an expired but genuine hint was refused: %v", q)
	}
}

func TestForgedIDTokenHintAlgNoneAndHS256(t *testing.T) {
	h := newHarness(t)
	b, alice := ssoLogin(t, h)
	genuine, _ := alice.token.Extra("id_token").(string)
	payload := strings.Split(genuine, ".")[1]
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	jwks, _ := json.Marshal(h.srv.keys.JWKS())
	forgeries := map[string]string{
		"alg none":            enc(`{"alg":"none","typ":"JWT"}`) + "." + payload + ".",
		"HS256 with the JWKS": enc(`{"alg":"HS256","typ":"JWT"}`) + "." + payload + "." + enc(string(jwks)),
		"tampered payload":    strings.Split(genuine, ".")[0] + "." + enc(`{"iss":"`+h.issuer()+`","sub":"someone-else"}`) + "." + strings.Split(genuine, ".")[2],
	}
	for name, hint := range forgeries {
		t.Run(name, func(t *testing.T) {
			_, q := h.authorize(b, h.authorizeURL(map[string]string{"prompt": "none", "id_token_hint": hint}))
			if q.Get("code") != "" || q.Get("error") != "invalid_request" {
				t.Fatalf("forged hint accepted: %v", q)
			}
		})
	}
}

// logoutRP is a relying party's back-channel logout endpoint.
type logoutRP struct {
	srv      *httptest.Server
	mu       sync.Mutex
	tokens   []string
	failures int // answer 500 this many times first
}

func newLogoutRP(t *testing.T, failures int) *logoutRP {
	rp := &logoutRP{failures: failures}
	rp.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rp.mu.Lock()
		defer rp.mu.Unlock()
		if rp.failures > 0 {
			rp.failures--
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		_ = r.ParseForm()
		rp.tokens = append(rp.tokens, r.PostForm.Get("logout_token"))
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(rp.srv.Close)
	return rp
}

func (rp *logoutRP) received() []string {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	return append([]string(nil), rp.tokens...)
}

func TestBackchannelLogoutReachesTwoRPs(t *testing.T) {
	rp1, rp2 := newLogoutRP(t, 0), newLogoutRP(t, 1) // rp2 fails once: the retry delivers
	h := newHarness(t,
		withClient(rpClientID, func(c *config.ClientConfig) {
			c.BackchannelLogoutURI = rp1.srv.URL + "/backchannel"
			c.PostLogoutRedirectURIs = []string{"http://rp.test/bye"}
		}),
		withClient(rp2ClientID, func(c *config.ClientConfig) { c.BackchannelLogoutURI = rp2.srv.URL + "/backchannel" }))
	b, first := ssoLogin(t, h)
	second := h.login(h.rp(rp2ClientID, rp2Secret, rp2Redirect), b, "alice")
	sid := first.claims["sid"]

	hint, _ := first.token.Extra("id_token").(string)
	resp, err := b.Get(h.issuer() + "/logout?" + url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {"http://rp.test/bye"}, "state": {"s1"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if loc := resp.Header.Get("Location"); loc != "http://rp.test/bye?state=s1" {
		t.Fatalf("post-logout redirect = %q (status %d)", loc, resp.StatusCode)
	}
	h.srv.WaitBackchannel()

	keySet := gooidc.NewRemoteKeySet(context.Background(), h.issuer()+"/jwks")
	for i, rp := range []*logoutRP{rp1, rp2} {
		got := rp.received()
		if len(got) != 1 {
			t.Fatalf("RP %d received %d logout tokens", i+1, len(got))
		}
		if _, err := keySet.VerifySignature(context.Background(), got[0]); err != nil {
			t.Fatalf("RP %d: logout token signature: %v", i+1, err)
		}
		header := decodeJWTHeader(t, got[0])
		if header["typ"] != "logout+jwt" {
			t.Errorf("typ = %v", header["typ"])
		}
		c := decodeJWT(t, got[0])
		aud := []string{rpClientID, rp2ClientID}[i]
		if c["iss"] != h.issuer() || c["aud"] != aud || c["sid"] != sid || c["sub"] != first.idToken.Subject || c["jti"] == nil {
			t.Errorf("RP %d logout token claims: %v", i+1, c)
		}
		if _, ok := c["events"].(map[string]any)[backchannelEvent]; !ok {
			t.Errorf("events: %v", c["events"])
		}
		if _, ok := c["nonce"]; ok {
			t.Error("a logout token must not have a nonce")
		}
	}
	_ = second
	// The session is over: prompt=none now fails.
	_, q := h.authorize(b, h.authorizeURL(map[string]string{"prompt": "none"}))
	if q.Get("error") != "login_required" {
		t.Fatalf("session still alive after logout: %v", q)
	}
}

func decodeJWTHeader(t *testing.T, tok string) map[string]any {
	raw, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return m
}

func TestOpenRedirectViaPostLogoutRedirectURI(t *testing.T) {
	h := newHarness(t, withClient(rpClientID, func(c *config.ClientConfig) { c.PostLogoutRedirectURIs = []string{"http://rp.test/bye"} }))
	b, res := ssoLogin(t, h)
	hint, _ := res.token.Extra("id_token").(string)
	for name, v := range map[string]url.Values{
		"unregistered":                      {"id_token_hint": {hint}, "post_logout_redirect_uri": {"http://evil.test/"}},
		"prefix of registered":              {"id_token_hint": {hint}, "post_logout_redirect_uri": {"http://rp.test/by"}},
		"another client's":                  {"client_id": {rp2ClientID}, "post_logout_redirect_uri": {"http://rp.test/bye"}},
		"client_id not the hint's audience": {"id_token_hint": {hint}, "client_id": {rp2ClientID}},
	} {
		t.Run(name, func(t *testing.T) {
			resp, err := b.Get(h.issuer() + "/logout?" + v.Encode())
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != 400 || resp.Header.Get("Location") != "" {
				t.Fatalf("status %d location %q", resp.StatusCode, resp.Header.Get("Location"))
			}
		})
	}
	// Without anything to check it against, the URI is not followed: the
	// person is asked to confirm, and no redirect happens.
	resp, err := noFollow(b).Get(h.issuer() + "/logout?" + url.Values{"post_logout_redirect_uri": {"http://rp.test/bye"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	if body := readBody(t, resp); resp.Header.Get("Location") != "" || !strings.Contains(body, "要退出登录吗") {
		t.Fatalf("unidentified client: status %d location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	// Nothing above ended the session.
	if _, q := h.authorize(b, h.authorizeURL(map[string]string{"prompt": "none"})); q.Get("code") == "" {
		t.Fatalf("a refused logout ended the session: %v", q)
	}
}

// TestLogoutByIDTokenHintWithoutCookie: an RP's server-side call with a
// genuine id_token_hint ends that session (and tells the other RPs).
func TestLogoutByIDTokenHintWithoutCookie(t *testing.T) {
	rp2 := newLogoutRP(t, 0)
	h := newHarness(t, withClient(rp2ClientID, func(c *config.ClientConfig) { c.BackchannelLogoutURI = rp2.srv.URL }))
	b, res := ssoLogin(t, h)
	h.login(h.rp(rp2ClientID, rp2Secret, rp2Redirect), b, "alice")
	hint, _ := res.token.Extra("id_token").(string)
	resp, err := http.Get(h.issuer() + "/logout?" + url.Values{"id_token_hint": {hint}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("server-side logout: %d", resp.StatusCode)
	}
	if _, q := h.authorize(b, h.authorizeURL(map[string]string{"prompt": "none"})); q.Get("error") != "login_required" {
		t.Fatalf("the session survived a server-side logout: %v", q)
	}
	h.srv.WaitBackchannel()
	if len(rp2.received()) != 1 {
		t.Fatalf("rp2 was not told: %d logout tokens", len(rp2.received()))
	}
	// Another person's genuine token does not end alice's new session.
	b2, _ := ssoLogin(t, h)
	bob := h.login(h.rp(rpClientID, rpSecret, rpRedirect), h.browser(), "bob")
	bobHint, _ := bob.token.Extra("id_token").(string)
	resp, _ = http.Get(h.issuer() + "/logout?" + url.Values{"id_token_hint": {bobHint}}.Encode())
	resp.Body.Close()
	if _, q := h.authorize(b2, h.authorizeURL(map[string]string{"prompt": "none"})); q.Get("code") == "" {
		t.Fatalf("bob's token ended alice's session: %v", q)
	}
}

func TestLogoutCSRFWithoutHintNeedsConfirmation(t *testing.T) {
	h := newHarness(t)
	b, _ := ssoLogin(t, h)
	resp, err := b.Get(h.issuer() + "/logout")
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(body, "要退出登录吗") {
		t.Fatalf("no confirmation page: %d\n%s", resp.StatusCode, body)
	}
	if _, q := h.authorize(b, h.authorizeURL(map[string]string{"prompt": "none"})); q.Get("code") == "" {
		t.Fatal("a GET /logout without id_token_hint ended the session")
	}
	// A forged confirmation (no valid token) does nothing.
	resp, _ = b.PostForm(h.issuer()+"/logout", url.Values{"confirm": {"forged"}})
	if resp.StatusCode != 400 {
		t.Fatalf("forged confirm: %d", resp.StatusCode)
	}
	if _, q := h.authorize(b, h.authorizeURL(map[string]string{"prompt": "none"})); q.Get("code") == "" {
		t.Fatal("a forged confirmation ended the session")
	}
	// The person confirms.
	resp, _ = b.Get(h.issuer() + "/logout")
	m := regexp.MustCompile(`name="confirm" value="([^"]+)"`).FindStringSubmatch(readBody(t, resp))
	if m == nil {
		t.Fatal("no confirm token in the form")
	}
	resp, _ = b.PostForm(h.issuer()+"/logout", url.Values{"confirm": {m[1]}})
	if body := readBody(t, resp); resp.StatusCode != 200 || !strings.Contains(body, "你已退出登录") {
		t.Fatalf("confirmed logout: %d", resp.StatusCode)
	}
	if _, q := h.authorize(b, h.authorizeURL(map[string]string{"prompt": "none"})); q.Get("error") != "login_required" {
		t.Fatal("the session survived a confirmed logout")
	}
}

func TestClickjackingEveryPageForbidsFraming(t *testing.T) {
	h := newHarness(t)
	b, _ := ssoLogin(t, h)
	h.sim.AutoApprove("snapshot")
	urls := []string{
		h.issuer() + "/.well-known/openid-configuration",
		h.issuer() + "/jwks",
		h.issuer() + "/authorize?client_id=nobody",
		h.issuer() + "/wechat/callback?state=unknown",
		h.issuer() + "/logout",
		h.issuer() + "/nonexistent",
		h.authorizeURL(map[string]string{"prompt": "login"}), // ends on the snapshot page
	}
	for _, u := range urls {
		resp, err := b.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("X-Frame-Options") != "DENY" || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Errorf("%s (%d) can be framed: %v", u, resp.StatusCode, resp.Header)
		}
	}
}

func TestOversizedAndMalformedInput(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	cases := map[string]string{
		"huge query":           h.authorizeURL(nil) + "&x=" + strings.Repeat("a", 100_000),
		"invalid UTF-8":        h.authorizeURL(nil) + "&nonce=%ff%fe",
		"repeated parameter":   h.authorizeURL(nil) + "&client_id=rp",
		"bad escape":           h.authorizeURL(nil) + "&x=%zz",
		"callback huge":        h.issuer() + "/wechat/callback?state=" + strings.Repeat("A", 100_000),
		"logout invalid UTF-8": h.issuer() + "/logout?state=%ff",
	}
	for name, u := range cases {
		t.Run(name, func(t *testing.T) {
			resp, err := b.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 400 || resp.Header.Get("Location") != "" {
				t.Fatalf("status %d location %q", resp.StatusCode, resp.Header.Get("Location"))
			}
		})
	}
	post := func(path, ctype, body string) int {
		req, _ := http.NewRequest("POST", h.issuer()+path, strings.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	form := "application/x-www-form-urlencoded"
	for name, tc := range map[string]struct {
		path, ctype, body string
		want              int
	}{
		"token body too large": {"/token", form, "grant_type=authorization_code&x=" + strings.Repeat("a", 1<<20), 413},
		"token repeated grant": {"/token", form, "client_id=rp&client_secret=" + rpSecret + "&grant_type=authorization_code&grant_type=refresh_token", 400},
		"token JSON body":      {"/token", "application/json", `{"grant_type":"authorization_code"}`, 400},
		"token invalid UTF-8":  {"/token", form, "client_id=%ff", 400},
		"authorize POST huge":  {"/authorize", form, "client_id=rp&x=" + strings.Repeat("a", 1<<20), 400},
		"userinfo huge POST":   {"/userinfo", form, "access_token=" + strings.Repeat("a", 1<<20), 413},
	} {
		if got := post(tc.path, tc.ctype, tc.body); got != tc.want && !(tc.want == 413 && got == 400) {
			t.Errorf("%s: status %d, want %d", name, got, tc.want)
		}
	}
}

func TestRateLimits(t *testing.T) {
	h := newHarness(t, withConfig(func(c *config.File) {
		c.Limits.TokenPerClient = config.RateConfig{Rate: 0.01, Burst: 3}
		// Wrong secrets are failed authentications: since issue 9 they
		// count per (client, network) in limits.token_auth_failures.
		c.Limits.TokenAuthFailures = config.RateConfig{Rate: 0.01, Burst: 3}
		c.Limits.AuthorizePerIP = config.RateConfig{Rate: 0.01, Burst: 3}
	}))
	t.Run("token endpoint per client", func(t *testing.T) {
		var last int
		var hdr http.Header
		for i := 0; i < 4; i++ {
			last, _, hdr = h.tokenRequest(url.Values{"grant_type": {"authorization_code"}, "code": {"x"}}, rpClientID, "guess")
		}
		if last != http.StatusTooManyRequests || hdr.Get("Retry-After") == "" {
			t.Fatalf("4th guess: %d Retry-After=%q", last, hdr.Get("Retry-After"))
		}
		// Another client is not affected.
		if st, _, _ := h.tokenRequest(url.Values{"grant_type": {"authorization_code"}, "code": {"x"}}, rp2ClientID, rp2Secret); st == http.StatusTooManyRequests {
			t.Fatal("rp2 was limited by rp's traffic")
		}
	})
	t.Run("authorize per IP, X-Forwarded-For not trusted", func(t *testing.T) {
		var resp *http.Response
		for i := 0; i < 4; i++ {
			req, _ := http.NewRequest("GET", h.authorizeURL(map[string]string{"prompt": "none"}), nil)
			req.Header.Set("X-Forwarded-For", "10.9.8."+string(rune('1'+i)))
			var err error
			resp, err = h.browser().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("4th authorize: %d", resp.StatusCode)
		}
	})
}

func TestCORSOnlyForConfiguredOrigins(t *testing.T) {
	h := newHarness(t, withClient(rpClientID, func(c *config.ClientConfig) { c.AllowedOrigins = []string{"https://app.example.com"} }))
	for _, path := range []string{"/.well-known/openid-configuration", "/jwks", "/userinfo"} {
		for origin, allowed := range map[string]bool{"https://app.example.com": true, "https://evil.example.com": false, "null": false} {
			req, _ := http.NewRequest("GET", h.issuer()+path, nil)
			req.Header.Set("Origin", origin)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got := resp.Header.Get("Access-Control-Allow-Origin")
			if allowed && got != origin || !allowed && got != "" {
				t.Errorf("%s from %s: Access-Control-Allow-Origin %q", path, origin, got)
			}
			if resp.Header.Get("Access-Control-Allow-Credentials") != "" {
				t.Errorf("%s allows credentials", path)
			}
		}
	}
	req, _ := http.NewRequest("OPTIONS", h.issuer()+"/token", nil)
	req.Header.Set("Origin", "https://app.example.com")
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, _ := http.DefaultClient.Do(req)
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" || !strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	// No CORS on the authorization endpoint (a browser navigates there).
	req, _ = http.NewRequest("GET", h.authorizeURL(nil), nil)
	req.Header.Set("Origin", "https://app.example.com")
	b := h.browser()
	b.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, _ = b.Do(req)
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("authorize answers CORS")
	}
}

func TestStateAndNonceEchoedExactly(t *testing.T) {
	h := newHarness(t)
	r := h.rp(rpClientID, rpSecret, rpRedirect)
	h.sim.AutoApprove("alice")
	state := `a b&c=d/é?#%`
	_, q := h.authorize(h.browser(), r.conf.AuthCodeURL(state))
	if q.Get("state") != state {
		t.Fatalf("state echoed as %q", q.Get("state"))
	}
	tok, err := r.conf.Exchange(r.ctx, q.Get("code"))
	if err != nil {
		t.Fatal(err)
	}
	c := decodeJWT(t, tok.Extra("id_token").(string))
	if _, ok := c["nonce"]; ok {
		t.Fatal("nonce present although none was sent")
	}
	// No state sent: none returned.
	h.sim.AutoApprove("alice")
	_, q = h.authorize(h.browser(), h.authorizeURL(map[string]string{"state": "-"}))
	if _, ok := q["state"]; ok || q.Get("code") == "" {
		t.Fatalf("state returned although none was sent: %v", q)
	}
}
