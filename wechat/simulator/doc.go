// Package simulator is a stand-in for WeChat's web authorization, for
// development mode and tests. It imports nothing of the project.
//
// One http.Handler serves both sides of WeChat, at paths relative to its
// mount point (mount it with http.StripPrefix):
//
//	browser side (open.weixin.qq.com)     /connect/oauth2/authorize, /connect/qrconnect
//	server side  (api.weixin.qq.com)      /sns/oauth2/access_token, /sns/oauth2/refresh_token,
//	                                      /sns/auth, /sns/userinfo, /sns/jscode2session
//	simulator's own                       /_sim/authorize (the consent form's POST),
//	                                      /_sim/avatar/{user}/{size} (SVG avatars),
//	                                      /_sim/wechat-browser (dev mode, see below)
//
// Like WeChat, the Official Account authorize page works only in WeChat's
// in-app browser (MicroMessenger in the User-Agent); any other browser gets
// "请在微信客户端打开链接". Config.DevBrowserSwitch adds a button there that
// makes the browser count as WeChat's (a cookie), for dev mode. qrconnect,
// the desktop QR page, opens anywhere.
//
// It follows the project's wechat-api.md (sections cited as §N): parameter
// order checked by regex, errors on the authorize step shown as pages and
// never redirected, single-use codes with WeChat's lifetimes, errcodes with
// "rid" suffixes, HTTP 200 + text/plain for every API answer, the unionid
// rules by scope and binding, snapshot-page users, the 2021 profile
// adjustment. Where WeChat's behaviour is UNCONFIRMED the comment says which
// choice was made.
//
// Tests drive it without a browser: AutoApprove picks the user, AutoRefuse
// and SetRefusalMode simulate refusal, InjectFault breaks the next calls,
// Calls records what happened, and Config.Now moves the clock.
package simulator
