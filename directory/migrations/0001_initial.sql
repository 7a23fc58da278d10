-- Schema 1: people, their upstream identities, profiles learned at sign-in,
-- invitations and the audit trail.
--
-- One text for SQLite and PostgreSQL: times are BIGINT microseconds since the
-- Unix epoch (UTC), booleans INTEGER 0/1, lists of group names one TEXT of
-- names separated by single spaces (names never contain spaces). The token
-- {{auto_id}} is the dialect's auto-incrementing primary key.

CREATE TABLE people (
    id                  TEXT PRIMARY KEY,
    username            TEXT NOT NULL,
    display_name        TEXT NOT NULL DEFAULT '',
    email               TEXT NOT NULL DEFAULT '',
    email_verified      INTEGER NOT NULL DEFAULT 0 CHECK (email_verified IN (0, 1)),
    group_names         TEXT NOT NULL DEFAULT '',
    status              TEXT NOT NULL CHECK (status IN ('active', 'pending', 'disabled')),
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    last_sign_in_at     BIGINT,
    last_sign_in_client TEXT NOT NULL DEFAULT '',
    last_sign_in_flow   TEXT NOT NULL DEFAULT '',
    last_sign_in_ip     TEXT NOT NULL DEFAULT '',
    -- Usernames are stored lowercase: uniqueness is case-insensitive.
    CONSTRAINT people_username_lowercase CHECK (username = lower(username)),
    CONSTRAINT people_username_unique UNIQUE (username)
);

-- One row per bound key: an openid (with the app it belongs to) or a
-- unionid (app_id and openid empty). The primary key makes each key belong
-- to one person.
CREATE TABLE identities (
    provider   TEXT NOT NULL,
    app_id     TEXT NOT NULL DEFAULT '',
    openid     TEXT NOT NULL DEFAULT '',
    unionid    TEXT NOT NULL DEFAULT '',
    person_id  TEXT NOT NULL REFERENCES people (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (provider, app_id, openid, unionid),
    CONSTRAINT identities_one_key CHECK (
        (openid <> '' AND app_id <> '' AND unionid = '') OR
        (openid = '' AND app_id = '' AND unionid <> ''))
);
CREATE INDEX identities_person ON identities (person_id);

-- What an upstream told about an account at sign-in: the openid→unionid
-- link (so an openid-only sign-in finds a person bound by unionid) and a
-- small profile.
CREATE TABLE upstream_profiles (
    provider   TEXT NOT NULL,
    app_id     TEXT NOT NULL,
    openid     TEXT NOT NULL,
    unionid    TEXT NOT NULL DEFAULT '',
    nickname   TEXT NOT NULL DEFAULT '',
    avatar_url TEXT NOT NULL DEFAULT '',
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (provider, app_id, openid)
);

-- Only the SHA-256 of an invitation's token is kept.
CREATE TABLE invitations (
    id           TEXT PRIMARY KEY,
    token_sha256 TEXT NOT NULL,
    username     TEXT NOT NULL,
    display_name TEXT NOT NULL DEFAULT '',
    email        TEXT NOT NULL DEFAULT '',
    group_names  TEXT NOT NULL DEFAULT '',
    client_id    TEXT NOT NULL DEFAULT '',
    created_by   TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    used_at      BIGINT,
    used_by      TEXT NOT NULL DEFAULT '',
    revoked_at   BIGINT,
    CONSTRAINT invitations_token_unique UNIQUE (token_sha256)
);
CREATE INDEX invitations_created ON invitations (created_at);

-- The audit trail keeps person ids of deleted people (no foreign key): it
-- outlives them until pruned.
CREATE TABLE audit_events (
    id         {{auto_id}},
    at         BIGINT NOT NULL,
    actor      TEXT NOT NULL DEFAULT '',
    action     TEXT NOT NULL,
    person_id  TEXT NOT NULL DEFAULT '',
    client_id  TEXT NOT NULL DEFAULT '',
    flow       TEXT NOT NULL DEFAULT '',
    ip         TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT '',
    result     TEXT NOT NULL DEFAULT '',
    reason     TEXT NOT NULL DEFAULT '',
    ref        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_person ON audit_events (person_id, at);
CREATE INDEX audit_events_ref ON audit_events (ref);
