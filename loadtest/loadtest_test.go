package loadtest

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wechat-oidc/wechat-oidc/dev"
)

const testSecret = "bench-test-secret-0123456789abcdef"

// startDev runs `wechat-oidc dev --bench` in this process on a loopback
// port and returns its issuer.
func startDev(t *testing.T, alg string) string {
	t.Helper()
	return startDevWith(t, dev.Options{Algorithm: alg})
}

// startDevWith starts dev mode with --bench and o's other options.
func startDevWith(t *testing.T, o dev.Options) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o.Listen, o.Bench, o.DemoSecret = ln.Addr().String(), true, testSecret
	d, err := dev.NewWithOptions(o, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: d, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return d.BaseURL
}

// TestRunSignsInWithoutErrors runs the load command's core for a moment
// against dev mode: sign-ins complete, none fails, and the numbers it
// reports are consistent.
func TestRunSignsInWithoutErrors(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256"} {
		t.Run(alg, func(t *testing.T) {
			issuer := startDev(t, alg)
			res, err := Run(context.Background(), Config{
				Issuer: issuer, ClientID: "demo", ClientSecret: testSecret,
				Concurrency: 3, Duration: 700 * time.Millisecond, Warmup: 200 * time.Millisecond, Users: 20,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Logins == 0 {
				t.Fatal("no sign-in completed")
			}
			if res.ErrorCount() != 0 || res.WarmupErrors != 0 {
				t.Fatalf("errors: %v (warm-up %d), e.g. %v", res.Errors, res.WarmupErrors, res.Details)
			}
			if res.Algorithm != alg {
				t.Fatalf("ID tokens signed with %q, want %s", res.Algorithm, alg)
			}
			l := res.Latency()
			if l.N != res.Logins || l.P50 <= 0 || l.P50 > l.P90 || l.P90 > l.P99 || l.P99 > l.Max {
				t.Fatalf("percentiles out of order or miscounted: %+v for %d sign-ins", l, res.Logins)
			}
			steps := res.Steps()
			var names []string
			for _, s := range steps {
				names = append(names, s.Step)
				if s.N != res.Logins {
					t.Errorf("step %s has %d samples for %d sign-ins", s.Step, s.N, res.Logins)
				}
			}
			if want := "/authorize /wechat-sim/connect/oauth2/authorize /wechat/callback token verify ID token userinfo"; strings.Join(names, " ") != want {
				t.Fatalf("steps %q, want %q", strings.Join(names, " "), want)
			}
			// Five HTTP requests per sign-in (the sixth step is local).
			if q := res.Requests(); q.N != 5*res.Logins || q.P50 <= 0 || q.P50 > q.P99 || q.P99 > q.Max || q.Max > l.Max {
				t.Fatalf("request percentiles %+v for %d sign-ins (whole sign-in max %v)", q, res.Logins, l.Max)
			}
			if got := res.PerSecond(); got != float64(res.Logins)/0.7 {
				t.Fatalf("PerSecond = %v for %d sign-ins in 0.7s", got, res.Logins)
			}
		})
	}
}

// TestRunAgainstEachDirectory: in approval mode the load-test users are
// active people (imported into a SQLite file, or held by the baseline
// without a directory), so every sign-in is admitted.
func TestRunAgainstEachDirectory(t *testing.T) {
	for name, where := range map[string]string{"none": dev.DirectoryNone, "sqlite": filepath.Join(t.TempDir(), "directory.db")} {
		t.Run(name, func(t *testing.T) {
			issuer := startDevWith(t, dev.Options{Access: "approval", Directory: where, BenchPeople: 20})
			res, err := Run(context.Background(), Config{
				Issuer: issuer, ClientID: "demo", ClientSecret: testSecret,
				Concurrency: 2, Duration: time.Second, Warmup: 100 * time.Millisecond, Users: 20,
			})
			if err != nil {
				t.Fatal(err)
			}
			if res.Logins == 0 || res.ErrorCount() != 0 || res.WarmupErrors != 0 {
				t.Fatalf("logins %d, errors %v (warm-up %d), e.g. %v", res.Logins, res.Errors, res.WarmupErrors, res.Details)
			}
		})
	}
}

// The baseline without a directory exists only for the load command.
func TestDirectoryNoneOnlyWithBench(t *testing.T) {
	_, err := dev.NewWithOptions(dev.Options{Listen: "127.0.0.1:1", Directory: dev.DirectoryNone},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err == nil || !strings.Contains(err.Error(), "only with --bench") {
		t.Fatalf("dev --directory none without --bench: %v, want a refusal naming --bench", err)
	}
}

// TestRunCountsErrorsByKind: a wrong client secret fails every sign-in at
// the token endpoint, counted under one kind.
func TestRunCountsErrorsByKind(t *testing.T) {
	issuer := startDev(t, "")
	res, err := Run(context.Background(), Config{
		Issuer: issuer, ClientID: "demo", ClientSecret: "not-the-secret-0123456789",
		// Long enough for a first failure on a loaded machine under -race
		// (300 ms once counted none).
		Concurrency: 2, Duration: 2 * time.Second, Warmup: 50 * time.Millisecond, Users: 5,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Logins != 0 || len(res.Errors) != 1 || res.Errors["token: status 401 error=invalid_client"] == 0 {
		t.Fatalf("logins %d, errors %v", res.Logins, res.Errors)
	}
	var out bytes.Buffer
	(&Report{Results: []*Result{res}}).Write(&out)
	if !strings.Contains(out.String(), "token: status 401 error=invalid_client") {
		t.Fatalf("report lacks the error kind:\n%s", out.String())
	}
}

// TestRunWithoutApproveHeaderNamesTheFix: without --users the simulator
// shows its consent page, and the error says how to start the provider.
func TestRunWithoutApproveHeaderNamesTheFix(t *testing.T) {
	issuer := startDev(t, "")
	res, err := Run(context.Background(), Config{
		Issuer: issuer, ClientID: "demo", ClientSecret: testSecret,
		Concurrency: 1, Duration: 100 * time.Millisecond, Warmup: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	for kind := range res.Errors {
		if !strings.Contains(kind, "dev --bench") {
			t.Errorf("error kind %q does not say how to start the provider", kind)
		}
	}
	if res.ErrorCount() == 0 || res.Logins != 0 {
		t.Fatalf("logins %d, errors %v", res.Logins, res.Errors)
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	for name, c := range map[string]Config{
		"no issuer":       {ClientID: "demo", ClientSecret: "x"},
		"no secret":       {Issuer: "http://127.0.0.1:1", ClientID: "demo"},
		"bad concurrency": {Issuer: "http://127.0.0.1:1", ClientID: "demo", ClientSecret: "x", Concurrency: -1},
		"nobody there":    {Issuer: "http://127.0.0.1:1", ClientID: "demo", ClientSecret: "x"},
	} {
		if _, err := Run(context.Background(), c); err == nil {
			t.Errorf("%s: Run started", name)
		}
	}
}

func TestPercentilesNearestRank(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- { // unsorted on purpose
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	p := percentiles(d)
	if p.N != 100 || p.P50 != 50*time.Millisecond || p.P90 != 90*time.Millisecond || p.P99 != 99*time.Millisecond || p.Max != 100*time.Millisecond {
		t.Fatalf("percentiles of 1..100ms: %+v", p)
	}
	if one := percentiles([]time.Duration{7}); one.P50 != 7 || one.P99 != 7 || one.Max != 7 {
		t.Fatalf("percentiles of one value: %+v", one)
	}
	if none := percentiles(nil); none != (Percentiles{}) {
		t.Fatalf("percentiles of nothing: %+v", none)
	}
}

func TestSigningRates(t *testing.T) {
	r, err := SigningRates(context.Background(), 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if r.CPUs < 1 || r.RS256 <= 0 || r.ES256 <= 0 {
		t.Fatalf("rates: %+v", r)
	}
}

// TestBenchComparesIssuers runs a Plan over two providers and checks the
// report names both, with a ratio.
func TestBenchComparesIssuers(t *testing.T) {
	a, b := startDev(t, "RS256"), startDev(t, "ES256")
	var progress, out bytes.Buffer
	rep, err := Bench(context.Background(), Plan{
		Config:  Config{ClientID: "demo", ClientSecret: testSecret, Concurrency: 2, Duration: 300 * time.Millisecond, Warmup: 50 * time.Millisecond, Users: 10},
		Issuers: []string{a, b}, Rounds: 2, SignFor: 50 * time.Millisecond,
	}, &progress)
	if err != nil {
		t.Fatal(err)
	}
	rep.Write(&out)
	if len(rep.Results) != 2 || rep.Results[0].Algorithm != "RS256" || rep.Results[1].Algorithm != "ES256" {
		t.Fatalf("results: %+v", rep.Results)
	}
	for _, r := range rep.Results {
		if r.Logins == 0 || r.ErrorCount() != 0 || len(r.Rounds) != 2 || r.Window != 600*time.Millisecond {
			t.Fatalf("%s: %d sign-ins, errors %v, rounds %v, window %s", r.Issuer, r.Logins, r.Errors, r.Rounds, r.Window)
		}
		if rep.Ratio(r) <= 0 {
			t.Fatalf("%s: no ratio", r.Issuer)
		}
	}
	for _, want := range []string{a + " (ID tokens RS256)", b + " (ID tokens ES256)", "vs first", "ratio", "signing on"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}
