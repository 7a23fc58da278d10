package bridge

import (
	"bytes"
	"encoding/base64"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/wechat-oidc/wechat-oidc/config"
)

// withOrganization sets ui.organization and a PNG ui.logo.
func withOrganization(t *testing.T, name string) (harnessOption, []byte) {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 16, 16))
	for i := range 16 {
		img.Set(i, i, color.RGBA{G: 0xc1, A: 0xff})
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "logo.png")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return withConfig(func(c *config.File) { c.UI = config.UIConfig{Organization: name, Logo: path} }), buf.Bytes()
}

// TestEveryPageShowsTheOrganization: the bridge's pages — the error pages
// of HTTP itself included — say whose sign-in they are, with the logo, in
// both languages.
func TestEveryPageShowsTheOrganization(t *testing.T) {
	org, logo := withOrganization(t, "示例科技 <Example>")
	h := newHarness(t, org)
	wantLogo := `src="data:image/png;base64,` + base64.StdEncoding.EncodeToString(logo) + `"`
	cases := []struct {
		name, path string
		status     int
		page, icon string
		zh, en     string
	}{
		{"not found", "/no/such/page", http.StatusNotFound, "http-404", "warn", "页面不存在", "Page not found"},
		{"method not allowed", "/token", http.StatusMethodNotAllowed, "http-405", "warn", "不支持这种访问方式", "cannot be opened this way"},
		{"bad client", "/authorize?client_id=nobody", http.StatusBadRequest, "error", "warn", "无法登录", "client_id"},
		{"expired", "/wechat/callback?state=NoSuchHandle1", http.StatusBadRequest, "login-expired", "warn", "登录已失效", "expired"},
		{"signed out", PathLogout, http.StatusOK, "signed-out", "ok", "你已退出登录", "signed out"},
		{"unknown invitation", PathInvite + "NoSuchInvitation0123456789", http.StatusBadRequest, "invite-unknown", "warn", "邀请链接无效", "does not exist"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, err := h.browser().Get(h.issuer() + c.path)
			if err != nil {
				t.Fatal(err)
			}
			// (html/template writes a "+" of the logo as &#43;, which is the same.)
			body := strings.ReplaceAll(readBody(t, resp), "&#43;", "+")
			if resp.StatusCode != c.status {
				t.Errorf("status %d, want %d", resp.StatusCode, c.status)
			}
			for _, want := range []string{
				`data-page="` + c.page + `"`, `data-icon="` + c.icon + `"`, c.zh, c.en,
				// The name is escaped like any text; the logo is the file.
				`<b>示例科技 &lt;Example&gt;</b>`, wantLogo,
			} {
				if !strings.Contains(body, want) {
					t.Errorf("the page lacks %q:\n%s", want, body)
				}
			}
			if !regexp.MustCompile(`<title>[^<]*\p{Han}[^<]* · [^<]*[A-Za-z][^<]*</title>`).MatchString(body) {
				t.Errorf("the title is not in both languages: %s", regexp.MustCompile(`<title>.*</title>`).FindString(body))
			}
		})
	}
}

// TestPagesWithoutOrganizationNameTheHost: without ui.organization the
// header names the issuer's host, and no logo is shown.
func TestPagesWithoutOrganizationNameTheHost(t *testing.T) {
	h := newHarness(t)
	resp, err := h.browser().Get(h.issuer() + "/no/such/page")
	if err != nil {
		t.Fatal(err)
	}
	body := readBody(t, resp)
	host := strings.TrimPrefix(h.issuer(), "http://")
	host = host[:strings.LastIndexByte(host, ':')]
	if !strings.Contains(body, "<b>"+host+"</b>") || strings.Contains(body, "data:image/png") {
		t.Fatalf("the header does not name %s (or shows a logo):\n%s", host, body)
	}
}

// TestHTTPErrorPageTexts: every status httpError may render has a page in
// both languages and a stable name.
func TestHTTPErrorPageTexts(t *testing.T) {
	for _, code := range []int{400, 403, 404, 405, 413, 429, 500, 502, 503} {
		p := httpErrorPage(code)
		if p.Name != "http-"+strconv.Itoa(code) {
			t.Errorf("%d: name %q", code, p.Name)
		}
		if !regexp.MustCompile(`\p{Han}`).MatchString(p.Heading+p.Message) || !regexp.MustCompile(`[A-Za-z]{4}`).MatchString(p.Detail) {
			t.Errorf("%d: not in both languages: %+v", code, p)
		}
		if !strings.Contains(p.Title, " · ") {
			t.Errorf("%d: title %q", code, p.Title)
		}
	}
}
