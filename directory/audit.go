package directory

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"time"
)

// Event is one row of the audit trail.
type Event struct {
	ID        int64     // set when read back; increases with each Append
	Time      time.Time // zero: the directory's clock
	Actor     string    // "cli", or the id of the person who acted
	Action    string    // what happened, e.g. "sign_in", "person.update"; required
	PersonID  string    // whom it concerns
	ClientID  string
	Flow      string
	IP        string
	UserAgent string // cut to 512 bytes
	Result    string // e.g. "ok", "denied", "error"
	Reason    string // cut to 1024 bytes
	Ref       string // the reference a page showed (NewRef)
}

// AuditQuery selects events for Query: newest first.
type AuditQuery struct {
	PersonID string
	Action   string
	Ref      string
	Since    time.Time // zero: from the beginning
	Limit    int       // default 100, at most 1000
	Offset   int
}

// Audit is the audit trail.
type Audit struct{ d *Directory }

const appendEventSQL = `INSERT INTO audit_events
	(at, actor, action, person_id, client_id, flow, ip, user_agent, result, reason, ref)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`

// Append adds an event: one INSERT. Identifiers (action, actor, ids, flow,
// IP, result, ref) longer than their limits are refused with ErrInvalid;
// free text (user agent, reason) is cut and made valid UTF-8, since it is
// recorded as received.
func (a Audit) Append(ctx context.Context, e Event) error {
	if err := validateEvent(e); err != nil {
		return err
	}
	at := e.Time
	if at.IsZero() {
		at = a.d.now()
	}
	_, err := a.d.appendEvent.ExecContext(ctx, toMicro(at), e.Actor, e.Action, e.PersonID, e.ClientID, e.Flow, e.IP,
		truncateUTF8(e.UserAgent, 512), e.Result, truncateUTF8(e.Reason, 1024), e.Ref)
	if err != nil {
		return dbErr("appending an audit event", err)
	}
	return nil
}

func validateEvent(e Event) error {
	if e.Action == "" {
		return invalid("action", "required, e.g. sign_in")
	}
	for _, f := range []struct {
		name, value string
		max         int
	}{
		{"action", e.Action, 64}, {"actor", e.Actor, MaxIdentifierLen}, {"person_id", e.PersonID, MaxIdentifierLen},
		{"client_id", e.ClientID, MaxIdentifierLen}, {"flow", e.Flow, 32}, {"ip", e.IP, 64},
		{"result", e.Result, 32}, {"ref", e.Ref, 16},
	} {
		if len(f.value) > f.max {
			return invalid(f.name, "too long: at most %d characters", f.max)
		}
		if err := validIdentifier(f.name, f.value, false); err != nil {
			return err
		}
	}
	return nil
}

// Query returns events matching q, newest first.
func (a Audit) Query(ctx context.Context, q AuditQuery) ([]Event, error) {
	limit, offset, err := page(q.Limit, q.Offset, 100, 1000)
	if err != nil {
		return nil, err
	}
	var where []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
	}
	if q.PersonID != "" {
		add("person_id = ?", q.PersonID)
	}
	if q.Action != "" {
		add("action = ?", q.Action)
	}
	if q.Ref != "" {
		add("ref = ?", strings.ToUpper(q.Ref))
	}
	if !q.Since.IsZero() {
		add("at >= ?", toMicro(q.Since))
	}
	query := `SELECT id, at, actor, action, person_id, client_id, flow, ip, user_agent, result, reason, ref
		FROM audit_events`
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY at DESC, id DESC LIMIT " + strconv.Itoa(limit) + " OFFSET " + strconv.Itoa(offset)
	rows, err := a.d.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, dbErr("querying the audit trail", err)
	}
	return scanEvents(rows, "querying the audit trail")
}

// scanEvents reads audit rows (id, at, actor, action, person_id, client_id,
// flow, ip, user_agent, result, reason, ref) and closes them.
func scanEvents(rows *sql.Rows, what string) ([]Event, error) {
	defer rows.Close()
	out := []Event{}
	for rows.Next() {
		var e Event
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.PersonID, &e.ClientID, &e.Flow, &e.IP,
			&e.UserAgent, &e.Result, &e.Reason, &e.Ref); err != nil {
			return nil, dbErr(what, err)
		}
		e.Time = fromMicro(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr(what, err)
	}
	return out, nil
}

// Revocations returns the revoking events (person.disable, person.remove)
// with an id above afterID, oldest first, at most limit (default 100): the
// server's revocation loop reads them to end the access of people disabled
// or removed by the console, the CLI or another replica.
func (a Audit) Revocations(ctx context.Context, afterID int64, limit int) ([]Event, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	rows, err := a.d.db.QueryContext(ctx, `SELECT id, at, actor, action, person_id, client_id, flow, ip, user_agent, result, reason, ref
		FROM audit_events WHERE id > $1 AND action IN ($2, $3) ORDER BY id ASC LIMIT `+strconv.Itoa(limit),
		afterID, ActionPersonDisable, ActionPersonRemove)
	if err != nil {
		return nil, dbErr("reading revocations", err)
	}
	return scanEvents(rows, "reading revocations")
}

// LatestID is the id of the newest event (0 when there is none): where a
// revocation loop that starts now begins.
func (a Audit) LatestID(ctx context.Context) (int64, error) {
	var id int64
	if err := a.d.db.QueryRowContext(ctx, "SELECT COALESCE(MAX(id), 0) FROM audit_events").Scan(&id); err != nil {
		return 0, dbErr("reading the audit trail", err)
	}
	return id, nil
}

// Prune deletes events older than before (retention) and returns how many.
// The caller runs it in the background.
func (a Audit) Prune(ctx context.Context, before time.Time) (int64, error) {
	res, err := a.d.db.ExecContext(ctx, "DELETE FROM audit_events WHERE at < $1", toMicro(before))
	if err != nil {
		return 0, dbErr("pruning the audit trail", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, dbErr("pruning the audit trail", err)
	}
	return n, nil
}

// Audit actions. Every part of the program writes these names, so that the
// audit page, the CLI's --action filter and the revocation loop agree.
const (
	ActionSignIn           = "sign_in"           // Result: ok, denied, pending, error
	ActionPersonCreate     = "person.create"     // by an admin, the CLI or an open sign-in
	ActionPersonApprove    = "person.approve"    // pending → active
	ActionPersonDeny       = "person.deny"       // a pending person refused (removed)
	ActionPersonDisable    = "person.disable"    // sessions and tokens end at once
	ActionPersonEnable     = "person.enable"     // disabled → active
	ActionPersonRemove     = "person.remove"     // deleted; sessions and tokens end at once
	ActionPersonUpdate     = "person.update"     // name, email, username
	ActionPersonGroups     = "person.groups"     // group membership changed
	ActionIdentityBind     = "identity.bind"     // an upstream account bound to a person
	ActionIdentityRefused  = "identity.refused"  // bound to someone else already: never moved
	ActionInvitationCreate = "invitation.create" //
	ActionInvitationUse    = "invitation.use"    // Result ok, or why not (used, expired, revoked)
	ActionInvitationRevoke = "invitation.revoke" //
	ActionSessionRevoke    = "session.revoke"    // an admin ended one session or refresh family
	ActionAdminSignIn      = "admin.sign_in"     // someone used the console
	ActionImport           = "people.import"     // a CSV import (Reason: the summary)
)

// Actions are every audit action, in the order above: what the console's
// filter offers and the CLI's --action accepts.
func Actions() []string {
	return []string{
		ActionSignIn, ActionPersonCreate, ActionPersonApprove, ActionPersonDeny,
		ActionPersonDisable, ActionPersonEnable, ActionPersonRemove, ActionPersonUpdate,
		ActionPersonGroups, ActionIdentityBind, ActionIdentityRefused,
		ActionInvitationCreate, ActionInvitationUse, ActionInvitationRevoke,
		ActionSessionRevoke, ActionAdminSignIn, ActionImport,
	}
}

// Revoking reports whether an action ends a person's access at once: the
// server's revocation loop acts on these rows, wherever they were written
// (console, CLI, another replica).
func Revoking(action string) bool {
	return action == ActionPersonDisable || action == ActionPersonRemove
}
