package store_test

import (
	"strconv"
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
