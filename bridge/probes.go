package bridge

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wechat-oidc/wechat-oidc/store"
)

// Probe paths, under the issuer's path like every route.
const (
	// PathHealthz answers 200 while the process serves HTTP at all: a
	// liveness probe. It does not look at the store: restarting a replica
	// because Redis is down would not bring Redis back.
	PathHealthz = "/healthz"
	// PathReadyz answers 200 when this replica can serve sign-ins (see
	// handleReadyz), 503 otherwise: a readiness probe, for a load balancer.
	PathReadyz = "/readyz"
)

// readyTimeout bounds each readiness check.
const readyTimeout = 2 * time.Second

// readiness is what /readyz checks besides the store and the keys.
type readiness struct {
	mu       sync.Mutex
	checks   []namedCheck
	draining bool
}

type namedCheck struct {
	name  string
	check func(context.Context) error
}

// AddReadyCheck adds a check to /readyz (a directory database, later): the
// replica is ready only while check returns nil. name appears in the
// answer. Call it before serving.
func (s *Server) AddReadyCheck(name string, check func(context.Context) error) {
	s.ready.mu.Lock()
	defer s.ready.mu.Unlock()
	s.ready.checks = append(s.ready.checks, namedCheck{name, check})
}

// Drain makes /readyz fail from now on, so that load balancers stop
// sending requests; requests still arriving are served. The first step of
// a graceful shutdown.
func (s *Server) Drain() {
	s.ready.mu.Lock()
	defer s.ready.mu.Unlock()
	s.ready.draining = true
}

func (s *Server) handleHealthz(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// handleReadyz: ready when not draining, the store answers a ping, a
// signing key is loaded for every algorithm, and every added check passes.
// The answer names what failed (never an error's detail, which is logged).
func (s *Server) handleReadyz(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	s.ready.mu.Lock()
	draining, checks := s.ready.draining, append([]namedCheck(nil), s.ready.checks...)
	s.ready.mu.Unlock()
	if draining {
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "draining"})
	}
	all := append([]namedCheck{{"store", s.store.Ping}, {"keys", s.keysLoaded}}, checks...)
	for _, ch := range all {
		ctx, cancel := context.WithTimeout(c.Request().Context(), readyTimeout)
		err := ch.check(ctx)
		cancel()
		if err != nil {
			s.log.WarnContext(c.Request().Context(), "not ready", "check", ch.name, "error", err)
			return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": ch.name + " unavailable"})
		}
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

// keysLoaded: a key signs for every configured algorithm.
func (s *Server) keysLoaded(context.Context) error {
	for _, alg := range s.keys.Algorithms() {
		if _, err := s.keys.SignWithAlgorithm([]byte("{}"), alg, "JWT"); err != nil {
			return err
		}
	}
	return nil
}

// entryCounter is a store that can count its live entries (the memory
// store), for gauges.
type entryCounter interface {
	CountPrefix(prefix string) int
}

// unwrapStore finds the store under wrappers (metrics).
func unwrapStore(st store.Store) store.Store {
	for {
		u, ok := st.(interface{ Unwrap() store.Store })
		if !ok {
			return st
		}
		st = u.Unwrap()
	}
}

// registerGauges adds the bridge's gauges: pending logins, when the store
// can count them (the memory store; with Redis, counting would mean
// scanning the keyspace at every scrape).
func (s *Server) registerGauges() {
	if s.metrics == nil {
		return
	}
	if c, ok := unwrapStore(s.store).(entryCounter); ok {
		s.metrics.GaugeFunc("pending_logins", "Sign-ins started and waiting for the upstream's callback (memory store only).",
			func() float64 { return float64(c.CountPrefix(keyPending)) })
	}
}
