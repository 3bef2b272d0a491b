package selfhelp

import (
	"fmt"
	"strings"

	qrcode "github.com/yeqown/go-qrcode/v2"

	"mailsetup/templates"
)

// qrQuiet is the quiet zone around the code, in modules: four, as the
// standard asks (ISO/IEC 18004), so that a camera finds the code on a
// busy page.
const qrQuiet = 4

// bitmapWriter keeps the code's modules (the library hands a writer the
// finished matrix; no image is made).
type bitmapWriter struct{ bits [][]bool }

func (w *bitmapWriter) Write(m qrcode.Matrix) error { w.bits = m.Bitmap(); return nil }
func (w *bitmapWriter) Close() error                { return nil }

// profileQR draws link as a QR code for the page to show inline (an SVG
// path, one rectangle per run of dark modules, within the quiet zone),
// so that a phone's camera opens the Apple profile from a computer's
// screen. Nil when the link cannot be encoded.
func profileQR(link string) *templates.HelpQR {
	q, err := qrcode.NewWith(link, qrcode.WithErrorCorrectionLevel(qrcode.ErrorCorrectionMedium))
	if err != nil {
		return nil
	}
	var w bitmapWriter
	if q.Save(&w) != nil || len(w.bits) == 0 {
		return nil
	}
	var d strings.Builder
	for y, row := range w.bits {
		for x := 0; x < len(row); x++ {
			if !row[x] {
				continue
			}
			// One rectangle per run of dark modules in a row.
			run := 1
			for x+run < len(row) && row[x+run] {
				run++
			}
			fmt.Fprintf(&d, "M%d %dh%dv1h-%dz", x+qrQuiet, y+qrQuiet, run, run)
			x += run - 1
		}
	}
	return &templates.HelpQR{URL: link, Path: d.String(), Size: len(w.bits) + 2*qrQuiet}
}
