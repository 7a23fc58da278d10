package bridge

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wechat-oidc/wechat-oidc/oidc"
)

// PathLogout is the end_session_endpoint (OpenID Connect RP-Initiated Logout 1.0).
const PathLogout = "/logout"

// backchannelEvent is the events member of a logout token (OpenID Connect
// Back-Channel Logout 1.0 §2.4).
const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// Back-channel delivery: bounded retries with backoff, on network errors and
// 5xx only (a 4xx means the RP rejected the token; repeating will not help).
var backchannelBackoff = []time.Duration{0, 500 * time.Millisecond, 2 * time.Second, 5 * time.Second}

const backchannelTimeout = 5 * time.Second

// backchannel delivers logout tokens in the background. Its context ends
// at shutdown (StopBackchannel), which cuts retries short.
type backchannel struct {
	client *http.Client
	wg     *sync.WaitGroup
	ctx    context.Context
	stop   context.CancelFunc
}

func newBackchannel(*slog.Logger) backchannel {
	ctx, stop := context.WithCancel(context.Background())
	return backchannel{
		client: &http.Client{Timeout: backchannelTimeout, CheckRedirect: noRedirects},
		wg:     &sync.WaitGroup{},
		ctx:    ctx,
		stop:   stop,
	}
}

// notifyLogout sends a logout token to every client of the session that has
// a backchannel_logout_uri. Delivery runs in the background with retries.
func (s *Server) notifyLogout(sess *ssoSession) {
	for _, id := range sess.Clients {
		cc := s.clients[id]
		if cc == nil || cc.BackchannelLogoutURI == "" {
			continue
		}
		token, err := s.logoutToken(id, sess)
		if err != nil {
			s.log.Error("back-channel logout: could not sign the logout token", "client_id", id, "error", err)
			continue
		}
		s.bc.wg.Add(1)
		go func(clientID, uri, token string) {
			defer s.bc.wg.Done()
			s.deliverLogout(clientID, uri, token)
		}(id, cc.BackchannelLogoutURI, token)
	}
}

func (s *Server) logoutToken(clientID string, sess *ssoSession) (string, error) {
	now := s.now()
	claims := map[string]any{
		"iss":    s.opt.Issuer,
		"aud":    clientID,
		"iat":    now.Unix(),
		"exp":    now.Add(2 * time.Minute).Unix(),
		"jti":    randomID(22),
		"sub":    sess.Subject,
		"sid":    sess.ID,
		"events": map[string]any{backchannelEvent: map[string]any{}},
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	// §2.4: the logout token's typ is "logout+jwt"; it never has a nonce.
	return s.keys.SignWithType(payload, "logout+jwt")
}

func (s *Server) deliverLogout(clientID, uri, token string) {
	body := url.Values{"logout_token": {token}}.Encode()
	for attempt, wait := range backchannelBackoff {
		if wait > 0 {
			select {
			case <-s.bc.ctx.Done():
				s.log.Warn("back-channel logout abandoned at shutdown", "client_id", clientID, "attempts", attempt)
				return
			case <-time.After(wait):
			}
		}
		ctx, cancel := context.WithTimeout(s.bc.ctx, backchannelTimeout)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, uri, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := s.bc.client.Do(req)
		cancel()
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusNoContent {
				s.log.Info("back-channel logout delivered", "client_id", clientID, "attempt", attempt+1)
				return
			}
			if resp.StatusCode < 500 {
				s.log.Warn("back-channel logout refused by the client", "client_id", clientID, "status", resp.StatusCode)
				return
			}
			s.log.Warn("back-channel logout failed; will retry", "client_id", clientID, "status", resp.StatusCode, "attempt", attempt+1)
			continue
		}
		s.log.Warn("back-channel logout failed; will retry", "client_id", clientID, "error", err.Error(), "attempt", attempt+1)
	}
	s.log.Error("back-channel logout gave up", "client_id", clientID, "attempts", len(backchannelBackoff))
}

// WaitBackchannel waits until pending back-channel deliveries finish (tests,
// graceful shutdown).
func (s *Server) WaitBackchannel() { s.bc.wg.Wait() }

// WaitBackchannelTimeout waits at most d for pending deliveries (graceful
// shutdown), then cancels what is left; it reports whether all finished.
func (s *Server) WaitBackchannelTimeout(d time.Duration) bool {
	done := make(chan struct{})
	go func() { s.bc.wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		s.bc.stop()
		<-done
		return false
	}
}

// handleLogout is RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0
// §2–3). With a valid id_token_hint for the current session the session ends
// at once; without one the person is asked to confirm, so a third-party page
// cannot sign people out (logout CSRF). post_logout_redirect_uri is followed
// only when it is registered for the client identified by the hint or
// client_id — never an open redirect.
func (s *Server) handleLogout(c echo.Context) error {
	ctx := c.Request().Context()
	lr, e := s.parseLogout(c)
	if e != nil {
		return s.errorPage(c, http.StatusBadRequest, e)
	}
	sess, _, err := s.currentSession(c)
	if err != nil {
		s.log.ErrorContext(ctx, "logout: store unavailable", "error", err)
		return s.renderPage(c, http.StatusServiceUnavailable, pageUnavailable)
	}
	confirmed := false
	if c.Request().Method == http.MethodPost && lr.confirm != "" {
		if confirmed = s.checkLogoutConfirm(c, lr.confirm); !confirmed {
			return s.errorPage(c, http.StatusBadRequest, oidc.ErrInvalidRequest("the sign-out confirmation expired; try again"))
		}
	}
	hint := lr.hint
	hintMatches := hint != nil && sess != nil && hint.Subject == sess.Subject && (hint.SessionID == "" || hint.SessionID == sess.ID)
	if sess != nil && !hintMatches && !confirmed {
		return s.logoutConfirmPage(c, map[string]string{"client_id": lr.clientID, "post_logout_redirect_uri": lr.redirect, "state": lr.state})
	}
	if err := s.endLogoutSession(c, lr, sess); err != nil {
		s.log.ErrorContext(ctx, "logout: store unavailable", "error", err)
		return s.renderPage(c, http.StatusServiceUnavailable, pageUnavailable)
	}
	if lr.redirect != "" {
		target := lr.redirect
		if lr.state != "" {
			target = oidc.AppendQuery(lr.redirect, url.Values{"state": {lr.state}})
		}
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.Redirect(http.StatusFound, target)
	}
	return s.renderPage(c, http.StatusOK, pageSignedOut)
}

// endLogoutSession ends the browser's session, or without one (the RP
// called from its server, or another browser) the session a genuine ID
// token of ours names by sid.
func (s *Server) endLogoutSession(c echo.Context, lr *logoutRequest, sess *ssoSession) error {
	ctx := c.Request().Context()
	if sess != nil {
		if _, err := s.endSession(c); err != nil {
			return err
		}
		s.log.InfoContext(ctx, "signed out", "client_id", lr.clientID, "clients_notified", len(sess.Clients))
		return nil
	}
	if lr.hint == nil || lr.hint.SessionID == "" {
		return nil
	}
	other, key, err := s.sessionBySID(ctx, lr.hint.SessionID)
	if err != nil || other == nil || other.Subject != lr.hint.Subject {
		return err
	}
	if err := s.deleteSession(ctx, other, key); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "signed out by id_token_hint without the browser's session cookie", "client_id", lr.clientID, "clients_notified", len(other.Clients))
	return nil
}

// logoutRequest is a checked RP-initiated logout request.
type logoutRequest struct {
	clientID, redirect, state, confirm string
	hint                               *oidc.IDTokenHint
}

// parseLogout checks a logout request: the hint's signature and audience,
// the client, and that post_logout_redirect_uri is registered for it.
func (s *Server) parseLogout(c echo.Context) (*logoutRequest, *oidc.Error) {
	params, perr := requestParams(c)
	if perr != nil {
		return nil, perr
	}
	lr := &logoutRequest{clientID: params["client_id"], redirect: params["post_logout_redirect_uri"],
		state: params["state"], confirm: params["confirm"]}
	if h := params["id_token_hint"]; h != "" {
		var e *oidc.Error
		if lr.hint, e = s.provider.VerifyIDTokenHint(h); e != nil {
			return nil, e
		}
		if lr.clientID == "" {
			lr.clientID, _ = lr.hint.Audience.(string)
		} else if !lr.hint.HasAudience(lr.clientID) {
			return nil, oidc.ErrInvalidRequest("client_id does not match the audience of id_token_hint")
		}
	}
	cc := s.clients[lr.clientID]
	if cc == nil && lr.clientID != "" {
		return nil, oidc.ErrInvalidRequest("unknown client_id")
	}
	if lr.redirect != "" {
		if cc == nil {
			// Nothing identifies the client, so the URI cannot be checked:
			// it is not followed (never an open redirect), but the person
			// may still sign out (RP-Initiated Logout 1.0 §3).
			s.log.InfoContext(c.Request().Context(), "logout: post_logout_redirect_uri ignored: no id_token_hint or client_id to check it against")
			lr.redirect = ""
		} else if !slices.Contains(cc.PostLogoutRedirectURIs, lr.redirect) {
			return nil, oidc.ErrInvalidRequest("post_logout_redirect_uri is not registered for client %q", lr.clientID)
		}
	}
	if len(lr.state) > oidc.MaxStateBytes {
		return nil, oidc.ErrInvalidRequest("state is too long")
	}
	return lr, nil
}

// logoutConfirmPage asks the person to confirm signing out. The form
// carries the session's confirmation token: one per session, derived from
// the session cookie (so a third-party page, which cannot read the cookie,
// cannot forge it), and nothing is stored for it: asking again shows the
// same token, and a flood of GETs stores nothing.
func (s *Server) logoutConfirmPage(c echo.Context, params map[string]string) error {
	token, err := s.logoutConfirmToken(c)
	if err != nil {
		s.log.ErrorContext(c.Request().Context(), "logout: store unavailable", "error", err)
		return s.renderPage(c, http.StatusServiceUnavailable, pageUnavailable)
	}
	if token == "" {
		return s.renderPage(c, http.StatusOK, pageSignedOut)
	}
	fields := map[string]string{"confirm": token}
	for _, k := range []string{"client_id", "post_logout_redirect_uri", "state"} {
		if v := params[k]; v != "" {
			fields[k] = v
		}
	}
	pg := pageLogoutConfirm
	pg.Form = &pageForm{Action: s.url(PathLogout), Fields: fields, Button: "退出登录 · Sign out"}
	return s.renderPage(c, http.StatusOK, pg)
}

// logoutConfirmToken is the confirmation token of the browser's session
// cookie, or "" without one.
func (s *Server) logoutConfirmToken(c echo.Context) (string, error) {
	ck, err := c.Cookie(s.cookieName(sessionCookie))
	if err != nil || ck.Value == "" {
		return "", nil
	}
	key, err := s.macKey(c.Request().Context())
	if err != nil {
		return "", err
	}
	return macToken(key, "logout-confirm", hashValue(ck.Value)), nil
}

func (s *Server) checkLogoutConfirm(c echo.Context, token string) bool {
	want, err := s.logoutConfirmToken(c)
	if err != nil {
		s.log.ErrorContext(c.Request().Context(), "logout: store unavailable", "error", err)
		return false
	}
	return equalToken(token, want)
}
