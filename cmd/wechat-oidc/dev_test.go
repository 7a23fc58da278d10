package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/wechat-oidc/wechat-oidc/dev"
)

// TestDevOptions: with --issuer (or --lan) dev mode listens on every
// interface unless --listen says otherwise; --lan and --issuer together
// are refused.
func TestDevOptions(t *testing.T) {
	for _, c := range []struct {
		in         dev.Options
		wantListen string
	}{
		{dev.Options{}, "127.0.0.1:8080"},
		{dev.Options{Issuer: "http://192.168.1.10:8080"}, "0.0.0.0:8080"},
		{dev.Options{Issuer: "http://192.168.1.10:8080", Listen: "127.0.0.1:9000"}, "127.0.0.1:9000"},
	} {
		o := c.in
		if err := devOptions(&o, false); err != nil || o.Listen != c.wantListen {
			t.Errorf("%+v: listen %q (%v), want %q", c.in, o.Listen, err, c.wantListen)
		}
	}
	o := dev.Options{Issuer: "http://192.168.1.10:8080"}
	if err := devOptions(&o, true); err == nil || !strings.Contains(err.Error(), "--lan or --issuer") {
		t.Errorf("--lan with --issuer: %v", err)
	}
	var stderr bytes.Buffer
	if code := run([]string{"dev", "--issuer", "http://203.0.113.5:8080", "--listen", "127.0.0.1:1"}, &bytes.Buffer{}, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "private-network IP address") {
		t.Errorf("a public http issuer: exit %d, %s", code, stderr.String())
	}
}
