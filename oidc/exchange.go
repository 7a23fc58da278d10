package oidc

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Token exchange (RFC 8693) at the token endpoint.
//
// A client allowed to (Client.AllowTokenExchange) presents a subject token
// of a type the provider has an exchanger for (Provider.TokenExchangers,
// keyed by subject_token_type). The exchanger, supplied by whoever embeds
// the provider, turns the token into an Identity; this package knows nothing
// of what the token is. The answer is an opaque access token with an ID
// token, or the ID token alone.
//
// What is supported of RFC 8693 §2.1: impersonation only (actor_token is
// refused: no delegation), audience and resource only as the client itself
// (the tokens issued are always for the requesting client), no refresh token.
// Every check is made before the exchanger runs, because a subject token may
// be single-use upstream: a bad request must not burn it.

// GrantTokenExchange is the token exchange grant type (RFC 8693 §2.1).
const GrantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"

// Token type identifiers (RFC 8693 §3) for requested_token_type and
// issued_token_type.
const (
	TokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
	TokenTypeIDToken     = "urn:ietf:params:oauth:token-type:id_token"
)

// CodeInvalidTarget is the token exchange error for an audience or resource
// the server will not issue a token for (RFC 8693 §2.2.2).
const CodeInvalidTarget = "invalid_target"

// tokenTypeNA is the token_type of an issued token that is not an access
// token (RFC 8693 §2.2.1).
const tokenTypeNA = "N_A"

// TokenExchanger turns a subject token into the identity it stands for. It
// is called only for a client allowed to exchange tokens and a request that
// passed every other check. Its errors go to the client as they are, so they
// should be token endpoint errors: invalid_grant for a subject token that is
// invalid, expired, used or refused; temporarily_unavailable (HTTP 503) when
// the upstream cannot be asked; server_error otherwise. The returned
// Identity's Claims are filtered by the granted scopes like at sign-in; its
// SessionID is ignored (an exchange starts no SSO session); a zero AuthTime
// means now.
type TokenExchanger func(ctx context.Context, client *Client, subjectToken string) (Identity, *Error)

// ExchangeResponse is the successful token exchange response (RFC 8693
// §2.2.1). IDToken is present beside an opaque access token when the scope
// includes openid.
type ExchangeResponse struct {
	AccessToken     string `json:"access_token"`
	IssuedTokenType string `json:"issued_token_type"`
	TokenType       string `json:"token_type"`
	ExpiresIn       int64  `json:"expires_in"`
	Scope           string `json:"scope,omitempty"`
	IDToken         string `json:"id_token,omitempty"`
}

// tokenExchangeEnabled reports whether any client can use the token exchange
// grant: there is an exchanger and a client allowed to use it. Discovery
// advertises the grant only then.
func (p *Provider) tokenExchangeEnabled() bool {
	if len(p.TokenExchangers) == 0 {
		return false
	}
	for _, c := range p.Clients.clients {
		if c.AllowTokenExchange {
			return true
		}
	}
	return false
}

// exchangeToken is the token exchange grant (RFC 8693 §2). It is long on
// purpose: one pass over §2.1's parameters in the RFC's order, then §2.2's
// response; each check is a few lines with its section cited.
func (p *Provider) exchangeToken(ctx context.Context, client *Client, params Params) (*ExchangeResponse, *Error) {
	if len(p.TokenExchangers) == 0 {
		return nil, ErrUnsupportedGrantType("grant_type %s is not supported by this server", GrantTokenExchange)
	}
	if !client.AllowTokenExchange {
		return nil, ErrUnauthorizedClient("this client is not allowed to use token exchange")
	}
	if params["actor_token"] != "" || params["actor_token_type"] != "" {
		return nil, ErrInvalidRequest("delegation not supported: actor_token cannot be used")
	}
	subjectToken, subjectType := params["subject_token"], params["subject_token_type"]
	if subjectToken == "" {
		return nil, ErrInvalidRequest("the subject_token parameter is missing")
	}
	if subjectType == "" {
		return nil, ErrInvalidRequest("the subject_token_type parameter is missing")
	}
	exchanger := p.TokenExchangers[subjectType]
	if exchanger == nil {
		return nil, ErrInvalidRequest("subject_token_type %q is not supported", printable(subjectType))
	}
	wantIDToken := false
	switch rt := params["requested_token_type"]; rt {
	case "", TokenTypeAccessToken:
	case TokenTypeIDToken:
		wantIDToken = true
	default:
		return nil, ErrInvalidRequest("requested_token_type %q is not supported (use %s or %s)", printable(rt), TokenTypeAccessToken, TokenTypeIDToken)
	}
	// The tokens issued are for the requesting client and nobody else.
	for _, k := range []string{"audience", "resource"} {
		if v, ok := params[k]; ok && v != client.ID {
			return nil, newError(CodeInvalidTarget, http.StatusBadRequest, "%s must be this client's own id: tokens are issued only for the requesting client", k)
		}
	}
	scopes, e := p.exchangeScopes(params["scope"])
	if e != nil {
		return nil, e
	}
	openid := slices.Contains(scopes, "openid")
	if wantIDToken && !openid {
		return nil, ErrInvalidScope("an ID token needs the openid scope")
	}

	id, e := exchanger(ctx, client, subjectToken)
	if e != nil {
		return nil, e
	}
	if id.Subject == "" {
		return nil, ErrServerError("the token exchange yielded no subject")
	}
	now := p.now()
	authTime := id.AuthTime
	if authTime.IsZero() {
		authTime = now
	}
	claims := p.ReleasedClaims(scopes, id.Claims)
	in := idTokenInput{ClientID: client.ID, Subject: id.Subject, AuthTime: authTime.Unix(), Claims: claims, Now: now}

	if wantIDToken {
		idToken, err := p.signIDToken(in)
		if err != nil {
			return nil, ErrServerError("could not sign the ID token").WithDebug(err)
		}
		return &ExchangeResponse{
			AccessToken:     idToken,
			IssuedTokenType: TokenTypeIDToken,
			TokenType:       tokenTypeNA,
			ExpiresIn:       int64(p.IDTokenTTL / time.Second),
			Scope:           strings.Join(scopes, " "),
		}, nil
	}

	accessToken := NewToken()
	atHash := HashToken(accessToken)
	// Indexed by subject (there is no session) before it exists, so that
	// RevokeSubject ends it.
	if err := p.indexTokens(ctx, "", id.Subject, indexEntry{Access: atHash, Expires: now.Add(p.AccessTokenTTL).Unix()}); err != nil {
		return nil, errStorageUnavailable().WithDebug(err)
	}
	if err := p.putAccess(ctx, atHash, &accessGrant{
		ClientID: client.ID, Subject: id.Subject, Scopes: scopes, Claims: claims, Account: id.Account,
		ExpiresAt: now.Add(p.AccessTokenTTL).Unix(), IssuedAt: now.Unix(),
	}); err != nil {
		return nil, errStorageUnavailable().WithDebug(err)
	}
	resp := &ExchangeResponse{
		AccessToken:     accessToken,
		IssuedTokenType: TokenTypeAccessToken,
		TokenType:       "Bearer",
		ExpiresIn:       int64(p.AccessTokenTTL / time.Second),
		Scope:           strings.Join(scopes, " "),
	}
	if openid {
		in.AccessToken = accessToken
		var err error
		if resp.IDToken, err = p.signIDToken(in); err != nil {
			return nil, ErrServerError("could not sign the ID token").WithDebug(err)
		}
	}
	return resp, nil
}

// exchangeScopes is the scope of a token exchange: "openid" when absent;
// otherwise the requested scopes this provider supports, unknown ones
// dropped as at the authorization endpoint (RFC 6749 §3.3), openid first.
// offline_access is dropped too: an exchange issues no refresh token.
func (p *Provider) exchangeScopes(requested string) ([]string, *Error) {
	asked := strings.Fields(requested)
	if len(asked) == 0 {
		return []string{"openid"}, nil
	}
	if len(asked) > maxScopeEntries {
		return nil, ErrInvalidScope("too many scopes")
	}
	var out []string
	if slices.Contains(asked, "openid") {
		out = append(out, "openid")
	}
	for _, s := range asked {
		if s != "openid" && s != ScopeOfflineAccess && p.scopeSupported(s) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, ErrInvalidScope("none of the requested scopes is supported (use openid)")
	}
	return out, nil
}
