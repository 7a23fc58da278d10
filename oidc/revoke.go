package oidc

import (
	"context"
	"encoding/json"
	"net/http"
)

// Token type hints of RFC 7009 §2.1 and RFC 7662 §2.1.
const (
	TokenTypeHintAccessToken  = "access_token"
	TokenTypeHintRefreshToken = "refresh_token"
)

// HandleRevoke is the token revocation endpoint (RFC 7009 §2): a POSTed form
// with token and an optional token_type_hint, from an authenticated client
// (the same client authentication as the token endpoint).
//
//   - A refresh token revokes its whole family: every refresh token and
//     access token descended from the same login (§2.1: "SHOULD also
//     invalidate all access tokens based on the same authorization grant").
//   - An access token is deleted; its refresh token family is left alone
//     (§2.1 makes that a MAY).
//   - An unknown, expired or already revoked token, and a token issued to
//     another client, get 200 and nothing is changed (§2.2: "invalid tokens
//     do not cause an error response"): the answer must not tell a client
//     whether someone else's token exists.
//
// The hint only decides which kind is looked up first; any other value is
// ignored (§2.1 lets the server extend its search). unsupported_token_type
// (§2.2.1) is never sent: both kinds of token this provider issues can be
// revoked. Errors: invalid_client (401) for failed client authentication and
// invalid_request for a missing token (§2.2.1, RFC 6749 §5.2); 503 when the
// store is down, so that the client retries (§2.2.1).
func (p *Provider) HandleRevoke(w http.ResponseWriter, r *http.Request) {
	// RFC 7009 §5 lets public clients revoke their own tokens.
	client, params, ok := p.clientRequest(w, r, true)
	if !ok {
		return
	}
	token := params["token"]
	if token == "" {
		p.writeTokenError(w, r, ErrInvalidRequest("the token parameter is missing"))
		return
	}
	lookups := []func(context.Context, *Client, string) (bool, error){p.revokeAccess, p.revokeRefresh}
	if params["token_type_hint"] == TokenTypeHintRefreshToken {
		lookups[0], lookups[1] = lookups[1], lookups[0]
	}
	for _, revoke := range lookups {
		found, err := revoke(r.Context(), client, token)
		if err != nil {
			p.writeTokenError(w, r, ErrTemporarilyUnavailable("storage unavailable; retry the revocation later").WithDebug(err))
			return
		}
		if found {
			break
		}
	}
	w.WriteHeader(http.StatusOK)
}

// revokeRefresh revokes a refresh token's family if the token is the
// client's. found reports whether the token is a refresh token at all.
func (p *Provider) revokeRefresh(ctx context.Context, client *Client, token string) (found bool, err error) {
	rec, err := p.loadRefresh(ctx, token)
	if err != nil || rec == nil {
		return false, err
	}
	if rec.ClientID != client.ID {
		return true, nil // another client's token: leave it, answer as for any token
	}
	if err := p.endFamily(ctx, rec.FamilyID); err != nil {
		return true, err
	}
	return true, p.Storage.Delete(ctx, keyRefresh+HashToken(token))
}

// revokeAccess deletes an access token if it is the client's.
func (p *Provider) revokeAccess(ctx context.Context, client *Client, token string) (found bool, err error) {
	key := keyAccess + HashToken(token)
	raw, err := p.Storage.Get(ctx, key)
	if err != nil || raw == nil {
		return false, err
	}
	var g accessGrant
	if json.Unmarshal(raw, &g) != nil {
		return false, nil
	}
	if g.ClientID != client.ID {
		return true, nil
	}
	return true, p.Storage.Delete(ctx, key)
}
