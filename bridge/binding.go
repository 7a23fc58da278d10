package bridge

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// The server's MAC key authenticates what the bridge hands to browsers and
// must recognise later without storing it per browser: browser-binding
// cookies, the logout confirmation and the phone's confirmation form. It is
// random, kept in the store (so every replica sharing a Redis store uses the
// same one), created by the first replica that needs it and cached.
const macKeyTTL = 10 * 365 * 24 * time.Hour

// macKey returns the server's MAC key, loading or creating it on first use.
// A store error is returned (and the next call tries again).
func (s *Server) macKey(ctx context.Context) ([]byte, error) {
	s.macMu.Lock()
	defer s.macMu.Unlock()
	if s.macKeyCache != nil {
		return s.macKeyCache, nil
	}
	fresh := make([]byte, 32)
	rand.Read(fresh)
	if _, err := s.store.PutNew(ctx, keyMACKey, fresh, macKeyTTL); err != nil {
		return nil, fmt.Errorf("create the cookie MAC key: %w", err)
	}
	key, err := s.store.Get(ctx, keyMACKey)
	if err != nil {
		return nil, fmt.Errorf("read the cookie MAC key: %w", err)
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("the cookie MAC key in the store is %d bytes, want 32: delete %s to let the bridge make a new one", len(key), keyMACKey)
	}
	s.macKeyCache = key
	return key, nil
}

// mac is HMAC-SHA256 under the server's key of a purpose and its parts,
// each length-prefixed so that no two different inputs collide.
func mac(key []byte, purpose string, parts ...string) []byte {
	m := hmac.New(sha256.New, key)
	var n [4]byte
	for _, p := range append([]string{purpose}, parts...) {
		binary.BigEndian.PutUint32(n[:], uint32(len(p)))
		m.Write(n[:])
		m.Write([]byte(p))
	}
	return m.Sum(nil)
}

// macToken is mac as a URL-safe string (form fields).
func macToken(key []byte, purpose string, parts ...string) string {
	return base64.RawURLEncoding.EncodeToString(mac(key, purpose, parts...))
}

// equalToken compares two tokens in constant time.
func equalToken(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// A browser-binding cookie is base64url(random 16 bytes ‖ issued-at 8 bytes
// ‖ HMAC 16 bytes). Only values this server issued, within their lifetime,
// bind a login to a browser. A value an attacker made up (or planted in a
// victim's browser from a sibling subdomain, where __Host- cannot be used)
// is not a binding: a login CSRF by a planted binding needs a genuine,
// recent value, and expires with it.
const (
	bindingRandomLen = 16
	bindingMACLen    = 16
	bindingLen       = bindingRandomLen + 8 + bindingMACLen
)

// bindingLifetime is how long a binding cookie binds: a pending login's
// lifetime plus an hour (the cookie's Max-Age says the same to the browser,
// but only the server's check counts).
func (s *Server) bindingLifetime() time.Duration { return s.opt.Login.PendingTTL + time.Hour }

func (s *Server) newBinding(key []byte) string {
	b := make([]byte, bindingLen)
	rand.Read(b[:bindingRandomLen])
	binary.BigEndian.PutUint64(b[bindingRandomLen:], uint64(s.now().Unix()))
	copy(b[bindingRandomLen+8:], mac(key, "browser-binding", string(b[:bindingRandomLen+8])))
	return base64.RawURLEncoding.EncodeToString(b)
}

// validBinding reports whether v is a binding cookie this server issued
// that is still within its lifetime.
func (s *Server) validBinding(key []byte, v string) bool {
	b, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil || len(b) != bindingLen {
		return false
	}
	want := mac(key, "browser-binding", string(b[:bindingRandomLen+8]))[:bindingMACLen]
	if subtle.ConstantTimeCompare(want, b[bindingRandomLen+8:]) != 1 {
		return false
	}
	issued := time.Unix(int64(binary.BigEndian.Uint64(b[bindingRandomLen:])), 0)
	now := s.now()
	return !issued.After(now.Add(time.Minute)) && now.Sub(issued) < s.bindingLifetime()
}

// browserBinding returns the hash of this browser's binding cookie, setting
// a fresh one when there is none or it is not one of ours (then the forged
// value is replaced in this browser too).
func (s *Server) browserBinding(c echo.Context) (string, error) {
	h, err := s.browserHash(c)
	if h != "" || err != nil {
		return h, err
	}
	key, err := s.macKey(c.Request().Context())
	if err != nil {
		return "", err
	}
	v := s.newBinding(key)
	c.SetCookie(s.cookie(browserCookie, v, int(s.bindingLifetime().Seconds())))
	return hashValue(v), nil
}

// browserHash is the hash of this browser's binding cookie if it is one this
// server issued and still binds, else "". An error means the key could not
// be read (the store is down).
func (s *Server) browserHash(c echo.Context) (string, error) {
	ck, err := c.Cookie(s.cookieName(browserCookie))
	if err != nil || ck.Value == "" {
		return "", nil
	}
	key, err := s.macKey(c.Request().Context())
	if err != nil {
		return "", err
	}
	if !s.validBinding(key, ck.Value) {
		s.log.InfoContext(c.Request().Context(), "browser binding cookie not issued by this server (or expired): ignored")
		return "", nil
	}
	return hashValue(ck.Value), nil
}

// cookieName is the name a cookie has on this issuer: with the __Host-
// prefix when the issuer is https at the host root, so that the browser
// refuses it from a sibling subdomain, from http, or with a Domain or
// another Path (RFC 6265bis §4.1.3.2: cookie tossing cannot plant it).
func (s *Server) cookieName(base string) string {
	if s.secure && s.prefix == "" {
		return "__Host-" + base
	}
	return base
}

// cookie builds one of the bridge's cookies: HttpOnly, SameSite=Lax (an
// upstream's redirect back is a top-level GET, which Lax allows), Secure on
// https, scoped to the issuer's path (Path=/ with __Host-). maxAge 0 is a
// browser-session cookie; -1 deletes it.
func (s *Server) cookie(base, value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     s.cookieName(base),
		Value:    value,
		Path:     s.prefix + "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   s.secure,
		SameSite: http.SameSiteLaxMode,
	}
}
