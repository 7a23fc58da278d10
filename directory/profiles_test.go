package directory_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/wechat-oidc/wechat-oidc/directory"
	"github.com/wechat-oidc/wechat-oidc/directory/directorytest"
)

// An unchanged profile brought again by the next consent sign-in is not
// written again for a while; a changed one is, and so is one whose rows
// were deleted, and one stored longer ago than the window.
func TestRememberSkipsUnchangedProfile(t *testing.T) {
	ctx := context.Background()
	clock := directorytest.NewClock(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	var counter directorytest.StatementCounter
	d, err := directory.Open(ctx, directory.Options{Type: directory.TypeSQLite,
		Path: filepath.Join(t.TempDir(), "d.db"), Now: clock.Now, WrapConnector: counter.Wrap})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	pr := directory.Profile{Provider: directory.ProviderWeChat, AppID: "wxapp", OpenID: "o-1", UnionID: "u-1", Nickname: "小明"}
	remember := func(p directory.Profile, wantStatements int64, why string) {
		t.Helper()
		counter.Reset()
		if err := d.Profiles().Remember(ctx, p); err != nil {
			t.Fatal(err)
		}
		if got := counter.Count(); got != wantStatements {
			t.Fatalf("%s: %d statements, want %d", why, got, wantStatements)
		}
		got, err := d.Profiles().Get(ctx, p.Provider, p.AppID, p.OpenID)
		if err != nil {
			t.Fatalf("%s: %v", why, err)
		}
		if got.UnionID != p.UnionID || got.Nickname != p.Nickname {
			t.Fatalf("%s: stored %+v, want %+v", why, got, p)
		}
	}
	remember(pr, 1, "first")
	clock.Advance(time.Minute)
	remember(pr, 0, "same profile a minute later")
	changed := pr
	changed.Nickname = "小明2"
	remember(changed, 1, "nickname changed")
	remember(pr, 1, "nickname changed back")
	clock.Advance(11 * time.Minute)
	remember(pr, 1, "same profile after the window")

	// Deleting the person deletes the profile; the next sign-in stores it again.
	p, err := d.People().Create(ctx, directory.NewPerson{Username: "xiaoming"})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.People().BindIdentity(ctx, p.ID, directory.Identity{Provider: directory.ProviderWeChat, UnionID: "u-1"}); err != nil {
		t.Fatal(err)
	}
	if err := d.People().Delete(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Profiles().Get(ctx, pr.Provider, pr.AppID, pr.OpenID); !errors.Is(err, directory.ErrNotFound) {
		t.Fatalf("profile after the person's deletion: %v, want ErrNotFound", err)
	}
	remember(pr, 1, "after the person was deleted")
}
