package bridge

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wechat-oidc/wechat-oidc/connector"
	"github.com/wechat-oidc/wechat-oidc/oidc"
	"github.com/wechat-oidc/wechat-oidc/store"
)

// handleLen is the length of the handles the core makes for legs and
// cross-device requests: 32 of [A-Za-z0-9] (WeChat allows up to 128 bytes
// of that alphabet as state).
const handleLen = 32

// validHandle: a handle this core could have made.
func validHandle(h string) bool {
	if len(h) != handleLen {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(('0' <= c && c <= '9') || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')) {
			return false
		}
	}
	return true
}

// pendingLogin is one leg of an upstream authorization: the browser was sent
// to the upstream and is expected back at the callback. It is stored under
// its handle, which is the state sent upstream (never the client's state).
type pendingLogin struct {
	// Request is the authorization request, compacted (compactRequest).
	Request *oidc.AuthRequest `json:"request"`
	// Browser is the SHA-256 of the browser-binding cookie of the browser
	// that started the leg: the callback must come from the same browser.
	Browser string `json:"browser"`
	// Leg is the connector's description of the round trip.
	Leg connector.Leg `json:"leg"`
	// Flow is the connector's name for the chosen flow (logs).
	Flow string `json:"flow,omitempty"`
	// HintSubject is the sub of a verified id_token_hint: the login must yield it.
	HintSubject string `json:"hint_sub,omitempty"`
	// Ticket is set on the phone leg of a cross-device login: the identity
	// goes to the ticket (and the phone confirms) instead of to the client.
	Ticket string `json:"ticket,omitempty"`
	// Invite is set on an invitation's sign-in: the identity is bound to
	// the invited person instead of answering a client (Request is ours).
	Invite string `json:"invite,omitempty"`
	// Slot is the pending-sign-in count the leg holds (the first leg of a
	// sign-in, and a phone's leg); given back when the callback takes it.
	Slot *pendingSlot `json:"slot,omitempty"`
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

// authorizeWithSession decides between the SSO session and a fresh upstream
// login (OpenID Connect Core 1.0 §3.1.2.1 on prompt, max_age and
// id_token_hint):
//   - prompt=none: a usable session yields a code without any page; no
//     usable session yields login_required.
//   - prompt=login and prompt=select_account: a fresh login (WeChat has one
//     account per person, so choosing an account is a new login).
//   - prompt=consent: a fresh login with the upstream's consent page forced;
//     the bridge has no consent screen of its own.
//   - max_age: a session max_age seconds old or older is not used, so
//     max_age=0 always means a fresh login (Core §3.1.2.1 errata set 2:
//     like prompt=login).
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
	sess, key, err := s.currentSession(c)
	if err != nil {
		return s.authorizeUnavailable(c, req, err)
	}
	usable := sess != nil
	// auth_time is whole seconds (truncated), so the elapsed time computed
	// here may be up to a second short of the true one: ">=" re-authenticates
	// a session that may be exactly max_age old, never one that is older.
	if usable && req.MaxAge >= 0 && s.now().Unix()-sess.AuthTime >= int64(req.MaxAge) {
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
	return s.startLogin(c, req, hintSub)
}

// authorizeUnavailable answers an authorization request the store cannot
// serve right now: temporarily_unavailable to the client, logged once.
func (s *Server) authorizeUnavailable(c echo.Context, req *oidc.AuthRequest, err error) error {
	s.log.ErrorContext(c.Request().Context(), "authorize: store unavailable", "client_id", req.ClientID, "error", err)
	s.metrics.SignIn("none", oidc.CodeTemporarilyUnavailable)
	if req.RedirectURI == "" {
		// Our own request (an invitation): nobody to redirect to.
		return s.renderPage(c, http.StatusServiceUnavailable, pageUnavailable)
	}
	s.provider.WriteAuthorizeError(c.Response(), req, oidc.ErrTemporarilyUnavailable("the sign-in service cannot store the request right now; try again shortly"))
	return nil
}

// codeFromSession answers from the SSO session: no upstream, no page. The
// person is looked up again: the directory decides now, not at sign-in.
func (s *Server) codeFromSession(c echo.Context, req *oidc.AuthRequest, sess *ssoSession, key string) error {
	id := sess.identity()
	if sess.Person != "" {
		var r *refusal
		if id, r = s.sessionPerson(c, req, sess); r != nil {
			if req.HasPrompt(oidc.PromptNone) || r.Kind == "unavailable" {
				e := oidc.ErrAccessDenied("%s", r.Reason)
				if r.Kind == "unavailable" {
					e = oidc.ErrTemporarilyUnavailable("%s", r.Reason)
				}
				s.provider.WriteAuthorizeError(c.Response(), req, e)
				return nil
			}
			browser, err := s.browserBinding(c)
			if err != nil {
				return s.authorizeUnavailable(c, req, err)
			}
			return s.refusedPage(c, req, browser, "sso", connector.Identity{Subject: sess.Subject, Claims: sess.Claims}, r)
		}
	}
	err := s.touchSession(c.Request().Context(), key, req.ClientID)
	if errors.Is(err, errSessionEnded) {
		// The session ended between the read and now: log in again.
		return s.startLogin(c, req, "")
	}
	if err != nil {
		return s.authorizeUnavailable(c, req, err)
	}
	s.log.InfoContext(c.Request().Context(), "authorize: answered from the SSO session", "client_id", req.ClientID)
	return s.completeLogin(c, req, id, flowSSOSession)
}

// requestParams reads a page endpoint's parameters strictly: the query of a
// GET, the form body of a POST (OpenID Connect Core 1.0 §3.1.2.1 requires both).
func requestParams(c echo.Context) (oidc.Params, *oidc.Error) {
	if c.Request().Method == http.MethodPost {
		return oidc.ReadForm(c.Response(), c.Request())
	}
	return oidc.ParseParams(c.Request().URL.RawQuery)
}

// startLogin sends the browser to the upstream the connector chose, or to
// the cross-device QR page.
func (s *Server) startLogin(c echo.Context, req *oidc.AuthRequest, hintSub string) error {
	st, e := s.conn.Start(connector.StartRequest{
		ClientID: req.ClientID, UserAgent: c.Request().UserAgent(), Extra: req.Extra,
		Consent: req.HasPrompt(oidc.PromptConsent),
	})
	if e != nil {
		s.provider.WriteAuthorizeError(c.Response(), req, e)
		return nil
	}
	unavailable := func(err error) error { return s.authorizeUnavailable(c, req, err) }
	browser, err := s.browserBinding(c)
	if err != nil {
		return unavailable(err)
	}
	slot, err := s.admitPending(c.Request().Context(), c.RealIP())
	if err != nil {
		return s.notAdmitted(c, err, unavailable)
	}
	compact := compactRequest(req)
	if st.CrossDevice {
		return s.startCrossDevice(c, compact, browser, hintSub, st, slot, "")
	}
	return s.sendUpstream(c, pendingLogin{Request: compact, Browser: browser, Leg: st.Leg, Flow: st.Flow, HintSubject: hintSub, Slot: slot})
}

// sendUpstream remembers the leg under a fresh handle and redirects the
// browser to the upstream's authorization page for it.
func (s *Server) sendUpstream(c echo.Context, pl pendingLogin) error {
	target, err := s.putLeg(c.Request().Context(), pl)
	if err != nil {
		s.releasePending(c.Request().Context(), pl.Slot)
		if pl.Ticket != "" {
			s.log.ErrorContext(c.Request().Context(), "authorize: store unavailable", "error", err)
			return s.renderPage(c, http.StatusServiceUnavailable, pageUnavailable)
		}
		return s.authorizeUnavailable(c, pl.Request, err)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Redirect(http.StatusFound, target)
}

// putLeg stores a leg and returns the upstream URL that starts it.
func (s *Server) putLeg(ctx context.Context, pl pendingLogin) (string, error) {
	handle := randomID(handleLen)
	target, err := s.conn.LoginURL(pl.Leg, handle)
	if err != nil {
		return "", err
	}
	if err := s.putJSON(ctx, keyPending+handle, pl, s.opt.Login.PendingTTL); err != nil {
		return "", err
	}
	return target, nil
}

// callbackResult is what a finished callback answered, kept for a short time
// so that the upstream's duplicate callback (WeChat sends the same code
// twice, wechat-api.md §1) gets the same answer instead of an error: on
// every leg, whatever the answer was.
type callbackResult struct {
	Browser  string `json:"browser"`
	CodeHash string `json:"code_hash"`
	// Exactly one answer: an authorization response to Request's client,
	// a redirect to the next leg upstream, or a page.
	Request  *oidc.AuthRequest `json:"request,omitempty"`
	Params   url.Values        `json:"params,omitempty"`
	Redirect string            `json:"redirect,omitempty"`
	Page     *page             `json:"page,omitempty"`
	Status   int               `json:"status,omitempty"`
}

// answered reports whether r holds an answer to replay.
func (r *callbackResult) answered() bool {
	return (r.Request != nil && r.Params != nil) || r.Redirect != "" || r.Page != nil
}

// replay writes r's answer.
func (s *Server) replay(c echo.Context, r *callbackResult) error {
	switch {
	case r.Page != nil:
		return s.renderPage(c, r.Status, *r.Page)
	case r.Redirect != "":
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.Redirect(http.StatusFound, r.Redirect)
	}
	s.provider.WriteAuthorizeResponse(c.Response(), r.Request, r.Params)
	return nil
}

// handleCallback is where the upstream sends the browser back with code and
// state (our handle).
func (s *Server) handleCallback(c echo.Context) error {
	ctx := c.Request().Context()
	c.Response().Header().Set("Cache-Control", "no-store")
	params, perr := requestParams(c)
	if perr != nil {
		return s.errorPage(c, http.StatusBadRequest, perr)
	}
	handle := params["state"]
	if !validHandle(handle) {
		return s.renderPage(c, http.StatusBadRequest, pageLoginExpired)
	}
	code := params["code"]
	browser, err := s.browserHash(c)
	if err != nil {
		s.log.ErrorContext(ctx, "callback: store unavailable", "error", err)
		return s.renderPage(c, http.StatusServiceUnavailable, pageUnavailable)
	}
	var pl pendingLogin
	err = s.getJSON(ctx, keyPending+handle, &pl)
	if errors.Is(err, store.ErrNotFound) {
		return s.duplicateCallback(c, handle, code, browser)
	}
	if err != nil || pl.Request == nil {
		s.log.ErrorContext(ctx, "callback: store unavailable or pending login unreadable", "error", err)
		return s.renderPage(c, http.StatusServiceUnavailable, pageUnavailable)
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
	if _, err := s.putJSONNew(ctx, keyInflight+handle, callbackResult{Browser: browser, CodeHash: hashValue(code)}, time.Minute); err != nil {
		s.log.ErrorContext(ctx, "callback: store unavailable", "error", err)
		return s.renderPage(c, http.StatusServiceUnavailable, pageUnavailable)
	}
	if _, err := s.store.Take(ctx, keyPending+handle); errors.Is(err, store.ErrNotFound) {
		// A duplicate callback took it a moment ago.
		return s.duplicateCallback(c, handle, code, browser)
	} else if err != nil {
		s.log.ErrorContext(ctx, "callback: store unavailable", "error", err)
		return s.renderPage(c, http.StatusServiceUnavailable, pageUnavailable)
	}
	// The browser is back: the sign-in no longer counts as pending. Its
	// later legs (if any) run on this slot's account.
	s.releasePending(ctx, pl.Slot)
	pl.Slot = nil
	leg := &callbackLeg{s: s, c: c, pl: pl, handle: handle, code: code, browser: browser}
	return leg.run(params)
}

// callbackLeg carries one callback through the connector and on to a code.
type callbackLeg struct {
	s       *Server
	c       echo.Context
	pl      pendingLogin
	handle  string
	code    string
	browser string
}

func (l *callbackLeg) run(params map[string]string) error {
	s, c, pl := l.s, l.c, l.pl
	ctx := c.Request().Context()
	out := s.conn.HandleCallback(ctx, pl.Leg, params)
	switch {
	case out.Failure != nil:
		return l.fail(out.Failure)
	case out.Next != nil:
		next := pl
		next.Leg = out.Next
		target, err := s.putLeg(ctx, next)
		if err != nil {
			return l.unavailable(err)
		}
		return l.finish(callbackResult{Redirect: target})
	case out.Retry != nil:
		next := pl
		next.Leg = out.Retry.Leg
		retry, err := s.putLeg(ctx, next)
		if err != nil {
			return l.unavailable(err)
		}
		r := out.Retry
		return l.finish(callbackResult{Status: http.StatusOK, Page: &page{
			Name: r.Name, Title: r.Title, Heading: r.Heading, Message: r.MessageZH, Detail: r.MessageEN,
			Icon: "info", RetryURL: retry,
		}})
	case out.Identity == nil:
		return l.fail(&connector.Failure{Error: oidc.ErrServerError("the sign-in service had an internal error; try again").WithDebug(errors.New("connector returned an empty outcome"))})
	}
	if pl.Ticket != "" {
		// Cross-device: the phone confirms; the desktop gets the directory's
		// decision (finishCrossDevice).
		status, pg, err := s.phoneIdentified(c, pl, *out.Identity)
		if err != nil {
			return l.unavailable(err)
		}
		if status != http.StatusOK {
			s.clearInflight(ctx, l.handle)
			return s.renderPage(c, status, pg)
		}
		return l.finish(callbackResult{Status: status, Page: &pg})
	}
	if pl.Invite != "" {
		s.clearInflight(ctx, l.handle)
		return s.redeemInvite(c, pl.Invite, pl.Flow, *out.Identity)
	}
	si, r := s.admit(ctx, admission{Upstream: *out.Identity, ClientID: pl.Request.ClientID, Flow: pl.Flow, IP: c.RealIP(), UA: c.Request().UserAgent()})
	if r != nil {
		s.clearInflight(ctx, l.handle)
		return s.refusedPage(c, pl.Request, pl.Browser, pl.Flow, *out.Identity, r)
	}
	id := si.Identity
	if pl.HintSubject != "" && pl.HintSubject != id.Subject {
		// §3.1.2.1: the person identified by id_token_hint did not log in.
		return l.fail(&connector.Failure{Error: oidc.ErrLoginRequired("the person who signed in is not the one named by id_token_hint")})
	}
	sess, err := s.startSession(c, id, pl.Request.ClientID, true)
	if err != nil {
		return l.fail(&connector.Failure{Error: oidc.ErrTemporarilyUnavailable("the sign-in service cannot store the session right now; try again shortly").WithDebug(err)})
	}
	id.SessionID = sess.ID
	params2, err := s.issueCode(ctx, pl.Request, id)
	if errors.Is(err, store.ErrFull) {
		return l.fail(&connector.Failure{Error: oidc.ErrTemporarilyUnavailable("the sign-in service cannot store the sign-in right now; try again shortly").WithDebug(err)})
	}
	if err != nil {
		return l.fail(&connector.Failure{Error: oidc.ErrServerError("the sign-in service had an internal error; try again").WithDebug(err)})
	}
	s.metrics.SignIn(pl.Flow, signInOK)
	return l.respond(params2)
}

// fail ends the leg with an error for the client (or, on a cross-device
// phone leg, for the desktop, with a page on the phone).
func (l *callbackLeg) fail(f *connector.Failure) error {
	e := f.Error
	if e.Debug != nil {
		l.s.log.ErrorContext(l.c.Request().Context(), "callback failed", "client_id", l.pl.Request.ClientID, "error", e.Error())
	}
	if l.pl.Ticket != "" {
		pg, err := l.s.phoneFailed(l.c, l.pl, f)
		if err != nil {
			return l.unavailable(err)
		}
		return l.finish(callbackResult{Status: http.StatusOK, Page: &pg})
	}
	l.s.metrics.SignIn(l.pl.Flow, e.Code)
	if l.pl.Invite != "" {
		l.s.clearInflight(l.c.Request().Context(), l.handle)
		return l.s.failurePage(l.c, f)
	}
	v := url.Values{"error": {e.Code}}
	if e.Description != "" {
		v.Set("error_description", e.Description)
	}
	return l.respond(v)
}

// respond sends the authorization response to the client and keeps it for
// a duplicate callback.
func (l *callbackLeg) respond(params url.Values) error {
	return l.finish(callbackResult{Request: l.pl.Request, Params: params})
}

// finish keeps the leg's answer for a duplicate callback, then writes it.
func (l *callbackLeg) finish(done callbackResult) error {
	ctx := l.c.Request().Context()
	done.Browser, done.CodeHash = l.browser, hashValue(l.code)
	if err := l.s.putJSON(ctx, keyDone+l.handle, done, l.s.opt.Tokens.CodeTTL); err != nil {
		// The answer still goes out; only a duplicate callback would miss it.
		l.s.log.WarnContext(ctx, "callback: could not remember the result for duplicate callbacks", "error", err)
	}
	l.s.clearInflight(ctx, l.handle)
	return l.s.replay(l.c, &done)
}

// unavailable ends the leg on a store failure: a 503 page, not remembered
// (a duplicate callback finds no answer and says the sign-in expired).
func (l *callbackLeg) unavailable(err error) error {
	ctx := l.c.Request().Context()
	l.s.log.ErrorContext(ctx, "callback: store unavailable", "error", err)
	l.s.clearInflight(ctx, l.handle)
	return l.s.renderPage(l.c, http.StatusServiceUnavailable, pageUnavailable)
}

// clearInflight drops a leg's in-flight mark. It expires by itself within a
// minute, so a failure here only delays a duplicate callback's answer.
func (s *Server) clearInflight(ctx context.Context, handle string) {
	if err := s.store.Delete(ctx, keyInflight+handle); err != nil {
		s.log.WarnContext(ctx, "callback: could not clear the in-flight mark", "error", err)
	}
}

// duplicateCallback answers a callback whose leg is already taken: WeChat
// sometimes calls the callback twice with the same code. The same browser
// with the same code gets the first callback's answer again (waiting for it
// if the first is still talking to the upstream); anything else is an
// expired link.
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
	deadline := s.now().Add(s.callbackWait)
	for {
		raw, err := s.store.Get(ctx, keyDone+handle)
		if err == nil {
			if r, ok := same(raw); ok && r.answered() {
				s.log.InfoContext(ctx, "callback: duplicate callback answered with the first result")
				return s.replay(c, r)
			}
			break
		}
		if !errors.Is(err, store.ErrNotFound) {
			s.log.ErrorContext(ctx, "callback: store unavailable", "error", err)
			return s.renderPage(c, http.StatusServiceUnavailable, pageUnavailable)
		}
		raw, err = s.store.Get(ctx, keyInflight+handle)
		if err != nil {
			break
		}
		if _, ok := same(raw); !ok || s.now().After(deadline) {
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

// Sign-in results and flows for metrics besides the connector's flows.
const (
	signInOK       = "ok"
	flowSSOSession = "sso_session" // answered from the SSO session, no upstream
)

// completeLogin issues the authorization code and sends it to the client;
// flow names the way the person signed in (metrics).
func (s *Server) completeLogin(c echo.Context, req *oidc.AuthRequest, id oidc.Identity, flow string) error {
	params, err := s.issueCode(c.Request().Context(), req, id)
	if errors.Is(err, store.ErrFull) {
		return s.authorizeUnavailable(c, req, err)
	}
	if err != nil {
		s.metrics.SignIn(flow, oidc.CodeServerError)
		return s.redirectServerError(c, req, err)
	}
	s.metrics.SignIn(flow, signInOK)
	s.provider.WriteAuthorizeResponse(c.Response(), req, params)
	return nil
}

// issueCode shapes the client's claims and mints the authorization code:
// the end of every successful login, whichever way it came.
func (s *Server) issueCode(ctx context.Context, req *oidc.AuthRequest, id oidc.Identity) (url.Values, error) {
	id.Claims = s.shapeClaims(req.ClientID, id.Subject, id.Claims)
	code, err := s.provider.IssueCode(ctx, req, id)
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "login complete: code issued", "client_id", req.ClientID)
	return url.Values{"code": {code}}, nil
}

func (s *Server) redirectServerError(c echo.Context, req *oidc.AuthRequest, err error) error {
	s.log.ErrorContext(c.Request().Context(), "internal error during sign-in", "client_id", req.ClientID, "error", err)
	s.provider.WriteAuthorizeError(c.Response(), req, oidc.ErrServerError("the sign-in service had an internal error; try again"))
	return nil
}
