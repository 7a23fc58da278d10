package bridge

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/wechat-oidc/wechat-oidc/config"
)

// Issue 9 §4: the token endpoint's limits.

// postToken posts a token request from client address xff (needs
// withTrustedLoopbackProxy; "" for the test's own), with an optional URL
// query and HTTP Basic credentials.
func postToken(t *testing.T, h *harness, xff, query string, form url.Values, basicID, basicSecret string) (int, string) {
	t.Helper()
	u := h.issuer() + "/token"
	if query != "" {
		u += "?" + query
	}
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	if basicID != "" {
		req.SetBasicAuth(url.QueryEscape(basicID), url.QueryEscape(basicSecret))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error string `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body.Error
}

var bogusCode = url.Values{"grant_type": {"authorization_code"}, "code": {"no-such-code"}, "redirect_uri": {rpRedirect}}

// TestTokenLimitQueryClientIDBypass: the limit used to key on client_id in
// the URL query, which the endpoint itself ignores: POST
// /token?client_id=<random> with a body naming the real client escaped it
// (300 of 300 guesses answered 401). Now the claimed client is read as the
// endpoint reads it, so the guesses are throttled whatever the query says.
func TestTokenLimitQueryClientIDBypass(t *testing.T) {
	h := newHarness(t, withConfig(func(c *config.File) {
		c.Limits.TokenAuthFailures = config.RateConfig{Rate: 0.01, Burst: 3}
	}))
	statuses := map[int]int{}
	for i := range 12 {
		form := url.Values{"client_id": {rpClientID}, "client_secret": {"guess-" + randomID(8)}}
		for k, v := range bogusCode {
			form[k] = v
		}
		status, _ := postToken(t, h, "", "client_id=random-"+randomID(6)+"-"+string(rune('a'+i)), form, "", "")
		statuses[status]++
	}
	if statuses[http.StatusUnauthorized] != 3 || statuses[http.StatusTooManyRequests] != 9 {
		t.Fatalf("12 guesses of rp's secret with a random client_id in the query: %v, want 3 × 401 then 429", statuses)
	}
	// Basic credentials are read the same way.
	if status, _ := postToken(t, h, "", "client_id=other", bogusCode, rpClientID, "guess"); status != http.StatusTooManyRequests {
		t.Fatalf("a Basic guess after the limit: %d", status)
	}
}

// TestStrangerCannotExhaustClientBudget: an unauthenticated sender claiming
// to be rp (wrong secret, or none) is throttled on its own network, and
// spends nothing of rp's budget: rp's real requests from elsewhere are
// served (an ~85 requests/s sender used to make rp's code redemptions
// fail with 429). rp's own budget counts only its authenticated requests.
func TestStrangerCannotExhaustClientBudget(t *testing.T) {
	h := newHarness(t, withTrustedLoopbackProxy(), withConfig(func(c *config.File) {
		c.Limits.TokenPerClient = config.RateConfig{Rate: 0.01, Burst: 5}
		c.Limits.TokenAuthFailures = config.RateConfig{Rate: 0.01, Burst: 3}
	}))
	const stranger, real = "203.0.113.66", "198.51.100.20"
	throttled := 0
	for i := range 50 {
		var status int
		if i%2 == 0 {
			status, _ = postToken(t, h, stranger, "", bogusCode, rpClientID, "wrong-secret")
		} else {
			form := url.Values{"client_id": {rpClientID}}
			for k, v := range bogusCode {
				form[k] = v
			}
			status, _ = postToken(t, h, stranger, "", form, "", "")
		}
		if status == http.StatusTooManyRequests {
			throttled++
		} else if status != http.StatusUnauthorized {
			t.Fatalf("stranger request %d: %d", i, status)
		}
	}
	if throttled != 47 {
		t.Fatalf("the stranger was throttled %d times of 50, want 47 (after 3 failures)", throttled)
	}
	// rp itself, from its own network, with its secret: served.
	for i := range 5 {
		if status, e := postToken(t, h, real, "", bogusCode, rpClientID, rpSecret); status != http.StatusBadRequest || e != "invalid_grant" {
			t.Fatalf("rp's request %d after the stranger: %d %s", i+1, status, e)
		}
	}
	// rp's own budget (burst 5) is spent by rp alone.
	if status, _ := postToken(t, h, real, "", bogusCode, rpClientID, rpSecret); status != http.StatusTooManyRequests {
		t.Fatalf("rp's 6th request: %d, want its own limit", status)
	}
	// Another client is untouched by all of it.
	if status, _ := postToken(t, h, stranger, "", bogusCode, rp2ClientID, rp2Secret); status == http.StatusTooManyRequests {
		t.Fatal("rp2 was limited by traffic about rp")
	}
}

// TestMadeUpClientIDsShareOneFailureBucket: guesses under ever new client
// ids from one network are throttled together (they neither escape the
// limit nor grow it without end).
func TestMadeUpClientIDsShareOneFailureBucket(t *testing.T) {
	h := newHarness(t, withConfig(func(c *config.File) {
		c.Limits.TokenAuthFailures = config.RateConfig{Rate: 0.01, Burst: 3}
	}))
	last := 0
	for range 5 {
		last, _ = postToken(t, h, "", "", bogusCode, "made-up-"+randomID(10), "x")
	}
	if last != http.StatusTooManyRequests {
		t.Fatalf("the 5th made-up client id: %d", last)
	}
	if n := len(h.srv.tokenFailures.buckets); n != 1 {
		t.Fatalf("%d failure buckets for one network", n)
	}
	if strings.Contains(h.logs.String(), "made-up-") {
		t.Error("a made-up client id reached the log")
	}
}
