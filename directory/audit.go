package directory

import (
	"context"
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
	defer rows.Close()
	out := []Event{}
	for rows.Next() {
		var e Event
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.PersonID, &e.ClientID, &e.Flow, &e.IP,
			&e.UserAgent, &e.Result, &e.Reason, &e.Ref); err != nil {
			return nil, dbErr("querying the audit trail", err)
		}
		e.Time = fromMicro(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr("querying the audit trail", err)
	}
	return out, nil
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
