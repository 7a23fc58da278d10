package peoplecli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/wechat-oidc/wechat-oidc/directory"
)

const goodCSV = `username,name,email,groups,openid,unionid,app_id,status
alice,Alice,alice@example.com,admins;ops,oALICE,uALICE,wx123,active
bob,鲍勃,,dev,oBOB,,wx123,active
bob,鲍勃,,dev,,uBOB,,active
carol,Carol,,,,,,pending
`

func (e *env) writeFile(name, text string) string {
	e.t.Helper()
	path := filepath.Join(e.t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return path
}

func (e *env) exportCSV() string {
	e.t.Helper()
	return e.ok("export").stdout
}

// TestImportTwiceChangesNothing: the first import creates and binds and
// prints the summary; the second finds nothing to do, writes no audit row,
// and the directory's export is byte for byte the same.
func TestImportTwiceChangesNothing(t *testing.T) {
	e := newEnv(t)
	file := e.writeFile("people.csv", goodCSV)
	r := e.ok("import", "--file", file)
	wantContains(t, "first import", r.stdout, "4 rows: 3 people created, 0 updated, 4 WeChat identities bound")
	alice := e.person("alice")
	if !slices.Equal(alice.Groups, []string{"admins", "ops"}) || !alice.EmailVerified {
		t.Fatalf("alice: %+v", alice)
	}
	if p, err := e.d().People().FindByIdentity(context.Background(), directory.Identity{Provider: directory.ProviderWeChat,
		UnionID: "uBOB"}); err != nil || p.Username != "bob" {
		t.Fatalf("bob's unionid: %+v %v", p, err)
	}
	if e.person("carol").Status != directory.StatusPending {
		t.Fatal("carol should be pending")
	}
	ev := e.events()
	if len(ev) != 1 || ev[0].Action != directory.ActionImport || ev[0].Actor != Actor || !strings.Contains(ev[0].Reason, "3 people created") {
		t.Fatalf("audit %+v", ev)
	}
	before := e.exportCSV()

	e.clock.advance(1)
	r = e.ok("import", "--file", file, "--json")
	var sum ImportJSON
	if err := json.Unmarshal([]byte(r.stdout), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Changed || sum.Created+sum.Updated+sum.IdentitiesBound != 0 || sum.Rows != 4 {
		t.Fatalf("second import: %+v", sum)
	}
	r = e.ok("import", "--file", file)
	wantContains(t, "third import", r.stdout, "Nothing changed")
	if after := e.exportCSV(); after != before {
		t.Fatalf("export changed:\n%s\n---\n%s", before, after)
	}
	if got := e.person("alice"); !got.UpdatedAt.Equal(alice.UpdatedAt) {
		t.Fatal("alice was rewritten")
	}
	if n := len(e.events()); n != 1 {
		t.Fatalf("%d audit rows, want only the first import's", n)
	}
}

// TestImportErrorsAreLineNumberedAndWriteNothing: every bad line is named,
// and nothing (not even the good lines) is imported.
func TestImportErrorsAreLineNumberedAndWriteNothing(t *testing.T) {
	e := newEnv(t)
	file := e.writeFile("bad.csv", `username,name,email,groups,openid,unionid,app_id,status
good,Good,,,,,,active
Bad Name,,,,,,,active
fine,,not-an-email,,,,,
worse,,,,oX,,,active
`)
	r := e.people("import", "--file", file)
	if r.code != ExitError {
		t.Fatalf("%v", r)
	}
	wantContains(t, "stderr", r.stderr, "bad.csv", "line 3: username", "line 4: email", "line 5: app_id", "nothing was imported")
	if strings.Contains(r.stderr, "line 2") {
		t.Errorf("the good line is reported:\n%s", r.stderr)
	}
	if got, err := e.d().People().Search(context.Background(), directory.PersonQuery{}); err != nil || len(got) != 0 {
		t.Fatalf("people written: %v %v", got, err)
	}
	if n := len(e.events()); n != 0 {
		t.Fatalf("%d audit rows", n)
	}
}

// TestImportIdentityTakenIsLineNumbered: a conflict with the directory
// (an openid bound to someone else) is found inside the transaction, named
// by line, and rolls everything back.
func TestImportIdentityTakenIsLineNumbered(t *testing.T) {
	e := newEnv(t)
	e.ok("add", "--username", "zed")
	if err := e.d().People().BindIdentity(context.Background(), e.person("zed").ID,
		directory.Identity{Provider: directory.ProviderWeChat, AppID: "wx123", OpenID: "oBOB"}); err != nil {
		t.Fatal(err)
	}
	before := e.exportCSV()
	r := e.people("import", "--file", e.writeFile("people.csv", goodCSV))
	if r.code != ExitError {
		t.Fatalf("%v", r)
	}
	wantContains(t, "stderr", r.stderr, "line 3", "oBOB", "bound to zed", "nothing was imported")
	if after := e.exportCSV(); after != before {
		t.Fatalf("the failed import changed the directory:\n%s", after)
	}
}

// TestImportDisablingWritesRevocationRow: a line that disables an active
// person is a disable: the person.disable row ends their sessions.
func TestImportDisablingWritesRevocationRow(t *testing.T) {
	e := newEnv(t)
	e.ok("import", "--file", e.writeFile("people.csv", goodCSV))
	from, err := e.d().Audit().LatestID(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r := e.ok("import", "--file", e.writeFile("people.csv", strings.Replace(goodCSV, "wx123,active\nbob", "wx123,disabled\nbob", 1)))
	wantContains(t, "import", r.stdout, "1 updated", "Disabled alice", "end their sessions")
	rev, err := e.d().Audit().Revocations(context.Background(), from, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rev) != 1 || rev[0].PersonID != e.person("alice").ID || rev[0].Action != directory.ActionPersonDisable {
		t.Fatalf("revocations %+v", rev)
	}
}

func TestImportFromStandardInputAndMissingFile(t *testing.T) {
	e := newEnv(t)
	r := e.people("import", "--file", filepath.Join(t.TempDir(), "nope.csv"))
	if r.code != ExitError {
		t.Fatalf("%v", r)
	}
	wantContains(t, "stderr", r.stderr, "nope.csv", "check the --file path")

	f, err := os.Open(e.writeFile("people.csv", goodCSV))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stdin := os.Stdin
	os.Stdin = f
	defer func() { os.Stdin = stdin }()
	r = e.ok("import", "--file", "-")
	wantContains(t, "import -", r.stdout, "3 people created")
}

// TestExportToFileIsPrivateAndReimports: the file is 0600, and importing it
// into an empty directory gives the same export.
func TestExportToFileIsPrivateAndReimports(t *testing.T) {
	e := newEnv(t)
	e.ok("import", "--file", e.writeFile("people.csv", goodCSV))
	out := filepath.Join(t.TempDir(), "export.csv")
	r := e.ok("export", "--file", out)
	wantContains(t, "stderr", r.stderr, "Exported the directory to "+out)
	st, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v: the export holds personal data", st.Mode().Perm())
	}
	text, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(text), "username,name,email,groups,openid,unionid,app_id,status\n") || string(text) != e.exportCSV() {
		t.Fatalf("export file:\n%s", text)
	}
	other := newEnv(t)
	other.ok("import", "--file", out)
	if got := other.exportCSV(); got != string(text) {
		t.Fatalf("round trip:\n%s\n---\n%s", text, got)
	}
	entries, err := os.ReadDir(filepath.Dir(out))
	if err != nil || len(entries) != 1 {
		t.Fatalf("temporary files left: %v %v", entries, err)
	}
}
