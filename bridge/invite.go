package bridge

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/wechat-oidc/wechat-oidc/connector"
	"github.com/wechat-oidc/wechat-oidc/directory"
	"github.com/wechat-oidc/wechat-oidc/oidc"
)

// PathInvite is where an invitation link points: {issuer}/invite/{token}.
const PathInvite = "/invite/"

// An invitation runs the same upstream sign-in as an application's request
// (the connector picks the flow by browser: the Official Account inside
// WeChat, the desktop QR elsewhere), then binds the upstream identity to the
// invited person instead of issuing a code, and lands the browser in the
// invitation's application (its initiate_login_uri), already signed in.
// Nothing is consumed until the redemption: a link preview that opens the
// URL starts a sign-in nobody finishes.

// maxInviteTokenLen bounds a token before it reaches the directory (real
// ones are 43 characters).
const maxInviteTokenLen = 128

// handleInvite starts the sign-in of an invitation.
func (s *Server) handleInvite(c echo.Context) error {
	ctx := c.Request().Context()
	c.Response().Header().Set("Cache-Control", "no-store")
	token := c.Param("token")
	if token == "" || len(token) > maxInviteTokenLen {
		return s.invitePage(c, "invite-unknown", "")
	}
	dctx, cancel := directory.Bound(ctx)
	defer cancel()
	inv, err := s.dir.Invitations().Get(dctx, token)
	if err != nil {
		return s.inviteError(c, err, "")
	}
	if kind := inviteStateKind(inv.State); kind != "" {
		ref := directory.NewRef()
		s.audit(dctx, directory.Event{Action: directory.ActionInvitationUse, Result: string(inv.State), Ref: ref,
			IP: c.RealIP(), UserAgent: c.Request().UserAgent(), Reason: "invitation " + inv.ID + " opened but " + string(inv.State)})
		return s.invitePage(c, kind, ref)
	}
	// The sign-in is carried by an authorization request of our own, for the
	// invitation's application: it is never answered with a code.
	req := &oidc.AuthRequest{ClientID: inv.ClientID}
	st, e := s.conn.Start(connector.StartRequest{ClientID: inv.ClientID, UserAgent: c.Request().UserAgent()})
	if e != nil {
		return s.errorPage(c, http.StatusBadRequest, e)
	}
	unavailable := func(err error) error { return s.authorizeUnavailable(c, req, err) }
	browser, err := s.browserBinding(c)
	if err != nil {
		return unavailable(err)
	}
	// An invitation's sign-in holds a pending slot like any other.
	slot, err := s.admitPending(ctx, c.RealIP())
	if err != nil {
		return s.notAdmitted(c, err, unavailable)
	}
	if st.CrossDevice {
		return s.startCrossDevice(c, req, browser, "", st, slot, token)
	}
	return s.sendUpstream(c, pendingLogin{Request: req, Browser: browser, Leg: st.Leg, Flow: st.Flow, Invite: token, Slot: slot})
}

func inviteStateKind(st directory.InvitationState) string {
	switch st {
	case directory.InvitationUsed:
		return "invite-used"
	case directory.InvitationExpired:
		return "invite-expired"
	case directory.InvitationRevoked:
		return "invite-revoked"
	}
	return ""
}

// redeemInvite binds the upstream identity to the invited person, starts
// their SSO session and lands them in the application.
func (s *Server) redeemInvite(c echo.Context, token, flow string, up connector.Identity) error {
	ctx, cancel := directory.Bound(c.Request().Context())
	defer cancel()
	ev := directory.Event{Action: directory.ActionInvitationUse, Flow: flow, IP: c.RealIP(), UserAgent: c.Request().UserAgent()}
	inv, err := s.dir.Invitations().Get(ctx, token)
	if err != nil {
		return s.inviteError(c, err, "")
	}
	ev.ClientID = inv.ClientID
	p, err := s.dir.Invitations().Redeem(ctx, token, upstreamAccount(up))
	if err != nil {
		ev.Ref, ev.Result, ev.Reason = directory.NewRef(), "refused", "invitation "+inv.ID+": "+err.Error()
		if errors.Is(err, directory.ErrIdentityTaken) {
			ev.Action = directory.ActionIdentityRefused
		}
		s.audit(ctx, ev)
		return s.inviteError(c, err, ev.Ref)
	}
	ev.PersonID, ev.Result, ev.Reason = p.ID, "ok", "invitation "+inv.ID
	s.audit(ctx, ev)
	si := signIn{Person: p, Identity: s.personIdentity(p, up)}
	if err := s.people.RecordSignIn(ctx, p.ID, directory.SignIn{ClientID: inv.ClientID, Flow: flow, IP: c.RealIP()}); err != nil {
		s.log.WarnContext(ctx, "people: could not record the invitation's sign-in", "person", p.ID, "error", err)
	}
	if _, err := s.startSession(c, si.Identity, inv.ClientID, true); err != nil {
		// The person is admitted; only the SSO session is missing: the
		// application will ask them to sign in once more.
		s.log.ErrorContext(ctx, "people: could not start the session after an invitation", "error", err)
	}
	if cc := s.clients[inv.ClientID]; cc != nil && cc.InitiateLoginURI != "" {
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.Redirect(http.StatusFound, cc.InitiateLoginURI)
	}
	return s.allSetPage(c, p)
}

// allSetPage lists the applications the new person can open.
func (s *Server) allSetPage(c echo.Context, p directory.Person) error {
	pg := page{Name: "invite-done", Title: "欢迎 · Welcome", Icon: "ok", Heading: "一切就绪，" + p.Username,
		Message: "你的微信已绑定。现在可以用微信登录以下应用：",
		Detail:  "Your WeChat account is bound. You can now sign in to these applications with WeChat:"}
	for _, cc := range s.opt.Clients {
		if cc.InitiateLoginURI != "" && s.mayUse(p, cc.ID) == nil {
			pg.Note += s.clientName(cc.ID) + " · "
			if pg.LinkURL == "" {
				pg.LinkURL, pg.LinkLabel = cc.InitiateLoginURI, "打开「"+s.clientName(cc.ID)+"」· Open "+s.clientName(cc.ID)
			}
		}
	}
	return s.renderPage(c, http.StatusOK, pg)
}

// inviteError shows why an invitation cannot be used.
func (s *Server) inviteError(c echo.Context, err error, ref string) error {
	switch {
	case errors.Is(err, directory.ErrNotFound):
		return s.invitePage(c, "invite-unknown", ref)
	case errors.Is(err, directory.ErrInvitationUsed):
		return s.invitePage(c, "invite-used", ref)
	case errors.Is(err, directory.ErrInvitationExpired):
		return s.invitePage(c, "invite-expired", ref)
	case errors.Is(err, directory.ErrInvitationRevoked):
		return s.invitePage(c, "invite-revoked", ref)
	case errors.Is(err, directory.ErrIdentityTaken):
		return s.invitePage(c, "invite-identity-taken", ref)
	case errors.Is(err, directory.ErrDisabled):
		return s.invitePage(c, "invite-disabled", ref)
	}
	s.log.ErrorContext(c.Request().Context(), "people: directory unavailable", "ref", ref, "error", err)
	pg := pageUnavailable
	pg.Ref = ref
	return s.renderPage(c, http.StatusServiceUnavailable, pg)
}

var invitePages = map[string][3]string{
	"invite-unknown":        {"邀请链接无效", "这个邀请链接不存在。请检查链接是否完整，或向管理员索取新的邀请。", "This invitation link does not exist. Check that the link is complete, or ask an administrator for a new invitation."},
	"invite-used":           {"邀请已被使用", "这个邀请已经被使用过。每个邀请只能使用一次；如需帮助请联系管理员。", "This invitation was already used; each invitation works once. Ask an administrator if you need help."},
	"invite-expired":        {"邀请已过期", "这个邀请已经过期。请向管理员索取新的邀请。", "This invitation has expired. Ask an administrator for a new one."},
	"invite-revoked":        {"邀请已撤销", "管理员已撤销这个邀请。请向管理员确认。", "An administrator revoked this invitation. Check with them."},
	"invite-identity-taken": {"这个微信已绑定其他成员", "你的微信账号已经绑定到另一位成员，不能再绑定到这个邀请。请联系管理员并告诉他参考编号。", "Your WeChat account is already bound to another member and cannot be bound to this invitation. Ask an administrator, quoting the reference."},
	"invite-disabled":       {"账号已停用", "这个邀请对应的账号已被停用。请联系管理员。", "The account of this invitation is disabled. Ask an administrator."},
}

func (s *Server) invitePage(c echo.Context, kind, ref string) error {
	t := invitePages[kind]
	return s.renderPage(c, http.StatusBadRequest, page{Name: kind, Title: t[0] + " · Invitation", Heading: t[0],
		Message: t[1], Detail: t[2], Icon: "warn", Ref: ref})
}

// failurePage shows an upstream failure where there is no client to tell
// (an invitation's sign-in).
func (s *Server) failurePage(c echo.Context, f *connector.Failure) error {
	pg := page{Name: "failed", Title: "登录失败 · Sign-in failed", Heading: "登录失败", Icon: "warn",
		Message: "微信登录没有完成，请重新打开邀请链接。", Detail: f.Error.Description}
	if f.PersonZH != "" {
		pg.Message, pg.Detail = f.PersonZH, f.PersonEN
	}
	return s.renderPage(c, http.StatusOK, pg)
}
