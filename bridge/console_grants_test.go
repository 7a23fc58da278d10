package bridge

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/wechat-oidc/wechat-oidc/config"
	"github.com/wechat-oidc/wechat-oidc/directory"
)

// TestConsoleRevokesOneRefreshFamily: through the real bridge and the
// simulated WeChat, bob signs in to two applications (one SSO session, one
// refresh token family each); an administrator opens bob's page in the
// console, which lists both families under their applications, and
// revokes the first one. Its refresh token is then refused (invalid_grant)
// and its access token gets 401 at userinfo, while bob's other family
// still refreshes and answers userinfo, and his session is still listed.
// Under both subject rules: the console maps the person to the subjects
// their tokens carry.
func TestConsoleRevokesOneRefreshFamily(t *testing.T) {
	for _, subject := range []string{config.SubjectUnionID, config.SubjectPerson} {
		t.Run(subject, func(t *testing.T) {
			h := newHarness(t, withSubject(subject),
				withClient(rpClientID, func(c *config.ClientConfig) { c.RefreshTokens, c.Name = true, "Grafana 看板" }),
				withClient(rp2ClientID, func(c *config.ClientConfig) { c.RefreshTokens = true }))
			h.addPerson("alice", "admins")
			b := h.browser()
			revoked := h.login(h.rp(rpClientID, rpSecret, rpRedirect), b, "bob")
			kept := h.login(h.rp(rp2ClientID, rp2Secret, rp2Redirect), b, "bob")
			if revoked.token.RefreshToken == "" || kept.token.RefreshToken == "" {
				t.Fatal("test premise: both applications get refresh tokens")
			}
			bob := h.personOf("bob")

			h.sim.AutoApprove("alice")
			admin := h.browser()
			page := h.consoleGet(admin, "/admin/people/"+bob.ID)
			card := consoleAppCard(page, rpClientID)
			if !strings.Contains(card, "Grafana 看板") || strings.Count(card, "data-grant=") != 1 || !strings.Contains(card, "data-session=") {
				t.Fatalf("bob's page has no card for %s with its family and session:\n%.4000s", rpClientID, page)
			}
			if c2 := consoleAppCard(page, rp2ClientID); strings.Count(c2, "data-grant=") != 1 {
				t.Fatalf("bob's page has no family for %s:\n%.4000s", rp2ClientID, page)
			}
			family := regexp.MustCompile(`name="family" value="([^"]+)"`).FindStringSubmatch(card)
			csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
			if family == nil || csrf == nil {
				t.Fatal("no revoke form on bob's page")
			}
			req, _ := http.NewRequest(http.MethodPost, h.issuer()+"/admin/people/"+bob.ID+"/grants/revoke",
				strings.NewReader(url.Values{"csrf": {csrf[1]}, "family": {family[1]}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", strings.TrimSuffix(h.issuer(), "/"))
			resp, err := admin.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			after := readBody(t, resp)
			if resp.StatusCode != http.StatusOK || !strings.Contains(after, `data-flash="flash.grant"`) {
				t.Fatalf("revoking from the console: %d\n%.3000s", resp.StatusCode, after)
			}

			if status, e := h.refresh(rpClientID, rpSecret, revoked.token.RefreshToken); status != http.StatusBadRequest || e != "invalid_grant" {
				t.Fatalf("refresh of the revoked family: %d %v, want 400 invalid_grant", status, e)
			}
			if status := h.userinfoStatus(revoked.token.AccessToken); status != http.StatusUnauthorized {
				t.Fatalf("userinfo with the revoked family's access token: %d, want 401", status)
			}
			if status := h.userinfoStatus(kept.token.AccessToken); status != http.StatusOK {
				t.Fatalf("userinfo with the other family's access token: %d, want 200", status)
			}
			if status, e := h.refresh(rp2ClientID, rp2Secret, kept.token.RefreshToken); status != http.StatusOK {
				t.Fatalf("refresh of the other family: %d %v", status, e)
			}
			page = h.consoleGet(admin, "/admin/people/"+bob.ID)
			if strings.Contains(page, family[1]) || strings.Count(consoleAppCard(page, rp2ClientID), "data-grant=") != 1 ||
				!strings.Contains(consoleAppCard(page, rpClientID), "data-session=") {
				t.Fatalf("after the revocation bob's page should keep his session and other family only:\n%.4000s", page)
			}
			evs, err := h.dir.Audit().Query(context.Background(), directory.AuditQuery{PersonID: bob.ID, Action: directory.ActionSessionRevoke})
			if err != nil || len(evs) != 1 || evs[0].ClientID != rpClientID || evs[0].Actor == "" {
				t.Fatalf("revocation audit rows: %+v (%v)", evs, err)
			}
		})
	}
}

// consoleAppCard is the part of a console person page about one
// application.
func consoleAppCard(page, clientID string) string {
	start := strings.Index(page, `data-app="`+clientID+`"`)
	if start < 0 {
		return ""
	}
	rest := page[start:]
	if end := strings.Index(rest[1:], `<div class="card"`); end >= 0 {
		rest = rest[:end+1]
	}
	if end := strings.Index(rest, `<h2>`); end >= 0 {
		rest = rest[:end]
	}
	return rest
}
