package wechat_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/wechat-oidc/wechat-oidc/wechat"
	"github.com/wechat-oidc/wechat-oidc/wechat/simulator"
)

func TestOAAuthorizeURL(t *testing.T) {
	const cb = "https://login.example.com/callback?x=1&y=a b"
	const ecb = "https%3A%2F%2Flogin.example.com%2Fcallback%3Fx%3D1%26y%3Da+b"
	tests := []struct {
		name string
		base string
		p    wechat.AuthorizeParams
		want string
	}{
		{"userinfo", "", wechat.AuthorizeParams{AppID: "wx123", RedirectURI: cb, Scope: wechat.ScopeUserInfo, State: "abc123"},
			"https://open.weixin.qq.com/connect/oauth2/authorize?appid=wx123&redirect_uri=" + ecb + "&response_type=code&scope=snsapi_userinfo&state=abc123#wechat_redirect"},
		{"base, custom base with slash", "http://127.0.0.1:8080/wx/", wechat.AuthorizeParams{AppID: "wx1", RedirectURI: "https://a.b/c", Scope: wechat.ScopeBase, State: "S"},
			"http://127.0.0.1:8080/wx/connect/oauth2/authorize?appid=wx1&redirect_uri=https%3A%2F%2Fa.b%2Fc&response_type=code&scope=snsapi_base&state=S#wechat_redirect"},
		{"forcePopup", "", wechat.AuthorizeParams{AppID: "wx1", RedirectURI: "https://a.b/c", Scope: wechat.ScopeUserInfo, State: "S", ForcePopup: true},
			"https://open.weixin.qq.com/connect/oauth2/authorize?appid=wx1&redirect_uri=https%3A%2F%2Fa.b%2Fc&response_type=code&scope=snsapi_userinfo&state=S&forcePopup=true#wechat_redirect"},
		{"connect_redirect", "", wechat.AuthorizeParams{AppID: "wx1", RedirectURI: "https://a.b/c", Scope: wechat.ScopeBase, State: "S", ConnectRedirect: true},
			"https://open.weixin.qq.com/connect/oauth2/authorize?appid=wx1&redirect_uri=https%3A%2F%2Fa.b%2Fc&response_type=code&scope=snsapi_base&state=S&connect_redirect=1#wechat_redirect"},
		{"forcePopup before connect_redirect", "", wechat.AuthorizeParams{AppID: "wx1", RedirectURI: "https://a.b/c", Scope: wechat.ScopeUserInfo, State: "S", ForcePopup: true, ConnectRedirect: true, Lang: "en"},
			"https://open.weixin.qq.com/connect/oauth2/authorize?appid=wx1&redirect_uri=https%3A%2F%2Fa.b%2Fc&response_type=code&scope=snsapi_userinfo&state=S&forcePopup=true&connect_redirect=1#wechat_redirect"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := wechat.OAAuthorizeURL(tt.base, tt.p); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestQRConnectURL(t *testing.T) {
	tests := []struct {
		name string
		p    wechat.AuthorizeParams
		want string
	}{
		{"default scope", wechat.AuthorizeParams{AppID: "wxweb", RedirectURI: "https://a.b/cb", State: "S1"},
			"https://open.weixin.qq.com/connect/qrconnect?appid=wxweb&redirect_uri=https%3A%2F%2Fa.b%2Fcb&response_type=code&scope=snsapi_login&state=S1#wechat_redirect"},
		{"lang, OA-only flags ignored", wechat.AuthorizeParams{AppID: "wxweb", RedirectURI: "https://a.b/cb", Scope: wechat.ScopeLogin, State: "S1", Lang: "en", ForcePopup: true, ConnectRedirect: true},
			"https://open.weixin.qq.com/connect/qrconnect?appid=wxweb&redirect_uri=https%3A%2F%2Fa.b%2Fcb&response_type=code&scope=snsapi_login&state=S1&lang=en#wechat_redirect"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := wechat.QRConnectURL("", tt.p); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestValidState(t *testing.T) {
	tests := []struct {
		s    string
		want bool
	}{
		{"", false},
		{"a", true},
		{"AZaz09", true},
		{strings.Repeat("x", 128), true},
		{strings.Repeat("x", 129), false},
		{"a-b", false},
		{"a_b", false},
		{"a b", false},
		{"a=b", false},
		{"é", false},
		{"abc\x00", false},
	}
	for _, tt := range tests {
		if got := wechat.ValidState(tt.s); got != tt.want {
			t.Errorf("ValidState(%q) = %v, want %v", tt.s, got, tt.want)
		}
	}
}

var stateRE = regexp.MustCompile(`^[A-Za-z0-9]{1,128}$`)

func FuzzValidState(f *testing.F) {
	for _, s := range []string{"", "abc", "a-b", strings.Repeat("z", 129), "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := wechat.ValidState(s), stateRE.MatchString(s); got != want {
			t.Fatalf("ValidState(%q) = %v, regexp says %v", s, got, want)
		}
	})
}

// The URLs built here are accepted by the simulator's order regex, and the
// fragment is what a browser strips before sending.
func TestAuthorizeURLsAcceptedBySimulator(t *testing.T) {
	sim := simulator.New(simulator.Config{
		Apps: []simulator.App{
			{ID: "wxoa", Secret: "oa-secret-0000", Kind: simulator.OfficialAccount},
			{ID: "wxweb", Secret: "web-secret-0000", Kind: simulator.WebsiteApp},
		},
		AllowPort: true,
	})
	srv := httptest.NewServer(sim)
	defer srv.Close()
	sim.AutoApprove("alice")
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	for _, u := range []string{
		wechat.OAAuthorizeURL(srv.URL, wechat.AuthorizeParams{AppID: "wxoa", RedirectURI: "http://rp.example:9000/cb?a=1", Scope: wechat.ScopeUserInfo, State: "st8", ForcePopup: true, ConnectRedirect: true}),
		wechat.OAAuthorizeURL(srv.URL, wechat.AuthorizeParams{AppID: "wxoa", RedirectURI: "http://rp.example:9000/cb?a=1", Scope: wechat.ScopeBase, State: "st8"}),
		wechat.QRConnectURL(srv.URL, wechat.AuthorizeParams{AppID: "wxweb", RedirectURI: "http://rp.example:9000/cb?a=1", State: "st8", Lang: "en"}),
	} {
		req, err := http.NewRequest(http.MethodGet, u, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("User-Agent", uaWeChat) // the Official Account's page opens only in WeChat
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("%s: status %d (errcode %s), want 302", u, resp.StatusCode, resp.Header.Get("X-Sim-Errcode"))
		}
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if loc.Host != "rp.example:9000" || loc.Query().Get("a") != "1" || loc.Query().Get("state") != "st8" || len(loc.Query().Get("code")) == 0 {
			t.Errorf("%s: redirected to %s", u, loc)
		}
	}
	if calls := sim.Calls(); len(calls) != 3 || !calls[0].ForcePopup || calls[1].ForcePopup {
		t.Errorf("calls = %+v, want 3 with ForcePopup only on the first", calls)
	}
}
