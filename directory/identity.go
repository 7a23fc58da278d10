package directory

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ProviderWeChat is the provider name of WeChat identities.
const ProviderWeChat = "wechat"

// Identity is what an upstream says about who signed in: an openid, which
// is per app, and, when the app belongs to an open platform account, a
// unionid shared by that account's apps.
//
// Bound to a person, it is stored as up to two keys, each belonging to one
// person only: (provider, app id, openid) and (provider, unionid). Listed
// back (People.Identities), each key is one Identity: either AppID+OpenID
// or UnionID.
type Identity struct {
	Provider string // e.g. ProviderWeChat
	AppID    string // the upstream app the openid belongs to; required with OpenID
	OpenID   string
	UnionID  string
	// BoundAt is set in lists; ignored as input.
	BoundAt time.Time
}

// identityKey is one stored binding: an openid key or a unionid key.
type identityKey struct{ provider, appID, openid, unionid string }

func (k identityKey) String() string {
	if k.openid != "" {
		return fmt.Sprintf("%s openid %s (app %s)", k.provider, k.openid, k.appID)
	}
	return fmt.Sprintf("%s unionid %s", k.provider, k.unionid)
}

// validate checks an identity given to bind or redeem.
func (id Identity) validate() error {
	if err := validProvider(id.Provider); err != nil {
		return err
	}
	if err := validIdentifier("openid", id.OpenID, false); err != nil {
		return err
	}
	if err := validIdentifier("unionid", id.UnionID, false); err != nil {
		return err
	}
	if err := validIdentifier("app_id", id.AppID, id.OpenID != ""); err != nil {
		return err
	}
	switch {
	case id.OpenID == "" && id.AppID != "":
		return invalid("app_id", "only with an openid (a unionid is not per app)")
	case id.OpenID == "" && id.UnionID == "":
		return invalid("openid", "an openid (with its app_id) or a unionid is required")
	}
	return nil
}

// keys are the bindings id stands for, openid first.
func (id Identity) keys() []identityKey {
	var ks []identityKey
	if id.OpenID != "" {
		ks = append(ks, identityKey{provider: id.Provider, appID: id.AppID, openid: id.OpenID})
	}
	if id.UnionID != "" {
		ks = append(ks, identityKey{provider: id.Provider, unionid: id.UnionID})
	}
	return ks
}

// findByIdentitySQL is the sign-in lookup, one statement: the person bound
// to the openid, else to the unionid, else to the unionid learned for the
// openid at an earlier sign-in (upstream_profiles). The openid is the more
// specific key, so it wins when two people match. COALESCE stops at the
// first key that finds someone (both databases evaluate its arguments
// lazily), and each subquery finds at most one row: the keys are primary
// keys.
const findByIdentitySQL = `SELECT ` + personColumns + ` FROM people p WHERE p.id = COALESCE(
	(SELECT person_id FROM identities
	  WHERE provider = $1 AND app_id = $2 AND openid = $3 AND unionid = '' AND $3 <> ''),
	(SELECT person_id FROM identities
	  WHERE provider = $1 AND app_id = '' AND openid = '' AND unionid = $4 AND $4 <> ''),
	(SELECT i.person_id FROM upstream_profiles u JOIN identities i
	    ON i.provider = u.provider AND i.app_id = '' AND i.openid = '' AND i.unionid = u.unionid
	  WHERE u.provider = $1 AND u.app_id = $2 AND u.openid = $3 AND u.unionid <> '' AND $3 <> ''))`

// FindByIdentity returns the person an upstream identity is bound to, with
// groups, in one query: by openid, else by unionid (given, or learned for
// this openid by Profiles.Remember). Unbound: ErrNotFound. The caller
// decides what the person's status means.
func (pp People) FindByIdentity(ctx context.Context, id Identity) (Person, error) {
	if id.OpenID == "" && id.UnionID == "" {
		return Person{}, invalid("openid", "an openid or a unionid is required")
	}
	p, err := scanPerson(pp.d.findByIdentity.QueryRowContext(ctx, id.Provider, id.AppID, id.OpenID, id.UnionID))
	if err != nil {
		return Person{}, notFound("identity", err)
	}
	return p, nil
}

// BindIdentity binds the identity's keys (openid, unionid) to the person.
// Keys already bound to this person are kept; a key bound to another
// person fails the whole call with ErrIdentityTaken and binds nothing.
func (pp People) BindIdentity(ctx context.Context, personID string, id Identity) error {
	if err := id.validate(); err != nil {
		return err
	}
	return pp.d.inTx(ctx, "binding an identity", func(tx *sql.Tx) error {
		if _, err := pp.d.lockPerson(ctx, tx, "p.id = $1", personID); err != nil {
			return notFound("person "+truncateForMessage(personID), err)
		}
		_, err := pp.d.bindKeys(ctx, tx, personID, id.keys())
		return err
	})
}

// keyOwner returns the person a key is bound to, or "".
func keyOwner(ctx context.Context, q querier, k identityKey) (string, error) {
	var owner string
	err := q.QueryRowContext(ctx, `SELECT person_id FROM identities
		WHERE provider = $1 AND app_id = $2 AND openid = $3 AND unionid = $4`,
		k.provider, k.appID, k.openid, k.unionid).Scan(&owner)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", dbErr("reading an identity", err)
	}
	return owner, nil
}

// bindKeys binds keys to personID inside a transaction and returns how many
// were new. A key owned by someone else: ErrIdentityTaken (the caller rolls
// back). INSERT ... ON CONFLICT DO NOTHING then reading the owner is safe
// under concurrency: a racing insert of the same key waits for ours and
// then reads the committed owner.
func (d *Directory) bindKeys(ctx context.Context, q querier, personID string, keys []identityKey) (int, error) {
	added := 0
	for _, k := range keys {
		res, err := q.ExecContext(ctx, `INSERT INTO identities (provider, app_id, openid, unionid, person_id, created_at)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
			k.provider, k.appID, k.openid, k.unionid, personID, d.nowMicro())
		if err != nil {
			return added, dbErr("binding an identity", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return added, dbErr("binding an identity", err)
		} else if n == 1 {
			added++
			continue
		}
		owner, err := keyOwner(ctx, q, k)
		if err != nil {
			return added, err
		}
		if owner != personID {
			return added, fmt.Errorf("%s: %w", k, ErrIdentityTaken)
		}
	}
	return added, nil
}

// UnbindIdentity removes the identity's keys (openid, unionid, each if
// given) from the person. None of them bound to this person: ErrNotFound.
func (pp People) UnbindIdentity(ctx context.Context, personID string, id Identity) error {
	if err := id.validate(); err != nil {
		return err
	}
	return pp.d.inTx(ctx, "unbinding an identity", func(tx *sql.Tx) error {
		var removed int64
		for _, k := range id.keys() {
			res, err := tx.ExecContext(ctx, `DELETE FROM identities
				WHERE provider = $1 AND app_id = $2 AND openid = $3 AND unionid = $4 AND person_id = $5`,
				k.provider, k.appID, k.openid, k.unionid, personID)
			if err != nil {
				return dbErr("unbinding an identity", err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return dbErr("unbinding an identity", err)
			}
			removed += n
		}
		if removed == 0 {
			return fmt.Errorf("identity of person %s: %w", truncateForMessage(personID), ErrNotFound)
		}
		return nil
	})
}

// Identities lists the keys bound to a person (openids first, then
// unionids); an unknown person has none.
func (pp People) Identities(ctx context.Context, personID string) ([]Identity, error) {
	rows, err := pp.d.db.QueryContext(ctx, `SELECT provider, app_id, openid, unionid, created_at FROM identities
		WHERE person_id = $1 ORDER BY provider, unionid, app_id, openid`, personID)
	if err != nil {
		return nil, dbErr("listing identities", err)
	}
	defer rows.Close()
	out := []Identity{}
	for rows.Next() {
		var id Identity
		var at int64
		if err := rows.Scan(&id.Provider, &id.AppID, &id.OpenID, &id.UnionID, &at); err != nil {
			return nil, dbErr("listing identities", err)
		}
		id.BoundAt = fromMicro(at)
		out = append(out, id)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr("listing identities", err)
	}
	return out, nil
}
