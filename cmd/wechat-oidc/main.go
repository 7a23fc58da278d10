// Command wechat-oidc is an OpenID Provider that signs people in with WeChat.
//
//	wechat-oidc serve --config FILE   run the provider
//	wechat-oidc dev [--listen ADDR]   run the provider, a WeChat simulator and a demo app
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

	"github.com/wechat-oidc/wechat-oidc/bridge"
	"github.com/wechat-oidc/wechat-oidc/config"
	wechatconn "github.com/wechat-oidc/wechat-oidc/connector/wechat"
	"github.com/wechat-oidc/wechat-oidc/keys"
	"github.com/wechat-oidc/wechat-oidc/store"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `wechat-oidc: an OpenID Provider that signs people in with WeChat

Usage:
  wechat-oidc serve --config FILE   run the provider with a configuration file
  wechat-oidc dev [--listen ADDR]   run everything locally: provider, WeChat simulator, demo app
                                    (default 127.0.0.1:8080; open http://127.0.0.1:8080/;
                                    wechat-oidc dev -h for --bench, --alg, --store, --pprof)
  wechat-oidc bench [--issuer URL]  sign in again and again against a running dev --bench and
                                    report sign-ins/s, latency and errors (docs/performance.md)
  wechat-oidc keys add --config FILE
                                    add a signing key to keys.dir (rotation; see README)
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
	case "dev":
		return devCommand(ctx, args[1:], stdout, stderr)
	case "bench":
		return benchCommand(ctx, args[1:], stdout, stderr)
	case "keys":
		if len(args) < 2 || args[1] != "add" {
			fmt.Fprintln(stderr, "keys: the subcommand is add: wechat-oidc keys add --config FILE")
			return 2
		}
		fs := flag.NewFlagSet("keys add", flag.ContinueOnError)
		fs.SetOutput(stderr)
		configPath := fs.String("config", "", "path to the YAML configuration file")
		if err := fs.Parse(args[2:]); err != nil {
			return 2
		}
		if *configPath == "" {
			fmt.Fprintln(stderr, "keys add: --config FILE is required")
			return 2
		}
		cfg, err := config.Load(*configPath)
		if err != nil {
			fmt.Fprintln(stderr, "wechat-oidc:", err)
			return 1
		}
		kid, file, err := keys.AddKey(cfg.Keys.Dir)
		if err != nil {
			fmt.Fprintln(stderr, "wechat-oidc keys add:", err)
			return 1
		}
		fmt.Fprintf(stdout, "added signing key %s (%s)\n"+
			"Restart every replica: each publishes the new key at once and signs with it %s after its creation\n"+
			"(keys.publish_before_use). Delete the old key file once the new key has signed for longer than\n"+
			"tokens.id_token_ttl, then restart again.\n", kid, file, cfg.Keys.PublishBeforeUse)
		return 0
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

func serve(ctx context.Context, configPath string, stderr io.Writer) error {
	cfg, err := config.Load(configPath)
	if err != nil {
		return err
	}
	logger := newLogger(stderr, cfg.Log.Level, cfg.Log.Format)
	slog.SetDefault(logger)
	ks, err := keys.LoadOrCreate(cfg.Keys.Dir)
	if err != nil {
		return fmt.Errorf("keys.dir %s: %w", cfg.Keys.Dir, err)
	}
	ks.Staged(cfg.Keys.PublishBeforeUse, nil)
	st, err := openStore(ctx, cfg.Store)
	if err != nil {
		return err
	}
	defer st.Close()
	conn, err := wechatconn.New(wechatconn.FromConfig(cfg, st, logger, nil))
	if err != nil {
		return err
	}
	srv, err := bridge.New(cfg, bridge.Deps{Store: st, Keys: ks, Connector: conn, Logger: logger})
	if err != nil {
		return err
	}
	logger.Info("wechat-oidc starting", "version", version, "issuer", cfg.Issuer, "listen", cfg.Listen,
		"subject", cfg.Subject, "store", cfg.Store.Type, "clients", len(cfg.Clients), "kid", ks.KeyID())
	err = listenAndServe(ctx, cfg.Listen, srv, logger)
	// Sessions ended just before shutdown still tell their clients.
	if !srv.WaitBackchannelTimeout(15 * time.Second) {
		logger.Warn("shutdown: some back-channel logout deliveries were still retrying and were dropped")
	}
	return err
}

func openStore(ctx context.Context, sc config.Store) (store.Store, error) {
	switch sc.Type {
	case "redis":
		st, err := store.NewRedis(ctx, store.RedisOptions{
			Addr: sc.Redis.Addr, Username: sc.Redis.Username, Password: sc.Redis.Password,
			DB: sc.Redis.DB, Prefix: sc.Redis.Prefix,
		})
		if err != nil {
			return nil, fmt.Errorf("store.redis: %w", err)
		}
		return st, nil
	default:
		return store.NewMemory(), nil
	}
}

// listenAndServe runs an HTTP server with timeouts until ctx ends, then shuts
// down gracefully.
func listenAndServe(ctx context.Context, addr string, h http.Handler, logger *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Info("listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
