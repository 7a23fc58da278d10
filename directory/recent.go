package directory

import (
	"sync"
	"time"
)

// recentSet remembers, for a while and bounded in count, the last value
// stored under each key: what Profiles.Remember wrote lately. It is a cache
// of writes already made, so forgetting early only costs a write; it never
// answers "stored" for a value older than ttl, nor for a value other than
// the last one this process stored under the key.
type recentSet struct {
	mu  sync.Mutex
	max int
	ttl time.Duration
	m   map[string]recentValue
}

type recentValue struct {
	value string
	at    time.Time
}

func newRecentSet(max int, ttl time.Duration) *recentSet {
	return &recentSet{max: max, ttl: ttl, m: make(map[string]recentValue)}
}

// stored says whether value is what this process last stored under key,
// less than ttl ago.
func (r *recentSet) stored(key, value string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.m[key]
	return ok && v.value == value && now.Sub(v.at) < r.ttl && !now.Before(v.at)
}

func (r *recentSet) add(key, value string, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.m[key]; !ok && len(r.m) >= r.max {
		for k, v := range r.m {
			if now.Sub(v.at) >= r.ttl {
				delete(r.m, k)
			}
		}
		if len(r.m) >= r.max {
			clear(r.m)
		}
	}
	r.m[key] = recentValue{value: value, at: now}
}

// forget drops everything: rows were deleted behind the cache's back.
func (r *recentSet) forget() {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.m)
}
