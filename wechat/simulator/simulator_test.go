package simulator

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	oaID, oaSecret   = "wxoa0000000000aa", "oa-secret-aaaaaaaa"
	oaUnbound        = "wxoa0000000000bb"
	webID, webSecret = "wxweb000000000aa", "web-secret-aaaaaaa"
	mpID, mpSecret   = "wxmp0000000000aa", "mp-secret-aaaaaaaa"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	t     *testing.T
	sim   *Simulator
	srv   *httptest.Server
	clock *clock
	// ua is the User-Agent of every request: WeChat's in-app browser unless
	// a test plays another.
	ua string
	// cookie is sent with every request when set.
	cookie *http.Cookie
}

// User agents of the browsers tests play.
const (
	uaWeChat  = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.49(0x18003137) NetType/WIFI Language/zh_CN"
	uaDesktop = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
)

func newEnv(t *testing.T, mutate ...func(*Config)) *env {
	t.Helper()
	clk := &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	cfg := Config{
		Apps: []App{
			{ID: oaID, Secret: oaSecret, Kind: OfficialAccount, Bound: true, Name: "测试服务号"},
			{ID: oaUnbound, Secret: oaSecret, Kind: OfficialAccount},
			{ID: webID, Secret: webSecret, Kind: WebsiteApp, Bound: true, Name: "测试网站"},
			{ID: mpID, Secret: mpSecret, Kind: MiniProgram, Bound: true},
		},
		Users:     append(DefaultUsers(), User{Key: "mallory", Nickname: "Mallory", Blocked: true}, User{Key: "olduser", Nickname: "Old", Sex: 1, Country: "CN", Province: "Guangdong", City: "Shenzhen"}),
		AllowPort: true,
		Now:       clk.Now,
	}
	for _, m := range mutate {
		m(&cfg)
	}
	s := New(cfg)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return &env{t: t, sim: s, srv: srv, clock: clk, ua: uaWeChat}
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

type page struct {
	status   int
	header   http.Header
	body     string
	location string
}

func (e *env) do(method, path string, form url.Values) page {
	e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, e.srv.URL+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("User-Agent", e.ua)
	if e.cookie != nil {
		req.AddCookie(e.cookie)
	}
	resp, err := noRedirect.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return page{resp.StatusCode, resp.Header, string(b), resp.Header.Get("Location")}
}

func (e *env) get(path string) page { e.t.Helper(); return e.do(http.MethodGet, path, nil) }

func authorizeQuery(appID, redirect, scope, state string) string {
	return "appid=" + appID + "&redirect_uri=" + url.QueryEscape(redirect) + "&response_type=code&scope=" + scope + "&state=" + state
}

// codeFor runs authorize (or qrconnect) as userKey and returns the code.
func (e *env) codeFor(appID, scope, userKey string) string {
	e.t.Helper()
	e.sim.AutoApprove(userKey)
	defer e.sim.AutoApprove("")
	path := pathAuthorize
	if scope == scopeLogin {
		path = pathQRConnect
	}
	p := e.get(path + "?" + authorizeQuery(appID, "https://rp.example/cb", scope, "st"))
	u, err := url.Parse(p.location)
	if p.status != http.StatusFound || err != nil || u.Query().Get("code") == "" {
		e.t.Fatalf("authorize: %d %s %q", p.status, p.header.Get("X-Sim-Errcode"), p.location)
	}
	return u.Query().Get("code")
}

// api calls an API and decodes the JSON body.
func (e *env) api(path string, q url.Values) (map[string]any, page) {
	e.t.Helper()
	p := e.get(path + "?" + q.Encode())
	var m map[string]any
	if err := json.Unmarshal([]byte(p.body), &m); err != nil {
		e.t.Fatalf("%s: body %q is not JSON: %v", path, p.body, err)
	}
	return m, p
}

func errcode(m map[string]any) int {
	f, _ := m["errcode"].(float64)
	return int(f)
}

func (e *env) exchange(appID, secret, code string) map[string]any {
	e.t.Helper()
	m, _ := e.api(pathAccessToken, url.Values{"appid": {appID}, "secret": {secret}, "code": {code}, "grant_type": {"authorization_code"}})
	return m
}

func (e *env) token(appID, secret, scope, user string) map[string]any {
	e.t.Helper()
	m := e.exchange(appID, secret, e.codeFor(appID, scope, user))
	if errcode(m) != 0 {
		e.t.Fatalf("exchange: %v", m)
	}
	return m
}

var ridRE = regexp.MustCompile(`, rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$`)

func TestAuthorizeErrorPages(t *testing.T) {
	cb := url.QueryEscape("https://rp.example/cb")
	tests := []struct {
		name  string
		path  string
		query string
		want  int
		cfg   func(*Config)
	}{
		{"missing appid", pathAuthorize, "redirect_uri=" + cb + "&response_type=code&scope=snsapi_base&state=s", PageAppIDEmpty, nil},
		{"empty appid", pathAuthorize, "appid=&redirect_uri=" + cb + "&response_type=code&scope=snsapi_base&state=s", PageAppIDEmpty, nil},
		{"missing redirect_uri", pathAuthorize, "appid=" + oaID + "&response_type=code&scope=snsapi_base&state=s", PageRedirectURIEmpty, nil},
		{"missing scope", pathAuthorize, "appid=" + oaID + "&redirect_uri=" + cb + "&response_type=code&state=s", PageScopeEmpty, nil},
		{"missing state", pathAuthorize, "appid=" + oaID + "&redirect_uri=" + cb + "&response_type=code&scope=snsapi_base", PageStateEmpty, nil},
		{"order: scope before response_type", pathAuthorize, "appid=" + oaID + "&redirect_uri=" + cb + "&scope=snsapi_base&response_type=code&state=s", PageBadParamOrder, nil},
		{"correct order", pathAuthorize, "appid=" + oaID + "&redirect_uri=" + cb + "&response_type=code&scope=snsapi_base&state=s", 0, nil},
		{"order: appid not first", pathAuthorize, "redirect_uri=" + cb + "&appid=" + oaID + "&response_type=code&scope=snsapi_base&state=s", PageBadParamOrder, nil},
		{"order: extra before state", pathAuthorize, "appid=" + oaID + "&redirect_uri=" + cb + "&response_type=code&scope=snsapi_base&forcePopup=true&state=s", PageBadParamOrder, nil},
		{"unknown extra", pathAuthorize, "appid=" + oaID + "&redirect_uri=" + cb + "&response_type=code&scope=snsapi_base&state=s&foo=1", PageBadParamOrder, nil},
		{"response_type token", pathAuthorize, "appid=" + oaID + "&redirect_uri=" + cb + "&response_type=token&scope=snsapi_base&state=s", PageBadParamOrder, nil},
		{"extras in any order", pathAuthorize, "appid=" + oaID + "&redirect_uri=" + cb + "&response_type=code&scope=snsapi_userinfo&state=s&connect_redirect=1&forceSnapShot=false&forcePopup=true", 0, nil},
		{"unknown appid", pathAuthorize, authorizeQuery("wxnobody", "https://rp.example/cb", "snsapi_base", "s"), PageUnknownAppID, nil},
		{"website appid on authorize", pathAuthorize, authorizeQuery(webID, "https://rp.example/cb", "snsapi_base", "s"), PageOpenPlatformAppID, nil},
		{"mini program appid on authorize", pathAuthorize, authorizeQuery(mpID, "https://rp.example/cb", "snsapi_base", "s"), PageOpenPlatformAppID, nil},
		{"scope snsapi_login on authorize", pathAuthorize, authorizeQuery(oaID, "https://rp.example/cb", "snsapi_login", "s"), PageScopeUnauthorized, nil},
		{"scope list", pathAuthorize, authorizeQuery(oaID, "https://rp.example/cb", "snsapi_base,snsapi_userinfo", "s"), PageScopeUnauthorized, nil},
		{"port refused", pathAuthorize, authorizeQuery(oaID, "https://rp.example:8443/cb", "snsapi_base", "s"), PageRedirectURIMismatch, func(c *Config) { c.AllowPort = false }},
		{"port allowed", pathAuthorize, authorizeQuery(oaID, "http://127.0.0.1:8080/cb", "snsapi_base", "s"), 0, nil},
		{"host not allowed", pathAuthorize, authorizeQuery(oaID, "https://evil.example/cb", "snsapi_base", "s"), PageRedirectURIMismatch, func(c *Config) { c.CallbackHosts = []string{"rp.example"} }},
		{"subdomain not allowed", pathAuthorize, authorizeQuery(oaID, "https://www.rp.example/cb", "snsapi_base", "s"), PageRedirectURIMismatch, func(c *Config) { c.CallbackHosts = []string{"rp.example"} }},
		{"host allowed", pathAuthorize, authorizeQuery(oaID, "https://RP.example/cb", "snsapi_base", "s"), 0, func(c *Config) { c.CallbackHosts = []string{"rp.example"} }},
		{"host:port allowed", pathAuthorize, authorizeQuery(oaID, "http://127.0.0.1:8080/cb", "snsapi_base", "s"), 0, func(c *Config) { c.CallbackHosts = []string{"127.0.0.1:8080"} }},
		{"host:port other port", pathAuthorize, authorizeQuery(oaID, "http://127.0.0.1:9090/cb", "snsapi_base", "s"), PageRedirectURIMismatch, func(c *Config) { c.CallbackHosts = []string{"127.0.0.1:8080"} }},
		{"relative redirect_uri", pathAuthorize, authorizeQuery(oaID, "/cb", "snsapi_base", "s"), PageRedirectURIMismatch, nil},
		{"javascript redirect_uri", pathAuthorize, authorizeQuery(oaID, "javascript:alert(1)", "snsapi_base", "s"), PageRedirectURIMismatch, nil},
		{"state with dash", pathAuthorize, authorizeQuery(oaID, "https://rp.example/cb", "snsapi_base", "a-b"), PageInvalidState, nil},
		{"state 129 bytes", pathAuthorize, authorizeQuery(oaID, "https://rp.example/cb", "snsapi_base", strings.Repeat("a", 129)), PageInvalidState, nil},
		{"state 128 bytes", pathAuthorize, authorizeQuery(oaID, "https://rp.example/cb", "snsapi_base", strings.Repeat("a", 128)), 0, nil},
		{"qrconnect with OA appid", pathQRConnect, authorizeQuery(oaID, "https://rp.example/cb", "snsapi_login", "s"), PageScopeUnauthorized, nil},
		{"qrconnect with userinfo scope", pathQRConnect, authorizeQuery(webID, "https://rp.example/cb", "snsapi_userinfo", "s"), PageScopeUnauthorized, nil},
		{"qrconnect ok with lang", pathQRConnect, authorizeQuery(webID, "https://rp.example/cb", "snsapi_login", "s") + "&lang=en", 0, nil},
		{"qrconnect forcePopup unknown", pathQRConnect, authorizeQuery(webID, "https://rp.example/cb", "snsapi_login", "s") + "&forcePopup=true", PageBadParamOrder, nil},
		{"qrconnect order", pathQRConnect, "appid=" + webID + "&scope=snsapi_login&redirect_uri=" + cb + "&response_type=code&state=s", PageBadParamOrder, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var muts []func(*Config)
			if tt.cfg != nil {
				muts = append(muts, tt.cfg)
			}
			e := newEnv(t, muts...)
			e.sim.AutoApprove("alice")
			p := e.get(tt.path + "?" + tt.query)
			if tt.want == 0 {
				if p.status != http.StatusFound || !strings.Contains(p.location, "code=") {
					t.Fatalf("status %d errcode %s, want a redirect with a code", p.status, p.header.Get("X-Sim-Errcode"))
				}
				return
			}
			if p.status != http.StatusOK || p.location != "" {
				t.Fatalf("status %d location %q: errors are pages, never redirects", p.status, p.location)
			}
			if got := p.header.Get("X-Sim-Errcode"); got != strconv.Itoa(tt.want) {
				t.Errorf("errcode %s, want %d", got, tt.want)
			}
			if !strings.Contains(p.body, `<span id="errcode">`+strconv.Itoa(tt.want)+`</span>`) || !strings.Contains(p.body, pageMessages[tt.want]) {
				t.Errorf("page lacks the code or its text:\n%s", p.body)
			}
			if p.header.Get("X-Frame-Options") != "DENY" || !strings.Contains(p.header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
				t.Errorf("missing anti-framing headers: %v", p.header)
			}
			calls := e.sim.Calls()
			if len(calls) != 1 || calls[0].Errcode != tt.want || calls[0].Endpoint != tt.path {
				t.Errorf("calls = %+v", calls)
			}
		})
	}
}

func TestPageTexts(t *testing.T) {
	for code, want := range map[int]string{10003: "redirect_uri域名与后台配置不一致", 10005: "此公众号并没有这些scope的权限", 10016: "不支持微信开放平台的Appid，请使用公众号Appid"} {
		if pageMessages[code] != want {
			t.Errorf("%d: %q", code, pageMessages[code])
		}
	}
}

// consentForm fetches the consent page and returns its body and token.
func (e *env) consentForm(path, query string) (string, string) {
	e.t.Helper()
	p := e.get(path + "?" + query)
	if p.status != http.StatusOK || p.header.Get("X-Sim-Errcode") != "" {
		e.t.Fatalf("consent page: %d %s", p.status, p.header.Get("X-Sim-Errcode"))
	}
	m := regexp.MustCompile(`name="t" value="([^"]+)"`).FindStringSubmatch(p.body)
	if m == nil {
		e.t.Fatalf("no token in page:\n%s", p.body)
	}
	if p.header.Get("X-Frame-Options") != "DENY" || !strings.Contains(p.header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
		e.t.Errorf("missing anti-framing headers")
	}
	return p.body, m[1]
}

func TestConsentPage(t *testing.T) {
	e := newEnv(t)
	body, tok := e.consentForm(pathAuthorize, authorizeQuery(oaID, "https://rp.example/cb?x=1#frag", scopeUserInfo, "S1")+"&forcePopup=true")
	for _, want := range []string{"<title>微信授权</title>", "申请获取你的昵称、头像", "#07C160", "测试服务号", "Alice 爱丽丝", "Bob 鲍勃", "快照页虚拟用户", "允许", "拒绝", "width=device-width", `action="../../_sim/authorize"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// Self-contained: no external resources.
	for _, bad := range []string{"<script", "<link", "src=", "http://", "https://", "url("} {
		if strings.Contains(body, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
	// A GET of the form target does nothing.
	if p := e.get(pathDecide + "?t=" + tok + "&user=bob&action=allow"); p.status != http.StatusMethodNotAllowed {
		t.Errorf("GET decide: %d", p.status)
	}
	// A forged token fails.
	if p := e.do(http.MethodPost, pathDecide, url.Values{"t": {"forged"}, "user": {"bob"}, "action": {"allow"}}); p.status != http.StatusForbidden || p.location != "" {
		t.Errorf("forged POST: %d %q", p.status, p.location)
	}
	p := e.do(http.MethodPost, pathDecide, url.Values{"t": {tok}, "user": {"bob"}, "action": {"allow"}})
	if p.status != http.StatusFound {
		t.Fatalf("POST: %d %s", p.status, p.body)
	}
	u, _ := url.Parse(p.location)
	if u.Host != "rp.example" || u.Query().Get("x") != "1" || u.Query().Get("state") != "S1" || u.Fragment != "frag" || !strings.HasPrefix(u.RawQuery, "x=1&code=") {
		t.Errorf("redirect = %s", p.location)
	}
	m := e.exchange(oaID, oaSecret, u.Query().Get("code"))
	if m["openid"] != e.sim.OpenID(oaID, "bob") || m["scope"] != scopeUserInfo {
		t.Errorf("exchange = %v", m)
	}
	// The token is single use.
	if p := e.do(http.MethodPost, pathDecide, url.Values{"t": {tok}, "user": {"bob"}, "action": {"allow"}}); p.status != http.StatusForbidden || p.header.Get("X-Sim-Errcode") != strconv.Itoa(PageFormExpired) {
		t.Errorf("replayed POST: %d", p.status)
	}
	var decide *Call
	for _, c := range e.sim.Calls() {
		if c.Endpoint == pathDecide && c.UserKey == "bob" {
			decide = &c
		}
	}
	if decide == nil || !decide.ForcePopup || decide.AppID != oaID || decide.Scope != scopeUserInfo {
		t.Errorf("decide call = %+v", decide)
	}
	// Unknown user in the form.
	_, tok = e.consentForm(pathAuthorize, authorizeQuery(oaID, "https://rp.example/cb", scopeBase, "S1"))
	if p := e.do(http.MethodPost, pathDecide, url.Values{"t": {tok}, "user": {"nobody"}, "action": {"allow"}}); p.location != "" || p.header.Get("X-Sim-Errcode") != strconv.Itoa(PageUnknownUser) {
		t.Errorf("unknown user: %d %q", p.status, p.location)
	}
	// The form expires.
	_, tok = e.consentForm(pathAuthorize, authorizeQuery(oaID, "https://rp.example/cb", scopeBase, "S1"))
	e.clock.Add(formTTL + time.Second)
	if p := e.do(http.MethodPost, pathDecide, url.Values{"t": {tok}, "user": {"bob"}, "action": {"allow"}}); p.status != http.StatusForbidden {
		t.Errorf("expired form: %d", p.status)
	}
}

func TestSilentAndQRPages(t *testing.T) {
	e := newEnv(t)
	body, _ := e.consentForm(pathAuthorize, authorizeQuery(oaID, "https://rp.example/cb", scopeBase, "S"))
	if !strings.Contains(body, "选择模拟微信用户 (静默授权)") || strings.Contains(body, "拒绝") || strings.Contains(body, "申请获取") {
		t.Errorf("snsapi_base page:\n%s", body)
	}
	body, tok := e.consentForm(pathQRConnect, authorizeQuery(webID, "https://rp.example/cb", scopeLogin, "S"))
	if !strings.Contains(body, "扫码登录") || !strings.Contains(body, "测试网站") || !strings.Contains(body, `action="../_sim/authorize"`) {
		t.Errorf("qrconnect page:\n%s", body)
	}
	p := e.do(http.MethodPost, pathDecide, url.Values{"t": {tok}, "user": {"alice"}, "action": {"allow"}})
	u, _ := url.Parse(p.location)
	if m := e.exchange(webID, webSecret, u.Query().Get("code")); m["scope"] != scopeLogin || m["unionid"] != e.sim.UnionID("alice") {
		t.Errorf("qr exchange = %v", m)
	}
}

func TestRefusal(t *testing.T) {
	q := authorizeQuery(oaID, "https://rp.example/cb", scopeUserInfo, "S9")
	t.Run("auto, no redirect (default)", func(t *testing.T) {
		e := newEnv(t)
		e.sim.AutoRefuse()
		p := e.get(pathAuthorize + "?" + q)
		if p.status != http.StatusOK || p.location != "" || strings.Contains(p.body, "code=") {
			t.Errorf("got %d %q", p.status, p.location)
		}
		e.sim.AutoApprove("") // off again: the consent page
		if p := e.get(pathAuthorize + "?" + q); !strings.Contains(p.body, `name="t"`) {
			t.Error("AutoApprove(\"\") should show the page again")
		}
	})
	t.Run("auto, state only", func(t *testing.T) {
		e := newEnv(t)
		e.sim.SetRefusalMode(RefuseRedirectStateOnly)
		e.sim.AutoRefuse()
		p := e.get(pathAuthorize + "?" + q)
		if p.status != http.StatusFound || p.location != "https://rp.example/cb?state=S9" {
			t.Errorf("got %d %q", p.status, p.location)
		}
	})
	t.Run("page deny, both modes", func(t *testing.T) {
		e := newEnv(t)
		_, tok := e.consentForm(pathAuthorize, q)
		p := e.do(http.MethodPost, pathDecide, url.Values{"t": {tok}, "user": {"alice"}, "action": {"deny"}})
		if p.status != http.StatusOK || p.location != "" {
			t.Errorf("no-redirect deny: %d %q", p.status, p.location)
		}
		e.sim.SetRefusalMode(RefuseRedirectStateOnly)
		_, tok = e.consentForm(pathAuthorize, q)
		p = e.do(http.MethodPost, pathDecide, url.Values{"t": {tok}, "user": {"alice"}, "action": {"deny"}})
		if p.status != http.StatusFound || p.location != "https://rp.example/cb?state=S9" {
			t.Errorf("state-only deny: %d %q", p.status, p.location)
		}
	})
	t.Run("auto-approve unknown user", func(t *testing.T) {
		e := newEnv(t)
		e.sim.AutoApprove("nobody")
		if p := e.get(pathAuthorize + "?" + q); p.location != "" || p.header.Get("X-Sim-Errcode") != strconv.Itoa(PageUnknownUser) {
			t.Errorf("got %d %q", p.status, p.location)
		}
	})
}

func TestCodeSingleUseAndExpiry(t *testing.T) {
	e := newEnv(t)
	code := e.codeFor(oaID, scopeBase, "alice")
	if m := e.exchange(oaID, "wrong-secret", code); errcode(m) != 40125 || !ridRE.MatchString(m["errmsg"].(string)) || !strings.HasPrefix(m["errmsg"].(string), "invalid appsecret") {
		t.Errorf("wrong secret: %v", m)
	}
	if m := e.exchange("wxnobody", oaSecret, code); errcode(m) != 40013 {
		t.Errorf("wrong appid: %v", m)
	}
	if m := e.exchange(oaUnbound, oaSecret, code); errcode(m) != 40029 {
		t.Errorf("another app's code: %v", m)
	}
	m := e.exchange(oaID, oaSecret, code) // a failed attempt did not consume it
	if errcode(m) != 0 || m["openid"] != e.sim.OpenID(oaID, "alice") {
		t.Fatalf("exchange: %v", m)
	}
	m = e.exchange(oaID, oaSecret, code)
	if errcode(m) != 40163 || !strings.HasPrefix(m["errmsg"].(string), "code been used, rid: ") || !ridRE.MatchString(m["errmsg"].(string)) {
		t.Errorf("reuse: %v", m)
	}
	if m := e.exchange(oaID, oaSecret, "garbage"); errcode(m) != 40029 || !strings.HasPrefix(m["errmsg"].(string), "invalid code, rid: ") {
		t.Errorf("garbage: %v", m)
	}
	for _, tc := range []struct {
		q    url.Values
		want int
	}{
		{url.Values{"secret": {oaSecret}, "code": {"c"}, "grant_type": {"authorization_code"}}, 41002},
		{url.Values{"appid": {oaID}, "code": {"c"}, "grant_type": {"authorization_code"}}, 41004},
		{url.Values{"appid": {oaID}, "secret": {oaSecret}, "grant_type": {"authorization_code"}}, 41008},
		{url.Values{"appid": {oaID}, "secret": {oaSecret}, "code": {"c"}, "grant_type": {"client_credential"}}, 40002},
	} {
		if m, _ := e.api(pathAccessToken, tc.q); errcode(m) != tc.want {
			t.Errorf("%v: %v, want %d", tc.q, m, tc.want)
		}
	}

	// OA codes live 5 minutes, website app codes 10 (§1, §3).
	oa1, oa2 := e.codeFor(oaID, scopeBase, "alice"), e.codeFor(oaID, scopeBase, "alice")
	web1, web2 := e.codeFor(webID, scopeLogin, "alice"), e.codeFor(webID, scopeLogin, "alice")
	e.clock.Add(5*time.Minute - time.Second)
	if m := e.exchange(oaID, oaSecret, oa1); errcode(m) != 0 {
		t.Errorf("OA code at 4:59: %v", m)
	}
	e.clock.Add(2 * time.Second)
	if m := e.exchange(oaID, oaSecret, oa2); errcode(m) != 40029 {
		t.Errorf("OA code at 5:01: %v", m)
	}
	e.clock.Add(4 * time.Minute)
	if m := e.exchange(webID, webSecret, web1); errcode(m) != 0 {
		t.Errorf("website code at 9:01: %v", m)
	}
	e.clock.Add(time.Minute)
	if m := e.exchange(webID, webSecret, web2); errcode(m) != 40029 {
		t.Errorf("website code at 10:01: %v", m)
	}
	// An used code that expired is forgotten: 40029, no longer 40163.
	if m := e.exchange(oaID, oaSecret, code); errcode(m) != 40029 {
		t.Errorf("expired used code: %v", m)
	}
}

func TestCodeTTLConfig(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.CodeTTL = time.Minute })
	code := e.codeFor(oaID, scopeBase, "alice")
	e.clock.Add(61 * time.Second)
	if m := e.exchange(oaID, oaSecret, code); errcode(m) != 40029 {
		t.Errorf("%v", m)
	}
}

func TestUnionIDRules(t *testing.T) {
	tests := []struct {
		app, secret, scope, user string
		want                     bool
	}{
		{oaID, oaSecret, scopeUserInfo, "alice", true},
		{oaID, oaSecret, scopeBase, "alice", false}, // never for snsapi_base (§7)
		{oaID, oaSecret, scopeUserInfo, "carol", false},
		{oaUnbound, oaSecret, scopeUserInfo, "alice", false},
		{webID, webSecret, scopeLogin, "bob", true},
		{webID, webSecret, scopeLogin, "carol", false},
	}
	e := newEnv(t)
	for _, tt := range tests {
		m := e.token(tt.app, tt.secret, tt.scope, tt.user)
		got, has := m["unionid"]
		if has != tt.want || (has && got != e.sim.UnionID(tt.user)) {
			t.Errorf("%s %s %s: unionid %v (present %v), want present %v", tt.app, tt.scope, tt.user, got, has, tt.want)
		}
		if _, has := m["is_snapshotuser"]; has {
			t.Errorf("%s: is_snapshotuser present for a real user", tt.user)
		}
		if m["expires_in"] != float64(7200) || m["scope"] != tt.scope || m["openid"] != e.sim.OpenID(tt.app, tt.user) {
			t.Errorf("token = %v", m)
		}
		// userinfo: unionid when bound, regardless of scope
		if tt.scope == scopeBase {
			continue
		}
		ui, _ := e.api(pathUserInfo, url.Values{"access_token": {m["access_token"].(string)}, "openid": {m["openid"].(string)}})
		if _, has := ui["unionid"]; has != tt.want {
			t.Errorf("userinfo %s %s: %v", tt.app, tt.user, ui)
		}
	}
}

func TestSnapshotUser(t *testing.T) {
	e := newEnv(t)
	m := e.token(oaID, oaSecret, scopeUserInfo, "snapshot")
	if m["is_snapshotuser"] != float64(1) {
		t.Errorf("userinfo: %v", m)
	}
	if m["openid"] == e.sim.OpenID(oaID, "alice") || m["unionid"] == e.sim.UnionID("alice") || m["unionid"] == "" {
		t.Errorf("snapshot ids must be virtual: %v", m)
	}
	if m := e.token(oaID, oaSecret, scopeBase, "snapshot"); m["is_snapshotuser"] != nil {
		t.Errorf("base: %v", m)
	}
	ui, _ := e.api(pathUserInfo, url.Values{"access_token": {m["access_token"].(string)}, "openid": {m["openid"].(string)}})
	if ui["nickname"] != "微信用户" {
		t.Errorf("snapshot userinfo %v", ui)
	}
}

func TestUserInfoAndAuth(t *testing.T) {
	e := newEnv(t)
	mux := http.NewServeMux()
	mux.Handle("/wx/", http.StripPrefix("/wx", e.sim))
	mounted := httptest.NewServer(mux)
	defer mounted.Close()

	m := e.token(oaID, oaSecret, scopeUserInfo, "alice")
	at, oid := m["access_token"].(string), m["openid"].(string)
	resp, err := http.Get(mounted.URL + "/wx/sns/userinfo?" + url.Values{"access_token": {at}, "openid": {oid}, "lang": {"zh_CN"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	var ui map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&ui)
	resp.Body.Close()
	if ui["nickname"] != "Alice 爱丽丝" || ui["sex"] != float64(0) || ui["province"] != "" || ui["city"] != "" || ui["country"] != "" ||
		ui["headimgurl"] != mounted.URL+"/wx/_sim/avatar/alice/132" || ui["unionid"] != e.sim.UnionID("alice") || ui["openid"] != oid {
		t.Errorf("userinfo = %v", ui)
	}
	if priv, ok := ui["privilege"].([]any); !ok || len(priv) != 0 {
		t.Errorf("privilege = %#v, want []", ui["privilege"])
	}
	if resp.Header.Get("Content-Type") != "text/plain" {
		t.Errorf("content-type %q", resp.Header.Get("Content-Type"))
	}
	// The avatar is served.
	if p := e.get("/_sim/avatar/alice/132"); p.status != 200 || !strings.HasPrefix(p.body, "<svg") || p.header.Get("Content-Type") != "image/svg+xml" {
		t.Errorf("avatar: %d %q", p.status, p.body)
	}
	// Pre-2021 fields when a user sets them.
	m2 := e.token(oaID, oaSecret, scopeUserInfo, "olduser")
	ui2, _ := e.api(pathUserInfo, url.Values{"access_token": {m2["access_token"].(string)}, "openid": {m2["openid"].(string)}})
	if ui2["sex"] != float64(1) || ui2["city"] != "Shenzhen" || ui2["headimgurl"] != "" {
		t.Errorf("olduser = %v", ui2)
	}

	if a, _ := e.api(pathAuth, url.Values{"access_token": {at}, "openid": {oid}}); errcode(a) != 0 || a["errmsg"] != "ok" {
		t.Errorf("auth: %v", a)
	}
	base := e.token(oaID, oaSecret, scopeBase, "alice")
	cases := []struct {
		path string
		q    url.Values
		want int
		msg  string
	}{
		{pathUserInfo, url.Values{"access_token": {base["access_token"].(string)}, "openid": {base["openid"].(string)}}, 48001, "api unauthorized, hints: [ req_id: "},
		{pathUserInfo, url.Values{"access_token": {"nope"}, "openid": {oid}}, 40014, "invalid access_token, rid: "},
		{pathUserInfo, url.Values{"access_token": {at}, "openid": {e.sim.OpenID(oaID, "bob")}}, 40003, "invalid openid"},
		{pathUserInfo, url.Values{"openid": {oid}}, 41001, ""},
		{pathUserInfo, url.Values{"access_token": {at}}, 41009, ""},
		{pathAuth, url.Values{"access_token": {"nope"}, "openid": {oid}}, 40014, ""},
		{pathAuth, url.Values{"access_token": {at}, "openid": {"oOther"}}, 40003, "invalid openid, rid: "},
	}
	for _, c := range cases {
		m, _ := e.api(c.path, c.q)
		if errcode(m) != c.want || !strings.HasPrefix(m["errmsg"].(string), c.msg) {
			t.Errorf("%s %v: %v, want %d", c.path, c.q, m, c.want)
		}
		if len(m) != 2 {
			t.Errorf("error body has extra fields: %v", m)
		}
	}
	e.clock.Add(2*time.Hour + time.Second)
	for _, p := range []string{pathAuth, pathUserInfo} {
		if m, _ := e.api(p, url.Values{"access_token": {at}, "openid": {oid}}); errcode(m) != 42001 {
			t.Errorf("%s expired: %v", p, m)
		}
	}
}

func TestRefresh(t *testing.T) {
	e := newEnv(t)
	m := e.token(oaID, oaSecret, scopeUserInfo, "alice")
	at, rt, oid := m["access_token"].(string), m["refresh_token"].(string), m["openid"].(string)
	refresh := func(appID, rt string) map[string]any {
		r, _ := e.api(pathRefreshToken, url.Values{"appid": {appID}, "grant_type": {"refresh_token"}, "refresh_token": {rt}})
		return r
	}
	// Not expired: same token, extended.
	e.clock.Add(time.Hour)
	r := refresh(oaID, rt)
	if r["access_token"] != at || r["refresh_token"] != rt || r["openid"] != oid || r["scope"] != scopeUserInfo || r["expires_in"] != float64(7200) {
		t.Errorf("refresh = %v", r)
	}
	if _, has := r["unionid"]; has {
		t.Error("refresh carries no unionid")
	}
	e.clock.Add(90 * time.Minute) // 2h30 after issue, 1h30 after the extension
	if a, _ := e.api(pathAuth, url.Values{"access_token": {at}, "openid": {oid}}); errcode(a) != 0 {
		t.Errorf("extended token: %v", a)
	}
	// Expired: a new token, the old one stays invalid.
	e.clock.Add(3 * time.Hour)
	r = refresh(oaID, rt)
	if r["access_token"] == at || r["access_token"] == "" {
		t.Errorf("refresh after expiry = %v", r)
	}
	if a, _ := e.api(pathAuth, url.Values{"access_token": {r["access_token"].(string)}, "openid": {oid}}); errcode(a) != 0 {
		t.Errorf("new token: %v", a)
	}
	if a, _ := e.api(pathAuth, url.Values{"access_token": {at}, "openid": {oid}}); errcode(a) != 40014 {
		t.Errorf("old token: %v", a)
	}
	if r := refresh(oaUnbound, rt); errcode(r) != 40030 {
		t.Errorf("other app: %v", r)
	}
	if r := refresh("wxnobody", rt); errcode(r) != 40013 {
		t.Errorf("unknown app: %v", r)
	}
	if r, _ := e.api(pathRefreshToken, url.Values{"appid": {oaID}, "grant_type": {"refresh_token"}}); errcode(r) != 41003 {
		t.Errorf("missing: %v", r)
	}
	if r, _ := e.api(pathRefreshToken, url.Values{"appid": {oaID}, "grant_type": {"authorization_code"}, "refresh_token": {rt}}); errcode(r) != 40002 {
		t.Errorf("grant_type: %v", r)
	}
	e.clock.Add(30 * 24 * time.Hour)
	if r := refresh(oaID, rt); errcode(r) != 42002 {
		t.Errorf("after 30 days: %v", r)
	}
}

func TestCode2Session(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Apps = append(c.Apps, App{ID: "wxmpunbound", Secret: mpSecret, Kind: MiniProgram}) })
	q := func(appID, code string) url.Values {
		return url.Values{"appid": {appID}, "secret": {mpSecret}, "js_code": {code}, "grant_type": {"authorization_code"}}
	}
	code := e.sim.IssueJSCode(mpID, "alice")
	m, _ := e.api(pathCode2Session, q(mpID, code))
	if errcode(m) != 0 || m["openid"] != e.sim.OpenID(mpID, "alice") || m["unionid"] != e.sim.UnionID("alice") || len(m["session_key"].(string)) != 24 {
		t.Errorf("session = %v", m)
	}
	if _, has := m["errcode"]; !has {
		t.Error(`jscode2session success carries "errcode":0 (§4 example)`)
	}
	if m, _ := e.api(pathCode2Session, q(mpID, code)); errcode(m) != 40163 {
		t.Errorf("reuse: %v", m)
	}
	if m, _ := e.api(pathCode2Session, q("wxmpunbound", e.sim.IssueJSCode("wxmpunbound", "alice"))); errcode(m) != 0 || m["unionid"] != nil {
		t.Errorf("unbound: %v", m)
	}
	if m, _ := e.api(pathCode2Session, q(mpID, e.sim.IssueJSCode(mpID, "mallory"))); errcode(m) != 40226 {
		t.Errorf("blocked: %v", m)
	}
	if m, _ := e.api(pathCode2Session, q(mpID, e.codeFor(oaID, scopeBase, "alice"))); errcode(m) != 40029 {
		t.Errorf("OA code: %v", m)
	}
	expiring := e.sim.IssueJSCode(mpID, "bob")
	e.clock.Add(5*time.Minute + time.Second)
	if m, _ := e.api(pathCode2Session, q(mpID, expiring)); errcode(m) != 40029 {
		t.Errorf("expired: %v", m)
	}
	// A js_code cannot be used on the OA endpoint.
	if m := e.exchange(mpID, mpSecret, e.sim.IssueJSCode(mpID, "bob")); errcode(m) != 40029 {
		t.Errorf("js_code at access_token: %v", m)
	}
	e.sim.InjectFault(pathCode2Session, Fault{Errcode: 45011})
	m, _ = e.api(pathCode2Session, q(mpID, e.sim.IssueJSCode(mpID, "bob")))
	if errcode(m) != 45011 || !strings.HasPrefix(m["errmsg"].(string), "api minute-quota reach limit") {
		t.Errorf("fault: %v", m)
	}
}

func TestOnlyGET(t *testing.T) {
	e := newEnv(t)
	for _, p := range []string{pathAccessToken, pathRefreshToken, pathAuth, pathUserInfo, pathCode2Session} {
		r := e.do(http.MethodPost, p+"?appid="+oaID, url.Values{"x": {"1"}})
		var m map[string]any
		if err := json.Unmarshal([]byte(r.body), &m); err != nil || errcode(m) != 43001 || r.status != 200 {
			t.Errorf("POST %s: %d %s", p, r.status, r.body)
		}
	}
	if p := e.get("/nowhere"); p.status != 404 {
		t.Errorf("unknown path: %d", p.status)
	}
}

func TestContentType(t *testing.T) {
	e := newEnv(t)
	_, p := e.api(pathAuth, url.Values{"access_token": {"x"}, "openid": {"y"}})
	if p.header.Get("Content-Type") != "text/plain" || p.status != 200 {
		t.Errorf("default: %d %q", p.status, p.header.Get("Content-Type"))
	}
	e = newEnv(t, func(c *Config) { c.ContentType = "application/json; charset=utf-8" })
	_, p = e.api(pathAuth, url.Values{"access_token": {"x"}, "openid": {"y"}})
	if p.header.Get("Content-Type") != "application/json; charset=utf-8" {
		t.Errorf("json: %q", p.header.Get("Content-Type"))
	}
	if strings.Contains(p.body, `\u`) || strings.HasSuffix(p.body, "\n") {
		t.Errorf("body %q", p.body)
	}
}

func TestFaults(t *testing.T) {
	e := newEnv(t)
	at := e.token(oaID, oaSecret, scopeUserInfo, "alice")
	q := url.Values{"access_token": {at["access_token"].(string)}, "openid": {at["openid"].(string)}}

	e.sim.InjectFault(pathUserInfo, Fault{Errcode: -1, Times: 2})
	for i := 0; i < 2; i++ {
		if m, _ := e.api(pathUserInfo, q); errcode(m) != -1 || m["errmsg"] != "system error" {
			t.Errorf("fault %d: %v", i, m)
		}
	}
	if m, _ := e.api(pathUserInfo, q); errcode(m) != 0 || m["nickname"] != "Alice 爱丽丝" {
		t.Errorf("after faults: %v", m)
	}

	e.sim.InjectFault(pathUserInfo, Fault{HTTPStatus: 503})
	if p := e.get(pathUserInfo + "?" + q.Encode()); p.status != 503 || !strings.HasPrefix(p.header.Get("Content-Type"), "text/html") || !strings.Contains(p.body, "<html>") {
		t.Errorf("503: %d %q", p.status, p.body)
	}

	// Truncated: the work is done (the code is consumed), the body is cut.
	code := e.codeFor(oaID, scopeBase, "alice")
	e.sim.InjectFault(pathAccessToken, Fault{Truncated: true})
	p := e.get(pathAccessToken + "?" + url.Values{"appid": {oaID}, "secret": {oaSecret}, "code": {code}, "grant_type": {"authorization_code"}}.Encode())
	if p.status != 200 || json.Valid([]byte(p.body)) || !strings.HasPrefix(p.body, `{"access_token":"`) {
		t.Errorf("truncated: %d %q", p.status, p.body)
	}
	if m := e.exchange(oaID, oaSecret, code); errcode(m) != 40163 {
		t.Errorf("after truncated exchange: %v", m)
	}

	// Delay respects the request's context.
	e.sim.InjectFault(pathAuth, Fault{Delay: 10 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+pathAuth+"?"+q.Encode(), nil)
	start := time.Now()
	_, err := http.DefaultClient.Do(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("delay: err = %v", err)
	}
	// The handler gives up too (the record appears once it has).
	deadline := time.Now().Add(3 * time.Second)
	for e.sim.CallCount(pathAuth) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if e.sim.CallCount(pathAuth) != 1 || time.Since(start) > 3*time.Second {
		t.Errorf("handler did not stop with the request")
	}
	// A short delay just delays.
	e.sim.InjectFault(pathAuth, Fault{Delay: 50 * time.Millisecond})
	start = time.Now()
	if m, _ := e.api(pathAuth, q); errcode(m) != 0 || time.Since(start) < 50*time.Millisecond {
		t.Errorf("short delay: %v", m)
	}
	// Page faults show the error page.
	e.sim.InjectFault(pathAuthorize, Fault{Errcode: 10009})
	e.sim.AutoApprove("alice")
	if p := e.get(pathAuthorize + "?" + authorizeQuery(oaID, "https://rp.example/cb", scopeBase, "s")); p.location != "" || !strings.Contains(p.body, "操作太频繁了") {
		t.Errorf("page fault: %d %q", p.status, p.location)
	}
	var faulted int
	for _, c := range e.sim.Calls() {
		if c.Fault {
			faulted++
		}
	}
	if faulted != 7 {
		t.Errorf("%d faulted calls recorded, want 7", faulted)
	}
}

func TestCallsRecord(t *testing.T) {
	e := newEnv(t)
	e.sim.AutoApprove("bob")
	e.get(pathAuthorize + "?" + authorizeQuery(oaID, "https://rp.example/cb", scopeUserInfo, "s") + "&forcePopup=true")
	calls := e.sim.Calls()
	if len(calls) != 1 {
		t.Fatalf("calls = %+v", calls)
	}
	c := calls[0]
	if c.Endpoint != pathAuthorize || c.AppID != oaID || c.Scope != scopeUserInfo || c.UserKey != "bob" || !c.ForcePopup || c.Errcode != 0 || c.HTTPStatus != 302 || !c.At.Equal(e.clock.Now()) {
		t.Errorf("call = %+v", c)
	}
	e.exchange(oaID, oaSecret, "bad")
	if n := e.sim.CallCount(pathAccessToken); n != 1 {
		t.Errorf("CallCount = %d", n)
	}
	if c := e.sim.Calls()[1]; c.Errcode != 40029 || c.AppID != oaID {
		t.Errorf("exchange call = %+v", c)
	}
	e.sim.ResetCalls()
	if len(e.sim.Calls()) != 0 || e.sim.CallCount(pathAccessToken) != 0 {
		t.Error("ResetCalls did not reset")
	}
}

func TestConcurrentExchangeOneWinner(t *testing.T) {
	e := newEnv(t)
	code := e.codeFor(oaID, scopeUserInfo, "alice")
	const n = 32
	results := make(chan int, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Get(e.srv.URL + pathAccessToken + "?" + url.Values{"appid": {oaID}, "secret": {oaSecret}, "code": {code}, "grant_type": {"authorization_code"}}.Encode())
			if err != nil {
				results <- -99
				return
			}
			defer resp.Body.Close()
			var m map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&m)
			results <- errcode(m)
		}()
	}
	wg.Wait()
	close(results)
	wins, used := 0, 0
	for r := range results {
		switch r {
		case 0:
			wins++
		case 40163:
			used++
		default:
			t.Errorf("unexpected errcode %d", r)
		}
	}
	if wins != 1 || used != n-1 {
		t.Errorf("%d winners, %d 40163, want 1 and %d", wins, used, n-1)
	}
}

func TestIDs(t *testing.T) {
	a, b := New(Config{}), New(Config{})
	idRE := regexp.MustCompile(`^o[A-Za-z0-9_-]{27}$`)
	for _, id := range []string{a.OpenID("wx1", "alice"), a.UnionID("alice"), a.UnionID("snapshot")} {
		if !idRE.MatchString(id) {
			t.Errorf("id %q does not look like WeChat's", id)
		}
	}
	if a.OpenID("wx1", "alice") != b.OpenID("wx1", "alice") {
		t.Error("openid not stable across instances")
	}
	if a.OpenID("wx1", "alice") == a.OpenID("wx2", "alice") || a.OpenID("wx1", "alice") == a.OpenID("wx1", "bob") {
		t.Error("openids collide across apps or users")
	}
	if a.UnionID("carol") != "" || a.UnionID("nobody") != "" || a.UnionID("alice") == a.UnionID("bob") {
		t.Error("unionid rules")
	}
	if c := New(Config{IDSeed: "other"}); c.OpenID("wx1", "alice") == a.OpenID("wx1", "alice") {
		t.Error("IDSeed ignored")
	}
	if len(a.Users()) != 4 {
		t.Errorf("DefaultUsers: %d", len(a.Users()))
	}
}

func TestSweep(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < 20; i++ {
		e.token(oaID, oaSecret, scopeBase, "alice")
		e.sim.IssueJSCode(mpID, "bob")
		e.consentForm(pathAuthorize, authorizeQuery(oaID, "https://rp.example/cb", scopeBase, "s"))
	}
	codes, access, refresh, forms := e.sim.pending()
	if codes != 40 || access != 20 || refresh != 20 || forms != 20 {
		t.Fatalf("before: %d %d %d %d", codes, access, refresh, forms)
	}
	e.clock.Add(31*24*time.Hour + expiredGrace + time.Minute)
	e.sim.IssueJSCode(mpID, "bob") // any issuance sweeps
	codes, access, refresh, forms = e.sim.pending()
	if codes != 1 || access != 0 || refresh != 0 || forms != 0 {
		t.Errorf("after: %d %d %d %d", codes, access, refresh, forms)
	}
}

func TestAppendQuery(t *testing.T) {
	for in, want := range map[string]string{
		"https://a/cb":        "https://a/cb?code=C",
		"https://a/cb?x=1":    "https://a/cb?x=1&code=C",
		"https://a/cb?":       "https://a/cb?code=C",
		"https://a/cb?x=1#f":  "https://a/cb?x=1&code=C#f",
		"https://a/cb#f?y=2":  "https://a/cb?code=C#f?y=2",
		"https://a/cb?x=1&":   "https://a/cb?x=1&code=C",
		"https://a/p/cb?a=b#": "https://a/p/cb?a=b&code=C#",
	} {
		if got := appendQuery(in, "code=C"); got != want {
			t.Errorf("appendQuery(%q) = %q, want %q", in, got, want)
		}
	}
}
