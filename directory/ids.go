package directory

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
)

// idAlphabet is lowercase RFC 4648 base32: ids are case-insensitive-safe and
// readable in logs.
const idAlphabet = "abcdefghijklmnopqrstuvwxyz234567"

// newID returns prefix followed by 20 random base32 characters (100 bits).
// crypto/rand.Read never fails (Go 1.24+: it crashes the program instead).
func newID(prefix string) string {
	var b [20]byte
	_, _ = rand.Read(b[:])
	out := make([]byte, len(prefix), len(prefix)+len(b))
	copy(out, prefix)
	for _, c := range b {
		out = append(out, idAlphabet[c&31]) // 32 divides 256: uniform
	}
	return string(out)
}

// newPersonID is the opaque, never reassigned person id (a possible OIDC
// "sub"): "p_" and 20 base32 characters.
func newPersonID() string { return newID("p_") }

// newInvitationID identifies an invitation in lists and revocations; it is
// not the secret token.
func newInvitationID() string { return newID("inv_") }

// newInvitationToken returns a bearer token of 256 random bits, base64url
// without padding (43 characters).
func newInvitationToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// tokenHash is what is stored for a token: hex SHA-256. A token has 256 bits
// of entropy, so a plain hash (no salt, no stretching) cannot be reversed.
func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// refAlphabet has no two characters that read alike when written down or
// read aloud: no 0, 1, O, I, L, and of 2/Z, 5/S, 8/B, U/V only the digit or
// neither. 26 symbols.
const refAlphabet = "2345678ACDEFGHJKMNPQRTWXY9"

// refLen random characters give 26⁶ ≈ 3·10⁸ references: collisions are
// rare and harmless (a query by reference lists every match).
const refLen = 6

// NewRef returns a short reference for a person to quote, e.g. "R-7F3KQ9":
// pages show it next to an error and the audit row carries it, so support
// finds the event. It is random, not secret, and not unique by
// construction.
func NewRef() string {
	var b [refLen]byte
	out := make([]byte, 0, 2+refLen)
	out = append(out, 'R', '-')
	for i := 0; i < refLen; {
		_, _ = rand.Read(b[:])
		for _, c := range b {
			// Rejection sampling keeps the choice uniform.
			if int(c) < 256/len(refAlphabet)*len(refAlphabet) && i < refLen {
				out = append(out, refAlphabet[int(c)%len(refAlphabet)])
				i++
			}
		}
	}
	return string(out)
}
