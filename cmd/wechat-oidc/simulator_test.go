package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestSimulatorUsage(t *testing.T) {
	t.Setenv("SIM_TEST_SECRET", "sim-secret-0123456789")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no app", nil, 2, "usage: wechat-oidc simulator --app"},
		{"malformed app", []string{"--app", "official_account:wx0123456789abcdef"}, 2, "write KIND:APPID:SECRET_VAR"},
		{"unknown kind", []string{"--app", "service_account:wx0123456789abcdef:SIM_TEST_SECRET"}, 2, `the kind "service_account" is not official_account`},
		{"secret variable not set", []string{"--app", "official_account:wx0123456789abcdef:SIM_UNSET_SECRET"}, 1, "environment variable SIM_UNSET_SECRET is not set"},
		{"extra argument", []string{"--app", "official_account:wx0123456789abcdef:SIM_TEST_SECRET", "more"}, 2, "usage:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := runSimulator(context.Background(), tc.args, &out, &errb); code != tc.code || !strings.Contains(errb.String(), tc.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errb.String(), tc.code, tc.want)
			}
		})
	}
}

// TestSimulatorServesConfiguredApps: the flags reach the simulator — the
// app's secret comes from the named variable (a wrong one gets WeChat's
// 40125) and redirect_uri is held to --callback-host (another host gets
// the 10003 page).
func TestSimulatorServesConfiguredApps(t *testing.T) {
	const appID, secret = "wx0123456789abcdef", "sim-secret-0123456789"
	t.Setenv("SIM_TEST_SECRET", secret)
	addr := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuf
	done := make(chan int, 1)
	go func() {
		done <- runSimulator(ctx, []string{"--listen", addr, "--app", "official_account:" + appID + ":SIM_TEST_SECRET", "--callback-host", "sso.example.com"}, &out, &errb)
	}()
	base := "http://" + addr
	waitFor(t, base+"/sns/auth", &errb)

	errcode := func(secretTried string) float64 {
		t.Helper()
		resp, err := http.Get(base + "/sns/oauth2/access_token?" + url.Values{"appid": {appID}, "secret": {secretTried}, "code": {"not-a-code"}, "grant_type": {"authorization_code"}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		code, _ := body["errcode"].(float64)
		return code
	}
	if c := errcode("wrong-secret"); c != 40125 {
		t.Errorf("a wrong secret: errcode %v, want 40125 (invalid appsecret)", c)
	}
	if c := errcode(secret); c == 40125 || c == 40013 || c == 0 {
		t.Errorf("the right secret and a made-up code: errcode %v, want the code refused, not the app or the secret", c)
	}
	authorize := func(redirectURI string) string {
		t.Helper()
		// WeChat's parameter order is checked: build the query by hand.
		resp, err := http.Get(base + "/connect/oauth2/authorize?appid=" + appID + "&redirect_uri=" + url.QueryEscape(redirectURI) +
			"&response_type=code&scope=snsapi_base&state=s1")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header.Get("X-Sim-Errcode")
	}
	if c := authorize("https://evil.example.com/wechat/callback"); c != "10003" {
		t.Errorf("redirect_uri on another host: errcode %q, want 10003", c)
	}
	if c := authorize("https://sso.example.com/wechat/callback"); c != "" {
		t.Errorf("redirect_uri on the callback host: errcode %q, want none", c)
	}
	if !strings.Contains(out.String(), "official_account "+appID+" (simulated)") || strings.Contains(out.String()+errb.String(), secret) {
		t.Errorf("startup line %q (it names the app, never the secret)", out.String())
	}
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the simulator did not stop")
	}
}

// waitFor polls u until it answers (any status), for at most 10 s.
func waitFor(t *testing.T, u string, logs *syncBuf) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(u)
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer: %v\n%s", u, err, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
