package bridge

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/wechat-oidc/wechat-oidc/config"
	"github.com/wechat-oidc/wechat-oidc/directory"
)

// TestConsoleApprovesThroughTheRealBridge: the whole administrator's path
// with the real server and the simulated WeChat — an invitation makes alice
// an administrator, she signs in to /admin with WeChat (the console is a
// client of the bridge), bob's first sign-in waits, alice approves him from
// the console's Pending page, and bob's waiting page continues into the
// application. bob, not an administrator, gets 403 from the console.
func TestConsoleApprovesThroughTheRealBridge(t *testing.T) {
	h := newHarness(t, withAccess(config.AccessApproval))
	ctx := context.Background()
	_, token, err := h.dir.Invitations().Create(ctx, directory.NewInvitation{Username: "alice", Groups: []string{"admins"}, CreatedBy: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	// alice accepts the invitation in WeChat, then opens the console.
	h.sim.AutoApprove("alice")
	admin := h.browser()
	if resp, _ := h.authorize(admin, h.issuer()+"/invite/"+token); resp.StatusCode >= 400 {
		t.Fatalf("invitation: %d %s", resp.StatusCode, readBody(t, resp))
	}
	page := h.consoleGet(admin, "/admin/pending")
	if !strings.Contains(page, `data-page="pending"`) && !strings.Contains(page, "data-page=\"admin-pending\"") {
		t.Fatalf("alice did not reach the console's pending page:\n%.2000s", page)
	}
	// bob's first sign-in waits for approval.
	h.sim.AutoApprove("bob")
	bobBrowser := h.browser()
	resp, q := h.authorize(bobBrowser, h.authorizeURL(nil))
	if q != nil {
		t.Fatalf("a pending person reached the application: %v", q)
	}
	waiting := resp.Request.URL.String()
	bob := h.personOf("bob")
	// alice approves bob from the console.
	page = h.consoleGet(admin, "/admin/pending")
	if !strings.Contains(page, bob.ID) {
		t.Fatalf("bob is not on the pending page:\n%.3000s", page)
	}
	csrf := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(page)
	if csrf == nil {
		t.Fatal("no CSRF token on the pending page")
	}
	req, _ := http.NewRequest(http.MethodPost, h.issuer()+"/admin/pending/"+bob.ID+"/approve",
		strings.NewReader(url.Values{"csrf": {csrf[1]}, "username": {"bob"}, "groups": {"staff"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", strings.TrimSuffix(h.issuer(), "/"))
	if resp, err := admin.Do(req); err != nil || resp.StatusCode >= 400 {
		t.Fatalf("approve from the console: %v %v", err, resp)
	}
	if p, _ := h.dir.People().Get(ctx, bob.ID); p.Status != directory.StatusActive || p.Username != "bob" {
		t.Fatalf("after the console's approval: %+v", p)
	}
	// bob's waiting page continues into the application.
	if _, q = h.authorize(bobBrowser, waiting); q.Get("code") == "" {
		t.Fatalf("bob's waiting page did not continue: %v", q)
	}
	// bob is admitted but no administrator: the console refuses him.
	other := bobBrowser
	resp, err = other.Get(h.issuer() + "/admin/pending")
	for i := 0; err == nil && resp.StatusCode == http.StatusFound && i < 12; i++ {
		loc, _ := resp.Request.URL.Parse(resp.Header.Get("Location"))
		resp.Body.Close()
		resp, err = other.Get(loc.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a non-administrator at the console: %d", resp.StatusCode)
	}
}

// consoleGet opens a console page in b, following the sign-in through the
// bridge and the simulated WeChat.
func (h *harness) consoleGet(b *http.Client, path string) string {
	h.t.Helper()
	resp, err := b.Get(h.issuer() + path)
	for i := 0; err == nil && resp.StatusCode == http.StatusFound && i < 12; i++ {
		loc, _ := resp.Request.URL.Parse(resp.Header.Get("Location"))
		resp.Body.Close()
		resp, err = b.Get(loc.String())
	}
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("%s: %d\n%.2000s", path, resp.StatusCode, body)
	}
	return string(body)
}
