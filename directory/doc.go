// Package directory owns the provider's durable record of people: who they
// are (a stable opaque id, a username, a display name, an email, groups and
// a status), which upstream identities (a WeChat openid in one app, a
// unionid across apps) are bound to them, the openid→unionid links and small
// profiles learned at sign-in, invitations that let someone bind an identity
// to a prepared account, and the audit trail of what happened to whom.
//
// It is a library over database/sql with two backends: SQLite embedded (pure
// Go, the default for one replica) and PostgreSQL (shared by several
// replicas). Both pass the same conformance suite in package directorytest,
// which is what "a correct backend" means here.
//
// What the package guarantees:
//   - A person's id is random ("p_" and 20 base32 characters), never derived
//     from anything else and never reassigned: it may serve as the OIDC
//     "sub" (OpenID Connect Core 1.0 §2: locally unique, never reassigned).
//   - Usernames are stored lowercase, so uniqueness is case-insensitive.
//   - An upstream identity is bound to at most one person: an openid per
//     (provider, app id), a unionid per provider. Binding one that belongs
//     to someone else fails with [ErrIdentityTaken]; nothing moves silently.
//   - A sign-in costs one query ([People.FindByIdentity]) and one write
//     ([People.RecordSignIn]), plus the audit row ([Audit.Append]).
//   - Operations that touch several rows ([Invitations.Redeem],
//     [Directory.Import], migrations) run in one transaction: they happen
//     whole or not at all. An invitation is redeemed at most once, even when
//     several requests race.
//   - Invitation tokens are returned once and stored only as a SHA-256 hash.
//   - Every timestamp and expiry check reads the injected clock
//     ([Options.Now]).
//   - Errors are sentinels callers can test with errors.Is: [ErrNotFound]
//     and the other domain errors, [ErrInvalid] (a [*ValidationError] that
//     names the field), and [ErrUnavailable] when the database could not
//     answer, so "database down" is never mistaken for "no such person".
//
// The schema is versioned: migrations are embedded in the binary and applied
// by [Open] inside a transaction, under a lock (a PostgreSQL advisory lock;
// SQLite's write lock), so replicas that start together migrate once. A
// database migrated by a newer binary is refused with [ErrSchemaTooNew].
//
// What it does not do: decide who may sign in (the bridge's access decision
// reads the person's status and groups), run retention in the background
// (the caller runs [Audit.Prune]), or know any upstream's protocol.
package directory
