package bridge

import (
	"context"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/wechat-oidc/wechat-oidc/config"
	"github.com/wechat-oidc/wechat-oidc/directory"
)

// Gitea end to end: a real Gitea (gitea_harness_test.go) with an OpenID
// Connect auth source on the bridge, people signing in through its "Sign in
// with wechat" link, the bridge and the WeChat simulator. What Gitea then has
// is read back from its admin API (and `gitea admin user list` where there is
// no admin token).
//
// The people directory's decisions under the same Gitea: approval mode,
// allowed_groups and disabling (the last three tests). The groups are
// directory groups.

// TestGiteaSignInCreatesAccount: a person signs in through Gitea's link and
// Gitea creates their account from the bridge's claims — username from
// preferred_username, email from the client's synthetic template, full name
// from name, the external id from sub — not an administrator; signing in
// again finds the same account.
func TestGiteaSignInCreatesAccount(t *testing.T) {
	g := sharedGitea(t)
	h := g.bridge(t, giteaUsers("create", "dora"))
	dora := g.person(t, h, "create-dora")
	if got := g.accountsOf(t, dora.sub); len(got) != 0 {
		t.Fatalf("before signing in gitea already has %+v", got)
	}

	at, page := g.signIn(t, h, dora)
	g.assertSignedIn(t, h, dora, at, page)
	acc := g.accountOf(t, dora)
	if acc.Login != dora.username || acc.Email != dora.email || acc.FullName != "Dora" || acc.SourceID == 0 {
		t.Errorf("account = %+v, want login %s, email %s, full name Dora, from the auth source", acc, dora.username, dora.email)
	}
	if !acc.Active || acc.IsAdmin || acc.Restricted {
		t.Errorf("account = %+v, want active, not admin, not restricted", acc)
	}
	if row, ok := g.usersByCLI(t)[dora.username]; !ok || row.email != dora.email || row.admin {
		t.Errorf("gitea admin user list has %+v (listed: %t), want %s, not admin", row, ok, dora.email)
	}

	// Again, in a new browser (no Gitea session): the same account.
	again := g.person(t, h, "create-dora")
	at, page = g.signIn(t, h, again)
	g.assertSignedIn(t, h, again, at, page)
	if acc2 := g.accountOf(t, again); acc2.ID != acc.ID {
		t.Errorf("second sign-in landed in account %d, want %d", acc2.ID, acc.ID)
	}
}

// TestGiteaSignInRefusedByBridgeCreatesNoAccount: when the bridge refuses a
// person (here WeChat gives no unionid, so there is no subject), Gitea gets
// access_denied, shows its sign-in page with the error and creates nothing.
func TestGiteaSignInRefusedByBridgeCreatesNoAccount(t *testing.T) {
	g := sharedGitea(t)
	users := giteaUsers("refused", "kim")
	users[0].UnionID = ""
	h := g.bridge(t, users)
	before := g.usersByCLI(t)

	g.assertRefused(t, h, &giteaPerson{key: "refused-kim", browser: giteaBrowser(t)})
	if after := g.usersByCLI(t); len(after) != len(before) {
		t.Errorf("gitea has %d accounts after a refused sign-in, had %d", len(after), len(before))
	}
}

// TestGiteaFirstSignInWithLocalAdminIsNotAdmin is the guide's recommended
// setup on a new Gitea: the administrator is created with `gitea admin user
// create` first, so the first person through the bridge is an ordinary user.
func TestGiteaFirstSignInWithLocalAdminIsNotAdmin(t *testing.T) {
	g := newGitea(t, giteaRecommended)
	h := g.bridge(t, giteaUsers("first", "erin"))
	erin := g.person(t, h, "first-erin")
	if users := g.usersByCLI(t); len(users) != 1 || !users[giteaLocalAdmin].admin {
		t.Fatalf("before anyone signs in gitea should have only its admin %s: %+v", giteaLocalAdmin, users)
	}

	at, page := g.signIn(t, h, erin)
	g.assertSignedIn(t, h, erin, at, page)
	if acc := g.accountOf(t, erin); acc.IsAdmin {
		t.Errorf("the first person through the bridge is a Gitea admin: %+v", acc)
	}
}

// TestGiteaFirstSignInWithoutLocalAdminBecomesAdmin is the pitfall the guide
// warns about: on a Gitea with no account yet, the first account it creates
// is made an administrator (routers/web/auth/auth.go, handleUserCreated),
// whoever signs in first through the bridge. --admin-group does not prevent
// it: the group claim is absent, yet the person stays an administrator at
// the next sign-in too, because Gitea does not take admin rights from its
// last administrator when syncing group claims (services/user/update.go).
func TestGiteaFirstSignInWithoutLocalAdminBecomesAdmin(t *testing.T) {
	g := newGitea(t, giteaSetup{adminGroup: giteaAdminGroup, restrictedGroup: giteaRestrictedGroup})
	h := g.bridge(t, giteaUsers("pitfall", "finn", "gail"))
	finn, gail := g.person(t, h, "pitfall-finn"), g.person(t, h, "pitfall-gail")

	at, page := g.signIn(t, h, finn)
	g.assertSignedIn(t, h, finn, at, page)
	if u := g.usersByCLI(t)[finn.username]; !u.admin {
		t.Fatalf("Gitea %s no longer makes its first account an admin (%+v): revise docs/integrations/gitea.md", giteaVersion, u)
	}

	at, page = g.signIn(t, h, g.person(t, h, "pitfall-finn"))
	g.assertSignedIn(t, h, finn, at, page)
	if u := g.usersByCLI(t)[finn.username]; !u.admin {
		t.Errorf("the group claim (absent) took admin rights from the only admin at the next sign-in: %+v; revise docs/integrations/gitea.md", u)
	}

	at, page = g.signIn(t, h, gail)
	g.assertSignedIn(t, h, gail, at, page)
	if u := g.usersByCLI(t)[gail.username]; u.admin {
		t.Errorf("the second person is an admin too: %+v", u)
	}
}

// TestGiteaGroupClaimsDriveAdminAndRestricted: with --group-claim-name groups
// --admin-group --restricted-group, the bridge's groups claim decides
// Gitea's admin and restricted flags at every sign-in: a person in the
// directory's admin group is an admin, one in the restricted group is
// restricted, one in neither is neither; moved between groups in the
// directory, each changes at their next sign-in.
func TestGiteaGroupClaimsDriveAdminAndRestricted(t *testing.T) {
	g := sharedGitea(t)
	h := g.bridge(t, giteaUsers("groups", "hana", "ivan", "jade"))
	hana := h.addPerson("groups-hana", giteaAdminGroup)
	ivan := h.addPerson("groups-ivan", giteaRestrictedGroup)
	h.addPerson("groups-jade")

	check := func(t *testing.T, p *giteaPerson, admin, restricted bool) {
		t.Helper()
		acc := g.accountOf(t, p)
		if acc.IsAdmin != admin || acc.Restricted != restricted {
			t.Errorf("%s: admin %t, restricted %t; want admin %t, restricted %t", p.key, acc.IsAdmin, acc.Restricted, admin, restricted)
		}
	}
	signIn := func(t *testing.T, key string) *giteaPerson {
		t.Helper()
		p := g.person(t, h, key)
		at, page := g.signIn(t, h, p)
		g.assertSignedIn(t, h, p, at, page)
		return p
	}
	setGroups := func(t *testing.T, id string, groups ...string) {
		t.Helper()
		if _, err := h.dir.People().Update(context.Background(), id, directory.PersonUpdate{Groups: &groups}); err != nil {
			t.Fatal(err)
		}
	}

	check(t, signIn(t, "groups-hana"), true, false)
	check(t, signIn(t, "groups-ivan"), false, true)
	check(t, signIn(t, "groups-jade"), false, false)

	// An administrator moves hana to the restricted group and ivan out of it.
	setGroups(t, hana.ID, giteaRestrictedGroup)
	setGroups(t, ivan.ID)
	check(t, signIn(t, "groups-hana"), false, true)
	check(t, signIn(t, "groups-ivan"), false, false)
}

// TestGiteaUsernameOfLocalAccountIsNotTakenOver: with ACCOUNT_LINKING = login
// (the guide's setting), a person whose preferred_username is the name of an
// existing Gitea account is not signed into that account: Gitea asks them to
// link by signing in to it with its password, and links nothing by itself.
// With ACCOUNT_LINKING = auto it would hand them the account
// (routers/web/auth/auth.go, createUserInContext) — a takeover of, say, the
// admin account as soon as someone's username matches it.
func TestGiteaUsernameOfLocalAccountIsNotTakenOver(t *testing.T) {
	g := sharedGitea(t)
	h := g.bridge(t, giteaUsers("clash", "lena"))
	lena := g.person(t, h, "clash-lena")
	if _, err := g.cli("admin", "user", "create", "--username", lena.username,
		"--email", "local-"+lena.username+"@example.invalid", "--password", randomHex(16),
		"--must-change-password=false"); err != nil {
		t.Fatal(err)
	}

	at, page := g.signIn(t, h, lena)
	if at.Path != "/user/link_account" {
		t.Errorf("landed on %s, want Gitea's account linking page /user/link_account", at)
	}
	if strings.Contains(page, signedInAs(lena.username)) {
		t.Fatalf("signed into the existing local account %s", lena.username)
	}
	if got := g.accountsOf(t, lena.sub); len(got) != 0 {
		t.Errorf("gitea linked the bridge identity to %+v", got)
	}
}

// assertRefused: p's sign-in ends on Gitea's sign-in page with its
// access_denied message, not signed in.
func (g *giteaServer) assertRefused(t *testing.T, h *harness, p *giteaPerson) {
	t.Helper()
	at, page := g.signIn(t, h, p)
	if at.String() != g.url+"/user/login" {
		t.Errorf("a refused sign-in landed on %s, want %s/user/login", at, g.url)
	}
	if !strings.Contains(page, "The authorization request was denied.") {
		t.Errorf("gitea's sign-in page does not show access_denied: %.600q", page)
	}
	if strings.Contains(page, "Signed in as") {
		t.Errorf("signed in after a refused sign-in: %.600q", page)
	}
}

// TestGiteaApprovalModeNoAccountUntilApproved: in approval mode a new
// person's sign-in through Gitea stops at the bridge's waiting page and
// Gitea creates nothing; once an administrator approves them, the same
// waiting page continues into Gitea, which creates their account.
func TestGiteaApprovalModeNoAccountUntilApproved(t *testing.T) {
	g := sharedGitea(t)
	h := g.bridge(t, giteaUsers("approve", "hana"), withAccess(config.AccessApproval))
	hana := g.person(t, h, "approve-hana")
	at, page := g.signIn(t, h, hana)
	if name, _ := pageOf(page); name != "pending" {
		t.Fatalf("a new person in approval mode landed on %s (page %q), want the waiting page", at, name)
	}
	if got := g.accountsOf(t, hana.sub); len(got) != 0 {
		t.Fatalf("gitea created an account for a pending person: %+v", got)
	}
	p := h.personOf("approve-hana")
	if _, err := h.dir.People().Approve(context.Background(), p.ID, hana.username, nil); err != nil {
		t.Fatal(err)
	}
	at, page = g.get(t, hana, at.String())
	g.assertSignedIn(t, h, hana, at, page)
	if got := g.accountsOf(t, hana.sub); len(got) != 1 {
		t.Fatalf("after approval gitea has %d accounts for her, want 1", len(got))
	}
}

// TestGiteaAllowedGroupsKeepOutsidersOut: the Gitea client allows only the
// directory group devs: a person outside it is refused by the bridge (no
// Gitea account), a person in it gets in.
func TestGiteaAllowedGroupsKeepOutsidersOut(t *testing.T) {
	g := sharedGitea(t)
	h := g.bridge(t, giteaUsers("allowed", "ivan", "jade"),
		withClient(giteaClientID, func(c *config.ClientConfig) { c.AllowedGroups = []string{"devs"} }))
	h.addPerson("allowed-jade", "devs")
	ivan, jade := g.person(t, h, "allowed-ivan"), g.person(t, h, "allowed-jade")
	_, page := g.signIn(t, h, ivan)
	if name, _ := pageOf(page); name != "refused-not-in-group" || !strings.Contains(page, "Gitea") {
		t.Fatalf("a person outside devs: page %q", name)
	}
	if got := g.accountsOf(t, ivan.sub); len(got) != 0 {
		t.Fatalf("gitea created an account for a person outside the allowed groups: %+v", got)
	}
	at, page := g.signIn(t, h, jade)
	g.assertSignedIn(t, h, jade, at, page)
}

// TestGiteaDisabledPersonIsOut: after an administrator disables a person,
// their next Gitea sign-in is refused by the bridge, and their refresh
// tokens (here one a go-oidc application holds) no longer refresh.
func TestGiteaDisabledPersonIsOut(t *testing.T) {
	g := sharedGitea(t)
	h := g.bridge(t, giteaUsers("disable", "lena"), withClient(rpClientID, func(c *config.ClientConfig) { c.RefreshTokens = true }))
	lena := g.person(t, h, "disable-lena")
	at, page := g.signIn(t, h, lena)
	g.assertSignedIn(t, h, lena, at, page)
	r := h.rp(rpClientID, rpSecret, rpRedirect)
	h.sim.AutoApprove("disable-lena")
	res := h.login(r, h.browser(), "disable-lena")

	p := h.personOf("disable-lena")
	disabled := directory.StatusDisabled
	if _, err := h.dir.People().Update(context.Background(), p.ID, directory.PersonUpdate{Status: &disabled}); err != nil {
		t.Fatal(err)
	}
	if err := h.dir.Audit().Append(context.Background(), directory.Event{Actor: "cli", Action: directory.ActionPersonDisable, PersonID: p.ID}); err != nil {
		t.Fatal(err)
	}
	h.srv.carryOutRevocations(context.Background(), 0)

	_, page = g.signIn(t, h, g.person(t, h, "disable-lena"))
	if name, _ := pageOf(page); name != "refused-disabled" {
		t.Fatalf("a disabled person's next Gitea sign-in: page %q", name)
	}
	if _, err := r.conf.TokenSource(r.ctx, &oauth2.Token{RefreshToken: res.token.RefreshToken}).Token(); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Fatalf("refresh of a disabled person: %v", err)
	}
}
