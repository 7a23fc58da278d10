package store

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// gcra is the Generic Cell Rate Algorithm (the token bucket's equivalent
// that keeps one number per key: the theoretical arrival time, TAT) as a
// Redis script, the approach of github.com/go-redis/redis_rate. The time is
// Redis's own (TIME), so replicas whose clocks differ share one timeline.
// Times are seconds since a recent epoch, so that a double keeps
// microseconds. Replies are strings: Redis turns Lua numbers into integers.
//
// KEYS[1]: the key. ARGV[1]: rate (requests per second), ARGV[2]: burst.
// Returns {allowed (1 or 0), seconds until the next request is allowed}.
var gcra = redis.NewScript(`
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call("TIME")
local now = (tonumber(t[1]) - 1700000000) + tonumber(t[2]) / 1000000
local interval = 1 / rate
local tat = tonumber(redis.call("GET", KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - interval * burst
if now < allow_at then
  return {0, tostring(allow_at - now)}
end
redis.call("SET", KEYS[1], tostring(new_tat), "PX", math.ceil((new_tat - now) * 1000))
return {1, "0"}
`)

// RedisRateKeyPrefix is put (after the store's prefix) in front of every
// rate-limit key.
const RedisRateKeyPrefix = "rate:"

// AllowRate takes one request from the bucket of key (rate per second on
// average, bursts of burst), shared by every replica on this Redis; when
// the bucket is empty it returns false and how long until a request is
// allowed again.
func (r *Redis) AllowRate(ctx context.Context, key string, rate float64, burst int) (bool, time.Duration, error) {
	if rate <= 0 || burst < 1 {
		return false, 0, errors.New("store: rate limit needs rate > 0 and burst >= 1")
	}
	res, err := gcra.Run(ctx, r.client, []string{r.key(RedisRateKeyPrefix + key)},
		strconv.FormatFloat(rate, 'g', -1, 64), burst).Slice()
	if err != nil {
		return false, 0, mapErr(err)
	}
	if len(res) != 2 {
		return false, 0, fmt.Errorf("store: redis: rate limit script answered %d values", len(res))
	}
	allowed, _ := res[0].(int64)
	wait, _ := res[1].(string)
	secs, err := strconv.ParseFloat(wait, 64)
	if err != nil || secs < 0 || math.IsNaN(secs) {
		return false, 0, fmt.Errorf("store: redis: rate limit script answered a bad wait %q", wait)
	}
	return allowed == 1, time.Duration(secs * float64(time.Second)), nil
}
