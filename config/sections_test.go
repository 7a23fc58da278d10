package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sectionsConfig has secrets outside the people sections (WeChat, a client)
// and a ${DATABASE_URL} inside one.
const sectionsConfig = `
issuer: https://sso.example.com
wechat:
  official_account: { app_id: wx123, app_secret: "${OA_SECRET}" }
clients:
  - id: grafana
    secret: ${GRAFANA_SECRET}
    redirect_uris: [https://grafana.example.com/login/generic_oauth]
    allowed_groups: [ops]
directory: { type: postgres, url: "${DATABASE_URL}" }
access: { mode: invite, admin_group: root }
`

var peopleSections = []string{"issuer", "directory", "access", "audit"}

// TestParseSectionsIgnoresUnsetSecretsElsewhere: the people commands run
// without the WeChat and client secrets in their environment.
func TestParseSectionsIgnoresUnsetSecretsElsewhere(t *testing.T) {
	f, err := ParseSections([]byte(sectionsConfig), env(map[string]string{"DATABASE_URL": "postgres://u:pw@db/x"}), peopleSections...)
	if err != nil {
		t.Fatal(err)
	}
	o := f.Options()
	if o.Issuer != "https://sso.example.com" || o.Directory.URL != "postgres://u:pw@db/x" || o.Directory.Type != "postgres" {
		t.Fatalf("named sections not read: %+v %+v", o.Issuer, o.Directory)
	}
	if o.Access.Mode != AccessInvite || o.Access.AdminGroup != "root" || o.Audit.Retention == 0 {
		t.Fatalf("access/audit not read or defaulted: %+v %+v", o.Access, o.Audit)
	}
	if len(o.Clients) != 1 || o.Clients[0].ID != "grafana" || o.Clients[0].Secret != "" {
		t.Fatalf("clients: want the id read and the unset secret empty, got %+v", o.Clients)
	}
	if o.WeChat.OfficialAccount.AppSecret != "" {
		t.Fatalf("an unset variable outside the sections should read as empty, got %q", o.WeChat.OfficialAccount.AppSecret)
	}
	// The same file is refused by Parse: the leniency is ParseSections' only.
	if _, err := Parse([]byte(sectionsConfig), env(map[string]string{"DATABASE_URL": "postgres://u:pw@db/x"})); err == nil ||
		!strings.Contains(err.Error(), "OA_SECRET is not set") {
		t.Fatalf("Parse should still require every variable: %v", err)
	}
}

// TestParseSectionsExpandsSetVariablesElsewhere: a variable that is set
// expands wherever it is (a client id may come from the environment).
func TestParseSectionsExpandsSetVariablesElsewhere(t *testing.T) {
	text := strings.Replace(sectionsConfig, "id: grafana", "id: ${CLIENT_ID}", 1)
	f, err := ParseSections([]byte(text), env(map[string]string{"DATABASE_URL": "postgres://db/x", "CLIENT_ID": "grafana-prod"}), peopleSections...)
	if err != nil {
		t.Fatal(err)
	}
	if f.Clients[0].ID != "grafana-prod" {
		t.Fatalf("client id %q", f.Clients[0].ID)
	}
}

func TestParseSectionsErrors(t *testing.T) {
	dbEnv := env(map[string]string{"DATABASE_URL": "postgres://db/x"})
	cases := []struct {
		name, from, to string
		lookup         func(string) (string, bool)
		want           []string
	}{
		{"unset variable in a named section", "", "", env(nil), []string{"directory.url", "DATABASE_URL is not set"}},
		{"named section invalid", "type: postgres", "type: mysql", dbEnv, []string{"directory.type"}},
		{"access invalid", "mode: invite", "mode: everyone", dbEnv, []string{"access.mode"}},
		{"allowed group invalid", "allowed_groups: [ops]", "allowed_groups: [Bad Group]", dbEnv, []string{"allowed_groups[0]"}},
		{"issuer missing", "issuer: https://sso.example.com", "", dbEnv, []string{"issuer is missing"}},
		{"issuer not https", "issuer: https://sso.example.com", "issuer: http://sso.example.com", dbEnv, []string{"https"}},
		{"unknown key anywhere", "    allowed_groups: [ops]", "    allowed_group: [ops]", dbEnv, []string{`unknown key "clients[0].allowed_group"`}},
		{"wrong type anywhere", "    allowed_groups: [ops]", "    require_pkce: maybe", dbEnv, []string{"line 9", "maybe"}},
		{"not yaml", "issuer: https://sso.example.com", "issuer: [", dbEnv, []string{"not valid YAML"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(sectionsConfig, tc.from) {
				t.Fatalf("test setup: %q not in the config", tc.from)
			}
			text := strings.Replace(sectionsConfig, tc.from, tc.to, 1)
			_, err := ParseSections([]byte(text), tc.lookup, peopleSections...)
			if err == nil {
				t.Fatalf("accepted:\n%s", text)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestParseSectionsRedactsNamedSecrets: an error in a named section does
// not quote a value that came from the environment.
func TestParseSectionsRedactsNamedSecrets(t *testing.T) {
	text := strings.Replace(sectionsConfig, `directory: { type: postgres, url: "${DATABASE_URL}" }`,
		`directory: { type: "${DB_TYPE}", url: "${DATABASE_URL}" }`, 1)
	_, err := ParseSections([]byte(text), env(map[string]string{"DATABASE_URL": "postgres://db/x", "DB_TYPE": "s3cr3t-typo"}), peopleSections...)
	if err == nil || strings.Contains(err.Error(), "s3cr3t-typo") || !strings.Contains(err.Error(), "${DB_TYPE}") {
		t.Fatalf("want the value replaced by ${DB_TYPE}: %v", err)
	}
}

func TestParseSectionsUnknownSection(t *testing.T) {
	_, err := ParseSections([]byte(sectionsConfig), env(nil), "wechat")
	if err == nil || !strings.Contains(err.Error(), `"wechat"`) || !strings.Contains(err.Error(), "supported: access, audit, directory, issuer") {
		t.Fatalf("got %v", err)
	}
}

func TestParseSectionsLiteralDollarIsNotRequired(t *testing.T) {
	text := strings.Replace(sectionsConfig, `url: "${DATABASE_URL}"`, `url: "postgres://db/x?application_name=a$${LITERAL}"`, 1)
	f, err := ParseSections([]byte(text), env(nil), peopleSections...)
	if err != nil {
		t.Fatal(err)
	}
	if f.Directory.URL != "postgres://db/x?application_name=a${LITERAL}" {
		t.Fatalf("url %q", f.Directory.URL)
	}
}

func TestLoadSectionsReadsTheEnvironment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte(sectionsConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DATABASE_URL", "postgres://db/from-env")
	o, err := LoadSections(path, peopleSections...)
	if err != nil {
		t.Fatal(err)
	}
	if o.Directory.URL != "postgres://db/from-env" {
		t.Fatalf("url %q", o.Directory.URL)
	}
	if _, err := LoadSections(filepath.Join(t.TempDir(), "missing.yaml"), peopleSections...); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Fatalf("missing file: %v", err)
	}
}
