package oidc

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// loginAs issues a code to clientID for scopes, for subject sub in SSO
// session sid.
func (h *refreshHarness) loginAs(clientID, scopes, sub, sid string) string {
	h.t.Helper()
	code, err := h.p.IssueCode(context.Background(), &AuthRequest{
		ClientID: clientID, RedirectURI: h.p.Clients.Lookup(clientID).RedirectURIs[0], Scopes: strings.Fields(scopes),
	}, Identity{Subject: sub, AuthTime: h.clock.Now(), SessionID: sid, Claims: testClaims})
	if err != nil {
		h.t.Fatal(err)
	}
	return code
}

// wantAccess checks an access token at userinfo and introspection.
func (h *refreshHarness) wantAccess(clientID, at string, live bool) {
	h.t.Helper()
	status := http.StatusUnauthorized
	if live {
		status = http.StatusOK
	}
	h.wantUserinfo(at, status)
	if ir, _ := h.introspect(clientID, at, ""); ir.Active != live {
		h.t.Fatalf("access token introspection active = %v, want %v", ir.Active, live)
	}
}

// wantRefresh checks a refresh token by introspection (which does not use
// it up) and, when it should be dead, by refreshing.
func (h *refreshHarness) wantRefresh(clientID, rt string, live bool) {
	h.t.Helper()
	if ir, _ := h.introspect(clientID, rt, TokenTypeHintRefreshToken); ir.Active != live {
		h.t.Fatalf("refresh token introspection active = %v, want %v", ir.Active, live)
	}
	if !live {
		h.wantRefreshError(clientID, rt, "", CodeInvalidGrant)
	}
}

// sessionTokens are the tokens of one person's sign-ins in every shape.
type sessionTokens struct {
	plain   *TokenResponse // code grant, no refresh token
	family  *TokenResponse // refresh token without offline_access (client RefreshTokens)
	refresh *TokenResponse // the family's tokens after one refresh
	offline *TokenResponse // refresh token for offline_access
}

func (h *refreshHarness) signIns(sub, sid string) sessionTokens {
	h.t.Helper()
	var s sessionTokens
	s.plain = h.exchange("app", h.loginAs("app", "openid profile", sub, sid))
	s.family = h.exchange("always", h.loginAs("always", "openid profile", sub, sid))
	s.refresh = h.mustRefresh("always", s.family.RefreshToken)
	s.offline = h.exchange("app", h.loginAs("app", offlineScopes, sub, sid))
	return s
}

// TestLogoutRevokesSessionTokensExceptOfflineAccess: at logout the bridge
// calls RevokeSession. Back-Channel Logout 1.0 §2.7: refresh tokens of the
// session not issued for offline_access are revoked, with every access
// token of their families; access tokens the code grant issued without a
// refresh token end too. offline_access tokens survive (they exist to work
// while the person is away), and other sessions are untouched.
func TestLogoutRevokesSessionTokensExceptOfflineAccess(t *testing.T) {
	h := newRefreshHarness(t)
	ended := h.signIns("u1", "sid-A")
	other := h.signIns("u1", "sid-B")

	if err := h.p.RevokeSession(context.Background(), "sid-A"); err != nil {
		t.Fatal(err)
	}
	h.wantAccess("app", ended.plain.AccessToken, false)
	h.wantAccess("always", ended.family.AccessToken, false)
	h.wantAccess("always", ended.refresh.AccessToken, false)
	h.wantRefresh("always", ended.refresh.RefreshToken, false)
	// offline_access survives the logout.
	h.wantAccess("app", ended.offline.AccessToken, true)
	h.wantRefresh("app", ended.offline.RefreshToken, true)
	// The other session of the same person is untouched.
	h.wantAccess("app", other.plain.AccessToken, true)
	h.wantAccess("always", other.refresh.AccessToken, true)
	h.wantRefresh("always", other.refresh.RefreshToken, true)

	// Ending it again, or a session never seen, is not an error.
	for _, sid := range []string{"sid-A", "sid-never"} {
		if err := h.p.RevokeSession(context.Background(), sid); err != nil {
			t.Fatalf("RevokeSession(%s): %v", sid, err)
		}
	}
	if err := h.p.RevokeSession(context.Background(), ""); err == nil {
		t.Fatal("RevokeSession with no session id did not fail")
	}
}

// TestRevokeSubjectRevokesEverythingIncludingOfflineAccess: when an admin
// disables a person, RevokeSubject ends every token of theirs: every
// session, offline_access included, and access tokens from token exchange
// (which have no session). Other people are untouched.
func TestRevokeSubjectRevokesEverythingIncludingOfflineAccess(t *testing.T) {
	h, _ := newExchangeHarness(t)
	a := h.signIns("o_user_1", "sid-A")
	b := h.signIns("o_user_1", "sid-B")
	_, ex := h.tokenExchange("app", nil) // subject u_exchanged
	exchanged, _ := ex["access_token"].(string)
	bystander := h.signIns("someone-else", "sid-C")

	if err := h.p.RevokeSubject(context.Background(), "o_user_1"); err != nil {
		t.Fatal(err)
	}
	for _, s := range []sessionTokens{a, b} {
		h.wantAccess("app", s.plain.AccessToken, false)
		h.wantAccess("always", s.refresh.AccessToken, false)
		h.wantRefresh("always", s.refresh.RefreshToken, false)
		h.wantAccess("app", s.offline.AccessToken, false)
		h.wantRefresh("app", s.offline.RefreshToken, false)
	}
	h.wantAccess("app", bystander.plain.AccessToken, true)
	h.wantRefresh("app", bystander.offline.RefreshToken, true)
	h.wantAccess("app", exchanged, true)

	if err := h.p.RevokeSubject(context.Background(), "u_exchanged"); err != nil {
		t.Fatal(err)
	}
	h.wantAccess("app", exchanged, false)
	if err := h.p.RevokeSubject(context.Background(), ""); err == nil {
		t.Fatal("RevokeSubject with no subject did not fail")
	}
}

// indexEntries returns the live entries of an index record.
func (h *refreshHarness) indexEntries(key string) []indexEntry {
	h.t.Helper()
	raw, err := h.store.Get(context.Background(), key)
	if err != nil {
		h.t.Fatal(err)
	}
	if raw == nil {
		return nil
	}
	var idx tokenIndex
	if err := json.Unmarshal(raw, &idx); err != nil {
		h.t.Fatal(err)
	}
	return idx.Entries
}

// TestConcurrentSignInsAreAllIndexed: the index is updated atomically: of
// many sign-ins of one person at once none is lost, so RevokeSubject ends
// them all.
func TestConcurrentSignInsAreAllIndexed(t *testing.T) {
	h := newRefreshHarness(t)
	const n = 12
	codes := make([]string, n)
	for i := range codes {
		codes[i] = h.loginAs("app", offlineScopes, "u1", fmt.Sprintf("sid-%d", i%3))
	}
	tokens := make([]*TokenResponse, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := h.post(h.p.HandleToken, "app", appSecret, url.Values{"grant_type": {"authorization_code"}, "code": {codes[i]}, "redirect_uri": {appRedirect}})
			var tr TokenResponse
			if w.Code == http.StatusOK && json.Unmarshal(w.Body.Bytes(), &tr) == nil {
				tokens[i] = &tr
			}
		}()
	}
	wg.Wait()
	if got := len(h.indexEntries(keySubjectIndex + "u1")); got != n {
		t.Fatalf("subject index has %d entries, want %d", got, n)
	}
	if err := h.p.RevokeSubject(context.Background(), "u1"); err != nil {
		t.Fatal(err)
	}
	for i, tr := range tokens {
		if tr == nil {
			t.Fatalf("sign-in %d failed", i)
		}
		h.wantAccess("app", tr.AccessToken, false)
		h.wantRefresh("app", tr.RefreshToken, false)
	}
	if got := h.indexEntries(keySubjectIndex + "u1"); len(got) != 0 {
		t.Fatalf("the subject index keeps %d revoked entries", len(got))
	}
}

// TestTokenIndexIsBounded: a person's index holds at most
// maxIndexEntries live entries. Expired entries are dropped on write; when
// it is still full, the oldest entry is revoked before it is dropped, so
// that no token ever escapes RevokeSubject.
func TestTokenIndexIsBounded(t *testing.T) {
	h := newRefreshHarness(t)
	oldest := h.exchange("app", h.loginAs("app", offlineScopes, "u1", "sid-1"))
	h.clock.Advance(time.Minute)
	// Fill the index up: the sign-in plus synthetic entries that expire in
	// an hour, written at once (adding them one by one costs a quadratic
	// amount of JSON, minutes under -race).
	entries := h.indexEntries(keySubjectIndex + "u1")
	if len(entries) != 1 || entries[0].Family == "" {
		t.Fatalf("index after one sign-in: %+v", entries)
	}
	exp := h.clock.Now().Add(time.Hour).Unix()
	for i := range maxIndexEntries - 1 {
		entries = append(entries, indexEntry{Access: fmt.Sprintf("h%d", i), Expires: exp})
	}
	raw, err := json.Marshal(tokenIndex{Entries: entries})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.store.Put(context.Background(), keySubjectIndex+"u1", raw, h.p.indexTTL()); err != nil {
		t.Fatal(err)
	}
	h.wantRefresh("app", oldest.RefreshToken, true)
	// One more: the oldest sign-in is revoked and dropped.
	newest := h.exchange("app", h.loginAs("app", offlineScopes, "u1", "sid-1"))
	entries = h.indexEntries(keySubjectIndex + "u1")
	if len(entries) != maxIndexEntries || entries[0].Access != "h0" || entries[len(entries)-1].Family == "" {
		t.Fatalf("%d entries (first %+v), want %d with the oldest sign-in dropped", len(entries), entries[0], maxIndexEntries)
	}
	h.wantRefresh("app", oldest.RefreshToken, false)
	h.wantAccess("app", oldest.AccessToken, false)
	h.wantRefresh("app", newest.RefreshToken, true)

	// Expired entries are dropped on the next write: the synthetic ones
	// expire in an hour; the sign-ins live longer.
	h.clock.Advance(2 * time.Hour)
	h.exchange("app", h.loginAs("app", offlineScopes, "u1", "sid-1"))
	if got := len(h.indexEntries(keySubjectIndex + "u1")); got != 2 {
		t.Fatalf("after expiry: %d entries, want 2 (the two live sign-ins)", got)
	}
}

// TestIndexOutlivesItsTokens: the index record is kept as long as the
// longest-lived token it names, so RevokeSession still finds a family on
// the last day of its absolute lifetime.
func TestIndexOutlivesItsTokens(t *testing.T) {
	h := newRefreshHarness(t)
	tr := h.exchange("always", h.loginAs("always", "openid", "u1", "sid-1"))
	h.exchange("app", h.loginAs("app", "openid", "u1", "sid-1")) // a later, short-lived entry
	for range 4 {
		h.clock.Advance(6 * 24 * time.Hour)
		tr = h.mustRefresh("always", tr.RefreshToken)
	}
	h.clock.Advance(5 * 24 * time.Hour) // day 29
	tr = h.mustRefresh("always", tr.RefreshToken)
	if err := h.p.RevokeSession(context.Background(), "sid-1"); err != nil {
		t.Fatal(err)
	}
	h.wantAccess("always", tr.AccessToken, false)
	h.wantRefresh("always", tr.RefreshToken, false)
}
