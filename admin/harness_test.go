package admin

import (
	"context"
	"errors"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wechat-oidc/wechat-oidc/directory"
	"github.com/wechat-oidc/wechat-oidc/keys"
	"github.com/wechat-oidc/wechat-oidc/oidc"
	"github.com/wechat-oidc/wechat-oidc/store"
)

// The harness runs the console on a real HTTP server with a real
// directory (SQLite in memory), a real oidc.Provider with real keys, and a
// fake authorization endpoint standing in for the bridge's login: it
// issues a code for the subject the browser plays (provider.IssueCode), so
// the console's callback, code redemption (provider.HandleToken) and ID
// token verification are the real ones. The login core is a fake
// (fakeCore) that records what the console asks of it.

// testClock is the one clock of the provider, the directory, the store and
// the console.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// fakeCore records the console's calls to the login core.
type fakeCore struct {
	mu            sync.Mutex
	ended         []string // persons whose access was ended
	endedSessions []string
	sessions      map[string][]SessionInfo // person id → live sessions
	grants        map[string][]GrantInfo   // person id → live refresh token families
	endedGrants   []string                 // "person/family" of each EndGrant that revoked
	failEnd       error
	failGrants    error // PersonGrants fails with it
}

func (f *fakeCore) EndPersonAccess(_ context.Context, personID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failEnd != nil {
		return f.failEnd
	}
	f.ended = append(f.ended, personID)
	delete(f.sessions, personID)
	return nil
}

func (f *fakeCore) PersonSessions(_ context.Context, personID string) ([]SessionInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sessions[personID]), nil
}

func (f *fakeCore) EndSession(_ context.Context, sid string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.endedSessions = append(f.endedSessions, sid)
	for p, ss := range f.sessions {
		f.sessions[p] = slices.DeleteFunc(ss, func(s SessionInfo) bool { return s.ID == sid })
	}
	return nil
}

func (f *fakeCore) PersonGrants(_ context.Context, personID string) ([]GrantInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failGrants != nil {
		return nil, f.failGrants
	}
	return slices.Clone(f.grants[personID]), nil
}

// EndGrant revokes like the bridge: only one of the person's own live
// families, else ErrGrantNotFound.
func (f *fakeCore) EndGrant(_ context.Context, personID, familyID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	i := slices.IndexFunc(f.grants[personID], func(g GrantInfo) bool { return g.ID == familyID })
	if i < 0 {
		return ErrGrantNotFound
	}
	f.grants[personID] = slices.Delete(f.grants[personID], i, i+1)
	f.endedGrants = append(f.endedGrants, personID+"/"+familyID)
	return nil
}

func (f *fakeCore) endedGrantIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.endedGrants)
}

func (f *fakeCore) endedPeople() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.ended)
}

func (f *fakeCore) endedSIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.endedSessions)
}

// oidcStore adapts store.Store to oidc.Storage (absent is nil, nil), as the
// bridge does.
type oidcStore struct{ s store.Store }

func (a oidcStore) Put(ctx context.Context, k string, v []byte, ttl time.Duration) error {
	return a.s.Put(ctx, k, v, ttl)
}
func (a oidcStore) Get(ctx context.Context, k string) ([]byte, error) {
	v, err := a.s.Get(ctx, k)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return v, err
}
func (a oidcStore) Take(ctx context.Context, k string) ([]byte, error) {
	v, err := a.s.Take(ctx, k)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return v, err
}
func (a oidcStore) Delete(ctx context.Context, k string) error { return a.s.Delete(ctx, k) }
func (a oidcStore) Update(ctx context.Context, k string, ttl time.Duration, fn func([]byte) ([]byte, error)) error {
	return a.s.Update(ctx, k, ttl, fn)
}

type harness struct {
	t        *testing.T
	clock    *testClock
	dir      *directory.Directory
	store    *store.Memory
	keys     *keys.Set
	provider *oidc.Provider
	core     *fakeCore
	console  *Console
	echo     *echo.Echo
	srv      *httptest.Server
	issuer   string

	mu sync.Mutex
	// sso is when each subject last authenticated at the fake upstream:
	// an authorization request reuses it unless max_age or prompt=login
	// asks for a fresh one.
	sso map[string]time.Time
	// ignoreMaxAge makes the fake authorization endpoint a broken one
	// that answers max_age with an old auth_time.
	ignoreMaxAge bool
	// denyAll makes it answer access_denied.
	denyAll bool
	// authorizeRequests are the parameters of every authorization request.
	authorizeRequests []url.Values
}

const testSubjectHeader = "X-Test-Subject"

type harnessOption func(*Options)

func newHarness(t *testing.T, opts ...harnessOption) *harness {
	t.Helper()
	h := &harness{t: t, clock: &testClock{now: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}, core: &fakeCore{sessions: map[string][]SessionInfo{}, grants: map[string][]GrantInfo{}},
		sso: map[string]time.Time{}}
	var handler http.Handler
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(h.srv.Close)
	h.issuer = h.srv.URL

	ctx := context.Background()
	dir, err := directory.Open(ctx, directory.Options{Path: ":memory:", Now: h.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dir.Close() })
	h.dir = dir
	h.store = store.NewMemoryClock(h.clock.Now)
	t.Cleanup(func() { h.store.Close() })
	if h.keys, err = keys.NewEphemeral(); err != nil {
		t.Fatal(err)
	}
	cc := ClientConfig(h.issuer)
	client := &oidc.Client{ID: cc.ID, Name: cc.Name, RedirectURIs: cc.RedirectURIs, AuthMethods: []string{cc.AuthMethod}, RequirePKCE: cc.RequirePKCE}
	other := oidc.NewClient("grafana", "grafana-secret-grafana-secret", []string{"https://grafana.example.com/cb"})
	h.provider = &oidc.Provider{
		Issuer: h.issuer, Clients: oidc.NewRegistry(client, other), Storage: oidcStore{h.store}, Signer: h.keys,
		ScopeClaims: map[string][]string{"profile": {"name", "preferred_username", "picture"}},
		CodeTTL:     time.Minute, AccessTokenTTL: time.Hour, IDTokenTTL: time.Hour, Now: h.clock.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	o := Options{
		Issuer: h.issuer, Directory: dir, Store: h.store, Provider: h.provider, Keys: h.keys, Core: h.core,
		Now: h.clock.Now, Location: time.UTC,
		Applications: []Application{{ID: "grafana", Name: "Grafana"}},
	}
	for _, opt := range opts {
		opt(&o)
	}
	if h.console, err = New(o); err != nil {
		t.Fatal(err)
	}
	h.echo = echo.New()
	h.echo.GET(oidc.PathAuthorize, h.fakeAuthorize)
	h.console.Mount(h.echo)
	handler = h.echo
	return h
}

// fakeAuthorize stands in for the bridge's login: the browser's subject
// (testSubjectHeader) signs in; max_age and prompt=login are honoured (an
// older sign-in is redone: auth_time becomes now) unless ignoreMaxAge.
func (h *harness) fakeAuthorize(c echo.Context) error {
	r := c.Request()
	h.mu.Lock()
	h.authorizeRequests = append(h.authorizeRequests, r.URL.Query())
	deny, ignore := h.denyAll, h.ignoreMaxAge
	h.mu.Unlock()
	params := oidc.Params{}
	for k, v := range r.URL.Query() {
		params[k] = v[0]
	}
	req, aerr := h.provider.ParseAuthorizeRequest(params)
	if aerr != nil {
		return c.String(http.StatusBadRequest, aerr.Error.Error())
	}
	sub := r.Header.Get(testSubjectHeader)
	if sub == "" {
		return c.String(http.StatusBadRequest, "test browser plays nobody")
	}
	if deny {
		h.provider.WriteAuthorizeError(c.Response(), req, oidc.ErrAccessDenied("not for you"))
		return nil
	}
	now := h.clock.Now()
	h.mu.Lock()
	at, ok := h.sso[sub]
	stale := req.MaxAge >= 0 && now.Sub(at) > time.Duration(req.MaxAge)*time.Second && !ignore
	if !ok || stale || req.HasPrompt(oidc.PromptLogin) {
		at = now
		h.sso[sub] = at
	}
	h.mu.Unlock()
	code, err := h.provider.IssueCode(r.Context(), req, oidc.Identity{Subject: sub, AuthTime: at, SessionID: "sid-" + sub,
		Claims: map[string]any{"name": "n-" + sub}})
	if err != nil {
		return err
	}
	u, _ := url.Parse(req.RedirectURI)
	q := u.Query()
	q.Set("code", code)
	q.Set("state", req.State)
	u.RawQuery = q.Encode()
	return c.Redirect(http.StatusFound, u.String())
}

func (h *harness) lastAuthorize() url.Values {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.authorizeRequests) == 0 {
		return nil
	}
	return h.authorizeRequests[len(h.authorizeRequests)-1]
}

// person creates a person in the directory.
func (h *harness) person(username string, status directory.Status, groups ...string) directory.Person {
	h.t.Helper()
	p, err := h.dir.People().Create(context.Background(), directory.NewPerson{Username: username, DisplayName: strings.ToUpper(username[:1]) + username[1:],
		Groups: groups, Status: status})
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

func (h *harness) get(id string) directory.Person {
	h.t.Helper()
	p, err := h.dir.People().Get(context.Background(), id)
	if err != nil {
		h.t.Fatalf("get %s: %v", id, err)
	}
	return p
}

// events are the audit rows of an action, newest first.
func (h *harness) events(action string) []directory.Event {
	h.t.Helper()
	evs, err := h.dir.Audit().Query(context.Background(), directory.AuditQuery{Action: action})
	if err != nil {
		h.t.Fatal(err)
	}
	return evs
}

// browser is one person's browser: its own cookies, no automatic redirects
// (each hop is checked), a language, and the subject it plays at the fake
// authorization endpoint.
type browser struct {
	h       *harness
	client  *http.Client
	subject string
	lang    string
	origin  string // sent as Origin on POST when set
	csrf    string // the CSRF token of the last page
}

func (h *harness) browser(subject, lang string) *browser {
	jar, _ := cookiejar.New(nil)
	b := &browser{h: h, subject: subject, lang: lang, origin: h.issuer}
	b.client = &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return b
}

// page is a response, read.
type page struct {
	status   int
	body     string
	header   http.Header
	location string
}

// dataPage is the page's data-page marker.
func (p page) dataPage() string {
	m := regexp.MustCompile(`<main data-page="([^"]*)"`).FindStringSubmatch(p.body)
	if m == nil {
		return ""
	}
	return m[1]
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func (b *browser) do(method, path string, form url.Values) page {
	b.h.t.Helper()
	u := path
	if !strings.HasPrefix(u, "http") {
		u = b.h.issuer + path
	}
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		b.h.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if b.origin != "" {
			req.Header.Set("Origin", b.origin)
		}
	}
	if b.lang != "" {
		req.Header.Set("Accept-Language", b.lang)
	}
	if b.subject != "" {
		req.Header.Set(testSubjectHeader, b.subject)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		b.h.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		b.h.t.Fatal(err)
	}
	p := page{status: resp.StatusCode, body: string(raw), header: resp.Header, location: resp.Header.Get("Location")}
	if m := csrfField.FindStringSubmatch(p.body); m != nil {
		b.csrf = html.UnescapeString(m[1])
	}
	return p
}

// follow follows redirects from p (GET each Location) to a page.
func (b *browser) follow(p page) page {
	b.h.t.Helper()
	for i := 0; p.status >= 300 && p.status < 400; i++ {
		if i > 10 {
			b.h.t.Fatalf("redirect loop at %s", p.location)
		}
		p = b.do(http.MethodGet, p.location, nil)
	}
	return p
}

func (b *browser) open(path string) page {
	b.h.t.Helper()
	return b.follow(b.do(http.MethodGet, path, nil))
}

// submit posts a form with this browser's CSRF token and follows the
// answer.
func (b *browser) submit(path string, form url.Values) page {
	b.h.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf", b.csrf)
	return b.follow(b.do(http.MethodPost, path, form))
}

// signIn signs the browser in from the console's first page.
func (b *browser) signIn() page {
	b.h.t.Helper()
	p := b.open("/admin/")
	if p.status != http.StatusOK {
		b.h.t.Fatalf("sign-in as %s ended with %d %s", b.subject, p.status, p.dataPage())
	}
	return p
}

func expectPage(t *testing.T, p page, status int, dataPage string) {
	t.Helper()
	if p.status != status || p.dataPage() != dataPage {
		t.Fatalf("got %d data-page=%q, want %d %q; location %q; body:\n%s", p.status, p.dataPage(), status, dataPage, p.location, cut(p.body, 3000))
	}
}

func cut(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func atoi(t *testing.T, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
