package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wechat-oidc/wechat-oidc/directory"
)

const auditPageSize = 50

// auditActions are the actions the filter offers.
var auditActions = directory.Actions()

// auditFilter is the filter form as typed.
type auditFilter struct {
	Person, Action, Since, Ref string
}

type auditPage struct {
	Filter     auditFilter
	Actions    []string
	Events     []directory.Event
	Names      map[string]string // person id → how to call them
	Prev, Next string
}

// handleAudit lists audit rows, newest first, filtered by person (id or
// username), action, day and reference, a page at a time.
func (c *Console) handleAudit(ec echo.Context) error {
	ctx := ec.Request().Context()
	f := auditFilter{
		Person: strings.TrimSpace(ec.QueryParam("person")), Action: ec.QueryParam("action"),
		Since: strings.TrimSpace(ec.QueryParam("since")), Ref: strings.ToUpper(strings.TrimSpace(ec.QueryParam("ref"))),
	}
	off := pageOffset(ec.QueryParam("offset"))
	v := c.view(ec, "audit", "audit.title")
	d := auditPage{Filter: f, Actions: auditActions, Names: map[string]string{}}
	q, problem, err := c.auditQuery(ctx, f)
	if err != nil {
		return c.unavailable(ec, err)
	}
	if problem != "" {
		v.Flash = &flashView{Error: true, Key: "err.filter", Text: v.Tf("err.filter", problem)}
	} else {
		q.Limit, q.Offset = auditPageSize+1, off
		evs, err := c.dir.Audit().Query(ctx, q)
		if err != nil {
			return c.unavailable(ec, fmt.Errorf("querying the audit trail: %w", err))
		}
		link := func(o int) string {
			return c.url("/audit") + "?" + url.Values{"person": {f.Person}, "action": {f.Action}, "since": {f.Since},
				"ref": {f.Ref}, "offset": {strconv.Itoa(o)}}.Encode()
		}
		if len(evs) > auditPageSize {
			evs, d.Next = evs[:auditPageSize], link(off+auditPageSize)
		}
		if off > 0 {
			d.Prev = link(max(0, off-auditPageSize))
		}
		d.Events = evs
		if err := c.nameActors(ctx, evs, d.Names); err != nil {
			return c.unavailable(ec, err)
		}
	}
	v.Data = d
	return c.render(ec, http.StatusOK, "audit", v)
}

// auditQuery turns the filter into a query; problem says, in the
// administrator's words, what is wrong with the filter.
func (c *Console) auditQuery(ctx context.Context, f auditFilter) (q directory.AuditQuery, problem string, err error) {
	if f.Action != "" && !slices.Contains(auditActions, f.Action) {
		return q, "action " + strconv.Quote(printable(f.Action)), nil
	}
	q.Action, q.Ref = f.Action, f.Ref
	if len(f.Ref) > 16 {
		return q, "ref", nil
	}
	if f.Since != "" {
		t, err := time.ParseInLocation("2006-01-02", f.Since, c.loc)
		if err != nil {
			return q, "since: YYYY-MM-DD", nil
		}
		q.Since = t
	}
	switch p := f.Person; {
	case p == "":
	case strings.HasPrefix(p, "p_"):
		q.PersonID = p
	default:
		person, err := c.dir.People().GetByUsername(ctx, p)
		if errors.Is(err, directory.ErrNotFound) {
			return q, "person " + strconv.Quote(printable(p)), nil
		}
		if err != nil {
			return q, "", fmt.Errorf("looking up a username: %w", err)
		}
		q.PersonID = person.ID
	}
	return q, "", nil
}

// nameActors fills names with how to call each person an event names:
// "Name (@username)"; a removed person keeps their id; "cli" stays.
func (c *Console) nameActors(ctx context.Context, evs []directory.Event, names map[string]string) error {
	for _, e := range evs {
		for _, id := range []string{e.PersonID, e.Actor} {
			if _, done := names[id]; done || id == "" {
				continue
			}
			if !strings.HasPrefix(id, "p_") {
				names[id] = id
				continue
			}
			p, err := c.dir.People().Get(ctx, id)
			switch {
			case errors.Is(err, directory.ErrNotFound):
				names[id] = id
			case err != nil:
				return fmt.Errorf("naming an audit row's person: %w", err)
			case p.DisplayName != "":
				names[id] = p.DisplayName + " (@" + p.Username + ")"
			default:
				names[id] = "@" + p.Username
			}
		}
	}
	return nil
}
