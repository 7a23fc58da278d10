package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wechat-oidc/wechat-oidc/store"
)

const (
	keySession    = "bridge:session:"
	keySessionSID = "bridge:sid:" // sid → session key, for logout without the browser's cookie
	sessionCookie = "wechat_oidc_session"
)

// ssoSession is the bridge's single sign-on session: after one WeChat login
// the browser holds an opaque cookie; the state lives here, under the hash of
// the cookie value. Other clients then authorize without WeChat until the
// session ends (idle or absolute lifetime, logout).
type ssoSession struct {
	// ID is the public session id (the sid claim); it is not the cookie.
	ID       string         `json:"sid"`
	Subject  string         `json:"sub"`
	AuthTime int64          `json:"auth_time"`
	Created  int64          `json:"created"`
	Claims   map[string]any `json:"claims,omitempty"`
	// Clients that received a code in this session: the ones told by
	// back-channel logout when it ends.
	Clients []string `json:"clients,omitempty"`
}

func (s *Server) sessionTTL(sess *ssoSession) time.Duration {
	idle := s.cfg.Session.IdleTTL.D()
	left := time.Unix(sess.Created, 0).Add(s.cfg.Session.AbsoluteTTL.D()).Sub(s.now())
	if left < idle {
		return left
	}
	return idle
}

// currentSession returns the browser's live SSO session, or nil. The cookie
// hash is also returned, for updates.
func (s *Server) currentSession(c echo.Context) (*ssoSession, string) {
	ck, err := c.Cookie(sessionCookie)
	if err != nil || len(ck.Value) != 43 {
		return nil, ""
	}
	key := keySession + hashValue(ck.Value)
	raw, err := s.store.Get(c.Request().Context(), key)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.log.ErrorContext(c.Request().Context(), "session: store unavailable", "error", err)
		}
		return nil, ""
	}
	var sess ssoSession
	if json.Unmarshal(raw, &sess) != nil {
		return nil, ""
	}
	if s.sessionTTL(&sess) <= 0 {
		return nil, "" // past its absolute lifetime
	}
	return &sess, key
}

// startSession creates a session for a fresh WeChat login, replacing any
// session this browser had (a new login never inherits an old session id).
func (s *Server) startSession(c echo.Context, sub string, authTime time.Time, claims map[string]any) (*ssoSession, string, error) {
	ctx := c.Request().Context()
	if old, oldKey := s.currentSession(c); old != nil {
		_ = s.store.Delete(ctx, oldKey)
		if old.Subject != sub {
			// Another person signs in on this browser: the old person's
			// applications are told they are signed out.
			s.notifyLogout(old)
		}
	}
	value := randomToken()
	sess := &ssoSession{ID: randomID(22), Subject: sub, AuthTime: authTime.Unix(), Created: s.now().Unix(), Claims: claims}
	key := keySession + hashValue(value)
	raw, _ := json.Marshal(sess)
	if err := s.store.Put(ctx, key, raw, s.sessionTTL(sess)); err != nil {
		return nil, "", err
	}
	if err := s.store.Put(ctx, keySessionSID+sess.ID, []byte(key), s.cfg.Session.AbsoluteTTL.D()); err != nil {
		return nil, "", err
	}
	c.SetCookie(&http.Cookie{
		Name:     sessionCookie,
		Value:    value,
		Path:     s.prefix + "/",
		HttpOnly: true,
		Secure:   s.secure,
		SameSite: http.SameSiteLaxMode,
		// A browser-session cookie: the server side decides the lifetime.
	})
	return sess, key, nil
}

// touchSession records that clientID received a code in the session and
// extends the idle lifetime (never past the absolute one).
func (s *Server) touchSession(ctx context.Context, key string, clientID string) error {
	// The stored TTL is the idle lifetime; the absolute lifetime is checked
	// on every read (currentSession).
	return s.store.Update(ctx, key, s.cfg.Session.IdleTTL.D(), func(old []byte) ([]byte, error) {
		if old == nil {
			return nil, errors.New("session ended")
		}
		var sess ssoSession
		if err := json.Unmarshal(old, &sess); err != nil {
			return nil, err
		}
		if !slices.Contains(sess.Clients, clientID) {
			sess.Clients = append(sess.Clients, clientID)
		}
		if s.sessionTTL(&sess) <= 0 {
			return nil, errors.New("session expired")
		}
		return json.Marshal(sess)
	})
}

// endSession deletes the session behind the browser's cookie, clears the
// cookie and notifies the session's clients by back-channel logout.
func (s *Server) endSession(c echo.Context) *ssoSession {
	sess, key := s.currentSession(c)
	c.SetCookie(&http.Cookie{Name: sessionCookie, Value: "", Path: s.prefix + "/", MaxAge: -1, HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode})
	if sess == nil {
		return nil
	}
	s.deleteSession(c.Request().Context(), sess, key)
	return sess
}

func (s *Server) deleteSession(ctx context.Context, sess *ssoSession, key string) {
	if err := s.store.Delete(ctx, key); err != nil {
		s.log.ErrorContext(ctx, "logout: could not delete the session", "error", err)
	}
	_ = s.store.Delete(ctx, keySessionSID+sess.ID)
	s.notifyLogout(sess)
}

// sessionBySID finds a live session by its public id (the sid claim).
func (s *Server) sessionBySID(ctx context.Context, sid string) (*ssoSession, string) {
	key, err := s.store.Get(ctx, keySessionSID+sid)
	if err != nil {
		return nil, ""
	}
	raw, err := s.store.Get(ctx, string(key))
	if err != nil {
		return nil, ""
	}
	var sess ssoSession
	if json.Unmarshal(raw, &sess) != nil || sess.ID != sid || s.sessionTTL(&sess) <= 0 {
		return nil, ""
	}
	return &sess, string(key)
}
