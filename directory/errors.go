package directory

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Errors callers tell apart with errors.Is. Messages say what to do; none
// carries a token, a URL with a password or a row's personal data.
var (
	// ErrNotFound: no person, invitation or profile matches.
	ErrNotFound = errors.New("directory: not found")
	// ErrUsernameTaken: another person has this username (compared
	// case-insensitively). Choose another username.
	ErrUsernameTaken = errors.New("directory: username is taken by another person; choose another username")
	// ErrIdentityTaken: the upstream identity (openid or unionid) is bound to
	// another person. Unbind it there first; it is never moved silently.
	ErrIdentityTaken = errors.New("directory: this upstream identity is bound to another person; unbind it there first")
	// ErrInvitationUsed: the invitation was already redeemed.
	ErrInvitationUsed = errors.New("directory: invitation already used; ask for a new invitation")
	// ErrInvitationExpired: the invitation's expiry has passed.
	ErrInvitationExpired = errors.New("directory: invitation expired; ask for a new invitation")
	// ErrInvitationRevoked: an administrator revoked the invitation.
	ErrInvitationRevoked = errors.New("directory: invitation revoked; ask for a new invitation")
	// ErrNotPending: Approve was called for a person who is not pending.
	ErrNotPending = errors.New("directory: person is not pending approval")
	// ErrDisabled: the operation would re-activate a disabled person (an
	// invitation for a disabled username); an administrator must enable the
	// person first.
	ErrDisabled = errors.New("directory: person is disabled; an administrator must enable them first")
	// ErrSchemaTooNew: the database was migrated by a newer binary.
	ErrSchemaTooNew = errors.New("directory: database schema is newer than this binary")
	// ErrInvalid: input broke a rule; the error is a *ValidationError (or,
	// from import, an ImportErrors) naming the field.
	ErrInvalid = errors.New("directory: invalid input")
	// ErrUnavailable: the database could not answer (down, unreachable,
	// locked past the busy timeout, closed, or failing). Retry later; it
	// says nothing about whether the row exists.
	ErrUnavailable = errors.New("directory: database unavailable")
)

// ValidationError is a rule broken by one field of the input. It matches
// ErrInvalid with errors.Is.
type ValidationError struct {
	Field   string // the field's name as the caller knows it: "username", "email", "groups", ...
	Message string // what is wrong and what is accepted
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Message }

// Is reports ErrInvalid as a match.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// schemaTooNewError carries the two versions; it matches ErrSchemaTooNew.
type schemaTooNewError struct{ database, binary int }

func (e *schemaTooNewError) Error() string {
	return fmt.Sprintf("the database was migrated by a newer wechat-oidc (schema %d, this binary knows up to %d): upgrade this binary",
		e.database, e.binary)
}

func (e *schemaTooNewError) Is(target error) bool { return target == ErrSchemaTooNew }

// dbError is an error from the database driver, with the operation that
// failed. It matches ErrUnavailable unless the caller cancelled the context
// (then it is the caller's doing, not the database's), and unwraps to the
// driver's error so context errors stay visible.
type dbError struct {
	op  string
	err error
}

func (e *dbError) Error() string {
	return "directory: " + e.op + ": database error (is the database up and reachable?): " + e.err.Error()
}

func (e *dbError) Unwrap() error { return e.err }

func (e *dbError) Is(target error) bool {
	return target == ErrUnavailable && !errors.Is(e.err, context.Canceled)
}

// dbErr wraps a driver error. sql.ErrNoRows is the callers' business and
// must be handled before; domain errors pass through unchanged so that a
// function may wrap whatever its helpers returned.
func dbErr(op string, err error) error {
	if err == nil {
		return nil
	}
	var de *dbError
	if errors.As(err, &de) || isDomainError(err) {
		return err
	}
	return &dbError{op: op, err: err}
}

func isDomainError(err error) bool {
	for _, d := range []error{ErrNotFound, ErrUsernameTaken, ErrIdentityTaken, ErrInvitationUsed,
		ErrInvitationExpired, ErrInvitationRevoked, ErrNotPending, ErrDisabled, ErrSchemaTooNew, ErrInvalid} {
		if errors.Is(err, d) {
			return true
		}
	}
	return false
}

// isUniqueViolation reports a unique or primary-key constraint violation
// from either backend.
func isUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505" // unique_violation
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	// Anything else reporting a constraint by message only (defensive).
	return strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// errNoRows converts sql.ErrNoRows to ErrNotFound with context.
func notFound(what string, err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, ErrNotFound)
	}
	return dbErr("reading "+what, err)
}

// isBusy says whether err is SQLite's "database is locked" (SQLITE_BUSY).
func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}
