package directorytest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// errNoPostgres: the server binaries are not installed.
var errNoPostgres = errors.New("PostgreSQL server binaries (initdb, postgres) not found on PATH or under /usr/lib/postgresql/*/bin: " +
	"install them (apt-get install postgresql) to test the PostgreSQL directory")

// shared is the one server of a test binary whose TestMain calls Main.
var shared struct {
	enabled bool // set by Main before any test runs
	once    sync.Once
	srv     *pgServer
	err     error
}

// Main runs a package's tests with one PostgreSQL server shared by every
// StartPostgres call (started on first use, stopped when the tests end),
// so the suite does not pay a server start per test. Call it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(directorytest.Main(m)) }
func Main(m *testing.M) int {
	shared.enabled = true
	code := m.Run()
	if shared.srv != nil {
		shared.srv.stop()
	}
	return code
}

// StartPostgres returns the URL of a new, empty database on a private
// PostgreSQL server listening on a free loopback port (unix sockets in a
// temporary directory, nothing persisted). The database is a schema of its
// own, set as the URL's search_path, so tests can run in parallel; it is
// dropped when tb ends; the server is stopped then too, or, when the package's TestMain
// uses Main, when the test binary ends.
//
// PostgreSQL refuses to run as root: as root, the server runs as the
// "postgres" system user (which Debian's postgresql package creates).
// Without the server binaries the test is skipped, except under CI (CI
// set), where a missing server is a broken pipeline and fails.
func StartPostgres(tb testing.TB) (url string) {
	tb.Helper()
	var srv *pgServer
	var err error
	if shared.enabled {
		shared.once.Do(func() { shared.srv, shared.err = startPostgresServer() })
		srv, err = shared.srv, shared.err
	} else {
		srv, err = startPostgresServer()
		if err == nil {
			tb.Cleanup(srv.stop)
		}
	}
	skipOrFail(tb, err)
	return srv.createDatabase(tb)
}

// skipOrFail ends tb when the server could not start: a skip without the
// binaries (a failure under CI), a failure otherwise.
func skipOrFail(tb testing.TB, err error) {
	tb.Helper()
	if errors.Is(err, errNoPostgres) {
		if os.Getenv("CI") != "" {
			tb.Fatalf("%v (CI is set: the PostgreSQL directory must be tested)", err)
		}
		tb.Skip(err.Error())
	}
	if err != nil {
		tb.Fatalf("starting PostgreSQL: %v", err)
	}
}

// PostgresServer is a private PostgreSQL server that a test may Stop and
// Start again on the same data directory and port: for outage tests. Use
// StartPostgres for everything else (it shares one server).
type PostgresServer struct {
	tb  testing.TB
	srv *pgServer
	url string
}

// StartPostgresServer starts a server of tb's own with one empty database
// (URL), stopped and removed when tb ends. Without the server binaries the
// test is skipped, except under CI, where it fails.
func StartPostgresServer(tb testing.TB) *PostgresServer {
	tb.Helper()
	srv, err := startPostgresServer()
	skipOrFail(tb, err)
	tb.Cleanup(srv.stop)
	return &PostgresServer{tb: tb, srv: srv, url: srv.createDatabase(tb)}
}

// URL is the database's connection URL; it stays valid across Stop and Start.
func (p *PostgresServer) URL() string { return p.url }

// Stop shuts the server down as an operator's restart does (a fast
// shutdown: transactions rolled back, clients disconnected) and returns
// once the server process is gone. Connections fail until Start.
func (p *PostgresServer) Stop() { p.srv.halt() }

// Start starts the server again, on the same data directory and port, and
// returns once it accepts connections. It fails the test if it does not.
func (p *PostgresServer) Start() {
	p.tb.Helper()
	if err := p.srv.launch(); err != nil {
		p.tb.Fatalf("restarting PostgreSQL on port %d: %v", p.srv.port, err)
	}
}

type pgServer struct {
	dir  string // owns the data directory and the sockets
	bin  string // the directory of the postgres binary
	data string
	cred *syscall.Credential
	port int
	logs *tailBuffer

	mu     sync.Mutex
	cmd    *exec.Cmd     // the running server process; nil while halted
	exited chan struct{} // closed when cmd has exited

	dbSeq    atomic.Int64
	stopOnce sync.Once
}

// running reports whether the server process is up (for cleanups that need it).
func (s *pgServer) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return false
	}
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// url is the superuser's URL for database db.
func (s *pgServer) url(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, db)
}

// findPostgresBinaries returns the directory holding initdb and postgres:
// from PATH, else Debian's /usr/lib/postgresql/<version>/bin, newest first.
func findPostgresBinaries() (string, error) {
	if initdb, err := exec.LookPath("initdb"); err == nil {
		if pg, err := exec.LookPath("postgres"); err == nil {
			// Resolve links (Debian's are in /usr/lib/postgresql/N/bin).
			a, _ := filepath.EvalSymlinks(initdb)
			b, _ := filepath.EvalSymlinks(pg)
			if a != "" && b != "" && filepath.Dir(a) == filepath.Dir(b) {
				return filepath.Dir(a), nil
			}
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return pgVersion(b) - pgVersion(a) })
	for _, d := range dirs {
		if isExecutable(filepath.Join(d, "initdb")) && isExecutable(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", errNoPostgres
}

func pgVersion(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}

// serverCredential is who the server runs as: nil (this process's user),
// or, as root, the postgres system user.
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, and PostgreSQL refuses to run as root: create a \"postgres\" system user "+
			"(apt-get install postgresql does): %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("user postgres has a non-numeric uid/gid %q/%q", u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func startPostgresServer() (*pgServer, error) {
	bin, err := findPostgresBinaries()
	if err != nil {
		return nil, err
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "wechat-oidc-pg-")
	if err != nil {
		return nil, err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("giving the temporary directory to user postgres: %w", err)
		}
	}
	data := filepath.Join(dir, "data")
	initdb := command(filepath.Join(bin, "initdb"), dir, cred,
		"-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %w: %s", err, out)
	}
	// A port found free can be taken before the server binds it; try a few.
	var lastErr error
	for range 5 {
		srv, err := tryStartPostgres(bin, dir, data, cred)
		if err == nil {
			return srv, nil
		}
		lastErr = err
	}
	os.RemoveAll(dir)
	return nil, lastErr
}

// command prepares a server command running as cred, in dir, killed
// (SIGINT: a fast shutdown) if the test binary dies without cleaning up.
func command(path, dir string, cred *syscall.Credential, args ...string) *exec.Cmd {
	cmd := exec.Command(path, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGINT}
	return cmd
}

func tryStartPostgres(bin, dir, data string, cred *syscall.Credential) (*pgServer, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()

	srv := &pgServer{dir: dir, bin: bin, data: data, cred: cred, port: port, logs: &tailBuffer{max: 64 << 10}}
	if err := srv.launch(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, srv.url("postgres"))
	if err == nil {
		_, err = conn.Exec(ctx, "CREATE DATABASE "+testDatabase)
		conn.Close(context.Background())
	}
	if err != nil {
		srv.halt()
		return nil, fmt.Errorf("creating database %s: %w", testDatabase, err)
	}
	return srv, nil
}

// launch starts the server process on s.data and s.port and waits until
// it accepts connections.
func (s *pgServer) launch() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		select {
		case <-s.exited:
		default:
			return nil // already running
		}
	}
	cmd := command(filepath.Join(s.bin, "postgres"), s.dir, s.cred,
		"-D", s.data, "-p", strconv.Itoa(s.port), "-k", s.dir,
		"-c", "listen_addresses=127.0.0.1",
		// A throwaway server: durability buys nothing.
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=200", "-c", "shared_buffers=32MB")
	cmd.Stdout, cmd.Stderr = s.logs, s.logs
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.cmd, s.exited = cmd, exited

	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, s.url("postgres"))
		cancel()
		if err == nil {
			conn.Close(context.Background())
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("postgres on port %d exited: %s", s.port, s.logs.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			return fmt.Errorf("postgres on port %d did not accept connections within 30s: %v: %s", s.port, err, s.logs.String())
		}
	}
}

// halt stops the server process (fast shutdown: open transactions are
// rolled back and clients disconnected; a kill if it hangs) and waits until
// it is gone. The data directory stays.
func (s *pgServer) halt() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
}

// stop halts the server and removes its directory.
func (s *pgServer) stop() {
	s.stopOnce.Do(func() {
		s.halt()
		os.RemoveAll(s.dir)
	})
}

// testDatabase is the database every test's schema lives in.
const testDatabase = "directory_test"

// createDatabase returns the URL of a new, empty schema of testDatabase,
// made the connection's search_path, dropped when tb ends. To whoever uses
// the URL it is an empty database; making one is milliseconds where
// CREATE DATABASE copies a template (about a second on a busy machine).
func (s *pgServer) createDatabase(tb testing.TB) string {
	tb.Helper()
	name := fmt.Sprintf("t%d", s.dbSeq.Add(1))
	if err := s.admin("CREATE SCHEMA " + name); err != nil {
		tb.Fatalf("creating schema %s: %v", name, err)
	}
	tb.Cleanup(func() {
		if !s.running() {
			return // the server is gone (its files with it, or a test stopped it)
		}
		if err := s.admin("DROP SCHEMA " + name + " CASCADE"); err != nil {
			tb.Errorf("dropping schema %s: %v", name, err)
		}
	})
	return s.url(testDatabase) + "&search_path=" + name
}

func (s *pgServer) admin(sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.url(testDatabase))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// tailBuffer keeps the last max bytes written to it, for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   bytes.Buffer
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b.Write(p)
	if over := t.b.Len() - t.max; over > 0 {
		t.b.Next(over)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.b.String()
}
