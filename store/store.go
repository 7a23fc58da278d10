package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrNotFound is returned by Get and Take when the key is absent or expired.
var ErrNotFound = errors.New("store: not found")

// ErrConflict is returned by Update when it gave up after retries because
// other writers kept changing the key (Redis only; Memory never conflicts).
var ErrConflict = errors.New("store: conflict")

// ErrClosed is returned by every operation on a store after Close.
var ErrClosed = errors.New("store: closed")

// Store is a key-value store with a time to live on every entry.
//
// Keys are arbitrary strings (any bytes, including ":", spaces and non-ASCII).
// Values are copied: a caller may change a slice it passed in or got back
// without changing what is stored. A nil value is stored as an empty one.
type Store interface {
	// Put stores value under key for ttl, replacing any value and ttl it had.
	// ttl must be > 0.
	Put(ctx context.Context, key string, value []byte, ttl time.Duration) error

	// PutNew stores value under key for ttl only if key is absent (or
	// expired) and reports whether it stored. ttl must be > 0.
	PutNew(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error)

	// Get returns the value under key, or ErrNotFound when it is absent or
	// expired.
	Get(ctx context.Context, key string) ([]byte, error)

	// Take gets and deletes the value under key atomically: of many
	// concurrent Takes of one key, exactly one gets the value and the others
	// get ErrNotFound.
	Take(ctx context.Context, key string) ([]byte, error)

	// Delete removes key. Deleting an absent key is not an error.
	Delete(ctx context.Context, key string) error

	// Update reads the current value under key (nil if absent, a non-nil
	// empty slice if present and empty), calls fn with it and stores fn's
	// result for ttl. If fn returns a nil value and a nil error, the key is
	// deleted. If fn returns an error, nothing is written and Update returns
	// that error unchanged. ttl must be > 0.
	//
	// Concurrent Updates of one key are serialised: none is lost. fn may be
	// called more than once (Redis retries when another writer got there
	// first; after bounded retries Update returns ErrConflict), so it must
	// only compute its result from old, without side effects, and it must
	// not call the store.
	Update(ctx context.Context, key string, ttl time.Duration, fn func(old []byte) ([]byte, error)) error

	// Ping checks that the store is reachable.
	Ping(ctx context.Context) error

	// Close releases the store's resources. Later operations return
	// ErrClosed; closing twice is not an error.
	Close() error
}

// checkTTL rejects a time to live that would store an entry that never
// expires (<= 0). Every entry here is a credential or a session: it must end.
func checkTTL(ttl time.Duration) error {
	if ttl <= 0 {
		return fmt.Errorf("store: ttl must be > 0, got %v", ttl)
	}
	return nil
}

// clone copies b into a new non-nil slice, so that stored values never share
// memory with a caller's.
func clone(b []byte) []byte {
	out := make([]byte, len(b))
	copy(out, b)
	return out
}
