package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

var b64 = base64.RawURLEncoding

// Generating RSA keys is slow (more so under -race): tests share a few.
var (
	testKeysOnce sync.Once
	testKeys     []*rsa.PrivateKey
)

func testKey(t testing.TB, i int) *rsa.PrivateKey {
	t.Helper()
	testKeysOnce.Do(func() {
		for range 3 {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			testKeys = append(testKeys, k)
		}
	})
	return testKeys[i]
}

// writeTestKey writes key i to dir as a key created at created.
func writeTestKey(t *testing.T, dir string, i int, created time.Time) *signingKey {
	t.Helper()
	k, err := newSigningKey(testKey(t, i), created, "")
	if err != nil {
		t.Fatal(err)
	}
	if k.file, err = writeKeyFile(dir, k); err != nil {
		t.Fatal(err)
	}
	return k
}

func setOf(t testing.TB, i int) *Set {
	t.Helper()
	k, err := newSigningKey(testKey(t, i), time.Now(), "")
	if err != nil {
		t.Fatal(err)
	}
	s, err := newSet([]*signingKey{k})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func wantMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != want {
		t.Errorf("%s has mode %04o, want %04o", path, got, want)
	}
}

func keyFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestLoadOrCreateSurvivesRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "keys") // does not exist yet
	first, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	wantMode(t, dir, 0o700)
	files := keyFiles(t, dir)
	if len(files) != 1 {
		t.Fatalf("key directory holds %v, want one key file (and no leftover temporary file)", files)
	}
	if !strings.HasPrefix(files[0], "signing-key-") || !strings.HasSuffix(files[0], ".pem") {
		t.Errorf("key file is named %q, want signing-key-<time>-<kid>.pem", files[0])
	}
	wantMode(t, filepath.Join(dir, files[0]), 0o600)
	data, err := os.ReadFile(filepath.Join(dir, files[0]))
	if err != nil {
		t.Fatal(err)
	}
	if block, _ := pem.Decode(data); block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("key file is not a PKCS#8 PEM:\n%s", data)
	}

	payload := []byte(`{"iss":"https://id.example.com","sub":"o6_bmjrPTlm6_2sgVt7hMZOPfL2M"}`)
	token, err := first.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}

	// Restart.
	second, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if second.KeyID() != first.KeyID() {
		t.Fatalf("kid after restart = %s, before = %s", second.KeyID(), first.KeyID())
	}
	got, err := second.Verify(token)
	if err != nil {
		t.Fatalf("token signed before restart does not verify after it: %v", err)
	}
	if string(got) != string(payload) {
		t.Fatalf("Verify payload = %s, want %s", got, payload)
	}
	if files := keyFiles(t, dir); len(files) != 1 {
		t.Fatalf("restart wrote another key: %v", files)
	}
}

func TestLoadOrCreateRefusesOpenPermissions(t *testing.T) {
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660, 0o700, 0o666} {
		dir := t.TempDir()
		k := writeTestKey(t, dir, 0, time.Now())
		if err := os.Chmod(k.file, mode); err != nil {
			t.Fatal(err)
		}
		_, err := LoadOrCreate(dir)
		if err == nil {
			t.Fatalf("key file with mode %04o was loaded", mode)
		}
		if msg := err.Error(); !strings.Contains(msg, k.file) || !strings.Contains(msg, "chmod 600") {
			t.Errorf("mode %04o: error %q should name the file and the fix (chmod 600)", mode, msg)
		}
		t.Log(err)
	}
	// Narrower than 0600 is fine.
	dir := t.TempDir()
	k := writeTestKey(t, dir, 0, time.Now())
	if err := os.Chmod(k.file, 0o400); err != nil {
		t.Fatal(err)
	}
	if s, err := LoadOrCreate(dir); err != nil || s.KeyID() != k.kid {
		t.Fatalf("read-only key file: %v", err)
	}
}

func TestLoadOrCreateRefusesBadFiles(t *testing.T) {
	pkcs8 := func(key any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	good := pkcs8(testKey(t, 0))
	pubDER, err := x509.MarshalPKIXPublicKey(&testKey(t, 0).PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, file string
		data       []byte
		want       string // in the error, besides the file's path
	}{
		{"garbage", "signing-key-20250101T000000Z.pem", []byte("not a key at all"), "no PEM block"},
		{"empty", "signing-key-20250101T000000Z.pem", nil, "no PEM block"},
		{"truncated", "signing-key-20250101T000000Z.pem", good[:len(good)/2], "no PEM block"},
		{"bad DER", "signing-key-20250101T000000Z.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte("junk")}), "parse private key"},
		{"public key", "signing-key-20250101T000000Z.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), "want \"PRIVATE KEY\""},
		{"EC key", "signing-key-20250101T000000Z.pem", pkcs8(ec), "want an RSA key"},
		{"RSA-1024", "signing-key-20250101T000000Z.pem", pkcs8(small), "at least 2048"},
		{"two keys", "signing-key-20250101T000000Z.pem", append(append([]byte{}, good...), good...), "more than one PEM block"},
		{"no time in name", "mykey.pem", good, "rename it to signing-key-"},
		{"bad time in name", "signing-key-2025-01-01.pem", good, "rename it"},
		{"time glued to suffix", "signing-key-20250101T000000Zextra.pem", good, "rename it"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, tc.file)
			if err := os.WriteFile(path, tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadOrCreate(dir)
			if err == nil {
				t.Fatal("loaded")
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q: want the file %s and %q", err, path, tc.want)
			}
			t.Log(err)
			if files := keyFiles(t, dir); len(files) != 1 {
				t.Fatalf("a bad key file made LoadOrCreate write another: %v", files)
			}
		})
	}
}

func TestLoadOrCreateIgnoresOtherFiles(t *testing.T) {
	dir := t.TempDir()
	k := writeTestKey(t, dir, 0, time.Now())
	for name, data := range map[string]string{
		"README":                                "keys live here",
		".signing-key-123.tmp":                  "half a key",
		".hidden-20250101T000000Z.pem":          "not a key",
		"signing-key-20250101T000000Z.pem.bak":  "old",
		"signing-key-20250101T000000Z.pem~":     "editor backup",
		"signing-key-20990101T000000Z.pem.orig": "from a merge",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "..data"), 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.KeyID() != k.kid || len(s.JWKS().Keys) != 1 {
		t.Fatalf("got kid %s and %d keys, want only %s", s.KeyID(), len(s.JWKS().Keys), k.kid)
	}
}

func TestLoadOrCreateAcceptsPKCS1(t *testing.T) {
	dir := t.TempDir()
	data := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(testKey(t, 1))})
	if err := os.WriteFile(filepath.Join(dir, "signing-key-20250101T000000Z-openssl.pem"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := setOf(t, 1).KeyID(); s.KeyID() != want {
		t.Fatalf("kid = %s, want %s", s.KeyID(), want)
	}
}

func TestLoadOrCreateSeveralKeys(t *testing.T) {
	dir := t.TempDir()
	older := writeTestKey(t, dir, 0, time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC))
	newer := writeTestKey(t, dir, 1, time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC))

	s, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if s.KeyID() != newer.kid {
		t.Fatalf("signing kid = %s, want the newest key %s (older is %s)", s.KeyID(), newer.kid, older.kid)
	}
	jwks := s.JWKS()
	if len(jwks.Keys) != 2 || jwks.Keys[0].KeyID != newer.kid || jwks.Keys[1].KeyID != older.kid {
		t.Fatalf("JWKS kids = %v, want [%s %s]", kids(jwks), newer.kid, older.kid)
	}

	// A token signed while the older key was active still verifies.
	oldToken, err := setOf(t, 0).Sign([]byte(`{"n":1}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(oldToken); err != nil {
		t.Fatalf("token signed by the older key: %v", err)
	}
	token, err := s.Sign([]byte(`{"n":2}`))
	if err != nil {
		t.Fatal(err)
	}
	if kid := header(t, token)["kid"]; kid != newer.kid {
		t.Fatalf("new token's kid = %v, want %s", kid, newer.kid)
	}

	// The same key twice is a mistake worth stopping for.
	data, err := os.ReadFile(older.file)
	if err != nil {
		t.Fatal(err)
	}
	dup := filepath.Join(dir, "signing-key-20240601T000000Z-copy.pem")
	if err := os.WriteFile(dup, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreate(dir); err == nil || !strings.Contains(err.Error(), "same key") || !strings.Contains(err.Error(), dup) {
		t.Fatalf("two files with one key: error %v, want one naming %s", err, dup)
	}
}

func TestSameCreationTimeIsDeterministic(t *testing.T) {
	created := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	a, _ := newSigningKey(testKey(t, 0), created, "")
	b, _ := newSigningKey(testKey(t, 1), created, "")
	s1, err := newSet([]*signingKey{a, b})
	if err != nil {
		t.Fatal(err)
	}
	s2, err := newSet([]*signingKey{b, a})
	if err != nil {
		t.Fatal(err)
	}
	if s1.KeyID() != s2.KeyID() {
		t.Fatalf("the signing key depends on load order: %s vs %s", s1.KeyID(), s2.KeyID())
	}
}

func kids(set jose.JSONWebKeySet) []string {
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KeyID)
	}
	return out
}

func header(t *testing.T, token string) map[string]any {
	t.Helper()
	raw, err := b64.DecodeString(strings.Split(token, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// TestKeyIDIsThumbprint checks the kid against RFC 7638 §3.1's example.
func TestKeyIDIsThumbprint(t *testing.T) {
	n, err := b64.DecodeString("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
	if err != nil {
		t.Fatal(err)
	}
	got, err := thumbprint(&rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537})
	if err != nil {
		t.Fatal(err)
	}
	if want := "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; got != want {
		t.Fatalf("thumbprint = %s, want %s", got, want)
	}
}

func TestNewEphemeral(t *testing.T) {
	a, err := NewEphemeral()
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewEphemeral()
	if err != nil {
		t.Fatal(err)
	}
	if a.KeyID() == b.KeyID() {
		t.Fatal("two ephemeral sets share a key")
	}
	if a.Algorithm() != "RS256" {
		t.Fatalf("Algorithm = %s", a.Algorithm())
	}
	token, err := a.Sign([]byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Verify(token); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Verify(token); err == nil {
		t.Fatal("another ephemeral set verified the token")
	}
}

func TestNewEphemeralAlgorithm(t *testing.T) {
	for _, alg := range SupportedAlgorithms() {
		s, err := NewEphemeralAlgorithm(alg)
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		if s.Algorithm() != alg || len(s.JWKS().Keys) != 1 || s.JWKS().Keys[0].Algorithm != alg {
			t.Fatalf("%s: Algorithm %s, JWKS %+v", alg, s.Algorithm(), s.JWKS().Keys)
		}
		token, err := s.Sign([]byte(`{"sub":"x"}`))
		if err != nil {
			t.Fatalf("%s: sign: %v", alg, err)
		}
		header, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
		if err != nil || !strings.Contains(string(header), `"alg":"`+alg+`"`) {
			t.Fatalf("%s: header %s", alg, header)
		}
		if payload, err := s.Verify(token); err != nil || string(payload) != `{"sub":"x"}` {
			t.Fatalf("%s: verify: %q %v", alg, payload, err)
		}
	}
	for _, bad := range []string{"", "HS256", "none", "es256"} {
		if _, err := NewEphemeralAlgorithm(bad); err == nil || !strings.Contains(err.Error(), "RS256, ES256, EdDSA") {
			t.Errorf("NewEphemeralAlgorithm(%q) = %v, want a refusal naming the algorithms", bad, err)
		}
	}
}

func TestSignHeaders(t *testing.T) {
	s := setOf(t, 0)
	payload := []byte(`{"aud":"grafana","nonce":"n-0S6_WzA2Mj"}`)
	for typ, want := range map[string]string{"": "JWT", "logout+jwt": "logout+jwt"} {
		var token string
		var err error
		if typ == "" {
			token, err = s.Sign(payload)
		} else {
			token, err = s.SignWithType(payload, typ)
		}
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(token, "."); n != 2 {
			t.Fatalf("token %q is not compact (%d dots)", token, n)
		}
		h := header(t, token)
		if h["alg"] != "RS256" || h["kid"] != s.KeyID() || h["typ"] != want || len(h) != 3 {
			t.Fatalf("header = %v, want exactly alg RS256, kid %s, typ %s", h, s.KeyID(), want)
		}
		got, err := s.Verify(token)
		if err != nil || string(got) != string(payload) {
			t.Fatalf("Verify = %s, %v", got, err)
		}
	}
	if _, err := s.SignWithType(payload, ""); err == nil {
		t.Fatal("SignWithType with an empty typ: no error")
	}
}

func TestJWKSPublicOnly(t *testing.T) {
	dir := t.TempDir()
	writeTestKey(t, dir, 0, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
	writeTestKey(t, dir, 1, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	s, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
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
	if len(doc.Keys) != 2 {
		t.Fatalf("JWKS has %d keys, want 2: %s", len(doc.Keys), raw)
	}
	for _, k := range doc.Keys {
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "oth"} {
			if _, ok := k[private]; ok {
				t.Fatalf("JWKS publishes private member %q: %s", private, raw)
			}
		}
		if k["kty"] != "RSA" || k["use"] != "sig" || k["alg"] != "RS256" || k["kid"] == "" || k["n"] == nil || k["e"] != "AQAB" {
			t.Fatalf("JWKS key %v: want kty RSA, use sig, alg RS256, kid, n, e", k)
		}
	}

	// A token verifies against the published JWKS alone (what an RP does).
	token, err := s.Sign([]byte(`{"sub":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	var published jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &published); err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jws.Verify(published); err != nil {
		t.Fatalf("token does not verify against the published JWKS: %v", err)
	}

	// Changing what JWKS returned does not change the set.
	got := s.JWKS()
	got.Keys[0].KeyID = "changed"
	got.Keys[0].Key.(*rsa.PublicKey).E = 3
	if again := s.JWKS(); again.Keys[0].KeyID != s.KeyID() || again.Keys[0].Key.(*rsa.PublicKey).E != 65537 {
		t.Fatal("JWKS shares its keys with callers")
	}
	if _, err := s.Verify(token); err != nil {
		t.Fatalf("Verify after a caller changed a JWKS copy: %v", err)
	}
}

// forge builds a compact JWS by hand, so that tests can make tokens no
// well-behaved library would.
func forge(header map[string]any, payload []byte, sign func(input []byte) []byte) string {
	h, _ := json.Marshal(header)
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(payload)
	return input + "." + b64.EncodeToString(sign([]byte(input)))
}

func hs256(key []byte) func([]byte) []byte {
	return func(input []byte) []byte {
		m := hmac.New(sha256.New, key)
		m.Write(input)
		return m.Sum(nil)
	}
}

func rs(key *rsa.PrivateKey, hash crypto.Hash) func([]byte) []byte {
	return func(input []byte) []byte {
		h := hash.New()
		h.Write(input)
		sig, err := rsa.SignPKCS1v15(rand.Reader, key, hash, h.Sum(nil))
		if err != nil {
			panic(err)
		}
		return sig
	}
}

func TestVerifyRefuses(t *testing.T) {
	s := setOf(t, 0)
	ours := testKey(t, 0)
	foreign := testKey(t, 2)
	kid := s.KeyID()
	payload := []byte(`{"iss":"https://id.example.com","sub":"admin"}`)

	good, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(good); err != nil {
		t.Fatalf("a good token does not verify: %v", err)
	}

	pkix, _ := x509.MarshalPKIXPublicKey(&ours.PublicKey)
	pkixPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix})
	pkcs1PEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&ours.PublicKey)})
	jwkJSON, _ := json.Marshal(s.JWKS().Keys[0])
	secret := make([]byte, 32)
	rand.Read(secret)

	parts := strings.Split(good, ".")
	tamperedPayload := parts[0] + "." + b64.EncodeToString([]byte(`{"iss":"https://id.example.com","sub":"root"}`)) + "." + parts[2]
	h := header(t, good)
	h["typ"] = "at+jwt"
	hb, _ := json.Marshal(h)
	tamperedHeader := b64.EncodeToString(hb) + "." + parts[1] + "." + parts[2]
	sig, _ := b64.DecodeString(parts[2])
	sig[len(sig)-1] ^= 1
	tamperedSig := parts[0] + "." + parts[1] + "." + b64.EncodeToString(sig)

	jsonSerialized := `{"protected":"` + parts[0] + `","payload":"` + parts[1] + `","signature":"` + parts[2] + `"}`

	rsHeader := func(alg, kid string) map[string]any {
		h := map[string]any{"alg": alg, "typ": "JWT"}
		if kid != "" {
			h["kid"] = kid
		}
		return h
	}
	none := func([]byte) []byte { return nil }

	tests := map[string]string{
		"alg none":                         forge(rsHeader("none", kid), payload, none),
		"alg none without kid":             forge(rsHeader("none", ""), payload, none),
		"alg None":                         forge(rsHeader("None", kid), payload, none),
		"HS256 keyed with public key PEM":  forge(rsHeader("HS256", kid), payload, hs256(pkixPEM)),
		"HS256 keyed with PKCS#1 PEM":      forge(rsHeader("HS256", kid), payload, hs256(pkcs1PEM)),
		"HS256 keyed with the JWK":         forge(rsHeader("HS256", kid), payload, hs256(jwkJSON)),
		"HS256 keyed with the modulus":     forge(rsHeader("HS256", kid), payload, hs256(ours.N.Bytes())),
		"HS256 without kid":                forge(rsHeader("HS256", ""), payload, hs256(pkixPEM)),
		"HS256 random secret":              forge(rsHeader("HS256", kid), payload, hs256(secret)),
		"RS384 with our own key":           forge(rsHeader("RS384", kid), payload, rs(ours, crypto.SHA384)),
		"RS512 with our own key":           forge(rsHeader("RS512", kid), payload, rs(ours, crypto.SHA512)),
		"foreign key, its own kid":         mustSign(t, setOf(t, 2), payload),
		"foreign key, our kid":             forge(rsHeader("RS256", kid), payload, rs(foreign, crypto.SHA256)),
		"foreign key, no kid":              forge(rsHeader("RS256", ""), payload, rs(foreign, crypto.SHA256)),
		"our key, unknown kid":             forge(rsHeader("RS256", "someone-else"), payload, rs(ours, crypto.SHA256)),
		"tampered payload":                 tamperedPayload,
		"tampered header":                  tamperedHeader,
		"tampered signature":               tamperedSig,
		"signature stripped":               parts[0] + "." + parts[1] + ".",
		"JSON serialization":               jsonSerialized,
		"two parts":                        parts[0] + "." + parts[1],
		"four parts":                       good + "." + parts[2],
		"empty":                            "",
		"not base64":                       "!!!.???.***",
		"header not JSON":                  b64.EncodeToString([]byte("alg=RS256")) + "." + parts[1] + "." + parts[2],
		"RS256 header, HMAC-sized garbage": forge(rsHeader("RS256", kid), payload, hs256(secret)),
	}
	for name, token := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := s.Verify(token)
			if err == nil {
				t.Fatalf("Verify accepted it, payload %s", got)
			}
			t.Log(err)
		})
	}
}

func mustSign(t *testing.T, s *Set, payload []byte) string {
	t.Helper()
	token, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

func TestVerifyWithoutKid(t *testing.T) {
	dir := t.TempDir()
	writeTestKey(t, dir, 0, time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
	writeTestKey(t, dir, 1, time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	s, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		token := forge(map[string]any{"alg": "RS256"}, []byte(`{"i":1}`), rs(testKey(t, i), crypto.SHA256))
		if got, err := s.Verify(token); err != nil || string(got) != `{"i":1}` {
			t.Fatalf("token without kid signed by key %d: %s, %v", i, got, err)
		}
	}
}

func TestSignConcurrently(t *testing.T) {
	s := setOf(t, 0)
	const goroutines, each = 32, 8
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			typ := "JWT"
			if g%2 == 1 {
				typ = "logout+jwt" // also races the first build of this signer
			}
			for i := range each {
				payload, _ := json.Marshal(map[string]int{"g": g, "i": i})
				token, err := s.SignWithType(payload, typ)
				if err != nil {
					t.Error(err)
					return
				}
				got, err := s.Verify(token)
				if err != nil || string(got) != string(payload) {
					t.Errorf("Verify = %s, %v; want %s", got, err, payload)
					return
				}
			}
		})
	}
	wg.Wait()
}

// FuzzVerify feeds Verify mutations of a good token: it must never panic,
// and anything it accepts must carry exactly the payload we signed.
func FuzzVerify(f *testing.F) {
	s := setOf(f, 0)
	payload := []byte(`{"sub":"fuzz"}`)
	good, err := s.Sign(payload)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(forge(map[string]any{"alg": "none"}, payload, func([]byte) []byte { return nil }))
	f.Add("")
	f.Add("..")
	f.Fuzz(func(t *testing.T, token string) {
		got, err := s.Verify(token)
		if err == nil && string(got) != string(payload) {
			t.Fatalf("Verify accepted %q with payload %q", token, got)
		}
	})
}

// FuzzParsePrivateKey feeds the key-file parser arbitrary bytes: errors,
// never panics; an RSA key below 2048 bits, an EC key off P-256 or a key
// labelled with another algorithm than its kind is never accepted.
func FuzzParsePrivateKey(f *testing.F) {
	der, err := x509.MarshalPKCS8PrivateKey(testKey(f, 0))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(testKey(f, 0))}))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n"))
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	if der, err = x509.MarshalPKCS8PrivateKey(ec); err != nil {
		f.Fatal(err)
	}
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	if der, err = x509.MarshalPKCS8PrivateKey(ed); err != nil {
		f.Fatal(err)
	}
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	f.Fuzz(func(t *testing.T, data []byte) {
		key, alg, err := parsePrivateKey(data)
		if err != nil {
			return
		}
		switch k := key.(type) {
		case *rsa.PrivateKey:
			if k.N.BitLen() < rsaBits {
				t.Fatalf("accepted a %d-bit key", k.N.BitLen())
			}
			if alg != jose.RS256 {
				t.Fatalf("RSA key labelled %s", alg)
			}
		case *ecdsa.PrivateKey:
			if k.Curve != elliptic.P256() || alg != jose.ES256 {
				t.Fatalf("accepted an EC key on %s as %s", k.Curve.Params().Name, alg)
			}
		case ed25519.PrivateKey:
			if alg != jose.EdDSA {
				t.Fatalf("Ed25519 key labelled %s", alg)
			}
		default:
			t.Fatalf("accepted a %T", key)
		}
	})
}

// BenchmarkSign measures one ID token signature per algorithm, in one run:
// go test -run '^$' -bench 'Sign|Verify' ./keys/
func BenchmarkSign(b *testing.B) {
	for _, alg := range SupportedAlgorithms() {
		b.Run(alg, func(b *testing.B) { benchmarkSign(b, alg) })
	}
}

func BenchmarkVerify(b *testing.B) {
	for _, alg := range SupportedAlgorithms() {
		b.Run(alg, func(b *testing.B) { benchmarkVerify(b, alg) })
	}
}

// TestVerifyRefusesNonCanonicalSpellings: go-jose decodes base64url
// leniently, so one genuine token could be written several ways; only the
// spelling we produced verifies.
func TestVerifyRefusesNonCanonicalSpellings(t *testing.T) {
	s, err := NewEphemeral()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Sign([]byte(`{"sub":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(tok); err != nil {
		t.Fatalf("genuine token refused: %v", err)
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, tok[len(tok)-1])
	for name, v := range map[string]string{
		"unused bits of the last character set": tok[:len(tok)-1] + string(alphabet[last^1]),
		"CR LF inside":                          tok[:10] + "\r\n" + tok[10:],
		"padding":                               tok + "=",
		"empty signature":                       tok[:strings.LastIndexByte(tok, '.')+1],
		"four parts":                            tok + ".x",
	} {
		if _, err := s.Verify(v); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestStagedRotation: a key added to the directory is published at once but
// signs only after it has been published for the configured time; tokens of
// the old key keep verifying throughout.
func TestStagedRotation(t *testing.T) {
	dir := t.TempDir()
	first, err := LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	oldKID := first.KeyID()
	oldTok, _ := first.Sign([]byte(`{"n":1}`))

	newKID, file, err := AddKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if newKID == oldKID || !strings.HasPrefix(file, dir) {
		t.Fatalf("AddKey: %s %s", newKID, file)
	}
	wantMode(t, file, 0o600)

	now := time.Now()
	clock := func() time.Time { return now }
	s, err := LoadOrCreate(dir) // a restart: both keys loaded
	if err != nil {
		t.Fatal(err)
	}
	s.Staged(time.Hour, clock)
	if kids := jwksKIDs(s); len(kids) != 2 {
		t.Fatalf("JWKS after adding a key: %v", kids)
	}
	// Published but young: the old key still signs...
	if s.KeyID() != oldKID {
		t.Fatalf("a key published for 0s signs already (%s)", s.KeyID())
	}
	tok, _ := s.Sign([]byte(`{"n":2}`))
	if kidOf(t, tok) != oldKID {
		t.Fatal("signed with the young key")
	}
	// ...until it has been published for an hour.
	now = now.Add(time.Hour + 2*time.Second)
	if s.KeyID() != newKID {
		t.Fatalf("after an hour the new key does not sign (%s)", s.KeyID())
	}
	tok, _ = s.Sign([]byte(`{"n":3}`))
	if kidOf(t, tok) != newKID {
		t.Fatal("not signed with the new key")
	}
	for _, tk := range []string{oldTok, tok} {
		if _, err := s.Verify(tk); err != nil {
			t.Fatalf("verify across the rotation: %v", err)
		}
	}
	// Unstaged (the default), the newest key signs at once.
	plain, _ := LoadOrCreate(dir)
	if plain.KeyID() != newKID {
		t.Fatal("without staging the newest key must sign")
	}
}

func jwksKIDs(s *Set) []string {
	var out []string
	for _, k := range s.JWKS().Keys {
		out = append(out, k.KeyID)
	}
	return out
}

func kidOf(t *testing.T, tok string) string {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	_ = json.Unmarshal(raw, &h)
	return h.Kid
}
