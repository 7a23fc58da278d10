package admin

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/wechat-oidc/wechat-oidc/directory"
)

// A person's live access, per application: the SSO sessions that signed in
// to it and the refresh token families it holds, each with its own revoke
// button. A session signed in to several applications is shown under each
// (ending it ends it for all; the page says which).

// appAccess is one application's part of a person's live access.
type appAccess struct {
	ClientID string // "" for sessions that signed in to no application yet
	Name     string // the configured name, when it says more than the id
	Sessions []SessionInfo
	Grants   []GrantInfo
}

// personAccess reads the person's sessions and refresh families and groups
// them per application. Either list failing leaves the page usable: the
// failure is logged and flagged for the page.
func (c *Console) personAccess(ctx context.Context, personID string) (apps []appAccess, sessionsErr, grantsErr bool) {
	sessions, err := c.core.PersonSessions(ctx, personID)
	if err != nil {
		c.log.WarnContext(ctx, "admin: listing a person's sessions failed", "person", personID, "error", err)
		sessionsErr = true
	}
	grants, err := c.core.PersonGrants(ctx, personID)
	if err != nil {
		c.log.WarnContext(ctx, "admin: listing a person's refresh token families failed", "person", personID, "error", err)
		grantsErr = true
	}
	return c.groupByApp(sessions, grants), sessionsErr, grantsErr
}

// groupByApp groups sessions and grants per application, ordered by the
// applications' names; sessions of no application come last.
func (c *Console) groupByApp(sessions []SessionInfo, grants []GrantInfo) []appAccess {
	byID := map[string]*appAccess{}
	get := func(id string) *appAccess {
		if a := byID[id]; a != nil {
			return a
		}
		a := &appAccess{ClientID: id, Name: c.appName(id)}
		byID[id] = a
		return a
	}
	for _, s := range sessions {
		if len(s.Clients) == 0 {
			a := get("")
			a.Sessions = append(a.Sessions, s)
		}
		for _, id := range s.Clients {
			a := get(id)
			a.Sessions = append(a.Sessions, s)
		}
	}
	for _, g := range grants {
		a := get(g.ClientID)
		a.Grants = append(a.Grants, g)
	}
	out := make([]appAccess, 0, len(byID))
	for _, a := range byID {
		out = append(out, *a)
	}
	slices.SortFunc(out, func(a, b appAccess) int {
		if (a.ClientID == "") != (b.ClientID == "") {
			if a.ClientID == "" {
				return 1
			}
			return -1
		}
		return cmp.Or(strings.Compare(cmp.Or(a.Name, a.ClientID), cmp.Or(b.Name, b.ClientID)), strings.Compare(a.ClientID, b.ClientID))
	})
	return out
}

// appName is an application's configured name, or "" when it has none
// other than its id.
func (c *Console) appName(id string) string {
	for _, a := range c.apps {
		if a.ID == id && a.Name != id {
			return a.Name
		}
	}
	return ""
}

// handleRevokeGrant revokes one refresh token family of the person, if it
// is one of theirs: its refresh token and the access tokens issued from it
// stop working; their sessions and other families go on.
func (c *Console) handleRevokeGrant(ec echo.Context) error {
	ctx := ec.Request().Context()
	id := ec.Param("id")
	back := c.personURL(id)
	family := ec.Request().PostForm.Get("family")
	grants, err := c.core.PersonGrants(ctx, id)
	if err != nil {
		return c.failed(ec, back, fmt.Errorf("listing refresh token families: %w", err), "")
	}
	i := slices.IndexFunc(grants, func(g GrantInfo) bool { return family != "" && g.ID == family })
	if i < 0 {
		return c.redirectWith(ec, back, flash{Error: true, Key: "err.grant.gone"})
	}
	err = c.core.EndGrant(ctx, id, family)
	if errors.Is(err, ErrGrantNotFound) {
		return c.redirectWith(ec, back, flash{Error: true, Key: "err.grant.gone"})
	}
	if err != nil {
		return c.failed(ec, back, fmt.Errorf("revoking a refresh token family: %w", err), "")
	}
	g := grants[i]
	return c.recorded(ec, back, directory.Event{
		Action: directory.ActionSessionRevoke, PersonID: id, ClientID: g.ClientID, Result: "ok",
		Reason: "refresh token family revoked; scopes: " + strings.Join(g.Scopes, " "),
	}, flash{Key: "flash.grant"})
}
