package qrtest

import (
	"crypto/rand"
	"testing"

	qrcode "github.com/skip2/go-qrcode"
)

// TestDecodesEveryGeneratedCode: the QR codes the bridge makes (go-qrcode,
// Medium, 6 px per module) for scan URLs of every port length decode, every
// one of them: a test that scans a QR code must not fail by chance.
func TestDecodesEveryGeneratedCode(t *testing.T) {
	for i := 0; i < 1000; i++ {
		u := "http://127.0.0.1:" + []string{"3423", "34223", "8080", "123"}[i%4] + "/qr/scan?t=" + rand.Text()[:26] + "ABCDEF"
		q, err := qrcode.New(u, qrcode.Medium)
		if err != nil {
			t.Fatal(err)
		}
		png, err := q.PNG(-6)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := DecodePNG(png); err != nil || got != u {
			t.Fatalf("%q decoded as %q: %v", u, got, err)
		}
	}
}
