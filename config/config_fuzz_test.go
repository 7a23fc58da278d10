package config

import (
	"crypto/sha256"
	"encoding/base64"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// fuzzConfigSecrets are the values of the environment variables the fuzzed
// config may reference. They are secrets: no error message may show them.
// Random-looking so that they cannot turn up in a message by coincidence.
var fuzzConfigSecrets = map[string]string{
	"OA_SECRET":           "Zq7xK2mPw9vRa4Ty",
	"GRAFANA_SECRET":      "Hb4nT8cLs3eYq9Wm",
	"WECHAT_OA_SECRET":    "Jd5uF1gXo6aWk2Rv",
	"GRAFANA_OIDC_SECRET": "Vk3yN7hQe2iBu8Pz",
	"REDIS_PASSWORD":      "Mc8pL4tGr1zUx5Ns",
	"WECHAT_WEB_SECRET":   "Wr6eD3sAj9kLc1Xq",
	"WECHAT_MP_SECRET":    "Pn2gB7vYm4hTf8Ko",
}

// fuzzConfigPlain are variables whose values are not secret.
var fuzzConfigPlain = map[string]string{
	"ISSUER":    "https://sso.example.com",
	"PORT":      "8080",
	"SUBJECT":   "unionid",
	"LOG_LEVEL": "info",
	"CLIENT_ID": "grafana",
	"CB":        "https://grafana.example.com/cb",
}

func fuzzConfigLookup(name string) (string, bool) {
	if v, ok := fuzzConfigSecrets[name]; ok {
		return v, true
	}
	v, ok := fuzzConfigPlain[name]
	return v, ok
}

// fuzzConfigMinimal is the table tests' valid config (config_test.go).
const fuzzConfigMinimal = validConfig

// leakedSecret returns the name of a secret variable some of whose value
// (any 6 consecutive bytes: yaml.v3 quotes the first 7 bytes of a long value)
// is in msg but not in the config text itself.
func leakedSecret(msg, raw string) string {
	for name, v := range fuzzConfigSecrets {
		for i := 0; i+6 <= len(v); i++ {
			if w := v[i : i+6]; strings.Contains(msg, w) && !strings.Contains(raw, w) {
				return name
			}
		}
	}
	return ""
}

func FuzzParse(f *testing.F) {
	example, err := os.ReadFile(filepath.Join("..", "config.example.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	ex := string(example)
	// Every variable the example references is known (as a secret), so that
	// the example parses even as it grows new ones.
	for _, m := range regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`).FindAllStringSubmatch(ex, -1) {
		if _, ok := fuzzConfigLookup(m[1]); !ok {
			sum := sha256.Sum256([]byte(m[1]))
			fuzzConfigSecrets[m[1]] = "G" + base64.RawURLEncoding.EncodeToString(sum[:12])
		}
	}
	seeds := []string{
		ex,
		fuzzConfigMinimal,
		strings.Replace(ex, "issuer: https://sso.example.com", "issuer: ${ISSUER}", 1),
		strings.Replace(ex, "listen: 0.0.0.0:8080", `listen: "0.0.0.0:${PORT}"`, 1),
		strings.Replace(ex, "subject: unionid", "subject: ${SUBJECT}", 1),
		strings.Replace(ex, "level: info", "level: ${LOG_LEVEL}", 1),
		strings.Replace(ex, "- id: grafana", "- id: ${CLIENT_ID}", 1),
		strings.Replace(ex, "redirect_uris: [https://grafana.example.com/login/generic_oauth]", `redirect_uris: ["${CB}"]`, 1),
		strings.Replace(fuzzConfigMinimal, "subject: unionid", "subject: ${SUBJECT}\nlisten: 0.0.0.0:${PORT}\nlog: {level: \"${LOG_LEVEL}\"}", 1),
		strings.Replace(ex, `password: ""`, `password: ${REDIS_PASSWORD}`, 1),
		strings.Replace(ex, "type: memory", "type: redis", 1),
		strings.Replace(strings.Replace(ex, "type: memory", "type: redis", 1), `addr: ""`, "addr: redis:6379", 1),
		strings.Replace(ex, "${WECHAT_OA_SECRET}", "${NOT_SET}", 1),
		strings.Replace(ex, "${WECHAT_OA_SECRET}", "$${WECHAT_OA_SECRET}", 1),
		strings.Replace(ex, "${WECHAT_OA_SECRET}", "${1BAD}", 1),
		strings.Replace(ex, "${WECHAT_OA_SECRET}", "pre-${WECHAT_OA_SECRET}-${GRAFANA_OIDC_SECRET}", 1),
		strings.Replace(ex, "timeout: 5s", "timeout: 5 seconds", 1),
		strings.Replace(ex, "code_ttl: 60s", "code_ttl: 1h", 1),
		strings.Replace(ex, "db: 0", "db: zero", 1),
		strings.Replace(ex, "require_pkce: false", "require_pkce: maybe", 1),
		strings.Replace(ex, "subject: unionid", "subject: email", 1),
		strings.Replace(ex, "level: info", "level: trace", 1),
		strings.Replace(ex, "token_endpoint_auth_method: \"\"", "token_endpoint_auth_method: none", 1),
		strings.Replace(ex, "issuer: https://sso.example.com", "issuer: http://127.0.0.1:8080/sso", 1),
		strings.Replace(ex, "issuer: https://sso.example.com", "issuer: https://user@sso.example.com/?q#f", 1),
		strings.Replace(ex, "redirect_uris: [https://grafana.example.com/login/generic_oauth]", "redirect_uris: [\"https://g.example.com/cb#x\", \"com.example.app:/cb\"]", 1),
		strings.Replace(ex, "secret: ${GRAFANA_OIDC_SECRET}", "secret_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", 1),
		strings.Replace(ex, "secret: ${GRAFANA_OIDC_SECRET}", "secret: short", 1),
		strings.Replace(fuzzConfigMinimal, "clients:\n", "clients:\n  - {id: grafana, secret: s, redirect_uris: [https://a/cb]}\n", 1),
		fuzzConfigMinimal + "issuerr: x\n",
		fuzzConfigMinimal + "issuer: https://b.example.com\n",
		fuzzConfigMinimal + "tokens: { code_ttl: soon }\n",
		fuzzConfigMinimal + "anchors: &a {x: *a}\n",
		"issuer: &i https://sso.example.com\nlisten: *i\n",
		"",
		"---\n",
		"- a\n- b\n",
		"a: [b",
		"hello",
		"issuer: !!binary aGVsbG8=\n",
		"issuer: [1, 2]\n",
		"wechat: {official_account: null}\n",
		"\xff\xfe",
	}
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		cfg, err := Parse(raw, fuzzConfigLookup)
		if err != nil {
			if cfg != nil {
				t.Fatalf("both a config and an error: %v", err)
			}
			if name := leakedSecret(err.Error(), string(raw)); name != "" {
				t.Fatalf("the error message shows the value of %s: %v", name, err)
			}
			return
		}
		if cfg == nil {
			t.Fatal("nil config and nil error")
		}
		if cfg.Issuer == "" {
			t.Fatal("accepted a config without an issuer")
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("ParseConfig accepted a config that Validate refuses: %v", err)
		}
		if cfg.WeChat.OfficialAccount == nil || len(cfg.Clients) == 0 {
			t.Fatalf("accepted a config without an official account or clients: %+v", cfg)
		}
		again, err := Parse(raw, fuzzConfigLookup)
		if err != nil || !reflect.DeepEqual(cfg, again) {
			t.Fatalf("parsing the same text twice differs: %v", err)
		}
	})
}
