// Package loadtest is `wechat-oidc bench`: it drives whole sign-ins against
// a running provider and its WeChat simulator (`wechat-oidc dev --bench`),
// as a relying party and a browser would, and reports how many complete per
// second and how long they take.
//
// One sign-in, with a fresh cookie jar each time: GET /authorize (code flow,
// state, nonce, PKCE S256) → the simulated WeChat authorization page, which
// approves at once for the user named in simulator.HeaderApproveAs → the
// provider's callback (which exchanges WeChat's code and fetches the
// profile) → the redirect to the client with code, state and iss (RFC 9207)
// → POST /token (client_secret_basic, code_verifier) → verification of the
// ID token's signature against the JWKS, iss, aud, exp, nonce and at_hash
// with go-oidc → GET /userinfo, whose sub must be the ID token's.
//
// It also measures this machine's signing rates (RS256 with RSA-2048 and
// ES256, on every core, with the provider's own signing code), so that a
// throughput can be compared across machines as a ratio: sign-ins per
// second ÷ RS256 signatures per second.
package loadtest
