package oidc

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func testProvider() *Provider {
	conf := NewClient("app", "s3cret-s3cret-s3cret", []string{"https://app.example.com/cb", "https://app.example.com/cb2?x=1"})
	pub := &Client{ID: "spa", RedirectURIs: []string{"https://spa.example.com/cb"}, AuthMethods: []string{AuthMethodNone}}
	plain := NewClient("legacy", "legacy-secret", []string{"https://legacy.example.com/cb"})
	plain.AllowPlainPKCE = true
	return &Provider{
		Issuer:      "https://sso.example.com",
		Clients:     NewRegistry(conf, pub, plain),
		ScopeClaims: map[string][]string{"profile": {"name"}},
	}
}

func TestParseParams(t *testing.T) {
	cases := []struct {
		name, raw string
		wantErr   bool
	}{
		{"simple", "a=1&b=2", false},
		{"repeated parameter (RFC 6749 §3.1)", "a=1&a=2", true},
		{"repeated with one empty counts once", "a=&a=2", false},
		{"bad escape", "a=%zz", true},
		{"semicolon separator", "a=1;b=2", true},
		{"invalid UTF-8 value", "a=%ff%fe", true},
		{"invalid UTF-8 name", "%ff=1", true},
		{"too large", "a=" + strings.Repeat("x", MaxParamsBytes), true},
		{"one value too long", "a=" + strings.Repeat("x", MaxParamBytes+1), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseParams(tc.raw)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParseParams(%.40q) error = %v, wantErr %v", tc.raw, err, tc.wantErr)
			}
			if err != nil && err.Code != CodeInvalidRequest {
				t.Fatalf("code = %s, want invalid_request", err.Code)
			}
		})
	}
}

func authParams(over map[string]string) Params {
	p := Params{"client_id": "app", "redirect_uri": "https://app.example.com/cb", "response_type": "code", "scope": "openid profile", "state": "xyz"}
	for k, v := range over {
		if v == "-" {
			delete(p, k)
		} else {
			p[k] = v
		}
	}
	return p
}

func TestParseAuthorizeRequest(t *testing.T) {
	p := testProvider()
	challenge := strings.Repeat("a", 43)
	cases := []struct {
		name     string
		over     map[string]string
		code     string // "" = success
		redirect bool
	}{
		{"valid", nil, "", false},
		{"missing client_id", map[string]string{"client_id": "-"}, CodeInvalidRequest, false},
		{"unknown client_id", map[string]string{"client_id": "evil"}, CodeInvalidRequest, false},
		{"missing redirect_uri", map[string]string{"redirect_uri": "-"}, CodeInvalidRequest, false},
		{"redirect_uri prefix", map[string]string{"redirect_uri": "https://app.example.com/c"}, CodeInvalidRequest, false},
		{"redirect_uri suffix", map[string]string{"redirect_uri": "https://app.example.com/cb/evil"}, CodeInvalidRequest, false},
		{"redirect_uri path traversal", map[string]string{"redirect_uri": "https://app.example.com/cb/../evil"}, CodeInvalidRequest, false},
		{"redirect_uri extra query", map[string]string{"redirect_uri": "https://app.example.com/cb?next=evil"}, CodeInvalidRequest, false},
		{"redirect_uri userinfo @", map[string]string{"redirect_uri": "https://app.example.com@evil.example/cb"}, CodeInvalidRequest, false},
		{"redirect_uri scheme change", map[string]string{"redirect_uri": "http://app.example.com/cb"}, CodeInvalidRequest, false},
		{"redirect_uri fragment", map[string]string{"redirect_uri": "https://app.example.com/cb#x"}, CodeInvalidRequest, false},
		{"redirect_uri case change", map[string]string{"redirect_uri": "https://APP.example.com/cb"}, CodeInvalidRequest, false},
		{"redirect_uri trailing slash", map[string]string{"redirect_uri": "https://app.example.com/cb/"}, CodeInvalidRequest, false},
		{"redirect_uri port added", map[string]string{"redirect_uri": "https://app.example.com:443/cb"}, CodeInvalidRequest, false},
		{"registered redirect with query", map[string]string{"redirect_uri": "https://app.example.com/cb2?x=1"}, "", false},
		{"missing response_type", map[string]string{"response_type": "-"}, CodeInvalidRequest, true},
		{"implicit refused", map[string]string{"response_type": "id_token token"}, CodeUnsupportedResponseType, true},
		{"hybrid refused", map[string]string{"response_type": "code id_token"}, CodeUnsupportedResponseType, true},
		{"no openid scope", map[string]string{"scope": "profile"}, CodeInvalidScope, true},
		{"bad response_mode", map[string]string{"response_mode": "fragment"}, CodeInvalidRequest, true},
		{"form_post", map[string]string{"response_mode": "form_post"}, "", false},
		{"request object", map[string]string{"request": "eyJ"}, CodeRequestNotSupported, true},
		{"request_uri", map[string]string{"request_uri": "https://x"}, CodeRequestURINotSupported, true},
		{"prompt none with login", map[string]string{"prompt": "none login"}, CodeInvalidRequest, true},
		{"prompt unknown", map[string]string{"prompt": "bogus"}, CodeInvalidRequest, true},
		{"max_age negative", map[string]string{"max_age": "-1"}, CodeInvalidRequest, true},
		{"max_age text", map[string]string{"max_age": "ten"}, CodeInvalidRequest, true},
		{"nonce too long", map[string]string{"nonce": strings.Repeat("n", MaxNonceBytes+1)}, CodeInvalidRequest, true},
		{"S256 ok", map[string]string{"code_challenge": challenge, "code_challenge_method": "S256"}, "", false},
		{"plain refused by default", map[string]string{"code_challenge": challenge, "code_challenge_method": "plain"}, CodeInvalidRequest, true},
		{"absent method means plain: refused", map[string]string{"code_challenge": challenge}, CodeInvalidRequest, true},
		{"challenge too short", map[string]string{"code_challenge": "abc", "code_challenge_method": "S256"}, CodeInvalidRequest, true},
		{"method without challenge", map[string]string{"code_challenge_method": "S256"}, CodeInvalidRequest, true},
		{"unknown method", map[string]string{"code_challenge": challenge, "code_challenge_method": "S512"}, CodeInvalidRequest, true},
		{"public client without PKCE", map[string]string{"client_id": "spa", "redirect_uri": "https://spa.example.com/cb"}, CodeInvalidRequest, true},
		{"public client with S256", map[string]string{"client_id": "spa", "redirect_uri": "https://spa.example.com/cb", "code_challenge": challenge, "code_challenge_method": "S256"}, "", false},
		{"plain allowed by client", map[string]string{"client_id": "legacy", "redirect_uri": "https://legacy.example.com/cb", "code_challenge": challenge, "code_challenge_method": "plain"}, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := p.ParseAuthorizeRequest(authParams(tc.over))
			if tc.code == "" {
				if err != nil {
					t.Fatalf("unexpected error %v", err)
				}
				if req.State != "xyz" {
					t.Fatalf("state = %q", req.State)
				}
				return
			}
			if err == nil {
				t.Fatalf("want error %s, got success", tc.code)
			}
			if err.Code != tc.code || err.Redirect != tc.redirect {
				t.Fatalf("got (%s, redirect=%v), want (%s, redirect=%v): %s", err.Code, err.Redirect, tc.code, tc.redirect, err.Description)
			}
			if err.Redirect && (err.Request == nil || err.Request.State != "xyz") {
				t.Fatalf("a redirected error must carry the request and its state")
			}
		})
	}
}

func TestUnknownScopesAreDropped(t *testing.T) {
	req, err := testProvider().ParseAuthorizeRequest(authParams(map[string]string{"scope": "openid admin profile profile"}))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(req.Scopes, " ") != "openid profile" {
		t.Fatalf("scopes = %v", req.Scopes)
	}
}

func TestVerifyPKCE(t *testing.T) {
	verifier := "dBjftJeZ4CVP-mJ92K1mUoqjrx6BaOD3nPLg2T1xsM8"
	sum := sha256.Sum256([]byte(verifier))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])
	if e := VerifyPKCE(challenge, PKCES256, verifier); e != nil {
		t.Fatalf("valid verifier refused: %v", e)
	}
	for name, v := range map[string]string{
		"PKCE downgrade: no verifier": "",
		"wrong verifier":              strings.Repeat("b", 43),
		"challenge as verifier":       challenge,
		"too short":                   "abc",
	} {
		if e := VerifyPKCE(challenge, PKCES256, v); e == nil || e.Code != CodeInvalidGrant {
			t.Errorf("%s: got %v, want invalid_grant", name, e)
		}
	}
	if e := VerifyPKCE("", "", verifier); e == nil {
		t.Error("a verifier for a request without PKCE must be refused")
	}
	if e := VerifyPKCE("", "", ""); e != nil {
		t.Errorf("no PKCE at all: %v", e)
	}
}

func TestParseBasicAuth(t *testing.T) {
	enc := func(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }
	cases := []struct {
		header, id, secret string
		ok                 bool
	}{
		{enc("app:secret"), "app", "secret", true},
		{enc("my%3Aapp:p%40ss%2Bword"), "my:app", "p@ss+word", true}, // RFC 6749 §2.3.1 form-encoding
		{"basic " + base64.StdEncoding.EncodeToString([]byte("a:b")), "a", "b", true},
		{enc("nocolon"), "", "", false},
		{enc(":secret"), "", "", false},
		{enc("app:%zz"), "", "", false},
		{"Basic !!!", "", "", false},
		{"Bearer abc", "", "", false},
		{"Basic", "", "", false},
	}
	for _, tc := range cases {
		id, secret, ok := ParseBasicAuth(tc.header)
		if ok != tc.ok || id != tc.id || secret != tc.secret {
			t.Errorf("ParseBasicAuth(%q) = %q, %q, %v", tc.header, id, secret, ok)
		}
	}
}

func TestAuthenticate(t *testing.T) {
	r := testProvider().Clients
	basic := func(id, secret string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
	}
	cases := []struct {
		name   string
		header string
		form   Params
		want   string // client id or error code
	}{
		{"basic ok", basic("app", "s3cret-s3cret-s3cret"), Params{}, "app"},
		{"post ok", "", Params{"client_id": "app", "client_secret": "s3cret-s3cret-s3cret"}, "app"},
		{"wrong secret basic", basic("app", "nope"), Params{}, CodeInvalidClient},
		{"wrong secret post", "", Params{"client_id": "app", "client_secret": "nope"}, CodeInvalidClient},
		{"secret prefix", "", Params{"client_id": "app", "client_secret": "s3cret"}, CodeInvalidClient},
		{"unknown client", "", Params{"client_id": "who", "client_secret": "x"}, CodeInvalidClient},
		{"confidential without secret", "", Params{"client_id": "app"}, CodeInvalidClient},
		{"public none ok", "", Params{"client_id": "spa"}, "spa"},
		{"public with a secret", "", Params{"client_id": "spa", "client_secret": "x"}, CodeInvalidClient},
		{"two methods", basic("app", "s3cret-s3cret-s3cret"), Params{"client_secret": "s3cret-s3cret-s3cret"}, CodeInvalidRequest},
		{"id mismatch", basic("app", "s3cret-s3cret-s3cret"), Params{"client_id": "legacy"}, CodeInvalidRequest},
		{"nothing", "", Params{}, CodeInvalidClient},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("POST", "/token", nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			c, err := r.Authenticate(req, tc.form)
			got := ""
			if err != nil {
				got = err.Code
			} else {
				got = c.ID
			}
			if got != tc.want {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestAppendQuery(t *testing.T) {
	v := url.Values{"code": {"c"}, "state": {"s"}}
	cases := map[string]string{
		"https://a.example/cb":      "https://a.example/cb?code=c&state=s",
		"https://a.example/cb?x=1":  "https://a.example/cb?x=1&code=c&state=s",
		"https://a.example/cb?":     "https://a.example/cb?code=c&state=s",
		"https://a.example/cb#frag": "https://a.example/cb?code=c&state=s",
	}
	for in, want := range cases {
		if got := AppendQuery(in, v); got != want {
			t.Errorf("AppendQuery(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFormPostPage(t *testing.T) {
	p := testProvider()
	req := &AuthRequest{RedirectURI: "https://app.example.com/cb", ResponseMode: ResponseModeFormPost, State: `"><script>alert(1)</script>`}
	w := httptest.NewRecorder()
	p.WriteAuthorizeResponse(w, req, url.Values{"code": {"abc"}})
	body := w.Body.String()
	if strings.Contains(body, "<script>alert(1)") {
		t.Fatal("state is not escaped in the form_post page")
	}
	csp := w.Header().Get("Content-Security-Policy")
	for _, want := range []string{"script-src '" + formPostScriptHash + "'", "form-action https://app.example.com", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if !strings.Contains(body, `action="https://app.example.com/cb"`) || !strings.Contains(body, `name="iss" value="https://sso.example.com"`) {
		t.Fatalf("form does not post code and iss to the redirect_uri:\n%s", body)
	}
}

// TestLoopbackRedirectPortFlexibility: RFC 8252 §7.3 only for native
// clients that opt in; everything but the port must match.
func TestLoopbackRedirectPortFlexibility(t *testing.T) {
	native := &Client{ID: "cli", RedirectURIs: []string{"http://127.0.0.1/callback", "http://[::1]/cb"}, AuthMethods: []string{AuthMethodNone}}
	strict := &Client{ID: "cli2", RedirectURIs: []string{"http://127.0.0.1/callback"}, AuthMethods: []string{AuthMethodNone}}
	native.LoopbackAnyPort = true
	for uri, want := range map[string]bool{
		"http://127.0.0.1/callback":            true,
		"http://127.0.0.1:53412/callback":      true,
		"http://[::1]:8123/cb":                 true,
		"http://127.0.0.1:53412/callback/":     false,
		"http://127.0.0.1:53412/callbackx":     false,
		"http://127.0.0.1:53412/callback?x":    false,
		"http://127.0.0.2:53412/callback":      false,
		"http://localhost:53412/callback":      false,
		"https://127.0.0.1:53412/callback":     false,
		"http://evil@127.0.0.1:1/callback":     false,
		"http://127.0.0.1:53412@evil/callback": false,
	} {
		if got := native.HasRedirectURI(uri); got != want {
			t.Errorf("native %q: %v, want %v", uri, got, want)
		}
	}
	if strict.HasRedirectURI("http://127.0.0.1:53412/callback") {
		t.Error("a client that did not opt in accepted another port")
	}
}

// TestLoopbackAnyPortRefusesInvalidPorts: RFC 8252 §7.3 lets a native app
// pick its port, but only a real one: port 0 (no listener can be reached
// there), ports above 65535, non-numeric and non-canonical spellings are
// refused, so the port cannot smuggle anything past the comparison.
func TestLoopbackAnyPortRefusesInvalidPorts(t *testing.T) {
	native := &Client{ID: "cli", RedirectURIs: []string{"http://127.0.0.1/callback", "http://[::1]/cb"}, AuthMethods: []string{AuthMethodNone}, LoopbackAnyPort: true}
	for uri, want := range map[string]bool{
		"http://127.0.0.1:1/callback":      true,
		"http://127.0.0.1:65535/callback":  true,
		"http://[::1]:65535/cb":            true,
		"http://127.0.0.1:0/callback":      false,
		"http://[::1]:0/cb":                false,
		"http://127.0.0.1:00/callback":     false,
		"http://127.0.0.1:65536/callback":  false,
		"http://127.0.0.1:99999/callback":  false,
		"http://[::1]:100000/cb":           false,
		"http://127.0.0.1:080/callback":    false,
		"http://127.0.0.1:8o8o/callback":   false,
		"http://127.0.0.1:+80/callback":    false,
		"http://127.0.0.1:-1/callback":     false,
		"http://127.0.0.1:/callback":       false,
		"http://127.0.0.1:1e3/callback":    false,
		"http://127.0.0.1:0x50/callback":   false,
		"http://127.0.0.1:123456/callback": false,
	} {
		if got := native.HasRedirectURI(uri); got != want {
			t.Errorf("%q: %v, want %v", uri, got, want)
		}
	}
}
