package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/wechat-oidc/wechat-oidc/store"
)

// Every key the login core keeps in the store, in one place. (oidc keeps
// its own under "oidc:", connectors theirs under their own prefixes.)
const (
	keyPending       = "bridge:pending:"       // leg handle → pendingLogin
	keyInflight      = "bridge:inflight:"      // leg handle → callbackResult (being answered)
	keyDone          = "bridge:done:"          // leg handle → callbackResult (answered)
	keySession       = "bridge:session:"       // hash of the session cookie → ssoSession
	keySessionSID    = "bridge:sid:"           // sid → session key, for logout without the browser's cookie
	keyXDRequest     = "bridge:xd:"            // desktop handle → xdRequest
	keyXDTicket      = "bridge:xdt:"           // QR ticket → xdTicket
	keyPendingNet    = "bridge:pendingnet:"    // client network → pendingCount (pending sign-ins)
	keyPendingTotal  = "bridge:pendingtotal"   // pendingCount of every pending sign-in
	keyMACKey        = "bridge:mackey"         // the server's MAC key (binding cookies, confirmation tokens)
	keyLogoutConfirm = "bridge:logoutconfirm:" // hash of a confirmation token → hash of the session cookie
	keyPerson        = "bridge:person:"        // person id → personRecord (their sessions and subjects)
	keyWaiting       = "bridge:waiting:"       // waiting handle → waitingLogin (a pending person's sign-in)
	keyRevoked       = "bridge:revoked:"       // audit event id → "1": a revocation already carried out
	keySubject       = "bridge:subject:"       // sub → person id (the admin console's sign-in)
)

// Cookie names.
const (
	browserCookie = "wechat_oidc_browser"
	sessionCookie = "wechat_oidc_session"
)

// errUnreadable: a stored value does not decode (written by an incompatible
// version, or damaged). Callers treat it like an absent value.
var errUnreadable = errors.New("stored value unreadable")

func (s *Server) putJSON(ctx context.Context, key string, v any, ttl time.Duration) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	return s.store.Put(ctx, key, raw, ttl)
}

// putJSONNew stores v only if key is absent; it reports whether it did.
func (s *Server) putJSONNew(ctx context.Context, key string, v any, ttl time.Duration) (bool, error) {
	raw, err := json.Marshal(v)
	if err != nil {
		return false, fmt.Errorf("encode %s: %w", key, err)
	}
	return s.store.PutNew(ctx, key, raw, ttl)
}

// getJSON reads key into v: store.ErrNotFound when absent, errUnreadable
// when it does not decode, another error when the store failed.
func (s *Server) getJSON(ctx context.Context, key string, v any) error {
	raw, err := s.store.Get(ctx, key)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		s.log.WarnContext(ctx, "store: unreadable value", "error", err)
		return errUnreadable
	}
	return nil
}

// updateSession changes the session at key atomically; fn's error leaves it
// unchanged and is returned. An absent or unreadable session is errSessionEnded.
func (s *Server) updateSession(ctx context.Context, key string, ttl time.Duration, fn func(*ssoSession) error) error {
	return s.store.Update(ctx, key, ttl, func(old []byte) ([]byte, error) {
		if old == nil {
			return nil, errSessionEnded
		}
		var sess ssoSession
		if err := json.Unmarshal(old, &sess); err != nil {
			return nil, errSessionEnded
		}
		if err := fn(&sess); err != nil {
			return nil, err
		}
		return json.Marshal(sess)
	})
}

// absent: the value is not there (or not readable, which is the same).
func absent(err error) bool {
	return errors.Is(err, store.ErrNotFound) || errors.Is(err, errUnreadable)
}

// updateJSON changes the JSON value at key atomically, creating it from the
// zero value when absent (or unreadable); fn's error leaves it unchanged.
func updateJSON[T any](ctx context.Context, s *Server, key string, ttl time.Duration, fn func(*T) error) error {
	return s.store.Update(ctx, key, ttl, func(old []byte) ([]byte, error) {
		var v T
		if old != nil {
			if err := json.Unmarshal(old, &v); err != nil {
				var zero T
				v = zero
			}
		}
		if err := fn(&v); err != nil {
			return nil, err
		}
		return json.Marshal(v)
	})
}

// oidcStorage adapts a store.Store to oidc.Storage: absent keys are (nil, nil).
type oidcStorage struct{ s store.Store }

func (a oidcStorage) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	return a.s.Put(ctx, key, value, ttl)
}

func (a oidcStorage) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := a.s.Get(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return v, err
}

func (a oidcStorage) Take(ctx context.Context, key string) ([]byte, error) {
	v, err := a.s.Take(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return v, err
}

func (a oidcStorage) Delete(ctx context.Context, key string) error {
	return a.s.Delete(ctx, key)
}

func (a oidcStorage) Update(ctx context.Context, key string, ttl time.Duration, fn func(old []byte) ([]byte, error)) error {
	return a.s.Update(ctx, key, ttl, fn)
}
