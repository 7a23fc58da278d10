package metrics_test

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/wechat-oidc/wechat-oidc/metrics"
	"github.com/wechat-oidc/wechat-oidc/store"
	"github.com/wechat-oidc/wechat-oidc/store/storetest"
)

// TestNilMetricsRecordNothing: code holding no metrics calls them freely.
func TestNilMetricsRecordNothing(t *testing.T) {
	var m *metrics.Metrics
	m.SignIn("official_account", "ok")
	m.TokenResponse("refresh_token", "")
	m.RateLimited("authorize_per_ip")
	m.WeChatCall("/sns/userinfo", "0", time.Millisecond)
	m.GaugeFunc("x", "x", func() float64 { return 1 })
	st := store.NewMemory()
	if m.Store(st) != store.Store(st) {
		t.Fatal("a nil Metrics wrapped the store")
	}
}

// TestTimedStoreIsAStore: the wrapper passes the store conformance suite.
func TestTimedStoreIsAStore(t *testing.T) {
	m := metrics.New()
	storetest.Run(t, func(t *testing.T) store.Store { return m.Store(store.NewMemory()) })
}

// TestTimedStoreCountsFailuresOnly: every operation is timed; failures are
// counted, but neither an absent key nor an error of Update's own function
// (the caller's decision) is a store failure.
func TestTimedStoreCountsFailuresOnly(t *testing.T) {
	m := metrics.New()
	mem := store.NewMemory()
	st := m.Store(mem)
	ctx := context.Background()
	if _, err := st.Get(ctx, "absent"); !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	errMine := errors.New("session ended")
	if err := st.Update(ctx, "k", time.Minute, func([]byte) ([]byte, error) { return nil, errMine }); err != errMine {
		t.Fatalf("Update returned %v, want fn's error unchanged", err)
	}
	mem.Close()
	if err := st.Put(ctx, "k", []byte("v"), time.Minute); !errors.Is(err, store.ErrClosed) {
		t.Fatal(err)
	}
	if u, ok := st.(interface{ Unwrap() store.Store }); !ok || u.Unwrap() != store.Store(mem) {
		t.Fatal("the wrapper does not unwrap to the store")
	}
	m.SignIn("", "ok")
	text := scrape(t, m)
	for _, want := range []string{
		`wechat_oidc_store_errors_total{op="put"} 1`,
		`wechat_oidc_store_operation_duration_seconds_count{op="get"} 1`,
		`wechat_oidc_store_operation_duration_seconds_count{op="update"} 1`,
		`wechat_oidc_sign_ins_total{flow="unknown",result="ok"} 1`,
		"go_goroutines", "process_",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	for _, unwanted := range []string{`wechat_oidc_store_errors_total{op="get"}`, `wechat_oidc_store_errors_total{op="update"}`} {
		if strings.Contains(text, unwanted) {
			t.Errorf("metrics count %s as a failure", unwanted)
		}
	}
}

func scrape(t *testing.T, m *metrics.Metrics) string {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
