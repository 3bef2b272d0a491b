package selfhelp_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mailsetup/autoconfig"
	"mailsetup/internal/testkit"
	"mailsetup/probe"
	"mailsetup/server/accounts"
	"mailsetup/server/asynclog"
	"mailsetup/server/auth"
	"mailsetup/server/web"
	"mailsetup/server/web/webtest"
	"mailsetup/templates"
)

// update rewrites the self-help goldens: go test ./server/web/selfhelp -update.
var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// updating reports whether -update was given.
func updating() bool { return *update }

// helpApp builds the app with the two sample policies. live allows the
// checks' probe to contact the policies' hosts (false: only the
// comparison runs, no connection at all).
func helpApp(t testing.TB, opts web.Options, live bool) *web.App {
	t.Helper()
	if opts.Policies == nil {
		opts.Policies = webtest.Policies{testkit.IMAPFirst(), testkit.POPFirst()}
	}
	opts.Registerer = prometheus.NewRegistry()
	if !live {
		opts.Probe.AllowedHost = func(string) bool { return false }
	}
	a, err := web.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// popOnly is a policy without IMAP, STARTTLS only, whose POP3 clients
// must not keep a copy on the server.
func popOnly() autoconfig.Policy {
	return autoconfig.Policy{Domain: "pop-only.test", DisplayName: "POP Only", Prefer: autoconfig.POP3, Username: autoconfig.FullAddress,
		Auth:       []autoconfig.AuthMethod{autoconfig.AuthPlain},
		POP3:       []autoconfig.Endpoint{{Protocol: autoconfig.POP3, Host: "pop.pop-only.test", Port: 110, Security: autoconfig.STARTTLS}},
		Submission: []autoconfig.Endpoint{{Protocol: autoconfig.SMTP, Host: "smtp.pop-only.test", Port: 587, Security: autoconfig.STARTTLS}},
		Web:        autoconfig.Web{BaseURL: "https://autoconfig.pop-only.test"}}
}

// TestSelfHelpGolden compares each instruction page, per policy, with
// its golden file in testdata.
func TestSelfHelpGolden(t *testing.T) {
	app := helpApp(t, web.Options{Policies: webtest.Policies{testkit.IMAPFirst(), testkit.POPFirst(), popOnly()}}, false)
	for _, c := range []struct{ name, address string }{
		{"imap-first", "john@example.com"},
		{"pop-first", "jane.doe+list@pop-first.test"},
		{"pop-only", "kim@pop-only.test"},
	} {
		for _, page := range []string{"", "/thunderbird", "/outlook", "/windowsmail", "/outlookmac", "/outlookmobile", "/apple", "/samsung", "/android", "/emclient", "/other"} {
			name := c.name + strings.ReplaceAll(page, "/", "-")
			t.Run(name, func(t *testing.T) {
				w := webtest.Do(app, "GET", "/help/"+url.PathEscape(c.address)+page, nil)
				if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
					t.Fatalf("%d %s\n%s", w.Code, w.Header().Get("Content-Type"), w.Body)
				}
				if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
					t.Errorf("Content-Security-Policy %q", csp)
				}
				got := w.Body.Bytes()
				path := filepath.Join("testdata", name+".golden.html")
				if updating() {
					if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(path, got, 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run go test ./server/web/ -run SelfHelpGolden -update to create it)", err)
				}
				if string(got) != string(want) {
					t.Errorf("page differs from %s (rerun with -update after checking the change)\ngot:\n%s", path, got)
				}
			})
		}
	}
}

// TestSelfHelpPagesCarryThePolicy: every client page names the
// policy's own values and the seed's rules, so a golden regenerated
// from a broken renderer does not pass unnoticed.
func TestSelfHelpPagesCarryThePolicy(t *testing.T) {
	app := helpApp(t, web.Options{}, false)
	for _, c := range []struct {
		address string
		want    []string
	}{
		{"john@example.com", []string{"imap.example.com", "993", "smtp.example.com", "465", "SSL/TLS", "delete after 7 days"}},
		{"jane@pop-first.test", []string{"mail.pop-first.test", "995", "587", "STARTTLS", "delete after 2 days"}},
	} {
		for _, cl := range templates.HelpClients {
			page := cl.ID
			w := webtest.Do(app, "GET", "/help/"+c.address+"/"+page, nil)
			body := w.Body.String()
			want := slices.Clone(c.want)
			if cl.NoPOPExpiry != "" {
				// It cannot remove POP3 mail after N days: the rules say
				// to use IMAP instead, and the picture shows IMAP.
				want = append(want[:len(want)-1], "Use IMAP, not POP3", "cannot remove POP3 mail")
			}
			if w.Code != 200 || !strings.Contains(body, `<figure class="dialog"`) {
				t.Errorf("%s %s: %d, no picture of the dialog", c.address, page, w.Code)
			}
			for _, want := range append(want, c.address, "full email address", "requires authentication", "same username") {
				if !strings.Contains(body, want) {
					t.Errorf("%s %s: no %q", c.address, page, want)
				}
			}
		}
	}
	w := webtest.Do(app, "GET", "/help/john@example.com/thunderbird", nil)
	for _, want := range []string{`"Hostname"`, `"Connection security"`, `"Authentication method": <strong>Normal password`, `"Username"`, "Configure manually", `"For at most"`} {
		if !strings.Contains(w.Body.String(), want) {
			t.Errorf("thunderbird page: no %q", want)
		}
	}
	w = webtest.Do(app, "GET", "/help/john@example.com/apple", nil)
	if !strings.Contains(w.Body.String(), `href="/apple/mail.mobileconfig?email=john%40example.com"`) {
		t.Errorf("apple page: no profile link:\n%s", w.Body)
	}
}

func TestSelfHelpAddressErrors(t *testing.T) {
	app := helpApp(t, web.Options{}, false)
	for _, c := range []struct {
		target string
		status int
		want   []string
	}{
		{"/", 200, []string{`<label for="address">Your email address</label>`, `type="email"`, `autocomplete="email"`}},
		{"/help?address=john", 400, []string{"not a complete email address", `value="john"`, "no name before or no domain after the @"}},
		{"/help?address=", 400, []string{"Please type your email address"}},
		{"/help?address=john%40evil.example", 404, []string{"no mail settings for evil.example", `value="john@evil.example"`}},
		{"/help/john@evil.example", 404, []string{"evil.example"}},
		{"/help/john%3Cscript%3E@example.com/apple", 400, []string{"not a complete email address", "&lt;"}},
		{"/help/john@example.com/netscape", 404, []string{"We have no instructions for the mail program “netscape”", `id="error-back" href="/help/john@example.com"`}},
		{"/check/john@evil.example", 404, []string{"evil.example"}},
	} {
		w := webtest.Do(app, "GET", c.target, nil)
		if w.Code != c.status {
			t.Errorf("%s: %d, want %d\n%s", c.target, w.Code, c.status, w.Body)
			continue
		}
		for _, want := range c.want {
			if !strings.Contains(w.Body.String(), want) {
				t.Errorf("%s: no %q in\n%s", c.target, want, w.Body)
			}
		}
		// The served domains are nobody's business: never listed.
		if c.status != 200 || c.target == "/" {
			for _, d := range []string{"pop-first.test"} {
				if strings.Contains(w.Body.String(), d) {
					t.Errorf("%s: lists the served domain %s", c.target, d)
				}
			}
		}
		if strings.Contains(strings.Replace(w.Body.String(), `<script src="`+templates.ScriptPath+`" defer></script>`, "", 1), "<script") {
			t.Errorf("%s: unescaped input", c.target)
		}
	}
	w := webtest.Do(app, "GET", "/help?address=+John.Doe@EXAMPLE.com+", nil)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/help/John.Doe@example.com" {
		t.Errorf("lookup: %d to %q", w.Code, w.Header().Get("Location"))
	}
	// An address with a slash survives the path.
	w = webtest.Do(app, "GET", "/help/"+url.PathEscape("a/b@example.com"), nil)
	if w.Code != 200 || !strings.Contains(w.Body.String(), "a/b@example.com") {
		t.Errorf("escaped address: %d", w.Code)
	}
}

func TestSettingsJSON(t *testing.T) {
	app := helpApp(t, web.Options{}, false)
	w := webtest.Do(app, "GET", "/settings/jane@pop-first.test", nil)
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("%d %s", w.Code, w.Body)
	}
	var got struct {
		Address, Domain, Username, Prefer string
		DisplayName                       string `json:"display_name"`
		Incoming, Outgoing                []struct {
			Protocol, Host, Security string
			Port                     int
		}
		OutgoingAuth bool `json:"outgoing_requires_auth"`
		Auth         []string
		POP3         struct {
			LeaveOnServer   bool `json:"leave_on_server"`
			DeleteAfterDays int  `json:"delete_after_days"`
		}
		URLs struct {
			Thunderbird  string
			AppleProfile string `json:"apple_profile"`
			Autodiscover string
			Help         string
		}
	}
	dec := json.NewDecoder(strings.NewReader(w.Body.String()))
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	// The field names, checked without the case-insensitive decoder.
	for _, key := range []string{`"address":`, `"display_name":`, `"incoming":`, `"outgoing":`, `"pop3":{"leave_on_server":true,"delete_after_days":2}`, `"urls":`, `"apple_profile":`} {
		if !strings.Contains(w.Body.String(), key) {
			t.Errorf("JSON lacks %s: %s", key, w.Body)
		}
	}
	p := testkit.POPFirst()
	if got.Address != "jane@pop-first.test" || got.Domain != p.Domain || got.DisplayName != p.DisplayName || got.Username != "jane@pop-first.test" || got.Prefer != "pop3" || !got.OutgoingAuth {
		t.Errorf("got %+v", got)
	}
	if len(got.Incoming) != 3 || got.Incoming[0].Protocol != "pop3" || got.Incoming[0].Port != 995 || got.Incoming[0].Security != "tls" || got.Incoming[2].Protocol != "imap" {
		t.Errorf("incoming %+v", got.Incoming)
	}
	if len(got.Outgoing) != 1 || got.Outgoing[0].Port != 587 || got.Outgoing[0].Security != "starttls" {
		t.Errorf("outgoing %+v", got.Outgoing)
	}
	if got.URLs.Thunderbird != "https://mail.pop-first.test:8443/mail/config-v1.1.xml?emailaddress=jane%40pop-first.test" ||
		got.URLs.AppleProfile != "https://mail.pop-first.test:8443/apple/mail.mobileconfig?email=jane%40pop-first.test" ||
		got.URLs.Autodiscover != "https://mail.pop-first.test:8443/Autodiscover/Autodiscover.xml" {
		t.Errorf("urls %+v", got.URLs)
	}
	for _, c := range []struct {
		target string
		status int
		want   string
	}{
		{"/settings/jane", 400, "not a complete email address"},
		{"/settings/jane@evil.example", 404, "evil.example"},
	} {
		w := webtest.Do(app, "GET", c.target, nil)
		var e struct{ Error string }
		if w.Code != c.status || json.Unmarshal(w.Body.Bytes(), &e) != nil || !strings.Contains(e.Error, c.want) {
			t.Errorf("%s: %d %s", c.target, w.Code, w.Body)
		}
	}
}

// helpBrowser is a cookie-keeping client of the app for the form tests.
type helpBrowser struct {
	t      testing.TB
	app    http.Handler
	remote string
	cookie []*http.Cookie
	// plainHTTP sends the requests without TLS (default: over HTTPS).
	plainHTTP bool
}

// token loads the check page and returns its form token.
func (b *helpBrowser) token(address string) string {
	b.t.Helper()
	w := b.request("GET", "/check/"+address, nil)
	if w.Code != 200 {
		b.t.Fatalf("check page: %d %s", w.Code, w.Body)
	}
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(w.Body.String())
	if m == nil {
		b.t.Fatalf("no csrf field:\n%s", w.Body)
	}
	return m[1]
}

func (b *helpBrowser) request(method, target string, form url.Values) *httptest.ResponseRecorder {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequest(method, target, body)
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.Header.Set("Origin", "http://example.com") // httptest's Host
	}
	if b.remote != "" {
		r.RemoteAddr = b.remote
	}
	if !b.plainHTTP {
		r.TLS = &tls.ConnectionState{} // the page over HTTPS, as customers get it
	}
	for _, c := range b.cookie {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	b.app.ServeHTTP(w, r)
	b.cookie = append(b.cookie, w.Result().Cookies()...)
	return w
}

// check posts the form for address with a fresh token.
func (b *helpBrowser) check(address string, form url.Values) *httptest.ResponseRecorder {
	b.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf", b.token(address))
	return b.request("POST", "/check/"+address, form)
}

// findingIDs returns the ids of the problems on a result page.
func helpProblemIDs(body string) []string {
	var ids []string
	for _, m := range regexp.MustCompile(`<li class="finding sev-[a-z]+" data-id="([^"]+)"`).FindAllStringSubmatch(body, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

func TestSelfHelpCheckFindings(t *testing.T) {
	app := helpApp(t, web.Options{}, false)
	b := &helpBrowser{t: t, app: app, remote: "192.0.2.7:4000"}
	bad := url.Values{"in_proto": {"imap"}, "in_host": {"imap.example.com"}, "in_port": {"993"}, "in_security": {"tls"}, "in_user": {"john"},
		"out_host": {"smtp.example.com"}, "out_port": {"465"}, "out_security": {"tls"}, "out_auth": {"no"}}
	w := b.check("john@example.com", bad)
	body := w.Body.String()
	if w.Code != 200 {
		t.Fatalf("%d %s", w.Code, body)
	}
	if ids := helpProblemIDs(body); strings.Join(ids, ",") != "username.not-full-address,smtp.auth-disabled" {
		t.Errorf("problems %v\n%s", ids, body)
	}
	for _, want := range []string{"type your full email address john@example.com instead of &#34;john&#34;",
		"Turn on &#34;My outgoing server (SMTP) requires authentication&#34;",
		"Incoming server: IMAP, imap.example.com, port 993, SSL/TLS", "Outgoing server: SMTP, smtp.example.com, port 465, SSL/TLS",
		`value="john"`, `<option value="no" selected>No`} {
		if !strings.Contains(body, want) {
			t.Errorf("result lacks %q\n%s", want, body)
		}
	}
	if strings.Contains(body, "Incoming username:") {
		t.Error("the wrong username is listed as right")
	}

	good := url.Values{"in_proto": {"pop3"}, "in_host": {"POP.example.com."}, "in_port": {"995"}, "in_security": {"ssl"}, "in_user": {"john@example.com"},
		"leave": {"yes"}, "delete_after": {"7"}, "out_host": {"smtp.example.com"}, "out_port": {"587"}, "out_security": {"starttls"}, "out_auth": {"yes"}}
	w = b.check("john@example.com", good)
	body = w.Body.String()
	if w.Code != 200 || len(helpProblemIDs(body)) != 0 || !strings.Contains(body, `id="all-right"`) {
		t.Fatalf("correct settings: %d %v\n%s", w.Code, helpProblemIDs(body), body)
	}
	for _, want := range []string{"Incoming username: john@example.com", "Leave a copy on the server, removed after 7 days", "Outgoing server requires authentication: yes"} {
		if !strings.Contains(body, want) {
			t.Errorf("right list lacks %q", want)
		}
	}

	leaveForever := url.Values{"in_proto": {"pop3"}, "leave": {"yes"}}
	if ids := helpProblemIDs(b.check("john@example.com", leaveForever).Body.String()); strings.Join(ids, ",") != "pop3.leave-forever" {
		t.Errorf("leave forever: %v", ids)
	}
}

// TestSelfHelpErrorsInGerman: the check form's refusals and an unknown
// mail program are pages in the customer layout, in the request's
// language, never English plain text.
func TestSelfHelpErrorsInGerman(t *testing.T) {
	app := helpApp(t, web.Options{}, false)
	b := &helpBrowser{t: t, app: app}
	b.request("GET", "/help/john@example.com?lang=de", nil) // the cookie remembers German
	tok := b.token("john@example.com")
	for _, tc := range []struct {
		name, method, target string
		form                 url.Values
		code                 int
		want                 string
	}{
		{"no token", "POST", "/check/john@example.com", url.Values{"in_user": {"john"}}, 403, "Dieses Formular ist abgelaufen"},
		{"too large", "POST", "/check/john@example.com", url.Values{"csrf": {tok}, "in_user": {strings.Repeat("x", 20<<10)}}, 413, "Das Formular ist größer als 16384 Bytes"},
		{"unknown program", "GET", "/help/john@example.com/netscape", nil, 404, "Für das E-Mail-Programm „netscape“ haben wir keine Anleitung"},
	} {
		w := b.request(tc.method, tc.target, tc.form)
		body := w.Body.String()
		if w.Code != tc.code || !strings.Contains(body, tc.want) || !strings.Contains(body, `<html lang="de"`) ||
			!strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") || w.Header().Get("Content-Language") != "de" {
			t.Errorf("%s: %d %s %q\n%s", tc.name, w.Code, w.Header().Get("Content-Type"), w.Header().Get("Content-Language"), body)
		}
		for _, english := range []string{"the form", "Something went wrong", "Go back", "no instructions"} {
			if strings.Contains(body, english) {
				t.Errorf("%s: English %q on the German page", tc.name, english)
			}
		}
	}
}

func TestSelfHelpCheckCSRF(t *testing.T) {
	app := helpApp(t, web.Options{}, false)
	b := &helpBrowser{t: t, app: app}
	form := url.Values{"in_user": {"john"}}
	// No token at all.
	if w := b.request("POST", "/check/john@example.com", form); w.Code != 403 || !strings.Contains(w.Body.String(), "Open the check page again") {
		t.Errorf("no token: %d %s", w.Code, w.Body)
	}
	// A token from another helpBrowser (cookie missing).
	tok := b.token("john@example.com")
	other := &helpBrowser{t: t, app: app}
	form.Set("csrf", tok)
	if w := other.request("POST", "/check/john@example.com", form); w.Code != 403 {
		t.Errorf("foreign token: %d", w.Code)
	}
	// A cross-site post with a valid token.
	r := httptest.NewRequest("POST", "/check/john@example.com", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("Origin", "https://evil.example")
	for _, c := range b.cookie {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	app.ServeHTTP(w, r)
	if w.Code != 403 {
		t.Errorf("cross-site: %d", w.Code)
	}
	if w := b.request("POST", "/check/john@example.com", form); w.Code != 200 {
		t.Errorf("own token: %d %s", w.Code, w.Body)
	}
	big := url.Values{"csrf": {tok}, "in_user": {strings.Repeat("x", 20<<10)}}
	if w := b.request("POST", "/check/john@example.com", big); w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("large form: %d", w.Code)
	}
}

// helpCountingListener accepts TCP connections on addr and counts them.
func helpCountingListener(t *testing.T, addr string) (*atomic.Int64, int) {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	t.Cleanup(func() { l.Close() })
	var n atomic.Int64
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			c.Close()
		}
	}()
	return &n, l.Addr().(*net.TCPAddr).Port
}

// TestSelfHelpCheckNeverDialsOtherHosts: the check contacts the
// policy's own servers and nothing the customer names. Host fields that
// are not host names are refused before anything runs.
func TestSelfHelpCheckNeverDialsOtherHosts(t *testing.T) {
	own, ownPort := helpCountingListener(t, "127.0.0.1:0")
	foreign, foreignPort := helpCountingListener(t, "127.0.0.2:0")
	pol := autoconfig.Policy{Domain: "loop.test", DisplayName: "Loop", Prefer: autoconfig.IMAP, Username: autoconfig.FullAddress,
		Auth:       []autoconfig.AuthMethod{autoconfig.AuthPlain},
		IMAP:       []autoconfig.Endpoint{{Protocol: autoconfig.IMAP, Host: "127.0.0.1", Port: ownPort, Security: autoconfig.TLS}},
		Submission: []autoconfig.Endpoint{{Protocol: autoconfig.SMTP, Host: "127.0.0.1", Port: ownPort, Security: autoconfig.TLS}},
		Web:        autoconfig.Web{BaseURL: fmt.Sprintf("https://127.0.0.1:%d", ownPort)}}
	app := helpApp(t, web.Options{Policies: webtest.Policies{pol}, Probe: probe.Options{StepTimeout: 2 * time.Second}}, true)
	b := &helpBrowser{t: t, app: app}

	fp := fmt.Sprint(foreignPort)
	for _, host := range []string{"127.0.0.2", "localhost", "evil.example"} {
		form := url.Values{"in_proto": {"imap"}, "in_host": {host}, "in_port": {fp}, "in_security": {"starttls"},
			"out_host": {host}, "out_port": {fp}, "out_security": {"starttls"}, "out_auth": {"yes"}}
		w := b.check("me@loop.test", form)
		if w.Code != 200 || !strings.Contains(strings.Join(helpProblemIDs(w.Body.String()), ","), "server.wrong-host") {
			t.Errorf("%s: %d %v", host, w.Code, helpProblemIDs(w.Body.String()))
		}
	}
	if own.Load() == 0 {
		t.Error("the check contacted none of the policy's servers")
	}
	if n := foreign.Load(); n != 0 {
		t.Errorf("the check connected %d times to the host the customer named", n)
	}

	before := own.Load()
	for field, value := range map[string]string{
		"in_host": "127.0.0.2:" + fp, "out_host": "http://evil.example/", "in_port": "0", "out_port": "70000",
	} {
		w := b.check("me@loop.test", url.Values{field: {value}})
		if w.Code != 400 || !strings.Contains(w.Body.String(), `href="#`+field+`"`) || !strings.Contains(w.Body.String(), `id="`+field+`" name="`+field+`" value="`+attrEscape(value)+`"`) {
			t.Errorf("%s=%q: %d\n%s", field, value, w.Code, w.Body)
		}
	}
	if own.Load() != before || foreign.Load() != 0 {
		t.Error("a refused form still connected somewhere")
	}
}

// attrEscape escapes like html/template in an attribute, enough for the
// values above.
func attrEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", `"`, "&#34;", "<", "&lt;", ">", "&gt;", "/", "/").Replace(s)
}

func TestSelfHelpRateLimit(t *testing.T) {
	app := helpApp(t, web.Options{SelfHelpChecksPerAddress: 3, SelfHelpChecksPerIP: 5}, false)
	b := &helpBrowser{t: t, app: app, remote: "198.51.100.1:5000"}
	limited := -1
	for i := range 20 {
		w := b.check("john@example.com", nil)
		if w.Code == http.StatusTooManyRequests {
			limited = i
			if !strings.Contains(w.Body.String(), "You have run many checks in a short time. Please try again in") || w.Header().Get("Retry-After") == "" {
				t.Errorf("429 without the message or Retry-After:\n%s", w.Body)
			}
			break
		}
		if w.Code != 200 {
			t.Fatalf("check %d: %d", i, w.Code)
		}
	}
	if limited != 3 {
		t.Fatalf("per-address limit hit at check %d, want 3", limited)
	}
	// The same IP may still check other addresses, up to its own limit.
	limited = -1
	for i := range 20 {
		w := b.check(fmt.Sprintf("user%d@example.com", i), nil)
		if w.Code == http.StatusTooManyRequests {
			limited = i
			break
		}
	}
	if limited != 2 {
		t.Fatalf("per-IP limit hit after %d more checks, want 2", limited)
	}
	// Another IPv4 client is not affected; one in the same IPv6 /64 is.
	other := &helpBrowser{t: t, app: app, remote: "198.51.100.2:5000"}
	if w := other.check("someone@example.com", nil); w.Code != 200 {
		t.Errorf("other client: %d", w.Code)
	}
	v6a := &helpBrowser{t: t, app: app, remote: "[2001:db8:1:2::1]:5000"}
	v6b := &helpBrowser{t: t, app: app, remote: "[2001:db8:1:2::99]:5000"}
	for i := range 5 {
		v6a.check(fmt.Sprintf("v6-%d@example.com", i), nil)
	}
	if w := v6b.check("v6-other@example.com", nil); w.Code != http.StatusTooManyRequests {
		t.Errorf("same /64: %d", w.Code)
	}
}

// TestSelfHelpCheckPassword: a wrong password is verified by the
// mail server's authenticator (counted in its shared throttle against
// the customer's IP), shown as login.failed, and never echoed, logged or
// tried by the probe; a bounded loop of wrong passwords reaches the
// throttle and gets its message.
func TestSelfHelpCheckPassword(t *testing.T) {
	store, err := accounts.Open(filepath.Join(t.TempDir(), "accounts.json"))
	if err != nil {
		t.Fatal(err)
	}
	const right = "correct horse battery"
	if err := store.Add("john@example.com", right); err != nil {
		t.Fatal(err)
	}
	authn := auth.New(auth.Options{Accounts: store, IsLocal: func(d string) bool { return d == "example.com" || d == "pop-first.test" },
		Throttle: auth.ThrottleOptions{IPLimit: 4, AccountLimit: 100, Window: time.Hour}})
	var logBuf webtest.LockedBuffer
	h, sink := asynclog.New(&logBuf, asynclog.Options{Level: slog.LevelDebug})
	app := helpApp(t, web.Options{Auth: authn, Logger: slog.New(h), SelfHelpChecksPerAddress: 100, SelfHelpChecksPerIP: 100}, false)
	b := &helpBrowser{t: t, app: app, remote: "203.0.113.9:6000"}

	w := b.check("john@example.com", url.Values{"in_user": {"john@example.com"}, "password": {right}})
	if w.Code != 200 || len(helpProblemIDs(w.Body.String())) != 0 || !strings.Contains(w.Body.String(), "your password works") {
		t.Fatalf("right password: %d %v\n%s", w.Code, helpProblemIDs(w.Body.String()), w.Body)
	}

	const wrongPrefix = "Wrong-Secret-"
	throttled := -1
	for i := range 20 {
		w := b.check("john@example.com", url.Values{"in_user": {"john@example.com"}, "password": {fmt.Sprintf("%s%d", wrongPrefix, i)}})
		body := w.Body.String()
		if strings.Contains(body, wrongPrefix) || strings.Contains(body, right) {
			t.Fatal("the password is in the page")
		}
		if w.Code == http.StatusTooManyRequests {
			throttled = i
			if !strings.Contains(body, "Too many failed logins") || !strings.Contains(body, "Try again in") || w.Header().Get("Retry-After") == "" {
				t.Errorf("throttled page:\n%s", body)
			}
			break
		}
		if w.Code != 200 || strings.Join(helpProblemIDs(body), ",") != "login.failed" {
			t.Fatalf("wrong password %d: %d %v", i, w.Code, helpProblemIDs(body))
		}
		if !strings.Contains(body, "Check the password") {
			t.Errorf("login.failed without its fix")
		}
	}
	// The throttle's bucket drains a little between attempts, so the
	// limit is reached after 4 or 5 failures.
	if throttled != 4 && throttled != 5 {
		t.Fatalf("throttled at attempt %d, want 4 or 5 (the throttle's IP limit)", throttled)
	}
	ip := netip.MustParseAddr("203.0.113.9")
	if authn.Throttle().Blocked(ip, "") == 0 {
		t.Error("the customer's IP is not blocked in the shared throttle")
	}
	if authn.Throttle().Blocked(netip.MustParseAddr("127.0.0.1"), "") != 0 {
		t.Error("loopback was charged for the customer's failures")
	}
	// Throttled, even the right password is not tried; without a
	// password the check still runs.
	if w := b.check("john@example.com", url.Values{"password": {right}}); w.Code != http.StatusTooManyRequests {
		t.Errorf("right password while throttled: %d", w.Code)
	}
	if w := b.check("john@example.com", url.Values{"in_user": {"john"}}); w.Code != 200 || strings.Join(helpProblemIDs(w.Body.String()), ",") != "username.not-full-address" {
		t.Errorf("check without password while throttled: %d %v", w.Code, helpProblemIDs(w.Body.String()))
	}
	sink.Close(context.Background())
	logs := logBuf.String()
	if strings.Contains(logs, wrongPrefix) || strings.Contains(logs, right) {
		t.Errorf("a password is in the log:\n%s", logs)
	}
	if !strings.Contains(logs, "/check/john@example.com") {
		t.Errorf("checks not logged:\n%s", logs)
	}
}

func TestSelfHelpCheckWithoutAuthenticator(t *testing.T) {
	app := helpApp(t, web.Options{}, false)
	b := &helpBrowser{t: t, app: app}
	w := b.request("GET", "/check/john@example.com", nil)
	if strings.Contains(w.Body.String(), `type="password"`) || !strings.Contains(w.Body.String(), "password test is not available") {
		t.Errorf("form without authenticator:\n%s", w.Body)
	}
	w = b.check("john@example.com", url.Values{"password": {"whatever-123"}})
	if w.Code != 200 || !strings.Contains(w.Body.String(), "Your password was not tested") || strings.Contains(w.Body.String(), "whatever-123") {
		t.Errorf("%d\n%s", w.Code, w.Body)
	}
}

// TestSelfHelpPasswordNeverOverPlainHTTP: over plain HTTP from another
// machine the form does not ask for the password but links to the
// HTTPS page, and a password posted anyway is not used: the mail
// server's login check never sees it.
func TestSelfHelpPasswordNeverOverPlainHTTP(t *testing.T) {
	store, err := accounts.Open(filepath.Join(t.TempDir(), "accounts.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Add("john@example.com", "correct horse battery"); err != nil {
		t.Fatal(err)
	}
	authn := auth.New(auth.Options{Accounts: store, IsLocal: func(d string) bool { return d == "example.com" },
		Throttle: auth.ThrottleOptions{IPLimit: 4, AccountLimit: 4, Window: time.Hour}})
	app := helpApp(t, web.Options{Auth: authn, SelfHelpChecksPerAddress: 100, SelfHelpChecksPerIP: 100}, false)
	b := &helpBrowser{t: t, app: app, remote: "198.51.100.20:5000", plainHTTP: true}
	w := b.request("GET", "/check/john@example.com", nil)
	body := w.Body.String()
	if strings.Contains(body, `type="password"`) || !strings.Contains(body, `id="password-insecure"`) || !strings.Contains(body, `href="https://`) {
		t.Errorf("plain HTTP form:\n%s", body)
	}
	for i := 0; i < 8; i++ { // twice the throttle's limit: none may count
		w = b.check("john@example.com", url.Values{"password": {"wrong password " + strconv.Itoa(i)}})
		if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "Your password was not used") || strings.Contains(w.Body.String(), "login.failed") {
			t.Fatalf("check %d over plain HTTP: %d\n%s", i, w.Code, w.Body)
		}
	}
	if wait := authn.Throttle().Blocked(netip.MustParseAddr("198.51.100.20"), "john@example.com"); wait != 0 {
		t.Errorf("passwords sent over plain HTTP reached the throttle: blocked for %v", wait)
	}
}
