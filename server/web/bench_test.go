package web_test

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"mailsetup/server/asynclog"
)

func benchRoute(b *testing.B, method, target, body string) {
	h, sink := asynclog.New(io.Discard, asynclog.Options{})
	defer sink.Close(b.Context())
	app := newApp(b, slog.New(h))
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(method, target, strings.NewReader(body))
		w := httptest.NewRecorder()
		app.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatalf("status %d", w.Code)
		}
	}
}

func BenchmarkThunderbird(b *testing.B) {
	benchRoute(b, "GET", "/mail/config-v1.1.xml?emailaddress=john@example.com", "")
}

func BenchmarkAutodiscoverPOX(b *testing.B) {
	benchRoute(b, "POST", "/Autodiscover/Autodiscover.xml", `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>john@example.com</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>`)
}

func BenchmarkAppleProfile(b *testing.B) {
	benchRoute(b, "GET", "/apple/mail.mobileconfig?email=john@example.com", "")
}

// The self-help pages a customer walks through.
func BenchmarkHelpStart(b *testing.B) { benchRoute(b, "GET", "/", "") }

func BenchmarkHelpDomain(b *testing.B) { benchRoute(b, "GET", "/help/john@example.com", "") }

func BenchmarkHelpThunderbird(b *testing.B) {
	benchRoute(b, "GET", "/help/john@example.com/thunderbird", "")
}

func BenchmarkHelpCheckForm(b *testing.B) { benchRoute(b, "GET", "/check/john@example.com", "") }

func BenchmarkSettingsJSON(b *testing.B) { benchRoute(b, "GET", "/settings/john@example.com", "") }
