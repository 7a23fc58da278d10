package store

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRedisPrefix is put in front of every key when RedisOptions.Prefix is
// empty, so that the provider can share a Redis database with other programs.
const DefaultRedisPrefix = "wechat-oidc:"

// Update retries when a watched key changed between its read and its write.
// The backoff is jittered so that competing replicas do not retry in
// lockstep; the bound keeps a request from spinning forever on a hot key.
const (
	redisUpdateAttempts   = 32
	redisUpdateBackoffMin = time.Millisecond
	redisUpdateBackoffMax = 50 * time.Millisecond
)

// RedisOptions says how to reach the Redis server.
type RedisOptions struct {
	// URL is redis://[user:password@]host:port[/db], or rediss://... for
	// TLS. With Sentinel, its host is left out (redis://user:password@/db):
	// the master's address comes from the sentinels; the rest (credentials,
	// database, rediss) still applies.
	URL string
	// CAFile is a PEM file of the certificate authorities that sign the
	// server's certificate (rediss:// only); empty: the system's.
	CAFile string
	// Sentinel, when set, finds the master through Redis Sentinel.
	Sentinel *RedisSentinel
	// Prefix is put in front of every key; DefaultRedisPrefix when empty.
	// Replicas of one provider must use the same prefix to share state.
	Prefix string
	// DialTimeout and ReadTimeout default to go-redis's (5s and 3s) when zero.
	DialTimeout time.Duration
	ReadTimeout time.Duration
}

// RedisSentinel names a master monitored by Redis Sentinel.
type RedisSentinel struct {
	Master string   // the master's name in the sentinels' configuration
	Addrs  []string // host:port of sentinels (one is enough, more survive its loss)
	// Password authenticates to the sentinels (requirepass of sentinel.conf).
	Password string
}

// Redis is a Store in a Redis server (6.2 or later: Take uses GETDEL), shared
// by every replica that uses the same server, DB and prefix.
type Redis struct {
	client    redis.UniversalClient
	prefix    string
	where     string // the server or master, for messages (no credentials)
	closeOnce sync.Once
	closeErr  error
}

var _ Store = (*Redis)(nil)

// NewRedis connects to the server in o and pings it, so that a wrong address
// or password is reported at start rather than at the first login. Errors
// name the address, never the password.
func NewRedis(ctx context.Context, o RedisOptions) (*Redis, error) {
	uo, where, err := universalOptions(o)
	if err != nil {
		return nil, err
	}
	prefix := o.Prefix
	if prefix == "" {
		prefix = DefaultRedisPrefix
	}
	client := redis.NewUniversalClient(uo)
	r := &Redis{client: client, prefix: prefix, where: where}
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("store: redis at %s: ping: %w", where, err)
	}
	return r, nil
}

// String names the server (or the Sentinel master) without credentials.
func (r *Redis) String() string { return r.where }

// Client is the go-redis client, for the few features beyond Store that
// need Redis itself (a shared rate limiter's script).
func (r *Redis) Client() redis.UniversalClient { return r.client }

// universalOptions turns o into go-redis's options, and a description of
// the target for messages.
func universalOptions(o RedisOptions) (*redis.UniversalOptions, string, error) {
	if o.URL == "" {
		return nil, "", errors.New("store: redis url is empty: set it as redis://[user:password@]host:port[/db] (rediss:// for TLS)")
	}
	u, err := url.Parse(o.URL)
	if err != nil {
		// url's error quotes the URL, which may hold a password.
		return nil, "", errors.New("store: redis url is not a URL: write it as redis://[user:password@]host:port[/db]")
	}
	if u.Scheme != "redis" && u.Scheme != "rediss" {
		return nil, "", fmt.Errorf("store: redis url scheme %q: use redis:// (or rediss:// for TLS)", u.Scheme)
	}
	if o.CAFile != "" && u.Scheme != "rediss" {
		return nil, "", errors.New("store: a redis ca_file is set but the url is not rediss://: use rediss:// to connect over TLS, or remove ca_file")
	}
	parseable := *u
	if o.Sentinel != nil {
		if u.Host != "" {
			return nil, "", fmt.Errorf("store: with sentinel, leave the host out of the redis url (redis://user:password@/%s): the sentinels name the master", strings.TrimPrefix(u.Path, "/"))
		}
		parseable.Host = "sentinel-master" // ParseURL wants a host; the sentinels give the real one
	}
	po, err := redis.ParseURL(parseable.String())
	if err != nil {
		return nil, "", fmt.Errorf("store: redis url: %s", redactURLError(err, u))
	}
	if po.TLSConfig != nil && o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, "", fmt.Errorf("store: redis ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, "", fmt.Errorf("store: redis ca_file %s holds no PEM certificate: give the CA certificate that signed the server's", o.CAFile)
		}
		po.TLSConfig.RootCAs = pool
	}
	if po.TLSConfig != nil {
		po.TLSConfig.MinVersion = tls.VersionTLS12
	}
	uo := &redis.UniversalOptions{
		Addrs:       []string{po.Addr},
		Username:    po.Username,
		Password:    po.Password,
		DB:          po.DB,
		TLSConfig:   po.TLSConfig,
		DialTimeout: o.DialTimeout,
		ReadTimeout: o.ReadTimeout,
		// A request's deadline bounds its Redis calls too.
		ContextTimeoutEnabled: true,
	}
	where := fmt.Sprintf("%s://%s/%d", u.Scheme, po.Addr, po.DB)
	if s := o.Sentinel; s != nil {
		if s.Master == "" || len(s.Addrs) == 0 {
			return nil, "", errors.New("store: redis sentinel needs master (its name in sentinel.conf) and addrs (host:port of the sentinels)")
		}
		uo.MasterName = s.Master
		uo.Addrs = s.Addrs
		uo.SentinelPassword = s.Password
		if uo.TLSConfig != nil {
			uo.TLSConfig.ServerName = "" // each connection's own host
		}
		where = fmt.Sprintf("sentinel master %q via %s (db %d)", s.Master, strings.Join(s.Addrs, ","), po.DB)
	}
	return uo, where, nil
}

// redactURLError is err's message with the URL's password replaced.
func redactURLError(err error, u *url.URL) string {
	msg := err.Error()
	if p, ok := u.User.Password(); ok && p != "" {
		msg = strings.ReplaceAll(msg, p, "xxxxx")
	}
	return msg
}

// key maps a caller's key to the Redis key.
func (r *Redis) key(key string) string { return r.prefix + key }

// px is ttl in whole milliseconds, rounded up: Redis rejects PX 0, and an
// entry must never outlive less than it was asked to.
func px(ttl time.Duration) string {
	return strconv.FormatInt(int64((ttl+time.Millisecond-1)/time.Millisecond), 10)
}

// mapErr turns go-redis's errors into this package's.
func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, redis.Nil):
		return ErrNotFound
	case errors.Is(err, redis.ErrClosed):
		return ErrClosed
	default:
		return fmt.Errorf("store: redis: %w", err)
	}
}

// Put implements Store with SET key value PX ttl.
func (r *Redis) Put(ctx context.Context, key string, value []byte, ttl time.Duration) error {
	if err := checkTTL(ttl); err != nil {
		return err
	}
	return mapErr(r.client.Do(ctx, "set", r.key(key), nonNil(value), "px", px(ttl)).Err())
}

// PutNew implements Store with SET key value PX ttl NX.
func (r *Redis) PutNew(ctx context.Context, key string, value []byte, ttl time.Duration) (bool, error) {
	if err := checkTTL(ttl); err != nil {
		return false, err
	}
	err := r.client.Do(ctx, "set", r.key(key), nonNil(value), "px", px(ttl), "nx").Err()
	if errors.Is(err, redis.Nil) {
		return false, nil // NX: the key exists
	}
	if err != nil {
		return false, mapErr(err)
	}
	return true, nil
}

// Get implements Store.
func (r *Redis) Get(ctx context.Context, key string) ([]byte, error) {
	v, err := r.client.Get(ctx, r.key(key)).Bytes()
	if err != nil {
		return nil, mapErr(err)
	}
	return v, nil
}

// Take implements Store with GETDEL, which is atomic on the server.
func (r *Redis) Take(ctx context.Context, key string) ([]byte, error) {
	v, err := r.client.GetDel(ctx, r.key(key)).Bytes()
	if err != nil {
		return nil, mapErr(err)
	}
	return v, nil
}

// Delete implements Store.
func (r *Redis) Delete(ctx context.Context, key string) error {
	return mapErr(r.client.Del(ctx, r.key(key)).Err())
}

// Update implements Store with optimistic locking: WATCH the key and GET it
// (one round trip: the two are pipelined on one connection), call fn, and
// write in MULTI/EXEC (a second round trip), which Redis aborts if the key
// changed after WATCH. On abort it retries with jittered backoff, up to
// redisUpdateAttempts times, then returns ErrConflict.
func (r *Redis) Update(ctx context.Context, key string, ttl time.Duration, fn func(old []byte) ([]byte, error)) error {
	if err := checkTTL(ttl); err != nil {
		return err
	}
	k := r.key(key)
	// fnErr is fn's own error, kept apart so that it is returned unchanged
	// and never mistaken for a Redis error or retried.
	var fnErr error
	txn := func(tx *redis.Tx) error {
		var watch *redis.Cmd
		var get *redis.StringCmd
		_, err := tx.Pipelined(ctx, func(p redis.Pipeliner) error {
			watch = p.Do(ctx, "watch", k)
			get = p.Get(ctx, k)
			return nil
		})
		if err == nil || errors.Is(err, redis.Nil) {
			err = watch.Err()
		}
		old, getErr := get.Bytes()
		switch {
		case err != nil:
		case errors.Is(getErr, redis.Nil):
			old = nil
		case getErr != nil:
			err = getErr
		case old == nil:
			old = []byte{} // present but empty is not absent
		}
		if err != nil {
			// The connection goes back to the pool: it must not keep
			// watching (EXEC would have ended the WATCH).
			_ = tx.Unwatch(ctx).Err()
			return err
		}
		value, err := fn(old)
		if err != nil {
			fnErr = err
			_ = tx.Unwatch(ctx).Err()
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			if value == nil {
				p.Del(ctx, k)
			} else {
				p.Do(ctx, "set", k, value, "px", px(ttl))
			}
			return nil
		})
		return err
	}

	backoff := redisUpdateBackoffMin
	for range redisUpdateAttempts {
		fnErr = nil
		// No keys here: txn WATCHes in the same round trip as its GET.
		err := r.client.Watch(ctx, txn)
		if fnErr != nil {
			return fnErr
		}
		if !errors.Is(err, redis.TxFailedErr) {
			return mapErr(err)
		}
		// Another writer changed the key between our read and our write.
		wait := backoff/2 + rand.N(backoff/2+1)
		select {
		case <-ctx.Done():
			return fmt.Errorf("store: redis: update of a contended key: %w", ctx.Err())
		case <-time.After(wait):
		}
		backoff = min(2*backoff, redisUpdateBackoffMax)
	}
	return fmt.Errorf("%w: key changed by other writers in each of %d attempts", ErrConflict, redisUpdateAttempts)
}

// Ping implements Store.
func (r *Redis) Ping(ctx context.Context) error {
	return mapErr(r.client.Ping(ctx).Err())
}

// Close implements Store: it closes the connection pool, once.
func (r *Redis) Close() error {
	r.closeOnce.Do(func() { r.closeErr = r.client.Close() })
	return r.closeErr
}

// nonNil makes a nil value an empty one: go-redis would send nil as "" anyway,
// this only says so.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// SetRedisLogger sends go-redis's own log lines (reconnects, pool and
// Sentinel events) to l at level warn. go-redis has one logger for the whole
// process, so the last call wins; nil is ignored. The lines come from
// go-redis and name addresses, never passwords (go-redis does not log them).
func SetRedisLogger(l *slog.Logger) {
	if l == nil {
		return
	}
	redis.SetLogger(redisLogger{l})
}

type redisLogger struct{ l *slog.Logger }

func (r redisLogger) Printf(ctx context.Context, format string, v ...any) {
	r.l.WarnContext(ctx, "redis: "+strings.TrimSpace(fmt.Sprintf(format, v...)), "component", "go-redis")
}
