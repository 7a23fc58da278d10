package bridge

import (
	"maps"
	"strings"

	"github.com/wechat-oidc/wechat-oidc/config"
	"github.com/wechat-oidc/wechat-oidc/connector"
)

// baseScopeClaims is the claims table of docs/protocol.md: which scope releases
// which claim. The same claims go into the ID token and userinfo. A
// connector may add scopes of its own (connector.ScopeClaimer).
var baseScopeClaims = map[string][]string{
	"profile": {"name", "given_name", "family_name", "picture", "preferred_username", "gender"},
	"address": {"address"},
	"email":   {"email", "email_verified"},
	"groups":  {"groups"},
	// offline_access releases no claim: it asks for a refresh token.
	"offline_access": nil,
}

// scopeClaims is the base table plus the connector's scopes.
func scopeClaims(conn connector.Connector) map[string][]string {
	out := maps.Clone(baseScopeClaims)
	if sc, ok := conn.(connector.ScopeClaimer); ok {
		maps.Copy(out, sc.ScopeClaims())
	}
	return out
}

// shapeClaims adds what the operator configured for this client to the
// person's claims: a synthetic email, given/family names, groups. The
// identity's own claims are not changed.
func (s *Server) shapeClaims(clientID, subject string, claims map[string]any) map[string]any {
	out := maps.Clone(claims)
	if out == nil {
		out = map[string]any{}
	}
	cc := s.clients[clientID]
	if cc == nil {
		return out
	}
	expand := func(t string) string {
		if t == "" {
			return ""
		}
		str := func(k string) string { v, _ := out[k].(string); return v }
		missing := false
		res := config.ClaimPlaceholder.ReplaceAllStringFunc(t, func(m string) string {
			var v string
			switch m {
			case "{sub}":
				v = subject
			case "{preferred_username}", "{username}":
				v = str("preferred_username") // the directory's username
			case "{email}":
				v = str("email")
			case "{name}":
				v = str("name")
			case "{openid}":
				v = str("openid")
			case "{unionid}":
				v = str("unionid")
			}
			if v == "" {
				missing = true
			}
			return v
		})
		if missing {
			return "" // a template whose value is unknown yields no claim, not a half-filled one
		}
		return strings.TrimSpace(res)
	}
	// A real address from the directory (set by an administrator or an
	// invitation) wins over the synthetic one.
	if email := expand(cc.Claims.Email); email != "" && out["email"] == nil {
		out["email"] = email
		out["email_verified"] = cc.Claims.EmailVerified
	}
	if v := expand(cc.Claims.GivenName); v != "" {
		out["given_name"] = v
	}
	if v := expand(cc.Claims.FamilyName); v != "" {
		out["family_name"] = v
	}
	return out
}
