package bridge

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	"github.com/wechat-oidc/wechat-oidc/config"
	"github.com/wechat-oidc/wechat-oidc/keys"
	"github.com/wechat-oidc/wechat-oidc/oidc"
	"github.com/wechat-oidc/wechat-oidc/store"
)

// wechatClaims are the claims of a WeChat sign-in as the connector makes
// them, with a real-length avatar URL.
func wechatClaims(unionID string) map[string]any {
	return map[string]any{
		"name":               "张伟 Wei Zhang",
		"picture":            "https://thirdwx.qlogo.cn/mmopen/vi_32/Q0j4TwGTfTLZ9ibd0V3eYn6kJxqO2oiaIcXhXJ1QgFdhbB2qY4Rlp5vGyeh7fj3qX6kibRh5ySwUo7IgTJWqy1fA/132",
		"preferred_username": "wx_" + "ab3dmq5rt7uvw2xy",
		"openid":             "oQm2p5" + unionID[6:],
		"unionid":            unionID,
	}
}

// BenchmarkSessionMemory measures what live SSO sessions cost in the memory
// store: 100,000 sessions started by the bridge's own session code
// (startSession: the session under its cookie's hash and the sid index),
// each with a WeChat sign-in's claims. It reports heap bytes per session.
//
//	go test -run '^$' -bench SessionMemory -benchtime 1x ./bridge
func BenchmarkSessionMemory(b *testing.B) {
	const sessions = 100_000
	for range b.N {
		f := &config.File{
			Issuer:  "https://sso.example.com",
			WeChat:  config.WeChatConfig{OfficialAccount: &config.WeChatAppConfig{AppID: "wxbench", AppSecret: "unused-secret"}},
			Clients: []config.ClientConfig{{ID: rpClientID, Secret: rpSecret, RedirectURIs: []string{rpRedirect}}},
			Keys:    config.KeysConfig{Dir: "unused"},
		}
		opt, err := f.Resolve()
		if err != nil {
			b.Fatal(err)
		}
		ks, err := keys.NewEphemeral()
		if err != nil {
			b.Fatal(err)
		}
		st := store.NewMemory()
		srv, err := New(opt, Deps{Store: st, Keys: ks, Connector: &fakeConnector{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			b.Fatal(err)
		}
		ids := make([]oidc.Identity, sessions)
		for i := range ids {
			unionID := "oGZUI0" + randomID(22)
			ids[i] = oidc.Identity{Subject: unionID, AuthTime: time.Now(), Claims: wechatClaims(unionID)}
		}
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for i := range sessions {
			c := srv.echo.NewContext(httptest.NewRequest(http.MethodGet, "/authorize", nil), httptest.NewRecorder())
			if _, err := srv.startSession(c, ids[i], rpClientID, true); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/sessions, "B/session")
		runtime.KeepAlive(ids)
		runtime.KeepAlive(st)
	}
}
