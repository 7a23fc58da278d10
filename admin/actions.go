package admin

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/wechat-oidc/wechat-oidc/directory"
)

// What every action handler shares: reading a form's groups, reporting the
// outcome on the next page (post/redirect/get), and turning directory
// errors into messages that say what to do.

// parseGroups reads a groups field: names separated by spaces or commas
// (ASCII or Chinese), lowercased as the directory stores them. The
// directory validates each name.
func parseGroups(s string) []string {
	f := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return r == ' ' || r == ',' || r == '，' || r == '、' || r == ';' || r == '\t' || r == '\n' || r == '\r' || r == '\u3000'
	})
	if f == nil {
		return []string{}
	}
	return f
}

// redirectWith leaves f for the next page and sends the browser to path
// (303: the next request is a GET).
func (c *Console) redirectWith(ec echo.Context, path string, f flash) error {
	c.setFlash(ec.Request().Context(), adminOf(ec).SessionKey, f)
	return ec.Redirect(http.StatusSeeOther, path)
}

// recorded writes the audit row of an action the administrator just did
// and reports the outcome: ok, or, when the row could not be written, an
// error message naming the reference under which the failure is logged.
func (c *Console) recorded(ec echo.Context, path string, e directory.Event, ok flash) error {
	ctx := ec.Request().Context()
	e.Actor = adminOf(ec).Person.ID
	e.Ref = directory.NewRef()
	if err := c.appendAudit(ctx, ec, e); err != nil {
		c.log.ErrorContext(ctx, "admin: action done but its audit row was not written", "ref", e.Ref, "action", e.Action, "person", e.PersonID, "error", err)
		return c.redirectWith(ec, path, flash{Error: true, Key: "err.audit", Arg: e.Ref})
	}
	return c.redirectWith(ec, path, ok)
}

// failed reports a refused or failed action on the next page. Input and
// state errors say what to do; anything else is logged under a reference.
func (c *Console) failed(ec echo.Context, path string, err error, username string) error {
	var ve *directory.ValidationError
	switch {
	case errors.As(err, &ve):
		return c.redirectWith(ec, path, flash{Error: true, Key: "err.invalid", Arg: ve.Error()})
	case errors.Is(err, directory.ErrUsernameTaken):
		return c.redirectWith(ec, path, flash{Error: true, Key: "err.username.taken", Arg: strings.ToLower(username)})
	case errors.Is(err, directory.ErrNotPending):
		return c.redirectWith(ec, path, flash{Error: true, Key: "err.notpending"})
	case errors.Is(err, directory.ErrNotFound):
		return c.redirectWith(ec, path, flash{Error: true, Key: "err.notfound"})
	case errors.Is(err, directory.ErrInvitationUsed):
		return c.redirectWith(ec, path, flash{Error: true, Key: "err.inv.used"})
	}
	ref := directory.NewRef()
	c.log.ErrorContext(ec.Request().Context(), "admin: action failed", "ref", ref, "path", ec.Request().URL.Path, "error", err)
	return c.redirectWith(ec, path, flash{Error: true, Key: "err.unavailable", Arg: ref})
}
