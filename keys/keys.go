package keys

import (
	"crypto"
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

// signingKey is one private key with what a set needs to know about it.
// Nothing changes it once it is in a set.
type signingKey struct {
	kid     string
	alg     jose.SignatureAlgorithm
	private crypto.Signer // *rsa.PrivateKey, *ecdsa.PrivateKey or ed25519.PrivateKey; nil in a plan
	public  crypto.PublicKey
	created time.Time
	file    string // the key file, for a key of a key directory

	// scheduled: activates and retires were given by the key's source (a
	// shared store, or a directory read for a Keyring). Otherwise a Set
	// derives them from the creation times (see Staged).
	scheduled bool
	activates time.Time // signs from then on, until retires
	retires   time.Time // zero: no end is scheduled
}

// window is when a key signs: from activates until retires (zero: open).
type window struct{ activates, retires time.Time }

// Set is the provider's signing keys: all are published and verify; for
// each algorithm one key signs at a time, chosen by its schedule (see
// Staged, and Keyring). A Set is safe for concurrent use; its keys do not
// change after it is made.
type Set struct {
	keys  []*signingKey // newest first
	byKID map[string]*signingKey
	jwks  []jose.JSONWebKey

	// algs are the algorithms the set signs with, the default first;
	// verifyAlgs those of every key it holds (a key of an algorithm no
	// longer configured still verifies until it is removed).
	algs       []jose.SignatureAlgorithm
	verifyAlgs []jose.SignatureAlgorithm

	mu sync.RWMutex
	// publishBeforeUse: a key without a schedule of its own signs only once
	// it has been published this long; 0 means the newest key signs at once.
	publishBeforeUse time.Duration
	now              func() time.Time
	windows          map[string]window // by kid; replaced whole, never changed

	// signers holds one signer per key and token type ("JWT",
	// "logout+jwt"), built on first use and then kept: a signer is not
	// rebuilt per token.
	signers map[string]*jwsSigner
}

// setConfig says how to build a set.
type setConfig struct {
	// algs are the algorithms to sign with, the default first; nil: those
	// of the keys, in the order of SupportedAlgorithms.
	algs []jose.SignatureAlgorithm
	now  func() time.Time // nil: time.Now
	prev *Set             // signers of keys it shares with the new set are kept
}

// Staged makes key rotation safe across replicas and relying parties' JWKS
// caches: a key signs only after it has been published for d. The newest
// key at least d old signs; if none is, the oldest key does (so a first
// start, with one new key, signs at once). now is the clock (nil: time.Now).
// It returns s for chaining. It applies to keys without a schedule of their
// own (those of LoadOrCreate and NewEphemeral); a Keyring schedules its keys
// itself.
func (s *Set) Staged(d time.Duration, now func() time.Time) *Set {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.publishBeforeUse = d
	if now != nil {
		s.now = now
	}
	s.windows = schedule(s.keys, d)
	return s
}

// schedule returns every key's window: its own for a scheduled key; for the
// others, derived per algorithm from the creation times: the oldest key
// signs from its creation, each newer one from d after its creation, and
// each key until the next one starts. With d <= 0 (no staging) the newest
// key signs at once, whatever its creation time says.
func schedule(keys []*signingKey, d time.Duration) map[string]window {
	keys = slices.Clone(keys)
	slices.SortFunc(keys, newestFirst)
	out := make(map[string]window, len(keys))
	byAlg := make(map[jose.SignatureAlgorithm][]*signingKey)
	for _, k := range keys {
		if k.scheduled {
			out[k.kid] = window{k.activates, k.retires}
			continue
		}
		byAlg[k.alg] = append(byAlg[k.alg], k)
	}
	for _, newestFirst := range byAlg {
		if d <= 0 {
			// The newest signs from the beginning of time; the others
			// retired then.
			for i, k := range newestFirst {
				if i == 0 {
					out[k.kid] = window{}
				} else {
					out[k.kid] = window{retires: time.Time{}.Add(time.Nanosecond)}
				}
			}
			continue
		}
		for i := len(newestFirst) - 1; i >= 0; i-- {
			k := newestFirst[i]
			w := window{activates: k.created}
			if i < len(newestFirst)-1 {
				w.activates = k.created.Add(d)
			}
			out[k.kid] = w
		}
		for i := len(newestFirst) - 1; i > 0; i-- {
			older, newer := newestFirst[i], newestFirst[i-1]
			w := out[older.kid]
			w.retires = out[newer.kid].activates
			out[older.kid] = w
		}
	}
	return out
}

// activeAt is the key of alg that signs at t: of the keys not retired at t,
// the one that started last (on a tie, the first in keys' order); if none
// has started yet, the one that starts first; nil if every key of alg is
// retired.
func activeAt(keys []*signingKey, windows map[string]window, alg jose.SignatureAlgorithm, t time.Time) *signingKey {
	var started, pending *signingKey
	for _, k := range keys {
		if k.alg != alg {
			continue
		}
		w := windows[k.kid]
		if !w.retires.IsZero() && !t.Before(w.retires) {
			continue
		}
		if !w.activates.After(t) {
			if started == nil || w.activates.After(windows[started.kid].activates) {
				started = k
			}
		} else if pending == nil || w.activates.Before(windows[pending.kid].activates) {
			pending = k
		}
	}
	if started != nil {
		return started
	}
	return pending
}

// active is the key of alg that signs now.
func (s *Set) active(alg jose.SignatureAlgorithm) *signingKey {
	s.mu.RLock()
	windows, now := s.windows, s.now
	s.mu.RUnlock()
	return activeAt(s.keys, windows, alg, now())
}

// NewEphemeral returns a Set with one new RSA key that lives only in memory:
// for tests and for development without a key directory. Tokens it signs do
// not verify after the process ends.
func NewEphemeral() (*Set, error) {
	k, err := generate(jose.RS256, time.Now())
	if err != nil {
		return nil, err
	}
	return newSet([]*signingKey{k})
}

// NewEphemeralAlgorithm is NewEphemeral with a key of alg: RS256, ES256 or
// EdDSA (dev mode and load tests compare them).
func NewEphemeralAlgorithm(alg string) (*Set, error) {
	a, err := parseAlgorithm(alg)
	if err != nil {
		return nil, err
	}
	k, err := generate(a, time.Now())
	if err != nil {
		return nil, err
	}
	return newSet([]*signingKey{k})
}

// generate makes a new key for alg created at the given time.
func generate(alg jose.SignatureAlgorithm, created time.Time) (*signingKey, error) {
	priv, err := generateKey(alg)
	if err != nil {
		return nil, err
	}
	return newSigningKey(priv, created, "")
}

// newSigningKey checks priv and makes it a key created at the given time.
func newSigningKey(priv crypto.Signer, created time.Time, file string) (*signingKey, error) {
	_, alg, err := checkPrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("keys: %w", err)
	}
	pub := priv.Public()
	kid, err := thumbprint(pub)
	if err != nil {
		return nil, err
	}
	return &signingKey{kid: kid, alg: alg, private: priv, public: pub, created: created.UTC(), file: file}, nil
}

// newestFirst orders keys newest first, ties broken by file name, then kid,
// so that every replica orders the same keys the same way.
func newestFirst(a, b *signingKey) int {
	if c := b.created.Compare(a.created); c != 0 {
		return c
	}
	if c := strings.Compare(b.file, a.file); c != 0 {
		return c
	}
	return strings.Compare(b.kid, a.kid)
}

// newSet is buildSet with the algorithms of the keys and the real clock.
func newSet(keys []*signingKey) (*Set, error) { return buildSet(keys, setConfig{}) }

// buildSet orders keys, prepares the JWKS and the schedule, and builds the
// signer of each algorithm's active key, so that a key that cannot sign is
// found now rather than at the first login.
func buildSet(keys []*signingKey, cfg setConfig) (*Set, error) {
	if len(keys) == 0 {
		return nil, errors.New("keys: no signing key")
	}
	keys = slices.Clone(keys)
	slices.SortFunc(keys, newestFirst)
	s := &Set{
		keys:    keys,
		byKID:   make(map[string]*signingKey, len(keys)),
		signers: make(map[string]*jwsSigner),
		now:     cfg.now,
	}
	if s.now == nil {
		s.now = time.Now
	}
	for _, k := range keys {
		if other, dup := s.byKID[k.kid]; dup {
			return nil, fmt.Errorf("keys: %s and %s hold the same key (kid %s): remove one of them", other.file, k.file, k.kid)
		}
		s.byKID[k.kid] = k
		s.jwks = append(s.jwks, jose.JSONWebKey{Key: k.public, KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"})
	}
	for _, a := range supported {
		if slices.ContainsFunc(keys, func(k *signingKey) bool { return k.alg == a }) {
			s.verifyAlgs = append(s.verifyAlgs, a)
		}
	}
	s.algs = cfg.algs
	if s.algs == nil {
		s.algs = s.verifyAlgs
	}
	s.algs = slices.Clone(s.algs)
	s.windows = schedule(keys, 0)
	if cfg.prev != nil {
		cfg.prev.mu.RLock()
		for id, signer := range cfg.prev.signers {
			// A kid is the thumbprint of the public key: the same kid is
			// the same key pair.
			if kid, _, _ := strings.Cut(id, "|"); s.byKID[kid] != nil {
				s.signers[id] = signer
			}
		}
		cfg.prev.mu.RUnlock()
	}
	for _, a := range s.algs {
		k := s.active(a)
		if k == nil {
			return nil, fmt.Errorf("keys: no key in service for algorithm %s: add one (keys rotate) or remove %s from the signing algorithms", a, a)
		}
		if _, err := s.signerFor(k, "JWT"); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// KeyID returns the kid of the key that signs now with the default
// algorithm ("" if it has none in service, which a Keyring prevents).
func (s *Set) KeyID() string {
	if k := s.active(s.algs[0]); k != nil {
		return k.kid
	}
	return ""
}

// Algorithm returns the default JWS algorithm: the one Sign uses ("RS256"
// unless configured otherwise).
func (s *Set) Algorithm() string { return string(s.algs[0]) }

// Algorithms returns every algorithm the set signs with, the default first:
// what discovery publishes as id_token_signing_alg_values_supported. The
// slice is the caller's.
func (s *Set) Algorithms() []string {
	out := make([]string, len(s.algs))
	for i, a := range s.algs {
		out[i] = string(a)
	}
	return out
}

// Sign returns payload as a compact JWS signed with the default algorithm's
// active key, with the protected header {"alg":Algorithm(),"kid":KeyID(),
// "typ":"JWT"}. The payload is signed as given: the caller marshals the
// claims.
func (s *Set) Sign(payload []byte) (string, error) {
	return s.SignWithAlgorithm(payload, "", "JWT")
}

// SignWithType is Sign with another typ header, such as "logout+jwt" for
// back-channel logout tokens (OpenID Connect Back-Channel Logout 1.0 §2.4).
func (s *Set) SignWithType(payload []byte, typ string) (string, error) {
	return s.SignWithAlgorithm(payload, "", typ)
}

// SignWithAlgorithm signs payload with the active key of alg ("" for the
// default), for a client registered with another id_token_signed_response_alg
// (OpenID Connect Dynamic Client Registration 1.0 §2). alg must be one of
// Algorithms(); typ is the typ header.
func (s *Set) SignWithAlgorithm(payload []byte, alg, typ string) (string, error) {
	a := s.algs[0]
	if alg != "" {
		a = jose.SignatureAlgorithm(alg)
		if !slices.Contains(s.algs, a) {
			return "", fmt.Errorf("keys: no signing key for algorithm %q: this provider signs with %s", alg, strings.Join(s.Algorithms(), ", "))
		}
	}
	active := s.active(a)
	if active == nil {
		return "", fmt.Errorf("keys: no key of algorithm %s is in service: rotate to add one", a)
	}
	signer, err := s.signerFor(active, typ)
	if err != nil {
		return "", err
	}
	token, err := signer.sign(payload)
	if err != nil {
		return "", fmt.Errorf("keys: sign with key %s: %w", active.kid, err)
	}
	return token, nil
}

// signerFor returns key's signer for typ, building it the first time.
func (s *Set) signerFor(key *signingKey, typ string) (*jwsSigner, error) {
	if typ == "" {
		return nil, errors.New("keys: token type (typ header) is empty")
	}
	id := key.kid + "|" + typ
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
	signer, err := newJWSSigner(key, typ)
	if err != nil {
		return nil, fmt.Errorf("keys: signer for key %s: %w", key.kid, err)
	}
	s.signers[id] = signer
	return signer, nil
}

// JWKS returns the public halves of every key, newest first, each with its
// kid (RFC 7638 thumbprint), "use":"sig" and its "alg". It never contains
// private key material. The returned set is the caller's to modify.
func (s *Set) JWKS() jose.JSONWebKeySet {
	keys := make([]jose.JSONWebKey, len(s.jwks))
	for i, k := range s.jwks {
		k.Key = copyPublic(k.Key)
		keys[i] = k
	}
	return jose.JSONWebKeySet{Keys: keys}
}

// Verify checks token, a compact JWS, against the set's public keys and
// returns its payload. It verifies that:
//   - the token is in compact serialization, each part in its one canonical
//     base64url spelling, with exactly one signature;
//   - its alg is the algorithm of one of our keys (so "none", HS256 keyed
//     with a public key, and every algorithm we hold no key for are refused
//     before any key is tried);
//   - if it names a kid, that kid is one of ours, its alg is that key's,
//     and the signature verifies with that key; without a kid, with one of
//     our keys of that alg.
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
	jws, err := jose.ParseSignedCompact(token, s.verifyAlgs)
	if err != nil {
		return nil, fmt.Errorf("keys: malformed, or not signed with an algorithm we hold a key for (%s): %w", algNames(s.verifyAlgs), err)
	}
	if len(jws.Signatures) != 1 {
		return nil, fmt.Errorf("keys: token has %d signatures, want 1", len(jws.Signatures))
	}
	alg := jose.SignatureAlgorithm(jws.Signatures[0].Protected.Algorithm)
	if kid := jws.Signatures[0].Protected.KeyID; kid != "" {
		k, ok := s.byKID[kid]
		if !ok {
			return nil, fmt.Errorf("keys: token signed with unknown key %q", kid)
		}
		if k.alg != alg {
			// RFC 8725 §3.1: a key is used with its one algorithm only.
			return nil, fmt.Errorf("keys: token says alg %s, but key %s is an %s key", alg, kid, k.alg)
		}
		payload, err := jws.Verify(k.public)
		if err != nil {
			return nil, fmt.Errorf("keys: signature does not verify with key %s: %w", kid, err)
		}
		return payload, nil
	}
	for _, k := range s.keys {
		if k.alg != alg {
			continue
		}
		if payload, err := jws.Verify(k.public); err == nil {
			return payload, nil
		}
	}
	return nil, errors.New("keys: signature does not verify with any of our keys")
}

func algNames(algs []jose.SignatureAlgorithm) string {
	names := make([]string, len(algs))
	for i, a := range algs {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
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
