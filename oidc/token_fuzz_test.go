package oidc

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"log/slog"
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

// Fixed codes planted in the store before every request, so that the fuzzer
// can reach the successful exchange and every check after the lookup.
const (
	fuzzCodeApp      = "fuzz-code-app"
	fuzzCodeSPA      = "fuzz-code-spa"
	fuzzCodeLegacy   = "fuzz-code-legacy"
	fuzzVerifier     = "dBjftJeZ4CVP-mJ92K1mUoqjrx6BaOD3nPLg2T1xsM8"
	fuzzPlainVerif   = "plain-verifier-plain-verifier-plain-verifier-0"
	fuzzAppSecret    = "s3cret-s3cret-s3cret"
	fuzzLegacySecret = "legacy-secret"
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
		CodeChallengeMethod: PKCES256, Scopes: []string{"openid"}, Subject: "user-spa", AuthTime: 1700000000},
	fuzzCodeLegacy: {ClientID: "legacy", RedirectURI: "https://legacy.example.com/cb", CodeChallenge: fuzzPlainVerif,
		CodeChallengeMethod: PKCEPlain, Scopes: []string{"openid"}, Subject: "user-legacy", AuthTime: 1700000000},
}

func fuzzBasic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

var fuzzTokenErrorCodes = map[string]bool{
	CodeInvalidRequest: true, CodeInvalidClient: true, CodeInvalidGrant: true,
	CodeUnauthorizedClient: true, CodeUnsupportedGrantType: true, CodeInvalidScope: true,
}

// FuzzTokenEndpoint posts the fuzzed body (and Authorization header) to
// HandleToken, then posts it again: an authorization code is single use.
func FuzzTokenEndpoint(f *testing.F) {
	appBody := "grant_type=authorization_code&code=" + fuzzCodeApp + "&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb"
	spaBody := "grant_type=authorization_code&code=" + fuzzCodeSPA + "&redirect_uri=https%3A%2F%2Fspa.example.com%2Fcb&client_id=spa&code_verifier=" + fuzzVerifier
	legacyBody := "grant_type=authorization_code&code=" + fuzzCodeLegacy + "&redirect_uri=https%3A%2F%2Flegacy.example.com%2Fcb&client_id=legacy&client_secret=" + fuzzLegacySecret + "&code_verifier=" + fuzzPlainVerif
	for _, s := range []struct{ body, authz string }{
		{appBody + "&client_id=app&client_secret=" + fuzzAppSecret, ""},
		{appBody, fuzzBasic("app", fuzzAppSecret)},
		{appBody, fuzzBasic("app", "wrong")},
		{appBody + "&client_id=spa", fuzzBasic("app", fuzzAppSecret)},
		{appBody + "&client_secret=" + fuzzAppSecret, fuzzBasic("app", fuzzAppSecret)},
		{appBody + "&client_id=legacy&client_secret=" + fuzzLegacySecret, ""},
		{appBody + "&client_id=app&client_secret=" + fuzzAppSecret + "&code_verifier=" + fuzzVerifier, ""},
		{strings.Replace(appBody, "cb", "cb2", 1) + "&client_id=app&client_secret=" + fuzzAppSecret, ""},
		{spaBody, ""},
		{strings.Replace(spaBody, fuzzVerifier, strings.Repeat("a", 43), 1), ""},
		{strings.Replace(spaBody, "&code_verifier="+fuzzVerifier, "", 1), ""},
		{legacyBody, ""},
		{"grant_type=refresh_token&refresh_token=x&client_id=app&client_secret=" + fuzzAppSecret, ""},
		{"grant_type=&client_id=app&client_secret=" + fuzzAppSecret, ""},
		{"grant_type=authorization_code&client_id=app&client_secret=" + fuzzAppSecret, ""},
		{"grant_type=authorization_code&code=nope&client_id=app&client_secret=" + fuzzAppSecret, ""},
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

	prev := slog.Default()
	slog.SetDefault(slog.New(slog.DiscardHandler))
	f.Cleanup(func() { slog.SetDefault(prev) })

	signer, err := keys.NewEphemeral()
	if err != nil {
		f.Fatal(err)
	}
	now := time.Unix(1700000100, 0)

	f.Fuzz(func(t *testing.T, body, authz string) {
		st := newFuzzMemStorage()
		for code, g := range fuzzCodes {
			raw, _ := json.Marshal(g)
			st.m[keyCode+HashToken(code)] = raw
		}
		p := testProvider()
		p.Storage = st
		p.Signer = signer
		p.CodeTTL, p.AccessTokenTTL, p.IDTokenTTL = time.Minute, time.Hour, time.Hour
		p.Now = func() time.Time { return now }

		post := func() (int, map[string]any) {
			r := httptest.NewRequest("POST", "/token", strings.NewReader(body))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if authz != "" {
				r.Header.Set("Authorization", authz)
			}
			w := httptest.NewRecorder()
			p.HandleToken(w, r)
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

		status, out := post()
		if status != 200 {
			return
		}

		// Success: the body named a planted code, for the authenticated client.
		params, perr := ParseParams(body)
		if perr != nil {
			t.Fatalf("200 for a body that does not parse: %v", perr)
		}
		if params["grant_type"] != GrantAuthorizationCode {
			t.Fatalf("200 with grant_type %q", params["grant_type"])
		}
		g, ok := fuzzCodes[params["code"]]
		if !ok {
			t.Fatalf("200 for unknown code %q", params["code"])
		}
		if params["redirect_uri"] != g.RedirectURI {
			t.Fatalf("200 with redirect_uri %q, code bound to %q", params["redirect_uri"], g.RedirectURI)
		}
		if params["client_secret"] != "" && authz != "" {
			t.Fatal("200 with two client authentication methods")
		}
		at, _ := out["access_token"].(string)
		idt, _ := out["id_token"].(string)
		if at == "" || out["token_type"] != "Bearer" || idt == "" {
			t.Fatalf("incomplete token response %v", out)
		}
		payload, err := signer.Verify(idt)
		if err != nil {
			t.Fatalf("id_token does not verify: %v", err)
		}
		var claims map[string]any
		if err := json.Unmarshal(payload, &claims); err != nil {
			t.Fatal(err)
		}
		if claims["iss"] != p.Issuer || claims["aud"] != g.ClientID || claims["sub"] != g.Subject || claims["at_hash"] != leftHalfHash(at) {
			t.Fatalf("id_token claims %v for grant %+v", claims, g)
		}
		if g.Nonce != "" && claims["nonce"] != g.Nonce {
			t.Fatalf("nonce %v, want %q", claims["nonce"], g.Nonce)
		}
		if raw, _ := st.Get(context.Background(), keyAccess+HashToken(at)); raw == nil {
			t.Fatal("issued access token is not stored")
		}

		// Replay: refused, and the tokens of the first redemption revoked.
		if status, _ := post(); status == 200 {
			t.Fatal("an authorization code was redeemed twice")
		}
		if raw, _ := st.Get(context.Background(), keyAccess+HashToken(at)); raw != nil {
			t.Fatal("replaying the code did not revoke the access token")
		}
	})
}
