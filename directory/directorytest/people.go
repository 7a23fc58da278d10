package directorytest

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wechat-oidc/wechat-oidc/directory"
)

func ptr[T any](v T) *T { return &v }

func testCreateAndGetRoundTrip(t *testing.T, e *env) {
	ctx := t.Context()
	created := mustCreate(t, e.d, directory.NewPerson{
		Username: "alice", DisplayName: "爱丽丝 Alice", Email: "alice@example.com", EmailVerified: true,
		Groups: []string{"ops", "admins", "ops"}, Status: directory.StatusActive,
	})
	got, err := e.d.People().Get(ctx, created.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	want := directory.Person{
		ID: created.ID, Username: "alice", DisplayName: "爱丽丝 Alice", Email: "alice@example.com", EmailVerified: true,
		Groups: []string{"admins", "ops"}, Status: directory.StatusActive, CreatedAt: start, UpdatedAt: start,
	}
	if !equalPerson(got, want) {
		t.Fatalf("Get = %+v\nwant %+v", got, want)
	}
	if !equalPerson(created, want) {
		t.Fatalf("Create returned %+v\nwant %+v", created, want)
	}
	// Defaults: active, no groups, no email (so not verified).
	bob := mustCreate(t, e.d, directory.NewPerson{Username: "bob", EmailVerified: true})
	got, err = e.d.People().Get(ctx, bob.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != directory.StatusActive || len(got.Groups) != 0 || got.EmailVerified || got.LastSignIn != nil {
		t.Fatalf("defaults: got %+v, want active, no groups, email not verified, no sign-in", got)
	}
}

func equalPerson(a, b directory.Person) bool {
	return a.ID == b.ID && a.Username == b.Username && a.DisplayName == b.DisplayName && a.Email == b.Email &&
		a.EmailVerified == b.EmailVerified && slices.Equal(a.Groups, b.Groups) && a.Status == b.Status &&
		a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt) &&
		(a.LastSignIn == nil) == (b.LastSignIn == nil) &&
		(a.LastSignIn == nil || (a.LastSignIn.At.Equal(b.LastSignIn.At) && a.LastSignIn.ClientID == b.LastSignIn.ClientID &&
			a.LastSignIn.Flow == b.LastSignIn.Flow && a.LastSignIn.IP == b.LastSignIn.IP))
}

var personIDPattern = regexp.MustCompile(`^p_[a-z2-7]{20}$`)

func testPersonIDIsRandomAndOpaque(t *testing.T, e *env) {
	seen := map[string]bool{}
	for i := range 20 {
		p := mustCreate(t, e.d, directory.NewPerson{Username: fmt.Sprintf("user%d", i)})
		if !personIDPattern.MatchString(p.ID) {
			t.Fatalf("id %q does not look like p_ and 20 base32 characters", p.ID)
		}
		if strings.Contains(p.ID, p.Username) {
			t.Fatalf("id %q contains the username", p.ID)
		}
		if seen[p.ID] {
			t.Fatalf("id %q given twice", p.ID)
		}
		seen[p.ID] = true
	}
	// A deleted person's id is not handed out again to the next person.
	p := mustCreate(t, e.d, directory.NewPerson{Username: "gone"})
	if err := e.d.People().Delete(t.Context(), p.ID); err != nil {
		t.Fatal(err)
	}
	again := mustCreate(t, e.d, directory.NewPerson{Username: "gone"})
	if again.ID == p.ID {
		t.Fatalf("a new person with a deleted person's username got the deleted id %s", p.ID)
	}
}

func testCreateRejectsInvalidFields(t *testing.T, e *env) {
	long := strings.Repeat("a", 65)
	cases := []struct {
		name  string
		np    directory.NewPerson
		field string
	}{
		{"empty username", directory.NewPerson{}, "username"},
		{"username too long", directory.NewPerson{Username: long}, "username"},
		{"username starts with dot", directory.NewPerson{Username: ".alice"}, "username"},
		{"username starts with dash", directory.NewPerson{Username: "-alice"}, "username"},
		{"username with space", directory.NewPerson{Username: "al ice"}, "username"},
		{"username with at", directory.NewPerson{Username: "alice@x"}, "username"},
		{"username non-ascii", directory.NewPerson{Username: "爱丽丝"}, "username"},
		{"name too long", directory.NewPerson{Username: "a", DisplayName: strings.Repeat("名", 129)}, "name"},
		{"name with newline", directory.NewPerson{Username: "a", DisplayName: "Alice\nAdmin"}, "name"},
		{"name with NUL", directory.NewPerson{Username: "a", DisplayName: "Alice\x00"}, "name"},
		{"name invalid utf-8", directory.NewPerson{Username: "a", DisplayName: "\xff"}, "name"},
		{"email without at", directory.NewPerson{Username: "a", Email: "alice.example.com"}, "email"},
		{"email without domain dot", directory.NewPerson{Username: "a", Email: "alice@localhost"}, "email"},
		{"email with space", directory.NewPerson{Username: "a", Email: "al ice@example.com"}, "email"},
		{"email two ats", directory.NewPerson{Username: "a", Email: "a@b@example.com"}, "email"},
		{"email too long", directory.NewPerson{Username: "a", Email: strings.Repeat("a", 60) + "@" + strings.Repeat("b", 200) + ".com"}, "email"},
		{"group with space", directory.NewPerson{Username: "a", Groups: []string{"ops team"}}, "groups"},
		{"group empty", directory.NewPerson{Username: "a", Groups: []string{""}}, "groups"},
		{"group too long", directory.NewPerson{Username: "a", Groups: []string{long}}, "groups"},
		{"group with slash", directory.NewPerson{Username: "a", Groups: []string{"ops/admin"}}, "groups"},
		{"bad status", directory.NewPerson{Username: "a", Status: "banned"}, "status"},
	}
	for _, c := range cases {
		_, err := e.d.People().Create(t.Context(), c.np)
		wantField(t, c.name, err, c.field)
	}
	// Edge values that are valid.
	mustCreate(t, e.d, directory.NewPerson{Username: strings.Repeat("z", 64), DisplayName: strings.Repeat("名", 128),
		Email: "a.b+c@mail.example.co", Groups: []string{strings.Repeat("g", 64), "a.b_c-d"}})
	if ps, err := e.d.People().Search(t.Context(), directory.PersonQuery{}); err != nil || len(ps) != 1 {
		t.Fatalf("after rejected creates: %d people (%v), want only the valid one", len(ps), err)
	}
}

func testUsernameIsLowercased(t *testing.T, e *env) {
	p := mustCreate(t, e.d, directory.NewPerson{Username: "Alice.Smith", Groups: []string{"OPS"}})
	if p.Username != "alice.smith" || !slices.Equal(p.Groups, []string{"ops"}) {
		t.Fatalf("got username %q groups %v, want lowercased", p.Username, p.Groups)
	}
}

func testUsernameUniqueIgnoringCase(t *testing.T, e *env) {
	mustCreate(t, e.d, directory.NewPerson{Username: "alice"})
	for _, u := range []string{"alice", "ALICE", "Alice"} {
		_, err := e.d.People().Create(t.Context(), directory.NewPerson{Username: u})
		wantErr(t, "Create("+u+")", err, directory.ErrUsernameTaken)
	}
}

func testConcurrentCreateSameUsername(t *testing.T, e *env) {
	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			_, errs[i] = e.d.People().Create(t.Context(), directory.NewPerson{Username: "racer"})
		})
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, directory.ErrUsernameTaken):
			t.Fatalf("a losing Create failed with %v, want ErrUsernameTaken", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d concurrent creates of one username succeeded, want 1", wins)
	}
}

func testGetByUsernameIgnoresCase(t *testing.T, e *env) {
	p := mustCreate(t, e.d, directory.NewPerson{Username: "alice"})
	got, err := e.d.People().GetByUsername(t.Context(), "ALICE")
	if err != nil || got.ID != p.ID {
		t.Fatalf("GetByUsername(ALICE) = %v, %v; want %s", got.ID, err, p.ID)
	}
}

func testGetUnknownIsNotFound(t *testing.T, e *env) {
	_, err := e.d.People().Get(t.Context(), "p_aaaaaaaaaaaaaaaaaaaa")
	wantErr(t, "Get", err, directory.ErrNotFound)
	if errors.Is(err, directory.ErrUnavailable) {
		t.Fatalf("not found also matches ErrUnavailable: %v", err)
	}
	_, err = e.d.People().GetByUsername(t.Context(), "nobody")
	wantErr(t, "GetByUsername", err, directory.ErrNotFound)
}

func testUpdateChangesOnlyGivenFields(t *testing.T, e *env) {
	ctx := t.Context()
	p := mustCreate(t, e.d, directory.NewPerson{Username: "alice", DisplayName: "Alice", Email: "a@example.com",
		EmailVerified: true, Groups: []string{"ops"}})
	e.clock.Advance(time.Hour)

	got, err := e.d.People().Update(ctx, p.ID, directory.PersonUpdate{DisplayName: ptr("Alice Smith")})
	if err != nil {
		t.Fatal(err)
	}
	if got.DisplayName != "Alice Smith" || got.Email != "a@example.com" || !got.EmailVerified ||
		!slices.Equal(got.Groups, []string{"ops"}) || got.Status != directory.StatusActive {
		t.Fatalf("after a name update: %+v", got)
	}
	if !got.UpdatedAt.Equal(start.Add(time.Hour)) || !got.CreatedAt.Equal(start) {
		t.Fatalf("UpdatedAt %v CreatedAt %v, want %v and %v", got.UpdatedAt, got.CreatedAt, start.Add(time.Hour), start)
	}

	// A new email without a voucher is not verified; groups normalised; status.
	got, err = e.d.People().Update(ctx, p.ID, directory.PersonUpdate{Email: ptr("new@example.com"),
		Groups: &[]string{"B", "a", "b"}, Status: ptr(directory.StatusDisabled)})
	if err != nil {
		t.Fatal(err)
	}
	if got.Email != "new@example.com" || got.EmailVerified || !slices.Equal(got.Groups, []string{"a", "b"}) ||
		got.Status != directory.StatusDisabled {
		t.Fatalf("after email/groups/status update: %+v", got)
	}
	got, err = e.d.People().Update(ctx, p.ID, directory.PersonUpdate{Email: ptr("v@example.com"), EmailVerified: ptr(true),
		Groups: &[]string{}})
	if err != nil {
		t.Fatal(err)
	}
	if !got.EmailVerified || len(got.Groups) != 0 {
		t.Fatalf("after a vouched email and emptied groups: %+v", got)
	}
	stored, err := e.d.People().Get(ctx, p.ID)
	if err != nil || !equalPerson(stored, got) {
		t.Fatalf("Get after Update = %+v (%v), want %+v", stored, err, got)
	}
}

func testUpdateInvalidChangesNothing(t *testing.T, e *env) {
	ctx := t.Context()
	p := mustCreate(t, e.d, directory.NewPerson{Username: "alice", DisplayName: "Alice", Groups: []string{"ops"}})
	cases := []struct {
		u     directory.PersonUpdate
		field string
	}{
		{directory.PersonUpdate{DisplayName: ptr("A\tB")}, "name"},
		{directory.PersonUpdate{DisplayName: ptr("Bob"), Email: ptr("not-an-email")}, "email"},
		{directory.PersonUpdate{DisplayName: ptr("Bob"), Groups: &[]string{"ok", "not ok"}}, "groups"},
		{directory.PersonUpdate{DisplayName: ptr("Bob"), Status: ptr(directory.Status("deleted"))}, "status"},
	}
	for _, c := range cases {
		_, err := e.d.People().Update(ctx, p.ID, c.u)
		wantField(t, "Update", err, c.field)
	}
	got, err := e.d.People().Get(ctx, p.ID)
	if err != nil || !equalPerson(got, p) {
		t.Fatalf("after rejected updates: %+v (%v), want unchanged %+v", got, err, p)
	}
}

func testUpdateUnknownIsNotFound(t *testing.T, e *env) {
	_, err := e.d.People().Update(t.Context(), "p_nobody", directory.PersonUpdate{DisplayName: ptr("x")})
	wantErr(t, "Update", err, directory.ErrNotFound)
}

func testApprovePendingPerson(t *testing.T, e *env) {
	ctx := t.Context()
	p := mustCreate(t, e.d, directory.NewPerson{Username: "wx-pending1", Status: directory.StatusPending})
	e.clock.Advance(time.Minute)
	got, err := e.d.People().Approve(ctx, p.ID, "Carol", []string{"staff"})
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != p.ID || got.Username != "carol" || got.Status != directory.StatusActive ||
		!slices.Equal(got.Groups, []string{"staff"}) || !got.UpdatedAt.Equal(start.Add(time.Minute)) {
		t.Fatalf("Approve = %+v", got)
	}
	if stored, err := e.d.People().GetByUsername(ctx, "carol"); err != nil || !equalPerson(stored, got) {
		t.Fatalf("stored %+v (%v), want %+v", stored, err, got)
	}
	_, err = e.d.People().Approve(ctx, p.ID, "bad name", nil)
	wantField(t, "Approve with a bad username", err, "username")
}

func testApproveNotPendingRefused(t *testing.T, e *env) {
	for _, st := range []directory.Status{directory.StatusActive, directory.StatusDisabled} {
		p := mustCreate(t, e.d, directory.NewPerson{Username: "u-" + string(st), Status: st})
		_, err := e.d.People().Approve(t.Context(), p.ID, "x-"+string(st), []string{"admins"})
		wantErr(t, "Approve("+string(st)+")", err, directory.ErrNotPending)
		if got, _ := e.d.People().Get(t.Context(), p.ID); got.Username != p.Username || len(got.Groups) != 0 {
			t.Fatalf("a refused Approve changed the person: %+v", got)
		}
	}
	_, err := e.d.People().Approve(t.Context(), "p_nobody", "x", nil)
	wantErr(t, "Approve(unknown)", err, directory.ErrNotFound)
}

func testApproveUsernameTaken(t *testing.T, e *env) {
	mustCreate(t, e.d, directory.NewPerson{Username: "carol"})
	p := mustCreate(t, e.d, directory.NewPerson{Username: "wx-pending", Status: directory.StatusPending})
	_, err := e.d.People().Approve(t.Context(), p.ID, "CAROL", nil)
	wantErr(t, "Approve to a taken username", err, directory.ErrUsernameTaken)
	if got, _ := e.d.People().Get(t.Context(), p.ID); got.Status != directory.StatusPending || got.Username != "wx-pending" {
		t.Fatalf("a refused Approve changed the person: %+v", got)
	}
}

func testDeleteRemovesIdentitiesAndProfiles(t *testing.T, e *env) {
	ctx := t.Context()
	alice := mustCreate(t, e.d, directory.NewPerson{Username: "alice"})
	mustBind(t, e.d, alice.ID, wechat("wxapp", "o-alice", "u-alice"))
	if err := e.d.Profiles().Remember(ctx, directory.Profile{Provider: "wechat", AppID: "wxapp", OpenID: "o-alice",
		UnionID: "u-alice", Nickname: "阿丽"}); err != nil {
		t.Fatal(err)
	}
	bob := mustCreate(t, e.d, directory.NewPerson{Username: "bob"})
	mustBind(t, e.d, bob.ID, wechat("wxapp", "o-bob", ""))

	if err := e.d.People().Delete(ctx, alice.ID); err != nil {
		t.Fatal(err)
	}
	_, err := e.d.People().Get(ctx, alice.ID)
	wantErr(t, "Get after Delete", err, directory.ErrNotFound)
	_, err = e.d.People().FindByIdentity(ctx, wechat("wxapp", "o-alice", "u-alice"))
	wantErr(t, "FindByIdentity after Delete", err, directory.ErrNotFound)
	_, err = e.d.Profiles().Get(ctx, "wechat", "wxapp", "o-alice")
	wantErr(t, "Profiles.Get after Delete", err, directory.ErrNotFound)
	if n := e.count(t, "SELECT COUNT(*) FROM identities WHERE person_id = $1", alice.ID); n != 0 {
		t.Fatalf("%d identity rows left for the deleted person", n)
	}
	err = e.d.People().Delete(ctx, alice.ID)
	wantErr(t, "Delete twice", err, directory.ErrNotFound)
	// The freed identity can be bound again; bob's is untouched.
	carol := mustCreate(t, e.d, directory.NewPerson{Username: "carol"})
	mustBind(t, e.d, carol.ID, wechat("wxapp", "o-alice", "u-alice"))
	if p, err := e.d.People().FindByIdentity(ctx, wechat("wxapp", "o-bob", "")); err != nil || p.ID != bob.ID {
		t.Fatalf("bob's identity after deleting alice: %v, %v", p.ID, err)
	}
}

func testSearchMatchesEveryField(t *testing.T, e *env) {
	ctx := t.Context()
	alice := mustCreate(t, e.d, directory.NewPerson{Username: "alice", DisplayName: "Alice Wang", Email: "aw@corp.example"})
	bob := mustCreate(t, e.d, directory.NewPerson{Username: "bob", DisplayName: "李雷", Email: "bob@home.example"})
	mustBind(t, e.d, bob.ID, wechat("wxapp", "oBOB123openid", "uBOBunion"))
	cases := []struct {
		text string
		want []string
	}{
		{"ALI", []string{alice.ID}},          // username, any case
		{"wang", []string{alice.ID}},         // display name
		{"李", []string{bob.ID}},              // display name, CJK
		{"corp.EXAMPLE", []string{alice.ID}}, // email
		{"bob123", []string{bob.ID}},         // openid substring
		{"bobunion", []string{bob.ID}},       // unionid substring
		{"example", []string{alice.ID, bob.ID}},
		{"nobody", nil},
	}
	for _, c := range cases {
		got, err := e.d.People().Search(ctx, directory.PersonQuery{Text: c.text})
		if err != nil {
			t.Fatalf("Search(%q): %v", c.text, err)
		}
		var ids []string
		for _, p := range got {
			ids = append(ids, p.ID)
		}
		if !slices.Equal(ids, c.want) {
			t.Fatalf("Search(%q) = %v, want %v", c.text, ids, c.want)
		}
	}
}

func testSearchFiltersByStatusAndPages(t *testing.T, e *env) {
	ctx := t.Context()
	var active []string
	for i := range 7 {
		p := mustCreate(t, e.d, directory.NewPerson{Username: fmt.Sprintf("user%02d", i)})
		active = append(active, p.Username)
	}
	mustCreate(t, e.d, directory.NewPerson{Username: "user99", Status: directory.StatusPending})
	mustCreate(t, e.d, directory.NewPerson{Username: "user98", Status: directory.StatusDisabled})

	var paged []string
	for offset := 0; ; offset += 3 {
		got, err := e.d.People().Search(ctx, directory.PersonQuery{Status: directory.StatusActive, Limit: 3, Offset: offset})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range got {
			paged = append(paged, p.Username)
		}
		if len(got) < 3 {
			break
		}
	}
	if !slices.Equal(paged, active) {
		t.Fatalf("active people page by page = %v, want %v", paged, active)
	}
	got, err := e.d.People().Search(ctx, directory.PersonQuery{Status: directory.StatusPending})
	if err != nil || len(got) != 1 || got[0].Username != "user99" {
		t.Fatalf("pending = %v (%v), want user99", got, err)
	}
	_, err = e.d.People().Search(ctx, directory.PersonQuery{Status: "gone"})
	wantField(t, "Search with a bad status", err, "status")
	_, err = e.d.People().Search(ctx, directory.PersonQuery{Limit: -1})
	wantField(t, "Search with a negative limit", err, "limit")
}

func testSearchWildcardsAreLiteral(t *testing.T, e *env) {
	mustCreate(t, e.d, directory.NewPerson{Username: "a_b", DisplayName: "100% sure"})
	mustCreate(t, e.d, directory.NewPerson{Username: "axb", DisplayName: "1000 sure"})
	for text, want := range map[string]string{"a_b": "a_b", "0%": "a_b"} {
		got, err := e.d.People().Search(t.Context(), directory.PersonQuery{Text: text})
		if err != nil || len(got) != 1 || got[0].Username != want {
			t.Fatalf("Search(%q) = %v (%v), want only %s", text, got, err, want)
		}
	}
}

func testRecordSignIn(t *testing.T, e *env) {
	ctx := t.Context()
	p := mustCreate(t, e.d, directory.NewPerson{Username: "alice"})
	at := start.Add(3 * time.Hour)
	if err := e.d.People().RecordSignIn(ctx, p.ID, directory.SignIn{At: at, ClientID: "grafana", Flow: "qr", IP: "203.0.113.9"}); err != nil {
		t.Fatal(err)
	}
	got, err := e.d.People().Get(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.LastSignIn == nil || !got.LastSignIn.At.Equal(at) || got.LastSignIn.ClientID != "grafana" ||
		got.LastSignIn.Flow != "qr" || got.LastSignIn.IP != "203.0.113.9" {
		t.Fatalf("LastSignIn = %+v", got.LastSignIn)
	}
	if !got.UpdatedAt.Equal(p.UpdatedAt) {
		t.Fatalf("a sign-in changed UpdatedAt (%v → %v): it records admin changes only", p.UpdatedAt, got.UpdatedAt)
	}
	err = e.d.People().RecordSignIn(ctx, "p_nobody", directory.SignIn{ClientID: "x"})
	wantErr(t, "RecordSignIn(unknown)", err, directory.ErrNotFound)
}

func testSignedIn(t *testing.T, e *env) {
	ctx := t.Context()
	p := mustCreate(t, e.d, directory.NewPerson{Username: "alice"})
	at := start.Add(2 * time.Hour)
	ev := directory.Event{Actor: "sign_in", Action: directory.ActionSignIn, PersonID: p.ID, ClientID: "grafana",
		Flow: "qr", IP: "203.0.113.9", Result: "ok", Ref: "R-SIGNED"}
	if err := e.d.People().SignedIn(ctx, p.ID, directory.SignIn{At: at, ClientID: "grafana", Flow: "qr", IP: "203.0.113.9"}, ev); err != nil {
		t.Fatal(err)
	}
	got, err := e.d.People().Get(ctx, p.ID)
	if err != nil || got.LastSignIn == nil || !got.LastSignIn.At.Equal(at) || got.LastSignIn.ClientID != "grafana" {
		t.Fatalf("LastSignIn = %+v (%v)", got.LastSignIn, err)
	}
	evs, err := e.d.Audit().Query(ctx, directory.AuditQuery{PersonID: p.ID})
	if err != nil || len(evs) != 1 || evs[0].Ref != "R-SIGNED" || !evs[0].Time.Equal(at) || evs[0].Result != "ok" {
		t.Fatalf("audit = %+v (%v), want the sign-in's row at %v", evs, err, at)
	}

	// An unknown person: ErrNotFound, and no audit row either.
	ev.PersonID, ev.Ref = "p_nobody", "R-NOBODY"
	wantErr(t, "SignedIn(unknown)", e.d.People().SignedIn(ctx, "p_nobody", directory.SignIn{ClientID: "x"}, ev), directory.ErrNotFound)
	if n := e.count(t, "SELECT COUNT(*) FROM audit_events WHERE ref = 'R-NOBODY'"); n != 0 {
		t.Fatalf("%d audit rows for an unknown person's sign-in, want 0", n)
	}
	// An invalid event: ErrInvalid, nothing written.
	bad := directory.Event{Action: directory.ActionSignIn, PersonID: p.ID, Ref: strings.Repeat("R", 17)}
	wantErr(t, "SignedIn(invalid event)", e.d.People().SignedIn(ctx, p.ID, directory.SignIn{At: at.Add(time.Hour), ClientID: "x"}, bad), directory.ErrInvalid)
	// A caller that already gave up: nothing written.
	gone, cancel := context.WithCancel(ctx)
	cancel()
	ev.PersonID, ev.Ref = p.ID, "R-GONE"
	if err := e.d.People().SignedIn(gone, p.ID, directory.SignIn{At: at.Add(time.Hour), ClientID: "late"}, ev); err == nil {
		t.Fatal("SignedIn with a cancelled context succeeded")
	}
	if got, err := e.d.People().Get(ctx, p.ID); err != nil || got.LastSignIn.ClientID != "grafana" {
		t.Fatalf("after refused calls LastSignIn = %+v (%v), want the first sign-in's", got.LastSignIn, err)
	}
	if n := e.count(t, "SELECT COUNT(*) FROM audit_events WHERE ref = 'R-GONE'"); n != 0 {
		t.Fatalf("%d audit rows for a cancelled sign-in, want 0", n)
	}
}

// A sign-in whose caller gave up while the database was locked (its
// sign-in was refused) writes nothing once the lock is released: no "ok"
// audit row for a refused sign-in.
func testSignedInCallerGoneWhileLocked(t *testing.T, e *env) {
	ctx := t.Context()
	p := mustCreate(t, e.d, directory.NewPerson{Username: "alice"})
	q := mustCreate(t, e.d, directory.NewPerson{Username: "bob"})
	release := HoldLock(t, e.opts, p.ID)
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	ev := directory.Event{Actor: "sign_in", Action: directory.ActionSignIn, PersonID: p.ID, Result: "ok", Ref: "R-LOCKED"}
	if err := e.d.People().SignedIn(short, p.ID, directory.SignIn{ClientID: "grafana"}, ev); err == nil {
		t.Fatal("SignedIn succeeded while the database was locked")
	}
	release()
	// The next sign-in commits after the first batch ended either way.
	if err := e.d.People().SignedIn(ctx, q.ID, directory.SignIn{ClientID: "grafana"},
		directory.Event{Actor: "sign_in", Action: directory.ActionSignIn, PersonID: q.ID, Result: "ok", Ref: "R-AFTER"}); err != nil {
		t.Fatal(err)
	}
	if n := e.count(t, "SELECT COUNT(*) FROM audit_events WHERE ref = 'R-LOCKED'"); n != 0 {
		t.Fatalf("%d audit rows for a sign-in whose caller gave up, want 0", n)
	}
	if got, err := e.d.People().Get(ctx, p.ID); err != nil || got.LastSignIn != nil {
		t.Fatalf("alice's last sign-in %+v (%v), want none", got.LastSignIn, err)
	}
}

// Concurrent sign-ins share transactions; each is committed, with its row.
func testSignedInConcurrent(t *testing.T, e *env) {
	ctx := t.Context()
	const n = 40
	people := make([]directory.Person, n)
	for i := range people {
		people[i] = mustCreate(t, e.d, directory.NewPerson{Username: fmt.Sprintf("user%d", i)})
	}
	errs := make(chan error, n)
	for i := range people {
		go func() {
			errs <- e.d.People().SignedIn(ctx, people[i].ID, directory.SignIn{ClientID: "grafana", Flow: "oa"},
				directory.Event{Actor: "sign_in", Action: directory.ActionSignIn, PersonID: people[i].ID, Result: "ok"})
		}()
	}
	for range people {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := e.count(t, "SELECT COUNT(*) FROM audit_events WHERE action = 'sign_in'"); got != n {
		t.Fatalf("%d sign-in rows, want %d", got, n)
	}
	if got := e.count(t, "SELECT COUNT(*) FROM people WHERE last_sign_in_client = 'grafana'"); got != n {
		t.Fatalf("%d people with a recorded sign-in, want %d", got, n)
	}
}

func testTimesComeFromTheInjectedClock(t *testing.T, e *env) {
	ctx := t.Context()
	e.clock.Advance(42 * time.Minute)
	now := start.Add(42 * time.Minute)
	p := mustCreate(t, e.d, directory.NewPerson{Username: "alice"})
	if !p.CreatedAt.Equal(now) {
		t.Fatalf("CreatedAt %v, want the clock's %v", p.CreatedAt, now)
	}
	if err := e.d.People().RecordSignIn(ctx, p.ID, directory.SignIn{ClientID: "c"}); err != nil {
		t.Fatal(err)
	}
	if err := e.d.Audit().Append(ctx, directory.Event{Action: "sign_in", PersonID: p.ID}); err != nil {
		t.Fatal(err)
	}
	got, err := e.d.People().Get(ctx, p.ID)
	if err != nil || got.LastSignIn == nil || !got.LastSignIn.At.Equal(now) {
		t.Fatalf("LastSignIn %+v (%v), want at %v", got.LastSignIn, err, now)
	}
	evs, err := e.d.Audit().Query(ctx, directory.AuditQuery{PersonID: p.ID})
	if err != nil || len(evs) != 1 || !evs[0].Time.Equal(now) {
		t.Fatalf("audit %+v (%v), want one event at %v", evs, err, now)
	}
	inv, _, err := e.d.Invitations().Create(ctx, directory.NewInvitation{Username: "bob"})
	if err != nil || !inv.CreatedAt.Equal(now) || !inv.ExpiresAt.Equal(now.Add(directory.DefaultInvitationTTL)) {
		t.Fatalf("invitation %+v (%v), want created at %v, expiring 7 days later", inv, err, now)
	}
}
