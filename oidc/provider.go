package oidc

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// Endpoint paths, relative to the issuer.
const (
	PathDiscovery = "/.well-known/openid-configuration"
	PathAuthorize = "/authorize"
	PathToken     = "/token"
	PathUserinfo  = "/userinfo"
	PathJWKS      = "/jwks"
	// PathRevoke is the token revocation endpoint (RFC 7009).
	PathRevoke = "/revoke"
	// PathIntrospect is the token introspection endpoint (RFC 7662).
	PathIntrospect = "/introspect"
)

// Default refresh token lifetimes, used when the Provider field is zero.
const (
	DefaultRefreshTokenIdleTTL     = 7 * 24 * time.Hour
	DefaultRefreshTokenAbsoluteTTL = 30 * 24 * time.Hour
)

// Storage is the narrow key-value store this package needs. A Get or Take of
// an absent key returns (nil, nil). Take is an atomic get-and-delete: of
// concurrent Takes of one key exactly one sees the value.
//
// Update is an atomic read-modify-write (the contract of store.Store's
// Update): fn gets the current value (nil when absent) and returns the new
// one, stored for ttl; a nil value with a nil error deletes the key; an
// error from fn writes nothing and is returned unchanged. Concurrent
// Updates of one key are serialised, none is lost; fn may run more than
// once, so it computes only from old, has no side effects and does not call
// the store.
type Storage interface {
	Put(ctx context.Context, key string, value []byte, ttl time.Duration) error
	Get(ctx context.Context, key string) ([]byte, error)
	Take(ctx context.Context, key string) ([]byte, error)
	Delete(ctx context.Context, key string) error
	Update(ctx context.Context, key string, ttl time.Duration, fn func(old []byte) ([]byte, error)) error
}

// Signer signs ID tokens and verifies tokens this provider signed
// (keys.Set and keys.Keyring are Signers).
type Signer interface {
	Sign(payload []byte) (string, error)
	// SignWithAlgorithm signs with the active key of alg ("" for the
	// default), with the JWS typ header typ: for a client registered with
	// another id_token_signed_response_alg.
	SignWithAlgorithm(payload []byte, alg, typ string) (string, error)
	Verify(token string) ([]byte, error)
	// Algorithm is the default algorithm (Sign's).
	Algorithm() string
	// Algorithms are every algorithm the signer signs with, the default
	// first: discovery's id_token_signing_alg_values_supported.
	Algorithms() []string
}

// Provider is the OpenID Provider: configuration plus the stores and keys it
// works with. Fields are set once before serving and not changed after.
type Provider struct {
	// Issuer is the issuer identifier exactly as configured; it is echoed
	// byte for byte in discovery and in every token.
	Issuer  string
	Clients *Registry
	Storage Storage
	Signer  Signer
	// ScopeClaims maps each supported scope (besides openid) to the claims
	// it releases. Identity claims not listed under a granted scope are
	// never sent.
	ScopeClaims map[string][]string
	// ExtraAuthorizeParams are authorize parameters kept in AuthRequest.Extra.
	ExtraAuthorizeParams []string

	CodeTTL        time.Duration
	AccessTokenTTL time.Duration
	IDTokenTTL     time.Duration

	// RefreshTokenIdleTTL is how long a refresh token stays usable when it is
	// not used; each use returns a new one with a fresh idle lifetime. Zero
	// means DefaultRefreshTokenIdleTTL.
	RefreshTokenIdleTTL time.Duration
	// RefreshTokenAbsoluteTTL bounds how long one login can be kept alive by
	// refreshing (the refresh token family), however often it is refreshed;
	// the access token of the last refresh still lives its AccessTokenTTL.
	// Zero means DefaultRefreshTokenAbsoluteTTL.
	RefreshTokenAbsoluteTTL time.Duration
	// RefreshReuseGrace is how long after its first use a refresh token may
	// be presented again (concurrent refreshes by one relying party): such
	// a reuse gets the same successor tokens as the first use, never new
	// ones. Any other reuse counts as theft and revokes the family (RFC
	// 9700 §4.14.2). Zero (the default) is strict rotation: every reuse
	// revokes. Keep it at a few seconds when set; see refreshSuccessor for
	// what is stored meanwhile.
	RefreshReuseGrace time.Duration

	// TokenExchangers enable the token exchange grant (RFC 8693, see
	// exchange.go): each turns a subject token of its subject_token_type
	// (the map key, a URI) into an identity. Empty means no token exchange.
	TokenExchangers map[string]TokenExchanger

	// AccountCheck, when set, is asked at every use of a token whose grant
	// names an Account (refresh, userinfo, introspection) whether the person
	// may still use that client; a non-nil error refuses the use. It makes
	// disabling a person take effect at once, wherever their tokens are.
	AccountCheck func(ctx context.Context, clientID, account string) *Error

	Now func() time.Time

	// OnClientAuthFailure, when set, is called each time client
	// authentication fails at the token, revocation or introspection
	// endpoint (an invalid_client answer: unknown client, wrong secret,
	// method not allowed, malformed Authorization header, no credentials),
	// with the client id the request claimed (as ClaimedClientID reads it;
	// empty when none could be read). It lets the embedder throttle secret
	// guessing per (client, address) only (RFC 6819 §5.1.4.2.3). It runs
	// before the answer is written and must return quickly; the body has
	// been read.
	OnClientAuthFailure func(clientID string, r *http.Request)
	// OnClientAuthSuccess, when set, is called each time a client
	// authenticates at those endpoints, with its id.
	OnClientAuthSuccess func(clientID string, r *http.Request)

	// OnTokenResponse, when set, is called once per token request whose
	// client authenticated, with the grant (authorization_code,
	// refresh_token, the token exchange URN, or "other") and the error code
	// of the answer ("" when tokens were issued): metrics.
	OnTokenResponse func(grant, errorCode string)

	// Logger receives the provider's log lines (code replays, refresh token
	// reuse, storage failures). Nil means slog.Default(). No line carries a
	// token, code or secret.
	Logger *slog.Logger
}

func (p *Provider) log() *slog.Logger {
	if p.Logger != nil {
		return p.Logger
	}
	return slog.Default()
}

// URL returns the absolute URL of an endpoint path, derived from the issuer
// (never from the request's Host header).
func (p *Provider) URL(path string) string {
	return strings.TrimSuffix(p.Issuer, "/") + path
}

func (p *Provider) refreshIdleTTL() time.Duration {
	return orDefault(p.RefreshTokenIdleTTL, DefaultRefreshTokenIdleTTL)
}

func (p *Provider) refreshAbsoluteTTL() time.Duration {
	return orDefault(p.RefreshTokenAbsoluteTTL, DefaultRefreshTokenAbsoluteTTL)
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

func (p *Provider) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// Identity is the authenticated person the bridge hands to the provider.
type Identity struct {
	Subject  string
	AuthTime time.Time
	// SessionID is the SSO session (sid claim), if any.
	SessionID string
	// Claims are every claim known about the person (name, picture, ...);
	// the provider releases only those the granted scopes allow.
	Claims map[string]any
	// Account is the caller's own id for the person (the directory's person
	// id): kept with every grant, never released, and handed to
	// Provider.AccountCheck whenever a token is used.
	Account string
}

// ReleasedClaims filters claims to those the scopes allow; empty values are
// omitted (a claim with no value is not sent at all).
func (p *Provider) ReleasedClaims(scopes []string, claims map[string]any) map[string]any {
	out := map[string]any{}
	for _, s := range scopes {
		for _, name := range p.ScopeClaims[s] {
			v, ok := claims[name]
			if !ok || isEmptyClaim(v) {
				continue
			}
			out[name] = v
		}
	}
	return out
}

func isEmptyClaim(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case []string:
		return len(x) == 0
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

// NewToken returns a fresh opaque token: 32 random bytes, base64url. Only its
// hash (HashToken) is ever stored.
func NewToken() string {
	var b [32]byte
	// Since Go 1.24 crypto/rand.Read never returns an error: if the OS
	// cannot supply randomness it crashes the program irrecoverably, so a
	// weak token can never be issued. There is nothing to handle here.
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// HashToken is the storage key form of an opaque token: SHA-256, hex.
// Tokens are high-entropy, so a fast unsalted hash is sufficient; a leaked
// store does not reveal usable tokens.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// checkAccount asks AccountCheck about a grant's account; grants without an
// account (none was given at sign-in) and providers without a check pass.
func (p *Provider) checkAccount(ctx context.Context, clientID, account string) *Error {
	if p.AccountCheck == nil || account == "" {
		return nil
	}
	return p.AccountCheck(ctx, clientID, account)
}
