package wechat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// API paths on DefaultAPIBaseURL (§2, §4).
const (
	pathAccessToken  = "/sns/oauth2/access_token"
	pathRefreshToken = "/sns/oauth2/refresh_token"
	pathAuth         = "/sns/auth"
	pathUserInfo     = "/sns/userinfo"
	pathCode2Session = "/sns/jscode2session"
)

const (
	// DefaultTimeout bounds each call when NewClient is given none.
	DefaultTimeout = 5 * time.Second
	// maxBody is the most of a response body that is read.
	maxBody = 1 << 20
)

// Client calls WeChat's sns APIs. It is safe for concurrent use. It never
// retries: the caller decides, and an authorization code must never be
// exchanged twice.
type Client struct {
	apiBase string
	timeout time.Duration
	hc      *http.Client
	observe Observer
}

// Observer is told of every API call when it ends: the endpoint path, the
// result ("0" for success, WeChat's errcode, or "unavailable" when there
// was no usable answer) and how long it took. It must return quickly.
type Observer func(endpoint, errcode string, took time.Duration)

// SetObserver sets the observer of API calls (metrics). Call it before the
// client is used.
func (c *Client) SetObserver(o Observer) { c.observe = o }

// maxIdlePerHost is how many idle connections to WeChat's API are kept.
// Every call goes to one host (api.weixin.qq.com): with Go's default of 2,
// concurrent sign-ins would close their connections after each call and
// open (and TLS-handshake) new ones for the next.
const maxIdlePerHost = 64

// apiTransport is the connection pool of clients made without one: Go's
// default transport (proxy from the environment, timeouts, HTTP/2) with
// enough idle connections for concurrent sign-ins.
var apiTransport = func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = max(t.MaxIdleConns, maxIdlePerHost)
	t.MaxIdleConnsPerHost = maxIdlePerHost
	return t
}()

// NewClient returns a client for apiBaseURL ("" = DefaultAPIBaseURL). Each call
// is bounded by timeout (<= 0 = DefaultTimeout) even if the caller's context
// has no deadline. hc nil (or one without a Transport) means a pool that
// keeps enough connections to WeChat for concurrent calls. Redirects are never
// followed, whatever hc says: requests carry the app secret in the query, which
// must not be replayed to another host; a redirect is an ErrUnavailable.
func NewClient(apiBaseURL string, timeout time.Duration, hc *http.Client) *Client {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	var own http.Client
	if hc != nil {
		own = *hc // shallow copy: shares hc's Transport, overrides CheckRedirect only
	}
	if own.Transport == nil {
		own.Transport = apiTransport
	}
	own.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Client{apiBase: base(apiBaseURL, DefaultAPIBaseURL), timeout: timeout, hc: &own}
}

// APIBaseURL returns the base URL the client calls.
func (c *Client) APIBaseURL() string { return c.apiBase }

// Timeout returns the per-call timeout.
func (c *Client) Timeout() time.Duration { return c.timeout }

// ExchangeCode exchanges an authorization code from the authorize or
// qrconnect redirect for an access token (§2a):
// GET /sns/oauth2/access_token?appid&secret&code&grant_type=authorization_code.
// The code is single-use: never call this twice for one code.
func (c *Client) ExchangeCode(ctx context.Context, app App, code string) (*AccessToken, error) {
	var t AccessToken
	q := query{{"appid", app.ID, false}, {"secret", app.Secret, true}, {"code", code, true}, {"grant_type", "authorization_code", false}}
	if err := c.get(ctx, pathAccessToken, q, &t); err != nil {
		return nil, err
	}
	if t.AccessToken == "" || t.OpenID == "" {
		return nil, &UnavailableError{Endpoint: pathAccessToken, Reason: "response lacks access_token or openid"}
	}
	return &t, nil
}

// RefreshAccessToken renews an access token with a refresh token (valid 30
// days, §2b): GET /sns/oauth2/refresh_token?appid&grant_type=refresh_token&refresh_token.
// No secret is needed. The response carries no unionid.
func (c *Client) RefreshAccessToken(ctx context.Context, appID, refreshToken string) (*AccessToken, error) {
	var t AccessToken
	q := query{{"appid", appID, false}, {"grant_type", "refresh_token", false}, {"refresh_token", refreshToken, true}}
	if err := c.get(ctx, pathRefreshToken, q, &t); err != nil {
		return nil, err
	}
	if t.AccessToken == "" {
		return nil, &UnavailableError{Endpoint: pathRefreshToken, Reason: "response lacks access_token"}
	}
	return &t, nil
}

// CheckAccessToken reports whether accessToken is valid for openID (§2c):
// GET /sns/auth?access_token&openid. nil means valid; an invalid token gives a
// *Error matching ErrInvalidToken.
func (c *Client) CheckAccessToken(ctx context.Context, accessToken, openID string) error {
	q := query{{"access_token", accessToken, true}, {"openid", openID, false}}
	var ignored struct{}
	return c.get(ctx, pathAuth, q, &ignored)
}

// UserInfo fetches the profile of the user behind a snsapi_userinfo (or
// snsapi_login) token (§2d): GET /sns/userinfo?access_token&openid[&lang].
// lang is zh_CN, zh_TW, en or "" (omitted). A snsapi_base token gives 48001
// (ErrScopeUnauthorized).
func (c *Client) UserInfo(ctx context.Context, accessToken, openID, lang string) (*UserInfo, error) {
	q := query{{"access_token", accessToken, true}, {"openid", openID, false}}
	if lang != "" {
		q = append(q, param{"lang", lang, false})
	}
	var u UserInfo
	if err := c.get(ctx, pathUserInfo, q, &u); err != nil {
		return nil, err
	}
	if u.OpenID == "" {
		return nil, &UnavailableError{Endpoint: pathUserInfo, Reason: "response lacks openid"}
	}
	return &u, nil
}

// Code2Session exchanges a mini program's wx.login code (§4):
// GET /sns/jscode2session?appid&secret&js_code&grant_type=authorization_code.
func (c *Client) Code2Session(ctx context.Context, app App, jsCode string) (*Session, error) {
	q := query{{"appid", app.ID, false}, {"secret", app.Secret, true}, {"js_code", jsCode, true}, {"grant_type", "authorization_code", false}}
	var s Session
	if err := c.get(ctx, pathCode2Session, q, &s); err != nil {
		return nil, err
	}
	if s.OpenID == "" {
		return nil, &UnavailableError{Endpoint: pathCode2Session, Reason: "response lacks openid"}
	}
	return &s, nil
}

type param struct {
	key, value string
	secret     bool // must never appear in an error
}

type query []param

func (q query) encode() string {
	var b strings.Builder
	for i, p := range q {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(p.key))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(p.value))
	}
	return b.String()
}

// minRedactLen: shorter sensitive values are not searched for in messages
// (replacing "a" everywhere would garble them; real secrets are long).
const minRedactLen = 4

// redact removes every sensitive value of q (raw and query-escaped) from s.
func (q query) redact(s string) string {
	for _, p := range q {
		if !p.secret || len(p.value) < minRedactLen {
			continue
		}
		s = strings.ReplaceAll(s, p.value, redacted)
		if esc := url.QueryEscape(p.value); esc != p.value {
			s = strings.ReplaceAll(s, esc, redacted)
		}
		if esc := url.PathEscape(p.value); esc != p.value {
			s = strings.ReplaceAll(s, esc, redacted)
		}
	}
	return s
}

// envelope is the error part every response may carry (§5).
type envelope struct {
	ErrCode int    `json:"errcode"`
	ErrMsg  string `json:"errmsg"`
}

// get performs one GET and decodes the JSON body into out, and tells the
// observer. Errors never contain the URL: only the endpoint path (see
// UnavailableError).
func (c *Client) get(ctx context.Context, path string, q query, out any) error {
	if c.observe == nil {
		return c.call(ctx, path, q, out)
	}
	start := time.Now()
	err := c.call(ctx, path, q, out)
	result := "0"
	var we *Error
	switch {
	case errors.As(err, &we):
		result = strconv.Itoa(we.Code)
	case err != nil:
		result = "unavailable"
	}
	c.observe(path, result, time.Since(start))
	return err
}

func (c *Client) call(ctx context.Context, path string, q query, out any) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.apiBase+path+"?"+q.encode(), nil)
	if err != nil {
		// The parse error would quote the URL; report only that the base is bad.
		return &UnavailableError{Endpoint: path, Reason: "cannot build request (check the API base URL)"}
	}
	req.Header.Set("Accept", "application/json, text/plain, */*")

	resp, err := c.hc.Do(req)
	if err != nil {
		return transportError(path, q, err, ctx)
	}
	defer resp.Body.Close()

	if resp.StatusCode != http.StatusOK {
		// Drain a little so the connection can be reused; the body (often
		// HTML) is not reported.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return &UnavailableError{Endpoint: path, StatusCode: resp.StatusCode, Reason: "HTTP status " + strconv.Itoa(resp.StatusCode)}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return transportError(path, q, err, ctx)
	}
	if len(body) > maxBody {
		return &UnavailableError{Endpoint: path, StatusCode: resp.StatusCode, Reason: "response body larger than 1 MiB"}
	}
	// Any Content-Type: WeChat sends text/plain (§5).
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return &UnavailableError{Endpoint: path, StatusCode: resp.StatusCode, Reason: "response is not JSON (" + describeJSONError(err) + ")"}
	}
	if env.ErrCode != 0 {
		return &Error{Endpoint: path, Code: env.ErrCode, Msg: q.redact(env.ErrMsg)}
	}
	if err := json.Unmarshal(body, out); err != nil {
		return &UnavailableError{Endpoint: path, StatusCode: resp.StatusCode, Reason: "unexpected response shape (" + describeJSONError(err) + ")"}
	}
	return nil
}

// describeJSONError describes a decoding error without quoting the body
// (which may hold tokens).
func describeJSONError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return "syntax error at offset " + strconv.FormatInt(se.Offset, 10)
	case errors.As(err, &te):
		return "field " + te.Field + " has type " + te.Value
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated"
	default:
		return "malformed"
	}
}

// transportError turns a failed Do or body read into an UnavailableError
// without the *url.Error, whose message is the full URL with its secrets.
func transportError(path string, q query, err error, ctx context.Context) *UnavailableError {
	cause := err
	var ue *url.Error
	if errors.As(err, &ue) {
		cause = ue.Err
	}
	e := &UnavailableError{Endpoint: path, Reason: q.redact(cause.Error())}
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(ctx.Err(), context.Canceled):
		e.ctxErr = context.Canceled
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded):
		e.ctxErr = context.DeadlineExceeded
	}
	var te interface{ Timeout() bool }
	if e.ctxErr == context.DeadlineExceeded || (errors.As(err, &te) && te.Timeout()) {
		e.timeout = true
	}
	return e
}

// UnavailableError is a transport failure: timeout, connection error, HTTP
// status other than 200, or a body that is not the expected JSON. It matches
// ErrUnavailable, and context.DeadlineExceeded or context.Canceled when those
// caused it. It deliberately does not wrap the underlying *url.Error (whose
// message contains the request URL with secrets); Reason is redacted.
type UnavailableError struct {
	Endpoint   string // API path, e.g. "/sns/userinfo"
	StatusCode int    // HTTP status when a response arrived, else 0
	Reason     string // what went wrong, without secrets
	timeout    bool
	ctxErr     error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("wechat: %s: unavailable: %s", e.Endpoint, e.Reason)
}

// Timeout reports whether the call ran out of time.
func (e *UnavailableError) Timeout() bool { return e.timeout }

// Unwrap lets errors.Is match ErrUnavailable and the context error, if any.
func (e *UnavailableError) Unwrap() []error {
	if e.ctxErr != nil {
		return []error{ErrUnavailable, e.ctxErr}
	}
	return []error{ErrUnavailable}
}
