package oidc

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the testdata/*.golden files with what the code produces now")

// checkGolden compares got with testdata/name, or rewrites the file with -update.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to create it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from what goes on the wire now (if the change is intended, run go test -run %s -update and review the diff)\n got:\n%s\nwant:\n%s", path, t.Name(), got, want)
	}
}

func indentJSON(t *testing.T, v any) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestDiscoveryGolden pins the metadata document (OpenID Connect Discovery
// 1.0 §3) this package produces, field by field and in order.
func TestDiscoveryGolden(t *testing.T) {
	h, _ := newExchangeHarness(t)
	checkGolden(t, "discovery.golden", indentJSON(t, h.p.Discovery()))
}

// opaqueToken reports whether s is an opaque token as NewToken makes them.
func opaqueToken(s string) bool {
	b, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil && len(b) == 32
}

// wireBody returns the raw token endpoint body with its random values
// replaced by placeholders, after checking each is what it claims to be.
func (h *refreshHarness) wireBody(body []byte) []byte {
	h.t.Helper()
	var tr TokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		h.t.Fatal(err)
	}
	out := string(body)
	if !opaqueToken(tr.AccessToken) {
		h.t.Fatalf("access_token %q is not an opaque token", tr.AccessToken)
	}
	out = strings.ReplaceAll(out, tr.AccessToken, "<opaque access token>")
	if tr.RefreshToken != "" {
		if !opaqueToken(tr.RefreshToken) {
			h.t.Fatalf("refresh_token %q is not an opaque token", tr.RefreshToken)
		}
		out = strings.ReplaceAll(out, tr.RefreshToken, "<opaque refresh token>")
	}
	if tr.IDToken != "" {
		h.idTokenClaims(tr.IDToken) // verifies
		out = strings.ReplaceAll(out, tr.IDToken, "<signed ID token>")
	}
	return []byte(out)
}

// TestTokenResponseGolden pins the token endpoint's bodies byte for byte
// (RFC 6749 §5.1 and §5.2, OpenID Connect Core 1.0 §3.1.3.3 and §12.2), with
// the random tokens replaced by placeholders, and the claims of the ID
// token (at_hash replaced likewise).
func TestTokenResponseGolden(t *testing.T) {
	h := newRefreshHarness(t)
	code := h.login("app", offlineScopes, "n-0S6_WzA2Mj")
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {appRedirect}}
	w := h.post(h.p.HandleToken, "app", appSecret, form)
	if w.Code != http.StatusOK {
		t.Fatalf("code exchange: %d %s", w.Code, w.Body)
	}
	body := w.Body.Bytes()
	checkGolden(t, "token_response.golden", h.wireBody(body))

	var tr TokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		t.Fatal(err)
	}
	claims := h.idTokenClaims(tr.IDToken)
	if claims["at_hash"] != leftHalfHash(tr.AccessToken) {
		t.Fatalf("at_hash %v is not that of the access token", claims["at_hash"])
	}
	claims["at_hash"] = "<left half of SHA-256 of the access token>"
	checkGolden(t, "id_token_claims.golden", indentJSON(t, claims))

	h.clock.Advance(10 * time.Minute)
	w = h.post(h.p.HandleToken, "app", appSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}, "scope": {"openid offline_access"}})
	if w.Code != http.StatusOK {
		t.Fatalf("refresh: %d %s", w.Code, w.Body)
	}
	checkGolden(t, "token_response_refresh.golden", h.wireBody(w.Body.Bytes()))

	w = h.post(h.p.HandleToken, "app", appSecret, form) // the code again
	if w.Code != http.StatusBadRequest {
		t.Fatalf("code replay: %d %s", w.Code, w.Body)
	}
	checkGolden(t, "token_error.golden", w.Body.Bytes())
}
