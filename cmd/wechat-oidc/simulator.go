package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/wechat-oidc/wechat-oidc/wechat/simulator"
)

// simulatorKinds are the app kinds --app accepts, named as in the config.
var simulatorKinds = map[string]simulator.AppKind{
	"official_account": simulator.OfficialAccount,
	"website_app":      simulator.WebsiteApp,
	"mini_program":     simulator.MiniProgram,
}

// appFlags collects --app KIND:APPID:SECRET_VAR.
type appFlags []string

func (a *appFlags) String() string     { return strings.Join(*a, ",") }
func (a *appFlags) Set(v string) error { *a = append(*a, v); return nil }

// runSimulator is `wechat-oidc simulator`: WeChat's OAuth pages and APIs,
// simulated (package wechat/simulator), on a listener of their own, so that
// `serve` with its real configuration (Redis, PostgreSQL, clients) can be
// tried without a WeChat account: point wechat.open_base_url (the browser's
// way) and wechat.api_base_url (the server's way) at it. Anyone can sign
// in as any simulated person: never in front of real users.
func runSimulator(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("simulator", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8081", "address to listen on")
	var apps, hosts appFlags
	fs.Var(&apps, "app", "a simulated app, KIND:APPID:SECRET_VAR (KIND official_account, website_app or mini_program; "+
		"the app secret is read from the environment variable SECRET_VAR); repeat for several")
	fs.Var(&hosts, "callback-host", "a host (host or host:port) redirect_uri may point at, like WeChat's 网页授权域名; repeat for several; none: any")
	allowPort := fs.Bool("allow-port", false, "accept a redirect_uri with a port (real WeChat refuses it with 10003)")
	browserSwitch := fs.Bool("dev-browser-switch", false, "the \"open in WeChat\" page that the Official Account page shows outside WeChat's browser "+
		"offers a button to count this browser as WeChat's, so that a desktop can play the phone")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if len(apps) == 0 || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "simulator: usage: wechat-oidc simulator --app KIND:APPID:SECRET_VAR [--app ...] [--callback-host HOST] [--listen ADDR] [--allow-port] [--dev-browser-switch]")
		return 2
	}
	cfg := simulator.Config{CallbackHosts: hosts, AllowPort: *allowPort, DevBrowserSwitch: *browserSwitch}
	for _, a := range apps {
		app, code, err := simulatorApp(a, os.LookupEnv)
		if err != nil {
			fmt.Fprintln(stderr, "simulator:", err)
			return code
		}
		cfg.Apps = append(cfg.Apps, app)
	}
	logger := newLogger(stderr, "info", "text")
	logger.Warn("simulated WeChat: anyone can sign in as any simulated person; for demos and tests only, never in front of real users")
	var names []string
	for _, a := range cfg.Apps {
		names = append(names, a.Name)
	}
	fmt.Fprintf(stdout, "WeChat simulator on %s: %s; redirect_uri hosts: %s\n", *listen, strings.Join(names, ", "), orAny(hosts))
	if err := listenAndServe(ctx, *listen, simulator.New(cfg), logger); err != nil {
		fmt.Fprintln(stderr, "wechat-oidc simulator:", err)
		return 1
	}
	return 0
}

// simulatorApp reads one --app value; the int is the exit code of an error
// (2: the flag is malformed, 1: its secret variable is not set).
func simulatorApp(v string, lookup func(string) (string, bool)) (simulator.App, int, error) {
	parts := strings.Split(v, ":")
	if len(parts) != 3 || parts[1] == "" || parts[2] == "" {
		return simulator.App{}, 2, fmt.Errorf("--app %q: write KIND:APPID:SECRET_VAR, e.g. official_account:wx0123456789abcdef:WECHAT_OA_SECRET", v)
	}
	kind, ok := simulatorKinds[parts[0]]
	if !ok {
		return simulator.App{}, 2, fmt.Errorf("--app %q: the kind %q is not official_account, website_app or mini_program", v, parts[0])
	}
	secret, ok := lookup(parts[2])
	if !ok || secret == "" {
		return simulator.App{}, 1, fmt.Errorf("--app %s: environment variable %s is not set: export the app secret the bridge's config uses for %s", parts[1], parts[2], parts[1])
	}
	// Bound to an Open Platform account: the apps share unionids, as the
	// bridge's default subject (unionid) needs.
	return simulator.App{ID: parts[1], Secret: secret, Kind: kind, Bound: true, Name: parts[0] + " " + parts[1] + " (simulated)"}, 0, nil
}

func orAny(hosts []string) string {
	if len(hosts) == 0 {
		return "any"
	}
	return strings.Join(hosts, ", ")
}
