package directorytest

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/wechat-oidc/wechat-oidc/directory"
)

func testFindByOpenIDOrUnionID(t *testing.T, e *env) {
	ctx := t.Context()
	alice := mustCreate(t, e.d, directory.NewPerson{Username: "alice", Groups: []string{"admins", "ops"}})
	mustBind(t, e.d, alice.ID, wechat("wxweb", "o-web-alice", "u-alice"))

	for _, c := range []struct {
		name string
		id   directory.Identity
	}{
		{"openid and unionid", wechat("wxweb", "o-web-alice", "u-alice")},
		{"openid only", wechat("wxweb", "o-web-alice", "")},
		{"unionid from another app", wechat("wxmp", "o-mp-alice", "u-alice")},
		{"unionid only", wechat("", "", "u-alice")},
	} {
		p, err := e.d.People().FindByIdentity(ctx, c.id)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if p.ID != alice.ID || !slices.Equal(p.Groups, []string{"admins", "ops"}) {
			t.Fatalf("%s: got %s groups %v, want alice with her groups", c.name, p.ID, p.Groups)
		}
	}
	// An openid is per app and per provider.
	for _, id := range []directory.Identity{
		wechat("wxmp", "o-web-alice", ""),
		{Provider: "wecom", AppID: "wxweb", OpenID: "o-web-alice"},
		{Provider: "wecom", UnionID: "u-alice"},
	} {
		_, err := e.d.People().FindByIdentity(ctx, id)
		wantErr(t, "FindByIdentity in another app or provider", err, directory.ErrNotFound)
	}
}

func testFindPrefersOpenID(t *testing.T, e *env) {
	alice := mustCreate(t, e.d, directory.NewPerson{Username: "alice"})
	bob := mustCreate(t, e.d, directory.NewPerson{Username: "bob"})
	// An administrator bound these separately, not knowing they are one account.
	mustBind(t, e.d, alice.ID, wechat("wxweb", "o-1", ""))
	mustBind(t, e.d, bob.ID, wechat("", "", "u-1"))
	p, err := e.d.People().FindByIdentity(t.Context(), wechat("wxweb", "o-1", "u-1"))
	if err != nil || p.ID != alice.ID {
		t.Fatalf("FindByIdentity = %s (%v), want alice: the openid is the more specific key", p.ID, err)
	}
}

func testFindByLearnedUnionID(t *testing.T, e *env) {
	ctx := t.Context()
	alice := mustCreate(t, e.d, directory.NewPerson{Username: "alice"})
	mustBind(t, e.d, alice.ID, wechat("", "", "u-alice"))
	silent := wechat("wxmp", "o-mp-alice", "") // snsapi_base: no unionid
	_, err := e.d.People().FindByIdentity(ctx, silent)
	wantErr(t, "before the link is learned", err, directory.ErrNotFound)

	if err := e.d.Profiles().Remember(ctx, directory.Profile{Provider: "wechat", AppID: "wxmp", OpenID: "o-mp-alice",
		UnionID: "u-alice"}); err != nil {
		t.Fatal(err)
	}
	e.counter.Reset()
	p, err := e.d.People().FindByIdentity(ctx, silent)
	if err != nil || p.ID != alice.ID {
		t.Fatalf("after the link is learned: %s (%v), want alice", p.ID, err)
	}
	if n := e.counter.Count(); n != 1 {
		t.Fatalf("FindByIdentity through a learned link took %d statements, want 1", n)
	}
	// The link survives a restart.
	if err := e.d.Close(); err != nil {
		t.Fatal(err)
	}
	e.d = e.open(t)
	if p, err := e.d.People().FindByIdentity(ctx, silent); err != nil || p.ID != alice.ID {
		t.Fatalf("after reopening: %s (%v), want alice", p.ID, err)
	}
}

func testFindUnboundIsNotFound(t *testing.T, e *env) {
	_, err := e.d.People().FindByIdentity(t.Context(), wechat("wxweb", "o-nobody", "u-nobody"))
	wantErr(t, "FindByIdentity", err, directory.ErrNotFound)
	if errors.Is(err, directory.ErrUnavailable) {
		t.Fatalf("not found also matches ErrUnavailable: %v", err)
	}
	_, err = e.d.People().FindByIdentity(t.Context(), wechat("wxweb", "", ""))
	wantErr(t, "FindByIdentity without openid or unionid", err, directory.ErrInvalid)
}

// testSignInPathStatements: the per-sign-in budget is one query, one write
// and one audit row.
func testSignInPathStatements(t *testing.T, e *env) {
	ctx := t.Context()
	alice := mustCreate(t, e.d, directory.NewPerson{Username: "alice", Groups: []string{"ops"}})
	id := wechat("wxweb", "o-alice", "u-alice")
	mustBind(t, e.d, alice.ID, id)

	for _, step := range []struct {
		name string
		run  func() error
	}{
		{"FindByIdentity", func() error { _, err := e.d.People().FindByIdentity(ctx, id); return err }},
		{"RecordSignIn", func() error {
			return e.d.People().RecordSignIn(ctx, alice.ID, directory.SignIn{ClientID: "grafana", Flow: "qr", IP: "192.0.2.1"})
		}},
		{"Audit.Append", func() error {
			return e.d.Audit().Append(ctx, directory.Event{Action: "sign_in", PersonID: alice.ID, Result: "ok", Ref: directory.NewRef()})
		}},
	} {
		e.counter.Reset()
		if err := step.run(); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if n := e.counter.Count(); n != 1 {
			t.Fatalf("%s sent %d statements, want 1", step.name, n)
		}
	}
}

func testBindIdentityTakenNeverMoves(t *testing.T, e *env) {
	ctx := t.Context()
	alice := mustCreate(t, e.d, directory.NewPerson{Username: "alice"})
	bob := mustCreate(t, e.d, directory.NewPerson{Username: "bob"})
	mustBind(t, e.d, alice.ID, wechat("wxweb", "o-1", ""))
	err := e.d.People().BindIdentity(ctx, bob.ID, wechat("wxweb", "o-1", ""))
	wantErr(t, "binding alice's openid to bob", err, directory.ErrIdentityTaken)
	if p, err := e.d.People().FindByIdentity(ctx, wechat("wxweb", "o-1", "")); err != nil || p.ID != alice.ID {
		t.Fatalf("the openid now finds %s (%v), want alice still", p.ID, err)
	}
	if ids, _ := e.d.People().Identities(ctx, bob.ID); len(ids) != 0 {
		t.Fatalf("bob has identities %+v after a refused bind", ids)
	}
}

func testUnionIDBoundToOnePerson(t *testing.T, e *env) {
	ctx := t.Context()
	alice := mustCreate(t, e.d, directory.NewPerson{Username: "alice"})
	bob := mustCreate(t, e.d, directory.NewPerson{Username: "bob"})
	mustBind(t, e.d, alice.ID, wechat("wxweb", "o-web", "u-1"))
	// Alice's openid in another app, same unionid: fine, it is her account.
	mustBind(t, e.d, alice.ID, wechat("wxmp", "o-mp", "u-1"))
	// Bob cannot take the unionid, through any app.
	err := e.d.People().BindIdentity(ctx, bob.ID, wechat("wxapp", "o-app", "u-1"))
	wantErr(t, "binding alice's unionid to bob", err, directory.ErrIdentityTaken)
	err = e.d.People().BindIdentity(ctx, bob.ID, wechat("", "", "u-1"))
	wantErr(t, "binding alice's unionid alone to bob", err, directory.ErrIdentityTaken)
	if p, err := e.d.People().FindByIdentity(ctx, wechat("", "", "u-1")); err != nil || p.ID != alice.ID {
		t.Fatalf("the unionid finds %s (%v), want alice", p.ID, err)
	}
}

func testBindTakenBindsNothing(t *testing.T, e *env) {
	ctx := t.Context()
	alice := mustCreate(t, e.d, directory.NewPerson{Username: "alice"})
	bob := mustCreate(t, e.d, directory.NewPerson{Username: "bob"})
	mustBind(t, e.d, alice.ID, wechat("", "", "u-alice"))
	// A new openid with a taken unionid: the openid must not be bound either.
	err := e.d.People().BindIdentity(ctx, bob.ID, wechat("wxweb", "o-new", "u-alice"))
	wantErr(t, "BindIdentity", err, directory.ErrIdentityTaken)
	_, err = e.d.People().FindByIdentity(ctx, wechat("wxweb", "o-new", ""))
	wantErr(t, "the openid of a refused bind", err, directory.ErrNotFound)
}

func testBindSamePersonTwice(t *testing.T, e *env) {
	ctx := t.Context()
	alice := mustCreate(t, e.d, directory.NewPerson{Username: "alice"})
	id := wechat("wxweb", "o-1", "u-1")
	mustBind(t, e.d, alice.ID, id)
	mustBind(t, e.d, alice.ID, id)
	ids, err := e.d.People().Identities(ctx, alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 2 || ids[0].OpenID != "o-1" || ids[0].AppID != "wxweb" || ids[0].UnionID != "" ||
		ids[1].UnionID != "u-1" || ids[1].OpenID != "" || !ids[0].BoundAt.Equal(start) {
		t.Fatalf("Identities = %+v, want the openid key then the unionid key, bound at %v", ids, start)
	}
}

func testBindRejectsInvalidIdentity(t *testing.T, e *env) {
	alice := mustCreate(t, e.d, directory.NewPerson{Username: "alice"})
	cases := []struct {
		id    directory.Identity
		field string
	}{
		{directory.Identity{AppID: "wx", OpenID: "o"}, "provider"},
		{directory.Identity{Provider: "WeChat!", AppID: "wx", OpenID: "o"}, "provider"},
		{wechat("", "o-1", ""), "app_id"},
		{wechat("wx", "", ""), "app_id"},
		{wechat("", "", ""), "openid"},
		{wechat("wx", "o 1", ""), "openid"},
		{wechat("wx", strings.Repeat("o", 129), ""), "openid"},
		{wechat("", "", "u\x001"), "unionid"},
	}
	for _, c := range cases {
		err := e.d.People().BindIdentity(t.Context(), alice.ID, c.id)
		wantField(t, "BindIdentity", err, c.field)
	}
	if ids, _ := e.d.People().Identities(t.Context(), alice.ID); len(ids) != 0 {
		t.Fatalf("identities after rejected binds: %+v", ids)
	}
}

func testBindToUnknownPerson(t *testing.T, e *env) {
	err := e.d.People().BindIdentity(t.Context(), "p_nobody", wechat("wx", "o-1", ""))
	wantErr(t, "BindIdentity", err, directory.ErrNotFound)
	if n := e.count(t, "SELECT COUNT(*) FROM identities"); n != 0 {
		t.Fatalf("%d identities stored for an unknown person", n)
	}
}

func testConcurrentBindSameOpenID(t *testing.T, e *env) {
	const n = 6
	ids := make([]string, n)
	for i := range n {
		ids[i] = mustCreate(t, e.d, directory.NewPerson{Username: "racer" + string(rune('a'+i))}).ID
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = e.d.People().BindIdentity(t.Context(), ids[i], wechat("wx", "o-contested", "")) })
	}
	wg.Wait()
	winner := ""
	for i, err := range errs {
		switch {
		case err == nil && winner == "":
			winner = ids[i]
		case err == nil:
			t.Fatalf("two people got the same openid: %s and %s", winner, ids[i])
		case !errors.Is(err, directory.ErrIdentityTaken):
			t.Fatalf("a losing bind failed with %v, want ErrIdentityTaken", err)
		}
	}
	if p, err := e.d.People().FindByIdentity(t.Context(), wechat("wx", "o-contested", "")); err != nil || p.ID != winner {
		t.Fatalf("the openid finds %s (%v), want the winner %s", p.ID, err, winner)
	}
}

func testUnbindIdentity(t *testing.T, e *env) {
	ctx := t.Context()
	alice := mustCreate(t, e.d, directory.NewPerson{Username: "alice"})
	bob := mustCreate(t, e.d, directory.NewPerson{Username: "bob"})
	mustBind(t, e.d, alice.ID, wechat("wxweb", "o-1", "u-1"))
	mustBind(t, e.d, bob.ID, wechat("wxweb", "o-bob", ""))

	// Someone else's identity is not alice's to unbind.
	err := e.d.People().UnbindIdentity(ctx, alice.ID, wechat("wxweb", "o-bob", ""))
	wantErr(t, "unbinding bob's identity from alice", err, directory.ErrNotFound)
	if p, err := e.d.People().FindByIdentity(ctx, wechat("wxweb", "o-bob", "")); err != nil || p.ID != bob.ID {
		t.Fatalf("bob's identity after a refused unbind: %s (%v)", p.ID, err)
	}
	// The openid alone: the unionid stays.
	if err := e.d.People().UnbindIdentity(ctx, alice.ID, wechat("wxweb", "o-1", "")); err != nil {
		t.Fatal(err)
	}
	_, err = e.d.People().FindByIdentity(ctx, wechat("wxweb", "o-1", ""))
	wantErr(t, "the unbound openid", err, directory.ErrNotFound)
	if p, err := e.d.People().FindByIdentity(ctx, wechat("", "", "u-1")); err != nil || p.ID != alice.ID {
		t.Fatalf("the unionid after unbinding the openid: %s (%v), want alice", p.ID, err)
	}
	if err := e.d.People().UnbindIdentity(ctx, alice.ID, wechat("", "", "u-1")); err != nil {
		t.Fatal(err)
	}
	err = e.d.People().UnbindIdentity(ctx, alice.ID, wechat("", "", "u-1"))
	wantErr(t, "unbinding twice", err, directory.ErrNotFound)
	if ids, err := e.d.People().Identities(ctx, alice.ID); err != nil || len(ids) != 0 {
		t.Fatalf("alice's identities %+v (%v), want none", ids, err)
	}
	// Freed: bob may have it now.
	mustBind(t, e.d, bob.ID, wechat("wxweb", "o-1", "u-1"))
}

func testProfileRemember(t *testing.T, e *env) {
	ctx := t.Context()
	p := directory.Profile{Provider: "wechat", AppID: "wxweb", OpenID: "o-1", UnionID: "u-1",
		Nickname: "小明\n", AvatarURL: "https://thirdwx.qlogo.cn/mmopen/abc/132"}
	if err := e.d.Profiles().Remember(ctx, p); err != nil {
		t.Fatal(err)
	}
	got, err := e.d.Profiles().Get(ctx, "wechat", "wxweb", "o-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.UnionID != "u-1" || got.Nickname != "小明" || got.AvatarURL != p.AvatarURL || !got.UpdatedAt.Equal(start) {
		t.Fatalf("Get = %+v (control characters dropped from the nickname)", got)
	}
	// A silent sign-in later learns nothing new: nothing is erased.
	e.clock.Advance(1e9)
	if err := e.d.Profiles().Remember(ctx, directory.Profile{Provider: "wechat", AppID: "wxweb", OpenID: "o-1"}); err != nil {
		t.Fatal(err)
	}
	got, err = e.d.Profiles().Get(ctx, "wechat", "wxweb", "o-1")
	if err != nil || got.UnionID != "u-1" || got.Nickname != "小明" || got.AvatarURL != p.AvatarURL || got.UpdatedAt.Equal(start) {
		t.Fatalf("after an empty update: %+v (%v), want the earlier values and a new UpdatedAt", got, err)
	}
	// A new nickname replaces the old one.
	if err := e.d.Profiles().Remember(ctx, directory.Profile{Provider: "wechat", AppID: "wxweb", OpenID: "o-1", Nickname: "Ming"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.d.Profiles().Get(ctx, "wechat", "wxweb", "o-1"); got.Nickname != "Ming" || got.UnionID != "u-1" {
		t.Fatalf("after a new nickname: %+v", got)
	}
	_, err = e.d.Profiles().Get(ctx, "wechat", "wxweb", "o-2")
	wantErr(t, "Get(unknown)", err, directory.ErrNotFound)
}

func testProfileRejectsBadInput(t *testing.T, e *env) {
	cases := []struct {
		p     directory.Profile
		field string
	}{
		{directory.Profile{AppID: "wx", OpenID: "o"}, "provider"},
		{directory.Profile{Provider: "wechat", OpenID: "o"}, "app_id"},
		{directory.Profile{Provider: "wechat", AppID: "wx"}, "openid"},
		{directory.Profile{Provider: "wechat", AppID: "wx", OpenID: "o", AvatarURL: "javascript:alert(1)"}, "avatar_url"},
		{directory.Profile{Provider: "wechat", AppID: "wx", OpenID: "o", AvatarURL: "https://x/" + strings.Repeat("a", 1024)}, "avatar_url"},
	}
	for _, c := range cases {
		wantField(t, "Remember", e.d.Profiles().Remember(t.Context(), c.p), c.field)
	}
	if n := e.count(t, "SELECT COUNT(*) FROM upstream_profiles"); n != 0 {
		t.Fatalf("%d profiles stored from rejected input", n)
	}
}
