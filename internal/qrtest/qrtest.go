// Package qrtest reads QR codes the way a phone's camera would, for tests:
// the one decoder every test that scans a QR code uses.
package qrtest

import (
	"bytes"
	"fmt"
	"image/png"

	"github.com/makiuchi-d/gozxing"
	gozxingqr "github.com/makiuchi-d/gozxing/qrcode"
)

// DecodePNG returns the text of the QR code in a PNG image (a page's data:
// URL or a screenshot).
func DecodePNG(pix []byte) (string, error) {
	img, err := png.Decode(bytes.NewReader(pix))
	if err != nil {
		return "", fmt.Errorf("not a PNG image: %w", err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		return "", err
	}
	reader := gozxingqr.NewQRCodeReader()
	res, err := reader.Decode(bmp, nil)
	if err != nil {
		// The detector that finds a code in a photo misjudges the size of
		// about one generated code in 300; a code alone on its image (a
		// page's data: URL, a screenshot of the <img>) is read as such,
		// the way a phone's camera still reads it.
		res, err = reader.Decode(bmp, map[gozxing.DecodeHintType]interface{}{
			gozxing.DecodeHintType_PURE_BARCODE: true, gozxing.DecodeHintType_TRY_HARDER: true})
	}
	if err != nil {
		return "", fmt.Errorf("the QR code does not decode: %w", err)
	}
	return res.GetText(), nil
}
