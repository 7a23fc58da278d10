package directory

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
)

// A granted sign-in writes two rows: the person's last sign-in and the audit
// row. SignedIn writes both in one transaction, and sign-ins arriving while
// a transaction commits share the next one (group commit): under load one
// commit carries many sign-ins, which is most of what a write costs
// (SQLite's WAL frames and lock, PostgreSQL's WAL flush). Nothing is
// acknowledged before it is committed: a caller waits for its own batch.

// signInRecord is one sign-in waiting for its batch.
type signInRecord struct {
	ctx      context.Context
	personID string
	signIn   SignIn
	event    Event
	done     chan error
}

// signInBatcher runs at most one writing goroutine at a time; it takes
// every record queued so far into one transaction, then the next lot.
type signInBatcher struct {
	d       *Directory
	mu      sync.Mutex
	queue   []*signInRecord
	writing bool
}

// maxSignInBatch caps one transaction, so that one commit stays short.
const maxSignInBatch = 256

// SignedIn records a granted sign-in: the person's last sign-in (as
// RecordSignIn) and the audit row e (as Audit.Append), in one transaction
// shared with the sign-ins that arrive meanwhile. It returns when that
// transaction committed, or with ctx's error when ctx ends first (the rows
// may then still be written). An unknown person fails with ErrNotFound and
// writes neither row; an invalid event fails with ErrInvalid before
// anything is queued.
func (pp People) SignedIn(ctx context.Context, personID string, s SignIn, e Event) error {
	if err := validateEvent(e); err != nil {
		return err
	}
	if s.At.IsZero() {
		s.At = pp.d.now()
	}
	if e.Time.IsZero() {
		e.Time = s.At
	}
	r := &signInRecord{ctx: ctx, personID: personID, signIn: s, event: e, done: make(chan error, 1)}
	pp.d.signIns.enqueue(r)
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		return dbErr("recording a sign-in", ctx.Err())
	}
}

func (b *signInBatcher) enqueue(r *signInRecord) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.queue = append(b.queue, r)
	if !b.writing {
		b.writing = true
		go b.write()
	}
}

// write commits batches until the queue is empty.
func (b *signInBatcher) write() {
	for {
		b.mu.Lock()
		n := min(len(b.queue), maxSignInBatch)
		batch := b.queue[:n:n]
		b.queue = b.queue[n:]
		if n == 0 {
			b.writing = false
			b.queue = nil
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		b.commit(batch)
	}
}

// commit writes one batch. A record whose caller gave up is left out; a
// record whose person is gone fails alone; a database error fails the
// whole batch, which then wrote nothing.
func (b *signInBatcher) commit(batch []*signInRecord) {
	live := batch[:0:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- dbErr("recording a sign-in", err)
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	results := make([]error, len(live))
	// The batch's transaction belongs to no one caller — one caller's
	// deadline must not roll back the others' rows — but it ends when
	// every caller has given up: rows are never written for sign-ins that
	// were all refused meanwhile (while BEGIN waited for the write lock).
	ctx, cancel := allDone(live)
	defer cancel()
	err := b.d.inTx(ctx, "recording sign-ins", func(tx *sql.Tx) error {
		record, audit := tx.StmtContext(ctx, b.d.recordSignIn), tx.StmtContext(ctx, b.d.appendEvent)
		for i, r := range live {
			// A caller that gave up while the transaction began: its
			// sign-in was refused, so its rows are not written. (The
			// window left is the few statements to the commit.)
			if err := r.ctx.Err(); err != nil {
				results[i] = dbErr("recording a sign-in", err)
				continue
			}
			s, e := r.signIn, r.event
			res, err := record.ExecContext(ctx, r.personID, toMicro(s.At), truncateUTF8(s.ClientID, MaxIdentifierLen),
				truncateUTF8(s.Flow, 32), truncateUTF8(s.IP, 64))
			if err != nil {
				return dbErr("recording a sign-in", err)
			}
			if n, err := res.RowsAffected(); err != nil {
				return dbErr("recording a sign-in", err)
			} else if n == 0 {
				results[i] = fmt.Errorf("recording a sign-in: person %s: %w", truncateForMessage(r.personID), ErrNotFound)
				continue
			}
			if _, err := audit.ExecContext(ctx, toMicro(e.Time), e.Actor, e.Action, e.PersonID, e.ClientID, e.Flow, e.IP,
				truncateUTF8(e.UserAgent, 512), e.Result, truncateUTF8(e.Reason, 1024), e.Ref); err != nil {
				return dbErr("appending an audit event", err)
			}
		}
		return nil
	})
	for i, r := range live {
		if err != nil && results[i] == nil {
			r.done <- err
		} else {
			r.done <- results[i]
		}
	}
}

// allDone returns a context that ends when every record's context has
// ended (or when cancel is called).
func allDone(records []*signInRecord) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	left := len(records)
	stops := make([]func() bool, 0, len(records))
	for _, r := range records {
		stops = append(stops, context.AfterFunc(r.ctx, func() {
			mu.Lock()
			defer mu.Unlock()
			if left--; left == 0 {
				cancel()
			}
		}))
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}
