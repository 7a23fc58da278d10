// Package deploy is the deploy kit: deploy/compose (docker compose: the
// bridge with Redis, PostgreSQL, oauth2-proxy and Caddy, against the WeChat
// simulator or, in its commented variant, the real WeChat) and
// deploy/kubernetes (a kustomization). It has no code; its tests check that
// the kit names what the program has: configuration that validates,
// subcommands, routes and ports — and they run the Dockerfile's steps
// without Docker (TestImageSteps). docs/deploy.md describes the kit.
package deploy
