package keys

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	_ "crypto/sha256" // thumbprints (kid) are SHA-256
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Algorithm is the one JWS algorithm this package signs and verifies with.
const algorithm = jose.RS256

// rsaBits is the size of generated keys; loaded keys may be larger, not smaller.
const rsaBits = 2048

// signingKey is one RSA key with what the set needs to know about it.
type signingKey struct {
	kid     string
	private *rsa.PrivateKey
	created time.Time
	file    string // "" for an ephemeral key
}

// Set is the provider's signing keys: all are published and verify; the
// newest one that is old enough signs (see Staged). A Set is safe for
// concurrent use; its keys do not change after it is made.
type Set struct {
	keys  []*signingKey // newest first
	byKID map[string]*signingKey
	jwks  []jose.JSONWebKey

	// publishBeforeUse: a key signs only once it has been published this
	// long (staged rotation); 0 means the newest key signs at once.
	publishBeforeUse time.Duration
	now              func() time.Time

	// signers holds one jose.Signer per key and token type ("JWT",
	// "logout+jwt"), built on first use and then kept: a signer is not
	// rebuilt per token.
	mu      sync.RWMutex
	signers map[string]jose.Signer
}

// Staged makes key rotation safe across replicas and relying parties' JWKS
// caches: a key signs only after it has been published for d. The newest
// key at least d old signs; if none is, the oldest key does (so a first
// start, with one new key, signs at once). now is the clock (nil: time.Now).
// It returns s for chaining.
func (s *Set) Staged(d time.Duration, now func() time.Time) *Set {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.publishBeforeUse = d
	if now != nil {
		s.now = now
	}
	return s
}

// active is the key that signs now.
func (s *Set) active() *signingKey {
	s.mu.RLock()
	d, now := s.publishBeforeUse, s.now
	s.mu.RUnlock()
	if d <= 0 {
		return s.keys[0]
	}
	t := now()
	for _, k := range s.keys {
		if !k.created.Add(d).After(t) {
			return k
		}
	}
	return s.keys[len(s.keys)-1]
}

// NewEphemeral returns a Set with one new RSA key that lives only in memory:
// for tests and for development without a key directory. Tokens it signs do
// not verify after the process ends.
func NewEphemeral() (*Set, error) {
	k, err := generate(time.Now())
	if err != nil {
		return nil, err
	}
	return newSet([]*signingKey{k})
}

// generate makes a new RSA key created at the given time.
func generate(created time.Time) (*signingKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, rsaBits)
	if err != nil {
		return nil, fmt.Errorf("keys: generate RSA-%d key: %w", rsaBits, err)
	}
	return newSigningKey(priv, created, "")
}

func newSigningKey(priv *rsa.PrivateKey, created time.Time, file string) (*signingKey, error) {
	kid, err := thumbprint(&priv.PublicKey)
	if err != nil {
		return nil, err
	}
	return &signingKey{kid: kid, private: priv, created: created.UTC(), file: file}, nil
}

// thumbprint is the RFC 7638 JWK thumbprint of pub: SHA-256, base64url
// without padding.
func thumbprint(pub *rsa.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	sum, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("keys: thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// newSet orders keys newest first (ties broken by file name, then kid, so
// that every replica picks the same signer) and prepares the JWKS and the
// JWT signer.
func newSet(keys []*signingKey) (*Set, error) {
	if len(keys) == 0 {
		return nil, errors.New("keys: no signing key")
	}
	keys = slices.Clone(keys)
	slices.SortFunc(keys, func(a, b *signingKey) int {
		if c := b.created.Compare(a.created); c != 0 {
			return c
		}
		if a.file != b.file {
			if a.file > b.file {
				return -1
			}
			return 1
		}
		if a.kid > b.kid {
			return -1
		}
		if a.kid < b.kid {
			return 1
		}
		return 0
	})
	s := &Set{
		keys:    keys,
		byKID:   make(map[string]*signingKey, len(keys)),
		signers: make(map[string]jose.Signer),
		now:     time.Now,
	}
	for _, k := range keys {
		if other, dup := s.byKID[k.kid]; dup {
			return nil, fmt.Errorf("keys: %s and %s hold the same key (kid %s): remove one of them", other.file, k.file, k.kid)
		}
		s.byKID[k.kid] = k
		s.jwks = append(s.jwks, jose.JSONWebKey{
			Key:       &k.private.PublicKey,
			KeyID:     k.kid,
			Algorithm: string(algorithm),
			Use:       "sig",
		})
	}
	if _, err := s.signer("JWT"); err != nil {
		return nil, err
	}
	return s, nil
}

// KeyID returns the kid of the key that signs now.
func (s *Set) KeyID() string { return s.active().kid }

// Algorithm returns the JWS algorithm of every signature: "RS256".
func (s *Set) Algorithm() string { return string(algorithm) }

// Sign returns payload as a compact JWS signed with the active key, with the
// protected header {"alg":"RS256","kid":KeyID(),"typ":"JWT"}. The payload is
// signed as given: the caller marshals the claims.
func (s *Set) Sign(payload []byte) (string, error) {
	return s.SignWithType(payload, "JWT")
}

// SignWithType is Sign with another typ header, such as "logout+jwt" for
// back-channel logout tokens (OpenID Connect Back-Channel Logout 1.0 §2.4).
func (s *Set) SignWithType(payload []byte, typ string) (string, error) {
	active := s.active()
	signer, err := s.signerFor(active, typ)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("keys: sign with key %s: %w", active.kid, err)
	}
	token, err := jws.CompactSerialize()
	if err != nil {
		return "", fmt.Errorf("keys: serialize token: %w", err)
	}
	return token, nil
}

// signer returns the active key's signer for typ.
func (s *Set) signer(typ string) (jose.Signer, error) { return s.signerFor(s.active(), typ) }

// signerFor returns key's signer for typ, building it the first time.
func (s *Set) signerFor(active *signingKey, typ string) (jose.Signer, error) {
	if typ == "" {
		return nil, errors.New("keys: token type (typ header) is empty")
	}
	id := active.kid + "|" + typ
	s.mu.RLock()
	signer, ok := s.signers[id]
	s.mu.RUnlock()
	if ok {
		return signer, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if signer, ok := s.signers[id]; ok {
		return signer, nil
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: algorithm, Key: jose.JSONWebKey{Key: active.private, KeyID: active.kid}},
		(&jose.SignerOptions{}).WithType(jose.ContentType(typ)),
	)
	if err != nil {
		return nil, fmt.Errorf("keys: signer for key %s: %w", active.kid, err)
	}
	s.signers[id] = signer
	return signer, nil
}

// JWKS returns the public halves of every key, the signing key first, each
// with its kid, "use":"sig" and "alg":"RS256". It never contains private
// key material. The returned set is the caller's to modify.
func (s *Set) JWKS() jose.JSONWebKeySet {
	keys := make([]jose.JSONWebKey, len(s.jwks))
	for i, k := range s.jwks {
		pub := *k.Key.(*rsa.PublicKey)
		k.Key = &pub
		keys[i] = k
	}
	return jose.JSONWebKeySet{Keys: keys}
}

// Verify checks token, a compact JWS, against the set's public keys and
// returns its payload. It verifies that:
//   - the token is in compact serialization with exactly one signature;
//   - its alg is RS256 (so "none", HS256 keyed with a public key, and every
//     other algorithm are refused before any key is tried);
//   - if it names a kid, that kid is one of ours, and the signature verifies
//     with that key; without a kid, with one of our keys.
//
// It does not look inside the payload: expiry, issuer and audience are the
// caller's to check.
func (s *Set) Verify(token string) ([]byte, error) {
	if !canonicalCompactJWS(token) {
		// go-jose decodes base64url leniently (stray CR/LF, non-zero unused
		// bits in the last character): several spellings of one token
		// would verify. Only the one spelling we produce is accepted.
		return nil, errors.New("keys: not a canonical compact JWS (three unpadded base64url parts)")
	}
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{algorithm})
	if err != nil {
		return nil, fmt.Errorf("keys: malformed or not RS256: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, fmt.Errorf("keys: token has %d signatures, want 1", len(jws.Signatures))
	}
	if kid := jws.Signatures[0].Protected.KeyID; kid != "" {
		k, ok := s.byKID[kid]
		if !ok {
			return nil, fmt.Errorf("keys: token signed with unknown key %q", kid)
		}
		payload, err := jws.Verify(&k.private.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("keys: signature does not verify with key %s: %w", kid, err)
		}
		return payload, nil
	}
	for _, k := range s.keys {
		if payload, err := jws.Verify(&k.private.PublicKey); err == nil {
			return payload, nil
		}
	}
	return nil, errors.New("keys: signature does not verify with any of our keys")
}

// canonicalCompactJWS reports whether token is three non-empty base64url
// parts (RFC 7515 §7.1), each in its one canonical, unpadded encoding.
func canonicalCompactJWS(token string) bool {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return false
	}
	for _, p := range parts {
		if p == "" {
			return false
		}
		b, err := base64.RawURLEncoding.Strict().DecodeString(p)
		if err != nil || base64.RawURLEncoding.EncodeToString(b) != p {
			return false
		}
	}
	return true
}
