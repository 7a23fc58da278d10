// Package storetest is the conformance suite for store.Store: what every
// implementation must do, checked the same way for each. A backend is
// correct when Run passes on it (under -race).
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wechat-oidc/wechat-oidc/store"
)

// Times used by the expiry tests. Expiry is checked by polling up to a
// generous deadline, never by asserting how long something took, so a slow
// machine makes the suite slower, not flaky.
const (
	shortTTL       = 80 * time.Millisecond
	longTTL        = 10 * time.Minute
	expiryDeadline = 5 * time.Second
	pollInterval   = 10 * time.Millisecond
)

// Run runs the conformance suite. newStore must return a fresh, empty store
// for each subtest (for a shared backend: under a key prefix of its own) and
// may register cleanups on the t it is given; the suite closes each store
// when its subtest ends, so Close must be safe to call twice.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"NotFound", testNotFound},
		{"EmptyAndBinaryValues", testEmptyAndBinaryValues},
		{"TTLExpiry", testTTLExpiry},
		{"PutResetsTTL", testPutResetsTTL},
		{"NonPositiveTTLRejected", testNonPositiveTTLRejected},
		{"PutNew", testPutNew},
		{"TakeOnce", testTakeOnce},
		{"TakeConcurrentExactlyOnce", testTakeConcurrentExactlyOnce},
		{"PutNewConcurrentExactlyOnce", testPutNewConcurrentExactlyOnce},
		{"UpdateCreatesWithTTL", testUpdateCreatesWithTTL},
		{"UpdateSerialised", testUpdateSerialised},
		{"UpdateFnErrorWritesNothing", testUpdateFnErrorWritesNothing},
		{"UpdateNilDeletes", testUpdateNilDeletes},
		{"ValuesIsolatedFromCaller", testValuesIsolated},
		{"Delete", testDelete},
		{"OddKeys", testOddKeys},
		{"CancelledContext", testCancelledContext},
		{"PingAndClose", testPingAndClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newStore(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

func mustPut(t *testing.T, s store.Store, key string, value []byte, ttl time.Duration) {
	t.Helper()
	if err := s.Put(t.Context(), key, value, ttl); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

// wantValue fails unless key holds want.
func wantValue(t *testing.T, s store.Store, key string, want []byte) {
	t.Helper()
	got, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v, want %q", key, err, want)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) = %q, want %q", key, got, want)
	}
}

// wantAbsent fails unless Get of key reports ErrNotFound.
func wantAbsent(t *testing.T, s store.Store, key string) {
	t.Helper()
	got, err := s.Get(t.Context(), key)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get(%q) = %q, %v; want ErrNotFound", key, got, err)
	}
}

// waitExpired polls until key is gone, failing after expiryDeadline.
func waitExpired(t *testing.T, s store.Store, key string) {
	t.Helper()
	deadline := time.Now().Add(expiryDeadline)
	for {
		_, err := s.Get(t.Context(), key)
		if errors.Is(err, store.ErrNotFound) {
			return
		}
		if err != nil {
			t.Fatalf("Get(%q) while waiting for expiry: %v", key, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("%q still present %v after a ttl of %v", key, expiryDeadline, shortTTL)
		}
		time.Sleep(pollInterval)
	}
}

func testRoundTrip(t *testing.T, s store.Store) {
	mustPut(t, s, "code", []byte("v1"), longTTL)
	wantValue(t, s, "code", []byte("v1"))
	mustPut(t, s, "code", []byte("v2"), longTTL)
	wantValue(t, s, "code", []byte("v2"))
	mustPut(t, s, "other", []byte("o"), longTTL)
	wantValue(t, s, "code", []byte("v2"))
	wantValue(t, s, "other", []byte("o"))
}

func testNotFound(t *testing.T, s store.Store) {
	ctx := t.Context()
	wantAbsent(t, s, "never-stored")
	if v, err := s.Take(ctx, "never-stored"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Take of absent key = %q, %v; want ErrNotFound", v, err)
	}
}

func testEmptyAndBinaryValues(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustPut(t, s, "empty", []byte{}, longTTL)
	wantValue(t, s, "empty", []byte{})
	mustPut(t, s, "nil", nil, longTTL)
	wantValue(t, s, "nil", []byte{})

	// Present-but-empty is not absent: Update must see a non-nil old.
	var sawNil bool
	err := s.Update(ctx, "empty", longTTL, func(old []byte) ([]byte, error) {
		sawNil = old == nil
		return old, nil
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	if sawNil {
		t.Fatal("Update of a present, empty value passed nil to fn; want a non-nil empty slice")
	}

	bin := []byte{0, 1, 2, 0xff, 0xfe, '\r', '\n', 0}
	mustPut(t, s, "binary", bin, longTTL)
	wantValue(t, s, "binary", bin)
	got, err := s.Take(ctx, "binary")
	if err != nil || !bytes.Equal(got, bin) {
		t.Fatalf("Take(binary) = %q, %v; want %q", got, err, bin)
	}
}

func testTTLExpiry(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustPut(t, s, "put", []byte("x"), shortTTL)
	if ok, err := s.PutNew(ctx, "putnew", []byte("x"), shortTTL); !ok || err != nil {
		t.Fatalf("PutNew = %v, %v; want true, nil", ok, err)
	}
	if err := s.Update(ctx, "update", shortTTL, func([]byte) ([]byte, error) { return []byte("x"), nil }); err != nil {
		t.Fatalf("Update: %v", err)
	}
	take := "take"
	mustPut(t, s, take, []byte("x"), shortTTL)
	mustPut(t, s, "lives", []byte("long"), longTTL)

	for _, k := range []string{"put", "putnew", "update", take} {
		waitExpired(t, s, k)
	}
	// Once expired, a key behaves as absent for every operation.
	if v, err := s.Take(ctx, take); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Take of expired key = %q, %v; want ErrNotFound", v, err)
	}
	if ok, err := s.PutNew(ctx, "putnew", []byte("again"), longTTL); !ok || err != nil {
		t.Fatalf("PutNew over an expired key = %v, %v; want true, nil", ok, err)
	}
	err := s.Update(ctx, "update", longTTL, func(old []byte) ([]byte, error) {
		if old != nil {
			return nil, fmt.Errorf("Update of an expired key saw old = %q, want nil", old)
		}
		return []byte("fresh"), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	wantValue(t, s, "update", []byte("fresh"))
	wantValue(t, s, "lives", []byte("long"))
}

func testPutResetsTTL(t *testing.T, s store.Store) {
	mustPut(t, s, "k", []byte("short"), shortTTL)
	mustPut(t, s, "k", []byte("long"), longTTL)
	mustPut(t, s, "probe", []byte("p"), shortTTL)
	waitExpired(t, s, "probe") // a key put after k's first Put has expired...
	time.Sleep(shortTTL)       // ...and then some
	wantValue(t, s, "k", []byte("long"))
}

func testNonPositiveTTLRejected(t *testing.T, s store.Store) {
	ctx := t.Context()
	for _, ttl := range []time.Duration{0, -time.Second} {
		if err := s.Put(ctx, "k", []byte("v"), ttl); err == nil {
			t.Errorf("Put with ttl %v: no error", ttl)
		}
		if ok, err := s.PutNew(ctx, "k", []byte("v"), ttl); err == nil || ok {
			t.Errorf("PutNew with ttl %v = %v, %v; want false and an error", ttl, ok, err)
		}
		called := false
		err := s.Update(ctx, "k", ttl, func([]byte) ([]byte, error) {
			called = true
			return []byte("v"), nil
		})
		if err == nil {
			t.Errorf("Update with ttl %v: no error", ttl)
		}
		if called {
			t.Errorf("Update with ttl %v called fn", ttl)
		}
	}
	wantAbsent(t, s, "k")
}

func testPutNew(t *testing.T, s store.Store) {
	ctx := t.Context()
	ok, err := s.PutNew(ctx, "k", []byte("first"), longTTL)
	if !ok || err != nil {
		t.Fatalf("first PutNew = %v, %v; want true, nil", ok, err)
	}
	ok, err = s.PutNew(ctx, "k", []byte("second"), longTTL)
	if ok || err != nil {
		t.Fatalf("second PutNew = %v, %v; want false, nil", ok, err)
	}
	wantValue(t, s, "k", []byte("first"))

	if err := s.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	ok, err = s.PutNew(ctx, "k", []byte("third"), longTTL)
	if !ok || err != nil {
		t.Fatalf("PutNew after Delete = %v, %v; want true, nil", ok, err)
	}
	wantValue(t, s, "k", []byte("third"))
}

func testTakeOnce(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustPut(t, s, "code", []byte("grant"), longTTL)
	got, err := s.Take(ctx, "code")
	if err != nil || string(got) != "grant" {
		t.Fatalf("Take = %q, %v; want grant", got, err)
	}
	if got, err := s.Take(ctx, "code"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second Take = %q, %v; want ErrNotFound", got, err)
	}
	wantAbsent(t, s, "code")
}

// raceAll runs fn from n goroutines released together, and waits for them.
func raceAll(n int, fn func(i int)) {
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	ready.Add(n)
	done.Add(n)
	for i := range n {
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			fn(i)
		}()
	}
	ready.Wait()
	close(start)
	done.Wait()
}

func testTakeConcurrentExactlyOnce(t *testing.T, s store.Store) {
	const goroutines, rounds = 50, 10
	ctx := t.Context()
	for round := range rounds {
		key := "code-" + strconv.Itoa(round)
		want := "grant-" + strconv.Itoa(round)
		mustPut(t, s, key, []byte(want), longTTL)
		var winners atomic.Int32
		var errs sync.Map
		raceAll(goroutines, func(i int) {
			got, err := s.Take(ctx, key)
			switch {
			case err == nil && string(got) == want:
				winners.Add(1)
			case errors.Is(err, store.ErrNotFound):
			default:
				errs.Store(i, fmt.Sprintf("Take = %q, %v", got, err))
			}
		})
		errs.Range(func(_, v any) bool { t.Error(v); return true })
		if n := winners.Load(); n != 1 {
			t.Fatalf("round %d: %d of %d concurrent Takes got the value; want exactly 1", round, n, goroutines)
		}
	}
}

func testPutNewConcurrentExactlyOnce(t *testing.T, s store.Store) {
	const goroutines = 50
	ctx := t.Context()
	var winners atomic.Int32
	var winner atomic.Int32
	raceAll(goroutines, func(i int) {
		ok, err := s.PutNew(ctx, "session", []byte(strconv.Itoa(i)), longTTL)
		if err != nil {
			t.Errorf("PutNew: %v", err)
		}
		if ok {
			winners.Add(1)
			winner.Store(int32(i))
		}
	})
	if n := winners.Load(); n != 1 {
		t.Fatalf("%d of %d concurrent PutNews stored; want exactly 1", n, goroutines)
	}
	wantValue(t, s, "session", []byte(strconv.Itoa(int(winner.Load()))))
}

func testUpdateCreatesWithTTL(t *testing.T, s store.Store) {
	err := s.Update(t.Context(), "family", shortTTL, func(old []byte) ([]byte, error) {
		if old != nil {
			return nil, fmt.Errorf("old = %q for an absent key, want nil", old)
		}
		return []byte("gen-1"), nil
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	wantValue(t, s, "family", []byte("gen-1"))
	waitExpired(t, s, "family")
}

func testUpdateSerialised(t *testing.T, s store.Store) {
	const goroutines, increments = 20, 10
	ctx := t.Context()
	raceAll(goroutines, func(int) {
		for range increments {
			err := s.Update(ctx, "counter", longTTL, func(old []byte) ([]byte, error) {
				n := 0
				if old != nil {
					var err error
					if n, err = strconv.Atoi(string(old)); err != nil {
						return nil, err
					}
				}
				return []byte(strconv.Itoa(n + 1)), nil
			})
			if err != nil {
				t.Errorf("Update: %v", err)
				return
			}
		}
	})
	wantValue(t, s, "counter", []byte(strconv.Itoa(goroutines*increments)))
}

func testUpdateFnErrorWritesNothing(t *testing.T, s store.Store) {
	ctx := t.Context()
	refused := errors.New("refresh token reused")
	mustPut(t, s, "family", []byte("gen-1"), longTTL)
	err := s.Update(ctx, "family", longTTL, func(old []byte) ([]byte, error) {
		old[0] = 'X' // scribbling on old must not leak into the store either
		return []byte("gen-2"), refused
	})
	if !errors.Is(err, refused) {
		t.Fatalf("Update = %v; want fn's error %v", err, refused)
	}
	wantValue(t, s, "family", []byte("gen-1"))

	err = s.Update(ctx, "absent", longTTL, func([]byte) ([]byte, error) {
		return []byte("v"), refused
	})
	if !errors.Is(err, refused) {
		t.Fatalf("Update of absent key = %v; want fn's error", err)
	}
	wantAbsent(t, s, "absent")
}

func testUpdateNilDeletes(t *testing.T, s store.Store) {
	ctx := t.Context()
	mustPut(t, s, "session", []byte("alive"), longTTL)
	if err := s.Update(ctx, "session", longTTL, func([]byte) ([]byte, error) { return nil, nil }); err != nil {
		t.Fatalf("Update: %v", err)
	}
	wantAbsent(t, s, "session")
	// On an absent key, a nil result leaves it absent.
	if err := s.Update(ctx, "session", longTTL, func([]byte) ([]byte, error) { return nil, nil }); err != nil {
		t.Fatalf("Update of absent key: %v", err)
	}
	wantAbsent(t, s, "session")
}

func testValuesIsolated(t *testing.T, s store.Store) {
	ctx := t.Context()

	in := []byte("original")
	mustPut(t, s, "put", in, longTTL)
	copy(in, "XXXXXXXX")
	wantValue(t, s, "put", []byte("original"))

	in = []byte("original")
	if ok, err := s.PutNew(ctx, "putnew", in, longTTL); !ok || err != nil {
		t.Fatalf("PutNew = %v, %v", ok, err)
	}
	copy(in, "XXXXXXXX")
	wantValue(t, s, "putnew", []byte("original"))

	out, err := s.Get(ctx, "put")
	if err != nil {
		t.Fatal(err)
	}
	copy(out, "XXXXXXXX")
	wantValue(t, s, "put", []byte("original"))

	var kept []byte
	err = s.Update(ctx, "put", longTTL, func(old []byte) ([]byte, error) {
		copy(old, "XXXXXXXX")
		kept = []byte("updated!")
		return kept, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	copy(kept, "XXXXXXXX")
	wantValue(t, s, "put", []byte("updated!"))

	taken, err := s.Take(ctx, "putnew")
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "putnew", []byte("next"), longTTL)
	copy(taken, "XXXX")
	wantValue(t, s, "putnew", []byte("next"))
}

func testDelete(t *testing.T, s store.Store) {
	ctx := t.Context()
	if err := s.Delete(ctx, "absent"); err != nil {
		t.Fatalf("Delete of absent key: %v; want nil", err)
	}
	mustPut(t, s, "session", []byte("v"), longTTL)
	mustPut(t, s, "session2", []byte("w"), longTTL)
	if err := s.Delete(ctx, "session"); err != nil {
		t.Fatal(err)
	}
	wantAbsent(t, s, "session")
	wantValue(t, s, "session2", []byte("w"))
	if err := s.Delete(ctx, "session"); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
}

func testOddKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	keys := []string{
		"a:b:c",
		"a:b",
		"with space",
		"with space ",
		"ünïcödé-鍵-🔑",
		"tab\tnew\nline\r",
		"nul\x00byte",
		"\xff\xfe not utf-8",
		"*?[glob]",
		"",
		strings.Repeat("long", 500),
	}
	for i, k := range keys {
		mustPut(t, s, k, []byte(strconv.Itoa(i)), longTTL)
	}
	for i, k := range keys {
		wantValue(t, s, k, []byte(strconv.Itoa(i)))
	}
	for i, k := range keys {
		got, err := s.Take(ctx, k)
		if err != nil || string(got) != strconv.Itoa(i) {
			t.Fatalf("Take(%q) = %q, %v; want %d", k, got, err, i)
		}
		wantAbsent(t, s, k)
	}
}

func testCancelledContext(t *testing.T, s store.Store) {
	mustPut(t, s, "k", []byte("v"), longTTL)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.Get(ctx, "k"); err == nil {
		t.Error("Get with a cancelled context: no error")
	}
	if err := s.Put(ctx, "k", []byte("changed"), longTTL); err == nil {
		t.Error("Put with a cancelled context: no error")
	}
	called := false
	err := s.Update(ctx, "k", longTTL, func([]byte) ([]byte, error) {
		called = true
		return []byte("changed"), nil
	})
	if err == nil {
		t.Error("Update with a cancelled context: no error")
	}
	if called {
		t.Error("Update with a cancelled context called fn")
	}
	wantValue(t, s, "k", []byte("v"))
}

func testPingAndClose(t *testing.T, s store.Store) {
	ctx := t.Context()
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Ping(ctx); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Ping after Close = %v; want ErrClosed", err)
	}
	if err := s.Put(ctx, "k", []byte("v"), longTTL); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Put after Close = %v; want ErrClosed", err)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Get after Close = %v; want ErrClosed", err)
	}
	// The suite's cleanup closes s a second time.
}
