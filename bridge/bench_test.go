package bridge

import (
	"github.com/wechat-oidc/wechat-oidc/config"
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
//
// It also reports the directory statements per sign-in (dir-stmts/op) of a
// person the directory already knows (active): the access decision's read,
// the sign-in record, the audit row, and userinfo's account check.
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
