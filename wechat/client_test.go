package wechat_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wechat-oidc/wechat-oidc/wechat"
	"github.com/wechat-oidc/wechat-oidc/wechat/simulator"
)

const (
	oaSecret  = "oa-SECRET-d41d8cd98f00b204"
	webSecret = "web-SECRET-e9800998ecf8427e"
	mpSecret  = "mp-SECRET-4a7d1ed414474e40"
)

var (
	oaApp    = wechat.App{ID: "wxoa000000000001", Secret: oaSecret}
	webApp   = wechat.App{ID: "wxweb00000000001", Secret: webSecret}
	mpApp    = wechat.App{ID: "wxmp000000000001", Secret: mpSecret}
	oaUnboun = wechat.App{ID: "wxoa000000000002", Secret: oaSecret + "2"}
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	sim    *simulator.Simulator
	srv    *httptest.Server
	client *wechat.Client
	clock  *clock
}

func newEnv(t *testing.T, mutate ...func(*simulator.Config)) *env {
	t.Helper()
	clk := &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	cfg := simulator.Config{
		Apps: []simulator.App{
			{ID: oaApp.ID, Secret: oaApp.Secret, Kind: simulator.OfficialAccount, Bound: true, Name: "测试服务号"},
			{ID: oaUnboun.ID, Secret: oaUnboun.Secret, Kind: simulator.OfficialAccount},
			{ID: webApp.ID, Secret: webApp.Secret, Kind: simulator.WebsiteApp, Bound: true},
			{ID: mpApp.ID, Secret: mpApp.Secret, Kind: simulator.MiniProgram, Bound: true},
		},
		Users:     append(simulator.DefaultUsers(), simulator.User{Key: "mallory", Nickname: "M", Blocked: true}),
		AllowPort: true,
		Now:       clk.Now,
	}
	for _, m := range mutate {
		m(&cfg)
	}
	sim := simulator.New(cfg)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	return &env{sim: sim, srv: srv, client: wechat.NewClient(srv.URL, 2*time.Second, nil), clock: clk}
}

// uaWeChat is WeChat's in-app browser on an iPhone.
const uaWeChat = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.49(0x18003137) NetType/WIFI Language/zh_CN"

// code runs the authorize step as userKey and returns the code.
func (e *env) code(t *testing.T, app wechat.App, scope, userKey string) string {
	t.Helper()
	e.sim.AutoApprove(userKey)
	defer e.sim.AutoApprove("")
	p := wechat.AuthorizeParams{AppID: app.ID, RedirectURI: "https://rp.example/cb", Scope: scope, State: "xyz"}
	u := wechat.OAAuthorizeURL(e.srv.URL, p)
	if scope == wechat.ScopeLogin {
		u = wechat.QRConnectURL(e.srv.URL, p)
	}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The Official Account's page opens only in WeChat's in-app browser.
	req.Header.Set("User-Agent", uaWeChat)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("authorize: status %d, errcode %q, location %q", resp.StatusCode, resp.Header.Get("X-Sim-Errcode"), resp.Header.Get("Location"))
	}
	return loc.Query().Get("code")
}

func TestOfficialAccountUserInfoFlow(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tok, err := e.client.ExchangeCode(ctx, oaApp, e.code(t, oaApp, wechat.ScopeUserInfo, "alice"))
	if err != nil {
		t.Fatal(err)
	}
	if tok.OpenID != e.sim.OpenID(oaApp.ID, "alice") || tok.UnionID != e.sim.UnionID("alice") || tok.UnionID == "" {
		t.Errorf("token ids = %q/%q", tok.OpenID, tok.UnionID)
	}
	if tok.ExpiresIn != 7200 || tok.AccessToken == "" || tok.RefreshToken == "" || tok.Snapshot() {
		t.Errorf("token = %v", tok)
	}
	if !tok.HasScope(wechat.ScopeUserInfo) || tok.HasScope(wechat.ScopeBase) {
		t.Errorf("HasScope wrong for %q", tok.Scope)
	}
	if err := e.client.CheckAccessToken(ctx, tok.AccessToken, tok.OpenID); err != nil {
		t.Errorf("CheckAccessToken: %v", err)
	}
	ui, err := e.client.UserInfo(ctx, tok.AccessToken, tok.OpenID, "zh_CN")
	if err != nil {
		t.Fatal(err)
	}
	if ui.Nickname != "Alice 爱丽丝" || ui.Sex != 0 || ui.Country != "" || ui.UnionID != tok.UnionID || ui.OpenID != tok.OpenID ||
		!strings.HasPrefix(ui.HeadImgURL, e.srv.URL+"/") || !strings.HasSuffix(ui.HeadImgURL, "/132") || ui.Privilege == nil {
		t.Errorf("userinfo = %+v", ui)
	}
	rt, err := e.client.RefreshAccessToken(ctx, oaApp.ID, tok.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if rt.OpenID != tok.OpenID || rt.RefreshToken != tok.RefreshToken || rt.UnionID != "" {
		t.Errorf("refresh = %v", rt)
	}
}

func TestWebsiteAndMiniProgram(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tok, err := e.client.ExchangeCode(ctx, webApp, e.code(t, webApp, wechat.ScopeLogin, "bob"))
	if err != nil {
		t.Fatal(err)
	}
	if !tok.HasScope(wechat.ScopeLogin) || tok.UnionID != e.sim.UnionID("bob") || tok.OpenID == e.sim.OpenID(oaApp.ID, "bob") {
		t.Errorf("website token = %v", tok)
	}
	sess, err := e.client.Code2Session(ctx, mpApp, e.sim.IssueJSCode(mpApp.ID, "bob"))
	if err != nil {
		t.Fatal(err)
	}
	if sess.OpenID != e.sim.OpenID(mpApp.ID, "bob") || sess.UnionID != tok.UnionID || sess.SessionKey == "" {
		t.Errorf("session = %v", sess)
	}
}

func TestSnapshotUser(t *testing.T) {
	e := newEnv(t)
	tok, err := e.client.ExchangeCode(context.Background(), oaApp, e.code(t, oaApp, wechat.ScopeUserInfo, "snapshot"))
	if err != nil {
		t.Fatal(err)
	}
	if !tok.Snapshot() || tok.OpenID == e.sim.OpenID(oaApp.ID, "alice") {
		t.Errorf("snapshot token = %v", tok)
	}
}

// Each errcode path of the simulator arrives as a *wechat.Error with the
// right constant and sentinel.
func TestErrcodePaths(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		call     func(t *testing.T, e *env) error
		code     int
		kind     error
		endpoint string
	}{
		{"wrong secret", func(t *testing.T, e *env) error {
			_, err := e.client.ExchangeCode(ctx, wechat.App{ID: oaApp.ID, Secret: "nope-nope"}, e.code(t, oaApp, wechat.ScopeBase, "alice"))
			return err
		}, wechat.CodeInvalidAppSecret, wechat.ErrBadCredentials, "/sns/oauth2/access_token"},
		{"unknown appid", func(t *testing.T, e *env) error {
			_, err := e.client.ExchangeCode(ctx, wechat.App{ID: "wxnobody", Secret: oaSecret}, "somecode")
			return err
		}, wechat.CodeInvalidAppID, wechat.ErrBadCredentials, "/sns/oauth2/access_token"},
		{"missing secret", func(t *testing.T, e *env) error {
			_, err := e.client.ExchangeCode(ctx, wechat.App{ID: oaApp.ID}, "somecode")
			return err
		}, wechat.CodeMissingSecret, wechat.ErrBadRequest, "/sns/oauth2/access_token"},
		{"invalid code", func(t *testing.T, e *env) error {
			_, err := e.client.ExchangeCode(ctx, oaApp, "0000000000000000")
			return err
		}, wechat.CodeInvalidCode, wechat.ErrInvalidCode, "/sns/oauth2/access_token"},
		{"expired code", func(t *testing.T, e *env) error {
			c := e.code(t, oaApp, wechat.ScopeBase, "alice")
			e.clock.Add(5*time.Minute + time.Second)
			_, err := e.client.ExchangeCode(ctx, oaApp, c)
			return err
		}, wechat.CodeInvalidCode, wechat.ErrInvalidCode, "/sns/oauth2/access_token"},
		{"code of another app", func(t *testing.T, e *env) error {
			_, err := e.client.ExchangeCode(ctx, oaUnboun, e.code(t, oaApp, wechat.ScopeBase, "alice"))
			return err
		}, wechat.CodeInvalidCode, wechat.ErrInvalidCode, "/sns/oauth2/access_token"},
		{"code used", func(t *testing.T, e *env) error {
			c := e.code(t, oaApp, wechat.ScopeBase, "alice")
			if _, err := e.client.ExchangeCode(ctx, oaApp, c); err != nil {
				t.Fatal(err)
			}
			_, err := e.client.ExchangeCode(ctx, oaApp, c)
			return err
		}, wechat.CodeCodeUsed, wechat.ErrCodeUsed, "/sns/oauth2/access_token"},
		{"userinfo with base token", func(t *testing.T, e *env) error {
			tok, err := e.client.ExchangeCode(ctx, oaApp, e.code(t, oaApp, wechat.ScopeBase, "alice"))
			if err != nil {
				t.Fatal(err)
			}
			_, err = e.client.UserInfo(ctx, tok.AccessToken, tok.OpenID, "")
			return err
		}, wechat.CodeAPIUnauthorized, wechat.ErrScopeUnauthorized, "/sns/userinfo"},
		{"userinfo invalid token", func(t *testing.T, e *env) error {
			_, err := e.client.UserInfo(ctx, "not-a-token", "oXXXX", "")
			return err
		}, wechat.CodeInvalidAccessToken, wechat.ErrInvalidToken, "/sns/userinfo"},
		{"auth wrong openid", func(t *testing.T, e *env) error {
			tok, err := e.client.ExchangeCode(ctx, oaApp, e.code(t, oaApp, wechat.ScopeBase, "alice"))
			if err != nil {
				t.Fatal(err)
			}
			return e.client.CheckAccessToken(ctx, tok.AccessToken, e.sim.OpenID(oaApp.ID, "bob"))
		}, wechat.CodeInvalidOpenID, wechat.ErrInvalidToken, "/sns/auth"},
		{"auth expired token", func(t *testing.T, e *env) error {
			tok, err := e.client.ExchangeCode(ctx, oaApp, e.code(t, oaApp, wechat.ScopeBase, "alice"))
			if err != nil {
				t.Fatal(err)
			}
			e.clock.Add(2*time.Hour + time.Second)
			return e.client.CheckAccessToken(ctx, tok.AccessToken, tok.OpenID)
		}, wechat.CodeAccessTokenExpired, wechat.ErrInvalidToken, "/sns/auth"},
		{"refresh invalid", func(t *testing.T, e *env) error {
			_, err := e.client.RefreshAccessToken(ctx, oaApp.ID, "nope-refresh")
			return err
		}, wechat.CodeInvalidRefreshToken, wechat.ErrInvalidToken, "/sns/oauth2/refresh_token"},
		{"refresh expired", func(t *testing.T, e *env) error {
			tok, err := e.client.ExchangeCode(ctx, oaApp, e.code(t, oaApp, wechat.ScopeBase, "alice"))
			if err != nil {
				t.Fatal(err)
			}
			e.clock.Add(31 * 24 * time.Hour)
			_, err = e.client.RefreshAccessToken(ctx, oaApp.ID, tok.RefreshToken)
			return err
		}, wechat.CodeRefreshTokenExpired, wechat.ErrInvalidToken, "/sns/oauth2/refresh_token"},
		{"jscode blocked user", func(t *testing.T, e *env) error {
			_, err := e.client.Code2Session(ctx, mpApp, e.sim.IssueJSCode(mpApp.ID, "mallory"))
			return err
		}, wechat.CodeCodeBlocked, wechat.ErrCodeBlocked, "/sns/jscode2session"},
		{"jscode used", func(t *testing.T, e *env) error {
			c := e.sim.IssueJSCode(mpApp.ID, "alice")
			if _, err := e.client.Code2Session(ctx, mpApp, c); err != nil {
				t.Fatal(err)
			}
			_, err := e.client.Code2Session(ctx, mpApp, c)
			return err
		}, wechat.CodeCodeUsed, wechat.ErrCodeUsed, "/sns/jscode2session"},
	}
	faults := []struct {
		code int
		kind error
	}{
		{wechat.CodeSystemBusy, wechat.ErrBusy},
		{wechat.CodeMinuteQuota, wechat.ErrRateLimited},
		{wechat.CodeDailyQuota, wechat.ErrRateLimited},
		{wechat.CodeUserLimited, wechat.ErrUserLimited},
		{wechat.CodeUserUnauthorized, wechat.ErrScopeUnauthorized},
		{wechat.CodeIPNotWhitelisted, wechat.ErrBadCredentials},
		{wechat.CodeAppSecretFrozen, wechat.ErrBadCredentials},
		{wechat.CodeInvalidCredential, wechat.ErrBadCredentials},
		{wechat.CodeCodeExpired, wechat.ErrInvalidCode},
		{wechat.CodeTokenRevoked, wechat.ErrInvalidToken},
		{wechat.CodeRequireHTTPS, wechat.ErrBadRequest},
		{wechat.CodeCodeBlocked, wechat.ErrCodeBlocked},
		{12345, nil},
	}
	for _, f := range faults {
		tests = append(tests, struct {
			name     string
			call     func(t *testing.T, e *env) error
			code     int
			kind     error
			endpoint string
		}{fmt.Sprintf("fault %d", f.code), func(t *testing.T, e *env) error {
			e.sim.InjectFault("/sns/oauth2/access_token", simulator.Fault{Errcode: f.code})
			_, err := e.client.ExchangeCode(ctx, oaApp, "anycode-1234")
			return err
		}, f.code, f.kind, "/sns/oauth2/access_token"})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			err := tt.call(t, e)
			var we *wechat.Error
			if !errors.As(err, &we) {
				t.Fatalf("err = %v (%T), want *wechat.Error", err, err)
			}
			if we.Code != tt.code || we.Endpoint != tt.endpoint {
				t.Errorf("got %s %d, want %s %d", we.Endpoint, we.Code, tt.endpoint, tt.code)
			}
			if we.Kind() != tt.kind {
				t.Errorf("kind = %v, want %v", we.Kind(), tt.kind)
			}
			if tt.kind != nil && !errors.Is(err, tt.kind) {
				t.Errorf("errors.Is(%v) false", tt.kind)
			}
			if errors.Is(err, wechat.ErrUnavailable) {
				t.Error("an errcode must not be ErrUnavailable")
			}
			if !strings.HasPrefix(err.Error(), "wechat: "+tt.endpoint+": errcode ") {
				t.Errorf("message = %q", err.Error())
			}
		})
	}
}

// No retries: a failing exchange is one request.
func TestNoRetry(t *testing.T) {
	e := newEnv(t)
	c := e.code(t, oaApp, wechat.ScopeBase, "alice")
	e.sim.InjectFault("/sns/oauth2/access_token", simulator.Fault{HTTPStatus: 502, Times: 5})
	e.sim.ResetCalls()
	if _, err := e.client.ExchangeCode(context.Background(), oaApp, c); !errors.Is(err, wechat.ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
	if n := e.sim.CallCount("/sns/oauth2/access_token"); n != 1 {
		t.Errorf("%d calls, want 1", n)
	}
}

func TestContentTypes(t *testing.T) {
	for _, ct := range []string{"", "application/json; charset=utf-8", "text/html"} {
		t.Run(ct, func(t *testing.T) {
			e := newEnv(t, func(c *simulator.Config) { c.ContentType = ct })
			tok, err := e.client.ExchangeCode(context.Background(), oaApp, e.code(t, oaApp, wechat.ScopeUserInfo, "bob"))
			if err != nil {
				t.Fatal(err)
			}
			if tok.UnionID != e.sim.UnionID("bob") {
				t.Errorf("unionid %q", tok.UnionID)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	e := newEnv(t)
	client := wechat.NewClient(e.srv.URL, 100*time.Millisecond, nil)
	e.sim.InjectFault("/sns/userinfo", simulator.Fault{Delay: 5 * time.Second})
	start := time.Now()
	_, err := client.UserInfo(context.Background(), "tok", "oid", "") // ctx without deadline
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("took %v, want about 100ms", elapsed)
	}
	var ue *wechat.UnavailableError
	if !errors.As(err, &ue) || !ue.Timeout() || !errors.Is(err, wechat.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if ue.Endpoint != "/sns/userinfo" {
		t.Errorf("endpoint %q", ue.Endpoint)
	}

	// The caller's cancellation is reported as such.
	e.sim.InjectFault("/sns/userinfo", simulator.Fault{Delay: 5 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err = e.client.UserInfo(ctx, "tok", "oid", "")
	if !errors.Is(err, context.Canceled) || !errors.Is(err, wechat.ErrUnavailable) {
		t.Errorf("err = %v", err)
	}
}

func TestNewClientDefaults(t *testing.T) {
	c := wechat.NewClient("", 0, nil)
	if c.APIBaseURL() != wechat.DefaultAPIBaseURL || c.Timeout() != 5*time.Second {
		t.Errorf("defaults: %s %v", c.APIBaseURL(), c.Timeout())
	}
	if c := wechat.NewClient("http://x/", 0, nil); c.APIBaseURL() != "http://x" {
		t.Errorf("trailing slash kept: %s", c.APIBaseURL())
	}
}

// errRoundTripper fails with an error that quotes the request URL, like a
// careless custom transport would.
type errRoundTripper struct{}

func (errRoundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	return nil, fmt.Errorf("proxy refused %s (%s)", r.URL.String(), r.URL.RawQuery)
}

// paramValue finds a sensitive parameter whose value was not redacted.
var paramValue = regexp.MustCompile(`(secret|code|access_token|refresh_token)=[^\[]`)

// No error from the client contains the secret, the code, the tokens or
// the session_key, whatever fails.
func TestErrorsNeverLeakSecrets(t *testing.T) {
	const code = "CODE-0123456789abcdef"
	const token = "ACCESS-TOKEN-0123456789"
	const refresh = "REFRESH-TOKEN-0123456789"
	const secret = "s3cr3t/with+special&chars=yes"
	app := wechat.App{ID: "wxleak", Secret: secret}

	handler := func(h http.HandlerFunc) string {
		srv := httptest.NewServer(h)
		t.Cleanup(srv.Close)
		return srv.URL
	}
	refused := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		return "http://" + addr
	}()
	slow := handler(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(3 * time.Second):
		}
	})
	cases := []struct {
		name string
		base string
		hc   *http.Client
		kind error
	}{
		{"timeout", slow, nil, wechat.ErrUnavailable},
		{"connection refused", refused, nil, wechat.ErrUnavailable},
		{"HTTP 500", handler(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "boom "+r.URL.String(), 500)
		}), nil, wechat.ErrUnavailable},
		{"not JSON", handler(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, "<html>"+r.URL.RawQuery+"</html>")
		}), nil, wechat.ErrUnavailable},
		{"truncated JSON", handler(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `{"access_token":"%s","refresh_token":"%s","openid":"o`, token, refresh)
		}), nil, wechat.ErrUnavailable},
		{"body cut by connection", handler(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "1000")
			fmt.Fprintf(w, `{"access_token":"%s"`, token)
		}), nil, wechat.ErrUnavailable},
		{"oversized body", handler(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `{"access_token":"%s","x":"%s"}`, token, strings.Repeat("a", 2<<20))
		}), nil, wechat.ErrUnavailable},
		{"wrong JSON type", handler(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `{"errcode":"%s","access_token":"%s"}`, secret, token)
		}), nil, wechat.ErrUnavailable},
		{"redirect", handler(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://elsewhere.invalid/?"+r.URL.RawQuery, http.StatusFound)
		}), &http.Client{}, wechat.ErrUnavailable},
		{"transport quoting the URL", "http://wechat.invalid", &http.Client{Transport: errRoundTripper{}}, wechat.ErrUnavailable},
		{"errmsg echoing the request", handler(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, `{"errcode":40125,"errmsg":"invalid appsecret %s, rid: 1"}`, r.URL.RawQuery)
		}), nil, wechat.ErrBadCredentials},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := wechat.NewClient(tc.base, 300*time.Millisecond, tc.hc)
			ctx := context.Background()
			_, err1 := c.ExchangeCode(ctx, app, code)
			_, err2 := c.RefreshAccessToken(ctx, app.ID, refresh)
			err3 := c.CheckAccessToken(ctx, token, "oid")
			_, err4 := c.UserInfo(ctx, token, "oid", "en")
			_, err5 := c.Code2Session(ctx, app, code)
			for i, err := range []error{err1, err2, err3, err4, err5} {
				if !errors.Is(err, tc.kind) {
					t.Fatalf("call %d: err = %v, want %v", i+1, err, tc.kind)
				}
				msg := fmt.Sprintf("%v | %+v | %#v", err, err, err)
				for _, s := range []string{secret, url.QueryEscape(secret), code, token, refresh} {
					if strings.Contains(msg, s) {
						t.Errorf("call %d: error leaks %q: %s", i+1, s, msg)
					}
				}
				if m := paramValue.FindString(msg); m != "" {
					t.Errorf("call %d: error leaks %q: %s", i+1, m, msg)
				}
			}
		})
	}
}

func TestStringersHideSecrets(t *testing.T) {
	app := wechat.App{ID: "wxid", Secret: "the-app-secret"}
	tok := wechat.AccessToken{AccessToken: "the-access-token", RefreshToken: "the-refresh-token", OpenID: "oOPENID", Scope: "snsapi_base"}
	sess := wechat.Session{OpenID: "oMP", SessionKey: "the-session-key", UnionID: "oUNION"}
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("x", "app", app, "tok", tok, "tokp", &tok, "sess", sess, "sessp", &sess)
	out := buf.String() + fmt.Sprintf("%v %+v %#v %s %v %+v %#v %v %+v %#v %v",
		app, app, app, app, tok, &tok, tok, sess, &sess, sess, struct{ A wechat.App }{app})
	for _, s := range []string{"the-app-secret", "the-access-token", "the-refresh-token", "the-session-key"} {
		if strings.Contains(out, s) {
			t.Errorf("leaked %q in %s", s, out)
		}
	}
	for _, s := range []string{"wxid", "oOPENID", "oMP", "oUNION", "[REDACTED]"} {
		if !strings.Contains(out, s) {
			t.Errorf("missing %q in %s", s, out)
		}
	}
}

// TestObserverSeesEveryCall: the observer (metrics) is told the endpoint,
// the result (0, WeChat's errcode, or unavailable) and the duration of each
// call, and never anything of the query (secrets, codes).
func TestObserverSeesEveryCall(t *testing.T) {
	e := newEnv(t)
	type call struct{ endpoint, errcode string }
	var mu sync.Mutex
	var calls []call
	e.client.SetObserver(func(endpoint, errcode string, took time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		if took <= 0 {
			t.Errorf("duration %v", took)
		}
		calls = append(calls, call{endpoint, errcode})
	})
	ctx := context.Background()
	if _, err := e.client.ExchangeCode(ctx, oaApp, e.code(t, oaApp, wechat.ScopeBase, "alice")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.ExchangeCode(ctx, oaApp, "not-a-code"); err == nil {
		t.Fatal("a bogus code was exchanged")
	}
	e.sim.InjectFault("/sns/oauth2/access_token", simulator.Fault{HTTPStatus: 502, Times: 1})
	if _, err := e.client.ExchangeCode(ctx, oaApp, "x"); !errors.Is(err, wechat.ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []call{{"/sns/oauth2/access_token", "0"}, {"/sns/oauth2/access_token", "40029"}, {"/sns/oauth2/access_token", "unavailable"}}
	if fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Fatalf("observed %v, want %v", calls, want)
	}
}

// TestClientKeepsConnectionsForConcurrentCalls: concurrent sign-ins each
// call WeChat; a client made without an HTTP client keeps their
// connections for the next calls instead of opening (and, against the real
// api.weixin.qq.com, TLS-handshaking) new ones.
func TestClientKeepsConnectionsForConcurrentCalls(t *testing.T) {
	var opened atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(5 * time.Millisecond) // the calls overlap (not a wait for an expiry)
		w.Write([]byte(`{"errcode":0,"errmsg":"ok"}`))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			opened.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c := wechat.NewClient(srv.URL, 0, nil)
	const concurrent = 16
	round := func() {
		var wg sync.WaitGroup
		for range concurrent {
			wg.Go(func() {
				if err := c.CheckAccessToken(context.Background(), "token", "openid"); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	}
	round()
	first := opened.Load()
	for range 5 {
		round()
	}
	if again := opened.Load() - first; again > concurrent/4 {
		t.Fatalf("%d connections for the first round of %d concurrent calls, then %d more for 5 rounds: connections are not kept", first, concurrent, again)
	}
}
