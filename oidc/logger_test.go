package oidc

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// logCapture collects the JSON log lines of one test (used from one goroutine).
type logCapture struct {
	buf bytes.Buffer
}

func (c *logCapture) logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(&c.buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// TestProviderLogsThroughItsLogger: the provider writes to the logger it was
// given, never to the process-wide slog default (which belongs to whoever
// embeds it), and its lines carry no token or code.
func TestProviderLogsThroughItsLogger(t *testing.T) {
	var mine, global logCapture
	prev := slog.Default()
	slog.SetDefault(global.logger())
	t.Cleanup(func() { slog.SetDefault(prev) })

	h := newRefreshHarness(t)
	h.p.Logger = mine.logger()
	code := h.login("app", offlineScopes, "")
	tr := h.exchange("app", code)
	// A code replay and a refresh token reuse are both logged as warnings.
	if _, e := h.token("app", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {appRedirect}}); e != CodeInvalidGrant {
		t.Fatalf("code replay: %q", e)
	}
	h.wantUserinfo(tr.AccessToken, http.StatusUnauthorized)

	out := mine.buf.String()
	if !strings.Contains(out, "authorization code replayed") {
		t.Fatalf("the provider's logger got no line about the code replay: %q", out)
	}
	if global.buf.Len() != 0 {
		t.Fatalf("the provider wrote to the global slog default: %q", global.buf.String())
	}
	for _, secret := range []string{code, tr.AccessToken, tr.RefreshToken, appSecret} {
		if strings.Contains(out, secret) {
			t.Fatalf("a token, code or secret is in the log: %q", out)
		}
	}
}

// TestNilLoggerUsesDefault: a Provider without a Logger logs to slog.Default.
func TestNilLoggerUsesDefault(t *testing.T) {
	var global logCapture
	prev := slog.Default()
	slog.SetDefault(global.logger())
	t.Cleanup(func() { slog.SetDefault(prev) })
	h := newRefreshHarness(t)
	code := h.login("app", "openid", "")
	h.exchange("app", code)
	if _, e := h.token("app", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {appRedirect}}); e != CodeInvalidGrant {
		t.Fatalf("code replay: %q", e)
	}
	if !strings.Contains(global.buf.String(), "authorization code replayed") {
		t.Fatalf("nothing logged to slog.Default: %q", global.buf.String())
	}
}
