package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wechat-oidc/wechat-oidc/dev"
	"github.com/wechat-oidc/wechat-oidc/oidc"
	"github.com/wechat-oidc/wechat-oidc/store"
)

// devCommand is `wechat-oidc dev [flags]`.
func devCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o dev.Options
	fs.StringVar(&o.Listen, "listen", "", "address to listen on (default 127.0.0.1:8080; 0.0.0.0:8080 with --issuer or --lan)")
	fs.StringVar(&o.Issuer, "issuer", "", "the URL browsers and phones use, e.g. http://192.168.1.10:8080 (default: the listen address)")
	lan := fs.Bool("lan", false, "use this machine's private-network address as the issuer, so that a phone on the same network can try it")
	fs.StringVar(&o.Organization, "organization", "", "the organisation's name on every page (default "+dev.DefaultOrganization+")")
	fs.StringVar(&o.Logo, "logo", "", "a PNG or JPEG logo file (at most 64 KiB) for every page")
	fs.StringVar(&o.Algorithm, "alg", "RS256", "ID token signing algorithm: RS256, ES256 or EdDSA")
	storeURL := fs.String("store", "", "store: empty for memory, or redis://[user:password@]host:port[/db] (keys get a per-run prefix)")
	secretFile := fs.String("demo-secret-file", "", "read the demo client's secret from FILE, or write a new one there (0600) if FILE does not exist")
	bench := fs.Bool("bench", false, "prepare for `wechat-oidc bench`: no rate limits, load-test users, the simulator's approve header (loopback only)")
	pprofAddr := fs.String("pprof", "", "serve net/http/pprof on this loopback address (e.g. 127.0.0.1:6060)")
	quiet := fs.Bool("quiet", false, "log warnings and errors only")
	fs.StringVar(&o.Access, "access", "open", "who may sign in: open (anyone), approval (a new person waits for an administrator) or invite")
	fs.StringVar(&o.Directory, "directory", "", "the people directory: empty for a throwaway in-memory one, sqlite for a file in a temporary directory, FILE.db, or a postgres:// URL; with --bench, none measures the sign-in without a directory")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if err := devOptions(&o, *lan); err != nil {
		fmt.Fprintln(stderr, "wechat-oidc dev:", err)
		return 2
	}
	o.Bench = *bench
	if err := runDev(ctx, o, devFlags{*storeURL, *secretFile, *pprofAddr, *quiet}, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "wechat-oidc dev:", err)
		return 1
	}
	return 0
}

type devFlags struct {
	store, secretFile, pprof string
	quiet                    bool
}

func runDev(ctx context.Context, o dev.Options, f devFlags, stdout, stderr io.Writer) error {
	level := "info"
	if f.quiet {
		level = "warn"
	}
	logger := newLogger(stderr, level, "text")
	slog.SetDefault(logger)
	secretNote := "secret generated for this run"
	if f.secretFile != "" {
		secret, err := demoSecret(f.secretFile)
		if err != nil {
			return err
		}
		o.DemoSecret = secret
		secretNote = "secret in " + f.secretFile
	}
	if f.store != "" {
		st, err := openDevStore(ctx, f.store)
		if err != nil {
			return err
		}
		defer st.Close()
		o.Store = st
	}
	if f.pprof != "" {
		stopProfiling, err := servePprof(f.pprof, logger)
		if err != nil {
			return err
		}
		defer stopProfiling()
	}
	if o.Directory == "sqlite" {
		tmp, err := os.MkdirTemp("", "wechat-oidc-dev-")
		if err != nil {
			return fmt.Errorf("--directory sqlite: %w", err)
		}
		defer os.RemoveAll(tmp)
		o.Directory = filepath.Join(tmp, "directory.db")
	}
	d, err := dev.NewWithOptions(o, logger)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\n  wechat-oidc dev mode: open %s/ in a browser\n\n  issuer:          %s\n  WeChat simulator: %s\n  demo client:      id %q (%s)\n  become the admin: %s (then %s/admin)\n\n",
		d.BaseURL, d.BaseURL, d.SimulatorURL, d.ClientID, secretNote, d.AdminInviteURL, d.BaseURL)
	if qr := d.PhoneQRText(); qr != "" {
		fmt.Fprintf(stdout, "  On a phone on the same network, scan this with WeChat:\n\n%s\n", qr)
	}
	for _, w := range d.Warnings {
		fmt.Fprintf(stdout, "  WARNING: %s\n\n", w)
	}
	return listenAndServe(ctx, o.Listen, d, logger)
}

// demoSecret reads the demo client's secret from path, or makes one and
// writes it there, readable by the owner only, when path does not exist.
func demoSecret(path string) (string, error) {
	raw, err := os.ReadFile(path)
	if err == nil {
		secret := strings.TrimSpace(string(raw))
		if len(secret) < 16 {
			return "", fmt.Errorf("--demo-secret-file %s holds no secret of at least 16 characters: delete it to have one made", path)
		}
		return secret, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("--demo-secret-file: %w", err)
	}
	secret := oidc.NewToken()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("--demo-secret-file: %w", err)
	}
	if _, err := f.WriteString(secret + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("--demo-secret-file: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("--demo-secret-file: %w", err)
	}
	return secret, nil
}

// openDevStore opens the Redis store of --store, under a prefix of its own
// for this run, so that runs never see each other's sessions and indexes.
func openDevStore(ctx context.Context, raw string) (store.Store, error) {
	if !strings.HasPrefix(raw, "redis://") {
		return nil, fmt.Errorf("--store %q: give redis://host:port[/db], or nothing for the memory store", raw)
	}
	if _, err := redis.ParseURL(raw); err != nil {
		// go-redis's message may quote the URL with its password: not ours.
		return nil, errors.New("--store: not a valid redis:// URL: redis://[user:password@]host:port[/db]")
	}
	st, err := store.NewRedis(ctx, store.RedisOptions{
		URL:    raw,
		Prefix: "wechat-oidc-dev:" + oidc.NewToken()[:8] + ":",
	})
	if err != nil {
		return nil, fmt.Errorf("--store: %w", err)
	}
	return st, nil
}

// servePprof serves the runtime profiles on addr, which must be a loopback
// address: profiles show the program's memory.
func servePprof(addr string, logger *slog.Logger) (stop func(), err error) {
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("--pprof %q must be a loopback address such as 127.0.0.1:6060", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--pprof: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Warn("pprof listener stopped", "error", err)
		}
	}()
	logger.Info("pprof listening", "addr", ln.Addr().String())
	return func() { srv.Close() }, nil
}

// devOptions fills in dev mode's defaults: with --issuer or --lan it
// listens on every interface (a phone must reach it), else on loopback.
func devOptions(o *dev.Options, lan bool) error {
	if lan && o.Issuer != "" {
		return errors.New("use --lan or --issuer, not both")
	}
	if o.Listen == "" {
		o.Listen = "127.0.0.1:8080"
		if lan || o.Issuer != "" {
			o.Listen = "0.0.0.0:8080"
		}
	}
	if lan {
		_, port, err := net.SplitHostPort(o.Listen)
		if err != nil {
			return fmt.Errorf("--listen %q must be host:port", o.Listen)
		}
		if o.Issuer, err = dev.LANIssuer(port); err != nil {
			return err
		}
	}
	return nil
}
