package bridge

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wechat-oidc/wechat-oidc/config"
	"github.com/wechat-oidc/wechat-oidc/directory"
	"github.com/wechat-oidc/wechat-oidc/directory/directorytest"
)

// importRows are n people to import, each with a unionid, in group g.
func importRows(n int, g string) []directory.ImportRow {
	rows := make([]directory.ImportRow, n)
	for i := range rows {
		rows[i] = directory.ImportRow{Line: i + 2, Username: fmt.Sprintf("imported-%05d", i), DisplayName: fmt.Sprintf("Imported %d", i),
			Groups: []string{g}, Identity: directory.Identity{Provider: "wechat", UnionID: fmt.Sprintf("o-imported-unionid-%05d", i)}}
	}
	return rows
}

// BenchmarkSignInDuringImport measures a whole sign-in of a known person
// (authorize → simulated WeChat → callback → code exchange → ID token
// verified) with the default directory.sign_in_timeout (2s), on SQLite and
// on PostgreSQL, with no other writer ("quiet") and while another
// connection, as `wechat-oidc people import` would, imports 5,000 people in
// a loop, each import changing every row (the groups alternate), each in
// one transaction ("import"). On SQLite the import holds the database's
// write lock for its whole transaction; on PostgreSQL it locks only the
// rows it changes.
//
//	go test -run '^$' -bench SignInDuringImport -benchtime 200x ./bridge
//
// Besides ns/op it reports the latency percentiles of the sign-ins
// (p50-ms, p99-ms, max-ms), the share that got the "try again" page
// (unavailable/op) and, with the import running, how long one import took
// (import-ms) and how many ran (imports).
func BenchmarkSignInDuringImport(b *testing.B) {
	backends := []struct {
		name string
		opt  func(b *testing.B) harnessOption
	}{
		{"sqlite", func(*testing.B) harnessOption { return func(*config.File) {} }},
		{"postgres", func(b *testing.B) harnessOption { return withPostgres(directorytest.StartPostgres(b)) }},
	}
	for _, be := range backends {
		for _, importing := range []bool{false, true} {
			name := be.name + "/quiet"
			if importing {
				name = be.name + "/import"
			}
			b.Run(name, func(b *testing.B) { benchmarkSignInDuringImport(b, be.opt(b), importing) })
		}
	}
}

func benchmarkSignInDuringImport(b *testing.B, backend harnessOption, importing bool) {
	h := newHarness(b, backend)
	h.addPerson("alice")
	r := h.rp(rpClientID, rpSecret, rpRedirect)
	// The importer is a directory of its own on the same database: another
	// process's connection, as the CLI has.
	opt := h.cfg.Directory
	importer, err := directory.Open(context.Background(), directory.Options{Type: opt.Type, Path: opt.Path, URL: opt.URL})
	if err != nil {
		b.Fatal(err)
	}
	defer importer.Close()
	rowsA, rowsB := importRows(5000, "group-a"), importRows(5000, "group-b")
	if _, err := importer.Import(context.Background(), rowsA); err != nil {
		b.Fatal(err)
	}
	if outcome := attemptLogin(h, r, "alice"); outcome != attemptOK {
		b.Fatalf("warm-up sign-in: %s", outcome)
	}

	var imports atomic.Int64
	var importTime atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var importErr error
	if importing {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				rows := rowsB
				if i%2 == 1 {
					rows = rowsA
				}
				start := time.Now()
				if _, err := importer.Import(context.Background(), rows); err != nil {
					importErr = err
					return
				}
				importTime.Add(int64(time.Since(start)))
				imports.Add(1)
			}
		}()
	}

	latencies := make([]time.Duration, 0, b.N)
	outcomes := map[string]int{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		outcome := attemptLogin(h, r, "alice")
		latencies = append(latencies, time.Since(start))
		outcomes[outcome]++
	}
	b.StopTimer()
	close(stop)
	wg.Wait()
	if importErr != nil {
		b.Fatalf("import: %v", importErr)
	}
	for outcome, n := range outcomes {
		if outcome != attemptOK && outcome != attemptUnavailablePage {
			b.Fatalf("%d sign-ins ended %s", n, outcome)
		}
	}
	slices.Sort(latencies)
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(latencies[len(latencies)/2]), "p50-ms")
	b.ReportMetric(ms(latencies[(len(latencies)*99)/100]), "p99-ms")
	b.ReportMetric(ms(latencies[len(latencies)-1]), "max-ms")
	b.ReportMetric(float64(outcomes[attemptUnavailablePage])/float64(b.N), "unavailable/op")
	if importing {
		if n := imports.Load(); n > 0 {
			b.ReportMetric(ms(time.Duration(importTime.Load()/n)), "import-ms")
		}
		b.ReportMetric(float64(imports.Load()), "imports")
	}
}
