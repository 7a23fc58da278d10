package admin

import (
	"bytes"
	"encoding/base64"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"strings"
	"testing"

	"github.com/wechat-oidc/wechat-oidc/directory"
)

// a 1×1 PNG.
const testLogo = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="

// TestConsoleShowsTheOrganization: every console page — the signed-in
// pages and the ones shown to others — names the organisation and shows its
// logo, in either language.
func TestConsoleShowsTheOrganization(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.Organization = "示例科技 <Example>"; o.LogoDataURL = testLogo })
	root := h.person("root", directory.StatusActive, "admins")
	eve := h.person("eve", directory.StatusActive)
	for _, lang := range []string{"zh-CN", "en"} {
		admin := h.browser(root.ID, lang)
		admin.signIn()
		for _, p := range []page{admin.open("/admin/people"), admin.open("/admin/audit"), h.browser(eve.ID, lang).open("/admin/")} {
			// (html/template writes the logo's "+" as &#43;, which is the same.)
			for _, want := range []string{`<b>示例科技 &lt;Example&gt;</b>`, `src="` + testLogo + `"`} {
				if !strings.Contains(p.body, want) && !strings.Contains(strings.ReplaceAll(p.body, "&#43;", "+"), want) {
					t.Errorf("%s %s: the page lacks %q", lang, p.dataPage(), want)
				}
			}
		}
	}
	if p := h.browser(eve.ID, "en").open("/admin/"); p.status != http.StatusForbidden || !strings.Contains(p.body, "· Admin console") {
		t.Errorf("forbidden page in English: %d\n%s", p.status, cut(p.body, 2000))
	}
}

// TestConsoleOrganizationDefaultsToHost: without a name the header says
// the issuer's host; a logo that is not a PNG or JPEG data URL is refused.
func TestConsoleOrganizationDefaultsToHost(t *testing.T) {
	h := newHarness(t)
	eve := h.person("eve", directory.StatusActive)
	host := strings.TrimPrefix(h.issuer, "http://")
	host = host[:strings.LastIndexByte(host, ':')]
	if p := h.browser(eve.ID, "zh-CN").open("/admin/"); !strings.Contains(p.body, "<b>"+host+"</b>") || strings.Contains(p.body, "<img class=\"logo\"") {
		t.Errorf("header without ui.organization:\n%s", cut(p.body, 2000))
	}
	for _, bad := range []string{"javascript:alert(1)", "data:image/svg+xml;base64,PHN2Zz4=", "https://evil.example/logo.png"} {
		o := Options{Issuer: h.issuer, Directory: h.dir, Store: h.store, Provider: h.provider, Core: h.core, LogoDataURL: bad}
		if _, err := New(o); err == nil {
			t.Errorf("logo %q accepted", bad)
		}
	}
}

// drawnLogo is a 48×48 PNG data URL: a green square with a white bar.
func drawnLogo(t *testing.T) string {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 48, 48))
	for x := range 48 {
		for y := range 48 {
			c := color.RGBA{0x07, 0xc1, 0x60, 0xff}
			if y > 20 && y < 28 && x > 8 && x < 40 {
				c = color.RGBA{0xff, 0xff, 0xff, 0xff}
			}
			img.Set(x, y, c)
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())
}
