package bridge

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	dto "github.com/prometheus/client_model/go"

	"github.com/wechat-oidc/wechat-oidc/config"
	"github.com/wechat-oidc/wechat-oidc/store/storetest"
)

// TestProbes: /healthz answers while the process serves; /readyz while the
// store answers and keys sign, fails for an added check that fails (the
// directory, later), and fails for good once the server drains.
func TestProbes(t *testing.T) {
	c := newCore(t, false)
	get := func(path string) int { return probe(t, c.ts.URL, path) }
	if get(PathHealthz) != 200 || get(PathReadyz) != 200 {
		t.Fatalf("healthz %d, readyz %d; want 200, 200", get(PathHealthz), get(PathReadyz))
	}
	c.st.failing.Store(true)
	if get(PathReadyz) != http.StatusServiceUnavailable || get(PathHealthz) != 200 {
		t.Fatalf("store down: readyz %d healthz %d; want 503, 200", get(PathReadyz), get(PathHealthz))
	}
	c.st.failing.Store(false)
	var dirDown atomic.Bool
	c.srv.AddReadyCheck("directory", func(context.Context) error {
		if dirDown.Load() {
			return errors.New("directory down")
		}
		return nil
	})
	dirDown.Store(true)
	if get(PathReadyz) != http.StatusServiceUnavailable {
		t.Fatal("a failing added check left /readyz at 200")
	}
	dirDown.Store(false)
	if get(PathReadyz) != 200 {
		t.Fatal("readyz did not recover")
	}
	c.srv.Drain()
	if get(PathReadyz) != http.StatusServiceUnavailable || get(PathHealthz) != 200 {
		t.Fatal("a draining server is still ready (or no longer alive)")
	}
	// Draining does not refuse requests: they keep being served.
	if a := c.authorize(c.browser("desktop"), nil); a.status != http.StatusFound {
		t.Fatalf("authorize while draining: %d", a.status)
	}
}

// counter reads a counter (or a gauge) with the given labels.
func metricValue(t *testing.T, h *harness, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := h.metrics.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			return value(m)
		}
	}
	return 0
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

// TestMetricsCountWhatHappened: a sign-in, a bad token request, a
// rate-limited one, WeChat calls, store operations and a pending login each
// show in the metrics with their labels.
func TestMetricsCountWhatHappened(t *testing.T) {
	h := newHarness(t, withConfig(func(c *config.File) {
		c.Limits.TokenPerClient = config.RateConfig{Rate: 0.01, Burst: 3}
	}))
	r := h.rp(rpClientID, rpSecret, rpRedirect, gooidc.ScopeOpenID)
	h.login(r, h.browser(), "alice")
	if v := metricValue(t, h, "wechat_oidc_sign_ins_total", map[string]string{"flow": "official_account", "result": "ok"}); v != 1 {
		t.Errorf("sign_ins_total{official_account,ok} = %v, want 1", v)
	}
	if v := metricValue(t, h, "wechat_oidc_token_requests_total", map[string]string{"grant": "authorization_code", "result": "ok"}); v != 1 {
		t.Errorf("token_requests_total{authorization_code,ok} = %v, want 1", v)
	}
	// The client's budget (burst 3) counts authenticated requests: the
	// code exchange above took one, two more fit, the next is limited.
	for range 3 {
		h.tokenRequest(url.Values{"grant_type": {"authorization_code"}, "code": {"bogus"}, "redirect_uri": {rpRedirect}}, rpClientID, rpSecret)
	}
	if v := metricValue(t, h, "wechat_oidc_token_requests_total", map[string]string{"grant": "authorization_code", "result": "invalid_grant"}); v != 2 {
		t.Errorf("token_requests_total{authorization_code,invalid_grant} = %v, want 2 (the 3rd was rate limited)", v)
	}
	if v := metricValue(t, h, "wechat_oidc_rate_limited_total", map[string]string{"limit": "token_per_client"}); v != 1 {
		t.Errorf("rate_limited_total{token_per_client} = %v, want 1", v)
	}
	if v := metricValue(t, h, "wechat_oidc_wechat_calls_total", map[string]string{"endpoint": "/sns/oauth2/access_token", "errcode": "0"}); v != 1 {
		t.Errorf("wechat_calls_total{access_token,0} = %v, want 1", v)
	}
	if v := metricValue(t, h, "wechat_oidc_wechat_call_duration_seconds", map[string]string{"endpoint": "/sns/oauth2/access_token"}); v != 1 {
		t.Errorf("wechat_call_duration_seconds count = %v, want 1", v)
	}
	if v := metricValue(t, h, "wechat_oidc_store_operation_duration_seconds", map[string]string{"op": "take"}); v < 2 {
		t.Errorf("store take operations = %v, want the pending login's and the code's", v)
	}
	// A login started and not finished is pending.
	b := h.browser()
	b.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := b.Get(h.authorizeURL(map[string]string{"prompt": "login"}))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if v := metricValue(t, h, "wechat_oidc_pending_logins", nil); v != 1 {
		t.Errorf("pending_logins = %v, want 1", v)
	}
	h.advance(h.cfg.Login.PendingTTL.D() + time.Second)
	if v := metricValue(t, h, "wechat_oidc_pending_logins", nil); v != 0 {
		t.Errorf("pending_logins after expiry = %v, want 0", v)
	}
	families, _ := h.metrics.Gatherer().Gather()
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if strings.Contains(lp.GetValue(), rpSecret) || strings.Contains(lp.GetValue(), "bogus") {
					t.Errorf("metric %s carries a request value: %s", f.GetName(), lp.GetValue())
				}
			}
		}
	}
}

// TestRateLimitSharedAcrossReplicas: with Redis, the authorization
// endpoint's limit per network holds for all replicas together: two
// replicas with a burst of 3 allow 3 requests in all, not 3 each. (The token
// endpoint's limits are per replica by design: docs/security.md.)
func TestRateLimitSharedAcrossReplicas(t *testing.T) {
	redis := storetest.StartRedisServer(t)
	prefix := withRedis(redis.URL())
	limits := withConfig(func(c *config.File) { c.Limits.AuthorizePerIP = config.RateConfig{Rate: 0.01, Burst: 3} })
	var shared config.StoreConfig
	a := newHarness(t, prefix, limits, withConfig(func(c *config.File) { shared = c.Store }))
	b := newHarness(t, limits, withConfig(func(c *config.File) { c.Store = shared }))
	limited := 0
	for i := range 6 {
		h := a
		if i%2 == 1 {
			h = b
		}
		resp, err := noFollow(h.browser()).Get(h.authorizeURL(nil))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited != 3 {
		t.Fatalf("%d of 6 sign-ins across two replicas were limited, want 3 (a shared burst of 3)", limited)
	}
}
