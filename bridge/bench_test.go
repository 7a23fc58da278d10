package bridge

import (
	"fmt"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"

	"github.com/wechat-oidc/wechat-oidc/config"
)

// BenchmarkWholeLogin measures one complete sign-in through the real server
// and the WeChat simulator over loopback HTTP, as a relying party sees it:
// a fresh browser (cookie jar), authorize → simulated WeChat → callback →
// code exchange with PKCE → ID token signature verification (go-oidc) →
// userinfo. Memory store, RS256.
//
//	go test -run '^$' -bench WholeLogin -benchtime 300x ./bridge
//
// It also reports the directory statements per sign-in (dir-stmts/op) of a
// person the directory already knows (active), counting BEGIN and COMMIT:
// the access decision's read, one transaction with the sign-in record and
// its audit row (BEGIN, UPDATE, INSERT, COMMIT; shared with concurrent
// sign-ins), and userinfo's account check — 6. (The WeChat profile is
// written only when it changed or this process did not store it in the
// last 10 minutes.)
func BenchmarkWholeLogin(b *testing.B) {
	h := newHarness(b, withAccess(config.AccessApproval))
	h.addPerson("alice")
	r := h.rp(rpClientID, rpSecret, rpRedirect)
	b.ReportAllocs()
	h.dirStatements.Reset()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		res := h.login(r, h.browser(), "alice")
		req, _ := http.NewRequest(http.MethodGet, h.issuer()+"/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+res.token.AccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("userinfo: %d", resp.StatusCode)
		}
	}
	b.ReportMetric(float64(h.dirStatements.Count())/float64(b.N), "dir-stmts/op")
}

// BenchmarkPendingLoginMemory measures what one pending sign-in keeps in
// the memory store once the request is over: an authorization request
// padded to the parameter limits (state 2 KB, nonce 512 B, login_hint and
// ui_locales 4 KB each) from a fresh browser, sent to WeChat and never
// finished. It reports the heap retained per pending sign-in (after GC,
// everything the store and the process hold), the stored bytes of the
// pending login itself, and the store entries per sign-in (the pending
// login; the counts per network are shared by up to
// login.max_pending_per_ip sign-ins).
//
//	go test -run '^$' -bench PendingLoginMemory -benchtime 5000x ./bridge
//
// The ceiling under a flood is login.max_pending times heap-B/pending.
func BenchmarkPendingLoginMemory(b *testing.B) {
	h := newHarness(b, withTrustedLoopbackProxy(), withConfig(func(c *config.File) {
		c.Login.MaxPendingPerIP, c.Login.MaxPending = 100, 1<<30
		c.Store.Memory.MaxEntries = 1 << 30
		c.Limits.AuthorizePerIP = config.RateConfig{Rate: 1e9, Burst: 1 << 30}
	}))
	authURL := h.authorizeURL(map[string]string{
		"state": strings.Repeat("s", 2048), "nonce": strings.Repeat("n", 512),
		"login_hint": strings.Repeat("L", 4000), "ui_locales": strings.Repeat("U", 4000),
	})
	client := &http.Client{CheckRedirect: noRedirects} // no jar: a fresh browser each time
	start := func(i int, ip string) string {
		req, _ := http.NewRequest(http.MethodGet, authURL, nil)
		req.Header.Set("User-Agent", uaWeChat)
		req.Header.Set("X-Forwarded-For", ip)
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || loc == nil || loc.Query().Get("state") == "" {
			b.Fatalf("sign-in %d: %d", i, resp.StatusCode)
		}
		return loc.Query().Get("state")
	}
	start(-1, "192.0.2.1") // the MAC key and a warm server
	entries := h.store.Len()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	var last string
	for i := 0; i < b.N; i++ {
		// 100 sign-ins per network: every count record is full.
		last = start(i, fmt.Sprintf("10.%d.%d.%d", i/100/65536%256, i/100/256%256, i/100%256))
	}
	b.StopTimer()
	client.CloseIdleConnections()
	runtime.GC()
	runtime.ReadMemStats(&after)
	raw, err := h.store.Get(b.Context(), keyPending+last)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(b.N), "heap-B/pending")
	b.ReportMetric(float64(len(raw)), "stored-B/pending")
	b.ReportMetric(float64(h.store.Len()-entries)/float64(b.N), "entries/pending")
}
