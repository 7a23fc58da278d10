package config

import (
	"github.com/wechat-oidc/wechat-oidc/wechat"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

const validConfig = `
issuer: https://sso.example.com
subject: unionid
wechat:
  official_account: { app_id: wx123, app_secret: "${OA_SECRET}" }
clients:
  - id: grafana
    secret: ${GRAFANA_SECRET}
    redirect_uris: [https://grafana.example.com/login/generic_oauth]
store: { type: memory }
keys: { dir: /tmp/keys }
directory: { type: sqlite, path: /var/lib/wechat-oidc/wechat-oidc.db }
`

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

var testEnv = env(map[string]string{"OA_SECRET": "oa-secret", "GRAFANA_SECRET": "0123456789012345"})

func TestParseConfigValid(t *testing.T) {
	cfg, err := Parse([]byte(validConfig), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.WeChat.OfficialAccount.AppSecret != "oa-secret" {
		t.Errorf("env not expanded: %q", cfg.WeChat.OfficialAccount.AppSecret)
	}
	if cfg.Clients[0].Secret != "0123456789012345" {
		t.Errorf("a secret of digits must stay a string, got %q", cfg.Clients[0].Secret)
	}
	if cfg.WeChat.OfficialAccount.Scope != ScopeSilentFirst || cfg.WeChat.APIBaseURL != "https://api.weixin.qq.com" ||
		cfg.Tokens.CodeTTL.D().Seconds() != 60 || cfg.Listen != "0.0.0.0:8080" {
		t.Errorf("defaults not applied: %+v", cfg)
	}
	if cfg.Access.Mode != AccessApproval || cfg.Access.AdminGroup != "admins" || cfg.Directory.Type != "sqlite" ||
		cfg.Directory.SignInTimeout.D() != DefaultDirectorySignInTimeout {
		t.Errorf("admitting everyone must be written down, not defaulted: access %+v, directory %+v", cfg.Access, cfg.Directory)
	}
}

func TestParseConfigErrors(t *testing.T) {
	cases := []struct {
		name, edit, from string
		want             []string // substrings of the error
	}{
		{"verify file bad name", "  official_account: { app_id: wx123, app_secret: \"${OA_SECRET}\" }\n  verify_files: { ../etc/passwd: x }", "  official_account: { app_id: wx123, app_secret: \"${OA_SECRET}\" }", []string{"wechat.verify_files", "MP_verify_"}},
		{"verify file under a path issuer", "issuer: https://sso.example.com/sso\nwechat:\n  verify_files: { MP_verify_abc.txt: abc }", "issuer: https://sso.example.com\nsubject: unionid\nwechat:", []string{"reverse proxy"}},
		{"static groups refused", "keys: { dir: /tmp/keys }\ngroups:\n  admins: [oX]", "keys: { dir: /tmp/keys }", []string{"groups:", "people import"}},
		{"directory missing", "", "directory: { type: sqlite, path: /var/lib/wechat-oidc/wechat-oidc.db }", []string{"directory.path is missing"}},
		{"directory type", "directory: { type: mysql }", "directory: { type: sqlite, path: /var/lib/wechat-oidc/wechat-oidc.db }", []string{"directory.type", "postgres"}},
		{"postgres without url", "directory: { type: postgres }", "directory: { type: sqlite, path: /var/lib/wechat-oidc/wechat-oidc.db }", []string{"directory.url is missing", "DATABASE_URL"}},
		{"directory sign-in timeout too long", "directory: { type: sqlite, path: /var/lib/wechat-oidc/wechat-oidc.db, sign_in_timeout: 1m }", "directory: { type: sqlite, path: /var/lib/wechat-oidc/wechat-oidc.db }", []string{"directory.sign_in_timeout", "between 100ms and 30s"}},
		{"directory sign-in timeout too short", "directory: { type: sqlite, path: /var/lib/wechat-oidc/wechat-oidc.db, sign_in_timeout: 10ms }", "directory: { type: sqlite, path: /var/lib/wechat-oidc/wechat-oidc.db }", []string{"directory.sign_in_timeout", "between 100ms and 30s"}},
		{"access mode", "keys: { dir: /tmp/keys }\naccess: { mode: everyone }", "keys: { dir: /tmp/keys }", []string{"access.mode", "approval", "invite", "open"}},
		{"allowed group name", "    redirect_uris: [https://grafana.example.com/login/generic_oauth]\n    allowed_groups: [Bad Group]", "    redirect_uris: [https://grafana.example.com/login/generic_oauth]", []string{"allowed_groups[0]"}},
		{"unknown top-level key", "issuer: https://sso.example.com\nissuerr: x", "issuer: https://sso.example.com", []string{`unknown key "issuerr"`, "keys allowed here"}},
		{"unknown nested key", "    redirect_uri: [https://x]", "    redirect_uris: [https://grafana.example.com/login/generic_oauth]", []string{`"clients[0].redirect_uri"`}},
		{"missing issuer", "", "issuer: https://sso.example.com", []string{"issuer is missing"}},
		{"http non-loopback issuer", "issuer: http://sso.example.com", "issuer: https://sso.example.com", []string{"non-loopback", "use https"}},
		{"issuer with query", "issuer: https://sso.example.com/?a=1", "issuer: https://sso.example.com", []string{"query"}},
		{"client without redirect URIs", "    redirect_uris: []", "    redirect_uris: [https://grafana.example.com/login/generic_oauth]", []string{"clients[0] (grafana).redirect_uris is empty"}},
		{"redirect URI with fragment", "    redirect_uris: [https://g.example.com/cb#x]", "    redirect_uris: [https://grafana.example.com/login/generic_oauth]", []string{"fragment"}},
		{"duplicate client ids", "clients:\n  - {id: a, secret: s0123456789abcdef, redirect_uris: [https://a/cb]}\n  - {id: a, secret: s0123456789abcdef, redirect_uris: [https://a/cb]}", "clients:\n  - id: grafana\n    secret: ${GRAFANA_SECRET}\n    redirect_uris: [https://grafana.example.com/login/generic_oauth]", []string{`clients[1].id "a" is a duplicate`}},
		{"unset env var", "  official_account: { app_id: wx123, app_secret: \"${NOPE_SECRET}\" }", "  official_account: { app_id: wx123, app_secret: \"${OA_SECRET}\" }", []string{"NOPE_SECRET is not set", "wechat.official_account.app_secret"}},
		{"bad subject", "subject: email", "subject: unionid", []string{`subject "email"`, "unionid"}},
		{"missing official account", "wechat: {}", "wechat:\n  official_account: { app_id: wx123, app_secret: \"${OA_SECRET}\" }", []string{"wechat.official_account is missing"}},
		{"bad store", "store: { type: etcd }", "store: { type: memory }", []string{`store.type "etcd"`}},
		{"redis without url", "store: { type: redis }", "store: { type: memory }", []string{"store.redis.url is missing", "redis://"}},
		{"redis addr is refused", "store: { type: redis, redis: { addr: 127.0.0.1:6379 } }", "store: { type: memory }", []string{"store.redis.addr", "no longer supported", "store.redis.url"}},
		{"redis url without scheme", "store: { type: redis, redis: { url: 127.0.0.1:6379 } }", "store: { type: memory }", []string{"store.redis.url", "redis://"}},
		{"ca_file without rediss", "store: { type: redis, redis: { url: redis://r:6379, ca_file: /ca.pem } }", "store: { type: memory }", []string{"rediss://"}},
		{"sentinel with a host", "store: { type: redis, redis: { url: redis://r:6379, sentinel: { master: m, addrs: [s:26379] } } }", "store: { type: memory }", []string{"leave the host out"}},
		{"sentinel without addrs", "store: { type: redis, redis: { url: \"redis://:p@/0\", sentinel: { master: m } } }", "store: { type: memory }", []string{"sentinel needs master"}},
		{"snapshot with redis", "store: { type: redis, snapshot_file: /s, redis: { url: redis://r:6379 } }", "store: { type: memory }", []string{"memory store only"}},
		{"shared keys without encryption key", "store: { type: redis, redis: { url: redis://r:6379 } }\nkeys: { dir: \"\" }", "store: { type: memory }\nkeys: { dir: /tmp/keys }", []string{"keys.encryption_key is missing", "openssl rand -base64 32"}},
		{"short encryption key", "store: { type: redis, redis: { url: redis://r:6379 } }\nkeys: { encryption_key: c2hvcnQ= }", "store: { type: memory }\nkeys: { dir: /tmp/keys }", []string{"encryption_key decodes to 5 bytes", "openssl rand -base64 32"}},
		{"bad algorithm", "keys: { dir: /tmp/keys, algorithm: HS256 }", "keys: { dir: /tmp/keys }", []string{"keys.algorithm", "ES256"}},
		{"rotation shorter than publication", "keys: { dir: /tmp/keys, rotate_every: 30m }", "keys: { dir: /tmp/keys }", []string{"keys.rotate_every", "publish_before_use"}},
		{"bad client alg", "    redirect_uris: [https://grafana.example.com/login/generic_oauth]\n    id_token_signed_response_alg: none", "    redirect_uris: [https://grafana.example.com/login/generic_oauth]", []string{"id_token_signed_response_alg", "EdDSA"}},
		{"metrics on the public port", "keys: { dir: /tmp/keys }\nmetrics: { listen: \"0.0.0.0:8080\" }", "keys: { dir: /tmp/keys }", []string{"metrics.listen must differ"}},
		{"bad metrics listen", "keys: { dir: /tmp/keys }\nmetrics: { listen: \"9090\" }", "keys: { dir: /tmp/keys }", []string{"metrics.listen"}},
		{"missing keys dir", "", "keys: { dir: /tmp/keys }", []string{"keys.dir is missing"}},
		{"bad duration", "keys: { dir: /tmp/keys }\ntokens: { code_ttl: soon }", "keys: { dir: /tmp/keys }", []string{"tokens.code_ttl (line 12)", `"soon" is not a duration`, "60s"}},
		{"duration in words", "keys: { dir: /tmp/keys }\ntokens:\n  id_token_ttl: 1h\n  code_ttl: 5 seconds", "keys: { dir: /tmp/keys }", []string{"tokens.code_ttl (line 14)", `"5 seconds" is not a duration`}},
		{"duration without unit", "keys: { dir: /tmp/keys, rotate_every: 30 }", "keys: { dir: /tmp/keys }", []string{"keys.rotate_every (line 11)", "not a duration"}},
		{"duration as a list", "keys: { dir: /tmp/keys }\nsession: { idle_ttl: [8h] }", "keys: { dir: /tmp/keys }", []string{"session.idle_ttl (line 12)", "not a list"}},
		{"number in words", "keys: { dir: /tmp/keys }\nlimits: { token_per_client: { rate: fast, burst: 1 } }", "keys: { dir: /tmp/keys }", []string{"limits.token_per_client.rate (line 12)", "a number"}},
		{"boolean in words", "    redirect_uris: [https://grafana.example.com/login/generic_oauth]\n    require_pkce: sure", "    redirect_uris: [https://grafana.example.com/login/generic_oauth]", []string{"clients[0].require_pkce (line 10)", "true or false"}},
		{"list where a value goes", "    redirect_uris: https://grafana.example.com/login/generic_oauth", "    redirect_uris: [https://grafana.example.com/login/generic_oauth]", []string{"clients[0].redirect_uris (line 9)", "must be a list"}},
		{"duplicate key", "issuer: https://sso.example.com\nissuer: https://b.example.com", "issuer: https://sso.example.com", []string{"issuer"}},
		{"public client with secret", "    token_endpoint_auth_method: none\n    redirect_uris: [https://grafana.example.com/login/generic_oauth]", "    redirect_uris: [https://grafana.example.com/login/generic_oauth]", []string{"public client", "remove secret"}},
		{"short secret", "    secret: short", "    secret: ${GRAFANA_SECRET}", []string{"too short", "openssl rand"}},
		{"secret and hash", "    secret: ${GRAFANA_SECRET}\n    secret_sha256: " + strings.Repeat("ab", 32), "    secret: ${GRAFANA_SECRET}", []string{"not both"}},
		{"bad hash", "    secret_sha256: xyz", "    secret: ${GRAFANA_SECRET}", []string{"64 hex digits"}},
		{"memory store without a useful bound", "store: { type: memory, memory: { max_entries: 10 } }", "store: { type: memory }", []string{"store.memory.max_entries", "at least 1000"}},
		{"total pending cap below the per-IP cap", "store: { type: memory }\nlogin: { max_pending_per_ip: 50, max_pending: 10 }", "store: { type: memory }", []string{"login.max_pending"}},
		{"pinned cross-device flow while cross-device is off", "  official_account: { app_id: wx123, app_secret: \"${OA_SECRET}\" }\n  cross_device: false\nclients:\n  - id: grafana\n    wechat_flow: cross_device", "  official_account: { app_id: wx123, app_secret: \"${OA_SECRET}\" }\nclients:\n  - id: grafana", []string{"wechat_flow cross_device is disabled"}},
		{"client turns on what the deployment turned off", "  official_account: { app_id: wx123, app_secret: \"${OA_SECRET}\" }\n  cross_device: false\nclients:\n  - id: grafana\n    cross_device: true", "  official_account: { app_id: wx123, app_secret: \"${OA_SECRET}\" }\nclients:\n  - id: grafana", []string{"cross_device: true has no effect"}},
		{"cross-device SSO without cross-device", "  official_account: { app_id: wx123, app_secret: \"${OA_SECRET}\" }\n  cross_device: false\n  cross_device_sso: true", "  official_account: { app_id: wx123, app_secret: \"${OA_SECRET}\" }", []string{"cross_device_sso has no effect"}},
		{"bad scope", "  official_account: { app_id: wx123, app_secret: x, scope: snsapi_login }", "  official_account: { app_id: wx123, app_secret: \"${OA_SECRET}\" }", []string{"scope", "snsapi_base"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(validConfig, tc.from) {
				t.Fatalf("test setup: %q not in the valid config", tc.from)
			}
			text := strings.Replace(validConfig, tc.from, tc.edit, 1)
			_, err := Parse([]byte(text), testEnv)
			if err == nil {
				t.Fatalf("accepted:\n%s", text)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "oa-secret") || strings.Contains(err.Error(), "0123456789012345") {
				t.Errorf("error leaks a secret: %q", err)
			}
		})
	}
}

func TestParseConfigLiteralDollar(t *testing.T) {
	text := strings.Replace(validConfig, `"${OA_SECRET}"`, `"a$${NOT_EXPANDED}b"`, 1)
	cfg, err := Parse([]byte(text), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.WeChat.OfficialAccount.AppSecret; got != "a${NOT_EXPANDED}b" {
		t.Fatalf("got %q", got)
	}
}

func TestParseConfigEmptyAndGarbage(t *testing.T) {
	text := strings.Replace(validConfig, `{ app_id: wx123, app_secret: "${OA_SECRET}" }`, `{ app_id: wx123, app_secret: ${OA_SECRET} }`, 1)
	if _, err := Parse([]byte(text), testEnv); err == nil || !strings.Contains(err.Error(), `quote`) {
		t.Errorf("unquoted ${VAR} in a flow mapping: the error should say to quote it: %v", err)
	}
	for name, text := range map[string]string{"empty": "", "list": "- a\n- b", "not yaml": "a: [b", "scalar": "hello"} {
		if _, err := Parse([]byte(text), testEnv); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestExampleConfigParses(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "config.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(raw, env(map[string]string{"WECHAT_OA_SECRET": "x", "GRAFANA_OIDC_SECRET": "y0123456789abcdef", "WECHAT_WEB_SECRET": "w", "WECHAT_MP_SECRET": "m"}))
	if err != nil {
		t.Fatalf("config.example.yaml does not parse: %v", err)
	}
	if cfg.Issuer != "https://sso.example.com" || len(cfg.Clients) != 1 {
		t.Fatalf("unexpected example config: %+v", cfg)
	}
}

// TestExampleConfigDocumentsEveryKey: every key of the Config type appears
// in config.example.yaml.
func TestExampleConfigDocumentsEveryKey(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "config.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var walk func(rt reflect.Type, path string)
	walk = func(rt reflect.Type, path string) {
		for rt.Kind() == reflect.Pointer || rt.Kind() == reflect.Slice {
			rt = rt.Elem()
		}
		if rt.Kind() != reflect.Struct || rt == reflect.TypeOf(Duration(0)) {
			return
		}
		for i := 0; i < rt.NumField(); i++ {
			tag := strings.Split(rt.Field(i).Tag.Get("yaml"), ",")[0]
			if tag == "" {
				continue
			}
			if !regexp.MustCompile(`(?m)(^|[\s{,])` + regexp.QuoteMeta(tag) + `:`).Match(raw) {
				t.Errorf("config.example.yaml does not document %s%s", path, tag)
			}
			walk(rt.Field(i).Type, path+tag+".")
		}
	}
	walk(reflect.TypeOf(File{}), "")
}

func TestClaimTemplateValidation(t *testing.T) {
	for tmpl, ok := range map[string]bool{
		"{preferred_username}@wechat.example.com": true,
		"{sub}@x.example.com":                     true,
		"{name}@x.example.com":                    false, // not unique
		"{bogus}@x.example.com":                   false,
		"{sub}":                                   false, // no domain
		"{sub@x.example.com":                      false,
	} {
		cfg := &File{Clients: []ClientConfig{{ID: "a", Secret: "s0123456789abcdef", RedirectURIs: []string{"https://a/cb"}, Claims: ClientClaimsConfig{Email: tmpl}}}}
		err := validateClientClaimsForTest(cfg)
		if (err == nil) != ok {
			t.Errorf("%q: err=%v, want ok=%v", tmpl, err, ok)
		}
	}
}

func validateClientClaimsForTest(partial *File) error {
	cfg, err := Parse([]byte(validConfig), testEnv)
	if err != nil {
		return err
	}
	cfg.Clients = partial.Clients
	return cfg.Validate()
}

// TestWeChatConstantsMatch: config spells WeChat's defaults and scope names
// itself (it must not import the WeChat client); they must stay equal.
func TestWeChatConstantsMatch(t *testing.T) {
	for _, c := range []struct{ name, ours, theirs string }{
		{"open base URL", DefaultWeChatOpenBaseURL, wechat.DefaultOpenBaseURL},
		{"API base URL", DefaultWeChatAPIBaseURL, wechat.DefaultAPIBaseURL},
		{"timeout", DefaultWeChatTimeout.String(), wechat.DefaultTimeout.String()},
		{"snsapi_userinfo", ScopeUserInfo, wechat.ScopeUserInfo},
		{"snsapi_base", ScopeBase, wechat.ScopeBase},
	} {
		if c.ours != c.theirs {
			t.Errorf("%s: config %q, wechat %q", c.name, c.ours, c.theirs)
		}
	}
}

// TestBadDurationFromEnvironmentIsRedacted: a duration that came from the
// environment is named by its key and line, its value by ${NAME}.
func TestBadDurationFromEnvironmentIsRedacted(t *testing.T) {
	text := strings.Replace(validConfig, "keys: { dir: /tmp/keys }", "keys: { dir: /tmp/keys }\ntokens: { code_ttl: \"${CODE_TTL}\" }", 1)
	lookup := func(k string) (string, bool) {
		if k == "CODE_TTL" {
			return "Xq9secretish", true
		}
		return testEnv(k)
	}
	_, err := Parse([]byte(text), lookup)
	if err == nil || !strings.Contains(err.Error(), "tokens.code_ttl (line 12)") || !strings.Contains(err.Error(), "${CODE_TTL}") {
		t.Fatalf("got %v, want the key, the line and ${CODE_TTL}", err)
	}
	if strings.Contains(err.Error(), "Xq9secretish") {
		t.Fatalf("the expanded value leaked: %v", err)
	}
}

// TestCrossDeviceSwitchesResolve: the deployment's switch and the client's
// combine into one flag per client.
func TestCrossDeviceSwitchesResolve(t *testing.T) {
	text := `
issuer: https://sso.example.com
wechat:
  official_account: { app_id: wx123, app_secret: "${OA_SECRET}" }
clients:
  - { id: grafana, secret: "${GRAFANA_SECRET}", redirect_uris: [https://grafana.example.com/cb], cross_device: false }
  - { id: other, secret: "${GRAFANA_SECRET}", redirect_uris: [https://other.example.com/cb] }
keys: { dir: /tmp/keys }
directory: { type: sqlite, path: /tmp/people.db }
`
	f, err := Parse([]byte(text), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	o := f.Options()
	if !o.WeChat.CrossDevice || o.WeChat.CrossDeviceSSO {
		t.Fatalf("defaults: cross_device %v, cross_device_sso %v", o.WeChat.CrossDevice, o.WeChat.CrossDeviceSSO)
	}
	if o.Clients[0].CrossDevice || !o.Clients[1].CrossDevice {
		t.Fatalf("per client: grafana %v (turned off), other %v (default)", o.Clients[0].CrossDevice, o.Clients[1].CrossDevice)
	}
	if o.Login.MaxPendingPerIP != 100 || o.Login.MaxPending != 10_000 || o.Store.MemoryMaxEntries != DefaultMemoryMaxEntries {
		t.Fatalf("bounds: %+v %+v", o.Login, o.Store)
	}
}
