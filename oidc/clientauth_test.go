package oidc

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// authEvents records the client authentication hooks of a provider.
type authEvents struct {
	mu       sync.Mutex
	failures []string
	success  []string
}

func (a *authEvents) install(p *Provider) {
	p.OnClientAuthFailure = func(id string, _ *http.Request) {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.failures = append(a.failures, id)
	}
	p.OnClientAuthSuccess = func(id string, _ *http.Request) {
		a.mu.Lock()
		defer a.mu.Unlock()
		a.success = append(a.success, id)
	}
}

// take returns and clears what was recorded.
func (a *authEvents) take() (failures, success []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	failures, success = a.failures, a.success
	a.failures, a.success = nil, nil
	return failures, success
}

func basicHeader(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id)+":"+url.QueryEscape(secret)))
}

// TestTokenRequestQueryClientIDIsIgnored: a client_id in the URL query of a
// token request is not a token request parameter (RFC 6749 §3.2: they are
// in the POST body). An attacker guessing app's secret who adds a random
// ?client_id= to every request must still be counted against app, by the
// endpoint's hook and by ClaimedClientID alike, so that a per-client limit
// cannot be dodged.
func TestTokenRequestQueryClientIDIsIgnored(t *testing.T) {
	h := newRefreshHarness(t)
	var ev authEvents
	ev.install(h.p)
	tr := h.exchange("app", h.login("app", offlineScopes, ""))
	ev.take()

	send := func(secret string) (*http.Request, *httptest.ResponseRecorder, string) {
		t.Helper()
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}, "client_id": {"app"}, "client_secret": {secret}}
		r := httptest.NewRequest(http.MethodPost, "/token?client_id="+NewToken(), strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		claimed, e := ClaimedClientID(r)
		if e != nil {
			t.Fatalf("ClaimedClientID: %v", e)
		}
		w := httptest.NewRecorder()
		h.p.HandleToken(w, r)
		return r, w, claimed
	}
	_, w, claimed := send("guess-1")
	if claimed != "app" {
		t.Fatalf("ClaimedClientID = %q, want app (the body's client_id, not the query's)", claimed)
	}
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("wrong secret: status %d", w.Code)
	}
	if f, s := ev.take(); len(f) != 1 || f[0] != "app" || len(s) != 0 {
		t.Fatalf("hooks after a wrong secret: failures %q, successes %q; want one failure for app", f, s)
	}
	_, w, claimed = send(appSecret)
	if claimed != "app" || w.Code != http.StatusOK {
		t.Fatalf("right secret: claimed %q, status %d %s", claimed, w.Code, w.Body)
	}
	if f, s := ev.take(); len(f) != 0 || len(s) != 1 || s[0] != "app" {
		t.Fatalf("hooks after the right secret: failures %q, successes %q; want one success for app", f, s)
	}

	// A client id only in the query is no client id at all.
	r := httptest.NewRequest(http.MethodPost, "/token?client_id=app&client_secret="+appSecret, strings.NewReader("grant_type=refresh_token&refresh_token="+tr.RefreshToken))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if id, e := ClaimedClientID(r); e == nil || id != "" {
		t.Fatalf("ClaimedClientID of a query-only client_id = %q, %v; want an error", id, e)
	}
	w = httptest.NewRecorder()
	h.p.HandleToken(w, r)
	if w.Code != http.StatusUnauthorized {
		t.Fatalf("query-only credentials: status %d %s", w.Code, w.Body)
	}
	if f, s := ev.take(); len(f) != 1 || f[0] != "" || len(s) != 0 {
		t.Fatalf("hooks for query-only credentials: failures %q, successes %q; want one failure with no id", f, s)
	}
}

// TestClaimedClientIDAgreesWithTokenHandler: for every way of presenting a
// client, ClaimedClientID names the client the token endpoint then reports
// to its hooks, and reading it does not take the body from the handler.
func TestClaimedClientIDAgreesWithTokenHandler(t *testing.T) {
	const form = "application/x-www-form-urlencoded"
	cases := []struct {
		name, method, query, contentType, authz, body string
		claimed                                       string // "" = ClaimedClientID errs
		outcome                                       string // "success", "failure" or "" (no hook)
	}{
		{"post ok", "POST", "", form, "", "grant_type=x&client_id=app&client_secret=" + appSecret, "app", "success"},
		{"post wrong secret", "POST", "", form, "", "client_id=app&client_secret=nope", "app", "failure"},
		{"basic ok", "POST", "", form, basicHeader("app", appSecret), "grant_type=x", "app", "success"},
		{"basic wrong secret", "POST", "", form, basicHeader("other", "nope"), "grant_type=x", "other", "failure"},
		{"basic beats an equal body id", "POST", "", form, basicHeader("app", appSecret), "client_id=app", "app", "success"},
		{"unknown client", "POST", "", form, "", "client_id=stranger&client_secret=x", "stranger", "failure"},
		{"public client", "POST", "", form, "", "client_id=spa", "spa", "success"},
		{"public client with a secret", "POST", "", form, "", "client_id=spa&client_secret=x", "spa", "failure"},
		{"confidential client without secret", "POST", "", form, "", "client_id=app", "app", "failure"},
		{"content type with charset", "POST", "", form + "; charset=UTF-8", "", "client_id=app&client_secret=" + appSecret, "app", "success"},
		{"content type in capitals", "POST", "", "Application/X-WWW-Form-URLEncoded; Charset=utf-8", "", "client_id=app&client_secret=" + appSecret, "app", "success"},
		{"query client_id ignored", "POST", "client_id=other", form, "", "client_id=app&client_secret=nope", "app", "failure"},
		{"query only", "POST", "client_id=app", form, "", "grant_type=x", "", "failure"},
		{"malformed Authorization", "POST", "", form, "Basic !!!", "client_id=app", "", "failure"},
		{"Basic and body ids differ", "POST", "", form, basicHeader("app", appSecret), "client_id=other", "", ""},
		{"two methods", "POST", "", form, basicHeader("app", appSecret), "client_secret=" + appSecret, "", ""},
		{"repeated client_id", "POST", "", form, "", "client_id=app&client_id=other&client_secret=x", "", ""},
		{"JSON body", "POST", "", "application/json", "", `{"client_id":"app"}`, "", ""},
		{"no content type", "POST", "", "", "", "client_id=app&client_secret=" + appSecret, "", ""},
		{"GET", "GET", "client_id=app", "", "", "", "", ""},
		{"body too large", "POST", "", form, "", "client_id=app&client_secret=nope&pad=" + strings.Repeat("x", MaxParamsBytes), "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newRefreshHarness(t)
			var ev authEvents
			ev.install(h.p)
			target := "/token"
			if tc.query != "" {
				target += "?" + tc.query
			}
			r := httptest.NewRequest(tc.method, target, strings.NewReader(tc.body))
			if tc.contentType != "" {
				r.Header.Set("Content-Type", tc.contentType)
			}
			if tc.authz != "" {
				r.Header.Set("Authorization", tc.authz)
			}
			claimed, e := ClaimedClientID(r)
			if (e == nil) != (tc.claimed != "") || claimed != tc.claimed {
				t.Fatalf("ClaimedClientID = %q, %v; want %q", claimed, e, tc.claimed)
			}
			w := httptest.NewRecorder()
			h.p.HandleToken(w, r)
			failures, successes := ev.take()
			var got []string
			outcome := ""
			switch {
			case len(failures) > 0 && len(successes) > 0:
				t.Fatalf("both hooks called: %q %q", failures, successes)
			case len(failures) > 0:
				outcome, got = "failure", failures
			case len(successes) > 0:
				outcome, got = "success", successes
			}
			if outcome != tc.outcome {
				t.Fatalf("hook outcome %q, want %q (status %d %s)", outcome, tc.outcome, w.Code, w.Body)
			}
			if outcome != "" && (len(got) != 1 || got[0] != claimed) {
				t.Fatalf("the handler reported client %q, ClaimedClientID said %q", got, claimed)
			}
			if outcome == "success" && w.Code == http.StatusUnauthorized {
				t.Fatalf("success hook, yet 401: %s", w.Body)
			}
			if outcome == "failure" && w.Code != http.StatusUnauthorized {
				t.Fatalf("failure hook, yet status %d", w.Code)
			}
		})
	}
}

// TestClientAuthHooksAtRevocationAndIntrospection: the hooks fire at every
// client-authenticated endpoint, with the claimed id.
func TestClientAuthHooksAtRevocationAndIntrospection(t *testing.T) {
	h := newRefreshHarness(t)
	var ev authEvents
	ev.install(h.p)
	tr := h.exchange("app", h.login("app", offlineScopes, ""))
	ev.take()
	for name, handler := range map[string]http.HandlerFunc{"revoke": h.p.HandleRevoke, "introspect": h.p.HandleIntrospect} {
		if w := h.post(handler, "other", "wrong-secret", url.Values{"token": {tr.AccessToken}}); w.Code != http.StatusUnauthorized {
			t.Fatalf("%s with a wrong secret: %d", name, w.Code)
		}
		if f, s := ev.take(); len(f) != 1 || f[0] != "other" || len(s) != 0 {
			t.Fatalf("%s, wrong secret: failures %q, successes %q", name, f, s)
		}
		if w := h.post(handler, "other", otherSecret, url.Values{"token": {tr.AccessToken}}); w.Code != http.StatusOK {
			t.Fatalf("%s: %d", name, w.Code)
		}
		if f, s := ev.take(); len(f) != 0 || len(s) != 1 || s[0] != "other" {
			t.Fatalf("%s, right secret: failures %q, successes %q", name, f, s)
		}
	}
	// A public client at introspection is refused without being a failed
	// guess or a success.
	if w := h.post(h.p.HandleIntrospect, "spa", "", url.Values{"token": {tr.AccessToken}}); w.Code != http.StatusUnauthorized {
		t.Fatalf("public client at introspection: %d", w.Code)
	}
	if f, s := ev.take(); len(f) != 0 || len(s) != 0 {
		t.Fatalf("public client at introspection: failures %q, successes %q", f, s)
	}
}

// TestClaimedClientIDLeavesTheBodyForTheHandler: reading the claimed client
// does not consume the body: the handler then redeems the code.
func TestClaimedClientIDLeavesTheBodyForTheHandler(t *testing.T) {
	h := newRefreshHarness(t)
	code := h.login("app", "openid", "")
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {appRedirect}, "client_id": {"app"}, "client_secret": {appSecret}}
	r := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=UTF-8")
	for range 2 { // twice: the second read sees the same body
		if id, e := ClaimedClientID(r); e != nil || id != "app" {
			t.Fatalf("ClaimedClientID = %q, %v", id, e)
		}
	}
	w := httptest.NewRecorder()
	h.p.HandleToken(w, r)
	if w.Code != http.StatusOK {
		t.Fatalf("the handler could not read the body after ClaimedClientID: %d %s", w.Code, w.Body)
	}
}
