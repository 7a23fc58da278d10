package config

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// keyPath is one key of the file: its path (clients[].secret) and type.
type keyPath struct {
	path string
	typ  reflect.Type
}

// keyPaths lists every key of File, depth first, slices of structs as [].
func keyPaths() []keyPath {
	var paths []keyPath
	var walk func(rt reflect.Type, prefix string)
	walk = func(rt reflect.Type, prefix string) {
		for rt.Kind() == reflect.Pointer {
			rt = rt.Elem()
		}
		if rt.Kind() == reflect.Slice && elem(rt).Kind() == reflect.Struct {
			rt, prefix = elem(rt), prefix+"[]"
		}
		if rt.Kind() != reflect.Struct || rt == durationType {
			return
		}
		for i := 0; i < rt.NumField(); i++ {
			tag := strings.Split(rt.Field(i).Tag.Get("yaml"), ",")[0]
			if tag == "" || tag == "-" {
				continue
			}
			p := joinPath(prefix, tag)
			paths = append(paths, keyPath{p, rt.Field(i).Type})
			walk(rt.Field(i).Type, p)
		}
	}
	walk(reflect.TypeOf(File{}), "")
	return paths
}

func elem(t reflect.Type) reflect.Type {
	t = t.Elem()
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// docRow is one row of a key table of docs/configuration.md.
type docRow struct {
	key, def string
	line     int
}

var backticked = regexp.MustCompile("^`([^`]*)`$")

// configurationDoc reads the key tables (header "| Key | Default | ...")
// and the headings of docs/configuration.md.
func configurationDoc(t *testing.T) (rows []docRow, headings string) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	inKeys := false
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "#"):
			headings += line + "\n"
		case strings.HasPrefix(line, "| Key | Default |"):
			inKeys = true
		case !strings.HasPrefix(line, "|"):
			inKeys = false
		case inKeys && !strings.HasPrefix(line, "|---"):
			cells := strings.Split(strings.ReplaceAll(line, `\|`, "¦"), "|")
			if len(cells) < 5 {
				t.Fatalf("docs/configuration.md line %d: a key row needs Key, Default, Example and What it does", n)
			}
			m := backticked.FindStringSubmatch(strings.TrimSpace(cells[1]))
			if m == nil {
				t.Errorf("docs/configuration.md line %d: the key cell %q is not one `key`", n, strings.TrimSpace(cells[1]))
				continue
			}
			rows = append(rows, docRow{key: m[1], def: strings.TrimSpace(cells[2]), line: n})
		}
	}
	if len(rows) == 0 {
		t.Fatal("docs/configuration.md has no key table")
	}
	return rows, headings
}

// valueAt is the value at a key path in v (a File), following clients[]
// into the first client; a nil pointer on the way yields the zero value.
func valueAt(v reflect.Value, path string) reflect.Value {
	for _, part := range strings.Split(path, ".") {
		name, slice := strings.CutSuffix(part, "[]")
		for v.Kind() == reflect.Pointer {
			if v.IsNil() {
				v = reflect.Zero(v.Type().Elem())
				continue
			}
			v = v.Elem()
		}
		if v.Kind() != reflect.Struct {
			return reflect.Value{} // inside a map (wechat.verify_files) or a list
		}
		f, ok := yamlField(v.Type(), name)
		if !ok {
			return reflect.Value{}
		}
		v = v.FieldByIndex(f.Index)
		if slice {
			if v.Len() == 0 {
				v = reflect.Zero(v.Type().Elem())
			} else {
				v = v.Index(0)
			}
		}
	}
	for v.Kind() == reflect.Pointer && !v.IsNil() {
		v = v.Elem()
	}
	return v
}

// TestConfigurationDocIsComplete: docs/configuration.md and the program
// cannot drift. Every key of File has a row (a top-level section may be a
// heading instead), every row names a key that exists, and a default
// written as a literal is the default the program applies — and the value
// config.example.yaml shows; "—" means the program leaves the key empty.
func TestConfigurationDocIsComplete(t *testing.T) {
	rows, headings := configurationDoc(t)
	documented := map[string]docRow{}
	for _, r := range rows {
		if _, dup := documented[r.key]; dup {
			t.Errorf("docs/configuration.md line %d: %s has two rows", r.line, r.key)
		}
		documented[r.key] = r
	}
	types := map[string]reflect.Type{}
	for _, k := range keyPaths() {
		types[k.path] = k.typ
		if _, ok := documented[k.path]; ok {
			continue
		}
		topSection := !strings.Contains(k.path, ".") && reflect.Indirect(reflect.New(k.typ)).Kind() == reflect.Struct
		if topSection && strings.Contains(headings, "`"+k.path+"`") {
			continue
		}
		t.Errorf("docs/configuration.md does not document %s", k.path)
	}
	for _, r := range rows {
		if _, ok := types[r.key]; !ok {
			t.Errorf("docs/configuration.md line %d documents %s, which is not a key of the configuration", r.line, r.key)
		}
	}

	// The defaults: a minimal file, defaulted as the program does; the
	// keys it sets itself say nothing about defaults.
	f, err := Parse([]byte(validConfig), testEnv)
	if err != nil {
		t.Fatal(err)
	}
	set := writtenValues(t, []byte(validConfig))
	example := writtenValues(t, readExample(t))
	for _, r := range rows {
		typ, ok := types[r.key]
		if _, isSet := set[r.key]; !ok || isSet {
			continue
		}
		actual := valueAt(reflect.ValueOf(f).Elem(), r.key)
		switch m := backticked.FindStringSubmatch(r.def); {
		case r.def == "—":
			if !actual.IsZero() {
				t.Errorf("docs/configuration.md line %d: %s has no default, but the program defaults it to %s", r.line, r.key, show(actual))
			}
		case m != nil:
			want := reflect.New(typ)
			var n yaml.Node
			err := yaml.Unmarshal([]byte(m[1]), &n)
			if err == nil && len(n.Content) == 1 {
				err = n.Content[0].Decode(want.Interface())
			}
			if err != nil {
				t.Errorf("docs/configuration.md line %d: the default `%s` of %s does not parse as its type: %v", r.line, m[1], r.key, err)
				continue
			}
			w := want.Elem()
			for w.Kind() == reflect.Pointer && !w.IsNil() {
				w = w.Elem()
			}
			if !reflect.DeepEqual(w.Interface(), actual.Interface()) {
				t.Errorf("docs/configuration.md line %d: %s defaults to `%s` there, the program to %s", r.line, r.key, m[1], show(actual))
			}
			if ex, ok := example[r.key]; ok && !reflect.DeepEqual(ex.Interface(), actual.Interface()) {
				t.Errorf("config.example.yaml shows %s: %s, not its default %s", r.key, show(ex), show(actual))
			}
		}
	}
}

func readExample(t *testing.T) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "config.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// writtenValues are the values a configuration text writes, by key path
// (decoded into File, ${VAR} unexpanded; clients[] is its first client).
func writtenValues(t *testing.T, raw []byte) map[string]reflect.Value {
	t.Helper()
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		t.Fatal(err)
	}
	present := map[string]bool{}
	var walk func(n *yaml.Node, path string)
	walk = func(n *yaml.Node, path string) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				p := joinPath(path, n.Content[i].Value)
				present[p] = true
				walk(n.Content[i+1], p)
			}
		case yaml.SequenceNode:
			if len(n.Content) > 0 && n.Content[0].Kind == yaml.MappingNode {
				walk(n.Content[0], path+"[]")
			}
		}
	}
	walk(root.Content[0], "")
	var f File
	if err := root.Content[0].Decode(&f); err != nil {
		t.Fatal(err)
	}
	values := map[string]reflect.Value{}
	for p := range present {
		if v := valueAt(reflect.ValueOf(&f).Elem(), p); v.IsValid() {
			values[p] = v
		}
	}
	return values
}

// show writes a value as the file would: durations as 1m0s.
func show(v reflect.Value) string {
	if d, ok := v.Interface().(Duration); ok {
		return d.D().String()
	}
	return fmt.Sprint(v.Interface())
}
