package dev

// Real-browser tests: headless Chromium, driven by chromedp, walks the pages
// a person sees in `wechat-oidc dev` — the demo app, the simulated WeChat
// authorization page and the bridge's own pages — takes a full-page
// screenshot of each (in the test's temp dir; the paths are logged) and
// checks what rendered: document.title, the visible text, no horizontal
// overflow at phone width, and the main button inside the first screen.
//
// Chromium is Debian's `chromium` (/usr/bin/chromium, or CHROMIUM_BIN). The
// tests skip without it, except under CI (env CI set), where it must be
// installed (.ci/run does).
//
// Run: go test -race -run Browser -v ./dev
// (BROWSER_SCREENSHOTS=dir keeps the screenshots in dir/<test name>.)

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/wechat-oidc/wechat-oidc/bridge"
	"github.com/wechat-oidc/wechat-oidc/internal/browsertest"
	"github.com/wechat-oidc/wechat-oidc/internal/qrtest"
)

const (
	// WeChat's in-app browser on an iPhone: the Official Account flow.
	uaWeChatIPhone = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.49(0x18003137) NetType/WIFI Language/zh_CN"
	// A desktop Chrome: the desktop QR flows (website app, cross-device).
	uaDesktopChrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
	// Chrome on an Android phone, not WeChat: scans with the system camera.
	uaAndroidChrome = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36"

	browserWalkTimeout = 180 * time.Second // the whole walk of one test (generous: a busy 2-core machine runs Chromium slowly)
	browserStepTimeout = 10 * time.Second  // one step of it
)

// viewport is a device the pages are looked at on. ua is the browser the
// device naturally has; a walk may play another (see loginUA).
type viewport struct {
	name          string
	width, height int64
	scale         float64
	mobile        bool
	ua            string
}

var (
	vpPhone   = viewport{name: "phone", width: 375, height: 812, scale: 2, mobile: true, ua: uaWeChatIPhone}
	vpDesktop = viewport{name: "desktop", width: 1280, height: 800, scale: 1, ua: uaDesktopChrome}
)

// loginUA is the User-Agent that signs in with the Official Account flow
// (the simulated consent page). The Official Account web authorization only
// works inside WeChat, so this is WeChat's in-app browser in every viewport;
// a desktop browser (vpDesktop.ua) signs in through the desktop QR pages
// (desktopQRWalk).
const loginUA = uaWeChatIPhone

// TestBrowserPhone walks every page at phone size in WeChat's in-app browser.
func TestBrowserPhone(t *testing.T) { browserWalk(t, vpPhone) }

// TestBrowserDesktop walks the same pages at desktop width (that sign-in
// still plays WeChat's in-app browser: the Official Account flow; the
// visitor who only meets the bridge's error pages is a desktop Chrome), then
// the desktop QR sign-ins in a desktop Chrome: the website app's qrconnect
// and the cross-device QR code confirmed on a phone.
func TestBrowserDesktop(t *testing.T) {
	w := browserWalk(t, vpDesktop)
	desktopQRWalk(t, w)
}

// pageCheck is what one page must show. Build it with expectPage.
type pageCheck struct {
	title         string
	titleContains bool     // title must contain title (else equal it)
	texts         []string // each must be in the body's visible text
	absent        []string // none may be in the body's visible text
	button        string   // CSS selector of the main button: must be in the first screen
	layout        bool     // no horizontal overflow (the bridge's and the simulator's pages)
	status        int      // HTTP status of the document, if checked (0: not checked)
	org           bool     // the organisation's header: its name, its logo loaded (our pages, not WeChat's)
	icon          string   // the state icon (data-icon: ok, info, warn), if checked
}

// expectPage is a page with this exact title and these visible texts.
func expectPage(title string, texts ...string) pageCheck {
	return pageCheck{title: title, texts: texts}
}

func (pc pageCheck) titleHas() pageCheck             { pc.titleContains = true; return pc }
func (pc pageCheck) mainButton(sel string) pageCheck { pc.button = sel; return pc }
func (pc pageCheck) ourLayout() pageCheck            { pc.layout = true; return pc }
func (pc pageCheck) withStatus(code int) pageCheck   { pc.status = code; return pc }
func (pc pageCheck) withIcon(icon string) pageCheck  { pc.icon = icon; return pc }

// ours is a page of ours (the bridge's or the demo's): the organisation's
// header, both languages, and no horizontal overflow.
func (pc pageCheck) ours() pageCheck { pc.org, pc.layout = true, true; return pc }
func (pc pageCheck) without(texts ...string) pageCheck {
	pc.absent = append(pc.absent, texts...)
	return pc
}

// The pages of the walk. Ours show the organisation (dev mode's
// DefaultOrganization) and say everything in Chinese and in English;
// WeChat's (the simulator's) do not.
var (
	pgDemoHome = expectPage("wechat-oidc 演示应用 · demo app", "用微信登录", "Log in with WeChat", "演示应用", "demo application").
			mainButton(`a.button[href="/demo/login"]`).ours()
	pgWeChatConsent = expectPage("微信授权", "wechat-oidc 演示服务号", "申请获取你的昵称、头像",
		"Alice 爱丽丝", "Bob 鲍勃", "Carol 卡罗尔", "微信用户", "快照页虚拟用户", "允许", "拒绝").
		without(DefaultOrganization).mainButton("button.allow").ourLayout()
	pgSignedIn = func(name string) pageCheck {
		return expectPage("已登录 · Signed in", "已登录", "你好，"+name, "Signed in as "+name, "ID token claims (verified by go-oidc)",
			"userinfo", `"preferred_username"`, `"sid"`, "Log in again (SSO)", "Log in as someone else", "退出", "Log out").
			ours().withIcon("ok")
	}
	pgCarolDenied = expectPage("登录失败 · Sign-in failed", "登录失败", "error: access_denied", "unionid",
		"重新用微信登录", "Log in with WeChat again").without("Signed in as").ours().withIcon("warn")
	pgSnapshot = expectPage("使用完整服务", "请点击「使用完整服务」", "快照页", "snapshot mode", "重试 · Try again").
			titleHas().mainButton("a.button").ours()
	pgBadClient = expectPage("无法登录 · Cannot sign in", "无法登录", "client_id", "nobody", "error: invalid_request").
			ours().withStatus(http.StatusBadRequest)
	pgExpired = expectPage("登录已失效 · Sign-in expired", "登录已失效", "expired").
			ours().withStatus(http.StatusBadRequest)
	pgLogoutConfirm = expectPage("退出登录 · Sign out", "要退出登录吗？", "退出登录 · Sign out").
			mainButton("button.button").ours()
	pgSignedOut = expectPage("已退出登录 · Signed out", "你已退出登录", "signed out").ours().withIcon("ok")

	// The desktop QR pages.
	pgWeChatQRConnect = expectPage("微信授权", "wechat-oidc 演示网站应用", "网站应用", "扫码登录", "模拟用手机微信扫码",
		"Alice 爱丽丝", "Bob 鲍勃", "Carol 卡罗尔", "确认登录", "拒绝").
		without("申请获取你的昵称、头像").mainButton("button.allow").ourLayout()
	pgQRDesktop = expectPage("微信扫码登录 · Scan with WeChat", "请使用微信扫一扫登录", "在手机上确认登录「Demo app」",
		"Scan the code with WeChat", "开发模式").without("已扫码").ours()
	pgQRDesktopScanned = expectPage("微信扫码登录 · Scan with WeChat", "已扫码，请在手机上确认", "Confirm on your phone",
		"picking the number below").without("请使用微信扫一扫登录").ours()
	// The phone shows where the computer is and three numbers to pick from.
	pgQRPhoneConfirm = expectPage("确认登录 · Confirm sign-in", "在电脑上登录「Demo app」？", "Alice 爱丽丝",
		"电脑所在网络 · Network", "同一网络", "电脑浏览器 · Browser", "Chrome · Windows", "发起时间 · Asked at",
		"不是我，取消 · Not me, cancel").mainButton(`.numbers button[name=pick]`).ours()
	pgQRPhoneConfirmed = expectPage("已确认登录 · Confirmed", "已确认，请回到电脑上继续", "Confirmed").ours().withIcon("ok")
	pgQRScanWithWeChat = expectPage("请使用微信扫一扫 · Scan with WeChat", "请使用微信扫一扫", "扫一扫",
		"Open WeChat on your phone").without("申请获取你的昵称、头像").ours()

	// WeChat's answer to its Official Account page in another browser, with
	// dev mode's button to play WeChat's browser.
	pgWeChatOpenInWeChat = expectPage("抱歉，出错了", "请在微信客户端打开链接", "当作在微信中打开", "Continue as in WeChat").
				without(DefaultOrganization).mainButton("form.dev button").ourLayout()

	// The rest of the bridge's pages a person may meet (pageWalk).
	pgNotFound = expectPage("页面不存在 · Page not found", "页面不存在", "Page not found", "请检查链接").
			ours().withStatus(http.StatusNotFound).withIcon("warn")
	pgMethodNotAllowed = expectPage("不支持这种访问方式 · Method not allowed", "不支持这种访问方式", "cannot be opened this way").
				ours().withStatus(http.StatusMethodNotAllowed)
	pgQRExpired = expectPage("二维码已失效 · QR code expired", "二维码已失效", "expired").
			ours().withStatus(http.StatusBadRequest)
	pgInviteUnknown = expectPage("邀请链接无效 · Invitation", "邀请链接无效", "does not exist").
			ours().withStatus(http.StatusBadRequest)
)

// walkEnv is what a walk runs on, for the walks that follow it.
type walkEnv struct {
	d     *Dev
	b     *browser
	shots string
}

// browserWalk is the whole walk at one viewport: one dev server, one
// Chromium (one allocator), one browser context per person.
func browserWalk(t *testing.T, vp viewport) walkEnv {
	bin := browsertest.Binary(t)
	d := startBrowserDev(t)
	b := startChromium(t, bin)
	shots := browsertest.ShotsDir(t)

	// Ann signs in and out in WeChat's in-app browser.
	ann := b.person(t, "ann", vp, loginUA, shots)

	ann.step("home", func(ctx context.Context) error {
		return ann.open(ctx, d.BaseURL+"/", "01-demo-home", pgDemoHome)
	})
	ann.step("cjk-fonts", func(ctx context.Context) error { return ann.checkCJKFonts(ctx) })
	ann.step("login-wechat-page", func(ctx context.Context) error {
		ann.resetRequests()
		if err := ann.click(ctx, `a.button[href="/demo/login"]`, "02-wechat-consent", pgWeChatConsent); err != nil {
			return err
		}
		users, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
			`[...document.querySelectorAll('input[name=user]')].map(i => i.value)`))
		if err != nil {
			return err
		}
		if strings.Join(users, ",") != "alice,bob,carol,snapshot" {
			return fmt.Errorf("simulated users on the page: %v, want alice,bob,carol,snapshot", users)
		}
		if !ann.visited("/authorize?") || !ann.visited("/wechat-sim/connect/oauth2/authorize?") {
			return fmt.Errorf("did not pass through /authorize to the simulator; documents: %v", ann.requests())
		}
		return nil
	})
	ann.step("login-alice", func(ctx context.Context) error {
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`input[name=user][value=alice]`), chromedp.NodeVisible)); err != nil {
			return err
		}
		return ann.click(ctx, "button.allow", "03-signed-in-alice", pgSignedIn("Alice 爱丽丝"))
	})
	ann.step("sso", func(ctx context.Context) error {
		ann.resetRequests()
		if err := ann.click(ctx, `a.button[href="/demo/login"]`, "04-signed-in-again-sso", pgSignedIn("Alice 爱丽丝")); err != nil {
			return err
		}
		if ann.visited("/wechat-sim/") {
			return fmt.Errorf("the SSO login went through the WeChat simulator: %v", ann.requests())
		}
		if !ann.visited("/authorize?") || !ann.visited("/demo/callback?") {
			return fmt.Errorf("the SSO login did not go through /authorize and back: %v", ann.requests())
		}
		return nil
	})
	ann.step("logout", func(ctx context.Context) error {
		return ann.click(ctx, `a.button[href*="/logout?"]`, "05-logged-out-home", pgDemoHome)
	})
	ann.step("carol-denied", func(ctx context.Context) error {
		ann.resetRequests()
		if err := ann.click(ctx, `a.button[href="/demo/login"]`, "06-wechat-consent-after-logout", pgWeChatConsent); err != nil {
			return err
		}
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`label.user:has(input[value=carol])`), chromedp.NodeVisible)); err != nil {
			return err
		}
		return ann.click(ctx, "button.allow", "07-carol-access-denied", pgCarolDenied)
	})
	ann.step("snapshot", func(ctx context.Context) error {
		if err := ann.click(ctx, `a.button[href="/demo/login"]`, "08-wechat-consent-again", pgWeChatConsent); err != nil {
			return err
		}
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`label.user:has(input[value=snapshot])`), chromedp.NodeVisible)); err != nil {
			return err
		}
		return ann.click(ctx, "button.allow", "09-bridge-snapshot", pgSnapshot)
	})
	ann.step("snapshot-retry", func(ctx context.Context) error {
		// 重试 goes back to WeChat for the same request; this time Ann is alice.
		if err := ann.click(ctx, "a.button", "10-wechat-consent-retry", pgWeChatConsent); err != nil {
			return err
		}
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`label.user:has(input[value=alice])`), chromedp.NodeVisible)); err != nil {
			return err
		}
		return ann.click(ctx, "button.allow", "11-signed-in-after-retry", pgSignedIn("Alice 爱丽丝"))
	})
	ann.step("someone-else", func(ctx context.Context) error {
		// prompt=login: the WeChat page again although a session exists.
		if err := ann.click(ctx, `a.button[href="/demo/login?prompt=login"]`, "12-wechat-consent-someone-else", pgWeChatConsent); err != nil {
			return err
		}
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`label.user:has(input[value=bob])`), chromedp.NodeVisible)); err != nil {
			return err
		}
		return ann.click(ctx, "button.allow", "13-signed-in-bob", pgSignedIn("Bob 鲍勃"))
	})
	ann.step("logout-confirm", func(ctx context.Context) error {
		// Signed in, /logout without id_token_hint: the bridge asks first.
		if err := ann.open(ctx, d.BaseURL+bridge.PathLogout, "14-bridge-logout-confirm", pgLogoutConfirm); err != nil {
			return err
		}
		return ann.click(ctx, "button.button", "15-bridge-signed-out", pgSignedOut)
	})
	ann.step("session-gone", func(ctx context.Context) error {
		// The session really ended: logging in shows WeChat's page again.
		return ann.open(ctx, d.BaseURL+"/demo/login", "16-wechat-consent-after-sign-out", pgWeChatConsent)
	})

	// Vic never signs in: the bridge's error pages, in the viewport's own browser.
	vic := b.person(t, "vic", vp, vp.ua, shots)
	vic.step("bad-client", func(ctx context.Context) error {
		return vic.open(ctx, d.BaseURL+"/authorize?client_id=nobody", "17-bridge-cannot-sign-in", pgBadClient)
	})
	vic.step("expired", func(ctx context.Context) error {
		return vic.open(ctx, d.BaseURL+"/wechat/callback?state=NoSuchHandle1", "18-bridge-sign-in-expired", pgExpired)
	})
	vic.step("logout-no-session", func(ctx context.Context) error {
		// Not signed in: nothing to confirm.
		return vic.open(ctx, d.BaseURL+bridge.PathLogout, "19-bridge-signed-out-no-session", pgSignedOut)
	})
	// The rest of the pages a person may meet: a mistyped or truncated link,
	// a link opened the wrong way, a stale QR code, a bad invitation.
	vic.step("not-found", func(ctx context.Context) error {
		return vic.open(ctx, d.BaseURL+"/no/such/page", "40-bridge-not-found", pgNotFound)
	})
	vic.step("method-not-allowed", func(ctx context.Context) error {
		return vic.open(ctx, d.BaseURL+"/token", "41-bridge-method-not-allowed", pgMethodNotAllowed)
	})
	vic.step("invitation-unknown", func(ctx context.Context) error {
		return vic.open(ctx, d.BaseURL+bridge.PathInvite+"NoSuchInvitation0123456789", "42-bridge-invitation-unknown", pgInviteUnknown)
	})
	ann.step("qr-expired", func(ctx context.Context) error {
		return ann.open(ctx, d.BaseURL+bridge.PathQRScan+"?t=NoSuchTicket1", "43-bridge-qr-expired", pgQRExpired)
	})
	return walkEnv{d: d, b: b, shots: shots}
}

// desktopQRWalk signs in from a desktop Chrome (vpDesktop.ua) through the
// two desktop QR flows, in the dev server and Chromium of an earlier walk.
func desktopQRWalk(t *testing.T, w walkEnv) {
	d, b, shots := w.d, w.b, w.shots

	// Dee, at her desktop, lets the bridge pick the flow: a desktop browser
	// and a configured website app make it WeChat's qrconnect page, whose
	// 扫码登录 picker stands for the scan with the phone.
	dee := b.person(t, "dee", vpDesktop, vpDesktop.ua, shots)
	dee.step("qrconnect-home", func(ctx context.Context) error {
		return dee.open(ctx, d.BaseURL+"/", "20-qrconnect-demo-home", pgDemoHome)
	})
	dee.step("qrconnect-page", func(ctx context.Context) error {
		dee.resetRequests()
		if err := dee.click(ctx, `a.button[href="/demo/login"]`, "21-wechat-qrconnect", pgWeChatQRConnect); err != nil {
			return err
		}
		if !dee.visited("/authorize?") || !dee.visited("/wechat-sim/connect/qrconnect?") {
			return fmt.Errorf("did not pass through /authorize to the simulator's qrconnect; documents: %v", dee.requests())
		}
		if dee.visited("/wechat-sim/connect/oauth2/authorize") || dee.visited(bridge.PathQR+"?") {
			return fmt.Errorf("a desktop browser with a website app went elsewhere than qrconnect: %v", dee.requests())
		}
		return nil
	})
	dee.step("qrconnect-alice", func(ctx context.Context) error {
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`label.user:has(input[value=alice])`), chromedp.NodeVisible)); err != nil {
			return err
		}
		if err := dee.click(ctx, "button.allow", "22-qrconnect-signed-in-alice", pgSignedIn("Alice 爱丽丝")); err != nil {
			return err
		}
		if !dee.visited("/demo/callback?") {
			return fmt.Errorf("did not come back to the demo's callback: %v", dee.requests())
		}
		return nil
	})

	// Dee asks for the Official Account flow itself in her desktop Chrome:
	// WeChat would only say "open this in WeChat"; dev mode's button there
	// lets her play WeChat's browser, and she signs in.
	dee.step("oa-outside-wechat", func(ctx context.Context) error {
		dee.resetRequests()
		if err := dee.open(ctx, d.BaseURL+"/demo/login?flow=official_account", "32-wechat-open-in-wechat", pgWeChatOpenInWeChat); err != nil {
			return err
		}
		if !dee.visited("/wechat-sim/connect/oauth2/authorize?") {
			return fmt.Errorf("not WeChat's Official Account page: %v", dee.requests())
		}
		return nil
	})
	dee.step("oa-dev-switch", func(ctx context.Context) error {
		if err := dee.click(ctx, "form.dev button", "33-wechat-consent-after-switch", pgWeChatConsent); err != nil {
			return err
		}
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`label.user:has(input[value=bob])`), chromedp.NodeVisible)); err != nil {
			return err
		}
		return dee.click(ctx, "button.allow", "34-oa-signed-in-bob", pgSignedIn("Bob 鲍勃"))
	})

	// Dan, at his desktop, uses the Official Account only (cross-device):
	// the bridge shows a QR code; Pam's phone, in WeChat, scans it (opens
	// the URL in it), authorizes and confirms; Dan's page then goes on alone.
	dan := b.person(t, "dan", vpDesktop, vpDesktop.ua, shots)
	pam := b.person(t, "pam", vpPhone, uaWeChatIPhone, shots)
	var qrPage, scanURL, matchCode string
	dan.step("cross-device-qr", func(ctx context.Context) error {
		dan.resetRequests()
		resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(d.BaseURL+"/demo/login?flow=cross_device"))
		if err != nil {
			return err
		}
		if qrPage, err = chromedp.Run(ctx, chromedp.Location()); err != nil {
			return err
		}
		if !strings.HasPrefix(qrPage, d.BaseURL+bridge.PathQR+"?d=") || resp == nil || resp.Status != http.StatusOK {
			return fmt.Errorf("not on the QR page: %s; documents: %v", qrPage, dan.requests())
		}
		return dan.selfReloading(ctx, func() error {
			if err := dan.expect(ctx, nil, "23-bridge-qr-page", pgQRDesktop); err != nil {
				return err
			}
			scanURL, err = dan.qrCode(ctx, d.BaseURL+bridge.PathQRScan+"?t=")
			return err
		})
	})
	pam.step("cross-device-scan", func(ctx context.Context) error {
		// The phone's camera reads scanURL; WeChat opens it.
		if err := pam.open(ctx, scanURL, "24-cross-device-wechat-consent", pgWeChatConsent); err != nil {
			return err
		}
		if !pam.visited(bridge.PathQRScan+"?") || !pam.visited("/wechat-sim/connect/oauth2/authorize?") {
			return fmt.Errorf("the scan did not go to the Official Account authorization; documents: %v", pam.requests())
		}
		return nil
	})
	pam.step("cross-device-consent", func(ctx context.Context) error {
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`label.user:has(input[value=alice])`), chromedp.NodeVisible)); err != nil {
			return err
		}
		return pam.click(ctx, "button.allow", "25-bridge-qr-confirm", pgQRPhoneConfirm)
	})
	dan.step("cross-device-scanned", func(ctx context.Context) error {
		// The page reloads itself every 2 s; one reload now shows the scan,
		// and the number Dan tells Pam to pick.
		return dan.selfReloading(ctx, func() error {
			if err := dan.open(ctx, qrPage, "26-bridge-qr-page-scanned", pgQRDesktopScanned); err != nil {
				return err
			}
			var err error
			matchCode, err = chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("[data-match-code]").dataset.matchCode`))
			if err == nil && len(matchCode) != 2 {
				err = fmt.Errorf("the desktop shows %q as the number to pick", matchCode)
			}
			return err
		})
	})
	pam.step("cross-device-confirm", func(ctx context.Context) error {
		return pam.click(ctx, `button[name=pick][value="`+matchCode+`"]`, "27-bridge-qr-confirmed", pgQRPhoneConfirmed)
	})
	dan.step("cross-device-desktop-continues", func(ctx context.Context) error {
		// No navigation from the test: the page's meta refresh must bring
		// the desktop through /qr to the demo's callback.
		start := time.Now()
		for {
			title, err := chromedp.Run(ctx, chromedp.Title())
			if err == nil && title != "" && title != pgQRDesktop.title {
				t.Logf("dan: the desktop went on %.1fs after the phone confirmed", time.Since(start).Seconds())
				return nil
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("the desktop QR page did not go on after the phone confirmed (title %q, err %v): %w", title, err, ctx.Err())
			case <-time.After(200 * time.Millisecond):
			}
		}
	})
	dan.step("cross-device-signed-in", func(ctx context.Context) error {
		// Wait for the page in case the title came before the body.
		if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("pre"))); err != nil {
			return err
		}
		if err := dan.expect(ctx, nil, "28-cross-device-signed-in-alice", pgSignedIn("Alice 爱丽丝")); err != nil {
			return err
		}
		if !dan.visited("/demo/callback?") {
			return fmt.Errorf("the desktop did not come back to the demo's callback: %v", dan.requests())
		}
		if dan.visited("/wechat-sim/") {
			return fmt.Errorf("the desktop browser went to WeChat's pages itself: %v", dan.requests())
		}
		return nil
	})

	// Ned scans a fresh code of Dan's with his phone's camera app: Chrome on
	// Android, not WeChat. The page tells him to use WeChat, and the code
	// stays untaken.
	ned := b.person(t, "ned", vpPhone, uaAndroidChrome, shots)
	dan.step("cross-device-qr-again", func(ctx context.Context) error {
		if err := chromedp.Do(ctx, chromedp.Navigate(d.BaseURL+"/demo/login?flow=cross_device")); err != nil {
			return err
		}
		var err error
		if qrPage, err = chromedp.Run(ctx, chromedp.Location()); err != nil {
			return err
		}
		return dan.selfReloading(ctx, func() error {
			if err := dan.expect(ctx, nil, "29-bridge-qr-page-again", pgQRDesktop); err != nil {
				return err
			}
			scanURL, err = dan.qrCode(ctx, d.BaseURL+bridge.PathQRScan+"?t=")
			return err
		})
	})
	ned.step("scan-not-wechat", func(ctx context.Context) error {
		return ned.open(ctx, scanURL, "30-bridge-scan-with-wechat", pgQRScanWithWeChat)
	})
	dan.step("qr-not-taken", func(ctx context.Context) error {
		return dan.selfReloading(ctx, func() error {
			return dan.open(ctx, qrPage, "31-bridge-qr-page-still-waiting", pgQRDesktop)
		})
	})
}

// selfReloading runs check on a page that reloads itself (the QR page's
// meta refresh): a check the reload cut short is tried again, three times
// in all.
func (p *person) selfReloading(ctx context.Context, check func() error) error {
	var err error
	for i := range 3 {
		if err = check(); err == nil {
			return nil
		}
		if i < 2 {
			p.t.Logf("%s: check of a self-reloading page failed, trying again: %v", p.name, err)
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(300 * time.Millisecond):
		}
	}
	return err
}

// qrInfo is what the QR page says about its QR code.
type qrInfo struct {
	Src                 string  `json:"src"` // its first characters
	Complete            bool    `json:"complete"`
	NaturalWidth        float64 `json:"naturalWidth"`
	NaturalHeight       float64 `json:"naturalHeight"`
	Top, Left           float64
	Bottom, Right       float64
	InnerWidth          float64 `json:"innerWidth"`
	InnerHeight         float64 `json:"innerHeight"`
	DevLink, DevLinkTxt string
	Refresh             string `json:"refresh"`
}

const qrInfoJS = `(() => {
  const img = document.querySelector("img.qr");
  if (!img) return null;
  const r = img.getBoundingClientRect(), a = document.querySelector(".dev a"),
    m = document.querySelector('meta[http-equiv="refresh"]');
  return {src: (img.getAttribute("src") || "").slice(0, 32), complete: img.complete,
    naturalWidth: img.naturalWidth, naturalHeight: img.naturalHeight,
    Top: r.top, Left: r.left, Bottom: r.bottom, Right: r.right,
    innerWidth: window.innerWidth, innerHeight: window.innerHeight,
    DevLink: a ? a.href : "", DevLinkTxt: a ? a.textContent : "", refresh: m ? m.content : ""};
})()`

// qrCode checks the QR code on the bridge's QR page — a PNG, loaded, at
// least 200×200 CSS px inside the first screen — and reads it the way a
// phone's camera would: from the pixels Chromium drew (a screenshot of the
// image), not from the HTML. It must say the same URL as the dev-mode link,
// which must start with prefix. It returns that URL (the scan URL).
func (p *person) qrCode(ctx context.Context, prefix string) (string, error) {
	qi, err := chromedp.Run(ctx, chromedp.Evaluate[*qrInfo](qrInfoJS))
	if err != nil {
		return "", fmt.Errorf("read the QR code: %w", err)
	}
	if qi == nil {
		return "", errors.New("no img.qr on the QR page")
	}
	var errs []error
	if !strings.HasPrefix(qi.Src, "data:image/png;base64,") {
		errs = append(errs, fmt.Errorf("the QR image's src starts %q, want a data:image/png URL", qi.Src))
	}
	if !qi.Complete || qi.NaturalWidth == 0 || qi.NaturalHeight == 0 {
		errs = append(errs, fmt.Errorf("the QR image did not load (complete %v, %.0fx%.0f)", qi.Complete, qi.NaturalWidth, qi.NaturalHeight))
	}
	if w, h := qi.Right-qi.Left, qi.Bottom-qi.Top; w < 200 || h < 200 {
		errs = append(errs, fmt.Errorf("the QR code is %.0fx%.0f CSS px, want at least 200x200", w, h))
	}
	if qi.Top < 0 || qi.Left < 0 || qi.Bottom > qi.InnerHeight || qi.Right > qi.InnerWidth {
		errs = append(errs, fmt.Errorf("the QR code at (%.0f,%.0f)-(%.0f,%.0f) is not inside the %.0fx%.0f viewport",
			qi.Left, qi.Top, qi.Right, qi.Bottom, qi.InnerWidth, qi.InnerHeight))
	}
	if qi.Refresh == "" {
		errs = append(errs, errors.New("the QR page does not reload itself (no meta refresh)"))
	}
	if !strings.HasPrefix(qi.DevLink, prefix) || qi.DevLinkTxt != qi.DevLink {
		errs = append(errs, fmt.Errorf("dev-mode scan link %q (text %q), want one starting %q", qi.DevLink, qi.DevLinkTxt, prefix))
	}
	if len(errs) > 0 {
		return "", errors.Join(errs...)
	}
	pix, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS("img.qr"), chromedp.NodeVisible))
	if err != nil {
		return "", fmt.Errorf("screenshot of the QR code: %w", err)
	}
	text, err := qrtest.DecodePNG(pix)
	if err != nil {
		return "", fmt.Errorf("the QR code on the screen: %w", err)
	}
	if text != qi.DevLink {
		return "", fmt.Errorf("the QR code says %q, the dev-mode link %q", text, qi.DevLink)
	}
	return qi.DevLink, nil
}

// startBrowserDev runs `wechat-oidc dev` in-process on a real loopback port.
func startBrowserDev(t *testing.T) *Dev {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(ln.Addr().String(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	srv := &http.Server{Handler: d, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return d
}

// browser is one Chromium process (one allocator) for one test.
type browser struct {
	ctx context.Context // a chromedp context whose browser runs
	log *lockedBuffer   // Chromium's stdout and stderr
}

// lockedBuffer collects Chromium's output (written from another goroutine).
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startChromium starts headless Chromium with the flags this machine needs
// (no background networking: connections to Google's hosts fail here) and a
// fresh profile. The walk as a whole is bounded by browserWalkTimeout.
func startChromium(t *testing.T, bin string, extra ...chromedp.ExecAllocatorOption) *browser {
	t.Helper()
	out := &lockedBuffer{}
	opts := browsertest.AllocatorOptions(bin, t.TempDir(), append([]chromedp.ExecAllocatorOption{chromedp.CombinedOutput(out)}, extra...)...)
	walkCtx, cancelWalk := context.WithTimeout(context.Background(), browserWalkTimeout)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(walkCtx, opts...)
	ctx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
		cancelWalk()
		if t.Failed() {
			t.Logf("chromium output (dbus lines left out):\n%s", tail(withoutDBus(out.String()), 3000))
		}
	})
	// The first Run starts the browser; its life is walkCtx's.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium %s: %v\n%s", bin, err, tail(out.String(), 4000))
	}
	return &browser{ctx: ctx, log: out}
}

// withoutDBus drops Chromium's complaints about the missing D-Bus, which
// are expected here and hide the lines that matter.
func withoutDBus(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.Contains(l, "dbus/") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// person is one person's browser: a browser context of its own (its own
// cookies) with one tab, sized and identified as vp with the User-Agent ua.
type person struct {
	t     *testing.T
	name  string
	vp    viewport
	ctx   context.Context
	shots string

	mu   sync.Mutex
	docs []string // URLs of the documents requested (redirects included)
}

func (b *browser) person(t *testing.T, name string, vp viewport, ua, shots string) *person {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	p := &person{t: t, name: name, vp: vp, ctx: ctx, shots: shots}
	opts := []chromedp.EmulateViewportOption{chromedp.EmulateScale(vp.scale)}
	if vp.mobile {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(vp.width, vp.height, opts...)); err != nil {
		t.Fatalf("%s: viewport: %v", name, err)
	}
	if _, err := chromedp.Call(ctx, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: ua}); err != nil {
		t.Fatalf("%s: user agent: %v", name, err)
	}
	// Every document request, redirects included (each hop is one event).
	if err := chromedp.Listen(ctx, func(ev any) {
		if ev, ok := ev.(*network.EventRequestWillBeSent); ok && ev.Type == network.ResourceTypeDocument && ev.Request != nil {
			p.mu.Lock()
			p.docs = append(p.docs, ev.Request.URL)
			p.mu.Unlock()
		}
	}); err != nil {
		t.Fatalf("%s: listen: %v", name, err)
	}
	return p
}

func (p *person) resetRequests() {
	p.mu.Lock()
	p.docs = nil
	p.mu.Unlock()
}

func (p *person) requests() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.docs...)
}

// visited reports whether a document URL containing s was requested since
// the last resetRequests.
func (p *person) visited(s string) bool {
	for _, u := range p.requests() {
		if strings.Contains(u, s) {
			return true
		}
	}
	return false
}

// step runs one step of the walk under its own deadline. On failure it saves
// failure-<step>.png and fails the test with the page's URL, title and text.
func (p *person) step(name string, fn func(ctx context.Context) error) {
	p.t.Helper()
	if p.t.Failed() {
		return
	}
	ctx, cancel := context.WithTimeout(p.ctx, browserStepTimeout)
	err := fn(ctx)
	cancel()
	if err == nil {
		return
	}
	// A fresh short deadline for the post-mortem: the step's may be spent.
	pctx, pcancel := context.WithTimeout(p.ctx, 5*time.Second)
	defer pcancel()
	shot := p.shot(pctx, "failure-"+name)
	url, _ := chromedp.Run(pctx, chromedp.Location())
	title, _ := chromedp.Run(pctx, chromedp.Title())
	text, _ := chromedp.Run(pctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	p.t.Fatalf("%s/%s: step %q: %v\nscreenshot: %s\nurl: %s\ntitle: %q\npage text:\n%s",
		p.vp.name, p.name, name, err, shot, url, title, tail(text, 3000))
}

// shot saves a full-page PNG screenshot as <name>.png in the test's
// screenshot dir and returns its path ("" if it failed).
func (p *person) shot(ctx context.Context, name string) string {
	path, err := browsertest.Shot(ctx, p.shots, name)
	if err != nil {
		p.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	p.t.Logf("screenshot %s", path)
	return path
}

// open navigates to url, then checks the page and takes its screenshot.
func (p *person) open(ctx context.Context, url, shotName string, want pageCheck) error {
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(url))
	if err != nil {
		return fmt.Errorf("open %s: %w", url, err)
	}
	return p.expect(ctx, resp, shotName, want)
}

// click clicks the element (which must be visible), waits for the page it
// leads to (through any redirects), then checks it and takes its screenshot.
func (p *person) click(ctx context.Context, sel, shotName string, want pageCheck) error {
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		return fmt.Errorf("click %s: %w", sel, err)
	}
	return p.expect(ctx, resp, shotName, want)
}

// layoutInfo is what the page says about its layout.
type layoutInfo struct {
	ScrollWidth float64 `json:"scrollWidth"`
	InnerWidth  float64 `json:"innerWidth"`
	InnerHeight float64 `json:"innerHeight"`
	Button      *struct {
		Top, Left, Bottom, Right float64
		Visible                  bool
	} `json:"button"`
}

const layoutJS = `(() => {
  const r = {scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth, innerHeight: window.innerHeight, button: null};
  const sel = %q;
  const b = sel && document.querySelector(sel);
  if (b) {
    const q = b.getBoundingClientRect(), s = getComputedStyle(b);
    r.button = {Top: q.top, Left: q.left, Bottom: q.bottom, Right: q.right,
      Visible: q.width > 0 && q.height > 0 && s.visibility !== "hidden" && s.display !== "none" && s.opacity !== "0"};
  }
  return r;
})()`

// expect checks the current page against want and takes its screenshot
// (also when a check fails, so the screenshot shows what was wrong).
func (p *person) expect(ctx context.Context, resp *network.Response, shotName string, want pageCheck) error {
	p.shot(ctx, p.vp.name+"-"+shotName)
	var errs []error
	if want.status != 0 && (resp == nil || resp.Status != int64(want.status)) {
		got := int64(-1)
		if resp != nil {
			got = resp.Status
		}
		errs = append(errs, fmt.Errorf("HTTP status %d, want %d", got, want.status))
	}
	title, err := chromedp.Run(ctx, chromedp.Title())
	if err != nil {
		return fmt.Errorf("%s: read title: %w", shotName, err)
	}
	if want.titleContains && !strings.Contains(title, want.title) || !want.titleContains && title != want.title {
		errs = append(errs, fmt.Errorf("title %q, want %q", title, want.title))
	}
	body, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body"), chromedp.NodeVisible))
	if err != nil {
		return fmt.Errorf("%s: read body text: %w", shotName, err)
	}
	for _, s := range want.texts {
		if !strings.Contains(body, s) {
			errs = append(errs, fmt.Errorf("no %q on the page", s))
		}
	}
	for _, s := range want.absent {
		if strings.Contains(body, s) {
			errs = append(errs, fmt.Errorf("%q is on the page", s))
		}
	}
	li, err := chromedp.Run(ctx, chromedp.Evaluate[layoutInfo](fmt.Sprintf(layoutJS, want.button)))
	if err != nil {
		return fmt.Errorf("%s: read layout: %w", shotName, err)
	}
	if li.ScrollWidth > li.InnerWidth {
		msg := fmt.Sprintf("horizontal overflow: document %.0fpx wide, viewport %.0fpx", li.ScrollWidth, li.InnerWidth)
		if want.layout {
			errs = append(errs, errors.New(msg))
		} else {
			p.t.Logf("note: %s on %s (not one of the bridge's pages)", msg, shotName)
		}
	}
	if want.org || want.icon != "" {
		errs = append(errs, p.checkBrand(ctx, want)...)
	}
	if want.button != "" {
		switch b := li.Button; {
		case b == nil:
			errs = append(errs, fmt.Errorf("no main button %s", want.button))
		case !b.Visible:
			errs = append(errs, fmt.Errorf("main button %s is not visible", want.button))
		case b.Top < 0 || b.Left < 0 || b.Bottom > li.InnerHeight || b.Right > li.InnerWidth:
			errs = append(errs, fmt.Errorf("main button %s at (%.0f,%.0f)-(%.0f,%.0f) is not inside the %.0fx%.0f viewport",
				want.button, b.Left, b.Top, b.Right, b.Bottom, li.InnerWidth, li.InnerHeight))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s: %w", shotName, errors.Join(errs...))
	}
	return nil
}

// brandInfo is what a page shows of the organisation, and its state icon.
type brandInfo struct {
	Header      bool    `json:"header"`
	Text        string  `json:"text"`
	Logo        bool    `json:"logo"`
	LogoLoaded  bool    `json:"logoLoaded"`
	LogoWidth   float64 `json:"logoWidth"`
	Icon        string  `json:"icon"`
	IconVisible bool    `json:"iconVisible"`
}

const brandJS = `(() => {
  const h = document.querySelector("[data-org]"), img = h && h.querySelector("img"), i = document.querySelector("[data-icon]");
  const r = i && i.getBoundingClientRect();
  return {header: !!h, text: h ? h.innerText : "", logo: !!img,
    logoLoaded: !!img && img.complete && img.naturalWidth > 0, logoWidth: img ? img.getBoundingClientRect().width : 0,
    icon: i ? i.dataset.icon : "", iconVisible: !!r && r.width > 0 && r.height > 0};
})()`

// checkBrand checks the organisation's header (its name, its logo drawn)
// and the state icon.
func (p *person) checkBrand(ctx context.Context, want pageCheck) []error {
	bi, err := chromedp.Run(ctx, chromedp.Evaluate[brandInfo](brandJS))
	if err != nil {
		return []error{fmt.Errorf("read the header: %w", err)}
	}
	var errs []error
	if want.org {
		switch {
		case !bi.Header:
			errs = append(errs, errors.New("no organisation header ([data-org])"))
		case !strings.Contains(bi.Text, DefaultOrganization):
			errs = append(errs, fmt.Errorf("the header says %q, not the organisation %q", bi.Text, DefaultOrganization))
		case !bi.Logo || !bi.LogoLoaded || bi.LogoWidth < 16:
			errs = append(errs, fmt.Errorf("the logo is not drawn (img %v, loaded %v, %.0f px wide)", bi.Logo, bi.LogoLoaded, bi.LogoWidth))
		}
	}
	if want.icon != "" && (bi.Icon != want.icon || !bi.IconVisible) {
		errs = append(errs, fmt.Errorf("state icon %q (visible %v), want %q", bi.Icon, bi.IconVisible, want.icon))
	}
	return errs
}

// cjkGlyphsJS draws two different Chinese characters on a canvas: without a
// CJK font both come out as the same empty box (tofu).
const cjkGlyphsJS = `(() => {
  const c = document.createElement("canvas");
  c.width = 48; c.height = 48;
  const g = c.getContext("2d");
  const draw = ch => {
    g.clearRect(0, 0, 48, 48);
    g.font = "36px sans-serif";
    g.fillText(ch, 4, 40);
    return Array.from(g.getImageData(0, 0, 48, 48).data).join(",");
  };
  return draw("微") !== draw("授");
})()`

// checkCJKFonts makes sure Chinese text renders as glyphs, not boxes: the
// pages are in Chinese. Debian's fonts-noto-cjk has the glyphs; CI installs
// it, elsewhere a missing font only earns a warning.
func (p *person) checkCJKFonts(ctx context.Context) error {
	ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](cjkGlyphsJS))
	if err != nil || ok {
		return err
	}
	msg := "Chinese text renders as boxes: no CJK font (Debian package fonts-noto-cjk)"
	if os.Getenv("CI") != "" {
		return errors.New(msg + "; CI must install it")
	}
	p.t.Logf("warning: %s; the screenshots show boxes", msg)
	return nil
}
