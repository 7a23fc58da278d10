package admin

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/wechat-oidc/wechat-oidc/directory"
)

const peoplePageSize = 30

type peoplePage struct {
	Query      string
	People     []directory.Person
	Prev, Next string
}

// handlePeople searches people by name, username, email, openid or
// unionid (the directory's Search), a page at a time.
func (c *Console) handlePeople(ec echo.Context) error {
	q := strings.TrimSpace(ec.QueryParam("q"))
	off := pageOffset(ec.QueryParam("offset"))
	people, err := c.dir.People().Search(ec.Request().Context(), directory.PersonQuery{Text: q, Limit: peoplePageSize + 1, Offset: off})
	v := c.view(ec, "people", "people.title")
	var ve *directory.ValidationError
	if errors.As(err, &ve) {
		v.Flash = &flashView{Error: true, Key: "err.invalid", Text: v.Tf("err.invalid", ve.Error())}
		people, err = nil, nil
	}
	if err != nil {
		return c.unavailable(ec, fmt.Errorf("searching people: %w", err))
	}
	d := peoplePage{Query: q, People: people}
	link := func(o int) string {
		return c.url("/people") + "?" + url.Values{"q": {q}, "offset": {strconv.Itoa(o)}}.Encode()
	}
	if len(people) > peoplePageSize {
		d.People, d.Next = people[:peoplePageSize], link(off+peoplePageSize)
	}
	if off > 0 {
		d.Prev = link(max(0, off-peoplePageSize))
	}
	v.Data = d
	return c.render(ec, http.StatusOK, "people", v)
}

// pageOffset reads an offset parameter: a small non-negative integer.
func pageOffset(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 100000 {
		return 0
	}
	return n
}

type personPage struct {
	Person     directory.Person
	Avatar     string
	Identities []identityLine
	// Apps are the person's live sessions and refresh token families,
	// per application.
	Apps          []appAccess
	SessionsError bool
	GrantsError   bool
	Events        []directory.Event
	Self          bool // the administrator looks at themselves
}

// handlePerson is a person's detail: identities, groups, live sessions and
// refresh token families per application, status actions, recent audit
// rows.
func (c *Console) handlePerson(ec echo.Context) error {
	ctx := ec.Request().Context()
	p, err := c.dir.People().Get(ctx, ec.Param("id"))
	if errors.Is(err, directory.ErrNotFound) {
		return c.renderMessage(ec, http.StatusNotFound, "not-found", "notfound.title", "notfound.body", nil)
	}
	if err != nil {
		return c.unavailable(ec, fmt.Errorf("reading a person: %w", err))
	}
	d := personPage{Person: p, Self: p.ID == adminOf(ec).Person.ID}
	if d.Identities, err = c.identities(ctx, p.ID); err != nil {
		return c.unavailable(ec, err)
	}
	for _, id := range d.Identities {
		if id.Avatar != "" {
			d.Avatar = id.Avatar
			break
		}
	}
	// The page is still useful without them (and disabling still works).
	d.Apps, d.SessionsError, d.GrantsError = c.personAccess(ctx, p.ID)
	if d.Events, err = c.dir.Audit().Query(ctx, directory.AuditQuery{PersonID: p.ID, Limit: 20}); err != nil {
		return c.unavailable(ec, fmt.Errorf("reading a person's audit rows: %w", err))
	}
	v := c.view(ec, "person", "people.title")
	v.Title = personName(p)
	v.Data = d
	return c.render(ec, http.StatusOK, "person", v)
}

func (c *Console) personURL(id string) string { return c.url("/people/" + url.PathEscape(id)) }

// handleGroups replaces a person's groups. Adding or removing the admin
// group needs a recent sign-in.
func (c *Console) handleGroups(ec echo.Context) error {
	ctx := ec.Request().Context()
	id := ec.Param("id")
	back := c.personURL(id)
	p, err := c.dir.People().Get(ctx, id)
	if err != nil {
		return c.failed(ec, back, err, "")
	}
	groups := parseGroups(ec.Request().PostForm.Get("groups"))
	if hasGroup(p.Groups, c.adminGroup) != hasGroup(groups, c.adminGroup) {
		if ok, err := c.recentAuth(ec, back); !ok {
			return err
		}
	}
	u, err := c.dir.People().Update(ctx, id, directory.PersonUpdate{Groups: &groups})
	if err != nil {
		return c.failed(ec, back, err, "")
	}
	if slices.Equal(u.Groups, p.Groups) {
		return c.redirectWith(ec, back, flash{Key: "flash.groups", Arg: u.Username})
	}
	return c.recorded(ec, back, directory.Event{
		Action: directory.ActionPersonGroups, PersonID: u.ID, Result: "ok",
		Reason: "groups: " + groupList(p.Groups) + " → " + groupList(u.Groups),
	}, flash{Key: "flash.groups", Arg: u.Username})
}

// handleDisable disables a person at once: the directory change (every
// token use and SSO reuse checks it), the person.disable audit row (the
// revocation loop of every replica reads it), then the login core ends
// their sessions and tokens here and now.
func (c *Console) handleDisable(ec echo.Context) error {
	ctx := ec.Request().Context()
	id := ec.Param("id")
	back := c.personURL(id)
	if id == adminOf(ec).Person.ID {
		return c.redirectWith(ec, back, flash{Error: true, Key: "err.self"})
	}
	if ok, err := c.recentAuth(ec, back); !ok {
		return err
	}
	st := directory.StatusDisabled
	p, err := c.dir.People().Update(ctx, id, directory.PersonUpdate{Status: &st})
	if err != nil {
		return c.failed(ec, back, err, "")
	}
	return c.endAccess(ec, back, p, directory.ActionPersonDisable, "disabled by an administrator", "flash.disabled")
}

// endAccess writes the revoking audit row for p and asks the login core to
// end p's access now, then reports: the audit row is what other replicas
// act on, so its failure is reported first; a failure of the core here is
// made good by the revocation loop within seconds.
func (c *Console) endAccess(ec echo.Context, back string, p directory.Person, action, reason, okKey string) error {
	ctx := ec.Request().Context()
	e := directory.Event{Actor: adminOf(ec).Person.ID, Action: action, PersonID: p.ID, Result: "ok", Reason: reason, Ref: directory.NewRef()}
	auditErr := c.appendAudit(ctx, ec, e)
	if auditErr != nil {
		c.log.ErrorContext(ctx, "admin: revoking audit row not written", "ref", e.Ref, "action", action, "person", p.ID, "error", auditErr)
	}
	endErr := c.core.EndPersonAccess(ctx, p.ID)
	if endErr != nil {
		c.log.ErrorContext(ctx, "admin: ending a person's access failed; the revocation loop will retry", "person", p.ID, "error", endErr)
	}
	switch {
	case auditErr != nil:
		return c.redirectWith(ec, back, flash{Error: true, Key: "err.audit", Arg: e.Ref})
	case endErr != nil:
		return c.redirectWith(ec, back, flash{Error: true, Key: "flash.disabled.later", Arg: p.Username})
	}
	return c.redirectWith(ec, back, flash{Key: okKey, Arg: p.Username})
}

// handleEnable lets a disabled person sign in again. A pending person is
// not enabled here: they are approved, with a username, on Pending.
func (c *Console) handleEnable(ec echo.Context) error {
	ctx := ec.Request().Context()
	id := ec.Param("id")
	back := c.personURL(id)
	p, err := c.dir.People().Get(ctx, id)
	if err != nil {
		return c.failed(ec, back, err, "")
	}
	if p.Status != directory.StatusDisabled {
		return c.redirectWith(ec, back, flash{Error: true, Key: "err.notdisabled"})
	}
	st := directory.StatusActive
	if p, err = c.dir.People().Update(ctx, id, directory.PersonUpdate{Status: &st}); err != nil {
		return c.failed(ec, back, err, "")
	}
	return c.recorded(ec, back, directory.Event{Action: directory.ActionPersonEnable, PersonID: p.ID, Result: "ok"},
		flash{Key: "flash.enabled", Arg: p.Username})
}

// handleRemove deletes a person. In this order, so that nothing is left
// half done: disabled first (no sign-in or token use from this instant),
// the person.remove audit row, the login core ends their access while the
// person and their identities still exist (a core that maps a person to
// its subjects needs them), then the record is deleted.
func (c *Console) handleRemove(ec echo.Context) error {
	ctx := ec.Request().Context()
	id := ec.Param("id")
	back := c.personURL(id)
	if id == adminOf(ec).Person.ID {
		return c.redirectWith(ec, back, flash{Error: true, Key: "err.self"})
	}
	if ec.Request().PostForm.Get("confirm") != "yes" {
		return c.redirectWith(ec, back, flash{Error: true, Key: "err.confirm"})
	}
	if ok, err := c.recentAuth(ec, back); !ok {
		return err
	}
	st := directory.StatusDisabled
	p, err := c.dir.People().Update(ctx, id, directory.PersonUpdate{Status: &st})
	if err != nil {
		return c.failed(ec, back, err, "")
	}
	e := directory.Event{Actor: adminOf(ec).Person.ID, Action: directory.ActionPersonRemove, PersonID: p.ID, Result: "ok",
		Reason: "removed by an administrator (was @" + p.Username + ")", Ref: directory.NewRef()}
	if err := c.appendAudit(ctx, ec, e); err != nil {
		// Disabled, not deleted: the person is cut off; try again.
		c.log.ErrorContext(ctx, "admin: person.remove audit row not written; person left disabled", "ref", e.Ref, "person", p.ID, "error", err)
		return c.redirectWith(ec, back, flash{Error: true, Key: "err.unavailable", Arg: e.Ref})
	}
	if err := c.core.EndPersonAccess(ctx, p.ID); err != nil {
		// Not deleted: the revocation loop, which reads the row above,
		// may need the person's identities to find their subjects.
		c.log.ErrorContext(ctx, "admin: ending a removed person's access failed; person left disabled", "person", p.ID, "error", err)
		return c.redirectWith(ec, back, flash{Error: true, Key: "err.remove.partial", Arg: p.Username})
	}
	if err := c.dir.People().Delete(ctx, p.ID); err != nil {
		return c.failed(ec, back, err, "")
	}
	return c.redirectWith(ec, c.url("/people"), flash{Key: "flash.removed", Arg: p.Username})
}

// handleRevokeSession ends one SSO session of the person, if it is theirs.
func (c *Console) handleRevokeSession(ec echo.Context) error {
	ctx := ec.Request().Context()
	id := ec.Param("id")
	back := c.personURL(id)
	sid := ec.Request().PostForm.Get("sid")
	sessions, err := c.core.PersonSessions(ctx, id)
	if err != nil {
		return c.failed(ec, back, fmt.Errorf("listing sessions: %w", err), "")
	}
	i := slices.IndexFunc(sessions, func(s SessionInfo) bool { return sid != "" && s.ID == sid })
	if i < 0 {
		return c.redirectWith(ec, back, flash{Error: true, Key: "err.session.gone"})
	}
	if err := c.core.EndSession(ctx, sid); err != nil {
		return c.failed(ec, back, fmt.Errorf("ending a session: %w", err), "")
	}
	return c.recorded(ec, back, directory.Event{
		Action: directory.ActionSessionRevoke, PersonID: id, Result: "ok",
		Reason: "session ended; applications: " + groupList(sessions[i].Clients),
	}, flash{Key: "flash.session"})
}
