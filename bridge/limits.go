package bridge

import (
	"bytes"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"

	"github.com/wechat-oidc/wechat-oidc/oidc"
)

// rateLimiter is a set of token buckets (golang.org/x/time/rate) by key
// (client id, IP), on the server's clock, for one process: the Limiter of
// a single instance (memory store), and the fallback of a shared one (see
// ratelimit.go).
type rateLimiter struct {
	limit rate.Limit
	burst int
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*rate.Limiter
	swept   time.Time
}

const maxBuckets = 100_000

func newRateLimiter(perSecond float64, burst int, now func() time.Time) *rateLimiter {
	return &rateLimiter{limit: rate.Limit(perSecond), burst: burst, now: now, buckets: map[string]*rate.Limiter{}}
}

// allow takes a token for key; when none is left it reports how long until one is.
func (l *rateLimiter) allow(key string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > time.Minute || len(l.buckets) > maxBuckets {
		// Forget full buckets: they behave exactly like new ones.
		for k, b := range l.buckets {
			if b.TokensAt(now) >= float64(l.burst) {
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			return false, time.Second // under a flood of distinct keys, refuse rather than grow
		}
		b = rate.NewLimiter(l.limit, l.burst)
		l.buckets[key] = b
	}
	if b.AllowN(now, 1) {
		return true, 0
	}
	// How long until one token is back (1 - tokens now, at limit per second).
	return false, time.Duration((1 - b.TokensAt(now)) / float64(l.limit) * float64(time.Second))
}

func retryAfter(d time.Duration) string {
	return strconv.Itoa(int(math.Ceil(d.Seconds())))
}

// limitToken limits token requests per client_id (RFC 6819 §5.1.4.2.3:
// throttle attempts to guess client secrets). The id is taken as claimed,
// before authentication, since guessing is exactly what is limited.
func (s *Server) limitToken(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		key := "anonymous"
		if id, _, ok := oidc.ParseBasicAuth(c.Request().Header.Get("Authorization")); ok {
			key = id
		} else if id := c.Request().URL.Query().Get("client_id"); id != "" {
			key = id
		} else if strings.HasPrefix(c.Request().Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
			// Peek at client_id in the body without consuming it for the handler.
			if id := peekFormValue(c, "client_id"); id != "" {
				key = id
			}
		}
		if len(key) > 256 {
			key = key[:256]
		}
		ok, wait := s.tokenLimit.Allow(c.Request().Context(), "client:"+key)
		if !ok {
			c.Response().Header().Set("Retry-After", retryAfter(wait))
			c.Response().Header().Set("Cache-Control", "no-store")
			s.log.WarnContext(c.Request().Context(), "token endpoint rate limit", "client_id", key)
			s.metrics.RateLimited("token_per_client")
			return c.JSON(http.StatusTooManyRequests, oidc.ErrorResponse{Error: oidc.CodeTemporarilyUnavailable, ErrorDescription: "too many token requests for this client; retry after the time in Retry-After"})
		}
		return next(c)
	}
}

// limitAuthorize limits authorization requests per client IP.
func (s *Server) limitAuthorize(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ok, wait := s.authLimit.Allow(c.Request().Context(), "ip:"+c.RealIP())
		if !ok {
			c.Response().Header().Set("Retry-After", retryAfter(wait))
			s.log.WarnContext(c.Request().Context(), "authorize rate limit", "remote", c.RealIP())
			s.metrics.RateLimited("authorize_per_ip")
			return s.renderPage(c, http.StatusTooManyRequests, pageTooManyRequests)
		}
		return next(c)
	}
}

// peekFormValue reads one value from a form body and puts the body back for
// the handler. At most oidc.MaxParamsBytes+1 bytes are read here; the handler
// enforces the limit.
func peekFormValue(c echo.Context, name string) string {
	r := c.Request()
	buf, err := io.ReadAll(io.LimitReader(r.Body, oidc.MaxParamsBytes+1))
	r.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(buf), r.Body), r.Body}
	if err != nil {
		return ""
	}
	v, err := url.ParseQuery(string(buf))
	if err != nil {
		return ""
	}
	return v.Get(name)
}

// cors answers cross-origin requests only for origins configured on a
// client (allowed_origins), and only on the endpoints a browser RP calls.
// No credentials are allowed: these endpoints take tokens, not cookies.
func (s *Server) cors(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Add("Vary", "Origin")
		if o := c.Request().Header.Get("Origin"); o != "" && s.corsOrigins[o] {
			h.Set("Access-Control-Allow-Origin", o)
			h.Set("Access-Control-Expose-Headers", "WWW-Authenticate, Retry-After")
		}
		return next(c)
	}
}

// preflight answers CORS preflight requests for allowed origins; others get
// 204 without any Access-Control-Allow-* header, which the browser treats as
// a refusal.
func (s *Server) preflight(c echo.Context) error {
	h := c.Response().Header()
	h.Add("Vary", "Origin")
	if o := c.Request().Header.Get("Origin"); o != "" && s.corsOrigins[o] {
		h.Set("Access-Control-Allow-Origin", o)
		h.Set("Access-Control-Allow-Methods", "GET, POST")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
		h.Set("Access-Control-Max-Age", "600")
	}
	return c.NoContent(http.StatusNoContent)
}
