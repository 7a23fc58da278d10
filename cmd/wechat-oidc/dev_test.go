package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wechat-oidc/wechat-oidc/dev"
)

func TestDemoSecretFileIsWrittenOnceAndReused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secret")
	first, err := demoSecret(path)
	if err != nil || len(first) < 32 {
		t.Fatalf("first: %q %v", first, err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret file mode: %v %v", fi.Mode(), err)
	}
	second, err := demoSecret(path)
	if err != nil || second != first {
		t.Fatalf("second read %q %v, want the first secret", second, err)
	}
	os.WriteFile(path, []byte("short\n"), 0o600)
	if _, err := demoSecret(path); err == nil || !strings.Contains(err.Error(), "delete it") {
		t.Fatalf("a short secret was accepted: %v", err)
	}
}

func TestDevRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--pprof", "0.0.0.0:6060"},
		{"--pprof", "192.0.2.1:6060"},
		{"--store", "memcached://127.0.0.1:1"},
		{"--store", "redis://:secret-password@127.0.0.1:1"},
		{"--alg", "HS256"},
	} {
		var out, errb bytes.Buffer
		code := devCommand(context.Background(), append([]string{"--listen", freePort(t)}, args...), &out, &errb)
		if code != 1 || errb.Len() == 0 {
			t.Errorf("dev %v: exit %d, %q", args, code, errb.String())
		}
		if strings.Contains(errb.String(), "secret-password") {
			t.Errorf("dev %v: the message shows the password: %q", args, errb.String())
		}
	}
}

func TestBenchRefusesWithoutProvider(t *testing.T) {
	var out, errb bytes.Buffer
	code := benchCommand(context.Background(), []string{"--issuer", "http://" + freePort(t), "--client-secret", "x", "--sign-for", "0"}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "dev --bench") {
		t.Fatalf("exit %d, %q", code, errb.String())
	}
}

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
