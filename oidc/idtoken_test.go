package oidc

import (
	"encoding/json"
	"testing"
	"time"
)

// TestLogoutTokenIsRefusedAsIDTokenHint: a back-channel logout token is
// signed with the same key as ID tokens and names the same sub and sid, so
// by signature alone it would pass as an id_token_hint (and could end a
// session without confirmation). RFC 8725 §3.11: the token's kind is checked
// explicitly, by its typ header (absent or JWT) and by its claims (an ID
// token's required claims, no events).
func TestLogoutTokenIsRefusedAsIDTokenHint(t *testing.T) {
	p := testProvider()
	set := testSigner(t)
	p.Signer = set
	p.IDTokenTTL = time.Hour
	now := time.Unix(1700000000, 0)
	sign := func(claims map[string]any, typ string) string {
		t.Helper()
		payload, err := json.Marshal(claims)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := set.SignWithType(payload, typ)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	logout := map[string]any{
		"iss": p.Issuer, "aud": "app", "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(),
		"jti": "j1", "sub": "user-1", "sid": "sid-1",
		"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}},
	}
	idToken, err := p.signIDToken(idTokenInput{ClientID: "app", Subject: "user-1", AuthTime: now.Unix(), SessionID: "sid-1", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if h, e := p.VerifyIDTokenHint(idToken); e != nil || h.Subject != "user-1" || h.SessionID != "sid-1" || !h.HasAudience("app") {
		t.Fatalf("a genuine ID token was refused: %v %+v", e, h)
	}
	with := func(base map[string]any, k string, v any) map[string]any {
		c := map[string]any{}
		for key, val := range base {
			c[key] = val
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	idClaims := with(with(logout, "events", nil), "jti", nil)
	for name, tok := range map[string]string{
		"logout token (typ logout+jwt)":        sign(logout, "logout+jwt"),
		"logout claims under typ JWT (events)": sign(logout, "JWT"),
		"ID token claims under typ logout+jwt": sign(idClaims, "logout+jwt"),
		"ID token claims under typ at+jwt":     sign(idClaims, "at+jwt"),
		"no exp":                               sign(with(idClaims, "exp", nil), "JWT"),
		"no iat":                               sign(with(idClaims, "iat", nil), "JWT"),
		"no aud":                               sign(with(idClaims, "aud", nil), "JWT"),
		"aud of no registered client":          sign(with(idClaims, "aud", "stranger"), "JWT"),
		"aud list without a registered client": sign(with(idClaims, "aud", []string{"x", "y"}), "JWT"),
		"aud not a string":                     sign(with(idClaims, "aud", 7), "JWT"),
		"sub not a string":                     sign(with(idClaims, "sub", 42), "JWT"),
		"exp not a number":                     sign(with(idClaims, "exp", "tomorrow"), "JWT"),
		"exp a numeric string":                 sign(with(idClaims, "exp", "1700000000"), "JWT"),
		"iat null":                             sign(with(idClaims, "iat", json.RawMessage("null")), "JWT"),
		"sid not a string":                     sign(with(idClaims, "sid", true), "JWT"),
		"other issuer":                         sign(with(idClaims, "iss", "https://evil.example"), "JWT"),
	} {
		t.Run(name, func(t *testing.T) {
			h, e := p.VerifyIDTokenHint(tok)
			if e == nil || h != nil {
				t.Fatalf("accepted as an id_token_hint: %+v", h)
			}
			if e.Code != CodeInvalidRequest {
				t.Fatalf("error %q, want invalid_request", e.Code)
			}
		})
	}
	// An ID token with an audience list that names a registered client is fine.
	if _, e := p.VerifyIDTokenHint(sign(with(idClaims, "aud", []string{"x", "spa"}), "JWT")); e != nil {
		t.Fatalf("aud list with a registered client refused: %v", e)
	}
}
