package bridge

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wechat-oidc/wechat-oidc/config"
)

// Issue 9 §1: what anyone can make the bridge store without an account is
// bounded, per request, per client network and in total.

// pendingMaxBytes is the stated bound of one stored pending login: state
// (2 KB) and nonce (512 B) at their limits, with the rest of a compacted
// request, the leg, the binding and the slot.
const pendingMaxBytes = 3584

// sentUpstream starts a sign-in with b and returns the leg handle the
// bridge gave WeChat, or "" and the response when it did not send it there.
func sentUpstream(t *testing.T, h *harness, b *http.Client, authURL string) (string, *http.Response) {
	t.Helper()
	resp, err := noFollow(b).Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || loc == nil || !strings.HasPrefix(loc.String(), h.simURL) {
		return "", resp
	}
	return loc.Query().Get("state"), resp
}

// TestPendingLoginDropsUnusedParameters: a pending login keeps what the
// sign-in needs to finish and nothing else: login_hint and ui_locales
// (accepted and ignored), prompt, max_age and the connector's parameters
// are not stored, so a request padded to the parameter limits stores a few
// KB, not 30.
func TestPendingLoginDropsUnusedParameters(t *testing.T) {
	h := newHarness(t)
	state := strings.Repeat("s", 2048)
	over := map[string]string{
		"state": state, "nonce": strings.Repeat("n", 512),
		"login_hint": strings.Repeat("L", 4000), "ui_locales": strings.Repeat("U", 4000),
		"wechat_force_popup": "false", "prompt": "login", "max_age": "300",
	}
	b := h.browser()
	handle, resp := sentUpstream(t, h, b, h.authorizeURL(over))
	if handle == "" {
		t.Fatalf("not sent to WeChat: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	raw, err := h.store.Get(t.Context(), keyPending+handle)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) > pendingMaxBytes {
		t.Errorf("a pending login takes %d bytes, more than the stated %d", len(raw), pendingMaxBytes)
	}
	for _, unused := range []string{"LLLL", "UUUU", "login_hint", "ui_locales", "wechat_force_popup", "prompt", `"extra"`} {
		if strings.Contains(string(raw), unused) {
			t.Errorf("the pending login stores %s", unused)
		}
	}
	// What is kept is enough to finish: the state comes back whole.
	h.sim.AutoApprove("alice")
	_, q := h.authorize(b, resp.Header.Get("Location"))
	if q.Get("code") == "" || q.Get("state") != state {
		t.Fatalf("the compacted sign-in did not finish: %v", q)
	}

	// The connector's own parameter takes its documented values only:
	// 4 KB of anything else is refused and nothing is stored.
	before := h.store.Len()
	_, q = h.authorize(h.browser(), h.authorizeURL(map[string]string{"wechat_force_popup": strings.Repeat("x", 4000)}))
	if q.Get("error") != "invalid_request" {
		t.Fatalf("a 4 KB wechat_force_popup: %v", q)
	}
	if h.store.Len() != before {
		t.Fatalf("a refused request stored %d entries", h.store.Len()-before)
	}
}

// TestPendingLoginCapPerNetwork: one client network (an IPv4 address, an
// IPv6 /64) has at most login.max_pending_per_ip sign-ins pending; beyond
// that 429 with Retry-After and a page. A finished or expired sign-in
// frees its place.
func TestPendingLoginCapPerNetwork(t *testing.T) {
	h := newHarness(t, withTrustedLoopbackProxy(), withConfig(func(c *config.File) {
		c.Login.MaxPendingPerIP, c.Login.MaxPending = 3, 8
	}))
	type started struct {
		b   *http.Client
		loc string
	}
	start := func(ip string) (started, *http.Response) {
		b := h.browserFrom(uaWeChat, ip)
		handle, resp := sentUpstream(t, h, b, h.authorizeURL(nil))
		if handle == "" {
			return started{}, resp
		}
		return started{b, resp.Header.Get("Location")}, nil
	}
	admitted := func(name, ip string) started {
		t.Helper()
		s, resp := start(ip)
		if resp != nil {
			t.Fatalf("%s: %d, want a redirect to WeChat", name, resp.StatusCode)
		}
		return s
	}
	refused := func(name, ip string) {
		t.Helper()
		_, resp := start(ip)
		if resp == nil {
			t.Fatalf("%s: admitted", name)
		}
		body := readBody(t, resp)
		ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		if resp.StatusCode != http.StatusTooManyRequests || ra < 1 || ra > 11*60 || !strings.Contains(body, `data-page="too-many-pending"`) {
			t.Fatalf("%s: %d Retry-After %q, want 429 with Retry-After and the page", name, resp.StatusCode, resp.Header.Get("Retry-After"))
		}
	}
	var fromA []started
	for i := range 3 {
		fromA = append(fromA, admitted(fmt.Sprintf("sign-in %d of one address", i+1), "198.51.100.7"))
	}
	refused("the 4th from one address", "198.51.100.7")

	// A finished sign-in gives its place back.
	h.sim.AutoApprove("alice")
	if _, q := h.authorize(fromA[0].b, fromA[0].loc); q.Get("code") == "" {
		t.Fatalf("the first sign-in did not finish: %v", q)
	}
	admitted("after one finished", "198.51.100.7")

	// IPv6: a /64 is one network (a subscriber has a whole /64).
	for i := range 3 {
		admitted("IPv6 in one /64", fmt.Sprintf("2001:db8:1:2::%x", i+1))
	}
	refused("a 4th address of the same /64", "2001:db8:1:2::ffff")
	admitted("another /64", "2001:db8:1:3::1")
	// 3 + 3 + 1 pending: the total cap (8) has room for one more.
	admitted("another address", "192.0.2.9")
	refused("the total cap", "192.0.2.10")

	// Abandoned sign-ins stop counting when they expire.
	h.advance(h.cfg.Login.PendingTTL.D() + 2*time.Minute)
	admitted("after expiry", "198.51.100.7")
	admitted("after expiry, total", "192.0.2.10")
}

// TestPendingLoginFloodBounded: a flood of sign-ins from many networks at
// once stores at most login.max_pending pending logins, each within the
// stated size, plus one small count per admitted network: the store's
// entries never exceed that ceiling while the flood runs, and every
// refused request is a 429 with Retry-After.
func TestPendingLoginFloodBounded(t *testing.T) {
	const perIP, total, networks, perNetwork = 5, 50, 40, 10
	h := newHarness(t, withTrustedLoopbackProxy(), withConfig(func(c *config.File) {
		c.Login.MaxPendingPerIP, c.Login.MaxPending = perIP, total
	}))
	// Warm up (the MAC key is created at the first sign-in), then measure.
	if handle, _ := sentUpstream(t, h, h.browserFrom(uaWeChat, "192.0.2.1"), h.authorizeURL(nil)); handle == "" {
		t.Fatal("warm-up sign-in refused")
	}
	base := h.store.Len()
	ceiling := base + (total - 1) /* pending logins */ + networks /* counts per network */
	var accepted, tooMany atomic.Int64
	var peak atomic.Int64
	var mu sync.Mutex
	var handles []string
	var wg sync.WaitGroup
	state := strings.Repeat("s", 2048)
	for n := range networks {
		for range perNetwork {
			wg.Add(1)
			go func() {
				defer wg.Done()
				b := h.browserFrom(uaWeChat, fmt.Sprintf("203.0.%d.%d", n/200, n%200+1))
				handle, resp := sentUpstream(t, h, b, h.authorizeURL(map[string]string{"state": state, "nonce": strings.Repeat("n", 512)}))
				switch {
				case handle != "":
					accepted.Add(1)
					mu.Lock()
					handles = append(handles, handle)
					mu.Unlock()
				case resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") != "":
					tooMany.Add(1)
				default:
					t.Errorf("flood request: %d", resp.StatusCode)
				}
				for {
					cur, l := peak.Load(), int64(h.store.Len())
					if l <= cur || peak.CompareAndSwap(cur, l) {
						break
					}
				}
			}()
		}
	}
	wg.Wait()
	if got := accepted.Load(); got != total-1 || tooMany.Load() != networks*perNetwork-got {
		t.Fatalf("accepted %d (want %d, the total cap less the warm-up), refused %d", got, total-1, tooMany.Load())
	}
	if p := peak.Load(); p > int64(ceiling) {
		t.Fatalf("the store held %d entries during the flood, above the ceiling %d", p, ceiling)
	}
	// What is stored is bounded in bytes too.
	stored := 0
	for _, handle := range handles {
		raw, err := h.store.Get(t.Context(), keyPending+handle)
		if err != nil {
			t.Fatal(err)
		}
		stored += len(raw)
	}
	if stored > total*pendingMaxBytes {
		t.Fatalf("the pending logins hold %d bytes, above %d × %d", stored, total, pendingMaxBytes)
	}
	t.Logf("flood of %d sign-ins from %d networks: %d admitted, %d refused with 429; peak %d entries (base %d, ceiling %d); pending logins hold %d bytes (%d on average)",
		networks*perNetwork, networks, accepted.Load(), tooMany.Load(), peak.Load(), base, ceiling, stored, stored/len(handles))

	// Once the pending logins expire, sign-ins are admitted again.
	h.advance(h.cfg.Login.PendingTTL.D() + 2*time.Minute)
	if handle, resp := sentUpstream(t, h, h.browserFrom(uaWeChat, "203.0.0.1"), h.authorizeURL(nil)); handle == "" {
		t.Fatalf("after expiry: %d", resp.StatusCode)
	}
}

// TestStoreFullAnswersTemporarilyUnavailable: when the memory store holds
// store.memory.max_entries, a sign-in, and an SSO answer (it stores a
// code), are answered temporarily_unavailable: nothing grows, nothing
// panics, the log says why, and service resumes once there is room.
func TestStoreFullAnswersTemporarilyUnavailable(t *testing.T) {
	h := newHarness(t, withConfig(func(c *config.File) { c.Store.Memory.MaxEntries = 1000 }))
	b, _ := ssoLogin(t, h)
	var fillers []string
	for i := 0; h.store.Len() < 1000; i++ {
		k := "filler:" + strconv.Itoa(i)
		if err := h.store.Put(t.Context(), k, []byte("x"), time.Hour); err != nil {
			t.Fatal(err)
		}
		fillers = append(fillers, k)
	}
	_, q := h.authorize(h.browser(), h.authorizeURL(nil))
	if q.Get("error") != "temporarily_unavailable" || q.Get("state") != "client-state" {
		t.Fatalf("a sign-in into a full store: %v", q)
	}
	if _, q := h.authorize(b, h.authorizeURL(map[string]string{"prompt": "none"})); q.Get("error") != "temporarily_unavailable" {
		t.Fatalf("an SSO answer with a full store: %v", q)
	}
	if h.store.Len() != 1000 {
		t.Fatalf("the store grew past its bound: %d", h.store.Len())
	}
	if !strings.Contains(h.logs.String(), "memory store is full") {
		t.Error("the log does not say the store is full")
	}
	for _, k := range fillers[:20] {
		if err := h.store.Delete(t.Context(), k); err != nil {
			t.Fatal(err)
		}
	}
	if _, q := h.authorize(b, h.authorizeURL(map[string]string{"prompt": "none"})); q.Get("code") == "" {
		t.Fatalf("SSO once there is room again: %v", q)
	}
}

// TestLogoutRateLimited: /logout is limited per client network.
func TestLogoutRateLimited(t *testing.T) {
	h := newHarness(t, withConfig(func(c *config.File) { c.Limits.LogoutPerIP = config.RateConfig{Rate: 0.01, Burst: 3} }))
	var resp *http.Response
	for range 4 {
		var err error
		if resp, err = h.browser().Get(h.issuer() + PathLogout); err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("4th logout request: %d", resp.StatusCode)
	}
}

// TestLogoutConfirmationOnePerSession: asking to sign out again and again
// shows the same confirmation token and stores nothing (it used to store a
// fresh token per GET: 200,000 in 20 s from one client); the token works,
// and a forged one does not.
func TestLogoutConfirmationOnePerSession(t *testing.T) {
	h := newHarness(t)
	b, _ := ssoLogin(t, h)
	token := func() string {
		resp, err := b.Get(h.issuer() + PathLogout)
		if err != nil {
			t.Fatal(err)
		}
		body := readBody(t, resp)
		m := regexp.MustCompile(`name="confirm" value="([^"]+)"`).FindStringSubmatch(body)
		if m == nil {
			t.Fatalf("no confirmation form: %d\n%s", resp.StatusCode, body)
		}
		return m[1]
	}
	first := token()
	entries := h.store.Len()
	for range 50 {
		if tok := token(); tok != first {
			t.Fatal("a second confirmation token for the same session")
		}
	}
	if h.store.Len() != entries {
		t.Fatalf("50 confirmation pages stored %d entries", h.store.Len()-entries)
	}
	// Another session's token is another token.
	other, _ := ssoLogin(t, h)
	resp, _ := other.Get(h.issuer() + PathLogout)
	if strings.Contains(readBody(t, resp), first) {
		t.Fatal("two sessions share a confirmation token")
	}
	resp, _ = b.PostForm(h.issuer()+PathLogout, url.Values{"confirm": {first}})
	if body := readBody(t, resp); resp.StatusCode != 200 || !strings.Contains(body, `data-page="signed-out"`) {
		t.Fatalf("confirmed logout: %d", resp.StatusCode)
	}
	if h.sessionAlive(b) {
		t.Fatal("the session survived its confirmed logout")
	}
}
