package wechat

import (
	"encoding/json"
	"testing"

	"github.com/wechat-oidc/wechat-oidc/config"
	"github.com/wechat-oidc/wechat-oidc/store"
	wx "github.com/wechat-oidc/wechat-oidc/wechat"
)

// testConnector is a connector with an Official Account, for unit tests.
func testConnector(t *testing.T, subject string) *Connector {
	t.Helper()
	c, err := New(Options{
		WeChat:  config.WeChat{OfficialAccount: &config.WeChatApp{AppID: "wxtest", AppSecret: "secret", Scope: config.ScopeUserInfo}, AvatarSize: 132},
		Subject: subject,
		Store:   store.NewMemory(),
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
