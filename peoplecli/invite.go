package peoplecli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/wechat-oidc/wechat-oidc/directory"
)

// invite: `people invite`. The link is the only copy of the token (the
// directory keeps its hash), so it is printed once, here.
func (c Command) invite(ctx context.Context, args []string) error {
	f := c.newFlags("people invite", "--username NAME [--name TEXT] [--email ADDR] [--groups a,b] [--client ID] [--ttl 168h] [--no-qr]")
	username := f.String("username", "", "the `NAME` they will have (an existing pending or active person is updated and gets another WeChat account bound)")
	name := f.String("name", "", "display `NAME`")
	email := f.String("email", "", "email `ADDRESS` (sent as verified: you vouch for it)")
	var groups listFlag
	f.Var(&groups, "groups", "their `GROUPS`, comma-separated; the admin group (access.admin_group) makes an administrator")
	client := f.String("client", "", "the application (`ID` from clients:) they land in after accepting")
	ttl := durationFlag{d: directory.DefaultInvitationTTL}
	f.Var(&ttl, "ttl", "how long the link works (`DURATION`: 168h, 7d; at most 90d)")
	noQR := f.Bool("no-qr", false, "do not print the QR code")
	if _, err := f.parse(args, 0, "", c.Stdout); err != nil {
		return err
	}
	if *username == "" {
		return usagef("--username is required: the username the invited person will have")
	}
	if ttl.d <= 0 || ttl.d > directory.MaxInvitationTTL {
		return usagef("--ttl %s: between 1s and %s (90 days)", ttl.d, directory.MaxInvitationTTL)
	}
	s, err := c.open(ctx, f)
	if err != nil {
		return err
	}
	defer s.close()
	if err := s.checkClient(*client); err != nil {
		return err
	}
	existing, err := s.dir.People().GetByUsername(ctx, *username)
	switch {
	case errors.Is(err, directory.ErrNotFound):
	case err != nil:
		return err
	case existing.Status == directory.StatusDisabled:
		return fmt.Errorf("%s is disabled, and an invitation cannot re-admit them: enable them first with wechat-oidc people enable %s, "+
			"or choose another --username", existing.Username, existing.Username)
	}
	inv, token, err := s.dir.Invitations().Create(ctx, directory.NewInvitation{Username: *username, DisplayName: *name,
		Email: *email, Groups: groups.vals, ClientID: *client, TTL: ttl.d, CreatedBy: Actor})
	if err != nil {
		return explain(err)
	}
	if err := s.record(ctx, directory.Event{Action: directory.ActionInvitationCreate, PersonID: existing.ID, ClientID: inv.ClientID,
		Reason: fmt.Sprintf("invitation %s for %s, groups %s, expires %s", inv.ID, inv.Username, formatGroups(inv.Groups),
			formatTime(inv.ExpiresAt))}); err != nil {
		return err
	}
	link := strings.TrimSuffix(s.cfg.Issuer, "/") + "/invite/" + token
	if s.json {
		return writeJSON(c.Stdout, InvitationJSON{Link: link, ID: inv.ID, Username: inv.Username, Name: inv.DisplayName,
			Email: inv.Email, Groups: orEmpty(inv.Groups), ClientID: inv.ClientID, CreatedAt: inv.CreatedAt, ExpiresAt: inv.ExpiresAt})
	}
	return s.printInvitation(inv, existing, link, !*noQR)
}

func (s *session) printInvitation(inv directory.Invitation, existing directory.Person, link string, qr bool) error {
	w := s.Stdout
	fmt.Fprintf(w, "Invitation %s for %s (groups %s), single use, valid until %s.\n", inv.ID, inv.Username,
		formatGroups(inv.Groups), formatTime(inv.ExpiresAt))
	if existing.ID != "" {
		fmt.Fprintf(w, "%s exists (%s): accepting binds the WeChat account that opens the link to them and sets their groups to %s.\n",
			existing.Username, existing.Status, formatGroups(inv.Groups))
	}
	fmt.Fprintf(w, "Send the link privately: whoever opens it first and signs in with WeChat becomes %s.\n\n  %s\n\n", inv.Username, link)
	if qr {
		code, err := terminalQR(link, isTerminal(w))
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%s\nScan it with WeChat on their phone, or open the link on a desktop.\n", code)
	}
	if slices.Contains(inv.Groups, s.cfg.Access.AdminGroup) {
		fmt.Fprintf(w, "%s will be an administrator (group %s): once signed in they can use %s/admin.\n",
			inv.Username, s.cfg.Access.AdminGroup, strings.TrimSuffix(s.cfg.Issuer, "/"))
	}
	_, err := fmt.Fprintf(w, "The link is shown only now; if it is lost, create another invitation.\n")
	return err
}

// checkClient refuses a --client that is not a configured client.
func (s *session) checkClient(id string) error {
	if id == "" {
		return nil
	}
	var ids []string
	for _, cl := range s.cfg.Clients {
		if cl.ID == id {
			return nil
		}
		ids = append(ids, cl.ID)
	}
	if len(ids) == 0 {
		return fmt.Errorf("--client %q: the config has no clients; leave --client out, or register the application under clients:", id)
	}
	return fmt.Errorf("--client %q is not a client in the config: use one of %s, or leave --client out", id, strings.Join(ids, ", "))
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
