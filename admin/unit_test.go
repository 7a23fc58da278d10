package admin

import (
	"encoding/json"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wechat-oidc/wechat-oidc/directory"
	"github.com/wechat-oidc/wechat-oidc/keys"
	"github.com/wechat-oidc/wechat-oidc/oidc"
)

// TestVerifyIDToken: every check of OpenID Connect Core 1.0 §3.1.3.7 the
// console makes refuses the token that breaks it.
func TestVerifyIDToken(t *testing.T) {
	h := newHarness(t)
	now := h.clock.Now()
	foreign, err := keys.NewEphemeral()
	if err != nil {
		t.Fatal(err)
	}
	base := func() map[string]any {
		return map[string]any{"iss": h.issuer, "sub": "p_x", "aud": ClientID, "azp": ClientID, "exp": now.Add(time.Hour).Unix(),
			"iat": now.Unix(), "auth_time": now.Add(-time.Hour).Unix(), "nonce": "n-1"}
	}
	cases := []struct {
		name   string
		change func(map[string]any)
		signer *keys.Set
		reauth bool
		ok     bool
	}{
		{"valid", nil, nil, false, true},
		{"aud array with azp", func(c map[string]any) { c["aud"] = []string{ClientID, "grafana"} }, nil, false, true},
		{"aud array without azp", func(c map[string]any) { c["aud"] = []string{ClientID, "grafana"}; delete(c, "azp") }, nil, false, false},
		{"signed with another key", nil, foreign, false, false},
		{"other issuer", func(c map[string]any) { c["iss"] = "https://evil.example" }, nil, false, false},
		{"other audience", func(c map[string]any) { c["aud"] = "grafana"; c["azp"] = "grafana" }, nil, false, false},
		{"azp of another party", func(c map[string]any) { c["azp"] = "grafana" }, nil, false, false},
		{"aud not a string", func(c map[string]any) { c["aud"] = 7 }, nil, false, false},
		{"no sub", func(c map[string]any) { delete(c, "sub") }, nil, false, false},
		{"expired", func(c map[string]any) { c["exp"] = now.Unix() }, nil, false, false},
		{"issued in the future", func(c map[string]any) { c["iat"] = now.Add(2 * time.Minute).Unix() }, nil, false, false},
		{"other nonce", func(c map[string]any) { c["nonce"] = "n-2" }, nil, false, false},
		{"no nonce", func(c map[string]any) { delete(c, "nonce") }, nil, false, false},
		{"logout token", func(c map[string]any) {
			c["events"] = map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}
		}, nil, false, false},
		{"no auth_time", func(c map[string]any) { delete(c, "auth_time") }, nil, false, false},
		{"auth_time in the future", func(c map[string]any) { c["auth_time"] = now.Add(5 * time.Minute).Unix() }, nil, false, false},
		{"reauth, 11 minutes old", func(c map[string]any) { c["auth_time"] = now.Add(-11 * time.Minute).Unix() }, nil, true, false},
		{"reauth, 9 minutes old", func(c map[string]any) { c["auth_time"] = now.Add(-9 * time.Minute).Unix() }, nil, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			if tc.change != nil {
				tc.change(c)
			}
			payload, err := json.Marshal(c)
			if err != nil {
				t.Fatal(err)
			}
			signer := h.keys
			if tc.signer != nil {
				signer = tc.signer
			}
			tok, err := signer.Sign(payload)
			if err != nil {
				t.Fatal(err)
			}
			cl, err := h.console.verifyIDToken(tok, "n-1", tc.reauth)
			if tc.ok != (err == nil) {
				t.Fatalf("verifyIDToken: %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && cl.Sub != "p_x" {
				t.Fatalf("sub = %q", cl.Sub)
			}
		})
	}
	if _, err := h.console.verifyIDToken("not.a.jwt", "n-1", false); err == nil {
		t.Fatal("garbage verified")
	}
}

// TestSafeNext: where the console goes after sign-in is a path of the
// console, never another site (open redirect) or another part of the
// server.
func TestSafeNext(t *testing.T) {
	h := newHarness(t)
	def := "/admin/pending"
	for in, want := range map[string]string{
		"":                          def,
		"/admin":                    "/admin",
		"/admin/people?q=a%20b":     "/admin/people?q=a%20b",
		"/admin/people/p_1":         "/admin/people/p_1",
		"https://evil.example/":     def,
		"//evil.example/admin/":     def,
		"/\\evil.example":           def,
		"/admin/../authorize":       def,
		"/admin/people/..":          def,
		"/administrator":            def,
		"/token":                    def,
		"javascript:alert(1)":       def,
		"/admin/x#frag":             def,
		"/admin/\r\nSet-Cookie:x=y": def,
		"admin/people":              def,
	} {
		if got := h.console.safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFromAcceptLanguage(t *testing.T) {
	for in, want := range map[string]string{
		"":                               "zh",
		"zh-CN,zh;q=0.9":                 "zh",
		"en-US,en;q=0.9":                 "en",
		"en-US,en;q=0.9,zh-CN;q=0.8":     "en",
		"de-DE,en;q=0.5,zh;q=0.7":        "zh",
		"de-DE,fr":                       "zh",
		"zh-TW;q=0.1, EN":                "en",
		"en;q=0,zh;q=0.1":                "zh",
		"en;q=bogus":                     "zh",
		"zh-Hans-CN, en-GB;q=0.9":        "zh",
		"fr;q=0.9, en;q=0.8, zh;q=0.8":   "en",
		"  en  ;  q=0.8  , zh ; q=0.7  ": "en",
	} {
		if got := fromAcceptLanguage(in); got != want {
			t.Errorf("fromAcceptLanguage(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestMessagesComplete: every message has both languages with the same
// verbs, and every key the code and templates use exists.
func TestMessagesComplete(t *testing.T) {
	verbs := regexp.MustCompile(`%[sd]`)
	for k, m := range messages {
		if m[0] == "" || m[1] == "" {
			t.Errorf("message %q lacks a language: %q", k, m)
		}
		if len(verbs.FindAllString(m[0], -1)) != len(verbs.FindAllString(m[1], -1)) {
			t.Errorf("message %q: zh and en have different verbs: %q", k, m)
		}
	}
	used := map[string]bool{}
	tmplKey := regexp.MustCompile(`\.Tf? "([a-z.]+)"`)
	err := fs.WalkDir(assets, "templates", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assets.ReadFile(path)
		for _, m := range tmplKey.FindAllStringSubmatch(string(b), -1) {
			used[m[1]] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	goKey := regexp.MustCompile(`"((?:err|flash|signin|signedout|csrf|forbidden|unavailable|notfound|link|reauth|pending|people|person|inv|audit)\.[a-z.]+)"`)
	files, _ := filepath.Glob("*.go")
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range goKey.FindAllStringSubmatch(string(b), -1) {
			used[m[1]] = true
		}
	}
	for _, s := range []directory.Status{directory.StatusActive, directory.StatusPending, directory.StatusDisabled} {
		used["status."+string(s)] = true
	}
	for _, s := range []directory.InvitationState{directory.InvitationPending, directory.InvitationUsed, directory.InvitationExpired, directory.InvitationRevoked} {
		used["inv.state."+string(s)] = true
	}
	if len(used) < 60 {
		t.Fatalf("found only %d used keys: the scan is broken", len(used))
	}
	for k := range used {
		if _, ok := messages[k]; !ok {
			t.Errorf("message key %q is used but not in the catalog", k)
		}
	}
}

var missingKey = regexp.MustCompile(`\[[a-z]+\.[a-z.]+\]`)

// TestAdminLanguages: Accept-Language picks the language; the switch link
// changes it and the choice sticks.
func TestAdminLanguages(t *testing.T) {
	h := newHarness(t)
	admin := h.person("root", directory.StatusActive, "admins")
	alice := h.person("alice", directory.StatusActive, "dev")
	zh := h.browser(admin.ID, "zh-CN,zh;q=0.9,en;q=0.8")
	en := h.browser(admin.ID, "en-US,en;q=0.9")
	zh.signIn()
	en.signIn()
	for _, path := range []string{"/admin/pending", "/admin/people", "/admin/people/" + alice.ID, "/admin/invitations", "/admin/audit", "/admin/reauth"} {
		pz, pe := zh.open(path), en.open(path)
		mustContain(t, pz, `<html lang="zh-CN">`, "管理控制台", "待审批", "审计", `href="`+path+`?lang=en" data-lang-switch>English<`)
		mustContain(t, pe, `<html lang="en">`, "Admin console", "Pending", "Audit", `data-lang-switch>中文<`)
		mustNotContain(t, pe, "管理控制台", "待审批")
		for _, p := range []page{pz, pe} {
			if m := missingKey.FindString(p.body); m != "" {
				t.Errorf("%s: missing message %s", path, m)
			}
		}
	}
	p := zh.open("/admin/people?lang=en")
	mustContain(t, p, `<html lang="en">`, "Search")
	p = zh.open("/admin/audit")
	mustContain(t, p, `<html lang="en">`, "Audit trail")
	p = zh.open("/admin/audit?lang=zh")
	mustContain(t, p, `<html lang="zh-CN">`, "审计记录")
	// The sign-in asks the provider for the page language.
	for b, want := range map[*browser]string{en: "ui_locales=en&", h.browser("", "zh-CN"): "ui_locales=zh-CN&"} {
		if p := b.do(http.MethodGet, "/admin/signin", nil); !strings.Contains(p.location+"&", want) {
			t.Errorf("sign-in redirect %q lacks %s", p.location, want)
		}
	}
}

var styleBlock = regexp.MustCompile(`(?s)<style>(.*?)</style>`)

// TestAdminPagesStrictCSP: every page is served with a CSP that allows no
// script at all and only the one inlined stylesheet, by its hash; the page
// carries no script, no inline event handler and no style attribute (the
// CSP would block them), and is neither cached nor framed.
func TestAdminPagesStrictCSP(t *testing.T) {
	h := newHarness(t)
	admin := h.person("root", directory.StatusActive, "admins")
	alice := h.person("alice", directory.StatusActive, "dev")
	h.pendingPerson("wx-1", "小王", "o-1", "R-22222")
	b := h.browser(admin.ID, "en")
	b.signIn()
	if !strings.Contains(contentSecurityPolicy, "default-src 'none'") || strings.Contains(contentSecurityPolicy, "unsafe") ||
		strings.Contains(contentSecurityPolicy, "script-src") {
		t.Fatalf("CSP %q is not strict", contentSecurityPolicy)
	}
	created := b.submit("/admin/invitations", map[string][]string{"username": {"x"}, "days": {"1"}})
	pages := []page{created, b.open("/admin/pending"), b.open("/admin/people"), b.open("/admin/people/" + alice.ID),
		b.open("/admin/invitations"), b.open("/admin/audit"), b.open("/admin/reauth"),
		h.browser("", "en").do(http.MethodGet, "/admin/callback?state=x", nil)}
	for _, p := range pages {
		if got := p.header.Get("Content-Security-Policy"); got != contentSecurityPolicy {
			t.Errorf("%s: CSP %q", p.dataPage(), got)
		}
		if p.header.Get("Cache-Control") != "no-store" || p.header.Get("X-Frame-Options") != "DENY" || p.header.Get("Referrer-Policy") != "same-origin" {
			t.Errorf("%s: headers %v", p.dataPage(), p.header)
		}
		for _, bad := range []string{"<script", " style=", " onclick=", " onload=", " onsubmit=", "javascript:"} {
			if strings.Contains(strings.ToLower(p.body), bad) {
				t.Errorf("%s: page contains %q", p.dataPage(), bad)
			}
		}
		m := styleBlock.FindAllStringSubmatch(p.body, -1)
		if len(m) != 1 || !strings.Contains(contentSecurityPolicy, "'"+cspHash(m[0][1])+"'") {
			t.Errorf("%s: the inlined stylesheet does not match the CSP hash", p.dataPage())
		}
	}
}

// TestNewChecksOptions: a console that could not sign anyone in is refused
// at start, with a message saying what to register.
func TestNewChecksOptions(t *testing.T) {
	h := newHarness(t)
	good := Options{Issuer: h.issuer, Directory: h.dir, Store: h.store, Provider: h.provider, Core: h.core}
	if _, err := New(good); err != nil {
		t.Fatalf("good options: %v", err)
	}
	bare := &oidc.Provider{Issuer: h.issuer, Clients: oidc.NewRegistry(), Signer: h.keys}
	for name, o := range map[string]Options{
		"no issuer":          {Directory: h.dir, Store: h.store, Provider: h.provider, Core: h.core},
		"no core":            {Issuer: h.issuer, Directory: h.dir, Store: h.store, Provider: h.provider},
		"other issuer":       {Issuer: "https://other.example", Directory: h.dir, Store: h.store, Provider: h.provider, Core: h.core},
		"client not there":   {Issuer: h.issuer, Directory: h.dir, Store: h.store, Provider: bare, Core: h.core},
		"relative issuer":    {Issuer: "/sso", Directory: h.dir, Store: h.store, Provider: h.provider, Core: h.core},
		"no directory/store": {Issuer: h.issuer, Provider: h.provider, Core: h.core},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	_, err := New(Options{Issuer: h.issuer, Directory: h.dir, Store: h.store, Provider: bare, Core: h.core})
	if err == nil || !strings.Contains(err.Error(), "admin.ClientConfig") {
		t.Errorf("unregistered client: %v", err)
	}
}

// TestCookiesOnHTTPS: behind an https issuer (and under a path) the
// console's cookies are Secure and scoped to {path}/admin.
func TestCookiesOnHTTPS(t *testing.T) {
	h := newHarness(t)
	iss := "https://sso.example.com/id"
	cc := ClientConfig(iss)
	if cc.RedirectURIs[0] != "https://sso.example.com/id/admin/callback" || cc.AuthMethod != oidc.AuthMethodNone || !cc.RequirePKCE || cc.Secret != "" {
		t.Fatalf("ClientConfig = %+v", cc)
	}
	p := &oidc.Provider{Issuer: iss, Signer: h.keys, Clients: oidc.NewRegistry(&oidc.Client{ID: cc.ID, RedirectURIs: cc.RedirectURIs, AuthMethods: []string{cc.AuthMethod}})}
	c, err := New(Options{Issuer: iss, Directory: h.dir, Store: h.store, Provider: p, Core: h.core})
	if err != nil {
		t.Fatal(err)
	}
	ck := c.cookie(sessionCookie, "v", 60)
	if !ck.Secure || !ck.HttpOnly || ck.Path != "/id/admin" || ck.SameSite != http.SameSiteLaxMode {
		t.Fatalf("cookie on https = %+v", ck)
	}
	if got := c.safeNext("/id/admin/people"); got != "/id/admin/people" {
		t.Fatalf("safeNext under a path = %q", got)
	}
}

// TestSignInMiddlewareRuns: the limiter the lead hands in guards the
// sign-in route (the one route that stores state for anyone).
func TestSignInMiddlewareRuns(t *testing.T) {
	limited := 0
	h := newHarness(t, func(o *Options) {
		o.SignInMiddleware = []echo.MiddlewareFunc{func(next echo.HandlerFunc) echo.HandlerFunc {
			return func(c echo.Context) error { limited++; return c.String(http.StatusTooManyRequests, "slow down") }
		}}
	})
	p := h.browser("", "en").do(http.MethodGet, "/admin/signin", nil)
	if p.status != http.StatusTooManyRequests || limited != 1 {
		t.Fatalf("sign-in with a refusing limiter: %d (limiter ran %d times)", p.status, limited)
	}
}

// TestAdminPendingOldestFirst: whoever has waited longest is on top.
func TestAdminPendingOldestFirst(t *testing.T) {
	h := newHarness(t)
	b := h.browser(h.person("root", directory.StatusActive, "admins").ID, "en")
	older := h.pendingPerson("zz-older", "老", "o-old", "R-22222")
	h.clock.advance(time.Minute)
	newer := h.pendingPerson("aa-newer", "新", "o-new", "R-33333")
	p := b.signIn()
	i, j := strings.Index(p.body, older.ID), strings.Index(p.body, newer.ID)
	if i < 0 || j < 0 || i > j {
		t.Fatalf("pending order: older at %d, newer at %d", i, j)
	}
}
