package store

import (
	"context"
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

// Memory is a Store held in this process's memory (go-cache). It is the
// default for a single replica; its contents are lost on restart.
type Memory struct {
	now     func() time.Time
	cache   *cache.Cache
	seed    maphash.Seed
	stripes [memoryStripes]sync.Mutex
	closed  atomic.Bool
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory { return NewMemoryClock(nil) }

// NewMemoryClock returns an empty in-memory store whose entries expire by
// the clock now (nil: time.Now), so that tests can drive expiry without
// sleeping. Entries also expire by real time, which is what frees their
// memory; a clock that runs ahead of real time (a test advancing it) makes
// them expire earlier, never later.
func NewMemoryClock(now func() time.Time) *Memory {
	if now == nil {
		now = time.Now
	}
	return &Memory{
		now:   now,
		cache: cache.New(cache.NoExpiration, memoryCleanupInterval),
		seed:  maphash.MakeSeed(),
	}
}

// entry is a stored value with its expiry by the store's clock.
type entry struct {
	value   []byte
	expires int64 // unix nanoseconds
}

func (m *Memory) set(key string, value []byte, ttl time.Duration) {
	m.cache.Set(key, entry{value: clone(value), expires: m.now().Add(ttl).UnixNano()}, ttl)
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
	m.set(key, value, ttl)
	return nil
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
	m.set(key, value, ttl)
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
	m.set(key, value, ttl)
	return nil
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
