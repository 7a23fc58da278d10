package bridge

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
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

type backchannel struct {
	client *http.Client
	wg     sync.WaitGroup
}

// notifyLogout sends a logout token to every client of the session that has
// a backchannel_logout_uri. Delivery runs in the background with retries.
func (s *Server) notifyLogout(sess *ssoSession) {
	for _, id := range sess.Clients {
		cc := s.clientConfigs[id]
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
		"iss":    s.cfg.Issuer,
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
			time.Sleep(wait)
		}
		ctx, cancel := context.WithTimeout(context.Background(), backchannelTimeout)
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

// WaitBackchannelTimeout waits at most d; it reports whether all finished.
func (s *Server) WaitBackchannelTimeout(d time.Duration) bool {
	done := make(chan struct{})
	go func() { s.bc.wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
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
	r := c.Request()
	params, perr := requestParams(c)
	if perr != nil {
		return s.errorPage(c, http.StatusBadRequest, perr)
	}
	clientID := params["client_id"]
	var hint *oidc.IDTokenHint
	if h := params["id_token_hint"]; h != "" {
		var e *oidc.Error
		if hint, e = s.provider.VerifyIDTokenHint(h); e != nil {
			return s.errorPage(c, http.StatusBadRequest, e)
		}
		if clientID == "" {
			clientID, _ = hint.Audience.(string)
		} else if !hint.HasAudience(clientID) {
			return s.errorPage(c, http.StatusBadRequest, oidc.ErrInvalidRequest("client_id does not match the audience of id_token_hint"))
		}
	}
	redirect := params["post_logout_redirect_uri"]
	if redirect != "" {
		cc := s.clientConfigs[clientID]
		switch {
		case cc == nil && clientID != "":
			return s.errorPage(c, http.StatusBadRequest, oidc.ErrInvalidRequest("unknown client_id"))
		case cc == nil:
			// Nothing identifies the client, so the URI cannot be checked:
			// it is not followed (never an open redirect), but the person
			// may still sign out (RP-Initiated Logout 1.0 §3).
			s.log.InfoContext(r.Context(), "logout: post_logout_redirect_uri ignored: no id_token_hint or client_id to check it against")
			redirect = ""
		default:
			ok := false
			for _, u := range cc.PostLogoutRedirectURIs {
				ok = ok || u == redirect
			}
			if !ok {
				return s.errorPage(c, http.StatusBadRequest, oidc.ErrInvalidRequest("post_logout_redirect_uri is not registered for client %q", clientID))
			}
		}
	} else if clientID != "" && s.clientConfigs[clientID] == nil {
		return s.errorPage(c, http.StatusBadRequest, oidc.ErrInvalidRequest("unknown client_id"))
	}
	state := params["state"]
	if len(state) > oidc.MaxStateBytes {
		return s.errorPage(c, http.StatusBadRequest, oidc.ErrInvalidRequest("state is too long"))
	}

	sess, _ := s.currentSession(c)
	confirmed := false
	if r.Method == http.MethodPost && params["confirm"] != "" {
		confirmed = s.checkLogoutConfirm(c, params["confirm"])
		if !confirmed {
			return s.errorPage(c, http.StatusBadRequest, oidc.ErrInvalidRequest("the sign-out confirmation expired; try again"))
		}
	}
	hintMatches := hint != nil && sess != nil && hint.Subject == sess.Subject && (hint.SessionID == "" || hint.SessionID == sess.ID)
	if sess != nil && !hintMatches && !confirmed {
		return s.logoutConfirmPage(c, map[string]string{"client_id": clientID, "post_logout_redirect_uri": redirect, "state": state})
	}
	if sess != nil {
		s.endSession(c)
		s.log.InfoContext(r.Context(), "signed out", "client_id", clientID, "clients_notified", len(sess.Clients))
	} else if hint != nil && hint.SessionID != "" {
		// No session cookie (the RP called from its server, or another
		// browser): a genuine ID token of ours names the session to end.
		if other, key := s.sessionBySID(r.Context(), hint.SessionID); other != nil && other.Subject == hint.Subject {
			s.deleteSession(r.Context(), other, key)
			s.log.InfoContext(r.Context(), "signed out by id_token_hint without the browser's session cookie", "client_id", clientID, "clients_notified", len(other.Clients))
		}
	}
	if redirect != "" {
		v := url.Values{}
		if state != "" {
			v.Set("state", state)
		}
		target := redirect
		if len(v) > 0 {
			target = oidc.AppendQuery(redirect, v)
		}
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.Redirect(http.StatusFound, target)
	}
	return s.renderPage(c, http.StatusOK, pageSignedOut)
}

const keyLogoutConfirm = "bridge:logoutconfirm:"

// logoutConfirmPage asks the person to confirm signing out. The form carries
// a single-use token bound to this browser's session cookie.
func (s *Server) logoutConfirmPage(c echo.Context, params map[string]string) error {
	ck, err := c.Cookie(sessionCookie)
	if err != nil {
		return s.renderPage(c, http.StatusOK, pageSignedOut)
	}
	token := randomToken()
	if err := s.store.Put(c.Request().Context(), keyLogoutConfirm+hashValue(token), []byte(hashValue(ck.Value)), 10*time.Minute); err != nil {
		return s.renderPage(c, http.StatusServiceUnavailable, pageUnavailable)
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

func (s *Server) checkLogoutConfirm(c echo.Context, token string) bool {
	ck, err := c.Cookie(sessionCookie)
	if err != nil {
		return false
	}
	raw, err := s.store.Take(c.Request().Context(), keyLogoutConfirm+hashValue(token))
	return err == nil && string(raw) == hashValue(ck.Value)
}
