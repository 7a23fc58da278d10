package directorytest

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wechat-oidc/wechat-oidc/directory"
)

func mustInvite(t *testing.T, e *env, ni directory.NewInvitation) (directory.Invitation, string) {
	t.Helper()
	inv, token, err := e.d.Invitations().Create(t.Context(), ni)
	if err != nil {
		t.Fatalf("Invitations.Create(%q): %v", ni.Username, err)
	}
	return inv, token
}

func testInvitationCreateAndGet(t *testing.T, e *env) {
	ctx := t.Context()
	inv, token := mustInvite(t, e, directory.NewInvitation{Username: "Dana", DisplayName: "Dana Li",
		Email: "dana@example.com", Groups: []string{"staff", "ops"}, ClientID: "grafana", CreatedBy: "cli"})
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil || len(raw) < 16 {
		t.Fatalf("token %q: want base64url of at least 128 bits (%v)", token, err)
	}
	if inv.Username != "dana" || !slices.Equal(inv.Groups, []string{"ops", "staff"}) || inv.State != directory.InvitationPending ||
		!inv.ExpiresAt.Equal(start.Add(7*24*time.Hour)) || !strings.HasPrefix(inv.ID, "inv_") || strings.Contains(token, inv.ID) {
		t.Fatalf("Create = %+v", inv)
	}
	for name, get := range map[string]func() (directory.Invitation, error){
		"Get":     func() (directory.Invitation, error) { return e.d.Invitations().Get(ctx, token) },
		"GetByID": func() (directory.Invitation, error) { return e.d.Invitations().GetByID(ctx, inv.ID) },
	} {
		got, err := get()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.ID != inv.ID || got.Username != "dana" || got.DisplayName != "Dana Li" || got.Email != "dana@example.com" ||
			!slices.Equal(got.Groups, inv.Groups) || got.ClientID != "grafana" || got.CreatedBy != "cli" ||
			!got.CreatedAt.Equal(start) || !got.ExpiresAt.Equal(inv.ExpiresAt) || got.State != directory.InvitationPending ||
			!got.UsedAt.IsZero() || !got.RevokedAt.IsZero() {
			t.Fatalf("%s = %+v, want %+v", name, got, inv)
		}
	}
	_, other := mustInvite(t, e, directory.NewInvitation{Username: "dana"})
	if other == token {
		t.Fatal("two invitations got the same token")
	}
	// A custom lifetime.
	inv2, _ := mustInvite(t, e, directory.NewInvitation{Username: "erin", TTL: time.Hour})
	if !inv2.ExpiresAt.Equal(start.Add(time.Hour)) {
		t.Fatalf("ExpiresAt %v with TTL 1h", inv2.ExpiresAt)
	}
}

func testInvitationTokenStoredOnlyAsHash(t *testing.T, e *env) {
	inv, token := mustInvite(t, e, directory.NewInvitation{Username: "dana", CreatedBy: "cli"})
	rows, err := e.raw(t).QueryContext(t.Context(), "SELECT * FROM invitations")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(token))
	foundHash := false
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			s := fmt.Sprint(v)
			if b, ok := v.([]byte); ok {
				s = string(b)
			}
			if strings.Contains(s, token) {
				t.Fatalf("column %s of invitation %s holds the raw token", cols[i], inv.ID)
			}
			if s == hex.EncodeToString(sum[:]) {
				foundHash = true
			}
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if !foundHash {
		t.Fatal("the token's SHA-256 is not stored")
	}
}

func testInvitationCreateRejectsInvalid(t *testing.T, e *env) {
	cases := []struct {
		ni    directory.NewInvitation
		field string
	}{
		{directory.NewInvitation{}, "username"},
		{directory.NewInvitation{Username: "a b"}, "username"},
		{directory.NewInvitation{Username: "a", Email: "nope"}, "email"},
		{directory.NewInvitation{Username: "a", Groups: []string{"x y"}}, "groups"},
		{directory.NewInvitation{Username: "a", DisplayName: "\x07"}, "name"},
		{directory.NewInvitation{Username: "a", ClientID: "has space"}, "client_id"},
		{directory.NewInvitation{Username: "a", TTL: -time.Hour}, "ttl"},
		{directory.NewInvitation{Username: "a", TTL: 91 * 24 * time.Hour}, "ttl"},
	}
	for _, c := range cases {
		_, _, err := e.d.Invitations().Create(t.Context(), c.ni)
		wantField(t, "Invitations.Create", err, c.field)
	}
	if n := e.count(t, "SELECT COUNT(*) FROM invitations"); n != 0 {
		t.Fatalf("%d invitations stored from rejected input", n)
	}
}

func testRedeemCreatesActivePerson(t *testing.T, e *env) {
	ctx := t.Context()
	inv, token := mustInvite(t, e, directory.NewInvitation{Username: "dana", DisplayName: "Dana", Email: "dana@example.com",
		Groups: []string{"staff"}, ClientID: "grafana"})
	e.clock.Advance(time.Hour)
	id := wechat("wxweb", "o-dana", "u-dana")
	p, err := e.d.Invitations().Redeem(ctx, token, id)
	if err != nil {
		t.Fatal(err)
	}
	if p.Username != "dana" || p.DisplayName != "Dana" || p.Email != "dana@example.com" || !p.EmailVerified ||
		!slices.Equal(p.Groups, []string{"staff"}) || p.Status != directory.StatusActive || !personIDPattern.MatchString(p.ID) {
		t.Fatalf("Redeem = %+v", p)
	}
	if found, err := e.d.People().FindByIdentity(ctx, id); err != nil || found.ID != p.ID {
		t.Fatalf("the redeeming identity finds %s (%v), want %s", found.ID, err, p.ID)
	}
	got, err := e.d.Invitations().GetByID(ctx, inv.ID)
	if err != nil || got.State != directory.InvitationUsed || got.UsedBy != p.ID || !got.UsedAt.Equal(start.Add(time.Hour)) {
		t.Fatalf("invitation after Redeem: %+v (%v)", got, err)
	}
}

func testRedeemActivatesPendingPerson(t *testing.T, e *env) {
	ctx := t.Context()
	pending := mustCreate(t, e.d, directory.NewPerson{Username: "dana", DisplayName: "D", Status: directory.StatusPending,
		Groups: []string{"old"}})
	mustBind(t, e.d, pending.ID, wechat("wxweb", "o-dana-old", ""))
	_, token := mustInvite(t, e, directory.NewInvitation{Username: "dana", Email: "dana@example.com", Groups: []string{"staff"}})
	p, err := e.d.Invitations().Redeem(ctx, token, wechat("wxmp", "o-dana-mp", ""))
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != pending.ID || p.Status != directory.StatusActive || p.DisplayName != "D" || p.Email != "dana@example.com" ||
		!p.EmailVerified || !slices.Equal(p.Groups, []string{"staff"}) {
		t.Fatalf("Redeem = %+v, want the pending person activated with the invitation's email and groups", p)
	}
	ids, err := e.d.People().Identities(ctx, p.ID)
	if err != nil || len(ids) != 2 {
		t.Fatalf("identities %+v (%v), want the old one and the redeeming one", ids, err)
	}
}

func testRedeemTwiceIsUsed(t *testing.T, e *env) {
	_, token := mustInvite(t, e, directory.NewInvitation{Username: "dana"})
	if _, err := e.d.Invitations().Redeem(t.Context(), token, wechat("wx", "o-1", "")); err != nil {
		t.Fatal(err)
	}
	// Neither the same identity nor another one may spend it again.
	for _, id := range []directory.Identity{wechat("wx", "o-1", ""), wechat("wx", "o-2", "")} {
		_, err := e.d.Invitations().Redeem(t.Context(), token, id)
		wantErr(t, "second Redeem", err, directory.ErrInvitationUsed)
	}
	_, err := e.d.People().FindByIdentity(t.Context(), wechat("wx", "o-2", ""))
	wantErr(t, "the second identity", err, directory.ErrNotFound)
}

func testRedeemConcurrentExactlyOnce(t *testing.T, e *env) {
	_, token := mustInvite(t, e, directory.NewInvitation{Username: "dana"})
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	people := make([]directory.Person, n)
	for i := range n {
		wg.Go(func() {
			people[i], errs[i] = e.d.Invitations().Redeem(t.Context(), token, wechat("wx", fmt.Sprintf("o-%d", i), ""))
		})
	}
	wg.Wait()
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
			if p, err := e.d.People().FindByIdentity(t.Context(), wechat("wx", fmt.Sprintf("o-%d", i), "")); err != nil || p.ID != people[i].ID {
				t.Fatalf("the winner's identity finds %s (%v)", p.ID, err)
			}
		case !errors.Is(err, directory.ErrInvitationUsed):
			t.Fatalf("a losing Redeem failed with %v, want ErrInvitationUsed", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d of %d concurrent redemptions succeeded, want exactly 1", wins, n)
	}
	if c := e.count(t, "SELECT COUNT(*) FROM identities"); c != 1 {
		t.Fatalf("%d identities bound, want 1", c)
	}
	if c := e.count(t, "SELECT COUNT(*) FROM people"); c != 1 {
		t.Fatalf("%d people, want 1", c)
	}
}

func testRedeemExpiredByClock(t *testing.T, e *env) {
	ctx := t.Context()
	_, late := mustInvite(t, e, directory.NewInvitation{Username: "late", TTL: time.Hour})
	_, onTime := mustInvite(t, e, directory.NewInvitation{Username: "ontime", TTL: time.Hour})
	e.clock.Advance(time.Hour - time.Microsecond)
	if _, err := e.d.Invitations().Redeem(ctx, onTime, wechat("wx", "o-ontime", "")); err != nil {
		t.Fatalf("redeeming 1µs before expiry: %v", err)
	}
	e.clock.Advance(time.Microsecond)
	_, err := e.d.Invitations().Redeem(ctx, late, wechat("wx", "o-late", ""))
	wantErr(t, "redeeming at expiry", err, directory.ErrInvitationExpired)
	if inv, _ := e.d.Invitations().Get(ctx, late); inv.State != directory.InvitationExpired {
		t.Fatalf("state %q, want expired", inv.State)
	}
	_, err = e.d.People().GetByUsername(ctx, "late")
	wantErr(t, "the person of an expired invitation", err, directory.ErrNotFound)
}

func testRedeemRevoked(t *testing.T, e *env) {
	inv, token := mustInvite(t, e, directory.NewInvitation{Username: "dana"})
	if err := e.d.Invitations().Revoke(t.Context(), inv.ID); err != nil {
		t.Fatal(err)
	}
	_, err := e.d.Invitations().Redeem(t.Context(), token, wechat("wx", "o-1", ""))
	wantErr(t, "Redeem after Revoke", err, directory.ErrInvitationRevoked)
	_, err = e.d.People().GetByUsername(t.Context(), "dana")
	wantErr(t, "the person of a revoked invitation", err, directory.ErrNotFound)
}

func testRedeemUnknownToken(t *testing.T, e *env) {
	mustInvite(t, e, directory.NewInvitation{Username: "dana"})
	for _, token := range []string{"", "not-a-token", strings.Repeat("A", 43), strings.Repeat("x", 10000)} {
		_, err := e.d.Invitations().Redeem(t.Context(), token, wechat("wx", "o-1", ""))
		wantErr(t, "Redeem(unknown token)", err, directory.ErrNotFound)
		_, err = e.d.Invitations().Get(t.Context(), token)
		wantErr(t, "Get(unknown token)", err, directory.ErrNotFound)
	}
}

func testRedeemIdentityTaken(t *testing.T, e *env) {
	ctx := t.Context()
	alice := mustCreate(t, e.d, directory.NewPerson{Username: "alice"})
	mustBind(t, e.d, alice.ID, wechat("", "", "u-alice"))
	inv, token := mustInvite(t, e, directory.NewInvitation{Username: "dana"})
	_, err := e.d.Invitations().Redeem(ctx, token, wechat("wx", "o-new", "u-alice"))
	wantErr(t, "Redeem with alice's unionid", err, directory.ErrIdentityTaken)
	got, err := e.d.Invitations().GetByID(ctx, inv.ID)
	if err != nil || got.State != directory.InvitationPending {
		t.Fatalf("invitation after a refused Redeem: %+v (%v), want still pending", got, err)
	}
	_, err = e.d.People().GetByUsername(ctx, "dana")
	wantErr(t, "dana after a refused Redeem", err, directory.ErrNotFound)
	// It still works for the right identity.
	if _, err := e.d.Invitations().Redeem(ctx, token, wechat("wx", "o-dana", "")); err != nil {
		t.Fatalf("Redeem with a free identity afterwards: %v", err)
	}
}

func testRedeemForDisabledUsername(t *testing.T, e *env) {
	ctx := t.Context()
	mustCreate(t, e.d, directory.NewPerson{Username: "dana", Status: directory.StatusDisabled})
	inv, token := mustInvite(t, e, directory.NewInvitation{Username: "dana"})
	_, err := e.d.Invitations().Redeem(ctx, token, wechat("wx", "o-1", ""))
	wantErr(t, "Redeem for a disabled person", err, directory.ErrDisabled)
	if p, _ := e.d.People().GetByUsername(ctx, "dana"); p.Status != directory.StatusDisabled {
		t.Fatalf("status %q, want still disabled", p.Status)
	}
	if got, _ := e.d.Invitations().GetByID(ctx, inv.ID); got.State != directory.InvitationPending {
		t.Fatalf("invitation state %q, want still pending", got.State)
	}
}

func testRevokeRules(t *testing.T, e *env) {
	ctx := t.Context()
	inv, _ := mustInvite(t, e, directory.NewInvitation{Username: "dana"})
	e.clock.Advance(time.Minute)
	if err := e.d.Invitations().Revoke(ctx, inv.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.d.Invitations().Revoke(ctx, inv.ID); err != nil {
		t.Fatalf("revoking twice: %v", err)
	}
	if got, _ := e.d.Invitations().GetByID(ctx, inv.ID); !got.RevokedAt.Equal(start.Add(time.Minute)) {
		t.Fatalf("RevokedAt %v, want the first revocation's %v", got.RevokedAt, start.Add(time.Minute))
	}
	used, token := mustInvite(t, e, directory.NewInvitation{Username: "erin"})
	if _, err := e.d.Invitations().Redeem(ctx, token, wechat("wx", "o-erin", "")); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "revoking a used invitation", e.d.Invitations().Revoke(ctx, used.ID), directory.ErrInvitationUsed)
	wantErr(t, "revoking an unknown invitation", e.d.Invitations().Revoke(ctx, "inv_nope"), directory.ErrNotFound)
}

func testInvitationListByState(t *testing.T, e *env) {
	ctx := t.Context()
	pending, _ := mustInvite(t, e, directory.NewInvitation{Username: "p1"})
	e.clock.Advance(time.Second)
	expired, _ := mustInvite(t, e, directory.NewInvitation{Username: "p2", TTL: time.Hour})
	e.clock.Advance(time.Second)
	revoked, _ := mustInvite(t, e, directory.NewInvitation{Username: "p3"})
	e.clock.Advance(time.Second)
	used, token := mustInvite(t, e, directory.NewInvitation{Username: "p4"})
	if err := e.d.Invitations().Revoke(ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.d.Invitations().Redeem(ctx, token, wechat("wx", "o-4", "")); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Hour)
	for state, want := range map[directory.InvitationState][]string{
		"":                          {used.ID, revoked.ID, expired.ID, pending.ID}, // newest first
		directory.InvitationPending: {pending.ID},
		directory.InvitationExpired: {expired.ID},
		directory.InvitationRevoked: {revoked.ID},
		directory.InvitationUsed:    {used.ID},
	} {
		got, err := e.d.Invitations().List(ctx, directory.InvitationQuery{State: state})
		if err != nil {
			t.Fatalf("List(%q): %v", state, err)
		}
		var ids []string
		for _, inv := range got {
			ids = append(ids, inv.ID)
			if state != "" && inv.State != state {
				t.Fatalf("List(%q) returned an invitation in state %q", state, inv.State)
			}
		}
		if !slices.Equal(ids, want) {
			t.Fatalf("List(%q) = %v, want %v", state, ids, want)
		}
	}
	got, err := e.d.Invitations().List(ctx, directory.InvitationQuery{Limit: 2, Offset: 1})
	if err != nil || len(got) != 2 || got[0].ID != revoked.ID || got[1].ID != expired.ID {
		t.Fatalf("List page 2 = %+v (%v)", got, err)
	}
	_, err = e.d.Invitations().List(ctx, directory.InvitationQuery{State: "lost"})
	wantField(t, "List(bad state)", err, "state")
}
