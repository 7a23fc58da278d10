// Package peoplecli is the command line over the people directory:
// `wechat-oidc people list|show|add|invite|approve|deny|disable|enable|
// remove|groups|import|export` and `wechat-oidc audit`.
//
// It reads only the issuer, directory, access and audit sections of the
// server's config file (config.LoadSections), so an administrator runs it
// without the WeChat and client secrets in the environment, and works on
// the directory directly: it needs no running server. Every change it makes
// is written with an audit row whose actor is "cli". Disabling or removing
// a person writes the directory change and a person.disable or
// person.remove row; every running server's revocation loop reads those
// rows and ends the person's sessions and tokens (see directory.Revoking).
//
// Output is a table for people and text for single results, or JSON with
// --json (field names are stable; see the *JSON types). Exit codes: 0
// success, 1 error or refusal (the message says what to do), 2 usage.
//
// What it does not do: talk to a running server, end sessions itself, or
// decide who may sign in (the bridge's access decision does).
package peoplecli
