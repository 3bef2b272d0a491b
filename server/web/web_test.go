package web_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mailsetup/autoconfig"
	"mailsetup/autoconfig/autodiscover"
	"mailsetup/autoconfig/mozilla"
	"mailsetup/internal/testkit"
	"mailsetup/server/asynclog"
	"mailsetup/server/web"
	"mailsetup/server/web/webtest"
)

func newApp(t testing.TB, log *slog.Logger) *web.App {
	t.Helper()
	a, err := web.New(web.Options{Policies: webtest.Policies{testkit.IMAPFirst(), testkit.POPFirst()}, Logger: log, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestAutodiscoverCorpusOverHTTP sends the request shapes Outlook and
// Thunderbird send, and hostile ones, and checks each HTTP answer.
func TestAutodiscoverCorpusOverHTTP(t *testing.T) {
	app := newApp(t, nil)
	dir := "../../autoconfig/autodiscover/testdata/requests"
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.xml"))
	if len(files) < 10 {
		t.Fatalf("request corpus missing: %d files", len(files))
	}
	// Re-address the valid requests to a configured domain.
	ok := func(b []byte) []byte {
		return bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("user@example.com"), []byte("john@example.com")), []byte("@contoso.com"), []byte("@example.com"))
	}
	tests := []struct {
		name   string
		body   []byte
		status int
		want   string
	}{
		{"outlook", ok(read("outlook.xml")), 200, "<LoginName>"},
		{"thunderbird", ok(read("thunderbird.xml")), 200, "<LoginName>"},
		{"prefixed", ok(read("prefixed.xml")), 200, "<LoginName>"},
		{"bom crlf", ok(read("bom-crlf.xml")), 200, "<LoginName>"},
		{"xxe", read("xxe.xml"), 400, "<ErrorCode>600</ErrorCode>"},
		{"billion laughs", read("billion-laughs.xml"), 400, "<ErrorCode>600</ErrorCode>"},
		{"malformed", read("malformed.xml"), 400, "<ErrorCode>600</ErrorCode>"},
		{"empty", nil, 400, "<ErrorCode>600</ErrorCode>"},
		{"mobilesync", read("mobilesync.xml"), 400, "<ErrorCode>601</ErrorCode>"},
		{"10 MB", bytes.Repeat([]byte("<a>"), 10<<20/3), 413, "<ErrorCode>600</ErrorCode>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := webtest.Do(app, "POST", "/Autodiscover/Autodiscover.xml", bytes.NewReader(tt.body), "Content-Type", "text/xml")
			if w.Code != tt.status || !strings.Contains(w.Body.String(), tt.want) {
				t.Errorf("%d %s\nwant %d with %q", w.Code, w.Body, tt.status, tt.want)
			}
			if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/xml") {
				t.Errorf("content type %q", ct)
			}
		})
	}
}

func TestAddressesValidated(t *testing.T) {
	app := newApp(t, nil)
	for _, c := range []struct {
		target string
		status int
	}{
		{"/mail/config-v1.1.xml?emailaddress=john@example.com", 200},
		{"/mail/config-v1.1.xml?emailaddress=john@pop-first.test", 200},
		{"/mail/config-v1.1.xml?emailaddress=john@EXAMPLE.com", 200},
		{"/mail/config-v1.1.xml?emailaddress=john%3Cscript%3E@example.com", 400},
		{"/mail/config-v1.1.xml?emailaddress=john@evil.example", 404},
		{"/apple/mail.mobileconfig?email=john@example.com", 200},
		{"/apple/mail.mobileconfig", 400},
		{"/autodiscover/autodiscover.json?email=john@example.com&protocol=autodiscoverv1", 200},
		{"/autodiscover/autodiscover.json?Email=john&Protocol=AutodiscoverV1", 400},
		{"/autodiscover/autodiscover.json/v1.0/john@evil.example?Protocol=AutodiscoverV1", 404},
		{"/nope", 404},
	} {
		if w := webtest.Do(app, "GET", c.target, nil); w.Code != c.status {
			t.Errorf("%s: %d %s, want %d", c.target, w.Code, w.Body, c.status)
		}
	}
	// An unknown domain never gets another domain's settings.
	w := webtest.Do(app, "GET", "/mail/config-v1.1.xml?emailaddress=john@pop-first.test", nil)
	if strings.Contains(w.Body.String(), "example.com") {
		t.Errorf("pop-first.test got example.com's settings:\n%s", w.Body)
	}
}

// TestNoSecretsLogged: Thunderbird sends the password in Basic auth to
// Autodiscover; neither headers nor bodies reach the log.
func TestNoSecretsLogged(t *testing.T) {
	var buf webtest.LockedBuffer
	h, sink := asynclog.New(&buf, asynclog.Options{Level: slog.LevelDebug})
	app := newApp(t, slog.New(h))
	body := `<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>john@example.com</EMailAddress></Request></Autodiscover>`
	r := httptest.NewRequest("POST", "/autodiscover/autodiscover.xml", strings.NewReader(body))
	r.SetBasicAuth("john@example.com", "hunter2-secret")
	w := httptest.NewRecorder()
	app.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	sink.Close(context.Background())
	log := buf.String()
	if !strings.Contains(log, "/autodiscover/autodiscover.xml") {
		t.Fatalf("request not logged: %q", log)
	}
	for _, secret := range []string{"hunter2", "Basic", "EMailAddress"} {
		if strings.Contains(log, secret) {
			t.Errorf("log contains %q: %s", secret, log)
		}
	}
}

type stuckWriter struct{ release chan struct{} }

func (w stuckWriter) Write(p []byte) (int, error) {
	<-w.release
	return len(p), nil
}

// TestStuckLogSinkDoesNotSlowRequests: with a log sink that blocks
// forever, requests are answered as fast as with a sink that discards,
// and the drop counter rises.
func TestStuckLogSinkDoesNotSlowRequests(t *testing.T) {
	const n = 3000
	run := func(w io.Writer) (time.Duration, *asynclog.Sink, *web.App) {
		h, sink := asynclog.New(w, asynclog.Options{Queue: 64})
		app := newApp(t, slog.New(h))
		start := time.Now()
		for i := 0; i < n; i++ {
			if w := webtest.Do(app, "GET", "/mail/config-v1.1.xml?emailaddress=john@example.com", nil); w.Code != 200 {
				t.Fatalf("status %d", w.Code)
			}
		}
		return time.Since(start), sink, app
	}
	baseline, s1, _ := run(io.Discard)
	s1.Close(context.Background())
	stuck := stuckWriter{release: make(chan struct{})}
	defer close(stuck.release)
	elapsed, sink, app := run(stuck)
	before := sink.Dropped()
	// All but one batch held by the writer and one queue's worth.
	if before < n/2 {
		t.Errorf("dropped %d of %d records, want all but the queue", before, n)
	}
	// The counter keeps rising while the sink stays stuck.
	for i := 0; i < 10; i++ {
		webtest.Do(app, "GET", "/healthz", nil)
	}
	if after := sink.Dropped(); after != before+10 {
		t.Errorf("drop counter went from %d to %d over 10 requests", before, after)
	}
	// Generous bound: the machine is shared and noisy; a blocking logger
	// would not finish at all.
	if elapsed > 3*baseline+time.Second {
		t.Errorf("%d requests took %v with a stuck sink, %v with a discarding one", n, elapsed, baseline)
	}
	t.Logf("%d requests: %v with a discarding sink, %v with a stuck sink; %d records dropped", n, baseline, elapsed, before)
}

// TestPrerenderedDocumentsEqualRenderer: the per-policy templates give
// exactly what the renderers give, for addresses that need escaping.
func TestPrerenderedDocumentsEqualRenderer(t *testing.T) {
	app := newApp(t, nil)
	for _, p := range []autoconfig.Policy{testkit.IMAPFirst(), testkit.POPFirst()} {
		for _, local := range []string{"john", "O'Brien&Co", "x{y}|z"} {
			addr := local + "@" + p.Domain
			var want bytes.Buffer
			if err := mozilla.Render(&want, p, addr); err != nil {
				t.Fatal(err)
			}
			w := webtest.Do(app, "GET", "/mail/config-v1.1.xml?emailaddress="+url.QueryEscape(addr), nil)
			if w.Body.String() != want.String() {
				t.Errorf("thunderbird %s:\n%s\nwant\n%s", addr, w.Body, want.String())
			}
			want.Reset()
			if err := autodiscover.WriteResponse(&want, p, addr); err != nil {
				t.Fatal(err)
			}
			body := `<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>` + strings.ReplaceAll(addr, "&", "&amp;") + `</EMailAddress></Request></Autodiscover>`
			w = webtest.Do(app, "POST", "/autodiscover/autodiscover.xml", strings.NewReader(body))
			if w.Body.String() != want.String() {
				t.Errorf("pox %s:\n%s\nwant\n%s", addr, w.Body, want.String())
			}
		}
	}
}
