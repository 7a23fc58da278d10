package bridge

import (
	"github.com/wechat-oidc/wechat-oidc/config"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/wechat-oidc/wechat-oidc/keys"
	"github.com/wechat-oidc/wechat-oidc/store"
)

// FuzzPageEndpoints throws arbitrary queries and form bodies at every
// endpoint a browser or a client reaches. Invariants: never a 5xx (a panic
// would be one: the recover middleware answers 500), never a redirect to a
// place that is not registered, and every page forbids framing.
func FuzzPageEndpoints(f *testing.F) {
	ks, err := keys.NewEphemeral()
	if err != nil {
		f.Fatal(err)
	}
	cfg := &config.File{
		Issuer: "http://127.0.0.1:1",
		WeChat: config.WeChatConfig{
			OfficialAccount: &config.WeChatAppConfig{AppID: "wx1", AppSecret: "oa-secret"},
			WebsiteApp:      &config.WeChatAppConfig{AppID: "wx2", AppSecret: "web-secret"},
			MiniProgram:     &config.WeChatAppConfig{AppID: "wx3", AppSecret: "mini-secret"},
			OpenBaseURL:     "http://127.0.0.1:1", APIBaseURL: "http://127.0.0.1:1",
		},
		Clients: []config.ClientConfig{{ID: "rp", Secret: "rp-secret-0123456789", RedirectURIs: []string{"https://rp.example/cb"},
			PostLogoutRedirectURIs: []string{"https://rp.example/bye"}, MiniProgram: true}},
		Keys:      config.KeysConfig{Dir: "unused"},
		Directory: config.DirectoryConfig{Type: "sqlite", Path: ":memory:"},
		Access:    config.AccessConfig{Mode: config.AccessOpen},
		Limits:    config.LimitsConfig{TokenPerClient: config.RateConfig{Rate: 1e9, Burst: 1e9}, AuthorizePerIP: config.RateConfig{Rate: 1e9, Burst: 1e9}},
	}
	opt, err := cfg.Resolve()
	if err != nil {
		f.Fatal(err)
	}
	st := store.NewMemory()
	dir := testDirectory(f, opt)
	srv, err := New(opt, Deps{Store: st, Directory: dir, Keys: ks, Connector: newWeChatConnector(f, opt, dir, slog.New(slog.NewTextHandler(io.Discard, nil)), nil), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	paths := []string{"/authorize", "/wechat/callback", "/qr", "/qr/scan", "/qr/confirm", "/logout", "/token", "/userinfo", "/revoke", "/introspect"}
	for i, q := range []string{
		"client_id=rp&redirect_uri=https%3A%2F%2Frp.example%2Fcb&response_type=code&scope=openid&state=s",
		"client_id=rp&redirect_uri=https%3A%2F%2Frp.example%2Fcb&response_type=code&scope=openid&prompt=none&max_age=0",
		"client_id=rp&redirect_uri=https%3A%2F%2Frp.example%2Fcb&response_type=code&scope=openid&wechat_flow=cross_device",
		"code=abc&state=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"d=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "t=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA&dev_phone=1",
		"post_logout_redirect_uri=https%3A%2F%2Fevil.example&client_id=rp", "id_token_hint=a.b.c",
		"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token=x&subject_token_type=urn%3Awechat-oidc%3Aparams%3Atoken-type%3Awx-js-code",
		"a=%ff", "x=1;y=2", "",
	} {
		f.Add(uint8(i), q, "Mozilla/5.0 MicroMessenger/8.0", false)
		f.Add(uint8(i), q, "Mozilla/5.0", true)
	}
	f.Fuzz(func(t *testing.T, which uint8, query, ua string, post bool) {
		path := paths[int(which)%len(paths)]
		var req *http.Request
		if post {
			req = httptest.NewRequest(http.MethodPost, path, strings.NewReader(query))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth("rp", "rp-secret-0123456789")
		} else {
			req = httptest.NewRequest(http.MethodGet, "/", nil)
			req.URL.Path, req.URL.RawQuery = path, query
		}
		req.Header.Set("User-Agent", ua)
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		if w.Code >= 500 && w.Code != http.StatusServiceUnavailable {
			t.Fatalf("%s %s?%q: status %d\n%s", req.Method, path, query, w.Code, w.Body.String())
		}
		if w.Header().Get("X-Frame-Options") != "DENY" {
			t.Fatalf("%s: framing allowed", path)
		}
		if loc := w.Header().Get("Location"); loc != "" {
			ok := strings.HasPrefix(loc, "https://rp.example/cb?") || strings.HasPrefix(loc, "https://rp.example/bye") ||
				strings.HasPrefix(loc, "http://127.0.0.1:1/")
			if !ok {
				t.Fatalf("%s?%q redirected to %q", path, query, loc)
			}
		}
	})
}
