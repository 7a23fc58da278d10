package directory

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"
)

// Database types for Options.Type.
const (
	TypeSQLite   = "sqlite"
	TypePostgres = "postgres"
)

// Options say which database to open and how.
type Options struct {
	// Type is TypeSQLite (the default when empty) or TypePostgres.
	Type string
	// Path is the SQLite database file, created (mode 0600) when missing;
	// its directory must exist. ":memory:" is a private in-memory database
	// for tests, on one connection.
	Path string
	// URL is the PostgreSQL connection string, a URL
	// (postgres://user:password@host:5432/db?sslmode=verify-full) or a
	// key=value DSN, as pgx reads it. It is never logged.
	URL string
	// MaxOpenConns caps the connections to PostgreSQL (default 10).
	MaxOpenConns int
	// Now is the clock for every timestamp and expiry check (default
	// time.Now). Times are stored with microsecond precision, in UTC.
	Now func() time.Time
	// Logger receives a line per applied migration (default: discarded).
	Logger *slog.Logger
	// WrapConnector, when set, wraps the database connector: for tracing or
	// for counting statements (see directorytest.StatementCounter).
	WrapConnector func(driver.Connector) driver.Connector
}

// Directory is the people directory over one database. It is safe for
// concurrent use; close it with Close.
type Directory struct {
	db      *sql.DB
	dialect dialect
	now     func() time.Time
	log     *slog.Logger
	version int // schema version after Open's migrations
	// The sign-in path's statements, prepared once: parsing and planning
	// them costs more than running them (SQLite: about 6x).
	findByIdentity, recordSignIn, appendEvent, getPerson, rememberProfile *sql.Stmt
	// profilesStored remembers which profiles this process stored lately,
	// so that a sign-in that brings the same profile again writes nothing
	// (see Profiles.Remember).
	profilesStored *recentSet
	// signIns commits the sign-ins' rows in shared transactions.
	signIns *signInBatcher
}

// dialect is what differs between the two databases; everything else is one
// SQL text for both ($n placeholders, ON CONFLICT, RETURNING, LIKE ...
// ESCAPE, integers for times and booleans).
type dialect int

const (
	dialectSQLite dialect = iota
	dialectPostgres
)

// forUpdate locks the selected rows until the transaction ends. SQLite has
// no row locks and needs none: its transactions here begin IMMEDIATE, so a
// writing transaction holds the database's write lock from its start.
func (d dialect) forUpdate() string {
	if d == dialectPostgres {
		return " FOR UPDATE"
	}
	return ""
}

// Open connects to the database, checks that it answers, and applies the
// embedded migrations (see the package documentation). A database migrated
// by a newer binary is refused with ErrSchemaTooNew; an unreachable one
// with ErrUnavailable.
func Open(ctx context.Context, opts Options) (*Directory, error) {
	d := &Directory{now: opts.Now, log: opts.Logger, profilesStored: newRecentSet(profilesStoredMax, profileRewriteAfter)}
	d.signIns = &signInBatcher{d: d}
	if d.now == nil {
		d.now = time.Now
	}
	if d.log == nil {
		d.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	connector, err := d.connector(opts)
	if err != nil {
		return nil, err
	}
	if opts.WrapConnector != nil {
		connector = opts.WrapConnector(connector)
	}
	d.db = sql.OpenDB(connector)
	switch {
	case d.dialect == dialectSQLite && opts.Path == ":memory:":
		// Each connection would get its own empty database.
		d.db.SetMaxOpenConns(1)
	case d.dialect == dialectSQLite:
		// One pool for everything. (A one-connection pool for the sign-in
		// path keeps its page cache warm, about 4 % of a sign-in's CPU, but
		// while another process holds the write lock — a CLI import — a
		// sign-in's transaction waiting on that connection would hold
		// every read behind it, token checks included; here reads go on.)
		d.db.SetMaxOpenConns(8)
		d.db.SetMaxIdleConns(8)
	default:
		n := opts.MaxOpenConns
		if n <= 0 {
			n = 10
		}
		d.db.SetMaxOpenConns(n)
		d.db.SetMaxIdleConns(n)
		d.db.SetConnMaxIdleTime(5 * time.Minute)
	}
	if err := d.ping(ctx); err != nil {
		d.closeAfterFailedOpen()
		return nil, dbErr("connecting", err)
	}
	if err := d.migrate(ctx); err != nil {
		d.closeAfterFailedOpen()
		return nil, err
	}
	if err := d.prepare(ctx); err != nil {
		d.closeAfterFailedOpen()
		return nil, err
	}
	return d, nil
}

// prepare readies the sign-in path's statements.
func (d *Directory) prepare(ctx context.Context) error {
	for _, s := range []struct {
		stmt **sql.Stmt
		sql  string
	}{
		{&d.findByIdentity, findByIdentitySQL},
		{&d.recordSignIn, recordSignInSQL},
		{&d.appendEvent, appendEventSQL},
		{&d.getPerson, getPersonSQL},
		{&d.rememberProfile, rememberProfileSQL},
	} {
		st, err := d.db.PrepareContext(ctx, s.sql)
		if err != nil {
			return dbErr("preparing statements", err)
		}
		*s.stmt = st
	}
	return nil
}

// ping checks the first connection. On a new SQLite file, the first
// connection of each opener switches it to WAL, which needs the database to
// itself, and SQLite answers SQLITE_BUSY at once — without waiting out
// busy_timeout — to the others that try at the same moment (several
// replicas or CLI commands starting together): those retry for up to 10 s,
// as busy_timeout would have waited.
func (d *Directory) ping(ctx context.Context) error {
	wait := 5 * time.Millisecond
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := d.db.PingContext(ctx)
		if err == nil || d.dialect != dialectSQLite || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}

func (d *Directory) closeAfterFailedOpen() {
	if err := d.Close(); err != nil {
		d.log.Warn("directory: closing after a failed open", "err", err)
	}
}

// connector builds the driver connector for opts and sets d.dialect.
func (d *Directory) connector(opts Options) (driver.Connector, error) {
	switch opts.Type {
	case TypeSQLite, "":
		d.dialect = dialectSQLite
		dsn, err := sqliteDSN(opts.Path)
		if err != nil {
			return nil, err
		}
		c, err := sqlite.NewConnector(dsn)
		if err != nil {
			return nil, fmt.Errorf("directory: sqlite: %w", err)
		}
		return c, nil
	case TypePostgres:
		d.dialect = dialectPostgres
		if opts.URL == "" {
			return nil, invalid("url", "required for a postgres directory (postgres://user:password@host:5432/db)")
		}
		// pgx redacts the password in its parse errors.
		cfg, err := pgx.ParseConfig(opts.URL)
		if err != nil {
			return nil, &ValidationError{Field: "url", Message: "not a PostgreSQL connection URL: " + err.Error()}
		}
		return stdlib.GetConnector(*cfg), nil
	default:
		return nil, invalid("type", "must be %q or %q", TypeSQLite, TypePostgres)
	}
}

// sqliteDSN creates the file with owner-only permissions if it does not
// exist (it holds personal data; SQLite gives its -wal and -shm files the
// same mode) and returns the modernc DSN: busy_timeout first so concurrent
// openers wait instead of failing, foreign keys on, WAL so readers do not
// block the writer, and IMMEDIATE transactions so a transaction takes the
// write lock when it begins (no lock upgrade, which cannot wait and fails).
func sqliteDSN(path string) (string, error) {
	switch {
	case path == "":
		return "", invalid("path", "required for a sqlite directory: the database file, e.g. /var/lib/wechat-oidc/directory.db")
	case path == ":memory:":
		return ":memory:?_pragma=foreign_keys(1)", nil
	case strings.ContainsRune(path, '?') || strings.HasPrefix(path, "file:"):
		return "", invalid("path", "must be a plain file path (no '?' and no file: prefix)")
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return "", fmt.Errorf("directory: sqlite path: %w (does its directory exist and is it writable?)", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("directory: sqlite path: %w", err)
	}
	return path + "?_pragma=busy_timeout(10000)&_pragma=foreign_keys(1)&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(NORMAL)&_txlock=immediate", nil
}

// Close closes the database. Calls after Close fail with ErrUnavailable.
func (d *Directory) Close() error {
	var errs []error
	for _, st := range []*sql.Stmt{d.findByIdentity, d.recordSignIn, d.appendEvent, d.getPerson, d.rememberProfile} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	errs = append(errs, d.db.Close())
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("directory: close: %w", err)
	}
	return nil
}

// Ping checks that the database answers, for readiness probes. Its error
// matches ErrUnavailable.
func (d *Directory) Ping(ctx context.Context) error {
	var one int
	if err := d.db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return dbErr("ping", err)
	}
	return nil
}

// SchemaVersion is the database schema version this directory runs on
// (the newest migration this binary knows, once Open has succeeded).
func (d *Directory) SchemaVersion() int { return d.version }

// People, Invitations, Profiles and Audit are the directory's parts.
func (d *Directory) People() People { return People{d} }

// Invitations manages invitations to bind an identity to a prepared person.
func (d *Directory) Invitations() Invitations { return Invitations{d} }

// Profiles stores what an upstream told about an account at sign-in.
func (d *Directory) Profiles() Profiles { return Profiles{d} }

// Audit is the trail of what happened to whom.
func (d *Directory) Audit() Audit { return Audit{d} }

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// inTx runs fn in a transaction: committed when fn returns nil, rolled back
// otherwise (fn's error is returned as is).
func (d *Directory) inTx(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return dbErr(op+": begin", err)
	}
	if err := fn(tx); err != nil {
		if rbErr := tx.Rollback(); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) {
			d.log.Warn("directory: rollback failed", "op", op, "err", rbErr)
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		return dbErr(op+": commit", err)
	}
	return nil
}

// nowMicro is the clock's time as stored: microseconds since the epoch.
func (d *Directory) nowMicro() int64 { return toMicro(d.now()) }

func toMicro(t time.Time) int64 { return t.UnixMicro() }

func fromMicro(us int64) time.Time { return time.UnixMicro(us).UTC() }

func fromNullMicro(us sql.NullInt64) time.Time {
	if !us.Valid {
		return time.Time{}
	}
	return fromMicro(us.Int64)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
