package bridge

import (
	"errors"
	"log/slog"

	"github.com/wechat-oidc/wechat-oidc/oidc"
	"github.com/wechat-oidc/wechat-oidc/wechat"
)

// weChatErrorMapping says what a WeChat failure becomes: the OIDC error the
// relying party receives (with a description safe to show) and the line the
// operator reads in the log.
type weChatErrorMapping struct {
	Kind        error
	OIDCCode    string
	Description string
	Operator    string
	Level       slog.Level
}

// wechatErrorTable is the one place that maps WeChat errors (wechat-api.md §5)
// to OIDC errors. Order matters: the first matching kind wins.
var wechatErrorTable = []weChatErrorMapping{
	{wechat.ErrInvalidCode, oidc.CodeAccessDenied,
		"WeChat did not accept the sign-in: the authorization expired or was invalid; please sign in again",
		"WeChat rejected the code (40029/42003: expired, malformed, or issued to another appid)", slog.LevelWarn},
	{wechat.ErrCodeUsed, oidc.CodeAccessDenied,
		"WeChat did not accept the sign-in: the authorization was already used; please sign in again",
		"WeChat says the code was already used (40163): a duplicate callback or a replayed link", slog.LevelWarn},
	{wechat.ErrBadCredentials, oidc.CodeServerError,
		"the sign-in service is misconfigured; the administrator has been told",
		"WeChat rejected the app credentials: check wechat.official_account.app_id and app_secret, that the AppSecret is not frozen, and the server IP whitelist", slog.LevelError},
	{wechat.ErrScopeUnauthorized, oidc.CodeServerError,
		"the sign-in service is not permitted to read the WeChat profile; the administrator has been told",
		"WeChat refused the call (48001/50001): the account lacks this web-authorization permission; use a verified service account or scope snsapi_base", slog.LevelError},
	{wechat.ErrRateLimited, oidc.CodeTemporarilyUnavailable,
		"WeChat is limiting requests right now; please try again in a minute",
		"WeChat API quota reached (45009/45011)", slog.LevelWarn},
	{wechat.ErrBusy, oidc.CodeTemporarilyUnavailable,
		"WeChat is busy right now; please try again shortly",
		"WeChat answered system busy (-1)", slog.LevelWarn},
	{wechat.ErrUnavailable, oidc.CodeTemporarilyUnavailable,
		"WeChat could not be reached; please try again shortly",
		"WeChat API unreachable, timed out, or answered something that is not WeChat JSON", slog.LevelError},
	{wechat.ErrInvalidToken, oidc.CodeServerError,
		"WeChat rejected the sign-in session; please sign in again",
		"WeChat rejected its own access token (40014/42001/40003)", slog.LevelError},
	{wechat.ErrCodeBlocked, oidc.CodeAccessDenied,
		"WeChat blocked this sign-in",
		"WeChat blocked the code (40226: high-risk user)", slog.LevelWarn},
	{wechat.ErrUserLimited, oidc.CodeAccessDenied,
		"WeChat restricted this account",
		"WeChat says the user is limited (50002)", slog.LevelWarn},
}

var defaultWeChatError = weChatErrorMapping{nil, oidc.CodeServerError,
	"WeChat sign-in failed; please try again",
	"WeChat answered an error this service does not know", slog.LevelError}

func mapWeChatError(err error) weChatErrorMapping {
	for _, m := range wechatErrorTable {
		if errors.Is(err, m.Kind) {
			return m
		}
	}
	return defaultWeChatError
}
