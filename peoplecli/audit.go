package peoplecli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/wechat-oidc/wechat-oidc/directory"
)

// actions are the audit actions --action accepts.
var actions = directory.Actions()

// audit: `wechat-oidc audit`.
func (c Command) audit(ctx context.Context, args []string) error {
	const synopsis = "[--person USERNAME|ID] [--action ACTION] [--since 24h|2006-01-02|RFC3339] [--ref R-XXXXXX] [--limit N]"
	f := c.newFlags("audit", synopsis)
	person := f.String("person", "", "only rows about this person (`USERNAME or ID`; an id also finds rows of a removed person)")
	action := f.String("action", "", "only rows with this `ACTION`: "+strings.Join(actions, ", "))
	since := f.String("since", "", "only rows from this long ago (24h, 7d) or from this `TIME` (2006-01-02, or RFC 3339)")
	ref := f.String("ref", "", "only rows with this `REFERENCE` (as a page showed it, e.g. R-7F3KQ9)")
	limit := f.Int("limit", 50, "at most `N` rows, newest first (up to 1000)")
	if _, err := f.parse(args, 0, "", c.Stdout); err != nil {
		return err
	}
	q := directory.AuditQuery{Action: *action, Ref: strings.ToUpper(*ref), Limit: *limit}
	if *action != "" && !slices.Contains(actions, *action) {
		return usagef("--action %q is not an audit action; use one of %s", *action, strings.Join(actions, ", "))
	}
	if *limit < 1 || *limit > 1000 {
		return usagef("--limit %d: between 1 and 1000", *limit)
	}
	if *since != "" {
		t, err := parseSince(*since, c.now())
		if err != nil {
			return usagef("--since: %v", err)
		}
		q.Since = t
	}
	s, err := c.open(ctx, f)
	if err != nil {
		return err
	}
	defer s.close()
	if *person != "" {
		p, err := s.find(ctx, *person)
		switch {
		case err == nil:
			q.PersonID = p.ID
		case strings.HasPrefix(*person, "p_") && !errors.Is(err, directory.ErrUnavailable):
			q.PersonID = *person // removed people keep their rows
		default:
			return err
		}
	}
	events, err := s.dir.Audit().Query(ctx, q)
	if err != nil {
		return err
	}
	if *f.json {
		out := make([]EventJSON, len(events))
		for i, e := range events {
			out[i] = eventJSON(e)
		}
		return writeJSON(c.Stdout, out)
	}
	if len(events) == 0 {
		_, err := fmt.Fprintln(c.Stdout, "No audit rows match.")
		return err
	}
	if err := s.eventTable(ctx, events, "", true).write(c.Stdout); err != nil {
		return err
	}
	if len(events) == *limit {
		fmt.Fprintf(c.Stdout, "(the newest %d rows; narrow with --since, --person or --action, or raise --limit)\n", *limit)
	}
	return nil
}

// eventTable lays out audit rows, each line starting with indent; people
// are shown by username where they still exist.
func (s *session) eventTable(ctx context.Context, events []directory.Event, indent string, withPerson bool) *table {
	names := map[string]string{}
	name := func(id string) string {
		if !strings.HasPrefix(id, "p_") {
			return id
		}
		if n, ok := names[id]; ok {
			return n
		}
		n := id
		if p, err := s.dir.People().Get(ctx, id); err == nil {
			n = p.Username
		}
		names[id] = n
		return n
	}
	t := &table{}
	head := []string{indent + "TIME", "ACTOR", "ACTION", "RESULT"}
	if withPerson {
		head = append(head, "PERSON")
	}
	t.add(append(head, "CLIENT", "IP", "REF", "REASON")...)
	for _, e := range events {
		row := []string{indent + formatTime(e.Time), name(e.Actor), e.Action, e.Result}
		if withPerson {
			row = append(row, name(e.PersonID))
		}
		t.add(append(row, e.ClientID, e.IP, e.Ref, e.Reason)...)
	}
	return t
}

// parseSince reads --since: a duration back from now ("24h", "7d"), a date
// (UTC midnight), or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := parseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q is neither a duration (24h, 7d), a date (2006-01-02) nor an RFC 3339 time (2006-01-02T15:04:05Z)", s)
}
