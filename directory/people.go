package directory

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Status says whether a person may sign in.
type Status string

const (
	StatusActive   Status = "active"   // may sign in (subject to the access rules)
	StatusPending  Status = "pending"  // waits for an administrator's approval
	StatusDisabled Status = "disabled" // refused
)

// Person is someone the provider knows.
type Person struct {
	// ID is random and never reassigned: "p_" and 20 base32 characters.
	ID string
	// Username is lowercase, unique; the preferred_username claim.
	Username    string
	DisplayName string
	Email       string
	// EmailVerified: the email was set by an administrator or an
	// invitation, not typed in by the person.
	EmailVerified bool
	// Groups are sorted, without duplicates.
	Groups    []string
	Status    Status
	CreatedAt time.Time
	UpdatedAt time.Time
	// LastSignIn is nil until the first recorded sign-in.
	LastSignIn *SignIn
}

// SignIn is a successful sign-in as RecordSignIn stores it.
type SignIn struct {
	At       time.Time // zero: the directory's clock
	ClientID string    // the relying party
	Flow     string    // e.g. "qr", "oauth", "silent"
	IP       string
}

// NewPerson is what Create needs.
type NewPerson struct {
	Username      string // 1-64 of [a-z0-9._-], starting with a letter or digit; lowercased
	DisplayName   string
	Email         string
	EmailVerified bool
	Groups        []string
	Status        Status // empty: active
}

// PersonUpdate lists the changes Update makes; nil fields stay as they are.
type PersonUpdate struct {
	DisplayName *string
	// Email, when set, also sets email_verified to EmailVerified (false
	// when EmailVerified is nil): say who vouches for the new address.
	Email         *string
	EmailVerified *bool
	Groups        *[]string // a pointer to an empty list removes every group
	Status        *Status
}

// PersonQuery selects people for Search.
type PersonQuery struct {
	// Text matches a substring of the username, display name, email, or a
	// bound openid or unionid, ignoring ASCII case. Empty matches everyone.
	Text string
	// Status, when set, keeps only people with that status.
	Status Status
	// Limit is the page size (default 50, at most 1000); Offset skips that
	// many people. Results are ordered by username, so pages are stable.
	Limit  int
	Offset int
}

// People manages persons and their identities.
type People struct{ d *Directory }

// personColumns are read by scanPerson, in this order, from alias p.
const personColumns = `p.id, p.username, p.display_name, p.email, p.email_verified, p.group_names, p.status,
	p.created_at, p.updated_at, p.last_sign_in_at, p.last_sign_in_client, p.last_sign_in_flow, p.last_sign_in_ip`

type rowScanner interface{ Scan(dest ...any) error }

func scanPerson(r rowScanner) (Person, error) {
	var (
		p                            Person
		verified                     int
		groups, status               string
		created, updated             int64
		lastAt                       sql.NullInt64
		lastClient, lastFlow, lastIP string
	)
	if err := r.Scan(&p.ID, &p.Username, &p.DisplayName, &p.Email, &verified, &groups, &status,
		&created, &updated, &lastAt, &lastClient, &lastFlow, &lastIP); err != nil {
		return Person{}, err
	}
	p.EmailVerified = verified != 0
	p.Groups = splitGroups(groups)
	p.Status = Status(status)
	p.CreatedAt, p.UpdatedAt = fromMicro(created), fromMicro(updated)
	if lastAt.Valid {
		p.LastSignIn = &SignIn{At: fromMicro(lastAt.Int64), ClientID: lastClient, Flow: lastFlow, IP: lastIP}
	}
	return p, nil
}

func joinGroups(g []string) string { return strings.Join(g, " ") }

func splitGroups(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, " ")
}

// validateNewPerson normalises np in place.
func validateNewPerson(np *NewPerson) error {
	var err error
	if np.Username, err = normalizeUsername(np.Username); err != nil {
		return err
	}
	if err := validateDisplayName(np.DisplayName); err != nil {
		return err
	}
	if err := validateEmail(np.Email); err != nil {
		return err
	}
	if np.Groups, err = normalizeGroups(np.Groups); err != nil {
		return err
	}
	if np.Status == "" {
		np.Status = StatusActive
	}
	if np.Status, err = parseStatus(string(np.Status)); err != nil {
		return err
	}
	return nil
}

// Create adds a person with a new random id. A username already in use
// (in any case) fails with ErrUsernameTaken.
func (pp People) Create(ctx context.Context, np NewPerson) (Person, error) {
	if err := validateNewPerson(&np); err != nil {
		return Person{}, err
	}
	return pp.d.insertPerson(ctx, pp.d.db, np)
}

func (d *Directory) insertPerson(ctx context.Context, q querier, np NewPerson) (Person, error) {
	now := d.nowMicro()
	p := Person{
		ID: newPersonID(), Username: np.Username, DisplayName: np.DisplayName, Email: np.Email,
		EmailVerified: np.Email != "" && np.EmailVerified, Groups: np.Groups, Status: np.Status,
		CreatedAt: fromMicro(now), UpdatedAt: fromMicro(now),
	}
	_, err := q.ExecContext(ctx, `INSERT INTO people
		(id, username, display_name, email, email_verified, group_names, status, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		p.ID, p.Username, p.DisplayName, p.Email, boolInt(p.EmailVerified), joinGroups(p.Groups), string(p.Status), now, now)
	if isUniqueViolation(err) {
		return Person{}, fmt.Errorf("creating %q: %w", p.Username, ErrUsernameTaken)
	}
	if err != nil {
		return Person{}, dbErr("creating a person", err)
	}
	return p, nil
}

// Get returns the person with this id, or ErrNotFound.
// getPersonSQL is prepared: every token use asks it (the account check).
const getPersonSQL = "SELECT " + personColumns + " FROM people p WHERE p.id = $1"

func (pp People) Get(ctx context.Context, id string) (Person, error) {
	p, err := scanPerson(pp.d.getPerson.QueryRowContext(ctx, id))
	if err != nil {
		return Person{}, notFound("person "+truncateForMessage(id), err)
	}
	return p, nil
}

// GetByUsername returns the person with this username, compared
// case-insensitively, or ErrNotFound.
func (pp People) GetByUsername(ctx context.Context, username string) (Person, error) {
	p, err := scanPerson(pp.d.db.QueryRowContext(ctx, "SELECT "+personColumns+" FROM people p WHERE p.username = $1",
		strings.ToLower(username)))
	if err != nil {
		return Person{}, notFound("username "+strconv.Quote(truncateForMessage(username)), err)
	}
	return p, nil
}

// likePattern is a LIKE pattern matching s as a substring, with LIKE's
// wildcards in s taken literally (used with ESCAPE '\').
func likePattern(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(strings.ToLower(s)) + "%"
}

// Search lists people matching q, ordered by username.
func (pp People) Search(ctx context.Context, q PersonQuery) ([]Person, error) {
	limit, offset, err := page(q.Limit, q.Offset, 50, 1000)
	if err != nil {
		return nil, err
	}
	var where []string
	var args []any
	arg := func(v any) string { args = append(args, v); return "$" + strconv.Itoa(len(args)) }
	if q.Status != "" {
		st, err := parseStatus(string(q.Status))
		if err != nil {
			return nil, err
		}
		where = append(where, "p.status = "+arg(string(st)))
	}
	if q.Text != "" {
		if len(q.Text) > 256 {
			return nil, invalid("text", "too long: at most 256 characters")
		}
		pat := arg(likePattern(q.Text))
		like := func(col string) string { return "lower(" + col + ") LIKE " + pat + ` ESCAPE '\'` }
		where = append(where, "("+strings.Join([]string{
			like("p.username"), like("p.display_name"), like("p.email"),
			"EXISTS (SELECT 1 FROM identities i WHERE i.person_id = p.id AND (" + like("i.openid") + " OR " + like("i.unionid") + "))",
		}, " OR ")+")")
	}
	query := "SELECT " + personColumns + " FROM people p"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY p.username LIMIT " + arg(limit) + " OFFSET " + arg(offset)
	rows, err := pp.d.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, dbErr("searching people", err)
	}
	defer rows.Close()
	out := []Person{}
	for rows.Next() {
		p, err := scanPerson(rows)
		if err != nil {
			return nil, dbErr("searching people", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr("searching people", err)
	}
	return out, nil
}

// page validates paging parameters and applies the default.
func page(limit, offset, def, max int) (int, int, error) {
	switch {
	case limit < 0:
		return 0, 0, invalid("limit", "must not be negative")
	case limit > max:
		return 0, 0, invalid("limit", "at most %d", max)
	case offset < 0:
		return 0, 0, invalid("offset", "must not be negative")
	case limit == 0:
		limit = def
	}
	return limit, offset, nil
}

// lockPerson reads a person inside tx, locking the row (PostgreSQL) until
// the transaction ends. where is "p.id = $1" or "p.username = $1".
func (d *Directory) lockPerson(ctx context.Context, tx *sql.Tx, where string, arg any) (Person, error) {
	return scanPerson(tx.QueryRowContext(ctx, "SELECT "+personColumns+" FROM people p WHERE "+where+d.dialect.forUpdate(), arg))
}

// writePerson stores every mutable field of p and sets its UpdatedAt.
func (d *Directory) writePerson(ctx context.Context, q querier, p *Person) error {
	now := d.nowMicro()
	res, err := q.ExecContext(ctx, `UPDATE people SET username = $2, display_name = $3, email = $4,
		email_verified = $5, group_names = $6, status = $7, updated_at = $8 WHERE id = $1`,
		p.ID, p.Username, p.DisplayName, p.Email, boolInt(p.EmailVerified), joinGroups(p.Groups), string(p.Status), now)
	if isUniqueViolation(err) {
		return fmt.Errorf("renaming to %q: %w", p.Username, ErrUsernameTaken)
	}
	if err != nil {
		return dbErr("updating a person", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return dbErr("updating a person", err)
	} else if n == 0 {
		return fmt.Errorf("person %s: %w", p.ID, ErrNotFound)
	}
	p.UpdatedAt = fromMicro(now)
	return nil
}

// Update changes the fields set in u and returns the person as stored.
func (pp People) Update(ctx context.Context, id string, u PersonUpdate) (Person, error) {
	var err error
	if u.DisplayName != nil {
		if err := validateDisplayName(*u.DisplayName); err != nil {
			return Person{}, err
		}
	}
	if u.Email != nil {
		if err := validateEmail(*u.Email); err != nil {
			return Person{}, err
		}
	}
	var groups []string
	if u.Groups != nil {
		if groups, err = normalizeGroups(*u.Groups); err != nil {
			return Person{}, err
		}
	}
	var status Status
	if u.Status != nil {
		if status, err = parseStatus(string(*u.Status)); err != nil {
			return Person{}, err
		}
	}
	var p Person
	err = pp.d.inTx(ctx, "updating a person", func(tx *sql.Tx) error {
		var err error
		if p, err = pp.d.lockPerson(ctx, tx, "p.id = $1", id); err != nil {
			return notFound("person "+truncateForMessage(id), err)
		}
		if u.DisplayName != nil {
			p.DisplayName = *u.DisplayName
		}
		if u.Email != nil {
			p.Email = *u.Email
			p.EmailVerified = u.EmailVerified != nil && *u.EmailVerified
		} else if u.EmailVerified != nil {
			p.EmailVerified = *u.EmailVerified
		}
		p.EmailVerified = p.EmailVerified && p.Email != ""
		if u.Groups != nil {
			p.Groups = groups
		}
		if u.Status != nil {
			p.Status = status
		}
		return pp.d.writePerson(ctx, tx, &p)
	})
	if err != nil {
		return Person{}, err
	}
	return p, nil
}

// Approve turns a pending person active under the username and groups an
// administrator chose. A person who is not pending fails with
// ErrNotPending; a username in use, with ErrUsernameTaken.
func (pp People) Approve(ctx context.Context, id, username string, groups []string) (Person, error) {
	username, err := normalizeUsername(username)
	if err != nil {
		return Person{}, err
	}
	if groups, err = normalizeGroups(groups); err != nil {
		return Person{}, err
	}
	var p Person
	err = pp.d.inTx(ctx, "approving a person", func(tx *sql.Tx) error {
		var err error
		if p, err = pp.d.lockPerson(ctx, tx, "p.id = $1", id); err != nil {
			return notFound("person "+truncateForMessage(id), err)
		}
		if p.Status != StatusPending {
			return fmt.Errorf("person %s is %s: %w", p.ID, p.Status, ErrNotPending)
		}
		p.Username, p.Groups, p.Status = username, groups, StatusActive
		return pp.d.writePerson(ctx, tx, &p)
	})
	if err != nil {
		return Person{}, err
	}
	return p, nil
}

// Delete removes the person, their identity bindings and the profiles
// learned for those identities. Audit rows stay (until pruned). The id is
// never given to anyone else.
func (pp People) Delete(ctx context.Context, id string) error {
	// Profiles are deleted: the next sign-in must store them again. (A
	// deletion by another process is not seen here; Remember then skips
	// an unchanged profile for at most profileRewriteAfter, which costs a
	// silent sign-in its openid → unionid link, so a consent popup.)
	defer pp.d.profilesStored.forget()
	return pp.d.inTx(ctx, "deleting a person", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM upstream_profiles WHERE EXISTS (
			SELECT 1 FROM identities i WHERE i.person_id = $1 AND i.provider = upstream_profiles.provider AND (
				(i.openid <> '' AND i.app_id = upstream_profiles.app_id AND i.openid = upstream_profiles.openid) OR
				(i.unionid <> '' AND i.unionid = upstream_profiles.unionid)))`, id); err != nil {
			return dbErr("deleting profiles", err)
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM identities WHERE person_id = $1", id); err != nil {
			return dbErr("deleting identities", err)
		}
		res, err := tx.ExecContext(ctx, "DELETE FROM people WHERE id = $1", id)
		if err != nil {
			return dbErr("deleting a person", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return dbErr("deleting a person", err)
		} else if n == 0 {
			return fmt.Errorf("person %s: %w", truncateForMessage(id), ErrNotFound)
		}
		return nil
	})
}

const recordSignInSQL = `UPDATE people SET last_sign_in_at = $2, last_sign_in_client = $3,
	last_sign_in_flow = $4, last_sign_in_ip = $5 WHERE id = $1`

// RecordSignIn stores the person's last sign-in: one UPDATE. Values longer
// than their columns' limits (client id 128, flow 32, IP 64 bytes) are cut:
// a sign-in is never refused for its bookkeeping.
func (pp People) RecordSignIn(ctx context.Context, personID string, s SignIn) error {
	at := s.At
	if at.IsZero() {
		at = pp.d.now()
	}
	res, err := pp.d.recordSignIn.ExecContext(ctx, personID, toMicro(at), truncateUTF8(s.ClientID, MaxIdentifierLen), truncateUTF8(s.Flow, 32), truncateUTF8(s.IP, 64))
	if err != nil {
		return dbErr("recording a sign-in", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return dbErr("recording a sign-in", err)
	}
	if n == 0 {
		return fmt.Errorf("recording a sign-in: person %s: %w", truncateForMessage(personID), ErrNotFound)
	}
	return nil
}
