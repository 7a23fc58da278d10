//go:build unix

package directory_test

import (
	"context"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wechat-oidc/wechat-oidc/directory"
)

// BenchmarkSignInPathConcurrent is all the directory work of one sign-in of
// a known, active person, as the login core does it under load: the lookup
// (FindByIdentity), the sign-in record with its audit row (SignedIn, group
// committed), and the account check of the token's first use (Get), from 8
// goroutines at once among 1000 people. Besides the wall time per sign-in
// it reports this process's CPU time per sign-in (user + system; for
// PostgreSQL the server's own CPU is not in it): the directory's share of a
// sign-in's CPU, without the load command's noise.
//
//	go test -run '^$' -bench SignInPathConcurrent -benchtime 5000x ./directory/
func BenchmarkSignInPathConcurrent(b *testing.B) {
	onBothDatabases(b, benchmarkSignInPath)
}

func benchmarkSignInPath(b *testing.B, opts directory.Options) {
	ctx := context.Background()
	d, err := directory.Open(ctx, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	const people = 1000
	ids, _ := benchPeople(b, d, people)
	var next atomic.Int64
	b.SetParallelism(4) // 8 goroutines on 2 cores, as the load command's 8 sign-ins
	cpu0 := cpuTime(b)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := ids[next.Add(1)%people]
			p, err := d.People().FindByIdentity(ctx, id)
			if err != nil {
				b.Error(err)
				return
			}
			if err := d.People().SignedIn(ctx, p.ID, directory.SignIn{ClientID: "grafana", Flow: "oauth", IP: "192.0.2.7"},
				directory.Event{Actor: "sign_in", Action: directory.ActionSignIn, PersonID: p.ID, ClientID: "grafana",
					Flow: "oauth", IP: "192.0.2.7", UserAgent: "Mozilla/5.0 MicroMessenger/8.0", Result: "ok"}); err != nil {
				b.Error(err)
				return
			}
			if _, err := d.People().Get(ctx, p.ID); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
