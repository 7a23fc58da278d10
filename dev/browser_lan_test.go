package dev

import (
	"context"
	"errors"
	"fmt"
	"github.com/wechat-oidc/wechat-oidc/internal/browsertest"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wechat-oidc/wechat-oidc/internal/qrtest"
)

// TestBrowserPhoneOnLAN: `dev --issuer http://192.168.x.x:PORT` as a phone
// on the same network sees it. Chromium reaches the LAN address through a
// proxy that is dev mode's own loopback listener (a Go server answers the
// proxy's absolute-form requests like any other), so nothing goes to a
// network. The demo's home page shows a QR code of itself that a phone's
// camera reads as the LAN address, and the phone signs in there.
func TestBrowserPhoneOnLAN(t *testing.T) {
	bin := browsertest.Binary(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	issuer := "http://" + net.JoinHostPort(lanTestIP, port)
	d, err := NewWithOptions(Options{Listen: ln.Addr().String(), Issuer: issuer}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	srv := &http.Server{Handler: d, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	b := startChromium(t, bin, chromedp.ProxyServer("http://"+ln.Addr().String()))
	shots := browsertest.ShotsDir(t)
	lin := b.person(t, "lin", vpPhone, uaWeChatIPhone, shots)
	home := pgDemoHome
	home.texts = append(append([]string(nil), home.texts...), "用手机微信扫一扫", issuer+"/")
	lin.step("home-on-lan", func(ctx context.Context) error {
		if err := lin.open(ctx, issuer+"/", "50-lan-demo-home", home); err != nil {
			return err
		}
		pix, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS("[data-phone-qr] img"), chromedp.NodeVisible))
		if err != nil {
			return fmt.Errorf("screenshot of the phone QR code: %w", err)
		}
		text, err := qrtest.DecodePNG(pix)
		if err != nil || text != issuer+"/" {
			return fmt.Errorf("the phone QR code says %q (%v), want %s/", text, err, issuer)
		}
		return nil
	})
	lin.step("sign-in-on-lan", func(ctx context.Context) error {
		lin.resetRequests()
		if err := lin.click(ctx, `a.button[href="/demo/login"]`, "51-lan-wechat-consent", pgWeChatConsent); err != nil {
			return err
		}
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`label.user:has(input[value=alice])`), chromedp.NodeVisible)); err != nil {
			return err
		}
		if err := lin.click(ctx, "button.allow", "52-lan-signed-in-alice", pgSignedIn("Alice 爱丽丝")); err != nil {
			return err
		}
		var errs []error
		for _, u := range lin.requests() {
			if !strings.HasPrefix(u, issuer+"/") {
				errs = append(errs, fmt.Errorf("the phone went to %s, not to %s", u, issuer))
			}
		}
		return errors.Join(errs...)
	})
}
