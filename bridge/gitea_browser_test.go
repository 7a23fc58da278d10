package bridge

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/wechat-oidc/wechat-oidc/internal/browsertest"
)

// TestGiteaBrowserSignIn: a person in a real browser (headless Chromium,
// playing WeChat's in-app browser) opens Gitea's sign-in page, clicks "Sign
// in with wechat", picks themself on the simulated WeChat consent page,
// taps 允许 and lands on Gitea's dashboard, signed in to the account Gitea
// created from the bridge's claims. A screenshot of each page goes to the
// test's temp dir, or to $BROWSER_SCREENSHOTS/TestGiteaBrowserSignIn (logged).
func TestGiteaBrowserSignIn(t *testing.T) {
	bin := browsertest.Binary(t)
	g := sharedGitea(t)
	h := g.bridge(t, giteaUsers("browser", "mona"))
	mona := g.person(t, h, "browser-mona")
	h.sim.AutoApprove("") // the consent page is shown and clicked

	ctx := startHeadlessChromium(t, bin)
	dialogs := acceptAssetAlerts(t, ctx)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile)); err != nil {
		t.Fatalf("phone viewport: %v", err)
	}
	if _, err := chromedp.Call(ctx, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: uaWeChat}); err != nil {
		t.Fatalf("WeChat's user agent: %v", err)
	}
	shots := browsertest.ShotsDir(t)
	shot := func(name string) {
		t.Helper()
		p, err := browsertest.Shot(ctx, shots, name)
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		t.Logf("screenshot: %s", p)
	}

	// Gitea's sign-in page → its link for the bridge → the consent page.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(g.url+"/user/login"),
		chromedp.WaitVisible(chromedp.CSS(`a.oauth-login-link[href="/user/oauth2/`+giteaSourceName+`"]`)),
	); err != nil {
		t.Fatalf("gitea sign-in page: %v\nbridge log:\n%s", err, tail(h.logs.String(), 2000))
	}
	shot("01-gitea-sign-in")
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`a.oauth-login-link`), chromedp.NodeVisible)); err != nil {
		t.Fatalf("click Sign in with %s: %v", giteaSourceName, err)
	}
	userChoice := `label.user:has(input[value="browser-mona"])`
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(userChoice))); err != nil {
		t.Fatalf("the simulated WeChat consent page did not show mona: %v\nbridge log:\n%s", err, tail(h.logs.String(), 2000))
	}
	shot("02-wechat-consent")

	// 允许 → the bridge → Gitea's callback → Gitea's dashboard.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(userChoice), chromedp.NodeVisible)); err != nil {
		t.Fatalf("choose mona: %v", err)
	}
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`button.allow`), chromedp.NodeVisible)); err != nil {
		t.Fatalf("tap 允许: %v\nbridge log:\n%s", err, tail(h.logs.String(), 2000))
	}
	location, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatalf("location after sign-in: %v", err)
	}
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
	if err != nil {
		t.Fatalf("text after sign-in: %v", err)
	}
	shot("03-gitea-dashboard")
	if location != g.url+"/" {
		t.Fatalf("landed on %s, want Gitea's home %s/\n%.500s\nbridge log:\n%s", location, g.url, text, tail(h.logs.String(), 3000))
	}
	// The navigation bar's text, whitespace aside.
	if !strings.Contains(strings.Join(strings.Fields(text), " "), "Signed in as "+mona.username) {
		t.Errorf("the dashboard does not say signed in as %s: %.800q", mona.username, text)
	}
	for _, msg := range dialogs() {
		if !strings.HasPrefix(msg, "Failed to load asset files from ") {
			t.Errorf("gitea showed an unexpected dialog: %q", msg)
		}
	}
	if acc := g.accountOf(t, mona); acc.Login != mona.username || acc.Email != mona.email || acc.FullName != "Mona" {
		t.Errorf("account = %+v, want %s, %s, Mona", acc, mona.username, mona.email)
	}
}

// acceptAssetAlerts accepts the alert Gitea's pages raise when its
// JavaScript bundle fails to load (templates/base/footer.tmpl): the tests run
// Gitea built from its Go module, which has no frontend bundle (building it
// takes npm and webpack), so its pages come without their JavaScript and CSS.
// They are rendered on the server and the sign-in is plain links, forms and
// redirects; an unanswered alert, though, would stop the page from loading.
// It returns the messages of every dialog, for the test to check.
func acceptAssetAlerts(t *testing.T, ctx context.Context) func() []string {
	t.Helper()
	var (
		mu   sync.Mutex
		msgs []string
	)
	if err := chromedp.Listen(ctx, func(ev any) {
		if e, ok := ev.(*cdppage.EventJavascriptDialogOpening); ok {
			mu.Lock()
			msgs = append(msgs, e.Message)
			mu.Unlock()
			go func() {
				// The listener must not block the event loop: answer from another goroutine.
				_, _ = chromedp.Call(ctx, cdppage.HandleJavaScriptDialog, cdppage.HandleJavaScriptDialogParams{Accept: true})
			}()
		}
	}); err != nil {
		t.Fatalf("listen for dialogs: %v", err)
	}
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), msgs...)
	}
}

// startHeadlessChromium starts headless Chromium with the flags
// dev/browser_test.go uses on this kind of machine (no sandbox as root, no
// background connections to outside hosts) and a fresh profile; the whole
// test gets 90 seconds (Chromium starts slowly on a busy machine).
func startHeadlessChromium(t *testing.T, bin string) context.Context {
	t.Helper()
	out := &syncBuffer{}
	opts := browsertest.AllocatorOptions(bin, t.TempDir(), chromedp.CombinedOutput(out))
	runCtx, cancelRun := context.WithTimeout(context.Background(), 90*time.Second)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(runCtx, opts...)
	ctx, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
		cancelRun()
		if t.Failed() {
			t.Logf("chromium output:\n%s", tail(out.String(), 3000))
		}
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium %s: %v\n%s", bin, err, tail(out.String(), 3000))
	}
	return ctx
}
