package bridge

import (
	"maps"
	"sort"
	"strings"

	"github.com/wechat-oidc/wechat-oidc/oidc"
)

// scopeClaims is the claims table of the README: which scope releases which
// claim. The same claims go into the ID token and userinfo.
var scopeClaims = map[string][]string{
	"profile":   {"name", "given_name", "family_name", "picture", "preferred_username", "gender"},
	"address":   {"address"},
	"email":     {"email", "email_verified"},
	"groups":    {"groups"},
	ScopeWeChat: {"openid", "unionid"},
	// offline_access releases no claim: it asks for a refresh token.
	"offline_access": nil,
}

// groupsBySubject inverts the groups config: subject → sorted group names.
func groupsBySubject(groups map[string][]string) map[string][]string {
	out := map[string][]string{}
	for g, subs := range groups {
		for _, sub := range subs {
			out[sub] = append(out[sub], g)
		}
	}
	for _, gs := range out {
		sort.Strings(gs)
	}
	return out
}

// shapeClaims adds what the operator configured for this client to the
// person's claims: a synthetic email, given/family names, groups. The
// identity's own claims are not changed.
func (s *Server) shapeClaims(clientID string, id oidc.Identity) map[string]any {
	out := maps.Clone(id.Claims)
	if out == nil {
		out = map[string]any{}
	}
	if gs := s.groups[id.Subject]; len(gs) > 0 {
		out["groups"] = append([]string(nil), gs...)
	}
	cc := s.clientConfigs[clientID]
	if cc == nil {
		return out
	}
	expand := func(t string) string {
		if t == "" {
			return ""
		}
		str := func(k string) string { v, _ := out[k].(string); return v }
		missing := false
		res := claimPlaceholder.ReplaceAllStringFunc(t, func(m string) string {
			var v string
			switch m {
			case "{sub}":
				v = id.Subject
			case "{preferred_username}":
				v = str("preferred_username")
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
	if email := expand(cc.Claims.Email); email != "" {
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
