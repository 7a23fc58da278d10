package directorytest

import (
	"context"
	"database/sql"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/wechat-oidc/wechat-oidc/directory"
)

// HoldLock makes another connection hold what a long writer would hold
// against personID's sign-in: SQLite's database write lock (BEGIN
// IMMEDIATE, as `people import` takes it for its whole file), or the
// person's row in PostgreSQL (SELECT … FOR UPDATE, as a console action
// updating them). It returns how to release the lock; it is released when
// tb ends at the latest.
func HoldLock(tb testing.TB, opts directory.Options, personID string) (release func()) {
	tb.Helper()
	ctx := context.Background()
	if opts.Type == directory.TypePostgres {
		conn, err := pgx.Connect(ctx, opts.URL)
		if err != nil {
			tb.Fatal(err)
		}
		tx, err := conn.Begin(ctx)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "SELECT id FROM people WHERE id = $1 FOR UPDATE", personID); err != nil {
			tb.Fatal(err)
		}
		return once(tb, func() {
			_ = tx.Rollback(ctx)
			_ = conn.Close(ctx)
		})
	}
	db, err := sql.Open("sqlite", opts.Path+"?_pragma=busy_timeout(10000)&_txlock=immediate")
	if err != nil {
		tb.Fatal(err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		db.Close()
		tb.Fatal(err)
	}
	return once(tb, func() {
		_ = tx.Rollback()
		_ = db.Close()
	})
}

// once runs release at the first call or when tb ends.
func once(tb testing.TB, release func()) func() {
	done := false
	f := func() {
		if !done {
			done = true
			release()
		}
	}
	tb.Cleanup(f)
	return f
}
