package dev

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"

	"github.com/wechat-oidc/wechat-oidc/bridge"
	"github.com/wechat-oidc/wechat-oidc/config"
	wechatconn "github.com/wechat-oidc/wechat-oidc/connector/wechat"
	template "github.com/wechat-oidc/wechat-oidc/internal/template/html"
	"github.com/wechat-oidc/wechat-oidc/oidc"
)

// demoRP is the small relying party of dev mode. It is a real OIDC client
// (go-oidc + x/oauth2) talking to the provider over HTTP, with state, nonce
// and PKCE, so what it shows is what any RP would get.
type demoRP struct {
	issuer, clientID, secret string
	log                      *slog.Logger
	http                     *http.Client
	org                      string
	logo, phoneQR            template.URL

	mu       sync.Mutex
	provider *gooidc.Provider
	pending  map[string]demoPending // by state
}

type demoPending struct {
	nonce, verifier string
	expires         time.Time
}

// demoConfig builds a demoRP.
type demoConfig struct {
	issuer, clientID, secret string
	log                      *slog.Logger
	// http reaches the provider (discovery, token, userinfo, JWKS).
	http *http.Client
	ui   config.UI
	// phoneQR: a QR code of the issuer for a phone to scan (a LAN or
	// public issuer), or "".
	phoneQR template.URL
}

func newDemoRP(c demoConfig) *demoRP {
	return &demoRP{
		issuer: c.issuer, clientID: c.clientID, secret: c.secret, log: c.log, http: c.http,
		// A data: URL config read from a PNG or JPEG (or dev mode drew).
		org: c.ui.Organization, logo: template.URL(c.ui.LogoDataURL), phoneQR: c.phoneQR,
		pending: map[string]demoPending{},
	}
}

func (d *demoRP) mount(e *echo.Echo) {
	e.GET("/", d.home)
	e.GET("/demo/login", d.login)
	e.GET("/demo/callback", d.callback)
}

func (d *demoRP) oauth(ctx context.Context) (*oauth2.Config, *gooidc.Provider, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.provider == nil {
		p, err := gooidc.NewProvider(gooidc.ClientContext(ctx, d.http), d.issuer)
		if err != nil {
			return nil, nil, err
		}
		d.provider = p
	}
	return &oauth2.Config{
		ClientID: d.clientID, ClientSecret: d.secret,
		Endpoint:    d.provider.Endpoint(),
		RedirectURL: d.issuer + "/demo/callback",
		Scopes:      []string{gooidc.ScopeOpenID, "profile", wechatconn.ScopeWeChat},
	}, d.provider, nil
}

var demoTemplate = template.Must(template.New("demo").Parse(`<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>
* { box-sizing: border-box; }
body { margin: 0; font-family: -apple-system, "PingFang SC", "Helvetica Neue", "Microsoft YaHei", sans-serif; background: #f5f6f7; color: #1f2328; -webkit-text-size-adjust: 100%; }
header { background: #fff; border-bottom: 1px solid #e5e5e5; }
header div { max-width: 760px; margin: 0 auto; padding: 10px 20px; display: flex; align-items: center; gap: 8px; font-size: 14px; line-height: 20px; }
header img { width: 28px; height: 28px; border-radius: 6px; object-fit: contain; flex: none; }
header b { font-weight: 600; overflow-wrap: anywhere; min-width: 0; }
header span { color: #656d76; white-space: nowrap; }
main { max-width: 760px; margin: 0 auto; padding: 28px 16px 40px; overflow-wrap: anywhere; }
h1 { font-size: 22px; margin: 0 0 16px; } h2 { font-size: 16px; margin: 28px 0 8px; }
.card { background: #fff; border-radius: 12px; padding: 24px 20px; box-shadow: 0 1px 3px rgba(0,0,0,.08); }
.state { display: flex; align-items: center; gap: 12px; margin-bottom: 16px; }
.state h1 { margin: 0; }
.icon { width: 44px; height: 44px; border-radius: 50%; flex: none; display: flex; align-items: center; justify-content: center; }
.icon svg { width: 28px; height: 28px; } .ok { background: #07c160; } .warn { background: #fa5151; }
.buttons { display: flex; flex-wrap: wrap; gap: 10px; margin: 16px 0; }
a.button { display: inline-block; padding: 11px 20px; border-radius: 8px; background: #07c160; color: #fff; text-decoration: none; font-size: 16px; line-height: 22px; text-align: center; }
a.secondary { background: #fff; color: #07a453; border: 1px solid #07c160; padding: 10px 19px; font-size: 15px; }
pre { background: #0d1117; color: #e6edf3; padding: 14px; border-radius: 8px; font-size: 13px; line-height: 1.5; margin: 0;
  white-space: pre-wrap; overflow-wrap: anywhere; word-break: break-word; }
p { line-height: 1.6; margin: 0 0 10px; }
p.en, .en { color: #656d76; font-size: 14px; }
.error { color: #cf222e; }
p.muted { color: #656d76; font-size: 14px; }
code { font-family: ui-monospace, Menlo, monospace; font-size: 13px; }
.phone { display: flex; gap: 16px; align-items: center; margin: 0 0 16px; padding: 12px 0; border-top: 1px solid #eee; border-bottom: 1px solid #eee; }
.phone img { width: 148px; height: 148px; flex: none; image-rendering: pixelated; }
footer { margin-top: 16px; }
@media (max-width: 480px) { .card { padding: 20px 16px; } pre { font-size: 12px; padding: 12px; } .buttons a.button { display: block; width: 100%; } .phone { flex-direction: column; align-items: flex-start; } }
</style></head><body>
<header data-org><div>{{if .Logo}}<img src="{{.Logo}}" alt="">{{end}}<b>{{.Org}}</b><span>· 演示应用 Demo app</span></div></header>
<main data-page="{{.Page}}">
<div class="card">
{{if .Error}}
<div class="state"><div class="icon warn" data-icon="warn" aria-hidden="true"><svg viewBox="0 0 24 24"><path d="M12 5.6v8.2" stroke="#fff" stroke-width="2.8" stroke-linecap="round"/><circle cx="12" cy="18" r="1.7" fill="#fff"/></svg></div>
<h1>登录失败 · Sign-in failed</h1></div>
<p class="error">error: <b>{{.Error}}</b></p>
{{if .ErrorDescription}}<p>{{.ErrorDescription}}</p>{{end}}
<div class="buttons"><a class="button" href="/demo/login">重新用微信登录 · Log in with WeChat again</a></div>
{{else if .Claims}}
<div class="state"><div class="icon ok" data-icon="ok" aria-hidden="true"><svg viewBox="0 0 24 24"><path d="M5.5 12.5l4.2 4.2 8.8-9.4" fill="none" stroke="#fff" stroke-width="2.6" stroke-linecap="round" stroke-linejoin="round"/></svg></div>
<h1>已登录 · Signed in</h1></div>
<p>你好，<b>{{.Name}}</b>！你已通过微信登录这个演示应用。</p>
<p class="en">Signed in as <b>{{.Name}}</b> (sub <code>{{.Subject}}</code>).</p>
<div class="buttons"><a class="button" href="/demo/login">再次登录 (SSO) · Log in again (SSO)</a><a class="button secondary" href="/demo/login?prompt=login">换一个人登录 · Log in as someone else</a><a class="button secondary" href="{{.LogoutURL}}">退出 · Log out</a></div>
<p class="muted">现在再次登录不会经过微信：单点登录会话直接应答（见 auth_time 和 sid）。<br>Logging in again now is silent: the SSO session answers without WeChat (see auth_time and sid).</p>
<h2>ID 令牌声明 · ID token claims (verified by go-oidc)</h2><pre>{{.Claims}}</pre>
<h2>用户信息 · userinfo</h2><pre>{{.Userinfo}}</pre>
{{else}}
<h1>wechat-oidc 演示应用</h1>
<p>这是一个演示应用（OpenID Connect 依赖方），和 wechat-oidc、模拟微信一起运行。不会连接真实的微信。</p>
<p class="en">This is a demo application (an OpenID Connect relying party) running next to wechat-oidc and a WeChat simulator. Nothing goes to the real WeChat.</p>
<div class="buttons"><a class="button" href="/demo/login">用微信登录 · Log in with WeChat</a></div>
{{if .PhoneQR}}<div class="phone" data-phone-qr><img src="{{.PhoneQR}}" alt="QR code of {{.Issuer}}/"><p>用手机微信扫一扫，在手机上试用（手机和这台电脑在同一网络）。<br><span class="en">Scan with WeChat on a phone on the same network to try it there: <code>{{.Issuer}}/</code></span></p></div>{{end}}
<p class="muted">按钮让 wechat-oidc 按浏览器选择微信的登录方式：在微信里用公众号网页授权，在电脑上用网站应用的扫码页。也可以指定一种：<br>
The button lets wechat-oidc pick the WeChat flow by browser: inside WeChat the Official Account page, on a desktop WeChat's QR page of the website app. Or try one flow on purpose:</p>
<div class="buttons"><a class="button secondary" href="/demo/login?flow=official_account">在微信中（公众号）· In WeChat (Official Account)</a>
<a class="button secondary" href="/demo/login?flow=website_app">电脑扫码（网站应用）· Desktop QR (website app)</a>
<a class="button secondary" href="/demo/login?flow=cross_device">电脑扫码、手机确认 · Desktop QR, phone confirms (Official Account only)</a></div>
<p class="muted">每种方式都会打开一个模仿微信的页面：选一个模拟微信用户。alice 和 bob 有 unionid；carol 没有（所以 subject: unionid 会拒绝她）；快照页用户演示微信快照页的情况。公众号网页授权只能在微信里打开：在电脑浏览器里，模拟微信会显示「请在微信客户端打开链接」，开发模式下多一个按钮，可以把这个浏览器当作微信。扫码登录页在开发模式下还显示二维码的链接，在另一个窗口打开它即可扮演手机。</p>
<p class="muted">Each shows a page that looks like WeChat's: pick a simulated WeChat user. alice and bob have a unionid; carol has none (so subject: unionid refuses her); the snapshot user shows what happens on WeChat's snapshot page.
The Official Account page opens only inside WeChat: in a desktop browser the simulator says 请在微信客户端打开链接 ("open the link in WeChat"), and in dev mode offers a button to treat this browser as WeChat's. The cross-device page shows a QR code and, in dev mode, its link: open it in another window to play the phone.
Dev mode asks for the profile at every Official Account login so that you can pick another simulated user; a real deployment defaults to silent_first (the consent popup at most once per person).</p>
{{end}}
</div>
<footer><p class="muted">Issuer: <code>{{.Issuer}}</code> · <a href="{{.Issuer}}/.well-known/openid-configuration">discovery</a> · <a href="{{.Issuer}}/jwks">JWKS</a></p></footer>
</main></body></html>`))

type demoView struct {
	Title, Issuer, Error, ErrorDescription string
	Name, Subject, Claims, Userinfo        string
	LogoutURL                              string
	// Page is the data-page marker: demo-home, demo-signed-in, demo-error.
	Page string
	// Org and Logo are the organisation's (ui.organization, ui.logo).
	Org  string
	Logo template.URL
	// PhoneQR is a QR code of the issuer, shown when a phone can reach it.
	PhoneQR template.URL
}

func (d *demoRP) render(c echo.Context, status int, v demoView) error {
	v.Issuer = d.issuer
	v.Org, v.Logo = d.org, d.logo
	switch {
	case v.Error != "":
		v.Page = "demo-error"
		if v.Title == "" {
			v.Title = "登录失败 · Sign-in failed"
		}
	case v.Claims != "":
		v.Page = "demo-signed-in"
	default:
		v.Page = "demo-home"
		v.PhoneQR = d.phoneQR
	}
	if v.Title == "" {
		v.Title = "wechat-oidc 演示应用 · demo app"
	}
	var b strings.Builder
	if err := demoTemplate.Execute(&b, v); err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.HTML(status, b.String())
}

func (d *demoRP) home(c echo.Context) error { return d.render(c, http.StatusOK, demoView{}) }

func (d *demoRP) login(c echo.Context) error {
	conf, _, err := d.oauth(c.Request().Context())
	if err != nil {
		d.log.Error("demo: discovery failed", "error", err)
		return d.render(c, http.StatusBadGateway, demoView{Error: "discovery failed", ErrorDescription: err.Error()})
	}
	state, nonce, verifier := oidc.NewToken(), oidc.NewToken(), oauth2.GenerateVerifier()
	opts := []oauth2.AuthCodeOption{gooidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)}
	if c.QueryParam("prompt") == "login" {
		// "Log in as someone else": skip the SSO session.
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "login"))
	}
	switch flow := c.QueryParam("flow"); flow {
	case config.FlowOfficialAccount, config.FlowWebsiteApp, config.FlowCrossDevice:
		// Dev mode runs in one desktop browser: the demo names the flow
		// (wechat_flow) instead of leaving it to the User-Agent. A forced
		// flow skips the SSO session so that the flow is really shown.
		opts = append(opts, oauth2.SetAuthURLParam(wechatconn.ParamFlow, flow), oauth2.SetAuthURLParam("prompt", "login"))
	}
	d.mu.Lock()
	now := time.Now()
	for k, p := range d.pending {
		if now.After(p.expires) {
			delete(d.pending, k)
		}
	}
	d.pending[state] = demoPending{nonce: nonce, verifier: verifier, expires: now.Add(15 * time.Minute)}
	d.mu.Unlock()
	c.SetCookie(&http.Cookie{Name: "demo_state", Value: state, Path: "/demo/", HttpOnly: true, SameSite: http.SameSiteLaxMode, MaxAge: 900})
	return c.Redirect(http.StatusFound, conf.AuthCodeURL(state, opts...))
}

func (d *demoRP) callback(c echo.Context) error {
	ctx := gooidc.ClientContext(c.Request().Context(), d.http)
	q := c.QueryParams()
	ck, err := c.Cookie("demo_state")
	if err != nil || ck.Value == "" || ck.Value != q.Get("state") {
		return d.render(c, http.StatusBadRequest, demoView{Error: "state mismatch", ErrorDescription: "the state returned does not match this browser's login"})
	}
	d.mu.Lock()
	p, ok := d.pending[ck.Value]
	delete(d.pending, ck.Value)
	d.mu.Unlock()
	if !ok {
		return d.render(c, http.StatusBadRequest, demoView{Error: "unknown state", ErrorDescription: "this login was already finished or expired"})
	}
	if q.Get("iss") != d.issuer {
		return d.render(c, http.StatusBadRequest, demoView{Error: "issuer mismatch", ErrorDescription: "iss in the response is not the expected issuer (RFC 9207)"})
	}
	if e := q.Get("error"); e != "" {
		return d.render(c, http.StatusOK, demoView{Error: e, ErrorDescription: q.Get("error_description")})
	}
	conf, provider, err := d.oauth(ctx)
	if err != nil {
		return d.render(c, http.StatusBadGateway, demoView{Error: "discovery failed", ErrorDescription: err.Error()})
	}
	tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(p.verifier))
	if err != nil {
		return d.render(c, http.StatusBadGateway, demoView{Error: "token exchange failed", ErrorDescription: err.Error()})
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&gooidc.Config{ClientID: d.clientID}).Verify(ctx, raw)
	if err != nil {
		return d.render(c, http.StatusBadGateway, demoView{Error: "ID token rejected", ErrorDescription: err.Error()})
	}
	if idt.Nonce != p.nonce {
		return d.render(c, http.StatusBadGateway, demoView{Error: "nonce mismatch", ErrorDescription: "the ID token's nonce is not the one sent"})
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		return d.render(c, http.StatusBadGateway, demoView{Error: "at_hash mismatch", ErrorDescription: err.Error()})
	}
	var claims map[string]any
	_ = idt.Claims(&claims)
	ui, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	uiJSON := ""
	if err != nil {
		uiJSON = "userinfo failed: " + err.Error()
	} else {
		var m map[string]any
		_ = ui.Claims(&m)
		uiJSON = prettyJSON(m)
	}
	name, _ := claims["name"].(string)
	if name == "" {
		name = idt.Subject
	}
	logout := d.issuer + bridge.PathLogout + "?" + url.Values{
		"id_token_hint": {raw}, "post_logout_redirect_uri": {d.issuer + "/"}, "state": {oidc.NewToken()[:8]},
	}.Encode()
	return d.render(c, http.StatusOK, demoView{Title: "已登录 · Signed in", Name: name, Subject: idt.Subject, Claims: prettyJSON(claims), Userinfo: uiJSON, LogoutURL: logout})
}

func prettyJSON(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}
