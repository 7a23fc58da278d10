package dev

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDevModeDemoLogin walks what a newcomer does in `wechat-oidc dev`:
// open /, click "Log in with WeChat", pick a user on the simulated WeChat
// page, and see the verified claims and userinfo.
func TestDevModeDemoLogin(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(ln.Addr().String(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: d}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	jar, _ := cookiejar.New(nil)
	b := &http.Client{Jar: jar, Timeout: 10 * time.Second, Transport: uaTransport{uaWeChat}}
	get := func(u string) string {
		resp, err := b.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	home := get(d.BaseURL + "/")
	if !strings.Contains(home, "Log in with WeChat") {
		t.Fatalf("home page:\n%s", home)
	}
	pick := func(user, login string) string {
		page := get(d.BaseURL + login)
		if !strings.Contains(page, "<title>微信授权</title>") {
			t.Fatalf("not the simulated WeChat page:\n%s", page)
		}
		m := regexp.MustCompile(`<form method="post" action="([^"]+)">`).FindStringSubmatch(page)
		tok := regexp.MustCompile(`name="t" value="([^"]+)"`).FindStringSubmatch(page)
		if m == nil || tok == nil {
			t.Fatalf("no pick form:\n%s", page)
		}
		action := d.SimulatorURL + "/_sim/authorize"
		resp, err := b.PostForm(action, url.Values{"t": {tok[1]}, "user": {user}, "action": {"allow"}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	result := pick("alice", "/demo/login")
	for _, want := range []string{"Signed in as <b>Alice 爱丽丝</b>", "ID token claims (verified by go-oidc)", "preferred_username", "userinfo"} {
		if !strings.Contains(result, want) {
			t.Fatalf("result page lacks %q:\n%s", want, result)
		}
	}
	// The SSO session now answers silently, without the WeChat page.
	again := get(d.BaseURL + "/demo/login")
	if !strings.Contains(again, "Signed in as <b>Alice 爱丽丝</b>") {
		t.Fatalf("second login was not answered from the SSO session:\n%s", again)
	}
	// Log out (RP-initiated, with id_token_hint): back to the home page, session gone.
	logout := regexp.MustCompile(`href="([^"]*/logout\?[^"]+)"`).FindStringSubmatch(again)
	if logout == nil {
		t.Fatalf("no logout link:\n%s", again)
	}
	if home := get(strings.ReplaceAll(logout[1], "&amp;", "&")); !strings.Contains(home, "Log in with WeChat") {
		t.Fatalf("logout did not return home:\n%s", home)
	}
	// After logout the session is gone: the WeChat page shows again.
	denied := pick("carol", "/demo/login")
	if !strings.Contains(denied, "access_denied") || !strings.Contains(denied, "unionid") {
		t.Fatalf("carol (no unionid) should be refused with an explanation:\n%s", denied)
	}
}

func TestNewDevRejectsBadListen(t *testing.T) {
	for _, l := range []string{"nonsense", "127.0.0.1:0", "127.0.0.1"} {
		if _, err := New(l, slog.Default()); err == nil {
			t.Errorf("New(%q) accepted", l)
		}
	}
}
