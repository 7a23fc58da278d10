package config

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// checkedConfig is a production-shaped configuration that has no warning:
// https everywhere, TLS to Redis and PostgreSQL, approval, every client
// limited to groups. Each case of TestWarnings breaks one thing.
const checkedConfig = `
issuer: https://sso.example.com
wechat:
  official_account: { app_id: wx0123456789abcdef, app_secret: "${OA_SECRET}" }
clients:
  - id: grafana
    secret: ${GRAFANA_SECRET}
    redirect_uris: [https://grafana.example.com/login/generic_oauth]
    allowed_groups: [grafana-users]
  - id: wiki
    secret: ${GRAFANA_SECRET}
    redirect_uris: [https://wiki.example.com/cb]
    allowed_groups: [staff]
store: { type: redis, redis: { url: "rediss://:${REDIS_PASSWORD}@redis.internal:6380/0" } }
keys: { encryption_key: "${KEYS_KEY}" }
directory: { type: postgres, url: "postgres://wechat:${PG_PASSWORD}@db.internal:5432/wechat?sslmode=verify-full" }
access: { mode: approval }
`

// checkSecrets are the values of checkedConfig's variables; no warning and
// no summary line may show one.
var checkSecrets = map[string]string{
	"OA_SECRET":      "oa-secret-Zq7xK2mP",
	"GRAFANA_SECRET": "grafana-secret-Hb4nT8cL",
	"REDIS_PASSWORD": "redis-pw-Mc8pL4tG",
	"PG_PASSWORD":    "pg-pw-Wr6eD3sA",
	"KEYS_KEY":       testKEK,
}

func checkedOptions(t *testing.T, text string) *Options {
	t.Helper()
	f, err := Parse([]byte(text), env(checkSecrets))
	if err != nil {
		t.Fatalf("the configuration is refused: %v\n%s", err, text)
	}
	return f.Options()
}

// edit applies replacements (from, to, from, to, ...) to checkedConfig,
// each once; every from must be there.
func edit(t *testing.T, pairs ...string) string {
	t.Helper()
	text := checkedConfig
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(text, pairs[i]) {
			t.Fatalf("test setup: %q is not in the configuration", pairs[i])
		}
		text = strings.Replace(text, pairs[i], pairs[i+1], 1)
	}
	return text
}

func TestCheckedConfigHasNoWarnings(t *testing.T) {
	if ws := checkedOptions(t, checkedConfig).Warnings(); len(ws) != 0 {
		t.Fatalf("warnings on a clean configuration: %v", ws)
	}
}

// TestWarnings: one case per warning check-config gives, each with the
// exact keys warned about (so that a case proves its warning and no other)
// and words of the message and the fix.
func TestWarnings(t *testing.T) {
	const (
		oa       = `official_account: { app_id: wx0123456789abcdef, app_secret: "${OA_SECRET}" }`
		redis    = `url: "rediss://:${REDIS_PASSWORD}@redis.internal:6380/0"`
		pg       = `url: "postgres://wechat:${PG_PASSWORD}@db.internal:5432/wechat?sslmode=verify-full"`
		issuer   = "issuer: https://sso.example.com"
		wikiURIs = "redirect_uris: [https://wiki.example.com/cb]"
		approval = "access: { mode: approval }"
		open     = "access: { mode: open }"
	)
	cases := []struct {
		name  string
		edits []string // from, to, ...: see edit
		keys  []string // the keys warned about, in order; none: no warning
		want  []string // substrings of the warnings' text
	}{
		{"issuer with a trailing slash", []string{issuer, issuer + "/"},
			[]string{"issuer"}, []string{"ends with a slash", "write issuer: https://sso.example.com,"}},
		{"issuer with a path and a trailing slash", []string{issuer, "issuer: https://example.com/sso/"},
			[]string{"issuer"}, []string{"ends with a slash", "write issuer: https://example.com/sso,"}},
		{"issuer on http", []string{issuer, "issuer: http://127.0.0.1:8080"},
			[]string{"issuer"}, []string{"uses http", "https"}},
		{"official account app id", []string{oa, `official_account: { app_id: wx123, app_secret: "${OA_SECRET}" }`},
			[]string{"wechat.official_account.app_id"}, []string{"does not look like a WeChat app id", "5 characters", "基本配置"}},
		{"app id with capitals", []string{oa, `official_account: { app_id: WX0123456789ABCDEF, app_secret: "${OA_SECRET}" }`},
			[]string{"wechat.official_account.app_id"}, []string{"wx followed by 16"}},
		{"app secret pasted as app id", []string{oa, `official_account: { app_id: 0123456789abcdef0123456789abcdef, app_secret: "${OA_SECRET}" }`},
			[]string{"wechat.official_account.app_id"}, []string{"looks like an AppSecret", "app_secret"}},
		{"website app id", []string{oa, oa + "\n  website_app: { app_id: web-app, app_secret: s }"},
			[]string{"wechat.website_app.app_id"}, []string{"网站应用"}},
		{"mini program app id", []string{oa, oa + "\n  mini_program: { app_id: wx01234, app_secret: s }"},
			[]string{"wechat.mini_program.app_id"}, []string{"开发设置"}},
		{"http redirect URI on another host", []string{wikiURIs, "redirect_uris: [https://wiki.example.com/cb, http://wiki.example.com/cb]"},
			[]string{"clients[1] (wiki).redirect_uris[1]"}, []string{`"http://wiki.example.com/cb" is http on a non-loopback host`, "RFC 6749 §3.1.2.1"}},
		{"http redirect URI on loopback", []string{wikiURIs, `redirect_uris: ["http://127.0.0.1:9000/cb", "http://localhost/cb", "http://[::1]/cb"]`},
			nil, nil},
		{"redis without TLS", []string{redis, `url: "redis://:${REDIS_PASSWORD}@redis.internal:6379/0"`},
			[]string{"store.redis.url"}, []string{"redis.internal without TLS", "signing keys", "rediss://"}},
		{"redis without TLS on loopback", []string{redis, `url: "redis://:${REDIS_PASSWORD}@127.0.0.1:6379/0"`}, nil, nil},
		{"redis sentinels without TLS", []string{redis, `url: "redis://:${REDIS_PASSWORD}@/0", sentinel: { master: m, addrs: ["s1.internal:26379", "127.0.0.1:26379"] }`},
			[]string{"store.redis.url"}, []string{"reaches s1.internal without TLS"}},
		{"postgres without sslmode", []string{pg, `url: "postgres://wechat:${PG_PASSWORD}@db.internal:5432/wechat"`},
			[]string{"directory.url"}, []string{"no sslmode", "prefer", "db.internal", "sslmode=verify-full"}},
		{"postgres sslmode disable", []string{pg, `url: "postgres://wechat:${PG_PASSWORD}@db.internal:5432/wechat?sslmode=disable"`},
			[]string{"directory.url"}, []string{"sslmode=disable to db.internal"}},
		{"postgres sslmode allow", []string{pg, `url: "postgresql://wechat:${PG_PASSWORD}@db.internal/wechat?sslmode=allow"`},
			[]string{"directory.url"}, []string{"sslmode=allow"}},
		{"postgres sslmode prefer to several hosts", []string{pg, `url: "postgres://wechat:${PG_PASSWORD}@db1.internal:5432,db2.internal:5432/wechat?sslmode=prefer"`},
			[]string{"directory.url"}, []string{"sslmode=prefer to db1.internal, db2.internal"}},
		{"postgres key=value without TLS", []string{pg, `url: "host=db.internal user=wechat password=${PG_PASSWORD} dbname=wechat sslmode=disable"`},
			[]string{"directory.url"}, []string{"sslmode=disable to db.internal"}},
		{"postgres sslmode require", []string{pg, `url: "postgres://wechat:${PG_PASSWORD}@db.internal/wechat?sslmode=require"`}, nil, nil},
		{"postgres on loopback without TLS", []string{pg, `url: "postgres://wechat:${PG_PASSWORD}@localhost:5432/wechat?sslmode=disable"`}, nil, nil},
		{"postgres on a unix socket", []string{pg, `url: "postgres://wechat:${PG_PASSWORD}@/wechat?host=/var/run/postgresql"`}, nil, nil},
		{"open access in front of every client", []string{"    allowed_groups: [grafana-users]\n", "", "    allowed_groups: [staff]\n", "", approval, open},
			[]string{"access.mode"}, []string{"open: anyone with a WeChat account can sign in to every client;", "approval"}},
		{"open access in front of some clients", []string{"    allowed_groups: [staff]\n", "", approval, open},
			[]string{"access.mode", "clients[1] (wiki).allowed_groups"}, []string{"can sign in to every client without allowed_groups: wiki"}},
		{"open access, every client limited", []string{approval, open},
			[]string{"access.mode"}, []string{"anyone with a WeChat account is admitted", "only the clients' allowed_groups keep them out"}},
		{"client without allowed_groups beside limited ones", []string{"    allowed_groups: [staff]\n", ""},
			[]string{"clients[1] (wiki).allowed_groups"}, []string{"is empty while other clients have allowed_groups (grafana)", "every admitted person may sign in to wiki", "allowed_groups: [a-group]"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ws := checkedOptions(t, edit(t, tc.edits...)).Warnings()
			var keys []string
			var all strings.Builder
			for _, w := range ws {
				keys = append(keys, w.Key)
				all.WriteString(w.String() + "\n")
				if w.Message == "" || w.Fix == "" {
					t.Errorf("warning without a message or a fix: %+v", w)
				}
			}
			if !slices.Equal(keys, tc.keys) {
				t.Fatalf("warned about %v, want %v:\n%s", keys, tc.keys, all.String())
			}
			for _, s := range tc.want {
				if !strings.Contains(all.String(), s) {
					t.Errorf("warnings do not say %q:\n%s", s, all.String())
				}
			}
			for name, secret := range checkSecrets {
				if strings.Contains(all.String(), secret) {
					t.Errorf("a warning shows %s: %s", name, all.String())
				}
			}
			if strings.Contains(all.String(), "0123456789abcdef0123456789abcdef") {
				t.Errorf("a warning quotes what looks like an AppSecret: %s", all.String())
			}
		})
	}
}

// TestCheckErrors: what check-config reports as an error (exit 1) is what
// serve refuses to start with: one case per class of error. Two are
// settings an operator might expect a mere warning for: subject openid with
// several WeChat apps and keys in the shared store without an encryption key.
func TestCheckErrors(t *testing.T) {
	const oaSecret = `app_secret: "${OA_SECRET}" }`
	cases := []struct {
		name  string
		edits []string
		want  []string
	}{
		{"not YAML", []string{"access: { mode: approval }", "access: { mode: approval"}, []string{"not valid YAML"}},
		{"unknown key", []string{"access: { mode: approval }", "access: { mode: approval, admin_grp: x }"}, []string{`unknown key "access.admin_grp"`, "line 17"}},
		{"unset variable", []string{"${KEYS_KEY}", "${NOT_SET_KEY}"}, []string{"keys.encryption_key (line 15)", "NOT_SET_KEY is not set"}},
		{"wrong type", []string{"access: { mode: approval }", "access: { mode: approval, pending_ttl: half an hour }"}, []string{"access.pending_ttl (line 17)", "not a duration"}},
		{"missing required key", []string{"issuer: https://sso.example.com\n", ""}, []string{"issuer is missing"}},
		{"value not allowed", []string{"access: { mode: approval }", "access: { mode: everyone }"}, []string{`access.mode "everyone"`, "approval"}},
		{"subject openid with several WeChat apps", []string{"issuer: https://sso.example.com\n", "issuer: https://sso.example.com\nsubject: openid\n",
			oaSecret, oaSecret + "\n  website_app: { app_id: wx1111111111111111, " + oaSecret},
			[]string{"subject: openid cannot be used with wechat.website_app", "use subject: unionid"}},
		{"shared keys without an encryption key", []string{`keys: { encryption_key: "${KEYS_KEY}" }`, "keys: {}"},
			[]string{"keys.encryption_key is missing", "openssl rand -base64 32", "every replica"}},
		{"http issuer on another host", []string{"issuer: https://sso.example.com", "issuer: http://sso.example.com"}, []string{"non-loopback", "use https"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			text := edit(t, tc.edits...)
			_, err := Parse([]byte(text), env(checkSecrets))
			if err == nil {
				t.Fatalf("accepted:\n%s", text)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			for name, secret := range checkSecrets {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("the error shows %s: %v", name, err)
				}
			}
		})
	}
}

// TestExampleConfigHasNoWarnings: config.example.yaml is what people copy;
// it shows good settings.
func TestExampleConfigHasNoWarnings(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "config.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	f, err := Parse(raw, func(string) (string, bool) { return "example-secret-0123456789", true })
	if err != nil {
		t.Fatal(err)
	}
	if ws := f.Options().Warnings(); len(ws) != 0 {
		t.Fatalf("config.example.yaml has warnings: %v", ws)
	}
}

func TestSummary(t *testing.T) {
	text := edit(t,
		"    redirect_uris: [https://wiki.example.com/cb]\n    allowed_groups: [staff]",
		"    name: Team wiki\n    redirect_uris: [https://wiki.example.com/cb, https://wiki.example.com/cb2]\n    wechat_flow: cross_device",
		`app_secret: "${OA_SECRET}" }`, `app_secret: "${OA_SECRET}" }`+"\n  mini_program: { app_id: wx2222222222222222, app_secret: \"${OA_SECRET}\" }",
		"allowed_groups: [grafana-users]", "allowed_groups: [grafana-users, ops]\n    mini_program: true",
		`keys: { encryption_key: "${KEYS_KEY}" }`, `keys: { encryption_key: "${KEYS_KEY}", rotate_every: 720h, algorithm: ES256 }`+"\nmetrics: { listen: \"127.0.0.1:9090\" }")
	var b bytes.Buffer
	checkedOptions(t, text).WriteSummary(&b)
	out := b.String()
	for _, want := range []string{
		"issuer:     https://sso.example.com\n",
		"listen:     0.0.0.0:8080 (metrics on 127.0.0.1:9090)\n",
		"subject:    unionid\n",
		"official account  on: wx0123456789abcdef, scope silent_first",
		"website app       off (no wechat.website_app)",
		"cross-device      on: desktop browsers scan a QR",
		"mini program      on: wx2222222222222222, code exchange at the token endpoint for grafana",
		"access:     approval (a new person waits for an administrator); administrators: group admins at https://sso.example.com/admin",
		"store:      redis at redis.internal:6380, database 0 (TLS)",
		"directory:  postgres at db.internal, sslmode verify-full",
		"keys:       in the shared store (Redis), sealed with keys.encryption_key; algorithms ES256; rotated every 720h0m0s",
		"clients (2):\n  grafana\n    redirect_uris: https://grafana.example.com/login/generic_oauth\n    may sign in:   members of grafana-users, ops\n",
		"  wiki (Team wiki)\n    redirect_uris: https://wiki.example.com/cb, https://wiki.example.com/cb2\n    may sign in:   every admitted person\n    wechat_flow:   cross_device\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	for name, secret := range checkSecrets {
		if strings.Contains(out, secret) {
			t.Errorf("the summary shows %s:\n%s", name, out)
		}
	}
}

// TestSummaryOfASingleInstance: memory store, SQLite, a key directory, a
// website app.
func TestSummaryOfASingleInstance(t *testing.T) {
	var b bytes.Buffer
	f, err := Parse([]byte(strings.Replace(validConfig, `app_secret: "${OA_SECRET}" }`, `app_secret: "${OA_SECRET}" }`+
		"\n  website_app: { app_id: wx1111111111111111, app_secret: \"${OA_SECRET}\" }", 1)), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	f.Options().WriteSummary(&b)
	for _, want := range []string{
		"website app       on: wx1111111111111111 (desktop browsers: QR on WeChat's page)",
		"cross-device      on: for clients with wechat_flow: cross_device",
		"mini program      off",
		"store:      memory, one instance only; a restart signs everyone out",
		"directory:  sqlite /var/lib/wechat-oidc/wechat-oidc.db (one instance)",
		"keys:       in /tmp/keys; algorithms RS256; rotated by hand (wechat-oidc keys rotate)",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, b.String())
		}
	}
}

// TestSummaryOfCrossDevice: the cross-device line follows the deployment's
// switch, the clients' and cross_device_sso.
func TestSummaryOfCrossDevice(t *testing.T) {
	const (
		oa      = "  official_account: { app_id: wx123, app_secret: \"${OA_SECRET}\" }"
		grafana = "    redirect_uris: [https://grafana.example.com/login/generic_oauth]"
	)
	for _, tc := range []struct{ name, from, to, want string }{
		{"off", oa, oa + "\n  cross_device: false", "cross-device      off (wechat.cross_device: false)\n"},
		{"not for one client", grafana, grafana + "\n    cross_device: false",
			"cross-device      on: desktop browsers scan a QR with WeChat (the Official Account); not for grafana\n"},
		{"sso", oa, oa + "\n  cross_device_sso: true", "(the Official Account); the desktop gets an SSO session too (cross_device_sso)\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(validConfig, tc.from) {
				t.Fatalf("test setup: %q not in validConfig", tc.from)
			}
			f, err := Parse([]byte(strings.Replace(validConfig, tc.from, tc.to, 1)), testEnv)
			if err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			f.Options().WriteSummary(&b)
			if !strings.Contains(b.String(), tc.want) {
				t.Errorf("summary lacks %q:\n%s", tc.want, b.String())
			}
		})
	}
}
