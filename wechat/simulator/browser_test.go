package simulator

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
)

// TestOAAuthorizeOutsideWeChat: the Official Account authorize page opened
// in any browser but WeChat's says "请在微信客户端打开链接", issues no code
// and redirects nowhere — also with AutoApprove on. qrconnect (the desktop
// QR page) is for other browsers and is not affected.
func TestOAAuthorizeOutsideWeChat(t *testing.T) {
	e := newEnv(t)
	e.sim.AutoApprove("alice")
	q := authorizeQuery(oaID, "https://rp.example/cb", scopeBase, "S1")
	for _, ua := range []string{uaDesktop, "Go-http-client/1.1", ""} {
		e.ua = ua
		p := e.get(pathAuthorize + "?" + q)
		if p.status != http.StatusOK || p.location != "" || p.header.Get("X-Sim-Errcode") != strconv.Itoa(PageOpenInWeChat) {
			t.Fatalf("UA %q: %d errcode %q location %q", ua, p.status, p.header.Get("X-Sim-Errcode"), p.location)
		}
		for _, want := range []string{"请在微信客户端打开链接", "<title>抱歉，出错了</title>", `data-sim-page="open-in-wechat"`} {
			if !strings.Contains(p.body, want) {
				t.Errorf("UA %q: the page lacks %q", ua, want)
			}
		}
		if strings.Contains(p.body, "<form") || strings.Contains(p.body, pathWeChatBrowser) {
			t.Errorf("UA %q: without DevBrowserSwitch the page offers a way on:\n%s", ua, p.body)
		}
	}
	e.ua = uaDesktop
	if p := e.get(pathQRConnect + "?" + authorizeQuery(webID, "https://rp.example/cb", scopeLogin, "S2")); p.status != http.StatusFound {
		t.Errorf("qrconnect in a desktop browser: %d %s", p.status, p.header.Get("X-Sim-Errcode"))
	}
	e.ua = uaWeChat
	if p := e.get(pathAuthorize + "?" + q); p.status != http.StatusFound || !strings.Contains(p.location, "code=") {
		t.Errorf("in WeChat: %d %q", p.status, p.location)
	}
	issued := 0
	for _, c := range e.sim.Calls() {
		if c.Endpoint == pathAuthorize && c.Errcode == 0 {
			issued++
		}
	}
	if issued != 1 {
		t.Errorf("%d authorize calls succeeded, want only the one in WeChat", issued)
	}
}

// TestWeChatBrowserCookieIgnoredOutsideDevMode: the dev-mode cookie that
// lets a desktop browser play WeChat's counts for nothing unless
// DevBrowserSwitch is on, and its route does not exist then.
func TestWeChatBrowserCookieIgnoredOutsideDevMode(t *testing.T) {
	e := newEnv(t)
	e.ua = uaDesktop
	e.cookie = &http.Cookie{Name: simBrowserCookie, Value: "1"}
	if p := e.get(pathAuthorize + "?" + authorizeQuery(oaID, "https://rp.example/cb", scopeBase, "S1")); p.header.Get("X-Sim-Errcode") != strconv.Itoa(PageOpenInWeChat) {
		t.Errorf("the cookie was believed: %d %q", p.status, p.header.Get("X-Sim-Errcode"))
	}
	if p := e.do(http.MethodPost, pathWeChatBrowser, url.Values{"q": {"appid=x"}}); p.status != http.StatusNotFound || p.header.Get("Set-Cookie") != "" {
		t.Errorf("POST %s outside dev mode: %d %q", pathWeChatBrowser, p.status, p.header.Get("Set-Cookie"))
	}
}

// TestDevBrowserSwitch: in dev mode the page offers one button; it marks the
// browser (a cookie), goes back to the same authorize URL — relative, under
// any mount prefix, in WeChat's parameter order — and from then on the
// consent page shows.
func TestDevBrowserSwitch(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.DevBrowserSwitch = true })
	e.ua = uaDesktop
	q := authorizeQuery(oaID, "https://rp.example/cb?x=1", scopeUserInfo, "S1") + "&forcePopup=true"
	p := e.get(pathAuthorize + "?" + q)
	if p.header.Get("X-Sim-Errcode") != strconv.Itoa(PageOpenInWeChat) || !strings.Contains(p.body, `action="../../_sim/wechat-browser"`) ||
		!strings.Contains(p.body, "当作在微信中打开") || !strings.Contains(p.body, "Continue as in WeChat") {
		t.Fatalf("dev-mode page:\n%s", p.body)
	}
	if p := e.get(pathWeChatBrowser); p.status != http.StatusMethodNotAllowed {
		t.Errorf("GET %s: %d", pathWeChatBrowser, p.status)
	}
	p = e.do(http.MethodPost, pathWeChatBrowser, url.Values{"q": {q}})
	if p.status != http.StatusSeeOther || p.location != "../connect/oauth2/authorize?"+q {
		t.Fatalf("switch: %d Location %q, want ../connect/oauth2/authorize?%s", p.status, p.location, q)
	}
	var ck *http.Cookie
	for _, c := range (&http.Response{Header: p.header}).Cookies() {
		if c.Name == simBrowserCookie {
			ck = c
		}
	}
	if ck == nil || ck.Value != "1" || !ck.HttpOnly || ck.Path != "/" {
		t.Fatalf("cookie %+v", ck)
	}
	e.cookie = ck
	body, _ := e.consentForm(pathAuthorize, q)
	if !strings.Contains(body, "申请获取你的昵称、头像") {
		t.Errorf("after the switch:\n%s", body)
	}
	// The query goes back as it came: a link out of WeChat's order is
	// still refused after the switch.
	bad := "state=S&appid=" + oaID + "&redirect_uri=https%3A%2F%2Frp.example%2Fcb&response_type=code&scope=snsapi_base"
	p = e.do(http.MethodPost, pathWeChatBrowser, url.Values{"q": {bad}})
	if p.location != "../connect/oauth2/authorize?"+bad {
		t.Errorf("Location %q", p.location)
	}
	if p := e.get(pathAuthorize + "?" + bad); p.header.Get("X-Sim-Errcode") != strconv.Itoa(PageBadParamOrder) {
		t.Errorf("out of order after the switch: %d %q", p.status, p.header.Get("X-Sim-Errcode"))
	}
	if p := e.do(http.MethodPost, pathWeChatBrowser, url.Values{"q": {"appid=x\r\nSet-Cookie: a=b"}}); p.status != http.StatusBadRequest {
		t.Errorf("a query with CR LF: %d", p.status)
	}
}
