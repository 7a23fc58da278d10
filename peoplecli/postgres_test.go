package peoplecli

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/wechat-oidc/wechat-oidc/directory"
)

// TestPostgresImportDisableList: the commands against a real PostgreSQL
// directory whose url is a ${VAR} of the directory section (the WeChat and
// client secrets stay unset): import, disable (with its revocation row),
// list --json.
func TestPostgresImportDisableList(t *testing.T) {
	e := newPostgresEnv(t)
	r := e.ok("import", "--file", e.writeFile("people.csv", goodCSV))
	wantContains(t, "import", r.stdout, "3 people created")
	r = e.ok("import", "--file", e.writeFile("people.csv", goodCSV))
	wantContains(t, "import again", r.stdout, "Nothing changed")

	alice := e.person("alice")
	e.ok("disable", "alice")
	rev, err := e.d().Audit().Revocations(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rev) != 1 || rev[0].PersonID != alice.ID || rev[0].Actor != Actor {
		t.Fatalf("revocations %+v", rev)
	}
	r = e.ok("list", "--json", "--status", "disabled")
	var people []PersonJSON
	if err := json.Unmarshal([]byte(r.stdout), &people); err != nil {
		t.Fatal(err)
	}
	if len(people) != 1 || people[0].ID != alice.ID || people[0].Status != string(directory.StatusDisabled) {
		t.Fatalf("%+v", people)
	}
}
