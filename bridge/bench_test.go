package bridge

import (
	"net/http"
	"testing"
)

// BenchmarkWholeLogin measures one complete sign-in through the real server
// and the WeChat simulator over loopback HTTP, as a relying party sees it:
// a fresh browser (cookie jar), authorize → simulated WeChat → callback →
// code exchange with PKCE → ID token signature verification (go-oidc) →
// userinfo. Memory store, RS256.
//
//	go test -run '^$' -bench WholeLogin -benchtime 300x ./bridge
func BenchmarkWholeLogin(b *testing.B) {
	h := newHarness(b)
	r := h.rp(rpClientID, rpSecret, rpRedirect)
	b.ReportAllocs()
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
}
