package keys

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/wechat-oidc/wechat-oidc/store"
	"github.com/wechat-oidc/wechat-oidc/store/storetest"
)

// testClock is the injected clock: tests move it, nothing sleeps.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *testClock {
	return &testClock{t: time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

const (
	day  = 24 * time.Hour
	pbu  = day      // publish_before_use in these tests
	keep = 2 * day  // retain_after_retire
	rot  = 30 * day // rotate_every
)

var testKEK = bytes.Repeat([]byte{0x5a}, EncryptionKeySize)

func rotating(clk *testClock, algs ...string) Options {
	return Options{Algorithms: algs, PublishBeforeUse: pbu, RotateEvery: rot, RetainAfterRetire: keep, Refresh: time.Minute, Now: clk.Now}
}

var prefixSeq atomic.Int64

// storeFactory gives n handles on one fresh store, as n replicas have.
type storeFactory func(t *testing.T, n int) []store.Store

func memoryStores(t *testing.T, n int) []store.Store {
	m := store.NewMemory()
	t.Cleanup(func() { m.Close() })
	out := make([]store.Store, n)
	for i := range out {
		out[i] = m
	}
	return out
}

func redisStores(t *testing.T, n int) []store.Store {
	addr := storetest.StartRedis(t)
	prefix := fmt.Sprintf("keys-test-%d:", prefixSeq.Add(1))
	out := make([]store.Store, n)
	for i := range out {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		r, err := store.NewRedis(ctx, store.RedisOptions{URL: "redis://" + addr, Prefix: prefix})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		out[i] = r
	}
	return out
}

// eachStore runs fn against the memory store and a real Redis server.
func eachStore(t *testing.T, fn func(t *testing.T, stores storeFactory)) {
	t.Run("memory", func(t *testing.T) { fn(t, memoryStores) })
	t.Run("redis", func(t *testing.T) { fn(t, redisStores) })
}

func storeSource(t *testing.T, st store.Store, kek []byte) *StoreSource {
	t.Helper()
	src, err := NewStoreSource(st, kek, "")
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func dirSource(t *testing.T, dir string) *DirSource {
	t.Helper()
	src, err := NewDirSource(dir)
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func newKeyring(t *testing.T, src Source, o Options) *Keyring {
	t.Helper()
	kr, err := NewKeyring(t.Context(), src, o)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func reload(t *testing.T, kr *Keyring) {
	t.Helper()
	if err := kr.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func list(t *testing.T, kr *Keyring) []Key {
	t.Helper()
	keys, err := kr.List(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func keyByKID(t *testing.T, keys []Key, kid string) Key {
	t.Helper()
	for _, k := range keys {
		if k.KID == kid {
			return k
		}
	}
	t.Fatalf("kid %s not listed in %+v", kid, keys)
	return Key{}
}

func published(kr *Keyring, kid string) bool {
	for _, k := range kr.JWKS().Keys {
		if k.KeyID == kid {
			return true
		}
	}
	return false
}

func TestOptionsRefused(t *testing.T) {
	good := Options{PublishBeforeUse: time.Hour, RotateEvery: rot, RetainAfterRetire: day}
	tests := []struct {
		name string
		edit func(o *Options)
		want string
	}{
		{"no publish_before_use", func(o *Options) { o.PublishBeforeUse = 0 }, "publish_before_use must be positive"},
		{"refresh as long as publish_before_use", func(o *Options) { o.Refresh = time.Hour }, "refresh (1h0m0s) must be shorter than publish_before_use"},
		{"default refresh too long", func(o *Options) { o.PublishBeforeUse = 30 * time.Second; o.RotateEvery = 0 }, "must be shorter than publish_before_use"},
		{"negative refresh", func(o *Options) { o.Refresh = -time.Second }, "refresh must be positive"},
		{"rotation before publication", func(o *Options) { o.RotateEvery = time.Hour }, "rotate_every (1h0m0s) must be longer than publish_before_use"},
		{"negative rotation", func(o *Options) { o.RotateEvery = -time.Hour }, "rotate_every must not be negative"},
		{"negative retain", func(o *Options) { o.RetainAfterRetire = -time.Hour }, "retain_after_retire must not be negative"},
		{"HS256", func(o *Options) { o.Algorithms = []string{"HS256"} }, `"HS256" is not supported: use one of RS256, ES256, EdDSA`},
		{"none", func(o *Options) { o.Algorithms = []string{"none"} }, `"none" is not supported`},
		{"lower case", func(o *Options) { o.Algorithms = []string{"es256"} }, `"es256" is not supported`},
		{"listed twice", func(o *Options) { o.Algorithms = []string{ES256, RS256, ES256} }, "ES256 is listed twice"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := good
			tc.edit(&o)
			dir := t.TempDir()
			_, err := NewKeyring(t.Context(), dirSource(t, dir), o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if files := keyFiles(t, dir); len(files) != 0 {
				t.Fatalf("refused options wrote %v", files)
			}
		})
	}
	if _, err := NewKeyring(t.Context(), dirSource(t, t.TempDir()), good); err != nil {
		t.Fatalf("good options refused: %v", err)
	}
}

// TestRotationTimeline follows one key's successor through its life, with
// an injected clock: published publish_before_use before it signs; its
// predecessor retired then, still published for retain_after_retire, then
// removed. The same for a key directory and the shared store.
func TestRotationTimeline(t *testing.T) {
	t.Run("dir", func(t *testing.T) {
		dir := t.TempDir()
		rotationTimeline(t, dirSource(t, dir))
	})
	eachStore(t, func(t *testing.T, stores storeFactory) {
		rotationTimeline(t, storeSource(t, stores(t, 1)[0], testKEK))
	})
}

func rotationTimeline(t *testing.T, src Source) {
	clk := newClock()
	start := clk.Now()
	kr := newKeyring(t, src, rotating(clk, RS256))
	first := kr.KeyID()
	if keys := list(t, kr); len(keys) != 1 || keys[0].State != StateActive || !keys[0].Activates.Equal(start) || keys[0].Algorithm != RS256 {
		t.Fatalf("first start: %+v, want one RS256 key active from %s", keys, start)
	}
	firstTok := mustSign(t, kr.Set(), []byte(`{"n":1}`))

	// Not due yet: a second before the successor must be published.
	clk.Set(start.Add(rot - pbu - time.Second))
	reload(t, kr)
	if keys := list(t, kr); len(keys) != 1 {
		t.Fatalf("a key was added before rotation was due: %+v", keys)
	}

	// Due: the successor is published, and does not sign yet.
	clk.Add(time.Second)
	rotatedAt := clk.Now()
	reload(t, kr)
	keys := list(t, kr)
	if len(keys) != 2 {
		t.Fatalf("rotation due, keys: %+v", keys)
	}
	next := keys[0]
	if next.KID == first || next.State != StateNext || !next.Activates.Equal(rotatedAt.Add(pbu)) {
		t.Fatalf("new key %+v: want state next, activating at %s", next, rotatedAt.Add(pbu))
	}
	if old := keyByKID(t, keys, first); old.State != StateActive || !old.Retires.Equal(next.Activates) || !old.Removes.Equal(next.Activates.Add(keep)) {
		t.Fatalf("old key %+v: want active, retiring when the new one activates (%s), removed %s later", old, next.Activates, keep)
	}
	if !published(kr, next.KID) || !published(kr, first) {
		t.Fatalf("JWKS %v: want both keys published", jwksKIDs(kr.Set()))
	}
	if kr.KeyID() != first || kidOf(t, mustSign(t, kr.Set(), []byte(`{}`))) != first {
		t.Fatal("the new key signs before it was published for publish_before_use")
	}

	// A second before publish_before_use has passed: still the old key.
	clk.Set(rotatedAt.Add(pbu - time.Second))
	if kr.KeyID() != first {
		t.Fatal("the new key signs before publish_before_use")
	}
	// Then the new key signs, without a reload: the Set follows the clock.
	clk.Add(time.Second)
	if kr.KeyID() != next.KID || kidOf(t, mustSign(t, kr.Set(), []byte(`{}`))) != next.KID {
		t.Fatalf("kid %s after publish_before_use, want the new key %s", kr.KeyID(), next.KID)
	}
	if st := keyByKID(t, list(t, kr), first).State; st != StateRetired {
		t.Fatalf("old key is %s after its successor activated, want retired", st)
	}

	// The retired key stays published for retain_after_retire...
	clk.Set(next.Activates.Add(keep - time.Second))
	reload(t, kr)
	if !published(kr, first) {
		t.Fatal("retired key removed before retain_after_retire")
	}
	if _, err := kr.Verify(firstTok); err != nil {
		t.Fatalf("token of the retired key, within retain_after_retire: %v", err)
	}
	// ...and is removed then.
	clk.Add(time.Second)
	reload(t, kr)
	if published(kr, first) || len(list(t, kr)) != 1 {
		t.Fatalf("retired key still there after retain_after_retire: %v", jwksKIDs(kr.Set()))
	}
	if _, err := kr.Verify(firstTok); err == nil {
		t.Fatal("a removed key still verifies")
	}
	if kr.KeyID() != next.KID {
		t.Fatalf("kid %s, want %s", kr.KeyID(), next.KID)
	}
}

// TestTwoReplicasRotateOnce: replicas that find a change due at the same
// moment (a first start on an empty store, then each rotation) make it
// once: exactly one new key per algorithm, which every replica then holds.
func TestTwoReplicasRotateOnce(t *testing.T) {
	eachStore(t, func(t *testing.T, stores storeFactory) {
		const replicas = 4
		clk := newClock()
		start := clk.Now()
		o := rotating(clk, ES256, EdDSA)
		handles := stores(t, replicas)
		srcs := make([]*StoreSource, replicas)
		for i := range srcs {
			srcs[i] = storeSource(t, handles[i], testKEK)
		}
		krs := make([]*Keyring, replicas)
		race := func(fn func(i int) error) {
			t.Helper()
			var wg sync.WaitGroup
			ready := make(chan struct{})
			errs := make([]error, replicas)
			for i := range replicas {
				wg.Go(func() {
					<-ready
					errs[i] = fn(i)
				})
			}
			close(ready)
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
		}
		race(func(i int) (err error) {
			krs[i], err = NewKeyring(t.Context(), srcs[i], o)
			return err
		})
		// wantKeys checks that exactly one key of each algorithm was made
		// now, and that every replica publishes the same keys.
		wantKeys := func() {
			t.Helper()
			keys := list(t, krs[0])
			made := map[string]int{}
			for _, k := range keys {
				if k.Created.Equal(clk.Now()) {
					made[k.Algorithm]++
				}
			}
			if made[ES256] != 1 || made[EdDSA] != 1 || len(made) != 2 {
				t.Fatalf("store holds %+v, want one new key of each algorithm", keys)
			}
			want := jwksKIDs(krs[0].Set())
			slices.Sort(want)
			for i, kr := range krs {
				got := jwksKIDs(kr.Set())
				slices.Sort(got)
				if !slices.Equal(got, want) {
					t.Fatalf("replica %d publishes %v, replica 0 %v", i, got, want)
				}
			}
		}
		wantKeys()
		for i := range krs {
			if krs[i].KeyID() != krs[0].KeyID() {
				t.Fatalf("replicas sign with different keys: %s, %s", krs[i].KeyID(), krs[0].KeyID())
			}
		}

		for round := 1; round <= 2; round++ {
			clk.Set(start.Add(time.Duration(round)*rot - pbu))
			race(func(i int) error { return krs[i].Reload(t.Context()) })
			wantKeys()
		}
	})
}

// TestReplicaPicksUpNewKeyOnReload: a key one replica adds is published by
// another at its next reload, long before it signs, and then signs there
// too; Run reloads on every tick.
func TestReplicaPicksUpNewKeyOnReload(t *testing.T) {
	eachStore(t, func(t *testing.T, stores storeFactory) {
		clk := newClock()
		o := Options{Algorithms: []string{ES256}, PublishBeforeUse: pbu, RetainAfterRetire: keep, Now: clk.Now}
		h := stores(t, 2)
		a := newKeyring(t, storeSource(t, h[0], testKEK), o)
		b := newKeyring(t, storeSource(t, h[1], testKEK), o)
		old := b.KeyID()
		if a.KeyID() != old {
			t.Fatal("replicas start with different keys")
		}

		added, err := a.Rotate(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(added) != 1 || added[0].State != StateNext || !added[0].Activates.Equal(clk.Now().Add(pbu)) {
			t.Fatalf("Rotate returned %+v, want one next key activating in %s", added, pbu)
		}
		kid := added[0].KID
		if !published(a, kid) {
			t.Fatal("the rotating replica does not publish its new key")
		}
		if published(b, kid) {
			t.Fatal("replica b published the key before reloading (test is wrong)")
		}

		// Run reloads on each tick. A second tick is taken only once the
		// first reload has finished.
		ticks := make(chan time.Time)
		b.ticks = ticks
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { b.Run(ctx); close(done) }()
		clk.Add(DefaultRefresh) // one refresh later
		ticks <- clk.Now()
		ticks <- clk.Now()
		cancel()
		<-done
		if !published(b, kid) {
			t.Fatal("replica b does not publish the new key after a reload")
		}
		if b.KeyID() != old {
			t.Fatal("replica b signs with the new key before publish_before_use")
		}
		clk.Set(added[0].Activates)
		tok := mustSign(t, b.Set(), []byte(`{"from":"b"}`))
		if kidOf(t, tok) != kid {
			t.Fatalf("replica b signs with %s after activation, want %s", kidOf(t, tok), kid)
		}
		if _, err := a.Verify(tok); err != nil {
			t.Fatalf("replica a does not verify replica b's token: %v", err)
		}
	})
}

// TestReloadKeepsSetAndSigners: a reload that finds nothing new keeps the
// Set, so signers are not rebuilt; a rotation keeps the signers of the keys
// that stay.
func TestReloadKeepsSetAndSigners(t *testing.T) {
	clk := newClock()
	kr := newKeyring(t, storeSource(t, store.NewMemory(), testKEK), rotating(clk, ES256))
	set := kr.Set()
	mustSign(t, set, []byte(`{}`))
	mustSign(t, set, []byte(`{}`))
	set.mu.RLock()
	n, signer := len(set.signers), set.signers[set.KeyID()+"|JWT"]
	set.mu.RUnlock()
	if n != 1 || signer == nil {
		t.Fatalf("%d signers after two signatures, want 1", n)
	}
	clk.Add(time.Hour)
	reload(t, kr)
	if kr.Set() != set {
		t.Fatal("a reload that changed nothing built a new Set")
	}
	if _, err := kr.Rotate(t.Context()); err != nil {
		t.Fatal(err)
	}
	next := kr.Set()
	if next == set {
		t.Fatal("rotation did not make a new Set")
	}
	next.mu.RLock()
	kept := next.signers[set.KeyID()+"|JWT"]
	next.mu.RUnlock()
	if kept != signer {
		t.Fatal("rotation rebuilt the signer of a key that stays active")
	}
}

// TestUnconfiguredAlgorithm: a replica whose configuration lacks an
// algorithm another replica signs with publishes and verifies that
// algorithm's keys but does not sign with them, and leaves a fresh key
// alone (a rolling update); once its rotation is overdue and nobody rotates
// it, the key retires and is removed.
func TestUnconfiguredAlgorithm(t *testing.T) {
	clk := newClock()
	m := store.NewMemory()
	newer := newKeyring(t, storeSource(t, m, testKEK), rotating(clk, ES256, EdDSA))
	older := newKeyring(t, storeSource(t, m, testKEK), rotating(clk, ES256))
	edTok, err := newer.SignWithAlgorithm([]byte(`{}`), EdDSA, "JWT")
	if err != nil {
		t.Fatal(err)
	}
	edKID := kidOf(t, edTok)
	if !published(older, edKID) {
		t.Fatal("the EdDSA key is not published by the replica without EdDSA")
	}
	if _, err := older.Verify(edTok); err != nil {
		t.Fatalf("the replica without EdDSA does not verify an EdDSA token of ours: %v", err)
	}
	if got := older.Algorithms(); !slices.Equal(got, []string{ES256}) {
		t.Fatalf("Algorithms = %v, want [ES256]", got)
	}
	if _, err := older.SignWithAlgorithm([]byte(`{}`), EdDSA, "JWT"); err == nil {
		t.Fatal("signed with an algorithm it is not configured for")
	}

	clk.Add(day)
	reload(t, older)
	if k := keyByKID(t, list(t, older), edKID); k.State != StateActive || !k.Retires.IsZero() {
		t.Fatalf("a fresh key of an unconfigured algorithm was touched: %+v", k)
	}

	// Nobody rotates EdDSA any more: once overdue, the key retires now.
	activated := keyByKID(t, list(t, older), edKID).Activates
	clk.Set(activated.Add(rot))
	reload(t, older)
	k := keyByKID(t, list(t, older), edKID)
	if k.State != StateRetired || !k.Retires.Equal(clk.Now()) {
		t.Fatalf("overdue key of an unconfigured algorithm: %+v, want retired now", k)
	}
	clk.Add(keep)
	reload(t, older)
	if published(older, edKID) {
		t.Fatal("retired key of an unconfigured algorithm not removed after retain_after_retire")
	}
}

// TestStoreDocumentKeptAlive: the store wants an expiry on every entry; a
// reload renews the keys' entry once a week, so it never expires while a
// replica runs.
func TestStoreDocumentKeptAlive(t *testing.T) {
	clk := newClock()
	m := store.NewMemory()
	src := storeSource(t, m, testKEK)
	kr := newKeyring(t, src, Options{PublishBeforeUse: pbu, Now: clk.Now})
	written := func() time.Time {
		raw, err := m.Get(t.Context(), src.key)
		if err != nil {
			t.Fatal(err)
		}
		var doc storeDoc
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		return doc.Written
	}
	first := written()
	clk.Add(storeTouchAfter - time.Second)
	reload(t, kr)
	if !written().Equal(first) {
		t.Fatal("renewed before a week had passed")
	}
	clk.Add(time.Second)
	reload(t, kr)
	if got := written(); !got.Equal(clk.Now()) {
		t.Fatalf("written %s after a week, want renewed at %s", got, clk.Now())
	}
}

// TestRunLogsFailedReloadAndKeepsSigning: a reload that fails leaves the
// Set as it was.
func TestRunLogsFailedReloadAndKeepsSigning(t *testing.T) {
	clk := newClock()
	m := store.NewMemory()
	var logs bytes.Buffer
	o := Options{Algorithms: []string{ES256}, PublishBeforeUse: pbu, Now: clk.Now, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	src := storeSource(t, m, testKEK)
	kr := newKeyring(t, src, o)
	set := kr.Set()
	if err := m.Put(t.Context(), src.key, []byte("{not json"), time.Hour); err != nil {
		t.Fatal(err)
	}
	ticks := make(chan time.Time)
	kr.ticks = ticks
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { kr.Run(ctx); close(done) }()
	ticks <- clk.Now()
	ticks <- clk.Now()
	cancel()
	<-done
	if kr.Set() != set {
		t.Fatal("a failed reload changed the Set")
	}
	if _, err := kr.Sign([]byte(`{}`)); err != nil {
		t.Fatalf("signing after a failed reload: %v", err)
	}
	if !strings.Contains(logs.String(), "reload failed") || strings.Contains(logs.String(), string(testKEK)) {
		t.Fatalf("log: %s", logs.String())
	}
	if raw, _ := m.Get(t.Context(), src.key); string(raw) != "{not json" {
		t.Fatalf("the unreadable entry was overwritten: %q", raw)
	}
}

// TestDirKeyringWritesPKCS8 checks the files a Keyring writes for each
// algorithm: PKCS#8 PEM, 0600, in a 0700 directory, loaded back as the same
// keys.
func TestDirKeyringWritesPKCS8(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	clk := newClock()
	o := rotating(clk, RS256, ES256, EdDSA)
	kr := newKeyring(t, dirSource(t, dir), o)
	wantMode(t, dir, 0o700)
	files := keyFiles(t, dir)
	if len(files) != 3 {
		t.Fatalf("directory holds %v, want three key files", files)
	}
	for _, name := range files {
		path := filepath.Join(dir, name)
		wantMode(t, path, 0o600)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(string(data), "-----BEGIN PRIVATE KEY-----\n") {
			t.Fatalf("%s is not PKCS#8 PEM:\n%s", name, data)
		}
	}
	again := newKeyring(t, dirSource(t, dir), o)
	a, b := jwksKIDs(kr.Set()), jwksKIDs(again.Set())
	slices.Sort(a)
	slices.Sort(b)
	if !slices.Equal(a, b) {
		t.Fatalf("reloaded keys %v, written %v", b, a)
	}
}

// TestDirRotateWithoutAutomaticRotation: the Rotate command adds a key to a
// writable directory; without rotate_every the Keyring removes no file.
func TestDirRotateWithoutAutomaticRotation(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	o := Options{Algorithms: []string{ES256}, PublishBeforeUse: pbu, RetainAfterRetire: keep, Now: clk.Now}
	kr := newKeyring(t, dirSource(t, dir), o)
	first := kr.KeyID()
	clk.Add(time.Hour)
	added, err := Rotate(t.Context(), dirSource(t, dir), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(added) != 1 || added[0].State != StateNext || !strings.HasPrefix(added[0].File, dir) {
		t.Fatalf("Rotate: %+v", added)
	}
	reload(t, kr)
	if !published(kr, added[0].KID) || kr.KeyID() != first {
		t.Fatal("new key not published, or signing at once")
	}
	clk.Add(pbu + 10*keep)
	reload(t, kr)
	if kr.KeyID() != added[0].KID {
		t.Fatal("new key does not sign after publish_before_use")
	}
	if len(keyFiles(t, dir)) != 2 || !published(kr, first) {
		t.Fatal("a key file was removed without automatic rotation: the directory is the operator's")
	}
	keys, err := List(t.Context(), dirSource(t, dir), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || keys[0].State != StateActive || keys[1].State != StateRetired || !keys[1].Removes.IsZero() {
		t.Fatalf("List: %+v", keys)
	}
}

// TestDirLockHeldByAnotherProcess: while another process holds the key
// directory's lock, a reload changes nothing and the Rotate command says
// why; a stale lock is taken over.
func TestDirLockHeldByAnotherProcess(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	o := rotating(clk, ES256)
	kr := newKeyring(t, dirSource(t, dir), o)
	lock := filepath.Join(dir, lockName)
	if err := os.WriteFile(lock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	clk.Add(rot)
	reload(t, kr)
	if len(keyFiles(t, dir)) != 2 { // the key and the lock
		t.Fatalf("rotated while another process held the lock: %v", keyFiles(t, dir))
	}
	if _, err := Rotate(t.Context(), dirSource(t, dir), o); err == nil || !strings.Contains(err.Error(), "another process") || !strings.Contains(err.Error(), lock) {
		t.Fatalf("Rotate under a held lock: %v", err)
	}
	stale := time.Now().Add(-lockStale - time.Minute)
	if err := os.Chtimes(lock, stale, stale); err != nil {
		t.Fatal(err)
	}
	reload(t, kr)
	if files := keyFiles(t, dir); len(files) != 2 || slices.Contains(files, lockName) {
		t.Fatalf("after a stale lock: %v, want two key files and no lock", files)
	}
}

// signer is what the bridge and oidc.Signer use of a key set: a Keyring
// takes a Set's place without other changes.
type signer interface {
	Sign(payload []byte) (string, error)
	SignWithType(payload []byte, typ string) (string, error)
	SignWithAlgorithm(payload []byte, alg, typ string) (string, error)
	Verify(token string) ([]byte, error)
	JWKS() jose.JSONWebKeySet
	KeyID() string
	Algorithm() string
	Algorithms() []string
}

var (
	_ signer = (*Set)(nil)
	_ signer = (*Keyring)(nil)
)
