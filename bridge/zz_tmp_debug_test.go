package bridge

import (
	"testing"
	gooidc "github.com/coreos/go-oidc/v3/oidc"
)

func TestZZTmpDebugEmailVerified(t *testing.T) {
	h := newHarness(t, withClient(rpClientID, func(c *ClientConfig) {
		c.TokenEndpointAuthMethod = "client_secret_basic"
		c.RequirePKCE = true
		c.Claims = ClientClaimsConfig{Email: "{preferred_username}@x.example.com", EmailVerified: false}
	}))
	res := h.login(h.rp(rpClientID, rpSecret, rpRedirect, gooidc.ScopeOpenID, "profile", "email"), h.browser(), "alice")
	raw, _ := res.token.Extra("id_token").(string)
	p, _ := jwtPayload(raw)
	t.Logf("%s", p)
}
