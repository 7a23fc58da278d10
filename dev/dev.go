// Package dev is `wechat-oidc dev`: the provider wired to an embedded WeChat
// simulator and a demo relying party, on one loopback listener. The
// server's packages never import it.
package dev

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/wechat-oidc/wechat-oidc/bridge"
	"github.com/wechat-oidc/wechat-oidc/config"
	wechatconn "github.com/wechat-oidc/wechat-oidc/connector/wechat"
	"github.com/wechat-oidc/wechat-oidc/directory"
	"github.com/wechat-oidc/wechat-oidc/keys"
	"github.com/wechat-oidc/wechat-oidc/oidc"
	"github.com/wechat-oidc/wechat-oidc/store"
	"github.com/wechat-oidc/wechat-oidc/wechat/simulator"
)

// Dev is `wechat-oidc dev`: the provider, an embedded WeChat simulator at
// /wechat-sim and a demo relying party at /, on one listener. No account, no
// config file, no network beyond loopback.
type Dev struct {
	*bridge.Server
	BaseURL      string
	SimulatorURL string
	ClientID     string
	Simulator    *simulator.Simulator
}

// Dev-mode WeChat apps: made-up appids; their secrets are generated per run.
const (
	devAppID    = "wx0d0e0v0000000001"
	devWebAppID = "wx0d0e0v0000000002"
	devMiniID   = "wx0d0e0v0000000003"
	devClientID = "demo"
	devSimPath  = "/wechat-sim"
)

// New builds dev mode for a listen address host:port.
func New(listen string, logger *slog.Logger) (*Dev, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil || port == "" || port == "0" {
		return nil, fmt.Errorf("--listen %q must be host:port with a fixed port (e.g. 127.0.0.1:8080)", listen)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	base := "http://" + net.JoinHostPort(host, port)
	oaSecret, webSecret, miniSecret := oidc.NewToken(), oidc.NewToken(), oidc.NewToken()
	sim := simulator.New(simulator.Config{
		Apps: []simulator.App{
			{ID: devAppID, Secret: oaSecret, Kind: simulator.OfficialAccount, Bound: true, Name: "wechat-oidc 演示服务号"},
			{ID: devWebAppID, Secret: webSecret, Kind: simulator.WebsiteApp, Bound: true, Name: "wechat-oidc 演示网站应用"},
			{ID: devMiniID, Secret: miniSecret, Kind: simulator.MiniProgram, Bound: true, Name: "wechat-oidc 演示小程序"},
		},
		CallbackHosts: []string{net.JoinHostPort(host, port)},
		AllowPort:     true, // real WeChat refuses ports (10003); dev runs on one
	})
	clientSecret := oidc.NewToken()
	file := &config.File{
		Issuer:  base,
		Listen:  listen,
		Subject: config.SubjectUnionID,
		WeChat: config.WeChatConfig{
			// The consent page every time, so that a person trying it out can
			// pick another simulated user (production defaults to silent_first).
			OfficialAccount: &config.WeChatAppConfig{AppID: devAppID, AppSecret: oaSecret, Scope: config.ScopeUserInfo},
			WebsiteApp:      &config.WeChatAppConfig{AppID: devWebAppID, AppSecret: webSecret},
			MiniProgram:     &config.WeChatAppConfig{AppID: devMiniID, AppSecret: miniSecret},
			OpenBaseURL:     base + devSimPath,
			APIBaseURL:      base + devSimPath,
		},
		Clients: []config.ClientConfig{{
			ID: devClientID, Name: "Demo app", Secret: clientSecret,
			RedirectURIs:           []string{base + "/demo/callback"},
			PostLogoutRedirectURIs: []string{base + "/"},
			MiniProgram:            true,
		}},
		Store: config.StoreConfig{Type: "memory"},
		// A throwaway directory; dev mode admits anyone (a visitor can try
		// approval and invite with ?access=…, see the demo page).
		Directory: config.DirectoryConfig{Type: "sqlite", Path: ":memory:"},
		Access:    config.AccessConfig{Mode: config.AccessOpen},
		Keys:      config.KeysConfig{Dir: "(ephemeral)"},
	}
	opt, err := file.Resolve()
	if err != nil {
		return nil, fmt.Errorf("dev config: %w", err)
	}
	ks, err := keys.NewEphemeral()
	if err != nil {
		return nil, err
	}
	st := store.NewMemory(store.WithMaxEntries(opt.Store.MemoryMaxEntries))
	dir, err := directory.Open(context.Background(), directory.Options{Type: opt.Directory.Type, Path: opt.Directory.Path})
	if err != nil {
		return nil, fmt.Errorf("dev directory: %w", err)
	}
	connOpt := wechatconn.FromConfig(opt, st, logger, nil)
	profiles := dir.Profiles()
	connOpt.Profiles = &profiles
	conn, err := wechatconn.New(connOpt)
	if err != nil {
		return nil, err
	}
	srv, err := bridge.New(opt, bridge.Deps{Store: st, Directory: dir, Keys: ks, Connector: conn, Logger: logger, DevLinks: true})
	if err != nil {
		return nil, err
	}
	e := srv.Echo()
	simHandler := echo.WrapHandler(http.StripPrefix(devSimPath, sim))
	e.Any(devSimPath+"/*", simHandler)
	demo := newDemoRP(base, devClientID, clientSecret, logger)
	demo.mount(e)
	return &Dev{
		Server:       srv,
		BaseURL:      base,
		SimulatorURL: base + devSimPath,
		ClientID:     devClientID,
		Simulator:    sim,
	}, nil
}
