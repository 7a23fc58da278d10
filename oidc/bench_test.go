package oidc

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wechat-oidc/wechat-oidc/keys"
)

// BenchmarkClientSecretCompare shows that checking a secret costs the same
// whether a guess is wrong in its first byte, its last byte or not at all
// (both sides are hashed, then compared in constant time). Only the length
// of the guess itself changes the cost (hashing more input), which tells an
// attacker nothing about the secret. Compare the sub-benchmarks of one run.
func BenchmarkClientSecretCompare(b *testing.B) {
	secret := strings.Repeat("s", 40)
	c := NewClient("app", secret, nil)
	guesses := map[string]string{
		"right":            secret,
		"first-byte-wrong": "x" + secret[1:],
		"last-byte-wrong":  secret[:39] + "x",
		"short":            "s",
		"long":             secret + strings.Repeat("s", 40),
	}
	for name, g := range guesses {
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				c.checkSecret(g)
			}
		})
	}
}

// BenchmarkCodeExchange measures the token endpoint's authorization_code
// grant end to end in process: client authentication, the atomic code take,
// an opaque access token, and one RS256 signature (the dominant cost).
func BenchmarkCodeExchange(b *testing.B) {
	ks, err := keys.NewEphemeral()
	if err != nil {
		b.Fatal(err)
	}
	clock := &fakeClock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
	p := &Provider{
		Issuer:         "https://sso.example.com",
		Clients:        NewRegistry(NewClient("app", appSecret, []string{appRedirect})),
		Storage:        newTTLStorage(clock.Now),
		Signer:         ks,
		ScopeClaims:    map[string][]string{"profile": {"name", "preferred_username"}},
		CodeTTL:        time.Minute,
		AccessTokenTTL: time.Hour,
		IDTokenTTL:     time.Hour,
		Now:            clock.Now,
	}
	req := &AuthRequest{ClientID: "app", RedirectURI: appRedirect, Scopes: []string{"openid", "profile"}, Nonce: "n"}
	id := Identity{Subject: "o_user_1", AuthTime: clock.Now(), Claims: testClaims}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		code, err := p.IssueCode(context.Background(), req, id)
		if err != nil {
			b.Fatal(err)
		}
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {appRedirect}}
		r := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.SetBasicAuth("app", appSecret)
		w := httptest.NewRecorder()
		b.StartTimer()
		p.HandleToken(w, r)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}
