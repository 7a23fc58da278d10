package directory

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// InvitationState is where an invitation stands, at the directory's clock.
type InvitationState string

const (
	InvitationPending InvitationState = "pending" // may be redeemed
	InvitationUsed    InvitationState = "used"
	InvitationExpired InvitationState = "expired"
	InvitationRevoked InvitationState = "revoked"
)

// Invitation lets whoever holds its token bind their upstream identity to a
// person prepared by an administrator (created, or activated if the
// username exists and is pending or active).
type Invitation struct {
	ID          string // "inv_…": names the invitation in lists; not the token
	Username    string
	DisplayName string
	Email       string
	Groups      []string
	ClientID    string // where the person lands after redeeming
	CreatedBy   string // "cli" or a person id
	CreatedAt   time.Time
	ExpiresAt   time.Time
	UsedAt      time.Time // zero until redeemed
	UsedBy      string    // the person it was redeemed for
	RevokedAt   time.Time // zero unless revoked
	State       InvitationState
}

// NewInvitation is what Invitations.Create needs.
type NewInvitation struct {
	Username    string
	DisplayName string
	Email       string
	Groups      []string
	ClientID    string
	// TTL is how long the token may be redeemed: default 7 days, at most
	// 90 days.
	TTL       time.Duration
	CreatedBy string
}

// Invitation lifetimes.
const (
	DefaultInvitationTTL = 7 * 24 * time.Hour
	MaxInvitationTTL     = 90 * 24 * time.Hour
)

// maxTokenLen bounds what is hashed for a lookup; real tokens are 43
// characters.
const maxTokenLen = 256

// Invitations manages invitations.
type Invitations struct{ d *Directory }

const invitationColumns = `id, username, display_name, email, group_names, client_id, created_by,
	created_at, expires_at, used_at, used_by, revoked_at`

// scanInvitation reads invitationColumns and computes the state at now.
func scanInvitation(r rowScanner, now int64) (Invitation, error) {
	var (
		inv               Invitation
		groups            string
		created, expires  int64
		usedAt, revokedAt sql.NullInt64
	)
	if err := r.Scan(&inv.ID, &inv.Username, &inv.DisplayName, &inv.Email, &groups, &inv.ClientID, &inv.CreatedBy,
		&created, &expires, &usedAt, &inv.UsedBy, &revokedAt); err != nil {
		return Invitation{}, err
	}
	inv.Groups = splitGroups(groups)
	inv.CreatedAt, inv.ExpiresAt = fromMicro(created), fromMicro(expires)
	inv.UsedAt, inv.RevokedAt = fromNullMicro(usedAt), fromNullMicro(revokedAt)
	inv.State = invitationState(inv, now)
	return inv, nil
}

// invitationState: used wins over revoked wins over expired. Expired from
// the instant ExpiresAt is reached.
func invitationState(inv Invitation, now int64) InvitationState {
	switch {
	case !inv.UsedAt.IsZero():
		return InvitationUsed
	case !inv.RevokedAt.IsZero():
		return InvitationRevoked
	case now >= toMicro(inv.ExpiresAt):
		return InvitationExpired
	}
	return InvitationPending
}

// Create stores an invitation and returns it with its token: 256 random
// bits, base64url. The token is shown this once; only its SHA-256 is kept.
func (is Invitations) Create(ctx context.Context, ni NewInvitation) (Invitation, string, error) {
	np := NewPerson{Username: ni.Username, DisplayName: ni.DisplayName, Email: ni.Email, Groups: ni.Groups}
	if err := validateNewPerson(&np); err != nil {
		return Invitation{}, "", err
	}
	if err := validIdentifier("client_id", ni.ClientID, false); err != nil {
		return Invitation{}, "", err
	}
	if err := validIdentifier("created_by", ni.CreatedBy, false); err != nil {
		return Invitation{}, "", err
	}
	ttl := ni.TTL
	switch {
	case ttl == 0:
		ttl = DefaultInvitationTTL
	case ttl < 0 || ttl > MaxInvitationTTL:
		return Invitation{}, "", invalid("ttl", "must be between 1s and %s", MaxInvitationTTL)
	}
	now := is.d.now()
	inv := Invitation{
		ID: newInvitationID(), Username: np.Username, DisplayName: np.DisplayName, Email: np.Email,
		Groups: np.Groups, ClientID: ni.ClientID, CreatedBy: ni.CreatedBy,
		CreatedAt: fromMicro(toMicro(now)), ExpiresAt: fromMicro(toMicro(now.Add(ttl))), State: InvitationPending,
	}
	token := newInvitationToken()
	_, err := is.d.db.ExecContext(ctx, `INSERT INTO invitations (id, token_sha256, username, display_name, email,
		group_names, client_id, created_by, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		inv.ID, tokenHash(token), inv.Username, inv.DisplayName, inv.Email, joinGroups(inv.Groups), inv.ClientID,
		inv.CreatedBy, toMicro(inv.CreatedAt), toMicro(inv.ExpiresAt))
	if err != nil {
		return Invitation{}, "", dbErr("creating an invitation", err)
	}
	return inv, token, nil
}

// Get returns the invitation a token belongs to, in any state, or
// ErrNotFound.
func (is Invitations) Get(ctx context.Context, token string) (Invitation, error) {
	return is.getByToken(ctx, is.d.db, token, "")
}

// GetByID returns an invitation by its id, or ErrNotFound.
func (is Invitations) GetByID(ctx context.Context, id string) (Invitation, error) {
	inv, err := scanInvitation(is.d.db.QueryRowContext(ctx,
		"SELECT "+invitationColumns+" FROM invitations WHERE id = $1", id), is.d.nowMicro())
	if err != nil {
		return Invitation{}, notFound("invitation "+truncateForMessage(id), err)
	}
	return inv, nil
}

func (is Invitations) getByToken(ctx context.Context, q querier, token, lock string) (Invitation, error) {
	if token == "" || len(token) > maxTokenLen {
		return Invitation{}, fmt.Errorf("invitation: %w", ErrNotFound)
	}
	inv, err := scanInvitation(q.QueryRowContext(ctx,
		"SELECT "+invitationColumns+" FROM invitations WHERE token_sha256 = $1"+lock, tokenHash(token)), is.d.nowMicro())
	if err != nil {
		return Invitation{}, notFound("invitation", err)
	}
	return inv, nil
}

// stateErr is the error for redeeming an invitation in state s.
func stateErr(s InvitationState) error {
	switch s {
	case InvitationUsed:
		return ErrInvitationUsed
	case InvitationRevoked:
		return ErrInvitationRevoked
	case InvitationExpired:
		return ErrInvitationExpired
	}
	return nil
}

// Redeem spends the invitation for the upstream identity that presents it,
// in one transaction: it creates the person with the invitation's username
// (or, if that username exists and is pending or active, updates it: the
// invitation's name and email replace the person's when given, its groups
// replace theirs), marks it active with the email verified, binds the
// identity, and marks the invitation used. Errors, after which nothing has
// changed: ErrNotFound (no such token), ErrInvitationUsed (also for every
// loser of a race: exactly one redemption wins), ErrInvitationRevoked,
// ErrInvitationExpired, ErrIdentityTaken (the identity belongs to another
// person), ErrDisabled (the username is disabled), ErrInvalid.
func (is Invitations) Redeem(ctx context.Context, token string, id Identity) (Person, error) {
	if err := id.validate(); err != nil {
		return Person{}, err
	}
	d := is.d
	var p Person
	err := d.inTx(ctx, "redeeming an invitation", func(tx *sql.Tx) error {
		now := d.nowMicro()
		inv, err := is.getByToken(ctx, tx, token, d.dialect.forUpdate())
		if err != nil {
			return err
		}
		if err := stateErr(invitationState(inv, now)); err != nil {
			return fmt.Errorf("invitation %s: %w", inv.ID, err)
		}
		// The claim: of racing redemptions, one updates the row; the others
		// (blocked on its row lock, or its write lock for SQLite) then find
		// it used. Checked again here in case the row lock was not taken.
		res, err := tx.ExecContext(ctx, `UPDATE invitations SET used_at = $2
			WHERE id = $1 AND used_at IS NULL AND revoked_at IS NULL AND expires_at > $2`, inv.ID, now)
		if err != nil {
			return dbErr("claiming an invitation", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return dbErr("claiming an invitation", err)
		} else if n != 1 {
			return fmt.Errorf("invitation %s: %w", inv.ID, ErrInvitationUsed)
		}
		if p, err = d.personForInvitation(ctx, tx, inv, id); err != nil {
			return err
		}
		if _, err := d.bindKeys(ctx, tx, p.ID, id.keys()); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, "UPDATE invitations SET used_by = $2 WHERE id = $1", inv.ID, p.ID); err != nil {
			return dbErr("marking an invitation used", err)
		}
		return nil
	})
	if err != nil {
		return Person{}, err
	}
	return p, nil
}

// personForInvitation creates or updates the person the invitation names,
// refusing when the identity already belongs to someone else.
func (d *Directory) personForInvitation(ctx context.Context, tx *sql.Tx, inv Invitation, id Identity) (Person, error) {
	p, err := d.lockPerson(ctx, tx, "p.username = $1", inv.Username)
	exists := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return Person{}, dbErr("reading a person", err)
	}
	for _, k := range id.keys() {
		owner, err := keyOwner(ctx, tx, k)
		if err != nil {
			return Person{}, err
		}
		if owner != "" && (!exists || owner != p.ID) {
			return Person{}, fmt.Errorf("%s: %w", k, ErrIdentityTaken)
		}
	}
	if !exists {
		return d.insertPerson(ctx, tx, NewPerson{Username: inv.Username, DisplayName: inv.DisplayName,
			Email: inv.Email, EmailVerified: true, Groups: inv.Groups, Status: StatusActive})
	}
	if p.Status == StatusDisabled {
		return Person{}, fmt.Errorf("username %q: %w", p.Username, ErrDisabled)
	}
	if inv.DisplayName != "" {
		p.DisplayName = inv.DisplayName
	}
	if inv.Email != "" {
		p.Email, p.EmailVerified = inv.Email, true
	}
	p.Groups, p.Status = inv.Groups, StatusActive
	if err := d.writePerson(ctx, tx, &p); err != nil {
		return Person{}, err
	}
	return p, nil
}

// Revoke makes an invitation unusable. Revoking twice is not an error;
// revoking a used one is ErrInvitationUsed; an unknown id, ErrNotFound.
func (is Invitations) Revoke(ctx context.Context, id string) error {
	return is.d.inTx(ctx, "revoking an invitation", func(tx *sql.Tx) error {
		var usedAt, revokedAt sql.NullInt64
		err := tx.QueryRowContext(ctx, "SELECT used_at, revoked_at FROM invitations WHERE id = $1"+is.d.dialect.forUpdate(), id).
			Scan(&usedAt, &revokedAt)
		if err != nil {
			return notFound("invitation "+truncateForMessage(id), err)
		}
		switch {
		case usedAt.Valid:
			return fmt.Errorf("invitation %s: %w", id, ErrInvitationUsed)
		case revokedAt.Valid:
			return nil
		}
		if _, err := tx.ExecContext(ctx, "UPDATE invitations SET revoked_at = $2 WHERE id = $1", id, is.d.nowMicro()); err != nil {
			return dbErr("revoking an invitation", err)
		}
		return nil
	})
}

// InvitationQuery selects invitations for List: newest first.
type InvitationQuery struct {
	State  InvitationState // empty: every state
	Limit  int             // default 50, at most 1000
	Offset int
}

// List returns invitations, newest first, in the given state.
func (is Invitations) List(ctx context.Context, q InvitationQuery) ([]Invitation, error) {
	limit, offset, err := page(q.Limit, q.Offset, 50, 1000)
	if err != nil {
		return nil, err
	}
	now := is.d.nowMicro()
	var where string
	var args []any
	switch q.State {
	case "":
	case InvitationUsed:
		where = " WHERE used_at IS NOT NULL"
	case InvitationRevoked:
		where = " WHERE used_at IS NULL AND revoked_at IS NOT NULL"
	case InvitationExpired:
		where, args = " WHERE used_at IS NULL AND revoked_at IS NULL AND expires_at <= $1", []any{now}
	case InvitationPending:
		where, args = " WHERE used_at IS NULL AND revoked_at IS NULL AND expires_at > $1", []any{now}
	default:
		return nil, invalid("state", "must be pending, used, expired or revoked")
	}
	rows, err := is.d.db.QueryContext(ctx, "SELECT "+invitationColumns+" FROM invitations"+where+
		" ORDER BY created_at DESC, id LIMIT "+strconv.Itoa(limit)+" OFFSET "+strconv.Itoa(offset), args...)
	if err != nil {
		return nil, dbErr("listing invitations", err)
	}
	defer rows.Close()
	out := []Invitation{}
	for rows.Next() {
		inv, err := scanInvitation(rows, now)
		if err != nil {
			return nil, dbErr("listing invitations", err)
		}
		out = append(out, inv)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr("listing invitations", err)
	}
	return out, nil
}
