package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wechat-oidc/wechat-oidc/directory"
)

// pendingLimit bounds the Pending page. The directory lists by username;
// the page shows the oldest request first. More than this many waiting is
// a queue to clear with People's search.
const pendingLimit = 100

// pendingEntry is one person waiting for approval.
type pendingEntry struct {
	Person     directory.Person
	Nickname   string // what WeChat said, if known
	Avatar     string // https only
	Identities []string
	Ref        string // the reference the pending page showed them
}

func (c *Console) handlePending(ec echo.Context) error {
	ctx := ec.Request().Context()
	people, err := c.dir.People().Search(ctx, directory.PersonQuery{Status: directory.StatusPending, Limit: pendingLimit})
	if err != nil {
		return c.unavailable(ec, fmt.Errorf("listing pending people: %w", err))
	}
	slices.SortStableFunc(people, func(a, b directory.Person) int { return a.CreatedAt.Compare(b.CreatedAt) })
	entries := make([]pendingEntry, 0, len(people))
	for _, p := range people {
		e := pendingEntry{Person: p}
		ids, err := c.identities(ctx, p.ID)
		if err != nil {
			return c.unavailable(ec, err)
		}
		for _, id := range ids {
			e.Identities = append(e.Identities, id.Label)
			if e.Nickname == "" {
				e.Nickname, e.Avatar = id.Nickname, id.Avatar
			}
		}
		// The reference shown on the person's waiting page is on their
		// sign-in row that made them pending.
		evs, err := c.dir.Audit().Query(ctx, directory.AuditQuery{PersonID: p.ID, Action: directory.ActionSignIn, Limit: 1})
		if err != nil {
			return c.unavailable(ec, fmt.Errorf("reading a pending person's reference: %w", err))
		}
		if len(evs) > 0 {
			e.Ref = evs[0].Ref
		}
		entries = append(entries, e)
	}
	v := c.view(ec, "pending", "pending.title")
	v.Data = entries
	return c.render(ec, http.StatusOK, "pending", v)
}

// identities lists a person's bound identities with what their upstream
// profile says (nickname, avatar), where one is known.
func (c *Console) identities(ctx context.Context, personID string) ([]identityLine, error) {
	ids, err := c.dir.People().Identities(ctx, personID)
	if err != nil {
		return nil, fmt.Errorf("listing identities: %w", err)
	}
	out := make([]identityLine, 0, len(ids))
	for _, id := range ids {
		l := identityLine{BoundAt: id.BoundAt}
		if id.OpenID != "" {
			l.Label = fmt.Sprintf("%s openid %s (app %s)", id.Provider, id.OpenID, id.AppID)
			prof, err := c.dir.Profiles().Get(ctx, id.Provider, id.AppID, id.OpenID)
			switch {
			case err == nil:
				l.Nickname, l.Avatar = prof.Nickname, httpsAvatar(prof.AvatarURL)
			case !errors.Is(err, directory.ErrNotFound):
				return nil, fmt.Errorf("reading a profile: %w", err)
			}
		} else {
			l.Label = fmt.Sprintf("%s unionid %s", id.Provider, id.UnionID)
		}
		out = append(out, l)
	}
	return out, nil
}

// identityLine is one bound identity as pages show it, with what its
// upstream profile says.
type identityLine struct {
	Label, Nickname, Avatar string
	BoundAt                 time.Time
}

// httpsAvatar returns an avatar URL the page may load: WeChat hands out
// http:// URLs on hosts that also serve https; the page's policy loads
// images over https only.
func httpsAvatar(u string) string {
	if rest, ok := strings.CutPrefix(u, "http://"); ok {
		return "https://" + rest
	}
	if strings.HasPrefix(u, "https://") {
		return u
	}
	return ""
}

// handleApprove makes a pending person active under the username and
// groups the administrator chose. Granting the admin group needs a recent
// sign-in.
func (c *Console) handleApprove(ec echo.Context) error {
	ctx := ec.Request().Context()
	form := ec.Request().PostForm
	username := strings.TrimSpace(form.Get("username"))
	groups := parseGroups(form.Get("groups"))
	back := c.url("/pending")
	if hasGroup(groups, c.adminGroup) {
		if ok, err := c.recentAuth(ec, back); !ok {
			return err
		}
	}
	p, err := c.dir.People().Approve(ctx, ec.Param("id"), username, groups)
	if err != nil {
		return c.failed(ec, back, err, username)
	}
	return c.recorded(ec, back, directory.Event{
		Action: directory.ActionPersonApprove, PersonID: p.ID, Result: "ok",
		Reason: "approved as " + p.Username + "; groups: " + groupList(p.Groups),
	}, flash{Key: "flash.approved", Arg: p.Username})
}

// handleDeny refuses a pending person: the record is removed, so a later
// sign-in starts a new request.
func (c *Console) handleDeny(ec echo.Context) error {
	ctx := ec.Request().Context()
	back := c.url("/pending")
	p, err := c.dir.People().Get(ctx, ec.Param("id"))
	if err != nil {
		return c.failed(ec, back, err, "")
	}
	if p.Status != directory.StatusPending {
		return c.failed(ec, back, directory.ErrNotPending, "")
	}
	if err := c.dir.People().Delete(ctx, p.ID); err != nil {
		return c.failed(ec, back, err, "")
	}
	return c.recorded(ec, back, directory.Event{
		Action: directory.ActionPersonDeny, PersonID: p.ID, Result: "ok", Reason: "pending request denied",
	}, flash{Key: "flash.denied"})
}

func groupList(g []string) string {
	if len(g) == 0 {
		return "(none)"
	}
	return strings.Join(g, " ")
}
