package store_test

import (
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wechat-oidc/wechat-oidc/store"
	"github.com/wechat-oidc/wechat-oidc/store/storetest"
)

func TestMemory(t *testing.T) {
	storetest.Run(t, func(*testing.T) store.Store { return store.NewMemory() })
}

func BenchmarkMemoryPutGet(b *testing.B) {
	s := store.NewMemory()
	defer s.Close()
	benchmarkPutGet(b, s)
}

func BenchmarkMemoryTake(b *testing.B) {
	s := store.NewMemory()
	defer s.Close()
	ctx := b.Context()
	value := make([]byte, 256)
	var seq atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		key := "code-" + strconv.FormatInt(seq.Add(1), 10)
		for pb.Next() {
			if err := s.Put(ctx, key, value, time.Minute); err != nil {
				b.Fatal(err)
			}
			if _, err := s.Take(ctx, key); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchmarkPutGet measures the hot path of a login: store a 256-byte record,
// read it back, from parallel goroutines on distinct keys.
func benchmarkPutGet(b *testing.B, s store.Store) {
	ctx := b.Context()
	value := make([]byte, 256)
	var seq atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		key := "bench-" + strconv.FormatInt(seq.Add(1), 10)
		for pb.Next() {
			if err := s.Put(ctx, key, value, time.Minute); err != nil {
				b.Fatal(err)
			}
			if _, err := s.Get(ctx, key); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestMemoryMaxEntriesRefusesNewKeysWhenFull: a bounded memory store never
// holds more than its bound. A new key beyond it is refused with ErrFull and
// changes nothing; present keys may still be replaced, updated and taken;
// expired entries make room again.
func TestMemoryMaxEntriesRefusesNewKeysWhenFull(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	s := store.NewMemoryClock(clock, store.WithMaxEntries(3))
	ctx := t.Context()
	for i := range 3 {
		if err := s.Put(ctx, "k"+strconv.Itoa(i), []byte("v"), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Put(ctx, "new", []byte("v"), time.Minute); !errors.Is(err, store.ErrFull) {
		t.Fatalf("Put of a new key into a full store: %v, want ErrFull", err)
	}
	if ok, err := s.PutNew(ctx, "new", []byte("v"), time.Minute); ok || !errors.Is(err, store.ErrFull) {
		t.Fatalf("PutNew into a full store: %v %v", ok, err)
	}
	err := s.Update(ctx, "new", time.Minute, func([]byte) ([]byte, error) { return []byte("v"), nil })
	if !errors.Is(err, store.ErrFull) {
		t.Fatalf("Update creating a key in a full store: %v", err)
	}
	if _, err := s.Get(ctx, "new"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused key was stored: %v", err)
	}
	if s.Len() != 3 {
		t.Fatalf("Len = %d, want 3", s.Len())
	}
	// Present keys still work.
	if err := s.Put(ctx, "k0", []byte("replaced"), time.Minute); err != nil {
		t.Fatalf("replacing a present key in a full store: %v", err)
	}
	if err := s.Update(ctx, "k1", time.Minute, func(old []byte) ([]byte, error) { return append(old, '!'), nil }); err != nil {
		t.Fatalf("updating a present key in a full store: %v", err)
	}
	if _, err := s.Take(ctx, "k2"); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "new", []byte("v"), time.Minute); err != nil {
		t.Fatalf("after a Take there is room: %v", err)
	}
	// Expiry (by the store's clock) makes room too.
	now = now.Add(2 * time.Minute)
	if err := s.Put(ctx, "later", []byte("v"), time.Minute); err != nil {
		t.Fatalf("expired entries were not dropped to make room: %v", err)
	}
	if s.Len() != 1 {
		t.Fatalf("Len after the sweep = %d, want 1", s.Len())
	}
}

// TestMemoryMaxEntriesExactUnderConcurrency: many goroutines inserting
// distinct keys at once never push the store past its bound.
func TestMemoryMaxEntriesExactUnderConcurrency(t *testing.T) {
	const bound = 100
	s := store.NewMemory(store.WithMaxEntries(bound))
	ctx := t.Context()
	var stored, full atomic.Int64
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				err := s.Put(ctx, "g"+strconv.Itoa(g)+"-"+strconv.Itoa(i), []byte("v"), time.Minute)
				switch {
				case err == nil:
					stored.Add(1)
				case errors.Is(err, store.ErrFull):
					full.Add(1)
				default:
					t.Error(err)
				}
				if n := s.Len(); n > bound {
					t.Errorf("Len %d exceeds the bound %d", n, bound)
				}
			}
		}()
	}
	wg.Wait()
	if stored.Load() != bound || full.Load() != 16*50-bound || s.Len() != bound {
		t.Fatalf("stored %d, refused %d, Len %d; want %d stored", stored.Load(), full.Load(), s.Len(), bound)
	}
}

func TestMemoryBounded(t *testing.T) {
	// A bound far above what the suite stores changes nothing of the contract.
	storetest.Run(t, func(*testing.T) store.Store { return store.NewMemory(store.WithMaxEntries(10_000)) })
}
