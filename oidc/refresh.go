package oidc

import (
	"context"
	"encoding/json"
	"errors"
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
// family expires, so that presenting it again is recognised. Such a reuse
// means that two parties hold the token, and the whole family is revoked.
//
// RefreshReuseGrace (zero by default: strict rotation) tolerates a relying
// party whose instances refresh at once: within the grace after the first
// use, presenting the token again returns the very response the first use
// got — the same refresh token, access token and ID token — instead of
// minting a parallel branch, so a thief who races the relying party gets
// nothing the relying party did not. For that, the successor response is
// kept under keyRefreshNext for the grace only (see refreshSuccessor).

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
	// Offline is set when the family was issued for offline_access: it
	// survives the end of the session (RevokeSession), not RevokeSubject.
	Offline bool   `json:"offline,omitempty"`
	Account string `json:"acct,omitempty"`
	// The nonce of the authentication request is deliberately not kept:
	// refreshed ID tokens carry none (OpenID Connect Core 1.0 §12.2).
}

// usable reports whether tokens of the family may still be honoured.
func (f *refreshFamily) usable(now time.Time) bool {
	return !f.Revoked && now.Before(f.ExpiresAt)
}

// refreshSuccessor is the response a refresh token's first use got, kept so
// that a reuse within the grace gets the same tokens.
//
// Trade-off: these are raw tokens (and the ID token with the claims it
// carries), unlike everything else this package stores (hashes only),
// because a hash cannot be turned back into the token to answer with. They are tokens already issued to this very client, kept
// only for RefreshReuseGrace (the record's time to live, seconds), and only
// when a grace is configured. Someone who reads the store within that
// window gets one live successor of one sign-in; with no grace nothing raw
// is ever stored.
type refreshSuccessor struct {
	Response TokenResponse `json:"response"`
	// AccessExpiresAt is when the access token expires, so that a replay
	// answers an honest expires_in.
	AccessExpiresAt int64 `json:"access_exp"`
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
		Offline:   p.scopeSupported(ScopeOfflineAccess) && slices.Contains(g.Scopes, ScopeOfflineAccess),
		Account:   g.Account,
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
// token descended from it. It returns the family (nil when its record is
// gone: nothing left to honour, tokens of a missing family are refused).
func (p *Provider) revokeFamily(ctx context.Context, id string) (*refreshFamily, error) {
	f, err := p.loadFamily(ctx, id)
	if err != nil || f == nil || f.Revoked {
		return f, err
	}
	f.Revoked = true
	return f, p.putFamily(ctx, id, f, p.now())
}

// idleExpiry is when a refresh token of f issued at now expires unused.
func (p *Provider) idleExpiry(f *refreshFamily, now time.Time) time.Time {
	idle := now.Add(p.refreshIdleTTL())
	if idle.After(f.ExpiresAt) {
		idle = f.ExpiresAt
	}
	return idle
}

// issueRefreshToken mints a new refresh token in the family. A refresh (not
// the family's first token, issued at its creation: describeFamily derives
// that one's use) first records when the family was last used.
func (p *Provider) issueRefreshToken(ctx context.Context, familyID string, f *refreshFamily, now time.Time) (string, error) {
	idle := p.idleExpiry(f, now)
	rec := refreshRecord{
		FamilyID: familyID, ClientID: f.ClientID, IssuedAt: now,
		IdleExpiresAt: idle, FamilyExpiresAt: f.ExpiresAt,
	}
	if !now.Equal(f.CreatedAt) {
		if err := p.recordFamilyUse(ctx, familyID, f, now, idle); err != nil {
			return "", err
		}
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
	return p.loadRefreshHash(ctx, HashToken(token))
}

func (p *Provider) loadRefreshHash(ctx context.Context, hash string) (*refreshRecord, error) {
	raw, err := p.Storage.Get(ctx, keyRefresh+hash)
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
// granted (same sub, claims, auth_time and sid). Every check is made before
// anything is written: a refused request leaves the token as it was (a
// client that sent a bad scope may retry with it).
func (p *Provider) refresh(ctx context.Context, client *Client, params Params) (*TokenResponse, *Error) {
	token := params["refresh_token"]
	if token == "" {
		return nil, ErrInvalidRequest("the refresh_token parameter is missing")
	}
	hash := HashToken(token)
	rec, err := p.loadRefreshHash(ctx, hash)
	if err != nil {
		return nil, errStorageUnavailable().WithDebug(err)
	}
	if rec == nil {
		return nil, ErrInvalidGrant("the refresh token is invalid, expired or revoked")
	}
	// RFC 6749 §6 and §10.4: the refresh token is bound to the client it was
	// issued to. Another client's token is refused and left untouched, even
	// within a reuse grace: it never sees a successor.
	if rec.ClientID != client.ID {
		return nil, ErrInvalidGrant("the refresh token was not issued to this client")
	}
	now := p.now()
	fam, err := p.loadFamily(ctx, rec.FamilyID)
	if err != nil {
		return nil, errStorageUnavailable().WithDebug(err)
	}
	if fam == nil || !fam.usable(now) || fam.ClientID != client.ID {
		// Revoked, or past the absolute lifetime: the token is dead for good.
		return nil, ErrInvalidGrant("the refresh token is invalid, expired or revoked; sign in again")
	}
	if !rec.RotatedAt.IsZero() {
		// Reuse is judged before anything else of the request: a replay
		// with a bad scope revokes as surely as one without.
		return p.refreshReused(ctx, client, hash, rec, fam, params, now)
	}
	if e := p.checkAccount(ctx, client.ID, fam.Account); e != nil {
		// The person may no longer use this client (disabled, removed, or
		// out of its groups): no new tokens (RFC 6749 §5.2 invalid_grant).
		return nil, e
	}
	if !now.Before(rec.IdleExpiresAt) {
		return nil, ErrInvalidGrant("the refresh token has expired; sign in again")
	}
	scopes, e := narrowScopes(fam.Scopes, params["scope"])
	if e != nil {
		return nil, e
	}
	won, rotatedAt, err := p.claimRotation(ctx, hash, rec, now)
	if err != nil {
		return nil, errStorageUnavailable().WithDebug(err)
	}
	if !won {
		// Another request used the token between our read and our claim.
		rec.RotatedAt = rotatedAt
		return p.refreshReused(ctx, client, hash, rec, fam, params, now)
	}
	resp, accessExp, e := p.refreshResponse(ctx, client, rec.FamilyID, fam, scopes, params["scope"] != "", now)
	if e != nil {
		return nil, e
	}
	if grace := p.RefreshReuseGrace; grace > 0 {
		raw, err := json.Marshal(refreshSuccessor{Response: *resp, AccessExpiresAt: accessExp})
		if err == nil {
			err = p.Storage.Put(ctx, keyRefreshNext+hash, raw, grace)
		}
		if err != nil {
			// The tokens are issued; only a replay within the grace will
			// be refused (without revoking) instead of answered.
			p.log().WarnContext(ctx, "refresh: could not keep the successor for the reuse grace", "client_id", client.ID, "error", err)
		}
	}
	return resp, nil
}

// errRotated stops claimRotation's update: the token was already rotated.
var errRotated = errors.New("oidc: refresh token already rotated")

// claimRotation marks the refresh token rotated at now, atomically: of
// concurrent first uses exactly one wins. A loser learns when the token
// was rotated. The record is then kept until its family expires, for reuse
// detection.
func (p *Provider) claimRotation(ctx context.Context, hash string, rec *refreshRecord, now time.Time) (won bool, rotatedAt time.Time, err error) {
	ttl := rec.FamilyExpiresAt.Sub(now)
	if ttl <= 0 {
		return false, time.Time{}, errors.New("oidc: refresh token family expired while refreshing")
	}
	err = p.Storage.Update(ctx, keyRefresh+hash, ttl, func(old []byte) ([]byte, error) {
		if old == nil {
			return nil, errors.New("oidc: refresh token record vanished while refreshing")
		}
		var cur refreshRecord
		if err := json.Unmarshal(old, &cur); err != nil {
			return nil, fmt.Errorf("oidc: stored refresh token is unreadable: %w", err)
		}
		if !cur.RotatedAt.IsZero() {
			rotatedAt = cur.RotatedAt
			return nil, errRotated
		}
		cur.RotatedAt = now
		return json.Marshal(cur)
	})
	if errors.Is(err, errRotated) {
		return false, rotatedAt, nil
	}
	if err != nil {
		return false, time.Time{}, err
	}
	return true, now, nil
}

// refreshReused answers a refresh token presented after it was rotated:
// within the grace, the successor its first use got; otherwise it is theft
// or a broken client, and the whole family is revoked (RFC 9700 §4.14.2).
func (p *Provider) refreshReused(ctx context.Context, client *Client, hash string, rec *refreshRecord, fam *refreshFamily, params Params, now time.Time) (*TokenResponse, *Error) {
	if grace := p.RefreshReuseGrace; grace > 0 && now.Sub(rec.RotatedAt) < grace {
		scopes, e := narrowScopes(fam.Scopes, params["scope"])
		if e != nil {
			return nil, e
		}
		raw, err := p.Storage.Get(ctx, keyRefreshNext+hash)
		if err != nil {
			return nil, errStorageUnavailable().WithDebug(err)
		}
		if raw == nil {
			// The first use is still minting its successor (or could not
			// keep it): a safe refusal that revokes nothing.
			return nil, ErrInvalidGrant("the refresh token was used a moment ago by another request; use the refresh token that request received")
		}
		var next refreshSuccessor
		if err := json.Unmarshal(raw, &next); err != nil {
			return nil, ErrServerError("stored refresh successor is unreadable").WithDebug(err)
		}
		if next.Response.Scope != strings.Join(scopes, " ") {
			return nil, ErrInvalidGrant("the refresh token was already used with another scope; use the refresh token that request received")
		}
		resp := next.Response
		resp.ExpiresIn = next.AccessExpiresAt - now.Unix()
		if resp.ExpiresIn <= 0 {
			return nil, ErrInvalidGrant("the refresh token was already used; use the refresh token that request received")
		}
		p.log().InfoContext(ctx, "rotated refresh token presented again within the reuse grace: the same successor is returned", "client_id", client.ID, "family", rec.FamilyID)
		return &resp, nil
	}
	// The record stays, so further replays are refused the same way.
	if err := p.endFamily(ctx, rec.FamilyID); err != nil {
		p.log().ErrorContext(ctx, "refresh token reuse: could not revoke the family", "client_id", client.ID, "error", err)
	}
	p.log().WarnContext(ctx, "rotated refresh token reused: its family is revoked", "client_id", client.ID, "family", rec.FamilyID)
	return nil, ErrInvalidGrant("the refresh token was already used; every token of this sign-in is revoked, sign in again")
}

// refreshResponse mints the successor of a rotated refresh token: a new
// refresh token with the family's scope (RFC 6749 §6: the scope of the old
// one, whatever the access token was narrowed to), an access token for
// scopes, and an ID token when scopes include openid. It returns the
// access token's expiry too.
func (p *Provider) refreshResponse(ctx context.Context, client *Client, familyID string, fam *refreshFamily, scopes []string, narrowed bool, now time.Time) (*TokenResponse, int64, *Error) {
	claims := fam.Claims
	if narrowed {
		claims = p.ReleasedClaims(scopes, fam.Claims)
	}
	newRefresh, err := p.issueRefreshToken(ctx, familyID, fam, now)
	if err != nil {
		return nil, 0, errStorageUnavailable().WithDebug(err)
	}
	accessToken := NewToken()
	accessExp := now.Add(p.AccessTokenTTL).Unix()
	if err := p.putAccess(ctx, HashToken(accessToken), &accessGrant{
		ClientID: client.ID, Subject: fam.Subject, Scopes: scopes, Claims: claims, Account: fam.Account,
		ExpiresAt: accessExp, IssuedAt: now.Unix(),
		SessionID: fam.SessionID, FamilyID: familyID,
	}); err != nil {
		return nil, 0, errStorageUnavailable().WithDebug(err)
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
			return nil, 0, ErrServerError("could not sign the ID token").WithDebug(err)
		}
	}
	return resp, accessExp, nil
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
