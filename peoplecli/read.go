package peoplecli

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/wechat-oidc/wechat-oidc/directory"
)

// list: `people list`.
func (c Command) list(ctx context.Context, args []string) error {
	f := c.newFlags("people list", "[--status active|pending|disabled] [--search TEXT]")
	status := f.String("status", "", "only people with this `STATUS`: active, pending or disabled")
	search := f.String("search", "", "only people whose username, name, email, openid or unionid contains `TEXT`")
	if _, err := f.parse(args, 0, "", c.Stdout); err != nil {
		return err
	}
	switch directory.Status(*status) {
	case "", directory.StatusActive, directory.StatusPending, directory.StatusDisabled:
	default:
		return usagef("--status %q: use active, pending or disabled", *status)
	}
	s, err := c.open(ctx, f)
	if err != nil {
		return err
	}
	defer s.close()
	var people []directory.Person
	const page = 1000
	for {
		batch, err := s.dir.People().Search(ctx, directory.PersonQuery{
			Text: *search, Status: directory.Status(*status), Limit: page, Offset: len(people)})
		if err != nil {
			return explain(err)
		}
		people = append(people, batch...)
		if len(batch) < page {
			break
		}
	}
	if *f.json {
		out := make([]PersonJSON, len(people))
		for i, p := range people {
			out[i] = personJSON(p)
		}
		return writeJSON(c.Stdout, out)
	}
	if len(people) == 0 {
		return c.noPeople(s, *status != "" || *search != "")
	}
	t := &table{}
	t.add("USERNAME", "NAME", "STATUS", "GROUPS", "LAST SIGN-IN", "ID")
	for _, p := range people {
		last := "never"
		if p.LastSignIn != nil {
			last = formatTime(p.LastSignIn.At) + " " + p.LastSignIn.ClientID
		}
		t.add(p.Username, p.DisplayName, string(p.Status), formatGroups(p.Groups), last, p.ID)
	}
	return t.write(c.Stdout)
}

func (c Command) noPeople(s *session, filtered bool) error {
	if filtered {
		_, err := fmt.Fprintln(c.Stdout, "No one matches.")
		return err
	}
	_, err := fmt.Fprintf(c.Stdout, "The directory is empty. Make yourself the first administrator:\n"+
		"  wechat-oidc people invite --config FILE --username YOU --groups %s\n"+
		"and open the link it prints (see docs/people.md).\n", s.cfg.Access.AdminGroup)
	return err
}

// show: `people show USERNAME|ID|REF`.
func (c Command) show(ctx context.Context, args []string) error {
	f := c.newFlags("people show", "USERNAME|ID|REF")
	limit := f.Int("audit", 10, "show this many recent audit rows (`N`, at most 1000)")
	pos, err := f.parse(args, 1, "a USERNAME, person ID or reference", c.Stdout)
	if err != nil {
		return err
	}
	if *limit < 0 || *limit > 1000 {
		return usagef("--audit %d: between 0 and 1000", *limit)
	}
	s, p, err := c.openPerson(ctx, f, pos[0])
	if err != nil {
		return err
	}
	defer s.close()
	ids, err := s.dir.People().Identities(ctx, p.ID)
	if err != nil {
		return err
	}
	var events []directory.Event
	if *limit > 0 {
		if events, err = s.dir.Audit().Query(ctx, directory.AuditQuery{PersonID: p.ID, Limit: *limit}); err != nil {
			return err
		}
	}
	if *f.json {
		out := ShowJSON{Person: personJSON(p), Identities: []IdentityJSON{}, Audit: []EventJSON{}}
		for _, id := range ids {
			out.Identities = append(out.Identities, IdentityJSON{Provider: id.Provider, AppID: id.AppID,
				OpenID: id.OpenID, UnionID: id.UnionID, BoundAt: id.BoundAt})
		}
		for _, e := range events {
			out.Audit = append(out.Audit, eventJSON(e))
		}
		return writeJSON(c.Stdout, out)
	}
	return s.writePerson(ctx, c.Stdout, p, ids, events)
}

func (s *session) writePerson(ctx context.Context, w io.Writer, p directory.Person, ids []directory.Identity, events []directory.Event) error {
	email := p.Email
	if email != "" && p.EmailVerified {
		email += " (verified)"
	}
	last := "never"
	if l := p.LastSignIn; l != nil {
		last = strings.Join(nonEmpty(formatTime(l.At), l.ClientID, l.Flow, l.IP), "  ")
	}
	role := ""
	for _, g := range p.Groups {
		if g == s.cfg.Access.AdminGroup {
			role = " (administrator)"
		}
	}
	t := &table{}
	t.add("username", p.Username)
	t.add("name", p.DisplayName)
	t.add("email", email)
	t.add("status", string(p.Status)+statusHint(p))
	t.add("groups", formatGroups(p.Groups)+role)
	t.add("id", p.ID)
	t.add("created", formatTime(p.CreatedAt))
	t.add("updated", formatTime(p.UpdatedAt))
	t.add("last sign-in", last)
	if err := t.write(w); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nWeChat accounts:")
	if len(ids) == 0 {
		fmt.Fprintln(w, "  none bound yet (an invitation or an import binds one)")
	} else {
		t := &table{}
		for _, id := range ids {
			if id.OpenID != "" {
				t.add("  "+id.Provider, "openid "+id.OpenID, "app "+id.AppID, "bound "+formatTime(id.BoundAt))
			} else {
				t.add("  "+id.Provider, "unionid "+id.UnionID, "", "bound "+formatTime(id.BoundAt))
			}
		}
		if err := t.write(w); err != nil {
			return err
		}
	}
	if events == nil {
		return nil
	}
	fmt.Fprintln(w, "\nRecent audit (newest first):")
	if len(events) == 0 {
		_, err := fmt.Fprintln(w, "  none")
		return err
	}
	return s.eventTable(ctx, events, "  ", false).write(w)
}

func statusHint(p directory.Person) string {
	switch p.Status {
	case directory.StatusPending:
		return " (waiting: wechat-oidc people approve " + p.Username + " --groups ...)"
	case directory.StatusDisabled:
		return " (refused at sign-in: wechat-oidc people enable " + p.Username + ")"
	}
	return ""
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}
