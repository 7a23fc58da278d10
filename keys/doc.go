// Package keys owns the provider's ID-token signing keys: it generates them,
// keeps them on disk so that tokens issued before a restart still verify after
// it, publishes their public halves (JWKS) and signs with the newest one.
//
// Keys are RSA (at least 2048 bits) and sign with RS256, the one algorithm
// every OpenID Connect relying party must accept. A key's kid is its RFC 7638
// JWK thumbprint, so it is derived from the key itself and is the same on
// every replica and after every restart.
//
// On disk, a key directory (mode 0700) holds one PKCS#8 PEM file per key
// (mode 0600), named signing-key-<created, UTC, YYYYMMDDTHHMMSSZ>[-anything].pem.
// The creation time in the name decides which key signs: the newest. All keys
// are published and accepted, so adding a newer key rotates without breaking
// tokens signed by the older one. The package knows nothing of HTTP.
package keys
