package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/wechat-oidc/wechat-oidc/directory"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/wechat-oidc/wechat-oidc/bridge"
	"github.com/wechat-oidc/wechat-oidc/config"
	wechatconn "github.com/wechat-oidc/wechat-oidc/connector/wechat"
	"github.com/wechat-oidc/wechat-oidc/keys"
	"github.com/wechat-oidc/wechat-oidc/metrics"
	"github.com/wechat-oidc/wechat-oidc/store"
)

// serve runs the provider until ctx ends (SIGTERM, SIGINT), then stops
// gracefully: readiness fails, in-flight requests finish, back-channel
// logouts are delivered, and a memory store with a snapshot file is
// written to it.
func serve(ctx context.Context, configPath string, stderr io.Writer) error {
	cfg, err := config.Load(configPath)
	if err != nil {
		return err
	}
	logger := newLogger(stderr, cfg.Log.Level, cfg.Log.Format)
	slog.SetDefault(logger)
	store.SetRedisLogger(logger)
	var m *metrics.Metrics
	if cfg.Metrics.Listen != "" {
		m = metrics.New()
	}
	raw, mem, err := openStore(ctx, cfg.Store, logger)
	if err != nil {
		return err
	}
	defer raw.Close()
	if mem != nil {
		m.GaugeFunc("store_entries", "Live entries in the memory store.", func() float64 { return float64(mem.CountPrefix("")) })
	}
	st := m.Store(raw)
	kr, err := openKeyring(ctx, cfg.Keys, raw, logger)
	if err != nil {
		return err
	}
	runCtx, stopRun := context.WithCancel(context.Background())
	defer stopRun()
	go kr.Run(runCtx)

	dir, err := directory.Open(ctx, directory.Options{Type: cfg.Directory.Type, Path: cfg.Directory.Path, URL: cfg.Directory.URL, Logger: logger})
	if err != nil {
		return fmt.Errorf("directory: %w", err)
	}
	defer dir.Close()
	co := wechatconn.FromConfig(cfg, dir.Profiles(), logger, nil)
	co.ObserveCall = m.WeChatCall
	conn, err := wechatconn.New(co)
	if err != nil {
		return err
	}
	srv, err := bridge.New(cfg, bridge.Deps{Store: st, Directory: dir, Keys: kr, Connector: conn, Logger: logger, Metrics: m})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Listen, err)
	}
	if m != nil {
		mln, err := net.Listen("tcp", cfg.Metrics.Listen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("metrics.listen %s: %w", cfg.Metrics.Listen, err)
		}
		go serveMetrics(runCtx, mln, m, logger)
	}
	go srv.RunPeopleLoops(runCtx)
	logger.Info("wechat-oidc starting", "version", version, "issuer", cfg.Issuer, "listen", cfg.Listen,
		"subject", cfg.Subject, "store", cfg.Store.Type, "clients", len(cfg.Clients), "kid", kr.KeyID(),
		"algorithms", kr.Algorithms(), "metrics", cfg.Metrics.Listen)
	err = serveUntilDone(ctx, ln, srv, logger, drain{tell: srv.Drain, delay: cfg.Shutdown.DrainDelay, timeout: cfg.Shutdown.Timeout})
	// Sessions ended just before shutdown still tell their clients.
	if !srv.WaitBackchannelTimeout(15 * time.Second) {
		logger.Warn("shutdown: some back-channel logout deliveries were still retrying and were dropped")
	}
	if mem != nil && cfg.Store.SnapshotFile != "" {
		n, serr := mem.WriteSnapshot(cfg.Store.SnapshotFile)
		if serr != nil {
			logger.Error("shutdown: the memory store could not be saved: sessions and refresh tokens are lost", "file", cfg.Store.SnapshotFile, "error", serr)
			err = errors.Join(err, serr)
		} else {
			logger.Info("shutdown: memory store saved", "file", cfg.Store.SnapshotFile, "entries", n)
		}
	}
	return err
}

// openStore opens the configured store. For the memory store it also
// returns the store itself (snapshot, gauges), restored from its snapshot
// file if there is one.
func openStore(ctx context.Context, sc config.Store, logger *slog.Logger) (store.Store, *store.Memory, error) {
	switch sc.Type {
	case "redis":
		o := store.RedisOptions{URL: sc.Redis.URL, CAFile: sc.Redis.CAFile, Prefix: sc.Redis.Prefix}
		if s := sc.Redis.Sentinel; s != nil {
			o.Sentinel = &store.RedisSentinel{Master: s.Master, Addrs: s.Addrs, Password: s.Password}
		}
		st, err := store.NewRedis(ctx, o)
		if err != nil {
			return nil, nil, fmt.Errorf("store.redis: %w", err)
		}
		return st, nil, nil
	default:
		// Bounded: a flood of requests gets "temporarily unavailable", never
		// an out-of-memory kill (store.memory.max_entries).
		mem := store.NewMemory(store.WithMaxEntries(sc.MemoryMaxEntries))
		if sc.SnapshotFile != "" {
			restored, expired, err := mem.LoadSnapshot(sc.SnapshotFile)
			if err != nil {
				return nil, nil, fmt.Errorf("store.snapshot_file: %w", err)
			}
			logger.Info("memory store restored from its snapshot", "file", sc.SnapshotFile, "entries", restored, "expired_dropped", expired)
		}
		return mem, mem, nil
	}
}

// keyringOptions are the Keyring's options for the configured keys.
func keyringOptions(k config.Keys, logger *slog.Logger) keys.Options {
	refresh := min(keys.DefaultRefresh, k.PublishBeforeUse/2)
	return keys.Options{
		Algorithms:        k.Algorithms,
		PublishBeforeUse:  k.PublishBeforeUse,
		RotateEvery:       k.RotateEvery,
		RetainAfterRetire: k.RetainAfterRetire,
		Refresh:           refresh,
		Logger:            logger,
	}
}

// keySource is where the configured keys live: the key directory, or the
// shared store (sealed with the encryption key).
func keySource(k config.Keys, st store.Store) (keys.Source, error) {
	if !k.Shared {
		return keys.NewDirSource(k.Dir)
	}
	return keys.NewStoreSource(st, k.EncryptionKey, "")
}

func openKeyring(ctx context.Context, k config.Keys, st store.Store, logger *slog.Logger) (*keys.Keyring, error) {
	src, err := keySource(k, st)
	if err != nil {
		return nil, err
	}
	return keys.NewKeyring(ctx, src, keyringOptions(k, logger))
}

// serveMetrics serves GET /metrics on ln until ctx ends.
func serveMetrics(ctx context.Context, ln net.Listener, m *metrics.Metrics, logger *slog.Logger) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	srv := newHTTPServer(mux, logger)
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	logger.Info("metrics listening", "addr", ln.Addr().String())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Error("metrics listener failed", "error", err)
	}
}
