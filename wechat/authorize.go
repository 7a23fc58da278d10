package wechat

import (
	"net/url"
	"strings"
)

// Scopes of WeChat web authorization.
const (
	// ScopeBase is the silent Official Account scope: openid only, no consent
	// page, no unionid in the token response (§1, §7).
	ScopeBase = "snsapi_base"
	// ScopeUserInfo asks the user's consent for nickname and avatar; the token
	// may call /sns/userinfo and carries unionid when the account is bound (§1, §2a).
	ScopeUserInfo = "snsapi_userinfo"
	// ScopeLogin is the only scope of an Open Platform website app (qrconnect, §3).
	ScopeLogin = "snsapi_login"
)

// Default base URLs of WeChat.
const (
	// DefaultOpenBaseURL is where browsers are sent (authorize, qrconnect).
	DefaultOpenBaseURL = "https://open.weixin.qq.com"
	// DefaultAPIBaseURL is where the server calls the sns APIs.
	DefaultAPIBaseURL = "https://api.weixin.qq.com"
)

// AuthorizeParams are the parameters of an authorize or qrconnect URL.
type AuthorizeParams struct {
	AppID       string
	RedirectURI string // unescaped; the builders escape it with url.QueryEscape
	Scope       string // OAAuthorizeURL: ScopeBase or ScopeUserInfo; QRConnectURL: ScopeLogin ("" = ScopeLogin)
	State       string // should satisfy ValidState

	// ForcePopup appends forcePopup=true after state (OAAuthorizeURL only):
	// "force the consent popup" (§1; accepted values UNCONFIRMED, true is what
	// the community uses).
	ForcePopup bool
	// ConnectRedirect appends connect_redirect=1 after state and after
	// forcePopup (OAAuthorizeURL only). Undocumented; WxJava and socialite send
	// it, reportedly to suppress duplicate callbacks that end in 40163 (§1).
	ConnectRedirect bool
	// Lang is the optional qrconnect page language, "cn" or "en" (QRConnectURL
	// only, §3). "" leaves it out (WeChat defaults to cn).
	Lang string
}

// OAAuthorizeURL returns the Official Account web-authorization URL:
//
//	{openBase}/connect/oauth2/authorize?appid=..&redirect_uri=..&response_type=code&scope=..&state=..[&forcePopup=true][&connect_redirect=1]#wechat_redirect
//
// The query is built by hand because WeChat regex-checks the parameter order
// and refuses the page when it differs (§1); url.Values.Encode sorts keys.
// The #wechat_redirect fragment is required (§1). openBase "" means
// DefaultOpenBaseURL.
func OAAuthorizeURL(openBase string, p AuthorizeParams) string {
	var b strings.Builder
	b.WriteString(base(openBase, DefaultOpenBaseURL))
	b.WriteString("/connect/oauth2/authorize")
	writeCommon(&b, p, p.Scope)
	if p.ForcePopup {
		b.WriteString("&forcePopup=true")
	}
	if p.ConnectRedirect {
		b.WriteString("&connect_redirect=1")
	}
	b.WriteString("#wechat_redirect")
	return b.String()
}

// QRConnectURL returns the website-app QR login URL (§3):
//
//	{openBase}/connect/qrconnect?appid=..&redirect_uri=..&response_type=code&scope=snsapi_login&state=..[&lang=..]#wechat_redirect
//
// p.Scope "" means ScopeLogin; ForcePopup and ConnectRedirect are ignored.
// openBase "" means DefaultOpenBaseURL.
func QRConnectURL(openBase string, p AuthorizeParams) string {
	scope := p.Scope
	if scope == "" {
		scope = ScopeLogin
	}
	var b strings.Builder
	b.WriteString(base(openBase, DefaultOpenBaseURL))
	b.WriteString("/connect/qrconnect")
	writeCommon(&b, p, scope)
	if p.Lang != "" {
		b.WriteString("&lang=")
		b.WriteString(url.QueryEscape(p.Lang))
	}
	b.WriteString("#wechat_redirect")
	return b.String()
}

// writeCommon writes the five parameters in WeChat's order (§1).
func writeCommon(b *strings.Builder, p AuthorizeParams, scope string) {
	b.WriteString("?appid=")
	b.WriteString(url.QueryEscape(p.AppID))
	b.WriteString("&redirect_uri=")
	b.WriteString(url.QueryEscape(p.RedirectURI))
	b.WriteString("&response_type=code&scope=")
	b.WriteString(url.QueryEscape(scope))
	b.WriteString("&state=")
	b.WriteString(url.QueryEscape(p.State))
}

func base(s, def string) string {
	if s == "" {
		s = def
	}
	return strings.TrimRight(s, "/")
}

// MaxStateLen is the longest state WeChat accepts, in bytes (§1).
const MaxStateLen = 128

// ValidState reports whether s is a valid WeChat state: 1..128 bytes of
// [A-Za-z0-9] (§1). What WeChat does with anything else is UNCONFIRMED, so
// callers should only ever send states that pass.
func ValidState(s string) bool {
	if len(s) == 0 || len(s) > MaxStateLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}
