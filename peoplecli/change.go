package peoplecli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/wechat-oidc/wechat-oidc/directory"
)

// add: `people add`.
func (c Command) add(ctx context.Context, args []string) error {
	f := c.newFlags("people add", "--username NAME [--name TEXT] [--email ADDR] [--groups a,b] [--status active|pending]")
	username := f.String("username", "", "the `NAME` people and applications know them by (preferred_username): a-z, 0-9, '.', '_', '-'")
	name := f.String("name", "", "display `NAME`")
	email := f.String("email", "", "email `ADDRESS` (sent as verified: you vouch for it)")
	var groups listFlag
	f.Var(&groups, "groups", "`GROUPS`, comma-separated (e.g. admins,ops)")
	status := f.String("status", "active", "active, or pending (`STATUS`)")
	if _, err := f.parse(args, 0, "", c.Stdout); err != nil {
		return err
	}
	if *username == "" {
		return usagef("--username is required")
	}
	if st := directory.Status(*status); st != directory.StatusActive && st != directory.StatusPending {
		return usagef("--status %q: use active or pending (to refuse someone, add them and run wechat-oidc people disable)", *status)
	}
	s, err := c.open(ctx, f)
	if err != nil {
		return err
	}
	defer s.close()
	p, err := s.dir.People().Create(ctx, directory.NewPerson{Username: *username, DisplayName: *name, Email: *email,
		EmailVerified: true, Groups: groups.vals, Status: directory.Status(*status)})
	if errors.Is(err, directory.ErrUsernameTaken) {
		return takenError(strings.ToLower(*username))
	}
	if err != nil {
		return explain(err)
	}
	if err := s.record(ctx, directory.Event{Action: directory.ActionPersonCreate, PersonID: p.ID,
		Reason: "added with groups " + formatGroups(p.Groups) + ", status " + string(p.Status)}); err != nil {
		return err
	}
	return s.report(directory.ActionPersonCreate, true, p,
		fmt.Sprintf("Added %s (%s), %s, groups %s.\n"+
			"They have no WeChat account bound yet: send them an invitation (wechat-oidc people invite --username %s),\n"+
			"or import their openid/unionid (wechat-oidc people import).",
			p.Username, p.ID, p.Status, formatGroups(p.Groups), p.Username))
}

// approve: `people approve`.
func (c Command) approve(ctx context.Context, args []string) error {
	f := c.newFlags("people approve", "USERNAME|ID|REF [--username NEW] [--groups a,b]")
	username := f.String("username", "", "give them this username `NAME` (default: keep the one they have)")
	var groups listFlag
	f.Var(&groups, "groups", "their `GROUPS`, comma-separated (default: keep theirs)")
	pos, err := f.parse(args, 1, "the pending person's USERNAME, ID or the reference their page showed", c.Stdout)
	if err != nil {
		return err
	}
	s, p, err := c.openPerson(ctx, f, pos[0])
	if err != nil {
		return err
	}
	defer s.close()
	if p.Status != directory.StatusPending {
		return fmt.Errorf("%s is %s, not pending: there is nothing to approve (see wechat-oidc people list --status pending)", p.Username, p.Status)
	}
	newName, newGroups := p.Username, p.Groups
	if *username != "" {
		newName = *username
	}
	if groups.set {
		newGroups = groups.vals
	}
	approved, err := s.dir.People().Approve(ctx, p.ID, newName, newGroups)
	switch {
	case errors.Is(err, directory.ErrUsernameTaken):
		return takenError(strings.ToLower(newName))
	case errors.Is(err, directory.ErrNotPending):
		return fmt.Errorf("%s is no longer pending (someone else acted first): see wechat-oidc people show %s", p.Username, p.ID)
	case err != nil:
		return explain(err)
	}
	reason := "groups " + formatGroups(approved.Groups)
	if approved.Username != p.Username {
		reason = "username " + p.Username + " → " + approved.Username + ", " + reason
	}
	if err := s.record(ctx, directory.Event{Action: directory.ActionPersonApprove, PersonID: p.ID, Reason: reason}); err != nil {
		return err
	}
	return s.report(directory.ActionPersonApprove, true, approved,
		fmt.Sprintf("Approved %s (%s), groups %s. If they are still on the waiting page, their sign-in continues by itself;\n"+
			"otherwise they sign in again.", approved.Username, approved.ID, formatGroups(approved.Groups)))
}

// deny: `people deny`.
func (c Command) deny(ctx context.Context, args []string) error {
	f := c.newFlags("people deny", "USERNAME|ID|REF")
	pos, err := f.parse(args, 1, "the pending person's USERNAME, ID or the reference their page showed", c.Stdout)
	if err != nil {
		return err
	}
	s, p, err := c.openPerson(ctx, f, pos[0])
	if err != nil {
		return err
	}
	defer s.close()
	if p.Status != directory.StatusPending {
		return fmt.Errorf("%s is %s, not pending: deny is for people waiting for approval; to take access away use "+
			"wechat-oidc people disable %s (or remove)", p.Username, p.Status, p.Username)
	}
	if err := s.dir.People().Delete(ctx, p.ID); err != nil {
		return err
	}
	if err := s.record(ctx, directory.Event{Action: directory.ActionPersonDeny, PersonID: p.ID, Reason: "pending person " + p.Username + " removed"}); err != nil {
		return err
	}
	return s.report(directory.ActionPersonDeny, true, p,
		fmt.Sprintf("Denied %s (%s): removed. In approval mode a new sign-in with the same WeChat account waits for approval again;\n"+
			"to keep someone out for good, approve and then disable them instead.", p.Username, p.ID))
}

// disable: `people disable`. The status change refuses the person at once
// (every token use and SSO reuse reads it); the person.disable row makes
// every running server end their sessions and revoke their tokens.
func (c Command) disable(ctx context.Context, args []string) error {
	f := c.newFlags("people disable", "USERNAME|ID")
	pos, err := f.parse(args, 1, "a USERNAME or person ID", c.Stdout)
	if err != nil {
		return err
	}
	s, p, err := c.openPerson(ctx, f, pos[0])
	if err != nil {
		return err
	}
	defer s.close()
	changed := p.Status != directory.StatusDisabled
	if changed {
		st := directory.StatusDisabled
		if p, err = s.dir.People().Update(ctx, p.ID, directory.PersonUpdate{Status: &st}); err != nil {
			return err
		}
	}
	// Written again when already disabled: running the command again is
	// how an interrupted disable (status changed, row not written) is
	// finished, and ending sessions twice does no harm.
	if err := s.record(ctx, directory.Event{Action: directory.ActionPersonDisable, PersonID: p.ID}); err != nil {
		return fmt.Errorf("%s is disabled (refused at every sign-in and token use), but the audit row that makes running servers "+
			"end their sessions was not written: run wechat-oidc people disable %s again: %w", p.Username, p.ID, err)
	}
	msg := "Disabled %s (%s)."
	if !changed {
		msg = "%s (%s) was already disabled."
	}
	return s.report(directory.ActionPersonDisable, changed, p, fmt.Sprintf(msg+
		" Running servers end their sessions, revoke their tokens and tell their applications\n"+
		"(back-channel logout) within seconds; every sign-in and token use is refused from now on.\n"+
		"Undo with wechat-oidc people enable %s.", p.Username, p.ID, p.Username))
}

// enable: `people enable`.
func (c Command) enable(ctx context.Context, args []string) error {
	f := c.newFlags("people enable", "USERNAME|ID")
	pos, err := f.parse(args, 1, "a USERNAME or person ID", c.Stdout)
	if err != nil {
		return err
	}
	s, p, err := c.openPerson(ctx, f, pos[0])
	if err != nil {
		return err
	}
	defer s.close()
	switch p.Status {
	case directory.StatusPending:
		return fmt.Errorf("%s is pending, not disabled: admit them with wechat-oidc people approve %s --groups ...", p.Username, p.Username)
	case directory.StatusActive:
		return s.report(directory.ActionPersonEnable, false, p, fmt.Sprintf("%s (%s) is already active: nothing changed.", p.Username, p.ID))
	}
	st := directory.StatusActive
	if p, err = s.dir.People().Update(ctx, p.ID, directory.PersonUpdate{Status: &st}); err != nil {
		return err
	}
	if err := s.record(ctx, directory.Event{Action: directory.ActionPersonEnable, PersonID: p.ID}); err != nil {
		return err
	}
	return s.report(directory.ActionPersonEnable, true, p,
		fmt.Sprintf("Enabled %s (%s): they may sign in again (their ended sessions do not come back).", p.Username, p.ID))
}

// remove: `people remove`. In three steps, each safe to repeat: disable
// (refused at once), the person.remove row (running servers end their
// sessions and tokens), then the deletion. Interrupted anywhere, running
// the command again finishes it.
func (c Command) remove(ctx context.Context, args []string) error {
	f := c.newFlags("people remove", "USERNAME|ID")
	pos, err := f.parse(args, 1, "a USERNAME or person ID", c.Stdout)
	if err != nil {
		return err
	}
	s, p, err := c.openPerson(ctx, f, pos[0])
	if err != nil {
		return err
	}
	defer s.close()
	if p.Status != directory.StatusDisabled {
		st := directory.StatusDisabled
		if _, err := s.dir.People().Update(ctx, p.ID, directory.PersonUpdate{Status: &st}); err != nil {
			return err
		}
	}
	if err := s.record(ctx, directory.Event{Action: directory.ActionPersonRemove, PersonID: p.ID,
		Reason: "username " + p.Username + ", groups " + formatGroups(p.Groups)}); err != nil {
		return fmt.Errorf("%s is disabled but not removed: the audit row was not written; run wechat-oidc people remove %s again: %w", p.Username, p.ID, err)
	}
	if err := s.dir.People().Delete(ctx, p.ID); err != nil {
		return fmt.Errorf("%s is disabled and their sessions end, but the record was not deleted; run wechat-oidc people remove %s again: %w", p.Username, p.ID, err)
	}
	return s.report(directory.ActionPersonRemove, true, p, fmt.Sprintf(
		"Removed %s (%s) and their WeChat bindings. Running servers end their sessions, revoke their tokens and tell\n"+
			"their applications (back-channel logout) within seconds. Their audit rows stay: wechat-oidc audit --person %s.\n"+
			"The same WeChat account signing in again is a stranger (pending in approval mode).", p.Username, p.ID, p.ID))
}

// groups: `people groups`.
func (c Command) groups(ctx context.Context, args []string) error {
	f := c.newFlags("people groups", "USERNAME|ID (--set a,b | --add x --remove y)")
	var set, add, del listFlag
	f.Var(&set, "set", "replace every group with these `GROUPS` (--set \"\" removes all)")
	f.Var(&add, "add", "add these `GROUPS`")
	f.Var(&del, "remove", "remove these `GROUPS`")
	pos, err := f.parse(args, 1, "a USERNAME or person ID", c.Stdout)
	if err != nil {
		return err
	}
	switch {
	case set.set && (add.set || del.set):
		return usagef("--set replaces every group: use it alone, or use --add and --remove")
	case !set.set && !add.set && !del.set:
		return usagef("say what to change: --set a,b, --add x or --remove y")
	}
	s, p, err := c.openPerson(ctx, f, pos[0])
	if err != nil {
		return err
	}
	defer s.close()
	next := slices.Clone(p.Groups)
	if set.set {
		next = set.vals
	}
	next = append(next, add.vals...)
	next = slices.DeleteFunc(next, func(g string) bool { return slices.Contains(del.vals, g) })
	slices.Sort(next)
	next = slices.Compact(next)
	if slices.Equal(next, p.Groups) {
		return s.report(directory.ActionPersonGroups, false, p,
			fmt.Sprintf("%s's groups are already %s: nothing changed.", p.Username, formatGroups(p.Groups)))
	}
	updated, err := s.dir.People().Update(ctx, p.ID, directory.PersonUpdate{Groups: &next})
	var ve *directory.ValidationError
	if errors.As(err, &ve) {
		return fmt.Errorf("groups: %s", ve.Message)
	}
	if err != nil {
		return err
	}
	if err := s.record(ctx, directory.Event{Action: directory.ActionPersonGroups, PersonID: p.ID,
		Reason: formatGroups(p.Groups) + " → " + formatGroups(updated.Groups)}); err != nil {
		return err
	}
	msg := fmt.Sprintf("%s's groups: %s → %s.", p.Username, formatGroups(p.Groups), formatGroups(updated.Groups))
	admin := s.cfg.Access.AdminGroup
	switch was, is := slices.Contains(p.Groups, admin), slices.Contains(updated.Groups, admin); {
	case is && !was:
		msg += fmt.Sprintf(" They are now an administrator (group %s).", admin)
	case was && !is:
		msg += fmt.Sprintf(" They are no longer an administrator (group %s).", admin)
	}
	msg += "\nApplications see the new groups at their next sign-in or token refresh; a group that an application's\n" +
		"allowed_groups needs and that was removed refuses them at their next refresh."
	return s.report(directory.ActionPersonGroups, true, updated, msg)
}

// report prints a change: text, or ChangeJSON with --json.
func (s *session) report(action string, changed bool, p directory.Person, text string) error {
	if s.json {
		return writeJSON(s.Stdout, ChangeJSON{Action: action, Changed: changed, Person: personJSON(p)})
	}
	_, err := fmt.Fprintln(s.Stdout, text)
	return err
}
