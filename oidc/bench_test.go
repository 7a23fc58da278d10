package oidc

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wechat-oidc/wechat-oidc/keys"
	"github.com/wechat-oidc/wechat-oidc/store"
	"github.com/wechat-oidc/wechat-oidc/store/storetest"
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
// an opaque access token, the subject index update, and one RS256
// signature (the dominant cost). "fresh-subject" signs in a new person each
// time; "full-index" the same person, whose index is at its bound of
// maxIndexEntries live entries (each sign-in rewrites it and revokes the
// oldest): the worst case of the index.
func BenchmarkCodeExchange(b *testing.B) {
	ks, err := keys.NewEphemeral()
	if err != nil {
		b.Fatal(err)
	}
	for _, sameSubject := range []bool{false, true} {
		name := "fresh-subject"
		if sameSubject {
			name = "full-index"
		}
		b.Run(name, func(b *testing.B) {
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
				Logger:         slog.New(slog.DiscardHandler),
			}
			req := &AuthRequest{ClientID: "app", RedirectURI: appRedirect, Scopes: []string{"openid", "profile"}, Nonce: "n"}
			id := Identity{Subject: "o_user_1", AuthTime: clock.Now(), SessionID: "sid-1", Claims: testClaims}
			if sameSubject {
				entries := make([]indexEntry, maxIndexEntries)
				for i := range entries {
					entries[i] = indexEntry{Access: HashToken(strconv.Itoa(i)), Expires: clock.Now().Add(time.Hour).Unix()}
				}
				raw, err := json.Marshal(tokenIndex{Entries: entries})
				if err != nil {
					b.Fatal(err)
				}
				if err := p.Storage.Put(context.Background(), keySubjectIndex+id.Subject, raw, time.Hour); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				if !sameSubject {
					id.Subject, id.SessionID = "o_user_"+strconv.Itoa(i), "sid-"+strconv.Itoa(i)
				}
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
		})
	}
}

// BenchmarkRefreshGrant measures the refresh_token grant on the two real
// stores: each iteration rotates the previous iteration's refresh token
// (the atomic claim, the successor's records, an access token, the
// family's last use, one RS256 signature). On Redis every store call is a
// round trip, which is what the family's last-use record adds one of.
func BenchmarkRefreshGrant(b *testing.B) {
	ks, err := keys.NewEphemeral()
	if err != nil {
		b.Fatal(err)
	}
	backends := map[string]func(b *testing.B, now func() time.Time) Storage{
		"memory": func(b *testing.B, now func() time.Time) Storage {
			m := store.NewMemoryClock(now)
			b.Cleanup(func() { m.Close() })
			return storeStorage{m}
		},
		"redis": func(b *testing.B, _ func() time.Time) Storage {
			r, err := store.NewRedis(context.Background(), store.RedisOptions{URL: "redis://" + storetest.StartRedis(b), Prefix: "bench:"})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { r.Close() })
			return storeStorage{r}
		},
	}
	for _, name := range []string{"memory", "redis"} {
		b.Run(name, func(b *testing.B) {
			clock := &fakeClock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
			always := NewClient("app", appSecret, []string{appRedirect})
			always.RefreshTokens = true
			p := &Provider{
				Issuer: "https://sso.example.com", Clients: NewRegistry(always), Storage: backends[name](b, clock.Now), Signer: ks,
				ScopeClaims: map[string][]string{"profile": {"name", "preferred_username"}},
				CodeTTL:     time.Minute, AccessTokenTTL: time.Hour, IDTokenTTL: time.Hour, Now: clock.Now,
				Logger: slog.New(slog.DiscardHandler),
			}
			post := func(form url.Values) *TokenResponse {
				r := httptest.NewRequest(http.MethodPost, "/token", strings.NewReader(form.Encode()))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				r.SetBasicAuth("app", appSecret)
				w := httptest.NewRecorder()
				p.HandleToken(w, r)
				var tr TokenResponse
				if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &tr) != nil {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
				return &tr
			}
			code, err := p.IssueCode(context.Background(), &AuthRequest{ClientID: "app", RedirectURI: appRedirect, Scopes: []string{"openid", "profile"}},
				Identity{Subject: "o_user_1", AuthTime: clock.Now(), SessionID: "sid-1", Claims: testClaims})
			if err != nil {
				b.Fatal(err)
			}
			rt := post(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {appRedirect}}).RefreshToken
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				rt = post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}).RefreshToken
			}
		})
	}
}
