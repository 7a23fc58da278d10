package wechat

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/wechat-oidc/wechat-oidc/config"
	"github.com/wechat-oidc/wechat-oidc/connector"
	"github.com/wechat-oidc/wechat-oidc/directory"
	wx "github.com/wechat-oidc/wechat-oidc/wechat"
)

// testProfiles is an in-memory directory's profiles.
func testProfiles(t *testing.T) directory.Profiles {
	t.Helper()
	d, err := directory.Open(context.Background(), directory.Options{Type: "sqlite", Path: ":memory:"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d.Profiles()
}

// testConnector is a connector with an Official Account, for unit tests.
func testConnector(t *testing.T, subject string) *Connector {
	t.Helper()
	c, err := New(Options{
		WeChat:   config.WeChat{OfficialAccount: &config.WeChatApp{AppID: "wxtest", AppSecret: "secret", Scope: config.ScopeUserInfo}, AvatarSize: 132},
		Subject:  subject,
		Profiles: testProfiles(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestProfileClaims(t *testing.T) {
	if got := avatarURL("https://thirdwx.qlogo.cn/mmopen/abc/132", 0); got != "https://thirdwx.qlogo.cn/mmopen/abc/0" {
		t.Errorf("avatar size: %s", got)
	}
	if got := avatarURL("https://x.example/a.png", 0); got != "https://x.example/a.png" {
		t.Errorf("non-WeChat avatar changed: %s", got)
	}
	c := testConnector(t, config.SubjectOpenID)
	id, e := c.identity(t.Context(), "wxtest", &wx.UserInfo{OpenID: "o1", Nickname: "n", Sex: 2, Country: "中国", Province: "广东", City: "深圳"})
	if e != nil {
		t.Fatal(e)
	}
	addr, _ := json.Marshal(id.Claims["address"])
	if id.Claims["gender"] != "female" || string(addr) != `{"country":"中国","formatted":"中国 广东 深圳","locality":"深圳","region":"广东"}` {
		t.Errorf("claims: %v %s", id.Claims, addr)
	}
	id, _ = c.identity(t.Context(), "wxtest", &wx.UserInfo{OpenID: "o1"})
	if _, ok := id.Claims["gender"]; ok {
		t.Error("sex 0 must give no gender")
	}
	if _, ok := id.Claims["address"]; ok {
		t.Error("empty regions must give no address")
	}
}

// TestJavascriptAvatarDropped: a headimgurl that is not an http(s) URL
// (from WeChat, a simulator, or a stored profile) never becomes the picture
// claim, which relying parties render as a link or an image.
func TestJavascriptAvatarDropped(t *testing.T) {
	c := testConnector(t, config.SubjectOpenID)
	for _, bad := range []string{
		"javascript:alert(document.cookie)",
		"JavaScript:alert(1)//132",
		"data:text/html,<script>alert(1)</script>",
		"vbscript:msgbox(1)",
		"//evil.example/a.png",
		"/relative/132",
		"https://user:pass@thirdwx.qlogo.cn/x/132",
		"https://thirdwx.qlogo.cn/x\"onerror=alert(1)/132",
		"file:///etc/passwd",
	} {
		id, e := c.identity(t.Context(), "wxtest", &wx.UserInfo{OpenID: "o1", Nickname: "n", HeadImgURL: bad})
		if e != nil {
			t.Fatal(e)
		}
		if p := id.Claims["picture"]; p != "" {
			t.Errorf("headimgurl %q became picture %q", bad, p)
		}
	}
	for _, good := range []string{"https://thirdwx.qlogo.cn/mmopen/abc/132", "http://wx.qlogo.cn/mmopen/abc/0"} {
		id, _ := c.identity(t.Context(), "wxtest", &wx.UserInfo{OpenID: "o1", HeadImgURL: good})
		if p, _ := id.Claims["picture"].(string); !strings.HasPrefix(p, good[:len(good)-3]) {
			t.Errorf("a genuine avatar %q was dropped: %q", good, p)
		}
	}
}

// startWith runs Start for client "rp" with the given settings and parameters.
func startWith(t *testing.T, website bool, cs ClientSettings, ua string, extra map[string]string) (string, bool, string) {
	t.Helper()
	c := testConnector(t, config.SubjectUnionID)
	c.opt.Clients = map[string]ClientSettings{"rp": cs}
	if website {
		c.opt.WeChat.WebsiteApp = &config.WeChatApp{AppID: "wxweb", AppSecret: "web-secret"}
	}
	st, e := c.Start(connector.StartRequest{ClientID: "rp", UserAgent: ua, Extra: extra})
	if e != nil {
		return "", false, e.Code + ": " + e.Description
	}
	var l leg
	if err := json.Unmarshal(st.Leg, &l); err != nil {
		t.Fatal(err)
	}
	return st.Flow, l.ForcePopup, ""
}

const desktopUA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/126.0"

// TestPinnedFlowNotOverriddenByRequest: a client fixed to a flow keeps it
// whatever the authorize request asks; a phishing page cannot turn it into
// a cross-device QR code.
func TestPinnedFlowNotOverriddenByRequest(t *testing.T) {
	pinned := ClientSettings{Flow: config.FlowOfficialAccount, CrossDevice: true}
	if flow, _, err := startWith(t, false, pinned, desktopUA, map[string]string{ParamFlow: config.FlowCrossDevice}); err == "" || flow != "" || !strings.Contains(err, "always signs in with official_account") {
		t.Fatalf("pinned official_account, request cross_device: flow %q, error %q", flow, err)
	}
	if flow, _, err := startWith(t, false, pinned, desktopUA, map[string]string{ParamFlow: config.FlowOfficialAccount}); err != "" || flow != config.FlowOfficialAccount {
		t.Fatalf("the pinned flow itself: %q %q", flow, err)
	}
	if flow, _, err := startWith(t, false, pinned, desktopUA, nil); err != "" || flow != config.FlowOfficialAccount {
		t.Fatalf("no parameter: %q %q", flow, err)
	}
	// Without a pinned flow the parameter still chooses.
	if flow, _, err := startWith(t, true, ClientSettings{CrossDevice: true}, desktopUA, map[string]string{ParamFlow: config.FlowCrossDevice}); err != "" || flow != config.FlowCrossDevice {
		t.Fatalf("unpinned client asking cross_device: %q %q", flow, err)
	}
}

// TestCrossDeviceSwitchedOff: with cross-device sign-in off (deployment or
// client), no request yields a cross-device flow.
func TestCrossDeviceSwitchedOff(t *testing.T) {
	off := ClientSettings{CrossDevice: false}
	if flow, _, err := startWith(t, true, off, desktopUA, map[string]string{ParamFlow: config.FlowCrossDevice}); !strings.HasPrefix(err, "invalid_request") || flow != "" {
		t.Fatalf("cross_device asked while off: %q %q", flow, err)
	}
	// A desktop without a website app has nothing left: access_denied.
	if flow, _, err := startWith(t, false, off, desktopUA, nil); !strings.HasPrefix(err, "access_denied") {
		t.Fatalf("desktop, no website app, cross-device off: %q %q", flow, err)
	}
	// The other flows are unaffected.
	if flow, _, err := startWith(t, true, off, desktopUA, nil); err != "" || flow != config.FlowWebsiteApp {
		t.Fatalf("desktop with a website app: %q %q", flow, err)
	}
	if flow, _, err := startWith(t, false, off, "Mozilla/5.0 MicroMessenger/8.0", nil); err != "" || flow != config.FlowOfficialAccount {
		t.Fatalf("in WeChat: %q %q", flow, err)
	}
}

// TestForcePopupParamOnlyTrueOrFalse: the connector's own parameter takes
// its documented values only; anything else is refused, not stored.
func TestForcePopupParamOnlyTrueOrFalse(t *testing.T) {
	cs := ClientSettings{CrossDevice: true}
	ua := "Mozilla/5.0 MicroMessenger/8.0"
	if _, popup, err := startWith(t, false, cs, ua, map[string]string{ParamForcePopup: "true"}); err != "" || !popup {
		t.Fatalf("true: %v %q", popup, err)
	}
	if _, popup, err := startWith(t, false, cs, ua, map[string]string{ParamForcePopup: "false"}); err != "" || popup {
		t.Fatalf("false: %v %q", popup, err)
	}
	for _, bad := range []string{"1", "TRUE", "yes", strings.Repeat("x", 4000)} {
		if _, _, err := startWith(t, false, cs, ua, map[string]string{ParamForcePopup: bad}); !strings.HasPrefix(err, "invalid_request") {
			t.Errorf("wechat_force_popup=%.10q: %q", bad, err)
		}
	}
}
