package web_test

import (
	"bytes"
	"encoding/binary"
	"image/png"
	"log/slog"
	"net/http"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"mailsetup/internal/testkit"
	"mailsetup/server/web"
	"mailsetup/server/web/webtest"
)

// TestFavicon: /favicon.ico is a real icon, cacheable, and asking for it
// (every page view does) logs nothing at info.
func TestFavicon(t *testing.T) {
	var log webtest.LockedBuffer
	app, err := web.New(web.Options{Policies: webtest.Policies{testkit.IMAPFirst()}, Registerer: prometheus.NewRegistry(),
		Logger: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelInfo})), QuietAccess: true})
	if err != nil {
		t.Fatal(err)
	}
	w := webtest.Do(app, "GET", "/favicon.ico", nil)
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "image/x-icon" || w.Header().Get("Cache-Control") == "" {
		t.Fatalf("GET /favicon.ico: %d %q %q", w.Code, w.Header().Get("Content-Type"), w.Header().Get("Cache-Control"))
	}
	if s := log.String(); s != "" {
		t.Errorf("the favicon request was logged at info:\n%s", s)
	}
	// An ICO directory (reserved 0, type 1, count) whose entries are PNGs
	// of the sizes they claim.
	ico := w.Body.Bytes()
	var hdr [3]uint16
	if err := binary.Read(bytes.NewReader(ico), binary.LittleEndian, &hdr); err != nil || hdr[0] != 0 || hdr[1] != 1 || hdr[2] == 0 {
		t.Fatalf("not an ICO file: %v %v", hdr, err)
	}
	for i := range int(hdr[2]) {
		e := ico[6+16*i:]
		size := int(e[0])
		n, off := binary.LittleEndian.Uint32(e[8:]), binary.LittleEndian.Uint32(e[12:])
		img, err := png.Decode(bytes.NewReader(ico[off : off+n]))
		if err != nil || img.Bounds().Dx() != size || img.Bounds().Dy() != size {
			t.Errorf("entry %d (%dx%d): %v", i, size, size, err)
		}
	}
}
