package dev

import (
	"context"
	"encoding/json"
	"html/template"
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
	"github.com/wechat-oidc/wechat-oidc/oidc"
)

// demoRP is the small relying party of dev mode. It is a real OIDC client
// (go-oidc + x/oauth2) talking to the provider over HTTP, with state, nonce
// and PKCE, so what it shows is what any RP would get.
type demoRP struct {
	issuer, clientID, secret string
	log                      *slog.Logger
	http                     *http.Client

	mu       sync.Mutex
	provider *gooidc.Provider
	pending  map[string]demoPending // by state
}

type demoPending struct {
	nonce, verifier string
	expires         time.Time
}

func newDemoRP(issuer, clientID, secret string, log *slog.Logger) *demoRP {
	return &demoRP{
		issuer: issuer, clientID: clientID, secret: secret, log: log,
		http:    &http.Client{Timeout: 10 * time.Second},
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
body { margin: 0; font-family: -apple-system, "PingFang SC", "Helvetica Neue", sans-serif; background: #f5f6f7; color: #1f2328; }
main { max-width: 760px; margin: 0 auto; padding: 40px 20px; }
h1 { font-size: 24px; } h2 { font-size: 17px; margin-top: 28px; }
.card { background: #fff; border-radius: 12px; padding: 24px; box-shadow: 0 1px 3px rgba(0,0,0,.08); }
a.button { display: inline-block; padding: 12px 22px; border-radius: 8px; background: #07c160; color: #fff; text-decoration: none; font-size: 16px; }
a.secondary { background: #fff; color: #07c160; border: 1px solid #07c160; margin-left: 8px; }
pre { background: #0d1117; color: #e6edf3; padding: 16px; border-radius: 8px; overflow-x: auto; font-size: 13px; }
.error { color: #cf222e; }
p.muted { color: #656d76; font-size: 14px; }
</style></head><body><main>
<h1>{{.Title}}</h1>
<div class="card">
{{if .Error}}
<p class="error">error: <b>{{.Error}}</b></p>
{{if .ErrorDescription}}<p>{{.ErrorDescription}}</p>{{end}}
<p><a class="button" href="/demo/login">Log in with WeChat again</a></p>
{{else if .Claims}}
<p>Signed in as <b>{{.Name}}</b> (sub <code>{{.Subject}}</code>).</p>
<h2>ID token claims (verified by go-oidc)</h2><pre>{{.Claims}}</pre>
<h2>userinfo</h2><pre>{{.Userinfo}}</pre>
<p class="muted">Logging in again now is silent: the SSO session answers without WeChat (see auth_time and sid).</p>
<p><a class="button" href="/demo/login">Log in again (SSO)</a><a class="button secondary" href="/demo/login?prompt=login">Log in as someone else</a><a class="button secondary" href="{{.LogoutURL}}">Log out</a></p>
{{else}}
<p>This is a demo application (an OpenID Connect relying party) running next to wechat-oidc and a WeChat simulator.
Nothing leaves this machine.</p>
<p><a class="button" href="/demo/login">Log in with WeChat</a></p>
<p class="muted">The button lets wechat-oidc pick the WeChat flow by browser: inside WeChat the Official Account
page, on a desktop WeChat's QR page of the website app. Or try one flow on purpose:</p>
<p><a class="button secondary" href="/demo/login?flow=official_account">In WeChat (Official Account)</a>
<a class="button secondary" href="/demo/login?flow=website_app">Desktop QR (website app)</a>
<a class="button secondary" href="/demo/login?flow=cross_device">Desktop QR, phone confirms (Official Account only)</a></p>
<p class="muted">Each shows a page that looks like WeChat's: pick a simulated WeChat user.
alice and bob have a unionid; carol has none (so subject: unionid refuses her); the snapshot user shows what
happens on WeChat's snapshot page. The cross-device page shows a QR code and, in dev mode, its link: open it in
another window to play the phone. Dev mode asks for the profile at every Official Account login so that you can pick another simulated
user; a real deployment defaults to silent_first (the consent popup at most once per person).</p>
{{end}}
</div>
<p class="muted">Issuer: <code>{{.Issuer}}</code> · <a href="{{.Issuer}}/.well-known/openid-configuration">discovery</a> · <a href="{{.Issuer}}/jwks">JWKS</a></p>
</main></body></html>`))

type demoView struct {
	Title, Issuer, Error, ErrorDescription string
	Name, Subject, Claims, Userinfo        string
	LogoutURL                              string
}

func (d *demoRP) render(c echo.Context, status int, v demoView) error {
	v.Issuer = d.issuer
	if v.Title == "" {
		v.Title = "wechat-oidc demo app"
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
		return d.render(c, http.StatusOK, demoView{Title: "Sign-in failed", Error: e, ErrorDescription: q.Get("error_description")})
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
	return d.render(c, http.StatusOK, demoView{Title: "Signed in", Name: name, Subject: idt.Subject, Claims: prettyJSON(claims), Userinfo: uiJSON, LogoutURL: logout})
}

func prettyJSON(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}
