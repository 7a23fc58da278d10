package directory

import (
	"context"
	"sync"
	"time"
)

// A sign-in's budget: how long all of its directory calls may take
// together. A sign-in normally spends about a millisecond in the directory;
// what makes it wait longer is a lock held by someone else (a `people
// import`, a console action, a backup; a PostgreSQL row lock) or a database
// that does not answer. SQLite's busy_timeout (10 s, for the CLI and the
// console, which may wait) and PostgreSQL's missing statement timeout would
// hold the person's browser that long or longer; the budget cuts it short.
//
// Both drivers honour the deadline: modernc's SQLite interrupts a statement
// waiting on busy_timeout (sqlite3_interrupt when the context is done), and
// pgx sends PostgreSQL a cancel request and drops the connection, which
// database/sql then replaces. A call cut short fails with ErrUnavailable,
// its transaction rolled back.

type budgetKey struct{}

type budget struct {
	d        time.Duration
	once     sync.Once
	deadline time.Time
}

// WithSignInBudget returns ctx carrying a budget of d for the directory
// calls of one sign-in: every context Bound derives from it shares one
// deadline, d after the first Bound (so the time spent upstream, at
// WeChat, before the first directory call does not count). A ctx that
// already carries a budget keeps it; d <= 0 adds none.
func WithSignInBudget(ctx context.Context, d time.Duration) context.Context {
	if d <= 0 {
		return ctx
	}
	if _, ok := ctx.Value(budgetKey{}).(*budget); ok {
		return ctx
	}
	return context.WithValue(ctx, budgetKey{}, &budget{d: d})
}

// Bound returns ctx limited to its sign-in budget's deadline (fixed by the
// first call of Bound on the budget), or ctx as it is, with a no-op cancel,
// when ctx carries no budget. Call cancel when the directory call is done.
func Bound(ctx context.Context) (context.Context, context.CancelFunc) {
	b, ok := ctx.Value(budgetKey{}).(*budget)
	if !ok {
		return ctx, func() {}
	}
	b.once.Do(func() { b.deadline = time.Now().Add(b.d) })
	return context.WithDeadline(ctx, b.deadline)
}
