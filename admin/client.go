package admin

import (
	"github.com/wechat-oidc/wechat-oidc/config"
	"github.com/wechat-oidc/wechat-oidc/oidc"
	"strings"
)

// ClientID is the console's client id at the bridge.
const ClientID = "wechat-oidc-admin"

// ClientConfig is the console's registration as a relying party of the
// bridge at issuer: redirect URI {issuer}/admin/callback, no refresh tokens.
//
// It is a public client (token_endpoint_auth_method none) that must use
// PKCE, not a confidential one with a secret. A secret generated per
// process would break as soon as several replicas run behind a balancer:
// the callback, and so the code redemption, may reach another replica than
// the one that started the sign-in. A secret derived from something the
// replicas share (the signing keys) would tie the client to key rotation
// for no gain. What a secret would protect is already protected:
//   - the code can only be delivered to the registered redirect URI, which
//     is the console itself (exact match, RFC 9700 §4.1.3);
//   - a stolen code is useless without the PKCE verifier, which never
//     leaves the server (it is in the store, RFC 7636 §1);
//   - someone who runs the flow for this client_id themselves only obtains
//     tokens about themselves, and the console never accepts tokens from a
//     browser: it signs in only through its own callback, with its own
//     state, nonce and verifier, and trusts only its own session cookie.
//
// The lead may also set AllowedGroups to the admin group, so that the login
// core refuses non-administrators before a code is issued; the console
// checks the group on every request either way.
func ClientConfig(issuer string) config.Client {
	return config.Client{
		ID:           ClientID,
		Name:         "wechat-oidc 管理控制台 · admin console",
		AuthMethod:   oidc.AuthMethodNone,
		RedirectURIs: []string{redirectURI(issuer)},
		RequirePKCE:  true,
	}
}

func redirectURI(issuer string) string {
	return strings.TrimSuffix(issuer, "/") + "/admin" + PathCallback
}
