package bridge

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/wechat-oidc/wechat-oidc/config"
)

// Issue 9 §3: a relayed cross-device QR code. A phishing page opens
// /authorize at the bridge itself, shows the victim the QR code, and waits
// for the victim's phone to confirm.

// relay plays the attack up to the victim's confirm page: the relayer's
// desktop asks, the victim's phone scans. It returns the relayer's desktop,
// its QR page and the victim's phone with its confirm page.
func relay(t *testing.T, h *harness, desktop *http.Client) (string, *http.Client, string) {
	t.Helper()
	pageURL, scanURL := crossDevice(t, h, desktop, nil)
	phone := h.browser()
	return pageURL, phone, phoneScans(t, h, phone, scanURL, "alice")
}

// TestRelayedQRGetsNoSSOSession: the relayer whose QR code the victim
// confirmed gets a code for the one application that asked, and no SSO
// session: prompt=none at a second application does not yield a code for
// the victim (it used to, for every application, for the session's life).
// The operator may opt in (wechat.cross_device_sso); the cookieless
// session still ends, tokens and all, at logout.
func TestRelayedQRGetsNoSSOSession(t *testing.T) {
	t.Run("default: a code for the requesting application only", func(t *testing.T) {
		h := newHarness(t)
		relayer := h.browserWithUA(uaDesktop)
		pageURL, phone, confirm := relay(t, h, relayer)
		if status, _ := confirmOnPhone(t, h, phone, confirm, matchCodeOn(t, relayer, pageURL)); status != http.StatusOK {
			t.Fatalf("confirm: %d", status)
		}
		_, q := h.authorize(relayer, pageURL)
		if q.Get("code") == "" {
			t.Fatalf("the requesting application got no code: %v", q)
		}
		u, _ := url.Parse(h.issuer())
		for _, c := range relayer.Jar.Cookies(u) {
			if c.Name == sessionCookie {
				t.Fatal("the desktop got an SSO session cookie from a cross-device sign-in")
			}
		}
		_, q = h.authorize(relayer, h.authorizeURL(map[string]string{"prompt": "none", "client_id": rp2ClientID, "redirect_uri": rp2Redirect}))
		if q.Get("error") != "login_required" {
			t.Fatalf("prompt=none at a second application after a relayed QR sign-in: %v", q)
		}
	})
	t.Run("opt-in: wechat.cross_device_sso", func(t *testing.T) {
		h := newHarness(t, withConfig(func(c *config.File) { c.WeChat.CrossDeviceSSO = true }))
		desktop := h.browserWithUA(uaDesktop)
		pageURL, phone, confirm := relay(t, h, desktop)
		confirmOnPhone(t, h, phone, confirm, matchCodeOn(t, desktop, pageURL))
		if _, q := h.authorize(desktop, pageURL); q.Get("code") == "" {
			t.Fatalf("desktop: %v", q)
		}
		_, q := h.authorize(desktop, h.authorizeURL(map[string]string{"prompt": "none", "client_id": rp2ClientID, "redirect_uri": rp2Redirect}))
		if q.Get("code") == "" {
			t.Fatalf("with cross_device_sso the desktop has a session: %v", q)
		}
	})
}

// TestCrossDeviceSessionEndsAtLogout: the cookieless session of a
// cross-device sign-in is ended by an id_token_hint logout, with its tokens.
func TestCrossDeviceSessionEndsAtLogout(t *testing.T) {
	h := newHarness(t)
	desktop := h.browserWithUA(uaDesktop)
	pageURL, phone, confirm := relay(t, h, desktop)
	confirmOnPhone(t, h, phone, confirm, matchCodeOn(t, desktop, pageURL))
	_, q := h.authorize(desktop, pageURL)
	status, tok, _ := h.tokenRequest(url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {rpRedirect}}, rpClientID, rpSecret)
	if status != http.StatusOK {
		t.Fatalf("token: %d %v", status, tok)
	}
	at, _ := tok["access_token"].(string)
	idt, _ := tok["id_token"].(string)
	if decodeJWT(t, idt)["sid"] == nil {
		t.Fatal("a cross-device ID token has no sid")
	}
	if h.userinfoStatus(at) != http.StatusOK {
		t.Fatal("userinfo before logout")
	}
	resp, err := http.Get(h.issuer() + PathLogout + "?" + url.Values{"id_token_hint": {idt}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if status := h.userinfoStatus(at); status != http.StatusUnauthorized {
		t.Fatalf("userinfo after logout of the cross-device session: %d", status)
	}
}

// postConfirm posts a confirmation with extra headers.
func postConfirm(t *testing.T, h *harness, phone *http.Client, form url.Values, headers map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.issuer()+PathQRConfirm, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := phone.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, readBody(t, resp)
}

// TestQRConfirmCrossOriginRefused: a confirmation posted from another
// origin (a page on a sibling subdomain is same-site, so SameSite=Lax
// sends the phone's cookies) is refused, even with a valid form token;
// so is "Origin: null". The page asks browsers to send our Origin.
func TestQRConfirmCrossOriginRefused(t *testing.T) {
	h := newHarness(t)
	desktop := h.browserWithUA(uaDesktop)
	pageURL, scanURL := crossDevice(t, h, desktop, nil)
	phone := h.browser()
	h.sim.AutoApprove("alice")
	resp, err := phone.Get(scanURL)
	if err != nil {
		t.Fatal(err)
	}
	confirm := readBody(t, resp)
	if rp := resp.Header.Get("Referrer-Policy"); rp != "same-origin" {
		t.Errorf("the confirm page's Referrer-Policy is %q: with no-referrer browsers send Origin: null", rp)
	}
	form := confirmForm(t, confirm)
	form.Set("pick", matchCodeOn(t, desktop, pageURL))
	for name, hdr := range map[string]map[string]string{
		"sibling subdomain":      {"Origin": "https://evil.example.com"},
		"null origin":            {"Origin": "null"},
		"another port":           {"Origin": strings.Replace(h.issuer(), "127.0.0.1:", "127.0.0.1:1", 1)},
		"cross-origin referer":   {"Referer": "https://evil.example.com/phish"},
		"origin wins on referer": {"Origin": "https://evil.example.com", "Referer": h.issuer() + "/"},
	} {
		if status, body := postConfirm(t, h, phone, form, hdr); status != http.StatusForbidden || !strings.Contains(body, `data-page="cross-origin"`) {
			t.Errorf("%s: %d", name, status)
		}
	}
	if body := getBody(t, desktop, pageURL); !strings.Contains(body, "请在手机上") {
		t.Fatalf("a refused confirmation moved the desktop on:\n%s", body)
	}
	// Our own origin (in any spelling a browser sends) is accepted.
	if status, body := postConfirm(t, h, phone, form, map[string]string{"Origin": strings.ToUpper(h.issuer()[:4]) + h.issuer()[4:]}); status != http.StatusOK || !strings.Contains(body, `data-page="qr-confirmed"`) {
		t.Fatalf("same-origin confirmation: %d", status)
	}
	if _, q := h.authorize(desktop, pageURL); q.Get("code") == "" {
		t.Fatalf("desktop after the genuine confirmation: %v", q)
	}
}

// TestQRConfirmWithoutCSRFTokenRefused: a confirmation must carry the
// form's token, bound to the phone's cookie and the ticket: a forged form
// (no token, a made-up one, another phone's) is refused.
func TestQRConfirmWithoutCSRFTokenRefused(t *testing.T) {
	h := newHarness(t)
	desktop := h.browserWithUA(uaDesktop)
	pageURL, phone, confirm := relay(t, h, desktop)
	form := confirmForm(t, confirm)
	code := matchCodeOn(t, desktop, pageURL)
	otherDesktop := h.browserWithUA(uaDesktop)
	_, otherPhone, otherConfirm := relay(t, h, otherDesktop)
	_ = otherPhone
	for name, f := range map[string]url.Values{
		"no token":           {"t": {form.Get("t")}, "pick": {code}},
		"made-up token":      {"t": {form.Get("t")}, "pick": {code}, "csrf": {strings.Repeat("A", 43)}},
		"another form token": {"t": {form.Get("t")}, "pick": {code}, "csrf": {confirmForm(t, otherConfirm).Get("csrf")}},
	} {
		if status, _ := postConfirm(t, h, phone, f, nil); status != http.StatusForbidden {
			t.Errorf("%s: %d", name, status)
		}
	}
	if body := getBody(t, desktop, pageURL); !strings.Contains(body, "请在手机上") {
		t.Fatal("a forged confirmation moved the desktop on")
	}
}

// TestQRPhoneShowsWhereTheDesktopIs: the phone says which network the
// computer is on (this one, or another, masked to its /24), its browser and
// when it asked, and offers three numbers, one of which the desktop shows.
func TestQRPhoneShowsWhereTheDesktopIs(t *testing.T) {
	t.Run("another network", func(t *testing.T) {
		h := newHarness(t, withTrustedLoopbackProxy())
		desktop := h.browserFrom(uaDesktop, "203.0.113.45")
		pageURL, scanURL := crossDevice(t, h, desktop, nil)
		confirm := html.UnescapeString(phoneScans(t, h, h.browserFrom(uaWeChat, "198.51.100.9"), scanURL, "alice"))
		for _, want := range []string{"其他网络", "another network", "203.0.113.0/24", "Chrome · Linux", "(UTC+8)"} {
			if !strings.Contains(confirm, want) {
				t.Errorf("the phone does not show %q", want)
			}
		}
		if strings.Contains(confirm, "203.0.113.45") {
			t.Error("the phone shows the desktop's full address")
		}
		if !regexp.MustCompile(`\d\d:\d\d:\d\d \(UTC\+8\)`).MatchString(confirm) {
			t.Error("no time on the phone")
		}
		code := matchCodeOn(t, desktop, pageURL)
		choices := pickChoices(confirm)
		if len(choices) != 3 || !slices.Contains(choices, code) || choices[0] == choices[1] || choices[1] == choices[2] || choices[0] == choices[2] {
			t.Fatalf("choices %v for the desktop's %s", choices, code)
		}
	})
	t.Run("the same network", func(t *testing.T) {
		h := newHarness(t, withTrustedLoopbackProxy())
		_, scanURL := crossDevice(t, h, h.browserFrom(uaDesktop, "203.0.113.45"), nil)
		confirm := phoneScans(t, h, h.browserFrom(uaWeChat, "203.0.113.45"), scanURL, "alice")
		if !strings.Contains(confirm, "同一网络") || strings.Contains(confirm, "其他网络") {
			t.Fatal("the phone on the desktop's network is not told so")
		}
	})
	t.Run("no number before the scan", func(t *testing.T) {
		h := newHarness(t)
		desktop := h.browserWithUA(uaDesktop)
		pageURL, _ := crossDevice(t, h, desktop, nil)
		if strings.Contains(getBody(t, desktop, pageURL), "data-match-code") {
			t.Fatal("the desktop shows the number before any phone scanned")
		}
	})
}

// TestQRWrongNumberDeniesTicket: picking a number the desktop does not show
// (what a person does who cannot see the computer: a relayed code) ends the
// sign-in: the phone says why, the desktop's application gets
// access_denied, and the ticket cannot be confirmed after all.
func TestQRWrongNumberDeniesTicket(t *testing.T) {
	h := newHarness(t)
	desktop := h.browserWithUA(uaDesktop)
	pageURL, phone, confirm := relay(t, h, desktop)
	code := matchCodeOn(t, desktop, pageURL)
	var wrong string
	for _, c := range pickChoices(confirm) {
		if c != code {
			wrong = c
		}
	}
	status, body := confirmOnPhone(t, h, phone, confirm, wrong)
	if status != http.StatusOK || !strings.Contains(body, `data-page="qr-wrong-number"`) {
		t.Fatalf("a wrong number: %d", status)
	}
	if status, _ := confirmOnPhone(t, h, phone, confirm, code); status == http.StatusOK {
		t.Fatal("the right number after a wrong one confirmed the ticket")
	}
	_, q := h.authorize(desktop, pageURL)
	if q.Get("error") != "access_denied" || !strings.Contains(q.Get("error_description"), "number") {
		t.Fatalf("the desktop after a wrong number: %v", q)
	}
}

// TestPinnedFlowNotOverriddenByRequestParameter: a phishing page cannot
// turn a client fixed to the Official Account into a QR code by adding
// wechat_flow=cross_device.
func TestPinnedFlowNotOverriddenByRequestParameter(t *testing.T) {
	h := newHarness(t, withClient(rpClientID, func(c *config.ClientConfig) { c.WeChatFlow = config.FlowOfficialAccount }))
	resp, q := h.authorize(noFollow(h.browserWithUA(uaDesktop)), h.authorizeURL(map[string]string{"wechat_flow": "cross_device"}))
	if q.Get("error") != "invalid_request" || strings.Contains(resp.Header.Get("Location"), PathQR) {
		t.Fatalf("a pinned client asked for cross_device: %d %v", resp.StatusCode, q)
	}
}

// TestCrossDeviceSwitchedOffForDeploymentAndClient: wechat.cross_device and
// clients[].cross_device turn the QR handoff off.
func TestCrossDeviceSwitchedOffForDeploymentAndClient(t *testing.T) {
	// A desktop without a website app has no other flow: access_denied;
	// asking for cross_device by parameter: invalid_request.
	noQR := func(t *testing.T, h *harness, clientID, redirect string) {
		t.Helper()
		for param, want := range map[string]string{"": "access_denied", "cross_device": "invalid_request"} {
			over := map[string]string{"client_id": clientID, "redirect_uri": redirect, "wechat_flow": param}
			if param == "" {
				over["wechat_flow"] = "-"
			}
			resp, q := h.authorize(noFollow(h.browserWithUA(uaDesktop)), h.authorizeURL(over))
			if strings.Contains(resp.Header.Get("Location"), PathQR+"?") || q.Get("error") != want {
				t.Fatalf("wechat_flow=%q: %d %s, want %s", param, resp.StatusCode, resp.Header.Get("Location"), want)
			}
		}
	}
	t.Run("deployment", func(t *testing.T) {
		f := false
		h := newHarness(t, withConfig(func(c *config.File) { c.WeChat.CrossDevice = &f }))
		noQR(t, h, rpClientID, rpRedirect)
		noQR(t, h, rp2ClientID, rp2Redirect)
	})
	t.Run("one client", func(t *testing.T) {
		f := false
		h := newHarness(t, withClient(rpClientID, func(c *config.ClientConfig) { c.CrossDevice = &f }))
		noQR(t, h, rpClientID, rpRedirect)
		crossDevice(t, h, h.browserWithUA(uaDesktop), map[string]string{"client_id": rp2ClientID, "redirect_uri": rp2Redirect})
	})
}
