package oidc

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// wantFamilyRevoked checks that nothing of a sign-in's family works any more.
func (h *refreshHarness) wantFamilyRevoked(refreshTokens, accessTokens []string) {
	h.t.Helper()
	for _, rt := range refreshTokens {
		h.wantRefreshError("app", rt, "", CodeInvalidGrant)
		if ir, _ := h.introspect("app", rt, TokenTypeHintRefreshToken); ir.Active {
			h.t.Fatal("a refresh token is active after its family was revoked")
		}
	}
	for i, at := range accessTokens {
		h.wantUserinfo(at, http.StatusUnauthorized)
		if ir, _ := h.introspect("app", at, ""); ir.Active {
			h.t.Fatalf("access token %d is active after its family was revoked", i)
		}
	}
}

// TestRefreshTokenReuseRevokesFamily: RFC 9700 §4.14.2. With the default
// (no grace), the second use of a refresh token, at any time, means it is
// in two hands: the whole family is revoked.
func TestRefreshTokenReuseRevokesFamily(t *testing.T) {
	h := newRefreshHarness(t)
	first := h.exchange("app", h.login("app", offlineScopes, ""))
	second := h.mustRefresh("app", first.RefreshToken)
	third := h.mustRefresh("app", second.RefreshToken)
	h.wantUserinfo(third.AccessToken, http.StatusOK)

	// The attacker (or the victim) presents the first, long rotated token,
	// with a scope that was never granted: reuse is judged first.
	h.clock.Advance(time.Hour)
	h.wantRefreshError("app", first.RefreshToken, "openid email", CodeInvalidGrant)

	// Everything descended from the login is dead: the newest refresh token,
	// and every access token, including the one from the code exchange.
	h.wantFamilyRevoked([]string{third.RefreshToken}, []string{first.AccessToken, second.AccessToken, third.AccessToken})
	// A second replay is refused the same way.
	h.wantRefreshError("app", first.RefreshToken, "", CodeInvalidGrant)
}

// TestRefreshReuseWithoutGraceRevokesFamilyAtOnce: strict rotation is the
// default. A thief who replays a refresh token in the same second the
// relying party used it gets nothing and ends the family; there is no
// window in which a replay mints tokens.
func TestRefreshReuseWithoutGraceRevokesFamilyAtOnce(t *testing.T) {
	h := newRefreshHarness(t)
	if h.p.RefreshReuseGrace != 0 {
		t.Fatal("the harness must use the default grace")
	}
	first := h.exchange("app", h.login("app", offlineScopes, ""))
	legit := h.mustRefresh("app", first.RefreshToken)
	// Without a grace nothing raw is kept: only hashes.
	h.store.mu.Lock()
	for k, e := range h.store.m {
		if containsToken(e.value, legit.RefreshToken) || containsToken(e.value, legit.AccessToken) || containsToken([]byte(k), legit.RefreshToken) {
			h.store.mu.Unlock()
			t.Fatalf("a raw token is in storage under %q", k)
		}
	}
	h.store.mu.Unlock()
	// Same instant (the clock does not move).
	h.wantRefreshError("app", first.RefreshToken, "", CodeInvalidGrant)
	h.wantFamilyRevoked([]string{legit.RefreshToken}, []string{first.AccessToken, legit.AccessToken})
}

// TestRefreshReuseWithinGraceReturnsSameTokens: with a grace configured, a
// refresh token presented again within it (a relying party with several
// instances refreshing at once) gets exactly the successor the first use
// got: the same refresh token, the same access token, the same ID token. No
// parallel branch is minted, so a thief racing the relying party gets
// nothing it did not. After the grace, reuse revokes the family.
func TestRefreshReuseWithinGraceReturnsSameTokens(t *testing.T) {
	h := newRefreshHarness(t)
	h.p.RefreshReuseGrace = 30 * time.Second
	first := h.exchange("app", h.login("app", offlineScopes, ""))
	a := h.mustRefresh("app", first.RefreshToken)

	// A second instance of the relying party refreshes with the same token.
	h.clock.Advance(20 * time.Second)
	b := h.mustRefresh("app", first.RefreshToken)
	if b.RefreshToken != a.RefreshToken || b.AccessToken != a.AccessToken || b.IDToken != a.IDToken || b.Scope != a.Scope || b.TokenType != a.TokenType {
		t.Fatalf("the grace-window refresh minted other tokens:\nfirst use %+v\nreuse     %+v", a, b)
	}
	// expires_in tells the truth about the one access token: 20 s less.
	if b.ExpiresIn != a.ExpiresIn-20 {
		t.Fatalf("expires_in on reuse = %d, want %d", b.ExpiresIn, a.ExpiresIn-20)
	}
	// Exactly one successor refresh token exists: only one record was added.
	if n := h.refreshRecords(); n != 2 {
		t.Fatalf("%d refresh token records, want 2 (the rotated one and its one successor)", n)
	}
	// Another client presenting the token within the grace learns nothing
	// and changes nothing (RFC 6749 §10.4).
	h.wantRefreshError("other", first.RefreshToken, "", CodeInvalidGrant)
	// A reuse that asks for another scope is not the same request: refused,
	// without revoking.
	h.wantRefreshError("app", first.RefreshToken, "openid", CodeInvalidGrant)
	h.wantUserinfo(a.AccessToken, http.StatusOK)

	// The successor works and rotates as usual; a reuse of the old token
	// within the grace still answers the same successor.
	a2 := h.mustRefresh("app", a.RefreshToken)
	h.clock.Advance(5 * time.Second)
	if c := h.mustRefresh("app", first.RefreshToken); c.RefreshToken != a.RefreshToken {
		t.Fatal("a reuse within the grace did not return the first successor")
	}

	// The window runs from the first use and does not slide: 25 s + 6 s is
	// past 30 s, so the same token now revokes the family.
	h.clock.Advance(6 * time.Second)
	h.wantRefreshError("app", first.RefreshToken, "", CodeInvalidGrant)
	h.wantFamilyRevoked([]string{a2.RefreshToken, a.RefreshToken}, []string{a.AccessToken, a2.AccessToken, first.AccessToken})

	// The successor's raw tokens are kept only for the grace.
	h.store.mu.Lock()
	defer h.store.mu.Unlock()
	for k, e := range h.store.m {
		if h.clock.Now().Before(e.expires) && (containsToken(e.value, a.RefreshToken) || containsToken(e.value, a.AccessToken)) {
			t.Fatalf("a raw token outlives the grace in storage under %q", k)
		}
	}
}

func containsToken(value []byte, token string) bool {
	return token != "" && strings.Contains(string(value), token)
}

// refreshRecords counts the live refresh token records.
func (h *refreshHarness) refreshRecords() int {
	h.store.mu.Lock()
	defer h.store.mu.Unlock()
	n := 0
	for k, e := range h.store.m {
		if strings.HasPrefix(k, keyRefresh) && h.clock.Now().Before(e.expires) {
			n++
		}
	}
	return n
}

// concurrentRefresh presents one refresh token n times at once.
func (h *refreshHarness) concurrentRefresh(token string, n int) ([]*TokenResponse, []string) {
	var wg sync.WaitGroup
	results := make([]*TokenResponse, n)
	errs := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}}
			w := h.post(h.p.HandleToken, "app", appSecret, form)
			if w.Code == http.StatusOK {
				results[i] = &TokenResponse{}
				if err := json.Unmarshal(w.Body.Bytes(), results[i]); err != nil {
					errs[i] = "undecodable: " + err.Error()
				}
				return
			}
			var e ErrorResponse
			if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
				errs[i] = "undecodable: " + err.Error()
				return
			}
			errs[i] = e.Error
		}()
	}
	wg.Wait()
	return results, errs
}

// TestConcurrentRefreshWithinGraceSharesOneSuccessor: concurrent refreshes
// with one token, with a grace: every one that succeeds gets the same
// successor (a request that lands while the first is still minting gets
// invalid_grant, and revokes nothing); the family lives on.
func TestConcurrentRefreshWithinGraceSharesOneSuccessor(t *testing.T) {
	h := newRefreshHarness(t)
	h.p.RefreshReuseGrace = 10 * time.Second
	first := h.exchange("app", h.login("app", offlineScopes, ""))
	results, errs := h.concurrentRefresh(first.RefreshToken, 8)
	var winner *TokenResponse
	for i, r := range results {
		if r == nil {
			if errs[i] != CodeInvalidGrant {
				t.Fatalf("concurrent refresh %d: %q", i, errs[i])
			}
			continue
		}
		if winner == nil {
			winner = r
		} else if r.RefreshToken != winner.RefreshToken || r.AccessToken != winner.AccessToken {
			t.Fatalf("two concurrent refreshes got different tokens: %+v and %+v", winner, r)
		}
	}
	if winner == nil {
		t.Fatal("no concurrent refresh succeeded")
	}
	h.wantUserinfo(winner.AccessToken, http.StatusOK)
	h.mustRefresh("app", winner.RefreshToken)
}

// TestConcurrentRefreshWithoutGraceRevokesFamily: with strict rotation,
// concurrent use of one refresh token is reuse: exactly one request wins
// the rotation, and a loser's arrival revokes the family.
func TestConcurrentRefreshWithoutGraceRevokesFamily(t *testing.T) {
	h := newRefreshHarness(t)
	first := h.exchange("app", h.login("app", offlineScopes, ""))
	results, errs := h.concurrentRefresh(first.RefreshToken, 8)
	var won []*TokenResponse
	for i, r := range results {
		if r != nil {
			won = append(won, r)
		} else if errs[i] != CodeInvalidGrant {
			t.Fatalf("concurrent refresh %d: %q", i, errs[i])
		}
	}
	if len(won) != 1 {
		t.Fatalf("%d concurrent refreshes won the rotation, want exactly 1", len(won))
	}
	h.wantFamilyRevoked([]string{won[0].RefreshToken}, []string{won[0].AccessToken, first.AccessToken})
}
