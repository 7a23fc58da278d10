package dev

import (
	"bytes"
	"encoding/base64"
	"image"
	"image/color"
	"image/png"
	"math"
)

// drawLogo draws dev mode's made-up organisation logo (a PNG data URL), so
// that the pages show what ui.logo looks like: a rounded blue square with a
// white ring and dot. 4×4 samples per pixel smooth the edges.
func drawLogo() string {
	const size, samples = 96, 4
	bg := color.RGBA{0x1f, 0x6f, 0xeb, 0xff}
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	for y := range size {
		for x := range size {
			var inSquare, white int
			for sy := range samples {
				for sx := range samples {
					px := float64(x) + (float64(sx)+0.5)/samples
					py := float64(y) + (float64(sy)+0.5)/samples
					if !inRoundedSquare(px, py, size, 22) {
						continue
					}
					inSquare++
					d := math.Hypot(px-size/2, py-size/2)
					if (d > 22 && d < 32) || d < 9 {
						white++
					}
				}
			}
			if inSquare == 0 {
				continue
			}
			n := float64(samples * samples)
			w := float64(white) / float64(inSquare)
			mix := func(c uint8) uint8 { return uint8(float64(c)*(1-w) + 255*w + 0.5) }
			img.SetNRGBA(x, y, color.NRGBA{mix(bg.R), mix(bg.G), mix(bg.B), uint8(255*float64(inSquare)/n + 0.5)})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return "" // encoding an in-memory image does not fail; no logo then
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())
}

// inRoundedSquare: (x, y) lies in the size×size square with corners of
// radius r.
func inRoundedSquare(x, y, size, r float64) bool {
	cx := math.Min(math.Max(x, r), size-r)
	cy := math.Min(math.Max(y, r), size-r)
	return math.Hypot(x-cx, y-cy) <= r
}
