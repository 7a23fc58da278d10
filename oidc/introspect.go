package oidc

import (
	"context"
	"net/http"
	"strings"
)

// IntrospectionResponse is the answer of the introspection endpoint (RFC 7662
// §2.2). An inactive token is exactly {"active":false}.
type IntrospectionResponse struct {
	Active    bool   `json:"active"`
	Scope     string `json:"scope,omitempty"`
	ClientID  string `json:"client_id,omitempty"`
	Username  string `json:"username,omitempty"`
	TokenType string `json:"token_type,omitempty"`
	ExpiresAt int64  `json:"exp,omitempty"`
	IssuedAt  int64  `json:"iat,omitempty"`
	Subject   string `json:"sub,omitempty"`
	Audience  string `json:"aud,omitempty"`
	Issuer    string `json:"iss,omitempty"`
}

// token_type values in introspection responses: "Bearer" as in the token
// response (RFC 6749 §5.1) for access tokens, and "refresh_token" for refresh
// tokens, which have no RFC 6749 token type.
const (
	introspectTypeAccess  = "Bearer"
	introspectTypeRefresh = "refresh_token"
)

// HandleIntrospect is the token introspection endpoint (RFC 7662 §2): a
// POSTed form with token and an optional token_type_hint, from an
// authenticated client (the same client authentication as the token
// endpoint; §2.1 requires the caller to be authorized, which also stops
// token scanning by strangers).
//
// Policy: a client may only introspect its own tokens. A token issued to
// another client is reported as {"active":false}, exactly like an unknown,
// expired or revoked one, so that client B learns nothing about client A's
// tokens, not even that they exist (§4: the server may answer inactive to
// limit what a caller learns). For an active token the answer has active,
// scope, client_id, sub, exp, iat, token_type, iss, aud and, when the
// preferred_username claim was released, username.
//
// Public clients (token_endpoint_auth_method none) cannot call it: they
// cannot authenticate, and §2.1 requires the caller to be authorized, so
// they get 401 invalid_client (RFC 6749 §5.2: an authentication method the
// endpoint does not support).
//
// A rotated refresh token is reported inactive: it has been replaced, and
// presenting it again (past the reuse grace, if one is configured) revokes
// its family.
func (p *Provider) HandleIntrospect(w http.ResponseWriter, r *http.Request) {
	client, params, ok := p.clientRequest(w, r, false)
	if !ok {
		return
	}
	token := params["token"]
	if token == "" {
		p.writeTokenError(w, r, ErrInvalidRequest("the token parameter is missing"))
		return
	}
	lookups := []func(context.Context, string) (*IntrospectionResponse, bool, error){p.introspectAccess, p.introspectRefresh}
	if params["token_type_hint"] == TokenTypeHintRefreshToken {
		lookups[0], lookups[1] = lookups[1], lookups[0]
	}
	resp := &IntrospectionResponse{Active: false}
	for _, lookup := range lookups {
		info, found, err := lookup(r.Context(), token)
		if err != nil {
			p.writeTokenError(w, r, ErrTemporarilyUnavailable("storage unavailable").WithDebug(err))
			return
		}
		if found {
			if info != nil && info.ClientID == client.ID {
				resp = info
			}
			break
		}
	}
	writeJSON(w, http.StatusOK, resp)
}

// introspectAccess describes an access token. found reports whether the
// token is an access token at all; info is nil when it is not live.
func (p *Provider) introspectAccess(ctx context.Context, token string) (info *IntrospectionResponse, found bool, err error) {
	g, err := p.lookupAccess(ctx, token)
	if err != nil || g == nil {
		// An expired or revoked access token is reported the same as an
		// unknown one; the refresh lookup cannot match it either.
		return nil, false, err
	}
	if p.checkAccount(ctx, g.ClientID, g.Account) != nil {
		return nil, true, nil // a person who may no longer use the client: inactive
	}
	return &IntrospectionResponse{
		Active:    true,
		Scope:     strings.Join(g.Scopes, " "),
		ClientID:  g.ClientID,
		Username:  preferredUsername(g.Claims),
		TokenType: introspectTypeAccess,
		ExpiresAt: g.ExpiresAt,
		IssuedAt:  g.IssuedAt,
		Subject:   g.Subject,
		Audience:  g.ClientID,
		Issuer:    p.Issuer,
	}, true, nil
}

// introspectRefresh describes a refresh token: live when it is unused, not
// idle-expired, and its family is neither revoked nor past its absolute
// expiry.
func (p *Provider) introspectRefresh(ctx context.Context, token string) (info *IntrospectionResponse, found bool, err error) {
	rec, err := p.loadRefresh(ctx, token)
	if err != nil || rec == nil {
		return nil, false, err
	}
	now := p.now()
	if !rec.RotatedAt.IsZero() || !now.Before(rec.IdleExpiresAt) {
		return nil, true, nil
	}
	fam, err := p.loadFamily(ctx, rec.FamilyID)
	if err != nil {
		return nil, true, err
	}
	if fam == nil || !fam.usable(now) || p.checkAccount(ctx, rec.ClientID, fam.Account) != nil {
		return nil, true, nil
	}
	exp := rec.IdleExpiresAt
	if fam.ExpiresAt.Before(exp) {
		exp = fam.ExpiresAt
	}
	return &IntrospectionResponse{
		Active:    true,
		Scope:     strings.Join(fam.Scopes, " "),
		ClientID:  rec.ClientID,
		Username:  preferredUsername(fam.Claims),
		TokenType: introspectTypeRefresh,
		ExpiresAt: exp.Unix(),
		IssuedAt:  rec.IssuedAt.Unix(),
		Subject:   fam.Subject,
		Audience:  rec.ClientID,
		Issuer:    p.Issuer,
	}, true, nil
}

func preferredUsername(claims map[string]any) string {
	s, _ := claims["preferred_username"].(string)
	return s
}
