package bridge

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/wechat-oidc/wechat-oidc/config"
	wechatconn "github.com/wechat-oidc/wechat-oidc/connector/wechat"
	"github.com/wechat-oidc/wechat-oidc/directory"
	"github.com/wechat-oidc/wechat-oidc/directory/directorytest"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/wechat-oidc/wechat-oidc/keys"
	"github.com/wechat-oidc/wechat-oidc/metrics"
	"github.com/wechat-oidc/wechat-oidc/store"
	"github.com/wechat-oidc/wechat-oidc/wechat/simulator"
)

const (
	testAppID      = "wxtest00000000001"
	testAppSecret  = "oa-app-secret-0123456789"
	testWebAppID   = "wxweb000000000001"
	testWebSecret  = "web-app-secret-0123456789"
	testMiniAppID  = "wxmini00000000001"
	testMiniSecret = "mini-app-secret-0123456789"
	rpHost         = "rp.test"
	rpRedirect     = "http://rp.test/callback"
	rpClientID     = "rp"
	rpSecret       = "rp-secret-0123456789abcdef"
	rp2ClientID    = "rp2"
	rp2Secret      = "rp2-secret-0123456789abcdef"
	rp2Redirect    = "http://rp.test/callback2"
)

// harness runs the real server over HTTP against the WeChat simulator.
type harness struct {
	t      testing.TB
	sim    *simulator.Simulator
	simURL string
	srv    *Server
	ts     *httptest.Server
	cfg    *config.File
	logs   *syncBuffer
	keyDir string
	dir    *directory.Directory
	// dirStatements counts what the server sends to the directory.
	dirStatements *directorytest.StatementCounter
	metrics       *metrics.Metrics
	store         *store.Memory

	clockMu sync.Mutex
	offset  time.Duration
}

// now is the server's clock: real time plus what the test advanced.
func (h *harness) now() time.Time {
	h.clockMu.Lock()
	defer h.clockMu.Unlock()
	return time.Now().Add(h.offset)
}

func (h *harness) advance(d time.Duration) {
	h.clockMu.Lock()
	defer h.clockMu.Unlock()
	h.offset += d
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type harnessOption func(*config.File)

func withSubject(sub string) harnessOption { return func(c *config.File) { c.Subject = sub } }
func withScope(scope string) harnessOption {
	return func(c *config.File) { c.WeChat.OfficialAccount.Scope = scope }
}
func withIssuerPath(p string) harnessOption { return func(c *config.File) { c.Issuer += p } }
func withKeyDir(d string) harnessOption     { return func(c *config.File) { c.Keys.Dir = d } }
func withClient(id string, f func(*config.ClientConfig)) harnessOption {
	return func(c *config.File) {
		for i := range c.Clients {
			if c.Clients[i].ID == id {
				f(&c.Clients[i])
			}
		}
	}
}
func withConfig(f func(*config.File)) harnessOption { return f }

// withWebsiteApp configures the simulator's website app (desktop qrconnect).
func withWebsiteApp() harnessOption {
	return func(c *config.File) {
		c.WeChat.WebsiteApp = &config.WeChatAppConfig{AppID: testWebAppID, AppSecret: testWebSecret}
	}
}

// withMiniProgram configures the simulator's mini program and lets clientID use it.
func withMiniProgram(clientID string) harnessOption {
	return func(c *config.File) {
		c.WeChat.MiniProgram = &config.WeChatAppConfig{AppID: testMiniAppID, AppSecret: testMiniSecret}
		for i := range c.Clients {
			if c.Clients[i].ID == clientID {
				c.Clients[i].MiniProgram = true
			}
		}
	}
}

// withIssuer puts the provider at issuer instead of its own test server's
// URL: for a front that passes requests to it (see issuerFront), so that an
// application configured once against the issuer outlives one harness.
func withIssuer(issuer string) harnessOption { return func(c *config.File) { c.Issuer = issuer } }

func newHarness(t testing.TB, opts ...harnessOption) *harness {
	t.Helper()
	return newHarnessWithUsers(t, nil, opts...)
}

// newHarnessWithUsers is newHarness whose simulated WeChat has these users
// (nil: the simulator's DefaultUsers).
func newHarnessWithUsers(t testing.TB, users []simulator.User, opts ...harnessOption) *harness {
	t.Helper()
	h := &harness{t: t, logs: &syncBuffer{}}
	h.sim = simulator.New(simulator.Config{
		Users: users,
		Apps: []simulator.App{
			{ID: testAppID, Secret: testAppSecret, Kind: simulator.OfficialAccount, Bound: true, Name: "Test OA"},
			{ID: testWebAppID, Secret: testWebSecret, Kind: simulator.WebsiteApp, Bound: true, Name: "Test Website"},
			{ID: testMiniAppID, Secret: testMiniSecret, Kind: simulator.MiniProgram, Bound: true, Name: "Test Mini Program"},
		},
		AllowPort: true, // httptest servers have ports; real WeChat would answer 10003
	})
	simSrv := httptest.NewServer(h.sim)
	t.Cleanup(simSrv.Close)
	h.simURL = simSrv.URL

	// The server is built after its URL (the issuer) is known. An atomic
	// handoff: requests from other processes (oauth2-proxy) give the race
	// detector no happens-before edge with this goroutine.
	var handler atomic.Pointer[Server]
	h.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.Load().ServeHTTP(w, r) }))
	t.Cleanup(h.ts.Close)

	h.cfg = &config.File{
		Issuer:  h.ts.URL,
		Subject: config.SubjectUnionID,
		WeChat: config.WeChatConfig{
			OfficialAccount: &config.WeChatAppConfig{AppID: testAppID, AppSecret: testAppSecret, Scope: config.ScopeUserInfo},
			OpenBaseURL:     simSrv.URL,
			APIBaseURL:      simSrv.URL,
			Timeout:         config.Duration(2 * time.Second),
			// Short, so that tests of exhausted retries stay quick.
			UserinfoRetryDeadline: config.Duration(time.Second),
		},
		Clients: []config.ClientConfig{
			{ID: rpClientID, Secret: rpSecret, RedirectURIs: []string{rpRedirect}},
			{ID: rp2ClientID, Secret: rp2Secret, RedirectURIs: []string{rp2Redirect}},
		},
		Keys: config.KeysConfig{Dir: t.TempDir()},
		// A private directory per harness; the tests of access control set
		// another mode (withAccess).
		Directory: config.DirectoryConfig{Type: "sqlite", Path: filepath.Join(t.TempDir(), "directory.db")},
		Access:    config.AccessConfig{Mode: config.AccessOpen},
		// Tests log in many times a second from one IP; TestRateLimits sets its own.
		Limits: config.LimitsConfig{TokenPerClient: config.RateConfig{Rate: 1000, Burst: 1000}, AuthorizePerIP: config.RateConfig{Rate: 1000, Burst: 1000},
			LogoutPerIP: config.RateConfig{Rate: 1000, Burst: 1000}},
	}
	for _, o := range opts {
		o(h.cfg)
	}
	opt, err := h.cfg.Resolve()
	if err != nil {
		t.Fatalf("harness config: %v", err)
	}
	h.keyDir = h.cfg.Keys.Dir
	ks, err2 := keys.LoadOrCreate(h.keyDir)
	err = err2
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// The store expires entries by the test clock too: no test sleeps for
	// an expiry. (A Redis store, withRedis, expires by Redis's clock.)
	mem := store.NewMemoryClock(h.now, store.WithMaxEntries(opt.Store.MemoryMaxEntries))
	var st store.Store = mem
	h.store = mem // nil below with withRedis
	if h.cfg.Store.Type == "redis" {
		h.store = nil
		st = openTestRedis(t, opt.Store.Redis.URL, opt.Store.Redis.Prefix)
	}
	h.metrics = metrics.New()
	st = h.metrics.Store(st)
	h.dirStatements = &directorytest.StatementCounter{}
	h.dir, err = directory.Open(context.Background(), directory.Options{Type: opt.Directory.Type, Path: opt.Directory.Path, URL: opt.Directory.URL, Now: h.now,
		WrapConnector: h.dirStatements.Wrap})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.dir.Close() })
	conn := newWeChatConnectorObserved(t, opt, h.dir, logger, h.now, h.metrics.WeChatCall)
	h.srv, err = New(opt, Deps{Store: st, Directory: h.dir, Keys: ks, Connector: conn, Logger: logger, Now: h.now, Metrics: h.metrics})
	if err != nil {
		t.Fatal(err)
	}
	handler.Store(h.srv)
	t.Cleanup(func() {
		// No secret, token or code may ever reach the log.
		logs := h.logs.String()
		for _, secret := range []string{testAppSecret, testWebSecret, testMiniSecret, rpSecret, rp2Secret} {
			if strings.Contains(logs, secret) {
				t.Errorf("the log contains a secret")
			}
		}
	})
	return h
}

func (h *harness) issuer() string { return h.cfg.Issuer }

// User agents of the browsers tests play.
const (
	uaWeChat  = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.49(0x18003137) NetType/WIFI Language/zh_CN"
	uaDesktop = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36"
)

// uaTransport sets a User-Agent on every request, and X-Forwarded-For
// when xff is set (a client at that address behind a trusted proxy: see
// withTrustedLoopbackProxy).
type uaTransport struct{ ua, xff string }

func (t uaTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("User-Agent", t.ua)
	if t.xff != "" {
		r.Header.Set("X-Forwarded-For", t.xff)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// withTrustedLoopbackProxy makes the test client a trusted proxy, so that
// browserFrom can play clients at other addresses.
func withTrustedLoopbackProxy() harnessOption {
	return func(c *config.File) { c.TrustedProxies = []string{"127.0.0.0/8", "::1/128"} }
}

// browserFrom is a browser at client address ip (needs withTrustedLoopbackProxy).
func (h *harness) browserFrom(ua, ip string) *http.Client {
	b := h.browserWithUA(ua)
	b.Transport = uaTransport{ua: ua, xff: ip}
	return b
}

// browser is a cookie-keeping HTTP client that follows redirects through the
// provider and the simulator, and stops at the RP's redirect_uri. It is the
// WeChat in-app browser (the Official Account flow); browserWithUA plays others.
func (h *harness) browser() *http.Client { return h.browserWithUA(uaWeChat) }

func (h *harness) browserWithUA(ua string) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar:       jar,
		Transport: uaTransport{ua: ua},
		Timeout:   10 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if req.URL.Host == rpHost || len(via) > 10 {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
}

// rp is a relying party built with go-oidc and x/oauth2.
type rp struct {
	provider *gooidc.Provider
	conf     *oauth2.Config
	verifier *gooidc.IDTokenVerifier
	ctx      context.Context
}

func (h *harness) rp(clientID, secret, redirect string, scopes ...string) *rp {
	h.t.Helper()
	ctx := gooidc.ClientContext(context.Background(), &http.Client{Timeout: 10 * time.Second})
	p, err := gooidc.NewProvider(ctx, h.issuer())
	if err != nil {
		h.t.Fatalf("go-oidc discovery: %v", err)
	}
	if len(scopes) == 0 {
		scopes = []string{gooidc.ScopeOpenID, "profile", wechatconn.ScopeWeChat}
	}
	return &rp{
		provider: p,
		conf:     &oauth2.Config{ClientID: clientID, ClientSecret: secret, Endpoint: p.Endpoint(), RedirectURL: redirect, Scopes: scopes},
		verifier: p.Verifier(&gooidc.Config{ClientID: clientID}),
		ctx:      ctx,
	}
}

// authorize opens url in the browser and returns the final response (the
// redirect to the RP, or a page) and, if it reached the RP, its query.
func (h *harness) authorize(b *http.Client, authURL string) (*http.Response, url.Values) {
	h.t.Helper()
	resp, err := b.Get(authURL)
	if err != nil {
		h.t.Fatalf("authorize: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if resp.StatusCode == http.StatusFound {
		loc, err := url.Parse(resp.Header.Get("Location"))
		if err == nil && loc.Host == rpHost {
			return resp, loc.Query()
		}
	}
	return resp, nil
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// loginResult is what a whole go-oidc login produced.
type loginResult struct {
	token   *oauth2.Token
	idToken *gooidc.IDToken
	claims  map[string]any
	query   url.Values
}

// login runs the whole flow for user with PKCE and a nonce, and verifies the ID token.
func (h *harness) login(r *rp, b *http.Client, user string) *loginResult {
	h.t.Helper()
	h.sim.AutoApprove(user)
	state, nonce, verifier := "st-"+randomID(8), "n-"+randomID(8), oauth2.GenerateVerifier()
	_, q := h.authorize(b, r.conf.AuthCodeURL(state, gooidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)))
	if q == nil {
		h.t.Fatalf("login of %s did not reach the RP; logs:\n%s", user, h.logs.String())
	}
	if q.Get("error") != "" {
		h.t.Fatalf("login of %s failed: %s: %s", user, q.Get("error"), q.Get("error_description"))
	}
	if q.Get("state") != state {
		h.t.Fatalf("state not echoed: got %q want %q", q.Get("state"), state)
	}
	if q.Get("iss") != h.issuer() {
		h.t.Fatalf("iss (RFC 9207) = %q", q.Get("iss"))
	}
	tok, err := r.conf.Exchange(r.ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		h.t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := r.verifier.Verify(r.ctx, raw)
	if err != nil {
		h.t.Fatalf("ID token verification: %v", err)
	}
	if idt.Nonce != nonce {
		h.t.Fatalf("nonce = %q, want %q", idt.Nonce, nonce)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		h.t.Fatalf("at_hash: %v", err)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		h.t.Fatal(err)
	}
	return &loginResult{token: tok, idToken: idt, claims: claims, query: q}
}

// sessionAlive asks for a code with prompt=none: the SSO session answers
// without WeChat if it still exists.
func (h *harness) sessionAlive(b *http.Client) bool {
	h.t.Helper()
	_, q := h.authorize(b, h.authorizeURL(map[string]string{"prompt": "none"}))
	return q != nil && q.Get("code") != ""
}

// tokenRequest posts a raw token request.
func (h *harness) tokenRequest(form url.Values, basicID, basicSecret string) (int, map[string]any, http.Header) {
	h.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, h.issuer()+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicID != "" {
		req.SetBasicAuth(url.QueryEscape(basicID), url.QueryEscape(basicSecret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body, resp.Header
}

// authorizeURL builds a raw authorize URL for the test RP.
func (h *harness) authorizeURL(over map[string]string) string {
	v := url.Values{
		"client_id": {rpClientID}, "redirect_uri": {rpRedirect}, "response_type": {"code"},
		"scope": {"openid profile"}, "state": {"client-state"}, "nonce": {"client-nonce"},
	}
	for k, val := range over {
		if val == "-" {
			v.Del(k)
		} else {
			v.Set(k, val)
		}
	}
	return h.issuer() + "/authorize?" + v.Encode()
}

// codeFor runs the browser part for user and returns the code given to the RP.
func (h *harness) codeFor(user string, over map[string]string) string {
	h.t.Helper()
	h.sim.AutoApprove(user)
	_, q := h.authorize(h.browser(), h.authorizeURL(over))
	if q == nil || q.Get("code") == "" {
		h.t.Fatalf("no code for %s: %v\n%s", user, q, h.logs.String())
	}
	return q.Get("code")
}

func jsonDecode(resp *http.Response, v any) error { return json.NewDecoder(resp.Body).Decode(v) }

// newWeChatConnector is the WeChat connector as serve wires it (its links
// in dir), on clock now.
func newWeChatConnector(t testing.TB, opt *config.Options, dir *directory.Directory, logger *slog.Logger, now func() time.Time) *wechatconn.Connector {
	t.Helper()
	return newWeChatConnectorObserved(t, opt, dir, logger, now, nil)
}

// newWeChatConnectorObserved is newWeChatConnector telling observe of every WeChat call.
func newWeChatConnectorObserved(t testing.TB, opt *config.Options, dir *directory.Directory, logger *slog.Logger, now func() time.Time, observe func(string, string, time.Duration)) *wechatconn.Connector {
	t.Helper()
	o := wechatconn.FromConfig(opt, dir.Profiles(), logger, nil)
	o.Now = now
	o.ObserveCall = observe
	conn, err := wechatconn.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return conn
}

// addPerson puts a simulated WeChat user in the directory before their
// first sign-in, active, with groups, bound to their unionid, under the
// username an open sign-in would give them.
func (h *harness) addPerson(user string, groups ...string) directory.Person {
	h.t.Helper()
	ctx := context.Background()
	unionid := h.sim.UnionID(user)
	p, err := h.dir.People().Create(ctx, directory.NewPerson{Username: wechatconn.PreferredUsername(unionid), Groups: groups})
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.dir.People().BindIdentity(ctx, p.ID, directory.Identity{Provider: wechatconn.Provider, UnionID: unionid}); err != nil {
		h.t.Fatal(err)
	}
	return p
}

// testDirectory opens the directory a test's options name.
func testDirectory(t testing.TB, opt *config.Options) *directory.Directory {
	t.Helper()
	d, err := directory.Open(context.Background(), directory.Options{Type: opt.Directory.Type, Path: opt.Directory.Path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}
