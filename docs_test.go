package wechatoidc_test

import (
	"bufio"
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/wechat-oidc/wechat-oidc/config"
)

// The tests of this file hold the README and the docs to what they claim:
// every doc is linked, every link leads somewhere, every configuration they
// show passes check-config, and every metric and configuration key the
// operations guide names exists.

// docFiles are docs/*.md and docs/integrations/*.md, as repository paths.
func docFiles(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, pattern := range []string{"docs/*.md", "docs/integrations/*.md"} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m...)
	}
	if len(out) < 10 {
		t.Fatalf("found only %d docs under docs/: is the test running at the repository root?", len(out))
	}
	sort.Strings(out)
	return out
}

func readDoc(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// mdLink is a Markdown link's target: [text](target).
var mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// localTargets are the relative link targets of a Markdown file, resolved
// to repository paths, without their #anchor.
func localTargets(path, text string) map[string]bool {
	out := map[string]bool{}
	for _, m := range mdLink.FindAllStringSubmatch(text, -1) {
		target := m[1]
		if strings.Contains(target, "://") || strings.HasPrefix(target, "#") || strings.HasPrefix(target, "mailto:") {
			continue
		}
		target, _, _ = strings.Cut(target, "#")
		out[filepath.Clean(filepath.Join(filepath.Dir(path), target))] = true
	}
	return out
}

// TestReadmeLinksEveryDoc: a newcomer reading the README finds every doc.
func TestReadmeLinksEveryDoc(t *testing.T) {
	linked := localTargets("README.md", readDoc(t, "README.md"))
	for _, doc := range docFiles(t) {
		if !linked[doc] {
			t.Errorf("README.md does not link %s: add it to the README's Docs list", doc)
		}
	}
}

// TestDocLinksResolve: every relative link of the README and the docs
// names a file or directory of the repository.
func TestDocLinksResolve(t *testing.T) {
	for _, path := range append([]string{"README.md"}, docFiles(t)...) {
		for target := range localTargets(path, readDoc(t, path)) {
			if _, err := os.Stat(target); err != nil {
				t.Errorf("%s links %s, which does not exist", path, target)
			}
		}
	}
}

// yamlBlock is a fenced ```yaml block of a Markdown file.
type yamlBlock struct {
	line int // of the opening fence
	text string
}

func yamlBlocks(t *testing.T, text string) []yamlBlock {
	t.Helper()
	var blocks []yamlBlock
	var cur *yamlBlock
	indent := ""
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case cur == nil && trimmed == "```yaml":
			cur = &yamlBlock{line: n}
			indent = line[:len(line)-len(strings.TrimLeft(line, " "))]
		case cur != nil && trimmed == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.text += strings.TrimPrefix(line, indent) + "\n"
		}
	}
	if cur != nil {
		t.Fatalf("a ```yaml block opened at line %d is not closed", cur.line)
	}
	return blocks
}

// snippetBase is what a guide's fragment (usually just clients:) is checked
// in: a minimal single-instance configuration without warnings. The
// fragment's top-level keys replace the base's.
const snippetBase = `
issuer: https://sso.example.com
wechat:
  official_account: { app_id: wx0123456789abcdef, app_secret: "${WECHAT_OA_SECRET}" }
clients:
  - id: base
    secret: ${BASE_SECRET}
    redirect_uris: [https://base.example.com/callback]
store: { type: memory }
keys: { dir: /var/lib/wechat-oidc/keys }
directory: { type: sqlite, path: /var/lib/wechat-oidc/wechat-oidc.db }
`

// dummyEnv gives every ${VAR} the same dummy: 32 bytes in standard base64
// (a valid keys.encryption_key, a long enough client secret, and a
// password that needs no escaping in a URL).
func dummyEnv(string) (string, bool) {
	return "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", true
}

// topLevelKeys are config.File's top-level keys.
func topLevelKeys() map[string]bool {
	out := map[string]bool{}
	rt := reflect.TypeOf(config.File{})
	for i := 0; i < rt.NumField(); i++ {
		if tag := strings.Split(rt.Field(i).Tag.Get("yaml"), ",")[0]; tag != "" && tag != "-" {
			out[tag] = true
		}
	}
	return out
}

// configSnippets are the wechat-oidc configurations among a doc's yaml
// blocks, as full files: a block with only top-level keys of the
// configuration (a complete file, or a fragment merged into snippetBase).
// A block with none of them (a docker compose file) is not one; a block
// with some of each is an error.
func configSnippets(t *testing.T, path string) (snippets []yamlBlock) {
	t.Helper()
	known := topLevelKeys()
	for _, b := range yamlBlocks(t, readDoc(t, path)) {
		var frag yaml.Node
		if err := yaml.Unmarshal([]byte(b.text), &frag); err != nil {
			t.Errorf("%s line %d: the yaml block does not parse: %v", path, b.line, err)
			continue
		}
		if len(frag.Content) == 0 || frag.Content[0].Kind != yaml.MappingNode {
			continue
		}
		m := frag.Content[0]
		var ours, other []string
		for i := 0; i+1 < len(m.Content); i += 2 {
			if k := m.Content[i].Value; known[k] {
				ours = append(ours, k)
			} else {
				other = append(other, k)
			}
		}
		switch {
		case len(ours) == 0:
			continue
		case len(other) > 0:
			t.Errorf("%s line %d: the yaml block mixes configuration keys %v with unknown keys %v", path, b.line, ours, other)
			continue
		}
		if slices.Contains(ours, "issuer") {
			snippets = append(snippets, b) // a complete file
			continue
		}
		var base yaml.Node
		if err := yaml.Unmarshal([]byte(snippetBase), &base); err != nil {
			t.Fatal(err)
		}
		bm := base.Content[0]
		for i := 0; i+1 < len(m.Content); i += 2 {
			replaced := false
			for j := 0; j+1 < len(bm.Content); j += 2 {
				if bm.Content[j].Value == m.Content[i].Value {
					bm.Content[j+1] = m.Content[i+1]
					replaced = true
				}
			}
			if !replaced {
				bm.Content = append(bm.Content, m.Content[i], m.Content[i+1])
			}
		}
		var buf bytes.Buffer
		enc := yaml.NewEncoder(&buf)
		if err := enc.Encode(&base); err != nil {
			t.Fatal(err)
		}
		snippets = append(snippets, yamlBlock{line: b.line, text: buf.String()})
	}
	return snippets
}

// TestDocConfigSnippetsPassCheckConfig: every wechat-oidc configuration the
// README and the docs show is one `wechat-oidc check-config --strict`
// accepts (with its ${VAR}s set to dummies): valid, and without warnings.
// The README's quick start, which must work with Grafana as it stands, is
// one of them.
func TestDocConfigSnippetsPassCheckConfig(t *testing.T) {
	checked := map[string]int{}
	for _, path := range append([]string{"README.md"}, docFiles(t)...) {
		for _, s := range configSnippets(t, path) {
			checked[path]++
			f, err := config.Parse([]byte(s.text), dummyEnv)
			if err != nil {
				t.Errorf("%s: the configuration at line %d is refused: %v\n%s", path, s.line, err, s.text)
				continue
			}
			for _, w := range f.Options().Warnings() {
				t.Errorf("%s: the configuration at line %d has a warning: %s: %s", path, s.line, w.Key, w.Message)
			}
		}
	}
	t.Logf("configurations checked per file: %v", checked)
	// The files whose snippets this test exists for must have some: a
	// change of fence or of layout must not make the test check nothing.
	for _, path := range []string{"README.md", "docs/operations.md", "docs/integrations/oauth2-proxy.md",
		"docs/integrations/gitlab.md", "docs/integrations/any-oidc-client.md"} {
		if checked[path] == 0 {
			t.Errorf("%s: no wechat-oidc configuration found in its ```yaml blocks", path)
		}
	}
}

// TestReadmeQuickStartIsForGrafana: the README's quick start gives Grafana
// what docs/integrations/grafana.md's grafana.ini needs from its client:
// the callback, an email for everyone, PKCE accepted, the logout return,
// and admission through directory groups rather than everyone with WeChat.
func TestReadmeQuickStartIsForGrafana(t *testing.T) {
	snippets := configSnippets(t, "README.md")
	if len(snippets) != 1 {
		t.Fatalf("README.md has %d wechat-oidc configurations, want the quick start's one", len(snippets))
	}
	f, err := config.Parse([]byte(snippets[0].text), dummyEnv)
	if err != nil {
		t.Fatal(err)
	}
	o := f.Options()
	if o.Access.Mode == config.AccessOpen {
		t.Error("the quick start admits everyone with WeChat (access.mode: open)")
	}
	found := false
	for _, c := range f.Clients {
		if c.ID != "grafana" {
			continue
		}
		found = true
		if !slices.Contains(c.RedirectURIs, "https://grafana.example.com/login/generic_oauth") {
			t.Errorf("the grafana client's redirect_uris %v lack Grafana's callback", c.RedirectURIs)
		}
		if !slices.Contains(c.PostLogoutRedirectURIs, "https://grafana.example.com/login") {
			t.Errorf("the grafana client's post_logout_redirect_uris %v lack grafana.md's signout return", c.PostLogoutRedirectURIs)
		}
		if c.Claims.Email == "" {
			t.Error("the grafana client has no claims.email: Grafana refuses a sign-in without an email")
		}
		if len(c.AllowedGroups) == 0 {
			t.Error("the grafana client has no allowed_groups: every admitted person could use Grafana")
		}
	}
	if !found {
		t.Fatal("the quick start has no client with id grafana")
	}
	grafanaDoc := readDoc(t, "docs/integrations/grafana.md")
	for _, want := range []string{"client_id = grafana", "scopes = openid profile email groups", "use_pkce = true"} {
		if !strings.Contains(grafanaDoc, want) {
			t.Errorf("docs/integrations/grafana.md no longer has %q, which the README's quick start relies on", want)
		}
	}
}

// sourceMetricNames are the metric names the program registers: the
// metrics package's Name: fields and every GaugeFunc call, with the
// namespace. Read from the source, because the vectors only appear in a
// scrape once something was recorded.
func sourceMetricNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	fields := regexp.MustCompile(`Namespace: namespace, Name: "([a-z_]+)"`)
	src := readDoc(t, "metrics/metrics.go")
	for _, m := range fields.FindAllStringSubmatch(src, -1) {
		names["wechat_oidc_"+m[1]] = true
	}
	if len(names) < 7 {
		t.Fatalf("found only %d metric definitions in metrics/metrics.go: has their form changed?", len(names))
	}
	gauge := regexp.MustCompile(`\.GaugeFunc\("([a-z_]+)"`)
	gauges := 0
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != ".") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range gauge.FindAllStringSubmatch(string(raw), -1) {
			names["wechat_oidc_"+m[1]] = true
			gauges++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if gauges == 0 {
		t.Fatal("found no GaugeFunc call: has its form changed?")
	}
	return names
}

// TestOperationsMetricsExist: every wechat_oidc_ metric docs/operations.md
// names (in its table or its alerts) is one the program registers, and
// every metric the program registers is in the table.
func TestOperationsMetricsExist(t *testing.T) {
	doc := readDoc(t, "docs/operations.md")
	registered := sourceMetricNames(t)
	named := regexp.MustCompile(`wechat_oidc_[a-z_]+`)
	seen := map[string]bool{}
	for _, m := range named.FindAllString(doc, -1) {
		base := m
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(m, suffix); ok && registered[b] {
				base = b
			}
		}
		seen[base] = true
		if !registered[base] {
			t.Errorf("docs/operations.md names the metric %s, which the program does not register", m)
		}
	}
	for name := range registered {
		if !strings.Contains(doc, "| `"+name+"` |") {
			t.Errorf("docs/operations.md's metrics table has no row for %s", name)
		}
	}
}

// configKeyPaths are every key path of config.File (clients[].id, ...).
func configKeyPaths() map[string]bool {
	out := map[string]bool{}
	var walk func(rt reflect.Type, prefix string)
	walk = func(rt reflect.Type, prefix string) {
		for rt.Kind() == reflect.Pointer {
			rt = rt.Elem()
		}
		if rt.Kind() == reflect.Slice {
			e := rt.Elem()
			for e.Kind() == reflect.Pointer {
				e = e.Elem()
			}
			if e.Kind() == reflect.Struct {
				rt, prefix = e, prefix+"[]"
			}
		}
		if rt.Kind() != reflect.Struct || rt == reflect.TypeOf(config.Duration(0)) {
			return
		}
		for i := 0; i < rt.NumField(); i++ {
			tag := strings.Split(rt.Field(i).Tag.Get("yaml"), ",")[0]
			if tag == "" || tag == "-" {
				continue
			}
			p := tag
			if prefix != "" {
				p = prefix + "." + tag
			}
			out[p] = true
			walk(rt.Field(i).Type, p)
		}
	}
	walk(reflect.TypeOf(config.File{}), "")
	return out
}

// TestOperationsConfigKeysExist: every `section.key` docs/operations.md
// names in backticks is a key of the configuration.
func TestOperationsConfigKeysExist(t *testing.T) {
	doc := readDoc(t, "docs/operations.md")
	keys := configKeyPaths()
	sections := topLevelKeys()
	code := regexp.MustCompile("`([a-z_]+(?:\\[\\])?(?:\\.[a-z_]+(?:\\[\\])?)+)`")
	checked := 0
	for _, m := range code.FindAllStringSubmatch(doc, -1) {
		section, _, _ := strings.Cut(m[1], ".")
		if !sections[strings.TrimSuffix(section, "[]")] {
			continue // a file name, a Go identifier, a metric
		}
		checked++
		if !keys[m[1]] {
			t.Errorf("docs/operations.md names the configuration key %s, which does not exist", m[1])
		}
	}
	if checked < 20 {
		t.Fatalf("checked only %d configuration keys in docs/operations.md: has their form changed?", checked)
	}
}

// testName is a Go test or benchmark function name as the docs cite it;
// a name followed by * or … is a prefix that some test must have.
var testName = regexp.MustCompile("`((?:Test|Benchmark|Fuzz)[A-Z][A-Za-z0-9_]*)(\\*|…)?")

// TestDocsCiteTestsThatExist: every test, benchmark or fuzz target the
// README or a doc names (in backquotes) is a function of some _test.go
// file, so that a renamed or deleted test cannot stay cited as proof.
func TestDocsCiteTestsThatExist(t *testing.T) {
	defined := map[string]bool{}
	decl := regexp.MustCompile(`(?m)^func ((?:Test|Benchmark|Fuzz)[A-Za-z0-9_]*)\(`)
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, "_test.go") {
			raw, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range decl.FindAllStringSubmatch(string(raw), -1) {
				defined[m[1]] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(defined) < 100 {
		t.Fatalf("found only %d test functions: is the test running at the repository root?", len(defined))
	}
	for _, path := range append([]string{"README.md"}, docFiles(t)...) {
		for _, m := range testName.FindAllStringSubmatch(readDoc(t, path), -1) {
			if m[2] != "" {
				if !slices.ContainsFunc(slices.Collect(maps.Keys(defined)), func(n string) bool { return strings.HasPrefix(n, m[1]) }) {
					t.Errorf("%s cites %s%s, but no test's name starts with %s", path, m[1], m[2], m[1])
				}
				continue
			}
			if !defined[m[1]] {
				t.Errorf("%s cites %s, which no _test.go file defines", path, m[1])
			}
		}
	}
}
