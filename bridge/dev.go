package bridge

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/wechat-oidc/wechat-oidc/keys"
	"github.com/wechat-oidc/wechat-oidc/store"
	"github.com/wechat-oidc/wechat-oidc/wechat/simulator"
)

// Dev is `wechat-oidc dev`: the provider, an embedded WeChat simulator at
// /wechat-sim and a demo relying party at /, on one listener. No account, no
// config file, no network beyond loopback.
type Dev struct {
	*Server
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

// NewDev builds dev mode for a listen address host:port.
func NewDev(listen string, logger *slog.Logger) (*Dev, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil || port == "" || port == "0" {
		return nil, fmt.Errorf("--listen %q must be host:port with a fixed port (e.g. 127.0.0.1:8080)", listen)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	base := "http://" + net.JoinHostPort(host, port)
	oaSecret, webSecret, miniSecret := randomToken(), randomToken(), randomToken()
	sim := simulator.New(simulator.Config{
		Apps: []simulator.App{
			{ID: devAppID, Secret: oaSecret, Kind: simulator.OfficialAccount, Bound: true, Name: "wechat-oidc 演示服务号"},
			{ID: devWebAppID, Secret: webSecret, Kind: simulator.WebsiteApp, Bound: true, Name: "wechat-oidc 演示网站应用"},
			{ID: devMiniID, Secret: miniSecret, Kind: simulator.MiniProgram, Bound: true, Name: "wechat-oidc 演示小程序"},
		},
		CallbackHosts: []string{net.JoinHostPort(host, port)},
		AllowPort:     true, // real WeChat refuses ports (10003); dev runs on one
	})
	clientSecret := randomToken()
	cfg := &Config{
		Issuer:  base,
		Listen:  listen,
		Subject: SubjectUnionID,
		WeChat: WeChatConfig{
			// The consent page every time, so that a person trying it out can
			// pick another simulated user (production defaults to silent_first).
			OfficialAccount: &WeChatAppConfig{AppID: devAppID, AppSecret: oaSecret, Scope: ScopeUserInfo},
			WebsiteApp:      &WeChatAppConfig{AppID: devWebAppID, AppSecret: webSecret},
			MiniProgram:     &WeChatAppConfig{AppID: devMiniID, AppSecret: miniSecret},
			OpenBaseURL:     base + devSimPath,
			APIBaseURL:      base + devSimPath,
		},
		Clients: []ClientConfig{{
			ID: devClientID, Name: "Demo app", Secret: clientSecret,
			RedirectURIs:           []string{base + "/demo/callback"},
			PostLogoutRedirectURIs: []string{base + "/"},
			MiniProgram:            true,
		}},
		Store: StoreConfig{Type: "memory"},
		Keys:  KeysConfig{Dir: "(ephemeral)"},
	}
	cfg.applyDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("dev config: %w", err)
	}
	ks, err := keys.NewEphemeral()
	if err != nil {
		return nil, err
	}
	srv, err := New(cfg, Deps{Store: store.NewMemory(), Keys: ks, Logger: logger})
	if err != nil {
		return nil, err
	}
	srv.devMode = true
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
