package bridge

import (
	"github.com/wechat-oidc/wechat-oidc/config"
	wechatconn "github.com/wechat-oidc/wechat-oidc/connector/wechat"
	"testing"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

func TestShapedClaimsPerClient(t *testing.T) {
	var aliceSub string
	h := newHarness(t,
		withClient(rpClientID, func(c *config.ClientConfig) {
			c.Claims = config.ClientClaimsConfig{Email: "{preferred_username}@wechat.example.com", EmailVerified: true, GivenName: "{name}", FamilyName: "(WeChat)"}
		}))
	// Put alice in groups in the directory, under the username she would
	// get anyway.
	aliceSub = h.sim.UnionID("alice")
	h.addPerson("alice", "admins", "ops")

	r := h.rp(rpClientID, rpSecret, rpRedirect, gooidc.ScopeOpenID, "profile", "email", "groups")
	res := h.login(r, h.browser(), "alice")
	c := res.claims
	wantEmail := wechatconn.PreferredUsername(aliceSub) + "@wechat.example.com"
	if c["email"] != wantEmail || c["email_verified"] != true {
		t.Errorf("email: %v %v", c["email"], c["email_verified"])
	}
	if c["given_name"] != "Alice 爱丽丝" || c["family_name"] != "(WeChat)" {
		t.Errorf("names: %v %v", c["given_name"], c["family_name"])
	}
	gs, _ := c["groups"].([]any)
	if len(gs) != 2 || gs[0] != "admins" || gs[1] != "ops" {
		t.Errorf("groups: %v", c["groups"])
	}
	ui, err := r.provider.UserInfo(r.ctx, oauth2.StaticTokenSource(res.token))
	if err != nil {
		t.Fatal(err)
	}
	var uc map[string]any
	_ = ui.Claims(&uc)
	if uc["email"] != wantEmail || uc["given_name"] != "Alice 爱丽丝" {
		t.Errorf("userinfo lacks shaped claims: %v", uc)
	}

	// Another client, without templates, in the same SSO session: none of it.
	b := h.browser()
	h.login(r, b, "alice")
	other := h.login(h.rp(rp2ClientID, rp2Secret, rp2Redirect, gooidc.ScopeOpenID, "profile", "email"), b, "alice")
	if _, ok := other.claims["email"]; ok {
		t.Errorf("rp2 got rp's synthetic email: %v", other.claims)
	}
	if _, ok := other.claims["given_name"]; ok {
		t.Errorf("rp2 got rp's given_name: %v", other.claims)
	}

	// Without the email scope, no email even for rp.
	noEmail := h.login(h.rp(rpClientID, rpSecret, rpRedirect, gooidc.ScopeOpenID, "profile"), h.browser(), "alice")
	if _, ok := noEmail.claims["email"]; ok {
		t.Errorf("email released without scope email: %v", noEmail.claims)
	}
}

func TestClaimTemplateWithoutValueYieldsNoClaim(t *testing.T) {
	// snsapi_base gives no nickname: given_name "{name}" must be absent, not "".
	h := newHarness(t, withSubject(config.SubjectOpenID), withScope("snsapi_base"),
		withClient(rpClientID, func(c *config.ClientConfig) {
			c.Claims = config.ClientClaimsConfig{GivenName: "{name}", Email: "{sub}@x.example.com"}
		}))
	res := h.login(h.rp(rpClientID, rpSecret, rpRedirect, gooidc.ScopeOpenID, "profile", "email"), h.browser(), "alice")
	if _, ok := res.claims["given_name"]; ok {
		t.Errorf("given_name from an empty nickname: %v", res.claims)
	}
	if res.claims["email"] != h.sim.OpenID(testAppID, "alice")+"@x.example.com" || res.claims["email_verified"] != false {
		t.Errorf("email: %v", res.claims)
	}
}
