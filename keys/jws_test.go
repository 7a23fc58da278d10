package keys

import (
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// goJoseToken is what go-jose writes for key, typ and payload: the way this
// package signed before it encoded the header once per signer.
func goJoseToken(t *testing.T, key *signingKey, typ string, payload []byte) string {
	t.Helper()
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: key.alg, Key: jose.JSONWebKey{Key: key.private, KeyID: key.kid}},
		(&jose.SignerOptions{}).WithType(jose.ContentType(typ)),
	)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	token, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// TestJWSSignerWritesWhatGoJoseWrites: the same bytes as go-jose for the
// deterministic algorithms (RS256, EdDSA); for ES256 (randomised) the same
// header and payload, and a signature of 64 bytes that go-jose verifies.
func TestJWSSignerWritesWhatGoJoseWrites(t *testing.T) {
	payload := []byte(`{"iss":"https://sso.example.com","sub":"oGZUI0abc","aud":"grafana","nonce":"n-0S6_WzA2Mj","name":"张伟"}`)
	for _, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA} {
		key, err := generate(alg, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		for _, typ := range []string{"JWT", "logout+jwt"} {
			j, err := newJWSSigner(key, typ)
			if err != nil {
				t.Fatal(err)
			}
			ours, err := j.sign(payload)
			if err != nil {
				t.Fatalf("%s %s: %v", alg, typ, err)
			}
			theirs := goJoseToken(t, key, typ, payload)
			if alg != jose.ES256 {
				if ours != theirs {
					t.Fatalf("%s %s:\n ours   %s\n go-jose %s", alg, typ, ours, theirs)
				}
				continue
			}
			o, g := strings.Split(ours, "."), strings.Split(theirs, ".")
			if o[0] != g[0] || o[1] != g[1] {
				t.Fatalf("ES256 %s: header or payload differ from go-jose's:\n ours   %s\n go-jose %s", typ, ours, theirs)
			}
			parsed, err := jose.ParseSignedCompact(ours, []jose.SignatureAlgorithm{jose.ES256})
			if err != nil {
				t.Fatal(err)
			}
			got, err := parsed.Verify(key.public)
			if err != nil || string(got) != string(payload) {
				t.Fatalf("go-jose does not verify our ES256 token: %v", err)
			}
		}
	}
}
