package oidc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"
)

// GrantAuthorizationCode is the authorization code grant type (RFC 6749 §4.1.3).
const GrantAuthorizationCode = "authorization_code"

// TokenResponse is the successful token response (RFC 6749 §5.1, OpenID
// Connect Core 1.0 §3.1.3.3).
type TokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	IDToken      string `json:"id_token,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope,omitempty"`
	// SessionState is the sid of the SSO session the tokens are bound to
	// (the ID token's sid claim, the sid of the logout tokens sent when that
	// session ends), set in the authorization_code response only, and only
	// when there is such a session. RFC 6749 §5.1 lets a token response
	// carry more members ("The client MUST ignore unrecognized value names
	// in the response"). Keycloak brokering this provider needs it: its
	// OIDCIdentityProvider.extractIdentity records the brokered session as
	// "<alias>.<session_state of the token response>"
	// (BrokeredIdentityContext.setBrokerSessionId), and its
	// LogoutEndpoint.backchannelLogout finds the session a logout_token
	// names by getUserSessionByBrokerSessionId("<alias>.<sid>"); without
	// session_state it answers 200 and ends nothing (keycloak/keycloak
	// services/src/main/java/org/keycloak/broker/oidc/OIDCIdentityProvider.java,
	// .../protocol/oidc/endpoints/LogoutEndpoint.java). Keycloak reads it
	// at login only, never from a refresh, so refresh responses leave it
	// out.
	//
	// It is not OpenID Connect Session Management 1.0's session_state (§3,
	// a salted hash for check_session_iframe, sent in the authorization
	// response): this provider does not implement Session Management, and
	// discovery advertises no check_session_iframe.
	SessionState string `json:"session_state,omitempty"`
}

// ErrorResponse is the error body of the token, userinfo, revocation and
// introspection endpoints (RFC 6749 §5.2).
type ErrorResponse struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description,omitempty"`
}

// HandleToken is the token endpoint (RFC 6749 §3.2): the authorization_code
// grant (§4.1.3), the refresh_token grant (§6) and the token exchange grant
// (RFC 8693, exchange.go).
func (p *Provider) HandleToken(w http.ResponseWriter, r *http.Request) {
	client, params, ok := p.clientRequest(w, r, true)
	if !ok {
		return
	}
	var resp any
	var e *Error
	switch gt := params["grant_type"]; gt {
	case GrantAuthorizationCode:
		resp, e = p.exchangeCode(r.Context(), client, params)
	case GrantRefreshToken:
		resp, e = p.refresh(r.Context(), client, params)
	case GrantTokenExchange:
		resp, e = p.exchangeToken(r.Context(), client, params)
	case "":
		e = ErrInvalidRequest("the grant_type parameter is missing")
	default:
		e = ErrUnsupportedGrantType("grant_type %q is not supported", printable(gt))
	}
	if p.OnTokenResponse != nil {
		code := ""
		if e != nil {
			code = e.Code
		}
		p.OnTokenResponse(grantLabel(params["grant_type"]), code)
	}
	if e != nil {
		p.writeTokenError(w, r, e)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// grantLabel names a grant type for OnTokenResponse: one of the supported
// grants, or "other" (never the raw value, which a client chooses).
func grantLabel(gt string) string {
	switch gt {
	case GrantAuthorizationCode, GrantRefreshToken, GrantTokenExchange:
		return gt
	}
	return "other"
}

// clientRequest starts every client-authenticated endpoint (token,
// revocation, introspection): no caching of the answer (RFC 6749 §5.1), a
// strictly parsed form body, and client authentication, reported to
// OnClientAuthFailure / OnClientAuthSuccess. allowPublic says whether a
// public client (method none) may use the endpoint. On failure the error
// response is written and ok is false.
func (p *Provider) clientRequest(w http.ResponseWriter, r *http.Request, allowPublic bool) (client *Client, params Params, ok bool) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	params, e := ReadForm(w, r)
	if e != nil {
		p.writeTokenError(w, r, e)
		return nil, nil, false
	}
	cred, e := presentedCredentials(r.Header.Get("Authorization"), params)
	if e == nil {
		client, e = p.Clients.authenticate(cred)
	}
	if e != nil {
		if e.Code == CodeInvalidClient && p.OnClientAuthFailure != nil {
			p.OnClientAuthFailure(cred.id, r)
		}
		p.writeTokenError(w, r, e)
		return nil, nil, false
	}
	if !allowPublic && cred.method == AuthMethodNone {
		// A public client proves nothing about who it is; RFC 6749 §5.2
		// answers an authentication method the endpoint does not support
		// with invalid_client. Not a failed guess: no hook is called.
		p.writeTokenError(w, r, ErrInvalidClient("this endpoint needs client authentication with a secret; public clients (token_endpoint_auth_method none) cannot use it"))
		return nil, nil, false
	}
	if p.OnClientAuthSuccess != nil {
		p.OnClientAuthSuccess(client.ID, r)
	}
	return client, params, true
}

// isFormBody reports whether r carries an application/x-www-form-urlencoded
// body: the media type is compared case-insensitively and parameters such
// as charset are allowed (RFC 9110 §8.3.1).
func isFormBody(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/x-www-form-urlencoded"
}

// ReadForm reads a POSTed application/x-www-form-urlencoded body strictly
// (size limit, no repeated parameters, valid UTF-8). Parameters in the URL
// query are not read: RFC 6749 §3.2 puts them in the body.
func ReadForm(w http.ResponseWriter, r *http.Request) (Params, *Error) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		e := ErrInvalidRequest("this endpoint accepts POST only")
		e.Status = http.StatusMethodNotAllowed
		return nil, e
	}
	if !isFormBody(r) {
		return nil, ErrInvalidRequest("the request body must be application/x-www-form-urlencoded")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxParamsBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			e := ErrInvalidRequest("the request body is too large")
			e.Status = http.StatusRequestEntityTooLarge
			return nil, e
		}
		return nil, ErrInvalidRequest("the request body could not be read")
	}
	return ParseParams(string(body))
}

// peekForm parses the form body of r as ReadForm does, then puts the body
// back so that the handler reads the same bytes. At most MaxParamsBytes+1
// bytes are read: a larger body is refused here as there.
func peekForm(r *http.Request) (Params, *Error) {
	if r.Method != http.MethodPost {
		return nil, ErrInvalidRequest("this endpoint accepts POST only")
	}
	if !isFormBody(r) {
		return nil, ErrInvalidRequest("the request body must be application/x-www-form-urlencoded")
	}
	if r.Body == nil || r.Body == http.NoBody {
		return ParseParams("")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxParamsBytes+1))
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(body), r.Body), r.Body}
	if err != nil {
		return nil, ErrInvalidRequest("the request body could not be read")
	}
	if len(body) > MaxParamsBytes {
		return nil, ErrInvalidRequest("the request body is too large")
	}
	return ParseParams(string(body))
}

func (p *Provider) exchangeCode(ctx context.Context, client *Client, params Params) (*TokenResponse, *Error) {
	code := params["code"]
	if code == "" {
		return nil, ErrInvalidRequest("the code parameter is missing")
	}
	codeHash := HashToken(code)
	raw, err := p.Storage.Take(ctx, keyCode+codeHash)
	if err != nil {
		return nil, errStorageUnavailable().WithDebug(err)
	}
	if raw == nil {
		p.revokeReplayedCode(ctx, codeHash)
		return nil, ErrInvalidGrant("the authorization code is invalid, expired or was already used")
	}
	var g codeGrant
	if err := json.Unmarshal(raw, &g); err != nil {
		return nil, ErrServerError("stored code is unreadable").WithDebug(err)
	}
	// RFC 6749 §4.1.3: the code must have been issued to the authenticated
	// client (code injection across clients) ...
	if g.ClientID != client.ID {
		return nil, ErrInvalidGrant("the authorization code was not issued to this client")
	}
	// ... and redirect_uri must be identical to the one in the request.
	if params["redirect_uri"] != g.RedirectURI {
		return nil, ErrInvalidGrant("redirect_uri does not match the one used in the authorization request")
	}
	if e := VerifyPKCE(g.CodeChallenge, g.CodeChallengeMethod, params["code_verifier"]); e != nil {
		return nil, e
	}

	now := p.now()
	accessToken, refreshToken, e := p.issueCodeTokens(ctx, client, &g, codeHash, now)
	if e != nil {
		return nil, e
	}
	idToken, err := p.signIDToken(idTokenInput{
		ClientID: client.ID, Subject: g.Subject, AuthTime: g.AuthTime, Nonce: g.Nonce,
		AccessToken: accessToken, SessionID: g.SessionID, Claims: g.Claims, Now: now,
	})
	if err != nil {
		return nil, ErrServerError("could not sign the ID token").WithDebug(err)
	}
	return &TokenResponse{
		AccessToken:  accessToken,
		TokenType:    "Bearer",
		ExpiresIn:    int64(p.AccessTokenTTL / time.Second),
		IDToken:      idToken,
		RefreshToken: refreshToken,
		Scope:        strings.Join(g.Scopes, " "),
		// Empty without an SSO session: omitted (see TokenResponse).
		SessionState: g.SessionID,
	}, nil
}

// issueCodeTokens stores the tokens a redeemed code grants: an access token
// and, when allowed, a refresh token family. What could revoke them is
// written first: the redemption record (a code replay revokes what it
// names) and the session and subject indexes (RevokeSession,
// RevokeSubject), so that a revocation racing this request still finds
// them.
func (p *Provider) issueCodeTokens(ctx context.Context, client *Client, g *codeGrant, codeHash string, now time.Time) (accessToken, refreshToken string, e *Error) {
	accessToken = NewToken()
	atHash := HashToken(accessToken)
	var familyID string
	var fam *refreshFamily
	if p.refreshAllowed(client, g.Scopes) {
		familyID, fam = NewToken(), p.newFamily(g, now)
	}
	// The redemption record is kept as long as anything it could revoke lives.
	usedTTL := p.AccessTokenTTL
	// The access token is indexed on its own unless its family's
	// revocation ends it.
	entry := indexEntry{Access: atHash, Expires: now.Add(p.AccessTokenTTL).Unix()}
	if fam != nil {
		usedTTL = max(usedTTL, p.familyStoreTTL(fam, now))
		entry = indexEntry{Family: familyID, Offline: fam.Offline, Expires: now.Add(p.familyStoreTTL(fam, now)).Unix(), Created: now.Unix()}
	}
	used, err := json.Marshal(usedCode{ClientID: client.ID, AccessTokens: []string{atHash}, FamilyID: familyID})
	if err != nil {
		return "", "", ErrServerError("could not encode the code redemption").WithDebug(err)
	}
	if err := p.Storage.Put(ctx, keyUsedCode+codeHash, used, usedTTL); err != nil {
		return "", "", errStorageUnavailable().WithDebug(err)
	}
	if err := p.indexTokens(ctx, g.SessionID, g.Subject, entry); err != nil {
		return "", "", errStorageUnavailable().WithDebug(err)
	}
	if fam != nil {
		if err := p.putFamily(ctx, familyID, fam, now); err != nil {
			return "", "", errStorageUnavailable().WithDebug(err)
		}
		if refreshToken, err = p.issueRefreshToken(ctx, familyID, fam, now); err != nil {
			return "", "", errStorageUnavailable().WithDebug(err)
		}
	}
	if err := p.putAccess(ctx, atHash, &accessGrant{
		ClientID: client.ID, Subject: g.Subject, Scopes: g.Scopes, Claims: g.Claims, Account: g.Account,
		ExpiresAt: now.Add(p.AccessTokenTTL).Unix(), IssuedAt: now.Unix(),
		SessionID: g.SessionID, FamilyID: familyID,
	}); err != nil {
		return "", "", errStorageUnavailable().WithDebug(err)
	}
	// A replay that ran between our Take of the code and now marked the
	// redemption revoked but could not yet see these tokens: end them.
	raw, err := p.Storage.Get(ctx, keyUsedCode+codeHash)
	if err != nil {
		return "", "", errStorageUnavailable().WithDebug(err)
	}
	var u usedCode
	if raw != nil && json.Unmarshal(raw, &u) == nil && u.Revoked {
		if err := p.revokeEntry(ctx, indexEntry{Access: atHash}); err != nil {
			p.log().ErrorContext(ctx, "authorization code replayed: could not revoke its access token", "client_id", client.ID, "error", err)
		}
		if err := p.revokeEntry(ctx, indexEntry{Family: familyID}); err != nil {
			p.log().ErrorContext(ctx, "authorization code replayed: could not revoke its refresh token family", "client_id", client.ID, "error", err)
		}
		return "", "", ErrInvalidGrant("the authorization code was used twice; its tokens are revoked")
	}
	return accessToken, refreshToken, nil
}

// revokeReplayedCode handles a code presented a second time: "If an
// authorization code is used more than once, the authorization server MUST
// deny the request and SHOULD revoke (when possible) all tokens previously
// issued based on that authorization code" (RFC 6749 §4.1.2).
func (p *Provider) revokeReplayedCode(ctx context.Context, codeHash string) {
	raw, err := p.Storage.Get(ctx, keyUsedCode+codeHash)
	if err != nil || raw == nil {
		return
	}
	var u usedCode
	if json.Unmarshal(raw, &u) != nil {
		return
	}
	u.Revoked = true
	b, err := json.Marshal(u)
	if err == nil {
		err = p.Storage.Put(ctx, keyUsedCode+codeHash, b, p.AccessTokenTTL)
	}
	if err != nil {
		// A redemption still in flight will not see the mark; what it
		// stored already is revoked below.
		p.log().ErrorContext(ctx, "authorization code replayed: could not mark the redemption revoked", "client_id", u.ClientID, "error", err)
	}
	for _, h := range u.AccessTokens {
		if err := p.revokeEntry(ctx, indexEntry{Access: h}); err != nil {
			p.log().ErrorContext(ctx, "authorization code replayed: could not revoke an access token", "client_id", u.ClientID, "error", err)
		}
	}
	// The refresh tokens, and the access tokens refreshed from them, are
	// "tokens previously issued based on that authorization code" too.
	if u.FamilyID != "" {
		if err := p.endFamily(ctx, u.FamilyID); err != nil {
			p.log().ErrorContext(ctx, "authorization code replayed: could not revoke the refresh token family", "client_id", u.ClientID, "error", err)
		}
	}
	p.log().WarnContext(ctx, "authorization code replayed: tokens issued from it are revoked", "client_id", u.ClientID)
}

func (p *Provider) writeTokenError(w http.ResponseWriter, r *http.Request, e *Error) {
	status := e.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	if e.Code == CodeInvalidClient {
		// RFC 6749 §5.2: 401 with WWW-Authenticate when the client used the
		// Authorization header.
		status = http.StatusUnauthorized
		if r.Header.Get("Authorization") != "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="`+p.Issuer+`", charset="UTF-8"`)
		}
	}
	if e.Debug != nil || status >= 500 {
		p.log().ErrorContext(r.Context(), "token endpoint error", "error", e.Code, "detail", e.Error())
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	writeJSON(w, status, ErrorResponse{Error: e.Code, ErrorDescription: e.Description})
}

func (p *Provider) putAccess(ctx context.Context, hash string, g *accessGrant) error {
	raw, err := json.Marshal(g)
	if err != nil {
		return err
	}
	return p.Storage.Put(ctx, keyAccess+hash, raw, p.AccessTokenTTL)
}

// lookupAccess returns the grant of a live access token: known, not expired,
// and, when it descends from a refresh token family, that family not revoked
// (one more read, only for such tokens). nil means the token is not live.
func (p *Provider) lookupAccess(ctx context.Context, token string) (*accessGrant, error) {
	raw, err := p.Storage.Get(ctx, keyAccess+HashToken(token))
	if err != nil || raw == nil {
		return nil, err
	}
	var g accessGrant
	if json.Unmarshal(raw, &g) != nil || g.ExpiresAt <= p.now().Unix() {
		return nil, nil
	}
	if g.FamilyID != "" {
		revoked, err := p.familyRevoked(ctx, g.FamilyID)
		if err != nil || revoked {
			return nil, err
		}
	}
	return &g, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
