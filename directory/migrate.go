package directory

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// migrationFiles are the schema's versions, NNNN_name.sql, applied in order.
// A released file is never edited: a change is a new file.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

// migrationLockKey is the PostgreSQL advisory lock that serialises
// migrations of replicas starting together ("wechatdi" in ASCII).
const migrationLockKey int64 = 0x7765636861746469

// loadMigrations reads the embedded files; versions must run 1, 2, ... N.
func loadMigrations() ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, fmt.Errorf("directory: listing migrations: %w", err)
	}
	var ms []migration
	for i, name := range names { // fs.Glob returns names sorted
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v != i+1 {
			return nil, fmt.Errorf("directory: migration %s: want version %d in a name like %04d_name.sql", base, i+1, i+1)
		}
		b, err := migrationFiles.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("directory: reading migration %s: %w", base, err)
		}
		ms = append(ms, migration{version: v, name: base, sql: string(b)})
	}
	return ms, nil
}

// LatestSchemaVersion is the newest schema version this binary knows.
func LatestSchemaVersion() int {
	ms, err := loadMigrations()
	if err != nil {
		return 0
	}
	return len(ms)
}

// render replaces the dialect tokens of a migration.
func (d dialect) render(sqlText string) (string, error) {
	autoID := "INTEGER PRIMARY KEY AUTOINCREMENT" // AUTOINCREMENT: ids of pruned rows are not reused
	if d == dialectPostgres {
		autoID = "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
	}
	out := strings.ReplaceAll(sqlText, "{{auto_id}}", autoID)
	if strings.Contains(out, "{{") {
		return "", fmt.Errorf("directory: migration has an unknown {{token}}")
	}
	return out, nil
}

// migrate brings the schema to the newest version in one transaction, under
// a lock so that concurrent openers (replicas starting at once) wait for
// each other and the schema is applied once: PostgreSQL takes a
// transaction-scoped advisory lock; SQLite's transactions begin IMMEDIATE
// (the database's write lock), and busy_timeout makes the others wait.
func (d *Directory) migrate(ctx context.Context) error {
	ms, err := loadMigrations()
	if err != nil {
		return err
	}
	latest := len(ms)
	return d.inTx(ctx, "migrating the schema", func(tx *sql.Tx) error {
		if d.dialect == dialectPostgres {
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", migrationLockKey); err != nil {
				return dbErr("taking the migration lock", err)
			}
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    INTEGER PRIMARY KEY,
			applied_at BIGINT NOT NULL)`); err != nil {
			return dbErr("creating schema_migrations", err)
		}
		var current int
		if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&current); err != nil {
			return dbErr("reading the schema version", err)
		}
		if current > latest {
			return &schemaTooNewError{database: current, binary: latest}
		}
		for _, m := range ms[current:] {
			text, err := d.dialect.render(m.sql)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, text); err != nil {
				return dbErr("applying migration "+m.name, err)
			}
			if _, err := tx.ExecContext(ctx, "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
				m.version, d.nowMicro()); err != nil {
				return dbErr("recording migration "+m.name, err)
			}
			d.log.Info("directory: applied migration", "version", m.version, "name", m.name)
		}
		d.version = latest
		return nil
	})
}
