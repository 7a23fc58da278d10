package bridge

// Relying parties that cannot run on our machines (Keycloak, Grafana) or that
// we do not build here (Dex), played from their documentation and source:
// each emulation does what that program does with an OpenID Provider —
// requests, client authentication, checks, claim mapping and the failures it
// reports — against the real server and the WeChat simulator. What each
// emulation follows is written next to it; docs/integrations/*.md says which
// parts are verified against the real program and which are emulated.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/wechat-oidc/wechat-oidc/config"
	wechatconn "github.com/wechat-oidc/wechat-oidc/connector/wechat"
	"html"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// ---------------------------------------------------------------------------
// Shared helpers

// interopRandom is n random bytes, base64url without padding.
func interopRandom(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// interopServerClient is the RP's own back-channel HTTP client (token,
// userinfo, JWKS): no cookies, no redirects followed.
func interopServerClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, CheckRedirect: noRedirects}
}

// interopRecorder records the token requests an RP sends (how it
// authenticated) on their way to the provider.
type interopRecorder struct {
	mu   sync.Mutex
	reqs []interopTokenRequest
}

type interopTokenRequest struct {
	basic bool       // Authorization: Basic ...
	form  url.Values // the form body
}

func (r *interopRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil && strings.HasSuffix(req.URL.Path, "/token") {
		body, _ := io.ReadAll(req.Body)
		req.Body.Close()
		form, _ := url.ParseQuery(string(body))
		r.mu.Lock()
		r.reqs = append(r.reqs, interopTokenRequest{basic: strings.HasPrefix(req.Header.Get("Authorization"), "Basic "), form: form})
		r.mu.Unlock()
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(strings.NewReader(string(body)))
		req.ContentLength = int64(len(body))
	}
	return http.DefaultTransport.RoundTrip(req)
}

func (r *interopRecorder) requests() []interopTokenRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.reqs)
}

// jwtPayload decodes a compact JWT's payload without verifying it (what
// Grafana does by default).
func jwtPayload(raw string) (json.RawMessage, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a compact JWT")
	}
	p, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, err
	}
	return p, nil
}

// hiddenFields reads the name/value pairs of a page's form.
func hiddenFields(body string) url.Values {
	v := url.Values{}
	for _, m := range regexp.MustCompile(`name="([^"]+)" value="([^"]*)"`).FindAllStringSubmatch(body, -1) {
		v.Set(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	return v
}

// ---------------------------------------------------------------------------
// Keycloak: an OpenID Connect v1.0 identity provider in a realm
// (org.keycloak.broker.oidc.OIDCIdentityProvider and its first broker login).

const (
	kcAlias    = "wechat"
	kcBroker   = "http://" + rpHost + "/realms/demo/broker/" + kcAlias + "/endpoint"
	kcLogout   = kcBroker + "/logout_response"
	kcScopes   = "openid profile email" // the IdP's "Scopes" field; Keycloak adds openid itself
	kcUserSess = "5c3e9a4e-0b7d-4c55-9a43-0a6f2f1d8e21"
)

// keycloakBroker is what "Import from URL" (the discovery endpoint) stores,
// plus the client settings an administrator enters.
type keycloakBroker struct {
	t                                      *testing.T
	h                                      *harness
	clientID, secret                       string
	issuer, authURL, tokenURL, userinfoURL string
	jwksURL, logoutURL                     string
	http                                   *http.Client
	pkce                                   bool // "Use PKCE" with method S256 (off by default)
}

// keycloakImport reads the discovery document as Keycloak's "Discovery
// endpoint" field does and checks what it imports.
func keycloakImport(t *testing.T, h *harness, clientID, secret string) *keycloakBroker {
	t.Helper()
	kc := &keycloakBroker{t: t, h: h, clientID: clientID, secret: secret, http: interopServerClient()}
	resp, err := kc.http.Get(h.issuer() + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil || resp.StatusCode != 200 {
		t.Fatalf("discovery: %d %v", resp.StatusCode, err)
	}
	str := func(k string) string {
		s, _ := d[k].(string)
		if s == "" {
			t.Fatalf("discovery lacks %s, which Keycloak imports", k)
		}
		return s
	}
	kc.issuer = str("issuer")
	kc.authURL = str("authorization_endpoint")
	kc.tokenURL = str("token_endpoint")
	kc.userinfoURL = str("userinfo_endpoint")
	kc.jwksURL = str("jwks_uri")
	kc.logoutURL = str("end_session_endpoint")
	// Keycloak compares iss with this string exactly (validateToken).
	if kc.issuer != h.issuer() {
		t.Fatalf("issuer %q is not byte-for-byte the configured issuer %q", kc.issuer, h.issuer())
	}
	for _, u := range []string{kc.authURL, kc.tokenURL, kc.userinfoURL, kc.jwksURL, kc.logoutURL} {
		if !strings.HasPrefix(u, kc.issuer+"/") {
			t.Fatalf("endpoint %s is not under the issuer", u)
		}
	}
	if ms, _ := d["token_endpoint_auth_methods_supported"].([]any); !slices.Contains(ms, any("client_secret_post")) {
		t.Fatalf("client_secret_post (Keycloak's default) is not advertised: %v", d["token_endpoint_auth_methods_supported"])
	}
	return kc
}

// keycloakIdentity is the BrokeredIdentityContext Keycloak builds, and the
// tokens it keeps (Store tokens) for logout.
type keycloakIdentity struct {
	ID, Username, FirstName, LastName, Email string
	idToken, refreshToken                    string
	idClaims, userinfo                       map[string]any
}

// needsReviewProfile: Keycloak's first broker login shows "Review Profile"
// (update.profile.on.first.login = missing, the default) when the default
// user profile (Keycloak 24+: username, email, firstName, lastName required)
// is incomplete.
func (id *keycloakIdentity) needsReviewProfile() bool {
	return id.Username == "" || id.Email == "" || id.FirstName == "" || id.LastName == ""
}

// login runs the browser through the broker: authorization URL with state
// and nonce, code at the broker endpoint, token request with
// client_secret_post, ID token validation, userinfo, identity extraction.
func (kc *keycloakBroker) login(b *http.Client, user string) (*keycloakIdentity, error) {
	kc.t.Helper()
	h := kc.h
	// Keycloak's state is "<random>.<tabId>.<clientId>"; the nonce 16 random bytes, base64url.
	state := interopRandom(24) + ".Xq2RZ1bFmQk." + "account-console"
	nonce := interopRandom(16)
	q := url.Values{
		"scope": {kcScopes}, "state": {state}, "response_type": {"code"},
		"client_id": {kc.clientID}, "redirect_uri": {kcBroker}, "nonce": {nonce},
	}
	var verifier string
	if kc.pkce {
		verifier = oauth2.GenerateVerifier()
		q.Set("code_challenge", oauth2.S256ChallengeFromVerifier(verifier))
		q.Set("code_challenge_method", "S256")
	}
	h.sim.AutoApprove(user)
	_, got := h.authorize(b, kc.authURL+"?"+q.Encode())
	if got == nil {
		return nil, fmt.Errorf("the browser did not come back to the broker endpoint; logs:\n%s", h.logs.String())
	}
	if e := got.Get("error"); e != "" {
		return nil, fmt.Errorf("authorization error %s: %s", e, got.Get("error_description"))
	}
	if got.Get("state") != state {
		return nil, fmt.Errorf("state %q, want %q", got.Get("state"), state)
	}

	// Token request: client_secret_post (Keycloak's default "Client
	// authentication: Client secret sent as post"), no Authorization header.
	form := url.Values{
		"code": {got.Get("code")}, "grant_type": {"authorization_code"}, "redirect_uri": {kcBroker},
		"client_id": {kc.clientID}, "client_secret": {kc.secret},
	}
	if verifier != "" {
		form.Set("code_verifier", verifier)
	}
	tok, err := kc.tokenRequest(form)
	if err != nil {
		return nil, err
	}
	at, _ := tok["access_token"].(string)
	if at == "" {
		return nil, errors.New("No access_token from server.")
	}
	rawID, _ := tok["id_token"].(string)
	claims, err := kc.validateToken(rawID)
	if err != nil {
		return nil, err
	}
	// The broker's nonce check (the ID token must carry the nonce it sent).
	if claims["nonce"] != nonce {
		return nil, fmt.Errorf("nonce %v, want %s", claims["nonce"], nonce)
	}

	// extractIdentity: ID token claims, then userinfo (enabled by default),
	// whose values replace them.
	str := func(m map[string]any, k string) string { s, _ := m[k].(string); return s }
	id := &keycloakIdentity{idToken: rawID, idClaims: claims}
	id.refreshToken, _ = tok["refresh_token"].(string)
	sub, name := str(claims, "sub"), str(claims, "name")
	given, family := str(claims, "given_name"), str(claims, "family_name")
	preferred, email := str(claims, "preferred_username"), str(claims, "email")

	req, _ := http.NewRequest(http.MethodGet, kc.userinfoURL, nil)
	req.Header.Set("Authorization", "Bearer "+at)
	resp, err := kc.http.Do(req)
	if err != nil {
		return nil, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("Failed to invoke url [%s]: %s", kc.userinfoURL, body)
	}
	ct := resp.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		// application/jwt is Keycloak's other accepted type; we never send it.
		return nil, fmt.Errorf("Unsupported content-type [%s] in response from [%s].", ct, kc.userinfoURL)
	}
	if err := json.Unmarshal(body, &id.userinfo); err != nil {
		return nil, err
	}
	ui := id.userinfo
	// A userinfo value replaces the ID token's when userinfo has one.
	for _, f := range []struct {
		v *string
		k string
	}{{&sub, "sub"}, {&name, "name"}, {&given, "given_name"}, {&family, "family_name"}, {&preferred, "preferred_username"}, {&email, "email"}} {
		if v := str(ui, f.k); v != "" {
			*f.v = v
		}
	}
	if str(ui, "sub") != str(claims, "sub") {
		return nil, errors.New("Mismatch between the subject in the id_token and the subject from the user_info endpoint")
	}

	id.ID, id.Email, id.FirstName, id.LastName = sub, email, given, family
	if given == "" && family == "" && name != "" {
		// BrokeredIdentityContext.setName: split at the last space.
		if i := strings.LastIndex(name, " "); i >= 0 {
			id.FirstName, id.LastName = name[:i], name[i+1:]
		} else {
			id.FirstName = name
		}
	}
	switch {
	case preferred != "":
		id.Username = preferred
	case email != "":
		id.Username = email
	default:
		id.Username = sub
	}
	id.Username = strings.ToLower(id.Username) // Keycloak stores usernames in lower case
	return id, nil
}

func (kc *keycloakBroker) tokenRequest(form url.Values) (map[string]any, error) {
	req, _ := http.NewRequest(http.MethodPost, kc.tokenURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=UTF-8")
	resp, err := kc.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var tok map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
		return nil, fmt.Errorf("Could not decode access token response: %w", err)
	}
	if resp.StatusCode != 200 {
		return tok, fmt.Errorf("token endpoint %d: %v", resp.StatusCode, tok)
	}
	return tok, nil
}

// validateToken: the signature with the key named by kid from jwks_uri
// ("Validate signatures" + "Use JWKS URL"), then isActive (exp, nbf), aud
// contains the client id, azp (when present) equals it, iss equals the
// configured issuer.
func (kc *keycloakBroker) validateToken(raw string) (map[string]any, error) {
	if raw == "" {
		return nil, errors.New("No token from server.")
	}
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return nil, fmt.Errorf("Invalid token: %w", err)
	}
	kid := jws.Signatures[0].Header.KeyID
	if kid == "" {
		return nil, errors.New("the ID token has no kid")
	}
	resp, err := kc.http.Get(kc.jwksURL)
	if err != nil {
		return nil, err
	}
	var set jose.JSONWebKeySet
	err = json.NewDecoder(resp.Body).Decode(&set)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	keys := set.Key(kid)
	if len(keys) != 1 || keys[0].Use != "sig" {
		return nil, fmt.Errorf("no signing key %q in the JWKS", kid)
	}
	payload, err := jws.Verify(keys[0].Key)
	if err != nil {
		return nil, fmt.Errorf("token signature validation failed: %w", err)
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, err
	}
	now := float64(time.Now().Unix())
	if exp, _ := c["exp"].(float64); exp <= now {
		return nil, errors.New("Token is no longer valid")
	}
	if nbf, ok := c["nbf"].(float64); ok && nbf > now {
		return nil, errors.New("Token is no longer valid")
	}
	hasAud := c["aud"] == kc.clientID
	if auds, ok := c["aud"].([]any); ok {
		hasAud = slices.Contains(auds, any(kc.clientID))
	}
	if !hasAud {
		return nil, errors.New("Wrong audience from token.")
	}
	if azp, ok := c["azp"]; ok && azp != kc.clientID {
		return nil, errors.New("Token issued for does not match client id")
	}
	if c["iss"] != kc.issuer {
		return nil, fmt.Errorf("Wrong issuer from token. Got: %v expected: %s", c["iss"], kc.issuer)
	}
	return c, nil
}

// idTokenForLogout is getIDTokenForLogout: the stored ID token while the
// access token is valid; after that a refresh_token grant (client_secret_post)
// and the new ID token, or none when that fails.
func (kc *keycloakBroker) idTokenForLogout(id *keycloakIdentity, accessTokenExpired bool) string {
	if !accessTokenExpired {
		return id.idToken
	}
	form := url.Values{"grant_type": {"refresh_token"}, "client_id": {kc.clientID}, "client_secret": {kc.secret}}
	if id.refreshToken != "" {
		form.Set("refresh_token", id.refreshToken)
	}
	tok, err := kc.tokenRequest(form)
	if err != nil {
		return ""
	}
	s, _ := tok["id_token"].(string)
	return s
}

// logoutRedirect is keycloakInitiatedBrowserLogout's redirect: state (Keycloak's
// user session id), id_token_hint ("Send id_token_hint", on by default) and
// client_id ("Send client_id", off by default; Keycloak 24+), and its broker
// logout_response endpoint as post_logout_redirect_uri.
func (kc *keycloakBroker) logoutRedirect(idToken string, sendClientID bool) string {
	v := url.Values{"state": {kcUserSess}, "post_logout_redirect_uri": {kcLogout}}
	if idToken != "" {
		v.Set("id_token_hint", idToken)
	}
	if sendClientID {
		v.Set("client_id", kc.clientID)
	}
	return kc.logoutURL + "?" + v.Encode()
}

// sessionAlive asks for a code with prompt=none: the SSO session answers
// without WeChat if it still exists.
func (h *harness) sessionAlive(b *http.Client) bool {
	h.t.Helper()
	_, q := h.authorize(b, h.authorizeURL(map[string]string{"prompt": "none"}))
	return q != nil && q.Get("code") != ""
}

func withKeycloakClient(f func(*config.ClientConfig)) harnessOption {
	return withClient(rpClientID, func(c *config.ClientConfig) {
		c.RedirectURIs = append(c.RedirectURIs, kcBroker)
		c.PostLogoutRedirectURIs = []string{kcLogout}
		f(c)
	})
}

var kcClaimTemplates = config.ClientClaimsConfig{Email: "{preferred_username}@wechat.example.com", GivenName: "{name}", FamilyName: "(WeChat)"}

func TestKeycloakBrokeringRules(t *testing.T) {
	t.Run("claim templates: first broker login without Review Profile", func(t *testing.T) {
		h := newHarness(t, withKeycloakClient(func(c *config.ClientConfig) { c.Claims = kcClaimTemplates; c.RequirePKCE = true }))
		kc := keycloakImport(t, h, rpClientID, rpSecret)
		kc.pkce = true
		id, err := kc.login(h.browser(), "alice")
		if err != nil {
			t.Fatal(err)
		}
		sub := h.sim.UnionID("alice")
		want := keycloakIdentity{
			ID: sub, Username: wechatconn.PreferredUsername(sub), Email: wechatconn.PreferredUsername(sub) + "@wechat.example.com",
			FirstName: "Alice 爱丽丝", LastName: "(WeChat)",
		}
		if id.ID != want.ID || id.Username != want.Username || id.Email != want.Email || id.FirstName != want.FirstName || id.LastName != want.LastName {
			t.Fatalf("brokered identity = %+v\nwant %+v", *id, want)
		}
		if id.needsReviewProfile() {
			t.Fatalf("Keycloak would show Review Profile: %+v", *id)
		}
		// Userinfo replaces the ID token's values in Keycloak, so every shaped
		// claim must be in userinfo too, with the same value.
		for _, k := range []string{"email", "given_name", "family_name", "preferred_username", "name"} {
			if id.userinfo[k] == nil || id.userinfo[k] != id.idClaims[k] {
				t.Errorf("%s: ID token %v, userinfo %v", k, id.idClaims[k], id.userinfo[k])
			}
		}
		// "Trust email" is the operator's choice; the claim says unverified.
		if id.userinfo["email_verified"] != false {
			t.Errorf("email_verified = %v, want false (the default)", id.userinfo["email_verified"])
		}
		// The username survives Keycloak's lower-casing unchanged.
		if id.Username != id.userinfo["preferred_username"] {
			t.Errorf("username %q differs from preferred_username %v", id.Username, id.userinfo["preferred_username"])
		}
	})

	t.Run("no templates: email, given_name, family_name absent, Review Profile needed", func(t *testing.T) {
		h := newHarness(t, withKeycloakClient(func(*config.ClientConfig) {}))
		kc := keycloakImport(t, h, rpClientID, rpSecret)
		id, err := kc.login(h.browser(), "alice")
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"email", "email_verified", "given_name", "family_name"} {
			if _, ok := id.idClaims[k]; ok {
				t.Errorf("ID token has %s without a template", k)
			}
			if _, ok := id.userinfo[k]; ok {
				t.Errorf("userinfo has %s without a template", k)
			}
		}
		// Keycloak falls back to splitting name at its last space; the email
		// stays empty, so the person must fill the profile form.
		if id.Username != wechatconn.PreferredUsername(h.sim.UnionID("alice")) || id.Email != "" || id.FirstName != "Alice" || id.LastName != "爱丽丝" {
			t.Errorf("identity = %+v", *id)
		}
		if !id.needsReviewProfile() {
			t.Error("expected Keycloak to ask for the missing email")
		}
	})

	t.Run("RP-initiated logout returns to the broker with state", func(t *testing.T) {
		h := newHarness(t, withKeycloakClient(func(c *config.ClientConfig) { c.Claims = kcClaimTemplates }))
		kc := keycloakImport(t, h, rpClientID, rpSecret)
		b := h.browser()
		id, err := kc.login(b, "alice")
		if err != nil {
			t.Fatal(err)
		}
		resp, q := h.authorize(b, kc.logoutRedirect(kc.idTokenForLogout(id, false), false))
		if q == nil {
			t.Fatalf("logout did not redirect to the broker: %d %s", resp.StatusCode, readBody(t, resp))
		}
		if loc := resp.Header.Get("Location"); !strings.HasPrefix(loc, kcLogout+"?") || q.Get("state") != kcUserSess {
			t.Fatalf("logout redirect = %s", loc)
		}
		if h.sessionAlive(b) {
			t.Fatal("the WeChat SSO session survived the logout")
		}
	})

	t.Run("logout after the access token expired: refresh for a fresh id_token_hint", func(t *testing.T) {
		// Keycloak refreshes before logout once the access token has
		// expired; with refresh_tokens: true it gets a new ID token.
		h := newHarness(t, withKeycloakClient(func(c *config.ClientConfig) { c.RefreshTokens = true }))
		kc := keycloakImport(t, h, rpClientID, rpSecret)
		b := h.browser()
		id, err := kc.login(b, "alice")
		if err != nil {
			t.Fatal(err)
		}
		if id.refreshToken == "" {
			t.Fatal("no refresh token with refresh_tokens: true")
		}
		h.advance(61 * time.Minute)
		hint := kc.idTokenForLogout(id, true)
		if hint == "" || hint == id.idToken {
			t.Fatal("the refresh gave no new ID token")
		}
		resp, q := h.authorize(b, kc.logoutRedirect(hint, false))
		if q == nil || q.Get("state") != kcUserSess {
			t.Fatalf("logout did not return to the broker: %d %v", resp.StatusCode, q)
		}
		if h.sessionAlive(b) {
			t.Fatal("the WeChat SSO session survived the logout")
		}
	})

	t.Run("logout without id_token_hint, with client_id: confirmation, then back with state", func(t *testing.T) {
		h := newHarness(t, withKeycloakClient(func(*config.ClientConfig) {}))
		kc := keycloakImport(t, h, rpClientID, rpSecret)
		b := h.browser()
		id, err := kc.login(b, "alice")
		if err != nil {
			t.Fatal(err)
		}
		h.advance(61 * time.Minute)
		hint := kc.idTokenForLogout(id, true) // no refresh token: the refresh fails
		if hint != "" {
			t.Fatal("expected no ID token without a refresh token")
		}
		resp, q := h.authorize(b, kc.logoutRedirect("", true))
		body := readBody(t, resp)
		if q != nil || resp.StatusCode != 200 || !strings.Contains(body, `name="confirm"`) {
			t.Fatalf("expected the confirmation page: %d %v", resp.StatusCode, q)
		}
		resp, err = b.PostForm(kc.logoutURL, hiddenFields(body))
		if err != nil {
			t.Fatal(err)
		}
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc == nil || !strings.HasPrefix(loc.String(), kcLogout+"?") || loc.Query().Get("state") != kcUserSess {
			t.Fatalf("confirmed logout: %d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		if h.sessionAlive(b) {
			t.Fatal("the WeChat SSO session survived the confirmed logout")
		}
	})

	t.Run("logout with neither id_token_hint nor client_id: no redirect", func(t *testing.T) {
		// Keycloak's defaults after the access token expired, without a
		// refresh token. RP-Initiated Logout §3: without a way to identify
		// the client the OP must not redirect to post_logout_redirect_uri.
		h := newHarness(t, withKeycloakClient(func(*config.ClientConfig) {}))
		kc := keycloakImport(t, h, rpClientID, rpSecret)
		b := h.browser()
		if _, err := kc.login(b, "alice"); err != nil {
			t.Fatal(err)
		}
		resp, q := h.authorize(b, kc.logoutRedirect("", false))
		body := readBody(t, resp)
		if q != nil || resp.Header.Get("Location") != "" {
			t.Fatalf("redirected to an unidentified post_logout_redirect_uri: %v", q)
		}
		// The person is asked to confirm; confirming signs out (no redirect).
		if resp.StatusCode != 200 || !strings.Contains(body, `name="confirm"`) || strings.Contains(body, kcLogout) {
			t.Fatalf("expected the confirmation page without the unverifiable URI: %d", resp.StatusCode)
		}
		resp, err := b.PostForm(kc.logoutURL, hiddenFields(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Location") != "" || h.sessionAlive(b) {
			t.Fatalf("confirmed logout: %d %q alive=%v", resp.StatusCode, resp.Header.Get("Location"), h.sessionAlive(b))
		}
	})

	t.Run("the Backchannel logout switch: a server-side GET with id_token_hint ends the session", func(t *testing.T) {
		h := newHarness(t, withKeycloakClient(func(*config.ClientConfig) {}))
		kc := keycloakImport(t, h, rpClientID, rpSecret)
		b := h.browser()
		id, err := kc.login(b, "alice")
		if err != nil {
			t.Fatal(err)
		}
		// backchannelLogout: GET logout?state=..&id_token_hint=.. from
		// Keycloak's server, without the browser's cookies; 2xx/3xx counts as success.
		resp, err := kc.http.Get(kc.logoutURL + "?" + url.Values{"state": {kcUserSess}, "id_token_hint": {id.idToken}}.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			t.Fatalf("Keycloak would log a failed backchannel broker logout: %d", resp.StatusCode)
		}
		if h.sessionAlive(b) {
			t.Fatal("the WeChat SSO session survived Keycloak's server-side logout with a genuine id_token_hint")
		}
	})
}

// ---------------------------------------------------------------------------
// Grafana generic OAuth (pkg/login/social/connectors/generic_oauth.go and
// pkg/services/authn/clients/oauth.go).

const grafanaRedirect = "http://" + rpHost + "/login/generic_oauth"

// grafanaGenericOAuth is an [auth.generic_oauth] section.
type grafanaGenericOAuth struct {
	ClientID, ClientSecret    string
	AuthURL, TokenURL, APIURL string
	Scopes                    []string
	AuthStyle                 string // auth_style: "", "InParams", "InHeader"
	UsePKCE                   bool
	LoginAttributePath        string
	NameAttributePath         string
	GroupsAttributePath       string
	RoleAttributePath         string
	AutoAssignOrgRole         string // [users] auto_assign_org_role, default Viewer
	recorder                  *interopRecorder
}

// grafanaUser is social.BasicUserInfo, with where the email came from.
type grafanaUser struct {
	ID, Login, Name, Email, Role string
	Groups                       []string
	EmailFrom                    string // "id_token" or "API"
}

var (
	errGrafanaNoEmail = errors.New("Provider didn't return an email address")
	errGrafanaToken   = errors.New("Failed to get token from provider")
)

// grafanaHarness configures wechat-oidc for Grafana as the guide does, with
// alice in the group grafana-admins.
func grafanaHarness(t *testing.T, claims config.ClientClaimsConfig, more ...func(*config.ClientConfig)) *harness {
	h := newHarness(t,
		withClient(rpClientID, func(c *config.ClientConfig) {
			c.RedirectURIs = []string{grafanaRedirect}
			c.RequirePKCE = true // the guide's setting: Grafana sends PKCE with use_pkce = true
			c.Claims = claims
			for _, f := range more {
				f(c)
			}
		}))
	h.addPerson("alice", "grafana-admins")
	return h
}

// newGrafana is Grafana configured by hand (no discovery) as the guide says.
func newGrafana(h *harness) *grafanaGenericOAuth {
	return &grafanaGenericOAuth{
		ClientID: rpClientID, ClientSecret: rpSecret,
		AuthURL: h.issuer() + "/authorize", TokenURL: h.issuer() + "/token", APIURL: h.issuer() + "/userinfo",
		Scopes:              []string{"openid", "profile", "email", "groups"},
		UsePKCE:             true,
		LoginAttributePath:  "preferred_username",
		GroupsAttributePath: "groups",
		RoleAttributePath:   "contains(groups[*], 'grafana-admins') && 'Admin' || 'Viewer'",
		AutoAssignOrgRole:   "Viewer",
		recorder:            &interopRecorder{},
	}
}

func (g *grafanaGenericOAuth) oauth2Config() *oauth2.Config {
	style := oauth2.AuthStyleAutoDetect // createOAuthConfig: anything else than InParams/InHeader
	switch strings.ToLower(g.AuthStyle) {
	case "inparams":
		style = oauth2.AuthStyleInParams
	case "inheader":
		style = oauth2.AuthStyleInHeader
	}
	return &oauth2.Config{
		ClientID: g.ClientID, ClientSecret: g.ClientSecret, Scopes: g.Scopes, RedirectURL: grafanaRedirect,
		Endpoint: oauth2.Endpoint{AuthURL: g.AuthURL, TokenURL: g.TokenURL, AuthStyle: style},
	}
}

// login is OAuth.RedirectURL, the callback's OAuth.Authenticate and
// SocialGenericOAuth.UserInfo.
func (g *grafanaGenericOAuth) login(h *harness, b *http.Client, user string) (*grafanaUser, error) {
	h.t.Helper()
	conf := g.oauth2Config()
	// genOAuthState: 32 random bytes, base64.URLEncoding (with padding).
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	state := base64.URLEncoding.EncodeToString(raw)
	var opts []oauth2.AuthCodeOption
	var verifier string
	if g.UsePKCE {
		// genPKCECodeVerifier: 96 random bytes → 128 characters.
		verifier = interopRandom(96)
		opts = append(opts, oauth2.S256ChallengeOption(verifier))
	}
	h.sim.AutoApprove(user)
	_, q := h.authorize(b, conf.AuthCodeURL(state, opts...))
	if q == nil {
		return nil, fmt.Errorf("the browser did not come back to Grafana; logs:\n%s", h.logs.String())
	}
	if e := q.Get("error"); e != "" {
		return nil, fmt.Errorf("login.OAuthLogin: %s: %s", e, q.Get("error_description"))
	}
	if q.Get("state") != state {
		return nil, errors.New("Provided state does not match stored state")
	}
	var exOpts []oauth2.AuthCodeOption
	if g.UsePKCE {
		exOpts = append(exOpts, oauth2.VerifierOption(verifier))
	}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: g.recorder, Timeout: 10 * time.Second})
	token, err := conf.Exchange(ctx, q.Get("code"), exOpts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errGrafanaToken, err)
	}
	token.TokenType = "Bearer"
	client := conf.Client(ctx, token)

	// collectUserInfoData: the ID token's payload (not verified by default),
	// then api_url.
	type source struct {
		name string
		raw  json.RawMessage
	}
	var sources []source
	if idt, ok := token.Extra("id_token").(string); ok {
		if p, err := jwtPayload(idt); err == nil {
			sources = append(sources, source{"id_token", p})
		}
	}
	if body, status, err := grafanaGet(client, g.APIURL); err == nil && status < 300 {
		sources = append(sources, source{"API", body})
	}
	u := &grafanaUser{}
	for _, s := range sources {
		var d struct {
			Sub, Name, Login, Username, Email string
			DisplayName                       string `json:"display_name"`
		}
		_ = json.Unmarshal(s.raw, &d)
		var m map[string]any
		_ = json.Unmarshal(s.raw, &m)
		if u.ID == "" {
			u.ID = d.Sub
		}
		if u.Name == "" {
			u.Name = firstNonEmpty(grafanaPath(m, g.NameAttributePath), d.Name, d.DisplayName)
		}
		if u.Login == "" {
			u.Login = firstNonEmpty(d.Login, grafanaPath(m, g.LoginAttributePath), d.Username)
		}
		if u.Email == "" && d.Email != "" {
			u.Email, u.EmailFrom = d.Email, s.name
		}
		if u.Role == "" {
			u.Role = grafanaRole(g.RoleAttributePath, m)
		}
		if len(u.Groups) == 0 && g.GroupsAttributePath != "" {
			gs, _ := m[g.GroupsAttributePath].([]any)
			for _, x := range gs {
				if s, ok := x.(string); ok {
					u.Groups = append(u.Groups, s)
				}
			}
		}
	}
	if u.Role == "" {
		u.Role = g.AutoAssignOrgRole
	}
	if u.Email == "" && g.APIURL != "" {
		// fetchPrivateEmail: GET {api_url}/emails (GitHub's shape).
		body, status, err := grafanaGet(client, g.APIURL+"/emails")
		if err != nil || status >= 300 {
			return nil, fmt.Errorf("failed to get user info: Error getting email address: unsuccessful response status code %d: %s", status, body)
		}
		var recs []struct {
			Email     string `json:"email"`
			Primary   bool   `json:"primary"`
			IsPrimary bool   `json:"is_primary"`
		}
		_ = json.Unmarshal(body, &recs)
		for _, r := range recs {
			if r.Primary || r.IsPrimary {
				u.Email = r.Email
				break
			}
		}
	}
	if u.Login == "" {
		u.Login = u.Email
	}
	if u.Email == "" {
		return nil, errGrafanaNoEmail
	}
	return u, nil
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

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// grafanaPath handles the attribute paths the guide uses: a top-level key.
func grafanaPath(m map[string]any, path string) string {
	if path == "" {
		return ""
	}
	s, _ := m[path].(string)
	return s
}

// grafanaRole evaluates the one JMESPath shape the guide uses,
// contains(<array>[*], '<value>') && '<then>' || '<else>'. As in JMESPath,
// contains() on a missing array is an error, which Grafana treats as no role
// from this source.
func grafanaRole(expr string, m map[string]any) string {
	re := regexp.MustCompile(`^contains\((\w+)\[\*\], '([^']*)'\) && '([^']*)' \|\| '([^']*)'$`)
	p := re.FindStringSubmatch(expr)
	if p == nil {
		return ""
	}
	arr, ok := m[p[1]].([]any)
	if !ok {
		return ""
	}
	if slices.Contains(arr, any(p[2])) {
		return p[3]
	}
	return p[4]
}

func TestGrafanaGenericOAuthRules(t *testing.T) {
	email := config.ClientClaimsConfig{Email: "{preferred_username}@wechat.example.com"}

	t.Run("synthetic email: login, name, email, role from groups", func(t *testing.T) {
		h := grafanaHarness(t, email)
		g := newGrafana(h)
		for _, tc := range []struct{ user, role string }{{"alice", "Admin"}, {"bob", "Viewer"}} {
			u, err := g.login(h, h.browser(), tc.user)
			if err != nil {
				t.Fatalf("%s: %v", tc.user, err)
			}
			sub := h.sim.UnionID(tc.user)
			if u.ID != sub || u.Login != wechatconn.PreferredUsername(sub) || u.Email != wechatconn.PreferredUsername(sub)+"@wechat.example.com" || u.Role != tc.role {
				t.Errorf("%s: %+v", tc.user, *u)
			}
			if u.EmailFrom != "id_token" {
				t.Errorf("%s: email from %s, want the ID token", tc.user, u.EmailFrom)
			}
			if wantName := map[string]string{"alice": "Alice 爱丽丝", "bob": "Bob 鲍勃"}[tc.user]; u.Name != wantName {
				t.Errorf("%s: name %q", tc.user, u.Name)
			}
			if tc.user == "alice" && !slices.Equal(u.Groups, []string{"grafana-admins"}) {
				t.Errorf("alice's groups: %v", u.Groups)
			}
		}
	})

	t.Run("no email configured: the login fails", func(t *testing.T) {
		h := grafanaHarness(t, config.ClientClaimsConfig{})
		g := newGrafana(h)
		_, err := g.login(h, h.browser(), "alice")
		// Grafana then tries {api_url}/emails, which wechat-oidc does not
		// have (404); without api_url it reports errGrafanaNoEmail directly.
		if err == nil || !strings.Contains(err.Error(), "Error getting email address: unsuccessful response status code 404") {
			t.Fatalf("err = %v", err)
		}
		g.APIURL = ""
		if _, err := g.login(h, h.browser(), "alice"); !errors.Is(err, errGrafanaNoEmail) {
			t.Fatalf("without api_url: err = %v, want %v", err, errGrafanaNoEmail)
		}
	})

	t.Run("client authentication styles", func(t *testing.T) {
		for _, tc := range []struct {
			name, authStyle, method string
			want                    []bool // per token request: sent with HTTP Basic?
		}{
			// x/oauth2 AutoDetect: HTTP Basic first, the form after a failure.
			{"default auth_style, any method", "", "", []bool{true}},
			{"default auth_style, client_secret_post only", "", "client_secret_post", []bool{true, false}},
			{"auth_style InParams", "InParams", "client_secret_post", []bool{false}},
			{"auth_style InHeader", "InHeader", "client_secret_basic", []bool{true}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				h := grafanaHarness(t, email, func(c *config.ClientConfig) { c.TokenEndpointAuthMethod = tc.method })
				g := newGrafana(h)
				g.AuthStyle = tc.authStyle
				if _, err := g.login(h, h.browser(), "alice"); err != nil {
					t.Fatal(err)
				}
				var got []bool
				for _, r := range g.recorder.requests() {
					got = append(got, r.basic)
					if r.basic == (r.form.Get("client_secret") != "") {
						t.Errorf("a request with basic=%v and client_secret in the form=%v", r.basic, r.form.Get("client_secret") != "")
					}
					if r.form.Get("code_verifier") == "" {
						t.Error("use_pkce: no code_verifier sent")
					}
				}
				if !slices.Equal(got, tc.want) {
					t.Fatalf("token requests (basic?) = %v, want %v", got, tc.want)
				}
			})
		}
	})
}

// ---------------------------------------------------------------------------
// Dex's oidc connector (connector/oidc/oidc.go): go-oidc discovery and ID
// token verification, claims from the ID token (getUserInfo is off by
// default), no nonce, PKCE S256 when discovery advertises it.

type dexConnector struct {
	Issuer, ClientID, ClientSecret, RedirectURI string
	Scopes                                      []string // default: profile, email
	UserNameKey                                 string   // default: name
	InsecureSkipEmailVerified                   bool
}

type dexIdentity struct {
	UserID, Username, PreferredUsername, Email string
	EmailVerified                              bool
	authURL                                    string
}

func (d *dexConnector) login(h *harness, b *http.Client, user string) (*dexIdentity, error) {
	h.t.Helper()
	ctx := gooidc.ClientContext(context.Background(), interopServerClient())
	p, err := gooidc.NewProvider(ctx, d.Issuer)
	if err != nil {
		return nil, fmt.Errorf("failed to get provider: %v", err)
	}
	var meta struct {
		Methods []string `json:"code_challenge_methods_supported"`
	}
	_ = p.Claims(&meta)
	scopes := []string{gooidc.ScopeOpenID}
	if len(d.Scopes) > 0 {
		scopes = append(scopes, d.Scopes...)
	} else {
		scopes = append(scopes, "profile", "email")
	}
	conf := &oauth2.Config{ClientID: d.ClientID, ClientSecret: d.ClientSecret, Endpoint: p.Endpoint(), Scopes: scopes, RedirectURL: d.RedirectURI}
	state := interopRandom(16)
	var authOpts, exOpts []oauth2.AuthCodeOption
	if slices.Contains(meta.Methods, "S256") {
		v := oauth2.GenerateVerifier()
		authOpts, exOpts = []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(v)}, []oauth2.AuthCodeOption{oauth2.VerifierOption(v)}
	}
	id := &dexIdentity{authURL: conf.AuthCodeURL(state, authOpts...)}
	h.sim.AutoApprove(user)
	_, q := h.authorize(b, id.authURL)
	if q == nil {
		return id, errors.New("the browser did not come back to Dex")
	}
	if e := q.Get("error"); e != "" {
		return id, fmt.Errorf("%s: %s", e, q.Get("error_description"))
	}
	tok, err := conf.Exchange(ctx, q.Get("code"), exOpts...)
	if err != nil {
		return id, fmt.Errorf("oidc: failed to get token: %v", err)
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok {
		return id, errors.New("oidc: no id_token in token response")
	}
	idt, err := p.Verifier(&gooidc.Config{ClientID: d.ClientID}).Verify(ctx, raw)
	if err != nil {
		return id, fmt.Errorf("oidc: failed to verify ID Token: %v", err)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return id, err
	}
	// createIdentity, in Dex's order.
	if id.UserID, ok = claims["sub"].(string); !ok {
		return id, errors.New(`missing "sub" claim`)
	}
	nameKey := firstNonEmpty(d.UserNameKey, "name")
	if id.Username, ok = claims[nameKey].(string); !ok {
		return id, fmt.Errorf("missing %q claim", nameKey)
	}
	id.PreferredUsername, _ = claims["preferred_username"].(string)
	hasEmailScope := slices.Contains(scopes, "email")
	var found bool
	id.Email, found = claims["email"].(string)
	if !found && hasEmailScope {
		return id, errors.New(`missing email claim, not found "email" key`)
	}
	id.EmailVerified, found = claims["email_verified"].(bool)
	if !found {
		if d.InsecureSkipEmailVerified {
			id.EmailVerified = true
		} else if hasEmailScope {
			return id, errors.New(`missing "email_verified" claim`)
		}
	}
	return id, nil
}

func newDex(h *harness) *dexConnector {
	return &dexConnector{Issuer: h.issuer(), ClientID: rpClientID, ClientSecret: rpSecret, RedirectURI: rpRedirect}
}

func TestDexConnectorRules(t *testing.T) {
	email := config.ClientClaimsConfig{Email: "{preferred_username}@wechat.example.com"}

	t.Run("default scopes with the synthetic email", func(t *testing.T) {
		h := newHarness(t, withClient(rpClientID, func(c *config.ClientConfig) { c.Claims = email }))
		id, err := newDex(h).login(h, h.browser(), "alice")
		if err != nil {
			t.Fatal(err)
		}
		sub := h.sim.UnionID("alice")
		if id.UserID != sub || id.Username != "Alice 爱丽丝" || id.PreferredUsername != wechatconn.PreferredUsername(sub) ||
			id.Email != wechatconn.PreferredUsername(sub)+"@wechat.example.com" || id.EmailVerified {
			t.Fatalf("identity = %+v", *id)
		}
		u, _ := url.Parse(id.authURL)
		if u.Query().Get("code_challenge_method") != "S256" || u.Query().Get("code_challenge") == "" || u.Query().Has("nonce") {
			t.Fatalf("Dex's authorization request: %s", id.authURL)
		}
	})

	t.Run("no email configured: default scopes fail, profile-only scopes work", func(t *testing.T) {
		h := newHarness(t)
		d := newDex(h)
		if _, err := d.login(h, h.browser(), "alice"); err == nil || err.Error() != `missing email claim, not found "email" key` {
			t.Fatalf("err = %v", err)
		}
		d.Scopes = []string{"profile"}
		id, err := d.login(h, h.browser(), "alice")
		if err != nil || id.Email != "" {
			t.Fatalf("profile only: %v %+v", err, id)
		}
	})

	t.Run("no nickname (snsapi_base): userNameKey preferred_username", func(t *testing.T) {
		h := newHarness(t, withSubject(config.SubjectOpenID), withScope(config.ScopeBase),
			withClient(rpClientID, func(c *config.ClientConfig) { c.Claims = email }))
		d := newDex(h)
		if _, err := d.login(h, h.browser(), "alice"); err == nil || err.Error() != `missing "name" claim` {
			t.Fatalf("err = %v", err)
		}
		d.UserNameKey = "preferred_username"
		id, err := d.login(h, h.browser(), "alice")
		sub := h.sim.OpenID(testAppID, "alice")
		if err != nil || id.Username != wechatconn.PreferredUsername(sub) || id.UserID != sub {
			t.Fatalf("userNameKey preferred_username: %v %+v", err, id)
		}
	})
}
