package oidc

import (
	"context"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/wechat-oidc/wechat-oidc/keys"
)

// leftHalfHash is at_hash for RS256 (the tests' default signer).
func leftHalfHash(token string) string {
	h, err := keys.LeftHalfHash(keys.RS256, token)
	if err != nil {
		panic(err)
	}
	return h
}

// TestIDTokenSignedWithTheClientsAlgorithm: each client gets ID tokens
// signed with its id_token_signed_response_alg (the default for a client
// without one), at_hash computed with that algorithm's hash (OpenID Connect
// Core 1.0 §3.1.3.6: SHA-512 for EdDSA), and discovery lists exactly the
// algorithms the signer has.
func TestIDTokenSignedWithTheClientsAlgorithm(t *testing.T) {
	kr, err := keys.NewKeyring(context.Background(), mustDirSource(t), keys.Options{
		Algorithms: []string{keys.RS256, keys.ES256, keys.EdDSA}, PublishBeforeUse: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	h := newRefreshHarness(t)
	h.p.Signer = kr
	for id, alg := range map[string]string{"other": keys.ES256, "always": keys.EdDSA} {
		h.p.Clients.Lookup(id).IDTokenSignedResponseAlg = alg
	}
	if got := h.p.Discovery().IDTokenSigningAlgValuesSupported; !slices.Equal(got, []string{"RS256", "ES256", "EdDSA"}) {
		t.Fatalf("id_token_signing_alg_values_supported = %v", got)
	}
	for client, want := range map[string]string{"app": "RS256", "other": "ES256", "always": "EdDSA"} {
		code := h.login(client, "openid profile", "n")
		tr, body := h.token(client, map[string][]string{"grant_type": {"authorization_code"}, "code": {code},
			"redirect_uri": {h.p.Clients.Lookup(client).RedirectURIs[0]}})
		if tr == nil || tr.IDToken == "" {
			t.Fatalf("%s: no ID token: %s", client, body)
		}
		jws, err := jose.ParseSigned(tr.IDToken, []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA})
		if err != nil {
			t.Fatal(err)
		}
		if got := jws.Signatures[0].Protected.Algorithm; got != want {
			t.Errorf("%s: ID token alg %s, want %s", client, got, want)
		}
		payload, err := kr.Verify(tr.IDToken)
		if err != nil {
			t.Fatalf("%s: %v", client, err)
		}
		var c map[string]any
		if err := json.Unmarshal(payload, &c); err != nil {
			t.Fatal(err)
		}
		wantHash, _ := keys.LeftHalfHash(want, tr.AccessToken)
		if c["at_hash"] != wantHash {
			t.Errorf("%s: at_hash %v, want %s", client, c["at_hash"], wantHash)
		}
		if want == "EdDSA" {
			sum := sha512.Sum512([]byte(tr.AccessToken))
			if c["at_hash"] != base64.RawURLEncoding.EncodeToString(sum[:32]) || strings.Contains(wantHash, "=") {
				t.Errorf("EdDSA at_hash is not the left half of SHA-512")
			}
		}
	}
}

func mustDirSource(t *testing.T) keys.Source {
	t.Helper()
	src, err := keys.NewDirSource(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return src
}
