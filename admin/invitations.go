package admin

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/wechat-oidc/wechat-oidc/directory"
	template "github.com/wechat-oidc/wechat-oidc/internal/template/html"
)

// invitationForm is the create form as typed (kept when it is refused).
type invitationForm struct {
	Username, Name, Email, Groups, ClientID, Days string
}

type invitationsPage struct {
	Form        invitationForm
	Apps        []Application
	Invitations []directory.Invitation
}

type invitationCreated struct {
	Invitation directory.Invitation
	Link       string
	QR         template.URL // data:image/png;base64,…
}

func (c *Console) handleInvitations(ec echo.Context) error {
	return c.renderInvitations(ec, http.StatusOK, invitationForm{Days: "7"}, nil)
}

// renderInvitations shows the create form and the newest invitations; a
// refused form comes back with what was typed and the reason.
func (c *Console) renderInvitations(ec echo.Context, status int, form invitationForm, fail *flash) error {
	list, err := c.dir.Invitations().List(ec.Request().Context(), directory.InvitationQuery{Limit: 50})
	if err != nil {
		return c.unavailable(ec, fmt.Errorf("listing invitations: %w", err))
	}
	v := c.view(ec, "invitations", "inv.title")
	if fail != nil {
		v.Flash = &flashView{Error: true, Key: fail.Key, Text: v.T(fail.Key)}
		if fail.Arg != "" {
			v.Flash.Text = v.Tf(fail.Key, fail.Arg)
		}
	}
	v.Data = invitationsPage{Form: form, Apps: c.apps, Invitations: list}
	return c.render(ec, status, "invitations", v)
}

// handleCreateInvitation creates an invitation and shows its link and QR
// code, this once (only the token's hash is stored). Inviting into the
// admin group needs a recent sign-in.
func (c *Console) handleCreateInvitation(ec echo.Context) error {
	ctx := ec.Request().Context()
	f := ec.Request().PostForm
	form := invitationForm{
		Username: strings.TrimSpace(f.Get("username")), Name: strings.TrimSpace(f.Get("name")),
		Email: strings.TrimSpace(f.Get("email")), Groups: f.Get("groups"), ClientID: f.Get("client_id"),
		Days: strings.TrimSpace(f.Get("days")),
	}
	days, err := strconv.Atoi(form.Days)
	if err != nil || days < 1 || days > 90 {
		return c.renderInvitations(ec, http.StatusUnprocessableEntity, form, &flash{Key: "err.days"})
	}
	if form.ClientID != "" && !c.knownApp(form.ClientID) {
		return c.renderInvitations(ec, http.StatusUnprocessableEntity, form, &flash{Key: "err.app"})
	}
	groups := parseGroups(form.Groups)
	if hasGroup(groups, c.adminGroup) {
		if ok, err := c.recentAuth(ec, c.url("/invitations")); !ok {
			return err
		}
	}
	a := adminOf(ec)
	inv, token, err := c.dir.Invitations().Create(ctx, directory.NewInvitation{
		Username: form.Username, DisplayName: form.Name, Email: form.Email, Groups: groups,
		ClientID: form.ClientID, TTL: time.Duration(days) * 24 * time.Hour, CreatedBy: a.Person.ID,
	})
	var ve *directory.ValidationError
	if errors.As(err, &ve) {
		return c.renderInvitations(ec, http.StatusUnprocessableEntity, form, &flash{Key: "err.invalid", Arg: ve.Error()})
	}
	if err != nil {
		return c.unavailable(ec, fmt.Errorf("creating an invitation: %w", err))
	}
	link := strings.TrimSuffix(c.issuer, "/") + "/invite/" + token
	png, err := qrcode.Encode(link, qrcode.Medium, 480)
	if err != nil {
		return c.unavailable(ec, fmt.Errorf("drawing the invitation's QR code: %w", err))
	}
	v := c.view(ec, "invitation-created", "inv.title")
	e := directory.Event{Actor: a.Person.ID, Action: directory.ActionInvitationCreate, ClientID: inv.ClientID, Result: "ok",
		Reason: fmt.Sprintf("invitation %s for @%s; groups: %s; expires %s", inv.ID, inv.Username, groupList(inv.Groups),
			inv.ExpiresAt.UTC().Format(time.RFC3339))}
	if err := c.appendAudit(ctx, ec, e); err != nil {
		ref := directory.NewRef()
		c.log.ErrorContext(ctx, "admin: invitation created but its audit row was not written", "ref", ref, "invitation", inv.ID, "error", err)
		v.Flash = &flashView{Error: true, Key: "err.audit", Text: v.Tf("err.audit", ref)}
	}
	v.Data = invitationCreated{
		Invitation: inv, Link: link,
		QR: template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png)),
	}
	return c.render(ec, http.StatusOK, "invitation-created", v)
}

func (c *Console) knownApp(id string) bool {
	for _, a := range c.apps {
		if a.ID == id {
			return true
		}
	}
	return false
}

// handleRevokeInvitation makes an unused invitation unusable.
func (c *Console) handleRevokeInvitation(ec echo.Context) error {
	ctx := ec.Request().Context()
	back := c.url("/invitations")
	id := ec.Param("id")
	inv, err := c.dir.Invitations().GetByID(ctx, id)
	if err != nil {
		return c.failed(ec, back, err, "")
	}
	if err := c.dir.Invitations().Revoke(ctx, id); err != nil {
		return c.failed(ec, back, err, "")
	}
	return c.recorded(ec, back, directory.Event{
		Action: directory.ActionInvitationRevoke, ClientID: inv.ClientID, Result: "ok",
		Reason: fmt.Sprintf("invitation %s for @%s revoked", inv.ID, inv.Username),
	}, flash{Key: "flash.inv.revoked"})
}
