package store

import (
	"context"
	"errors"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/patrickmn/go-cache"
)

// memoryCleanupInterval is how often the janitor drops expired entries.
// Reads never see an expired entry regardless: go-cache checks the expiry on
// every lookup, so this only bounds memory held by entries nobody reads.
const memoryCleanupInterval = time.Minute

// memoryStripes is the number of key-striped mutexes that make Take, PutNew
// and Update atomic. Different keys rarely share a stripe, so unrelated
// logins do not wait for each other.
const memoryStripes = 256

// ErrFull is returned by Put, PutNew and Update of a Memory store bounded
// with WithMaxEntries when storing a new key would exceed the bound. Keys
// already present may still be replaced, read, taken and deleted.
var ErrFull = errors.New("store: the memory store is full (it holds its maximum number of entries); new entries are refused until some expire")

// Memory is a Store held in this process's memory (go-cache). It is the
// default for a single replica; its contents are lost on restart.
type Memory struct {
	now     func() time.Time
	cache   *cache.Cache
	seed    maphash.Seed
	stripes [memoryStripes]sync.Mutex
	closed  atomic.Bool

	// max bounds the number of entries (0: unbounded). admit serialises
	// the insertion of new keys so that the bound is exact.
	max   int
	admit sync.Mutex
	swept time.Time // last sweep of expired entries when full (by now)
}

var _ Store = (*Memory)(nil)

// MemoryOption configures a Memory store.
type MemoryOption func(*Memory)

// WithMaxEntries bounds the number of entries the store holds: once it
// holds n, storing a new key fails with ErrFull (after dropping entries that
// have expired). n <= 0 means unbounded. A store shared by everything the
// provider keeps needs a bound well above its normal use; it is what keeps
// a flood of requests from exhausting the process's memory.
func WithMaxEntries(n int) MemoryOption { return func(m *Memory) { m.max = max(n, 0) } }

// WithClock makes entries expire by the clock now instead of time.Now (see
// NewMemoryClock).
func WithClock(now func() time.Time) MemoryOption {
	return func(m *Memory) {
		if now != nil {
			m.now = now
		}
	}
}

// NewMemory returns an empty in-memory store.
func NewMemory(opts ...MemoryOption) *Memory {
	m := &Memory{
		now:   time.Now,
		cache: cache.New(cache.NoExpiration, memoryCleanupInterval),
		seed:  maphash.MakeSeed(),
	}
	for _, o := range opts {
		o(m)
	}
	return m
}

// NewMemoryClock returns an empty in-memory store whose entries expire by
// the clock now (nil: time.Now), so that tests can drive expiry without
// sleeping. Entries also expire by real time, which is what frees their
// memory; a clock that runs ahead of real time (a test advancing it) makes
// them expire earlier, never later.
func NewMemoryClock(now func() time.Time, opts ...MemoryOption) *Memory {
	return NewMemory(append(opts, WithClock(now))...)
}

// Len is the number of entries held, including expired ones not yet
// dropped (the janitor runs every minute; a full store drops them at once).
func (m *Memory) Len() int { return m.cache.ItemCount() }

// entry is a stored value with its expiry by the store's clock.
type entry struct {
	value   []byte
	expires int64 // unix nanoseconds
}

// set stores value under key; the caller holds key's stripe lock. A new
// key in a bounded store is admitted only below the bound.
func (m *Memory) set(key string, value []byte, ttl time.Duration) error {
	e := entry{value: clone(value), expires: m.now().Add(ttl).UnixNano()}
	if m.max == 0 {
		m.cache.Set(key, e, ttl)
		return nil
	}
	// Under m.admit, so that the count cannot change between the check
	// and the write (go-cache serialises its writes on one lock anyway).
	m.admit.Lock()
	defer m.admit.Unlock()
	if _, present := m.cache.Get(key); present {
		m.cache.Set(key, e, ttl) // a replacement does not change the count
		return nil
	}
	if m.cache.ItemCount() >= m.max {
		m.sweep()
		if m.cache.ItemCount() >= m.max {
			return ErrFull
		}
	}
	m.cache.Set(key, e, ttl)
	return nil
}

// sweep drops expired entries, at most once a second (it walks every
// entry); the caller holds m.admit. Entries expired by real time go at once;
// those expired by the store's clock are dropped under their stripe lock,
// skipping stripes busy right now (one of them is the caller's).
func (m *Memory) sweep() {
	now := m.now()
	if now.Sub(m.swept) < time.Second {
		return
	}
	m.swept = now
	m.cache.DeleteExpired()
	for k, it := range m.cache.Items() {
		if e, ok := it.Object.(entry); !ok || now.UnixNano() < e.expires {
			continue
		}
		mu := &m.stripes[maphash.String(m.seed, k)%memoryStripes]
		if !mu.TryLock() {
			continue
		}
		if _, live := m.get(k); !live {
			m.cache.Delete(k)
		}
		mu.Unlock()
	}
}

// lock takes the mutex of key's stripe. Every write holds it, so a
// read-modify-write under it (Take, PutNew, Update) cannot interleave with
// another write of the same key. Get does not need it: go-cache's own lock
// makes single reads consistent.
func (m *Memory) lock(key string) func() {
	mu := &m.stripes[maphash.String(m.seed, key)%memoryStripes]
	mu.Lock()
	return mu.Unlock
}

// check reports why an operation may not run: a closed store or a context
// already done.
func (m *Memory) check(ctx context.Context) error {
	if m.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
}

// get returns the stored slice itself; callers must clone before handing it out.
func (m *Memory) get(key string) ([]byte, bool) {
	v, ok := m.cache.Get(key)
	if !ok {
		return nil, false
	}
	e := v.(entry)
	if m.now().UnixNano() >= e.expires {
		return nil, false
	}
	return e.value, true
}

// Put implements Store.
func (m *Memory) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := checkTTL(ttl); err != nil {
		return err
	}
	if err := m.check(ctx); err != nil {
		return err
	}
	defer m.lock(key)()
	return m.set(key, value, ttl)
}

// PutNew implements Store.
func (m *Memory) PutNew(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := checkTTL(ttl); err != nil {
		return false, err
	}
	if err := m.check(ctx); err != nil {
		return false, err
	}
	defer m.lock(key)()
	if _, live := m.get(key); live {
		return false, nil
	}
	if err := m.set(key, value, ttl); err != nil {
		return false, err
	}
	return true, nil
}

// Get implements Store.
func (m *Memory) Get(ctx context.Context, key string) ([]byte, error) {
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	v, ok := m.get(key)
	if !ok {
		return nil, ErrNotFound
	}
	return clone(v), nil
}

// Take implements Store.
func (m *Memory) Take(ctx context.Context, key string) ([]byte, error) {
	if err := m.check(ctx); err != nil {
		return nil, err
	}
	defer m.lock(key)()
	v, ok := m.get(key)
	if !ok {
		return nil, ErrNotFound
	}
	m.cache.Delete(key)
	return clone(v), nil
}

// Delete implements Store.
func (m *Memory) Delete(ctx context.Context, key string) error {
	if err := m.check(ctx); err != nil {
		return err
	}
	defer m.lock(key)()
	m.cache.Delete(key)
	return nil
}

// Update implements Store. fn runs exactly once, under the key's stripe lock.
func (m *Memory) Update(ctx context.Context, key string, ttl time.Duration, fn func(old []byte) ([]byte, error)) error {
	if err := checkTTL(ttl); err != nil {
		return err
	}
	if err := m.check(ctx); err != nil {
		return err
	}
	defer m.lock(key)()
	var old []byte
	if v, ok := m.get(key); ok {
		old = clone(v)
	}
	value, err := fn(old)
	if err != nil {
		return err
	}
	if value == nil {
		m.cache.Delete(key)
		return nil
	}
	return m.set(key, value, ttl)
}

// Ping implements Store: a memory store is reachable until it is closed.
func (m *Memory) Ping(ctx context.Context) error {
	return m.check(ctx)
}

// Close implements Store: it drops every entry. The janitor goroutine stops
// when the store is garbage collected (go-cache's design).
func (m *Memory) Close() error {
	m.closed.Store(true)
	m.cache.Flush()
	return nil
}
