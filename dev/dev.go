// Package dev is `wechat-oidc dev`: the provider wired to an embedded WeChat
// simulator and a demo relying party, on one loopback listener. The
// server's packages never import it.
package dev

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"

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
	// AdminInviteURL makes whoever opens it first the administrator
	// (group admins) of this dev run: the console at /admin then approves
	// people in --access approval and invites them in --access invite.
	AdminInviteURL string

	simHandler http.Handler
}

// ServeHTTP serves the simulator under /wechat-sim/ and everything else
// with the provider. The simulator stands in for WeChat's servers: its
// requests do not go through the provider's middleware, nor into its
// request log, as WeChat's would not.
func (d *Dev) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, devSimPath+"/") {
		d.simHandler.ServeHTTP(w, r)
		return
	}
	d.Server.ServeHTTP(w, r)
}

// Dev-mode WeChat apps: made-up appids; their secrets are generated per run.
const (
	devAppID    = "wx0d0e0v0000000001"
	devWebAppID = "wx0d0e0v0000000002"
	devMiniID   = "wx0d0e0v0000000003"
	devClientID = "demo"
	devSimPath  = "/wechat-sim"
)

// Options change how dev mode runs; the zero value is plain `wechat-oidc dev`.
type Options struct {
	// Algorithm signs the ID tokens: RS256 (the default) or ES256.
	Algorithm string
	// Store is the provider's store (the caller closes it); nil: a new
	// memory store.
	Store store.Store
	// DemoSecret is the demo client's secret; "": a new one for this run.
	DemoSecret string
	// Bench prepares dev mode for `wechat-oidc bench`: the rate limits are
	// lifted, the simulator has BenchUsers hidden users (simulator.LoadUsers)
	// and lets a loopback request name the approving user in a header
	// (simulator.HeaderApproveAs), so that each sign-in is a different
	// person without the consent page.
	Bench bool
	// Access is access.mode: open (the default), approval or invite, so
	// that a visitor can try each.
	Access string
}

// BenchUsers is how many load-test users the simulator has with Options.Bench.
const BenchUsers = 10000

// New builds dev mode for a listen address host:port.
func New(listen string, logger *slog.Logger) (*Dev, error) {
	return NewWithOptions(listen, logger, Options{})
}

// NewWithOptions builds dev mode for a listen address host:port with o.
func NewWithOptions(listen string, logger *slog.Logger, o Options) (*Dev, error) {
	switch o.Algorithm {
	case "", keys.RS256, keys.ES256:
	default:
		// (EdDSA needs an at_hash of SHA-512, which package oidc does not
		// compute yet.)
		return nil, fmt.Errorf("--alg %q: dev mode signs with RS256 or ES256", o.Algorithm)
	}
	host, port, err := net.SplitHostPort(listen)
	if err != nil || port == "" || port == "0" {
		return nil, fmt.Errorf("--listen %q must be host:port with a fixed port (e.g. 127.0.0.1:8080)", listen)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	base := "http://" + net.JoinHostPort(host, port)
	oaSecret, webSecret, miniSecret := oidc.NewToken(), oidc.NewToken(), oidc.NewToken()
	var users []simulator.User
	if o.Bench {
		users = append(simulator.DefaultUsers(), simulator.LoadUsers(BenchUsers)...)
	}
	sim := simulator.New(simulator.Config{
		Users:         users,
		ApproveHeader: o.Bench,
		Apps: []simulator.App{
			{ID: devAppID, Secret: oaSecret, Kind: simulator.OfficialAccount, Bound: true, Name: "wechat-oidc 演示服务号"},
			{ID: devWebAppID, Secret: webSecret, Kind: simulator.WebsiteApp, Bound: true, Name: "wechat-oidc 演示网站应用"},
			{ID: devMiniID, Secret: miniSecret, Kind: simulator.MiniProgram, Bound: true, Name: "wechat-oidc 演示小程序"},
		},
		CallbackHosts: []string{net.JoinHostPort(host, port)},
		AllowPort:     true, // real WeChat refuses ports (10003); dev runs on one
	})
	clientSecret := o.DemoSecret
	if clientSecret == "" {
		clientSecret = oidc.NewToken()
	}
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
		// A throwaway directory; dev mode admits anyone unless --access
		// says otherwise (approval, invite: to try them).
		Directory: config.DirectoryConfig{Type: "sqlite", Path: ":memory:"},
		Access:    config.AccessConfig{Mode: cmp.Or(o.Access, config.AccessOpen)},
		Keys:      config.KeysConfig{Dir: "(ephemeral)"},
	}
	if o.Bench {
		// A load test signs in hundreds of times a second from one address
		// with one client: far above what the limits let one office do.
		unlimited := config.RateConfig{Rate: 1e9, Burst: 1e9}
		file.Limits = config.LimitsConfig{TokenPerClient: unlimited, AuthorizePerIP: unlimited,
			TokenAuthFailures: unlimited, LogoutPerIP: unlimited}
		file.Login = config.LoginConfig{MaxPendingPerIP: 1 << 30, MaxPending: 1 << 30}
	}
	opt, err := file.Resolve()
	if err != nil {
		return nil, fmt.Errorf("dev config: %w", err)
	}
	alg := o.Algorithm
	if alg == "" {
		alg = keys.RS256
	}
	ks, err := keys.NewEphemeralAlgorithm(alg)
	if err != nil {
		return nil, err
	}
	st := o.Store
	if st == nil {
		st = store.NewMemory(store.WithMaxEntries(opt.Store.MemoryMaxEntries))
	}
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
	demo := newDemoRP(base, devClientID, clientSecret, logger)
	demo.mount(e)
	_, adminToken, err := dir.Invitations().Create(context.Background(), directory.NewInvitation{
		Username: "admin", DisplayName: "Dev admin", Groups: []string{opt.Access.AdminGroup}, CreatedBy: "dev"})
	if err != nil {
		return nil, fmt.Errorf("dev admin invitation: %w", err)
	}
	return &Dev{
		AdminInviteURL: base + bridge.PathInvite + adminToken,
		Server:         srv,
		BaseURL:        base,
		SimulatorURL:   base + devSimPath,
		ClientID:       devClientID,
		Simulator:      sim,
		simHandler:     http.StripPrefix(devSimPath, sim),
	}, nil
}
