package peoplecli

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	"github.com/wechat-oidc/wechat-oidc/directory"
)

// pendingWithRef makes a pending person as an approval-mode sign-in would:
// the person, an identity, and the sign_in row whose reference the
// waiting page showed.
func (e *env) pendingWithRef(username, ref string) directory.Person {
	e.t.Helper()
	ctx := context.Background()
	p, err := e.d().People().Create(ctx, directory.NewPerson{Username: username, DisplayName: "微信用户", Status: directory.StatusPending})
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.d().People().BindIdentity(ctx, p.ID, directory.Identity{Provider: directory.ProviderWeChat, AppID: "wx123", OpenID: "o" + username}); err != nil {
		e.t.Fatal(err)
	}
	if err := e.d().Audit().Append(ctx, directory.Event{Action: directory.ActionSignIn, PersonID: p.ID, ClientID: "grafana",
		Result: "pending", Ref: ref}); err != nil {
		e.t.Fatal(err)
	}
	return p
}

// lastEvent is the newest audit row.
func (e *env) lastEvent() directory.Event {
	e.t.Helper()
	ev := e.events()
	if len(ev) == 0 {
		e.t.Fatal("no audit rows")
	}
	return ev[0]
}

func (e *env) wantLastEvent(action, personID string) {
	e.t.Helper()
	ev := e.lastEvent()
	if ev.Action != action || ev.Actor != Actor || ev.PersonID != personID || ev.Result != "ok" {
		e.t.Fatalf("newest audit row %+v, want %s by cli for %s", ev, action, personID)
	}
}

// TestApproveByPageReference: the person quotes the reference their
// waiting page showed; the administrator approves with it, choosing the
// username and groups.
func TestApproveByPageReference(t *testing.T) {
	e := newEnv(t)
	p := e.pendingWithRef("wx-7f3kq9", "R-7F3KQ9")
	r := e.ok("approve", "R-7F3KQ9", "--username", "dave", "--groups", "ops,wiki-readers")
	wantContains(t, "approve", r.stdout, "Approved dave", "waiting page", "continues by itself")
	got := e.person("dave")
	if got.ID != p.ID || got.Status != directory.StatusActive || !slices.Equal(got.Groups, []string{"ops", "wiki-readers"}) {
		t.Fatalf("approved person: %+v", got)
	}
	e.wantLastEvent(directory.ActionPersonApprove, p.ID)
	wantContains(t, "reason", e.lastEvent().Reason, "wx-7f3kq9 → dave", "ops,wiki-readers")

	r = e.people("approve", "dave")
	if r.code != ExitError {
		t.Fatalf("approving an active person: %v", r)
	}
	wantContains(t, "stderr", r.stderr, "dave is active, not pending", "people list --status pending")
}

func TestApproveKeepsUsernameAndGroupsByDefault(t *testing.T) {
	e := newEnv(t)
	e.ok("add", "--username", "erin", "--groups", "ops", "--status", "pending")
	e.ok("approve", "erin")
	if p := e.person("erin"); p.Status != directory.StatusActive || !slices.Equal(p.Groups, []string{"ops"}) {
		t.Fatalf("%+v", p)
	}
}

func TestApproveUsernameTakenNamesTheFix(t *testing.T) {
	e := newEnv(t)
	e.ok("add", "--username", "dave")
	p := e.pendingWithRef("wx-1", "R-AAAAAA")
	r := e.people("approve", "wx-1", "--username", "Dave")
	if r.code != ExitError {
		t.Fatalf("want exit 1: %v", r)
	}
	wantContains(t, "stderr", r.stderr, "username dave is taken", "--username", "people show dave")
	if got, err := e.d().People().Get(context.Background(), p.ID); err != nil || got.Status != directory.StatusPending {
		t.Fatalf("the pending person changed: %+v %v", got, err)
	}
}

func TestDenyRemovesOnlyPendingPeople(t *testing.T) {
	e := newEnv(t)
	p := e.pendingWithRef("wx-2", "R-BBBBBB")
	r := e.ok("deny", "wx-2")
	wantContains(t, "deny", r.stdout, "Denied wx-2", "disable")
	if _, err := e.d().People().Get(context.Background(), p.ID); !errors.Is(err, directory.ErrNotFound) {
		t.Fatalf("denied person still there: %v", err)
	}
	e.wantLastEvent(directory.ActionPersonDeny, p.ID)

	e.ok("add", "--username", "frank")
	r = e.people("deny", "frank")
	if r.code != ExitError {
		t.Fatalf("denying an active person: %v", r)
	}
	wantContains(t, "stderr", r.stderr, "frank is active, not pending", "wechat-oidc people disable frank")
	if e.person("frank").Status != directory.StatusActive {
		t.Fatal("frank changed")
	}
}

// TestDisableWritesRevocationRow: the directory change and the
// person.disable row that every server's revocation loop acts on.
func TestDisableWritesRevocationRow(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.ok("add", "--username", "gina", "--groups", "ops")
	p := e.person("gina")
	from, err := e.d().Audit().LatestID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r := e.ok("disable", "gina")
	wantContains(t, "disable", r.stdout, "Disabled gina", "Running servers end their sessions", "revoke their tokens",
		"back-channel logout", "people enable gina")
	if got := e.person("gina"); got.Status != directory.StatusDisabled {
		t.Fatalf("status %s", got.Status)
	}
	rev, err := e.d().Audit().Revocations(ctx, from, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rev) != 1 || rev[0].Action != directory.ActionPersonDisable || rev[0].PersonID != p.ID || rev[0].Actor != Actor {
		t.Fatalf("revocations %+v", rev)
	}

	// Again: nothing to change, but the row is written again (finishing an
	// interrupted disable) and the output says so.
	r = e.ok("disable", p.ID, "--json")
	var out ChangeJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatal(err)
	}
	if out.Action != directory.ActionPersonDisable || out.Changed || out.Person.Status != "disabled" {
		t.Fatalf("second disable: %+v", out)
	}
	if rev, _ := e.d().Audit().Revocations(ctx, from, 0); len(rev) != 2 {
		t.Fatalf("want a second revocation row, got %d", len(rev))
	}
}

func TestEnable(t *testing.T) {
	e := newEnv(t)
	e.ok("add", "--username", "hal")
	e.ok("disable", "hal")
	p := e.person("hal")
	r := e.ok("enable", "hal")
	wantContains(t, "enable", r.stdout, "Enabled hal")
	if e.person("hal").Status != directory.StatusActive {
		t.Fatal("not active")
	}
	e.wantLastEvent(directory.ActionPersonEnable, p.ID)
	n := len(e.events())

	r = e.ok("enable", "hal")
	wantContains(t, "enable again", r.stdout, "already active", "nothing changed")
	if len(e.events()) != n {
		t.Error("a no-op enable wrote an audit row")
	}

	e.ok("add", "--username", "ivy", "--status", "pending")
	r = e.people("enable", "ivy")
	if r.code != ExitError {
		t.Fatalf("enabling a pending person: %v", r)
	}
	wantContains(t, "stderr", r.stderr, "ivy is pending", "people approve ivy")
}

// TestRemoveDeletesAndWritesRevocationRow: the person and their bindings
// go, the person.remove row is written, and their audit rows stay
// findable by id.
func TestRemoveDeletesAndWritesRevocationRow(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.ok("add", "--username", "jack")
	p := e.person("jack")
	id := directory.Identity{Provider: directory.ProviderWeChat, AppID: "wx123", OpenID: "oJACK", UnionID: "uJACK"}
	if err := e.d().People().BindIdentity(ctx, p.ID, id); err != nil {
		t.Fatal(err)
	}
	r := e.ok("remove", "jack")
	wantContains(t, "remove", r.stdout, "Removed jack", "Running servers end their sessions", "audit --person "+p.ID)
	if _, err := e.d().People().Get(ctx, p.ID); !errors.Is(err, directory.ErrNotFound) {
		t.Fatalf("still there: %v", err)
	}
	if _, err := e.d().People().FindByIdentity(ctx, id); !errors.Is(err, directory.ErrNotFound) {
		t.Fatalf("the WeChat binding is still there: %v", err)
	}
	rev, err := e.d().Audit().Revocations(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(rev) != 1 || rev[0].Action != directory.ActionPersonRemove || rev[0].PersonID != p.ID {
		t.Fatalf("revocations %+v", rev)
	}
	r = e.audit("--person", p.ID, "--json")
	if r.code != ExitOK {
		t.Fatalf("%v", r)
	}
	var ev []EventJSON
	if err := json.Unmarshal([]byte(r.stdout), &ev); err != nil || len(ev) != 2 || ev[0].Action != directory.ActionPersonRemove {
		t.Fatalf("a removed person's audit rows: %v %+v", err, ev)
	}
	r = e.people("remove", "jack")
	if r.code != ExitError {
		t.Fatalf("removing twice: %v", r)
	}
}

func TestGroupsSetAddRemove(t *testing.T) {
	e := newEnv(t)
	e.ok("add", "--username", "kim", "--groups", "ops")
	p := e.person("kim")
	steps := []struct {
		args   []string
		want   []string
		output string
	}{
		{[]string{"--add", "admins,wiki"}, []string{"admins", "ops", "wiki"}, "now an administrator"},
		{[]string{"--remove", "ops", "--add", "dev"}, []string{"admins", "dev", "wiki"}, "admins,ops,wiki → admins,dev,wiki"},
		{[]string{"--remove", "admins"}, []string{"dev", "wiki"}, "no longer an administrator"},
		{[]string{"--set", "Audit,dev"}, []string{"audit", "dev"}, "dev,wiki → audit,dev"},
		{[]string{"--set", ""}, []string{}, "audit,dev → -"},
	}
	for _, s := range steps {
		before := len(e.events())
		r := e.ok(append([]string{"groups", "kim"}, s.args...)...)
		if got := e.person("kim").Groups; !slices.Equal(got, s.want) {
			t.Fatalf("groups %v: %v, want %v", s.args, got, s.want)
		}
		wantContains(t, "groups output", r.stdout, s.output)
		if len(e.events()) != before+1 {
			t.Fatalf("groups %v: want one audit row", s.args)
		}
		e.wantLastEvent(directory.ActionPersonGroups, p.ID)
	}
	before := len(e.events())
	r := e.ok("groups", "kim", "--remove", "nope")
	wantContains(t, "no-op", r.stdout, "nothing changed")
	if len(e.events()) != before {
		t.Error("a no-op groups change wrote an audit row")
	}
	r = e.people("groups", "kim", "--add", "Not Valid!")
	if r.code != ExitError {
		t.Fatalf("%v", r)
	}
	wantContains(t, "stderr", r.stderr, `group "valid!"`, "only a-z")
}
