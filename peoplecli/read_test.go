package peoplecli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wechat-oidc/wechat-oidc/config"
	"github.com/wechat-oidc/wechat-oidc/directory"
)

// TestUnsetSecretElsewhereDoesNotBlockPeopleCommands: the config names
// ${VARS} for the WeChat app secret and client secrets that are not set;
// the server would refuse it, the people commands run.
func TestUnsetSecretElsewhereDoesNotBlockPeopleCommands(t *testing.T) {
	e := newEnv(t)
	if _, err := config.Load(e.config); err == nil || !strings.Contains(err.Error(), "is not set") {
		t.Fatalf("test setup: the server's config.Load should refuse the unset secrets, got %v", err)
	}
	e.ok("add", "--username", "alice")
	r := e.ok("list")
	wantContains(t, "list", r.stdout, "alice")
	if r.stderr != "" {
		t.Errorf("stderr: %q", r.stderr)
	}
}

// TestUnsetVariableInDirectorySectionIsRefused: the sections the CLI reads
// are read strictly.
func TestUnsetVariableInDirectorySectionIsRefused(t *testing.T) {
	e := newEnv(t)
	text := testConfig + "directory: { type: postgres, url: \"${TEST_UNSET_DATABASE_URL}\" }\n"
	if err := os.WriteFile(e.config, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	r := e.people("list")
	if r.code != ExitError {
		t.Fatalf("want exit 1: %v", r)
	}
	wantContains(t, "stderr", r.stderr, "directory.url", "TEST_UNSET_DATABASE_URL is not set")
}

func TestListEmptyDirectoryTellsHowToBootstrap(t *testing.T) {
	e := newEnv(t)
	r := e.ok("list")
	wantContains(t, "list", r.stdout, "people invite", "--groups admins")
	r = e.ok("list", "--json")
	if strings.TrimSpace(r.stdout) != "[]" {
		t.Fatalf("empty list as JSON: %q", r.stdout)
	}
}

// TestListTableAlignsColumns: every row's columns start where the header's
// do, counting a CJK character as two terminal cells.
func TestListTableAlignsColumns(t *testing.T) {
	e := newEnv(t)
	e.ok("add", "--username", "bob", "--name", "鲍勃", "--groups", "ops,dev")
	e.ok("add", "--username", "alice", "--name", "Alice Liddell", "--email", "alice@example.com", "--groups", "admins")
	e.ok("add", "--username", "carol", "--status", "pending")
	if err := e.d().People().RecordSignIn(context.Background(), e.person("alice").ID, directory.SignIn{ClientID: "grafana", Flow: "qr"}); err != nil {
		t.Fatal(err)
	}
	r := e.ok("list")
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("want a header and 3 rows:\n%s", r.stdout)
	}
	header := lines[0]
	cols := []string{"USERNAME", "NAME", "STATUS", "GROUPS", "LAST SIGN-IN", "ID"}
	for _, c := range cols {
		if !strings.Contains(header, c) {
			t.Fatalf("header %q lacks %s", header, c)
		}
	}
	// The rows are ordered by username.
	for i, name := range []string{"alice", "bob", "carol"} {
		if !strings.HasPrefix(lines[i+1], name+" ") {
			t.Errorf("row %d: %q, want %s first", i+1, lines[i+1], name)
		}
	}
	idCol := cellWidth(header[:strings.Index(header, "ID")])
	for _, l := range lines[1:] {
		i := strings.Index(l, "p_")
		if i < 0 || cellWidth(l[:i]) != idCol {
			t.Errorf("the ID column is not aligned:\n%s\n%s", header, l)
		}
	}
	wantContains(t, "alice's row", lines[1], "admins", "2025-03-10 09:30Z grafana", "active")
	wantContains(t, "bob's row", lines[2], "鲍勃", "dev,ops", "never")
	wantContains(t, "carol's row", lines[3], "pending")

	r = e.ok("list", "--status", "pending")
	if strings.Count(r.stdout, "\n") != 2 || !strings.Contains(r.stdout, "carol") {
		t.Errorf("--status pending:\n%s", r.stdout)
	}
	r = e.ok("list", "--search", "LIDDELL")
	if !strings.Contains(r.stdout, "alice") || strings.Contains(r.stdout, "bob") {
		t.Errorf("--search:\n%s", r.stdout)
	}
}

// TestListJSONFieldNames pins the JSON field names scripts rely on.
func TestListJSONFieldNames(t *testing.T) {
	e := newEnv(t)
	e.ok("add", "--username", "alice", "--name", "Alice", "--email", "alice@example.com", "--groups", "admins,ops")
	if err := e.d().People().RecordSignIn(context.Background(), e.person("alice").ID,
		directory.SignIn{ClientID: "grafana", Flow: "qr", IP: "192.0.2.1"}); err != nil {
		t.Fatal(err)
	}
	r := e.ok("list", "--json")
	var raw []map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil || len(raw) != 1 {
		t.Fatalf("%v: %s", err, r.stdout)
	}
	var keys []string
	for k := range raw[0] {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := []string{"created_at", "email", "email_verified", "groups", "id", "last_sign_in", "name", "status", "updated_at", "username"}
	if !slices.Equal(keys, want) {
		t.Fatalf("person JSON fields %v, want %v", keys, want)
	}
	var people []PersonJSON
	if err := json.Unmarshal([]byte(r.stdout), &people); err != nil {
		t.Fatal(err)
	}
	p := people[0]
	if p.Username != "alice" || p.Name != "Alice" || !p.EmailVerified || !slices.Equal(p.Groups, []string{"admins", "ops"}) ||
		p.Status != "active" || p.LastSignIn == nil || p.LastSignIn.ClientID != "grafana" || p.LastSignIn.IP != "192.0.2.1" ||
		!p.CreatedAt.Equal(e.clock.now()) {
		t.Fatalf("person JSON: %+v", p)
	}
}

func TestAddWritesPersonAndAuditRow(t *testing.T) {
	e := newEnv(t)
	r := e.ok("add", "--username", "Alice", "--name", "Alice", "--email", "alice@example.com", "--groups", "Ops, admins")
	wantContains(t, "add", r.stdout, "Added alice", "people invite --username alice")
	p := e.person("alice")
	if !slices.Equal(p.Groups, []string{"admins", "ops"}) || p.Status != directory.StatusActive || !p.EmailVerified {
		t.Fatalf("person: %+v", p)
	}
	ev := e.events()
	if len(ev) != 1 || ev[0].Action != directory.ActionPersonCreate || ev[0].Actor != "cli" || ev[0].PersonID != p.ID || ev[0].Result != "ok" {
		t.Fatalf("audit: %+v", ev)
	}
}

func TestAddUsernameTakenNamesTheFix(t *testing.T) {
	e := newEnv(t)
	e.ok("add", "--username", "alice")
	r := e.people("add", "--username", "ALICE", "--name", "Another")
	if r.code != ExitError {
		t.Fatalf("want exit 1: %v", r)
	}
	wantContains(t, "stderr", r.stderr, "username alice is taken", "choose another with --username", "wechat-oidc people show alice")
	if p := e.person("alice"); p.DisplayName != "" {
		t.Errorf("the existing person changed: %+v", p)
	}
	if n := len(e.events()); n != 1 {
		t.Errorf("%d audit rows, want only the first add's", n)
	}
}

func TestAddInvalidInputNamesTheFlagAndWritesNothing(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--username", "Bad Name"}, "--username: only a-z"},
		{[]string{"--username", "ok", "--email", "not-an-address"}, "--email: must be a plain address"},
		{[]string{"--username", "ok", "--groups", "a,b!c"}, "--groups: group \"b!c\""},
		{[]string{"--username", "ok", "--name", " padded"}, "--name: must not start or end with spaces"},
	} {
		e := newEnv(t)
		r := e.people(append([]string{"add"}, tc.args...)...)
		if r.code != ExitError {
			t.Fatalf("%v: want exit 1: %v", tc.args, r)
		}
		wantContains(t, "stderr", r.stderr, tc.want)
		if n := len(e.events()); n != 0 {
			t.Errorf("%v: %d audit rows written", tc.args, n)
		}
		if got, err := e.d().People().Search(context.Background(), directory.PersonQuery{}); err != nil || len(got) != 0 {
			t.Errorf("%v: people written: %v %v", tc.args, got, err)
		}
	}
}

// TestUsageErrorsExitTwoAndTouchNothing: a wrong command line is exit 2,
// names the problem, and does not even open the directory.
func TestUsageErrorsExitTwoAndTouchNothing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		audit bool
		args  []string
		want  string
	}{
		{"no command", false, nil, "Usage: wechat-oidc people COMMAND"},
		{"unknown command", false, []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"missing config", false, []string{"list", "--config", ""}, "--config FILE is required"},
		{"add without username", false, []string{"add", "--name", "x"}, "--username is required"},
		{"add disabled", false, []string{"add", "--username", "x", "--status", "disabled"}, "people disable"},
		{"show without person", false, []string{"show"}, "USERNAME, person ID or reference is required"},
		{"show two people", false, []string{"show", "a", "b"}, `unexpected argument "b"`},
		{"list with argument", false, []string{"list", "x"}, `unexpected argument "x"`},
		{"list bad status", false, []string{"list", "--status", "gone"}, "--status \"gone\": use active, pending or disabled"},
		{"unknown flag", false, []string{"list", "--bogus"}, "flag provided but not defined: -bogus"},
		{"groups set and add", false, []string{"groups", "a", "--set", "x", "--add", "y"}, "--set replaces every group"},
		{"groups nothing", false, []string{"groups", "a"}, "say what to change"},
		{"invite without username", false, []string{"invite"}, "--username is required"},
		{"invite ttl too long", false, []string{"invite", "--username", "a", "--ttl", "91d"}, "--ttl"},
		{"invite bad ttl", false, []string{"invite", "--username", "a", "--ttl", "soon"}, "not a duration"},
		{"import without file", false, []string{"import"}, "--file is required"},
		{"export json", false, []string{"export", "--json"}, "export writes CSV"},
		{"audit bad action", true, []string{"--action", "person.explode"}, "is not an audit action"},
		{"audit bad since", true, []string{"--since", "yesterday"}, "--since"},
		{"audit bad limit", true, []string{"--limit", "0"}, "--limit 0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			args := tc.args
			if tc.name != "missing config" && len(args) > 0 && !tc.audit {
				args = append(args, "--config", e.config)
			}
			if tc.audit {
				args = append(args, "--config", e.config)
			}
			r := e.run(tc.audit, args...)
			if r.code != ExitUsage {
				t.Fatalf("want exit 2: %v", r)
			}
			wantContains(t, "stderr", r.stderr, tc.want)
			if _, err := os.Stat(e.dbPath); !os.IsNotExist(err) {
				t.Errorf("the directory was opened (the database file exists): %v", err)
			}
		})
	}
}

func TestHelpExitsZero(t *testing.T) {
	e := newEnv(t)
	r := e.run(false, "help")
	if r.code != ExitOK {
		t.Fatalf("%v", r)
	}
	for _, s := range subcommands {
		wantContains(t, "help", r.stdout, "  "+s.name+" ")
	}
	r = e.run(false, "invite", "-h")
	if r.code != ExitOK {
		t.Fatalf("%v", r)
	}
	wantContains(t, "invite -h", r.stdout, "-groups", "-client", "-ttl")
	r = e.run(true, "-h")
	if r.code != ExitOK {
		t.Fatalf("%v", r)
	}
	wantContains(t, "audit -h", r.stdout, "-person", "-action", "-since", "-ref")
}

func TestShowPersonIdentitiesAndRecentAudit(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.ok("add", "--username", "alice", "--name", "Alice", "--groups", "admins")
	p := e.person("alice")
	if err := e.d().People().BindIdentity(ctx, p.ID, directory.Identity{Provider: directory.ProviderWeChat, AppID: "wx123",
		OpenID: "oOPEN1", UnionID: "uUNION1"}); err != nil {
		t.Fatal(err)
	}
	e.clock.advance(time.Hour)
	if err := e.d().Audit().Append(ctx, directory.Event{Action: directory.ActionSignIn, PersonID: p.ID, ClientID: "grafana",
		Result: "ok", Ref: "R-7F3KQ9"}); err != nil {
		t.Fatal(err)
	}
	if err := e.d().People().RecordSignIn(ctx, p.ID, directory.SignIn{ClientID: "grafana", Flow: "qr", IP: "192.0.2.7"}); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"alice", p.ID, "r-7f3kq9"} {
		r := e.ok("show", key)
		wantContains(t, "show "+key, r.stdout, "alice", "Alice", "admins (administrator)", p.ID,
			"openid oOPEN1", "app wx123", "unionid uUNION1",
			"2025-03-10 10:30Z  grafana  qr  192.0.2.7", // last sign-in
			"sign_in", "R-7F3KQ9", "person.create")
		if strings.Index(r.stdout, "sign_in") > strings.Index(r.stdout, "person.create") {
			t.Errorf("recent audit is not newest first:\n%s", r.stdout)
		}
	}
	r := e.ok("show", "alice", "--json")
	var out ShowJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatal(err)
	}
	if out.Person.ID != p.ID || len(out.Identities) != 2 || len(out.Audit) != 2 || out.Audit[0].Action != directory.ActionSignIn ||
		out.Audit[0].Ref != "R-7F3KQ9" {
		t.Fatalf("show --json: %+v", out)
	}
	r = e.people("show", "nobody")
	if r.code != ExitError {
		t.Fatalf("unknown person: %v", r)
	}
	wantContains(t, "stderr", r.stderr, `"nobody"`, "wechat-oidc people list")
}

// TestShowByIDPrefersTheID: a person id is looked up as an id first, even
// if someone has it as their username.
func TestShowByIDPrefersTheID(t *testing.T) {
	e := newEnv(t)
	e.ok("add", "--username", "alice")
	id := e.person("alice").ID
	// A username that equals alice's id is allowed by the rules; the id wins.
	if _, err := e.d().People().Create(context.Background(), directory.NewPerson{Username: id}); err != nil {
		t.Fatal(err)
	}
	r := e.ok("show", id, "--json")
	var out ShowJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.Person.Username != "alice" {
		t.Fatalf("show %s: %v %+v", id, err, out.Person)
	}
}

func TestDirectoryUnreachableIsAnError(t *testing.T) {
	e := newEnv(t)
	text := testConfig + "directory: { type: sqlite, path: " + filepath.Join(t.TempDir(), "missing", "dir.db") + " }\n"
	if err := os.WriteFile(e.config, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	r := e.people("list")
	if r.code != ExitError {
		t.Fatalf("want exit 1: %v", r)
	}
	wantContains(t, "stderr", r.stderr, "opening the directory", "does its directory exist")
}
