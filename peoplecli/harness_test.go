package peoplecli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wechat-oidc/wechat-oidc/directory"
	"github.com/wechat-oidc/wechat-oidc/directory/directorytest"
)

// One PostgreSQL server for the test binary (started only if a test asks).
func TestMain(m *testing.M) { os.Exit(directorytest.Main(m)) }

// testConfig names secrets in sections the people commands do not read;
// the tests never set them.
const testConfig = `issuer: https://sso.example.com/
wechat:
  official_account: { app_id: wx123, app_secret: "${TEST_UNSET_OA_SECRET}" }
clients:
  - id: grafana
    secret: ${TEST_UNSET_GRAFANA_SECRET}
    redirect_uris: [https://grafana.example.com/login/generic_oauth]
  - id: wiki
    secret: ${TEST_UNSET_WIKI_SECRET}
    redirect_uris: [https://wiki.example.com/cb]
access: { mode: approval, admin_group: admins }
`

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// env is a config file over a fresh directory, and the clock the commands
// and the test's own directory handle share.
type env struct {
	t      *testing.T
	config string
	dbPath string // SQLite only
	dirOpt directory.Options
	clock  *clock
	dir    *directory.Directory // the test's view, for setup and assertions
}

func newEnv(t *testing.T) *env {
	t.Helper()
	tmp := t.TempDir()
	db := filepath.Join(tmp, "directory.db")
	e := newEnvWith(t, fmt.Sprintf("directory: { type: sqlite, path: %q }\n", db),
		directory.Options{Type: directory.TypeSQLite, Path: db})
	e.dbPath = db
	return e
}

func newPostgresEnv(t *testing.T) *env {
	t.Helper()
	url := directorytest.StartPostgres(t)
	t.Setenv("TEST_DATABASE_URL", url)
	return newEnvWith(t, "directory: { type: postgres, url: \"${TEST_DATABASE_URL}\" }\n",
		directory.Options{Type: directory.TypePostgres, URL: url})
}

func newEnvWith(t *testing.T, directorySection string, opts directory.Options) *env {
	for _, v := range []string{"TEST_UNSET_OA_SECRET", "TEST_UNSET_GRAFANA_SECRET", "TEST_UNSET_WIKI_SECRET"} {
		if _, set := os.LookupEnv(v); set {
			t.Fatalf("test setup: %s must not be set", v)
		}
	}
	e := &env{t: t, clock: &clock{t: time.Date(2025, 3, 10, 9, 30, 0, 0, time.UTC)}}
	e.config = filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(e.config, []byte(testConfig+directorySection), 0o600); err != nil {
		t.Fatal(err)
	}
	opts.Now = e.clock.now
	e.dirOpt = opts
	return e
}

// d opens the test's own handle on the directory (once).
func (e *env) d() *directory.Directory {
	e.t.Helper()
	if e.dir == nil {
		d, err := directory.Open(context.Background(), e.dirOpt)
		if err != nil {
			e.t.Fatal(err)
		}
		e.t.Cleanup(func() { d.Close() })
		e.dir = d
	}
	return e.dir
}

type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// people runs `wechat-oidc people ARGS... --config FILE`.
func (e *env) people(args ...string) result {
	e.t.Helper()
	return e.run(false, append(args, "--config", e.config)...)
}

// audit runs `wechat-oidc audit ARGS... --config FILE`.
func (e *env) audit(args ...string) result {
	e.t.Helper()
	return e.run(true, append(args, "--config", e.config)...)
}

func (e *env) run(audit bool, args ...string) result {
	var out, errb bytes.Buffer
	c := Command{Stdout: &out, Stderr: &errb, Now: e.clock.now}
	var code int
	if audit {
		code = c.Audit(context.Background(), args)
	} else {
		code = c.People(context.Background(), args)
	}
	return result{code, out.String(), errb.String()}
}

// ok runs a people command that must succeed.
func (e *env) ok(args ...string) result {
	e.t.Helper()
	r := e.people(args...)
	if r.code != ExitOK {
		e.t.Fatalf("people %s: %v", strings.Join(args, " "), r)
	}
	return r
}

// person reads a person by username, failing the test if absent.
func (e *env) person(username string) directory.Person {
	e.t.Helper()
	p, err := e.d().People().GetByUsername(context.Background(), username)
	if err != nil {
		e.t.Fatalf("person %s: %v", username, err)
	}
	return p
}

// events returns every audit row, newest first.
func (e *env) events() []directory.Event {
	e.t.Helper()
	ev, err := e.d().Audit().Query(context.Background(), directory.AuditQuery{Limit: 1000})
	if err != nil {
		e.t.Fatal(err)
	}
	return ev
}

// wantContains fails unless s contains every substring.
func wantContains(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s does not contain %q:\n%s", what, sub, s)
		}
	}
}
