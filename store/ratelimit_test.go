package store_test

import (
	"testing"
	"time"
)

// TestRedisRateIsSharedByReplicas: two replicas' stores on one Redis draw
// from one bucket: a burst of 3 allows 3 requests in all, whichever replica
// takes them, and the refusal says how long to wait (about 1/rate).
func TestRedisRateIsSharedByReplicas(t *testing.T) {
	addr := startRedis(t)
	prefix := uniquePrefix(t)
	a, b := newRedis(t, addr, prefix), newRedis(t, addr, prefix)
	ctx := t.Context()
	allowed := 0
	for i := range 6 {
		st := a
		if i%2 == 1 {
			st = b
		}
		ok, wait, err := st.AllowRate(ctx, "client:app", 0.5, 3)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			allowed++
			continue
		}
		if wait <= 0 || wait > 2*time.Second+100*time.Millisecond {
			t.Errorf("refusal %d: wait %v, want at most 2s (rate 0.5/s)", i, wait)
		}
	}
	if allowed != 3 {
		t.Fatalf("%d of 6 requests allowed across two replicas, want the burst of 3", allowed)
	}
	// Another key has its own bucket.
	if ok, _, err := b.AllowRate(ctx, "client:other", 0.5, 3); !ok || err != nil {
		t.Fatalf("another key: %v %v", ok, err)
	}
	if _, _, err := a.AllowRate(ctx, "k", 0, 1); err == nil {
		t.Fatal("rate 0 accepted")
	}
}
