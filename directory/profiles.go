package directory

import (
	"context"
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

// Remember stores p, keyed by (provider, app id, openid). A field left
// empty keeps what an earlier sign-in stored: a silent sign-in that
// learns no nickname does not erase it.
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
	_, err := ps.d.db.ExecContext(ctx, `INSERT INTO upstream_profiles
		(provider, app_id, openid, unionid, nickname, avatar_url, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (provider, app_id, openid) DO UPDATE SET
			unionid    = CASE WHEN excluded.unionid <> '' THEN excluded.unionid ELSE upstream_profiles.unionid END,
			nickname   = CASE WHEN excluded.nickname <> '' THEN excluded.nickname ELSE upstream_profiles.nickname END,
			avatar_url = CASE WHEN excluded.avatar_url <> '' THEN excluded.avatar_url ELSE upstream_profiles.avatar_url END,
			updated_at = excluded.updated_at`,
		p.Provider, p.AppID, p.OpenID, p.UnionID, nickname, p.AvatarURL, ps.d.nowMicro())
	if err != nil {
		return dbErr("remembering a profile", err)
	}
	return nil
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
