package config

import (
	"bytes"
	"encoding/base64"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// parseWithUI parses validConfig with ui set to the given YAML flow mapping.
func parseWithUI(t *testing.T, ui string) (*File, error) {
	t.Helper()
	return Parse([]byte(validConfig+"ui: "+ui+"\n"), testEnv)
}

func writeImage(t *testing.T, name string, encode func(*bytes.Buffer, image.Image) error) string {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 32, 32))
	for x := range 32 {
		for y := range 32 {
			img.Set(x, y, color.RGBA{R: uint8(x * 8), G: 0xc1, B: uint8(y * 8), A: 0xff})
		}
	}
	var buf bytes.Buffer
	if err := encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return writeFile(t, name, buf.Bytes())
}

func writeFile(t *testing.T, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func encodePNG(b *bytes.Buffer, img image.Image) error  { return png.Encode(b, img) }
func encodeJPEG(b *bytes.Buffer, img image.Image) error { return jpeg.Encode(b, img, nil) }
func encodeGIF(b *bytes.Buffer, img image.Image) error  { return gif.Encode(b, img, nil) }

// TestUILogoEmbedded: a PNG or a JPEG logo is read at start and handed on
// as a data: URL of exactly the file's bytes.
func TestUILogoEmbedded(t *testing.T) {
	for _, c := range []struct {
		name, mime string
		encode     func(*bytes.Buffer, image.Image) error
	}{{"logo.png", "image/png", encodePNG}, {"logo.jpg", "image/jpeg", encodeJPEG}} {
		path := writeImage(t, c.name, c.encode)
		f, err := parseWithUI(t, `{ organization: "示例科技", logo: "`+path+`" }`)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		o := f.Options().UI
		if o.Organization != "示例科技" {
			t.Errorf("organization %q", o.Organization)
		}
		prefix := "data:" + c.mime + ";base64,"
		if !strings.HasPrefix(o.LogoDataURL, prefix) {
			t.Fatalf("%s: logo %.40q, want a %s data URL", c.name, o.LogoDataURL, c.mime)
		}
		got, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(o.LogoDataURL, prefix))
		want, _ := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s: the data URL is not the file (%v)", c.name, err)
		}
	}
}

// TestUIOrganizationDefaultsToIssuerHost: without ui.organization a page
// still says whose service it is.
func TestUIOrganizationDefaultsToIssuerHost(t *testing.T) {
	f, err := Parse([]byte(validConfig), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	if o := f.Options().UI; o.Organization != "sso.example.com" || o.LogoDataURL != "" {
		t.Fatalf("ui = %+v, want the issuer's host and no logo", o)
	}
	f, err = parseWithUI(t, `{ organization: "  示例科技  " }`)
	if err != nil {
		t.Fatal(err)
	}
	if o := f.Options().UI; o.Organization != "示例科技" {
		t.Fatalf("organization %q, want it trimmed", o.Organization)
	}
}

// TestUIConfigErrors: each bad ui value is refused with a message naming the
// key and the fix.
func TestUIConfigErrors(t *testing.T) {
	big := make([]byte, MaxLogoBytes+1)
	copy(big, "\x89PNG\r\n\x1a\n")
	cases := []struct {
		name, ui string
		want     []string
	}{
		{"organization too long", `{ organization: "` + strings.Repeat("示", MaxOrganizationRunes+1) + `" }`,
			[]string{"ui.organization", strconv.Itoa(MaxOrganizationRunes+1) + " characters", "shorten it to 64"}},
		{"organization with a newline", `{ organization: "示例\nEvil" }`, []string{"ui.organization", "control character U+000A", "one line"}},
		{"organization with a bidi override", "{ organization: \"示例\u202Eabc\" }", []string{"ui.organization", "U+202E"}},
		{"logo missing", `{ logo: "` + filepath.Join(t.TempDir(), "nope.png") + `" }`,
			[]string{"ui.logo", "nope.png", "no such file", "put a PNG or JPEG file there", "or remove ui.logo"}},
		{"logo too large", `{ logo: "` + writeFile(t, "big.png", big) + `" }`, []string{"ui.logo", "big.png", "larger than 64 KiB", "make it smaller"}},
		{"logo is a directory", `{ logo: "` + t.TempDir() + `" }`, []string{"ui.logo", "cannot read"}},
		{"logo GIF", `{ logo: "` + writeImage(t, "logo.gif", encodeGIF) + `" }`, []string{"ui.logo", "not a PNG or JPEG", "convert the logo to PNG"}},
		{"logo broken PNG", `{ logo: "` + writeFile(t, "broken.png", []byte("\x89PNG\r\n\x1a\nnot really")) + `" }`,
			[]string{"ui.logo", "looks like image/png but cannot be read", "export it again"}},
		{"logo empty file", `{ logo: "` + writeFile(t, "empty.png", nil) + `" }`, []string{"ui.logo", "not a PNG or JPEG"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseWithUI(t, c.ui)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestUILogoSVGRefused: an SVG can carry script; the logo must be a raster
// image whatever the file is called.
func TestUILogoSVGRefused(t *testing.T) {
	svg := []byte(`<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`)
	for _, name := range []string{"logo.svg", "logo.png"} {
		_, err := parseWithUI(t, `{ logo: "`+writeFile(t, name, svg)+`" }`)
		if err == nil || !strings.Contains(err.Error(), "SVG") || !strings.Contains(err.Error(), "export the logo as PNG") {
			t.Errorf("%s: err = %v, want SVG refused", name, err)
		}
	}
}

// TestPrivateNetworkHTTPIssuer: http on a private-network address only when
// dev mode asks for it, and never on a public address or a name.
func TestPrivateNetworkHTTPIssuer(t *testing.T) {
	cases := []struct {
		issuer     string
		allow, ok  bool
		wantInErr  string
		whyRefused string
	}{
		{"http://192.168.1.10:8080", false, false, "non-loopback", "not allowed by default"},
		{"http://192.168.1.10:8080", true, true, "", ""},
		{"http://10.0.0.5:8080", true, true, "", ""},
		{"http://172.16.0.2", true, true, "", ""},
		{"http://[fd12:3456::1]:8080", true, true, "", ""},
		{"http://127.0.0.1:8080", true, true, "", ""},
		{"http://203.0.113.7:8080", true, false, "private-network IP address", "a public address"},
		{"http://mybox.lan:8080", true, false, "private-network IP address", "a name may resolve anywhere"},
		{"https://sso.example.com", true, true, "", ""},
	}
	for _, c := range cases {
		f, err := decodeValid(t)
		if err != nil {
			t.Fatal(err)
		}
		f.Issuer = c.issuer
		if c.allow {
			f.AllowPrivateNetworkHTTP()
		}
		_, err = f.Resolve()
		if (err == nil) != c.ok {
			t.Errorf("%s (allow %v): err = %v, want ok=%v %s", c.issuer, c.allow, err, c.ok, c.whyRefused)
			continue
		}
		if err != nil && !strings.Contains(err.Error(), c.wantInErr) {
			t.Errorf("%s: error %q lacks %q", c.issuer, err, c.wantInErr)
		}
	}
}

func decodeValid(t *testing.T) (*File, error) {
	t.Helper()
	f, _, err := decode([]byte(validConfig), testEnv)
	return f, err
}
