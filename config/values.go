package config

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

var durationType = reflect.TypeOf(Duration(0))

// checkValues checks that every value fits its key's type, naming the key
// path and its line, as checkKeys does for unknown keys: "tokens.code_ttl
// (line 12): "5 seconds" is not a duration". It runs after ${VAR}
// expansion, so a value from the environment is checked too (and quoted in
// the message only until the caller's redaction replaces it by ${NAME}).
// Values that fit are left for the decoder.
func checkValues(n *yaml.Node, t reflect.Type, path string) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if t == durationType {
		return checkDuration(n, path)
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return nodeShapeError(n, path, "a mapping of keys (key: value)")
		}
		fields := map[string]reflect.Type{}
		for i := 0; i < t.NumField(); i++ {
			if tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]; tag != "" && tag != "-" {
				fields[tag] = t.Field(i).Type
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			ft, ok := fields[n.Content[i].Value]
			if !ok {
				continue // checkKeys has refused unknown keys
			}
			if err := checkValues(n.Content[i+1], ft, joinPath(path, n.Content[i].Value)); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return nodeShapeError(n, path, "a list ([a, b] or one \"- item\" per line)")
		}
		for i, c := range n.Content {
			if err := checkValues(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return nodeShapeError(n, path, "a mapping (name: value)")
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			if err := checkValues(n.Content[i+1], t.Elem(), joinPath(path, n.Content[i].Value)); err != nil {
				return err
			}
		}
	case reflect.String, reflect.Bool, reflect.Int, reflect.Int64, reflect.Float64:
		return checkScalar(n, t, path)
	}
	return nil
}

// nodeShapeError: n is not of the shape want. A null value (key: with
// nothing after it) is left to the decoder, which reads it as empty.
func nodeShapeError(n *yaml.Node, path, want string) error {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil
	}
	return fmt.Errorf("%s (line %d) must be %s, not %s", path, n.Line, want, describeNode(n))
}

func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	default:
		return fmt.Sprintf("%q", n.Value)
	}
}

func checkDuration(n *yaml.Node, path string) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("%s (line %d) must be a duration such as 60s, 5m or 1h, not %s", path, n.Line, describeNode(n))
	}
	if n.Tag == "!!null" {
		return nil // key: with no value reads as unset (the default)
	}
	if _, err := time.ParseDuration(n.Value); err != nil {
		return fmt.Errorf("%s (line %d): %q is not a duration: write a number with a unit, e.g. 60s, 5m, 1h or 720h (units: ms, s, m, h)", path, n.Line, n.Value)
	}
	return nil
}

// checkScalar: n decodes into a value of type t (a string, a boolean, a
// number).
func checkScalar(n *yaml.Node, t reflect.Type, path string) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("%s (line %d) must be a single value, not %s", path, n.Line, describeNode(n))
	}
	if n.Tag == "!!null" {
		return nil
	}
	if err := n.Decode(reflect.New(t).Interface()); err != nil {
		want := map[reflect.Kind]string{
			reflect.Bool: "true or false", reflect.Int: "a whole number", reflect.Int64: "a whole number",
			reflect.Float64: "a number", reflect.String: "text",
		}[t.Kind()]
		return fmt.Errorf("%s (line %d) must be %s, not %q", path, n.Line, want, n.Value)
	}
	return nil
}
