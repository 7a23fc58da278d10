package oidc

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/wechat-oidc/wechat-oidc/keys"
)

// reservedClaims can never be set from identity claims.
var reservedClaims = map[string]bool{
	"iss": true, "sub": true, "aud": true, "azp": true, "exp": true, "iat": true, "nbf": true,
	"auth_time": true, "nonce": true, "at_hash": true, "c_hash": true, "sid": true, "jti": true,
	"acr": true, "amr": true,
}

type idTokenInput struct {
	ClientID    string
	Subject     string
	AuthTime    int64
	Nonce       string
	AccessToken string
	SessionID   string
	Claims      map[string]any
	Now         time.Time
}

// signIDToken builds and signs an ID token (OpenID Connect Core 1.0 §2,
// §3.1.3.6): iss, sub, aud, azp, exp, iat, auth_time, nonce (when the request
// had one), at_hash (when an access token is issued with it), sid. It is
// signed with the client's id_token_signed_response_alg (the Signer's
// default when the client has none), and at_hash uses that algorithm's hash.
func (p *Provider) signIDToken(in idTokenInput) (string, error) {
	alg := p.Signer.Algorithm()
	if c := p.Clients.Lookup(in.ClientID); c != nil && c.IDTokenSignedResponseAlg != "" {
		alg = c.IDTokenSignedResponseAlg
	}
	c := make(map[string]any, len(in.Claims)+10)
	for k, v := range in.Claims {
		if !reservedClaims[k] {
			c[k] = v
		}
	}
	c["iss"] = p.Issuer
	c["sub"] = in.Subject
	c["aud"] = in.ClientID
	c["azp"] = in.ClientID
	c["iat"] = in.Now.Unix()
	c["exp"] = in.Now.Add(p.IDTokenTTL).Unix()
	c["auth_time"] = in.AuthTime
	if in.Nonce != "" {
		c["nonce"] = in.Nonce
	}
	if in.AccessToken != "" {
		// §3.1.3.6: the hash is the one of the ID token's alg (SHA-256 for
		// RS256 and ES256, SHA-512 for EdDSA with Ed25519).
		h, err := keys.LeftHalfHash(alg, in.AccessToken)
		if err != nil {
			return "", fmt.Errorf("oidc: at_hash: %w", err)
		}
		c["at_hash"] = h
	}
	if in.SessionID != "" {
		c["sid"] = in.SessionID
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("oidc: encode ID token: %w", err)
	}
	return p.Signer.SignWithAlgorithm(payload, alg, "JWT")
}

// IDTokenHint is what the provider learns from a verified id_token_hint.
type IDTokenHint struct {
	Subject   string `json:"sub"`
	Audience  any    `json:"aud"`
	SessionID string `json:"sid"`
	Issuer    string `json:"iss"`
}

// VerifyIDTokenHint checks that hint is an ID token this provider issued.
// It verifies, in order:
//   - the signature: RS256 with one of the provider's keys (alg none, HMAC
//     forgeries and foreign keys are refused by the signer);
//   - the token's kind (RFC 8725 §3.11: a JWT of another kind signed with
//     the same key must not be taken for an ID token): the JWS typ header is
//     absent or "JWT" — a back-channel logout token (typ logout+jwt) is
//     refused — and the claims have the shape of an ID token: the REQUIRED
//     iss, sub, aud, exp and iat of OpenID Connect Core 1.0 §2, each of its
//     JSON type, and no events claim (which marks a logout token, OpenID
//     Connect Back-Channel Logout 1.0 §2.4);
//   - iss is exactly this issuer;
//   - aud names at least one registered client: every ID token this
//     provider issues is for one of its clients. The provider itself need
//     not be in aud (Core §3.1.2.1).
//
// Expiry is deliberately not checked: OpenID Connect Core 1.0 §3.1.2.1 and
// RP-Initiated Logout §2 accept expired hints.
func (p *Provider) VerifyIDTokenHint(hint string) (*IDTokenHint, *Error) {
	if len(hint) > MaxParamBytes {
		return nil, ErrInvalidRequest("id_token_hint is too long")
	}
	payload, err := p.Signer.Verify(hint)
	if err != nil {
		return nil, ErrInvalidRequest("id_token_hint is not an ID token issued by this provider").WithDebug(err)
	}
	if e := checkIDTokenType(hint); e != nil {
		return nil, e
	}
	h, e := parseIDTokenClaims(payload)
	if e != nil {
		return nil, e
	}
	if h.Issuer != p.Issuer {
		return nil, ErrInvalidRequest("id_token_hint was issued by another issuer")
	}
	if !p.audienceHasClient(h) {
		return nil, ErrInvalidRequest("id_token_hint is not for any registered client")
	}
	return h, nil
}

// checkIDTokenType checks the typ header of a verified compact JWS: absent,
// or "JWT" (compared case-insensitively, RFC 7515 §4.1.9), which is what
// the signer writes on ID tokens. The header was covered by the signature,
// so it can be trusted once the signature verified.
func checkIDTokenType(token string) *Error {
	bad := ErrInvalidRequest("id_token_hint is not an ID token")
	head, _, ok := strings.Cut(token, ".")
	if !ok {
		return bad
	}
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return bad.WithDebug(fmt.Errorf("oidc: JWS header: %w", err))
	}
	var header struct {
		Type *string `json:"typ"`
	}
	if err := json.Unmarshal(raw, &header); err != nil {
		return bad.WithDebug(fmt.Errorf("oidc: JWS header: %w", err))
	}
	if header.Type != nil && !strings.EqualFold(*header.Type, "JWT") {
		return ErrInvalidRequest("id_token_hint is a token of type %q, not an ID token", printable(*header.Type))
	}
	return nil
}

// parseIDTokenClaims decodes the claims of a hint and checks that they have
// the shape of an ID token (see VerifyIDTokenHint).
func parseIDTokenClaims(payload []byte) (*IDTokenHint, *Error) {
	bad := ErrInvalidRequest("id_token_hint is not an ID token")
	var claims map[string]json.RawMessage
	if err := json.Unmarshal(payload, &claims); err != nil || claims == nil {
		return nil, bad
	}
	if _, ok := claims["events"]; ok {
		// Back-Channel Logout 1.0 §2.4: a logout token has events; §2.6
		// tells RPs to refuse it where an ID token is expected, and the
		// same holds the other way round.
		return nil, ErrInvalidRequest("id_token_hint is a logout token, not an ID token")
	}
	for _, k := range []string{"iss", "sub", "aud", "exp", "iat"} {
		if _, ok := claims[k]; !ok {
			return nil, ErrInvalidRequest("id_token_hint lacks the %s claim every ID token has", k)
		}
	}
	// exp and iat are NumericDates: JSON numbers (RFC 7519 §2), not strings
	// and not null.
	var times struct {
		Expiry   *float64 `json:"exp"`
		IssuedAt *float64 `json:"iat"`
	}
	if err := json.Unmarshal(payload, &times); err != nil || times.Expiry == nil || times.IssuedAt == nil {
		return nil, bad
	}
	var h IDTokenHint
	if err := json.Unmarshal(payload, &h); err != nil || h.Subject == "" {
		return nil, ErrInvalidRequest("id_token_hint has no subject")
	}
	if !validAudience(h.Audience) {
		return nil, bad
	}
	return &h, nil
}

// validAudience reports whether aud is a non-empty string or a non-empty
// array of strings (RFC 7519 §4.1.3).
func validAudience(aud any) bool {
	switch a := aud.(type) {
	case string:
		return a != ""
	case []any:
		for _, v := range a {
			if _, ok := v.(string); !ok {
				return false
			}
		}
		return len(a) > 0
	}
	return false
}

func (p *Provider) audienceHasClient(h *IDTokenHint) bool {
	switch a := h.Audience.(type) {
	case string:
		return p.Clients.Lookup(a) != nil
	case []any:
		for _, v := range a {
			if s, ok := v.(string); ok && p.Clients.Lookup(s) != nil {
				return true
			}
		}
	}
	return false
}

// HasAudience reports whether the hint's aud (string or array) contains id.
func (h *IDTokenHint) HasAudience(id string) bool {
	switch a := h.Audience.(type) {
	case string:
		return a == id
	case []any:
		for _, v := range a {
			if s, ok := v.(string); ok && s == id {
				return true
			}
		}
	}
	return false
}
