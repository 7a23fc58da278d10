package config

import (
	"errors"
	"fmt"
	"os"
	"reflect"

	"go.yaml.in/yaml/v3"
)

// KeysOnly is what the keys commands (list, rotate) need of a
// configuration: where the keys live and how they rotate.
type KeysOnly struct {
	Store Store
	Keys  Keys
	Log   Log
}

// keysSections are the top-level sections LoadKeys reads and expands.
var keysSections = map[string]bool{"store": true, "keys": true, "tokens": true, "log": true}

// LoadKeys reads from the file at path only what the keys commands need:
// the store, keys, tokens and log sections, and each client's
// id_token_signed_response_alg. ${VAR} is expanded in those sections only,
// so that an operator rotating keys needs the store's and the keys'
// secrets, not every WeChat or client secret. The whole file must still be
// well-formed (no unknown keys).
func LoadKeys(path string) (*KeysOnly, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	k, err := ParseKeys(raw, os.LookupEnv)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return k, nil
}

// ParseKeys is LoadKeys on config text.
func ParseKeys(raw []byte, lookup func(string) (string, bool)) (*KeysOnly, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return nil, fmt.Errorf("not valid YAML: %v", err)
	}
	if len(root.Content) == 0 || root.Content[0].Kind != yaml.MappingNode {
		return nil, errors.New("the top level must be a mapping of keys (issuer:, wechat:, clients:, keys:, ...)")
	}
	top := root.Content[0]
	if err := checkKeys(top, reflect.TypeOf(File{}), ""); err != nil {
		return nil, err
	}
	var f File
	for i := 0; i+1 < len(top.Content); i += 2 {
		name, val := top.Content[i].Value, top.Content[i+1]
		switch {
		case keysSections[name]:
			if err := expandEnv(val, name, lookup); err != nil {
				return nil, err
			}
			section := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{top.Content[i], val}}
			if err := section.Decode(&f); err != nil {
				// The section may hold the Redis password and the
				// encryption key: the error names a line, never a value.
				return nil, fmt.Errorf("%s: a value has the wrong type (check it against config.example.yaml): %s", name, typeOnly(err))
			}
		case name == "clients":
			// Only ids and algorithms: secrets stay unexpanded and unread.
			var clients []struct {
				ID  string `yaml:"id"`
				Alg string `yaml:"id_token_signed_response_alg"`
			}
			if err := val.Decode(&clients); err != nil {
				return nil, fmt.Errorf("clients: %v", err)
			}
			for _, c := range clients {
				f.Clients = append(f.Clients, ClientConfig{ID: c.ID, IDTokenSignedResponseAlg: c.Alg})
			}
		}
	}
	f.ApplyDefaults()
	for _, check := range []func() error{f.validateTokens, f.validateStore, f.validateKeys, f.validateLog, f.validateClientAlgs} {
		if err := check(); err != nil {
			return nil, err
		}
	}
	return &KeysOnly{Store: f.storeOptions(), Keys: f.keysOptions(), Log: Log{Level: f.Log.Level, Format: f.Log.Format}}, nil
}

// typeOnly is a yaml decode error without the value it quotes.
func typeOnly(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		return fmt.Sprintf("%d error(s), first at %s", len(te.Errors), lineOf(te.Errors[0]))
	}
	return "malformed"
}

func lineOf(msg string) string {
	var line int
	if _, err := fmt.Sscanf(msg, "line %d:", &line); err == nil {
		return fmt.Sprintf("line %d", line)
	}
	return "an unknown line"
}

func (c *File) validateClientAlgs() error {
	for i, cl := range c.Clients {
		if err := c.validateClientAlg(fmt.Sprintf("clients[%d]", i), cl); err != nil {
			return err
		}
	}
	return nil
}
