// Package template holds copies of the standard library's text/template
// and html/template (in text/ and html/) that never call a method named
// in a template.
//
// Why: text/template looks a template's {{.Name}} up as a method with
// reflect's MethodByName and a name known only at run time. The Go linker
// cannot tell which methods that may reach, so once any template is
// executed it keeps every exported method of every type that is ever
// stored in an interface value (cmd/link/internal/ld/deadcode.go,
// "REFLECTMETHOD"; golang.org/issue/72895). For this program that was
// about 9 MB of its 33 MB binary — go-redis's command set alone is several
// MB — and issue 12 wants the image's binary at most 25 MB.
//
// The copies are the standard library's files with three changes, made by
// TestForkIsCurrent (see fork_test.go, which lists them):
//   - text: a field name is looked up as a struct field or a map key, never
//     as a method; the error for a missing field says so.
//   - html: it imports the text copy; GODEBUG settings of html/template
//     (internal/godebug, which only the standard library may import) take
//     their default, the safe behaviour.
//   - internal/fmtsort is copied as it is (text/template's map ordering).
//
// Everything else — parsing (the standard library's text/template/parse
// is used as it is), html/template's contextual escaping, the built-in
// functions — is the standard library's code, byte for byte. A template
// that needs something computed calls a function: one of its FuncMap, or
// a field of function type with the built-in call ({{call .T "key"}}).
//
// Keeping up with Go: TestForkIsCurrent fails when the Go toolchain's
// sources differ from the copies (a Go release with a fix to html/template,
// for instance). Regenerate them, review the diff and commit:
//
//	go test ./internal/template -run TestForkIsCurrent -update
//
// Use html (imported as template) for pages; text is what html is built on.
package template
