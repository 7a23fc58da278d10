package peoplecli

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wechat-oidc/wechat-oidc/directory"
)

// auditFixture: alice's sign-ins over three days and a denied stranger.
func auditFixture(t *testing.T) (*env, directory.Person) {
	e := newEnv(t)
	e.ok("add", "--username", "alice") // person.create at 09:30 on day 0
	alice := e.person("alice")
	now := e.clock.now()
	for _, ev := range []directory.Event{
		{Time: now.Add(1 * time.Hour), Action: directory.ActionSignIn, PersonID: alice.ID, ClientID: "grafana", Result: "ok", IP: "192.0.2.1"},
		{Time: now.Add(25 * time.Hour), Action: directory.ActionSignIn, PersonID: alice.ID, ClientID: "wiki", Result: "ok"},
		{Time: now.Add(49 * time.Hour), Action: directory.ActionSignIn, ClientID: "grafana", Result: "denied", Reason: "not in allowed_groups", Ref: "R-7F3KQ9"},
	} {
		if err := e.d().Audit().Append(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	e.clock.advance(50 * time.Hour)
	return e, alice
}

func auditJSON(t *testing.T, e *env, args ...string) []EventJSON {
	t.Helper()
	r := e.audit(append(args, "--json")...)
	if r.code != ExitOK {
		t.Fatalf("audit %v: %v", args, r)
	}
	var out []EventJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func actionsOf(ev []EventJSON) []string {
	var out []string
	for _, e := range ev {
		out = append(out, e.Action+"/"+e.Result)
	}
	return out
}

func TestAuditFilters(t *testing.T) {
	e, alice := auditFixture(t)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{nil, []string{"sign_in/denied", "sign_in/ok", "sign_in/ok", "person.create/ok"}},
		{[]string{"--person", "alice"}, []string{"sign_in/ok", "sign_in/ok", "person.create/ok"}},
		{[]string{"--person", alice.ID, "--action", "sign_in"}, []string{"sign_in/ok", "sign_in/ok"}},
		{[]string{"--since", "26h"}, []string{"sign_in/denied", "sign_in/ok"}},
		{[]string{"--since", "2d"}, []string{"sign_in/denied", "sign_in/ok"}},
		{[]string{"--since", "2025-03-12"}, []string{"sign_in/denied"}},
		{[]string{"--since", "2025-03-11T10:00:00Z"}, []string{"sign_in/denied", "sign_in/ok"}},
		{[]string{"--ref", "r-7f3kq9"}, []string{"sign_in/denied"}},
		{[]string{"--action", "person.create"}, []string{"person.create/ok"}},
		{[]string{"--limit", "2"}, []string{"sign_in/denied", "sign_in/ok"}},
		{[]string{"--person", "p_removedpersonid0000"}, nil},
	} {
		if got := actionsOf(auditJSON(t, e, tc.args...)); !slices.Equal(got, tc.want) {
			t.Errorf("audit %v: %v, want %v", tc.args, got, tc.want)
		}
	}
	got := auditJSON(t, e, "--ref", "R-7F3KQ9")
	if len(got) != 1 || got[0].Reason != "not in allowed_groups" || got[0].ClientID != "grafana" || got[0].ID == 0 {
		t.Fatalf("%+v", got)
	}
	r := e.audit("--person", "nobody")
	if r.code != ExitError || !strings.Contains(r.stderr, "people list") {
		t.Fatalf("unknown person: %v", r)
	}
}

func TestAuditTable(t *testing.T) {
	e, _ := auditFixture(t)
	r := e.audit()
	if r.code != ExitOK {
		t.Fatalf("%v", r)
	}
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "TIME") {
		t.Fatalf("table:\n%s", r.stdout)
	}
	wantContains(t, "table", r.stdout, "PERSON", "REASON", "2025-03-12 10:30Z", "denied", "R-7F3KQ9", "not in allowed_groups",
		"alice", "192.0.2.1")
	refCol := strings.Index(lines[0], "REF")
	if !strings.HasPrefix(lines[1][refCol:], "R-7F3KQ9") {
		t.Errorf("columns not aligned:\n%s", r.stdout)
	}
	r = e.audit("--action", "invitation.use")
	wantContains(t, "no rows", r.stdout, "No audit rows match")
	r = e.audit("--limit", "2")
	wantContains(t, "limited", r.stdout, "the newest 2 rows", "raise --limit")
}

// TestAuditTableEscapesTerminalControlCharacters: a user agent or reason
// recorded as received cannot send escape sequences to the
// administrator's terminal, nor reorder the line with bidi overrides.
func TestAuditTableEscapesTerminalControlCharacters(t *testing.T) {
	e := newEnv(t)
	if err := e.d().Audit().Append(context.Background(), directory.Event{Action: directory.ActionSignIn, Result: "denied",
		UserAgent: "x", Reason: "evil\x1b[2J\x1b]0;pwned\x07 \u202eoverride\r\nnext"}); err != nil {
		t.Fatal(err)
	}
	r := e.audit()
	if strings.ContainsAny(r.stdout, "\x1b\x07\r\u202e") || strings.Count(r.stdout, "\n") != 2 {
		t.Fatalf("raw control characters in the table: %q", r.stdout)
	}
	wantContains(t, "table", r.stdout, `evil\u001b[2J\u001b]0;pwned\u0007 \u202eoverride\u000d\u000anext`)
	// JSON carries the text as recorded (escaped by JSON itself).
	if got := auditJSON(t, e); got[0].Reason != "evil\x1b[2J\x1b]0;pwned\x07 \u202eoverride\r\nnext" {
		t.Fatalf("JSON reason %q", got[0].Reason)
	}
}
