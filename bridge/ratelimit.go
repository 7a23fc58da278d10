package bridge

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/wechat-oidc/wechat-oidc/store"
)

// Limiter decides whether one more request under key may go ahead now; when
// not, it says how long until one may (Retry-After). Every limit of the
// bridge is a Limiter made by newLimiter, so that it is shared across
// replicas whenever the store can share it.
type Limiter interface {
	Allow(ctx context.Context, key string) (ok bool, retryAfter time.Duration)
}

// sharedRates is a store that keeps rate-limit buckets for every replica
// (store.Redis: GCRA on the server's clock).
type sharedRates interface {
	AllowRate(ctx context.Context, key string, rate float64, burst int) (bool, time.Duration, error)
}

// newLimiter returns a limit of perSecond requests per second on average
// with bursts of burst per key, named name (logs, metrics). With a store
// that shares buckets (Redis) the limit holds across all replicas
// together; otherwise (the memory store: one instance) per process.
func (s *Server) newLimiter(name string, perSecond float64, burst int) Limiter {
	local := newRateLimiter(perSecond, burst, s.now)
	if shared, ok := unwrapStore(s.store).(sharedRates); ok {
		return &sharedLimiter{name: name, rate: perSecond, burst: burst, shared: shared, local: local, log: s.log}
	}
	return local
}

// Allow implements Limiter for the per-process token buckets.
func (l *rateLimiter) Allow(_ context.Context, key string) (bool, time.Duration) { return l.allow(key) }

// sharedLimiter keeps its buckets in the shared store. When the store
// fails, it falls back to this process's own buckets rather than refusing
// everyone or letting everything through: a Redis outage neither locks
// every client out nor removes the limit (each replica then enforces the
// whole limit on its own, as without Redis).
type sharedLimiter struct {
	name        string
	rate        float64
	burst       int
	shared      sharedRates
	local       *rateLimiter
	log         *slog.Logger
	lastWarning atomic.Int64 // unix seconds of the last fallback warning
}

func (l *sharedLimiter) Allow(ctx context.Context, key string) (bool, time.Duration) {
	ok, wait, err := l.shared.AllowRate(ctx, l.name+":"+key, l.rate, l.burst)
	if err == nil {
		return ok, wait
	}
	// One warning a minute at most: during an outage every request fails here.
	if now := time.Now().Unix(); l.lastWarning.Load() < now-60 {
		l.lastWarning.Store(now)
		l.log.WarnContext(ctx, "rate limit: shared store unavailable, limiting per replica meanwhile", "limit", l.name, "error", err)
	}
	return l.local.allow(key)
}

var _ sharedRates = (*store.Redis)(nil)
