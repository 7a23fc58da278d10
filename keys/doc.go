// Package keys owns the provider's ID-token signing keys: it generates them,
// keeps them so that tokens issued before a restart still verify after it,
// rotates them, publishes their public halves (JWKS) and signs. It knows
// nothing of HTTP.
//
// Algorithms: RS256 (the default, the one every OpenID Connect relying party
// must accept), ES256 (P-256) and EdDSA (Ed25519). A Set signs with one
// active key per configured algorithm (Sign uses the default;
// SignWithAlgorithm serves a client registered with another
// id_token_signed_response_alg) and verifies with every key it holds, each
// with its own algorithm only. A key's kid is its RFC 7638 JWK thumbprint, so
// it is the same on every replica and after every restart.
//
// Where keys live (a Source):
//   - a key directory (NewDirSource; LoadOrCreate for a plain Set): mode
//     0700, one PKCS#8 PEM file per key (mode 0600), named
//     signing-key-<created, UTC, YYYYMMDDTHHMMSSZ>[-anything].pem. The
//     creation times schedule the keys. It may be read-only (a Kubernetes
//     Secret volume) when the operator manages the keys;
//   - the shared store (NewStoreSource), for replicas without a shared disk:
//     one document, changed only by compare-and-swap, with every private
//     key sealed (AES-256-GCM) under keys.encryption_key and an explicit
//     schedule per key.
//
// Life of a key: next (published, not signing yet: for PublishBeforeUse,
// so that every replica and every relying party's JWKS cache knows it
// first), active (signing), retired (published for RetainAfterRetire, so
// tokens it signed still verify), then removed. A Keyring keeps a Source's
// keys current: reloads every Refresh, adds a first key per algorithm,
// rotates every RotateEvery; of several replicas that find a change due,
// exactly one makes it. List and Rotate are the operator's commands.
package keys
