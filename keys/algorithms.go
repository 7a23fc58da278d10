package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// The JWS algorithms this package signs with (RFC 7518 §3.1; EdDSA with
// Ed25519 is RFC 8037 §3.1, the identifier relying parties know, although
// RFC 9864 now prefers the fully specified "Ed25519"). RS256 is the default:
// every OpenID Connect relying party must accept it (OpenID Connect Core 1.0
// §15.1).
const (
	RS256 = string(jose.RS256)
	ES256 = string(jose.ES256)
	EdDSA = string(jose.EdDSA)
)

// supported lists the algorithms in their canonical order (the default
// first): the order of a set's algorithms when nobody configured one.
var supported = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA}

// rsaBits is the size of generated RSA keys; loaded keys may be larger, not
// smaller.
const rsaBits = 2048

// SupportedAlgorithms returns the algorithms a key set can sign with, the
// default (RS256) first.
func SupportedAlgorithms() []string {
	out := make([]string, len(supported))
	for i, a := range supported {
		out[i] = string(a)
	}
	return out
}

// parseAlgorithm checks that name is a supported algorithm, spelled exactly
// as JOSE spells it (the names are case-sensitive, RFC 7515 §4.1.1).
func parseAlgorithm(name string) (jose.SignatureAlgorithm, error) {
	for _, a := range supported {
		if string(a) == name {
			return a, nil
		}
	}
	return "", fmt.Errorf("keys: signing algorithm %q is not supported: use one of %s", name, strings.Join(SupportedAlgorithms(), ", "))
}

// keyKind names the kind of key an algorithm needs, for messages.
func keyKind(alg jose.SignatureAlgorithm) string {
	switch alg {
	case jose.RS256:
		return "an RSA key"
	case jose.ES256:
		return "a P-256 EC key"
	case jose.EdDSA:
		return "an Ed25519 key"
	}
	return "a key for " + string(alg)
}

// generateKey makes a new private key for alg.
func generateKey(alg jose.SignatureAlgorithm) (crypto.Signer, error) {
	var (
		key crypto.Signer
		err error
	)
	switch alg {
	case jose.RS256:
		key, err = rsa.GenerateKey(rand.Reader, rsaBits)
	case jose.ES256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.EdDSA:
		_, key, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, fmt.Errorf("keys: cannot generate a key for algorithm %q", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("keys: generate %s key: %w", alg, err)
	}
	return key, nil
}

// checkPrivateKey returns the algorithm key signs with, after checking that
// it is fit to sign: RSA of at least rsaBits bits (and valid), ECDSA on
// P-256 (ES256 is defined on that curve only, RFC 7518 §3.4), or Ed25519.
func checkPrivateKey(key any) (crypto.Signer, jose.SignatureAlgorithm, error) {
	switch k := key.(type) {
	case *rsa.PrivateKey:
		if bits := k.N.BitLen(); bits < rsaBits {
			return nil, "", fmt.Errorf("RSA key has %d bits, want at least %d", bits, rsaBits)
		}
		if err := k.Validate(); err != nil {
			return nil, "", fmt.Errorf("invalid RSA key: %w", err)
		}
		return k, jose.RS256, nil
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, "", fmt.Errorf("EC key is on curve %s, want P-256 (ES256)", k.Curve.Params().Name)
		}
		return k, jose.ES256, nil
	case ed25519.PrivateKey:
		if len(k) != ed25519.PrivateKeySize {
			return nil, "", fmt.Errorf("Ed25519 key has %d bytes, want %d", len(k), ed25519.PrivateKeySize)
		}
		return k, jose.EdDSA, nil
	}
	return nil, "", fmt.Errorf("key is %T, want an RSA, P-256 EC or Ed25519 private key", key)
}

// parsePrivateKey parses one PEM block holding a private key (PKCS#8 for
// every kind; PKCS#1 "RSA PRIVATE KEY" and SEC 1 "EC PRIVATE KEY" too, as
// older openssl commands write them) and checks it with checkPrivateKey.
func parsePrivateKey(data []byte) (crypto.Signer, jose.SignatureAlgorithm, error) {
	block, rest := pem.Decode(data)
	if block == nil {
		return nil, "", errors.New("no PEM block found")
	}
	if next, _ := pem.Decode(rest); next != nil {
		return nil, "", errors.New("more than one PEM block: keep one key per file")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, "", fmt.Errorf("PEM block is %q, want \"PRIVATE KEY\" (PKCS#8)", block.Type)
	}
	if err != nil {
		return nil, "", fmt.Errorf("parse private key: %w", err)
	}
	return checkPrivateKey(key)
}

// thumbprint is the RFC 7638 JWK thumbprint of pub: SHA-256, base64url
// without padding. It is every key's kid.
func thumbprint(pub crypto.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	sum, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("keys: thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// copyPublic returns a deep copy of pub, so that a caller who changes a key
// JWKS returned changes nothing of ours.
func copyPublic(pub crypto.PublicKey) crypto.PublicKey {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		return &rsa.PublicKey{N: new(big.Int).Set(p.N), E: p.E}
	case *ecdsa.PublicKey:
		raw, err := p.Bytes()
		if err != nil {
			return nil // not reached: keys are checked when loaded
		}
		c, err := ecdsa.ParseUncompressedPublicKey(p.Curve, raw)
		if err != nil {
			return nil
		}
		return c
	case ed25519.PublicKey:
		return slices.Clone(p)
	}
	return nil
}

// LeftHalfHash is the at_hash and c_hash construction of OpenID Connect Core
// 1.0 §3.1.3.6 and §3.3.2.11 for an ID token signed with alg: the left-most
// half of the hash of value's ASCII octets, base64url without padding. The
// hash is the one alg uses: SHA-256 for RS256 and ES256; for EdDSA with
// Ed25519 (whose name carries no hash) SHA-512, the hash Ed25519 is built
// on, as relying-party libraries compute it.
func LeftHalfHash(alg, value string) (string, error) {
	var sum []byte
	switch alg {
	case RS256, ES256:
		s := sha256.Sum256([]byte(value))
		sum = s[:]
	case EdDSA:
		s := sha512.Sum512([]byte(value))
		sum = s[:]
	default:
		return "", fmt.Errorf("keys: no hash for algorithm %q: use one of %s", alg, strings.Join(SupportedAlgorithms(), ", "))
	}
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2]), nil
}
