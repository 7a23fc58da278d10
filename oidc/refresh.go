package oidc

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Refresh tokens (RFC 6749 §6, OpenID Connect Core 1.0 §11–12, RFC 9700
// §4.14).
//
// Everything descended from one authorization code is a family: the refresh
// tokens issued by the code exchange and by every refresh after it, and the
// access tokens issued with them. The family record holds what the login
// granted (client, subject, scopes, claims, sid, auth_time) and the family's
// absolute expiry; a refresh token record only points at its family and holds
// its own idle expiry and, once used, when it was rotated. Revoking a family
// is one flag: every refresh token and access token of it looks the family up
// before it is honoured.
//
// Refresh tokens rotate on every use (RFC 9700 §4.14.2, required for public
// clients, done for all): a used token is kept, marked rotated, until the
// family expires, so that presenting it again is recognised. Within
// RefreshReuseGrace of its first use it still works (a relying party with
// several instances refreshing at once); after that, its use means that two
// parties hold the token, and the whole family is revoked.

// GrantRefreshToken is the refresh token grant type (RFC 6749 §6).
const GrantRefreshToken = "refresh_token"

// ScopeOfflineAccess asks for a refresh token (OpenID Connect Core 1.0 §11).
// It is supported when the provider's ScopeClaims has an entry for it.
const ScopeOfflineAccess = "offline_access"

// refreshFamily is what a family of refresh tokens stands for, stored under
// keyFamily + its id. Only Revoked ever changes after it is created, so a
// read-modify-write that sets it cannot lose another writer's change.
type refreshFamily struct {
	ClientID  string         `json:"client_id"`
	Subject   string         `json:"sub"`
	Scopes    []string       `json:"scopes"`
	Claims    map[string]any `json:"claims,omitempty"`
	SessionID string         `json:"sid,omitempty"`
	AuthTime  int64          `json:"auth_time"`
	CreatedAt time.Time      `json:"created_at"`
	// ExpiresAt is the absolute expiry: CreatedAt + RefreshTokenAbsoluteTTL.
	ExpiresAt time.Time `json:"exp"`
	Revoked   bool      `json:"revoked,omitempty"`
	// The nonce of the authentication request is deliberately not kept:
	// refreshed ID tokens carry none (OpenID Connect Core 1.0 §12.2).
}

// usable reports whether tokens of the family may still be honoured.
func (f *refreshFamily) usable(now time.Time) bool {
	return !f.Revoked && now.Before(f.ExpiresAt)
}

// refreshRecord is what one refresh token stands for, stored under
// keyRefresh + the token's hash.
type refreshRecord struct {
	FamilyID string `json:"family"`
	// ClientID duplicates the family's so that a token presented by another
	// client is refused before anything else is read.
	ClientID string    `json:"client_id"`
	IssuedAt time.Time `json:"iat"`
	// IdleExpiresAt is IssuedAt + RefreshTokenIdleTTL, never later than the
	// family's absolute expiry.
	IdleExpiresAt   time.Time `json:"idle_exp"`
	FamilyExpiresAt time.Time `json:"family_exp"`
	// RotatedAt is when the token was first used (and replaced); zero while
	// it is unused.
	RotatedAt time.Time `json:"rotated_at,omitzero"`
}

// keepUntil is how long the record must stay in storage: an unused token
// until it expires, a rotated one until its family does, so that its reuse
// is still recognised.
func (r *refreshRecord) keepUntil() time.Time {
	if !r.RotatedAt.IsZero() {
		return r.FamilyExpiresAt
	}
	return r.IdleExpiresAt
}

// refreshAllowed decides whether the authorization_code grant issues a
// refresh token: when the client asked for offline_access and the provider
// supports it, or when the client is configured to always get one.
//
// OpenID Connect Core 1.0 §11 says offline_access is to be ignored unless
// the request also has prompt=consent. We deliberately do not apply that
// rule: this provider has no consent step of its own (the person consents
// at WeChat), so offline_access is granted whenever it is requested.
func (p *Provider) refreshAllowed(client *Client, scopes []string) bool {
	if client.RefreshTokens {
		return true
	}
	return p.scopeSupported(ScopeOfflineAccess) && slices.Contains(scopes, ScopeOfflineAccess)
}

// newFamily returns the family a code redemption starts.
func (p *Provider) newFamily(g *codeGrant, now time.Time) *refreshFamily {
	return &refreshFamily{
		ClientID:  g.ClientID,
		Subject:   g.Subject,
		Scopes:    g.Scopes,
		Claims:    g.Claims,
		SessionID: g.SessionID,
		AuthTime:  g.AuthTime,
		CreatedAt: now,
		ExpiresAt: now.Add(p.refreshAbsoluteTTL()),
	}
}

// familyStoreTTL is how long a family record is kept: past its absolute
// expiry by an access token lifetime, so that the revoked flag outlives
// every access token that depends on it.
func (p *Provider) familyStoreTTL(f *refreshFamily, now time.Time) time.Duration {
	return f.ExpiresAt.Add(p.AccessTokenTTL).Sub(now)
}

func (p *Provider) putFamily(ctx context.Context, id string, f *refreshFamily, now time.Time) error {
	ttl := p.familyStoreTTL(f, now)
	if ttl <= 0 {
		return p.Storage.Delete(ctx, keyFamily+id)
	}
	raw, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("oidc: encode refresh family: %w", err)
	}
	return p.Storage.Put(ctx, keyFamily+id, raw, ttl)
}

// loadFamily returns the family, or nil when it does not exist (any more).
func (p *Provider) loadFamily(ctx context.Context, id string) (*refreshFamily, error) {
	raw, err := p.Storage.Get(ctx, keyFamily+id)
	if err != nil || raw == nil {
		return nil, err
	}
	var f refreshFamily
	if err := json.Unmarshal(raw, &f); err != nil {
		return nil, fmt.Errorf("oidc: stored refresh family is unreadable: %w", err)
	}
	return &f, nil
}

// familyRevoked reports whether access tokens of the family must be refused:
// it was revoked, or its record is gone (fail closed; the record outlives
// every access token of the family, see familyStoreTTL). The absolute expiry
// is not checked here: it ends refreshing, and an access token issued by the
// last refresh lives its announced expires_in.
func (p *Provider) familyRevoked(ctx context.Context, id string) (bool, error) {
	f, err := p.loadFamily(ctx, id)
	if err != nil {
		return true, err
	}
	return f == nil || f.Revoked, nil
}

// revokeFamily marks a family revoked, which ends every refresh and access
// token descended from it.
func (p *Provider) revokeFamily(ctx context.Context, id string) error {
	f, err := p.loadFamily(ctx, id)
	if err != nil {
		return err
	}
	if f == nil || f.Revoked {
		return nil // nothing left to honour: tokens of a missing family are refused
	}
	f.Revoked = true
	return p.putFamily(ctx, id, f, p.now())
}

// issueRefreshToken mints a new refresh token in the family.
func (p *Provider) issueRefreshToken(ctx context.Context, familyID string, f *refreshFamily, now time.Time) (string, error) {
	idle := now.Add(p.refreshIdleTTL())
	if idle.After(f.ExpiresAt) {
		idle = f.ExpiresAt
	}
	rec := refreshRecord{
		FamilyID: familyID, ClientID: f.ClientID, IssuedAt: now,
		IdleExpiresAt: idle, FamilyExpiresAt: f.ExpiresAt,
	}
	token := NewToken()
	if err := p.putRefresh(ctx, keyRefresh+HashToken(token), &rec, now); err != nil {
		return "", err
	}
	return token, nil
}

// putRefresh stores a refresh token record for as long as it must be kept;
// a record with nothing left to keep is not stored.
func (p *Provider) putRefresh(ctx context.Context, key string, rec *refreshRecord, now time.Time) error {
	ttl := rec.keepUntil().Sub(now)
	if ttl <= 0 {
		return nil
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("oidc: encode refresh token: %w", err)
	}
	return p.Storage.Put(ctx, key, raw, ttl)
}

// loadRefresh returns the record of a refresh token, or nil when unknown.
func (p *Provider) loadRefresh(ctx context.Context, token string) (*refreshRecord, error) {
	raw, err := p.Storage.Get(ctx, keyRefresh+HashToken(token))
	if err != nil || raw == nil {
		return nil, err
	}
	var rec refreshRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, fmt.Errorf("oidc: stored refresh token is unreadable: %w", err)
	}
	return &rec, nil
}

// refresh is the refresh_token grant (RFC 6749 §6, OpenID Connect Core 1.0
// §12). Nothing upstream is asked: the new tokens carry what the login
// granted (same sub, claims, auth_time and sid).
func (p *Provider) refresh(ctx context.Context, client *Client, params Params) (*TokenResponse, *Error) {
	token := params["refresh_token"]
	if token == "" {
		return nil, ErrInvalidRequest("the refresh_token parameter is missing")
	}
	key := keyRefresh + HashToken(token)
	// Take, not Get: of concurrent first uses of one token exactly one sees
	// it unrotated. The record is put back (rotated, or unchanged when the
	// request is refused) as soon as the decision is made. A concurrent use
	// that falls between the Take and the Put finds nothing and gets
	// invalid_grant: a safe failure that revokes nothing.
	raw, err := p.Storage.Take(ctx, key)
	if err != nil {
		return nil, ErrServerError("storage unavailable").WithDebug(err)
	}
	if raw == nil {
		return nil, ErrInvalidGrant("the refresh token is invalid, expired or revoked")
	}
	var rec refreshRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, ErrServerError("stored refresh token is unreadable").WithDebug(err)
	}
	now := p.now()
	// restore puts the record back as it was: a refused request does not use
	// up the token (a client that sent a bad scope may retry with it).
	restore := func() { _ = p.putRefresh(ctx, key, &rec, now) }

	// RFC 6749 §6 and §10.4: the refresh token is bound to the client it was
	// issued to. Another client's token is refused and left untouched.
	if rec.ClientID != client.ID {
		restore()
		return nil, ErrInvalidGrant("the refresh token was not issued to this client")
	}
	fam, err := p.loadFamily(ctx, rec.FamilyID)
	if err != nil {
		restore()
		return nil, ErrServerError("storage unavailable").WithDebug(err)
	}
	if fam == nil || !fam.usable(now) || fam.ClientID != client.ID {
		// Revoked, or past the absolute lifetime: the token is dead for good.
		return nil, ErrInvalidGrant("the refresh token is invalid, expired or revoked; sign in again")
	}
	if !rec.RotatedAt.IsZero() && now.Sub(rec.RotatedAt) > p.refreshReuseGrace() {
		// RFC 9700 §4.14.2: a rotated token presented again means it is in
		// two hands; revoke everything descended from the login. The record
		// stays, so further replays are refused the same way.
		restore()
		if err := p.revokeFamily(ctx, rec.FamilyID); err != nil {
			p.log().ErrorContext(ctx, "refresh token reuse: could not revoke the family", "client_id", client.ID, "error", err)
		}
		p.log().WarnContext(ctx, "rotated refresh token reused after the grace window: its family is revoked", "client_id", client.ID, "family", rec.FamilyID)
		return nil, ErrInvalidGrant("the refresh token was already used; every token of this sign-in is revoked, sign in again")
	}
	if !now.Before(rec.IdleExpiresAt) {
		restore() // keeps a rotated record for reuse detection; an unused one is gone
		return nil, ErrInvalidGrant("the refresh token has expired; sign in again")
	}
	scopes, e := narrowScopes(fam.Scopes, params["scope"])
	if e != nil {
		restore()
		return nil, e
	}
	claims := fam.Claims
	if params["scope"] != "" {
		claims = p.ReleasedClaims(scopes, fam.Claims)
	}
	if rec.RotatedAt.IsZero() {
		rec.RotatedAt = now
	} // else a reuse within the grace window: it branches the family, and the window does not slide.
	if err := p.putRefresh(ctx, key, &rec, now); err != nil {
		return nil, ErrServerError("storage unavailable").WithDebug(err)
	}

	// RFC 6749 §6: the new refresh token has the scope of the old one (the
	// family's), whatever the access token was narrowed to.
	newRefresh, err := p.issueRefreshToken(ctx, rec.FamilyID, fam, now)
	if err != nil {
		return nil, ErrServerError("storage unavailable").WithDebug(err)
	}
	accessToken := NewToken()
	if err := p.putAccess(ctx, HashToken(accessToken), &accessGrant{
		ClientID: client.ID, Subject: fam.Subject, Scopes: scopes, Claims: claims,
		ExpiresAt: now.Add(p.AccessTokenTTL).Unix(), IssuedAt: now.Unix(),
		SessionID: fam.SessionID, FamilyID: rec.FamilyID,
	}); err != nil {
		return nil, ErrServerError("storage unavailable").WithDebug(err)
	}
	resp := &TokenResponse{
		AccessToken:  accessToken,
		TokenType:    "Bearer",
		ExpiresIn:    int64(p.AccessTokenTTL / time.Second),
		RefreshToken: newRefresh,
		Scope:        strings.Join(scopes, " "),
	}
	if slices.Contains(scopes, "openid") {
		// OpenID Connect Core 1.0 §12.2: same iss, sub, aud, azp and
		// auth_time as the original ID token, a new iat and exp, and no
		// nonce (the original one is not kept).
		resp.IDToken, err = p.signIDToken(idTokenInput{
			ClientID: client.ID, Subject: fam.Subject, AuthTime: fam.AuthTime,
			AccessToken: accessToken, SessionID: fam.SessionID, Claims: claims, Now: now,
		})
		if err != nil {
			return nil, ErrServerError("could not sign the ID token").WithDebug(err)
		}
	}
	return resp, nil
}

// narrowScopes returns the scopes a refresh asks for: all that were granted
// when requested is empty, otherwise requested, each of which must have been
// granted (RFC 6749 §6: "MUST NOT include any scope not originally granted",
// else invalid_scope). The result keeps the granted order.
func narrowScopes(granted []string, requested string) ([]string, *Error) {
	asked := strings.Fields(requested)
	if len(asked) == 0 {
		return slices.Clone(granted), nil
	}
	if len(asked) > maxScopeEntries {
		return nil, ErrInvalidScope("too many scopes")
	}
	for _, s := range asked {
		if !slices.Contains(granted, s) {
			return nil, ErrInvalidScope("scope %q was not granted at sign-in; a refresh can only keep or narrow the scope", printable(s))
		}
	}
	out := make([]string, 0, len(asked))
	for _, s := range granted {
		if slices.Contains(asked, s) {
			out = append(out, s)
		}
	}
	return out, nil
}
