package peoplecli

import (
	"fmt"
	"strings"

	qrcode "github.com/skip2/go-qrcode"
)

// Half blocks: one character is two modules stacked (top, bottom), so the
// code is square on a terminal whose cells are twice as high as wide.
const (
	blockBoth   = '█'
	blockTop    = '▀'
	blockBottom = '▄'
	blockNone   = ' '
)

// Colours for a terminal: black ink on a bright white ground whatever the
// terminal's theme (a light-on-dark code does not scan everywhere).
const (
	qrColour = "\x1b[30;107m"
	qrReset  = "\x1b[0m"
)

// terminalQR draws text as a QR code (with its quiet zone) in half-block
// characters, dark modules as ink. With colour, each line is wrapped in
// black-on-white escape codes, for a terminal; without, it is plain text
// for a file or a light background.
func terminalQR(text string, colour bool) (string, error) {
	q, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		return "", fmt.Errorf("making the QR code: %w", err)
	}
	bits := q.Bitmap()
	var b strings.Builder
	for y := 0; y < len(bits); y += 2 {
		if colour {
			b.WriteString(qrColour)
		}
		for x := range bits[y] {
			top, bottom := bits[y][x], y+1 < len(bits) && bits[y+1][x]
			switch {
			case top && bottom:
				b.WriteRune(blockBoth)
			case top:
				b.WriteRune(blockTop)
			case bottom:
				b.WriteRune(blockBottom)
			default:
				b.WriteRune(blockNone)
			}
		}
		if colour {
			b.WriteString(qrReset)
		}
		b.WriteByte('\n')
	}
	return b.String(), nil
}
