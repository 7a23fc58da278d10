package wechat

import (
	"errors"
	"log/slog"

	"github.com/wechat-oidc/wechat-oidc/oidc"
	wx "github.com/wechat-oidc/wechat-oidc/wechat"
)

// weChatErrorMapping says what a WeChat failure becomes: the OIDC error the
// relying party receives (an ASCII description, RFC 6749 §4.1.2.1), what a
// person sees on our pages (zh-CN and en), and the operator's log line.
type weChatErrorMapping struct {
	// Code is the WeChat errcode; 0 is a transport failure (no errcode).
	Code        int
	OIDCCode    string
	Description string
	PersonZH    string
	PersonEN    string
	Operator    string
	Level       slog.Level
}

// Person messages shared by several codes.
const (
	zhRetry       = "微信登录没有完成，请重新登录。"
	enRetry       = "The WeChat sign-in did not complete. Please sign in again."
	zhBusy        = "微信暂时繁忙，请稍后重试。"
	enBusy        = "WeChat is busy right now. Please try again in a moment."
	zhMisconfig   = "登录服务配置有误，已通知管理员。"
	enMisconfig   = "The sign-in service is misconfigured; the administrator has been told."
	descMisconfig = "the sign-in service is misconfigured; the administrator has been told"
	descRetry     = "WeChat did not accept the sign-in (the authorization expired or was already used); please sign in again"
	descBusy      = "WeChat is busy or limiting requests right now; please try again shortly"
	descBug       = "the sign-in service sent WeChat a bad request; the administrator has been told"
	opBug         = "WeChat says our request was malformed: this is a bug in wechat-oidc, please report it with the rid"
	opCredentials = "WeChat rejected the app credentials: check wechat.*.app_id and app_secret (a reset AppSecret must be updated here)"
)

// wechatErrorTable is the one table from every errcode of wechat-api.md §5
// (plus transport failures) to what the client, the person and the operator
// see. docs/wechat-errors.md shows it; a test keeps the two equal.
var wechatErrorTable = []weChatErrorMapping{
	{0, oidc.CodeTemporarilyUnavailable, "WeChat could not be reached; please try again shortly",
		"暂时无法连接微信，请稍后重试。", "WeChat could not be reached. Please try again shortly.",
		"WeChat API unreachable, timed out, redirected, or answered something that is not WeChat JSON (check egress to api.weixin.qq.com, wechat.timeout)", slog.LevelError},
	{-1, oidc.CodeTemporarilyUnavailable, descBusy, zhBusy, enBusy,
		"WeChat answered system busy (-1); /sns/userinfo is retried until wechat.userinfo_retry_deadline, the code exchange never", slog.LevelWarn},
	{40001, oidc.CodeServerError, descMisconfig, zhMisconfig, enMisconfig,
		opCredentials + " (40001 invalid credential)", slog.LevelError},
	{40003, oidc.CodeServerError, "WeChat rejected the sign-in session; please sign in again", zhRetry, enRetry,
		"WeChat says the openid does not belong to this token (40003)", slog.LevelError},
	{40013, oidc.CodeServerError, descMisconfig, zhMisconfig, enMisconfig,
		"WeChat does not know the appid (40013): check wechat.*.app_id", slog.LevelError},
	{40014, oidc.CodeServerError, "WeChat rejected the sign-in session; please sign in again", zhRetry, enRetry,
		"WeChat rejected the access token it issued a moment ago (40014)", slog.LevelError},
	{40029, oidc.CodeAccessDenied, descRetry, zhRetry, enRetry,
		"WeChat rejected the code (40029: expired after 5 minutes, reused, malformed, or issued to another appid — e.g. the callback reached a replica with other credentials)", slog.LevelWarn},
	{40030, oidc.CodeServerError, "WeChat rejected the sign-in session; please sign in again", zhRetry, enRetry,
		"WeChat rejected a refresh_token (40030); wechat-oidc does not use WeChat refresh tokens at sign-in", slog.LevelError},
	{40125, oidc.CodeServerError, descMisconfig, zhMisconfig, enMisconfig,
		opCredentials + " (40125 invalid appsecret)", slog.LevelError},
	{40163, oidc.CodeAccessDenied, descRetry, zhRetry, enRetry,
		"WeChat says the code was already used (40163): a duplicate callback in another browser, or a replayed link", slog.LevelWarn},
	{40164, oidc.CodeServerError, descMisconfig, zhMisconfig, enMisconfig,
		"WeChat refused our server's IP (40164): add it to the IP whitelist (mp.weixin.qq.com → 设置与开发 → 基本配置 → IP白名单)", slog.LevelError},
	{40226, oidc.CodeAccessDenied, "WeChat blocked this sign-in", "微信拒绝了这次登录（账号存在风险）。", "WeChat blocked this sign-in (the account is flagged as high-risk).",
		"WeChat blocked the code (40226: high-risk user)", slog.LevelWarn},
	{40243, oidc.CodeServerError, descMisconfig, zhMisconfig, enMisconfig,
		"The AppSecret is frozen (40243): unfreeze or reset it in the WeChat admin and update app_secret", slog.LevelError},
	{41001, oidc.CodeServerError, descBug, zhMisconfig, enMisconfig, opBug + " (41001 missing access_token)", slog.LevelError},
	{41002, oidc.CodeServerError, descMisconfig, zhMisconfig, enMisconfig, "WeChat says the appid is missing (41002): set wechat.*.app_id", slog.LevelError},
	{41003, oidc.CodeServerError, descBug, zhMisconfig, enMisconfig, opBug + " (41003 missing refresh_token)", slog.LevelError},
	{41004, oidc.CodeServerError, descMisconfig, zhMisconfig, enMisconfig, "WeChat says the secret is missing (41004): set wechat.*.app_secret", slog.LevelError},
	{41008, oidc.CodeServerError, descBug, zhMisconfig, enMisconfig, opBug + " (41008 missing code)", slog.LevelError},
	{41009, oidc.CodeServerError, descBug, zhMisconfig, enMisconfig, opBug + " (41009 missing openid)", slog.LevelError},
	{42001, oidc.CodeServerError, "WeChat rejected the sign-in session; please sign in again", zhRetry, enRetry,
		"WeChat says its access token expired (42001) between exchange and userinfo: check the server clock and wechat.timeout", slog.LevelError},
	{42002, oidc.CodeServerError, "WeChat rejected the sign-in session; please sign in again", zhRetry, enRetry,
		"WeChat says a refresh_token expired (42002)", slog.LevelError},
	{42003, oidc.CodeAccessDenied, descRetry, zhRetry, enRetry,
		"WeChat says the code expired (42003): the person took longer than 5 minutes, or the server clock is off", slog.LevelWarn},
	{42007, oidc.CodeAccessDenied, descRetry, zhRetry, enRetry,
		"WeChat invalidated the tokens because the user changed their password (42007)", slog.LevelWarn},
	{43001, oidc.CodeServerError, descBug, zhMisconfig, enMisconfig, opBug + " (43001 require GET)", slog.LevelError},
	{43003, oidc.CodeServerError, descMisconfig, zhMisconfig, enMisconfig,
		"WeChat requires https (43003): wechat.api_base_url must be https", slog.LevelError},
	{45009, oidc.CodeTemporarilyUnavailable, descBusy, zhBusy, enBusy,
		"WeChat daily API quota reached (45009): see the quota page of the WeChat admin", slog.LevelError},
	{45011, oidc.CodeTemporarilyUnavailable, descBusy, zhBusy, enBusy,
		"WeChat per-minute API quota reached (45011); /sns/userinfo is retried until wechat.userinfo_retry_deadline", slog.LevelWarn},
	{48001, oidc.CodeServerError, "the sign-in service is not permitted to read the WeChat profile; the administrator has been told", zhMisconfig, enMisconfig,
		"WeChat refused the call (48001 api unauthorized): the account lacks web authorization for this scope (verified service account needed), or a snsapi_base token was used for userinfo", slog.LevelError},
	{50001, oidc.CodeServerError, descMisconfig, zhMisconfig, enMisconfig,
		"WeChat refused (50001 user unauthorized / redirect_uri unauthorized): check the authorization callback domain", slog.LevelError},
	{50002, oidc.CodeAccessDenied, "WeChat restricted this account", "你的微信账号受限，无法登录。", "Your WeChat account is restricted and cannot sign in.",
		"WeChat says the user is limited (50002)", slog.LevelWarn},
}

var defaultWeChatError = weChatErrorMapping{-2, oidc.CodeServerError, "WeChat sign-in failed; please try again",
	"微信登录失败，请重试。", "WeChat sign-in failed. Please try again.",
	"WeChat answered an errcode this service does not know: see the errmsg and its rid", slog.LevelError}

var wechatErrorsByCode = func() map[int]weChatErrorMapping {
	m := make(map[int]weChatErrorMapping, len(wechatErrorTable))
	for _, e := range wechatErrorTable {
		m[e.Code] = e
	}
	return m
}()

// mapWeChatError finds the row for a failure of the wechat client.
func mapWeChatError(err error) weChatErrorMapping {
	if errors.Is(err, wx.ErrUnavailable) {
		return wechatErrorsByCode[0]
	}
	if m, ok := wechatErrorsByCode[wx.ErrorCode(err)]; ok && wx.ErrorCode(err) != 0 {
		return m
	}
	return defaultWeChatError
}
