package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wechat-oidc/wechat-oidc/store"
	"github.com/wechat-oidc/wechat-oidc/store/storetest"
)

// The family listing runs against the two real stores the bridge uses: the
// memory store (go-cache, on the test's clock, bounded) and a real Redis
// server (TTLs on the server's own clock: the provider's clock is moved,
// and it must judge every expiry itself).

// storeStorage adapts a store.Store to Storage (absent is nil, nil), as the
// bridge does.
type storeStorage struct{ s store.Store }

func (a storeStorage) Put(ctx context.Context, k string, v []byte, ttl time.Duration) error {
	return a.s.Put(ctx, k, v, ttl)
}

func (a storeStorage) Get(ctx context.Context, k string) ([]byte, error) {
	v, err := a.s.Get(ctx, k)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return v, err
}

func (a storeStorage) Take(ctx context.Context, k string) ([]byte, error) {
	v, err := a.s.Take(ctx, k)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return v, err
}

func (a storeStorage) Delete(ctx context.Context, k string) error { return a.s.Delete(ctx, k) }

func (a storeStorage) Update(ctx context.Context, k string, ttl time.Duration, fn func([]byte) ([]byte, error)) error {
	return a.s.Update(ctx, k, ttl, fn)
}

// familyMaxEntries bounds the memory store of these tests: far above what
// they store, so that a test that fills it does so on purpose.
const familyMaxEntries = 10000

// onEachStore runs test with a refresh harness over the memory store and
// over a real Redis server (one per call, a fresh key prefix per run).
func onEachStore(t *testing.T, test func(t *testing.T, h *refreshHarness)) {
	t.Helper()
	t.Run("memory", func(t *testing.T) {
		h := newRefreshHarness(t)
		m := store.NewMemoryClock(h.clock.Now, store.WithMaxEntries(familyMaxEntries))
		t.Cleanup(func() { m.Close() })
		h.p.Storage = storeStorage{m}
		test(t, h)
	})
	t.Run("redis", func(t *testing.T) {
		addr := storetest.StartRedis(t)
		h := newRefreshHarness(t)
		r, err := store.NewRedis(t.Context(), store.RedisOptions{URL: "redis://" + addr, Prefix: "families-test:"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		h.p.Storage = storeStorage{r}
		test(t, h)
	})
}

// families lists the subject's families.
func (h *refreshHarness) families(sub string) []RefreshFamily {
	h.t.Helper()
	fs, err := h.p.RefreshFamilies(context.Background(), sub)
	if err != nil {
		h.t.Fatalf("RefreshFamilies(%s): %v", sub, err)
	}
	return fs
}

// indexedFamilies are the family ids the subject's index names (live
// entries or not).
func (h *refreshHarness) indexedFamilies(sub string) []string {
	h.t.Helper()
	raw, err := h.p.Storage.Get(context.Background(), keySubjectIndex+sub)
	if err != nil {
		h.t.Fatal(err)
	}
	idx, err := decodeIndex(raw)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, e := range idx.Entries {
		if e.Family != "" {
			out = append(out, e.Family)
		}
	}
	return out
}

func familyIDs(fs []RefreshFamily) []string {
	out := make([]string, 0, len(fs))
	for _, f := range fs {
		out = append(out, f.ID)
	}
	return out
}

// familyOf is the listed family the client's sign-in started, or fails.
func (h *refreshHarness) familyOf(sub, clientID string) RefreshFamily {
	h.t.Helper()
	var found []RefreshFamily
	for _, f := range h.families(sub) {
		if f.ClientID == clientID {
			found = append(found, f)
		}
	}
	if len(found) != 1 {
		h.t.Fatalf("%s has %d families of %s, want 1: %+v", sub, len(found), clientID, found)
	}
	return found[0]
}

// TestRefreshFamiliesListedAfterIssue: every code exchange that issued a
// refresh token is one listed family with what it was granted; a code
// exchange without a refresh token is not a family.
func TestRefreshFamiliesListedAfterIssue(t *testing.T) {
	onEachStore(t, func(t *testing.T, h *refreshHarness) {
		created := h.clock.Now()
		h.exchange("app", h.loginAs("app", "openid profile", "u1", "sid-1")) // no refresh token
		if fs := h.families("u1"); len(fs) != 0 {
			t.Fatalf("a sign-in without a refresh token is listed: %+v", fs)
		}
		h.clock.Advance(time.Minute)
		h.exchange("app", h.loginAs("app", offlineScopes, "u1", "sid-1"))
		h.clock.Advance(time.Minute)
		h.exchange("always", h.loginAs("always", "openid profile", "u1", "sid-2"))

		fs := h.families("u1")
		if len(fs) != 2 || fs[0].ClientID != "always" || fs[1].ClientID != "app" {
			t.Fatalf("families = %+v, want always's then app's (newest first)", fs)
		}
		off, on := fs[1], fs[0]
		if !off.Offline || off.SessionID != "sid-1" || !slices.Equal(off.Scopes, []string{"openid", "profile", "offline_access"}) ||
			off.Subject != "u1" || !off.CreatedAt.Equal(created.Add(time.Minute)) {
			t.Fatalf("offline family = %+v", off)
		}
		if on.Offline || on.SessionID != "sid-2" || !slices.Equal(on.Scopes, []string{"openid", "profile"}) {
			t.Fatalf("session-bound family = %+v", on)
		}
		wantCreated := created.Add(2 * time.Minute)
		if !on.CreatedAt.Equal(wantCreated) || !on.LastUsedAt.Equal(wantCreated) ||
			!on.IdleExpiresAt.Equal(wantCreated.Add(DefaultRefreshTokenIdleTTL)) ||
			!on.ExpiresAt.Equal(wantCreated.Add(DefaultRefreshTokenAbsoluteTTL)) {
			t.Fatalf("times of a fresh family = %+v", on)
		}
		if on.ID == "" || on.ID == off.ID {
			t.Fatalf("family ids %q and %q", on.ID, off.ID)
		}
	})
}

// TestRefreshFamiliesAfterRotation: refreshing keeps the family (same id,
// listed once) and moves its last use and idle expiry.
func TestRefreshFamiliesAfterRotation(t *testing.T) {
	onEachStore(t, func(t *testing.T, h *refreshHarness) {
		tr := h.exchange("always", h.loginAs("always", "openid", "u1", "sid-1"))
		before := h.familyOf("u1", "always")
		h.clock.Advance(3 * time.Hour)
		tr = h.mustRefresh("always", tr.RefreshToken)
		h.clock.Advance(time.Hour)
		h.mustRefresh("always", tr.RefreshToken)
		after := h.families("u1")
		if len(after) != 1 || after[0].ID != before.ID {
			t.Fatalf("after two rotations: %+v, want the one family %s", after, before.ID)
		}
		used := before.CreatedAt.Add(4 * time.Hour)
		if !after[0].LastUsedAt.Equal(used) || !after[0].IdleExpiresAt.Equal(used.Add(DefaultRefreshTokenIdleTTL)) ||
			!after[0].CreatedAt.Equal(before.CreatedAt) || !after[0].ExpiresAt.Equal(before.ExpiresAt) {
			t.Fatalf("after rotation: %+v (before %+v)", after[0], before)
		}
		if ids := h.indexedFamilies("u1"); !slices.Equal(ids, []string{before.ID}) {
			t.Fatalf("rotation changed the index: %v", ids)
		}
	})
}

// familyIDOf is the family a refresh token belongs to.
func (h *refreshHarness) familyIDOf(rt string) string {
	h.t.Helper()
	rec, err := h.p.loadRefresh(context.Background(), rt)
	if err != nil || rec == nil {
		h.t.Fatalf("refresh token unknown: %v", err)
	}
	return rec.FamilyID
}

// TestRevokedRefreshFamilyNotListed: a family revoked in any way is not
// listed, and its index entry is removed — at once when it was revoked on
// its own (RFC 7009, reuse), at the next listing when it went with its
// session.
func TestRevokedRefreshFamilyNotListed(t *testing.T) {
	onEachStore(t, func(t *testing.T, h *refreshHarness) {
		byClient := h.exchange("app", h.loginAs("app", offlineScopes, "u1", "sid-1"))
		reused := h.exchange("always", h.loginAs("always", "openid", "u1", "sid-2"))
		loggedOut := h.exchange("always", h.loginAs("always", "openid", "u1", "sid-3"))
		kept := h.exchange("app", h.loginAs("app", offlineScopes, "u1", "sid-4"))
		ids := map[string]string{}
		for name, tr := range map[string]*TokenResponse{"byClient": byClient, "reused": reused, "loggedOut": loggedOut, "kept": kept} {
			ids[name] = h.familyIDOf(tr.RefreshToken)
		}
		if got := familyIDs(h.families("u1")); len(got) != 4 {
			t.Fatalf("families %v, want 4", got)
		}

		if w := h.revoke("app", byClient.RefreshToken, ""); w.Code != http.StatusOK {
			t.Fatalf("revocation: %d", w.Code)
		}
		h.mustRefresh("always", reused.RefreshToken)
		h.wantRefreshError("always", reused.RefreshToken, "", CodeInvalidGrant) // reuse: the family is revoked
		indexed := h.indexedFamilies("u1")
		if slices.Contains(indexed, ids["byClient"]) || slices.Contains(indexed, ids["reused"]) {
			t.Fatalf("families revoked on their own are still indexed: %v", indexed)
		}
		if err := h.p.RevokeSession(context.Background(), "sid-3"); err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(h.indexedFamilies("u1"), ids["loggedOut"]) {
			t.Fatal("test premise: RevokeSession leaves the subject index as it was")
		}
		if got := familyIDs(h.families("u1")); !slices.Equal(got, []string{ids["kept"]}) {
			t.Fatalf("families after revocations = %v, want only %s", got, ids["kept"])
		}
		if got := h.indexedFamilies("u1"); !slices.Equal(got, []string{ids["kept"]}) {
			t.Fatalf("the listing left ended families in the index: %v", got)
		}
		h.mustRefresh("app", kept.RefreshToken)
	})
}

// TestExpiredRefreshFamilyNotListed: a family whose newest refresh token
// is past its idle expiry, or which is past its absolute expiry, is not
// listed; its index entry stays while an access token of it may live, so
// that RevokeSubject still ends that token.
func TestExpiredRefreshFamilyNotListed(t *testing.T) {
	onEachStore(t, func(t *testing.T, h *refreshHarness) {
		h.p.AccessTokenTTL = 2 * time.Hour
		idle := h.exchange("app", h.loginAs("app", offlineScopes, "u1", "sid-1"))
		busy := h.exchange("always", h.loginAs("always", "openid", "u1", "sid-2"))
		idleID, busyID := h.familyIDOf(idle.RefreshToken), h.familyIDOf(busy.RefreshToken)

		for range 4 { // day 24: busy refreshes every 6 days, idle never
			h.clock.Advance(6 * 24 * time.Hour)
			busy = h.mustRefresh("always", busy.RefreshToken)
		}
		if got := familyIDs(h.families("u1")); !slices.Equal(got, []string{busyID}) {
			t.Fatalf("after the idle expiry: %v, want only %s", got, busyID)
		}
		h.wantRefreshError("app", idle.RefreshToken, "", CodeInvalidGrant)
		if !slices.Contains(h.indexedFamilies("u1"), idleID) {
			t.Fatal("an idle-expired family left the index: RevokeSubject could not find it")
		}

		h.clock.Advance(6*24*time.Hour - time.Hour) // 1h before the absolute expiry
		busy = h.mustRefresh("always", busy.RefreshToken)
		h.clock.Advance(90 * time.Minute) // past it; the last access token lives on
		if got := h.families("u1"); len(got) != 0 {
			t.Fatalf("after the absolute expiry: %+v", got)
		}
		h.wantRefreshError("always", busy.RefreshToken, "", CodeInvalidGrant)
		h.wantAccess("always", busy.AccessToken, true)
		if err := h.p.RevokeSubject(context.Background(), "u1"); err != nil {
			t.Fatal(err)
		}
		h.wantAccess("always", busy.AccessToken, false)
	})
}

// TestRefreshFamiliesOfOtherSubjectsNotListed: a subject's list holds its
// own families only, and RevokeRefreshFamily refuses another subject's
// family (ErrFamilyNotFound) without touching it.
func TestRefreshFamiliesOfOtherSubjectsNotListed(t *testing.T) {
	onEachStore(t, func(t *testing.T, h *refreshHarness) {
		mine := h.exchange("app", h.loginAs("app", offlineScopes, "u1", "sid-1"))
		theirs := h.exchange("app", h.loginAs("app", offlineScopes, "u2", "sid-2"))
		mineID, theirsID := h.familyIDOf(mine.RefreshToken), h.familyIDOf(theirs.RefreshToken)
		if got := familyIDs(h.families("u1")); !slices.Equal(got, []string{mineID}) {
			t.Fatalf("u1's families = %v, want %s", got, mineID)
		}
		if got := familyIDs(h.families("u2")); !slices.Equal(got, []string{theirsID}) {
			t.Fatalf("u2's families = %v, want %s", got, theirsID)
		}
		if got := h.families("nobody"); len(got) != 0 {
			t.Fatalf("a subject with no sign-in has families: %+v", got)
		}
		for _, id := range []string{theirsID, "no-such-family"} {
			if err := h.p.RevokeRefreshFamily(context.Background(), "u1", id); !errors.Is(err, ErrFamilyNotFound) {
				t.Fatalf("RevokeRefreshFamily(u1, %s) = %v, want ErrFamilyNotFound", id, err)
			}
		}
		h.mustRefresh("app", theirs.RefreshToken)
		h.wantAccess("app", theirs.AccessToken, true)
	})
}

// TestRevokeRefreshFamilyEndsItsTokensOnly: revoking one family refuses its
// refresh token (invalid_grant) and every access token issued from it —
// at the code exchange and at a refresh — while the subject's other family
// keeps working. Revoking it again is not an error.
func TestRevokeRefreshFamilyEndsItsTokensOnly(t *testing.T) {
	onEachStore(t, func(t *testing.T, h *refreshHarness) {
		first := h.exchange("always", h.loginAs("always", "openid", "u1", "sid-1"))
		refreshed := h.mustRefresh("always", first.RefreshToken)
		other := h.exchange("app", h.loginAs("app", offlineScopes, "u1", "sid-1"))
		id := h.familyIDOf(refreshed.RefreshToken)
		for range 2 {
			if err := h.p.RevokeRefreshFamily(context.Background(), "u1", id); err != nil {
				t.Fatal(err)
			}
		}
		h.wantRefreshError("always", refreshed.RefreshToken, "", CodeInvalidGrant)
		h.wantAccess("always", first.AccessToken, false)
		h.wantAccess("always", refreshed.AccessToken, false)
		h.wantAccess("app", other.AccessToken, true)
		h.mustRefresh("app", other.RefreshToken)
		if got := h.indexedFamilies("u1"); slices.Contains(got, id) {
			t.Fatalf("the revoked family is still indexed: %v", got)
		}
		if got := familyIDs(h.families("u1")); len(got) != 1 || got[0] == id {
			t.Fatalf("families after the revocation = %v", got)
		}
	})
}

// TestRefreshFamilyListingKeepsConcurrentSignIns: the listing's pruning of
// ended families races new sign-ins of the same subject (another replica on
// the same Redis): none of the new families is lost from the index.
func TestRefreshFamilyListingKeepsConcurrentSignIns(t *testing.T) {
	onEachStore(t, func(t *testing.T, h *refreshHarness) {
		for i := range 6 { // ended families, still indexed, for every listing to prune
			h.exchange("always", h.loginAs("always", "openid", "u1", fmt.Sprintf("old-%d", i)))
			if err := h.p.RevokeSession(context.Background(), fmt.Sprintf("old-%d", i)); err != nil {
				t.Fatal(err)
			}
		}
		if got := len(h.indexedFamilies("u1")); got != 6 {
			t.Fatalf("test premise: %d ended families indexed, want 6", got)
		}
		const n = 10
		codes := make([]string, n)
		for i := range codes {
			codes[i] = h.loginAs("app", offlineScopes, "u1", fmt.Sprintf("sid-%d", i))
		}
		var wg sync.WaitGroup
		tokens := make([]*TokenResponse, n)
		errs := make(chan error, 2*n)
		for i := range n {
			wg.Add(2)
			go func() {
				defer wg.Done()
				w := h.post(h.p.HandleToken, "app", appSecret, url.Values{"grant_type": {"authorization_code"}, "code": {codes[i]}, "redirect_uri": {appRedirect}})
				var tr TokenResponse
				if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &tr) != nil {
					errs <- fmt.Errorf("sign-in %d: %d %s", i, w.Code, w.Body)
					return
				}
				tokens[i] = &tr
			}()
			go func() {
				defer wg.Done()
				if _, err := h.p.RefreshFamilies(context.Background(), "u1"); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		listed := familyIDs(h.families("u1"))
		indexed := h.indexedFamilies("u1")
		for i, tr := range tokens {
			id := h.familyIDOf(tr.RefreshToken)
			if !slices.Contains(listed, id) || !slices.Contains(indexed, id) {
				t.Fatalf("sign-in %d's family %s lost: listed %v, indexed %v", i, id, listed, indexed)
			}
		}
		if len(listed) != n || len(indexed) != n {
			t.Fatalf("listed %d, indexed %d, want %d each", len(listed), len(indexed), n)
		}
	})
}

// TestRefreshFamiliesListedWhenMemoryStoreFull: the listing writes no new
// key (it only shrinks or deletes the index), so it works, and prunes, in a
// memory store that holds its maximum number of entries.
func TestRefreshFamiliesListedWhenMemoryStoreFull(t *testing.T) {
	h := newRefreshHarness(t)
	m := store.NewMemoryClock(h.clock.Now, store.WithMaxEntries(40))
	t.Cleanup(func() { m.Close() })
	h.p.Storage = storeStorage{m}
	kept := h.exchange("app", h.loginAs("app", offlineScopes, "u1", "sid-1"))
	h.exchange("always", h.loginAs("always", "openid", "u1", "sid-2"))
	if err := h.p.RevokeSession(context.Background(), "sid-2"); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		err := m.Put(context.Background(), fmt.Sprintf("filler:%d", i), []byte("x"), time.Hour)
		if errors.Is(err, store.ErrFull) {
			break
		} else if err != nil || i > 100 {
			t.Fatalf("filling the store: %v after %d", err, i)
		}
	}
	id := h.familyIDOf(kept.RefreshToken)
	if got := familyIDs(h.families("u1")); !slices.Equal(got, []string{id}) {
		t.Fatalf("families in a full store = %v, want %s", got, id)
	}
	if got := h.indexedFamilies("u1"); !slices.Equal(got, []string{id}) {
		t.Fatalf("the index in a full store = %v, want the ended family pruned", got)
	}
}
