package directory_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wechat-oidc/wechat-oidc/directory"
	"github.com/wechat-oidc/wechat-oidc/directory/directorytest"
)

// TestSignInBudgetIsOneDeadline: every Bound of one budget shares the
// deadline the first fixed; a context without a budget gets none; an inner
// budget does not extend an outer one.
func TestSignInBudgetIsOneDeadline(t *testing.T) {
	plain, cancel := directory.Bound(t.Context())
	defer cancel()
	if _, ok := plain.Deadline(); ok {
		t.Fatal("a context without a budget got a deadline")
	}
	ctx := directory.WithSignInBudget(t.Context(), time.Second)
	first, cancel1 := directory.Bound(ctx)
	defer cancel1()
	d1, ok := first.Deadline()
	if !ok || time.Until(d1) > time.Second {
		t.Fatalf("first Bound: deadline %v (set %v), want within 1s", d1, ok)
	}
	again, cancel2 := directory.Bound(directory.WithSignInBudget(ctx, time.Hour))
	defer cancel2()
	if d2, _ := again.Deadline(); !d2.Equal(d1) {
		t.Fatalf("second Bound: deadline %v, want the first's %v", d2, d1)
	}
	if none := directory.WithSignInBudget(t.Context(), 0); none != t.Context() {
		t.Fatal("a zero budget changed the context")
	}
}

// budgetBound is the budget the lock tests give a call, and lockSlack what
// a loaded two-core machine may add to it before the call returns.
const (
	budgetBound = 300 * time.Millisecond
	lockSlack   = 3 * time.Second
)

// recordWithin calls RecordSignIn under a fresh budget and returns its
// error and how long it took.
func recordWithin(d *directory.Directory, personID string) (time.Duration, error) {
	ctx, cancel := directory.Bound(directory.WithSignInBudget(context.Background(), budgetBound))
	defer cancel()
	start := time.Now()
	err := d.People().RecordSignIn(ctx, personID, directory.SignIn{ClientID: "rp", Flow: "oauth", IP: "192.0.2.1"})
	return time.Since(start), err
}

// budgetEndsLockWait opens a directory on opts, has another connection hold
// the lock a sign-in's write waits for (directorytest.HoldLock: what lock
// names it in messages), and checks that a write under a sign-in budget
// gives up within the budget (plus slack) with ErrUnavailable, and that the
// directory works again once the lock is gone. It returns the directory,
// the person and how long the held write took.
func budgetEndsLockWait(t *testing.T, opts directory.Options, what string) (*directory.Directory, directory.Person, time.Duration) {
	t.Helper()
	d, err := directory.Open(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	p, err := d.People().Create(t.Context(), directory.NewPerson{Username: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	release := directorytest.HoldLock(t, opts, p.ID)
	took, err := recordWithin(d, p.ID)
	if !errors.Is(err, directory.ErrUnavailable) || took > budgetBound+lockSlack {
		t.Fatalf("a write behind a held %s: %v after %v, want ErrUnavailable within %v", what, err, took, budgetBound+lockSlack)
	}
	release()
	if _, err := recordWithin(d, p.ID); err != nil {
		t.Fatalf("after the lock was released: %v", err)
	}
	return d, p, took
}

// TestBudgetInterruptsSQLiteBusyWait: while another connection holds the
// SQLite database's write lock (BEGIN IMMEDIATE, as `people import` does),
// a write under a sign-in budget gives up at the budget with
// ErrUnavailable instead of waiting out busy_timeout (10 s); the
// directory works again as soon as the lock is gone.
func TestBudgetInterruptsSQLiteBusyWait(t *testing.T) {
	_, _, took := budgetEndsLockWait(t, freshSQLite(t), "write lock")
	if took < budgetBound {
		t.Fatalf("the write gave up after %v, before its budget of %v", took, budgetBound)
	}
}

// TestBudgetCancelsPostgresLockWait: while another transaction holds the
// person's row (SELECT ... FOR UPDATE), a write under a sign-in budget
// gives up at the budget with ErrUnavailable (pgx cancels the statement)
// instead of waiting for the lock indefinitely; the directory works again
// once the lock is gone, on a new connection where pgx dropped the old.
func TestBudgetCancelsPostgresLockWait(t *testing.T) {
	d, p, _ := budgetEndsLockWait(t, freshPostgres(t), "row lock")
	got, err := d.People().Get(t.Context(), p.ID)
	if err != nil || got.LastSignIn == nil || got.LastSignIn.ClientID != "rp" {
		t.Fatalf("the sign-in after the lock is not recorded: %+v %v", got.LastSignIn, err)
	}
}
