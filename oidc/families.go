package oidc

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Listing and revoking one subject's refresh token families, for an
// administrator who looks at a person and ends one sign-in of one
// application (the admin console), not all of them (RevokeSubject).
//
// The list is read from the subject index (index.go), which names every
// family issued to the subject: it is written before the family exists, so
// no live family is missing from it. Rotation keeps the family id, so it
// changes nothing there. What the index cannot know is that a family ended
// later: a revoked family (RFC 7009 revocation, refresh token reuse, a
// replayed code, RevokeSession, RevokeRefreshFamily) or one that expired.
// Listing reads each family record and judges it:
//
//   - revoked, or its record gone (and not indexed in the last minute,
//     when the record may not be stored yet): not listed, and its entry is removed
//     from the index (an ended family never comes back, so any replica may
//     remove it at any time; entries added meanwhile by other replicas are
//     kept, because the removal is an atomic Storage.Update that drops only
//     the named families);
//   - past its absolute expiry, or its newest refresh token past its idle
//     expiry: not listed, but its entry stays until the entry's own expiry
//     (the family record's), because an access token issued by its last
//     refresh may still be live and RevokeSubject must still find it;
//   - otherwise listed.
//
// When the family was last refreshed is kept beside the family record, under
// keyFamilyUse, rather than in it: the family record is only ever changed
// to set Revoked (see refreshFamily), and a second kind of change would let
// a read-modify-write of one undo the other.

// familyRecordGrace is how long (seconds) after a family was indexed a
// missing family record means "not stored yet" rather than "gone": the code
// exchange indexes the family, then stores it, within one request.
const familyRecordGrace = 60

// keyFamilyUse + a family id holds a familyUse.
const keyFamilyUse = "oidc:famuse:"

// familyUse is when a family last issued a refresh token, and until when
// that token may be used.
type familyUse struct {
	At            int64 `json:"at"`
	IdleExpiresAt int64 `json:"idle_exp"`
}

// ErrFamilyNotFound is returned by RevokeRefreshFamily when the subject has
// no refresh token family of that id (never had, or its record expired).
var ErrFamilyNotFound = errors.New("oidc: the subject has no refresh token family of that id; it may have expired")

// RefreshFamily describes one live refresh token family: one sign-in of one
// client, kept alive by refreshing.
type RefreshFamily struct {
	// ID names the family to RevokeRefreshFamily. It is an opaque handle,
	// not a token: it cannot be used to refresh or call userinfo.
	ID       string
	ClientID string
	Subject  string
	// Account is the embedder's id for the person (Identity.Account).
	Account string
	Scopes  []string
	// Offline: issued for offline_access, so it outlives the end of its
	// SSO session (RevokeSession leaves it).
	Offline bool
	// SessionID is the sid of the SSO session it was issued in; "" when
	// none.
	SessionID string
	AuthTime  time.Time
	CreatedAt time.Time
	// LastUsedAt is when its newest refresh token was issued (at the code
	// exchange or the latest refresh).
	LastUsedAt time.Time
	// IdleExpiresAt is when its newest refresh token expires unused.
	IdleExpiresAt time.Time
	// ExpiresAt is the absolute expiry: no refresh after it, however often
	// it is used.
	ExpiresAt time.Time
}

// RefreshFamilies lists the subject's live refresh token families, newest
// first: not revoked, not past their absolute expiry, and whose newest
// refresh token is not past its idle expiry. Entries of the subject index
// whose family was revoked or is gone are removed from it on the way (a
// failure to remove them is logged, not returned: the list is right
// regardless). A storage error reading the index or a family is returned.
func (p *Provider) RefreshFamilies(ctx context.Context, subject string) ([]RefreshFamily, error) {
	if subject == "" {
		return nil, errors.New("oidc: RefreshFamilies needs a subject")
	}
	key := keySubjectIndex + subject
	raw, err := p.Storage.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("oidc: read the subject's token index: %w", err)
	}
	idx, err := decodeIndex(raw)
	if err != nil {
		return nil, err
	}
	now := p.now()
	var out []RefreshFamily
	ended := map[string]bool{}
	for _, e := range idx.Entries {
		if e.Family == "" || e.Expires <= now.Unix() || ended[e.Family] {
			continue
		}
		f, err := p.loadFamily(ctx, e.Family)
		if err != nil {
			return nil, fmt.Errorf("oidc: read a refresh token family: %w", err)
		}
		if f == nil && now.Unix()-e.Created < familyRecordGrace {
			// Indexed a moment ago, its record not stored yet (the code
			// exchange indexes first): a sign-in in progress. Dropping its
			// entry would hide the family from RevokeSubject for good.
			continue
		}
		if f == nil || f.Revoked || f.Subject != subject {
			ended[e.Family] = true
			continue
		}
		rf, err := p.describeFamily(ctx, e.Family, f)
		if err != nil {
			return nil, err
		}
		if !f.usable(now) || (!rf.IdleExpiresAt.IsZero() && !now.Before(rf.IdleExpiresAt)) {
			continue // expired: hidden, its entry kept (see above)
		}
		out = append(out, rf)
	}
	if len(ended) > 0 {
		if err := p.dropFromIndex(ctx, key, ended); err != nil {
			p.log().WarnContext(ctx, "refresh families: could not remove ended families from the subject index; the next listing retries", "error", err)
		}
	}
	slices.SortStableFunc(out, func(a, b RefreshFamily) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// describeFamily is the public description of a stored family.
func (p *Provider) describeFamily(ctx context.Context, id string, f *refreshFamily) (RefreshFamily, error) {
	rf := RefreshFamily{
		ID: id, ClientID: f.ClientID, Subject: f.Subject, Account: f.Account, Scopes: slices.Clone(f.Scopes),
		Offline: f.Offline, SessionID: f.SessionID, AuthTime: time.Unix(f.AuthTime, 0),
		CreatedAt: f.CreatedAt, ExpiresAt: f.ExpiresAt,
	}
	raw, err := p.Storage.Get(ctx, keyFamilyUse+id)
	if err != nil {
		return rf, fmt.Errorf("oidc: read when a refresh token family was last used: %w", err)
	}
	if raw == nil {
		// Never refreshed: its only refresh token is the code exchange's,
		// issued when the family was created (no use record is written
		// for it, to keep that write off every sign-in).
		rf.LastUsedAt, rf.IdleExpiresAt = f.CreatedAt, p.idleExpiry(f, f.CreatedAt)
		return rf, nil
	}
	var u familyUse
	if err := json.Unmarshal(raw, &u); err != nil {
		return rf, fmt.Errorf("oidc: stored refresh token family use is unreadable: %w", err)
	}
	rf.LastUsedAt, rf.IdleExpiresAt = time.Unix(u.At, 0), time.Unix(u.IdleExpiresAt, 0)
	return rf, nil
}

// recordFamilyUse notes that the family issued a refresh token at now that
// expires unused at idle. It is written before the token is stored, so the
// record is never older than the newest token (a failure after it only
// makes the family look used a little later than it was).
func (p *Provider) recordFamilyUse(ctx context.Context, id string, f *refreshFamily, now, idle time.Time) error {
	ttl := p.familyStoreTTL(f, now)
	if ttl <= 0 {
		return nil
	}
	raw, err := json.Marshal(familyUse{At: now.Unix(), IdleExpiresAt: idle.Unix()})
	if err != nil {
		return fmt.Errorf("oidc: encode refresh family use: %w", err)
	}
	if err := p.Storage.Put(ctx, keyFamilyUse+id, raw, ttl); err != nil {
		return fmt.Errorf("oidc: record refresh family use: %w", err)
	}
	return nil
}

// RevokeRefreshFamily revokes one refresh token family of the subject: its
// refresh tokens are refused from now on (invalid_grant) and every access
// token issued from it (at the code exchange and at each refresh) stops
// working at userinfo and introspection (RFC 7009 §2.1's "all access
// tokens based on the same authorization grant"). The subject's other
// families, and its SSO session, are untouched.
//
// A family of another subject, or one whose record is gone, is
// ErrFamilyNotFound and nothing changes. Revoking a family twice is not an
// error. The family is removed from the subject's and its session's index
// too; if that fails it is logged and the next listing removes it.
func (p *Provider) RevokeRefreshFamily(ctx context.Context, subject, familyID string) error {
	if subject == "" || familyID == "" {
		return errors.New("oidc: RevokeRefreshFamily needs a subject and a family id")
	}
	f, err := p.loadFamily(ctx, familyID)
	if err != nil {
		return fmt.Errorf("oidc: read the refresh token family: %w", err)
	}
	if f == nil || f.Subject != subject {
		return ErrFamilyNotFound
	}
	if err := p.endFamily(ctx, familyID); err != nil {
		return fmt.Errorf("oidc: revoke the refresh token family: %w", err)
	}
	p.log().InfoContext(ctx, "refresh token family revoked", "client_id", f.ClientID, "family", familyID)
	return nil
}

// endFamily revokes one family and removes it from the indexes that name
// it. Only the revocation's failure is returned: an index entry left
// behind names a revoked family, which listing skips and removes.
func (p *Provider) endFamily(ctx context.Context, id string) error {
	f, err := p.revokeFamily(ctx, id)
	if err != nil || f == nil {
		return err
	}
	one := map[string]bool{id: true}
	keys := []string{keySubjectIndex + f.Subject}
	if f.SessionID != "" {
		keys = append(keys, keySessionIndex+f.SessionID)
	}
	for _, k := range keys {
		if err := p.dropFromIndex(ctx, k, one); err != nil {
			p.log().WarnContext(ctx, "refresh family revoked but still indexed; listing removes it later", "client_id", f.ClientID, "error", err)
		}
	}
	return nil
}

// dropFromIndex removes the entries of the families in ended, and expired
// entries, from the index under key, atomically: entries other writers add
// meanwhile are kept. An index left empty is deleted; an absent one stays
// absent.
func (p *Provider) dropFromIndex(ctx context.Context, key string, ended map[string]bool) error {
	now := p.now().Unix()
	err := p.Storage.Update(ctx, key, p.indexTTL(), func(old []byte) ([]byte, error) {
		if old == nil {
			return nil, nil
		}
		idx, err := decodeIndex(old)
		if err != nil {
			return nil, err
		}
		keep := make([]indexEntry, 0, len(idx.Entries))
		for _, e := range idx.Entries {
			if e.Expires > now && !(e.Family != "" && ended[e.Family]) {
				keep = append(keep, e)
			}
		}
		if len(keep) == 0 {
			return nil, nil
		}
		return json.Marshal(tokenIndex{Entries: keep})
	})
	if err != nil {
		return fmt.Errorf("oidc: prune token index: %w", err)
	}
	return nil
}
