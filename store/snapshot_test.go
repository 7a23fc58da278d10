package store_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wechat-oidc/wechat-oidc/store"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestSnapshotKeepsLiveEntriesAcrossARestart: a graceful stop writes the
// store to a 0600 file; the next start reads it back, without the entries
// that expired meanwhile, with the rest of their lifetimes, and deletes the
// file so that it is used once.
func TestSnapshotKeepsLiveEntriesAcrossARestart(t *testing.T) {
	ctx := context.Background()
	clock := &testClock{t: time.Now()}
	path := filepath.Join(t.TempDir(), "store.snapshot")
	a := store.NewMemoryClock(clock.Now)
	must(t, a.Put(ctx, "bridge:session:s1", []byte("alice"), 8*time.Hour))
	must(t, a.Put(ctx, "oidc:refresh:r1", []byte{0, 1, 2, 255}, 7*24*time.Hour))
	must(t, a.Put(ctx, "bridge:pending:p1", []byte("leg"), 10*time.Minute))
	must(t, a.Put(ctx, "short", []byte("x"), time.Minute))
	if n, err := a.WriteSnapshot(path); err != nil || n != 4 {
		t.Fatalf("WriteSnapshot = %d, %v", n, err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Fatalf("snapshot mode %v, want 0600", info.Mode().Perm())
	}
	raw, _ := os.ReadFile(path)
	if strings.Contains(string(raw), "alice") {
		t.Errorf("values are stored in clear text in JSON strings; want base64 like every value")
	}

	clock.Add(5 * time.Minute) // the restart took a while: "short" expired
	b := store.NewMemoryClock(clock.Now)
	restored, expired, err := b.LoadSnapshot(path)
	if err != nil || restored != 3 || expired != 1 {
		t.Fatalf("LoadSnapshot = %d restored, %d expired, %v; want 3, 1", restored, expired, err)
	}
	if got, err := b.Get(ctx, "oidc:refresh:r1"); err != nil || string(got) != string([]byte{0, 1, 2, 255}) {
		t.Fatalf("refresh record %q, %v", got, err)
	}
	if _, err := b.Get(ctx, "short"); err != store.ErrNotFound {
		t.Fatalf("an expired entry came back: %v", err)
	}
	if b.CountPrefix("bridge:") != 2 || b.Len() != 3 {
		t.Fatalf("CountPrefix(bridge:) = %d, Len = %d", b.CountPrefix("bridge:"), b.Len())
	}
	// The pending login keeps the rest of its 10 minutes, no more.
	clock.Add(5*time.Minute + time.Second)
	if _, err := b.Get(ctx, "bridge:pending:p1"); err != store.ErrNotFound {
		t.Fatalf("pending login outlived its lifetime: %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("the snapshot is still there after loading: %v", err)
	}
	// A start without a snapshot (first start, or after a crash) is empty.
	if r, e, err := store.NewMemory().LoadSnapshot(path); r != 0 || e != 0 || err != nil {
		t.Fatalf("no snapshot: %d %d %v", r, e, err)
	}
}

func TestSnapshotRefusesDamagedOrExposedFiles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a := store.NewMemory()
	must(t, a.Put(ctx, "k1", []byte("v"), time.Hour))
	must(t, a.Put(ctx, "k2", []byte("v"), time.Hour))
	good := filepath.Join(dir, "good")
	if _, err := a.WriteSnapshot(good); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(good)
	lines := strings.SplitAfter(string(raw), "\n")
	for name, tc := range map[string]struct {
		body string
		mode os.FileMode
		want string
	}{
		"truncated":      {strings.Join(lines[:2], ""), 0o600, "truncated"},
		"not a snapshot": {"hello\n", 0o600, "not a memory store snapshot"},
		"damaged":        {lines[0] + "{\"k\":\n", 0o600, "damaged"},
		"world-readable": {string(raw), 0o644, "chmod 600"},
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		if err := os.WriteFile(p, []byte(tc.body), tc.mode); err != nil {
			t.Fatal(err)
		}
		must(t, os.Chmod(p, tc.mode))
		b := store.NewMemory()
		if _, _, err := b.LoadSnapshot(p); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
		if b.Len() != 0 {
			t.Errorf("%s: %d entries restored from a refused snapshot", name, b.Len())
		}
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: a refused snapshot was deleted", name)
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
