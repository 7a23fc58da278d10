package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

var (
	ecKeysOnce sync.Once
	ecKeys     []*ecdsa.PrivateKey
	edKeys     []ed25519.PrivateKey
)

// testSigner returns test key i of alg (0 and 1 are ours in tests, 2 a
// stranger's).
func testSigner(t testing.TB, alg string, i int) crypto.Signer {
	t.Helper()
	ecKeysOnce.Do(func() {
		for range 3 {
			ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				panic(err)
			}
			_, ed, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				panic(err)
			}
			ecKeys, edKeys = append(ecKeys, ec), append(edKeys, ed)
		}
	})
	switch alg {
	case RS256:
		return testKey(t, i)
	case ES256:
		return ecKeys[i]
	case EdDSA:
		return edKeys[i]
	}
	t.Fatalf("no test key for %s", alg)
	return nil
}

func jwkOf(k *signingKey) jose.JSONWebKey { return jose.JSONWebKey{Key: k.private, KeyID: k.kid} }

// multiSet is a Set holding key i of each algorithm, signing with algs.
func multiSet(t testing.TB, i int, algs ...string) *Set {
	t.Helper()
	var keys []*signingKey
	var cfg setConfig
	for _, a := range algs {
		k, err := newSigningKey(testSigner(t, a, i), time.Now(), "")
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
		cfg.algs = append(cfg.algs, jose.SignatureAlgorithm(a))
	}
	s, err := buildSet(keys, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestES256AndEdDSATokensVerifyWithGoJose: tokens of every algorithm verify
// with go-jose against the JWKS as published (JSON), as a relying party
// checks them; the JWKS carries kty/crv, alg, use and the RFC 7638 kid.
func TestES256AndEdDSATokensVerifyWithGoJose(t *testing.T) {
	s := multiSet(t, 0, RS256, ES256, EdDSA)
	raw, err := json.Marshal(s.JWKS())
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]string{
		RS256: {"kty": "RSA", "e": "AQAB"},
		ES256: {"kty": "EC", "crv": "P-256"},
		EdDSA: {"kty": "OKP", "crv": "Ed25519"},
	}
	for _, k := range doc.Keys {
		alg, _ := k["alg"].(string)
		members, ok := want[alg]
		if !ok || k["use"] != "sig" || k["kid"] == "" {
			t.Fatalf("JWKS key %v: want alg, use sig, kid", k)
		}
		for m, v := range members {
			if k[m] != v {
				t.Fatalf("%s key: %s = %v, want %s", alg, m, k[m], v)
			}
		}
		if _, ok := k["d"]; ok {
			t.Fatalf("%s key publishes its private part: %v", alg, k)
		}
		delete(want, alg)
	}
	if len(want) != 0 {
		t.Fatalf("JWKS lacks %v: %s", want, raw)
	}

	var published jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &published); err != nil {
		t.Fatal(err)
	}
	for _, jwk := range published.Keys {
		tp, err := jwk.Thumbprint(crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		if b64.EncodeToString(tp) != jwk.KeyID {
			t.Fatalf("%s kid %s is not the RFC 7638 thumbprint", jwk.Algorithm, jwk.KeyID)
		}
	}
	for _, alg := range []string{RS256, ES256, EdDSA} {
		t.Run(alg, func(t *testing.T) {
			payload := []byte(`{"iss":"https://id.example.com","sub":"o6_bmjrPTlm6_2sgVt7hMZOPfL2M"}`)
			for _, typ := range []string{"JWT", "logout+jwt"} {
				tok, err := s.SignWithAlgorithm(payload, alg, typ)
				if err != nil {
					t.Fatal(err)
				}
				h := header(t, tok)
				if h["alg"] != alg || h["typ"] != typ || len(h) != 3 {
					t.Fatalf("header %v, want exactly alg %s, kid, typ %s", h, alg, typ)
				}
				jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
				if err != nil {
					t.Fatal(err)
				}
				keys := published.Key(h["kid"].(string))
				if len(keys) != 1 || keys[0].Algorithm != alg {
					t.Fatalf("kid %v published as %v", h["kid"], keys)
				}
				got, err := jws.Verify(keys[0])
				if err != nil || string(got) != string(payload) {
					t.Fatalf("go-jose verify with the published key: %s, %v", got, err)
				}
				if got, err := s.Verify(tok); err != nil || string(got) != string(payload) {
					t.Fatalf("Set.Verify: %s, %v", got, err)
				}
			}
		})
	}
}

func TestSignWithAlgorithm(t *testing.T) {
	s := multiSet(t, 0, ES256, RS256)
	if s.Algorithm() != ES256 || !slices.Equal(s.Algorithms(), []string{ES256, RS256}) {
		t.Fatalf("Algorithm %s, Algorithms %v: want the configured order, ES256 first", s.Algorithm(), s.Algorithms())
	}
	if alg := header(t, mustSign(t, s, []byte(`{}`)))["alg"]; alg != ES256 {
		t.Fatalf("Sign used %v, want the default ES256", alg)
	}
	tok, err := s.SignWithAlgorithm([]byte(`{}`), RS256, "JWT")
	if err != nil || header(t, tok)["alg"] != RS256 {
		t.Fatalf("SignWithAlgorithm(RS256): %v", err)
	}
	for _, alg := range []string{EdDSA, "none", "HS256", "rs256", "PS256"} {
		if _, err := s.SignWithAlgorithm([]byte(`{}`), alg, "JWT"); err == nil || !strings.Contains(err.Error(), "signs with ES256, RS256") {
			t.Errorf("SignWithAlgorithm(%s): %v, want a refusal listing ours", alg, err)
		}
	}
	got := s.Algorithms()
	got[0] = "none"
	if s.Algorithm() != ES256 {
		t.Fatal("Algorithms shares its slice with callers")
	}
}

func TestLeftHalfHash(t *testing.T) {
	const at = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
	s256, s512 := sha256.Sum256([]byte(at)), sha512.Sum512([]byte(at))
	for alg, want := range map[string]string{
		RS256: b64.EncodeToString(s256[:16]),
		ES256: b64.EncodeToString(s256[:16]),
		EdDSA: b64.EncodeToString(s512[:32]),
	} {
		if got, err := LeftHalfHash(alg, at); err != nil || got != want {
			t.Errorf("LeftHalfHash(%s) = %s, %v; want %s", alg, got, err, want)
		}
	}
	// OpenID Connect Core 1.0 §A.3's example: at_hash of this token, RS256.
	if got, _ := LeftHalfHash(RS256, at); got != "77QmUPtjPfzWtF2AnpK9RQ" {
		t.Errorf("at_hash of the spec's example = %s, want 77QmUPtjPfzWtF2AnpK9RQ", got)
	}
	if _, err := LeftHalfHash("none", at); err == nil {
		t.Error("LeftHalfHash(none) gave a hash")
	}
}

// TestVerifyRefusesAlgorithmConfusion: a token is accepted only with the
// algorithm of the key it names; "none", HMAC keyed with our public keys,
// algorithms we hold no key for, and a label that does not match the key
// are all refused.
func TestVerifyRefusesAlgorithmConfusion(t *testing.T) {
	all := multiSet(t, 0, RS256, ES256, EdDSA)
	kidOfAlg := map[string]string{}
	for _, k := range all.keys {
		kidOfAlg[string(k.alg)] = k.kid
	}
	rsOnly := setOf(t, 0)
	payload := []byte(`{"iss":"https://id.example.com","sub":"admin"}`)
	hdr := func(alg, kid string) map[string]any {
		h := map[string]any{"alg": alg, "typ": "JWT"}
		if kid != "" {
			h["kid"] = kid
		}
		return h
	}
	ecRaw := func(key *ecdsa.PrivateKey) func([]byte) []byte { // JWS form: r || s, 32 bytes each
		return func(in []byte) []byte {
			sum := sha256.Sum256(in)
			r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
			if err != nil {
				panic(err)
			}
			return append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
		}
	}
	ed := func(key ed25519.PrivateKey) func([]byte) []byte {
		return func(in []byte) []byte { return ed25519.Sign(key, in) }
	}
	ecPub := testSigner(t, ES256, 0).Public().(*ecdsa.PublicKey)
	ecPKIX, _ := x509.MarshalPKIXPublicKey(ecPub)
	ecPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecPKIX})
	edPub := testSigner(t, EdDSA, 0).Public().(ed25519.PublicKey)
	edPKIX, _ := x509.MarshalPKIXPublicKey(edPub)
	edPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: edPKIX})
	jwks, _ := json.Marshal(all.JWKS())
	none := func([]byte) []byte { return nil }
	rsKey, ecKey, edKey := testKey(t, 0), testSigner(t, ES256, 0).(*ecdsa.PrivateKey), testSigner(t, EdDSA, 0).(ed25519.PrivateKey)
	ecForeign := testSigner(t, ES256, 2).(*ecdsa.PrivateKey)
	edForeign := testSigner(t, EdDSA, 2).(ed25519.PrivateKey)
	rsKID, esKID, edKID := kidOfAlg[RS256], kidOfAlg[ES256], kidOfAlg[EdDSA]

	tests := map[string]struct {
		set   *Set
		token string
	}{
		"RS signature labelled ES256, RS kid":      {all, forge(hdr("ES256", rsKID), payload, rs(rsKey, crypto.SHA256))},
		"RS signature labelled ES256, ES kid":      {all, forge(hdr("ES256", esKID), payload, rs(rsKey, crypto.SHA256))},
		"RS signature labelled ES256, no kid":      {all, forge(hdr("ES256", ""), payload, rs(rsKey, crypto.SHA256))},
		"RS signature labelled EdDSA":              {all, forge(hdr("EdDSA", rsKID), payload, rs(rsKey, crypto.SHA256))},
		"ES signature labelled RS256, ES kid":      {all, forge(hdr("RS256", esKID), payload, ecRaw(ecKey))},
		"ES signature labelled RS256, no kid":      {all, forge(hdr("RS256", ""), payload, ecRaw(ecKey))},
		"Ed signature labelled ES256, Ed kid":      {all, forge(hdr("ES256", edKID), payload, ed(edKey))},
		"valid ES256 signature, RS kid":            {all, forge(hdr("ES256", rsKID), payload, ecRaw(ecKey))},
		"valid EdDSA signature, ES kid":            {all, forge(hdr("EdDSA", esKID), payload, ed(edKey))},
		"ES384 label on our EC key":                {all, forge(hdr("ES384", esKID), payload, ecRaw(ecKey))},
		"Ed25519 label (RFC 9864), not ours":       {all, forge(hdr("Ed25519", edKID), payload, ed(edKey))},
		"alg none":                                 {all, forge(hdr("none", esKID), payload, none)},
		"alg none, no kid":                         {all, forge(hdr("none", ""), payload, none)},
		"HS256 keyed with the EC public key PEM":   {all, forge(hdr("HS256", esKID), payload, hs256(ecPEM))},
		"HS256 keyed with the Ed public key PEM":   {all, forge(hdr("HS256", edKID), payload, hs256(edPEM))},
		"HS256 keyed with the raw Ed public key":   {all, forge(hdr("HS256", edKID), payload, hs256(edPub))},
		"HS256 keyed with the JWKS":                {all, forge(hdr("HS256", ""), payload, hs256(jwks))},
		"HS512 label, keyed with the RSA modulus":  {all, forge(hdr("HS512", rsKID), payload, hs256(new(big.Int).Set(rsKey.N).Bytes()))},
		"foreign EC key, our ES kid":               {all, forge(hdr("ES256", esKID), payload, ecRaw(ecForeign))},
		"foreign EC key, no kid":                   {all, forge(hdr("ES256", ""), payload, ecRaw(ecForeign))},
		"foreign Ed key, our Ed kid":               {all, forge(hdr("EdDSA", edKID), payload, ed(edForeign))},
		"ES256 token to a set without EC keys":     {rsOnly, forge(hdr("ES256", ""), payload, ecRaw(ecKey))},
		"EdDSA token to a set without Ed25519":     {rsOnly, forge(hdr("EdDSA", ""), payload, ed(edKey))},
		"our own ES256 token to an RSA-only set":   {rsOnly, mustSignAlg(t, all, ES256)},
		"ES256 signature in ASN.1 (not JWS) form":  {all, forge(hdr("ES256", esKID), payload, asn1Sig(ecKey))},
		"EdDSA signature over a different payload": {all, forge(hdr("EdDSA", edKID), payload, func(in []byte) []byte { return ed25519.Sign(edKey, append(in, '.')) })},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got, err := tc.set.Verify(tc.token); err == nil {
				t.Fatalf("Verify accepted it, payload %s", got)
			} else {
				t.Log(err)
			}
		})
	}
	// And the genuine ones pass, so the refusals above are not a set that
	// refuses everything.
	for _, alg := range []string{RS256, ES256, EdDSA} {
		if _, err := all.Verify(mustSignAlg(t, all, alg)); err != nil {
			t.Fatalf("genuine %s token refused: %v", alg, err)
		}
	}
	for name, tok := range map[string]string{
		"ES256 forged like the refused ones, no kid": forge(hdr("ES256", ""), payload, ecRaw(ecKey)),
		"EdDSA forged like the refused ones":         forge(hdr("EdDSA", edKID), payload, ed(edKey)),
	} {
		if _, err := all.Verify(tok); err != nil {
			t.Fatalf("%s: the forging helpers make bad signatures: %v", name, err)
		}
	}
}

func asn1Sig(key *ecdsa.PrivateKey) func([]byte) []byte {
	return func(in []byte) []byte {
		sum := sha256.Sum256(in)
		sig, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
		if err != nil {
			panic(err)
		}
		return sig
	}
}

func mustSignAlg(t *testing.T, s *Set, alg string) string {
	t.Helper()
	tok, err := s.SignWithAlgorithm([]byte(`{"sub":"x"}`), alg, "JWT")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestLoadDirRefusesUnfitKeys: a key directory holds keys for the
// configured algorithms only, each fit for its algorithm.
func TestLoadDirRefusesUnfitKeys(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8 := func(key any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	sec1, err := x509.MarshalECPrivateKey(testSigner(t, ES256, 1).(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		algs []string
		data []byte
		want string // "" = loads
	}{
		{"P-384 key", []string{ES256}, pkcs8(p384), "want P-256"},
		{"Ed25519 key, RSA only", []string{RS256}, pkcs8(testSigner(t, EdDSA, 0)), "want an RSA key (the signing algorithms are RS256): remove the file, or add EdDSA"},
		{"EC key, RSA and Ed25519", []string{RS256, EdDSA}, pkcs8(testSigner(t, ES256, 0)), "want an RSA key or an Ed25519 key"},
		{"RSA key, ES256 only", []string{ES256}, pkcs8(testKey(t, 0)), "want a P-256 EC key"},
		{"SEC 1 EC key", []string{ES256}, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1}), ""},
		{"Ed25519 key", []string{EdDSA}, pkcs8(testSigner(t, EdDSA, 1)), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "signing-key-20250101T000000Z.pem")
			if err := os.WriteFile(path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := NewKeyring(t.Context(), dirSource(t, dir), Options{Algorithms: tc.algs, PublishBeforeUse: pbu})
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %v, want %q and the file", err, tc.want)
			}
			if files := keyFiles(t, dir); len(files) != 1 {
				t.Fatalf("a refused key made the Keyring write: %v", files)
			}
		})
	}
}

// TestJWKSCopiesEveryKeyKind: changing what JWKS returned changes none of
// our keys, whatever their kind.
func TestJWKSCopiesEveryKeyKind(t *testing.T) {
	s := multiSet(t, 0, RS256, ES256, EdDSA)
	before, _ := json.Marshal(s.JWKS())
	for _, k := range s.JWKS().Keys {
		switch pub := k.Key.(type) {
		case ed25519.PublicKey:
			pub[0] ^= 0xff
		case *ecdsa.PublicKey:
			pub.Curve = elliptic.P384()
		}
	}
	after, _ := json.Marshal(s.JWKS())
	if string(before) != string(after) {
		t.Fatal("JWKS shares key material with callers")
	}
	for _, alg := range []string{ES256, EdDSA} {
		if _, err := s.Verify(mustSignAlg(t, s, alg)); err != nil {
			t.Fatalf("%s after a caller changed a JWKS copy: %v", alg, err)
		}
	}
}

// benchmarkSign measures Sign with a set whose default algorithm is alg.
func benchmarkSign(b *testing.B, alg string) {
	s := multiSet(b, 0, alg)
	payload := []byte(`{"iss":"https://id.example.com","sub":"o6_bmjrPTlm6_2sgVt7hMZOPfL2M","aud":"grafana","exp":1700000000,"iat":1699996400,"nonce":"n-0S6_WzA2Mj"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Sign(payload); err != nil {
			b.Fatal(err)
		}
	}
}

// benchmarkVerify measures Verify of a token of alg.
func benchmarkVerify(b *testing.B, alg string) {
	s := multiSet(b, 0, alg)
	token, err := s.Sign([]byte(`{"sub":"o6_bmjrPTlm6_2sgVt7hMZOPfL2M"}`))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Verify(token); err != nil {
			b.Fatal(err)
		}
	}
}
