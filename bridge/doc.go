// Package bridge is the wechat-oidc server: the Echo routes, the pages a
// person sees, and the login orchestration between the OpenID Provider
// (package oidc) and WeChat (package wechat). It is the only package that
// knows both sides.
//
// One login: the relying party sends the browser to /authorize; the request
// is validated (oidc), remembered as a pending login under a short random
// handle bound to the browser by a cookie, and the browser goes to WeChat
// with that handle as WeChat's state. WeChat returns to /wechat/callback; the
// handle finds the pending login, the browser binding is checked (login
// CSRF), the WeChat code is exchanged (wechat), the subject is resolved
// (unionid or openid), and the provider issues an authorization code to the
// relying party (oidc).
package bridge
