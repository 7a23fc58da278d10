package admin

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wechat-oidc/wechat-oidc/directory"
)

// maxFormBytes bounds a console form's body.
const maxFormBytes = 64 << 10

// headers sets what every console response carries: a strict CSP (no
// script at all; the one stylesheet allowed by its hash; images only as
// data: URLs (QR codes) or over https (WeChat avatars); forms only to this
// origin; no framing), no caching, and a Referer for this origin only.
// (Not no-referrer, as the bridge's pages: under it browsers send
// "Origin: null" with a form POST, and the CSRF check wants the origin.)
func (c *Console) headers(next echo.HandlerFunc) echo.HandlerFunc {
	return func(ec echo.Context) error {
		h := ec.Response().Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("Cache-Control", "no-store")
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		return next(ec)
	}
}

// adminCtx is who is using the console, set by guard.
type adminCtx struct {
	Person     directory.Person
	SessionKey string
	Session    *session
}

const ctxAdmin = "admin.console.admin"

func adminOf(ec echo.Context) *adminCtx {
	a, _ := ec.Get(ctxAdmin).(*adminCtx)
	return a
}

// guard is the console's authorization, in front of every route of the
// group: no session → sign in (a GET) or 403 (any other method: a form
// cannot be replayed through a sign-in); a person who is not active or not
// in the admin group → 403, read from the directory on every request; a
// POST without this session's CSRF token, or from another origin → 403.
func (c *Console) guard(next echo.HandlerFunc) echo.HandlerFunc {
	return func(ec echo.Context) error {
		r := ec.Request()
		safe := r.Method == http.MethodGet || r.Method == http.MethodHead
		key, s, err := c.loadSession(ec, safe)
		if err != nil {
			return c.unavailable(ec, err)
		}
		if s == nil {
			if safe {
				return ec.Redirect(http.StatusFound, c.url(PathSignIn)+"?next="+url.QueryEscape(r.URL.RequestURI()))
			}
			return c.renderMessage(ec, http.StatusForbidden, "signed-out", "signedout.expired.title", "signedout.expired.body", nil)
		}
		p, err := c.dir.People().Get(r.Context(), s.PersonID)
		if errors.Is(err, directory.ErrNotFound) {
			return c.forbidden(ec)
		}
		if err != nil {
			return c.unavailable(ec, fmt.Errorf("reading the administrator: %w", err))
		}
		if why := c.refusal(p); why != "" {
			c.log.InfoContext(r.Context(), "admin console refused", "person", p.ID, "reason", why, "path", r.URL.Path)
			return c.forbidden(ec)
		}
		if !safe {
			if why := c.checkCSRF(ec, s); why != "" {
				c.log.WarnContext(r.Context(), "admin console: form refused", "person", p.ID, "reason", why, "path", r.URL.Path)
				return c.renderMessage(ec, http.StatusForbidden, "csrf", "csrf.title", "csrf.body", nil)
			}
		}
		ec.Set(ctxAdmin, &adminCtx{Person: p, SessionKey: key, Session: s})
		return next(ec)
	}
}

// checkCSRF says why a state-changing request is refused ("" if it is
// not): it must come from this origin when the browser says where it comes
// from, and carry the session's CSRF token in its form body (a synchronizer
// token: a cross-site page can neither read nor guess it).
func (c *Console) checkCSRF(ec echo.Context, s *session) string {
	r := ec.Request()
	if o := r.Header.Get("Origin"); o != "" && o != origin(c.issuer) {
		return "Origin " + printable(o) + " is not this server"
	}
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		return "not a form"
	}
	r.Body = http.MaxBytesReader(ec.Response(), r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		return "unreadable form"
	}
	tok := r.PostForm.Get("csrf")
	if tok == "" || subtle.ConstantTimeCompare([]byte(tok), []byte(s.CSRF)) != 1 {
		return "missing or wrong CSRF token"
	}
	return ""
}

// origin is the scheme://host[:port] of a URL (RFC 6454).
func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// recentAuth reports whether the administrator signed in at most MaxAuthAge
// ago. If not, it answers with a redirect to the re-authentication page,
// which comes back to back, and the caller returns that answer.
func (c *Console) recentAuth(ec echo.Context, back string) (bool, error) {
	a := adminOf(ec)
	if c.now().Sub(time.Unix(a.Session.AuthTime, 0)) <= MaxAuthAge {
		return true, nil
	}
	return false, ec.Redirect(http.StatusSeeOther, c.url("/reauth")+"?next="+url.QueryEscape(back))
}

// handleReauth explains why a fresh sign-in is needed and links to it. It
// is a page, not a redirect: after a form, a redirect chain to WeChat would
// be blocked by the form-action policy, and the person should know why
// they are asked to sign in again.
func (c *Console) handleReauth(ec echo.Context) error {
	next := c.safeNext(ec.QueryParam("next"))
	v := c.view(ec, "reauth", "reauth.title")
	v.Data = c.url(PathSignIn) + "?reauth=1&next=" + url.QueryEscape(next)
	return c.render(ec, http.StatusOK, "reauth", v)
}

func (c *Console) handleHome(ec echo.Context) error {
	return ec.Redirect(http.StatusFound, c.url("/pending"))
}

// handleSignOut ends the console session (not the provider's SSO session:
// the page links to the provider's sign-out for that).
func (c *Console) handleSignOut(ec echo.Context) error {
	a := adminOf(ec)
	if err := c.store.Delete(ec.Request().Context(), a.SessionKey); err != nil {
		return c.unavailable(ec, fmt.Errorf("ending the console session: %w", err))
	}
	ec.SetCookie(c.cookie(sessionCookie, "", -1))
	ec.Set(ctxAdmin, nil)
	return c.renderMessage(ec, http.StatusOK, "signed-out", "signedout.title", "signedout.body", nil)
}

func hasGroup(groups []string, g string) bool {
	for _, x := range groups {
		if x == g {
			return true
		}
	}
	return false
}
