package dev

import (
	"bytes"
	"encoding/base64"
	"image"
	"image/color"
	"image/png"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// get serves one GET from d without a network.
func get(t *testing.T, d *Dev, path string) string {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, path, nil)
	req.Header.Set("User-Agent", uaWeChat)
	rec := httptest.NewRecorder()
	d.ServeHTTP(rec, req)
	return strings.ReplaceAll(rec.Body.String(), "&#43;", "+")
}

var logoSrc = regexp.MustCompile(`<header[^>]*data-org[^>]*><div><img src="data:image/png;base64,([^"]+)" alt=""><b>([^<]*)</b>`)

// TestDevPagesNameTheOrganization: dev mode's pages — the demo's and the
// bridge's — carry DefaultOrganization and a drawn logo (a real PNG), or
// the ones --organization and --logo give.
func TestDevPagesNameTheOrganization(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	d, err := New("127.0.0.1:18080", quiet)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/", "/no/such/page", "/logout"} {
		m := logoSrc.FindStringSubmatch(get(t, d, path))
		if m == nil || m[2] != DefaultOrganization {
			t.Fatalf("%s: no header with %s and a logo", path, DefaultOrganization)
		}
		raw, err := base64.StdEncoding.DecodeString(m[1])
		if err != nil {
			t.Fatal(err)
		}
		if cfg, err := png.DecodeConfig(bytes.NewReader(raw)); err != nil || cfg.Width != 96 || cfg.Height != 96 {
			t.Errorf("%s: the drawn logo is not a 96×96 PNG: %+v %v", path, cfg, err)
		}
	}

	img := image.NewNRGBA(image.Rect(0, 0, 8, 8))
	img.Set(1, 1, color.NRGBA{R: 0xff, A: 0xff})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	logo := filepath.Join(t.TempDir(), "acme.png")
	if err := os.WriteFile(logo, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err = NewWithOptions(Options{Listen: "127.0.0.1:18080", Organization: "ACME 公司", Logo: logo}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	m := logoSrc.FindStringSubmatch(get(t, d, "/"))
	if m == nil || m[2] != "ACME 公司" || m[1] != base64.StdEncoding.EncodeToString(buf.Bytes()) {
		t.Fatalf("--organization/--logo not shown: %q", m)
	}
	_, err = NewWithOptions(Options{Listen: "127.0.0.1:18080", Logo: filepath.Join(t.TempDir(), "missing.png")}, quiet)
	if err == nil || !strings.Contains(err.Error(), "ui.logo") {
		t.Errorf("a missing --logo: %v", err)
	}
}
