package bridge

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wechat-oidc/wechat-oidc/config"
	"github.com/wechat-oidc/wechat-oidc/connector"
	"github.com/wechat-oidc/wechat-oidc/keys"
	"github.com/wechat-oidc/wechat-oidc/oidc"
	"github.com/wechat-oidc/wechat-oidc/store"
)

// The login core's state machine, against a fake connector: no upstream,
// no network beyond the in-process server. The callback's code says what the
// fake upstream answers:
//
//	id:<sub>   an identity with that subject
//	next       another leg (then the next callback decides)
//	retry      a retry page
//	fail       a failure (server_error)
//	declined   the person declined at the upstream
//	empty      an outcome with nothing set (a connector bug)
const fakeUpstream = "upstream.test"

type fakeConnector struct {
	crossDevice bool
	calls       atomic.Int32
}

func (f *fakeConnector) Start(r connector.StartRequest) (connector.Start, *oidc.Error) {
	if r.Extra["wechat_flow"] == "bogus" {
		return connector.Start{}, oidc.ErrInvalidRequest("no such flow")
	}
	return connector.Start{Leg: connector.Leg(`{"n":1}`), CrossDevice: f.crossDevice, Flow: "fake"}, nil
}

func (f *fakeConnector) LoginURL(leg connector.Leg, state string) (string, error) {
	return "https://" + fakeUpstream + "/auth?" + url.Values{"state": {state}, "leg": {string(leg)}}.Encode(), nil
}

func (f *fakeConnector) HandleCallback(_ context.Context, leg connector.Leg, params map[string]string) connector.Outcome {
	f.calls.Add(1)
	code := params["code"]
	switch {
	case strings.HasPrefix(code, "id:"):
		sub := strings.TrimPrefix(code, "id:")
		return connector.Outcome{Identity: &connector.Identity{Subject: sub, Claims: map[string]any{"name": "N"}, Provider: "fake", AppID: "app", OpenID: sub}}
	case code == "next":
		return connector.Outcome{Next: connector.Leg(`{"n":2}`)}
	case code == "retry":
		return connector.Outcome{Retry: &connector.Retry{Leg: connector.Leg(`{"n":3}`), Name: "fake-retry", Title: "t", Heading: "h", MessageZH: "z", MessageEN: "e"}}
	case code == "declined":
		return connector.Outcome{Failure: &connector.Failure{Error: oidc.ErrAccessDenied("declined"), Declined: true}}
	case code == "fail":
		return connector.Failed(oidc.ErrServerError("upstream broke"))
	}
	return connector.Outcome{}
}

func (f *fakeConnector) CanRunPhoneLeg(ua string) bool { return ua == "phone" }

func (f *fakeConnector) AuthorizeParams() []string { return []string{"wechat_flow"} }

// faultyStore fails every operation while failing is set.
type faultyStore struct {
	store.Store
	failing atomic.Bool
}

var errStoreDown = errors.New("store down")

func (s *faultyStore) Put(ctx context.Context, k string, v []byte, ttl time.Duration) error {
	if s.failing.Load() {
		return errStoreDown
	}
	return s.Store.Put(ctx, k, v, ttl)
}
func (s *faultyStore) PutNew(ctx context.Context, k string, v []byte, ttl time.Duration) (bool, error) {
	if s.failing.Load() {
		return false, errStoreDown
	}
	return s.Store.PutNew(ctx, k, v, ttl)
}
func (s *faultyStore) Get(ctx context.Context, k string) ([]byte, error) {
	if s.failing.Load() {
		return nil, errStoreDown
	}
	return s.Store.Get(ctx, k)
}
func (s *faultyStore) Take(ctx context.Context, k string) ([]byte, error) {
	if s.failing.Load() {
		return nil, errStoreDown
	}
	return s.Store.Take(ctx, k)
}
func (s *faultyStore) Delete(ctx context.Context, k string) error {
	if s.failing.Load() {
		return errStoreDown
	}
	return s.Store.Delete(ctx, k)
}
func (s *faultyStore) Update(ctx context.Context, k string, ttl time.Duration, fn func([]byte) ([]byte, error)) error {
	if s.failing.Load() {
		return errStoreDown
	}
	return s.Store.Update(ctx, k, ttl, fn)
}

func (s *faultyStore) Ping(ctx context.Context) error {
	if s.failing.Load() {
		return errStoreDown
	}
	return s.Store.Ping(ctx)
}

type core struct {
	t    *testing.T
	srv  *Server
	ts   *httptest.Server
	conn *fakeConnector
	st   *faultyStore
}

func newCore(t *testing.T, crossDevice bool) *core {
	t.Helper()
	var handler atomic.Pointer[Server]
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.Load().ServeHTTP(w, r) }))
	t.Cleanup(ts.Close)
	f := &config.File{
		Issuer:    ts.URL,
		WeChat:    config.WeChatConfig{OfficialAccount: &config.WeChatAppConfig{AppID: "wxcore", AppSecret: "unused-secret"}},
		Clients:   []config.ClientConfig{{ID: rpClientID, Secret: rpSecret, RedirectURIs: []string{rpRedirect}}},
		Keys:      config.KeysConfig{Dir: "unused"},
		Directory: config.DirectoryConfig{Type: "sqlite", Path: ":memory:"},
		Access:    config.AccessConfig{Mode: config.AccessOpen},
	}
	opt, err := f.Resolve()
	if err != nil {
		t.Fatal(err)
	}
	ks, err := keys.NewEphemeral()
	if err != nil {
		t.Fatal(err)
	}
	c := &core{t: t, ts: ts, conn: &fakeConnector{crossDevice: crossDevice}, st: &faultyStore{Store: store.NewMemory()}}
	c.srv, err = New(opt, Deps{Store: c.st, Directory: testDirectory(t, opt), Keys: ks, Connector: c.conn, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	handler.Store(c.srv)
	return c
}

// browser is a cookie-keeping client that stops at the fake upstream and at the RP.
func (c *core) browser(ua string) *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Transport: uaTransport{ua: ua}, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if req.URL.Host == fakeUpstream || req.URL.Host == rpHost || req.URL.Path == PathQR {
			return http.ErrUseLastResponse
		}
		return nil
	}}
}

// answer is what the browser ended on: a redirect target, or a page.
type answer struct {
	status   int
	location *url.URL
	page     string // data-page of our page
	body     string
}

func (c *core) get(b *http.Client, u string) answer {
	c.t.Helper()
	resp, err := b.Get(u)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, body: string(body)}
	if loc := resp.Header.Get("Location"); loc != "" {
		a.location, _ = url.Parse(loc)
	}
	if m := regexp.MustCompile(`data-page="([^"]+)"`).FindStringSubmatch(a.body); m != nil {
		a.page = m[1]
	}
	return a
}

func (c *core) authorize(b *http.Client, extra map[string]string) answer {
	v := url.Values{"client_id": {rpClientID}, "redirect_uri": {rpRedirect}, "response_type": {"code"}, "scope": {"openid"}, "state": {"s1"}}
	for k, x := range extra {
		v.Set(k, x)
	}
	return c.get(b, c.ts.URL+"/authorize?"+v.Encode())
}

// upstreamState is the state the core gave the fake upstream.
func (c *core) upstreamState(a answer) string {
	c.t.Helper()
	if a.location == nil || a.location.Host != fakeUpstream {
		c.t.Fatalf("not sent upstream: %d %v page=%s", a.status, a.location, a.page)
	}
	return a.location.Query().Get("state")
}

func (c *core) callback(b *http.Client, state, code string) answer {
	return c.get(b, c.ts.URL+connector.CallbackPath+"?"+url.Values{"state": {state}, "code": {code}}.Encode())
}

// toClient is the authorization response, or nil.
func toClient(a answer) url.Values {
	if a.location == nil || a.location.Host != rpHost {
		return nil
	}
	return a.location.Query()
}

func TestCoreCallbackOutcomes(t *testing.T) {
	cases := []struct {
		name  string
		codes []string // one callback per code, each on the state the core gave
		check func(t *testing.T, c *core, last answer)
	}{
		{"identity: a code for the client", []string{"id:alice"}, func(t *testing.T, c *core, a answer) {
			q := toClient(a)
			if q.Get("code") == "" || q.Get("state") != "s1" || q.Get("iss") != c.ts.URL {
				t.Fatalf("got %v", a.location)
			}
		}},
		{"next leg: upstream again, then a code", []string{"next", "id:alice"}, func(t *testing.T, c *core, a answer) {
			if toClient(a).Get("code") == "" || c.conn.calls.Load() != 2 {
				t.Fatalf("got %v after %d callbacks", a.location, c.conn.calls.Load())
			}
		}},
		{"retry: the connector's page with a fresh leg", []string{"retry"}, func(t *testing.T, c *core, a answer) {
			if a.page != "fake-retry" || !strings.Contains(a.body, fakeUpstream) {
				t.Fatalf("page %q: %s", a.page, a.body)
			}
		}},
		{"failure: the error goes to the client", []string{"fail"}, func(t *testing.T, c *core, a answer) {
			if q := toClient(a); q.Get("error") != "server_error" || q.Get("state") != "s1" {
				t.Fatalf("got %v", a.location)
			}
		}},
		{"declined: access_denied", []string{"declined"}, func(t *testing.T, c *core, a answer) {
			if q := toClient(a); q.Get("error") != "access_denied" {
				t.Fatalf("got %v", a.location)
			}
		}},
		{"empty outcome: server_error, not a panic", []string{"empty"}, func(t *testing.T, c *core, a answer) {
			if q := toClient(a); q.Get("error") != "server_error" {
				t.Fatalf("got %v", a.location)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCore(t, false)
			b := c.browser("desktop")
			a := c.authorize(b, nil)
			for _, code := range tc.codes {
				a = c.callback(b, c.upstreamState(a), code)
			}
			tc.check(t, c, a)
		})
	}
}

func TestCoreStartErrorGoesToClient(t *testing.T) {
	c := newCore(t, false)
	a := c.authorize(c.browser("desktop"), map[string]string{"wechat_flow": "bogus"})
	if q := toClient(a); q.Get("error") != "invalid_request" {
		t.Fatalf("got %d %v", a.status, a.location)
	}
}

func TestCoreBrowserBinding(t *testing.T) {
	c := newCore(t, false)
	victim := c.browser("desktop")
	state := c.upstreamState(c.authorize(victim, nil))
	// Login CSRF: another browser brings the callback.
	if a := c.callback(c.browser("desktop"), state, "id:mallory"); a.status != http.StatusForbidden || a.page != "other-browser" {
		t.Fatalf("another browser: %d %s", a.status, a.page)
	}
	// The rightful browser can still finish.
	if q := toClient(c.callback(victim, state, "id:alice")); q.Get("code") == "" {
		t.Fatal("the rightful browser could not finish")
	}
}

func TestCoreDuplicateAndUnknownCallbacks(t *testing.T) {
	c := newCore(t, false)
	b := c.browser("desktop")
	state := c.upstreamState(c.authorize(b, nil))
	first := toClient(c.callback(b, state, "id:alice"))
	again := toClient(c.callback(b, state, "id:alice"))
	if first.Get("code") == "" || again.Get("code") != first.Get("code") || c.conn.calls.Load() != 1 {
		t.Fatalf("duplicate callback: %v vs %v after %d upstream calls", first, again, c.conn.calls.Load())
	}
	if a := c.callback(b, state, "id:other"); a.page != "login-expired" {
		t.Fatalf("same state, another code: %d %s", a.status, a.page)
	}
	if a := c.callback(b, strings.Repeat("A", handleLen), "id:alice"); a.page != "login-expired" {
		t.Fatalf("unknown state: %s", a.page)
	}
	if a := c.callback(b, "short", "id:alice"); a.page != "login-expired" {
		t.Fatalf("malformed state: %s", a.page)
	}
}

func TestCoreSessionAndHint(t *testing.T) {
	c := newCore(t, false)
	b := c.browser("desktop")
	c.callback(b, c.upstreamState(c.authorize(b, nil)), "id:alice")
	// SSO: the next request is answered without the upstream.
	if q := toClient(c.authorize(b, nil)); q.Get("code") == "" || c.conn.calls.Load() != 1 {
		t.Fatalf("SSO reuse: %v", q)
	}
	// A fresh login that yields another subject than id_token_hint names.
	hint := c.idToken(b)
	state := c.upstreamState(c.authorize(b, map[string]string{"prompt": "login", "id_token_hint": hint}))
	if q := toClient(c.callback(b, state, "id:bob")); q.Get("error") != "login_required" {
		t.Fatalf("hint mismatch: %v", q)
	}
}

// idToken redeems a fresh SSO code for an ID token.
func (c *core) idToken(b *http.Client) string {
	c.t.Helper()
	code := toClient(c.authorize(b, nil)).Get("code")
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {rpRedirect}}
	req, _ := http.NewRequest(http.MethodPost, c.ts.URL+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(rpClientID, rpSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr struct {
		IDToken string `json:"id_token"`
	}
	if err := jsonDecode(resp, &tr); err != nil || tr.IDToken == "" {
		c.t.Fatalf("token: %d %v", resp.StatusCode, err)
	}
	return tr.IDToken
}

// TestCoreStoreOutage: every store error on the login path is a clean
// temporarily_unavailable or 503 page, and service resumes by itself.
func TestCoreStoreOutage(t *testing.T) {
	c := newCore(t, false)
	b := c.browser("desktop")
	c.st.failing.Store(true)
	if q := toClient(c.authorize(b, nil)); q.Get("error") != "temporarily_unavailable" {
		t.Fatalf("authorize with the store down: %v", q)
	}
	c.st.failing.Store(false)
	state := c.upstreamState(c.authorize(b, nil))
	c.st.failing.Store(true)
	if a := c.callback(b, state, "id:alice"); a.status != http.StatusServiceUnavailable || a.page != "unavailable" {
		t.Fatalf("callback with the store down: %d %s (it must not say the sign-in expired)", a.status, a.page)
	}
	c.st.failing.Store(false)
	if q := toClient(c.callback(b, state, "id:alice")); q.Get("code") == "" {
		t.Fatalf("after the outage the same sign-in must finish: %v", q)
	}
}

func TestCoreCrossDevice(t *testing.T) {
	c := newCore(t, true)
	desk := c.browser("desktop")
	a := c.authorize(desk, nil)
	if a.location == nil || !strings.HasPrefix(a.location.Path, PathQR) {
		t.Fatalf("not the QR page: %v", a.location)
	}
	qr := c.get(desk, a.location.String())
	m := regexp.MustCompile(`\?t=([A-Za-z0-9]{32})`).FindStringSubmatch(qr.body)
	if qr.page != "qr" {
		t.Fatalf("desktop page %q", qr.page)
	}
	if m == nil {
		// The dev link is off: read the ticket from the store instead.
		var xd xdRequest
		if err := c.srv.getJSON(t.Context(), keyXDRequest+a.location.Query().Get("d"), &xd); err != nil {
			t.Fatal(err)
		}
		m = []string{"", xd.Ticket}
	}
	scan := c.ts.URL + PathQRScan + "?t=" + m[1]
	if p := c.get(c.browser("not-a-phone"), scan); p.page != "scan-with-wechat" {
		t.Fatalf("a browser that cannot run the phone leg: %s", p.page)
	}
	phone := c.browser("phone")
	state := c.upstreamState(c.get(phone, scan))
	if p := c.get(c.browser("phone"), scan); p.page != "qr-taken" {
		t.Fatalf("a second phone: %s", p.page)
	}
	confirm := c.callback(phone, state, "id:alice")
	if confirm.page != "qr-confirm" {
		t.Fatalf("phone after the upstream: %s", confirm.page)
	}
	form := confirmForm(t, confirm.body)
	form.Set("pick", regexp.MustCompile(`data-match-code="(\d\d)"`).FindStringSubmatch(c.get(desk, a.location.String()).body)[1])
	resp, err := phone.PostForm(c.ts.URL+PathQRConfirm, form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if q := toClient(c.get(desk, a.location.String())); q.Get("code") == "" || q.Get("state") != "s1" {
		t.Fatalf("desktop after confirmation: %v", q)
	}
}
