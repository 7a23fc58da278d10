package wechat

import (
	"context"
	"errors"
	"log/slog"

	"github.com/wechat-oidc/wechat-oidc/config"
	"github.com/wechat-oidc/wechat-oidc/connector"
	"github.com/wechat-oidc/wechat-oidc/oidc"
	wx "github.com/wechat-oidc/wechat-oidc/wechat"
)

// The mini-program token exchange: a mini program's backend sends the
// js_code of wx.login to the token endpoint as an RFC 8693 subject token and
// gets an ID token whose sub is the person's unionid, the same sub as every
// other sign-in, so the mini program joins the same SSO identity.
//
//	POST /token
//	grant_type=urn:ietf:params:oauth:grant-type:token-exchange
//	subject_token=<js_code>
//	subject_token_type=urn:wechat-oidc:params:token-type:wx-js-code
//	[requested_token_type=urn:ietf:params:oauth:token-type:id_token] [scope=openid ...]
//
// Only clients with mini_program: true may use it (unauthorized_client
// otherwise). The code is exchanged at
// /sns/jscode2session with wechat.mini_program's credentials, exactly once
// (a js_code is single-use: a retry could only fail with 40163). The
// session_key WeChat returns is dropped at once: never stored, returned or
// logged. An exchange starts no SSO session (there is no browser).

// TokenTypeWxJSCode is the subject_token_type of a wx.login js_code.
const TokenTypeWxJSCode = "urn:wechat-oidc:params:token-type:wx-js-code"

// maxJSCodeLen bounds a js_code before it is sent to WeChat; real ones are
// 32 characters.
const maxJSCodeLen = 256

// TokenType is the subject_token_type of wx.login codes.
func (c *Connector) TokenType() string { return TokenTypeWxJSCode }

// AllowsClient: only clients with mini_program: true, and only when
// wechat.mini_program is configured.
func (c *Connector) AllowsClient(clientID string) bool {
	return c.opt.WeChat.MiniProgram != nil && c.opt.Clients[clientID].MiniProgram
}

// ExchangeEnabled: wechat.mini_program is configured.
func (c *Connector) ExchangeEnabled() bool { return c.opt.WeChat.MiniProgram != nil }

// ExchangeCode exchanges a wx.login js_code for the person's identity. It
// logs one line per exchange with the client and the outcome, never the code.
func (c *Connector) ExchangeCode(ctx context.Context, clientID, jsCode string) (connector.Identity, *oidc.Error) {
	id, e := c.exchangeJSCode(ctx, clientID, jsCode)
	outcome := "ok"
	if e != nil {
		outcome = e.Code
	}
	c.log.InfoContext(ctx, "mini program token exchange", "client_id", clientID, "outcome", outcome)
	return id, e
}

func (c *Connector) exchangeJSCode(ctx context.Context, clientID, jsCode string) (connector.Identity, *oidc.Error) {
	if len(jsCode) > maxJSCodeLen {
		return connector.Identity{}, oidc.ErrInvalidGrant("the wx.login code is not valid; call wx.login again and send the new code")
	}
	mp := c.opt.WeChat.MiniProgram
	if mp == nil {
		return connector.Identity{}, oidc.ErrUnauthorizedClient("no mini program is configured")
	}
	sess, err := c.client.Code2Session(ctx, wx.App{ID: mp.AppID, Secret: mp.AppSecret}, jsCode)
	if err != nil {
		return connector.Identity{}, c.miniProgramError(ctx, clientID, err)
	}
	// Keep only the identifiers: the session_key goes no further than this.
	profile := &wx.UserInfo{OpenID: sess.OpenID, UnionID: sess.UnionID}
	if c.opt.Subject == config.SubjectUnionID && profile.UnionID == "" {
		// The subject rule of identity, checked here first so that the
		// operator reads the fix for a mini program, not for the Official
		// Account (config allows a mini program only with subject unionid).
		c.log.WarnContext(ctx, "mini program token exchange: WeChat returned no unionid, so no token was issued (subject: unionid); "+
			"bind the mini program (wechat.mini_program) to the same WeChat Open Platform account as the Official Account "+
			"(open.weixin.qq.com → 管理中心 → 小程序 → 绑定)",
			"client_id", clientID)
		return connector.Identity{}, oidc.ErrInvalidGrant("WeChat did not provide a unionid for this account, so the sign-in cannot identify the user; the administrator has been told how to fix this")
	}
	id, e := c.identity(ctx, mp.AppID, profile)
	if e != nil {
		if e.Code == oidc.CodeAccessDenied {
			// access_denied is not a token endpoint error (RFC 6749 §5.2):
			// the subject token cannot be used, which is invalid_grant.
			return connector.Identity{}, oidc.ErrInvalidGrant("%s", e.Description)
		}
		return connector.Identity{}, e
	}
	return id, nil
}

// miniProgramError maps a /sns/jscode2session failure to a token endpoint
// error (RFC 6749 §5.2) and logs what the operator needs. It follows
// wechatErrorTable (mapWeChatError) for what is transient and what is
// misconfiguration, with two differences: what the authorization endpoint
// calls access_denied (this code cannot be used) is invalid_grant here, and
// the operator lines speak of wechat.mini_program and of a code that is
// never retried.
func (c *Connector) miniProgramError(ctx context.Context, clientID string, err error) *oidc.Error {
	const endpoint = "/sns/jscode2session"
	m := mapWeChatError(err)
	operator, level := m.Operator, m.Level
	var e *oidc.Error
	switch {
	case errors.Is(err, wx.ErrInvalidCode):
		e = oidc.ErrInvalidGrant("WeChat did not accept the wx.login code: it is invalid, expired or for another mini program; call wx.login again and send the new code")
		operator = "WeChat rejected the js_code (40029: invalid, expired, or from another appid than wechat.mini_program.app_id)"
	case errors.Is(err, wx.ErrCodeUsed):
		e = oidc.ErrInvalidGrant("the wx.login code was already used; call wx.login again and send the new code")
		operator = "WeChat says the js_code was already used (40163): the mini program sent the same code twice"
	case errors.Is(err, wx.ErrCodeBlocked):
		e = oidc.ErrInvalidGrant("WeChat blocked this sign-in (the account is considered high-risk)")
		operator = "WeChat blocked the js_code (40226: high-risk user)"
	case errors.Is(err, wx.ErrBadCredentials):
		e = oidc.ErrServerError("%s", m.Description)
		operator = "WeChat rejected the mini program credentials: check wechat.mini_program.app_id and app_secret (a reset AppSecret must be updated here), that the AppSecret is not frozen, and the server IP whitelist"
		level = slog.LevelError
	case m.OIDCCode == oidc.CodeTemporarilyUnavailable:
		e = oidc.ErrTemporarilyUnavailable("%s", m.Description)
		operator = "WeChat could not exchange a mini program js_code (system busy -1, API quota 45009/45011, or unreachable); " +
			"it is not retried (a js_code is single-use): the mini program must call wx.login again"
	case m.OIDCCode == oidc.CodeAccessDenied:
		e = oidc.ErrInvalidGrant("%s", m.Description)
	default:
		e = oidc.ErrServerError("%s", m.Description)
	}
	if e.Code == oidc.CodeInvalidGrant {
		level = slog.LevelInfo // the person's or the mini program's code, not the operator's problem
	}
	c.log.Log(ctx, level, "WeChat call failed: "+operator,
		"endpoint", endpoint, "client_id", clientID, "error", err.Error())
	return e
}
