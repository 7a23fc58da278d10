package bridge

import (
	"math"
	"net/http"
	"strconv"
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

// exhausted reports whether key's bucket has no token left, without taking
// one, and how long until one is back. A key without a bucket is not.
func (l *rateLimiter) exhausted(key string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		return false, 0
	}
	if t := b.TokensAt(now); t < 1 {
		return true, time.Duration((1 - t) / float64(l.limit) * float64(time.Second))
	}
	return false, 0
}

// The token, revocation and introspection endpoints are limited on two
// counts, neither of which a stranger can use up for a real client
// (RFC 6819 §5.1.4.2.3 throttles secret guessing; issue: an unauthenticated
// sender claiming client_id=rp once made rp's real code redemptions fail):
//   - failed client authentications per (claimed client, client network),
//     counted by the provider's OnClientAuthFailure hook: a guesser is
//     stopped after limits.token_auth_failures, from its own network only;
//   - requests of an authenticated client (limits.token_per_client),
//     counted by OnClientAuthSuccess: a confidential client per client id
//     (only its secret spends it), a public client per client id and
//     network (anyone can claim to be a public client).
//
// The claimed client is read by oidc.ClaimedClientID, exactly as the
// endpoints read it (Basic header, else client_id in the form body; never
// the URL query), so the limit and the handler cannot disagree.
//
// The buckets are per process (golang.org/x/time/rate): with several
// replicas each enforces its own share, so a guesser gets at most
// replicas × the limit. That is acceptable because client secrets are
// long and random (config refuses shorter than 16 characters): the
// failure limit keeps logs and CPU sane rather than making guessing
// feasible or not.
func (s *Server) limitToken(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id, _ := oidc.ClaimedClientID(c.Request())
		network := clientNetwork(c.RealIP())
		if over, wait := s.tokenFailures.exhausted(s.failureKey(id, network)); over {
			return s.tokenTooMany(c, wait, id, "token_auth_failures", "too many failed client authentications from your network for this client; retry after the time in Retry-After")
		}
		if over, wait := s.tokenLimit.exhausted(s.budgetKey(id, network)); over {
			return s.tokenTooMany(c, wait, id, "token_per_client", "too many token requests for this client; retry after the time in Retry-After")
		}
		return next(c)
	}
}

func (s *Server) tokenTooMany(c echo.Context, wait time.Duration, clientID, limit, msg string) error {
	c.Response().Header().Set("Retry-After", retryAfter(max(wait, time.Second)))
	c.Response().Header().Set("Cache-Control", "no-store")
	if s.clients[clientID] == nil {
		clientID = "(unknown)" // never log what a stranger typed
	}
	s.log.WarnContext(c.Request().Context(), "token endpoint rate limit", "client_id", clientID)
	s.metrics.RateLimited(limit)
	return c.JSON(http.StatusTooManyRequests, oidc.ErrorResponse{Error: oidc.CodeTemporarilyUnavailable, ErrorDescription: msg})
}

// failureKey: a registered client's id with the network; every unknown id
// from one network shares one key, so made-up ids do not grow the buckets.
func (s *Server) failureKey(clientID, network string) string {
	if s.clients[clientID] == nil {
		clientID = ""
	}
	return clientID + "|" + network
}

// budgetKey: a confidential client's id; a public client's id with the network.
func (s *Server) budgetKey(clientID, network string) string {
	cc := s.clients[clientID]
	if cc == nil || cc.AuthMethod == "none" {
		return clientID + "|" + network
	}
	return clientID
}

// clientAuthFailed is oidc's OnClientAuthFailure: one failure for the
// claimed client from the request's network.
func (s *Server) clientAuthFailed(clientID string, r *http.Request) {
	s.tokenFailures.allow(s.failureKey(clientID, clientNetwork(s.echo.IPExtractor(r))))
}

// clientAuthSucceeded is oidc's OnClientAuthSuccess: one request of the
// authenticated client's budget.
func (s *Server) clientAuthSucceeded(clientID string, r *http.Request) {
	s.tokenLimit.allow(s.budgetKey(clientID, clientNetwork(s.echo.IPExtractor(r))))
}

// limitAuthorize limits authorization requests per client network.
func (s *Server) limitAuthorize(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ok, wait := s.authLimit.Allow(c.Request().Context(), "ip:"+clientNetwork(c.RealIP()))
		if !ok {
			c.Response().Header().Set("Retry-After", retryAfter(wait))
			s.log.WarnContext(c.Request().Context(), "authorize rate limit", "remote", c.RealIP())
			s.metrics.RateLimited("authorize_per_ip")
			return s.renderPage(c, http.StatusTooManyRequests, pageTooManyRequests)
		}
		return next(c)
	}
}

// limitLogout limits the logout endpoint per client network: it verifies
// signatures and renders pages for anyone who asks.
func (s *Server) limitLogout(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ok, wait := s.logoutLimit.Allow(c.Request().Context(), "ip:"+clientNetwork(c.RealIP()))
		if !ok {
			c.Response().Header().Set("Retry-After", retryAfter(wait))
			s.log.WarnContext(c.Request().Context(), "logout rate limit", "remote", c.RealIP())
			return s.renderPage(c, http.StatusTooManyRequests, pageTooManyRequests)
		}
		return next(c)
	}
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
