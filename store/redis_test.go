package store_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wechat-oidc/wechat-oidc/store"
	"github.com/wechat-oidc/wechat-oidc/store/storetest"
)

// startRedis is storetest.StartRedis (shared with the bridge's tests).
func startRedis(tb testing.TB) string { return storetest.StartRedis(tb) }

var prefixSeq atomic.Int64

// uniquePrefix keeps tests sharing one server out of each other's keys.
func uniquePrefix(tb testing.TB) string {
	return fmt.Sprintf("test-%d-%s:", prefixSeq.Add(1), strings.ReplaceAll(tb.Name(), "/", "."))
}

func newRedis(tb testing.TB, addr, prefix string) *store.Redis {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := store.NewRedis(ctx, store.RedisOptions{URL: "redis://" + addr, Prefix: prefix})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = r.Close() })
	return r
}

func TestRedis(t *testing.T) {
	addr := startRedis(t)
	storetest.Run(t, func(t *testing.T) store.Store { return newRedis(t, addr, uniquePrefix(t)) })
}

// TestRedisReplicas checks what Redis is for: two replicas, each with its own
// client, share state under the same prefix.
func TestRedisReplicas(t *testing.T) {
	addr := startRedis(t)
	prefix := uniquePrefix(t)
	a, b := newRedis(t, addr, prefix), newRedis(t, addr, prefix)
	ctx := t.Context()

	if err := a.Put(ctx, "session", []byte("from-a"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Get(ctx, "session"); err != nil || string(got) != "from-a" {
		t.Fatalf("replica b Get = %q, %v; want from-a", got, err)
	}
	if ok, err := b.PutNew(ctx, "session", []byte("from-b"), time.Minute); ok || err != nil {
		t.Fatalf("replica b PutNew over a's key = %v, %v; want false, nil", ok, err)
	}
	if err := b.Delete(ctx, "session"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Get(ctx, "session"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("replica a Get after b's Delete: %v; want ErrNotFound", err)
	}

	// Another prefix is another tenant: it sees nothing.
	other := newRedis(t, addr, uniquePrefix(t))
	if err := a.Put(ctx, "code", []byte("x"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Get(ctx, "code"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("store with another prefix sees a's key: %v", err)
	}

	// An authorization code redeemed at both replicas at once is redeemed once.
	const goroutines, rounds = 50, 10
	for round := range rounds {
		key := "code-" + strconv.Itoa(round)
		if err := a.Put(ctx, key, []byte("grant"), time.Minute); err != nil {
			t.Fatal(err)
		}
		var winners atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range goroutines {
			replica := a
			if i%2 == 1 {
				replica = b
			}
			wg.Go(func() {
				<-start
				got, err := replica.Take(ctx, key)
				switch {
				case err == nil && string(got) == "grant":
					winners.Add(1)
				case errors.Is(err, store.ErrNotFound):
				default:
					t.Errorf("Take = %q, %v", got, err)
				}
			})
		}
		close(start)
		wg.Wait()
		if n := winners.Load(); n != 1 {
			t.Fatalf("round %d: %d Takes across two replicas got the code; want exactly 1", round, n)
		}
	}

	// Updates from both replicas are serialised.
	var wg sync.WaitGroup
	for i := range 10 {
		replica := a
		if i%2 == 1 {
			replica = b
		}
		wg.Go(func() {
			for range 10 {
				err := replica.Update(ctx, "counter", time.Minute, func(old []byte) ([]byte, error) {
					n, _ := strconv.Atoi(string(old))
					return []byte(strconv.Itoa(n + 1)), nil
				})
				if err != nil {
					t.Errorf("Update: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if got, err := b.Get(ctx, "counter"); err != nil || string(got) != "100" {
		t.Fatalf("counter = %q, %v; want 100", got, err)
	}
}

// TestRedisUpdateConflict checks that Update gives up with ErrConflict, and
// writes nothing, when another writer changes the key on every attempt.
func TestRedisUpdateConflict(t *testing.T) {
	addr := startRedis(t)
	prefix := uniquePrefix(t)
	a, b := newRedis(t, addr, prefix), newRedis(t, addr, prefix)
	ctx := t.Context()

	calls := 0
	err := a.Update(ctx, "family", time.Minute, func(old []byte) ([]byte, error) {
		calls++
		// The other replica writes between our read and our write.
		if err := b.Put(ctx, "family", []byte("b-"+strconv.Itoa(calls)), time.Minute); err != nil {
			return nil, err
		}
		return []byte("from-a"), nil
	})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Update = %v; want ErrConflict", err)
	}
	if calls < 2 {
		t.Fatalf("fn called %d times; want retries before ErrConflict", calls)
	}
	if got, err := a.Get(ctx, "family"); err != nil || string(got) != "b-"+strconv.Itoa(calls) {
		t.Fatalf("after conflict, value = %q, %v; want the other writer's last value", got, err)
	}
}

func TestNewRedisErrors(t *testing.T) {
	addr := startRedis(t)
	ctx := t.Context()
	const password = "s3cret-do-not-log"

	// Wrong credentials: the error names the address, never the password.
	_, err := store.NewRedis(ctx, store.RedisOptions{URL: "redis://nobody:" + password + "@" + addr})
	if err == nil {
		t.Fatal("NewRedis with a wrong user and password: no error")
	}
	if !strings.Contains(err.Error(), addr) || strings.Contains(err.Error(), password) {
		t.Fatalf("NewRedis error %q: want the address %s and not the password", err, addr)
	}

	// Nothing listening.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	_, err = store.NewRedis(ctx, store.RedisOptions{URL: "redis://:" + password + "@" + dead, DialTimeout: time.Second})
	if err == nil {
		t.Fatalf("NewRedis to %s where nothing listens: no error", dead)
	}
	if !strings.Contains(err.Error(), dead) || strings.Contains(err.Error(), password) {
		t.Fatalf("NewRedis error %q: want the address %s and not the password", err, dead)
	}

	for _, tc := range []struct {
		name string
		o    store.RedisOptions
		want string
	}{
		{"no url", store.RedisOptions{}, "url is empty"},
		{"host:port without scheme", store.RedisOptions{URL: addr}, "redis://"},
		{"other scheme", store.RedisOptions{URL: "http://" + addr}, `scheme "http"`},
		{"ca_file without rediss", store.RedisOptions{URL: "redis://" + addr, CAFile: "ca.pem"}, "rediss://"},
		{"bad db", store.RedisOptions{URL: "redis://:" + password + "@" + addr + "/x"}, "invalid database"},
		{"sentinel with a host", store.RedisOptions{URL: "redis://" + addr, Sentinel: &store.RedisSentinel{Master: "m", Addrs: []string{addr}}}, "leave the host out"},
		{"sentinel without master", store.RedisOptions{URL: "redis:///0", Sentinel: &store.RedisSentinel{Addrs: []string{addr}}}, "needs master"},
	} {
		_, err := store.NewRedis(ctx, tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), password) {
			t.Errorf("%s: NewRedis error %v; want one saying %q, without the password", tc.name, err, tc.want)
		}
	}
}

func TestRedisDefaultPrefix(t *testing.T) {
	addr := startRedis(t)
	ctx := t.Context()
	r := newRedis(t, addr, "")
	explicit := newRedis(t, addr, store.DefaultRedisPrefix)
	if err := r.Put(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if got, err := explicit.Get(ctx, "k"); err != nil || string(got) != "v" {
		t.Fatalf("store with prefix %q Get = %q, %v; want the default-prefixed key", store.DefaultRedisPrefix, got, err)
	}
}

func BenchmarkRedisPutGet(b *testing.B) {
	addr := startRedis(b)
	s := newRedis(b, addr, uniquePrefix(b))
	benchmarkPutGet(b, s)
}

// TestRedisTLS connects over rediss:// to a redis-server that accepts only
// TLS, trusting the test CA given as ca_file; without the CA the server's
// certificate is refused, and a plain redis:// connection gets nowhere.
func TestRedisTLS(t *testing.T) {
	srv := storetest.StartRedisTLS(t)
	ctx := t.Context()
	r, err := store.NewRedis(ctx, store.RedisOptions{URL: srv.URL(), CAFile: srv.CAFile, Prefix: uniquePrefix(t)})
	if err != nil {
		t.Fatalf("NewRedis over TLS with the CA: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	storetest.Run(t, func(t *testing.T) store.Store {
		r, err := store.NewRedis(ctx, store.RedisOptions{URL: srv.URL(), CAFile: srv.CAFile, Prefix: uniquePrefix(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return r
	})

	if _, err := store.NewRedis(ctx, store.RedisOptions{URL: srv.URL(), DialTimeout: time.Second}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("NewRedis over TLS without the CA: %v, want a certificate error", err)
	}
	if _, err := store.NewRedis(ctx, store.RedisOptions{URL: "redis://" + srv.Addr, DialTimeout: time.Second, ReadTimeout: time.Second}); err == nil {
		t.Fatal("plain redis:// to a TLS-only port: no error")
	}
}

func TestRedisCAFileErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := dir + "/not.pem"
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ file, want string }{
		{dir + "/missing.pem", "ca_file"},
		{notPEM, "holds no PEM certificate"},
	} {
		_, err := store.NewRedis(t.Context(), store.RedisOptions{URL: "rediss://127.0.0.1:1", CAFile: tc.file})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ca_file %s: %v, want %q", tc.file, err, tc.want)
		}
	}
}

// TestRedisSentinel finds the master through a real Redis Sentinel.
func TestRedisSentinel(t *testing.T) {
	master := storetest.StartRedisServer(t)
	sentinel := storetest.StartSentinel(t, master, "mymaster")
	ctx := t.Context()
	prefix := uniquePrefix(t)
	r, err := store.NewRedis(ctx, store.RedisOptions{URL: "redis:///0", Prefix: prefix,
		Sentinel: &store.RedisSentinel{Master: "mymaster", Addrs: []string{sentinel}}})
	if err != nil {
		t.Fatalf("NewRedis through the sentinel: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	if !strings.Contains(r.String(), "mymaster") {
		t.Fatalf("String() = %q, want the master's name", r.String())
	}
	if err := r.Put(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	direct := newRedis(t, master.Addr, prefix)
	if got, err := direct.Get(ctx, "k"); err != nil || string(got) != "v" {
		t.Fatalf("the master has %q, %v; want the value written through the sentinel", got, err)
	}
	if _, err := store.NewRedis(ctx, store.RedisOptions{URL: "redis:///0", DialTimeout: time.Second,
		Sentinel: &store.RedisSentinel{Master: "nosuchmaster", Addrs: []string{sentinel}}}); err == nil {
		t.Fatal("an unknown master name: no error")
	}
}

// TestRedisSentinelOverTLS: rediss:// with a sentinel — the sentinels and
// the master they name all speak TLS only, and the one ca_file verifies
// each of them under its own address.
func TestRedisSentinelOverTLS(t *testing.T) {
	master := storetest.StartRedisTLS(t)
	sentinel := storetest.StartSentinel(t, master, "mymaster")
	ctx := t.Context()
	prefix := uniquePrefix(t)
	r, err := store.NewRedis(ctx, store.RedisOptions{URL: "rediss:///0", CAFile: master.CAFile, Prefix: prefix,
		Sentinel: &store.RedisSentinel{Master: "mymaster", Addrs: []string{sentinel}}})
	if err != nil {
		t.Fatalf("NewRedis through a TLS sentinel: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	if err := r.Put(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatal(err)
	}
	direct, err := store.NewRedis(ctx, store.RedisOptions{URL: master.URL(), CAFile: master.CAFile, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { direct.Close() })
	if got, err := direct.Get(ctx, "k"); err != nil || string(got) != "v" {
		t.Fatalf("the master has %q, %v; want the value written through the sentinel", got, err)
	}
	// Without the CA the sentinel's certificate is refused.
	if _, err := store.NewRedis(ctx, store.RedisOptions{URL: "rediss:///0", DialTimeout: time.Second,
		Sentinel: &store.RedisSentinel{Master: "mymaster", Addrs: []string{sentinel}}}); err == nil {
		t.Fatal("a TLS sentinel without the CA: no error")
	}
}

// TestRedisComesBack: a store whose server went away fails its operations,
// and works again by itself once the server is back on the same address.
func TestRedisComesBack(t *testing.T) {
	srv := storetest.StartRedisServer(t)
	var logs syncBuffer
	store.SetRedisLogger(slog.New(slog.NewTextHandler(&logs, nil)))
	t.Cleanup(func() { store.SetRedisLogger(slog.New(slog.NewTextHandler(io.Discard, nil))) })
	r := newRedis(t, srv.Addr, uniquePrefix(t))
	ctx := t.Context()
	srv.Stop()
	if err := r.Put(ctx, "k", []byte("v"), time.Minute); err == nil {
		t.Fatal("Put while the server is down: no error")
	}
	if err := r.Ping(ctx); err == nil {
		t.Fatal("Ping while the server is down: no error")
	}
	// go-redis's own lines (its failed dials) come through the given logger.
	if !strings.Contains(logs.String(), "component=go-redis") {
		t.Errorf("no go-redis line reached the logger: %q", logs.String())
	}
	srv.Start()
	if err := r.Ping(ctx); err != nil {
		t.Fatalf("Ping after the server came back: %v", err)
	}
	if err := r.Put(ctx, "k", []byte("v"), time.Minute); err != nil {
		t.Fatalf("Put after the server came back: %v", err)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRedisUpdateFnErrorLeavesNothingWatched: an Update whose fn fails
// returns its connection to the pool; had the connection kept watching the
// key, the next Update on it would abort (and redo its fn) when another
// replica changed that key meanwhile.
func TestRedisUpdateFnErrorLeavesNothingWatched(t *testing.T) {
	addr := startRedis(t)
	prefix := uniquePrefix(t)
	a, b := newRedis(t, addr, prefix), newRedis(t, addr, prefix)
	ctx := t.Context()
	refused := errors.New("refused")
	for i := range 3 {
		if err := a.Update(ctx, "k", time.Minute, func([]byte) ([]byte, error) { return nil, refused }); !errors.Is(err, refused) {
			t.Fatalf("Update = %v; want fn's error", err)
		}
		if err := b.Put(ctx, "k", []byte(strconv.Itoa(i)), time.Minute); err != nil {
			t.Fatal(err)
		}
		calls := 0
		if err := a.Update(ctx, "other", time.Minute, func([]byte) ([]byte, error) { calls++; return []byte("v"), nil }); err != nil {
			t.Fatal(err)
		}
		if calls != 1 {
			t.Fatalf("the next Update ran fn %d times: its connection still watched the key of the failed Update", calls)
		}
	}
}
