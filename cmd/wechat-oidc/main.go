// Command wechat-oidc is an OpenID Provider that signs people in with WeChat.
//
//	wechat-oidc serve --config FILE   run the provider
//	wechat-oidc check-config --config FILE [--strict]
//	                                  validate a configuration without starting
//	wechat-oidc dev [--listen ADDR] [--issuer URL | --lan]
//	                                  run the provider, a WeChat simulator and a demo app
//	wechat-oidc simulator --app ...   a simulated WeChat for demos (deploy/compose)
//	wechat-oidc people ...            manage the people directory (package peoplecli)
//	wechat-oidc audit ...             read the audit trail
//	wechat-oidc keys list|rotate|rekey --config FILE
//	wechat-oidc bench [flags]         load-test a running provider (docs/performance.md)
//	wechat-oidc version               print the version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/wechat-oidc/wechat-oidc/peoplecli"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `wechat-oidc: an OpenID Provider that signs people in with WeChat

Usage:
  wechat-oidc serve --config FILE   run the provider with a configuration file
  wechat-oidc check-config --config FILE [--strict]
                                    validate a configuration as serve would, without starting
                                    anything; print what it runs and its warnings (exit 0: valid,
                                    1: errors, or warnings with --strict)
  wechat-oidc dev [--listen ADDR] [--issuer URL | --lan] [--organization NAME] [--logo FILE]
                                    run everything locally: provider, WeChat simulator, demo app
                                    (default 127.0.0.1:8080; open http://127.0.0.1:8080/). To try it
                                    on a phone on the same network: --lan (this machine's LAN address,
                                    listening on 0.0.0.0) or --issuer http://192.168.1.10:8080;
                                    --access approval|invite to try them; wechat-oidc dev -h for
                                    --bench, --alg, --store, --pprof
  wechat-oidc bench [--issuer URL]  sign in again and again against a running dev --bench and
                                    report sign-ins/s, latency and errors (docs/performance.md)
  wechat-oidc simulator --app KIND:APPID:SECRET_VAR [--callback-host HOST] [--listen ADDR]
                                    a simulated WeChat (pages and API) for serve's wechat.open_base_url
                                    and api_base_url: demos and staging without a WeChat account
                                    (deploy/compose); anyone can sign in, never for real users
  wechat-oidc keys list --config FILE
                                    list the signing keys: kid, algorithm, state, dates
  wechat-oidc keys rotate --config FILE
                                    add the next signing key of each algorithm (published
                                    now, signing after keys.publish_before_use); "keys add"
                                    is the same command
  wechat-oidc keys rekey --config FILE --old-key-env VAR
                                    seal the keys in the shared store again under FILE's
                                    keys.encryption_key, from the old one in $VAR
  wechat-oidc people COMMAND --config FILE
                                    manage people: list, show, add, invite, approve, deny, disable,
                                    enable, remove, groups, import, export (wechat-oidc people help)
  wechat-oidc audit --config FILE [--person --action --since --ref --json]
                                    read the audit trail
  wechat-oidc healthcheck [--url URL]
                                    probe a running server (exit 0 when it answers 200; for probes
                                    and Docker HEALTHCHECK in images without a shell)
  wechat-oidc version               print the version
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch args[0] {
	case "serve":
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(stderr)
		configPath := fs.String("config", "", "path to the YAML configuration file")
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		if *configPath == "" {
			fmt.Fprintln(stderr, "serve: --config FILE is required (see config.example.yaml)")
			return 2
		}
		if err := serve(ctx, *configPath, stderr); err != nil {
			fmt.Fprintln(stderr, "wechat-oidc:", err)
			return 1
		}
		return 0
	case "check-config":
		return checkConfig(args[1:], stdout, stderr)
	case "dev":
		return devCommand(ctx, args[1:], stdout, stderr)
	case "bench":
		return benchCommand(ctx, args[1:], stdout, stderr)
	case "simulator":
		return runSimulator(ctx, args[1:], stdout, stderr)
	case "keys":
		return runKeys(ctx, args[1:], stdout, stderr)
	case "people":
		return peoplecli.Run(ctx, args[1:], stdout, stderr)
	case "audit":
		return peoplecli.RunAudit(ctx, args[1:], stdout, stderr)
	case "healthcheck":
		return healthcheck(args[1:], stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "wechat-oidc", version)
		return 0
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "unknown command %q\n\n%s", args[0], usage)
		return 2
	}
}

func newLogger(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	_ = lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// listenAndServe runs an HTTP server with timeouts until ctx ends, then shuts
// down gracefully within 10s.
func listenAndServe(ctx context.Context, addr string, h http.Handler, logger *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	return serveUntilDone(ctx, ln, h, logger, drain{timeout: 10 * time.Second})
}

// drain says how serveUntilDone stops: first tell (fail readiness), wait
// delay while still serving, then stop accepting and give in-flight
// requests up to timeout.
type drain struct {
	tell    func()
	delay   time.Duration
	timeout time.Duration
}

// serveUntilDone serves on ln until ctx ends, then drains as d says.
func serveUntilDone(ctx context.Context, ln net.Listener, h http.Handler, logger *slog.Logger, d drain) error {
	srv := newHTTPServer(h, logger)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Info("listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	if d.tell != nil {
		d.tell()
	}
	if d.delay > 0 {
		logger.Info("draining: readiness fails, still serving", "for", d.delay)
		select {
		case err := <-errc:
			return err
		case <-time.After(d.delay):
		}
	}
	logger.Info("shutting down: no new connections; finishing requests in flight", "within", d.timeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), d.timeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: requests still running after %s: %w", d.timeout, err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func newHTTPServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}
