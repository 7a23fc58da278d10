package oidc

import (
	"encoding/json"
	"fmt"
	"time"
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
// had one), at_hash (when an access token is issued with it), sid.
func (p *Provider) signIDToken(in idTokenInput) (string, error) {
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
		c["at_hash"] = leftHalfHash(in.AccessToken)
	}
	if in.SessionID != "" {
		c["sid"] = in.SessionID
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("oidc: encode ID token: %w", err)
	}
	return p.Signer.Sign(payload)
}

// IDTokenHint is what the provider learns from a verified id_token_hint.
type IDTokenHint struct {
	Subject   string `json:"sub"`
	Audience  any    `json:"aud"`
	SessionID string `json:"sid"`
	Issuer    string `json:"iss"`
}

// VerifyIDTokenHint checks that hint is an ID token this provider signed
// (RS256 with one of its keys; alg none and HMAC forgeries are refused by the
// signer) for this issuer. Expiry is deliberately not checked: OpenID Connect
// Core 1.0 §3.1.2.1 and RP-Initiated Logout §2 accept expired hints.
func (p *Provider) VerifyIDTokenHint(hint string) (*IDTokenHint, *Error) {
	if len(hint) > MaxParamBytes {
		return nil, ErrInvalidRequest("id_token_hint is too long")
	}
	payload, err := p.Signer.Verify(hint)
	if err != nil {
		return nil, ErrInvalidRequest("id_token_hint is not an ID token issued by this provider").WithDebug(err)
	}
	var h IDTokenHint
	if err := json.Unmarshal(payload, &h); err != nil || h.Subject == "" {
		return nil, ErrInvalidRequest("id_token_hint has no subject")
	}
	if h.Issuer != p.Issuer {
		return nil, ErrInvalidRequest("id_token_hint was issued by another issuer")
	}
	return &h, nil
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
