package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
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
	base, out, errb, stop := startSimulator(t, "--app", "official_account:"+appID+":SIM_TEST_SECRET", "--callback-host", "sso.example.com")

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
	authorize := func(redirectURI, userAgent string) (errcode, body string) {
		t.Helper()
		// WeChat's parameter order is checked: build the query by hand.
		req, err := http.NewRequest(http.MethodGet, base+"/connect/oauth2/authorize?appid="+appID+"&redirect_uri="+url.QueryEscape(redirectURI)+
			"&response_type=code&scope=snsapi_base&state=s1", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("User-Agent", userAgent)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.Header.Get("X-Sim-Errcode"), string(b)
	}
	const inWeChat = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN"
	if c, _ := authorize("https://evil.example.com/wechat/callback", inWeChat); c != "10003" {
		t.Errorf("redirect_uri on another host: errcode %q, want 10003", c)
	}
	if c, _ := authorize("https://sso.example.com/wechat/callback", inWeChat); c != "" {
		t.Errorf("redirect_uri on the callback host: errcode %q, want none", c)
	}
	// Outside WeChat's browser: the "open in WeChat" page, without the dev
	// button unless --dev-browser-switch.
	if c, page := authorize("https://sso.example.com/wechat/callback", desktop); !strings.Contains(page, `data-sim-page="open-in-wechat"`) || strings.Contains(page, `class="dev"`) {
		t.Errorf("a desktop browser on the Official Account page: errcode %q, want WeChat's open-in-WeChat page without the dev switch:\n%s", c, page)
	}
	if !strings.Contains(out.String(), "official_account "+appID+" (simulated)") || strings.Contains(out.String()+errb.String(), secret) {
		t.Errorf("startup line %q (it names the app, never the secret)", out.String())
	}
	stop()
}

const desktop = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36"

// TestSimulatorDevBrowserSwitch: with --dev-browser-switch the "open in
// WeChat" page offers a desktop the way to play the phone.
func TestSimulatorDevBrowserSwitch(t *testing.T) {
	const appID = "wx0123456789abcdef"
	t.Setenv("SIM_TEST_SECRET", "sim-secret-0123456789")
	base, _, _, stop := startSimulator(t, "--app", "official_account:"+appID+":SIM_TEST_SECRET", "--dev-browser-switch")
	defer stop()
	req, err := http.NewRequest(http.MethodGet, base+"/connect/oauth2/authorize?appid="+appID+"&redirect_uri="+url.QueryEscape("https://sso.example.com/cb")+
		"&response_type=code&scope=snsapi_base&state=s1", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("User-Agent", desktop)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(page), `data-sim-page="open-in-wechat"`) || !strings.Contains(string(page), `class="dev"`) {
		t.Fatalf("want the open-in-WeChat page with the dev switch, got:\n%s", page)
	}
}

// startSimulator runs `wechat-oidc simulator` with args on a free port and
// waits until it answers; stop ends it and checks it exited 0.
func startSimulator(t *testing.T, args ...string) (base string, out, errb *syncBuf, stop func()) {
	t.Helper()
	addr := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	out, errb = &syncBuf{}, &syncBuf{}
	done := make(chan int, 1)
	go func() { done <- runSimulator(ctx, append([]string{"--listen", addr}, args...), out, errb) }()
	base = "http://" + addr
	waitFor(t, base+"/sns/auth", errb)
	return base, out, errb, func() {
		t.Helper()
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
