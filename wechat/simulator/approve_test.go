package simulator

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// approveAs requests the authorize page with the approve header from
// remoteAddr, straight into the handler.
func approveAs(s *Simulator, remoteAddr, user string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, pathAuthorize+"?"+authorizeQuery(oaID, "https://rp.example/cb", scopeUserInfo, "st"), nil)
	r.RemoteAddr = remoteAddr
	r.Header.Set(HeaderApproveAs, user)
	r.Header.Set("User-Agent", uaWeChat)
	w := httptest.NewRecorder()
	s.ServeHTTP(w, r)
	return w
}

func TestApproveHeaderFromLoopbackApprovesAsThatUser(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.ApproveHeader = true
		c.Users = append(c.Users, LoadUsers(3)...)
	})
	for _, remote := range []string{"127.0.0.1:5555", "[::1]:5555"} {
		w := approveAs(e.sim, remote, LoadUserKey(2))
		loc, err := url.Parse(w.Header().Get("Location"))
		if w.Code != http.StatusFound || err != nil || loc.Query().Get("code") == "" {
			t.Fatalf("from %s: %d %q, want a redirect with a code", remote, w.Code, w.Header().Get("Location"))
		}
		tok := e.exchange(oaID, oaSecret, loc.Query().Get("code"))
		if tok["openid"] != e.sim.OpenID(oaID, "load00002") || tok["unionid"] != e.sim.UnionID("load00002") || tok["unionid"] == "" {
			t.Fatalf("token for the header's user: %v", tok)
		}
	}
	// An unknown user named in the header gets the unknown-user page.
	if w := approveAs(e.sim, "127.0.0.1:5555", "nobody"); w.Header().Get("X-Sim-Errcode") != "-10005" {
		t.Fatalf("unknown user: %d errcode %q", w.Code, w.Header().Get("X-Sim-Errcode"))
	}
}

func TestApproveHeaderIgnoredWhenNotEnabled(t *testing.T) {
	e := newEnv(t)
	w := approveAs(e.sim, "127.0.0.1:5555", "alice")
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `name="t"`) {
		t.Fatalf("without ApproveHeader the consent page must show: %d %q", w.Code, w.Header().Get("Location"))
	}
}

func TestApproveHeaderIgnoredFromAnotherAddress(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ApproveHeader = true })
	for _, remote := range []string{"192.0.2.7:5555", "10.0.0.1:80", "garbage"} {
		w := approveAs(e.sim, remote, "alice")
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), `name="t"`) {
			t.Fatalf("from %s the header must be ignored (consent page): %d %q", remote, w.Code, w.Header().Get("Location"))
		}
	}
}

func TestLoadUsersAreHiddenFromTheConsentPage(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Users = append(DefaultUsers(), LoadUsers(2)...) })
	p := e.get(pathAuthorize + "?" + authorizeQuery(oaID, "https://rp.example/cb", scopeUserInfo, "st"))
	if !strings.Contains(p.body, `value="alice"`) || strings.Contains(p.body, "load0000") {
		t.Fatalf("consent page should offer alice and no load user:\n%s", p.body)
	}
	if us := LoadUsers(2); len(us) != 2 || us[0].Key != "load00001" || !us[1].Hidden || us[0].UnionID == us[1].UnionID {
		t.Fatalf("LoadUsers(2) = %+v", us)
	}
}
