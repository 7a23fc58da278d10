package admin

import (
	"context"
	"encoding/base64"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wechat-oidc/wechat-oidc/directory"
	"github.com/wechat-oidc/wechat-oidc/internal/qrtest"
)

// pendingPerson is someone whose first sign-in made them pending, as the
// login core records it: a pending person with a bound openid, the profile
// WeChat gave, and the sign_in row whose reference their page showed.
func (h *harness) pendingPerson(username, nickname, openid, ref string) directory.Person {
	h.t.Helper()
	ctx := context.Background()
	p := h.person(username, directory.StatusPending)
	id := directory.Identity{Provider: directory.ProviderWeChat, AppID: "wxoa", OpenID: openid}
	if err := h.dir.People().BindIdentity(ctx, p.ID, id); err != nil {
		h.t.Fatal(err)
	}
	if err := h.dir.Profiles().Remember(ctx, directory.Profile{Provider: directory.ProviderWeChat, AppID: "wxoa", OpenID: openid,
		Nickname: nickname, AvatarURL: "http://thirdwx.qlogo.cn/mmopen/" + openid + "/132"}); err != nil {
		h.t.Fatal(err)
	}
	if err := h.dir.Audit().Append(ctx, directory.Event{Action: directory.ActionSignIn, PersonID: p.ID, Result: "pending", Ref: ref}); err != nil {
		h.t.Fatal(err)
	}
	return p
}

func mustContain(t *testing.T, p page, texts ...string) {
	t.Helper()
	for _, s := range texts {
		if !strings.Contains(p.body, s) {
			t.Fatalf("page %q lacks %q:\n%s", p.dataPage(), s, cut(p.body, 4000))
		}
	}
}

func mustNotContain(t *testing.T, p page, texts ...string) {
	t.Helper()
	for _, s := range texts {
		if strings.Contains(p.body, s) {
			t.Fatalf("page %q has %q", p.dataPage(), s)
		}
	}
}

// TestAdminSignInRunsTheCodeFlowWithPKCE: the console's sign-in is a code
// flow with PKCE S256, state and nonce at the provider's authorization
// endpoint, and ends with an admin.sign_in audit row and a path-scoped
// session cookie.
func TestAdminSignInRunsTheCodeFlowWithPKCE(t *testing.T) {
	h := newHarness(t)
	admin := h.person("root", directory.StatusActive, "admins")
	b := h.browser(admin.ID, "zh-CN")
	p := b.do(http.MethodGet, "/admin/people?q=x", nil)
	if p.status != http.StatusFound || p.location != "/admin/signin?next="+url.QueryEscape("/admin/people?q=x") {
		t.Fatalf("anonymous: %d %q", p.status, p.location)
	}
	p = b.do(http.MethodGet, p.location, nil)
	au, err := url.Parse(p.location)
	if err != nil || p.status != http.StatusFound || au.Scheme+"://"+au.Host+au.Path != h.issuer+"/authorize" {
		t.Fatalf("sign-in: %d %q", p.status, p.location)
	}
	q := au.Query()
	for k, want := range map[string]string{"response_type": "code", "client_id": ClientID, "redirect_uri": h.issuer + "/admin/callback",
		"code_challenge_method": "S256", "scope": "openid profile", "ui_locales": "zh-CN"} {
		if q.Get(k) != want {
			t.Errorf("authorize %s = %q, want %q", k, q.Get(k), want)
		}
	}
	for _, k := range []string{"state", "nonce", "code_challenge"} {
		if len(q.Get(k)) < 43 {
			t.Errorf("authorize %s = %q: want 256 random bits", k, q.Get(k))
		}
	}
	if q.Has("max_age") || q.Has("prompt") {
		t.Errorf("a plain sign-in asks for max_age/prompt: %v", q)
	}
	var cookie *http.Cookie
	for _, c := range (&http.Response{Header: p.header}).Cookies() {
		if c.Name == signinCookie {
			cookie = c
		}
	}
	if cookie == nil || cookie.Path != "/admin" || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.Value != q.Get("state") {
		t.Fatalf("sign-in binding cookie = %+v", cookie)
	}
	p = b.do(http.MethodGet, p.location, nil) // the fake authorization endpoint
	if !strings.HasPrefix(p.location, h.issuer+"/admin/callback?") {
		t.Fatalf("authorize answered %d %q", p.status, p.location)
	}
	p = b.do(http.MethodGet, p.location, nil)
	if p.status != http.StatusSeeOther || p.location != "/admin/people?q=x" {
		t.Fatalf("callback: %d %q\n%s", p.status, p.location, cut(p.body, 2000))
	}
	var sess *http.Cookie
	for _, c := range (&http.Response{Header: p.header}).Cookies() {
		if c.Name == sessionCookie {
			sess = c
		}
	}
	if sess == nil || sess.Path != "/admin" || !sess.HttpOnly || sess.SameSite != http.SameSiteLaxMode || sess.Secure {
		t.Fatalf("session cookie = %+v (http issuer: not Secure)", sess)
	}
	expectPage(t, b.follow(p), http.StatusOK, "people")
	evs := h.events(directory.ActionAdminSignIn)
	if len(evs) != 1 || evs[0].Actor != admin.ID || evs[0].PersonID != admin.ID || evs[0].Result != "ok" || evs[0].ClientID != ClientID || evs[0].Ref == "" {
		t.Fatalf("admin.sign_in rows: %+v", evs)
	}
}

// TestAdminCallbackRefusesForeignOrReplayedState: the callback belongs to
// the browser that started the sign-in, once.
func TestAdminCallbackRefusesForeignOrReplayedState(t *testing.T) {
	h := newHarness(t)
	admin := h.person("root", directory.StatusActive, "admins")
	attacker := h.browser(admin.ID, "en")
	p := attacker.do(http.MethodGet, "/admin/signin", nil)
	p = attacker.do(http.MethodGet, p.location, nil)
	callback := p.location // carries a valid code and state for the attacker's browser

	victim := h.browser(admin.ID, "en")
	expectPage(t, victim.do(http.MethodGet, callback, nil), http.StatusBadRequest, "signin-expired")

	p = attacker.do(http.MethodGet, callback, nil)
	if p.status != http.StatusSeeOther {
		t.Fatalf("the right browser's callback: %d %s", p.status, p.dataPage())
	}
	// A replay (the state is single use; the cookie is gone too).
	expectPage(t, attacker.do(http.MethodGet, callback, nil), http.StatusBadRequest, "signin-expired")

	// An authorization response naming another issuer (RFC 9207) is
	// refused, and its state is spent.
	p = attacker.do(http.MethodGet, "/admin/signin", nil)
	p = attacker.do(http.MethodGet, p.location, nil)
	expectPage(t, attacker.do(http.MethodGet, p.location+"&iss="+url.QueryEscape("https://evil.example"), nil), http.StatusBadGateway, "signin-failed")
	expectPage(t, attacker.do(http.MethodGet, p.location, nil), http.StatusBadRequest, "signin-expired")
}

// TestAdminCallbackAccessDenied: the provider's access_denied (say, the
// lead restricts the console client to the admin group) is a 403 page.
func TestAdminCallbackAccessDenied(t *testing.T) {
	h := newHarness(t)
	h.denyAll = true
	b := h.browser(h.person("someone", directory.StatusActive).ID, "en")
	expectPage(t, b.open("/admin/pending"), http.StatusForbidden, "signin-denied")
}

// TestAdminApprove: a pending person is listed with WeChat's nickname and
// avatar, their first sign-in and the reference their waiting page
// showed; approving with a username and groups makes them active and
// writes person.approve with the administrator as actor.
func TestAdminApprove(t *testing.T) {
	h := newHarness(t)
	admin := h.person("root", directory.StatusActive, "admins")
	w := h.pendingPerson("wx-4f2a", "小王", "o-wang", "R-7F3KQ9")
	b := h.browser(admin.ID, "zh-CN")
	p := b.signIn()
	expectPage(t, p, http.StatusOK, "pending")
	mustContain(t, p, `data-person="`+w.ID+`"`, "小王", "https://thirdwx.qlogo.cn/mmopen/o-wang/132", "R-7F3KQ9",
		"2026-03-02 09:00", "wechat openid o-wang (app wxoa)", `value="wx-4f2a"`)

	p = b.submit("/admin/pending/"+w.ID+"/approve", url.Values{"username": {"Wang.Wei"}, "groups": {"dev，ops Dev"}})
	expectPage(t, p, http.StatusOK, "pending")
	mustContain(t, p, `data-flash="flash.approved"`, "已批准 @wang.wei")
	mustNotContain(t, p, `data-person="`+w.ID+`"`)
	got := h.get(w.ID)
	if got.Status != directory.StatusActive || got.Username != "wang.wei" || !slices.Equal(got.Groups, []string{"dev", "ops"}) {
		t.Fatalf("approved person: %+v", got)
	}
	evs := h.events(directory.ActionPersonApprove)
	if len(evs) != 1 || evs[0].Actor != admin.ID || evs[0].PersonID != w.ID || evs[0].Result != "ok" || !strings.Contains(evs[0].Reason, "dev ops") {
		t.Fatalf("person.approve rows: %+v", evs)
	}
}

// TestAdminApproveBadInputChangesNothing: an invalid username, a taken one,
// or a bad group name is refused with a message naming the field.
func TestAdminApproveBadInputChangesNothing(t *testing.T) {
	h := newHarness(t)
	admin := h.person("root", directory.StatusActive, "admins")
	w := h.pendingPerson("wx-1", "小李", "o-li", "R-22222")
	b := h.browser(admin.ID, "en")
	b.signIn()
	for _, tc := range []struct{ username, groups, want string }{
		{"-bad", "dev", "username: must start with a letter or digit"},
		{"root", "dev", "The username root is taken"},
		{"li", "dev/ops", "groups: group"},
		{"", "", "username: required"},
	} {
		p := b.submit("/admin/pending/"+w.ID+"/approve", url.Values{"username": {tc.username}, "groups": {tc.groups}})
		expectPage(t, p, http.StatusOK, "pending")
		mustContain(t, p, `class="flash error"`, tc.want)
		if got := h.get(w.ID); got.Status != directory.StatusPending || got.Username != "wx-1" {
			t.Fatalf("refused approval changed the person: %+v", got)
		}
	}
	if evs := h.events(directory.ActionPersonApprove); len(evs) != 0 {
		t.Fatalf("refused approvals wrote rows: %+v", evs)
	}
	// Approving twice: the second says the person is no longer pending.
	b.submit("/admin/pending/"+w.ID+"/approve", url.Values{"username": {"li"}})
	p := b.submit("/admin/pending/"+w.ID+"/approve", url.Values{"username": {"li2"}})
	mustContain(t, p, `data-flash="err.notpending"`)
	if got := h.get(w.ID); got.Username != "li" {
		t.Fatalf("second approval renamed: %+v", got)
	}
}

// TestAdminDeny removes a pending request and writes person.deny; an
// active person cannot be "denied" (removed) through it.
func TestAdminDeny(t *testing.T) {
	h := newHarness(t)
	admin := h.person("root", directory.StatusActive, "admins")
	w := h.pendingPerson("wx-2", "陌生人", "o-x", "R-33333")
	active := h.person("alice", directory.StatusActive)
	b := h.browser(admin.ID, "en")
	b.signIn()
	p := b.submit("/admin/pending/"+w.ID+"/deny", nil)
	expectPage(t, p, http.StatusOK, "pending")
	mustContain(t, p, `data-flash="flash.denied"`, `data-empty`)
	if _, err := h.dir.People().Get(t.Context(), w.ID); err == nil {
		t.Fatal("denied person still exists")
	}
	evs := h.events(directory.ActionPersonDeny)
	if len(evs) != 1 || evs[0].Actor != admin.ID || evs[0].PersonID != w.ID {
		t.Fatalf("person.deny rows: %+v", evs)
	}
	p = b.submit("/admin/pending/"+active.ID+"/deny", nil)
	mustContain(t, p, `data-flash="err.notpending"`)
	h.get(active.ID)
}

var qrSrc = regexp.MustCompile(`src="data:image/png;base64,([^"]+)"`)

// TestAdminInvitationCreateAndRevoke: the created invitation's link is
// {issuer}/invite/{token}, the QR code decodes to it, the token finds the
// invitation; revoking makes it unusable; both are audited.
func TestAdminInvitationCreateAndRevoke(t *testing.T) {
	h := newHarness(t)
	admin := h.person("root", directory.StatusActive, "admins")
	b := h.browser(admin.ID, "zh-CN")
	b.signIn()
	expectPage(t, b.open("/admin/invitations"), http.StatusOK, "invitations")
	p := b.submit("/admin/invitations", url.Values{"username": {"Carol"}, "name": {"卡罗尔"}, "email": {"carol@example.com"},
		"groups": {"dev"}, "client_id": {"grafana"}, "days": {"3"}})
	expectPage(t, p, http.StatusOK, "invitation-created")
	link := regexp.MustCompile(`data-link>([^<]+)<`).FindStringSubmatch(p.body)
	if link == nil || !strings.HasPrefix(link[1], h.issuer+"/invite/") {
		t.Fatalf("no invitation link on the page:\n%s", cut(p.body, 3000))
	}
	m := qrSrc.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatal("no QR code on the page")
	}
	png, err := base64.StdEncoding.DecodeString(html.UnescapeString(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	if text, err := qrtest.DecodePNG(png); err != nil || text != link[1] {
		t.Fatalf("QR code decodes to %q (%v), want %q", text, err, link[1])
	}
	token := strings.TrimPrefix(link[1], h.issuer+"/invite/")
	inv, err := h.dir.Invitations().Get(t.Context(), token)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Username != "carol" || inv.DisplayName != "卡罗尔" || inv.Email != "carol@example.com" || !slices.Equal(inv.Groups, []string{"dev"}) ||
		inv.ClientID != "grafana" || inv.CreatedBy != admin.ID || !inv.ExpiresAt.Equal(h.clock.Now().Add(72*time.Hour)) || inv.State != directory.InvitationPending {
		t.Fatalf("invitation: %+v", inv)
	}
	if evs := h.events(directory.ActionInvitationCreate); len(evs) != 1 || evs[0].Actor != admin.ID || !strings.Contains(evs[0].Reason, inv.ID) ||
		strings.Contains(evs[0].Reason, token) {
		t.Fatalf("invitation.create rows: %+v", evs)
	}

	p = b.open("/admin/invitations")
	mustContain(t, p, `data-invitation="`+inv.ID+`" data-state="pending"`, "@carol")
	mustNotContain(t, p, token)
	p = b.submit("/admin/invitations/"+inv.ID+"/revoke", nil)
	expectPage(t, p, http.StatusOK, "invitations")
	mustContain(t, p, `data-flash="flash.inv.revoked"`, `data-invitation="`+inv.ID+`" data-state="revoked"`)
	if inv, err = h.dir.Invitations().Get(t.Context(), token); err != nil || inv.State != directory.InvitationRevoked {
		t.Fatalf("after revoke: %+v %v", inv, err)
	}
	if evs := h.events(directory.ActionInvitationRevoke); len(evs) != 1 || evs[0].Actor != admin.ID || !strings.Contains(evs[0].Reason, inv.ID) {
		t.Fatalf("invitation.revoke rows: %+v", evs)
	}
}

// TestAdminInvitationBadInput: refused forms keep what was typed and say
// why; nothing is created.
func TestAdminInvitationBadInput(t *testing.T) {
	h := newHarness(t)
	b := h.browser(h.person("root", directory.StatusActive, "admins").ID, "en")
	b.signIn()
	for _, tc := range []struct {
		form url.Values
		want string
	}{
		{url.Values{"username": {"carol"}, "days": {"91"}}, "Valid days must be 1 to 90"},
		{url.Values{"username": {"carol"}, "days": {"x"}}, "Valid days must be 1 to 90"},
		{url.Values{"username": {"carol"}, "days": {"7"}, "client_id": {"evil"}}, "Unknown application"},
		{url.Values{"username": {"carol"}, "days": {"7"}, "email": {"not an email"}}, "email: must be a plain address"},
		{url.Values{"username": {"c a"}, "days": {"7"}}, "username: only a-z"},
	} {
		p := b.submit("/admin/invitations", tc.form)
		expectPage(t, p, http.StatusUnprocessableEntity, "invitations")
		mustContain(t, p, tc.want, `value="`+tc.form.Get("username")+`"`)
	}
	if invs, err := h.dir.Invitations().List(t.Context(), directory.InvitationQuery{}); err != nil || len(invs) != 0 {
		t.Fatalf("refused forms created %v (%v)", invs, err)
	}
}

// reauthenticate follows the re-authentication page's button through a
// fresh sign-in back to where it leads.
func (b *browser) reauthenticate(t *testing.T, p page) page {
	t.Helper()
	expectPage(t, p, http.StatusOK, "reauth")
	m := regexp.MustCompile(`href="([^"]+)" data-action="reauth"`).FindStringSubmatch(p.body)
	if m == nil {
		t.Fatal("no re-authentication button")
	}
	return b.open(strings.ReplaceAll(m[1], "&amp;", "&"))
}

// TestAdminDisableRequiresRecentSignIn: with a sign-in older than ten
// minutes, disabling leads to re-authentication (max_age=600) and changes
// nothing; after it, disabling writes the directory change and the
// person.disable row and calls the core's EndPersonAccess.
func TestAdminDisableRequiresRecentSignIn(t *testing.T) {
	h := newHarness(t)
	admin := h.person("root", directory.StatusActive, "admins")
	alice := h.person("alice", directory.StatusActive, "dev")
	b := h.browser(admin.ID, "en")
	b.signIn()
	h.clock.advance(11 * time.Minute)
	expectPage(t, b.open("/admin/people/"+alice.ID), http.StatusOK, "person")

	p := b.do(http.MethodPost, "/admin/people/"+alice.ID+"/disable", url.Values{"csrf": {b.csrf}})
	if p.status != http.StatusSeeOther || p.location != "/admin/reauth?next="+url.QueryEscape("/admin/people/"+alice.ID) {
		t.Fatalf("stale disable: %d %q", p.status, p.location)
	}
	if got := h.get(alice.ID); got.Status != directory.StatusActive || len(h.core.endedPeople()) != 0 || len(h.events(directory.ActionPersonDisable)) != 0 {
		t.Fatalf("a stale sign-in disabled: %+v, ended %v", got, h.core.endedPeople())
	}
	p = b.reauthenticate(t, b.follow(p))
	if q := h.lastAuthorize(); q.Get("max_age") != "600" {
		t.Fatalf("re-authentication asked max_age=%q, want 600", q.Get("max_age"))
	}
	expectPage(t, p, http.StatusOK, "person")
	if evs := h.events(directory.ActionAdminSignIn); len(evs) != 2 || !strings.Contains(evs[0].Reason, "re-authentication") {
		t.Fatalf("admin.sign_in rows: %+v", evs)
	}

	p = b.submit("/admin/people/"+alice.ID+"/disable", nil)
	expectPage(t, p, http.StatusOK, "person")
	mustContain(t, p, `data-flash="flash.disabled"`, `data-status="disabled"`)
	if got := h.get(alice.ID); got.Status != directory.StatusDisabled {
		t.Fatalf("not disabled: %+v", got)
	}
	if ended := h.core.endedPeople(); !slices.Equal(ended, []string{alice.ID}) {
		t.Fatalf("EndPersonAccess calls: %v", ended)
	}
	evs := h.events(directory.ActionPersonDisable)
	if len(evs) != 1 || evs[0].Actor != admin.ID || evs[0].PersonID != alice.ID || !directory.Revoking(evs[0].Action) {
		t.Fatalf("person.disable rows: %+v", evs)
	}

	// Still fresh for ten minutes; then stale again.
	h.clock.advance(9 * time.Minute)
	p = b.submit("/admin/people/"+alice.ID+"/enable", nil)
	mustContain(t, p, `data-flash="flash.enabled"`)
	h.clock.advance(2 * time.Minute)
	p = b.do(http.MethodPost, "/admin/people/"+alice.ID+"/disable", url.Values{"csrf": {b.csrf}})
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.location, "/admin/reauth") {
		t.Fatalf("disable 11 minutes after sign-in: %d %q", p.status, p.location)
	}
}

// TestAdminReauthRefusesStaleAuthTime: a provider that answers max_age
// with an old auth_time does not make the console think the sign-in is
// fresh (OpenID Connect Core 1.0 §3.1.2.1: the RP checks auth_time).
func TestAdminReauthRefusesStaleAuthTime(t *testing.T) {
	h := newHarness(t)
	admin := h.person("root", directory.StatusActive, "admins")
	alice := h.person("alice", directory.StatusActive)
	b := h.browser(admin.ID, "en")
	b.signIn()
	h.clock.advance(11 * time.Minute)
	h.ignoreMaxAge = true
	p := b.follow(b.do(http.MethodGet, "/admin/signin?reauth=1&next=/admin/people/"+alice.ID, nil))
	expectPage(t, p, http.StatusBadGateway, "signin-failed")
	mustContain(t, p, "data-ref")
	expectPage(t, b.open("/admin/people/"+alice.ID), http.StatusOK, "person")
	p = b.do(http.MethodPost, "/admin/people/"+alice.ID+"/disable", url.Values{"csrf": {b.csrf}})
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.location, "/admin/reauth") {
		t.Fatalf("disable after a refused re-authentication: %d %q", p.status, p.location)
	}
	if h.get(alice.ID).Status != directory.StatusActive {
		t.Fatal("disabled without a fresh sign-in")
	}
}

// TestAdminAdminGroupChangesNeedRecentSignIn: granting or taking away the
// admin group (by groups, approval or invitation) needs a fresh sign-in;
// other group changes do not.
func TestAdminAdminGroupChangesNeedRecentSignIn(t *testing.T) {
	h := newHarness(t)
	admin := h.person("root", directory.StatusActive, "admins")
	bob := h.person("bob", directory.StatusActive, "dev")
	other := h.person("other", directory.StatusActive, "admins")
	w := h.pendingPerson("wx-9", "新人", "o-new", "R-44444")
	b := h.browser(admin.ID, "en")
	b.signIn()
	h.clock.advance(15 * time.Minute)
	b.open("/admin/people/" + bob.ID)

	p := b.submit("/admin/people/"+bob.ID+"/groups", url.Values{"groups": {"dev ops"}})
	mustContain(t, p, `data-flash="flash.groups"`)
	if g := h.get(bob.ID).Groups; !slices.Equal(g, []string{"dev", "ops"}) {
		t.Fatalf("groups = %v", g)
	}
	if evs := h.events(directory.ActionPersonGroups); len(evs) != 1 || evs[0].Reason != "groups: dev → dev ops" || evs[0].Actor != admin.ID {
		t.Fatalf("person.groups rows: %+v", evs)
	}
	for _, tc := range []struct {
		path string
		form url.Values
	}{
		{"/admin/people/" + bob.ID + "/groups", url.Values{"groups": {"dev admins"}}},
		{"/admin/people/" + other.ID + "/groups", url.Values{"groups": {"dev"}}},
		{"/admin/pending/" + w.ID + "/approve", url.Values{"username": {"newadmin"}, "groups": {"Admins"}}},
		{"/admin/invitations", url.Values{"username": {"newadmin"}, "groups": {"admins"}, "days": {"7"}}},
	} {
		tc.form.Set("csrf", b.csrf)
		p := b.do(http.MethodPost, tc.path, tc.form)
		if p.status != http.StatusSeeOther || !strings.HasPrefix(p.location, "/admin/reauth?") {
			t.Fatalf("%s with a stale sign-in: %d %q", tc.path, p.status, p.location)
		}
	}
	if !slices.Equal(h.get(bob.ID).Groups, []string{"dev", "ops"}) || !slices.Equal(h.get(other.ID).Groups, []string{"admins"}) ||
		h.get(w.ID).Status != directory.StatusPending {
		t.Fatal("a stale sign-in changed the admin group")
	}
	b.reauthenticate(t, b.open("/admin/reauth?next=/admin/people/"+bob.ID))
	p = b.submit("/admin/people/"+bob.ID+"/groups", url.Values{"groups": {"dev admins"}})
	mustContain(t, p, `data-flash="flash.groups"`)
	if g := h.get(bob.ID).Groups; !slices.Equal(g, []string{"admins", "dev"}) {
		t.Fatalf("groups = %v", g)
	}
}

// TestAdminRemove: removing needs the confirmation and a fresh sign-in,
// ends the person's access through the core while they still exist, writes
// person.remove, then deletes them.
func TestAdminRemove(t *testing.T) {
	h := newHarness(t)
	admin := h.person("root", directory.StatusActive, "admins")
	eve := h.person("eve", directory.StatusActive, "dev")
	b := h.browser(admin.ID, "en")
	b.signIn()
	b.open("/admin/people/" + eve.ID)
	p := b.submit("/admin/people/"+eve.ID+"/remove", nil)
	mustContain(t, p, `data-flash="err.confirm"`)
	if h.get(eve.ID).Status != directory.StatusActive {
		t.Fatal("removal without confirmation changed the person")
	}
	p = b.submit("/admin/people/"+eve.ID+"/remove", url.Values{"confirm": {"yes"}})
	expectPage(t, p, http.StatusOK, "people")
	mustContain(t, p, `data-flash="flash.removed"`, "@eve removed")
	if _, err := h.dir.People().Get(t.Context(), eve.ID); err == nil {
		t.Fatal("removed person still exists")
	}
	if !slices.Equal(h.core.endedPeople(), []string{eve.ID}) {
		t.Fatalf("EndPersonAccess calls: %v", h.core.endedPeople())
	}
	if evs := h.events(directory.ActionPersonRemove); len(evs) != 1 || evs[0].Actor != admin.ID || evs[0].PersonID != eve.ID {
		t.Fatalf("person.remove rows: %+v", evs)
	}
}

// TestAdminRemoveWhenCoreFailsLeavesPersonDisabled: if the core cannot end
// the access, the person stays (disabled, the revoking row written, so the
// revocation loop finishes the job) and the administrator is told.
func TestAdminRemoveWhenCoreFailsLeavesPersonDisabled(t *testing.T) {
	h := newHarness(t)
	admin := h.person("root", directory.StatusActive, "admins")
	eve := h.person("eve", directory.StatusActive)
	h.core.failEnd = context.DeadlineExceeded
	b := h.browser(admin.ID, "en")
	b.signIn()
	b.open("/admin/people/" + eve.ID)
	p := b.submit("/admin/people/"+eve.ID+"/remove", url.Values{"confirm": {"yes"}})
	expectPage(t, p, http.StatusOK, "person")
	mustContain(t, p, `data-flash="err.remove.partial"`)
	if got := h.get(eve.ID); got.Status != directory.StatusDisabled {
		t.Fatalf("person after a failed removal: %+v", got)
	}
	if evs := h.events(directory.ActionPersonRemove); len(evs) != 1 {
		t.Fatalf("person.remove rows: %+v", evs)
	}
	// Disabling with the core down: disabled, the row written, and said.
	carl := h.person("carl", directory.StatusActive)
	b.open("/admin/people/" + carl.ID)
	p = b.submit("/admin/people/"+carl.ID+"/disable", nil)
	mustContain(t, p, `data-flash="flash.disabled.later"`)
	if h.get(carl.ID).Status != directory.StatusDisabled || len(h.events(directory.ActionPersonDisable)) != 1 {
		t.Fatal("disable with the core down did not disable and record")
	}
}

// TestAdminCannotDisableThemselves keeps the last administrator from
// locking everyone out by accident.
func TestAdminCannotDisableThemselves(t *testing.T) {
	h := newHarness(t)
	admin := h.person("root", directory.StatusActive, "admins")
	b := h.browser(admin.ID, "en")
	b.signIn()
	p := b.open("/admin/people/" + admin.ID)
	mustContain(t, p, "You cannot disable or remove yourself")
	mustNotContain(t, p, `data-action="disable"`)
	for _, action := range []string{"disable", "remove"} {
		p = b.submit("/admin/people/"+admin.ID+"/"+action, url.Values{"confirm": {"yes"}})
		mustContain(t, p, `data-flash="err.self"`)
	}
	if h.get(admin.ID).Status != directory.StatusActive || len(h.core.endedPeople()) != 0 {
		t.Fatal("an administrator disabled themselves")
	}
}

// TestAdminEnableOnlyDisabled: enabling a pending person would skip the
// approval; it is refused.
func TestAdminEnableOnlyDisabled(t *testing.T) {
	h := newHarness(t)
	b := h.browser(h.person("root", directory.StatusActive, "admins").ID, "en")
	w := h.pendingPerson("wx-3", "x", "o-3", "R-55555")
	d := h.person("dora", directory.StatusDisabled)
	b.signIn()
	p := b.submit("/admin/people/"+w.ID+"/enable", nil)
	mustContain(t, p, `data-flash="err.notdisabled"`)
	if h.get(w.ID).Status != directory.StatusPending {
		t.Fatal("a pending person was enabled")
	}
	p = b.submit("/admin/people/"+d.ID+"/enable", nil)
	mustContain(t, p, `data-flash="flash.enabled"`, `data-status="active"`)
	if evs := h.events(directory.ActionPersonEnable); len(evs) != 1 || evs[0].PersonID != d.ID {
		t.Fatalf("person.enable rows: %+v", evs)
	}
}

// TestAdminSessionsListedAndRevoked: the person page lists live sessions
// per application; revoking one ends it through the core and is audited;
// a sid that is not this person's is refused.
func TestAdminSessionsListedAndRevoked(t *testing.T) {
	h := newHarness(t)
	admin := h.person("root", directory.StatusActive, "admins")
	alice := h.person("alice", directory.StatusActive)
	bob := h.person("bob", directory.StatusActive)
	at := h.clock.Now().Add(-time.Hour)
	h.core.sessions[alice.ID] = []SessionInfo{
		{ID: "sid-a1", Subject: alice.ID, AuthTime: at, Created: at, Clients: []string{"grafana", "gitlab"}},
		{ID: "sid-a2", Subject: alice.ID, AuthTime: at, Created: at},
	}
	h.core.sessions[bob.ID] = []SessionInfo{{ID: "sid-b1", Subject: bob.ID, Clients: []string{"grafana"}}}
	b := h.browser(admin.ID, "en")
	b.signIn()
	p := b.open("/admin/people/" + alice.ID)
	mustContain(t, p, `value="sid-a1"`, `value="sid-a2"`, `<span class="tag">grafana</span>`, `<span class="tag">gitlab</span>`, "no application yet")
	p = b.submit("/admin/people/"+alice.ID+"/sessions/revoke", url.Values{"sid": {"sid-b1"}})
	mustContain(t, p, `data-flash="err.session.gone"`)
	p = b.submit("/admin/people/"+alice.ID+"/sessions/revoke", url.Values{"sid": {"sid-a1"}})
	mustContain(t, p, `data-flash="flash.session"`)
	mustNotContain(t, p, `value="sid-a1"`)
	if s := h.core.endedSIDs(); !slices.Equal(s, []string{"sid-a1"}) {
		t.Fatalf("EndSession calls: %v", s)
	}
	if evs := h.events(directory.ActionSessionRevoke); len(evs) != 1 || evs[0].PersonID != alice.ID || evs[0].Actor != admin.ID ||
		!strings.Contains(evs[0].Reason, "grafana gitlab") {
		t.Fatalf("session.revoke rows: %+v", evs)
	}
}

// TestAdminSearch finds people by name, username, email, openid and
// unionid.
func TestAdminSearch(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	admin := h.person("root", directory.StatusActive, "admins")
	zhang, err := h.dir.People().Create(ctx, directory.NewPerson{Username: "zhang.san", DisplayName: "张三", Email: "san@corp.example"})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.dir.People().BindIdentity(ctx, zhang.ID, directory.Identity{Provider: directory.ProviderWeChat, AppID: "wxoa", OpenID: "oPENID-zhang", UnionID: "uNION-zhang"}); err != nil {
		t.Fatal(err)
	}
	li := h.person("li.si", directory.StatusActive)
	b := h.browser(admin.ID, "zh-CN")
	b.signIn()
	for q, want := range map[string][]string{
		"张":            {zhang.ID},
		"ZHANG":        {zhang.ID},
		"corp.example": {zhang.ID},
		"openid-zh":    {zhang.ID},
		"union-zhang":  {zhang.ID},
		"li.":          {li.ID},
		"":             {zhang.ID, li.ID, admin.ID},
		"nobody":       nil,
	} {
		p := b.open("/admin/people?q=" + url.QueryEscape(q))
		expectPage(t, p, http.StatusOK, "people")
		var got []string
		for _, m := range regexp.MustCompile(`data-person="([^"]+)"`).FindAllStringSubmatch(p.body, -1) {
			got = append(got, m[1])
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("search %q: %v, want %v", q, got, want)
		}
		if want == nil {
			mustContain(t, p, "data-empty")
		}
	}
}

// TestAdminPeoplePaging pages through more people than fit a page.
func TestAdminPeoplePaging(t *testing.T) {
	h := newHarness(t)
	b := h.browser(h.person("root", directory.StatusActive, "admins").ID, "en")
	for i := range peoplePageSize + 5 {
		h.person("user"+string(rune('a'+i/26))+string(rune('a'+i%26)), directory.StatusActive)
	}
	b.signIn()
	p := b.open("/admin/people")
	if n := strings.Count(p.body, "data-person="); n != peoplePageSize {
		t.Fatalf("first page has %d people", n)
	}
	m := regexp.MustCompile(`href="([^"]+)" data-action="next"`).FindStringSubmatch(p.body)
	if m == nil {
		t.Fatal("no next page link")
	}
	p = b.open(strings.ReplaceAll(m[1], "&amp;", "&"))
	if n := strings.Count(p.body, "data-person="); n != 6 {
		t.Fatalf("second page has %d people, want 6", n)
	}
	mustNotContain(t, p, `data-action="next"`)
}

// TestAdminAuditFilters filters the audit trail by person (username or
// id), action, day and reference, and pages it.
func TestAdminAuditFilters(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	admin := h.person("root", directory.StatusActive, "admins")
	alice := h.person("alice", directory.StatusActive)
	day1 := h.clock.Now().Add(-48 * time.Hour)
	for i := range auditPageSize + 3 {
		e := directory.Event{Time: day1.Add(time.Duration(i) * time.Minute), Action: directory.ActionSignIn, PersonID: alice.ID, ClientID: "grafana", Result: "ok"}
		if err := h.dir.Audit().Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.dir.Audit().Append(ctx, directory.Event{Action: directory.ActionPersonGroups, Actor: "cli", PersonID: alice.ID, Result: "ok", Ref: "R-XY7KQ9"}); err != nil {
		t.Fatal(err)
	}
	b := h.browser(admin.ID, "en")
	b.signIn()
	count := func(p page, action string) int { return strings.Count(p.body, `data-event="`+action+`"`) }

	p := b.open("/admin/audit?ref=r-xy7kq9")
	if count(p, directory.ActionPersonGroups) != 1 || count(p, directory.ActionSignIn) != 0 {
		t.Fatalf("by ref:\n%s", cut(p.body, 3000))
	}
	mustContain(t, p, "Alice (@alice)", "By: cli")
	p = b.open("/admin/audit?person=alice&action=sign_in")
	if count(p, directory.ActionSignIn) != auditPageSize || count(p, directory.ActionPersonGroups) != 0 {
		t.Fatalf("by person and action: %d sign_in rows", count(p, directory.ActionSignIn))
	}
	m := regexp.MustCompile(`href="([^"]+)" data-action="next"`).FindStringSubmatch(p.body)
	if m == nil {
		t.Fatal("no next page")
	}
	p = b.open(strings.ReplaceAll(m[1], "&amp;", "&"))
	if count(p, directory.ActionSignIn) != 3 {
		t.Fatalf("second page: %d rows", count(p, directory.ActionSignIn))
	}
	since := h.clock.Now().Add(-24 * time.Hour).Format("2006-01-02")
	p = b.open("/admin/audit?person=" + alice.ID + "&since=" + since)
	if count(p, directory.ActionSignIn) != 0 || count(p, directory.ActionPersonGroups) != 1 {
		t.Fatalf("since %s: wrong rows", since)
	}
	for _, bad := range []string{"action=drop+table", "since=yesterday", "person=nobody"} {
		p = b.open("/admin/audit?" + bad)
		expectPage(t, p, http.StatusOK, "audit")
		mustContain(t, p, `data-flash="err.filter"`)
		if count(p, directory.ActionSignIn) != 0 {
			t.Fatalf("%s: rows shown for a bad filter", bad)
		}
	}
}

// TestAdminSessionLifetimes: a console session ends after its idle time
// without use and after its absolute time however it is used.
func TestAdminSessionLifetimes(t *testing.T) {
	h := newHarness(t, func(o *Options) { o.SessionIdleTTL, o.SessionAbsoluteTTL = 30*time.Minute, 2*time.Hour })
	admin := h.person("root", directory.StatusActive, "admins")
	b := h.browser(admin.ID, "en")
	b.signIn()
	h.clock.advance(31 * time.Minute)
	if p := b.do(http.MethodGet, "/admin/people", nil); p.status != http.StatusFound || !strings.HasPrefix(p.location, "/admin/signin") {
		t.Fatalf("after 31 idle minutes: %d %q", p.status, p.location)
	}
	b.signIn()
	for range 5 { // 5 × 25 min = 125 min, used every 25 min
		h.clock.advance(25 * time.Minute)
		b.do(http.MethodGet, "/admin/people", nil)
	}
	if p := b.do(http.MethodGet, "/admin/people", nil); p.status != http.StatusFound {
		t.Fatalf("after the absolute lifetime: %d", p.status)
	}
}

// TestAdminSignOut ends the console session: the old cookie is worth
// nothing afterwards.
func TestAdminSignOut(t *testing.T) {
	h := newHarness(t)
	b := h.browser(h.person("root", directory.StatusActive, "admins").ID, "en")
	b.signIn()
	u, _ := url.Parse(h.issuer + "/admin/")
	old := b.client.Jar.Cookies(u)
	p := b.submit("/admin/signout", nil)
	expectPage(t, p, http.StatusOK, "signed-out")
	mustNotContain(t, p, "nav class")
	b.client.Jar.SetCookies(u, old)
	if p := b.do(http.MethodGet, "/admin/people", nil); p.status != http.StatusFound {
		t.Fatalf("the signed-out cookie still works: %d", p.status)
	}
}
