package bridge

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wechat-oidc/wechat-oidc/oidc"
)

// Issue 9 §5: the smaller findings.

// TestMaxAgeZeroForcesLogin: max_age=0 right after a sign-in means a fresh
// login (OpenID Connect Core §3.1.2.1, errata set 2: like prompt=login); it
// used to be answered from the session because 0 seconds is not more than
// 0. A session exactly max_age old is not used either.
func TestMaxAgeZeroForcesLogin(t *testing.T) {
	h := newHarness(t)
	b, _ := ssoLogin(t, h)
	before := h.sim.CallCount("/connect/oauth2/authorize")
	if _, q := h.authorize(b, h.authorizeURL(map[string]string{"max_age": "0", "prompt": "none"})); q.Get("error") != "login_required" {
		t.Fatalf("max_age=0 with prompt=none answered from the session: %v", q)
	}
	h.sim.AutoApprove("alice")
	if _, q := h.authorize(b, h.authorizeURL(map[string]string{"max_age": "0"})); q.Get("code") == "" || h.sim.CallCount("/connect/oauth2/authorize") != before+1 {
		t.Fatalf("max_age=0 did not force a fresh WeChat login: %v", q)
	}
	// A session exactly max_age old.
	h.advance(60 * time.Second)
	if _, q := h.authorize(b, h.authorizeURL(map[string]string{"max_age": "60", "prompt": "none"})); q.Get("error") != "login_required" {
		t.Fatalf("a session 60 s old with max_age=60: %v", q)
	}
	if _, q := h.authorize(b, h.authorizeURL(map[string]string{"max_age": "120", "prompt": "none"})); q.Get("code") == "" {
		t.Fatalf("a session 60 s old with max_age=120: %v", q)
	}
}

// TestHostPrefixCookiesOnHTTPSRoot: with an https issuer at the host root
// the cookies are __Host- cookies (Secure, Path=/, no Domain), which a
// sibling subdomain or plain http cannot set (cookie tossing); only those
// names are read. Under a path the prefix cannot be used; Secure stays.
func TestHostPrefixCookiesOnHTTPSRoot(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		prefix, name, path string
	}{
		{"", "__Host-" + sessionCookie, "/"},
		{"/sso", sessionCookie, "/sso/"},
	} {
		s := &Server{opt: h.srv.opt, store: h.srv.store, provider: h.srv.provider, prefix: tc.prefix, secure: true, now: time.Now, log: h.srv.log}
		rec := httptest.NewRecorder()
		c := h.srv.echo.NewContext(httptest.NewRequest("GET", "/", nil), rec)
		if _, err := s.startSession(c, oidc.Identity{Subject: "sub", AuthTime: time.Now()}, rpClientID, true); err != nil {
			t.Fatal(err)
		}
		if _, err := s.browserBinding(c); err != nil {
			t.Fatal(err)
		}
		cookies := rec.Result().Cookies()
		if len(cookies) != 2 {
			t.Fatalf("prefix %q: cookies %v", tc.prefix, cookies)
		}
		for _, ck := range cookies {
			if !strings.HasSuffix(ck.Name, sessionCookie) && !strings.HasSuffix(ck.Name, browserCookie) {
				t.Fatalf("cookie %q", ck.Name)
			}
			if strings.HasPrefix(ck.Name, "__Host-") != (tc.prefix == "") || !ck.Secure || ck.Path != tc.path || ck.Domain != "" || !ck.HttpOnly {
				t.Errorf("prefix %q: %s", tc.prefix, ck.String())
			}
		}
		session := cookies[0]
		read := func(name string) bool {
			req := httptest.NewRequest("GET", "/", nil)
			req.AddCookie(&http.Cookie{Name: name, Value: session.Value})
			sess, _, err := s.currentSession(h.srv.echo.NewContext(req, httptest.NewRecorder()))
			if err != nil {
				t.Fatal(err)
			}
			return sess != nil
		}
		if !read(session.Name) {
			t.Errorf("prefix %q: the session cookie %q is not read back", tc.prefix, session.Name)
		}
		// On an https root issuer an unprefixed copy (what a sibling
		// subdomain could plant) is not read.
		if tc.prefix == "" && read(sessionCookie) {
			t.Error("on an https root issuer the unprefixed cookie name is read")
		}
	}
}

// plant puts a cookie in a browser's jar for the server, as a sibling
// subdomain or a network attacker could.
func plant(t *testing.T, b *http.Client, server, name, value string) {
	t.Helper()
	u, _ := url.Parse(server)
	b.Jar.SetCookies(u, []*http.Cookie{{Name: name, Value: value, Path: "/"}})
}

// TestForgedBrowserBindingRefused: login CSRF by a planted binding. The
// attacker makes up a binding value, plants it in the victim's browser,
// starts a sign-in with the same value in their own browser and sends the
// victim the callback URL with the attacker's code. The binding used to be
// any well-formed 43-character value, so the victim's browser finished the
// attacker's sign-in (and was signed in as the attacker). Now only values
// the server issued bind: the made-up value is replaced by a fresh one, and
// the victim's callback is refused.
func TestForgedBrowserBindingRefused(t *testing.T) {
	c := newCore(t, false)
	forged := strings.Repeat("A", 43)
	attacker, victim := c.browser("desktop"), c.browser("desktop")
	plant(t, attacker, c.ts.URL, browserCookie, forged)
	plant(t, victim, c.ts.URL, browserCookie, forged)
	state := c.upstreamState(c.authorize(attacker, nil))
	if a := c.callback(victim, state, "id:mallory"); a.status != http.StatusForbidden || a.page != "other-browser" {
		t.Fatalf("the victim finished the attacker's sign-in: %d %s %v", a.status, a.page, a.location)
	}
	u, _ := url.Parse(c.ts.URL)
	for _, ck := range attacker.Jar.Cookies(u) {
		if ck.Name == browserCookie && ck.Value == forged {
			t.Fatal("the made-up binding was kept")
		}
	}
	// The server's own value binds as before.
	if q := toClient(c.callback(attacker, state, "id:mallory")); q.Get("code") == "" {
		t.Fatal("the browser holding the issued binding could not finish")
	}
}

// TestPlantedBindingExpires: a genuine binding value the attacker obtained
// and planted stops binding after its lifetime (login.pending_ttl + 1 h),
// checked by the server whatever Max-Age the planted cookie claims.
func TestPlantedBindingExpires(t *testing.T) {
	h := newHarness(t)
	attacker := h.browser()
	noFollow(attacker).Get(h.authorizeURL(nil)) // gets a genuine binding
	u, _ := url.Parse(h.issuer())
	var genuine string
	for _, ck := range attacker.Jar.Cookies(u) {
		if ck.Name == browserCookie {
			genuine = ck.Value
		}
	}
	if genuine == "" {
		t.Fatal("no binding cookie")
	}
	h.advance(h.cfg.Login.PendingTTL.D() + time.Hour + time.Minute)
	victim := h.browser()
	plant(t, victim, h.issuer(), browserCookie, genuine)
	plant(t, attacker, h.issuer(), browserCookie, genuine)
	handle, _ := sentUpstream(t, h, attacker, h.authorizeURL(nil))
	raw, err := h.store.Get(t.Context(), keyPending+handle)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), hashValue(genuine)) {
		t.Fatal("a sign-in was bound to an expired binding value")
	}
}

// TestDuplicateCallbackOnEveryLeg: WeChat's duplicate callback (the same
// code twice) gets the first answer on every leg, not only on final ones:
// the silent-first first hop gets the same redirect to the next leg, the
// snapshot leg the same page, the phone's leg the same confirm page (or
// failure page). The upstream is asked once. (They used to get "sign-in
// expired".)
func TestDuplicateCallbackOnEveryLeg(t *testing.T) {
	twice := func(t *testing.T, c *core, b *http.Client, state, code string) (answer, answer) {
		first := c.callback(b, state, code)
		again := c.callback(b, state, code)
		if c.conn.calls.Load() != 1 {
			t.Fatalf("the upstream was asked %d times", c.conn.calls.Load())
		}
		return first, again
	}
	t.Run("silent-first first hop: the same next leg", func(t *testing.T) {
		c := newCore(t, false)
		b := c.browser("desktop")
		first, again := twice(t, c, b, c.upstreamState(c.authorize(b, nil)), "next")
		if first.location == nil || first.location.Host != fakeUpstream || again.location == nil || first.location.String() != again.location.String() {
			t.Fatalf("first %v, duplicate %d %s %v", first.location, again.status, again.page, again.location)
		}
		// The next leg still finishes (once).
		if q := toClient(c.callback(b, c.upstreamState(again), "id:alice")); q.Get("code") == "" {
			t.Fatal("the next leg did not finish")
		}
	})
	t.Run("snapshot leg: the same retry page", func(t *testing.T) {
		c := newCore(t, false)
		b := c.browser("desktop")
		first, again := twice(t, c, b, c.upstreamState(c.authorize(b, nil)), "retry")
		retry := regexp.MustCompile(`href="(https://` + fakeUpstream + `[^"]+)"`)
		m1, m2 := retry.FindStringSubmatch(first.body), retry.FindStringSubmatch(again.body)
		if first.page != "fake-retry" || again.page != "fake-retry" || m1 == nil || m2 == nil || m1[1] != m2[1] {
			t.Fatalf("first %s, duplicate %d %s", first.page, again.status, again.page)
		}
	})
	phoneLeg := func(t *testing.T, code string) (answer, answer) {
		c := newCore(t, true)
		desk, phone := c.browser("desktop"), c.browser("phone")
		a := c.authorize(desk, nil)
		var xd xdRequest
		if err := c.srv.getJSON(t.Context(), keyXDRequest+a.location.Query().Get("d"), &xd); err != nil {
			t.Fatal(err)
		}
		state := c.upstreamState(c.get(phone, c.ts.URL+PathQRScan+"?t="+xd.Ticket))
		return twice(t, c, phone, state, code)
	}
	t.Run("phone leg: the same confirm page", func(t *testing.T) {
		first, again := phoneLeg(t, "id:alice")
		csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`)
		if first.page != "qr-confirm" || again.page != "qr-confirm" || csrf.FindString(first.body) != csrf.FindString(again.body) ||
			strings.Join(pickChoices(first.body), ",") != strings.Join(pickChoices(again.body), ",") {
			t.Fatalf("first %s, duplicate %d %s", first.page, again.status, again.page)
		}
	})
	t.Run("phone leg failing: the same failure page", func(t *testing.T) {
		first, again := phoneLeg(t, "fail")
		if first.page != "qr-failed" || again.page != "qr-failed" {
			t.Fatalf("first %s, duplicate %d %s", first.page, again.status, again.page)
		}
	})
}
