package bridge

// Two relying parties that cannot run on our machines — Keycloak (Java, no
// registry reachable here) and Grafana (AGPL) — reduced to the documented
// behaviours our guides rely on. Every step names the source file and
// function (or the documentation page) it follows; nothing else is
// imitated. Each helper drives the real server and the WeChat simulator
// with the bridge set up as its guide says: approval mode, people approved
// in the directory, allowed_groups on the client.
//
// What real applications prove is not repeated here: discovery, ID token
// verification, PKCE, client_secret_basic, no nonce, the access decision
// (approval, allowed_groups, disabling) — oauth2-proxy
// (oauth2proxy_test.go), Gitea (gitea_test.go) and go-oidc (e2e_test.go,
// people_test.go, security_test.go).

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	jmespath "github.com/jmespath-community/go-jmespath"
	"golang.org/x/oauth2"

	"github.com/wechat-oidc/wechat-oidc/config"
	wechatconn "github.com/wechat-oidc/wechat-oidc/connector/wechat"
	"github.com/wechat-oidc/wechat-oidc/directory"
)

// ---------------------------------------------------------------------------
// Keycloak: an "OpenID Connect v1.0" identity provider in a realm.
// Sources (github.com/keycloak/keycloak, main as of 2026):
//   services/src/main/java/org/keycloak/broker/oidc/OIDCIdentityProvider.java
//   services/src/main/java/org/keycloak/broker/oidc/AbstractOAuth2IdentityProvider.java
//   services/src/main/java/org/keycloak/broker/oidc/mappers/AbstractClaimMapper.java
//   services/src/main/java/org/keycloak/services/resources/IdentityBrokerService.java
//   services/src/main/java/org/keycloak/protocol/oidc/endpoints/LogoutEndpoint.java
//   services/src/main/java/org/keycloak/protocol/oidc/TokenManager.java
//   services/src/main/resources/org/keycloak/userprofile/config/keycloak-default-user-profile.json
//   org.keycloak.userprofile.validator.PersonNameProhibitedCharactersValidator (PATTERN)

const (
	kcAlias          = "wechat" // the identity provider's alias, part of kcBroker
	kcBroker         = "http://" + rpHost + "/realms/demo/broker/" + kcAlias + "/endpoint"
	kcBackchannel    = "/realms/demo/protocol/openid-connect/logout/backchannel-logout"
	kcLogoutResponse = kcBroker + "/logout_response"
	kcUserSession    = "5c3e9a4e-0b7d-4c55-9a43-0a6f2f1d8e21" // Keycloak's user session id: the state of its logout requests
	kcUsers          = "keycloak-users"
	kcAdmins         = "keycloak-admins"
)

// kcGuideClaims are the claim templates of docs/integrations/keycloak.md.
var kcGuideClaims = config.ClientClaimsConfig{Email: "{username}@wechat.example.com", GivenName: "{name}", FamilyName: "WeChat"}

// keycloakHarness is the bridge as docs/integrations/keycloak.md sets it up:
// approval mode, the client limited to keycloak-users, Keycloak's default
// client authentication pinned. alice (also in keycloak-admins) and bob are
// approved people of that group. opts come last (e.g. a
// backchannel_logout_uri).
func keycloakHarness(t *testing.T, claims config.ClientClaimsConfig, opts ...harnessOption) *harness {
	t.Helper()
	h := newHarness(t, append([]harnessOption{withAccess(config.AccessApproval), withClient(rpClientID, func(c *config.ClientConfig) {
		c.RedirectURIs = append(c.RedirectURIs, kcBroker)
		c.PostLogoutRedirectURIs = []string{kcLogoutResponse}
		c.TokenEndpointAuthMethod = "client_secret_post"
		c.AllowedGroups = []string{kcUsers}
		c.Claims = claims
	})}, opts...)...)
	h.addPerson("alice", kcUsers, kcAdmins)
	h.addPerson("bob", kcUsers)
	return h
}

// keycloakBroker is what "Use discovery endpoint" imports
// (OIDCIdentityProviderFactory.parseOIDCConfig) plus the client settings an
// administrator enters, at their defaults.
type keycloakBroker struct {
	h                                                 *harness
	issuer, authURL, tokenURL, userinfoURL, logoutURL string
	verifier                                          *gooidc.IDTokenVerifier
	ctx                                               context.Context
}

func keycloakImport(t *testing.T, h *harness) *keycloakBroker {
	t.Helper()
	kc := &keycloakBroker{h: h, ctx: gooidc.ClientContext(context.Background(), &http.Client{Timeout: 10 * time.Second, CheckRedirect: noRedirects})}
	resp, err := http.Get(h.issuer() + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d struct {
		Issuer     string `json:"issuer"`
		Auth       string `json:"authorization_endpoint"`
		Token      string `json:"token_endpoint"`
		Userinfo   string `json:"userinfo_endpoint"`
		EndSession string `json:"end_session_endpoint"`
		JWKS       string `json:"jwks_uri"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatalf("discovery: %v", err)
	}
	if d.Issuer == "" || d.Auth == "" || d.Token == "" || d.Userinfo == "" || d.EndSession == "" || d.JWKS == "" {
		t.Fatalf("discovery lacks a URL Keycloak imports: %+v", d)
	}
	kc.issuer, kc.authURL, kc.tokenURL, kc.userinfoURL, kc.logoutURL = d.Issuer, d.Auth, d.Token, d.Userinfo, d.EndSession
	// "Validate signatures" and "Use JWKS URL" are on after the import.
	kc.verifier = gooidc.NewVerifier(d.Issuer, gooidc.NewRemoteKeySet(kc.ctx, d.JWKS), &gooidc.Config{ClientID: rpClientID})
	return kc
}

// keycloakIdentity is the BrokeredIdentityContext Keycloak builds, with the
// ID token it stores for logout (FEDERATED_ID_TOKEN) and the token
// response's session_state.
type keycloakIdentity struct {
	ID, Username, FirstName, LastName, Email string
	BrokerUserID, BrokerSessionID            string
	idToken, sessionState                    string
	idClaims, userinfo                       map[string]any
}

// errKeycloakNotReached: the browser never came back to the broker endpoint
// (the bridge showed a page instead).
var errKeycloakNotReached = errors.New("the browser did not come back to Keycloak's broker endpoint")

// login is one brokered sign-in of user, as Keycloak runs it.
func (kc *keycloakBroker) login(b *http.Client, user string) (*keycloakIdentity, error) {
	h := kc.h
	var got url.Values
	h.t.Helper()
	// AbstractOAuth2IdentityProvider.createAuthorizationUrl: scope, state
	// (IdentityBrokerState: "<code>.<tabId>.<clientId>"), response_type,
	// client_id, redirect_uri; OIDCIdentityProvider.createAuthorizationUrl
	// adds a nonce of 16 random bytes unless "Disable nonce" is on.
	state := randomID(22) + ".Xq2RZ1bFmQk.account-console"
	nonce := base64.RawURLEncoding.EncodeToString(randomBytes(16))
	q := url.Values{"scope": {"openid profile email groups"}, "state": {state}, "response_type": {"code"},
		"client_id": {rpClientID}, "redirect_uri": {kcBroker}, "nonce": {nonce}}
	h.sim.AutoApprove(user)
	if _, got = h.authorize(b, kc.authURL+"?"+q.Encode()); got == nil {
		return nil, errKeycloakNotReached
	}
	// Endpoint.authResponse: access_denied is "cancelled", any other error
	// an error page; a code goes to the token endpoint.
	if e := got.Get("error"); e != "" {
		return nil, fmt.Errorf("identity provider error %s: %s", e, got.Get("error_description"))
	}
	if got.Get("state") != state {
		return nil, fmt.Errorf("state %q, want %q", got.Get("state"), state)
	}
	// Endpoint.generateTokenRequest, then authenticateTokenRequest with the
	// default "Client secret sent as post": client_id and client_secret in
	// the form, no Authorization header.
	tok, err := kc.tokenRequest(url.Values{"code": {got.Get("code")}, "redirect_uri": {kcBroker}, "grant_type": {"authorization_code"},
		"client_id": {rpClientID}, "client_secret": {rpSecret}})
	if err != nil {
		return nil, err
	}
	// getFederatedIdentity: verifyAccessToken, validateToken, extractIdentity,
	// the subject match; preprocessFederatedIdentity: the nonce.
	at, _ := tok["access_token"].(string)
	if at == "" {
		return nil, errors.New("No access_token from server.")
	}
	rawID, _ := tok["id_token"].(string)
	claims, err := kc.validateToken(rawID)
	if err != nil {
		return nil, err
	}
	id, err := kc.extractIdentity(at, claims)
	if err != nil {
		return nil, err
	}
	if id.ID != claims["sub"] {
		return nil, errors.New("Mismatch between the subject in the id_token and the subject from the user_info endpoint")
	}
	if claims["nonce"] != nonce {
		return nil, errors.New("invalid nonce")
	}
	id.idToken = rawID
	// OIDCIdentityProvider.extractIdentity: setBrokerUserId(alias + "." +
	// id), and setBrokerSessionId(alias + "." + session_state) only when
	// the token response (AccessTokenResponse.getSessionState) has one.
	// (keycloak/keycloak#48674, 2026, makes later releases prefer the ID
	// token's sid; the bridge sends both, equal.)
	id.BrokerUserID = kcAlias + "." + id.ID
	if ss, _ := tok["session_state"].(string); ss != "" {
		id.sessionState = ss
		id.BrokerSessionID = kcAlias + "." + ss
	}
	return id, nil
}

func (kc *keycloakBroker) tokenRequest(form url.Values) (map[string]any, error) {
	resp, err := http.PostForm(kc.tokenURL, form)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var tok map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
		return nil, fmt.Errorf("Could not decode access token response: %w", err)
	}
	// Endpoint.authResponse: a status outside 2xx–3xx is a failed login.
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return nil, fmt.Errorf("Unexpected response from token endpoint: %d %v", resp.StatusCode, tok)
	}
	return tok, nil
}

// validateToken is OIDCIdentityProvider.validateToken: the signature with
// the JWKS key (verify), isActive (exp, nbf), hasAudience(clientId) and the
// trusted issuer — the checks go-oidc makes the same way — and the one
// go-oidc does not make: azp, when present, equal to the client id.
func (kc *keycloakBroker) validateToken(raw string) (map[string]any, error) {
	if raw == "" {
		return nil, errors.New("No token from server.")
	}
	idt, err := kc.verifier.Verify(kc.ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("Invalid token: %w", err)
	}
	var c map[string]any
	if err := idt.Claims(&c); err != nil {
		return nil, err
	}
	if azp, ok := c["azp"]; ok && azp != rpClientID {
		return nil, errors.New("Token issued for does not match client id")
	}
	return c, nil
}

// extractIdentity is OIDCIdentityProvider.extractIdentity: the claims of the
// ID token, then — "Disable user info" being off by default — userinfo with
// the access token as Bearer, whose values replace every one of them (a
// claim missing from userinfo becomes empty). The response must be JSON
// (or application/jwt, which the bridge never sends).
func (kc *keycloakBroker) extractIdentity(accessToken string, claims map[string]any) (*keycloakIdentity, error) {
	req, _ := http.NewRequest(http.MethodGet, kc.userinfoURL, nil)
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("Failed to invoke url [%s]: %s", kc.userinfoURL, body)
	}
	ct := resp.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
		return nil, fmt.Errorf("Unsupported content-type [%s] in response from [%s].", ct, kc.userinfoURL)
	}
	var ui map[string]any
	if err := json.Unmarshal(body, &ui); err != nil {
		return nil, err
	}
	// getJsonProperty: a missing or empty string is null.
	str := func(k string) string { s, _ := ui[k].(string); return s }
	id := &keycloakIdentity{ID: str("sub"), Email: str("email"), idClaims: claims, userinfo: ui}
	given, family, name := str("given_name"), str("family_name"), str("name")
	id.FirstName, id.LastName = given, family
	if given == "" && family == "" && name != "" {
		// BrokeredIdentityContext.setName: first name up to the last space.
		if i := strings.LastIndex(name, " "); i >= 0 {
			id.FirstName, id.LastName = name[:i], name[i+1:]
		} else {
			id.FirstName = name
		}
	}
	// The username: preferred_username, else email, else the subject.
	id.Username = str("preferred_username")
	if id.Username == "" {
		id.Username = id.Email
	}
	if id.Username == "" {
		id.Username = id.ID
	}
	return id, nil
}

// kcPersonName is PersonNameProhibitedCharactersValidator.PATTERN, which the
// default user profile applies to firstName and lastName (Java's \v and
// \p{Cntrl} spelt out).
var kcPersonName = regexp.MustCompile(`^[^<>&"\n\x0B\f\r\x{85}\x{2028}\x{2029}$%!#?§;*~/\\|^=\[\]{}()\x00-\x1F\x7F]+$`)

// reviewProfileReasons says why the first broker login's "Review Profile"
// step (IdpReviewProfileAuthenticator, update.profile.on.first.login
// "missing", the default) would stop this person: the attributes of
// keycloak-default-user-profile.json the brokered identity does not
// satisfy. Empty: the step is skipped.
func (id *keycloakIdentity) reviewProfileReasons() []string {
	var out []string
	if n := utf8.RuneCountInString(id.Username); n < 3 || n > 255 {
		out = append(out, "username: length 3-255")
	}
	if id.Email == "" {
		out = append(out, "email: required")
	}
	for _, f := range []struct{ name, v string }{{"firstName", id.FirstName}, {"lastName", id.LastName}} {
		switch {
		case f.v == "":
			out = append(out, f.name+": required")
		case utf8.RuneCountInString(f.v) > 255 || !kcPersonName.MatchString(f.v):
			out = append(out, f.name+": person-name-prohibited-characters")
		}
	}
	return out
}

// claimHasValue is the "Claim to Role" mapper's test
// (AbstractClaimMapper.hasClaimValue): the claim from the ID token, else
// userinfo; a value equal to the wanted one, or an array containing it.
func (id *keycloakIdentity) claimHasValue(claim, want string) bool {
	v, ok := id.idClaims[claim]
	if !ok {
		v = id.userinfo[claim]
	}
	switch v := v.(type) {
	case string:
		return v == want
	case []any:
		return slices.Contains(v, any(want))
	}
	return false
}

// browserLogout is keycloakInitiatedBrowserLogout with "Backchannel logout"
// off: the browser goes to the end_session endpoint with state (the user
// session id), id_token_hint — the ID token stored at login, expired or not
// — when "Send 'id_token_hint'" is on (the default), client_id when "Send
// 'client_id'" is on (off by default), and the broker's logout_response.
func (kc *keycloakBroker) browserLogout(storedIDToken string, sendIDToken, sendClientID bool) string {
	v := url.Values{"state": {kcUserSession}, "post_logout_redirect_uri": {kcLogoutResponse}}
	if sendIDToken && storedIDToken != "" {
		v.Set("id_token_hint", storedIDToken)
	}
	if sendClientID {
		v.Set("client_id", rpClientID)
	}
	return kc.logoutURL + "?" + v.Encode()
}

func TestKeycloakFirstBrokerLoginWithGuideTemplatesSkipsReviewProfile(t *testing.T) {
	h := keycloakHarness(t, kcGuideClaims)
	id, err := keycloakImport(t, h).login(h.browser(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	username := wechatconn.PreferredUsername(h.sim.UnionID("alice")) // the directory's username
	if id.ID != h.sim.UnionID("alice") || id.Username != username || id.Email != username+"@wechat.example.com" ||
		id.FirstName != "Alice 爱丽丝" || id.LastName != "WeChat" {
		t.Fatalf("brokered identity = %+v", *id)
	}
	if r := id.reviewProfileReasons(); len(r) != 0 {
		t.Fatalf("Keycloak would show Review Profile: %v", r)
	}
	// Userinfo replaces every value of the ID token: the shaped claims must
	// be there too, the same.
	for _, k := range []string{"email", "email_verified", "given_name", "family_name", "preferred_username", "name"} {
		if id.userinfo[k] == nil || id.userinfo[k] != id.idClaims[k] {
			t.Errorf("%s: ID token %v, userinfo %v", k, id.idClaims[k], id.userinfo[k])
		}
	}
}

func TestKeycloakReviewProfileNeedsEmail(t *testing.T) {
	h := keycloakHarness(t, config.ClientClaimsConfig{})
	id, err := keycloakImport(t, h).login(h.browser(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	// Without templates: no email; the name is split at its last space.
	if id.Email != "" || id.FirstName != "Alice" || id.LastName != "爱丽丝" {
		t.Fatalf("brokered identity = %+v", *id)
	}
	if r := id.reviewProfileReasons(); !slices.Equal(r, []string{"email: required"}) {
		t.Fatalf("Review Profile reasons = %v, want the missing email only", r)
	}
	// An administrator sets bob's real address in the directory: it is
	// released instead, without a template.
	bob := h.personOf("bob")
	mail, verified := "bob@corp.example.com", true
	if _, err := h.dir.People().Update(context.Background(), bob.ID, directory.PersonUpdate{Email: &mail, EmailVerified: &verified}); err != nil {
		t.Fatal(err)
	}
	id, err = keycloakImport(t, h).login(h.browser(), "bob")
	if err != nil {
		t.Fatal(err)
	}
	if id.Email != mail || id.idClaims["email_verified"] != true {
		t.Fatalf("directory email: %q verified %v", id.Email, id.idClaims["email_verified"])
	}
}

// TestKeycloakReviewProfileRefusesParenthesesInLastName: the default user
// profile forbids ( ) and other characters in names, so a family_name
// template such as "(WeChat)" sends everyone to Review Profile.
func TestKeycloakReviewProfileRefusesParenthesesInLastName(t *testing.T) {
	claims := kcGuideClaims
	claims.FamilyName = "(WeChat)"
	h := keycloakHarness(t, claims)
	id, err := keycloakImport(t, h).login(h.browser(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if r := id.reviewProfileReasons(); !slices.Equal(r, []string{"lastName: person-name-prohibited-characters"}) {
		t.Fatalf("Review Profile reasons = %v", r)
	}
}

// TestKeycloakClaimToRoleMapperFollowsDirectoryGroups: a "Claim to Role"
// mapper on claim groups, value keycloak-admins, grants the role to a person
// in that directory group; taken out of the group, the person's next sign-in
// no longer matches, and sync mode "force" revokes the role
// (AbstractClaimToRoleMapper.updateBrokeredUser).
func TestKeycloakClaimToRoleMapperFollowsDirectoryGroups(t *testing.T) {
	h := keycloakHarness(t, kcGuideClaims)
	kc := keycloakImport(t, h)
	for user, want := range map[string]bool{"alice": true, "bob": false} {
		id, err := kc.login(h.browser(), user)
		if err != nil {
			t.Fatal(err)
		}
		if got := id.claimHasValue("groups", kcAdmins); got != want {
			t.Errorf("%s: mapper applies = %v, want %v (groups %v)", user, got, want, id.idClaims["groups"])
		}
	}
	groups := []string{kcUsers}
	if _, err := h.dir.People().Update(context.Background(), h.personOf("alice").ID, directory.PersonUpdate{Groups: &groups}); err != nil {
		t.Fatal(err)
	}
	id, err := kc.login(h.browser(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if id.claimHasValue("groups", kcAdmins) {
		t.Fatalf("after leaving %s the mapper still applies: groups %v", kcAdmins, id.idClaims["groups"])
	}
}

// TestKeycloakBrowserLogoutReturnsToBroker: with the defaults (id_token_hint
// sent, client_id not) the bridge ends the session at once and returns to
// logout_response with Keycloak's state — also when the stored ID token has
// expired, which Keycloak sends as it is (RP-Initiated Logout 1.0 §2: the
// OP accepts an expired hint).
func TestKeycloakBrowserLogoutReturnsToBroker(t *testing.T) {
	for name, after := range map[string]time.Duration{"fresh ID token": 0, "expired ID token": 61 * time.Minute} {
		t.Run(name, func(t *testing.T) {
			h := keycloakHarness(t, kcGuideClaims)
			kc := keycloakImport(t, h)
			b := h.browser()
			id, err := kc.login(b, "alice")
			if err != nil {
				t.Fatal(err)
			}
			h.advance(after)
			resp, q := h.authorize(b, kc.browserLogout(id.idToken, true, false))
			if loc := resp.Header.Get("Location"); q == nil || !strings.HasPrefix(loc, kcLogoutResponse+"?") || q.Get("state") != kcUserSession {
				t.Fatalf("logout: %d to %q", resp.StatusCode, loc)
			}
			if h.sessionAlive(b) {
				t.Fatal("the bridge's session survived the logout")
			}
		})
	}
}

// TestKeycloakLogoutWithoutIDTokenHintAsksToConfirm: with "Send
// 'id_token_hint'" off the bridge cannot tell the request is genuine and
// asks the person; it returns to Keycloak only when "Send 'client_id'"
// identifies the client whose post_logout_redirect_uri this is
// (RP-Initiated Logout 1.0 §3: never an unverified redirect).
func TestKeycloakLogoutWithoutIDTokenHintAsksToConfirm(t *testing.T) {
	for name, sendClientID := range map[string]bool{"client_id sent": true, "client_id not sent": false} {
		t.Run(name, func(t *testing.T) {
			h := keycloakHarness(t, kcGuideClaims)
			kc := keycloakImport(t, h)
			b := h.browser()
			if _, err := kc.login(b, "alice"); err != nil {
				t.Fatal(err)
			}
			resp, q := h.authorize(b, kc.browserLogout("", false, sendClientID))
			body := readBody(t, resp)
			if q != nil || resp.StatusCode != http.StatusOK || !strings.Contains(body, `name="confirm"`) {
				t.Fatalf("expected the confirmation page: %d %v", resp.StatusCode, q)
			}
			resp, err := b.PostForm(kc.logoutURL, formFields(body))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			loc, _ := url.Parse(resp.Header.Get("Location"))
			returned := resp.StatusCode == http.StatusFound && strings.HasPrefix(loc.String(), kcLogoutResponse+"?") && loc.Query().Get("state") == kcUserSession
			if returned != sendClientID {
				t.Fatalf("confirmed: %d %q; want a return to Keycloak: %v", resp.StatusCode, loc, sendClientID)
			}
			if h.sessionAlive(b) {
				t.Fatal("the bridge's session survived the confirmed logout")
			}
		})
	}
}

// TestKeycloakBackchannelSwitchEndsBrowserSession: with the IdP's
// "Backchannel logout" on, Keycloak calls the end_session endpoint from its
// server (OIDCIdentityProvider.backchannelLogout: GET with state and
// id_token_hint, no cookie; 2xx or 3xx is success): the bridge ends the
// session the hint's sid names.
func TestKeycloakBackchannelSwitchEndsBrowserSession(t *testing.T) {
	h := keycloakHarness(t, kcGuideClaims)
	kc := keycloakImport(t, h)
	b := h.browser()
	id, err := kc.login(b, "alice")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := (&http.Client{CheckRedirect: noRedirects}).Get(kc.logoutURL + "?" + url.Values{"state": {kcUserSession}, "id_token_hint": {id.idToken}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		t.Fatalf("Keycloak would log a failed backchannel broker logout: %d", resp.StatusCode)
	}
	if h.sessionAlive(b) {
		t.Fatal("the browser's session survived Keycloak's server-side logout")
	}
}

// keycloakRealm is the realm's user sessions the broker created and its
// back-channel logout endpoint. IdentityBrokerService.finishBrokerAuthentication
// puts the identity's broker session and user ids in the authentication
// session (AuthenticationProcessor.BROKER_SESSION_ID, BROKER_USER_ID), and
// the user session is created with them (createUserSession(...,
// brokerSessionId, brokerUserId)).
type keycloakRealm struct {
	kc       *keycloakBroker // set once the bridge runs (the endpoint checks tokens with it)
	srv      *httptest.Server
	mu       sync.Mutex
	sessions map[string]kcSession // by Keycloak's user session id
	answers  []string             // what the endpoint answered, for failure messages
}

type kcSession struct{ user, brokerSessionID, brokerUserID string }

func newKeycloakRealm(t *testing.T) *keycloakRealm {
	t.Helper()
	r := &keycloakRealm{sessions: map[string]kcSession{}}
	mux := http.NewServeMux()
	mux.HandleFunc(kcBackchannel, r.backchannelLogout)
	r.srv = httptest.NewServer(mux)
	t.Cleanup(r.srv.Close)
	return r
}

// signIn is the user session a brokered sign-in creates, with id
// userSessionID ("": a new one).
func (r *keycloakRealm) signIn(user string, id *keycloakIdentity, userSessionID string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if userSessionID == "" {
		userSessionID = randomID(22)
	}
	r.sessions[userSessionID] = kcSession{user: user, brokerSessionID: id.BrokerSessionID, brokerUserID: id.BrokerUserID}
	return userSessionID
}

func (r *keycloakRealm) alive(userSessionID string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.sessions[userSessionID]
	return ok
}

func (r *keycloakRealm) answered() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.answers)
}

func (r *keycloakRealm) answer(w http.ResponseWriter, status int, why string) {
	r.mu.Lock()
	r.answers = append(r.answers, fmt.Sprintf("%d %s", status, why))
	r.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
}

// backchannelLogout is LogoutEndpoint.backchannelLogout: a form POST with
// logout_token; TokenManager.verifyLogoutToken (an OIDC identity provider
// with an issuer equal to the token's iss — isIssuer — whose validateToken
// accepts it: signature, exp, aud = client id, azp; then sid or sub, the
// back-channel event, no nonce, jti, iat; any failure is 400); then
// backchannelLogoutWithSessionId when the token has a sid —
// getUserSessionByBrokerSessionId(alias + "." + sid), nothing ended and
// still 200 when none matches — else backchannelLogoutFederatedUserId
// (every session of brokerUserId alias + "." + sub). The offline-session
// branch (revoke_offline_access event) is not imitated: the bridge never
// sends it.
func (r *keycloakRealm) backchannelLogout(w http.ResponseWriter, req *http.Request) {
	if mt, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type")); req.Method != http.MethodPost || mt != "application/x-www-form-urlencoded" {
		r.answer(w, http.StatusUnsupportedMediaType, "not a form POST")
		return
	}
	if err := req.ParseForm(); err != nil {
		r.answer(w, http.StatusBadRequest, err.Error())
		return
	}
	raw := req.PostForm.Get("logout_token")
	if raw == "" {
		r.answer(w, http.StatusBadRequest, "No logout token")
		return
	}
	// toLogoutToken: the payload, before any check.
	parts := strings.Split(raw, ".")
	var lt map[string]any
	if len(parts) != 3 {
		r.answer(w, http.StatusBadRequest, "DECODE_TOKEN_FAILED")
		return
	}
	if payload, err := base64.RawURLEncoding.DecodeString(parts[1]); err != nil || json.Unmarshal(payload, &lt) != nil {
		r.answer(w, http.StatusBadRequest, "DECODE_TOKEN_FAILED")
		return
	}
	// validateLogoutTokenAgainstIdpProvider: the one OIDC provider of the
	// realm, its issuer set by the discovery import.
	if lt["iss"] != r.kc.issuer {
		r.answer(w, http.StatusBadRequest, "TOKEN_VERIFICATION_WITH_IDP_FAILED: issuer")
		return
	}
	if _, err := r.kc.validateToken(raw); err != nil {
		r.answer(w, http.StatusBadRequest, "TOKEN_VERIFICATION_WITH_IDP_FAILED: "+err.Error())
		return
	}
	str := func(k string) string { v, _ := lt[k].(string); return v }
	events, _ := lt["events"].(map[string]any)
	_, hasEvent := events[backchannelEvent]
	_, hasNonce := lt["nonce"]
	_, hasIat := lt["iat"]
	switch {
	case str("sub") == "" && str("sid") == "":
		r.answer(w, http.StatusBadRequest, "MISSING_SID_OR_SUBJECT")
		return
	case !hasEvent:
		r.answer(w, http.StatusBadRequest, "BACKCHANNEL_LOGOUT_EVENT_MISSING")
		return
	case hasNonce:
		r.answer(w, http.StatusBadRequest, "NONCE_CLAIM_IN_TOKEN")
		return
	case str("jti") == "":
		r.answer(w, http.StatusBadRequest, "LOGOUT_TOKEN_ID_MISSING")
		return
	case !hasIat:
		r.answer(w, http.StatusBadRequest, "MISSING_IAT_CLAIM")
		return
	}
	r.mu.Lock()
	ended := 0
	for id, s := range r.sessions {
		if sid := str("sid"); (sid != "" && s.brokerSessionID == kcAlias+"."+sid) || (sid == "" && s.brokerUserID == kcAlias+"."+str("sub")) {
			delete(r.sessions, id) // logoutUserSession → AuthenticationManager.backchannelLogout
			ended++
			if sid != "" {
				break // getUserSessionByBrokerSessionId finds one
			}
		}
	}
	r.mu.Unlock()
	r.answer(w, http.StatusOK, fmt.Sprintf("sid %q sub %q: %d user sessions ended", str("sid"), str("sub"), ended))
}

// TestKeycloakBackchannelLogoutFindsBrokerSession: with Keycloak's
// back-channel logout URL as the client's backchannel_logout_uri, a
// session that ends at the bridge — the person signs out there, or an
// administrator disables them — ends the Keycloak session brokered from it:
// Keycloak recorded "wechat.<session_state>" at login and the logout_token's
// sid names the same session. Another person's Keycloak session stays.
func TestKeycloakBackchannelLogoutFindsBrokerSession(t *testing.T) {
	for _, how := range []string{"signed out at the bridge", "disabled in the directory"} {
		t.Run(how, func(t *testing.T) {
			realm := newKeycloakRealm(t)
			h := keycloakHarness(t, kcGuideClaims, withClient(rpClientID, func(c *config.ClientConfig) {
				c.BackchannelLogoutURI = realm.srv.URL + kcBackchannel
			}))
			kc := keycloakImport(t, h)
			realm.kc = kc
			signIn := func(user string) (*http.Client, *keycloakIdentity, string) {
				b := h.browser()
				id, err := kc.login(b, user)
				if err != nil {
					t.Fatalf("%s: %v", user, err)
				}
				if id.sessionState == "" || id.sessionState != id.idClaims["sid"] {
					t.Fatalf("%s: token response session_state %q, ID token sid %v: Keycloak records no broker session, or one the logout_token's sid does not name", user, id.sessionState, id.idClaims["sid"])
				}
				return b, id, realm.signIn(user, id, "")
			}
			b, _, alice := signIn("alice")
			_, _, bob := signIn("bob")

			switch how {
			case "signed out at the bridge":
				// Not through Keycloak: the bridge's own logout, confirmed.
				resp, q := h.authorize(b, kc.logoutURL)
				body := readBody(t, resp)
				if q != nil || !strings.Contains(body, `name="confirm"`) {
					t.Fatalf("expected the confirmation page: %d %v", resp.StatusCode, q)
				}
				resp, err := b.PostForm(kc.logoutURL, formFields(body))
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if h.sessionAlive(b) {
					t.Fatal("the bridge's session survived the confirmed logout")
				}
			case "disabled in the directory":
				p := h.personOf("alice")
				disabled := directory.StatusDisabled
				if _, err := h.dir.People().Update(context.Background(), p.ID, directory.PersonUpdate{Status: &disabled}); err != nil {
					t.Fatal(err)
				}
				if err := h.dir.Audit().Append(context.Background(), directory.Event{Actor: "cli", Action: directory.ActionPersonDisable, PersonID: p.ID}); err != nil {
					t.Fatal(err)
				}
				h.srv.carryOutRevocations(context.Background(), 0)
			}
			h.srv.WaitBackchannel()

			answers := realm.answered()
			if len(answers) != 1 || !strings.HasPrefix(answers[0], "200 ") {
				t.Fatalf("Keycloak's back-channel logout endpoint answered %q, want one 200", answers)
			}
			if realm.alive(alice) {
				t.Fatalf("alice's Keycloak session survived (%s)", answers[0])
			}
			if !realm.alive(bob) {
				t.Fatal("bob's Keycloak session ended with alice's")
			}
		})
	}
}

// TestKeycloakBrowserLogoutWithBackchannelURIFindsSessionGone: a logout
// Keycloak starts (keycloakInitiatedBrowserLogout, "Backchannel logout"
// off: the browser goes to end_session with state = Keycloak's user
// session id) ends the bridge's session, and the bridge tells every client
// of it, Keycloak included, before it answers the browser. Keycloak's
// LogoutEndpoint.backchannelLogout finds the user session by its broker
// session id and AuthenticationManager.backchannelLogout removes it, even
// though it is LOGGING_OUT; when the browser comes back,
// OIDCEndpoint.logoutResponse finds no user session for the state and shows
// an error page (IDENTITY_PROVIDER_UNEXPECTED_ERROR, 400) instead of
// finishing the logout. The person is signed out of both; the guide says
// so. Should the bridge ever skip the client that started the logout, this
// test says so too.
func TestKeycloakBrowserLogoutWithBackchannelURIFindsSessionGone(t *testing.T) {
	realm := newKeycloakRealm(t)
	h := keycloakHarness(t, kcGuideClaims, withClient(rpClientID, func(c *config.ClientConfig) {
		c.BackchannelLogoutURI = realm.srv.URL + kcBackchannel
	}))
	kc := keycloakImport(t, h)
	realm.kc = kc
	b := h.browser()
	id, err := kc.login(b, "alice")
	if err != nil {
		t.Fatal(err)
	}
	realm.signIn("alice", id, kcUserSession)
	resp, q := h.authorize(b, kc.browserLogout(id.idToken, true, false))
	if loc := resp.Header.Get("Location"); q == nil || !strings.HasPrefix(loc, kcLogoutResponse+"?") || q.Get("state") != kcUserSession {
		t.Fatalf("logout: %d to %q", resp.StatusCode, loc)
	}
	// The delivery started before the redirect was written; the browser's
	// next request comes after it.
	h.srv.WaitBackchannel()
	// OIDCEndpoint.logoutResponse: getUserSession(realm, state).
	if realm.alive(q.Get("state")) {
		t.Fatalf("Keycloak's user session outlived the bridge's logout_token (%q): logout_response would finish the logout", realm.answered())
	}
}

// formFields reads the name/value pairs of a page's form.
func formFields(body string) url.Values {
	v := url.Values{}
	for _, m := range regexp.MustCompile(`name="([^"]+)" value="([^"]*)"`).FindAllStringSubmatch(body, -1) {
		v.Set(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	return v
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return b
}

// ---------------------------------------------------------------------------
// Grafana generic OAuth. Sources (github.com/grafana/grafana, main as of 2026):
//   pkg/services/authn/clients/oauth.go: OAuth.RedirectURL, OAuth.Authenticate,
//     OAuth.Logout, genOAuthState, genPKCECodeVerifier
//   pkg/login/social/connectors/generic_oauth.go: SocialGenericOAuth.UserInfo,
//     extractFromToken, extractFromAPI, extractLogin, extractUserName,
//     extractEmail, extractGroups, FetchPrivateEmail
//   pkg/login/social/connectors/social_base.go: extractRoleAndAdminOptional,
//     searchRole, getRoleFromSearch, retrieveRawIDToken
//   pkg/util/json.go: SearchJSONForStringAttr (jmespath-community/go-jmespath,
//     the library and version Grafana's go.mod names, used here as it is)
//   https://grafana.com/docs/grafana/latest/setup-grafana/configure-security/configure-authentication/generic-oauth/

const (
	grafanaRedirect = "http://" + rpHost + "/login/generic_oauth"
	grafanaLogin    = "http://" + rpHost + "/login"
	// grafanaRoleAttributePath is the guide's role_attribute_path.
	grafanaRoleAttributePath = `contains(groups[*], 'grafana-admins') && 'Admin' || contains(groups[*], 'grafana-editors') && 'Editor' || 'Viewer'`
)

// grafanaHarness is the bridge as docs/integrations/grafana.md sets it up:
// approval mode, the client limited to grafana-users and grafana-admins,
// PKCE required. alice (grafana-admins) and bob (grafana-users) are
// approved people.
func grafanaHarness(t *testing.T, claims config.ClientClaimsConfig, authMethod string) *harness {
	t.Helper()
	h := newHarness(t, withAccess(config.AccessApproval), withClient(rpClientID, func(c *config.ClientConfig) {
		c.RedirectURIs = []string{grafanaRedirect}
		c.PostLogoutRedirectURIs = []string{grafanaLogin}
		c.RequirePKCE = true
		c.AllowedGroups = []string{"grafana-users", "grafana-admins"}
		c.TokenEndpointAuthMethod = authMethod
		c.Claims = claims
	}))
	h.addPerson("alice", "grafana-admins")
	h.addPerson("bob", "grafana-users")
	return h
}

// grafana is an [auth.generic_oauth] section as the guide writes it: every
// URL by hand (no discovery), use_pkce, the attribute paths, strict roles.
type grafana struct {
	conf   *oauth2.Config
	apiURL string
	tokens tokenRequestRecorder
}

func newGrafana(h *harness, authStyle oauth2.AuthStyle) *grafana {
	return &grafana{
		conf: &oauth2.Config{ClientID: rpClientID, ClientSecret: rpSecret, RedirectURL: grafanaRedirect,
			Scopes:   []string{"openid", "profile", "email", "groups"},
			Endpoint: oauth2.Endpoint{AuthURL: h.issuer() + "/authorize", TokenURL: h.issuer() + "/token", AuthStyle: authStyle}},
		apiURL: h.issuer() + "/userinfo",
	}
}

// grafanaUser is social.BasicUserInfo.
type grafanaUser struct {
	ID, Login, Name, Email, Role string
	Groups                       []string
}

var errGrafanaNoEmail = errors.New("Provider didn't return an email address")

// login is OAuth.RedirectURL, then on the callback OAuth.Authenticate and
// SocialGenericOAuth.UserInfo.
func (g *grafana) login(h *harness, b *http.Client, user string) (*grafanaUser, *oauth2.Token, error) {
	h.t.Helper()
	// genOAuthState: 32 random bytes, base64 URL encoding with padding;
	// genPKCECodeVerifier: 96 random bytes, 128 characters.
	state := base64.URLEncoding.EncodeToString(randomBytes(32))
	verifier := base64.RawURLEncoding.EncodeToString(randomBytes(96))
	h.sim.AutoApprove(user)
	_, q := h.authorize(b, g.conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier)))
	if q == nil {
		return nil, nil, errors.New("the browser did not come back to Grafana")
	}
	if q.Get("state") != state {
		return nil, nil, errors.New("Provided state does not match stored state")
	}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: &g.tokens, Timeout: 10 * time.Second})
	token, err := g.conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, nil, fmt.Errorf("Failed to get token from provider: %w", err)
	}
	token.TokenType = "Bearer"
	u, err := g.userInfo(g.conf.Client(ctx, token), token)
	if err != nil {
		return nil, token, err
	}
	if u.Email == "" { // OAuth.Authenticate
		return nil, token, errGrafanaNoEmail
	}
	return u, token, nil
}

// userInfo is SocialGenericOAuth.UserInfo with the guide's settings: the ID
// token's payload (not verified: validate_id_token is off by default), then
// api_url; from each, in that order, what is still empty.
func (g *grafana) userInfo(client *http.Client, token *oauth2.Token) (*grafanaUser, error) {
	var sources [][]byte
	if raw, ok := token.Extra("id_token").(string); ok {
		if parts := strings.Split(raw, "."); len(parts) == 3 {
			if p, err := base64.RawURLEncoding.DecodeString(parts[1]); err == nil {
				sources = append(sources, p)
			}
		}
	}
	if g.apiURL != "" {
		if body, status, err := grafanaGet(client, g.apiURL); err == nil && status == http.StatusOK {
			sources = append(sources, body)
		}
	}
	u := &grafanaUser{}
	for _, raw := range sources {
		var data struct{ Sub, Name, Login, Username, Email string }
		var doc any
		if json.Unmarshal(raw, &data) != nil || json.Unmarshal(raw, &doc) != nil {
			continue
		}
		search := func(path string) string { v, _ := jmespath.Search(path, doc); s, _ := v.(string); return s }
		u.ID = cmpOr(u.ID, data.Sub)
		u.Name = cmpOr(u.Name, search("name"), data.Name)                                 // name_attribute_path = name
		u.Login = cmpOr(u.Login, data.Login, search("preferred_username"), data.Username) // login_attribute_path
		u.Email = cmpOr(u.Email, data.Email)
		if u.Role == "" {
			// searchRole and getRoleFromSearch: the expression's string, in
			// title case; a role that is not Viewer, Editor, Admin or None is an error.
			if role := search(grafanaRoleAttributePath); role != "" {
				u.Role = strings.ToUpper(role[:1]) + strings.ToLower(role[1:])
				if !slices.Contains([]string{"Viewer", "Editor", "Admin", "None"}, u.Role) {
					return nil, fmt.Errorf("invalid role: %s", u.Role)
				}
			}
		}
		if len(u.Groups) == 0 { // groups_attribute_path = groups
			v, _ := jmespath.Search("groups", doc)
			for _, x := range asSlice(v) {
				if s, ok := x.(string); ok {
					u.Groups = append(u.Groups, s)
				}
			}
		}
	}
	if u.Role == "" { // role_attribute_strict = true
		return nil, errors.New("idP did not return a role attribute")
	}
	if u.Email == "" && g.apiURL != "" {
		// FetchPrivateEmail: GET {api_url}/emails, GitHub's shape.
		body, status, err := grafanaGet(client, g.apiURL+"/emails")
		if err != nil || status != http.StatusOK {
			return nil, fmt.Errorf("Error getting email address: status %d: %s", status, body)
		}
	}
	u.Login = cmpOr(u.Login, u.Email)
	return u, nil
}

// logoutURL is OAuth.Logout: the guide's signout_redirect_url, with
// id_token_hint added while the token is still valid.
func (g *grafana) logoutURL(h *harness, token *oauth2.Token) string {
	v := url.Values{"client_id": {rpClientID}, "post_logout_redirect_uri": {grafanaLogin}}
	if token.Valid() {
		if raw, ok := token.Extra("id_token").(string); ok {
			v.Set("id_token_hint", raw)
		}
	}
	return h.issuer() + "/logout?" + v.Encode()
}

func grafanaGet(c *http.Client, u string) ([]byte, int, error) {
	resp, err := c.Get(u)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return b, resp.StatusCode, err
}

func cmpOr(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

func asSlice(v any) []any { s, _ := v.([]any); return s }

// tokenRequestRecorder notes, for each token request, whether the client
// authenticated with HTTP Basic (true) or in the form (false).
type tokenRequestRecorder struct {
	mu    sync.Mutex
	basic []bool
}

func (r *tokenRequestRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasSuffix(req.URL.Path, "/token") {
		_, _, basic := req.BasicAuth()
		r.mu.Lock()
		r.basic = append(r.basic, basic)
		r.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(req)
}

func (r *tokenRequestRecorder) requests() []bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.basic)
}

var grafanaGuideClaims = config.ClientClaimsConfig{Email: "{username}@wechat.example.com"}

// TestGrafanaRoleFromGroupsJMESPath: the guide's role_attribute_path,
// evaluated by Grafana's JMESPath library over the ID token, gives each
// person the role of their directory groups; login, name and email come
// from the ID token; moved to another group in the directory, the person
// has the new role at their next sign-in.
func TestGrafanaRoleFromGroupsJMESPath(t *testing.T) {
	h := grafanaHarness(t, grafanaGuideClaims, "")
	g := newGrafana(h, oauth2.AuthStyleAutoDetect)
	for _, tc := range []struct{ user, name, role string }{{"alice", "Alice 爱丽丝", "Admin"}, {"bob", "Bob 鲍勃", "Viewer"}} {
		u, _, err := g.login(h, h.browser(), tc.user)
		if err != nil {
			t.Fatalf("%s: %v", tc.user, err)
		}
		username := wechatconn.PreferredUsername(h.sim.UnionID(tc.user))
		if u.ID != h.sim.UnionID(tc.user) || u.Login != username || u.Email != username+"@wechat.example.com" || u.Name != tc.name || u.Role != tc.role {
			t.Errorf("%s: %+v, want role %s", tc.user, *u, tc.role)
		}
	}
	// An administrator adds bob to grafana-editors, then to grafana-admins.
	for _, step := range []struct {
		groups []string
		role   string
	}{{[]string{"grafana-editors", "grafana-users"}, "Editor"}, {[]string{"grafana-admins", "grafana-editors", "grafana-users"}, "Admin"}} {
		if _, err := h.dir.People().Update(context.Background(), h.personOf("bob").ID, directory.PersonUpdate{Groups: &step.groups}); err != nil {
			t.Fatal(err)
		}
		if u, _, err := g.login(h, h.browser(), "bob"); err != nil || u.Role != step.role || !slices.Equal(u.Groups, step.groups) {
			t.Fatalf("bob in %v: %+v %v, want %s", step.groups, u, err, step.role)
		}
	}
}

// TestGrafanaNoEmailFailsLogin: without an email claim Grafana asks
// {api_url}/emails, which the bridge does not have, and fails; without
// api_url it fails with "Provider didn't return an email address". A
// person whose directory entry has an email signs in without the template.
func TestGrafanaNoEmailFailsLogin(t *testing.T) {
	h := grafanaHarness(t, config.ClientClaimsConfig{}, "")
	g := newGrafana(h, oauth2.AuthStyleAutoDetect)
	if _, _, err := g.login(h, h.browser(), "bob"); err == nil || !strings.Contains(err.Error(), "Error getting email address: status 404") {
		t.Fatalf("with api_url: %v", err)
	}
	g.apiURL = ""
	if _, _, err := g.login(h, h.browser(), "bob"); !errors.Is(err, errGrafanaNoEmail) {
		t.Fatalf("without api_url: %v, want %v", err, errGrafanaNoEmail)
	}
	mail := "bob@corp.example.com"
	if _, err := h.dir.People().Update(context.Background(), h.personOf("bob").ID, directory.PersonUpdate{Email: &mail}); err != nil {
		t.Fatal(err)
	}
	if u, _, err := g.login(h, h.browser(), "bob"); err != nil || u.Email != mail {
		t.Fatalf("with a directory email: %+v %v", u, err)
	}
}

// TestGrafanaAuthStylesAgainstClientAuthMethods: auth_style (x/oauth2's
// AuthStyle) against the client's token_endpoint_auth_method, as the guide
// states: auto-detect sends HTTP Basic first and, refused, the form.
func TestGrafanaAuthStylesAgainstClientAuthMethods(t *testing.T) {
	for _, tc := range []struct {
		name, method string
		style        oauth2.AuthStyle
		want         []bool // per token request: HTTP Basic?
	}{
		{"auto-detect, method empty", "", oauth2.AuthStyleAutoDetect, []bool{true}},
		{"auto-detect, client_secret_post", "client_secret_post", oauth2.AuthStyleAutoDetect, []bool{true, false}},
		{"InParams, client_secret_post", "client_secret_post", oauth2.AuthStyleInParams, []bool{false}},
		{"InHeader, client_secret_basic", "client_secret_basic", oauth2.AuthStyleInHeader, []bool{true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := grafanaHarness(t, grafanaGuideClaims, tc.method)
			g := newGrafana(h, tc.style)
			if _, _, err := g.login(h, h.browser(), "alice"); err != nil {
				t.Fatal(err)
			}
			if got := g.tokens.requests(); !slices.Equal(got, tc.want) {
				t.Fatalf("token requests (HTTP Basic?) = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestGrafanaSignoutRedirectEndsSession: the guide's signout_redirect_url
// with the id_token_hint Grafana adds ends the bridge's session at once and
// returns to Grafana's login page.
func TestGrafanaSignoutRedirectEndsSession(t *testing.T) {
	h := grafanaHarness(t, grafanaGuideClaims, "")
	g := newGrafana(h, oauth2.AuthStyleAutoDetect)
	b := h.browser()
	_, token, err := g.login(h, b, "alice")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := b.Get(g.logoutURL(h, token))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || loc != grafanaLogin {
		t.Fatalf("logout: %d to %q, want %s", resp.StatusCode, loc, grafanaLogin)
	}
	h.sim.AutoApprove("alice")
	_, q := h.authorize(b, g.conf.AuthCodeURL("s", oauth2.SetAuthURLParam("prompt", "none"), oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if q.Get("error") != "login_required" {
		t.Fatalf("after logout prompt=none gave %v, want login_required", q)
	}
}
