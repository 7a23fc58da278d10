package admin

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/wechat-oidc/wechat-oidc/directory"
)

// consoleRoutes are the registered routes under /admin, with their
// parameters filled in (every :param with value), each once per method to
// try. Echo's group not-found routes (RouteNotFound, "/admin" and
// "/admin/*") are tried with GET and POST.
func consoleRoutes(t *testing.T, e *echo.Echo, value string) (routes [][2]string, public []string) {
	t.Helper()
	seen := map[[2]string]bool{}
	for _, r := range e.Routes() {
		if r.Path != "/admin" && !strings.HasPrefix(r.Path, "/admin/") {
			continue
		}
		path := r.Path
		var parts []string
		for _, seg := range strings.Split(path, "/") {
			switch {
			case strings.HasPrefix(seg, ":"):
				seg = value
			case seg == "*":
				seg = "no-such-page"
			}
			parts = append(parts, seg)
		}
		path = strings.Join(parts, "/")
		if r.Path == "/admin"+PathSignIn || r.Path == "/admin"+PathCallback {
			public = append(public, r.Path)
			continue
		}
		methods := []string{r.Method}
		if r.Method == echo.RouteNotFound {
			methods = []string{http.MethodGet, http.MethodPost}
		}
		for _, m := range methods {
			k := [2]string{m, path}
			if !seen[k] {
				seen[k] = true
				routes = append(routes, k)
			}
		}
	}
	return routes, public
}

// TestAdminEveryRouteRefusesAnonymousAndNonAdmins enumerates every route the
// console registered and proves, route by route, that an anonymous browser
// is sent to sign in (GET) or refused (any other method), and that a
// signed-in person outside the admin group gets 403 — even with a valid
// CSRF token of their own session — and that none of those requests
// changed anything. Only sign-in and its callback are public.
func TestAdminEveryRouteRefusesAnonymousAndNonAdmins(t *testing.T) {
	h := newHarness(t)
	target := h.person("target", directory.StatusActive, "dev")
	pending := h.person("waiting", directory.StatusPending)
	h.core.sessions[target.ID] = []SessionInfo{{ID: "sid-target", Subject: target.ID, Clients: []string{"grafana"}}}
	h.core.grants[target.ID] = []GrantInfo{{ID: "fam-target", ClientID: "grafana", Subject: target.ID}}

	routes, public := consoleRoutes(t, h.echo, target.ID)
	slices.Sort(public)
	if !slices.Equal(public, []string{"/admin" + PathCallback, "/admin" + PathSignIn}) {
		t.Fatalf("public console routes = %v, want only sign-in and callback", public)
	}
	// The enumeration must see the dangerous routes (a broken enumeration
	// would prove nothing).
	for _, want := range [][2]string{
		{http.MethodPost, "/admin/people/" + target.ID + "/disable"},
		{http.MethodPost, "/admin/people/" + target.ID + "/remove"},
		{http.MethodPost, "/admin/people/" + target.ID + "/groups"},
		{http.MethodPost, "/admin/people/" + target.ID + "/sessions/revoke"},
		{http.MethodPost, "/admin/people/" + target.ID + "/grants/revoke"},
		{http.MethodPost, "/admin/pending/" + target.ID + "/approve"},
		{http.MethodPost, "/admin/invitations"},
		{http.MethodGet, "/admin/audit"},
		{http.MethodGet, "/admin/no-such-page"},
	} {
		if !slices.Contains(routes, want) {
			t.Fatalf("route %v not enumerated; got %v", want, routes)
		}
	}
	if len(routes) < 20 {
		t.Fatalf("only %d routes enumerated: %v", len(routes), routes)
	}

	form := func(csrf string) url.Values {
		return url.Values{"csrf": {csrf}, "username": {"hacked"}, "groups": {"admins"}, "confirm": {"yes"},
			"sid": {"sid-target"}, "family": {"fam-target"}, "days": {"7"}, "name": {"x"}}
	}
	anon := h.browser("", "zh-CN")
	for _, r := range routes {
		var p page
		if r[0] == http.MethodGet {
			p = anon.do(r[0], r[1], nil)
			if p.status != http.StatusFound || !strings.HasPrefix(p.location, "/admin"+PathSignIn+"?next=") {
				t.Errorf("anonymous %s %s: %d location %q, want a redirect to sign-in", r[0], r[1], p.status, p.location)
			}
			continue
		}
		p = anon.do(r[0], r[1], form("guess"))
		if p.status != http.StatusForbidden || p.dataPage() != "signed-out" {
			t.Errorf("anonymous %s %s: %d %q, want 403 signed-out", r[0], r[1], p.status, p.dataPage())
		}
	}

	mallory := h.browser(h.person("mallory", directory.StatusActive, "dev", "ops").ID, "en")
	p := mallory.open("/admin/pending")
	expectPage(t, p, http.StatusForbidden, "forbidden")
	token := h.sessionCSRF(mallory)
	for _, r := range routes {
		var p page
		if r[0] == http.MethodGet {
			p = mallory.do(r[0], r[1], nil)
		} else {
			p = mallory.do(r[0], r[1], form(token))
		}
		if p.status != http.StatusForbidden || p.dataPage() != "forbidden" {
			t.Errorf("non-admin %s %s: %d %q, want 403 forbidden", r[0], r[1], p.status, p.dataPage())
		}
	}

	if got := h.get(target.ID); got.Status != directory.StatusActive || !slices.Equal(got.Groups, []string{"dev"}) {
		t.Errorf("target changed by refused requests: %+v", got)
	}
	if got := h.get(pending.ID); got.Status != directory.StatusPending {
		t.Errorf("pending person changed by refused requests: %+v", got)
	}
	if ended := h.core.endedPeople(); len(ended) > 0 {
		t.Errorf("refused requests ended access of %v", ended)
	}
	if s := h.core.endedSIDs(); len(s) > 0 {
		t.Errorf("refused requests ended sessions %v", s)
	}
	if g := h.core.endedGrantIDs(); len(g) > 0 {
		t.Errorf("refused requests revoked refresh token families %v", g)
	}
	invs, err := h.dir.Invitations().List(t.Context(), directory.InvitationQuery{})
	if err != nil || len(invs) > 0 {
		t.Errorf("refused requests created invitations %v (%v)", invs, err)
	}
	for _, a := range auditActions {
		if a == directory.ActionAdminSignIn {
			continue
		}
		if evs := h.events(a); len(evs) > 0 {
			t.Errorf("refused requests wrote %s rows: %+v", a, evs)
		}
	}
	if evs := h.events(directory.ActionAdminSignIn); len(evs) != 1 || evs[0].Result != "denied" || evs[0].PersonID != mallory.subject {
		t.Errorf("admin.sign_in rows = %+v, want mallory's one denied row", evs)
	}
}

func (h *harness) mustUsername(u string) directory.Person {
	h.t.Helper()
	p, err := h.dir.People().GetByUsername(h.t.Context(), u)
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

// sessionCSRF is the CSRF token of the browser's console session, read
// from the store (a non-admin never sees a form that carries it).
func (h *harness) sessionCSRF(b *browser) string {
	h.t.Helper()
	u, _ := url.Parse(h.issuer + "/admin/")
	for _, ck := range b.client.Jar.Cookies(u) {
		if ck.Name == sessionCookie {
			ec := h.echo.NewContext(&http.Request{Header: http.Header{"Cookie": {ck.String()}}}, nil)
			_, s, err := h.console.loadSession(ec, false)
			if err != nil || s == nil {
				h.t.Fatalf("no console session for the cookie: %v", err)
			}
			return s.CSRF
		}
	}
	h.t.Fatal("the browser has no console session cookie")
	return ""
}

// TestAdminCSRFRefused: a POST without the session's CSRF token, with
// another session's token, or from another origin changes nothing and is
// answered 403; with it, the same POST works.
func TestAdminCSRFRefused(t *testing.T) {
	h := newHarness(t)
	admin := h.person("root", directory.StatusActive, "admins")
	other := h.person("second", directory.StatusActive, "admins")
	waiting := h.person("newbie", directory.StatusPending)

	b := h.browser(admin.ID, "zh-CN")
	b.signIn()
	b2 := h.browser(other.ID, "zh-CN")
	b2.signIn()
	own := h.sessionCSRF(b)
	path := "/admin/pending/" + waiting.ID + "/approve"
	approve := func(csrf string) url.Values {
		return url.Values{"username": {"newbie"}, "groups": {"dev"}, "csrf": {csrf}}
	}
	for name, tc := range map[string]struct {
		form   url.Values
		origin string
	}{
		"no token":                {url.Values{"username": {"newbie"}, "groups": {"dev"}}, h.issuer},
		"empty token":             {approve(""), h.issuer},
		"wrong token":             {approve("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), h.issuer},
		"another session's token": {approve(h.sessionCSRF(b2)), h.issuer},
		"own token, other origin": {approve(own), "https://evil.example"},
		"own token, null origin":  {approve(own), "null"},
	} {
		b.origin = tc.origin
		p := b.do(http.MethodPost, path, tc.form)
		expectPage(t, p, http.StatusForbidden, "csrf")
		if got := h.get(waiting.ID); got.Status != directory.StatusPending {
			t.Fatalf("%s: the refused POST approved the person: %+v", name, got)
		}
	}
	if evs := h.events(directory.ActionPersonApprove); len(evs) != 0 {
		t.Fatalf("refused POSTs wrote audit rows: %+v", evs)
	}
	// A form that is not urlencoded (multipart) carries no token we read.
	b.origin = h.issuer
	req, _ := http.NewRequest(http.MethodPost, h.issuer+path, strings.NewReader("--x\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n"+own+"\r\n--x--\r\n"))
	req.Header.Set("Content-Type", "multipart/form-data; boundary=x")
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("multipart POST: %d, want 403", resp.StatusCode)
	}

	// Without an Origin header (some browsers omit it), the token decides.
	b.origin = ""
	p := b.do(http.MethodPost, path, approve(own))
	if p.status != http.StatusSeeOther {
		t.Fatalf("POST with the session's token: %d %s", p.status, p.dataPage())
	}
	if got := h.get(waiting.ID); got.Status != directory.StatusActive {
		t.Fatalf("the valid POST did not approve: %+v", got)
	}
}

// TestAdminRemovedFromAdminGroupLosesAccessAtOnce: the guard reads the
// person's groups on every request, so removal from the admin group (by
// anyone: another admin, the CLI) refuses the very next request.
func TestAdminRemovedFromAdminGroupLosesAccessAtOnce(t *testing.T) {
	h := newHarness(t)
	admin := h.person("root", directory.StatusActive, "admins", "dev")
	b := h.browser(admin.ID, "en")
	expectPage(t, b.signIn(), http.StatusOK, "pending")
	expectPage(t, b.open("/admin/people"), http.StatusOK, "people")
	groups := []string{"dev"}
	if _, err := h.dir.People().Update(t.Context(), admin.ID, directory.PersonUpdate{Groups: &groups}); err != nil {
		t.Fatal(err)
	}
	expectPage(t, b.open("/admin/people"), http.StatusForbidden, "forbidden")
	b.csrf = h.sessionCSRF(b)
	p := b.do(http.MethodPost, "/admin/invitations", url.Values{"csrf": {b.csrf}, "username": {"x"}, "days": {"7"}})
	expectPage(t, p, http.StatusForbidden, "forbidden")

	// Disabled while in the group: refused too.
	groups = []string{"admins"}
	st := directory.StatusDisabled
	if _, err := h.dir.People().Update(t.Context(), admin.ID, directory.PersonUpdate{Groups: &groups, Status: &st}); err != nil {
		t.Fatal(err)
	}
	expectPage(t, b.open("/admin/people"), http.StatusForbidden, "forbidden")
	// Removed from the directory: refused.
	if err := h.dir.People().Delete(t.Context(), admin.ID); err != nil {
		t.Fatal(err)
	}
	expectPage(t, b.open("/admin/people"), http.StatusForbidden, "forbidden")
}
