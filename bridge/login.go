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

// pendingLogin is an authorization request waiting for WeChat to come back.
// It is stored under its handle, which is the state sent to WeChat.
type pendingLogin struct {
	Request *oidc.AuthRequest `json:"request"`
	// Browser is the SHA-256 of the browser-binding cookie of the browser
	// that started the login: the callback must come from the same browser.
	Browser string `json:"browser"`
	Scope   string `json:"scope"`
	// HintSubject is the sub of a verified id_token_hint: the login must yield it.
	HintSubject string `json:"hint_sub,omitempty"`
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

// startWeChatLogin remembers the request under a fresh handle bound to this
// browser and sends the browser to WeChat's authorization page.
func (s *Server) startWeChatLogin(c echo.Context, req *oidc.AuthRequest, hintSub string) error {
	ctx := c.Request().Context()
	browser := s.browserBinding(c)
	scope := s.cfg.WeChat.OfficialAccount.Scope
	handle := randomID(handleLen)
	raw, err := json.Marshal(pendingLogin{Request: req, Browser: browser, Scope: scope, HintSubject: hintSub})
	if err != nil {
		return s.redirectServerError(c, req, err)
	}
	if err := s.store.Put(ctx, keyPending+handle, raw, s.cfg.Login.PendingTTL.D()); err != nil {
		s.log.ErrorContext(ctx, "authorize: store unavailable", "error", err)
		s.provider.WriteAuthorizeError(c.Response(), req, oidc.ErrTemporarilyUnavailable("the sign-in service cannot store the request right now; try again shortly"))
		return nil
	}
	target := wechat.OAAuthorizeURL(s.cfg.WeChat.OpenBaseURL, wechat.AuthorizeParams{
		AppID:       s.oa.ID,
		RedirectURI: s.url(PathWeChatCallback),
		Scope:       scope,
		State:       handle,
		ForcePopup:  req.HasPrompt(oidc.PromptConsent),
	})
	s.log.InfoContext(ctx, "authorize: sending the browser to WeChat", "client_id", req.ClientID, "wechat_scope", scope)
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Redirect(http.StatusFound, target)
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

// handleWeChatCallback is where WeChat sends the browser back with code and
// state (our handle).
func (s *Server) handleWeChatCallback(c echo.Context) error {
	ctx := c.Request().Context()
	c.Response().Header().Set("Cache-Control", "no-store")
	params, perr := oidc.ParseParams(c.Request().URL.RawQuery)
	if perr != nil {
		return s.errorPage(c, http.StatusBadRequest, perr)
	}
	handle := params["state"]
	if !wechat.ValidState(handle) {
		return s.renderPage(c, http.StatusBadRequest, pageLoginExpired)
	}
	raw, err := s.store.Get(ctx, keyPending+handle)
	if errors.Is(err, store.ErrNotFound) {
		return s.renderPage(c, http.StatusBadRequest, pageLoginExpired)
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
	ck, err := c.Cookie(browserCookie)
	if err != nil || subtle.ConstantTimeCompare([]byte(hashValue(ck.Value)), []byte(pl.Browser)) != 1 {
		s.log.WarnContext(ctx, "callback: browser does not match the one that started the login (possible login CSRF)", "client_id", pl.Request.ClientID)
		return s.renderPage(c, http.StatusForbidden, pageOtherBrowser)
	}
	if _, err := s.store.Take(ctx, keyPending+handle); err != nil {
		// Someone (a second callback) finished it in the meantime.
		return s.renderPage(c, http.StatusBadRequest, pageLoginExpired)
	}
	req := pl.Request
	code := params["code"]
	if code == "" {
		// The person refused (WeChat's old behaviour: state without code).
		s.log.InfoContext(ctx, "callback: WeChat returned no code (the user declined)", "client_id", req.ClientID)
		s.provider.WriteAuthorizeError(c.Response(), req, oidc.ErrAccessDenied("the user declined WeChat authorization"))
		return nil
	}

	tok, err := s.wechat.ExchangeCode(ctx, s.oa, code)
	if err != nil {
		return s.redirectWeChatError(c, req, "/sns/oauth2/access_token", err)
	}
	if tok.Snapshot() {
		// Snapshot-page users are virtual (wechat-api.md §6): never a token.
		s.log.InfoContext(ctx, "callback: snapshot-page virtual user; no token issued", "client_id", req.ClientID)
		return s.snapshotPage(c, pl)
	}
	profile := &wechat.UserInfo{OpenID: tok.OpenID, UnionID: tok.UnionID}
	if tok.HasScope(wechat.ScopeUserInfo) {
		ui, err := s.wechat.UserInfo(ctx, tok.AccessToken, tok.OpenID, "zh_CN")
		if err != nil {
			return s.redirectWeChatError(c, req, "/sns/userinfo", err)
		}
		profile = ui
		if profile.UnionID == "" {
			profile.UnionID = tok.UnionID
		}
		if profile.OpenID == "" {
			profile.OpenID = tok.OpenID
		}
	}
	id, e := s.identity(ctx, profile, req.ClientID)
	if e != nil {
		s.provider.WriteAuthorizeError(c.Response(), req, e)
		return nil
	}
	if pl.HintSubject != "" && pl.HintSubject != id.Subject {
		// §3.1.2.1: the person identified by id_token_hint did not log in.
		s.provider.WriteAuthorizeError(c.Response(), req, oidc.ErrLoginRequired("the WeChat user who signed in is not the one named by id_token_hint"))
		return nil
	}
	sess, key, err := s.startSession(c, id.Subject, id.AuthTime, id.Claims)
	if err != nil {
		return s.redirectServerError(c, req, err)
	}
	if err := s.touchSession(ctx, key, req.ClientID); err != nil {
		return s.redirectServerError(c, req, err)
	}
	id.SessionID = sess.ID
	return s.completeLogin(c, req, id)
}

// completeLogin issues the authorization code and sends it to the client.
func (s *Server) completeLogin(c echo.Context, req *oidc.AuthRequest, id oidc.Identity) error {
	id.Claims = s.shapeClaims(req.ClientID, id)
	code, err := s.provider.IssueCode(c.Request().Context(), req, id)
	if err != nil {
		return s.redirectServerError(c, req, err)
	}
	s.log.InfoContext(c.Request().Context(), "login complete: code issued", "client_id", req.ClientID)
	s.provider.WriteAuthorizeResponse(c.Response(), req, url.Values{"code": {code}})
	return nil
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
		"picture":            p.HeadImgURL,
		"preferred_username": PreferredUsername(sub),
		"openid":             p.OpenID,
		"unionid":            p.UnionID,
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

// redirectWeChatError maps a WeChat failure to the error the RP receives and
// the line the operator reads (see wechatErrorTable).
func (s *Server) redirectWeChatError(c echo.Context, req *oidc.AuthRequest, endpoint string, err error) error {
	m := mapWeChatError(err)
	s.log.Log(c.Request().Context(), m.Level, "WeChat call failed: "+m.Operator,
		"endpoint", endpoint, "client_id", req.ClientID, "error", err.Error())
	s.provider.WriteAuthorizeError(c.Response(), req, &oidc.Error{Code: m.OIDCCode, Description: m.Description})
	return nil
}

func (s *Server) redirectServerError(c echo.Context, req *oidc.AuthRequest, err error) error {
	s.log.ErrorContext(c.Request().Context(), "internal error during sign-in", "client_id", req.ClientID, "error", err)
	s.provider.WriteAuthorizeError(c.Response(), req, oidc.ErrServerError("the sign-in service had an internal error; try again"))
	return nil
}

// snapshotPage explains the snapshot page and offers a fresh WeChat
// authorization for the same request.
func (s *Server) snapshotPage(c echo.Context, pl pendingLogin) error {
	handle := randomID(handleLen)
	raw, _ := json.Marshal(pl)
	if err := s.store.Put(c.Request().Context(), keyPending+handle, raw, s.cfg.Login.PendingTTL.D()); err != nil {
		return s.renderPage(c, http.StatusServiceUnavailable, pageUnavailable)
	}
	retry := wechat.OAAuthorizeURL(s.cfg.WeChat.OpenBaseURL, wechat.AuthorizeParams{
		AppID: s.oa.ID, RedirectURI: s.url(PathWeChatCallback), Scope: pl.Scope, State: handle,
	})
	pg := pageSnapshot
	pg.RetryURL = retry
	return s.renderPage(c, http.StatusOK, pg)
}
