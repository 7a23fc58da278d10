package oidc

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wechat-oidc/wechat-oidc/keys"
)

// fuzzMemStorage is a minimal Storage: a map, TTLs ignored, absent → nil, nil.
type fuzzMemStorage struct {
	mu sync.Mutex
	m  map[string][]byte
}

func newFuzzMemStorage() *fuzzMemStorage { return &fuzzMemStorage{m: map[string][]byte{}} }

func (s *fuzzMemStorage) Put(_ context.Context, key string, value []byte, _ time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[key] = append([]byte(nil), value...)
	return nil
}

func (s *fuzzMemStorage) Get(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	if !ok {
		return nil, nil
	}
	return append([]byte(nil), v...), nil
}

func (s *fuzzMemStorage) Take(_ context.Context, key string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[key]
	if !ok {
		return nil, nil
	}
	delete(s.m, key)
	return v, nil
}

func (s *fuzzMemStorage) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
	return nil
}

func (s *fuzzMemStorage) Update(_ context.Context, key string, _ time.Duration, fn func(old []byte) ([]byte, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var old []byte
	if v, ok := s.m[key]; ok {
		old = append([]byte{}, v...)
	}
	v, err := fn(old)
	if err != nil {
		return err
	}
	if v == nil {
		delete(s.m, key)
		return nil
	}
	s.m[key] = append([]byte{}, v...)
	return nil
}

// Fixed codes and refresh tokens planted in the store before every request,
// so that the fuzzer can reach the successful exchanges and every check after
// the lookup.
const (
	fuzzCodeApp       = "fuzz-code-app"
	fuzzCodeSPA       = "fuzz-code-spa"
	fuzzCodeLegacy    = "fuzz-code-legacy"
	fuzzVerifier      = "dBjftJeZ4CVP-mJ92K1mUoqjrx6BaOD3nPLg2T1xsM8"
	fuzzPlainVerif    = "plain-verifier-plain-verifier-plain-verifier-0"
	fuzzAppSecret     = "s3cret-s3cret-s3cret"
	fuzzLegacySecret  = "legacy-secret"
	fuzzRefreshApp    = "fuzz-refresh-app"     // unused, family live
	fuzzRefreshReused = "fuzz-refresh-rotated" // rotated an hour ago: its use revokes the family
	fuzzRefreshLegacy = "fuzz-refresh-legacy"  // its family is revoked
	fuzzFamilyApp     = "fam-app"
	fuzzFamilyLegacy  = "fam-legacy"
	fuzzSubjectType   = "urn:fuzz:subject"
	fuzzSubjectToken  = "good-subject-token"
)

// fuzzChallenge is the S256 code_challenge of fuzzVerifier.
var fuzzChallenge = func() string {
	sum := sha256.Sum256([]byte(fuzzVerifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}()

var fuzzCodes = map[string]codeGrant{
	fuzzCodeApp: {ClientID: "app", RedirectURI: "https://app.example.com/cb", Nonce: "n-0S6_WzA2Mj",
		Scopes: []string{"openid", "profile"}, Subject: "user-app", AuthTime: 1700000000, SessionID: "sid-1",
		Claims: map[string]any{"name": "Zhang San", "iss": "https://evil.example"}},
	fuzzCodeSPA: {ClientID: "spa", RedirectURI: "https://spa.example.com/cb", CodeChallenge: fuzzChallenge,
		CodeChallengeMethod: PKCES256, Scopes: []string{"openid", "offline_access"}, Subject: "user-spa", AuthTime: 1700000000},
	fuzzCodeLegacy: {ClientID: "legacy", RedirectURI: "https://legacy.example.com/cb", CodeChallenge: fuzzPlainVerif,
		CodeChallengeMethod: PKCEPlain, Scopes: []string{"openid"}, Subject: "user-legacy", AuthTime: 1700000000},
}

// fuzzPlant fills st with the codes, refresh families and refresh tokens.
func fuzzPlant(st *fuzzMemStorage, now time.Time) {
	put := func(key string, v any) {
		raw, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		st.m[key] = raw
	}
	for code, g := range fuzzCodes {
		put(keyCode+HashToken(code), g)
	}
	famExp := now.Add(24 * time.Hour)
	put(keyFamily+fuzzFamilyApp, refreshFamily{ClientID: "app", Subject: "user-app", Scopes: []string{"openid", "profile"},
		Claims: map[string]any{"name": "Zhang San"}, SessionID: "sid-1", AuthTime: 1700000000, CreatedAt: now.Add(-time.Hour), ExpiresAt: famExp})
	put(keyFamily+fuzzFamilyLegacy, refreshFamily{ClientID: "legacy", Subject: "user-legacy", Scopes: []string{"openid"},
		AuthTime: 1700000000, CreatedAt: now.Add(-time.Hour), ExpiresAt: famExp, Revoked: true})
	put(keyRefresh+HashToken(fuzzRefreshApp), refreshRecord{FamilyID: fuzzFamilyApp, ClientID: "app",
		IssuedAt: now.Add(-time.Minute), IdleExpiresAt: now.Add(time.Hour), FamilyExpiresAt: famExp})
	put(keyRefresh+HashToken(fuzzRefreshReused), refreshRecord{FamilyID: fuzzFamilyApp, ClientID: "app",
		IssuedAt: now.Add(-2 * time.Hour), IdleExpiresAt: now.Add(time.Hour), FamilyExpiresAt: famExp, RotatedAt: now.Add(-time.Hour)})
	put(keyRefresh+HashToken(fuzzRefreshLegacy), refreshRecord{FamilyID: fuzzFamilyLegacy, ClientID: "legacy",
		IssuedAt: now.Add(-time.Minute), IdleExpiresAt: now.Add(time.Hour), FamilyExpiresAt: famExp})
}

func fuzzBasic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

var fuzzTokenErrorCodes = map[string]bool{
	CodeInvalidRequest: true, CodeInvalidClient: true, CodeInvalidGrant: true,
	CodeUnauthorizedClient: true, CodeUnsupportedGrantType: true, CodeInvalidScope: true,
	CodeInvalidTarget: true,
}

// FuzzTokenEndpoint posts the fuzzed body (and Authorization header) to
// HandleToken, then posts it again: an authorization code is single use.
func FuzzTokenEndpoint(f *testing.F) {
	appAuth := "&client_id=app&client_secret=" + fuzzAppSecret
	appBody := "grant_type=authorization_code&code=" + fuzzCodeApp + "&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb"
	spaBody := "grant_type=authorization_code&code=" + fuzzCodeSPA + "&redirect_uri=https%3A%2F%2Fspa.example.com%2Fcb&client_id=spa&code_verifier=" + fuzzVerifier
	legacyBody := "grant_type=authorization_code&code=" + fuzzCodeLegacy + "&redirect_uri=https%3A%2F%2Flegacy.example.com%2Fcb&client_id=legacy&client_secret=" + fuzzLegacySecret + "&code_verifier=" + fuzzPlainVerif
	exch := "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token_type=" + url.QueryEscape(fuzzSubjectType) + "&subject_token=" + fuzzSubjectToken
	for _, s := range []struct{ body, authz string }{
		{appBody + appAuth, ""},
		{appBody, fuzzBasic("app", fuzzAppSecret)},
		{appBody, fuzzBasic("app", "wrong")},
		{appBody + "&client_id=spa", fuzzBasic("app", fuzzAppSecret)},
		{appBody + "&client_secret=" + fuzzAppSecret, fuzzBasic("app", fuzzAppSecret)},
		{appBody + "&client_id=legacy&client_secret=" + fuzzLegacySecret, ""},
		{appBody + appAuth + "&code_verifier=" + fuzzVerifier, ""},
		{strings.Replace(appBody, "cb", "cb2", 1) + appAuth, ""},
		{spaBody, ""},
		{strings.Replace(spaBody, fuzzVerifier, strings.Repeat("a", 43), 1), ""},
		{strings.Replace(spaBody, "&code_verifier="+fuzzVerifier, "", 1), ""},
		{legacyBody, ""},
		{"grant_type=refresh_token&refresh_token=" + fuzzRefreshApp + appAuth, ""},
		{"grant_type=refresh_token&refresh_token=" + fuzzRefreshApp + "&scope=openid", fuzzBasic("app", fuzzAppSecret)},
		{"grant_type=refresh_token&refresh_token=" + fuzzRefreshApp + "&scope=openid+offline_access" + appAuth, ""},
		{"grant_type=refresh_token&refresh_token=" + fuzzRefreshApp + "&client_id=legacy&client_secret=" + fuzzLegacySecret, ""},
		{"grant_type=refresh_token&refresh_token=" + fuzzRefreshReused + appAuth, ""},
		{"grant_type=refresh_token&refresh_token=" + fuzzRefreshLegacy + "&client_id=legacy&client_secret=" + fuzzLegacySecret, ""},
		{"grant_type=refresh_token&refresh_token=x" + appAuth, ""},
		{exch + appAuth, ""},
		{exch + "&requested_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aid_token&scope=openid+profile" + appAuth, ""},
		{exch + "&requested_token_type=urn%3Aietf%3Aparams%3Aoauth%3Atoken-type%3Aid_token&scope=profile" + appAuth, ""},
		{exch + "&audience=app&resource=spa" + appAuth, ""},
		{exch + "&actor_token=x&actor_token_type=y" + appAuth, ""},
		{exch + "&client_id=spa", ""},
		{strings.Replace(exch, fuzzSubjectToken, "bad", 1) + appAuth, ""},
		{"grant_type=&client_id=app&client_secret=" + fuzzAppSecret, ""},
		{"grant_type=authorization_code" + appAuth, ""},
		{"grant_type=authorization_code&code=nope" + appAuth, ""},
		{"grant_type=authorization_code&grant_type=authorization_code", ""},
		{"client_id=%ff", ""},
		{"a=%zz", ""},
		{"a=1;b=2", ""},
		{"", ""},
		{"", "Basic !!!"},
		{"", "Bearer x"},
		{"a=" + strings.Repeat("x", MaxParamsBytes), ""},
	} {
		f.Add(s.body, s.authz)
	}

	signer, err := keys.NewEphemeral()
	if err != nil {
		f.Fatal(err)
	}
	now := time.Unix(1700000100, 0)
	exchanger := func(_ context.Context, _ *Client, tok string) (Identity, *Error) {
		if tok != fuzzSubjectToken {
			return Identity{}, ErrInvalidGrant("the subject token is not valid")
		}
		return Identity{Subject: "user-exchanged", Claims: map[string]any{"name": "Li Si"}}, nil
	}

	f.Fuzz(func(t *testing.T, body, authz string) {
		st := newFuzzMemStorage()
		fuzzPlant(st, now)
		p := testProvider()
		p.Storage = st
		p.Signer = signer
		p.CodeTTL, p.AccessTokenTTL, p.IDTokenTTL = time.Minute, time.Hour, time.Hour
		p.Now = func() time.Time { return now }
		p.Logger = slog.New(slog.DiscardHandler)
		p.ScopeClaims[ScopeOfflineAccess] = nil
		p.TokenExchangers = map[string]TokenExchanger{fuzzSubjectType: exchanger}
		p.Clients.Lookup("app").AllowTokenExchange = true
		p.Clients.Lookup("app").RefreshTokens = true

		var hookIDs []string
		hookOK := false
		p.OnClientAuthFailure = func(id string, _ *http.Request) { hookIDs = append(hookIDs, id) }
		p.OnClientAuthSuccess = func(id string, _ *http.Request) { hookIDs, hookOK = append(hookIDs, id), true }

		post := func() (int, map[string]any) {
			r := httptest.NewRequest("POST", "/token", strings.NewReader(body))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if authz != "" {
				r.Header.Set("Authorization", authz)
			}
			// ClaimedClientID and the handler agree on the client, and
			// reading it leaves the body to the handler.
			claimed, claimErr := ClaimedClientID(r)
			hookIDs, hookOK = nil, false
			w := httptest.NewRecorder()
			p.HandleToken(w, r)
			if len(hookIDs) > 1 {
				t.Fatalf("client auth hooks called %d times", len(hookIDs))
			}
			if len(hookIDs) == 1 && hookIDs[0] != claimed {
				t.Fatalf("the handler reported client %q, ClaimedClientID said %q (%v)", hookIDs[0], claimed, claimErr)
			}
			if hookOK && claimErr != nil {
				t.Fatalf("client authenticated, yet ClaimedClientID failed: %v", claimErr)
			}
			if (w.Code == 401) != (len(hookIDs) == 1 && !hookOK) {
				t.Fatalf("status %d, failure hook called: %v", w.Code, len(hookIDs) == 1 && !hookOK)
			}
			switch w.Code {
			case 200, 400, 401, 413:
			default:
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			if got := w.Header().Get("Cache-Control"); got != "no-store" {
				t.Fatalf("Cache-Control %q", got)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type %q", ct)
			}
			var out map[string]any
			if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
				t.Fatalf("status %d, body is not JSON: %v: %q", w.Code, err, w.Body)
			}
			if w.Code != 200 {
				code, _ := out["error"].(string)
				if !fuzzTokenErrorCodes[code] {
					t.Fatalf("status %d with error %q", w.Code, out["error"])
				}
				if (w.Code == 401) != (code == CodeInvalidClient) {
					t.Fatalf("status %d with error %s", w.Code, code)
				}
				if w.Code == 401 && authz != "" && w.Header().Get("WWW-Authenticate") == "" {
					t.Fatal("401 after Basic authentication without WWW-Authenticate")
				}
				if w.Code == 413 && len(body) <= MaxParamsBytes {
					t.Fatalf("413 for a %d-byte body", len(body))
				}
				if _, ok := out["access_token"]; ok {
					t.Fatal("error response carries an access token")
				}
			}
			return w.Code, out
		}
		// idClaims verifies an ID token and returns its claims.
		idClaims := func(tok, client, sub string) map[string]any {
			payload, err := signer.Verify(tok)
			if err != nil {
				t.Fatalf("id_token does not verify: %v", err)
			}
			var c map[string]any
			if err := json.Unmarshal(payload, &c); err != nil {
				t.Fatal(err)
			}
			if c["iss"] != p.Issuer || c["aud"] != client || c["azp"] != client || c["sub"] != sub {
				t.Fatalf("id_token claims %v, want aud %q sub %q", c, client, sub)
			}
			return c
		}
		stored := func(key string) bool {
			raw, _ := st.Get(context.Background(), key)
			return raw != nil
		}
		familyRevoked := func(id string) bool {
			f, err := p.loadFamily(context.Background(), id)
			return err != nil || f == nil || f.Revoked
		}

		status, out := post()
		params, perr := ParseParams(body)
		// The client the request authenticates as, if any.
		var client *Client
		if perr == nil {
			r := httptest.NewRequest("POST", "/token", nil)
			if authz != "" {
				r.Header.Set("Authorization", authz)
			}
			client, _ = p.Clients.Authenticate(r, params)
		}
		// RFC 9700 §4.14.2: reuse of a rotated refresh token (past the grace
		// window) by its client revokes the whole family.
		if client != nil && client.ID == "app" && params["grant_type"] == GrantRefreshToken && params["refresh_token"] == fuzzRefreshReused {
			if status == 200 || !familyRevoked(fuzzFamilyApp) {
				t.Fatalf("reuse of a rotated refresh token: status %d, family revoked %v", status, familyRevoked(fuzzFamilyApp))
			}
		}
		if status != 200 {
			return
		}

		// Success: the body parsed, authenticated a client and named a
		// planted grant for that client.
		if perr != nil {
			t.Fatalf("200 for a body that does not parse: %v", perr)
		}
		if client == nil {
			t.Fatal("200 for a request whose client does not authenticate")
		}
		at, _ := out["access_token"].(string)
		if at == "" {
			t.Fatalf("no access token in %v", out)
		}
		switch params["grant_type"] {
		case GrantAuthorizationCode:
			g, ok := fuzzCodes[params["code"]]
			if !ok {
				t.Fatalf("200 for unknown code %q", params["code"])
			}
			if params["redirect_uri"] != g.RedirectURI {
				t.Fatalf("200 with redirect_uri %q, code bound to %q", params["redirect_uri"], g.RedirectURI)
			}
			idt, _ := out["id_token"].(string)
			if out["token_type"] != "Bearer" || idt == "" {
				t.Fatalf("incomplete token response %v", out)
			}
			c := idClaims(idt, g.ClientID, g.Subject)
			if c["at_hash"] != leftHalfHash(at) || (g.Nonce != "" && c["nonce"] != g.Nonce) {
				t.Fatalf("id_token at_hash/nonce %v", c)
			}
			if !stored(keyAccess + HashToken(at)) {
				t.Fatal("issued access token is not stored")
			}
			rt, _ := out["refresh_token"].(string)
			if rt != "" && !stored(keyRefresh+HashToken(rt)) {
				t.Fatal("issued refresh token is not stored")
			}
			// Replay: refused, and the tokens of the first redemption revoked.
			if status, _ := post(); status == 200 {
				t.Fatal("an authorization code was redeemed twice")
			}
			if stored(keyAccess + HashToken(at)) {
				t.Fatal("replaying the code did not revoke the access token")
			}
			if rt != "" {
				rec, _ := p.loadRefresh(context.Background(), rt)
				if rec == nil || !familyRevoked(rec.FamilyID) {
					t.Fatal("replaying the code did not revoke the refresh token family")
				}
			}
		case GrantRefreshToken:
			if params["refresh_token"] != fuzzRefreshApp {
				t.Fatalf("200 for refresh token %q", params["refresh_token"])
			}
			rt, _ := out["refresh_token"].(string)
			if rt == "" || rt == fuzzRefreshApp || !stored(keyRefresh+HashToken(rt)) {
				t.Fatalf("refresh did not rotate: %v", out)
			}
			for _, s := range strings.Fields(out["scope"].(string)) {
				if s != "openid" && s != "profile" {
					t.Fatalf("refresh widened the scope to %q", out["scope"])
				}
			}
			if idt, _ := out["id_token"].(string); idt != "" {
				if c := idClaims(idt, "app", "user-app"); c["nonce"] != nil {
					t.Fatalf("refreshed id_token carries a nonce: %v", c)
				}
			}
			if familyRevoked(fuzzFamilyApp) {
				t.Fatal("a successful refresh left its family revoked")
			}
		case GrantTokenExchange:
			if params["subject_token"] != fuzzSubjectToken || params["subject_token_type"] != fuzzSubjectType {
				t.Fatalf("exchange succeeded for %q (%q)", params["subject_token"], params["subject_token_type"])
			}
			if _, ok := out["refresh_token"]; ok {
				t.Fatal("token exchange issued a refresh token")
			}
			switch out["issued_token_type"] {
			case TokenTypeIDToken:
				idClaims(at, "app", "user-exchanged")
			case TokenTypeAccessToken:
				if !stored(keyAccess + HashToken(at)) {
					t.Fatal("exchanged access token is not stored")
				}
				if idt, _ := out["id_token"].(string); idt != "" {
					idClaims(idt, "app", "user-exchanged")
				}
			default:
				t.Fatalf("issued_token_type %v", out["issued_token_type"])
			}
		default:
			t.Fatalf("200 for grant_type %q", params["grant_type"])
		}
	})
}
