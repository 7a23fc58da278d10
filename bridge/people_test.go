package bridge

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/wechat-oidc/wechat-oidc/config"
	wechatconn "github.com/wechat-oidc/wechat-oidc/connector/wechat"
	"github.com/wechat-oidc/wechat-oidc/directory"
)

// End-to-end tests of the people directory's access decisions: the real
// server over HTTP, the WeChat simulator, go-oidc as the relying party.

func withAccess(mode string) harnessOption {
	return func(c *config.File) { c.Access.Mode = mode }
}

// pageOf is the data-page marker of a page, and its reference if it shows one.
func pageOf(body string) (name, ref string) {
	if m := regexp.MustCompile(`data-page="([^"]+)"`).FindStringSubmatch(body); m != nil {
		name = m[1]
	}
	if m := regexp.MustCompile(`data-ref="([^"]+)"`).FindStringSubmatch(body); m != nil {
		ref = m[1]
	}
	return name, ref
}

// auditHas reports whether the audit trail has a row with this reference.
func (h *harness) auditHas(ref string, action, result string) bool {
	h.t.Helper()
	rows, err := h.dir.Audit().Query(context.Background(), directory.AuditQuery{Ref: ref})
	if err != nil {
		h.t.Fatal(err)
	}
	for _, r := range rows {
		if r.Action == action && r.Result == result {
			return true
		}
	}
	return false
}

func (h *harness) personOf(user string) directory.Person {
	h.t.Helper()
	p, err := h.dir.People().FindByIdentity(context.Background(), directory.Identity{Provider: wechatconn.Provider, UnionID: h.sim.UnionID(user)})
	if err != nil {
		h.t.Fatalf("%s is not in the directory: %v", user, err)
	}
	return p
}

// TestApprovalWaitingPageContinuesAfterApproval: in approval mode a new
// person's first sign-in makes a pending person and a waiting page with a
// reference; nothing reaches the application; once an administrator
// approves, the same page continues into the application.
func TestApprovalWaitingPageContinuesAfterApproval(t *testing.T) {
	h := newHarness(t, withAccess(config.AccessApproval))
	h.sim.AutoApprove("alice")
	b := h.browser()
	resp, q := h.authorize(b, h.authorizeURL(nil))
	if q != nil {
		t.Fatalf("a pending person reached the application: %v", q)
	}
	waiting := resp.Request.URL.String()
	name, ref := pageOf(readBody(t, resp))
	if name != "pending" || !strings.HasPrefix(ref, "R-") {
		t.Fatalf("page %q ref %q at %s", name, ref, waiting)
	}
	if !h.auditHas(ref, directory.ActionSignIn, "pending") {
		t.Fatalf("the reference %s does not find its audit row", ref)
	}
	p := h.personOf("alice")
	if p.Status != directory.StatusPending {
		t.Fatalf("status %s", p.Status)
	}
	// Still pending: the page waits (and reloads itself).
	resp, q = h.authorize(b, waiting)
	if name, _ := pageOf(readBody(t, resp)); q != nil || name != "pending" {
		t.Fatalf("before approval: %v %s", q, name)
	}
	if _, err := h.dir.People().Approve(context.Background(), p.ID, "alice", []string{"staff"}); err != nil {
		t.Fatal(err)
	}
	_, q = h.authorize(b, waiting)
	if q.Get("code") == "" || q.Get("state") != "client-state" {
		t.Fatalf("after approval the waiting page did not continue: %v", q)
	}
	// Another browser cannot take over the waiting sign-in.
	resp, _ = h.authorize(h.browser(), waiting)
	if name, _ := pageOf(readBody(t, resp)); name != "other-browser" && name != "login-expired" {
		t.Fatalf("another browser on the waiting page: %s", name)
	}
}

// TestInviteModeRefusesStrangers: in invite mode someone neither invited nor
// imported gets a page with a reference, no person record, and the way back
// gives the application access_denied.
func TestInviteModeRefusesStrangers(t *testing.T) {
	h := newHarness(t, withAccess(config.AccessInvite))
	h.sim.AutoApprove("bob")
	b := h.browser()
	resp, q := h.authorize(b, h.authorizeURL(nil))
	body := readBody(t, resp)
	name, ref := pageOf(body)
	if q != nil || name != "refused-not-invited" || ref == "" {
		t.Fatalf("a stranger in invite mode: %v page %q", q, name)
	}
	if _, err := h.dir.People().FindByIdentity(context.Background(), directory.Identity{Provider: wechatconn.Provider, UnionID: h.sim.UnionID("bob")}); err == nil {
		t.Fatal("invite mode made a person record for a stranger")
	}
	// The way back gives the application access_denied.
	back := regexp.MustCompile(`href="([^"]*/authorize/return[^"]*)"`).FindStringSubmatch(body)
	if back == nil {
		t.Fatalf("no way back on the page:\n%s", body)
	}
	_, q = h.authorize(b, strings.ReplaceAll(back[1], "&amp;", "&"))
	if q.Get("error") != "access_denied" || q.Get("state") != "client-state" {
		t.Fatalf("back to the application: %v", q)
	}
}

// TestAllowedGroupsRefusal: a person outside a client's allowed_groups gets
// a page naming the application and the client gets access_denied — on a
// fresh sign-in, on SSO reuse and on prompt=none; another client without
// groups is fine.
func TestAllowedGroupsRefusal(t *testing.T) {
	h := newHarness(t, withClient(rpClientID, func(c *config.ClientConfig) {
		c.Name = "Grafana"
		c.AllowedGroups = []string{"ops"}
	}))
	h.addPerson("alice", "staff")
	h.sim.AutoApprove("alice")
	b := h.browser()
	resp, q := h.authorize(b, h.authorizeURL(nil))
	body := readBody(t, resp)
	if name, ref := pageOf(body); q != nil || name != "refused-not-in-group" || !strings.Contains(body, "Grafana") || !h.auditHas(ref, directory.ActionSignIn, "denied") {
		t.Fatalf("fresh sign-in outside the groups: %v page %q", q, name)
	}
	// rp2 has no groups: alice signs in there, and has an SSO session.
	h.login(h.rp(rp2ClientID, rp2Secret, rp2Redirect), b, "alice")
	_, q = h.authorize(b, h.authorizeURL(map[string]string{"prompt": "none"}))
	if q.Get("error") != "access_denied" {
		t.Fatalf("prompt=none with a session, outside the groups: %v", q)
	}
	resp, q = h.authorize(b, h.authorizeURL(nil))
	if name, _ := pageOf(readBody(t, resp)); q != nil || name != "refused-not-in-group" {
		t.Fatalf("SSO reuse outside the groups: %v %s", q, name)
	}
	// Put alice in ops: the same session now gets a code, with the group.
	p := h.personOf("alice")
	groups := []string{"ops", "staff"}
	if _, err := h.dir.People().Update(context.Background(), p.ID, directory.PersonUpdate{Groups: &groups}); err != nil {
		t.Fatal(err)
	}
	_, q = h.authorize(b, h.authorizeURL(map[string]string{"prompt": "none"}))
	if q.Get("code") == "" {
		t.Fatalf("after joining ops: %v", q)
	}
}

// TestDisableEndsEverythingAtOnce: disabling a person ends their SSO
// session (both applications receive a logout_token), their refresh token
// no longer refreshes, their access token no longer answers userinfo, and
// a new sign-in is refused.
func TestDisableEndsEverythingAtOnce(t *testing.T) {
	rp1, rp2 := newLogoutRP(t, 0), newLogoutRP(t, 0)
	h := newHarness(t,
		withClient(rpClientID, func(c *config.ClientConfig) {
			c.BackchannelLogoutURI = rp1.srv.URL
			c.RefreshTokens = true
		}),
		withClient(rp2ClientID, func(c *config.ClientConfig) { c.BackchannelLogoutURI = rp2.srv.URL }))
	b, first := ssoLogin(t, h)
	h.login(h.rp(rp2ClientID, rp2Secret, rp2Redirect), b, "alice")
	if first.token.RefreshToken == "" {
		t.Fatal("no refresh token to test with")
	}
	p := h.personOf("alice")
	disabled := directory.StatusDisabled
	if _, err := h.dir.People().Update(context.Background(), p.ID, directory.PersonUpdate{Status: &disabled}); err != nil {
		t.Fatal(err)
	}
	// Before anything else runs, every token use is refused already.
	if status := userinfoStatus(t, h, first.token.AccessToken); status != http.StatusUnauthorized {
		t.Fatalf("userinfo of a disabled person: %d", status)
	}
	// The revocation loop reads the audit row any writer leaves.
	if err := h.dir.Audit().Append(context.Background(), directory.Event{Actor: "cli", Action: directory.ActionPersonDisable, PersonID: p.ID}); err != nil {
		t.Fatal(err)
	}
	h.srv.carryOutRevocations(context.Background(), 0)
	h.srv.WaitBackchannel()
	if len(rp1.received()) != 1 || len(rp2.received()) != 1 {
		t.Fatalf("logout tokens: rp %d, rp2 %d", len(rp1.received()), len(rp2.received()))
	}
	r := h.rp(rpClientID, rpSecret, rpRedirect)
	if _, err := r.conf.TokenSource(r.ctx, &oauth2.Token{RefreshToken: first.token.RefreshToken}).Token(); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("refresh of a disabled person: %v", err)
	}
	// The SSO session is gone: a new sign-in goes to WeChat and is refused.
	resp, q := h.authorize(b, h.authorizeURL(nil))
	if name, _ := pageOf(readBody(t, resp)); q != nil || name != "refused-disabled" {
		t.Fatalf("sign-in of a disabled person: %v %s", q, name)
	}
	// Enabled again, the tokens stay revoked (the loop revoked them), but a
	// new sign-in works.
	active := directory.StatusActive
	if _, err := h.dir.People().Update(context.Background(), p.ID, directory.PersonUpdate{Status: &active}); err != nil {
		t.Fatal(err)
	}
	if status := userinfoStatus(t, h, first.token.AccessToken); status != http.StatusUnauthorized {
		t.Fatalf("a revoked access token came back after enabling: %d", status)
	}
	h.login(r, h.browser(), "alice")
}

func userinfoStatus(t *testing.T, h *harness, accessToken string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.issuer()+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestInvitationBindsAndLands: in invite mode an invitation link runs the
// WeChat sign-in, binds the account to the invited person (active, with the
// invitation's groups and verified email) and lands in the application;
// the link then says it was used; an expired one says so; a WeChat account
// bound to someone else is refused and audited, never moved.
func TestInvitationBindsAndLands(t *testing.T) {
	h := newHarness(t, withAccess(config.AccessInvite), withClient(rpClientID, func(c *config.ClientConfig) {
		c.InitiateLoginURI = "http://rp.test/login"
	}))
	ctx := context.Background()
	_, token, err := h.dir.Invitations().Create(ctx, directory.NewInvitation{Username: "alice.w", DisplayName: "Alice W", Email: "alice@example.com",
		Groups: []string{"ops"}, ClientID: rpClientID, CreatedBy: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	h.sim.AutoApprove("alice")
	b := h.browser()
	resp, err := b.Get(h.issuer() + "/invite/" + token)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || loc != "http://rp.test/login" {
		t.Fatalf("invitation did not land in the application: %d %q", resp.StatusCode, loc)
	}
	p := h.personOf("alice")
	if p.Username != "alice.w" || p.Status != directory.StatusActive || p.Email != "alice@example.com" || !p.EmailVerified || len(p.Groups) != 1 {
		t.Fatalf("invited person: %+v", p)
	}
	// Already signed in: the application's sign-in needs no WeChat.
	res := h.login(h.rp(rpClientID, rpSecret, rpRedirect, gooidc.ScopeOpenID, "profile", "email", "groups"), b, "alice")
	if res.claims["preferred_username"] != "alice.w" || res.claims["email"] != "alice@example.com" || res.claims["email_verified"] != true {
		t.Fatalf("claims of the invited person: %v", res.claims)
	}
	// Used: a clear page.
	resp, _ = h.authorize(h.browser(), h.issuer()+"/invite/"+token)
	if name, _ := pageOf(readBody(t, resp)); name != "invite-used" {
		t.Fatalf("reused invitation: %s", name)
	}
	// Expired.
	_, expired, err := h.dir.Invitations().Create(ctx, directory.NewInvitation{Username: "bob", TTL: time.Hour, CreatedBy: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	h.advance(2 * time.Hour)
	resp, _ = h.authorize(h.browser(), h.issuer()+"/invite/"+expired)
	if name, _ := pageOf(readBody(t, resp)); name != "invite-expired" {
		t.Fatalf("expired invitation: %s", name)
	}
	// alice's WeChat is alice.w's: an invitation for someone else is refused.
	_, other, err := h.dir.Invitations().Create(ctx, directory.NewInvitation{Username: "carol2", CreatedBy: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	h.sim.AutoApprove("alice")
	resp, _ = h.authorize(h.browser(), h.issuer()+"/invite/"+other)
	name, ref := pageOf(readBody(t, resp))
	if name != "invite-identity-taken" || !h.auditHas(ref, directory.ActionIdentityRefused, "refused") {
		t.Fatalf("identity bound to someone else: %s %s", name, ref)
	}
	if again := h.personOf("alice"); again.ID != p.ID {
		t.Fatal("the WeChat account moved to another person")
	}
	if _, err := h.dir.Invitations().Get(ctx, "no-such-token"); err == nil {
		t.Fatal("an unknown token was found")
	}
	resp, _ = h.authorize(h.browser(), h.issuer()+"/invite/no-such-token")
	if name, _ := pageOf(readBody(t, resp)); name != "invite-unknown" {
		t.Fatalf("unknown invitation: %s", name)
	}
}

// TestSubjectPersonStableAcrossRebind: with subject: person the sub is the
// directory's id; when an administrator binds the person to a new WeChat
// account, the new account signs in with the same sub.
func TestSubjectPersonStableAcrossRebind(t *testing.T) {
	h := newHarness(t, withSubject(config.SubjectPerson))
	r := h.rp(rpClientID, rpSecret, rpRedirect)
	first := h.login(r, h.browser(), "alice")
	p := h.personOf("alice")
	if first.idToken.Subject != p.ID {
		t.Fatalf("sub %q, person %q", first.idToken.Subject, p.ID)
	}
	ctx := context.Background()
	ids, err := h.dir.People().Identities(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if err := h.dir.People().UnbindIdentity(ctx, p.ID, id); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.dir.People().BindIdentity(ctx, p.ID, directory.Identity{Provider: wechatconn.Provider, UnionID: h.sim.UnionID("bob")}); err != nil {
		t.Fatal(err)
	}
	again := h.login(r, h.browser(), "bob")
	if again.idToken.Subject != p.ID {
		t.Fatalf("after the re-bind the sub changed: %q, want %q", again.idToken.Subject, p.ID)
	}
}

// TestImportThenFirstSignInRecognised: a person imported with their unionid
// (the bindings a company brings from its own tables) is recognised at the
// first sign-in, in invite mode, with the imported username and groups.
func TestImportThenFirstSignInRecognised(t *testing.T) {
	h := newHarness(t, withAccess(config.AccessInvite))
	csv := "username,name,email,groups,openid,unionid,app_id,status\n" +
		"alice.w,Alice W,alice@example.com,ops;staff,," + h.sim.UnionID("alice") + ",,active\n"
	rows, err := directory.ParseImportCSV(strings.NewReader(csv))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.dir.Import(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
	res := h.login(h.rp(rpClientID, rpSecret, rpRedirect, gooidc.ScopeOpenID, "profile", "groups"), h.browser(), "alice")
	gs, _ := res.claims["groups"].([]any)
	if res.claims["preferred_username"] != "alice.w" || len(gs) != 2 {
		t.Fatalf("imported person's claims: %v", res.claims)
	}
}

// TestDirectoryOutageIsUnavailableNotDenied: with the directory down a
// sign-in gets a 503 page with a reference, never a code and never an
// "access denied".
func TestDirectoryOutageIsUnavailableNotDenied(t *testing.T) {
	h := newHarness(t)
	h.sim.AutoApprove("alice")
	if err := h.dir.Close(); err != nil {
		t.Fatal(err)
	}
	resp, q := h.authorize(h.browser(), h.authorizeURL(nil))
	name, ref := pageOf(readBody(t, resp))
	if q != nil || resp.StatusCode != http.StatusServiceUnavailable || name != "unavailable" || ref == "" {
		t.Fatalf("directory down: %d %v %s %s", resp.StatusCode, q, name, ref)
	}
	if !strings.Contains(h.logs.String(), ref) {
		t.Fatal("the page's reference is not in the log")
	}
}

// TestMiniProgramExchangeAsksTheDirectory: the mini program's wx.login
// exchange is a sign-in like any other: a pending person (approval mode)
// and a person outside the client's groups get invalid_grant with the
// reason and a reference, never a token.
func TestMiniProgramExchangeAsksTheDirectory(t *testing.T) {
	h := newHarness(t, withMiniProgram(rpClientID), withAccess(config.AccessApproval),
		withClient(rpClientID, func(c *config.ClientConfig) { c.AllowedGroups = []string{"ops"} }))
	status, body, _ := h.exchangeJSCode(rpClientID, rpSecret, h.sim.IssueJSCode(testMiniAppID, "alice"), nil)
	desc, _ := body["error_description"].(string)
	if status != http.StatusBadRequest || body["error"] != "invalid_grant" || !strings.Contains(desc, "approve") || !strings.Contains(desc, "R-") {
		t.Fatalf("pending person's exchange: %d %v", status, body)
	}
	if p := h.personOf("alice"); p.Status != directory.StatusPending {
		t.Fatalf("the exchange did not make a pending person: %+v", p)
	}
	// Approved, but not in the client's group ops.
	p := h.personOf("alice")
	if _, err := h.dir.People().Approve(context.Background(), p.ID, "alice", nil); err != nil {
		t.Fatal(err)
	}
	status, body, _ = h.exchangeJSCode(rpClientID, rpSecret, h.sim.IssueJSCode(testMiniAppID, "alice"), nil)
	if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("exchange outside the groups: %d %v", status, body)
	}
	groups := []string{"ops"}
	if _, err := h.dir.People().Update(context.Background(), p.ID, directory.PersonUpdate{Groups: &groups}); err != nil {
		t.Fatal(err)
	}
	status, body, _ = h.exchangeJSCode(rpClientID, rpSecret, h.sim.IssueJSCode(testMiniAppID, "alice"), nil)
	if status != http.StatusOK || body["id_token"] == nil {
		t.Fatalf("exchange of an admitted person: %d %v", status, body)
	}
}
