package bridge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wechat-oidc/wechat-oidc/oidc"
	"github.com/wechat-oidc/wechat-oidc/store"
)

// ssoSession is the bridge's single sign-on session: after one upstream
// login the browser holds an opaque cookie; the state lives here, under the
// hash of the cookie value. Other clients then authorize without the
// upstream until the session ends (idle or absolute lifetime, logout).
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
	// Person is the directory's person id.
	Person string `json:"pid,omitempty"`
}

// identity is the person of the session, as a code from it carries them.
func (sess *ssoSession) identity() oidc.Identity {
	return oidc.Identity{Subject: sess.Subject, AuthTime: time.Unix(sess.AuthTime, 0), SessionID: sess.ID, Claims: sess.Claims, Account: sess.Person}
}

// errSessionEnded: the session is gone (logout, expiry) since it was read.
var errSessionEnded = errors.New("session ended")

func (s *Server) sessionTTL(sess *ssoSession) time.Duration {
	idle := s.opt.Session.IdleTTL
	left := time.Unix(sess.Created, 0).Add(s.opt.Session.AbsoluteTTL).Sub(s.now())
	if left < idle {
		return left
	}
	return idle
}

// currentSession returns the browser's live SSO session, or nil, and the
// storage key for updates. An error means the store could not be read.
func (s *Server) currentSession(c echo.Context) (*ssoSession, string, error) {
	ck, err := c.Cookie(s.cookieName(sessionCookie))
	if err != nil || len(ck.Value) != 43 {
		return nil, "", nil
	}
	key := keySession + hashValue(ck.Value)
	var sess ssoSession
	if err := s.getJSON(c.Request().Context(), key, &sess); err != nil {
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, errUnreadable) {
			return nil, "", nil
		}
		return nil, "", err
	}
	if s.sessionTTL(&sess) <= 0 {
		return nil, "", nil // past its absolute lifetime
	}
	return &sess, key, nil
}

// startSession creates a session for a fresh upstream login and records
// the requesting client in it. With setCookie the browser gets the session
// cookie, replacing any session it had:
//   - the same person signing in again (prompt=login, an expired max_age,
//     ...) keeps the session id and its applications: they hold ID tokens
//     with that sid and must be told at logout (Back-Channel Logout 1.0
//     §2.4 matches on sid). The cookie value is new (no session fixation).
//   - another person ends the old session: its tokens are revoked and its
//     applications told.
//
// Without setCookie (a cross-device sign-in, see finishCrossDevice) the
// session has no cookie and no browser: it exists so that logout by
// id_token_hint ends it, revokes its tokens and tells its application.
func (s *Server) startSession(c echo.Context, id oidc.Identity, clientID string, setCookie bool) (*ssoSession, error) {
	ctx := c.Request().Context()
	now := s.now()
	sess := &ssoSession{ID: randomID(22), Subject: id.Subject, AuthTime: id.AuthTime.Unix(), Created: now.Unix(), Claims: id.Claims,
		Person: id.Account}
	if clientID != "" {
		sess.Clients = []string{clientID}
	}
	if setCookie {
		old, oldKey, err := s.currentSession(c)
		if err != nil {
			return nil, err
		}
		if old != nil && old.Subject == id.Subject {
			sess.ID = old.ID
			for _, cl := range old.Clients {
				if !slices.Contains(sess.Clients, cl) {
					sess.Clients = append(sess.Clients, cl)
				}
			}
		}
		if old != nil {
			if err := s.store.Delete(ctx, oldKey); err != nil {
				return nil, err
			}
			if old.Subject != id.Subject {
				// Another person signs in on this browser: the old person's
				// session ends like at logout.
				if err := s.provider.RevokeSession(ctx, old.ID); err != nil {
					return nil, err
				}
				s.notifyLogout(old)
			}
		}
	}
	value := randomToken()
	key := keySession + hashValue(value)
	if err := s.putJSON(ctx, key, sess, s.sessionTTL(sess)); err != nil {
		return nil, err
	}
	if sess.Person != "" {
		if err := s.rememberPersonSession(ctx, sess, key); err != nil {
			return nil, err
		}
	}
	if err := s.store.Put(ctx, keySessionSID+sess.ID, []byte(key), s.opt.Session.AbsoluteTTL); err != nil {
		return nil, err
	}
	if setCookie {
		c.SetCookie(s.cookie(sessionCookie, value, 0))
	}
	return sess, nil
}

// touchSession records that clientID received a code in the session and
// extends the idle lifetime (never past the absolute one).
func (s *Server) touchSession(ctx context.Context, key string, clientID string) error {
	// The stored TTL is the idle lifetime; the absolute lifetime is checked
	// on every read (currentSession).
	return s.updateSession(ctx, key, s.opt.Session.IdleTTL, func(sess *ssoSession) error {
		if s.sessionTTL(sess) <= 0 {
			return errSessionEnded
		}
		if !slices.Contains(sess.Clients, clientID) {
			sess.Clients = append(sess.Clients, clientID)
		}
		return nil
	})
}

// endSession deletes the session behind the browser's cookie, clears the
// cookie and notifies the session's clients by back-channel logout.
func (s *Server) endSession(c echo.Context) (*ssoSession, error) {
	sess, key, err := s.currentSession(c)
	if err != nil {
		return nil, err
	}
	c.SetCookie(s.cookie(sessionCookie, "", -1))
	if sess == nil {
		return nil, nil
	}
	return sess, s.deleteSession(c.Request().Context(), sess, key)
}

// deleteSession ends a session: its tokens that were not issued for
// offline_access are revoked (Back-Channel Logout 1.0 §2.7), the session is
// deleted and its clients are told. The tokens go first: if that fails the
// session is still there, and signing out again finishes the work.
func (s *Server) deleteSession(ctx context.Context, sess *ssoSession, key string) error {
	if err := s.provider.RevokeSession(ctx, sess.ID); err != nil {
		return err
	}
	if err := s.store.Delete(ctx, key); err != nil {
		return err
	}
	if err := s.store.Delete(ctx, keySessionSID+sess.ID); err != nil {
		// The sid index points at a deleted session: harmless, it expires.
		s.log.WarnContext(ctx, "logout: could not delete the sid index", "error", err)
	}
	s.notifyLogout(sess)
	// OpenID Connect Back-Channel Logout 1.0 §2.7: refresh tokens not
	// issued for offline_access SHOULD be revoked when the session ends;
	// their access tokens go with them.
	if err := s.provider.RevokeSession(ctx, sess.ID); err != nil {
		return fmt.Errorf("revoking the session's tokens: %w", err)
	}
	return nil
}

// sessionBySID finds a live session by its public id (the sid claim).
func (s *Server) sessionBySID(ctx context.Context, sid string) (*ssoSession, string, error) {
	key, err := s.store.Get(ctx, keySessionSID+sid)
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", nil
	} else if err != nil {
		return nil, "", err
	}
	var sess ssoSession
	if err := s.getJSON(ctx, string(key), &sess); err != nil {
		if errors.Is(err, store.ErrNotFound) || errors.Is(err, errUnreadable) {
			return nil, "", nil
		}
		return nil, "", err
	}
	if sess.ID != sid || s.sessionTTL(&sess) <= 0 {
		return nil, "", nil
	}
	return &sess, string(key), nil
}

func hashValue(v string) string { return oidc.HashToken(v) }
