package bridge

import (
	"context"
	"testing"
	"time"

	"github.com/wechat-oidc/wechat-oidc/config"
	"github.com/wechat-oidc/wechat-oidc/store"
)

// withRedis runs the harness on a real Redis at url (storetest), under a
// prefix of its own.
func withRedis(url string) harnessOption {
	return func(c *config.File) {
		c.Store = config.StoreConfig{Type: "redis", Redis: config.RedisConfig{URL: url, Prefix: "h-" + randomID(8) + ":"}}
	}
}

// openTestRedis opens a Redis store with short timeouts, so that an outage
// shows as errors within a fraction of a second rather than go-redis's
// default seconds.
func openTestRedis(t testing.TB, url, prefix string) *store.Redis {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := store.NewRedis(ctx, store.RedisOptions{URL: url, Prefix: prefix, DialTimeout: 300 * time.Millisecond, ReadTimeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
