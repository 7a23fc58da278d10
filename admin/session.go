package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wechat-oidc/wechat-oidc/oidc"
	"github.com/wechat-oidc/wechat-oidc/store"
)

// The console's keys in the store (the login core's are in bridge/storage.go,
// oidc's under "oidc:").
const (
	keySession = "admin:session:" // hash of the session cookie → session
	keySignin  = "admin:signin:"  // hash of a sign-in's state → signin
)

// Cookie names. All are scoped to {prefix}/admin.
const (
	sessionCookie = "wechat_oidc_admin"
	signinCookie  = "wechat_oidc_admin_signin"
	langCookie    = "wechat_oidc_admin_lang"
)

// session is a console session, stored under the hash of its cookie: the
// cookie alone is worth nothing once the session is deleted, and a leaked
// store does not reveal cookies.
type session struct {
	PersonID string `json:"person"`
	// AuthTime is when the person last authenticated at the provider
	// (auth_time of the ID token), for dangerous actions.
	AuthTime int64  `json:"auth_time"`
	Created  int64  `json:"created"`
	LastSeen int64  `json:"last_seen"`
	CSRF     string `json:"csrf"`          // the token every POST must carry
	SID      string `json:"sid,omitempty"` // the provider's SSO session
	Flash    *flash `json:"flash,omitempty"`
}

// flash is the outcome of a POST, shown once by the next page.
type flash struct {
	Error bool   `json:"error,omitempty"`
	Key   string `json:"key"`           // a message key
	Arg   string `json:"arg,omitempty"` // a value the message names
}

var errSessionGone = errors.New("console session ended")

// cookie is one of the console's cookies: path-scoped to the console, not
// readable by script, not sent on cross-site subrequests, Secure on https.
func (c *Console) cookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name: name, Value: value, Path: c.base, MaxAge: maxAge,
		HttpOnly: true, Secure: c.secure, SameSite: http.SameSiteLaxMode,
	}
}

// startSession stores a new session and sets its cookie.
func (c *Console) startSession(ec echo.Context, personID string, authTime time.Time, sid string) error {
	now := c.now()
	s := session{
		PersonID: personID, AuthTime: authTime.Unix(), Created: now.Unix(), LastSeen: now.Unix(),
		CSRF: oidc.NewToken(), SID: sid,
	}
	raw, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encoding a console session: %w", err)
	}
	value := oidc.NewToken()
	if err := c.store.Put(ec.Request().Context(), keySession+oidc.HashToken(value), raw, c.idleTTL); err != nil {
		return fmt.Errorf("storing a console session: %w", err)
	}
	ec.SetCookie(c.cookie(sessionCookie, value, int(c.absoluteTTL/time.Second)))
	return nil
}

// loadSession returns the browser's live session and its store key, and
// marks it used; nil when there is none, it ended, or it outlived its idle
// or absolute lifetime. takeFlash removes the flash it returns (a page
// that shows it).
func (c *Console) loadSession(ec echo.Context, takeFlash bool) (string, *session, error) {
	ck, err := ec.Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return "", nil, nil
	}
	ctx := ec.Request().Context()
	key := keySession + oidc.HashToken(ck.Value)
	raw, err := c.store.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil, nil
	}
	if err != nil {
		return "", nil, fmt.Errorf("reading the console session: %w", err)
	}
	var s session
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", nil, nil
	}
	now := c.now()
	ends := time.Unix(s.Created, 0).Add(c.absoluteTTL)
	if !now.Before(ends) || now.Sub(time.Unix(s.LastSeen, 0)) >= c.idleTTL {
		if err := c.store.Delete(ctx, key); err != nil {
			c.log.WarnContext(ctx, "admin: could not delete an expired session", "error", err)
		}
		return "", nil, nil
	}
	var cur session
	err = c.store.Update(ctx, key, min(c.idleTTL, ends.Sub(now)), func(old []byte) ([]byte, error) {
		if old == nil || json.Unmarshal(old, &cur) != nil {
			return nil, errSessionGone
		}
		next := cur
		next.LastSeen = now.Unix()
		if takeFlash {
			next.Flash = nil
		}
		return json.Marshal(next)
	})
	if errors.Is(err, errSessionGone) {
		return "", nil, nil
	}
	if err != nil {
		return "", nil, fmt.Errorf("updating the console session: %w", err)
	}
	return key, &cur, nil
}

// setFlash leaves a message for the next page of this session.
func (c *Console) setFlash(ctx context.Context, key string, f flash) {
	err := c.updateSession(ctx, key, func(s *session) { s.Flash = &f })
	if err != nil {
		c.log.WarnContext(ctx, "admin: could not store a message for the next page", "error", err)
	}
}

// updateSession changes the stored session at key (its absolute lifetime
// is enforced when it is loaded).
func (c *Console) updateSession(ctx context.Context, key string, fn func(*session)) error {
	return c.store.Update(ctx, key, c.idleTTL, func(old []byte) ([]byte, error) {
		var s session
		if old == nil || json.Unmarshal(old, &s) != nil {
			return nil, errSessionGone
		}
		fn(&s)
		return json.Marshal(s)
	})
}
