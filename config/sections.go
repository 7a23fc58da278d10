package config

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// sectionChecks are the sections LoadSections and ParseSections can read
// strictly, each with its validation (the same as Validate's for it).
var sectionChecks = map[string]func(c *File) error{
	"issuer": func(c *File) error {
		if c.Issuer == "" {
			return errors.New("issuer is missing: set it to the public URL of this service, e.g. issuer: https://sso.example.com")
		}
		return validateIssuer(c.Issuer, false)
	},
	"directory": (*File).validateDirectory,
	// access also covers audit.retention and clients[].allowed_groups and
	// initiate_login_uri, as Validate does.
	"access": (*File).validateAccess,
	"audit":  (*File).validateAccess,
}

// LoadSections reads a config file for a tool that needs only some of it
// (the people and audit commands need issuer, directory and access), so that
// such a tool runs without the secrets of the rest (WeChat app secrets,
// client secrets) in its environment.
//
// The named top-level sections are read as Load reads them: every ${VAR} in
// them must be set, and they are validated. Everywhere else a ${VAR} that is
// set expands and one that is not reads as the empty string, and nothing is
// validated beyond the file's shape (unknown keys and wrong types are still
// refused). The returned Options are therefore complete and checked only in
// the named sections (plus the client ids, which are read but not checked):
// never serve with them.
//
// Supported sections: issuer, directory, access, audit.
func LoadSections(path string, sections ...string) (*Options, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	f, err := ParseSections(raw, os.LookupEnv, sections...)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return f.Options(), nil
}

// ParseSections is LoadSections on config text, with ${VAR} read from lookup.
func ParseSections(raw []byte, lookup func(string) (string, bool), sections ...string) (*File, error) {
	for _, s := range sections {
		if _, ok := sectionChecks[s]; !ok {
			known := make([]string, 0, len(sectionChecks))
			for k := range sectionChecks {
				known = append(known, k)
			}
			sort.Strings(known)
			return nil, fmt.Errorf("config: section %q cannot be read on its own (supported: %s)", s, strings.Join(known, ", "))
		}
	}
	strict := strictVariables(raw, sections)
	lenient := func(name string) (string, bool) {
		v, ok := lookup(name)
		if !ok && !strict[name] {
			return "", true
		}
		return v, ok
	}
	cfg, redact, err := decode(raw, lenient)
	if err != nil {
		return nil, err
	}
	cfg.ApplyDefaults()
	for _, s := range sections {
		if err := sectionChecks[s](cfg); err != nil {
			return nil, redact(err)
		}
	}
	return cfg, nil
}

// strictVariables returns the names of the ${VAR}s written inside the given
// top-level sections. Text that is not YAML yields none: decode reports it.
func strictVariables(raw []byte, sections []string) map[string]bool {
	names := map[string]bool{}
	var root yaml.Node
	if yaml.Unmarshal(raw, &root) != nil || len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return names
	}
	top := root.Content[0]
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.ScalarNode {
			v := strings.ReplaceAll(n.Value, "$${", "") // a literal ${, as expandEnv reads it
			for _, m := range envRef.FindAllStringSubmatch(v, -1) {
				names[m[1]] = true
			}
			return
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	for i := 0; i+1 < len(top.Content); i += 2 {
		if slices.Contains(sections, top.Content[i].Value) {
			walk(top.Content[i+1])
		}
	}
	return names
}
