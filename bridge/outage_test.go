package bridge

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/wechat-oidc/wechat-oidc/store/storetest"
)

// Outcomes of one sign-in attempt under load.
const (
	attemptOK              = "ok"                            // tokens issued, ID token verified, at_hash matches
	attemptUnavailable     = "temporarily_unavailable"       // the RP got error=temporarily_unavailable
	attemptUnavailablePage = "unavailable page"              // our 503 page, with the request id as reference
	attemptTokenUnavail    = "token temporarily_unavailable" // 503 from the token endpoint, nothing issued
)

var dataPage = regexp.MustCompile(`data-page="([^"]+)"`)

// attemptLogin runs one whole sign-in (fresh browser, PKCE, nonce) against
// base (the issuer, or a balancer in front of replicas) and says how it
// ended. It never fails the test itself: anything but the outcomes above
// is returned as a description, which the caller reports.
func attemptLogin(h *harness, r *rp, user string) string {
	h.sim.AutoApprove(user)
	b := h.browser()
	state, nonce, verifier := "st-"+randomID(8), "n-"+randomID(8), oauth2.GenerateVerifier()
	resp, err := b.Get(r.conf.AuthCodeURL(state, gooidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)))
	if err != nil {
		return "authorize transport error: " + err.Error()
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		m := dataPage.FindSubmatch(body)
		id := resp.Header.Get("X-Request-Id")
		if resp.StatusCode == http.StatusServiceUnavailable && m != nil && string(m[1]) == "unavailable" && id != "" && strings.Contains(string(body), "request "+id) {
			return attemptUnavailablePage
		}
		return fmt.Sprintf("authorize ended on %d %q", resp.StatusCode, m)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Host != rpHost {
		return "authorize redirected elsewhere: " + resp.Header.Get("Location")
	}
	q := loc.Query()
	if e := q.Get("error"); e != "" {
		if e == "temporarily_unavailable" && q.Get("state") == state {
			return attemptUnavailable
		}
		return "authorize error " + e + ": " + q.Get("error_description")
	}
	ctx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
	defer cancel()
	tok, err := r.conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		var re *oauth2.RetrieveError
		if asRetrieve(err, &re) && re.Response.StatusCode == http.StatusServiceUnavailable && re.ErrorCode == "temporarily_unavailable" && re.Response.Header.Get("Retry-After") != "" {
			return attemptTokenUnavail
		}
		return "token: " + err.Error()
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := r.verifier.Verify(ctx, raw)
	if err != nil {
		return "half-issued: ID token does not verify: " + err.Error()
	}
	if idt.Nonce != nonce || idt.VerifyAccessToken(tok.AccessToken) != nil {
		return "half-issued: nonce or at_hash wrong"
	}
	return attemptOK
}

func asRetrieve(err error, re **oauth2.RetrieveError) bool {
	e, ok := err.(*oauth2.RetrieveError)
	if ok {
		*re = e
	}
	return ok
}

// tally counts outcomes of concurrent attempts.
type tally struct {
	mu     sync.Mutex
	counts map[string]int
}

func (t *tally) add(outcome string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.counts == nil {
		t.counts = map[string]int{}
	}
	t.counts[outcome]++
}

func (t *tally) snapshot() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]int{}
	for k, v := range t.counts {
		out[k] = v
	}
	return out
}

func probe(t *testing.T, base, path string) int {
	t.Helper()
	resp, err := http.Get(base + path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitFor polls cond (a real server coming back: no clock to advance).
func waitFor(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRedisOutageUnderLoad stops the real Redis while four clients sign in
// continuously: every attempt ends either in verified tokens or in a clean
// "try again" (error=temporarily_unavailable to the RP, our 503 page with
// the request id as a reference, or a 503 temporarily_unavailable from the
// token endpoint) — never a 500, a panic, or a token response that does not
// verify. /readyz fails during the outage (/healthz does not: restarting
// the bridge would not bring Redis back), userinfo answers 503 rather than
// invalid_token (which would make clients throw their tokens away), and
// when Redis is back, sign-ins succeed again without any intervention.
func TestRedisOutageUnderLoad(t *testing.T) {
	redis := storetest.StartRedisServer(t)
	h := newHarness(t, withRedis(redis.URL()))
	r := h.rp(rpClientID, rpSecret, rpRedirect, gooidc.ScopeOpenID, "profile")
	before := h.login(r, h.browser(), "alice")

	var during, after tally
	var phase atomic.Int32 // 0 before the outage, 1 during, 2 after
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				p := phase.Load()
				outcome := attemptLogin(h, r, "alice")
				if p == 2 && phase.Load() == 2 {
					after.add(outcome)
				} else if p >= 1 {
					during.add(outcome)
				}
			}
		}()
	}
	time.Sleep(200 * time.Millisecond) // load running before the outage
	phase.Store(1)
	redis.Stop()
	waitFor(t, "outage answers", 10*time.Second, func() bool {
		c := during.snapshot()
		return c[attemptUnavailable]+c[attemptUnavailablePage]+c[attemptTokenUnavail] >= 8
	})
	if code := probe(t, h.issuer(), PathReadyz); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz during the outage: %d, want 503", code)
	}
	if code := probe(t, h.issuer(), PathHealthz); code != http.StatusOK {
		t.Errorf("/healthz during the outage: %d, want 200", code)
	}
	if status, body, _ := h.userinfoWith(before.token.AccessToken); status != http.StatusServiceUnavailable || body["error"] != "temporarily_unavailable" {
		t.Errorf("userinfo during the outage: %d %s, want 503 temporarily_unavailable", status, body)
	}

	redis.Start()
	waitFor(t, "/readyz after Redis came back", 10*time.Second, func() bool { return probe(t, h.issuer(), PathReadyz) == http.StatusOK })
	phase.Store(2)
	waitFor(t, "sign-ins after Redis came back", 10*time.Second, func() bool { return after.snapshot()[attemptOK] >= 8 })
	close(stop)
	wg.Wait()

	allowed := map[string]bool{attemptOK: true, attemptUnavailable: true, attemptUnavailablePage: true, attemptTokenUnavail: true}
	for outcome, n := range during.snapshot() {
		if !allowed[outcome] {
			t.Errorf("during the outage: %d × %s", n, outcome)
		}
	}
	if a := after.snapshot(); len(a) != 1 {
		t.Errorf("after Redis came back, not every sign-in succeeded: %v", a)
	}
	logs := h.logs.String()
	if strings.Contains(logs, "panic") || strings.Contains(logs, "status=500") {
		t.Errorf("a panic or a 500 during the outage:\n%s", grepLines(logs, "panic", "status=500"))
	}
	t.Logf("during the outage: %v; after: %v", during.snapshot(), after.snapshot())
}

func grepLines(s string, words ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, w := range words {
			if strings.Contains(l, w) {
				out = append(out, l)
				break
			}
		}
	}
	if len(out) > 20 {
		out = out[:20]
	}
	return strings.Join(out, "\n")
}

// TestRedisOutageMidLogin: Redis goes away between the steps of a sign-in.
// The WeChat callback then shows our 503 page with the request id as the
// reference, and the token endpoint answers 503 temporarily_unavailable
// with Retry-After: nothing is issued, nothing half-written.
func TestRedisOutageMidLogin(t *testing.T) {
	redis := storetest.StartRedisServer(t)
	h := newHarness(t, withRedis(redis.URL()))
	code := h.codeFor("alice", nil)

	h.sim.AutoApprove("bob")
	b := h.browser()
	b.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Path == "/wechat/callback" {
			return http.ErrUseLastResponse
		}
		return nil
	}
	resp, err := b.Get(h.authorizeURL(nil))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	callback := resp.Header.Get("Location")
	if !strings.Contains(callback, "/wechat/callback") {
		t.Fatalf("the simulator did not send the browser back: %d %q", resp.StatusCode, callback)
	}

	redis.Stop()
	resp, err = b.Get(callback)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	id := resp.Header.Get("X-Request-Id")
	if m := dataPage.FindSubmatch(body); resp.StatusCode != http.StatusServiceUnavailable || m == nil || string(m[1]) != "unavailable" || id == "" || !strings.Contains(string(body), "request "+id) {
		t.Fatalf("callback during the outage: %d %q, want the 503 unavailable page with request %s", resp.StatusCode, m, id)
	}
	status, tb, hdr := h.tokenRequest(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {rpRedirect}}, rpClientID, rpSecret)
	if status != http.StatusServiceUnavailable || tb["error"] != "temporarily_unavailable" || hdr.Get("Retry-After") == "" || tb["access_token"] != nil {
		t.Fatalf("token during the outage: %d %v Retry-After %q", status, tb, hdr.Get("Retry-After"))
	}
	// The reference leads to the line that says what failed.
	if !strings.Contains(grepLines(h.logs.String(), "request_id="+id), "store unavailable") {
		t.Errorf("no log line with request_id=%s says the store was unavailable:\n%s", id, grepLines(h.logs.String(), id))
	}
}
