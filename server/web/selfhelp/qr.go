package selfhelp

import (
	"fmt"
	"strings"

	qrcode "github.com/skip2/go-qrcode"

	"mailsetup/templates"
)

// profileQR draws link as a QR code for the page to show inline (an SVG
// path, one rectangle per run of dark modules, within the quiet zone
// the standard asks for), so that a phone's camera opens the Apple profile from a
// computer's screen. Nil when the link cannot be encoded.
func profileQR(link string) *templates.HelpQR {
	q, err := qrcode.New(link, qrcode.Medium)
	if err != nil {
		return nil
	}
	// The bitmap has the quiet zone already.
	bits := q.Bitmap()
	var d strings.Builder
	for y, row := range bits {
		for x := 0; x < len(row); x++ {
			if !row[x] {
				continue
			}
			// One rectangle per run of dark modules in a row.
			run := 1
			for x+run < len(row) && row[x+run] {
				run++
			}
			fmt.Fprintf(&d, "M%d %dh%dv1h-%dz", x, y, run, run)
			x += run - 1
		}
	}
	return &templates.HelpQR{URL: link, Path: d.String(), Size: len(bits)}
}
