package config

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io"
	"net/url"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits of the ui section.
const (
	// MaxOrganizationRunes bounds ui.organization: it must fit a phone's
	// header line.
	MaxOrganizationRunes = 64
	// MaxLogoBytes bounds ui.logo: every page embeds it.
	MaxLogoBytes = 64 << 10
)

// UI is what the pages show of the organisation running the service.
type UI struct {
	// Organization is ui.organization, or the issuer's host name when that
	// is empty: a page always says whose sign-in it is.
	Organization string
	// LogoDataURL is ui.logo as a data: URL (image/png or image/jpeg);
	// "" for no logo.
	LogoDataURL string
}

// AllowPrivateNetworkHTTP lets the issuer use http on a private-network IP
// address (192.168.x.x, 10.x.x.x, 172.16-31.x.x, fc00::/7) besides
// loopback. It is for `wechat-oidc dev --issuer`, so that a phone on the
// same network can try dev mode; nothing else calls it (the YAML cannot set
// it): a sign-in over plain http can be watched by anyone on that network.
func (c *File) AllowPrivateNetworkHTTP() { c.privateNetworkHTTP = true }

func (c *File) validateUI() error {
	org := c.UI.Organization
	if !utf8.ValidString(org) {
		return errors.New("ui.organization is not valid UTF-8: write the name as text in the file")
	}
	if n := utf8.RuneCountInString(org); n > MaxOrganizationRunes {
		return fmt.Errorf("ui.organization is %d characters long: shorten it to %d at most (it is shown in one line at the top of every page)", n, MaxOrganizationRunes)
	}
	for _, r := range org {
		if unicode.IsControl(r) || isBidiControl(r) {
			return fmt.Errorf("ui.organization contains the control character %U: write the name as plain text, on one line", r)
		}
	}
	c.logoDataURL = ""
	if c.UI.Logo == "" {
		return nil
	}
	logo, err := readLogo(c.UI.Logo)
	if err != nil {
		return fmt.Errorf("ui.logo: %w", err)
	}
	c.logoDataURL = logo
	return nil
}

// isBidiControl: the embedding, override and isolate characters, which
// could make a name read differently from what it is.
func isBidiControl(r rune) bool {
	return (r >= '\u202A' && r <= '\u202E') || (r >= '\u2066' && r <= '\u2069') || r == '\u200E' || r == '\u200F' || r == '\u061C'
}

// readLogo reads a PNG or JPEG file of at most MaxLogoBytes and returns it
// as a data: URL. SVG is refused: an SVG can carry script.
func readLogo(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("cannot read %q (%v): put a PNG or JPEG file there (a relative path is relative to the working directory) or remove ui.logo", path, errors.Unwrap(err))
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, MaxLogoBytes+1))
	if err != nil {
		return "", fmt.Errorf("cannot read %q: %w", path, err)
	}
	if len(raw) > MaxLogoBytes {
		return "", fmt.Errorf("%q is larger than %d KiB: every page embeds the logo, so make it smaller (a 128×128 PNG is a few KiB) or remove ui.logo", path, MaxLogoBytes>>10)
	}
	var mime string
	var decode func(io.Reader) (image.Config, error)
	switch {
	case bytes.HasPrefix(raw, []byte("\x89PNG\r\n\x1a\n")):
		mime, decode = "image/png", png.DecodeConfig
	case bytes.HasPrefix(raw, []byte("\xff\xd8\xff")):
		mime, decode = "image/jpeg", jpeg.DecodeConfig
	case bytes.Contains(bytes.ToLower(raw[:min(len(raw), 1024)]), []byte("<svg")) || strings.HasSuffix(strings.ToLower(path), ".svg"):
		return "", fmt.Errorf("%q is an SVG file, which is not accepted (an SVG can carry script): export the logo as PNG", path)
	default:
		return "", fmt.Errorf("%q is not a PNG or JPEG file: convert the logo to PNG", path)
	}
	cfg, err := decode(bytes.NewReader(raw))
	if err != nil {
		return "", fmt.Errorf("%q looks like %s but cannot be read (%v): export it again", path, mime, err)
	}
	if cfg.Width == 0 || cfg.Height == 0 {
		return "", fmt.Errorf("%q is an empty image (%d×%d): export the logo again", path, cfg.Width, cfg.Height)
	}
	return "data:" + mime + ";base64," + base64.StdEncoding.EncodeToString(raw), nil
}

// uiOptions resolves the ui section (validated).
func (c *File) uiOptions() UI {
	ui := UI{Organization: strings.TrimSpace(c.UI.Organization), LogoDataURL: c.logoDataURL}
	if ui.Organization == "" {
		if u, err := url.Parse(c.Issuer); err == nil {
			ui.Organization = u.Hostname()
		}
	}
	return ui
}
