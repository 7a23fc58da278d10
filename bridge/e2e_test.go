package bridge

import (
	"context"
	"encoding/json"
	"github.com/wechat-oidc/wechat-oidc/config"
	wechatconn "github.com/wechat-oidc/wechat-oidc/connector/wechat"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/wechat-oidc/wechat-oidc/wechat/simulator"
)

func TestEndToEndUnionIDSubject(t *testing.T) {
	h := newHarness(t)
	r := h.rp(rpClientID, rpSecret, rpRedirect)
	res := h.login(r, h.browser(), "alice")

	if res.idToken.Subject != h.sim.UnionID("alice") {
		t.Fatalf("sub = %q, want alice's unionid %q", res.idToken.Subject, h.sim.UnionID("alice"))
	}
	c := res.claims
	if c["azp"] != rpClientID || c["iss"] != h.issuer() {
		t.Errorf("azp/iss wrong: %v", c)
	}
	if _, ok := c["auth_time"].(float64); !ok {
		t.Errorf("auth_time missing: %v", c)
	}
	if c["name"] != "Alice 爱丽丝" || c["preferred_username"] != wechatconn.PreferredUsername(res.idToken.Subject) {
		t.Errorf("profile claims wrong: %v", c)
	}
	if pic, _ := c["picture"].(string); !strings.HasSuffix(pic, "/132") {
		t.Errorf("picture = %v", c["picture"])
	}
	if c["openid"] != h.sim.OpenID(testAppID, "alice") || c["unionid"] != h.sim.UnionID("alice") {
		t.Errorf("wechat scope claims wrong: %v", c)
	}
	if res.token.TokenType != "Bearer" || res.token.Expiry.Before(time.Now().Add(50*time.Minute)) {
		t.Errorf("token type/expiry: %q %v", res.token.TokenType, res.token.Expiry)
	}

	ui, err := r.provider.UserInfo(r.ctx, oauth2.StaticTokenSource(res.token))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	var uc map[string]any
	_ = ui.Claims(&uc)
	if ui.Subject != res.idToken.Subject || uc["name"] != "Alice 爱丽丝" {
		t.Fatalf("userinfo = %v", uc)
	}
	// userinfo answers from what was stored: WeChat is not called again.
	before := h.sim.CallCount("/sns/userinfo")
	if _, err := r.provider.UserInfo(r.ctx, oauth2.StaticTokenSource(res.token)); err != nil {
		t.Fatal(err)
	}
	if h.sim.CallCount("/sns/userinfo") != before {
		t.Fatal("userinfo called WeChat")
	}
}

func TestEndToEndOpenIDSubject(t *testing.T) {
	h := newHarness(t, withSubject(config.SubjectOpenID))
	res := h.login(h.rp(rpClientID, rpSecret, rpRedirect), h.browser(), "carol")
	if res.idToken.Subject != h.sim.OpenID(testAppID, "carol") {
		t.Fatalf("sub = %q, want carol's openid", res.idToken.Subject)
	}
	if _, ok := res.claims["unionid"]; ok {
		t.Fatalf("carol has no unionid, yet the claim is present: %v", res.claims)
	}
}

func TestEndToEndSnsapiBase(t *testing.T) {
	t.Run("openid subject: silent login, no profile, no userinfo call", func(t *testing.T) {
		h := newHarness(t, withSubject(config.SubjectOpenID), withScope("snsapi_base"))
		res := h.login(h.rp(rpClientID, rpSecret, rpRedirect), h.browser(), "alice")
		if res.idToken.Subject != h.sim.OpenID(testAppID, "alice") {
			t.Fatalf("sub = %q", res.idToken.Subject)
		}
		if _, ok := res.claims["name"]; ok {
			t.Errorf("snsapi_base gives no nickname, yet name = %v", res.claims["name"])
		}
		if n := h.sim.CallCount("/sns/userinfo"); n != 0 {
			t.Errorf("/sns/userinfo called %d times with snsapi_base", n)
		}
		for _, c := range h.sim.Calls() {
			if c.Endpoint == "/connect/oauth2/authorize" && c.Scope != "snsapi_base" {
				t.Errorf("authorize scope = %q", c.Scope)
			}
		}
	})
	t.Run("unionid subject: no unionid from snsapi_base, access_denied", func(t *testing.T) {
		h := newHarness(t, withScope("snsapi_base"))
		h.sim.AutoApprove("alice")
		_, q := h.authorize(h.browser(), h.authorizeURL(nil))
		if q.Get("error") != "access_denied" || q.Get("state") != "client-state" || q.Get("code") != "" {
			t.Fatalf("got %v", q)
		}
	})
}

func TestUnboundUserWithUnionIDSubjectIsDenied(t *testing.T) {
	h := newHarness(t)
	h.sim.AutoApprove("carol")
	_, q := h.authorize(h.browser(), h.authorizeURL(nil))
	if q.Get("error") != "access_denied" || !strings.Contains(q.Get("error_description"), "unionid") || q.Get("code") != "" {
		t.Fatalf("got %v", q)
	}
	logs := h.logs.String()
	if !strings.Contains(logs, "Open Platform") || !strings.Contains(logs, "subject: openid") {
		t.Fatalf("the log does not tell the operator how to fix it:\n%s", logs)
	}
}

func TestSnapshotUserGetsNoToken(t *testing.T) {
	h := newHarness(t)
	h.sim.AutoApprove("snapshot")
	resp, q := h.authorize(h.browser(), h.authorizeURL(nil))
	if q != nil {
		t.Fatalf("a snapshot user reached the RP: %v", q)
	}
	body := readBody(t, resp)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "使用完整服务") {
		t.Fatalf("status %d, page:\n%s", resp.StatusCode, body)
	}
	// The retry link starts a fresh WeChat authorization for the same request.
	m := regexp.MustCompile(`href="([^"]+connect/oauth2/authorize[^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatal("no retry link")
	}
	if !strings.Contains(m[1], "#wechat_redirect") {
		t.Errorf("retry link lacks #wechat_redirect: %s", m[1])
	}
}

func TestAuthorizeRedirectsToWeChatExactly(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	b.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := b.Get(h.authorizeURL(map[string]string{"state": "client's own state"}))
	if err != nil {
		t.Fatal(err)
	}
	loc := resp.Header.Get("Location")
	re := regexp.MustCompile(`^` + regexp.QuoteMeta(h.simURL) + `/connect/oauth2/authorize\?appid=` + testAppID +
		`&redirect_uri=` + regexp.QuoteMeta(url.QueryEscape(h.issuer()+"/wechat/callback")) +
		`&response_type=code&scope=snsapi_userinfo&state=([A-Za-z0-9]{1,128})&connect_redirect=1#wechat_redirect$`)
	m := re.FindStringSubmatch(loc)
	if m == nil {
		t.Fatalf("WeChat URL not in WeChat's order: %s", loc)
	}
	if strings.Contains(loc, "client") {
		t.Fatal("the client's state leaked to WeChat")
	}
	var binding *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == browserCookie {
			binding = c
		}
	}
	if binding == nil || !binding.HttpOnly || binding.SameSite != http.SameSiteLaxMode {
		t.Fatalf("browser-binding cookie missing or weak: %+v", binding)
	}
}

func TestAuthorizationCodeReplay(t *testing.T) {
	h := newHarness(t)
	r := h.rp(rpClientID, rpSecret, rpRedirect)
	code := h.codeFor("alice", nil)
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {rpRedirect}}
	status, body, hdr := h.tokenRequest(form, rpClientID, rpSecret)
	if status != 200 || hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("first redemption: %d %v cache-control=%q", status, body, hdr.Get("Cache-Control"))
	}
	at := body["access_token"].(string)
	status, body, hdr = h.tokenRequest(form, rpClientID, rpSecret)
	if status != 400 || body["error"] != "invalid_grant" || hdr.Get("Cache-Control") != "no-store" {
		t.Fatalf("replay: %d %v", status, body)
	}
	// RFC 6749 §4.1.2: tokens issued from a replayed code are revoked.
	if _, err := r.provider.UserInfo(r.ctx, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: at, TokenType: "Bearer"})); err == nil {
		t.Fatal("the access token from a replayed code still works")
	}
}

func TestTokenEndpointErrors(t *testing.T) {
	h := newHarness(t)
	cases := []struct {
		name       string
		form       url.Values
		id, secret string
		status     int
		errCode    string
	}{
		{"wrong redirect_uri", url.Values{"redirect_uri": {rp2Redirect}}, rpClientID, rpSecret, 400, "invalid_grant"},
		{"missing redirect_uri", url.Values{"redirect_uri": {""}}, rpClientID, rpSecret, 400, "invalid_grant"},
		{"wrong secret", nil, rpClientID, "wrong", 401, "invalid_client"},
		{"code injection across clients", nil, rp2ClientID, rp2Secret, 400, "invalid_grant"},
		{"unsupported grant", url.Values{"grant_type": {"password"}}, rpClientID, rpSecret, 400, "unsupported_grant_type"},
		{"PKCE verifier without challenge", url.Values{"code_verifier": {strings.Repeat("v", 43)}}, rpClientID, rpSecret, 400, "invalid_grant"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code := h.codeFor("alice", nil)
			form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {rpRedirect}}
			for k, v := range tc.form {
				if v[0] == "" {
					form.Del(k)
				} else {
					form[k] = v
				}
			}
			status, body, hdr := h.tokenRequest(form, tc.id, tc.secret)
			if status != tc.status || body["error"] != tc.errCode {
				t.Fatalf("got %d %v, want %d %s", status, body, tc.status, tc.errCode)
			}
			if tc.status == 401 && !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Basic") {
				t.Fatalf("401 without WWW-Authenticate: %v", hdr)
			}
		})
	}
}

func TestPKCEDowngrade(t *testing.T) {
	h := newHarness(t)
	challenge := oauth2.S256ChallengeFromVerifier(oauth2.GenerateVerifier())
	code := h.codeFor("alice", map[string]string{"code_challenge": challenge, "code_challenge_method": "S256"})
	status, body, _ := h.tokenRequest(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {rpRedirect}}, rpClientID, rpSecret)
	if status != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("a challenge was sent, no verifier now: got %d %v", status, body)
	}
}

func TestUnregisteredRedirectURIIsNotRedirectedTo(t *testing.T) {
	h := newHarness(t)
	for _, bad := range []string{"http://evil.test/callback", "http://rp.test/callback/../evil", "http://rp.test/callback?x=1"} {
		resp, q := h.authorize(h.browser(), h.authorizeURL(map[string]string{"redirect_uri": bad}))
		if q != nil || resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Fatalf("%s: status %d location %q", bad, resp.StatusCode, resp.Header.Get("Location"))
		}
		if body := readBody(t, resp); !strings.Contains(body, "redirect_uri") {
			t.Fatalf("the page does not say what is wrong:\n%s", body)
		}
		if resp.Header.Get("X-Frame-Options") != "DENY" || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
			t.Fatalf("error page can be framed: %v", resp.Header)
		}
	}
	resp, q := h.authorize(h.browser(), h.authorizeURL(map[string]string{"client_id": "nobody"}))
	if q != nil || resp.StatusCode != 400 {
		t.Fatalf("unknown client: %d", resp.StatusCode)
	}
}

func TestAuthorizeErrorsRedirectWithState(t *testing.T) {
	h := newHarness(t)
	cases := map[string]struct {
		over map[string]string
		err  string
	}{
		"implicit":       {map[string]string{"response_type": "token"}, "unsupported_response_type"},
		"no openid":      {map[string]string{"scope": "profile"}, "invalid_scope"},
		"prompt none":    {map[string]string{"prompt": "none"}, "login_required"},
		"repeated param": {nil, "invalid_request"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			u := h.authorizeURL(tc.over)
			if name == "repeated param" {
				resp, q := h.authorize(h.browser(), u+"&scope=openid")
				// RFC 6749 §3.1: repeated parameters are an error; the request
				// cannot be trusted, so it is a page, not a redirect.
				if q != nil || resp.StatusCode != 400 {
					t.Fatalf("repeated parameter: %d %v", resp.StatusCode, q)
				}
				return
			}
			_, q := h.authorize(h.browser(), u)
			if q.Get("error") != tc.err || q.Get("state") != "client-state" || q.Get("iss") != h.issuer() || q.Get("error_description") == "" {
				t.Fatalf("got %v", q)
			}
		})
	}
}

func TestLoginCSRFCallbackInAnotherBrowser(t *testing.T) {
	h := newHarness(t)
	victim := h.browser()
	victim.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		// Stop at our own callback: the attacker captures this URL.
		if strings.Contains(req.URL.Path, "/wechat/callback") {
			return http.ErrUseLastResponse
		}
		return nil
	}
	h.sim.AutoApprove("alice")
	resp, err := victim.Get(h.authorizeURL(nil))
	if err != nil {
		t.Fatal(err)
	}
	callback := resp.Header.Get("Location")
	if !strings.Contains(callback, "/wechat/callback?code=") {
		t.Fatalf("did not stop at the callback: %s", callback)
	}
	attacker := h.browser()
	resp, q := h.authorize(attacker, callback)
	if q != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("callback accepted in another browser: %d %v", resp.StatusCode, q)
	}
	if h.sim.CallCount("/sns/oauth2/access_token") != 0 {
		t.Fatal("the WeChat code was exchanged for the wrong browser")
	}
	// The browser that started the login can still finish it.
	victim.CheckRedirect = h.browser().CheckRedirect
	_, q = h.authorize(victim, callback)
	if q.Get("code") == "" {
		t.Fatalf("the rightful browser could not finish: %v", q)
	}
}

func TestCallbackWithoutCodeIsAccessDenied(t *testing.T) {
	h := newHarness(t)
	h.sim.SetRefusalMode(simulator.RefuseRedirectStateOnly)
	h.sim.AutoRefuse()
	_, q := h.authorize(h.browser(), h.authorizeURL(nil))
	if q.Get("error") != "access_denied" || q.Get("state") != "client-state" || q.Get("code") != "" {
		t.Fatalf("got %v", q)
	}
}

func TestCallbackUnknownOrExpiredState(t *testing.T) {
	h := newHarness(t)
	for _, q := range []string{"code=x&state=NoSuchHandle123", "code=x&state=bad!state", "code=x", "state=" + strings.Repeat("a", 200), "code=%zz"} {
		resp, err := h.browser().Get(h.issuer() + "/wechat/callback?" + q)
		if err != nil {
			t.Fatal(err)
		}
		body := readBody(t, resp)
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Fatalf("%s: status %d", q, resp.StatusCode)
		}
		if !strings.Contains(body, "<title>") {
			t.Fatalf("%s: not a page: %s", q, body)
		}
	}
}

func TestWeChatFaultsGiveCleanErrors(t *testing.T) {
	h := newHarness(t)
	r := h.rp(rpClientID, rpSecret, rpRedirect)
	cases := []struct {
		endpoint string
		fault    simulator.Fault
		want     string
	}{
		{"/sns/oauth2/access_token", simulator.Fault{Errcode: -1}, "temporarily_unavailable"},
		{"/sns/oauth2/access_token", simulator.Fault{Errcode: 45011}, "temporarily_unavailable"},
		{"/sns/oauth2/access_token", simulator.Fault{Errcode: 40029}, "access_denied"},
		{"/sns/oauth2/access_token", simulator.Fault{Errcode: 40163}, "access_denied"},
		{"/sns/oauth2/access_token", simulator.Fault{Errcode: 40125}, "server_error"},
		{"/sns/oauth2/access_token", simulator.Fault{HTTPStatus: 500}, "temporarily_unavailable"},
		{"/sns/oauth2/access_token", simulator.Fault{Truncated: true}, "temporarily_unavailable"},
		{"/sns/oauth2/access_token", simulator.Fault{Delay: 3 * time.Second}, "temporarily_unavailable"},
		{"/sns/userinfo", simulator.Fault{Errcode: -1, Times: 1000}, "temporarily_unavailable"},
		{"/sns/userinfo", simulator.Fault{Errcode: 45011, Times: 1000}, "temporarily_unavailable"},
		{"/sns/userinfo", simulator.Fault{Errcode: 48001}, "server_error"},
		{"/sns/userinfo", simulator.Fault{HTTPStatus: 502}, "temporarily_unavailable"},
		{"/sns/userinfo", simulator.Fault{Truncated: true}, "temporarily_unavailable"},
	}
	for _, tc := range cases {
		name := tc.endpoint + "/" + strings.ReplaceAll(strings.TrimPrefix(strings.TrimSuffix(strings.ReplaceAll(toJSON(tc.fault), `"`, ""), "}"), "{"), ",", "_")
		t.Run(name, func(t *testing.T) {
			h.sim.InjectFault(tc.endpoint, tc.fault)
			h.sim.AutoApprove("alice")
			_, q := h.authorize(h.browser(), h.authorizeURL(nil))
			if q.Get("error") != tc.want || q.Get("code") != "" || q.Get("state") != "client-state" || q.Get("error_description") == "" {
				t.Fatalf("got %v, want error=%s", q, tc.want)
			}
			h.sim.ClearFaults()
			// The server keeps serving: a normal login works right after.
			res := h.login(r, h.browser(), "bob")
			if res.idToken.Subject != h.sim.UnionID("bob") {
				t.Fatal("the login after a fault failed")
			}
		})
	}
}

// TestUserinfoBusyIsRetried: -1 and 45011 on /sns/userinfo are retried with
// backoff; the code exchange never is.
func TestUserinfoBusyIsRetried(t *testing.T) {
	h := newHarness(t)
	r := h.rp(rpClientID, rpSecret, rpRedirect)
	for _, code := range []int{-1, 45011} {
		h.sim.ResetCalls()
		h.sim.InjectFault("/sns/userinfo", simulator.Fault{Errcode: code, Times: 2})
		res := h.login(r, h.browser(), "alice")
		if res.claims["name"] != "Alice 爱丽丝" {
			t.Fatalf("errcode %d: profile missing after retries: %v", code, res.claims)
		}
		if n := h.sim.CallCount("/sns/userinfo"); n != 3 {
			t.Fatalf("errcode %d: /sns/userinfo called %d times, want 3 (two failures, one success)", code, n)
		}
	}
	h.sim.ResetCalls()
	h.sim.InjectFault("/sns/oauth2/access_token", simulator.Fault{Errcode: -1})
	h.sim.AutoApprove("alice")
	if _, q := h.authorize(h.browser(), h.authorizeURL(nil)); q.Get("error") != "temporarily_unavailable" {
		t.Fatalf("exchange fault: %v", q)
	}
	if n := h.sim.CallCount("/sns/oauth2/access_token"); n != 1 {
		t.Fatalf("the code exchange was retried: %d calls", n)
	}
}

func toJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestSigningKeySurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	h1 := newHarness(t, withKeyDir(dir))
	res := h1.login(h1.rp(rpClientID, rpSecret, rpRedirect), h1.browser(), "alice")
	raw, _ := res.token.Extra("id_token").(string)
	h1.ts.Close()

	// A new server process with the same key directory (and a new address).
	h2 := newHarness(t, withKeyDir(dir))
	ks := gooidc.NewRemoteKeySet(context.Background(), h2.issuer()+"/jwks")
	if _, err := ks.VerifySignature(context.Background(), raw); err != nil {
		t.Fatalf("a token from before the restart does not verify against the JWKS after it: %v", err)
	}
}

func TestDiscoveryDerivesFromIssuerNotHost(t *testing.T) {
	h := newHarness(t, withIssuerPath("/sso"))
	req, _ := http.NewRequest("GET", h.issuer()+"/.well-known/openid-configuration", nil)
	req.Host = "evil.example"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	if d["issuer"] != h.issuer() {
		t.Fatalf("issuer = %v, want %s", d["issuer"], h.issuer())
	}
	for _, k := range []string{"authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"} {
		if s, _ := d[k].(string); !strings.HasPrefix(s, h.issuer()+"/") || strings.Contains(s, "evil") {
			t.Errorf("%s = %v", k, d[k])
		}
	}
	// And the whole flow works under a path issuer, through go-oidc.
	res := h.login(h.rp(rpClientID, rpSecret, rpRedirect), h.browser(), "bob")
	if res.claims["iss"] != h.issuer() {
		t.Fatalf("iss = %v", res.claims["iss"])
	}
}

func TestUserinfoEndpoint(t *testing.T) {
	h := newHarness(t)
	res := h.login(h.rp(rpClientID, rpSecret, rpRedirect), h.browser(), "alice")
	at := res.token.AccessToken
	do := func(method, auth, body string) *http.Response {
		req, _ := http.NewRequest(method, h.issuer()+"/userinfo", strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for _, tc := range []struct {
		name, method, auth, body string
		status                   int
		wwwAuth                  string
	}{
		{"GET header", "GET", "Bearer " + at, "", 200, ""},
		{"POST header", "POST", "Bearer " + at, "", 200, ""},
		{"POST body", "POST", "", "access_token=" + url.QueryEscape(at), 200, ""},
		{"missing", "GET", "", "", 401, `Bearer realm=`},
		{"invalid", "GET", "Bearer nope", "", 401, `error="invalid_token"`},
		{"two methods", "POST", "Bearer " + at, "access_token=" + url.QueryEscape(at), 400, `error="invalid_request"`},
		{"not bearer", "GET", "Basic abc", "", 400, `error="invalid_request"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := do(tc.method, tc.auth, tc.body)
			defer resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Fatalf("Content-Type %q", ct)
			}
			if tc.wwwAuth != "" && !strings.Contains(resp.Header.Get("WWW-Authenticate"), tc.wwwAuth) {
				t.Fatalf("WWW-Authenticate %q lacks %q", resp.Header.Get("WWW-Authenticate"), tc.wwwAuth)
			}
			if tc.status == 200 {
				var m map[string]any
				_ = json.NewDecoder(resp.Body).Decode(&m)
				if m["sub"] != res.idToken.Subject {
					t.Fatalf("userinfo sub = %v", m["sub"])
				}
			}
		})
	}
}

func TestClientSecretPostAndBasic(t *testing.T) {
	h := newHarness(t)
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
		r := h.rp(rpClientID, rpSecret, rpRedirect)
		r.conf.Endpoint.AuthStyle = style
		res := h.login(r, h.browser(), "alice")
		if res.idToken.Subject == "" {
			t.Fatal("no subject")
		}
	}
}

func TestFormPostResponseMode(t *testing.T) {
	h := newHarness(t)
	h.sim.AutoApprove("alice")
	resp, q := h.authorize(h.browser(), h.authorizeURL(map[string]string{"response_mode": "form_post"}))
	if q != nil {
		t.Fatal("form_post answered with a redirect")
	}
	body := readBody(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(body, `action="`+rpRedirect+`"`) || !strings.Contains(body, `name="code"`) ||
		!strings.Contains(body, `value="client-state"`) {
		t.Fatalf("form_post page:\n%s", body)
	}
}
