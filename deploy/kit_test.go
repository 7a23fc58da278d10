package deploy_test

import (
	"bytes"
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/wechat-oidc/wechat-oidc/config"
)

// dummyValue stands in for every secret: 32 bytes in base64 (a valid
// keys.encryption_key) and longer than the 16 characters a client secret needs.
const dummyValue = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// documents decodes every YAML document of a file into maps.
func documents(t *testing.T, path string) []map[string]any {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(readFile(t, path)))
	var docs []map[string]any
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if d != nil {
			docs = append(docs, d)
		}
	}
}

// decodeInto re-decodes a generic document into a typed one.
func decodeInto(t *testing.T, doc map[string]any, v any) {
	t.Helper()
	b, err := yaml.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

var subcommandsCache []string

// subcommands are the names `wechat-oidc` dispatches on: the string cases of
// the switch in cmd/wechat-oidc's run, read from its source.
func subcommands(t *testing.T) []string {
	t.Helper()
	if subcommandsCache != nil {
		return subcommandsCache
	}
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join("..", "cmd", "wechat-oidc", "main.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	ast.Inspect(f, func(n ast.Node) bool {
		fn, ok := n.(*ast.FuncDecl)
		if !ok || fn.Name.Name != "run" {
			return true
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			if cc, ok := n.(*ast.CaseClause); ok {
				for _, e := range cc.List {
					if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
						if s, err := strconv.Unquote(lit.Value); err == nil && !strings.HasPrefix(s, "-") {
							names = append(names, s)
						}
					}
				}
			}
			return true
		})
		return false
	})
	if !slices.Contains(names, "serve") || !slices.Contains(names, "healthcheck") {
		t.Fatalf("could not read the subcommands from cmd/wechat-oidc/main.go (found %v)", names)
	}
	subcommandsCache = names
	return names
}

func requireSubcommand(t *testing.T, where string, args []string) {
	t.Helper()
	if len(args) == 0 {
		t.Errorf("%s: no arguments", where)
		return
	}
	if !slices.Contains(subcommands(t), args[0]) {
		t.Errorf("%s: %q is not a wechat-oidc subcommand (it has %v)", where, args[0], subcommands(t))
	}
}

// flagValue is the value of --name in args (--name=value or --name value).
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
		if a == "--"+name && i+1 < len(args) {
			return args[i+1], true
		}
	}
	return "", false
}

func flagValues(args []string, name string) []string {
	var vs []string
	for i, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			vs = append(vs, v)
		} else if a == "--"+name && i+1 < len(args) {
			vs = append(vs, args[i+1])
		}
	}
	return vs
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// variables are the ${VAR} names a configuration text references.
func variables(text string) []string {
	var names []string
	for _, m := range envRef.FindAllStringSubmatch(text, -1) {
		if !slices.Contains(names, m[1]) {
			names = append(names, m[1])
		}
	}
	return names
}

// parseConfig validates a configuration as serve does, with ${VAR} from env.
func parseConfig(t *testing.T, name string, raw []byte, env map[string]string) *config.Options {
	t.Helper()
	f, err := config.Parse(raw, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatalf("%s does not pass config validation: %v", name, err)
	}
	return f.Options()
}

func warningKeys(o *config.Options) []string {
	var keys []string
	for _, w := range o.Warnings() {
		keys = append(keys, w.Key)
	}
	return keys
}

func port(t *testing.T, hostport string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatalf("%q: %v", hostport, err)
	}
	return p
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return u
}

// issuerPath is the issuer's path without a trailing slash: every route of
// the bridge is under it.
func issuerPath(t *testing.T, issuer string) string {
	return strings.TrimSuffix(mustURL(t, issuer).Path, "/")
}
