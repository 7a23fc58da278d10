package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/wechat-oidc/wechat-oidc/loadtest"
)

// benchCommand is `wechat-oidc bench [flags]`.
func benchCommand(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var issuers []string
	fs.Func("issuer", "issuer URL of a running provider (repeat to compare providers; default http://127.0.0.1:8080)", func(s string) error {
		issuers = append(issuers, strings.TrimSuffix(s, "/"))
		return nil
	})
	clientID := fs.String("client-id", "demo", "client id (dev mode's demo client)")
	secret := fs.String("client-secret", "", "client secret (prefer --client-secret-file: a flag shows in ps)")
	secretFile := fs.String("client-secret-file", "", "file holding the client secret (as `wechat-oidc dev --demo-secret-file` writes it)")
	redirect := fs.String("redirect-uri", "", "the client's redirect_uri (default ISSUER/demo/callback)")
	concurrency := fs.Int("concurrency", 8, "sign-ins at once")
	duration := fs.Duration("duration", 10*time.Second, "how long sign-ins are counted, per provider and round")
	warmup := fs.Duration("warmup", 2*time.Second, "warm-up before counting, per provider and round")
	rounds := fs.Int("rounds", 1, "rounds over the providers (interleaved)")
	users := fs.Int("users", 1000, "spread sign-ins over this many load-test users (dev --bench has 10000); 0: no approve header")
	signFor := fs.Duration("sign-for", time.Second, "how long each signing rate is measured, before each round and after the last (0: skip)")
	var pids []int
	fs.Func("pid", "a process whose CPU time the sign-ins cost: the provider, Redis (repeat; Linux)", func(s string) error {
		pid, err := strconv.Atoi(s)
		if err != nil || pid <= 0 {
			return fmt.Errorf("not a process id: %q", s)
		}
		pids = append(pids, pid)
		return nil
	})
	cpuProfile := fs.String("cpuprofile", "", "write this process's CPU profile to FILE (the provider's: dev --pprof)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(stderr, "bench: --cpuprofile:", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(stderr, "bench: --cpuprofile:", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	if len(issuers) == 0 {
		issuers = []string{"http://127.0.0.1:8080"}
	}
	if *secretFile != "" {
		raw, err := os.ReadFile(*secretFile)
		if err != nil {
			fmt.Fprintln(stderr, "bench: --client-secret-file:", err)
			return 2
		}
		*secret = strings.TrimSpace(string(raw))
	}
	plan := loadtest.Plan{
		Config: loadtest.Config{
			ClientID: *clientID, ClientSecret: *secret, RedirectURI: *redirect,
			Concurrency: *concurrency, Duration: *duration, Warmup: *warmup, Users: *users,
			PIDs: pids,
		},
		Issuers: issuers, Rounds: *rounds, SignFor: *signFor,
	}
	rep, err := loadtest.Bench(ctx, plan, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "wechat-oidc bench:", err)
		return 1
	}
	rep.Write(stdout)
	for _, r := range rep.Results {
		if r.ErrorCount() > 0 || r.Logins == 0 {
			return 1
		}
	}
	return 0
}
