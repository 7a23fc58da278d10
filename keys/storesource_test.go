package keys

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wechat-oidc/wechat-oidc/store"
)

func TestParseEncryptionKey(t *testing.T) {
	raw := bytes.Repeat([]byte{0xa7, 0x01, 0xfe, 0x42}, 8) // 32 bytes
	good := base64.StdEncoding.EncodeToString(raw)
	got, err := ParseEncryptionKey(good)
	if err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("ParseEncryptionKey(good) = %x, %v", got, err)
	}
	if got, err := ParseEncryptionKey("  " + good + "\n"); err != nil || !bytes.Equal(got, raw) {
		t.Fatalf("with the newline openssl prints: %x, %v", got, err)
	}
	for name, tc := range map[string]struct{ in, want string }{
		"empty":             {"", "is empty"},
		"blank":             {" \n", "is empty"},
		"not base64":        {"this is not a key, it is a sentence!", "is not standard base64"},
		"URL-safe alphabet": {base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb, 0xff}, 16)), "is not standard base64"},
		"unpadded":          {strings.TrimRight(good, "="), "is not standard base64"},
		"16 bytes":          {base64.StdEncoding.EncodeToString(raw[:16]), "decodes to 16 bytes, want 32"},
		"33 bytes":          {base64.StdEncoding.EncodeToString(append(raw, 1)), "decodes to 33 bytes, want 32"},
		"hex, not base64":   {strings.Repeat("ab", 32), "decodes to 48 bytes, want 32"},
		"all zero":          {base64.StdEncoding.EncodeToString(make([]byte, 32)), "all zero"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseEncryptionKey(tc.in)
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) || !strings.Contains(msg, "openssl rand -base64 32") {
				t.Fatalf("error %q: want %q and how to make a key", msg, tc.want)
			}
			if s := strings.TrimSpace(tc.in); len(s) > 4 && strings.Contains(msg, s) {
				t.Fatalf("error quotes the value: %q", msg)
			}
		})
	}
}

func TestStoreSourceRefusesWithoutEncryptionKey(t *testing.T) {
	for name, kek := range map[string][]byte{"missing": nil, "short": make([]byte, 16)} {
		_, err := NewStoreSource(store.NewMemory(), kek, "")
		if err == nil || !strings.Contains(err.Error(), "keys.encryption_key") || !strings.Contains(err.Error(), "openssl rand -base64 32") {
			t.Fatalf("%s key: error %v, want one naming keys.encryption_key and how to make one", name, err)
		}
	}
}

// storeDocOf reads the raw document a store source keeps.
func storeDocOf(t *testing.T, st store.Store, src *StoreSource) []byte {
	t.Helper()
	raw, err := st.Get(t.Context(), src.key)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestSealedKeysAtRest: the store holds no private key in clear.
func TestSealedKeysAtRest(t *testing.T) {
	m := store.NewMemory()
	src := storeSource(t, m, testKEK)
	kr := newKeyring(t, src, Options{Algorithms: []string{RS256, ES256, EdDSA}, PublishBeforeUse: pbu})
	raw := storeDocOf(t, m, src)
	for _, k := range kr.Set().keys {
		der, err := x509.MarshalPKCS8PrivateKey(k.private)
		if err != nil {
			t.Fatal(err)
		}
		for _, enc := range []string{string(der), base64.StdEncoding.EncodeToString(der), base64.RawURLEncoding.EncodeToString(der)} {
			if bytes.Contains(raw, []byte(enc)) {
				t.Fatalf("the store holds %s's private key in clear", k.alg)
			}
		}
		// The private scalar alone (a JWK's "d") does not appear either.
		jwk, err := json.Marshal(jwkOf(k))
		if err != nil {
			t.Fatal(err)
		}
		var members map[string]any
		if err := json.Unmarshal(jwk, &members); err != nil {
			t.Fatal(err)
		}
		if d, _ := members["d"].(string); d == "" || bytes.Contains(raw, []byte(d)) {
			t.Fatalf("%s: private member d missing from the test JWK or present in the store", k.alg)
		}
	}
	if bytes.Contains(raw, testKEK) || bytes.Contains(raw, []byte(base64.StdEncoding.EncodeToString(testKEK))) {
		t.Fatal("the store holds the encryption key")
	}
}

// TestSealedKeysNeedTheRightEncryptionKey: a replica with another
// encryption key cannot read the keys, says why, and changes nothing (it
// does not "repair" the store with keys of its own).
func TestSealedKeysNeedTheRightEncryptionKey(t *testing.T) {
	eachStore(t, func(t *testing.T, stores storeFactory) {
		clk := newClock()
		h := stores(t, 2)
		o := rotating(clk, ES256)
		src := storeSource(t, h[0], testKEK)
		newKeyring(t, src, o)
		before := storeDocOf(t, h[0], src)

		other := bytes.Repeat([]byte{0x33}, EncryptionKeySize)
		wrong := storeSource(t, h[1], other)
		_, err := NewKeyring(t.Context(), wrong, o)
		if err == nil || !strings.Contains(err.Error(), "another keys.encryption_key") || !strings.Contains(err.Error(), "same key") {
			t.Fatalf("wrong encryption key: %v", err)
		}
		t.Log(err)
		if _, err := List(t.Context(), wrong, o); err == nil {
			t.Fatal("List read keys with the wrong encryption key")
		}
		clk.Add(rot) // a rotation is due: still nothing is written
		if _, err := Rotate(t.Context(), wrong, o); err == nil {
			t.Fatal("Rotate wrote with the wrong encryption key")
		}
		if _, err := NewKeyring(t.Context(), wrong, o); err == nil {
			t.Fatal("a Keyring started with the wrong encryption key")
		}
		if after := storeDocOf(t, h[1], wrong); !bytes.Equal(after, before) {
			t.Fatal("a replica with the wrong encryption key changed the store")
		}
	})
}

// TestTamperedSealedKeyRefused: a sealed key changed in the store, moved to
// another record or relabelled is refused with a clear error, and nothing
// is overwritten; a running replica keeps signing with what it has.
func TestTamperedSealedKeyRefused(t *testing.T) {
	tamper := map[string]func(doc *storeDoc){
		"flipped ciphertext bit": func(doc *storeDoc) { doc.Keys[0].Sealed[len(doc.Keys[0].Sealed)-20] ^= 1 },
		"flipped nonce bit":      func(doc *storeDoc) { doc.Keys[0].Sealed[0] ^= 0x80 },
		"truncated":              func(doc *storeDoc) { doc.Keys[0].Sealed = doc.Keys[0].Sealed[:10] },
		"sealed keys swapped": func(doc *storeDoc) {
			doc.Keys[0].Sealed, doc.Keys[1].Sealed = doc.Keys[1].Sealed, doc.Keys[0].Sealed
		},
		"kid changed":       func(doc *storeDoc) { doc.Keys[0].KID = doc.Keys[1].KID },
		"alg relabelled":    func(doc *storeDoc) { doc.Keys[0].Alg = RS256 },
		"unknown algorithm": func(doc *storeDoc) { doc.Keys[0].Alg = "HS256" },
	}
	for name, fn := range tamper {
		t.Run(name, func(t *testing.T) {
			clk := newClock()
			o := rotating(clk, ES256, EdDSA)
			m := store.NewMemory()
			src := storeSource(t, m, testKEK)
			kr := newKeyring(t, src, o)
			var doc storeDoc
			if err := json.Unmarshal(storeDocOf(t, m, src), &doc); err != nil {
				t.Fatal(err)
			}
			fn(&doc)
			bad, err := json.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			if err := m.Put(t.Context(), src.key, bad, time.Hour); err != nil {
				t.Fatal(err)
			}
			set := kr.Set()
			err = kr.Reload(t.Context())
			if err == nil {
				t.Fatal("tampered record loaded")
			}
			t.Log(err)
			if kr.Set() != set {
				t.Fatal("a failed reload replaced the Set")
			}
			if _, err := NewKeyring(t.Context(), storeSource(t, m, testKEK), o); err == nil {
				t.Fatal("a new replica started on a tampered record")
			}
			clk.Add(rot)
			if err := kr.Reload(t.Context()); err == nil {
				t.Fatal("tampered record loaded when a rotation was due")
			}
			if after := storeDocOf(t, m, src); !bytes.Equal(after, bad) {
				t.Fatal("the tampered record was overwritten")
			}
		})
	}
}

func TestStoreDocumentUnreadable(t *testing.T) {
	for name, tc := range map[string]struct{ doc, want string }{
		"not JSON":       {"{", "not readable JSON"},
		"newer version":  {`{"version":2,"keys":[]}`, "format version 2"},
		"no kek id":      {`{"version":1,"keys":[]}`, "another keys.encryption_key"},
		"wrong kek kind": {`{"version":1,"kek":"abc","keys":[]}`, "another keys.encryption_key"},
	} {
		t.Run(name, func(t *testing.T) {
			m := store.NewMemory()
			src := storeSource(t, m, testKEK)
			if err := m.Put(t.Context(), src.key, []byte(tc.doc), time.Hour); err != nil {
				t.Fatal(err)
			}
			_, err := NewKeyring(t.Context(), src, Options{PublishBeforeUse: pbu})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if got := storeDocOf(t, m, src); string(got) != tc.doc {
				t.Fatalf("document overwritten: %s", got)
			}
		})
	}
}

// TestRekeyKeepsEveryKeyUnderTheNewEncryptionKey: the keys sealed under the
// old encryption key are sealed again under the new one in one write: a
// replica given the new key reads the same keys (same kids, same
// signatures verify), one still given the old key is refused and changes
// nothing, and a second rekey, a wrong old key or the same key twice are
// refused and change nothing.
func TestRekeyKeepsEveryKeyUnderTheNewEncryptionKey(t *testing.T) {
	eachStore(t, func(t *testing.T, stores storeFactory) {
		clk := newClock()
		h := stores(t, 2)
		o := rotating(clk, ES256)
		oldSrc := storeSource(t, h[0], testKEK)
		before := newKeyring(t, oldSrc, o)
		clk.Add(rot) // a second key, so that more than one record is sealed again
		if _, err := Rotate(t.Context(), oldSrc, o); err != nil {
			t.Fatal(err)
		}
		want, err := List(t.Context(), oldSrc, o)
		if err != nil || len(want) < 2 {
			t.Fatalf("keys before the rekey: %v (%v), want at least 2", want, err)
		}
		token, err := before.Set().Sign([]byte(`{"sub":"alice"}`))
		if err != nil {
			t.Fatal(err)
		}

		newKEK := bytes.Repeat([]byte{0x5c}, EncryptionKeySize)
		wrongOld := bytes.Repeat([]byte{0x77}, EncryptionKeySize)
		unchanged := storeDocOf(t, h[1], oldSrc)
		if _, err := Rekey(t.Context(), h[1], "", wrongOld, newKEK); err == nil || !strings.Contains(err.Error(), "old key") {
			t.Fatalf("rekey with a wrong old key: %v, want a refusal naming the old key", err)
		}
		if _, err := Rekey(t.Context(), h[1], "", testKEK, testKEK); err == nil || !strings.Contains(err.Error(), "the same") {
			t.Fatalf("rekey to the same key: %v", err)
		}
		if after := storeDocOf(t, h[1], oldSrc); !bytes.Equal(after, unchanged) {
			t.Fatal("a refused rekey changed the store")
		}

		n, err := Rekey(t.Context(), h[1], "", testKEK, newKEK)
		if err != nil || n != len(want) {
			t.Fatalf("Rekey = %d, %v; want %d keys sealed again", n, err, len(want))
		}
		newSrc := storeSource(t, h[1], newKEK)
		got, err := List(t.Context(), newSrc, o)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("after the rekey %d keys, want %d", len(got), len(want))
		}
		for i := range want {
			if got[i].KID != want[i].KID || got[i].State != want[i].State || !got[i].Activates.Equal(want[i].Activates) {
				t.Fatalf("key %d after the rekey %+v, want %+v", i, got[i], want[i])
			}
		}
		after := newKeyring(t, newSrc, o)
		if _, err := after.Set().Verify(token); err != nil {
			t.Fatalf("a token signed before the rekey does not verify with the keys read after it: %v", err)
		}
		raw := storeDocOf(t, h[1], newSrc)
		if bytes.Contains(raw, newKEK) || bytes.Contains(raw, []byte(base64.StdEncoding.EncodeToString(newKEK))) {
			t.Fatal("the store holds the new encryption key")
		}
		if _, err := NewKeyring(t.Context(), storeSource(t, h[0], testKEK), o); err == nil || !strings.Contains(err.Error(), "another keys.encryption_key") {
			t.Fatalf("a replica still given the old key after the rekey: %v, want refused", err)
		}
		if _, err := Rekey(t.Context(), h[1], "", testKEK, newKEK); !errors.Is(err, ErrAlreadyRekeyed) {
			t.Fatalf("a second rekey: %v, want ErrAlreadyRekeyed", err)
		}
	})
}
