package bridge

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"

	"github.com/labstack/echo/v4"

	"github.com/wechat-oidc/wechat-oidc/connector"
	"github.com/wechat-oidc/wechat-oidc/directory"
	"github.com/wechat-oidc/wechat-oidc/oidc"
)

// Paths of the pages a refused or waiting person sees.
const (
	// PathWaiting is the pending person's page: it reloads itself and, once
	// an administrator approved them, continues the original sign-in.
	PathWaiting = "/pending"
	// PathReturn sends a refused person back to the application with
	// access_denied.
	PathReturn = "/authorize/return"
)

// waitingLogin is a sign-in the directory did not admit: a pending person's
// (kept so it can continue after approval) or a refused one's (kept so the
// person can go back to the application, which then learns access_denied).
type waitingLogin struct {
	Request  *oidc.AuthRequest  `json:"request"`
	Browser  string             `json:"browser"`
	Upstream connector.Identity `json:"upstream"`
	Flow     string             `json:"flow,omitempty"`
	Refusal  refusal            `json:"refusal"`
}

// refusedPage answers a sign-in the directory did not admit, in the browser
// that made it: a page explaining why, with the reference to quote, and a
// way back to the application (which then receives access_denied). A
// pending person's page waits for the approval instead.
func (s *Server) refusedPage(c echo.Context, req *oidc.AuthRequest, browser, flow string, up connector.Identity, r *refusal) error {
	ctx := c.Request().Context()
	if r.Kind == "unavailable" {
		pg := pageUnavailable
		pg.Ref = r.Ref
		return s.renderPage(c, http.StatusServiceUnavailable, pg)
	}
	handle := randomID(handleLen)
	w := waitingLogin{Request: req, Browser: browser, Upstream: up, Flow: flow, Refusal: *r}
	if err := s.putJSON(ctx, keyWaiting+handle, w, s.opt.Access.PendingTTL); err != nil {
		s.log.ErrorContext(ctx, "people: store unavailable", "error", err)
		pg := pageUnavailable
		pg.Ref = r.Ref
		return s.renderPage(c, http.StatusServiceUnavailable, pg)
	}
	if r.Kind == "pending" {
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.Redirect(http.StatusFound, s.url(PathWaiting)+"?"+url.Values{"h": {handle}}.Encode())
	}
	return s.renderPage(c, http.StatusForbidden, s.refusalPage(w, handle))
}

// refusalPage explains a refusal, naming the application.
func (s *Server) refusalPage(w waitingLogin, handle string) page {
	app := s.clientName(w.Request.ClientID)
	pg := page{Name: "refused-" + w.Refusal.Kind, Title: "无法登录 · Access denied", Icon: "warn", Ref: w.Refusal.Ref,
		LinkURL: s.url(PathReturn) + "?" + url.Values{"h": {handle}}.Encode(), LinkLabel: "返回「" + app + "」· Back to " + app}
	switch w.Refusal.Kind {
	case "not-in-group":
		pg.Heading = "你没有使用「" + app + "」的权限"
		pg.Message = "请联系管理员，把你加入可以使用「" + app + "」的用户组，并告诉他参考编号。"
		pg.Detail = "You are not in a group that may use " + app + ". Ask an administrator to add you, quoting the reference below."
	case "disabled":
		pg.Heading = "你的账号已被停用"
		pg.Message = "管理员已停用你的账号。如有疑问，请联系管理员并告诉他参考编号。"
		pg.Detail = "An administrator has disabled your account. Ask an administrator, quoting the reference below."
	default: // not-invited
		pg.Heading = "需要邀请才能登录"
		pg.Message = "这个登录服务只接受受邀的成员。请向管理员索取邀请链接，并告诉他参考编号。"
		pg.Detail = "This sign-in service admits invited people only. Ask an administrator for an invitation, quoting the reference below."
	}
	return pg
}

// loadWaiting reads a waiting sign-in for the browser that made it.
func (s *Server) loadWaiting(c echo.Context) (waitingLogin, string, error) {
	params, perr := requestParams(c)
	if perr != nil {
		return waitingLogin{}, "", perr
	}
	handle := params["h"]
	var w waitingLogin
	if !validHandle(handle) {
		return w, "", errExpired
	}
	if err := s.getJSON(c.Request().Context(), keyWaiting+handle, &w); err != nil {
		if absent(err) {
			return w, "", errExpired
		}
		return w, "", err
	}
	b, err := s.browserHash(c)
	if err != nil {
		return w, "", err
	}
	if w.Request == nil || b == "" || subtle.ConstantTimeCompare([]byte(b), []byte(w.Browser)) != 1 {
		return w, "", errOtherBrowser
	}
	return w, handle, nil
}

var (
	errExpired      = errors.New("expired")
	errOtherBrowser = errors.New("another browser")
)

// waitingError renders what loadWaiting refused.
func (s *Server) waitingError(c echo.Context, err error) error {
	var perr *oidc.Error
	switch {
	case errors.As(err, &perr):
		return s.errorPage(c, http.StatusBadRequest, perr)
	case errors.Is(err, errExpired):
		return s.renderPage(c, http.StatusBadRequest, pageLoginExpired)
	case errors.Is(err, errOtherBrowser):
		return s.renderPage(c, http.StatusForbidden, pageOtherBrowser)
	}
	s.log.ErrorContext(c.Request().Context(), "people: store unavailable", "error", err)
	return s.renderPage(c, http.StatusServiceUnavailable, pageUnavailable)
}

// handleWaiting is a pending person's page. It reloads itself; once an
// administrator approved the person (within access.pending_ttl) the same
// page continues the original sign-in into the application.
func (s *Server) handleWaiting(c echo.Context) error {
	ctx := c.Request().Context()
	c.Response().Header().Set("Cache-Control", "no-store")
	w, handle, err := s.loadWaiting(c)
	if err != nil {
		return s.waitingError(c, err)
	}
	dctx, cancel := directory.Bound(ctx)
	p, err := s.people.Get(dctx, w.Refusal.PersonID)
	cancel()
	switch {
	case errors.Is(err, directory.ErrNotFound):
		// Denied: the pending person was removed.
		w.Refusal = refusal{Kind: "not-invited", Ref: w.Refusal.Ref, Reason: "an administrator declined this sign-in"}
		return s.renderPage(c, http.StatusForbidden, s.refusalPage(w, s.keepRefusal(ctx, w)))
	case err != nil:
		s.log.ErrorContext(ctx, "people: directory unavailable", "error", err)
		pg := pageUnavailable
		pg.Ref, pg.Refresh = w.Refusal.Ref, 5
		return s.renderPage(c, http.StatusServiceUnavailable, pg)
	case p.Status == directory.StatusPending:
		return s.renderPage(c, http.StatusOK, page{Name: "pending", Title: "等待管理员批准 · Waiting for approval", Icon: "info",
			Heading: "等待管理员批准", Refresh: 5, Ref: w.Refusal.Ref,
			Message: "这是你第一次登录。管理员批准后，这个页面会自动继续登录「" + s.clientName(w.Request.ClientID) + "」。请把参考编号告诉管理员。",
			Detail:  "This is your first sign-in. An administrator must approve you; this page continues by itself once they have. Quote the reference below."})
	}
	if r := s.mayUse(p, w.Request.ClientID); r != nil {
		w.Refusal = *s.refuse(ctx, admission{ClientID: w.Request.ClientID, Flow: w.Flow, IP: c.RealIP(), UA: c.Request().UserAgent()}, r)
		return s.renderPage(c, http.StatusForbidden, s.refusalPage(w, s.keepRefusal(ctx, w)))
	}
	if _, err := s.store.Take(ctx, keyWaiting+handle); err != nil {
		// Another tab of this browser continued it a moment ago.
		return s.waitingError(c, errExpired)
	}
	si, r := s.admit(ctx, admission{Upstream: w.Upstream, ClientID: w.Request.ClientID, Flow: w.Flow, IP: c.RealIP(), UA: c.Request().UserAgent()})
	if r != nil {
		return s.refusedPage(c, w.Request, w.Browser, w.Flow, w.Upstream, r)
	}
	return s.finishSignIn(c, w.Request, si.Identity, w.Flow, true)
}

// keepRefusal stores a refusal under a fresh handle, for the way back.
func (s *Server) keepRefusal(ctx context.Context, w waitingLogin) string {
	handle := randomID(handleLen)
	if err := s.putJSON(ctx, keyWaiting+handle, w, s.opt.Access.PendingTTL); err != nil {
		s.log.WarnContext(ctx, "people: could not keep the way back to the application", "error", err)
	}
	return handle
}

// handleReturn sends a refused person back to the application with
// access_denied (RFC 6749 §4.1.2.1).
func (s *Server) handleReturn(c echo.Context) error {
	w, handle, err := s.loadWaiting(c)
	if err != nil {
		return s.waitingError(c, err)
	}
	if err := s.store.Delete(c.Request().Context(), keyWaiting+handle); err != nil {
		s.log.WarnContext(c.Request().Context(), "people: could not drop a used way back", "error", err)
	}
	s.provider.WriteAuthorizeError(c.Response(), w.Request, oidc.ErrAccessDenied("%s", w.Refusal.Reason))
	return nil
}

// finishSignIn starts the SSO session of an admitted sign-in and sends the
// code to the client.
func (s *Server) finishSignIn(c echo.Context, req *oidc.AuthRequest, id oidc.Identity, flow string, sso bool) error {
	sess, err := s.startSession(c, id, req.ClientID, sso)
	if err != nil {
		return s.authorizeUnavailable(c, req, err)
	}
	id.SessionID = sess.ID
	return s.completeLogin(c, req, id, flow)
}
