package directorytest

import (
	"strings"
	"testing"
	"time"

	"github.com/wechat-oidc/wechat-oidc/directory"
)

func testAuditQuery(t *testing.T, e *env) {
	ctx := t.Context()
	events := []directory.Event{
		{Time: start, Actor: "cli", Action: "person.create", PersonID: "p_a", Result: "ok"},
		{Time: start.Add(1 * time.Minute), Action: "sign_in", PersonID: "p_a", ClientID: "grafana", Flow: "qr",
			IP: "2001:db8::1", UserAgent: "Mozilla/5.0 (iPhone) MicroMessenger/8.0", Result: "ok", Ref: "R-7F3KQ9"},
		{Time: start.Add(2 * time.Minute), Action: "sign_in", PersonID: "p_b", Result: "denied", Reason: "not in group ops", Ref: "R-AAAA22"},
		{Time: start.Add(3 * time.Minute), Action: "sign_in", PersonID: "p_a", Result: "error", Reason: "upstream timeout"},
		{Time: start.Add(3 * time.Minute), Action: "sign_out", PersonID: "p_a"}, // same instant: insertion order decides
	}
	for _, ev := range events {
		if err := e.d.Audit().Append(ctx, ev); err != nil {
			t.Fatalf("Append(%+v): %v", ev, err)
		}
	}
	all, err := e.d.Audit().Query(ctx, directory.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 5 {
		t.Fatalf("Query = %d events, want 5", len(all))
	}
	for i, want := range []string{"sign_out", "sign_in", "sign_in", "sign_in", "person.create"} {
		if all[i].Action != want {
			t.Fatalf("event %d is %q, want %q (newest first)", i, all[i].Action, want)
		}
	}
	got := all[3]
	want := events[1]
	if got.ID == 0 || !got.Time.Equal(want.Time) || got.PersonID != want.PersonID || got.ClientID != want.ClientID ||
		got.Flow != want.Flow || got.IP != want.IP || got.UserAgent != want.UserAgent || got.Result != want.Result ||
		got.Ref != want.Ref || got.Actor != want.Actor {
		t.Fatalf("round trip: got %+v, want %+v", got, want)
	}
	for _, c := range []struct {
		name string
		q    directory.AuditQuery
		want int
	}{
		{"person", directory.AuditQuery{PersonID: "p_a"}, 4},
		{"action", directory.AuditQuery{Action: "sign_in"}, 3},
		{"person and action", directory.AuditQuery{PersonID: "p_a", Action: "sign_in"}, 2},
		{"since", directory.AuditQuery{Since: start.Add(2 * time.Minute)}, 3},
		{"ref", directory.AuditQuery{Ref: "R-AAAA22"}, 1},
		{"ref typed in lower case", directory.AuditQuery{Ref: "r-7f3kq9"}, 1},
		{"limit", directory.AuditQuery{Limit: 2}, 2},
		{"offset", directory.AuditQuery{Limit: 10, Offset: 4}, 1},
	} {
		evs, err := e.d.Audit().Query(ctx, c.q)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if len(evs) != c.want {
			t.Fatalf("%s: %d events, want %d", c.name, len(evs), c.want)
		}
	}
	if evs, _ := e.d.Audit().Query(ctx, directory.AuditQuery{Limit: 10, Offset: 4}); evs[0].Action != "person.create" {
		t.Fatalf("the last page holds %q, want the oldest event", evs[0].Action)
	}
}

func testAuditPrune(t *testing.T, e *env) {
	ctx := t.Context()
	for i := range 5 {
		if err := e.d.Audit().Append(ctx, directory.Event{Time: start.Add(time.Duration(i) * 24 * time.Hour), Action: "sign_in"}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := e.d.Audit().Prune(ctx, start.Add(2*24*time.Hour))
	if err != nil || n != 2 {
		t.Fatalf("Prune = %d (%v), want 2 events older than day 2", n, err)
	}
	left, err := e.d.Audit().Query(ctx, directory.AuditQuery{})
	if err != nil || len(left) != 3 || !left[2].Time.Equal(start.Add(2*24*time.Hour)) {
		t.Fatalf("after Prune: %+v (%v), want days 2, 3, 4", left, err)
	}
	if n, err := e.d.Audit().Prune(ctx, start); err != nil || n != 0 {
		t.Fatalf("pruning again = %d (%v), want 0", n, err)
	}
}

func testAuditAppendValidates(t *testing.T, e *env) {
	ctx := t.Context()
	for _, c := range []struct {
		ev    directory.Event
		field string
	}{
		{directory.Event{}, "action"},
		{directory.Event{Action: "sign in"}, "action"},
		{directory.Event{Action: "sign_in", IP: "1.2.3.4\n5"}, "ip"},
		{directory.Event{Action: "sign_in", Ref: strings.Repeat("R", 17)}, "ref"},
	} {
		wantField(t, "Append", e.d.Audit().Append(ctx, c.ev), c.field)
	}
	// Free text is recorded, cut to size and valid UTF-8.
	ua := strings.Repeat("浏", 400) + "\xff"
	if err := e.d.Audit().Append(ctx, directory.Event{Action: "sign_in", UserAgent: ua, Reason: "bad\xffbyte"}); err != nil {
		t.Fatal(err)
	}
	evs, err := e.d.Audit().Query(ctx, directory.AuditQuery{})
	if err != nil || len(evs) != 1 {
		t.Fatalf("Query = %+v (%v), want only the valid event", evs, err)
	}
	if len(evs[0].UserAgent) > 512 || !strings.HasPrefix(ua, evs[0].UserAgent) || evs[0].Reason != "bad\uFFFDbyte" {
		t.Fatalf("user agent %d bytes, reason %q: want cut to 512 bytes on a rune boundary and valid UTF-8",
			len(evs[0].UserAgent), evs[0].Reason)
	}
}

// testAuditRevocations: the revocation loop's read — only disable and remove
// rows, after a given id, oldest first.
func testAuditRevocations(t *testing.T, e *env) {
	ctx := t.Context()
	if id, err := e.d.Audit().LatestID(ctx); err != nil || id != 0 {
		t.Fatalf("LatestID of an empty trail = %d, %v", id, err)
	}
	for _, a := range []string{directory.ActionSignIn, directory.ActionPersonDisable, directory.ActionPersonGroups, directory.ActionPersonRemove, directory.ActionPersonEnable} {
		if err := e.d.Audit().Append(ctx, directory.Event{Action: a, PersonID: "p_" + a}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := e.d.Audit().Revocations(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Action != directory.ActionPersonDisable || got[1].Action != directory.ActionPersonRemove || got[0].ID >= got[1].ID {
		t.Fatalf("revocations: %+v", got)
	}
	after, err := e.d.Audit().Revocations(ctx, got[0].ID, 0)
	if err != nil || len(after) != 1 || after[0].ID != got[1].ID {
		t.Fatalf("after the first: %+v, %v", after, err)
	}
	latest, err := e.d.Audit().LatestID(ctx)
	if err != nil || latest <= got[1].ID {
		t.Fatalf("LatestID = %d, %v; want above %d", latest, err, got[1].ID)
	}
	if !directory.Revoking(directory.ActionPersonDisable) || directory.Revoking(directory.ActionPersonGroups) {
		t.Fatal("Revoking disagrees with the actions")
	}
}
