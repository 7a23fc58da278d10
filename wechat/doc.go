// Package wechat is a client for WeChat's web-authorization APIs and nothing
// else: it knows WeChat, never OIDC.
//
// It owns:
//   - building the browser URLs that start a login: OAAuthorizeURL for an
//     Official Account (公众号/服务号 网页授权, open.weixin.qq.com/connect/oauth2/authorize)
//     and QRConnectURL for an Open Platform website app (网站应用 扫码登录,
//     open.weixin.qq.com/connect/qrconnect), with the parameter order WeChat
//     regex-checks;
//   - the server-side calls on api.weixin.qq.com: code → access token
//     (/sns/oauth2/access_token), refresh (/sns/oauth2/refresh_token), token check
//     (/sns/auth), profile (/sns/userinfo) and the mini-program login
//     (/sns/jscode2session);
//   - WeChat's error codes: one table (errcodes.go) mapping every errcode the
//     project knows to an exported constant, an English meaning and a small set of
//     sentinel kinds usable with errors.Is (ErrInvalidCode, ErrCodeUsed, ...).
//
// What it guarantees:
//   - Every call is one plain GET bounded by the client's timeout, whatever the
//     caller's context says; there are no retries (an authorization code is
//     single-use, so a retried exchange can only fail with 40163).
//   - Any Content-Type is accepted (WeChat sends text/plain); the body is read up
//     to 1 MiB and decoded as JSON. HTTP 200 with a non-zero errcode is a *Error;
//     anything else that goes wrong on the wire is a *UnavailableError, which
//     matches ErrUnavailable.
//   - No error string, String, GoString or slog value produced by this package
//     contains an app secret, an authorization code, an access or refresh token or
//     a session_key. Go's *url.Error prints the whole request URL (secret=...,
//     code=..., access_token=...), so it is never returned or wrapped; only the
//     endpoint path is reported.
//
// The facts behind this package are in the project's wechat-api.md
// (sections cited as §N in comments). The sub-package simulator is a stand-in
// for WeChat used by development mode and tests.
package wechat
