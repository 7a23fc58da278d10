package directorytest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wechat-oidc/wechat-oidc/directory"
)

func testReopen(t *testing.T, e *env) {
	ctx := t.Context()
	p := mustCreate(t, e.d, directory.NewPerson{Username: "alice"})
	if err := e.d.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		e.d = e.open(t)
		if got, err := e.d.People().Get(ctx, p.ID); err != nil || got.Username != "alice" {
			t.Fatalf("after reopening: %+v (%v)", got, err)
		}
		if v := e.d.SchemaVersion(); v != directory.LatestSchemaVersion() {
			t.Fatalf("SchemaVersion %d, want %d", v, directory.LatestSchemaVersion())
		}
		if err := e.d.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.count(t, "SELECT COUNT(*) FROM schema_migrations"); n != directory.LatestSchemaVersion() {
		t.Fatalf("schema_migrations has %d rows after three opens, want one per version (%d)", n, directory.LatestSchemaVersion())
	}
}

func testSchemaTooNewRefused(t *testing.T, e *env) {
	if err := e.d.Close(); err != nil {
		t.Fatal(err)
	}
	newer := directory.LatestSchemaVersion() + 1
	if _, err := e.raw(t).ExecContext(t.Context(), "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, 0)", newer); err != nil {
		t.Fatal(err)
	}
	d, err := directory.Open(t.Context(), e.opts)
	if err == nil {
		_ = d.Close()
		t.Fatal("Open succeeded on a database migrated by a newer binary")
	}
	wantErr(t, "Open", err, directory.ErrSchemaTooNew)
	want := fmt.Sprintf("the database was migrated by a newer wechat-oidc (schema %d, this binary knows up to %d): upgrade this binary",
		newer, directory.LatestSchemaVersion())
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not say %q", err, want)
	}
	if errors.Is(err, directory.ErrUnavailable) {
		t.Fatalf("a too-new schema also matches ErrUnavailable: %v", err)
	}
}

// testConcurrentOpenMigratesOnce: replicas starting together on a fresh
// database all succeed, and the schema is applied once.
func testConcurrentOpenMigratesOnce(t *testing.T, e *env) {
	opts := e.fresh(t) // untouched: the suite's own directory opened another one
	opts.Now = e.clock.Now
	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	dirs := make([]*directory.Directory, n)
	for i := range n {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			dirs[i], errs[i] = directory.Open(ctx, opts)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("opener %d: %v", i, err)
		}
		t.Cleanup(func() { _ = dirs[i].Close() })
	}
	// Every opener works on the one schema.
	for i, d := range dirs {
		if _, err := d.People().Create(t.Context(), directory.NewPerson{Username: fmt.Sprintf("r%d", i)}); err != nil {
			t.Fatalf("opener %d: Create: %v", i, err)
		}
	}
	raw := &env{opts: opts}
	if n := raw.count(t, "SELECT COUNT(*) FROM schema_migrations"); n != directory.LatestSchemaVersion() {
		t.Fatalf("schema_migrations has %d rows, want %d: the schema was applied more than once", n, directory.LatestSchemaVersion())
	}
	if c := raw.count(t, "SELECT COUNT(*) FROM people"); c != n {
		t.Fatalf("%d people, want %d", c, n)
	}
}

func testClosedIsUnavailable(t *testing.T, e *env) {
	if err := e.d.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	_, err := e.d.People().FindByIdentity(ctx, wechat("wx", "o-1", ""))
	wantErr(t, "FindByIdentity on a closed directory", err, directory.ErrUnavailable)
	if errors.Is(err, directory.ErrNotFound) {
		t.Fatalf("a closed database also matches ErrNotFound: %v", err)
	}
	wantErr(t, "Ping on a closed directory", e.d.Ping(ctx), directory.ErrUnavailable)
	_, err = e.d.Invitations().Redeem(ctx, "token", wechat("wx", "o-1", ""))
	wantErr(t, "Redeem on a closed directory", err, directory.ErrUnavailable)
	wantErr(t, "RecordSignIn on a closed directory",
		e.d.People().RecordSignIn(ctx, "p_x", directory.SignIn{}), directory.ErrUnavailable)
}

func testCancelledContext(t *testing.T, e *env) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := e.d.People().FindByIdentity(ctx, wechat("wx", "o-1", ""))
	if !errors.Is(err, context.Canceled) || errors.Is(err, directory.ErrNotFound) || errors.Is(err, directory.ErrUnavailable) {
		t.Fatalf("FindByIdentity with a cancelled context: %v; want context.Canceled only", err)
	}
	_, err = e.d.People().Create(ctx, directory.NewPerson{Username: "alice"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Create with a cancelled context: %v", err)
	}
	if _, err := e.d.People().GetByUsername(t.Context(), "alice"); !errors.Is(err, directory.ErrNotFound) {
		t.Fatalf("a Create with a cancelled context stored a person (%v)", err)
	}
}

func testPing(t *testing.T, e *env) {
	if err := e.d.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}
