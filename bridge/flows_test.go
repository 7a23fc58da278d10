package bridge

import (
	"encoding/base64"
	"github.com/wechat-oidc/wechat-oidc/config"
	"github.com/wechat-oidc/wechat-oidc/connector"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wechat-oidc/wechat-oidc/internal/qrtest"

	"github.com/wechat-oidc/wechat-oidc/wechat"
	"github.com/wechat-oidc/wechat-oidc/wechat/simulator"
)

// lastAuthorizeCall is the simulator's most recent browser-side call.
func lastAuthorizeCall(h *harness) simulator.Call {
	var last simulator.Call
	for _, c := range h.sim.Calls() {
		if strings.HasPrefix(c.Endpoint, "/connect/") {
			last = c
		}
	}
	return last
}

func noFollow(b *http.Client) *http.Client {
	c := *b
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &c
}

func TestFlowChoiceByBrowser(t *testing.T) {
	cases := []struct {
		name    string
		ua      string
		website bool
		over    map[string]string
		client  string
		want    string // path prefix of the redirect
	}{
		{"WeChat in-app browser: Official Account", uaWeChat, true, nil, "", "/connect/oauth2/authorize"},
		{"desktop with a website app: qrconnect", uaDesktop, true, nil, "", "/connect/qrconnect"},
		{"desktop, Official Account only: cross-device QR", uaDesktop, false, nil, "", PathQR},
		{"parameter overrides the browser", uaDesktop, true, map[string]string{"wechat_flow": "cross_device"}, "", PathQR},
		{"parameter forces the Official Account", uaDesktop, false, map[string]string{"wechat_flow": "official_account"}, "", "/connect/oauth2/authorize"},
		{"client setting", uaWeChat, true, nil, config.FlowWebsiteApp, "/connect/qrconnect"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := []harnessOption{withClient(rpClientID, func(c *config.ClientConfig) { c.WeChatFlow = tc.client })}
			if tc.website {
				opts = append(opts, withWebsiteApp())
			}
			h := newHarness(t, opts...)
			resp, err := noFollow(h.browserWithUA(tc.ua)).Get(h.authorizeURL(tc.over))
			if err != nil {
				t.Fatal(err)
			}
			loc, _ := url.Parse(resp.Header.Get("Location"))
			if resp.StatusCode != http.StatusFound || loc == nil || !strings.HasPrefix(loc.Path, tc.want) {
				t.Fatalf("status %d, Location %q, want path %s", resp.StatusCode, resp.Header.Get("Location"), tc.want)
			}
			if !strings.Contains(h.logs.String(), "WeChat flow chosen") {
				t.Fatal("the choice is not logged")
			}
		})
	}
	t.Run("website_app requested but not configured", func(t *testing.T) {
		h := newHarness(t)
		_, q := h.authorize(h.browser(), h.authorizeURL(map[string]string{"wechat_flow": "website_app"}))
		if q.Get("error") != "invalid_request" {
			t.Fatalf("got %v", q)
		}
	})
}

func TestWebsiteAppQRConnectSameSubject(t *testing.T) {
	h := newHarness(t, withWebsiteApp())
	r := h.rp(rpClientID, rpSecret, rpRedirect)
	desktop := h.login(r, h.browserWithUA(uaDesktop), "alice")
	if c := lastAuthorizeCall(h); c.Endpoint != "/connect/qrconnect" || c.AppID != testWebAppID || c.Scope != wechat.ScopeLogin {
		t.Fatalf("desktop did not use qrconnect with the website app: %+v", c)
	}
	inWeChat := h.login(r, h.browser(), "alice")
	if desktop.idToken.Subject != inWeChat.idToken.Subject || desktop.idToken.Subject != h.sim.UnionID("alice") {
		t.Fatalf("subjects differ: website %q, OA %q", desktop.idToken.Subject, inWeChat.idToken.Subject)
	}
	if desktop.claims["name"] != "Alice 爱丽丝" {
		t.Fatalf("website app login has no profile: %v", desktop.claims)
	}
}

// scanQR decodes the QR code on the desktop page, as a phone camera would.
func scanQR(t *testing.T, body string) string {
	t.Helper()
	m := regexp.MustCompile(`src="data:image/png;base64,([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no QR image on the page:\n%s", body)
	}
	raw, err := base64.StdEncoding.DecodeString(html.UnescapeString(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	text, err := qrtest.DecodePNG(raw)
	if err != nil {
		t.Fatal(err)
	}
	return text
}

// crossDevice starts a cross-device login on a desktop browser and returns
// the desktop page URL and the URL in its QR code.
func crossDevice(t *testing.T, h *harness, desktop *http.Client, over map[string]string) (pageURL, scanURL string) {
	t.Helper()
	resp, err := noFollow(desktop).Get(h.authorizeURL(over))
	if err != nil {
		t.Fatal(err)
	}
	pageURL = resp.Header.Get("Location")
	if !strings.Contains(pageURL, PathQR+"?d=") {
		t.Fatalf("not sent to the QR page: %d %q", resp.StatusCode, pageURL)
	}
	body := getBody(t, desktop, pageURL)
	if !strings.Contains(body, `http-equiv="refresh"`) || !strings.Contains(body, "请使用微信扫一扫登录") {
		t.Fatalf("QR page:\n%s", body)
	}
	return pageURL, scanQR(t, body)
}

func getBody(t *testing.T, b *http.Client, u string) string {
	t.Helper()
	resp, err := b.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	return readBody(t, resp)
}

// phoneScans plays the phone: WeChat's scanner opens the URL in the in-app
// browser, the OA authorization runs, and the confirm page comes back.
func phoneScans(t *testing.T, h *harness, phone *http.Client, scanURL, user string) string {
	t.Helper()
	h.sim.AutoApprove(user)
	return getBody(t, phone, scanURL)
}

// confirmOnPhone submits the phone's confirmation form: choice is the
// number to pick (as read on the desktop, matchCodeOn) or "deny".
func confirmOnPhone(t *testing.T, h *harness, phone *http.Client, confirmPage, choice string) (int, string) {
	t.Helper()
	form := confirmForm(t, confirmPage)
	if choice == "deny" {
		form.Set("decision", "deny")
	} else {
		form.Set("pick", choice)
	}
	resp, err := phone.PostForm(h.issuer()+PathQRConfirm, form)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, readBody(t, resp)
}

// confirmForm is the hidden fields of the phone's confirmation form.
func confirmForm(t *testing.T, confirmPage string) url.Values {
	t.Helper()
	form := url.Values{}
	for _, m := range regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`).FindAllStringSubmatch(confirmPage, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	if form.Get("t") == "" || form.Get("csrf") == "" {
		t.Fatalf("no confirm form:\n%s", confirmPage)
	}
	return form
}

// pickChoices are the numbers the phone offers.
func pickChoices(confirmPage string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`name="pick" value="(\d\d)"`).FindAllStringSubmatch(confirmPage, -1) {
		out = append(out, m[1])
	}
	return out
}

// matchCodeOn reads the number the desktop page shows, as the person would.
func matchCodeOn(t *testing.T, desktop *http.Client, pageURL string) string {
	t.Helper()
	body := getBody(t, desktop, pageURL)
	m := regexp.MustCompile(`data-match-code="(\d\d)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("the desktop shows no number to pick:\n%s", body)
	}
	return m[1]
}

func TestCrossDeviceQRLoginThenInWeChatSameSubject(t *testing.T) {
	h := newHarness(t, withClient(rpClientID, func(c *config.ClientConfig) { c.Name = "Grafana" }))
	desktop, phone := h.browserWithUA(uaDesktop), h.browser()
	pageURL, scanURL := crossDevice(t, h, desktop, nil)
	if !strings.HasPrefix(scanURL, h.issuer()+PathQRScan+"?t=") {
		t.Fatalf("QR code holds %q", scanURL)
	}
	confirm := phoneScans(t, h, phone, scanURL, "alice")
	// The phone names the application asking (QR-login phishing defence).
	if !strings.Contains(confirm, "Grafana") || !strings.Contains(confirm, "确认登录") || !strings.Contains(confirm, "Alice 爱丽丝") {
		t.Fatalf("confirm page:\n%s", confirm)
	}
	// Not confirmed yet: the desktop still waits.
	if body := getBody(t, desktop, pageURL); !strings.Contains(body, "已扫码，请在手机上确认") {
		t.Fatalf("desktop page before confirmation:\n%s", body)
	}
	if status, body := confirmOnPhone(t, h, phone, confirm, matchCodeOn(t, desktop, pageURL)); status != 200 || !strings.Contains(body, "已确认") {
		t.Fatalf("confirm: %d\n%s", status, body)
	}
	// The desktop's next poll finishes the OIDC flow in the desktop browser.
	_, q := h.authorize(desktop, pageURL)
	if q.Get("code") == "" || q.Get("state") != "client-state" {
		t.Fatalf("desktop did not finish: %v", q)
	}
	status, tok, _ := h.tokenRequest(url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {rpRedirect}}, rpClientID, rpSecret)
	if status != 200 {
		t.Fatalf("token: %d %v", status, tok)
	}
	desktopSub := decodeJWT(t, tok["id_token"].(string))["sub"]

	// The same person in WeChat's in-app browser: the same sub.
	inWeChat := h.login(h.rp(rpClientID, rpSecret, rpRedirect), h.browser(), "alice")
	if desktopSub != inWeChat.idToken.Subject || desktopSub != h.sim.UnionID("alice") {
		t.Fatalf("cross-device sub %v, in-WeChat sub %q", desktopSub, inWeChat.idToken.Subject)
	}
	// The desktop got a code for this application only: no SSO session
	// (wechat.cross_device_sso is off by default; issue 9 §3).
	if _, q := h.authorize(desktop, h.authorizeURL(map[string]string{"prompt": "none"})); q.Get("error") != "login_required" {
		t.Fatalf("the desktop got an SSO session from a cross-device sign-in: %v", q)
	}
	// The ticket was single-use: polling again finds nothing to redeem.
	resp, _ := noFollow(desktop).Get(pageURL)
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("the finished ticket's page answered %d", resp.StatusCode)
	}
}

func TestCrossDeviceExpiredTicket(t *testing.T) {
	h := newHarness(t)
	desktop, phone := h.browserWithUA(uaDesktop), h.browser()
	pageURL, scanURL := crossDevice(t, h, desktop, nil)
	h.advance(h.cfg.WeChat.QRTicketTTL.D() + time.Second)
	if body := phoneScans(t, h, phone, scanURL, "alice"); !strings.Contains(body, "二维码已失效") {
		t.Fatalf("an expired ticket was accepted:\n%s", body)
	}
	// The desktop page renews the ticket: a new QR code that works.
	newScan := scanQR(t, getBody(t, desktop, pageURL))
	if newScan == scanURL {
		t.Fatal("the expired ticket was not renewed")
	}
	confirm := phoneScans(t, h, phone, newScan, "alice")
	if status, _ := confirmOnPhone(t, h, phone, confirm, matchCodeOn(t, desktop, pageURL)); status != 200 {
		t.Fatal("the renewed ticket does not work")
	}
	if _, q := h.authorize(desktop, pageURL); q.Get("code") == "" {
		t.Fatalf("desktop did not finish with the renewed ticket: %v", q)
	}
}

func TestCrossDeviceTicketConfirmedFromSecondPhone(t *testing.T) {
	h := newHarness(t)
	desktop, phone1, phone2 := h.browserWithUA(uaDesktop), h.browser(), h.browser()
	pageURL, scanURL := crossDevice(t, h, desktop, nil)
	confirm := phoneScans(t, h, phone1, scanURL, "alice")
	// A second phone scanning the same code is refused...
	if body := phoneScans(t, h, phone2, scanURL, "bob"); !strings.Contains(body, "二维码已被其他手机扫描") {
		t.Fatalf("second phone scan:\n%s", body)
	}
	// ...and cannot confirm with the first phone's form.
	if status, _ := confirmOnPhone(t, h, phone2, confirm, matchCodeOn(t, desktop, pageURL)); status != http.StatusForbidden {
		t.Fatalf("second phone confirmed: %d", status)
	}
	if body := getBody(t, desktop, pageURL); !strings.Contains(body, "请在手机上确认") {
		t.Fatalf("the desktop moved on after a foreign confirmation:\n%s", body)
	}
}

func TestCrossDeviceTicketRedeemedBySecondDesktop(t *testing.T) {
	h := newHarness(t)
	desktop, other, phone := h.browserWithUA(uaDesktop), h.browserWithUA(uaDesktop), h.browser()
	pageURL, scanURL := crossDevice(t, h, desktop, nil)
	confirm := phoneScans(t, h, phone, scanURL, "alice")
	confirmOnPhone(t, h, phone, confirm, matchCodeOn(t, desktop, pageURL))
	resp, q := h.authorize(other, pageURL)
	if q != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a second desktop redeemed the ticket: %d %v", resp.StatusCode, q)
	}
	// The rightful desktop still can.
	if _, q := h.authorize(desktop, pageURL); q.Get("code") == "" {
		t.Fatalf("rightful desktop: %v", q)
	}
}

func TestCrossDeviceDeniedOnPhone(t *testing.T) {
	h := newHarness(t)
	desktop, phone := h.browserWithUA(uaDesktop), h.browser()
	pageURL, scanURL := crossDevice(t, h, desktop, nil)
	confirm := phoneScans(t, h, phone, scanURL, "alice")
	if status, body := confirmOnPhone(t, h, phone, confirm, "deny"); status != 200 || !strings.Contains(body, "已取消") {
		t.Fatalf("deny: %d", status)
	}
	if _, q := h.authorize(desktop, pageURL); q.Get("error") != "access_denied" || q.Get("state") != "client-state" {
		t.Fatalf("desktop after a denial: %v", q)
	}
}

func TestCrossDeviceScanOutsideWeChat(t *testing.T) {
	h := newHarness(t)
	_, scanURL := crossDevice(t, h, h.browserWithUA(uaDesktop), nil)
	if body := getBody(t, h.browserWithUA(uaDesktop), scanURL); !strings.Contains(body, "请使用微信扫一扫") {
		t.Fatalf("a non-WeChat scanner was not told to use WeChat:\n%s", body)
	}
	if n := h.sim.CallCount("/connect/oauth2/authorize"); n != 0 {
		t.Fatal("a non-WeChat browser was sent to the Official Account page")
	}
}

func TestCrossDeviceUnboundUserFailsOnBothSides(t *testing.T) {
	h := newHarness(t)
	desktop, phone := h.browserWithUA(uaDesktop), h.browser()
	pageURL, scanURL := crossDevice(t, h, desktop, nil)
	if body := phoneScans(t, h, phone, scanURL, "carol"); !strings.Contains(body, "登录失败") {
		t.Fatalf("phone page for carol:\n%s", body)
	}
	if _, q := h.authorize(desktop, pageURL); q.Get("error") != "access_denied" || !strings.Contains(q.Get("error_description"), "unionid") {
		t.Fatalf("desktop for carol: %v", q)
	}
}

func scopesAsked(h *harness) []string {
	var out []string
	for _, c := range h.sim.Calls() {
		if c.Endpoint == "/connect/oauth2/authorize" {
			out = append(out, c.Scope)
		}
	}
	return out
}

func TestSilentFirstShowsThePopupOnlyOnce(t *testing.T) {
	h := newHarness(t, withScope(config.ScopeSilentFirst))
	r := h.rp(rpClientID, rpSecret, rpRedirect)
	first := h.login(r, h.browser(), "alice")
	if got := strings.Join(scopesAsked(h), ","); got != "snsapi_base,snsapi_userinfo" {
		t.Fatalf("first login asked WeChat for %s", got)
	}
	h.sim.ResetCalls()
	second := h.login(r, h.browser(), "alice") // a new browser: no SSO session
	if got := strings.Join(scopesAsked(h), ","); got != "snsapi_base" {
		t.Fatalf("second login asked WeChat for %s (the popup must show at most once)", got)
	}
	if n := h.sim.CallCount("/sns/userinfo"); n != 0 {
		t.Fatalf("second login called /sns/userinfo %d times", n)
	}
	if second.idToken.Subject != first.idToken.Subject || second.idToken.Subject != h.sim.UnionID("alice") {
		t.Fatalf("subjects: %q then %q", first.idToken.Subject, second.idToken.Subject)
	}
	if second.claims["name"] != "Alice 爱丽丝" {
		t.Fatalf("the stored profile is not used on the silent login: %v", second.claims)
	}
}

func TestSilentFirstUnboundAndSnapshotUsers(t *testing.T) {
	h := newHarness(t, withScope(config.ScopeSilentFirst))
	h.sim.AutoApprove("carol")
	if _, q := h.authorize(h.browser(), h.authorizeURL(nil)); q.Get("error") != "access_denied" {
		t.Fatalf("carol: %v", q)
	}
	for i := 0; i < 2; i++ {
		h.sim.ResetCalls()
		h.sim.AutoApprove("snapshot")
		resp, q := h.authorize(h.browser(), h.authorizeURL(nil))
		if q != nil || !strings.Contains(readBody(t, resp), "使用完整服务") {
			t.Fatalf("snapshot login %d reached the RP: %v", i, q)
		}
		// Never a stored link: every attempt goes back to snsapi_userinfo.
		if got := strings.Join(scopesAsked(h), ","); got != "snsapi_base,snsapi_userinfo" {
			t.Fatalf("snapshot attempt %d asked for %s", i, got)
		}
	}
}

func TestSnapshotRetryForcesPopup(t *testing.T) {
	h := newHarness(t)
	h.sim.AutoApprove("snapshot")
	resp, _ := h.authorize(h.browser(), h.authorizeURL(nil))
	body := readBody(t, resp)
	m := regexp.MustCompile(`href="([^"]+connect/oauth2/authorize[^"]+)"`).FindStringSubmatch(body)
	if m == nil || !strings.Contains(m[1], "&amp;forcePopup=true&amp;connect_redirect=1#wechat_redirect") {
		t.Fatalf("retry link does not force the popup: %v", m)
	}
}

func TestForcePopupPerClientAndPerRequest(t *testing.T) {
	h := newHarness(t, withClient(rp2ClientID, func(c *config.ClientConfig) { c.ForcePopup = true }))
	get := func(clientID, redirect string, over map[string]string) string {
		u, _ := url.Parse(h.authorizeURL(over))
		q := u.Query()
		q.Set("client_id", clientID)
		q.Set("redirect_uri", redirect)
		u.RawQuery = q.Encode()
		resp, err := noFollow(h.browser()).Get(u.String())
		if err != nil {
			t.Fatal(err)
		}
		return resp.Header.Get("Location")
	}
	re := regexp.MustCompile(`&state=[A-Za-z0-9]+&forcePopup=true&connect_redirect=1#wechat_redirect$`)
	if loc := get(rp2ClientID, rp2Redirect, nil); !re.MatchString(loc) {
		t.Errorf("client setting: %s", loc)
	}
	if loc := get(rpClientID, rpRedirect, map[string]string{"wechat_force_popup": "true"}); !re.MatchString(loc) {
		t.Errorf("per request: %s", loc)
	}
	if loc := get(rpClientID, rpRedirect, nil); strings.Contains(loc, "forcePopup") {
		t.Errorf("forcePopup without asking: %s", loc)
	}
}

func TestDuplicateCallbackCompletesOnce(t *testing.T) {
	h := newHarness(t)
	b := h.browser()
	stopAtCallback := noFollow(b)
	h.sim.AutoApprove("alice")
	// Follow up to the callback URL WeChat redirects to.
	next := h.authorizeURL(nil)
	var callback string
	for i := 0; i < 5 && callback == ""; i++ {
		resp, err := stopAtCallback.Get(next)
		if err != nil {
			t.Fatal(err)
		}
		next = resp.Header.Get("Location")
		if strings.Contains(next, connector.CallbackPath) {
			callback = next
		}
	}
	if callback == "" {
		t.Fatal("never reached the callback")
	}
	first, err := stopAtCallback.Get(callback)
	if err != nil {
		t.Fatal(err)
	}
	second, err := stopAtCallback.Get(callback) // WeChat calls again with the same code
	if err != nil {
		t.Fatal(err)
	}
	if first.Header.Get("Location") == "" || first.Header.Get("Location") != second.Header.Get("Location") {
		t.Fatalf("duplicate callback: %q then %q (status %d)", first.Header.Get("Location"), second.Header.Get("Location"), second.StatusCode)
	}
	if n := h.sim.CallCount("/sns/oauth2/access_token"); n != 1 {
		t.Fatalf("the WeChat code was exchanged %d times", n)
	}
	// The same callback in another browser is not answered with the code.
	defer func() {
		// And WeChat's two calls racing each other: one exchange, one answer.
		h.sim.ResetCalls()
		h.sim.AutoApprove("bob")
		stopAtCallback := noFollow(h.browser()) // a new browser: no SSO session
		next := h.authorizeURL(nil)
		callback := ""
		for i := 0; i < 5 && callback == "" && !strings.HasPrefix(next, "http://"+rpHost); i++ {
			resp, err := stopAtCallback.Get(next)
			if err != nil {
				t.Fatal(err)
			}
			if next = resp.Header.Get("Location"); strings.Contains(next, connector.CallbackPath) {
				callback = next
			}
		}
		locs := make(chan string, 2)
		for range 2 {
			go func() {
				resp, err := stopAtCallback.Get(callback)
				if err != nil {
					locs <- "error: " + err.Error()
					return
				}
				locs <- resp.Header.Get("Location")
			}()
		}
		a, b := <-locs, <-locs
		if a == "" || a != b || !strings.Contains(a, "code=") {
			t.Fatalf("racing duplicate callbacks: %q and %q", a, b)
		}
		if n := h.sim.CallCount("/sns/oauth2/access_token"); n != 1 {
			t.Fatalf("racing callbacks exchanged the code %d times", n)
		}
	}()
	resp, q := h.authorize(h.browser(), callback)
	if q != nil || resp.StatusCode == http.StatusFound {
		t.Fatalf("another browser got the result: %d %v", resp.StatusCode, q)
	}
}
