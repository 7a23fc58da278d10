package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

const sharedKeysConfig = `
issuer: https://sso.example.com
wechat:
  official_account: { app_id: wx123, app_secret: "${OA_SECRET}" }
clients:
  - { id: grafana, secret: "${GRAFANA_SECRET}", redirect_uris: [https://g.example.com/cb] }
  - { id: legacy, secret: "${LEGACY_SECRET}", redirect_uris: [https://l.example.com/cb], id_token_signed_response_alg: EdDSA }
  - { id: other, secret: "${OTHER_SECRET}", redirect_uris: [https://o.example.com/cb], id_token_signed_response_alg: ES256 }
store: { type: redis, redis: { url: "redis://:${REDIS_PASSWORD}@redis.internal:6379/2" } }
keys: { encryption_key: "${KEYS_KEY}", algorithm: ES256, rotate_every: 720h, publish_before_use: 24h }
tokens: { id_token_ttl: 2h, access_token_ttl: 30m }
directory: { type: postgres, url: "${DATABASE_URL}" }
`

const testKEK = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // 32 bytes

// TestParseKeysNeedsOnlyKeysAndStoreSecrets: the keys commands read the
// store and keys sections with their secrets, and need none of the WeChat
// or client secrets; the algorithms come from keys.algorithm and the
// clients' id_token_signed_response_alg.
func TestParseKeysNeedsOnlyKeysAndStoreSecrets(t *testing.T) {
	k, err := ParseKeys([]byte(sharedKeysConfig), env(map[string]string{"REDIS_PASSWORD": "pw", "KEYS_KEY": testKEK}))
	if err != nil {
		t.Fatalf("ParseKeys without the WeChat and client secrets: %v", err)
	}
	if !k.Keys.Shared || len(k.Keys.EncryptionKey) != 32 || k.Keys.Dir != "" {
		t.Errorf("keys: %+v, want shared keys with a 32-byte encryption key", k.Keys)
	}
	if !slices.Equal(k.Keys.Algorithms, []string{"ES256", "EdDSA"}) {
		t.Errorf("algorithms %v, want [ES256 EdDSA] (default first, then the clients', once each)", k.Keys.Algorithms)
	}
	if k.Keys.RetainAfterRetire != 2*time.Hour || k.Keys.RotateEvery != 720*time.Hour || k.Keys.PublishBeforeUse != 24*time.Hour {
		t.Errorf("durations %+v", k.Keys)
	}
	if k.Store.Redis.URL != "redis://:pw@redis.internal:6379/2" {
		t.Errorf("store url not expanded")
	}
	// The store's secret is still needed.
	_, err = ParseKeys([]byte(sharedKeysConfig), env(map[string]string{"KEYS_KEY": testKEK}))
	if err == nil || !strings.Contains(err.Error(), "REDIS_PASSWORD") {
		t.Errorf("without REDIS_PASSWORD: %v", err)
	}
	// A wrong key stays out of the message.
	_, err = ParseKeys([]byte(sharedKeysConfig), env(map[string]string{"REDIS_PASSWORD": "pw", "KEYS_KEY": "not-base64-secret!"}))
	if err == nil || strings.Contains(err.Error(), "not-base64-secret") || !strings.Contains(err.Error(), "openssl rand -base64 32") {
		t.Errorf("bad encryption key: %v", err)
	}
	// An unknown key anywhere is still refused.
	_, err = ParseKeys([]byte(sharedKeysConfig+"bogus: 1\n"), env(map[string]string{"REDIS_PASSWORD": "pw", "KEYS_KEY": testKEK}))
	if err == nil || !strings.Contains(err.Error(), `unknown key "bogus"`) {
		t.Errorf("unknown key: %v", err)
	}
}

// TestKeysOptionsFromTheWholeFile: Parse resolves the same keys options.
func TestKeysOptionsFromTheWholeFile(t *testing.T) {
	f, err := Parse([]byte(sharedKeysConfig), env(map[string]string{"REDIS_PASSWORD": "pw", "KEYS_KEY": testKEK,
		"OA_SECRET": "x", "GRAFANA_SECRET": "0123456789abcdef", "LEGACY_SECRET": "0123456789abcdef", "OTHER_SECRET": "0123456789abcdef",
		"DATABASE_URL": "postgres://u:p@db.internal/wechat"}))
	if err != nil {
		t.Fatal(err)
	}
	o := f.Options()
	if !slices.Equal(o.Keys.Algorithms, []string{"ES256", "EdDSA"}) || o.Clients[1].IDTokenAlg != "EdDSA" {
		t.Errorf("algorithms %v, client alg %q", o.Keys.Algorithms, o.Clients[1].IDTokenAlg)
	}
	if o.Shutdown.Timeout != 10*time.Second || o.Metrics.Listen != "" {
		t.Errorf("defaults: %+v %+v", o.Shutdown, o.Metrics)
	}
}
