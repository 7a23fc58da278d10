// Package metrics holds the provider's Prometheus metrics: a registry of
// its own (never the global one), typed recording methods for the rooms
// that count things (sign-ins, WeChat calls, tokens, rate limits), a
// store.Store wrapper that times every operation, and the HTTP handler
// that serves them on the metrics listener. A nil *Metrics records
// nothing, so callers need no checks. No label ever carries a token, a
// code, a client secret or a person's identifier.
package metrics

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wechat-oidc/wechat-oidc/store"
)

const namespace = "wechat_oidc"

// Metrics is the provider's set of metrics.
type Metrics struct {
	reg           *prometheus.Registry
	signIns       *prometheus.CounterVec
	wechatCalls   *prometheus.CounterVec
	wechatLatency *prometheus.HistogramVec
	tokens        *prometheus.CounterVec
	storeOps      *prometheus.HistogramVec
	storeErrors   *prometheus.CounterVec
	rateLimited   *prometheus.CounterVec
}

// New makes the metrics, with Go runtime and process metrics besides.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		signIns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "sign_ins_total",
			Help: "Finished sign-ins by flow (official_account, website_app, cross_device, mini_program, sso_session, ...) and result (ok, or the OAuth error code sent to the client).",
		}, []string{"flow", "result"}),
		wechatCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "wechat_calls_total",
			Help: "Calls to WeChat's API by endpoint (path) and errcode (0 = success; unavailable = no usable answer).",
		}, []string{"endpoint", "errcode"}),
		wechatLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "wechat_call_duration_seconds",
			Help:    "Duration of calls to WeChat's API by endpoint.",
			Buckets: []float64{.025, .05, .1, .2, .4, .8, 1.6, 3.2, 6.4},
		}, []string{"endpoint"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "token_requests_total",
			Help: "Token endpoint answers to authenticated clients by grant and result (ok = tokens issued, or the OAuth error code).",
		}, []string{"grant", "result"}),
		storeOps: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "store_operation_duration_seconds",
			Help:    "Duration of store operations (memory or Redis) by operation.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"op"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "store_errors_total",
			Help: "Store operations that failed (not counting absent keys) by operation.",
		}, []string{"op"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "rate_limited_total",
			Help: "Requests refused by a rate limit, by limit (token_per_client, authorize_per_ip).",
		}, []string{"limit"}),
	}
	m.reg.MustRegister(m.signIns, m.wechatCalls, m.wechatLatency, m.tokens, m.storeOps, m.storeErrors, m.rateLimited,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in Prometheus's text format (GET /metrics).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Gatherer is the registry, for tests and for embedding in another one.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// SignIn counts a finished sign-in: result is "ok" or the error code the
// client received.
func (m *Metrics) SignIn(flow, result string) {
	if m == nil {
		return
	}
	if flow == "" {
		flow = "unknown"
	}
	m.signIns.WithLabelValues(flow, result).Inc()
}

// TokenResponse counts a token endpoint answer: errorCode "" means tokens
// were issued.
func (m *Metrics) TokenResponse(grant, errorCode string) {
	if m == nil {
		return
	}
	if errorCode == "" {
		errorCode = "ok"
	}
	m.tokens.WithLabelValues(grant, errorCode).Inc()
}

// RateLimited counts a request a rate limit refused.
func (m *Metrics) RateLimited(limit string) {
	if m == nil {
		return
	}
	m.rateLimited.WithLabelValues(limit).Inc()
}

// WeChatCall records one call to WeChat's API.
func (m *Metrics) WeChatCall(endpoint, errcode string, d time.Duration) {
	if m == nil {
		return
	}
	m.wechatCalls.WithLabelValues(endpoint, errcode).Inc()
	m.wechatLatency.WithLabelValues(endpoint).Observe(d.Seconds())
}

// GaugeFunc registers a gauge whose value f computes at each scrape (f must
// be cheap and safe for concurrent use). name is without the namespace.
func (m *Metrics) GaugeFunc(name, help string, f func() float64) {
	if m == nil {
		return
	}
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help}, f))
}

// Store wraps st so that every operation is timed and every failure
// counted. An absent key (store.ErrNotFound) is not a failure. The wrapper
// hands out the store it wraps with Unwrap.
func (m *Metrics) Store(st store.Store) store.Store {
	if m == nil {
		return st
	}
	return &timedStore{st: st, m: m}
}

type timedStore struct {
	st store.Store
	m  *Metrics
}

// Unwrap returns the wrapped store.
func (t *timedStore) Unwrap() store.Store { return t.st }

func (t *timedStore) observe(op string, start time.Time, err error) {
	t.m.storeOps.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.m.storeErrors.WithLabelValues(op).Inc()
	}
}

func (t *timedStore) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	start := time.Now()
	err := t.st.Put(ctx, key, value, ttl)
	t.observe("put", start, err)
	return err
}

func (t *timedStore) PutNew(ctx context.Context, key string, value []byte, ttl time.Duration) (ok bool, err error) {
	start := time.Now()
	ok, err = t.st.PutNew(ctx, key, value, ttl)
	t.observe("put_new", start, err)
	return ok, err
}

func (t *timedStore) Get(ctx context.Context, key string) ([]byte, error) {
	start := time.Now()
	v, err := t.st.Get(ctx, key)
	t.observe("get", start, err)
	return v, err
}

func (t *timedStore) Take(ctx context.Context, key string) ([]byte, error) {
	start := time.Now()
	v, err := t.st.Take(ctx, key)
	t.observe("take", start, err)
	return v, err
}

func (t *timedStore) Delete(ctx context.Context, key string) error {
	start := time.Now()
	err := t.st.Delete(ctx, key)
	t.observe("delete", start, err)
	return err
}

// Update counts fn's own error as no store failure: it is the caller's
// decision (a session that ended, a conflict it detected), not the store's.
func (t *timedStore) Update(ctx context.Context, key string, ttl time.Duration, fn func(old []byte) ([]byte, error)) error {
	start := time.Now()
	var fnErr error
	err := t.st.Update(ctx, key, ttl, func(old []byte) ([]byte, error) {
		v, err := fn(old)
		fnErr = err
		return v, err
	})
	if err != nil && err == fnErr {
		t.observe("update", start, nil)
	} else {
		t.observe("update", start, err)
	}
	return err
}

func (t *timedStore) Ping(ctx context.Context) error {
	start := time.Now()
	err := t.st.Ping(ctx)
	t.observe("ping", start, err)
	return err
}

func (t *timedStore) Close() error { return t.st.Close() }
