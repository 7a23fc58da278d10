package directorytest

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wechat-oidc/wechat-oidc/directory"
)

const importCSV = `username,name,email,groups,openid,unionid,app_id,status
alice,Alice Wang,alice@example.com,admins;ops,o-alice-web,u-alice,wxweb,active
alice,Alice Wang,alice@example.com,admins;ops,o-alice-mp,,wxmp,active
bob,"Bob, Jr.",,staff,,u-bob,,pending
carol,Carol,carol@example.com,,,,,disabled
`

func mustParse(t *testing.T, text string) []directory.ImportRow {
	t.Helper()
	rows, err := directory.ParseImportCSV(strings.NewReader(text))
	if err != nil {
		t.Fatalf("ParseImportCSV: %v", err)
	}
	return rows
}

func mustExport(t *testing.T, d *directory.Directory) string {
	t.Helper()
	var b bytes.Buffer
	if err := d.Export(t.Context(), &b); err != nil {
		t.Fatalf("Export: %v", err)
	}
	return b.String()
}

func testImportCreates(t *testing.T, e *env) {
	ctx := t.Context()
	sum, err := e.d.Import(ctx, mustParse(t, importCSV))
	if err != nil {
		t.Fatal(err)
	}
	if sum != (directory.ImportSummary{Rows: 4, Created: 3, IdentitiesBound: 4}) {
		t.Fatalf("summary %+v", sum)
	}
	alice, err := e.d.People().GetByUsername(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if alice.DisplayName != "Alice Wang" || alice.Email != "alice@example.com" || !alice.EmailVerified ||
		!slices.Equal(alice.Groups, []string{"admins", "ops"}) || alice.Status != directory.StatusActive {
		t.Fatalf("alice = %+v", alice)
	}
	for _, id := range []directory.Identity{wechat("wxweb", "o-alice-web", ""), wechat("wxmp", "o-alice-mp", ""), wechat("", "", "u-alice")} {
		if p, err := e.d.People().FindByIdentity(ctx, id); err != nil || p.ID != alice.ID {
			t.Fatalf("%+v finds %s (%v), want alice", id, p.ID, err)
		}
	}
	bob, err := e.d.People().FindByIdentity(ctx, wechat("", "", "u-bob"))
	if err != nil || bob.Username != "bob" || bob.DisplayName != "Bob, Jr." || bob.Status != directory.StatusPending {
		t.Fatalf("bob = %+v (%v)", bob, err)
	}
	if carol, err := e.d.People().GetByUsername(ctx, "carol"); err != nil || carol.Status != directory.StatusDisabled {
		t.Fatalf("carol = %+v (%v)", carol, err)
	}
}

// snapshot is every person and identity, to compare before and after.
func snapshot(t *testing.T, e *env) string {
	t.Helper()
	var b strings.Builder
	people, err := e.d.People().Search(t.Context(), directory.PersonQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range people {
		ids, err := e.d.People().Identities(t.Context(), p.ID)
		if err != nil {
			t.Fatal(err)
		}
		b.WriteString(p.ID + " " + p.Username + " " + p.DisplayName + " " + p.Email + " " + string(p.Status) + " " +
			strings.Join(p.Groups, ",") + " " + p.UpdatedAt.String())
		for _, id := range ids {
			b.WriteString(" " + id.AppID + "/" + id.OpenID + "/" + id.UnionID)
		}
		b.WriteString("\n")
	}
	return b.String()
}

func testImportBadLine3WritesNothing(t *testing.T, e *env) {
	ctx := t.Context()
	mustCreate(t, e.d, directory.NewPerson{Username: "zed"})
	before := snapshot(t, e)

	// A file whose line 3 is invalid does not parse at all.
	bad := "username,name,email,groups,openid,unionid,app_id,status\n" +
		"dora,Dora,,,,,,\n" +
		"bad name,Eve,not-an-email,,,,,\n" +
		"fay,Fay,,,,,,\n"
	_, err := directory.ParseImportCSV(strings.NewReader(bad))
	var ie directory.ImportErrors
	if !errors.As(err, &ie) || len(ie) != 2 || ie[0].Line != 3 || ie[1].Line != 3 {
		t.Fatalf("ParseImportCSV error %v, want two problems on line 3 (username, email)", err)
	}
	// Rows built by a caller with a bad third row: Import refuses them all.
	rows := []directory.ImportRow{
		{Line: 2, Username: "dora"},
		{Line: 3, Username: "eve", Email: "not-an-email"},
		{Line: 4, Username: "fay"},
	}
	_, err = e.d.Import(ctx, rows)
	if !errors.As(err, &ie) || len(ie) != 1 || ie[0].Line != 3 || !errors.Is(err, directory.ErrInvalid) {
		t.Fatalf("Import error %v, want line 3's email", err)
	}
	if after := snapshot(t, e); after != before {
		t.Fatalf("a refused import changed the directory:\nbefore %s\nafter  %s", before, after)
	}
}

func testImportConflictingBinding(t *testing.T, e *env) {
	ctx := t.Context()
	zed := mustCreate(t, e.d, directory.NewPerson{Username: "zed"})
	mustBind(t, e.d, zed.ID, wechat("wxweb", "o-zed", ""))
	before := snapshot(t, e)
	text := "username,name,email,groups,openid,unionid,app_id,status\n" +
		"dora,Dora,,,o-dora,,wxweb,\n" +
		"eve,Eve,,,o-zed,,wxweb,\n" + // line 3: zed's openid
		"fay,Fay,,,,,,\n"
	_, err := e.d.Import(ctx, mustParse(t, text))
	var ie directory.ImportErrors
	if !errors.As(err, &ie) || len(ie) != 1 || ie[0].Line != 3 || !errors.Is(err, directory.ErrIdentityTaken) ||
		!strings.Contains(err.Error(), "line 3") || !strings.Contains(err.Error(), "zed") {
		t.Fatalf("Import error %v, want line 3 naming zed, matching ErrIdentityTaken", err)
	}
	if after := snapshot(t, e); after != before {
		t.Fatalf("a refused import changed the directory:\nbefore %s\nafter  %s", before, after)
	}
}

func testImportTwiceChangesNothing(t *testing.T, e *env) {
	ctx := t.Context()
	if _, err := e.d.Import(ctx, mustParse(t, importCSV)); err != nil {
		t.Fatal(err)
	}
	before, exported := snapshot(t, e), mustExport(t, e.d)
	e.clock.Advance(time.Hour) // an update would show in UpdatedAt
	sum, err := e.d.Import(ctx, mustParse(t, importCSV))
	if err != nil {
		t.Fatalf("importing the same file again: %v", err)
	}
	if sum != (directory.ImportSummary{Rows: 4}) {
		t.Fatalf("second import summary %+v, want nothing created, updated or bound", sum)
	}
	if after := snapshot(t, e); after != before {
		t.Fatalf("the second import changed the directory:\nbefore %s\nafter  %s", before, after)
	}
	if again := mustExport(t, e.d); again != exported {
		t.Fatalf("export changed:\n%s\n%s", exported, again)
	}
}

func testImportUpdatesExistingPerson(t *testing.T, e *env) {
	ctx := t.Context()
	p := mustCreate(t, e.d, directory.NewPerson{Username: "alice", DisplayName: "Old", Groups: []string{"x"}})
	e.clock.Advance(time.Minute)
	sum, err := e.d.Import(ctx, mustParse(t, "username,name,email,groups,openid,unionid,app_id,status\n"+
		"ALICE,New Name,alice@example.com,a b,o-1,,wxweb,disabled\n"))
	if err != nil {
		t.Fatal(err)
	}
	if sum != (directory.ImportSummary{Rows: 1, Updated: 1, IdentitiesBound: 1}) {
		t.Fatalf("summary %+v", sum)
	}
	got, err := e.d.People().Get(ctx, p.ID)
	if err != nil || got.DisplayName != "New Name" || got.Email != "alice@example.com" || !got.EmailVerified ||
		!slices.Equal(got.Groups, []string{"a", "b"}) || got.Status != directory.StatusDisabled ||
		!got.UpdatedAt.Equal(start.Add(time.Minute)) {
		t.Fatalf("after import: %+v (%v)", got, err)
	}
}

func testExportImportRoundTrip(t *testing.T, e *env) {
	ctx := t.Context()
	if _, err := e.d.Import(ctx, mustParse(t, importCSV)); err != nil {
		t.Fatal(err)
	}
	wecom := mustCreate(t, e.d, directory.NewPerson{Username: "wei", DisplayName: "魏 \"Wei\""})
	mustBind(t, e.d, wecom.ID, directory.Identity{Provider: "wecom", AppID: "corp1", OpenID: "wei.zhang"})
	out := mustExport(t, e.d)
	if !strings.HasPrefix(out, "username,name,email,groups,openid,unionid,app_id,status,provider\n") {
		t.Fatalf("export header: %q", strings.SplitN(out, "\n", 2)[0])
	}
	// Into a second, empty database of the same backend.
	d2 := e.another(t)
	if _, err := d2.Import(ctx, mustParse(t, out)); err != nil {
		t.Fatalf("importing the export: %v\n%s", err, out)
	}
	if again := mustExport(t, d2); again != out {
		t.Fatalf("export after import differs:\n%s\nvs\n%s", out, again)
	}
}
