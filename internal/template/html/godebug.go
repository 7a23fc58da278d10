// Code written for this copy (not from the Go distribution); see fork_test.go.

package template

// defaultSetting stands for a GODEBUG setting of html/template: its
// internal/godebug may be imported only by the standard library, so this
// copy always behaves as the setting's default, the safe behaviour.
type defaultSetting struct{}

func (defaultSetting) Value() string { return "" }

func (defaultSetting) IncNonDefault() {}
