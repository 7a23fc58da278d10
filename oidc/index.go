package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Token indexes: which tokens belong to an SSO session (sid) and to a
// subject, so that logout can end a session's tokens (RevokeSession) and an
// administrator can end everything of a person (RevokeSubject).
//
// An index is one record per session (keySessionIndex + sid) and per
// subject (keySubjectIndex + sub): a list of entries, each a refresh token
// family (whose revocation ends its refresh tokens and every access token
// issued from it) or an access token issued without a family (code grant
// without a refresh token, token exchange), by hash. Entries are added with
// Storage.Update, so concurrent sign-ins never lose one. An entry is written
// before the tokens it names are stored, so a revocation that reads the
// index after a token exists finds it.
//
// Each record is bounded: at most maxIndexEntries live entries. Expired
// entries are dropped on every write; when it is still full, the oldest
// entries are revoked before they are dropped (fail closed: a token is
// never left that RevokeSubject could not find). A person with a thousand
// live sign-ins loses the oldest.

const (
	keySessionIndex = "oidc:sidx:"
	keySubjectIndex = "oidc:subx:"
)

// maxIndexEntries bounds each index record (a few hundred bytes per entry).
const maxIndexEntries = 1000

// indexEntry names one thing to revoke. Exactly one of Family and Access is
// set.
type indexEntry struct {
	// Family is a refresh token family id.
	Family string `json:"f,omitempty"`
	// Access is the hash of an access token issued without a family.
	Access string `json:"a,omitempty"`
	// Offline marks a family issued for offline_access: RevokeSession
	// leaves it (Back-Channel Logout 1.0 §2.7).
	Offline bool `json:"o,omitempty"`
	// Expires is when the entry names nothing live any more (Unix time):
	// the family record's or the access token's expiry.
	Expires int64 `json:"e"`
	// Created is when the entry was added (Unix time; 0 in entries written
	// before it was recorded). A family is indexed before its record is
	// stored, so a listing that finds no record for a fresh entry must not
	// take the family for ended (see RefreshFamilies).
	Created int64 `json:"c,omitempty"`
}

type tokenIndex struct {
	Entries []indexEntry `json:"entries"`
}

func decodeIndex(raw []byte) (tokenIndex, error) {
	var idx tokenIndex
	if raw == nil {
		return idx, nil
	}
	if err := json.Unmarshal(raw, &idx); err != nil {
		return idx, fmt.Errorf("oidc: stored token index is unreadable: %w", err)
	}
	return idx, nil
}

// indexTTL is how long an index record is kept after a write: as long as
// anything written to it may live (a family's record lives its absolute
// lifetime plus an access token lifetime, see familyStoreTTL; an access
// token its lifetime). Every write extends it, so the record always
// outlives its entries.
func (p *Provider) indexTTL() time.Duration {
	return p.refreshAbsoluteTTL() + p.AccessTokenTTL
}

// indexTokens adds e to the index of the session (when there is one) and of
// the subject.
func (p *Provider) indexTokens(ctx context.Context, sid, subject string, e indexEntry) error {
	if sid != "" {
		if err := p.addToIndex(ctx, keySessionIndex+sid, e); err != nil {
			return err
		}
	}
	return p.addToIndex(ctx, keySubjectIndex+subject, e)
}

// addToIndex appends e to the index record under key, dropping expired
// entries and revoking then dropping the oldest beyond maxIndexEntries.
func (p *Provider) addToIndex(ctx context.Context, key string, e indexEntry) error {
	now := p.now().Unix()
	var evicted []indexEntry
	err := p.Storage.Update(ctx, key, p.indexTTL(), func(old []byte) ([]byte, error) {
		evicted = nil // fn may run more than once: only the last run counts
		idx, err := decodeIndex(old)
		if err != nil {
			return nil, err
		}
		keep := make([]indexEntry, 0, len(idx.Entries)+1)
		for _, x := range idx.Entries {
			if x.Expires > now {
				keep = append(keep, x)
			}
		}
		keep = append(keep, e)
		if n := len(keep) - maxIndexEntries; n > 0 {
			evicted = keep[:n:n]
			keep = keep[n:]
		}
		return json.Marshal(tokenIndex{Entries: keep})
	})
	if err != nil {
		return fmt.Errorf("oidc: update token index: %w", err)
	}
	var errs []error
	for _, x := range evicted {
		if err := p.revokeEntry(ctx, x); err != nil {
			errs = append(errs, err)
		}
	}
	if len(evicted) > 0 {
		p.log().WarnContext(ctx, "token index full: the oldest sign-ins are revoked", "revoked", len(evicted))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("oidc: revoke tokens dropped from a full index: %w", err)
	}
	return nil
}

func (p *Provider) revokeEntry(ctx context.Context, e indexEntry) error {
	if e.Family != "" {
		_, err := p.revokeFamily(ctx, e.Family)
		return err
	}
	if e.Access != "" {
		return p.Storage.Delete(ctx, keyAccess+e.Access)
	}
	return nil
}

// RevokeSession ends the tokens of an SSO session at logout (OpenID Connect
// Back-Channel Logout 1.0 §2.7): every refresh token family of the session
// that was not issued for offline_access, with every access token issued
// from it, and every access token the code grant issued without a refresh
// token. Families issued for offline_access, and their access tokens, are
// kept: they exist to work while the person is away. Other sessions of the
// same person are untouched.
//
// It is idempotent: an unknown or already ended session is not an error. On
// a storage error some tokens may be revoked and others not; the index keeps
// those not revoked, so calling it again finishes the work. A code issued
// for the session but redeemed after RevokeSession read the index yields
// tokens it does not end (the code lives CodeTTL).
func (p *Provider) RevokeSession(ctx context.Context, sid string) error {
	if sid == "" {
		return errors.New("oidc: RevokeSession needs a session id (sid)")
	}
	n, err := p.revokeIndexed(ctx, keySessionIndex+sid, func(e indexEntry) bool { return !e.Offline })
	if err != nil {
		return fmt.Errorf("oidc: revoke the tokens of a session: %w", err)
	}
	p.log().InfoContext(ctx, "session ended: its tokens are revoked", "revoked", n)
	return nil
}

// RevokeSubject ends every token of a subject: every family, offline_access
// included, every access token, from every session and from token exchange.
// It is meant for when a person is disabled. Like RevokeSession it is
// idempotent and can be called again after a storage error. Tokens issued
// after it returns (a new sign-in) are not affected: refusing those is the
// caller's access decision.
func (p *Provider) RevokeSubject(ctx context.Context, subject string) error {
	if subject == "" {
		return errors.New("oidc: RevokeSubject needs a subject")
	}
	n, err := p.revokeIndexed(ctx, keySubjectIndex+subject, func(indexEntry) bool { return true })
	if err != nil {
		return fmt.Errorf("oidc: revoke the tokens of a subject: %w", err)
	}
	p.log().InfoContext(ctx, "subject's tokens revoked", "revoked", n)
	return nil
}

// revokeIndexed revokes the live entries of the index under key that
// selected picks, then removes them from the index (entries added
// meanwhile, and those whose revocation failed, stay). It returns how many
// were revoked.
func (p *Provider) revokeIndexed(ctx context.Context, key string, selected func(indexEntry) bool) (int, error) {
	raw, err := p.Storage.Get(ctx, key)
	if err != nil {
		return 0, fmt.Errorf("read token index: %w", err)
	}
	idx, err := decodeIndex(raw)
	if err != nil {
		return 0, err
	}
	now := p.now().Unix()
	revoked := map[indexEntry]bool{}
	var errs []error
	for _, e := range idx.Entries {
		if e.Expires <= now || !selected(e) {
			continue
		}
		if err := p.revokeEntry(ctx, e); err != nil {
			errs = append(errs, err)
			continue
		}
		revoked[e] = true
	}
	if len(revoked) > 0 {
		err := p.Storage.Update(ctx, key, p.indexTTL(), func(old []byte) ([]byte, error) {
			idx, err := decodeIndex(old)
			if err != nil {
				return nil, err
			}
			keep := make([]indexEntry, 0, len(idx.Entries))
			for _, e := range idx.Entries {
				if e.Expires > now && !revoked[e] {
					keep = append(keep, e)
				}
			}
			if len(keep) == 0 {
				return nil, nil // delete the record
			}
			return json.Marshal(tokenIndex{Entries: keep})
		})
		if err != nil {
			// The tokens are revoked; the index only keeps stale entries
			// until its next write.
			errs = append(errs, fmt.Errorf("prune token index: %w", err))
		}
	}
	return len(revoked), errors.Join(errs...)
}
