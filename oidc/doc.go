// Package oidc is the OpenID Provider protocol of wechat-oidc, independent of
// WeChat: wire types (discovery, token response, claims), request parsing and
// validation for the authorization and token endpoints, the client registry and
// client authentication, the one error type, PKCE, authorization codes, opaque
// access tokens, rotating refresh tokens grouped in families, ID token
// minting, the userinfo endpoint, token revocation and token introspection,
// and the revocation of a session's or a person's tokens (RevokeSession at
// logout, RevokeSubject when a person is disabled).
//
// It never imports the wechat package. The bridge package authenticates the
// person upstream (WeChat) and hands this package an Identity; everything the
// relying party sees on the wire is decided here.
//
// The contract is OpenID Connect Core 1.0, RFC 6749, RFC 6750, RFC 7009,
// RFC 7636, RFC 7662, RFC 8725, RFC 9700 and OpenID Connect Back-Channel
// Logout 1.0 §2.7; comments cite the section where a rule is not obvious.
package oidc
