package keys

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/wechat-oidc/wechat-oidc/store"
)

// EncryptionKeySize is the size of keys.encryption_key: AES-256.
const EncryptionKeySize = 32

// encryptionKeyHelp says how to make an encryption key.
const encryptionKeyHelp = "generate one with `openssl rand -base64 32` and give the same value to every replica"

// ParseEncryptionKey decodes keys.encryption_key: 32 random bytes in
// standard base64, as `openssl rand -base64 32` prints them (surrounding
// white space, such as the newline of a file, is ignored). Errors never
// quote the value.
func ParseEncryptionKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, errors.New("keys: keys.encryption_key is empty: " + encryptionKeyHelp)
	}
	kek, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		// The error names a position only, never the value.
		return nil, fmt.Errorf("keys: keys.encryption_key is not standard base64 (%w): %s", err, encryptionKeyHelp)
	}
	if len(kek) != EncryptionKeySize {
		return nil, fmt.Errorf("keys: keys.encryption_key decodes to %d bytes, want %d: %s", len(kek), EncryptionKeySize, encryptionKeyHelp)
	}
	if subtle.ConstantTimeCompare(kek, make([]byte, EncryptionKeySize)) == 1 {
		return nil, errors.New("keys: keys.encryption_key is all zero bytes, not random: " + encryptionKeyHelp)
	}
	return kek, nil
}

// The shared store holds every signing key in one document, so that one
// compare-and-swap (store.Update) changes the keys for every replica at
// once and exactly one of several racing replicas wins.
const (
	DefaultStorePrefix = "keys:"
	storeDocName       = "signing-keys"
	storeDocVersion    = 1

	// The store wants an expiry on every entry. The document is kept alive
	// by every Keyring's reload (rewritten when older than storeTouchAfter),
	// so it expires only if no replica ran for storeDocTTL; by then every
	// token its keys signed has long expired.
	storeDocTTL     = 90 * 24 * time.Hour
	storeTouchAfter = 7 * 24 * time.Hour
)

// storeDoc is the document in the store. Private keys are sealed with
// AES-256-GCM under the encryption key; the rest is metadata, bound to its
// key by the seal's additional data (kid, alg) or harmless to change
// (dates: someone who can write the store can delete keys anyway).
type storeDoc struct {
	Version int `json:"version"`
	// KEK identifies the encryption key that sealed every key (a MAC of a
	// constant under it, not the key): a replica given another encryption
	// key says so instead of reporting every key as damaged.
	KEK     string        `json:"kek"`
	Written time.Time     `json:"written"`
	Keys    []storeRecord `json:"keys"`
}

type storeRecord struct {
	KID       string    `json:"kid"`
	Alg       string    `json:"alg"`
	Created   time.Time `json:"created"`
	Activates time.Time `json:"activates"`
	Retires   time.Time `json:"retires,omitzero"`
	// Sealed is nonce || AES-256-GCM(PKCS#8 DER), additional data sealAAD.
	Sealed []byte `json:"sealed"`
}

// StoreSource is the shared store (Redis, for several replicas) as a
// Keyring's source. Private keys are encrypted at rest under the encryption
// key; a replica without it cannot read them, and one with another key
// refuses to read or change them. Keys carry their schedule explicitly.
type StoreSource struct {
	st    store.Store
	aead  cipher.AEAD
	kekID string
	key   string

	mu      sync.Mutex
	written time.Time // of the document last read
}

var _ Source = (*StoreSource)(nil)

// NewStoreSource returns the keys under prefix (DefaultStorePrefix when
// empty) in st as a Source, sealed with kek (from ParseEncryptionKey). It
// refuses to work without a kek: private keys are never stored in clear.
func NewStoreSource(st store.Store, kek []byte, prefix string) (*StoreSource, error) {
	if st == nil {
		return nil, errors.New("keys: no store given for the signing keys")
	}
	if len(kek) == 0 {
		return nil, errors.New("keys: keys.encryption_key is not set: signing keys kept in the shared store are encrypted with it; " + encryptionKeyHelp)
	}
	if len(kek) != EncryptionKeySize {
		return nil, fmt.Errorf("keys: keys.encryption_key is %d bytes, want %d: %s", len(kek), EncryptionKeySize, encryptionKeyHelp)
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("keys: encryption key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("keys: encryption key: %w", err)
	}
	if prefix == "" {
		prefix = DefaultStorePrefix
	}
	mac := hmac.New(sha256.New, kek)
	mac.Write([]byte("wechat-oidc keys.encryption_key id"))
	return &StoreSource{
		st:    st,
		aead:  aead,
		kekID: base64.RawURLEncoding.EncodeToString(mac.Sum(nil)[:9]),
		key:   prefix + storeDocName,
	}, nil
}

// String implements Source.
func (s *StoreSource) String() string { return "shared store (" + s.key + ")" }

func (s *StoreSource) managed() bool { return true }

func (s *StoreSource) writable(context.Context) error { return nil }

// sealAAD binds a sealed key to its kid and algorithm: a sealed key moved
// to another record, or relabelled, does not open.
func sealAAD(kid, alg string) []byte {
	return []byte("wechat-oidc signing key v1\x00" + kid + "\x00" + alg)
}

func (s *StoreSource) seal(k *signingKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k.private)
	if err != nil {
		return nil, fmt.Errorf("keys: encode key %s: %w", k.kid, err)
	}
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(der)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("keys: seal key %s: %w", k.kid, err)
	}
	return s.aead.Seal(nonce, nonce, der, sealAAD(k.kid, string(k.alg))), nil
}

// open unseals r and checks that the key is what the record says.
func (s *StoreSource) open(r storeRecord) (*signingKey, error) {
	n := s.aead.NonceSize()
	if len(r.Sealed) < n+s.aead.Overhead() {
		return nil, fmt.Errorf("keys: signing key %s in the shared store is truncated: restore the store from a backup or delete the record", r.KID)
	}
	der, err := s.aead.Open(nil, r.Sealed[:n], r.Sealed[n:], sealAAD(r.KID, r.Alg))
	if err != nil {
		return nil, fmt.Errorf("keys: signing key %s in the shared store fails its integrity check (it was changed, damaged or moved from another record): nothing was changed; restore the store from a backup or delete the record", r.KID)
	}
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("keys: signing key %s in the shared store: %w", r.KID, err)
	}
	signer, alg, err := checkPrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("keys: signing key %s in the shared store: %w", r.KID, err)
	}
	k, err := newSigningKey(signer, r.Created, "")
	if err != nil {
		return nil, err
	}
	if k.kid != r.KID || string(alg) != r.Alg {
		return nil, fmt.Errorf("keys: signing key %s in the shared store is a %s key with kid %s: the record is inconsistent; delete it", r.KID, alg, k.kid)
	}
	k.scheduled, k.activates, k.retires = true, r.Activates.UTC(), r.Retires.UTC()
	if r.Retires.IsZero() {
		k.retires = time.Time{}
	}
	return k, nil
}

// decode parses the document and checks that this replica's encryption key
// sealed it. raw nil (absent) is an empty document.
func (s *StoreSource) decode(raw []byte) (*storeDoc, error) {
	if raw == nil {
		return &storeDoc{Version: storeDocVersion, KEK: s.kekID}, nil
	}
	doc := &storeDoc{}
	if err := json.Unmarshal(raw, doc); err != nil {
		return nil, fmt.Errorf("keys: the signing keys in the shared store (%s) are not readable JSON (%w): restore the store from a backup, or delete the entry to start with new keys", s.key, err)
	}
	if doc.Version != storeDocVersion {
		return nil, fmt.Errorf("keys: the signing keys in the shared store (%s) have format version %d, this version reads %d: run the same version on every replica", s.key, doc.Version, storeDocVersion)
	}
	if doc.KEK != s.kekID {
		return nil, fmt.Errorf("keys: the signing keys in the shared store were encrypted with another keys.encryption_key (id %s; this replica's is %s): give every replica the same key (after `wechat-oidc keys rekey`, the new one). Nothing was changed", doc.KEK, s.kekID)
	}
	for _, r := range doc.Keys {
		if _, err := parseAlgorithm(r.Alg); err != nil {
			return nil, fmt.Errorf("keys: signing key %s in the shared store: %w (a newer version wrote it: run the same version on every replica)", r.KID, err)
		}
	}
	return doc, nil
}

// load reads and unseals every key.
func (s *StoreSource) load(ctx context.Context, _ *policy) ([]*signingKey, error) {
	raw, err := s.st.Get(ctx, s.key)
	if errors.Is(err, store.ErrNotFound) {
		raw, err = nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("keys: read signing keys from the shared store: %w", err)
	}
	doc, err := s.decode(raw)
	if err != nil {
		return nil, err
	}
	keys := make([]*signingKey, 0, len(doc.Keys))
	for _, r := range doc.Keys {
		k, err := s.open(r)
		if err != nil {
			return nil, err
		}
		keys = append(keys, k)
	}
	s.mu.Lock()
	s.written = doc.Written
	s.mu.Unlock()
	return keys, nil
}

// errNoChange makes store.Update write nothing.
var errNoChange = errors.New("keys: no change")

// metadata is a record's key without the private key: what a plan reads.
func metadata(r storeRecord) *signingKey {
	k := &signingKey{kid: r.KID, alg: jose.SignatureAlgorithm(r.Alg), created: r.Created, scheduled: true, activates: r.Activates}
	if !r.Retires.IsZero() {
		k.retires = r.Retires
	}
	return k
}

// change applies decide's changes to the document in one store.Update: of
// replicas changing it at once, each decides on what the previous one
// wrote. Records are changed only as decide says; any other is kept as it
// is.
func (s *StoreSource) change(ctx context.Context, p *policy, decide func([]*signingKey) changes) (changes, error) {
	var applied changes
	err := s.st.Update(ctx, s.key, storeDocTTL, func(old []byte) ([]byte, error) {
		applied = changes{}
		doc, err := s.decode(old)
		if err != nil {
			return nil, err
		}
		cur := make([]*signingKey, len(doc.Keys))
		for i, r := range doc.Keys {
			cur[i] = metadata(r)
		}
		ch := decide(cur)
		if ch.empty() {
			return nil, errNoChange
		}
		kept := doc.Keys[:0:0]
		for _, r := range doc.Keys {
			if containsKID(ch.remove, r.KID) {
				continue
			}
			if t, ok := ch.retire[r.KID]; ok {
				r.Retires = t.UTC()
			}
			kept = append(kept, r)
		}
		for _, k := range ch.add {
			sealed, err := s.seal(k)
			if err != nil {
				return nil, err
			}
			kept = append(kept, storeRecord{
				KID: k.kid, Alg: string(k.alg), Created: k.created.UTC(),
				Activates: k.activates.UTC(), Retires: k.retires.UTC(), Sealed: sealed,
			})
		}
		doc.Keys, doc.Written = kept, p.now().UTC()
		applied = ch
		return json.Marshal(doc)
	})
	if errors.Is(err, errNoChange) {
		return changes{}, nil
	}
	if err != nil {
		return changes{}, fmt.Errorf("keys: write signing keys to the shared store: %w", err)
	}
	return applied, nil
}

func containsKID(keys []*signingKey, kid string) bool {
	for _, k := range keys {
		if k.kid == kid {
			return true
		}
	}
	return false
}

// keepAlive rewrites the document when it was last written storeTouchAfter
// ago, renewing its expiry in the store.
func (s *StoreSource) keepAlive(ctx context.Context, p *policy) error {
	s.mu.Lock()
	written := s.written
	s.mu.Unlock()
	now := p.now()
	if written.IsZero() || now.Sub(written) < storeTouchAfter {
		return nil
	}
	err := s.st.Update(ctx, s.key, storeDocTTL, func(old []byte) ([]byte, error) {
		if old == nil {
			return nil, errNoChange // gone: the next reload starts afresh
		}
		doc, err := s.decode(old)
		if err != nil {
			return nil, err
		}
		if now.Sub(doc.Written) < storeTouchAfter {
			return nil, errNoChange // another replica did it
		}
		doc.Written = now.UTC()
		return json.Marshal(doc)
	})
	if err != nil && !errors.Is(err, errNoChange) {
		return fmt.Errorf("keys: renew the signing keys in the shared store: %w", err)
	}
	s.mu.Lock()
	s.written = now
	s.mu.Unlock()
	return nil
}

// ErrAlreadyRekeyed is returned by Rekey when the shared store's keys are
// already sealed under the new encryption key.
var ErrAlreadyRekeyed = errors.New("keys: the signing keys in the shared store are already sealed with the new keys.encryption_key: nothing to do")

// Rekey seals every signing key in the shared store again, from the
// encryption key old to new, in one compare-and-swap: replicas either read
// every key under old or every key under new, never a mix. Keys, kids and
// schedules are unchanged, so nothing a relying party sees changes. It
// returns how many keys it sealed again. Replicas still given old fail to
// reload afterwards and keep signing with the keys they hold until they
// are restarted with new (docs/operations.md).
func Rekey(ctx context.Context, st store.Store, prefix string, old, new []byte) (int, error) {
	from, err := NewStoreSource(st, old, prefix)
	if err != nil {
		return 0, fmt.Errorf("the old key: %w", err)
	}
	to, err := NewStoreSource(st, new, prefix)
	if err != nil {
		return 0, err
	}
	if from.kekID == to.kekID {
		return 0, errors.New("keys: the old and the new keys.encryption_key are the same: give the new one in the configuration and the old one in the environment variable")
	}
	n := 0
	err = st.Update(ctx, from.key, storeDocTTL, func(raw []byte) ([]byte, error) {
		n = 0
		if raw == nil {
			return nil, fmt.Errorf("keys: no signing keys in the shared store (%s) to seal again", from.key)
		}
		var peek storeDoc
		if err := json.Unmarshal(raw, &peek); err == nil && peek.KEK == to.kekID {
			return nil, ErrAlreadyRekeyed
		}
		doc, err := from.decode(raw)
		if err != nil {
			return nil, fmt.Errorf("%w (is the old key the one the keys were sealed with?)", err)
		}
		for i, r := range doc.Keys {
			k, err := from.open(r)
			if err != nil {
				return nil, err
			}
			sealed, err := to.seal(k)
			if err != nil {
				return nil, err
			}
			doc.Keys[i].Sealed = sealed
			n++
		}
		doc.KEK, doc.Written = to.kekID, time.Now().UTC()
		return json.Marshal(doc)
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
