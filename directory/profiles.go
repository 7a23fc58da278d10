package directory

import (
	"context"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Profile is what an upstream told about one account (an openid in an app)
// at sign-in: the unionid it belongs to, when the upstream said, and a
// small profile. It survives restarts so that a later openid-only sign-in
// (WeChat's silent snsapi_base) still finds a person bound by unionid.
type Profile struct {
	Provider  string
	AppID     string
	OpenID    string
	UnionID   string
	Nickname  string // at most 64 runes kept; control characters dropped
	AvatarURL string // http(s) only, at most 1024 bytes
	UpdatedAt time.Time
}

// Profiles stores Profile records.
type Profiles struct{ d *Directory }

const maxAvatarURLLen = 1024

const rememberProfileSQL = `INSERT INTO upstream_profiles
	(provider, app_id, openid, unionid, nickname, avatar_url, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
	ON CONFLICT (provider, app_id, openid) DO UPDATE SET
		unionid    = CASE WHEN excluded.unionid <> '' THEN excluded.unionid ELSE upstream_profiles.unionid END,
		nickname   = CASE WHEN excluded.nickname <> '' THEN excluded.nickname ELSE upstream_profiles.nickname END,
		avatar_url = CASE WHEN excluded.avatar_url <> '' THEN excluded.avatar_url ELSE upstream_profiles.avatar_url END,
		updated_at = excluded.updated_at`

// profilesStoredMax and profileRewriteAfter bound what Remember keeps in
// memory to skip rewriting an unchanged profile: at most 10,000 profiles
// (about 1 MB), each skipped for at most 10 minutes after this process
// stored it, so updated_at is at most that much behind the last sign-in.
const (
	profilesStoredMax   = 10000
	profileRewriteAfter = 10 * time.Minute
)

// Remember stores p, keyed by (provider, app id, openid). A field left
// empty keeps what an earlier sign-in stored: a silent sign-in that
// learns no nickname does not erase it.
//
// Every consent sign-in brings the profile again, and it rarely changes: a
// profile this process stored less than profileRewriteAfter ago with the
// same values is not written again (no statement at all). The openid →
// unionid link never changes for an openid, so skipping cannot lose one;
// what can lag is display data that another replica wrote in between (a
// nickname changed there and changed back here within the window), for at
// most the window.
func (ps Profiles) Remember(ctx context.Context, p Profile) error {
	if err := validProvider(p.Provider); err != nil {
		return err
	}
	if err := validIdentifier("app_id", p.AppID, true); err != nil {
		return err
	}
	if err := validIdentifier("openid", p.OpenID, true); err != nil {
		return err
	}
	if err := validIdentifier("unionid", p.UnionID, false); err != nil {
		return err
	}
	if p.AvatarURL != "" {
		if len(p.AvatarURL) > maxAvatarURLLen {
			return invalid("avatar_url", "too long: at most %d characters", maxAvatarURLLen)
		}
		if !strings.HasPrefix(p.AvatarURL, "https://") && !strings.HasPrefix(p.AvatarURL, "http://") {
			return invalid("avatar_url", "must be an http or https URL")
		}
		if err := validIdentifier("avatar_url", p.AvatarURL, false); err != nil {
			return err
		}
	}
	nickname := cleanNickname(p.Nickname)
	// Key and value are length-prefixed, so that different profiles never
	// share one.
	key := lengthPrefixed(p.Provider, p.AppID, p.OpenID)
	value := lengthPrefixed(p.UnionID, nickname, p.AvatarURL)
	now := ps.d.now()
	if ps.d.profilesStored.stored(key, value, now) {
		return nil
	}
	if _, err := ps.d.rememberProfile.ExecContext(ctx,
		p.Provider, p.AppID, p.OpenID, p.UnionID, nickname, p.AvatarURL, toMicro(now)); err != nil {
		return dbErr("remembering a profile", err)
	}
	ps.d.profilesStored.add(key, value, now)
	return nil
}

func lengthPrefixed(parts ...string) string {
	var b strings.Builder
	for _, s := range parts {
		b.WriteString(strconv.Itoa(len(s)))
		b.WriteByte(':')
		b.WriteString(s)
	}
	return b.String()
}

// cleanNickname keeps a nickname displayable: valid UTF-8, no control
// characters, at most 64 runes. Upstream nicknames are the user's free
// text: recorded, not refused.
func cleanNickname(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
	if r := []rune(s); len(r) > 64 {
		s = string(r[:64])
	}
	return strings.TrimSpace(s)
}

// Get returns the profile stored for an openid, or ErrNotFound.
func (ps Profiles) Get(ctx context.Context, provider, appID, openid string) (Profile, error) {
	p := Profile{Provider: provider, AppID: appID, OpenID: openid}
	var at int64
	err := ps.d.db.QueryRowContext(ctx, `SELECT unionid, nickname, avatar_url, updated_at FROM upstream_profiles
		WHERE provider = $1 AND app_id = $2 AND openid = $3`, provider, appID, openid).
		Scan(&p.UnionID, &p.Nickname, &p.AvatarURL, &at)
	if err != nil {
		return Profile{}, notFound("profile", err)
	}
	p.UpdatedAt = fromMicro(at)
	return p, nil
}
