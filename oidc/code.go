package oidc

import (
	"context"
	"encoding/json"
	"fmt"
)

const (
	keyCode     = "oidc:code:"
	keyUsedCode = "oidc:usedcode:"
	keyAccess   = "oidc:at:"
	keyRefresh  = "oidc:rt:"
	keyFamily   = "oidc:family:"
	// keyRefreshNext + the hash of a rotated refresh token holds the
	// response its first use got, for RefreshReuseGrace only.
	keyRefreshNext = "oidc:rtnext:"
)

// codeGrant is what an authorization code stands for (stored under its hash).
type codeGrant struct {
	ClientID            string         `json:"client_id"`
	RedirectURI         string         `json:"redirect_uri"`
	Nonce               string         `json:"nonce,omitempty"`
	CodeChallenge       string         `json:"code_challenge,omitempty"`
	CodeChallengeMethod string         `json:"code_challenge_method,omitempty"`
	Scopes              []string       `json:"scopes"`
	Subject             string         `json:"sub"`
	AuthTime            int64          `json:"auth_time"`
	SessionID           string         `json:"sid,omitempty"`
	Claims              map[string]any `json:"claims,omitempty"`
	Account             string         `json:"acct,omitempty"`
}

// usedCode remembers a redeemed code so that a replay can revoke what the
// first redemption issued (RFC 6749 §4.1.2, RFC 6819 §4.4.1.1).
type usedCode struct {
	ClientID     string   `json:"client_id"`
	AccessTokens []string `json:"access_tokens"` // hashes
	// FamilyID is the refresh token family the redemption started, if any:
	// a replay revokes it with everything descended from it.
	FamilyID string `json:"family,omitempty"`
	Revoked  bool   `json:"revoked"`
}

// accessGrant is what an opaque access token stands for (stored under its hash).
type accessGrant struct {
	ClientID  string         `json:"client_id"`
	Subject   string         `json:"sub"`
	Scopes    []string       `json:"scopes"`
	Claims    map[string]any `json:"claims,omitempty"`
	ExpiresAt int64          `json:"exp"`
	IssuedAt  int64          `json:"iat,omitempty"`
	SessionID string         `json:"sid,omitempty"`
	// FamilyID is the refresh token family the token descends from, if any;
	// the token is dead once that family is revoked.
	FamilyID string `json:"family,omitempty"`
	Account  string `json:"acct,omitempty"`
}

// IssueCode mints a single-use authorization code for a validated request and
// an authenticated identity, bound to the client, the redirect_uri, the nonce
// and the PKCE challenge (RFC 6749 §4.1.2, RFC 7636 §4.4).
func (p *Provider) IssueCode(ctx context.Context, req *AuthRequest, id Identity) (string, error) {
	if id.Subject == "" {
		return "", fmt.Errorf("oidc: refusing to issue a code without a subject")
	}
	g := codeGrant{
		ClientID:            req.ClientID,
		RedirectURI:         req.RedirectURI,
		Nonce:               req.Nonce,
		CodeChallenge:       req.CodeChallenge,
		CodeChallengeMethod: req.CodeChallengeMethod,
		Scopes:              append([]string{"openid"}, without(req.Scopes, "openid")...),
		Subject:             id.Subject,
		AuthTime:            id.AuthTime.Unix(),
		SessionID:           id.SessionID,
		Claims:              p.ReleasedClaims(req.Scopes, id.Claims),
		Account:             id.Account,
	}
	raw, err := json.Marshal(g)
	if err != nil {
		return "", fmt.Errorf("oidc: encode code grant: %w", err)
	}
	code := NewToken()
	if err := p.Storage.Put(ctx, keyCode+HashToken(code), raw, p.CodeTTL); err != nil {
		return "", fmt.Errorf("oidc: store code: %w", err)
	}
	return code, nil
}

func without(list []string, drop string) []string {
	out := make([]string, 0, len(list))
	for _, s := range list {
		if s != drop {
			out = append(out, s)
		}
	}
	return out
}
