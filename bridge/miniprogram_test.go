package bridge

import (
	"bytes"
	"encoding/json"
	"github.com/wechat-oidc/wechat-oidc/config"
	wechatconn "github.com/wechat-oidc/wechat-oidc/connector/wechat"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/wechat-oidc/wechat-oidc/oidc"
	"github.com/wechat-oidc/wechat-oidc/wechat/simulator"
)

// sessionKeyTap sits between the bridge and the simulator's API and writes
// down every session_key /sns/jscode2session hands out, so that tests can
// prove none of them ever leaves the bridge. The simulator's session keys
// are random and it has no accessor for them.
type sessionKeyTap struct {
	target atomic.Value // *url.URL of the simulator, set once the harness exists
	mu     sync.Mutex
	keys   []string
}

// withSessionKeyTap routes the bridge's WeChat API calls through tap; call
// tap.attach(h) right after newHarness.
func withSessionKeyTap(t *testing.T, tap *sessionKeyTap) harnessOption {
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(tap.target.Load().(*url.URL))
		},
		ModifyResponse: func(resp *http.Response) error {
			if resp.Request.URL.Path != "/sns/jscode2session" {
				return nil
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				return err
			}
			resp.Body = io.NopCloser(bytes.NewReader(body))
			var s struct {
				SessionKey string `json:"session_key"`
			}
			if json.Unmarshal(body, &s) == nil && s.SessionKey != "" {
				tap.mu.Lock()
				tap.keys = append(tap.keys, s.SessionKey)
				tap.mu.Unlock()
			}
			return nil
		},
	}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	return withConfig(func(c *config.File) { c.WeChat.APIBaseURL = srv.URL })
}

func (tap *sessionKeyTap) attach(h *harness) {
	u, err := url.Parse(h.simURL)
	if err != nil {
		h.t.Fatal(err)
	}
	tap.target.Store(u)
}

func (tap *sessionKeyTap) sessionKeys() []string {
	tap.mu.Lock()
	defer tap.mu.Unlock()
	return slices.Clone(tap.keys)
}

// exchangeJSCode posts a mini-program token exchange with HTTP Basic client
// authentication; extra overrides form fields ("" deletes one). It returns
// the status, the decoded body and the raw body.
func (h *harness) exchangeJSCode(clientID, secret, jsCode string, extra map[string]string) (int, map[string]any, string) {
	h.t.Helper()
	form := url.Values{
		"grant_type":         {oidc.GrantTokenExchange},
		"subject_token":      {jsCode},
		"subject_token_type": {wechatconn.TokenTypeWxJSCode},
		"scope":              {"openid profile"},
	}
	for k, v := range extra {
		if v == "" {
			form.Del(k)
		} else {
			form.Set(k, v)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, h.issuer()+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		h.t.Errorf("token exchange Cache-Control = %q, want no-store", cc)
	}
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		h.t.Fatalf("token exchange: status %d, body %q", resp.StatusCode, raw)
	}
	return resp.StatusCode, body, string(raw)
}

// wantExchangeError asserts an error answer and returns its description.
func (h *harness) wantExchangeError(status int, body map[string]any, wantStatus int, wantCode string) string {
	h.t.Helper()
	if status != wantStatus || body["error"] != wantCode {
		h.t.Fatalf("got %d %v, want %d %s", status, body, wantStatus, wantCode)
	}
	d, _ := body["error_description"].(string)
	if d == "" {
		h.t.Fatalf("no error_description: %v", body)
	}
	return d
}

// userinfoWith calls /userinfo with a Bearer token.
func (h *harness) userinfoWith(accessToken string) (int, map[string]any, string) {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.issuer()+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body map[string]any
	_ = json.Unmarshal(raw, &body)
	return resp.StatusCode, body, string(raw)
}

func TestMiniProgramExchangeSameSubAsOfficialAccount(t *testing.T) {
	tap := &sessionKeyTap{}
	h := newHarness(t, withMiniProgram(rpClientID), withSessionKeyTap(t, tap))
	tap.attach(h)
	var bodies []string // every answer the outside world got

	// alice signs in to the web application through the Official Account.
	r := h.rp(rpClientID, rpSecret, rpRedirect)
	web := h.login(r, h.browser(), "alice")
	sub := web.idToken.Subject
	if sub != h.sim.UnionID("alice") {
		t.Fatalf("OA login sub = %q, want alice's unionid", sub)
	}

	// The mini program's backend exchanges alice's wx.login code.
	jsCode := h.sim.IssueJSCode(testMiniAppID, "alice")
	status, body, raw := h.exchangeJSCode(rpClientID, rpSecret, jsCode, nil)
	bodies = append(bodies, raw)
	if status != http.StatusOK {
		t.Fatalf("exchange: %d %s\n%s", status, raw, h.logs.String())
	}
	if body["issued_token_type"] != oidc.TokenTypeAccessToken || body["token_type"] != "Bearer" || body["scope"] != "openid profile" {
		t.Fatalf("response = %s", raw)
	}
	if _, ok := body["refresh_token"]; ok {
		t.Fatalf("refresh token issued: %s", raw)
	}
	at, _ := body["access_token"].(string)
	rawID, _ := body["id_token"].(string)
	idt, err := r.verifier.Verify(r.ctx, rawID)
	if err != nil {
		t.Fatalf("go-oidc does not accept the exchanged ID token: %v", err)
	}
	if idt.Subject != sub {
		t.Fatalf("mini program sub = %q, OA sub = %q: not the same person", idt.Subject, sub)
	}
	if err := idt.VerifyAccessToken(at); err != nil {
		t.Fatalf("at_hash: %v", err)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if claims["preferred_username"] != web.claims["preferred_username"] || claims["preferred_username"] != wechatconn.PreferredUsername(sub) {
		t.Fatalf("preferred_username %v, web %v", claims["preferred_username"], web.claims["preferred_username"])
	}
	for _, k := range []string{"nonce", "sid"} {
		if _, ok := claims[k]; ok {
			t.Fatalf("exchanged ID token has %s: %v", k, claims)
		}
	}
	if at, ok := claims["auth_time"].(float64); !ok || int64(at) < h.now().Unix()-60 {
		t.Fatalf("auth_time = %v, want the time of the exchange", claims["auth_time"])
	}

	// The access token works at userinfo, with the same sub.
	uiStatus, ui, uiRaw := h.userinfoWith(at)
	bodies = append(bodies, uiRaw)
	if uiStatus != http.StatusOK || ui["sub"] != sub {
		t.Fatalf("userinfo: %d %s", uiStatus, uiRaw)
	}

	// requested_token_type id_token: the ID token is the access_token.
	status, body, raw = h.exchangeJSCode(rpClientID, rpSecret, h.sim.IssueJSCode(testMiniAppID, "alice"),
		map[string]string{"requested_token_type": oidc.TokenTypeIDToken})
	bodies = append(bodies, raw)
	if status != http.StatusOK || body["issued_token_type"] != oidc.TokenTypeIDToken || body["token_type"] != "N_A" {
		t.Fatalf("id_token exchange: %d %s", status, raw)
	}
	if _, ok := body["id_token"]; ok {
		t.Fatalf("id_token exchange also has id_token: %s", raw)
	}
	idt, err = r.verifier.Verify(r.ctx, body["access_token"].(string))
	if err != nil || idt.Subject != sub {
		t.Fatalf("id_token exchange: %v, sub %v", err, idt)
	}

	// The session_key WeChat handed out never left the bridge.
	keys := tap.sessionKeys()
	if len(keys) != 2 {
		t.Fatalf("tap saw %d session keys, want 2 (one per exchange, no retries)", len(keys))
	}
	logs := h.logs.String()
	for _, k := range keys {
		for _, b := range bodies {
			if strings.Contains(b, k) {
				t.Fatalf("a response contains the session_key: %s", b)
			}
		}
		if strings.Contains(logs, k) {
			t.Fatalf("the log contains the session_key")
		}
	}
	for _, b := range append(bodies, logs) {
		if strings.Contains(b, "session_key") {
			t.Fatalf("session_key mentioned in %q", b)
		}
	}
	// One line per exchange with the client and the outcome; never the code.
	if strings.Contains(logs, jsCode) {
		t.Fatalf("the log contains the js_code")
	}
	if n := strings.Count(logs, `msg="mini program token exchange" `); n != 2 || !strings.Contains(logs, "client_id="+rpClientID+" outcome=ok") {
		t.Fatalf("want 2 exchange log lines with client_id and outcome=ok, got %d:\n%s", n, logs)
	}
}

func TestMiniProgramExchangeUnauthorizedClient(t *testing.T) {
	h := newHarness(t, withMiniProgram(rpClientID))
	status, body, _ := h.exchangeJSCode(rp2ClientID, rp2Secret, h.sim.IssueJSCode(testMiniAppID, "alice"), nil)
	h.wantExchangeError(status, body, http.StatusBadRequest, oidc.CodeUnauthorizedClient)
	if n := h.sim.CallCount("/sns/jscode2session"); n != 0 {
		t.Fatalf("WeChat was asked %d times for a client that may not exchange", n)
	}
}

func TestMiniProgramExchangeNotConfigured(t *testing.T) {
	h := newHarness(t)
	status, body, _ := h.exchangeJSCode(rpClientID, rpSecret, h.sim.IssueJSCode(testMiniAppID, "alice"), nil)
	h.wantExchangeError(status, body, http.StatusBadRequest, oidc.CodeUnsupportedGrantType)
}

func TestMiniProgramExchangeCodeErrors(t *testing.T) {
	h := newHarness(t, withMiniProgram(rpClientID))

	t.Run("reused js_code", func(t *testing.T) {
		h.t = t
		code := h.sim.IssueJSCode(testMiniAppID, "alice")
		if status, _, raw := h.exchangeJSCode(rpClientID, rpSecret, code, nil); status != http.StatusOK {
			t.Fatalf("first use: %d %s", status, raw)
		}
		before := h.sim.CallCount("/sns/jscode2session")
		status, body, _ := h.exchangeJSCode(rpClientID, rpSecret, code, nil)
		if d := h.wantExchangeError(status, body, http.StatusBadRequest, oidc.CodeInvalidGrant); !strings.Contains(d, "already used") {
			t.Fatalf("description %q", d)
		}
		if n := h.sim.CallCount("/sns/jscode2session") - before; n != 1 {
			t.Fatalf("WeChat asked %d times, want exactly once (no retries)", n)
		}
	})
	t.Run("invalid js_code", func(t *testing.T) {
		h.t = t
		status, body, _ := h.exchangeJSCode(rpClientID, rpSecret, "0a3XyZnotarealcode0000000000000", nil)
		if d := h.wantExchangeError(status, body, http.StatusBadRequest, oidc.CodeInvalidGrant); !strings.Contains(d, "wx.login") {
			t.Fatalf("description %q", d)
		}
	})
	t.Run("js_code of another app", func(t *testing.T) {
		h.t = t
		status, body, _ := h.exchangeJSCode(rpClientID, rpSecret, h.sim.IssueJSCode(testAppID, "alice"), nil)
		h.wantExchangeError(status, body, http.StatusBadRequest, oidc.CodeInvalidGrant)
	})
	t.Run("bad request does not use up the code", func(t *testing.T) {
		h.t = t
		code := h.sim.IssueJSCode(testMiniAppID, "alice")
		status, body, _ := h.exchangeJSCode(rpClientID, rpSecret, code, map[string]string{"audience": "someone-else"})
		h.wantExchangeError(status, body, http.StatusBadRequest, oidc.CodeInvalidTarget)
		if status, _, raw := h.exchangeJSCode(rpClientID, rpSecret, code, nil); status != http.StatusOK {
			t.Fatalf("the code was used up by a refused request: %d %s", status, raw)
		}
	})
	t.Run("carol has no unionid", func(t *testing.T) {
		h.t = t
		status, body, _ := h.exchangeJSCode(rpClientID, rpSecret, h.sim.IssueJSCode(testMiniAppID, "carol"), nil)
		if d := h.wantExchangeError(status, body, http.StatusBadRequest, oidc.CodeInvalidGrant); !strings.Contains(d, "unionid") {
			t.Fatalf("description %q", d)
		}
		logs := h.logs.String()
		if !strings.Contains(logs, "bind the mini program") || strings.Contains(logs, "Bind the Official Account") {
			t.Fatalf("want the mini program's fix (and not the Official Account's) in the log:\n%s", logs)
		}
	})
	if strings.Contains(h.logs.String(), "session_key") {
		t.Fatalf("session_key in the log")
	}
}

func TestMiniProgramExchangeWeChatFaults(t *testing.T) {
	cases := []struct {
		name   string
		fault  simulator.Fault
		status int
		code   string
	}{
		{"system busy -1", simulator.Fault{Errcode: -1}, http.StatusServiceUnavailable, oidc.CodeTemporarilyUnavailable},
		{"minute quota 45011", simulator.Fault{Errcode: 45011}, http.StatusServiceUnavailable, oidc.CodeTemporarilyUnavailable},
		{"HTTP 500", simulator.Fault{HTTPStatus: 500}, http.StatusServiceUnavailable, oidc.CodeTemporarilyUnavailable},
		{"broken body", simulator.Fault{Truncated: true}, http.StatusServiceUnavailable, oidc.CodeTemporarilyUnavailable},
		{"code blocked 40226", simulator.Fault{Errcode: 40226}, http.StatusBadRequest, oidc.CodeInvalidGrant},
		{"code used 40163", simulator.Fault{Errcode: 40163}, http.StatusBadRequest, oidc.CodeInvalidGrant},
		{"invalid code 40029", simulator.Fault{Errcode: 40029}, http.StatusBadRequest, oidc.CodeInvalidGrant},
	}
	h := newHarness(t, withMiniProgram(rpClientID))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h.t = t
			h.sim.InjectFault("/sns/jscode2session", tc.fault)
			before := h.sim.CallCount("/sns/jscode2session")
			status, body, _ := h.exchangeJSCode(rpClientID, rpSecret, h.sim.IssueJSCode(testMiniAppID, "alice"), nil)
			h.wantExchangeError(status, body, tc.status, tc.code)
			if n := h.sim.CallCount("/sns/jscode2session") - before; n != 1 {
				t.Fatalf("WeChat asked %d times, want exactly once (a js_code is single-use: no retries)", n)
			}
		})
	}
}

func TestMiniProgramExchangeBadCredentials(t *testing.T) {
	const wrong = "wrong-mini-secret-0123456789"
	h := newHarness(t, withMiniProgram(rpClientID), withConfig(func(c *config.File) { c.WeChat.MiniProgram.AppSecret = wrong }))
	status, body, _ := h.exchangeJSCode(rpClientID, rpSecret, h.sim.IssueJSCode(testMiniAppID, "alice"), nil)
	h.wantExchangeError(status, body, http.StatusInternalServerError, oidc.CodeServerError)
	logs := h.logs.String()
	if !strings.Contains(logs, "check wechat.mini_program.app_id and app_secret") {
		t.Fatalf("no operator line naming wechat.mini_program:\n%s", logs)
	}
	if strings.Contains(logs, wrong) {
		t.Fatalf("the log contains the configured secret")
	}
}

func TestMiniProgramDiscovery(t *testing.T) {
	grants := func(h *harness) []string {
		resp, err := http.Get(h.issuer() + "/.well-known/openid-configuration")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var d struct {
			GrantTypes []string `json:"grant_types_supported"`
		}
		if err := jsonDecode(resp, &d); err != nil {
			t.Fatal(err)
		}
		return d.GrantTypes
	}
	if g := grants(newHarness(t, withMiniProgram(rpClientID))); !slices.Contains(g, oidc.GrantTokenExchange) {
		t.Fatalf("mini program configured, grants %v", g)
	}
	if g := grants(newHarness(t)); slices.Contains(g, oidc.GrantTokenExchange) {
		t.Fatalf("no mini program, grants %v", g)
	}
	// A mini program that no client may use: not advertised either.
	noClient := withConfig(func(c *config.File) {
		c.WeChat.MiniProgram = &config.WeChatAppConfig{AppID: testMiniAppID, AppSecret: testMiniSecret}
	})
	if g := grants(newHarness(t, noClient)); slices.Contains(g, oidc.GrantTokenExchange) {
		t.Fatalf("no client with mini_program, grants %v", g)
	}
}
