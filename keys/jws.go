package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// jwsSigner makes compact JWS (RFC 7515 §7.1) with one key and one
// protected header: {"alg":…,"kid":…,"typ":…}, the bytes go-jose writes for
// the same header, encoded once when the signer is built. Signing a token
// is then the payload's encoding and the signature itself; go-jose would
// build, marshal and encode the header again for every token.
type jwsSigner struct {
	key *signingKey
	// prefix is the encoded protected header and the dot after it.
	prefix string
}

func newJWSSigner(key *signingKey, typ string) (*jwsSigner, error) {
	switch key.private.(type) {
	case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
	default:
		return nil, fmt.Errorf("keys: cannot sign with a %T", key.private)
	}
	header, err := json.Marshal(struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
		Typ string `json:"typ"`
	}{string(key.alg), key.kid, typ})
	if err != nil {
		return nil, fmt.Errorf("keys: encode JWS header: %w", err)
	}
	return &jwsSigner{key: key, prefix: base64.RawURLEncoding.EncodeToString(header) + "."}, nil
}

// sign returns the compact JWS of payload: header.payload.signature, each
// base64url without padding; the signature is over the ASCII of
// header.payload (RFC 7515 §5.1).
func (j *jwsSigner) sign(payload []byte) (string, error) {
	enc := base64.RawURLEncoding
	input := make([]byte, len(j.prefix), len(j.prefix)+enc.EncodedLen(len(payload))+1+enc.EncodedLen(512))
	copy(input, j.prefix)
	input = enc.AppendEncode(input, payload)
	sig, err := j.signature(input)
	if err != nil {
		return "", err
	}
	token := append(input, '.')
	return string(enc.AppendEncode(token, sig)), nil
}

// signature signs input as the key's algorithm says (RFC 7518 §3.3 RS256,
// §3.4 ES256; RFC 8037 §3.1 EdDSA).
func (j *jwsSigner) signature(input []byte) ([]byte, error) {
	switch k := j.key.private.(type) {
	case *rsa.PrivateKey:
		h := sha256.Sum256(input)
		return rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, h[:])
	case *ecdsa.PrivateKey:
		h := sha256.Sum256(input)
		r, sv, err := ecdsa.Sign(rand.Reader, k, h[:])
		if err != nil {
			return nil, err
		}
		// R and S as unsigned big-endian integers of the curve's size,
		// concatenated (RFC 7518 §3.4).
		size := (k.Curve.Params().BitSize + 7) / 8
		out := make([]byte, 2*size)
		r.FillBytes(out[:size])
		sv.FillBytes(out[size:])
		return out, nil
	case ed25519.PrivateKey:
		return ed25519.Sign(k, input), nil
	}
	return nil, fmt.Errorf("keys: cannot sign with a %T", j.key.private)
}
