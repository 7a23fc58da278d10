package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// cleanConfig has no warning; its secrets come from the environment.
const cleanConfig = `issuer: https://sso.example.com
wechat:
  official_account: { app_id: wx0123456789abcdef, app_secret: "${CHECK_OA_SECRET}" }
clients:
  - id: grafana
    secret: ${CHECK_CLIENT_SECRET}
    redirect_uris: [https://grafana.example.com/login/generic_oauth]
    allowed_groups: [grafana-users]
keys: { dir: "@DIR@/keys" }
directory: { type: sqlite, path: "@DIR@/people.db" }
`

const (
	checkOASecret     = "oa-secret-4fJ8kQ2m"
	checkClientSecret = "client-secret-9TzR3wXc"
)

// TestCheckConfig runs the command on files and checks its exit code and
// what it prints where: the summary and warnings on stdout, an error on
// stderr, never a secret, and nothing started: the key directory and the
// database named in the file are not created.
func TestCheckConfig(t *testing.T) {
	t.Setenv("CHECK_OA_SECRET", checkOASecret)
	t.Setenv("CHECK_CLIENT_SECRET", checkClientSecret)
	withWarnings := strings.Replace(cleanConfig, "issuer: https://sso.example.com", "issuer: https://sso.example.com/", 1)
	withWarnings = strings.Replace(withWarnings, "app_id: wx0123456789abcdef", "app_id: wx123", 1)
	cases := []struct {
		name       string
		file       string // "" = no file written
		args       []string
		code       int
		stdout     []string
		stderr     []string
		noFileFlag bool
	}{
		{name: "clean", file: cleanConfig, code: 0,
			stdout: []string{"issuer:     https://sso.example.com\n", "official account  on: wx0123456789abcdef", "grafana\n    redirect_uris: https://grafana.example.com/login/generic_oauth\n    may sign in:   members of grafana-users",
				"is valid, no warnings"}},
		{name: "warnings", file: withWarnings, code: 0,
			stdout: []string{"warnings (2):\n  issuer: \"https://sso.example.com/\" ends with a slash", "    fix: write issuer: https://sso.example.com,",
				"  wechat.official_account.app_id: does not look like a WeChat app id", "is valid, with 2 warnings (--strict would refuse it)"}},
		{name: "warnings with --strict", file: withWarnings, args: []string{"--strict"}, code: 1,
			stdout: []string{"warnings (2):", "refused:", "has 2 warnings, and --strict makes them errors"}},
		{name: "clean with --strict", file: cleanConfig, args: []string{"--strict"}, code: 0, stdout: []string{"no warnings"}},
		{name: "error", file: strings.Replace(cleanConfig, "people.db\" }", "people.db\" }\ntokens: { code_ttl: 5 seconds }", 1), code: 1,
			stderr: []string{"error: config ", "tokens.code_ttl (line 11)", `"5 seconds" is not a duration`, "serve would not start"}},
		{name: "error naming an unset variable", file: strings.Replace(cleanConfig, "${CHECK_OA_SECRET}", "${CHECK_UNSET_SECRET}", 1), code: 1,
			stderr: []string{"wechat.official_account.app_secret (line 3): environment variable CHECK_UNSET_SECRET is not set"}},
		{name: "missing file", args: []string{"--config", "does-not-exist.yaml"}, noFileFlag: true, code: 1,
			stderr: []string{"does-not-exist.yaml", "serve would not start"}},
		{name: "no --config", noFileFlag: true, code: 2, stderr: []string{"usage: wechat-oidc check-config --config FILE [--strict]"}},
		{name: "unknown flag", file: cleanConfig, args: []string{"--frobnicate"}, code: 2, stderr: []string{"flag provided but not defined: -frobnicate"}},
		{name: "extra argument", file: cleanConfig, args: []string{"other.yaml"}, code: 2, stderr: []string{"usage:"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			args := []string{"check-config"}
			if !tc.noFileFlag {
				path := filepath.Join(dir, "config.yaml")
				if err := os.WriteFile(path, []byte(strings.ReplaceAll(tc.file, "@DIR@", dir)), 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--config", path)
			}
			args = append(args, tc.args...)
			var stdout, stderr bytes.Buffer
			code := run(args, &stdout, &stderr)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout.String(), stderr.String())
			}
			for _, w := range tc.stdout {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout.String())
				}
			}
			for _, w := range tc.stderr {
				if !strings.Contains(stderr.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr.String())
				}
			}
			if tc.code == 0 && stderr.Len() > 0 {
				t.Errorf("stderr on success: %s", stderr.String())
			}
			for _, secret := range []string{checkOASecret, checkClientSecret} {
				if strings.Contains(stdout.String()+stderr.String(), secret) {
					t.Errorf("a secret was printed:\n%s%s", stdout.String(), stderr.String())
				}
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				if e.Name() != "config.yaml" {
					t.Errorf("check-config created %s: it must not open the store, the keys or the directory", e.Name())
				}
			}
		})
	}
}
