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
	"net/url"
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
// /wechat-sim and a demo relying party at /, on one listener. No account,
// no config file, and no request to the real WeChat.
type Dev struct {
	*bridge.Server
	// BaseURL is the issuer: the URL browsers and phones use.
	BaseURL      string
	SimulatorURL string
	ClientID     string
	Simulator    *simulator.Simulator
	// Warnings are what the person starting dev mode must know (an http
	// issuer on a network, a listener other devices cannot reach); New
	// logs them too.
	Warnings []string
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

// Options configure dev mode.
type Options struct {
	// Listen is host:port with a fixed port, e.g. 127.0.0.1:8080.
	Listen string
	// Issuer is the URL browsers and phones use, when it is not the
	// listener's own: http://192.168.1.10:8080 for a phone on the same
	// network, or an https tunnel. scheme://host[:port] only. http is
	// allowed on loopback and on a private-network IP address.
	Issuer string
	// Organization is shown on every page (default DefaultOrganization).
	Organization string
	// Logo is a PNG or JPEG file (ui.logo); "" draws one.
	Logo string
	// Algorithm signs the ID tokens: RS256 (the default), ES256 or EdDSA.
	Algorithm string
	// Store is the provider's store (the caller closes it); nil: a new
	// memory store.
	Store store.Store
	// DemoSecret is the demo client's secret; "": a new one for this run.
	DemoSecret string
	// Bench prepares dev mode for `wechat-oidc bench`: the limits are
	// lifted, the simulator has BenchUsers hidden users (simulator.LoadUsers)
	// and lets a loopback request name the approving user in a header
	// (simulator.HeaderApproveAs), so that each sign-in is a different
	// person without the consent page.
	Bench bool
	// Access is access.mode: open (the default), approval or invite, so
	// that a visitor can try each.
	Access string
	// Directory is where the people directory lives: "" a throwaway
	// in-memory SQLite database; a file path, SQLite in that file; a
	// postgres:// URL, PostgreSQL. With Bench in approval or invite mode
	// the load-test users are imported as active people (about 6 s for the
	// 10,000), and DirectoryNone measures the same sign-in without a
	// directory (benchPeople).
	Directory string
	// BenchPeople is how many of the load-test users (the first ones) are
	// imported or held as active people with Bench in approval or invite
	// mode; 0: all BenchUsers. (Tests import fewer: an import of 10,000
	// takes about 6 s, minutes under the race detector.)
	BenchPeople int
}

// BenchUsers is how many load-test users the simulator has with Options.Bench.
const BenchUsers = 10000

// DefaultOrganization is the organisation dev mode's pages name.
const DefaultOrganization = "示例科技"

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
	return NewWithOptions(Options{Listen: listen}, logger)
}

// NewWithOptions builds dev mode. It listens on nothing: serve the returned
// handler on o.Listen.
func NewWithOptions(o Options, logger *slog.Logger) (*Dev, error) {
	switch o.Algorithm {
	case "", keys.RS256, keys.ES256, keys.EdDSA:
	default:
		return nil, fmt.Errorf("--alg %q: dev mode signs with RS256, ES256 or EdDSA", o.Algorithm)
	}
	if o.Directory == DirectoryNone && !o.Bench {
		return nil, fmt.Errorf("--directory %s is the load command's baseline: only with --bench", DirectoryNone)
	}
	self, base, warnings, err := devAddresses(o)
	if err != nil {
		return nil, err
	}
	oaSecret, webSecret, miniSecret := oidc.NewToken(), oidc.NewToken(), oidc.NewToken()
	sim := devSimulator(o, base, oaSecret, webSecret, miniSecret)
	clientSecret := cmp.Or(o.DemoSecret, oidc.NewToken())
	file := devConfig(base.String(), o, oaSecret, webSecret, miniSecret, clientSecret)
	if o.Bench {
		// A load test signs in hundreds of times a second from one address
		// with one client: far above what the limits let one office do.
		unlimited := config.RateConfig{Rate: 1e9, Burst: 1e9}
		file.Limits = config.LimitsConfig{TokenPerClient: unlimited, AuthorizePerIP: unlimited,
			TokenAuthFailures: unlimited, LogoutPerIP: unlimited}
		file.Login = config.LoginConfig{MaxPendingPerIP: 1 << 30, MaxPending: 1 << 30}
	}
	file.AllowPrivateNetworkHTTP()
	opt, err := file.Resolve()
	if err != nil {
		return nil, fmt.Errorf("dev config: %w", err)
	}
	if opt.UI.LogoDataURL == "" {
		opt.UI.LogoDataURL = drawLogo()
	}
	ks, err := keys.NewEphemeralAlgorithm(cmp.Or(o.Algorithm, keys.RS256))
	if err != nil {
		return nil, err
	}
	st := o.Store
	if st == nil {
		st = store.NewMemory(store.WithMaxEntries(opt.Store.MemoryMaxEntries))
	}
	dir, err := directory.Open(context.Background(), directory.Options{Type: opt.Directory.Type, Path: opt.Directory.Path, URL: opt.Directory.URL})
	if err != nil {
		return nil, fmt.Errorf("dev directory: %w", err)
	}
	var signIns bridge.SignInPeople
	var auditLog bridge.AuditLog
	var profiles wechatconn.ProfileStore = dir.Profiles()
	switch {
	case o.Directory == DirectoryNone:
		bp := newBenchPeople(o.BenchPeople)
		signIns, auditLog, profiles = bp, bp, &benchProfiles{m: map[string]directory.Profile{}}
	case o.Bench && opt.Access.Mode != config.AccessOpen:
		// (In open mode a load-test user becomes a person at their first
		// sign-in, in the bench's warm-up.)
		if _, err := dir.Import(context.Background(), benchRows(o.BenchPeople)); err != nil {
			return nil, fmt.Errorf("dev directory: importing the load-test users: %w", err)
		}
	}
	hc := selfClient(base, self)
	connOpt := wechatconn.FromConfig(opt, profiles, logger, hc)
	conn, err := wechatconn.New(connOpt)
	if err != nil {
		return nil, err
	}
	srv, err := bridge.New(opt, bridge.Deps{Store: st, Directory: dir, SignIns: signIns, Audit: auditLog, Keys: ks, Connector: conn, Logger: logger, DevLinks: true})
	if err != nil {
		return nil, err
	}
	e := srv.Echo()
	demo := newDemoRP(demoConfig{issuer: base.String(), clientID: devClientID, secret: clientSecret, log: logger, http: hc,
		ui: opt.UI, phoneQR: phoneQR(base)})
	demo.mount(e)
	for _, w := range warnings {
		logger.Warn("dev mode: " + w)
	}
	_, adminToken, err := dir.Invitations().Create(context.Background(), directory.NewInvitation{
		Username: "admin", DisplayName: "Dev admin", Groups: []string{opt.Access.AdminGroup}, CreatedBy: "dev"})
	if err != nil {
		return nil, fmt.Errorf("dev admin invitation: %w", err)
	}
	return &Dev{
		Server:         srv,
		BaseURL:        base.String(),
		SimulatorURL:   base.String() + devSimPath,
		ClientID:       devClientID,
		Simulator:      sim,
		Warnings:       warnings,
		AdminInviteURL: base.String() + bridge.PathInvite + adminToken,
		simHandler:     http.StripPrefix(devSimPath, sim),
	}, nil
}

// devConfig is dev mode's configuration, as a file would say it.
func devConfig(base string, o Options, oaSecret, webSecret, miniSecret, clientSecret string) *config.File {
	org := o.Organization
	if org == "" {
		org = DefaultOrganization
	}
	return &config.File{
		Issuer:  base,
		Listen:  o.Listen,
		Subject: config.SubjectUnionID,
		WeChat: config.WeChatConfig{
			// The consent page every time, so that a person trying it out can
			// pick another simulated user (production defaults to silent_first).
			OfficialAccount: &config.WeChatAppConfig{AppID: devAppID, AppSecret: oaSecret, Scope: config.ScopeUserInfo},
			WebsiteApp:      &config.WeChatAppConfig{AppID: devWebAppID, AppSecret: webSecret},
			MiniProgram:     &config.WeChatAppConfig{AppID: devMiniID, AppSecret: miniSecret},
			OpenBaseURL:     base + devSimPath,
			// The connector's calls go through selfClient, to this process.
			APIBaseURL: base + devSimPath,
		},
		Clients: []config.ClientConfig{{
			ID: devClientID, Name: "Demo app", Secret: clientSecret,
			RedirectURIs:           []string{base + "/demo/callback"},
			PostLogoutRedirectURIs: []string{base + "/"},
			MiniProgram:            true,
		}},
		Store: config.StoreConfig{Type: "memory"},
		// A throwaway directory unless --directory names one; dev mode
		// admits anyone unless --access says otherwise (approval, invite:
		// to try them).
		Directory: devDirectory(o.Directory),
		Access:    config.AccessConfig{Mode: cmp.Or(o.Access, config.AccessOpen)},
		Keys:      config.KeysConfig{Dir: "(ephemeral)"},
		UI:        config.UIConfig{Organization: org, Logo: o.Logo},
	}
}

func devDirectory(where string) config.DirectoryConfig {
	switch {
	case strings.HasPrefix(where, "postgres://"), strings.HasPrefix(where, "postgresql://"):
		return config.DirectoryConfig{Type: "postgres", URL: where}
	case where == "" || where == DirectoryNone:
		return config.DirectoryConfig{Type: "sqlite", Path: ":memory:"}
	default:
		return config.DirectoryConfig{Type: "sqlite", Path: where}
	}
}

// devSimulator is dev mode's WeChat: the three dev apps with this run's
// secrets, callbacks allowed to base's host (with its port), and with
// --bench the load-test users and the approve header.
func devSimulator(o Options, base *url.URL, oaSecret, webSecret, miniSecret string) *simulator.Simulator {
	var users []simulator.User
	if o.Bench {
		users = append(simulator.DefaultUsers(), simulator.LoadUsers(BenchUsers)...)
	}
	return simulator.New(simulator.Config{
		Users:         users,
		ApproveHeader: o.Bench,
		Apps: []simulator.App{
			{ID: devAppID, Secret: oaSecret, Kind: simulator.OfficialAccount, Bound: true, Name: "wechat-oidc 演示服务号"},
			{ID: devWebAppID, Secret: webSecret, Kind: simulator.WebsiteApp, Bound: true, Name: "wechat-oidc 演示网站应用"},
			{ID: devMiniID, Secret: miniSecret, Kind: simulator.MiniProgram, Bound: true, Name: "wechat-oidc 演示小程序"},
		},
		CallbackHosts: []string{base.Host},
		AllowPort:     true, // real WeChat refuses ports (10003); dev runs on one
		// A desktop browser may play WeChat's in-app browser (one button on
		// the simulator's "open in WeChat" page).
		DevBrowserSwitch: true,
	})
}

// devAddresses are how this process reaches itself (self: the demo app's
// and the connector's calls) and what browsers use (base: the issuer), with
// the warnings an issuer on a network deserves.
func devAddresses(o Options) (self, base *url.URL, warnings []string, err error) {
	host, port, err := net.SplitHostPort(o.Listen)
	if err != nil || port == "" || port == "0" {
		return nil, nil, nil, fmt.Errorf("--listen %q must be host:port with a fixed port (e.g. 127.0.0.1:8080)", o.Listen)
	}
	listenHost := host
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	self, _ = url.Parse("http://" + net.JoinHostPort(host, port))
	base = self
	if o.Issuer != "" {
		if base, err = parseDevIssuer(o.Issuer); err != nil {
			return nil, nil, nil, err
		}
		warnings = issuerWarnings(base, listenHost)
	}
	return self, base, warnings, nil
}
