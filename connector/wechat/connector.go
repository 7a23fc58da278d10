// Package wechat is the WeChat connector: everything the sign-in needs to
// know about WeChat — which app and scope a leg uses (Official Account web
// authorization, the website app's qrconnect), silent-first, snapshot-page
// users, the openid → unionid memory, the errcode table, the subject rule and
// the mini program's js_code exchange. It talks to WeChat through package
// wechat (the API client) and to the login core through package connector.
package wechat

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/wechat-oidc/wechat-oidc/config"
	"github.com/wechat-oidc/wechat-oidc/connector"
	"github.com/wechat-oidc/wechat-oidc/directory"
	"github.com/wechat-oidc/wechat-oidc/oidc"
	wx "github.com/wechat-oidc/wechat-oidc/wechat"
)

// Authorize parameters the connector understands besides the OIDC ones.
const (
	// ParamFlow chooses the flow when the client has none fixed:
	// official_account, website_app or cross_device.
	ParamFlow = "wechat_flow"
	// ParamForcePopup=true asks WeChat for its consent popup ("true" or
	// "false"; nothing else is accepted).
	ParamForcePopup = "wechat_force_popup"
	// ScopeWeChat releases the raw WeChat identifiers (openid, unionid).
	ScopeWeChat = "wechat"
)

// Where a leg runs (Leg.App).
const (
	appOfficialAccount = "oa"
	appWebsite         = "web"
)

// Options configure a Connector.
// ProfileStore keeps what sign-ins taught about openids (the people
// directory's Profiles does).
type ProfileStore interface {
	Remember(ctx context.Context, p directory.Profile) error
	Get(ctx context.Context, provider, appID, openid string) (directory.Profile, error)
}

var _ ProfileStore = directory.Profiles{}

type Options struct {
	WeChat  config.WeChat
	Subject string // config.SubjectUnionID or config.SubjectOpenID
	// Clients are the clients' WeChat settings by client id.
	Clients map[string]ClientSettings
	// CallbackURL is where WeChat returns the browser ({issuer}/wechat/callback).
	CallbackURL string
	// Profiles keeps the openid → unionid links and profiles between
	// logins, durably (the people directory).
	Profiles   ProfileStore
	Logger     *slog.Logger
	HTTPClient *http.Client // nil: a default client
	Now        func() time.Time
	// ObserveCall, when set, is told of every call to WeChat's API
	// (metrics): endpoint path, errcode ("0", WeChat's, or "unavailable")
	// and duration.
	ObserveCall func(endpoint, errcode string, took time.Duration)
}

// ClientSettings are one client's WeChat settings.
type ClientSettings struct {
	Flow        string // "" (by browser), official_account, website_app, cross_device
	ForcePopup  bool
	MiniProgram bool
	// CrossDevice: the client may use cross-device QR sign-in (already
	// combined with the deployment's wechat.cross_device).
	CrossDevice bool
}

// Connector is the WeChat connector.
type Connector struct {
	opt    Options
	client *wx.Client
	oa     wx.App
	log    *slog.Logger
	now    func() time.Time
}

// New builds the WeChat connector from validated options.
func New(o Options) (*Connector, error) {
	if o.WeChat.OfficialAccount == nil {
		return nil, errors.New("wechat connector: an Official Account is required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	client := wx.NewClient(o.WeChat.APIBaseURL, o.WeChat.Timeout, o.HTTPClient)
	if o.ObserveCall != nil {
		client.SetObserver(o.ObserveCall)
	}
	return &Connector{
		opt:    o,
		client: client,
		oa:     wx.App{ID: o.WeChat.OfficialAccount.AppID, Secret: o.WeChat.OfficialAccount.AppSecret},
		log:    o.Logger,
		now:    o.Now,
	}, nil
}

// leg is one round trip to WeChat's authorization (connector.Leg's content).
type leg struct {
	// App is which WeChat app authorizes: the Official Account or the website app.
	App string `json:"app"`
	// Scope is the WeChat scope (snsapi_base, snsapi_userinfo, snsapi_login).
	Scope string `json:"scope"`
	// SilentFirst marks the snsapi_base leg of silent_first: if it yields no
	// known unionid, a snsapi_userinfo leg follows.
	SilentFirst bool `json:"silent_first,omitempty"`
	ForcePopup  bool `json:"force_popup,omitempty"`
}

func (l leg) raw() connector.Leg {
	b, _ := json.Marshal(l) // a struct of strings and bools always marshals
	return b
}

// AuthorizeParams: the connector's own authorize parameters.
func (c *Connector) AuthorizeParams() []string { return []string{ParamFlow, ParamForcePopup} }

// ScopeClaims: scope wechat releases the raw identifiers.
func (c *Connector) ScopeClaims() map[string][]string {
	return map[string][]string{ScopeWeChat: {"openid", "unionid"}}
}

// MaxCallbackDuration: the code exchange, then userinfo with its retries.
func (c *Connector) MaxCallbackDuration() time.Duration {
	return 2*c.opt.WeChat.Timeout + c.opt.WeChat.UserinfoRetryDeadline + 2*time.Second
}

// IsWeChatBrowser: WeChat's in-app browser says MicroMessenger in its User-Agent.
func IsWeChatBrowser(ua string) bool { return strings.Contains(ua, "MicroMessenger") }

// CanRunPhoneLeg: the Official Account's web authorization works only in
// WeChat's own browser.
func (c *Connector) CanRunPhoneLeg(ua string) bool { return IsWeChatBrowser(ua) }

// Start picks where the WeChat login runs: an explicit authorize parameter,
// else the client's setting, else the browser: the WeChat in-app browser
// uses the Official Account's web authorization; any other browser the
// desktop flow (the website app's qrconnect if one is configured, else
// cross-device QR with the Official Account).
func (c *Connector) Start(r connector.StartRequest) (connector.Start, *oidc.Error) {
	flow, reason, e := c.chooseFlow(r)
	if e != nil {
		return connector.Start{}, e
	}
	c.log.Info("authorize: WeChat flow chosen", "client_id", r.ClientID, "flow", flow, "reason", reason)
	cs := c.opt.Clients[r.ClientID]
	var askedPopup bool
	switch v, ok := r.Extra[ParamForcePopup]; {
	case !ok, v == "false":
	case v == "true":
		askedPopup = true
	default:
		return connector.Start{}, oidc.ErrInvalidRequest("wechat_force_popup must be true or false")
	}
	forcePopup := r.Consent || askedPopup || cs.ForcePopup
	st := connector.Start{Flow: flow}
	switch flow {
	case config.FlowWebsiteApp:
		st.Leg = leg{App: appWebsite, Scope: wx.ScopeLogin}.raw()
	case config.FlowCrossDevice:
		st.Leg, st.CrossDevice = c.officialAccountLeg(forcePopup).raw(), true
	default:
		st.Leg = c.officialAccountLeg(forcePopup).raw()
	}
	return st, nil
}

// chooseFlow: the client's fixed flow, else the wechat_flow parameter, else
// the browser. A fixed flow is never overridden by the request: a phishing
// page could otherwise turn a client pinned to the Official Account into a
// cross-device QR code it can relay. Cross-device sign-in is offered only
// where the deployment and the client allow it.
func (c *Connector) chooseFlow(r connector.StartRequest) (flow, reason string, e *oidc.Error) {
	cs, known := c.opt.Clients[r.ClientID]
	crossDevice := known && cs.CrossDevice
	v, asked := r.Extra[ParamFlow]
	if asked {
		switch v {
		case config.FlowOfficialAccount:
		case config.FlowCrossDevice:
			if !crossDevice {
				return "", "", oidc.ErrInvalidRequest("wechat_flow=cross_device is not available: cross-device QR sign-in is turned off for this application")
			}
		case config.FlowWebsiteApp:
			if c.opt.WeChat.WebsiteApp == nil {
				return "", "", oidc.ErrInvalidRequest("wechat_flow=website_app is not available: no website app is configured")
			}
		default:
			return "", "", oidc.ErrInvalidRequest("wechat_flow must be official_account, website_app or cross_device")
		}
	}
	if cs.Flow != "" {
		if asked && v != cs.Flow {
			return "", "", oidc.ErrInvalidRequest("wechat_flow=%s is not allowed: this application always signs in with %s", v, cs.Flow)
		}
		return cs.Flow, "client setting wechat_flow", nil
	}
	if asked {
		return v, "authorize parameter wechat_flow", nil
	}
	if IsWeChatBrowser(r.UserAgent) {
		return config.FlowOfficialAccount, "WeChat in-app browser", nil
	}
	if c.opt.WeChat.WebsiteApp != nil {
		return config.FlowWebsiteApp, "desktop browser, website app configured", nil
	}
	if !crossDevice {
		return "", "", oidc.ErrAccessDenied("sign-in from a computer is not available for this application: cross-device QR sign-in is turned off and no website app is configured; open the application in WeChat on the phone")
	}
	return config.FlowCrossDevice, "desktop browser, Official Account only", nil
}

// officialAccountLeg is the first Official Account leg, with the scope the
// configured mode asks for.
func (c *Connector) officialAccountLeg(forcePopup bool) leg {
	l := leg{App: appOfficialAccount, Scope: c.opt.WeChat.OfficialAccount.Scope, ForcePopup: forcePopup}
	if l.Scope == config.ScopeSilentFirst {
		// A forced popup wants the consent page: skip the silent leg.
		l.Scope, l.SilentFirst = wx.ScopeBase, !forcePopup
		if forcePopup {
			l.Scope = wx.ScopeUserInfo
		}
	}
	return l
}

func parseLeg(raw connector.Leg) (leg, error) {
	var l leg
	if err := json.Unmarshal(raw, &l); err != nil || (l.App != appOfficialAccount && l.App != appWebsite) {
		return leg{}, fmt.Errorf("wechat connector: unreadable leg: %v", err)
	}
	return l, nil
}

// LoginURL is WeChat's authorization page for a leg.
func (c *Connector) LoginURL(raw connector.Leg, state string) (string, error) {
	l, err := parseLeg(raw)
	if err != nil {
		return "", err
	}
	p := wx.AuthorizeParams{
		RedirectURI: c.opt.CallbackURL,
		Scope:       l.Scope,
		State:       state,
		ForcePopup:  l.ForcePopup,
		// connect_redirect=1 is what WeChat's own SDKs append; it is
		// reported to stop the duplicate callbacks that end in 40163
		// (wechat-api.md §1).
		ConnectRedirect: true,
	}
	if l.App == appWebsite {
		p.AppID = c.opt.WeChat.WebsiteApp.AppID
		return wx.QRConnectURL(c.opt.WeChat.OpenBaseURL, p), nil
	}
	p.AppID = c.oa.ID
	return wx.OAAuthorizeURL(c.opt.WeChat.OpenBaseURL, p), nil
}

func (c *Connector) app(l leg) wx.App {
	if l.App == appWebsite {
		return wx.App{ID: c.opt.WeChat.WebsiteApp.AppID, Secret: c.opt.WeChat.WebsiteApp.AppSecret}
	}
	return c.oa
}

// HandleCallback exchanges WeChat's code and says who signed in.
func (c *Connector) HandleCallback(ctx context.Context, raw connector.Leg, params map[string]string) connector.Outcome {
	l, err := parseLeg(raw)
	if err != nil {
		return connector.Failed(oidc.ErrServerError("the sign-in service had an internal error; try again").WithDebug(err))
	}
	code := params["code"]
	if code == "" {
		// The person refused (WeChat's old behaviour: state without code).
		c.log.InfoContext(ctx, "callback: WeChat returned no code (the user declined)")
		return connector.Outcome{Failure: &connector.Failure{Error: oidc.ErrAccessDenied("the user declined WeChat authorization"), Declined: true}}
	}
	app := c.app(l)
	// Never retried: WeChat may have consumed the code (a retry can only get 40163).
	tok, err := c.client.ExchangeCode(ctx, app, code)
	if err != nil {
		return c.callFailed(ctx, "/sns/oauth2/access_token", err)
	}
	if tok.Snapshot() {
		// Snapshot-page users are virtual (wechat-api.md §6): never a token,
		// never a stored link.
		c.log.InfoContext(ctx, "callback: snapshot-page virtual user; no token issued")
		return connector.Outcome{Retry: c.snapshotRetry(l)}
	}
	profile := &wx.UserInfo{OpenID: tok.OpenID, UnionID: tok.UnionID}
	if tok.HasScope(wx.ScopeUserInfo) || tok.HasScope(wx.ScopeLogin) {
		ui, err := c.userInfoWithRetry(ctx, tok)
		if err != nil {
			return c.callFailed(ctx, "/sns/userinfo", err)
		}
		profile = ui
		if profile.UnionID == "" {
			profile.UnionID = tok.UnionID
		}
		profile.OpenID = tok.OpenID
		c.remember(ctx, app.ID, profile)
	} else {
		// snsapi_base: openid only. What earlier logins taught us fills the
		// unionid and the profile.
		c.recall(ctx, app.ID, profile)
		if l.SilentFirst && profile.UnionID == "" && c.opt.Subject == config.SubjectUnionID {
			// Silent first found nobody it knows: once more, with the popup.
			c.log.InfoContext(ctx, "callback: silent login gave no unionid; asking WeChat for snsapi_userinfo once")
			next := l
			next.Scope, next.SilentFirst = wx.ScopeUserInfo, false
			return connector.Outcome{Next: next.raw()}
		}
	}
	id, e := c.identity(ctx, app.ID, profile)
	if e != nil {
		return connector.Failed(e)
	}
	c.log.InfoContext(ctx, "callback: WeChat identity resolved", "wechat_app", l.App, "wechat_scope", l.Scope)
	return connector.Outcome{Identity: &id}
}

// callFailed maps a failed WeChat call to the client's error and the
// person's message, and logs the operator's line.
func (c *Connector) callFailed(ctx context.Context, endpoint string, err error) connector.Outcome {
	m := mapWeChatError(err)
	c.log.Log(ctx, m.Level, "WeChat call failed: "+m.Operator,
		"endpoint", endpoint, "errcode", wx.ErrorCode(err), "error", err.Error())
	return connector.Outcome{Failure: &connector.Failure{
		Error:    &oidc.Error{Code: m.OIDCCode, Description: m.Description},
		PersonZH: m.PersonZH, PersonEN: m.PersonEN,
	}}
}

// snapshotRetry explains the snapshot page and offers a fresh WeChat
// authorization (with forcePopup when configured, so WeChat shows its
// consent page rather than the snapshot again).
func (c *Connector) snapshotRetry(l leg) *connector.Retry {
	next := l
	next.Scope, next.SilentFirst = wx.ScopeUserInfo, false
	next.ForcePopup = l.ForcePopup || c.opt.WeChat.SnapshotForcePopup
	return &connector.Retry{
		Leg:       next.raw(),
		Name:      "snapshot",
		Title:     "请使用完整服务 · Open the full service",
		Heading:   "请点击「使用完整服务」",
		MessageZH: "你正在微信的快照页中浏览，快照页中无法确认你的身份。请点击页面底部的「使用完整服务」并同意授权，或点击下方按钮重试。",
		MessageEN: "WeChat opened this page in snapshot mode, where it cannot tell who you are. Tap \"使用完整服务\" (use full service) at the bottom of the page and allow access, or try again below.",
	}
}

// userInfoWithRetry fetches the profile, retrying -1 (busy) and 45011
// (minute quota) with backoff until the configured deadline. Other errors
// are final.
func (c *Connector) userInfoWithRetry(ctx context.Context, tok *wx.AccessToken) (*wx.UserInfo, error) {
	deadline := c.now().Add(c.opt.WeChat.UserinfoRetryDeadline)
	wait := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		ui, err := c.client.UserInfo(ctx, tok.AccessToken, tok.OpenID, "zh_CN")
		if err == nil || !(errors.Is(err, wx.ErrBusy) || errors.Is(err, wx.ErrRateLimited)) {
			return ui, err
		}
		if c.now().Add(wait).After(deadline) {
			return nil, err
		}
		c.log.WarnContext(ctx, "WeChat /sns/userinfo busy; retrying", "errcode", wx.ErrorCode(err), "attempt", attempt)
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// remember stores what a snsapi_userinfo login taught: the openid's unionid
// (for silent logins later) and the profile (refreshed at every such login).
// A failure is logged and the sign-in goes on: the memory only saves a
// consent popup next time.
func (c *Connector) remember(ctx context.Context, appID string, p *wx.UserInfo) {
	dctx, cancel := directory.Bound(ctx) // the sign-in's budget, shared with the access decision
	defer cancel()
	err := c.opt.Profiles.Remember(dctx, directory.Profile{Provider: Provider, AppID: appID, OpenID: p.OpenID,
		UnionID: p.UnionID, Nickname: p.Nickname, AvatarURL: p.HeadImgURL})
	if err != nil {
		c.log.WarnContext(ctx, "could not store the openid → unionid link", "error", err)
	}
}

// recall fills unionid and profile from what earlier logins taught.
func (c *Connector) recall(ctx context.Context, appID string, p *wx.UserInfo) {
	dctx, cancel := directory.Bound(ctx) // the sign-in's budget, shared with the access decision
	defer cancel()
	pr, err := c.opt.Profiles.Get(dctx, Provider, appID, p.OpenID)
	if err != nil {
		if !errors.Is(err, directory.ErrNotFound) {
			c.log.WarnContext(ctx, "could not read the openid → unionid link", "error", err)
		}
		return
	}
	if p.UnionID == "" {
		p.UnionID = pr.UnionID
	}
	p.Nickname, p.HeadImgURL = pr.Nickname, pr.AvatarURL
}

// identity turns a WeChat profile into an identity, resolving the subject
// by the configured mode.
func (c *Connector) identity(ctx context.Context, appID string, p *wx.UserInfo) (connector.Identity, *oidc.Error) {
	sub := p.OpenID
	if c.opt.Subject == config.SubjectUnionID {
		if p.UnionID == "" {
			c.log.WarnContext(ctx, "WeChat returned no unionid, so no token was issued (subject: unionid). "+
				"Bind the Official Account to your WeChat Open Platform account (open.weixin.qq.com → 管理中心 → 公众号 → 绑定), "+
				"use wechat.official_account.scope: snsapi_userinfo, or set subject: openid")
			return connector.Identity{}, oidc.ErrAccessDenied("WeChat did not provide a unionid for this account, so the sign-in cannot identify the user; the administrator has been told how to fix this")
		}
		sub = p.UnionID
	}
	if sub == "" {
		return connector.Identity{}, oidc.ErrServerError("WeChat returned no user identifier")
	}
	claims := map[string]any{
		"name":               p.Nickname,
		"picture":            avatarURL(safeAvatar(p.HeadImgURL), c.opt.WeChat.AvatarSize),
		"preferred_username": PreferredUsername(sub),
		"openid":             p.OpenID,
		"unionid":            p.UnionID,
	}
	// Since 2021 WeChat mostly returns sex 0 and empty regions (wechat-api.md
	// §2d); what is empty is omitted.
	switch p.Sex {
	case 1:
		claims["gender"] = "male"
	case 2:
		claims["gender"] = "female"
	}
	if addr := address(p); addr != nil {
		claims["address"] = addr
	}
	return connector.Identity{Subject: sub, Claims: claims, Provider: Provider, AppID: appID, OpenID: p.OpenID, UnionID: p.UnionID}, nil
}

// Provider names WeChat accounts in the people directory.
const Provider = "wechat"

// PreferredUsername is the readable, unique, stable username derived from the
// subject: "wx_" and 16 lower-case base32 characters of SHA-256(sub) (80
// bits). Lower case survives RPs that fold usernames (Keycloak), which the
// case-sensitive unionid itself would not.
func PreferredUsername(sub string) string {
	sum := sha256.Sum256([]byte(sub))
	enc := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:10])
	return "wx_" + strings.ToLower(enc)
}

// safeAvatar returns u when it is an absolute http(s) URL with a host, else
// "". The picture claim is an URL that relying parties put in <img src> and
// links: a javascript:, data: or other URL from WeChat (or from a profile
// stored by an older version) must not reach them.
func safeAvatar(u string) string {
	if u == "" || len(u) > 2048 || strings.ContainsAny(u, " \t\r\n\"'<>\\`") {
		return ""
	}
	pu, err := url.Parse(u)
	if err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" || pu.User != nil || pu.Opaque != "" {
		return ""
	}
	return u
}

// avatarURL picks the size of a WeChat avatar: the last path segment of
// headimgurl is the size (0 = 640x640, 46, 64, 96, 132; wechat-api.md §2d).
func avatarURL(u string, size int) string {
	i := strings.LastIndexByte(u, '/')
	if u == "" || i < 0 {
		return u
	}
	switch u[i+1:] {
	case "0", "46", "64", "96", "132":
		return u[:i+1] + strconv.Itoa(size)
	}
	return u
}

// address is the OIDC address claim (Core §5.1.1) from WeChat's region fields.
func address(p *wx.UserInfo) map[string]any {
	a := map[string]any{}
	var parts []string
	for _, f := range []struct{ key, v string }{{"country", p.Country}, {"region", p.Province}, {"locality", p.City}} {
		if f.v != "" {
			a[f.key] = f.v
			parts = append(parts, f.v)
		}
	}
	if len(a) == 0 {
		return nil
	}
	a["formatted"] = strings.Join(parts, " ")
	return a
}

// FromConfig is the connector's options for a configuration: the wiring
// serve and dev share. hc nil means a default HTTP client.
func FromConfig(opt *config.Options, profiles ProfileStore, logger *slog.Logger, hc *http.Client) Options {
	clients := map[string]ClientSettings{}
	for _, cl := range opt.Clients {
		clients[cl.ID] = ClientSettings{Flow: cl.WeChatFlow, ForcePopup: cl.ForcePopup, MiniProgram: cl.MiniProgram, CrossDevice: cl.CrossDevice}
	}
	return Options{
		WeChat:      opt.WeChat,
		Subject:     opt.Subject,
		Clients:     clients,
		CallbackURL: strings.TrimSuffix(opt.Issuer, "/") + connector.CallbackPath,
		Profiles:    profiles,
		Logger:      logger,
		HTTPClient:  hc,
	}
}
