package oidc

import (
	"encoding/base64"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzQuerySeeds are query strings shared by the parameter and authorize
// request targets: valid requests, each error class, and encoding oddities.
var fuzzQuerySeeds = []string{
	"",
	"a=1&b=2",
	"a=1&a=2",
	"a=&a=2",
	"a=%zz",
	"a=1;b=2",
	"a=%ff%fe",
	"%ff=1",
	"a",
	"=",
	"&&&",
	"a=1&&b=%20+%2B",
	"k=%E4%BD%A0%E5%A5%BD",
	"%00=%00",
	"a=" + strings.Repeat("x", MaxParamBytes),
	"a=" + strings.Repeat("x", MaxParamBytes+1),
	"client_id=app&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb&response_type=code&scope=openid+profile&state=xyz",
	"client_id=app&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb2%3Fx%3D1&response_type=code&scope=openid&response_mode=form_post&nonce=n",
	"client_id=app&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb&response_type=code&scope=openid&state=" + strings.Repeat("s", MaxStateBytes+1),
	"client_id=app&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb&response_type=token&scope=openid",
	"client_id=app&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb&response_type=code&scope=profile",
	"client_id=app&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb&response_type=code&scope=openid&prompt=none+login",
	"client_id=app&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb&response_type=code&scope=openid&max_age=-1",
	"client_id=app&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb&response_type=code&scope=openid&request=eyJ",
	"client_id=app&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb&response_type=code&scope=openid&response_mode=fragment",
	"client_id=app&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb%23x&response_type=code&scope=openid",
	"client_id=app&redirect_uri=https%3A%2F%2Fevil.example%2Fcb&response_type=code&scope=openid",
	"client_id=app&redirect_uri=https%3A%2F%2Fspa.example.com%2Fcb&response_type=code&scope=openid",
	"client_id=evil&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb&response_type=code&scope=openid",
	"client_id=spa&redirect_uri=https%3A%2F%2Fspa.example.com%2Fcb&response_type=code&scope=openid&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
	"client_id=spa&redirect_uri=https%3A%2F%2Fspa.example.com%2Fcb&response_type=code&scope=openid",
	"client_id=legacy&redirect_uri=https%3A%2F%2Flegacy.example.com%2Fcb&response_type=code&scope=openid&code_challenge=" + strings.Repeat("a", 43),
	"client_id=app&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb&response_type=code&scope=openid&code_challenge=" + strings.Repeat("a", 43) + "&code_challenge_method=plain",
	"client_id=app&client_id=spa&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb&response_type=code&scope=openid",
	"client_id=app&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb&redirect_uri=&response_type=code&scope=openid",
}

// FuzzParseParams checks the strict form parser against net/url's lenient one.
func FuzzParseParams(f *testing.F) {
	for _, s := range fuzzQuerySeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := ParseParams(raw)
		if err != nil {
			if p != nil {
				t.Fatalf("error %v with non-nil params %v", err, p)
			}
			if err.Code != CodeInvalidRequest {
				t.Fatalf("error code %q, want invalid_request (%s)", err.Code, err.Description)
			}
			if err.Status != 400 {
				t.Fatalf("error status %d, want 400", err.Status)
			}
			if !utf8.ValidString(err.Description) {
				t.Fatalf("error description is not valid UTF-8: %q", err.Description)
			}
			return
		}
		if len(raw) > MaxParamsBytes {
			t.Fatalf("accepted %d bytes of parameters (max %d)", len(raw), MaxParamsBytes)
		}
		if len(p) > MaxParamCount {
			t.Fatalf("accepted %d parameters (max %d)", len(p), MaxParamCount)
		}
		ref, rerr := url.ParseQuery(raw)
		if rerr != nil {
			t.Fatalf("ParseParams accepted what url.ParseQuery refuses: %v", rerr)
		}
		for k, v := range p {
			if !utf8.ValidString(k) || !utf8.ValidString(v) {
				t.Fatalf("invalid UTF-8 accepted: %q=%q", k, v)
			}
			if v == "" {
				t.Fatalf("empty value kept for %q (an empty parameter counts as omitted)", k)
			}
			if len(v) > MaxParamBytes {
				t.Fatalf("value of %q has %d bytes (max %d)", k, len(v), MaxParamBytes)
			}
		}
		// No parameter repeated: each key has exactly one non-empty value in
		// the raw input, and it is the one returned; nothing is dropped.
		for k, vs := range ref {
			var nonEmpty []string
			for _, v := range vs {
				if v != "" {
					nonEmpty = append(nonEmpty, v)
				}
			}
			switch len(nonEmpty) {
			case 0:
				if _, ok := p[k]; ok {
					t.Fatalf("%q has no non-empty value but is present", k)
				}
			case 1:
				if got, ok := p[k]; !ok || got != nonEmpty[0] {
					t.Fatalf("%q = %q (present %v), want %q", k, got, ok, nonEmpty[0])
				}
			default:
				t.Fatalf("parameter %q included %d times was accepted", k, len(nonEmpty))
			}
		}
		for k := range p {
			if _, ok := ref[k]; !ok {
				t.Fatalf("parameter %q is not in the input", k)
			}
		}
	})
}

// FuzzParseAuthorizeRequest fuzzes the raw authorize query string: the open
// redirector invariants of RFC 6749 §4.1.2.1 / RFC 9700 §4.11.
func FuzzParseAuthorizeRequest(f *testing.F) {
	for _, s := range fuzzQuerySeeds {
		f.Add(s)
	}
	p := testProvider()
	f.Fuzz(func(t *testing.T, raw string) {
		params, perr := ParseParams(raw)
		if perr != nil {
			return
		}
		req, err := p.ParseAuthorizeRequest(params)
		if err == nil {
			if req == nil {
				t.Fatal("nil request and nil error")
			}
			c := p.Clients.Lookup(req.ClientID)
			if c == nil || req.ClientID != params["client_id"] {
				t.Fatalf("success for unregistered client %q", req.ClientID)
			}
			if !c.HasRedirectURI(req.RedirectURI) || req.RedirectURI != params["redirect_uri"] {
				t.Fatalf("success with unregistered redirect_uri %q for %q", req.RedirectURI, req.ClientID)
			}
			if !req.HasScope("openid") {
				t.Fatalf("success without scope openid: %v", req.Scopes)
			}
			if params["response_type"] != "code" {
				t.Fatalf("success with response_type %q", params["response_type"])
			}
			if req.ResponseMode != ResponseModeQuery && req.ResponseMode != ResponseModeFormPost {
				t.Fatalf("response_mode %q", req.ResponseMode)
			}
			if len(req.State) > MaxStateBytes || len(req.Nonce) > MaxNonceBytes {
				t.Fatalf("oversized state (%d) or nonce (%d) accepted", len(req.State), len(req.Nonce))
			}
			if (c.Public() || c.RequirePKCE) && req.CodeChallenge == "" {
				t.Fatalf("client %q must use PKCE but got no code_challenge", c.ID)
			}
			if req.CodeChallenge != "" && !validPKCEString(req.CodeChallenge) {
				t.Fatalf("invalid code_challenge %q accepted", req.CodeChallenge)
			}
			switch req.CodeChallengeMethod {
			case "", PKCES256:
			case PKCEPlain:
				if !c.AllowPlainPKCE {
					t.Fatalf("plain PKCE accepted for client %q", c.ID)
				}
			default:
				t.Fatalf("code_challenge_method %q accepted", req.CodeChallengeMethod)
			}
			if req.MaxAge < -1 {
				t.Fatalf("max_age %d", req.MaxAge)
			}
			if req.HasPrompt(PromptNone) && len(req.Prompt) > 1 {
				t.Fatalf("prompt none combined with %v", req.Prompt)
			}
			return
		}
		if req != nil {
			t.Fatal("both a request and an error returned")
		}
		if err.Error == nil || err.Code == "" {
			t.Fatalf("error without a code: %+v", err)
		}
		if !err.Redirect {
			if err.Request != nil {
				t.Fatalf("page error %s carries a request to %q", err.Code, err.Request.RedirectURI)
			}
			return
		}
		r := err.Request
		if r == nil {
			t.Fatalf("redirected error %s has no request", err.Code)
		}
		c := p.Clients.Lookup(r.ClientID)
		if c == nil || !c.HasRedirectURI(r.RedirectURI) {
			t.Fatalf("open redirect: error %s sent to %q for client %q", err.Code, r.RedirectURI, r.ClientID)
		}
		if len(r.State) > MaxStateBytes {
			t.Fatalf("redirected error echoes a %d-byte state", len(r.State))
		}
		// The response really goes to the registered URI and nowhere else.
		w := httptest.NewRecorder()
		p.WriteAuthorizeError(w, r, err.Error)
		switch r.ResponseMode {
		case ResponseModeFormPost:
			if w.Code != 200 || !strings.Contains(w.Body.String(), `action="`) {
				t.Fatalf("form_post error page: status %d", w.Code)
			}
		default:
			loc := w.Header().Get("Location")
			if w.Code != 302 || !strings.HasPrefix(loc, r.RedirectURI) {
				t.Fatalf("error redirected to %q, registered %q", loc, r.RedirectURI)
			}
			endsOpen := strings.HasSuffix(r.RedirectURI, "?") || strings.HasSuffix(r.RedirectURI, "&")
			if next := loc[len(r.RedirectURI):]; next != "" && !endsOpen && next[0] != '?' && next[0] != '&' {
				t.Fatalf("redirect %q extends the registered URI %q", loc, r.RedirectURI)
			}
		}
	})
}

// FuzzParseBasicAuth checks that a parsed Authorization header round-trips
// through the RFC 6749 §2.3.1 encoding.
func FuzzParseBasicAuth(f *testing.F) {
	enc := func(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, s := range []string{
		enc("app:secret"),
		enc("my%3Aapp:p%40ss%2Bword"),
		enc("a+b:c+d"),
		enc("app:"),
		enc("app:a:b"),
		enc(":secret"),
		enc("nocolon"),
		enc("app:%zz"),
		enc("%zz:x"),
		enc("%E4%BD%A0:%ff"),
		enc("\xff\xfe:\x00"),
		"basic " + base64.StdEncoding.EncodeToString([]byte("a:b")),
		"BASIC   " + base64.StdEncoding.EncodeToString([]byte("a:b")) + "  ",
		"Basic YTpi\n",
		"Basic YTpi=",
		"Basic YTp",
		"Basic !!!",
		"Bearer abc",
		"Basic",
		"Basic ",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		id, secret, ok := ParseBasicAuth(header)
		if !ok {
			if id != "" || secret != "" {
				t.Fatalf("failure returns %q, %q", id, secret)
			}
			return
		}
		if id == "" {
			t.Fatal("ok with an empty client id")
		}
		if len(header) < 6 || !strings.EqualFold(header[:6], "basic ") {
			t.Fatalf("ok for a non-Basic header %q", header)
		}
		again := "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
		id2, secret2, ok2 := ParseBasicAuth(again)
		if !ok2 || id2 != id || secret2 != secret {
			t.Fatalf("round trip of (%q, %q) via %q gave (%q, %q, %v)", id, secret, again, id2, secret2, ok2)
		}
	})
}
