package wechat

import (
	"fmt"
	"log/slog"
	"strings"
)

const redacted = "[REDACTED]"

// App is a WeChat app's credentials: an Official Account, an Open Platform
// website app or a mini program. String, GoString and LogValue never show
// Secret.
type App struct {
	ID     string
	Secret string
}

// String returns the app id only.
func (a App) String() string { return "wechat.App{ID: " + a.ID + ", Secret: " + hidden(a.Secret) + "}" }

// GoString is like String so that %#v does not leak the secret.
func (a App) GoString() string { return a.String() }

// LogValue implements slog.LogValuer.
func (a App) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", a.ID), slog.String("secret", hidden(a.Secret)))
}

func hidden(s string) string {
	if s == "" {
		return ""
	}
	return redacted
}

// AccessToken is the response of /sns/oauth2/access_token and
// /sns/oauth2/refresh_token (§2a, §2b). String, GoString and LogValue never
// show AccessToken or RefreshToken.
type AccessToken struct {
	AccessToken  string `json:"access_token"`
	ExpiresIn    int    `json:"expires_in"` // seconds, 7200
	RefreshToken string `json:"refresh_token"`
	OpenID       string `json:"openid"`
	// Scope is the granted scopes, comma-separated.
	Scope string `json:"scope"`
	// UnionID is present only for snsapi_userinfo (and snsapi_login) grants of
	// an app bound to an Open Platform account (§7). Never for snsapi_base, and
	// never in a refresh response.
	UnionID string `json:"unionid"`
	// IsSnapshotUser is 1 for a snapshot-page virtual account (§6): its openid,
	// unionid, nickname and avatar are virtual and must not be linked to an
	// account.
	IsSnapshotUser int `json:"is_snapshotuser"`
}

// Snapshot reports whether the token belongs to a snapshot-page virtual
// account (is_snapshotuser == 1, §6).
func (t *AccessToken) Snapshot() bool { return t.IsSnapshotUser == 1 }

// HasScope reports whether scope is among the granted, comma-separated scopes.
func (t *AccessToken) HasScope(scope string) bool {
	for s := range strings.SplitSeq(t.Scope, ",") {
		if strings.TrimSpace(s) == scope {
			return true
		}
	}
	return false
}

// String shows everything but the tokens.
func (t AccessToken) String() string {
	return fmt.Sprintf("wechat.AccessToken{OpenID: %s, UnionID: %s, Scope: %s, ExpiresIn: %d, IsSnapshotUser: %d, AccessToken: %s, RefreshToken: %s}",
		t.OpenID, t.UnionID, t.Scope, t.ExpiresIn, t.IsSnapshotUser, hidden(t.AccessToken), hidden(t.RefreshToken))
}

// GoString is like String.
func (t AccessToken) GoString() string { return t.String() }

// LogValue implements slog.LogValuer without the tokens.
func (t AccessToken) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("openid", t.OpenID),
		slog.String("unionid", t.UnionID),
		slog.String("scope", t.Scope),
		slog.Int("expires_in", t.ExpiresIn),
		slog.Int("is_snapshotuser", t.IsSnapshotUser),
		slog.String("access_token", hidden(t.AccessToken)),
		slog.String("refresh_token", hidden(t.RefreshToken)),
	)
}

// UserInfo is the response of /sns/userinfo (§2d). Since the 2021 adjustment
// Sex is 0 and Province, City and Country are "" for real users.
type UserInfo struct {
	OpenID   string `json:"openid"`
	Nickname string `json:"nickname"`
	Sex      int    `json:"sex"`
	Province string `json:"province"`
	City     string `json:"city"`
	Country  string `json:"country"`
	// HeadImgURL ends in the size (0=640, 46, 64, 96, 132); "" when the user
	// has none; stale after the user changes the avatar.
	HeadImgURL string   `json:"headimgurl"`
	Privilege  []string `json:"privilege"`
	// UnionID only when the app is bound to an Open Platform account.
	UnionID string `json:"unionid"`
}

// Session is the response of /sns/jscode2session (§4). String, GoString and
// LogValue never show SessionKey.
type Session struct {
	OpenID     string `json:"openid"`
	SessionKey string `json:"session_key"`
	// UnionID when the mini program is bound (returned without consent since 2021, §7).
	UnionID string `json:"unionid"`
}

// String shows everything but the session key.
func (s Session) String() string {
	return "wechat.Session{OpenID: " + s.OpenID + ", UnionID: " + s.UnionID + ", SessionKey: " + hidden(s.SessionKey) + "}"
}

// GoString is like String.
func (s Session) GoString() string { return s.String() }

// LogValue implements slog.LogValuer without the session key.
func (s Session) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("openid", s.OpenID),
		slog.String("unionid", s.UnionID),
		slog.String("session_key", hidden(s.SessionKey)),
	)
}
