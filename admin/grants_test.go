package admin

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wechat-oidc/wechat-oidc/directory"
)

// appCard is the part of a person page that shows one application's
// sessions and refresh token families ("" when there is none).
func appCard(body, clientID string) string {
	start := strings.Index(body, `<div class="card" data-app="`+clientID+`">`)
	if start < 0 {
		return ""
	}
	rest := body[start+1:]
	end := len(rest)
	for _, next := range []string{`<div class="card"`, `<h2>`} {
		if i := strings.Index(rest, next); i >= 0 && i < end {
			end = i
		}
	}
	return rest[:end]
}

// TestAdminGrantsListedPerAppAndRevoked: the person page shows, per
// application (its configured name and id), the sessions that signed in to
// it and its refresh token families, each with a revoke button; revoking a
// family goes through the core, is audited with its application, and a
// family that is not this person's live one is refused.
func TestAdminGrantsListedPerAppAndRevoked(t *testing.T) {
	h := newHarness(t)
	admin := h.person("root", directory.StatusActive, "admins")
	alice := h.person("alice", directory.StatusActive)
	bob := h.person("bob", directory.StatusActive)
	at := h.clock.Now().Add(-time.Hour)
	h.core.sessions[alice.ID] = []SessionInfo{{ID: "sid-a1", Subject: alice.ID, AuthTime: at, Created: at, Clients: []string{"grafana", "gitlab"}}}
	h.core.grants[alice.ID] = []GrantInfo{
		{ID: "fam-g1", ClientID: "grafana", Subject: alice.ID, Scopes: []string{"openid", "offline_access"}, Offline: true,
			SessionID: "sid-a1", Created: at, LastUsed: at, IdleExpires: at.Add(7 * 24 * time.Hour), Expires: at.Add(30 * 24 * time.Hour)},
		{ID: "fam-g2", ClientID: "grafana", Subject: alice.ID, Scopes: []string{"openid", "profile"}, SessionID: "sid-a1",
			Created: at, Expires: at.Add(30 * 24 * time.Hour)},
		{ID: "fam-w1", ClientID: "wiki", Subject: alice.ID, Scopes: []string{"openid"}, Created: at, Expires: at.Add(time.Hour)},
	}
	h.core.grants[bob.ID] = []GrantInfo{{ID: "fam-b1", ClientID: "grafana", Subject: bob.ID}}

	b := h.browser(admin.ID, "en")
	b.signIn()
	p := b.open("/admin/people/" + alice.ID)
	expectPage(t, p, http.StatusOK, "person")
	grafana, gitlab, wiki := appCard(p.body, "grafana"), appCard(p.body, "gitlab"), appCard(p.body, "wiki")
	for name, card := range map[string]string{"grafana": grafana, "gitlab": gitlab, "wiki": wiki} {
		if card == "" {
			t.Fatalf("no card for %s:\n%s", name, cut(p.body, 6000))
		}
	}
	for _, want := range []string{"<strong>Grafana</strong>", `<span class="muted mono">grafana</span>`, `data-session="sid-a1"`,
		`data-grant="fam-g1"`, `data-grant="fam-g2"`, `value="fam-g1"`, "offline_access", "Offline access: stays valid after sign-out.",
		"Ends with its session.", "Ends if unused 2026-03-09 08:00 UTC", "last refreshed —", "Revoke this token"} {
		if !strings.Contains(grafana, want) {
			t.Fatalf("grafana's card lacks %q:\n%s", want, grafana)
		}
	}
	if !strings.Contains(gitlab, `data-session="sid-a1"`) || strings.Contains(gitlab, "data-grant") {
		t.Fatalf("gitlab's card should hold the shared session and no family:\n%s", gitlab)
	}
	if !strings.Contains(wiki, `data-grant="fam-w1"`) || !strings.Contains(wiki, "Not tied to a session.") || strings.Contains(wiki, "data-session") {
		t.Fatalf("wiki's card:\n%s", wiki)
	}
	if gi, li, wi := strings.Index(p.body, grafana), strings.Index(p.body, gitlab), strings.Index(p.body, wiki); !(gi < li && li < wi) {
		t.Fatalf("applications not in name order: grafana %d, gitlab %d, wiki %d", gi, li, wi)
	}
	mustNotContain(t, p, "fam-b1")
	zh := h.browser(admin.ID, "zh-CN")
	zh.signIn()
	mustContain(t, zh.open("/admin/people/"+alice.ID), "撤销此令牌", "离线访问：退出登录后仍然有效。", "刷新令牌")

	for _, family := range []string{"fam-b1", "", "no-such"} {
		p = b.submit("/admin/people/"+alice.ID+"/grants/revoke", url.Values{"family": {family}})
		mustContain(t, p, `data-flash="err.grant.gone"`)
	}
	if len(h.core.grants[bob.ID]) != 1 || len(h.core.endedGrantIDs()) != 0 {
		t.Fatalf("a refused revocation revoked: %v", h.core.endedGrantIDs())
	}
	p = b.submit("/admin/people/"+alice.ID+"/grants/revoke", url.Values{"family": {"fam-g1"}})
	mustContain(t, p, `data-flash="flash.grant"`, `data-grant="fam-g2"`, `data-session="sid-a1"`)
	mustNotContain(t, p, `data-grant="fam-g1"`)
	if g := h.core.endedGrantIDs(); !slices.Equal(g, []string{alice.ID + "/fam-g1"}) {
		t.Fatalf("EndGrant calls: %v", g)
	}
	evs := h.events(directory.ActionSessionRevoke)
	if len(evs) != 1 || evs[0].PersonID != alice.ID || evs[0].Actor != admin.ID || evs[0].ClientID != "grafana" ||
		!strings.Contains(evs[0].Reason, "refresh token family") || !strings.Contains(evs[0].Reason, "offline_access") || evs[0].Ref == "" {
		t.Fatalf("revocation audit rows: %+v", evs)
	}
	// Twice: already gone, no second row.
	p = b.submit("/admin/people/"+alice.ID+"/grants/revoke", url.Values{"family": {"fam-g1"}})
	mustContain(t, p, `data-flash="err.grant.gone"`)
	if evs := h.events(directory.ActionSessionRevoke); len(evs) != 1 {
		t.Fatalf("a refused revocation was audited: %+v", evs)
	}
}

// TestAdminGrantRevokeCSRFRefused: the revoke POST without the session's
// CSRF token, with a wrong one, or from another origin is refused with 403
// and revokes nothing.
func TestAdminGrantRevokeCSRFRefused(t *testing.T) {
	h := newHarness(t)
	admin := h.person("root", directory.StatusActive, "admins")
	alice := h.person("alice", directory.StatusActive)
	h.core.grants[alice.ID] = []GrantInfo{{ID: "fam-1", ClientID: "grafana", Subject: alice.ID}}
	b := h.browser(admin.ID, "en")
	b.signIn()
	own := h.sessionCSRF(b)
	path := "/admin/people/" + alice.ID + "/grants/revoke"
	for name, tc := range map[string]struct {
		form   url.Values
		origin string
	}{
		"no token":                {url.Values{"family": {"fam-1"}}, h.issuer},
		"wrong token":             {url.Values{"family": {"fam-1"}, "csrf": {"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}, h.issuer},
		"own token, other origin": {url.Values{"family": {"fam-1"}, "csrf": {own}}, "https://evil.example"},
	} {
		b.origin = tc.origin
		expectPage(t, b.do(http.MethodPost, path, tc.form), http.StatusForbidden, "csrf")
		if g := h.core.endedGrantIDs(); len(g) != 0 {
			t.Fatalf("%s: the refused POST revoked %v", name, g)
		}
	}
	b.origin = h.issuer
	if p := b.do(http.MethodPost, path, url.Values{"family": {"fam-1"}, "csrf": {own}}); p.status != http.StatusSeeOther {
		t.Fatalf("POST with the session's token: %d %s", p.status, p.dataPage())
	}
	if g := h.core.endedGrantIDs(); !slices.Equal(g, []string{alice.ID + "/fam-1"}) {
		t.Fatalf("the valid POST revoked %v", g)
	}
}

// TestAdminPersonPageWhenGrantsCannotBeRead: the refresh token families
// failing to load does not take the page down: it says so, and the
// sessions are still listed with their buttons.
func TestAdminPersonPageWhenGrantsCannotBeRead(t *testing.T) {
	h := newHarness(t)
	admin := h.person("root", directory.StatusActive, "admins")
	alice := h.person("alice", directory.StatusActive)
	h.core.sessions[alice.ID] = []SessionInfo{{ID: "sid-a1", Subject: alice.ID, Clients: []string{"grafana"}}}
	h.core.failGrants = errors.New("store down")
	b := h.browser(admin.ID, "en")
	b.signIn()
	p := b.open("/admin/people/" + alice.ID)
	expectPage(t, p, http.StatusOK, "person")
	mustContain(t, p, "data-access-error", "Refresh tokens cannot be read right now.", `data-session="sid-a1"`, `data-action="revoke-session"`)
	p = b.submit("/admin/people/"+alice.ID+"/grants/revoke", url.Values{"family": {"fam-1"}})
	mustContain(t, p, `data-flash="err.unavailable"`)
}
