package config

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// guidesWithCheckedYAML are the integration guides whose ```yaml blocks are
// each a valid configuration once added to a minimal one (issuer, WeChat
// app, keys, directory): what `wechat-oidc check-config --strict` accepts,
// no warnings.
var guidesWithCheckedYAML = []string{"keycloak.md"}

func TestIntegrationGuideYAMLPassesCheckConfig(t *testing.T) {
	// The secrets the guides name, as dummies.
	t.Setenv("WECHAT_APP_ID", "wx0123456789abcdef")
	t.Setenv("WECHAT_APP_SECRET", "dummy-app-secret-0123456789abcdef")
	t.Setenv("KEYCLOAK_OIDC_SECRET", "dummy-client-secret-0123456789abcdef")
	yamlBlock := regexp.MustCompile("(?s)```yaml\n(.*?)```")
	for _, guide := range guidesWithCheckedYAML {
		doc, err := os.ReadFile(filepath.Join("..", "docs", "integrations", guide))
		if err != nil {
			t.Fatal(err)
		}
		blocks := yamlBlock.FindAllSubmatch(doc, -1)
		if len(blocks) == 0 {
			t.Fatalf("%s has no yaml block", guide)
		}
		for i, b := range blocks {
			dir := t.TempDir()
			base := "issuer: https://sso.example.com\n" +
				"wechat:\n  official_account:\n    app_id: ${WECHAT_APP_ID}\n    app_secret: ${WECHAT_APP_SECRET}\n" +
				"keys:\n  dir: " + dir + "\n" +
				"directory:\n  type: sqlite\n  path: " + filepath.Join(dir, "directory.db") + "\n"
			path := filepath.Join(dir, "config.yaml")
			if err := os.WriteFile(path, append([]byte(base), b[1]...), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, err := Load(path)
			if err != nil {
				t.Errorf("%s, yaml block %d: %v", guide, i+1, err)
				continue
			}
			for _, w := range cfg.Warnings() {
				t.Errorf("%s, yaml block %d: warning %s: %s", guide, i+1, w.Key, w.Message)
			}
		}
	}
}
