package bridge

import (
	"bytes"
	"encoding/json"
	"flag"
	"github.com/wechat-oidc/wechat-oidc/config"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/*.golden with what the server produces now")

// TestDiscoveryDocumentGolden pins the whole discovery document as it goes
// on the wire (the issuer, which is the test server's address, is written
// as ISSUER): a field added, dropped or renamed shows up as a diff to review.
func TestDiscoveryDocumentGolden(t *testing.T) {
	h := newHarness(t, withMiniProgram(rpClientID))
	resp, err := http.Get(h.issuer() + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	got, _ := json.MarshalIndent(doc, "", "  ")
	got = append(bytes.ReplaceAll(got, []byte(h.issuer()), []byte("ISSUER")), '\n')
	path := filepath.Join("testdata", "discovery.golden")
	if *updateGolden {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run %s -update to create it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("the discovery document changed (if intended: go test -run %s -update, and review the diff)\n got:\n%s\nwant:\n%s", t.Name(), got, want)
	}
	if strings.Contains(string(got), "127.0.0.1") {
		t.Fatal("an address other than the issuer leaked into discovery")
	}
}

// TestWeChatVerifyFileServed: WeChat's domain-verification file is served
// at the host root with its content; other names are 404.
func TestWeChatVerifyFileServed(t *testing.T) {
	h := newHarness(t, withConfig(func(c *config.File) {
		c.WeChat.VerifyFiles = map[string]string{"MP_verify_AbC123.txt": "AbC123"}
	}))
	for path, want := range map[string]int{"/MP_verify_AbC123.txt": 200, "/MP_verify_Other.txt": 404, "/passwd": 404} {
		resp, err := http.Get(h.issuer() + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want || (want == 200 && string(body) != "AbC123") {
			t.Errorf("%s: %d %q", path, resp.StatusCode, body)
		}
	}
}
