package admin

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wechat-oidc/wechat-oidc/directory"
	"github.com/wechat-oidc/wechat-oidc/oidc"
	"github.com/wechat-oidc/wechat-oidc/store"
)

// signinTTL is how long a started sign-in may take (the WeChat round trip,
// perhaps a QR code scanned on a phone).
const signinTTL = 10 * time.Minute

// clockSkew is the tolerance for iat and auth_time in the future.
const clockSkew = time.Minute

// signin is a sign-in the console started, stored under the hash of its
// state until the callback takes it.
type signin struct {
	Verifier string `json:"verifier"` // PKCE code_verifier (RFC 7636 §4.1)
	Nonce    string `json:"nonce"`
	Next     string `json:"next"`   // where to go afterwards: a path of the console
	Reauth   bool   `json:"reauth"` // asked with max_age: auth_time is checked
}

// handleSignIn starts a sign-in at the bridge's authorization endpoint:
// code flow, PKCE S256, state and nonce (OpenID Connect Core 1.0 §3.1.2.1).
// The state is also put in a cookie: the callback must come back to the
// browser that started it (RFC 6749 §10.12, login CSRF).
// ?reauth=1 asks for a sign-in at most MaxAuthAge old (max_age);
// ?switch=1 asks the bridge to authenticate afresh (prompt=login), to
// sign in as someone else.
func (c *Console) handleSignIn(ec echo.Context) error {
	r := ec.Request()
	q := r.URL.Query()
	s := signin{
		Verifier: oidc.NewToken(), Nonce: oidc.NewToken(),
		Next: c.safeNext(q.Get("next")), Reauth: q.Get("reauth") == "1",
	}
	state := oidc.NewToken()
	raw, err := json.Marshal(s)
	if err == nil {
		err = c.store.Put(r.Context(), keySignin+oidc.HashToken(state), raw, signinTTL)
	}
	if err != nil {
		return c.unavailable(ec, fmt.Errorf("storing a sign-in: %w", err))
	}
	ec.SetCookie(c.cookie(signinCookie, state, int(signinTTL/time.Second)))
	sum := sha256.Sum256([]byte(s.Verifier))
	p := url.Values{
		"response_type":         {"code"},
		"client_id":             {ClientID},
		"redirect_uri":          {redirectURI(c.issuer)},
		"scope":                 {"openid profile"},
		"state":                 {state},
		"nonce":                 {s.Nonce},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(sum[:])},
		"code_challenge_method": {oidc.PKCES256},
		"ui_locales":            {langTag(c.lang(ec))},
	}
	if s.Reauth {
		p.Set("max_age", strconv.Itoa(int(MaxAuthAge/time.Second)))
	}
	if q.Get("switch") == "1" {
		p.Set("prompt", oidc.PromptLogin)
	}
	return ec.Redirect(http.StatusFound, c.provider.URL(oidc.PathAuthorize)+"?"+p.Encode())
}

// safeNext keeps next only if it is a path of the console: never another
// site (an open redirector), never another part of the server.
func (c *Console) safeNext(next string) string {
	def := c.url("/pending")
	u, err := url.Parse(next)
	if next == "" || err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Fragment != "" ||
		strings.ContainsAny(next, "\\\r\n\t") || strings.HasPrefix(next, "//") {
		return def
	}
	if u.Path != c.base && !strings.HasPrefix(u.Path, c.base+"/") || strings.Contains(u.Path, "/../") || strings.HasSuffix(u.Path, "/..") {
		return def
	}
	return u.RequestURI()
}

// handleCallback finishes a sign-in: the state must be one this browser
// started; the code is redeemed in-process; the ID token verified; the
// person looked up. Every person who signs in gets a console session; the
// guard decides what it may see.
func (c *Console) handleCallback(ec echo.Context) error {
	r := ec.Request()
	ctx := r.Context()
	q := r.URL.Query()
	s, err := c.takeSignin(ec, q.Get("state"))
	if err != nil {
		if errors.Is(err, errNoSignin) {
			return c.renderMessage(ec, http.StatusBadRequest, "signin-expired", "signin.expired.title", "signin.expired.body", nil)
		}
		return c.unavailable(ec, err)
	}
	if iss := q.Get("iss"); iss != "" && iss != c.issuer {
		// RFC 9207 §2.4: an authorization response from another issuer
		// (a mix-up) is refused.
		c.log.WarnContext(ctx, "admin sign-in: authorization response from another issuer", "iss", printable(iss))
		return c.renderMessage(ec, http.StatusBadGateway, "signin-failed", "signin.failed.title", "signin.failed.body", nil)
	}
	if e := q.Get("error"); e != "" {
		c.log.InfoContext(ctx, "admin sign-in refused by the provider", "error", printable(e))
		if e == "access_denied" {
			return c.renderMessage(ec, http.StatusForbidden, "signin-denied", "signin.denied.title", "signin.denied.body", nil)
		}
		return c.renderMessage(ec, http.StatusBadGateway, "signin-failed", "signin.failed.title", "signin.failed.body", nil)
	}
	idt, err := c.redeem(r, q.Get("code"), s.Verifier)
	if err == nil {
		var cl *idClaims
		if cl, err = c.verifyIDToken(idt, s.Nonce, s.Reauth); err == nil {
			return c.signedIn(ec, cl, s)
		}
	}
	ref := directory.NewRef()
	c.log.WarnContext(ctx, "admin sign-in failed", "ref", ref, "error", err)
	return c.renderMessage(ec, http.StatusBadGateway, "signin-failed", "signin.failed.title", "signin.failed.body", &viewRef{ref})
}

var errNoSignin = errors.New("no such sign-in")

// takeSignin takes (single use) the sign-in the state names, if this
// browser's cookie carries the same state.
func (c *Console) takeSignin(ec echo.Context, state string) (*signin, error) {
	ck, err := ec.Cookie(signinCookie)
	if state == "" || err != nil || subtle.ConstantTimeCompare([]byte(ck.Value), []byte(state)) != 1 {
		return nil, errNoSignin
	}
	ec.SetCookie(c.cookie(signinCookie, "", -1))
	raw, err := c.store.Take(ec.Request().Context(), keySignin+oidc.HashToken(state))
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNoSignin
	}
	if err != nil {
		return nil, fmt.Errorf("reading a sign-in: %w", err)
	}
	var s signin
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, errNoSignin
	}
	return &s, nil
}

// redeem exchanges the code at the provider's token endpoint handler, in
// process: the request is the one a relying party would send (RFC 6749
// §4.1.3, RFC 7636 §4.5; a public client authenticates with its client_id
// only). It returns the ID token.
func (c *Console) redeem(r *http.Request, code, verifier string) (string, error) {
	if code == "" {
		return "", errors.New("the callback has no code")
	}
	form := url.Values{
		"grant_type":    {oidc.GrantAuthorizationCode},
		"code":          {code},
		"redirect_uri":  {redirectURI(c.issuer)},
		"client_id":     {ClientID},
		"code_verifier": {verifier},
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, c.provider.URL(oidc.PathToken), strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("building the token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = r.RemoteAddr // the provider's hooks see the browser's address
	rec := httptest.NewRecorder()
	c.provider.HandleToken(rec, req)
	if rec.Code != http.StatusOK {
		var er oidc.ErrorResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &er); err != nil || er.Error == "" {
			return "", fmt.Errorf("token endpoint answered %d", rec.Code)
		}
		return "", fmt.Errorf("token endpoint refused the code: %s: %s", er.Error, er.ErrorDescription)
	}
	var tr oidc.TokenResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &tr); err != nil {
		return "", fmt.Errorf("token response: %w", err)
	}
	if tr.IDToken == "" {
		return "", errors.New("token response has no id_token")
	}
	return tr.IDToken, nil
}

// idClaims are the ID token claims the console reads.
type idClaims struct {
	Iss      string          `json:"iss"`
	Sub      string          `json:"sub"`
	Aud      audience        `json:"aud"`
	Azp      string          `json:"azp"`
	Exp      int64           `json:"exp"`
	Iat      int64           `json:"iat"`
	AuthTime *int64          `json:"auth_time"`
	Nonce    string          `json:"nonce"`
	Sid      string          `json:"sid"`
	Events   json.RawMessage `json:"events"`
}

// audience is aud: a string or an array of strings (OpenID Connect Core
// 1.0 §2).
type audience []string

func (a *audience) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*a = audience{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return errors.New("aud is neither a string nor an array of strings")
	}
	*a = many
	return nil
}

func (a audience) has(s string) bool {
	for _, v := range a {
		if v == s {
			return true
		}
	}
	return false
}

// verifyIDToken validates the ID token as OpenID Connect Core 1.0 §3.1.3.7
// asks: signature with the provider's keys (step 6), iss (2), aud (3), azp
// (4, 5), exp (9), iat not in the future (10), nonce (11), and, when a
// recent sign-in was asked with max_age, auth_time (13). A token carrying
// the events claim is a logout token, never an ID token.
func (c *Console) verifyIDToken(raw, nonce string, reauth bool) (*idClaims, error) {
	payload, err := c.keys.Verify(raw)
	if err != nil {
		return nil, fmt.Errorf("ID token signature: %w", err)
	}
	var cl idClaims
	if err := json.Unmarshal(payload, &cl); err != nil {
		return nil, fmt.Errorf("ID token claims: %w", err)
	}
	now := c.now()
	switch {
	case cl.Iss != c.issuer:
		return nil, fmt.Errorf("ID token issuer %q is not %q", printable(cl.Iss), c.issuer)
	case !cl.Aud.has(ClientID):
		return nil, errors.New("ID token is not for the console (aud)")
	case len(cl.Aud) > 1 && cl.Azp != ClientID, cl.Azp != "" && cl.Azp != ClientID:
		return nil, errors.New("ID token was issued to another party (azp)")
	case cl.Sub == "":
		return nil, errors.New("ID token has no sub")
	case !now.Before(time.Unix(cl.Exp, 0)):
		return nil, errors.New("ID token expired")
	case time.Unix(cl.Iat, 0).After(now.Add(clockSkew)):
		return nil, errors.New("ID token issued in the future (iat)")
	case nonce == "" || subtle.ConstantTimeCompare([]byte(cl.Nonce), []byte(nonce)) != 1:
		return nil, errors.New("ID token nonce does not match the sign-in's")
	case len(cl.Events) > 0:
		return nil, errors.New("a logout token is not an ID token")
	case cl.AuthTime == nil:
		return nil, errors.New("ID token has no auth_time")
	}
	at := time.Unix(*cl.AuthTime, 0)
	if at.After(now.Add(clockSkew)) {
		return nil, errors.New("ID token auth_time is in the future")
	}
	if reauth && now.Sub(at) > MaxAuthAge {
		return nil, fmt.Errorf("asked for a sign-in within %s, the provider returned one from %s ago", MaxAuthAge, now.Sub(at).Round(time.Second))
	}
	return &cl, nil
}

// signedIn starts a console session for the person the ID token names and
// sends the browser on. The session replaces any earlier one of this
// browser (a new cookie: no session fixation).
func (c *Console) signedIn(ec echo.Context, cl *idClaims, s *signin) error {
	r := ec.Request()
	ctx := r.Context()
	personID, err := c.personForSub(ctx, cl.Sub)
	var p directory.Person
	if err == nil {
		p, err = c.dir.People().Get(ctx, personID)
	}
	if errors.Is(err, directory.ErrNotFound) {
		c.auditSignIn(ec, "", "denied", "the ID token's subject is no person in the directory")
		return c.forbidden(ec)
	}
	if err != nil {
		return c.unavailable(ec, fmt.Errorf("looking up the signed-in person: %w", err))
	}
	result, reason := "ok", ""
	if why := c.refusal(p); why != "" {
		result, reason = "denied", why
	}
	if s.Reauth {
		reason = strings.TrimSpace(reason + " re-authentication")
	}
	c.auditSignIn(ec, p.ID, result, reason)
	if old, err := ec.Cookie(sessionCookie); err == nil && old.Value != "" {
		if err := c.store.Delete(ctx, keySession+oidc.HashToken(old.Value)); err != nil {
			c.log.WarnContext(ctx, "admin: could not delete the replaced session", "error", err)
		}
	}
	if err := c.startSession(ec, p.ID, time.Unix(*cl.AuthTime, 0), cl.Sid); err != nil {
		return c.unavailable(ec, err)
	}
	return ec.Redirect(http.StatusSeeOther, s.Next)
}

// refusal says why a person may not use the console ("" when they may).
func (c *Console) refusal(p directory.Person) string {
	switch {
	case p.Status != directory.StatusActive:
		return "person is " + string(p.Status)
	case !hasGroup(p.Groups, c.adminGroup):
		return "not in the admin group " + c.adminGroup
	}
	return ""
}

func (c *Console) auditSignIn(ec echo.Context, personID, result, reason string) {
	c.audit(ec.Request().Context(), ec, directory.Event{
		Actor: personID, Action: directory.ActionAdminSignIn, PersonID: personID, ClientID: ClientID,
		Result: result, Reason: reason,
	})
}

// printable cuts a value from a request for a log line.
func printable(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// audit appends an event with the request's address and user agent. A
// failed append is logged, never shown as success silently: callers that
// must report it use appendAudit.
func (c *Console) audit(ctx context.Context, ec echo.Context, e directory.Event) {
	if err := c.appendAudit(ctx, ec, e); err != nil {
		c.log.ErrorContext(ctx, "admin: audit row not written", "action", e.Action, "person", e.PersonID, "error", err)
	}
}

func (c *Console) appendAudit(ctx context.Context, ec echo.Context, e directory.Event) error {
	e.IP = ec.RealIP()
	e.UserAgent = ec.Request().UserAgent()
	if e.Ref == "" {
		e.Ref = directory.NewRef()
	}
	return c.dir.Audit().Append(ctx, e)
}
