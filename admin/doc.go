// Package admin is the administration console at {issuer}/admin: server-
// rendered pages over the people directory (Pending, People, Invitations,
// Audit) for the members of one directory group (access.admin_group).
//
// It owns the console's sign-in, its session and its pages; nothing else.
//
// Sign-in: the console is an OpenID Connect relying party of the bridge it
// runs in (client id [ClientID], registered with [ClientConfig]). It sends
// the browser to the bridge's own authorization endpoint with the code flow,
// PKCE S256, state and nonce, and redeems the code in-process: it calls the
// provider's token endpoint handler (oidc.Provider.HandleToken) with a
// request it builds itself, so the real code path runs (client
// authentication, PKCE, the code's single use) without a network hop to
// the public URL, which a server may not be able to reach from inside. The
// ID token is then verified with the provider's keys: signature, iss, aud,
// azp, exp, iat, nonce, and auth_time when a recent sign-in was asked for.
//
// Authorization is one middleware (guard) on the /admin route group, so no
// route can be added without it: an anonymous browser is sent to sign in, a
// signed-in person who is not active or not in the admin group gets 403. The
// person's status and groups are read from the directory on every request,
// so removing someone from the admin group takes effect at their next
// request. Every POST carries a CSRF token bound to the console session,
// checked in the same middleware.
//
// Dangerous actions (disabling or removing a person, anything that grants or
// takes away the admin group) need a sign-in at most MaxAuthAge old; an
// older one leads to the re-authentication page, which signs in again with
// max_age (OpenID Connect Core 1.0 §3.1.2.1).
//
// Every change an administrator makes writes an audit row (actor: the
// administrator's person id). Disabling or removing a person also calls the
// login core's Core.EndPersonAccess, besides the audit row the server's
// revocation loop reads.
//
// Pages: html/template (the copy in internal/template, which calls no
// methods: helpers are functions, {{call $.T "key"}} for the page's
// language), embedded assets only (one stylesheet, inlined and
// allowed by its hash in a strict Content-Security-Policy; no script at
// all), zh-CN and en chosen by Accept-Language with a switch link, laid out
// for a 375 px phone (WeChat's in-app browser). Every page carries a
// data-page marker on <main>.
package admin
