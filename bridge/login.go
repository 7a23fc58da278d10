package bridge

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wechat-oidc/wechat-oidc/oidc"
	"github.com/wechat-oidc/wechat-oidc/store"
	"github.com/wechat-oidc/wechat-oidc/wechat"
)

const (
	keyPending    = "bridge:pending:"
	browserCookie = "wechat_oidc_browser"
	handleLen     = 32 // WeChat allows up to 128 bytes of [A-Za-z0-9]
)

// Where a WeChat login runs (pendingLogin.App).
const (
	appOfficialAccount = "oa"
	appWebsite         = "web"
)

// pendingLogin is one leg of a WeChat authorization: the browser was sent to
// WeChat and is expected back at the callback. It is stored under its handle,
// which is the state sent to WeChat (≤ 128 bytes of [A-Za-z0-9], never the
// client's state).
type pendingLogin struct {
	Request *oidc.AuthRequest `json:"request"`
	// Browser is the SHA-256 of the browser-binding cookie of the browser
	// that started the leg: the callback must come from the same browser.
	Browser string `json:"browser"`
	// App is which WeChat app authorizes: the Official Account or the website app.
	App string `json:"app"`
	// Scope is the WeChat scope of this leg (snsapi_base, snsapi_userinfo, snsapi_login).
	Scope string `json:"scope"`
	// SilentFirst marks the snsapi_base leg of silent_first: if it yields no
	// known unionid, a snsapi_userinfo leg follows.
	SilentFirst bool `json:"silent_first,omitempty"`
	ForcePopup  bool `json:"force_popup,omitempty"`
	// HintSubject is the sub of a verified id_token_hint: the login must yield it.
	HintSubject string `json:"hint_sub,omitempty"`
	// Ticket is set on the phone leg of a cross-device login: the identity
	// goes to the ticket (and the phone confirms) instead of to the client.
	Ticket string `json:"ticket,omitempty"`
}

// handleAuthorize is the authorization endpoint (OpenID Connect Core 1.0
// §3.1.2). GET and POST are both supported (§3.1.2.1).
func (s *Server) handleAuthorize(c echo.Context) error {
	params, perr := requestParams(c)
	if perr != nil {
		// Parameters we cannot parse cannot be trusted to name a redirect_uri.
		return s.errorPage(c, http.StatusBadRequest, perr)
	}
	req, aerr := s.provider.ParseAuthorizeRequest(params)
	if aerr != nil {
		if !aerr.Redirect {
			// RFC 6749 §4.1.2.1: never redirect to an unverified redirect_uri.
			return s.errorPage(c, http.StatusBadRequest, aerr.Error)
		}
		s.provider.WriteAuthorizeError(c.Response(), aerr.Request, aerr.Error)
		return nil
	}
	return s.authorizeWithSession(c, req)
}

// authorizeWithSession decides between the SSO session and a fresh WeChat
// login (OpenID Connect Core 1.0 §3.1.2.1 on prompt, max_age and
// id_token_hint):
//   - prompt=none: a usable session yields a code without any page; no
//     usable session yields login_required.
//   - prompt=login and prompt=select_account: a fresh WeChat login (WeChat
//     has one account per person, so choosing an account is a new login).
//   - prompt=consent: a fresh WeChat login with WeChat's consent popup forced
//     (forcePopup); the bridge has no consent screen of its own.
//   - max_age: a session older than max_age seconds is not used.
//   - id_token_hint: verified (our signature; expiry ignored); a session of
//     another subject is not used, and a fresh login must yield that subject.
func (s *Server) authorizeWithSession(c echo.Context, req *oidc.AuthRequest) error {
	ctx := c.Request().Context()
	var hintSub string
	if req.IDTokenHint != "" {
		hint, e := s.provider.VerifyIDTokenHint(req.IDTokenHint)
		if e != nil {
			s.log.InfoContext(ctx, "authorize: bad id_token_hint", "client_id", req.ClientID, "detail", e.Error())
			s.provider.WriteAuthorizeError(c.Response(), req, e)
			return nil
		}
		hintSub = hint.Subject
	}
	sess, key := s.currentSession(c)
	usable := sess != nil
	if usable && req.MaxAge >= 0 && s.now().Unix()-sess.AuthTime > int64(req.MaxAge) {
		usable = false
	}
	if usable && hintSub != "" && hintSub != sess.Subject {
		usable = false
	}
	if req.HasPrompt(oidc.PromptNone) {
		if !usable {
			s.provider.WriteAuthorizeError(c.Response(), req, oidc.ErrLoginRequired("the user is not signed in (or not as required) and prompt=none forbids showing a page"))
			return nil
		}
		return s.codeFromSession(c, req, sess, key)
	}
	fresh := req.HasPrompt(oidc.PromptLogin) || req.HasPrompt(oidc.PromptSelectAccount) || req.HasPrompt(oidc.PromptConsent)
	if usable && !fresh {
		return s.codeFromSession(c, req, sess, key)
	}
	return s.startWeChatLogin(c, req, hintSub)
}

// codeFromSession answers from the SSO session: no WeChat, no page.
func (s *Server) codeFromSession(c echo.Context, req *oidc.AuthRequest, sess *ssoSession, key string) error {
	if err := s.touchSession(c.Request().Context(), key, req.ClientID); err != nil {
		// The session ended between the read and now: log in again.
		return s.startWeChatLogin(c, req, "")
	}
	s.log.InfoContext(c.Request().Context(), "authorize: answered from the SSO session", "client_id", req.ClientID)
	return s.completeLogin(c, req, oidc.Identity{
		Subject: sess.Subject, AuthTime: time.Unix(sess.AuthTime, 0), SessionID: sess.ID, Claims: sess.Claims,
	})
}

// requestParams reads a page endpoint's parameters strictly: the query of a
// GET, the form body of a POST (OpenID Connect Core 1.0 §3.1.2.1 requires both).
func requestParams(c echo.Context) (oidc.Params, *oidc.Error) {
	if c.Request().Method == http.MethodPost {
		return oidc.ReadForm(c.Response(), c.Request())
	}
	return oidc.ParseParams(c.Request().URL.RawQuery)
}

// Authorize parameters the bridge understands besides the OIDC ones.
const (
	// ParamWeChatFlow overrides the flow choice: official_account,
	// website_app or cross_device.
	ParamWeChatFlow = "wechat_flow"
	// ParamForcePopup=true asks WeChat for its consent popup.
	ParamForcePopup = "wechat_force_popup"
)

// chooseFlow picks where the WeChat login runs: an explicit authorize
// parameter, else the client's setting, else the browser: the WeChat in-app
// browser (User-Agent contains MicroMessenger) uses the Official Account's
// web authorization; any other browser the desktop flow (the website app's
// qrconnect if one is configured, else cross-device QR with the Official
// Account).
func (s *Server) chooseFlow(c echo.Context, req *oidc.AuthRequest) (flow, reason string, e *oidc.Error) {
	if v := req.Extra[ParamWeChatFlow]; v != "" {
		switch v {
		case FlowOfficialAccount, FlowCrossDevice:
		case FlowWebsiteApp:
			if s.cfg.WeChat.WebsiteApp == nil {
				return "", "", oidc.ErrInvalidRequest("wechat_flow=website_app is not available: no website app is configured")
			}
		default:
			return "", "", oidc.ErrInvalidRequest("wechat_flow must be official_account, website_app or cross_device")
		}
		return v, "authorize parameter wechat_flow", nil
	}
	if cc := s.clientConfigs[req.ClientID]; cc != nil && cc.WeChatFlow != "" {
		return cc.WeChatFlow, "client setting wechat_flow", nil
	}
	if isWeChatBrowser(c.Request().UserAgent()) {
		return FlowOfficialAccount, "WeChat in-app browser", nil
	}
	if s.cfg.WeChat.WebsiteApp != nil {
		return FlowWebsiteApp, "desktop browser, website app configured", nil
	}
	return FlowCrossDevice, "desktop browser, Official Account only", nil
}

// isWeChatBrowser: WeChat's in-app browser says MicroMessenger in its User-Agent.
func isWeChatBrowser(ua string) bool { return strings.Contains(ua, "MicroMessenger") }

// startWeChatLogin sends the browser into the chosen WeChat flow.
func (s *Server) startWeChatLogin(c echo.Context, req *oidc.AuthRequest, hintSub string) error {
	flow, reason, e := s.chooseFlow(c, req)
	if e != nil {
		s.provider.WriteAuthorizeError(c.Response(), req, e)
		return nil
	}
	s.log.InfoContext(c.Request().Context(), "authorize: WeChat flow chosen", "client_id", req.ClientID, "flow", flow, "reason", reason)
	forcePopup := req.HasPrompt(oidc.PromptConsent) || req.Extra[ParamForcePopup] == "true"
	if cc := s.clientConfigs[req.ClientID]; cc != nil && cc.ForcePopup {
		forcePopup = true
	}
	browser := s.browserBinding(c)
	switch flow {
	case FlowWebsiteApp:
		return s.sendToWeChat(c, pendingLogin{Request: req, Browser: browser, App: appWebsite, Scope: wechat.ScopeLogin, HintSubject: hintSub})
	case FlowCrossDevice:
		return s.startCrossDevice(c, req, browser, hintSub, forcePopup)
	default:
		return s.sendToWeChat(c, s.officialAccountLeg(req, browser, hintSub, forcePopup, ""))
	}
}

// officialAccountLeg is the first Official Account leg for a request, with
// the scope the configured mode asks for.
func (s *Server) officialAccountLeg(req *oidc.AuthRequest, browser, hintSub string, forcePopup bool, ticket string) pendingLogin {
	pl := pendingLogin{Request: req, Browser: browser, App: appOfficialAccount, Scope: s.cfg.WeChat.OfficialAccount.Scope,
		ForcePopup: forcePopup, HintSubject: hintSub, Ticket: ticket}
	if pl.Scope == ScopeSilentFirst {
		// A forced popup wants the consent page: skip the silent leg.
		pl.Scope, pl.SilentFirst = wechat.ScopeBase, !forcePopup
		if forcePopup {
			pl.Scope = wechat.ScopeUserInfo
		}
	}
	return pl
}

// sendToWeChat remembers the leg under a fresh handle and redirects the
// browser to WeChat's authorization page for it.
func (s *Server) sendToWeChat(c echo.Context, pl pendingLogin) error {
	target, err := s.putLeg(c.Request().Context(), pl)
	if err != nil {
		s.log.ErrorContext(c.Request().Context(), "authorize: store unavailable", "error", err)
		if pl.Ticket != "" {
			return s.renderPage(c, http.StatusServiceUnavailable, pageUnavailable)
		}
		s.provider.WriteAuthorizeError(c.Response(), pl.Request, oidc.ErrTemporarilyUnavailable("the sign-in service cannot store the request right now; try again shortly"))
		return nil
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Redirect(http.StatusFound, target)
}

// putLeg stores a leg and returns the WeChat URL that starts it.
func (s *Server) putLeg(ctx context.Context, pl pendingLogin) (string, error) {
	handle := randomID(handleLen)
	raw, err := json.Marshal(pl)
	if err != nil {
		return "", err
	}
	if err := s.store.Put(ctx, keyPending+handle, raw, s.cfg.Login.PendingTTL.D()); err != nil {
		return "", err
	}
	p := wechat.AuthorizeParams{
		RedirectURI: s.url(PathWeChatCallback),
		Scope:       pl.Scope,
		State:       handle,
		ForcePopup:  pl.ForcePopup,
		// connect_redirect=1 is what WeChat's own SDKs append; it is
		// reported to stop the duplicate callbacks that end in 40163
		// (wechat-api.md §1).
		ConnectRedirect: true,
	}
	if pl.App == appWebsite {
		p.AppID = s.cfg.WeChat.WebsiteApp.AppID
		return wechat.QRConnectURL(s.cfg.WeChat.OpenBaseURL, p), nil
	}
	p.AppID = s.oa.ID
	return wechat.OAAuthorizeURL(s.cfg.WeChat.OpenBaseURL, p), nil
}

// browserBinding returns the hash of this browser's binding cookie, setting
// a fresh cookie when there is none. HttpOnly, SameSite=Lax (WeChat's
// redirect back is a top-level GET, which Lax allows), Secure on https.
func (s *Server) browserBinding(c echo.Context) string {
	if ck, err := c.Cookie(browserCookie); err == nil && len(ck.Value) == 43 {
		return hashValue(ck.Value)
	}
	v := randomToken()
	c.SetCookie(&http.Cookie{
		Name:     browserCookie,
		Value:    v,
		Path:     s.prefix + "/",
		MaxAge:   int(s.cfg.Login.PendingTTL.D().Seconds()) + 3600,
		HttpOnly: true,
		Secure:   s.secure,
		SameSite: http.SameSiteLaxMode,
	})
	return hashValue(v)
}

func hashValue(v string) string {
	sum := sha256.Sum256([]byte(v))
	return hex.EncodeToString(sum[:])
}

const (
	keyInflight = "bridge:inflight:"
	keyDone     = "bridge:done:"
	keyLink     = "bridge:link:"
	keyProfile  = "bridge:profile:"
	// linkTTL: what was learned about a person (openid → unionid, profile)
	// is kept this long after their last login.
	linkTTL = 400 * 24 * time.Hour
)

// callbackResult is what a finished callback answered, kept for a short time
// so that WeChat's duplicate callback (the same code twice, wechat-api.md
// §1) gets the same answer instead of a 40163 error.
type callbackResult struct {
	Browser  string            `json:"browser"`
	CodeHash string            `json:"code_hash"`
	Request  *oidc.AuthRequest `json:"request"`
	Params   url.Values        `json:"params"`
}

// handleWeChatCallback is where WeChat sends the browser back with code and
// state (our handle).
func (s *Server) handleWeChatCallback(c echo.Context) error {
	ctx := c.Request().Context()
	c.Response().Header().Set("Cache-Control", "no-store")
	params, perr := requestParams(c)
	if perr != nil {
		return s.errorPage(c, http.StatusBadRequest, perr)
	}
	handle := params["state"]
	if !wechat.ValidState(handle) {
		return s.renderPage(c, http.StatusBadRequest, pageLoginExpired)
	}
	code := params["code"]
	browser := ""
	if ck, err := c.Cookie(browserCookie); err == nil {
		browser = hashValue(ck.Value)
	}
	raw, err := s.store.Get(ctx, keyPending+handle)
	if errors.Is(err, store.ErrNotFound) {
		return s.duplicateCallback(c, handle, code, browser)
	}
	if err != nil {
		s.log.ErrorContext(ctx, "callback: store unavailable", "error", err)
		return s.renderPage(c, http.StatusServiceUnavailable, pageUnavailable)
	}
	var pl pendingLogin
	if err := json.Unmarshal(raw, &pl); err != nil || pl.Request == nil {
		s.log.ErrorContext(ctx, "callback: unreadable pending login", "error", err)
		return s.renderPage(c, http.StatusInternalServerError, pageUnavailable)
	}
	// Login CSRF (RFC 6749 §10.12, RFC 9700 §4.7): the callback must arrive
	// in the browser that started this login. The pending login is left in
	// place so the rightful browser can still finish.
	if browser == "" || subtle.ConstantTimeCompare([]byte(browser), []byte(pl.Browser)) != 1 {
		s.log.WarnContext(ctx, "callback: browser does not match the one that started the login (possible login CSRF)", "client_id", pl.Request.ClientID)
		return s.renderPage(c, http.StatusForbidden, pageOtherBrowser)
	}
	// Mark the leg in flight before taking it, so that a duplicate callback
	// racing this one finds the mark and waits for our answer.
	inflight, _ := json.Marshal(callbackResult{Browser: browser, CodeHash: hashValue(code)})
	_, _ = s.store.PutNew(ctx, keyInflight+handle, inflight, time.Minute)
	if _, err := s.store.Take(ctx, keyPending+handle); err != nil {
		// A duplicate callback took it a moment ago.
		return s.duplicateCallback(c, handle, code, browser)
	}
	leg := &callbackLeg{s: s, c: c, pl: pl, handle: handle, code: code, browser: browser}
	return leg.run()
}

// callbackLeg carries one callback through the steps of a WeChat login.
type callbackLeg struct {
	s       *Server
	c       echo.Context
	pl      pendingLogin
	handle  string
	code    string
	browser string
}

func (l *callbackLeg) run() error {
	s, c, pl := l.s, l.c, l.pl
	ctx := c.Request().Context()
	req := pl.Request
	if l.code == "" {
		// The person refused (WeChat's old behaviour: state without code).
		s.log.InfoContext(ctx, "callback: WeChat returned no code (the user declined)", "client_id", req.ClientID)
		return l.fail(oidc.ErrAccessDenied("the user declined WeChat authorization"), nil)
	}
	app := s.oa
	if pl.App == appWebsite {
		app = wechat.App{ID: s.cfg.WeChat.WebsiteApp.AppID, Secret: s.cfg.WeChat.WebsiteApp.AppSecret}
	}
	// Never retried: WeChat may have consumed the code (a retry can only get 40163).
	tok, err := s.wechat.ExchangeCode(ctx, app, l.code)
	if err != nil {
		return l.wechatError("/sns/oauth2/access_token", err)
	}
	if tok.Snapshot() {
		// Snapshot-page users are virtual (wechat-api.md §6): never a token,
		// never a stored link.
		s.log.InfoContext(ctx, "callback: snapshot-page virtual user; no token issued", "client_id", req.ClientID)
		s.clearInflight(ctx, l.handle)
		return s.snapshotPage(c, pl)
	}
	profile := &wechat.UserInfo{OpenID: tok.OpenID, UnionID: tok.UnionID}
	if tok.HasScope(wechat.ScopeUserInfo) || tok.HasScope(wechat.ScopeLogin) {
		ui, err := s.userInfoWithRetry(ctx, tok)
		if err != nil {
			return l.wechatError("/sns/userinfo", err)
		}
		profile = ui
		if profile.UnionID == "" {
			profile.UnionID = tok.UnionID
		}
		profile.OpenID = tok.OpenID
		s.remember(ctx, app.ID, profile)
	} else {
		// snsapi_base: openid only. What earlier logins taught us fills the
		// unionid and the profile.
		s.recall(ctx, app.ID, profile)
		if pl.SilentFirst && profile.UnionID == "" && s.cfg.Subject == SubjectUnionID {
			// Silent first found nobody it knows: once more, with the popup.
			s.log.InfoContext(ctx, "callback: silent login gave no unionid; asking WeChat for snsapi_userinfo once", "client_id", req.ClientID)
			next := pl
			next.Scope, next.SilentFirst = wechat.ScopeUserInfo, false
			s.clearInflight(ctx, l.handle)
			return s.sendToWeChat(c, next)
		}
	}
	id, e := s.identity(ctx, profile, req.ClientID)
	if e != nil {
		return l.fail(e, nil)
	}
	if pl.HintSubject != "" && pl.HintSubject != id.Subject {
		// §3.1.2.1: the person identified by id_token_hint did not log in.
		return l.fail(oidc.ErrLoginRequired("the WeChat user who signed in is not the one named by id_token_hint"), nil)
	}
	if pl.Ticket != "" {
		s.clearInflight(ctx, l.handle)
		return s.phoneIdentified(c, pl, id)
	}
	sess, key, err := s.startSession(c, id.Subject, id.AuthTime, id.Claims)
	if err == nil {
		err = s.touchSession(ctx, key, req.ClientID)
	}
	if err != nil {
		return l.fail(oidc.ErrServerError("the sign-in service had an internal error; try again").WithDebug(err), nil)
	}
	id.SessionID = sess.ID
	s.log.InfoContext(ctx, "callback: WeChat identity resolved", "client_id", req.ClientID, "wechat_app", pl.App, "wechat_scope", pl.Scope)
	params, err := s.issueCode(ctx, req, id)
	if err != nil {
		return l.fail(oidc.ErrServerError("the sign-in service had an internal error; try again").WithDebug(err), nil)
	}
	return l.respond(params)
}

// fail ends the leg with an error for the client (or, on a cross-device
// phone leg, for the desktop, with a page on the phone).
func (l *callbackLeg) fail(e *oidc.Error, m *weChatErrorMapping) error {
	if e.Debug != nil {
		l.s.log.ErrorContext(l.c.Request().Context(), "callback failed", "client_id", l.pl.Request.ClientID, "error", e.Error())
	}
	if l.pl.Ticket != "" {
		l.s.clearInflight(l.c.Request().Context(), l.handle)
		return l.s.phoneFailed(l.c, l.pl, e, m)
	}
	v := url.Values{"error": {e.Code}}
	if e.Description != "" {
		v.Set("error_description", e.Description)
	}
	return l.respond(v)
}

func (l *callbackLeg) wechatError(endpoint string, err error) error {
	m := mapWeChatError(err)
	l.s.log.Log(l.c.Request().Context(), m.Level, "WeChat call failed: "+m.Operator,
		"endpoint", endpoint, "client_id", l.pl.Request.ClientID, "errcode", wechat.ErrorCode(err), "error", err.Error())
	return l.fail(&oidc.Error{Code: m.OIDCCode, Description: m.Description}, &m)
}

// respond sends the authorization response to the client and keeps it for
// a duplicate callback.
func (l *callbackLeg) respond(params url.Values) error {
	ctx := l.c.Request().Context()
	done, _ := json.Marshal(callbackResult{Browser: l.browser, CodeHash: hashValue(l.code), Request: l.pl.Request, Params: params})
	if err := l.s.store.Put(ctx, keyDone+l.handle, done, l.s.cfg.Tokens.CodeTTL.D()); err != nil {
		l.s.log.WarnContext(ctx, "callback: could not remember the result for duplicate callbacks", "error", err)
	}
	l.s.clearInflight(ctx, l.handle)
	l.s.provider.WriteAuthorizeResponse(l.c.Response(), l.pl.Request, params)
	return nil
}

func (s *Server) clearInflight(ctx context.Context, handle string) {
	_ = s.store.Delete(ctx, keyInflight+handle)
}

// duplicateCallback answers a callback whose leg is already taken: WeChat
// sometimes calls the callback twice with the same code. The same browser
// with the same code gets the first callback's answer again (waiting for it
// if the first is still talking to WeChat); anything else is an expired link.
func (s *Server) duplicateCallback(c echo.Context, handle, code, browser string) error {
	ctx := c.Request().Context()
	same := func(raw []byte) (*callbackResult, bool) {
		var r callbackResult
		if json.Unmarshal(raw, &r) != nil || browser == "" {
			return nil, false
		}
		ok := subtle.ConstantTimeCompare([]byte(r.Browser), []byte(browser)) == 1 && r.CodeHash == hashValue(code)
		return &r, ok
	}
	deadline := time.Now().Add(s.cfg.WeChat.Timeout.D() + s.cfg.WeChat.UserinfoRetryDeadline.D() + 2*time.Second)
	for {
		if raw, err := s.store.Get(ctx, keyDone+handle); err == nil {
			if r, ok := same(raw); ok && r.Request != nil {
				s.log.InfoContext(ctx, "callback: duplicate WeChat callback answered with the first result", "client_id", r.Request.ClientID)
				s.provider.WriteAuthorizeResponse(c.Response(), r.Request, r.Params)
				return nil
			}
			break
		}
		raw, err := s.store.Get(ctx, keyInflight+handle)
		if err != nil {
			break
		}
		if _, ok := same(raw); !ok || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(50 * time.Millisecond):
		}
	}
	return s.renderPage(c, http.StatusBadRequest, pageLoginExpired)
}

// userInfoWithRetry fetches the profile, retrying -1 (busy) and 45011
// (minute quota) with backoff until the configured deadline. Other errors
// are final.
func (s *Server) userInfoWithRetry(ctx context.Context, tok *wechat.AccessToken) (*wechat.UserInfo, error) {
	deadline := time.Now().Add(s.cfg.WeChat.UserinfoRetryDeadline.D())
	wait := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		ui, err := s.wechat.UserInfo(ctx, tok.AccessToken, tok.OpenID, "zh_CN")
		if err == nil || !(errors.Is(err, wechat.ErrBusy) || errors.Is(err, wechat.ErrRateLimited)) {
			return ui, err
		}
		if time.Now().Add(wait).After(deadline) {
			return nil, err
		}
		s.log.WarnContext(ctx, "WeChat /sns/userinfo busy; retrying", "errcode", wechat.ErrorCode(err), "attempt", attempt)
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(wait):
		}
		wait *= 2
	}
}

// storedProfile is what the bridge remembers of a person between logins.
type storedProfile struct {
	UnionID    string `json:"unionid,omitempty"`
	Nickname   string `json:"nickname,omitempty"`
	HeadImgURL string `json:"headimgurl,omitempty"`
	Sex        int    `json:"sex,omitempty"`
	Country    string `json:"country,omitempty"`
	Province   string `json:"province,omitempty"`
	City       string `json:"city,omitempty"`
}

// remember stores what a snsapi_userinfo login taught: the openid's unionid
// (for silent logins later) and the profile (refreshed at every such login).
func (s *Server) remember(ctx context.Context, appID string, p *wechat.UserInfo) {
	sp := storedProfile{UnionID: p.UnionID, Nickname: p.Nickname, HeadImgURL: p.HeadImgURL, Sex: p.Sex,
		Country: p.Country, Province: p.Province, City: p.City}
	raw, _ := json.Marshal(sp)
	if err := s.store.Put(ctx, keyLink+appID+":"+p.OpenID, raw, linkTTL); err != nil {
		s.log.WarnContext(ctx, "could not store the openid → unionid link", "error", err)
	}
	if p.UnionID != "" {
		_ = s.store.Put(ctx, keyProfile+p.UnionID, raw, linkTTL)
	}
}

// recall fills unionid and profile from what earlier logins taught.
func (s *Server) recall(ctx context.Context, appID string, p *wechat.UserInfo) {
	var sp storedProfile
	raw, err := s.store.Get(ctx, keyLink+appID+":"+p.OpenID)
	if err != nil && p.UnionID != "" {
		raw, err = s.store.Get(ctx, keyProfile+p.UnionID)
	}
	if err != nil || json.Unmarshal(raw, &sp) != nil {
		return
	}
	if p.UnionID == "" {
		p.UnionID = sp.UnionID
	}
	p.Nickname, p.HeadImgURL, p.Sex = sp.Nickname, sp.HeadImgURL, sp.Sex
	p.Country, p.Province, p.City = sp.Country, sp.Province, sp.City
}

// completeLogin issues the authorization code and sends it to the client.
func (s *Server) completeLogin(c echo.Context, req *oidc.AuthRequest, id oidc.Identity) error {
	params, err := s.issueCode(c.Request().Context(), req, id)
	if err != nil {
		return s.redirectServerError(c, req, err)
	}
	s.provider.WriteAuthorizeResponse(c.Response(), req, params)
	return nil
}

// issueCode shapes the client's claims and mints the authorization code:
// the end of every successful login, whichever way it came.
func (s *Server) issueCode(ctx context.Context, req *oidc.AuthRequest, id oidc.Identity) (url.Values, error) {
	id.Claims = s.shapeClaims(req.ClientID, id)
	code, err := s.provider.IssueCode(ctx, req, id)
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "login complete: code issued", "client_id", req.ClientID)
	return url.Values{"code": {code}}, nil
}

// identity turns a WeChat profile into the OIDC identity, resolving the
// subject by the configured mode.
func (s *Server) identity(ctx context.Context, p *wechat.UserInfo, clientID string) (oidc.Identity, *oidc.Error) {
	sub := p.OpenID
	if s.cfg.Subject == SubjectUnionID {
		if p.UnionID == "" {
			s.log.WarnContext(ctx, "WeChat returned no unionid, so no token was issued (subject: unionid). "+
				"Bind the Official Account to your WeChat Open Platform account (open.weixin.qq.com → 管理中心 → 公众号 → 绑定), "+
				"use wechat.official_account.scope: snsapi_userinfo, or set subject: openid",
				"client_id", clientID)
			return oidc.Identity{}, oidc.ErrAccessDenied("WeChat did not provide a unionid for this account, so the sign-in cannot identify the user; the administrator has been told how to fix this")
		}
		sub = p.UnionID
	}
	if sub == "" {
		return oidc.Identity{}, oidc.ErrServerError("WeChat returned no user identifier")
	}
	claims := map[string]any{
		"name":               p.Nickname,
		"picture":            avatarURL(p.HeadImgURL, *s.cfg.WeChat.AvatarSize),
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
	return oidc.Identity{Subject: sub, AuthTime: s.now(), Claims: claims}, nil
}

// PreferredUsername is the readable, unique, stable username derived from the
// subject: "wx_" and 16 lower-case base32 characters of SHA-256(sub) (80
// bits). Lower case survives RPs that fold usernames (Keycloak), which the
// case-sensitive unionid itself would not.
func PreferredUsername(sub string) string {
	sum := sha256.Sum256([]byte(sub))
	enc := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:10])
	return "wx_" + strings.ToLower(enc)
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
func address(p *wechat.UserInfo) map[string]any {
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

func (s *Server) redirectServerError(c echo.Context, req *oidc.AuthRequest, err error) error {
	s.log.ErrorContext(c.Request().Context(), "internal error during sign-in", "client_id", req.ClientID, "error", err)
	s.provider.WriteAuthorizeError(c.Response(), req, oidc.ErrServerError("the sign-in service had an internal error; try again"))
	return nil
}

// snapshotPage explains the snapshot page and offers a fresh WeChat
// authorization for the same request (with forcePopup when configured, so
// WeChat shows its consent page rather than the snapshot again).
func (s *Server) snapshotPage(c echo.Context, pl pendingLogin) error {
	next := pl
	next.Scope, next.SilentFirst = wechat.ScopeUserInfo, false
	next.ForcePopup = pl.ForcePopup || *s.cfg.WeChat.SnapshotForcePopup
	retry, err := s.putLeg(c.Request().Context(), next)
	if err != nil {
		return s.renderPage(c, http.StatusServiceUnavailable, pageUnavailable)
	}
	pg := pageSnapshot
	pg.RetryURL = retry
	return s.renderPage(c, http.StatusOK, pg)
}
