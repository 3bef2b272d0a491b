package console_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"mailsetup/autoconfig"
	"mailsetup/internal/testkit"
	"mailsetup/probe"
	"mailsetup/server/accounts"
	"mailsetup/server/asynclog"
	"mailsetup/server/auth"
	"mailsetup/server/events"
	"mailsetup/server/observe"
	"mailsetup/server/web"
	"mailsetup/server/web/console"
	"mailsetup/server/web/webtest"
)

const staffPassword = "correct horse battery"

// clock is a settable time for idle timeouts.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type staffEnv struct {
	app   *web.App
	clock *clock
	audit *bytes.Buffer
	token string
	obs   *observe.Store
	reg   *prometheus.Registry
	auth  *auth.Authenticator
}

func newStaffApp(t testing.TB) *staffEnv {
	t.Helper()
	return newStaffAppWith(t, staffConfig{})
}

// staffConfig changes newStaffApp's setup.
type staffConfig struct {
	// more are domains served beside the two sample policies.
	more []autoconfig.Policy
	// maxAccounts bounds the observations (0: the default).
	maxAccounts int
	// overviewMaxAge is console.Options.OverviewMaxAge.
	overviewMaxAge time.Duration
}

// newStaffAppWith is newStaffApp with cfg.
func newStaffAppWith(t testing.TB, cfg staffConfig) *staffEnv {
	t.Helper()
	hash, err := accounts.HashPassword(staffPassword)
	if err != nil {
		t.Fatal(err)
	}
	token := "mst_test-token"
	sum := sha256.Sum256([]byte(token))
	clk := &clock{t: time.Now()}
	obs, err := observe.Open(observe.Options{Now: clk.now, MaxAccounts: cfg.maxAccounts})
	if err != nil {
		t.Fatal(err)
	}
	env := &staffEnv{clock: clk, audit: &bytes.Buffer{}, token: token, obs: obs, reg: prometheus.NewRegistry()}
	store, err := accounts.Open(filepath.Join(t.TempDir(), "accounts.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Add("john@example.com", "john's right password"); err != nil {
		t.Fatal(err)
	}
	env.auth = auth.New(auth.Options{Accounts: store, IsLocal: func(d string) bool { return d == "example.com" },
		Throttle: auth.ThrottleOptions{IPLimit: 3, AccountLimit: 5, Window: time.Hour}, Now: clk.now})
	env.app, err = web.New(web.Options{
		Policies:   append(webtest.Policies{testkit.IMAPFirst(), testkit.POPFirst()}, cfg.more...),
		Registerer: env.reg,
		Auth:       env.auth,
		// The sample policies' hosts do not exist: dial loopback, where
		// nothing listens on the standard mail ports.
		Probe: probe.Options{Resolve: func(string) (string, bool) { return "127.0.0.1", true }, StepTimeout: 2 * time.Second},
		Staff: &console.Options{
			Users:          map[string]string{"alice": hash},
			Tokens:         map[string]string{hex.EncodeToString(sum[:]): "helpdesk"},
			IdleTimeout:    30 * time.Minute,
			Audit:          env.audit,
			Observations:   obs.Account,
			Recent:         obs.Recent,
			Redownloads:    obs.Redownloads,
			Overview:       obs.Overview,
			OverviewMaxAge: cfg.overviewMaxAge,
			Account: func(address string) console.AccountInfo {
				if address != "john@example.com" {
					return console.AccountInfo{}
				}
				return console.AccountInfo{Exists: true, QuotaBytes: 1 << 30, Aliases: []string{"jd@example.com"}, MailboxKnown: true, Messages: 3, Bytes: 4096}
			},
			Search: func(q string, limit int) []string {
				var out []string
				for _, a := range []string{"jane@example.com", "john@example.com", "johnny@pop-first.test"} {
					if strings.Contains(a, q) && len(out) < limit {
						out = append(out, a)
					}
				}
				return out
			},
			Now: clk.now,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// browser keeps cookies between requests like a browser; requests come
// from loopback unless remote is set.
type browser struct {
	t       testing.TB
	h       http.Handler
	cookies map[string]*http.Cookie
	remote  string
}

func newBrowserClient(t testing.TB, h http.Handler) *browser {
	return &browser{t: t, h: h, cookies: map[string]*http.Cookie{}, remote: "127.0.0.1:40000"}
}

func (b *browser) do(method, target string, form url.Values, hdr ...string) *httptest.ResponseRecorder {
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	r := httptest.NewRequest(method, target, body)
	r.RemoteAddr = b.remote
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	for _, c := range b.cookies {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	b.h.ServeHTTP(w, r)
	for _, c := range w.Result().Cookies() {
		if c.MaxAge < 0 {
			delete(b.cookies, c.Name)
		} else {
			b.cookies[c.Name] = c
		}
	}
	return w
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

func csrfOf(t testing.TB, body string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no csrf field in:\n%s", body)
	}
	return m[1]
}

func (b *browser) signIn(password string) *httptest.ResponseRecorder {
	form := b.do("GET", "/staff/signin", nil)
	return b.do("POST", "/staff/signin", url.Values{"csrf": {csrfOf(b.t, form.Body.String())}, "name": {"alice"}, "password": {password}, "next": {"/staff/"}})
}

func TestStaffSignInAndSessionRules(t *testing.T) {
	env := newStaffApp(t)
	b := newBrowserClient(t, env.app)

	// Without a session: pages redirect to the sign-in, posts are refused.
	if w := b.do("GET", "/staff/accounts/john@example.com", nil); w.Code != http.StatusSeeOther || !strings.HasPrefix(w.Header().Get("Location"), "/staff/signin?next=") {
		t.Fatalf("no session GET: %d %s", w.Code, w.Header().Get("Location"))
	}
	if w := b.do("POST", "/staff/accounts/john@example.com/probe", url.Values{"csrf": {"x"}}); w.Code != http.StatusUnauthorized {
		t.Fatalf("no session POST: %d %s", w.Code, w.Body)
	}
	// Sign-in without the form token is refused.
	if w := b.do("POST", "/staff/signin", url.Values{"name": {"alice"}, "password": {staffPassword}}); w.Code != http.StatusForbidden {
		t.Fatalf("sign-in without token: %d", w.Code)
	}
	// Wrong password: 401, audited.
	if w := b.signIn("wrong password!"); w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), "wrong") {
		t.Fatalf("wrong password: %d %s", w.Code, w.Body)
	}
	w := b.signIn(staffPassword)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/staff/" {
		t.Fatalf("sign-in: %d %s", w.Code, w.Body)
	}
	ck := b.cookies["mailsetup_staff"]
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/staff/" {
		t.Fatalf("session cookie %+v", ck)
	}
	home := b.do("GET", "/staff/", nil)
	if home.Code != 200 || !strings.Contains(home.Body.String(), "alice") {
		t.Fatalf("home: %d", home.Code)
	}
	if csp := home.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || home.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("security headers: %v", home.Header())
	}
	// A post with the session but without (or with a wrong) CSRF token.
	for _, tok := range []string{"", "forged"} {
		if w := b.do("POST", "/staff/accounts/john@example.com/probe", url.Values{"csrf": {tok}}); w.Code != http.StatusForbidden {
			t.Errorf("csrf %q: %d", tok, w.Code)
		}
	}
	// A cross-site post with the right token is refused too.
	tok := csrfOf(t, home.Body.String())
	if w := b.do("POST", "/staff/signout", url.Values{"csrf": {tok}}, "Origin", "https://evil.example"); w.Code != http.StatusForbidden {
		t.Errorf("cross-origin: %d", w.Code)
	}
	// Idle timeout: 31 minutes later the session is gone.
	env.clock.add(31 * time.Minute)
	if w := b.do("GET", "/staff/", nil); w.Code != http.StatusSeeOther {
		t.Fatalf("after idle timeout: %d", w.Code)
	}
	// Sign in again and out: the old cookie no longer works.
	b.signIn(staffPassword)
	old := *b.cookies["mailsetup_staff"]
	home = b.do("GET", "/staff/", nil)
	if w := b.do("POST", "/staff/signout", url.Values{"csrf": {csrfOf(t, home.Body.String())}}); w.Code != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", w.Code)
	}
	b.cookies["mailsetup_staff"] = &old
	if w := b.do("GET", "/staff/", nil); w.Code != http.StatusSeeOther {
		t.Fatalf("after sign-out the old cookie still works: %d", w.Code)
	}
	for _, action := range []string{`"sign-in-failed"`, `"sign-in"`, `"sign-out"`} {
		if !strings.Contains(env.audit.String(), action) {
			t.Errorf("audit log lacks %s:\n%s", action, env.audit)
		}
	}
}

func TestStaffSignInNeedsTLSFromElsewhere(t *testing.T) {
	env := newStaffApp(t)
	b := newBrowserClient(t, env.app)
	b.remote = "198.51.100.7:5000"
	if w := b.signIn(staffPassword); w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "HTTPS") {
		t.Fatalf("plain HTTP sign-in from another host: %d %s", w.Code, w.Body)
	}
}

func TestStaffSignInThrottled(t *testing.T) {
	env := newStaffApp(t)
	b := newBrowserClient(t, env.app)
	var last *httptest.ResponseRecorder
	for i := 0; i < 12; i++ { // bounded: the limit is 10 per 10 minutes
		last = b.signIn("wrong password!")
	}
	if last.Code != http.StatusTooManyRequests || !strings.Contains(last.Body.String(), "try again in") {
		t.Fatalf("12th failed sign-in: %d %s", last.Code, last.Body)
	}
	// Even the right password waits.
	if w := b.signIn(staffPassword); w.Code != http.StatusTooManyRequests {
		t.Fatalf("right password while throttled: %d", w.Code)
	}
}

func TestStaffNoOpenRedirect(t *testing.T) {
	env := newStaffApp(t)
	b := newBrowserClient(t, env.app)
	for _, next := range []string{"https://evil.example/", "//evil.example/staff/", "/staff/\\evil"} {
		form := b.do("GET", "/staff/signin", nil)
		w := b.do("POST", "/staff/signin", url.Values{"csrf": {csrfOf(t, form.Body.String())}, "name": {"alice"}, "password": {staffPassword}, "next": {next}})
		if loc := w.Header().Get("Location"); loc != "/staff/" {
			t.Errorf("next %q: redirected to %q", next, loc)
		}
	}
}

func TestStaffAccountShowsObservations(t *testing.T) {
	env := newStaffApp(t)
	remote := netip.MustParseAddr("203.0.113.7")
	for i := 0; i < 3; i++ {
		env.obs.Record(events.Event{Time: env.clock.now(), Kind: events.SubmissionRefused, Proto: "submission", Remote: remote,
			Account: "john@example.com", Result: "auth-required", Detail: "MAIL FROM:<john@example.com> without AUTH", Client: "laptop"})
	}
	b := newBrowserClient(t, env.app)
	b.signIn(staffPassword)
	if home := b.do("GET", "/staff/", nil).Body.String(); !strings.Contains(home, `id="problems"`) || !strings.Contains(home, `href="/staff/accounts/john@example.com"`) {
		t.Errorf("the home page does not list john among the accounts with trouble:\n%s", home)
	}
	w := b.do("GET", "/staff/lookup?address=John@Example.com", nil)
	if w.Code != http.StatusSeeOther {
		t.Fatalf("lookup: %d %s", w.Code, w.Body)
	}
	page := b.do("GET", w.Header().Get("Location"), nil)
	body := page.Body.String()
	for _, want := range []string{"smtp.auth-disabled", "203.0.113.7", "Read to the caller", "imap.example.com", `name="in_user"`, `/help/john@example.com"`,
		"storage limit 1073741824 bytes", "aliases: jd@example.com", "Inbox: 3 messages, 4096 bytes"} {
		if !strings.Contains(body, want) {
			t.Errorf("account page lacks %q", want)
		}
	}
	for _, bad := range []struct{ q, want string }{{"x", "not an email address"}, {"john@elsewhere.example", "not served here"}} {
		w := b.do("GET", "/staff/lookup?address="+url.QueryEscape(bad.q), nil)
		if w.Code < 400 || !strings.Contains(w.Body.String(), bad.want) {
			t.Errorf("lookup %q: %d, want %q", bad.q, w.Code, bad.want)
		}
	}
	if !strings.Contains(env.audit.String(), `"action":"lookup","target":"john@example.com"`) {
		t.Errorf("lookup not audited:\n%s", env.audit)
	}
	// A probe form with a bad port is refused with the field named.
	home := b.do("GET", "/staff/accounts/john@example.com", nil)
	bad := b.do("POST", "/staff/accounts/john@example.com/probe", url.Values{"csrf": {csrfOf(t, home.Body.String())}, "in_port": {"99999"}})
	if bad.Code != http.StatusBadRequest || !strings.Contains(bad.Body.String(), "Incoming port") {
		t.Errorf("bad port: %d", bad.Code)
	}
	// A probe: the report page, its printable view and its JSON export.
	run := b.do("POST", "/staff/accounts/john@example.com/probe", url.Values{"csrf": {csrfOf(t, home.Body.String())},
		"in_proto": {"imap"}, "in_user": {"john"}, "out_auth": {"no"}})
	loc := run.Header().Get("Location")
	if run.Code != http.StatusSeeOther || !strings.HasPrefix(loc, "/staff/reports/") {
		t.Fatalf("probe: %d %s", run.Code, run.Body)
	}
	rep := b.do("GET", loc, nil).Body.String()
	for _, want := range []string{"username.not-full-address", "smtp.auth-disabled", `id="printable"`, "Every step", "Whose fault: the customer"} {
		if !strings.Contains(rep, want) {
			t.Errorf("report page lacks %q", want)
		}
	}
	if p := b.do("GET", loc+"?print=1", nil).Body.String(); strings.Contains(p, "<nav>") || !strings.Contains(p, "smtp.auth-disabled") {
		t.Errorf("printable view:\n%s", p)
	}
	js := b.do("GET", loc+".json", nil)
	var report probe.Report
	if err := json.Unmarshal(js.Body.Bytes(), &report); err != nil || report.Address != "john@example.com" || !strings.Contains(js.Header().Get("Content-Disposition"), "attachment") {
		t.Errorf("JSON export: %v %s", err, js.Body)
	}
	// Another session cannot read this session's report.
	other := newBrowserClient(t, env.app)
	other.signIn(staffPassword)
	if w := other.do("GET", loc, nil); w.Code != http.StatusNotFound {
		t.Errorf("another session read the report: %d", w.Code)
	}
	if !strings.Contains(env.audit.String(), `"action":"probe","target":"john@example.com"`) {
		t.Errorf("probe not audited:\n%s", env.audit)
	}
}

func TestStaffAPI(t *testing.T) {
	env := newStaffApp(t)
	env.obs.Record(events.Event{Time: env.clock.now(), Kind: events.Auth, Proto: "pop3", Remote: netip.MustParseAddr("203.0.113.9"),
		Account: "john@example.com", Username: "john@example.com", Form: "full-address", Result: "bad-password"})
	get := func(target, token string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", target, nil)
		r.TLS = &tls.ConnectionState{}
		if token != "" {
			r.Header.Set("Authorization", "Bearer "+token)
		}
		w := httptest.NewRecorder()
		env.app.ServeHTTP(w, r)
		return w
	}
	if w := get("/api/v1/accounts/john@example.com/observations", ""); w.Code != 401 || w.Header().Get("WWW-Authenticate") == "" {
		t.Fatalf("no token: %d", w.Code)
	}
	if w := get("/api/v1/accounts/john@example.com/observations", "mst_wrong"); w.Code != 401 {
		t.Fatalf("wrong token: %d", w.Code)
	}
	// A token over plain HTTP from another machine is refused unread.
	plain := httptest.NewRequest("GET", "/api/v1/accounts/john@example.com/observations", nil)
	plain.Header.Set("Authorization", "Bearer "+env.token)
	pw := httptest.NewRecorder()
	env.app.ServeHTTP(pw, plain)
	if pw.Code != http.StatusForbidden || !strings.Contains(pw.Body.String(), "HTTPS") {
		t.Errorf("token over plain HTTP: %d %s", pw.Code, pw.Body)
	}
	w := get("/api/v1/accounts/john@example.com/observations", env.token)
	var rep struct {
		Address      string          `json:"address"`
		Observed     bool            `json:"observed"`
		Observations observe.Account `json:"observations"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &rep); err != nil || w.Code != 200 {
		t.Fatalf("%d %s %v", w.Code, w.Body, err)
	}
	if !rep.Observed || len(rep.Observations.Failures) != 1 || rep.Observations.Failures[0].Remote.String() != "203.0.113.9" {
		t.Errorf("observations: %s", w.Body)
	}
	for target, code := range map[string]int{
		"/api/v1/accounts/not-an-address/observations":   400,
		"/api/v1/accounts/x@elsewhere.test/observations": 404,
	} {
		if w := get(target, env.token); w.Code != code || !strings.Contains(w.Body.String(), `"error"`) {
			t.Errorf("%s: %d %s", target, w.Code, w.Body)
		}
	}
	post := func(ct, body string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/api/v1/probe", strings.NewReader(body))
		r.TLS = &tls.ConnectionState{}
		r.Header.Set("Authorization", "Bearer "+env.token)
		r.Header.Set("Content-Type", ct)
		w := httptest.NewRecorder()
		env.app.ServeHTTP(w, r)
		return w
	}
	for _, c := range []struct {
		ct, body string
		code     int
		want     string
	}{
		{"text/plain", `{}`, 415, "JSON"},
		{"application/json", ``, 400, "empty"},
		{"application/json", `{"address":"john@example.com","bogus":1}`, 400, "bogus"},
		{"application/json", `{"address":"john@elsewhere.test"}`, 404, "not served"},
		{"application/json", `{"address":"john@example.com","client":{"incoming":{"port":70000}}}`, 400, "Incoming port"},
		{"application/json", `{"address":"john@example.com","client":{"incoming":{"host":"bad host!"}}}`, 400, "Incoming server"},
	} {
		if w := post(c.ct, c.body); w.Code != c.code || !strings.Contains(w.Body.String(), c.want) {
			t.Errorf("POST %s %q: %d %s, want %d with %q", c.ct, c.body, w.Code, w.Body, c.code, c.want)
		}
	}
	// A valid request: the policy's hosts do not exist here, so the
	// probe reports them unreachable, and compares what was sent.
	w = post("application/json", `{"address":"john@example.com","client":{"incoming":{"protocol":"imap","username":"john"}}}`)
	var report probe.Report
	if err := json.Unmarshal(w.Body.Bytes(), &report); err != nil || w.Code != 200 {
		t.Fatalf("probe: %d %s", w.Code, w.Body)
	}
	found := false
	for _, f := range report.Findings {
		found = found || f.ID == "username.not-full-address"
	}
	if !found {
		t.Errorf("probe findings: %+v", report.Findings)
	}
	if !strings.Contains(env.audit.String(), `"staff":"token:helpdesk","action":"api-probe"`) {
		t.Errorf("API probe not audited:\n%s", env.audit)
	}
	// The accounts with trouble: the bad password above.
	w = get("/api/v1/troubles?hours=2", env.token)
	var tr struct {
		Hours    int `json:"hours"`
		Accounts []struct {
			Address string `json:"address"`
		} `json:"accounts"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &tr); err != nil || w.Code != 200 || tr.Hours != 2 || len(tr.Accounts) != 1 || tr.Accounts[0].Address != "john@example.com" {
		t.Errorf("troubles: %d %s", w.Code, w.Body)
	}
	for _, q := range []string{"?hours=0", "?hours=x", "?limit=501"} {
		if w := get("/api/v1/troubles"+q, env.token); w.Code != 400 || !strings.Contains(w.Body.String(), "want a number") {
			t.Errorf("troubles%s: %d %s", q, w.Code, w.Body)
		}
	}
	if n := counterValue(t, env.reg, "mailsetup_settings_checks_total", "source", "api"); n != 1 {
		t.Errorf("mailsetup_settings_checks_total{source=api} = %v, want 1", n)
	}
}

// counterValue sums a counter's series whose label has the value.
func counterValue(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

// Without staff members or tokens the console and the API say how to
// turn them on.
func TestStaffOffSaysHow(t *testing.T) {
	app, err := web.New(web.Options{Policies: webtest.Policies{testkit.IMAPFirst(), testkit.POPFirst()}, Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	for target, want := range map[string]string{
		"/staff/":                       "mailsetup staff hash",
		"/staff/accounts/x@example.com": "mailsetup staff hash",
		"/api/v1/probe":                 "mailsetup staff token",
	} {
		w := webtest.Do(app, "GET", target, nil)
		if w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), want) {
			t.Errorf("%s: %d %s", target, w.Code, w.Body)
		}
	}
}

// TestStaffLiftsLoginBlocks: the account page shows the shared
// throttle's blocks that concern the account (its own and those of the
// addresses its clients failed from), and staff can lift them.
func TestStaffLiftsLoginBlocks(t *testing.T) {
	env := newStaffApp(t)
	const john = "john@example.com"
	remote := netip.MustParseAddr("203.0.113.7")
	for i := 0; i < 6; i++ {
		_, err := env.auth.Authenticate(context.Background(), auth.Attempt{Proto: "pop3", Remote: remote, TLS: true, Username: john, Password: "old password"})
		if err == nil {
			t.Fatal("wrong password accepted")
		}
		env.obs.Record(events.Event{Time: env.clock.now(), Kind: events.Auth, Proto: "pop3", Remote: remote, Account: john, Username: john, Form: "full-address", Result: "bad-password"})
	}
	// From another address too, so the account itself is blocked.
	for i := 0; i < 2; i++ {
		env.auth.Throttle().Fail(netip.MustParseAddr("198.51.100.9"), john)
	}
	if env.auth.Throttle().Blocked(remote, john) == 0 {
		t.Fatal("not blocked")
	}
	b := newBrowserClient(t, env.app)
	b.signIn(staffPassword)
	page := b.do("GET", "/staff/accounts/"+john, nil).Body.String()
	for _, want := range []string{`id="blocks"`, "the account john@example.com", "every login from 203.0.113.7", `id="unblock"`} {
		if !strings.Contains(page, want) {
			t.Errorf("account page lacks %q", want)
		}
	}
	if w := b.do("POST", "/staff/accounts/"+john+"/unblock", url.Values{}); w.Code != http.StatusForbidden {
		t.Errorf("unblock without the token: %d", w.Code)
	}
	if w := b.do("POST", "/staff/accounts/"+john+"/unblock", url.Values{"csrf": {csrfOf(t, page)}}); w.Code != http.StatusSeeOther {
		t.Fatalf("unblock: %d %s", w.Code, w.Body)
	}
	if w := env.auth.Throttle().Blocked(remote, john); w != 0 {
		t.Errorf("still blocked for %v", w)
	}
	if _, err := env.auth.Authenticate(context.Background(), auth.Attempt{Proto: "pop3", Remote: remote, TLS: true, Username: john, Password: "john's right password"}); err != nil {
		t.Errorf("the right password after unblocking: %v", err)
	}
	if strings.Contains(b.do("GET", "/staff/accounts/"+john, nil).Body.String(), `id="blocks"`) {
		t.Error("the blocks are still shown")
	}
	if !strings.Contains(env.audit.String(), `"action":"unblock","target":"john@example.com"`) || !strings.Contains(env.audit.String(), "203.0.113.7") {
		t.Errorf("unblock not audited:\n%s", env.audit)
	}
}

// Oversized sign-in fields and bodies are refused before any hashing.
func TestStaffBadInputSizes(t *testing.T) {
	env := newStaffApp(t)
	b := newBrowserClient(t, env.app)
	form := b.do("GET", "/staff/signin", nil)
	tok := csrfOf(t, form.Body.String())
	if w := b.do("POST", "/staff/signin", url.Values{"csrf": {tok}, "name": {"alice"}, "password": {strings.Repeat("x", 2000)}}); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "too long") {
		t.Errorf("long password: %d", w.Code)
	}
	if w := b.do("POST", "/staff/signin", url.Values{"csrf": {tok}, "name": {"alice"}, "password": {strings.Repeat("x", 100<<10)}}); w.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("100 KB body: %d", w.Code)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }

// An audit log that cannot be written is counted and logged; the
// console keeps working and the entry stays in the in-memory list.
func TestStaffAuditWriteFailure(t *testing.T) {
	hash, err := accounts.HashPassword(staffPassword)
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	var logs webtest.LockedBuffer
	h, _ := asynclog.New(&logs, asynclog.Options{})
	app, err := web.New(web.Options{Policies: webtest.Policies{testkit.IMAPFirst()}, Registerer: reg, Logger: slog.New(h),
		Staff: &console.Options{Users: map[string]string{"alice": hash}, Audit: failingWriter{}}})
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowserClient(t, app)
	if w := b.signIn(staffPassword); w.Code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", w.Code)
	}
	if page := b.do("GET", "/staff/audit", nil).Body.String(); !strings.Contains(page, "sign-in") {
		t.Error("the sign-in is not in the in-memory audit list")
	}
	mfs, _ := reg.Gather()
	var n float64
	for _, mf := range mfs {
		if mf.GetName() == "mailsetup_audit_write_errors_total" {
			n = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	if n != 1 {
		t.Errorf("mailsetup_audit_write_errors_total = %v, want 1", n)
	}
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logs.String(), "no space left") && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "writing the staff audit log failed") {
		t.Errorf("not logged: %s", logs.String())
	}
}

// Part of an address lists the accounts that contain it; nothing found
// says so; a full address still opens the account.
func TestStaffPartialSearch(t *testing.T) {
	env := newStaffApp(t)
	b := newBrowserClient(t, env.app)
	b.signIn(staffPassword)
	w := b.do("GET", "/staff/lookup?address=JOHN", nil)
	body := w.Body.String()
	if w.Code != 200 || !strings.Contains(body, `id="matches"`) || !strings.Contains(body, `href="/staff/accounts/john@example.com"`) ||
		!strings.Contains(body, `href="/staff/accounts/johnny@pop-first.test"`) || strings.Contains(body, "jane@") {
		t.Errorf("search john: %d\n%s", w.Code, body)
	}
	if w := b.do("GET", "/staff/lookup?address=zzz", nil); w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "No account contains") {
		t.Errorf("search zzz: %d", w.Code)
	}
	if w := b.do("GET", "/staff/lookup?address=j", nil); w.Code != http.StatusBadRequest {
		t.Errorf("one letter: %d", w.Code)
	}
	if !strings.Contains(env.audit.String(), `"action":"search","target":"JOHN"`) {
		t.Errorf("search not audited:\n%s", env.audit)
	}
}

// TestSetStaff: a config reload turns the console and the API on and
// off, and ends the sessions of a member removed or given a new
// password, without touching the others.
func TestSetStaff(t *testing.T) {
	hash, err := accounts.HashPassword(staffPassword)
	if err != nil {
		t.Fatal(err)
	}
	app, err := web.New(web.Options{Policies: webtest.Policies{testkit.IMAPFirst()}, Registerer: prometheus.NewRegistry(),
		Staff: &console.Options{}})
	if err != nil {
		t.Fatal(err)
	}
	if w := webtest.Do(app, "GET", "/staff/", nil); w.Code != http.StatusNotFound || !strings.Contains(w.Body.String(), "SIGHUP") {
		t.Fatalf("console without members: %d %s", w.Code, w.Body)
	}
	app.SetStaff(map[string]string{"alice": hash, "bob": hash}, nil, time.Hour)
	alice, bob := newBrowserClient(t, app), newBrowserClient(t, app)
	if w := alice.signIn(staffPassword); w.Code != http.StatusSeeOther {
		t.Fatalf("alice after the reload: %d", w.Code)
	}
	form := bob.do("GET", "/staff/signin", nil)
	if w := bob.do("POST", "/staff/signin", url.Values{"csrf": {csrfOf(t, form.Body.String())}, "name": {"bob"}, "password": {staffPassword}}); w.Code != http.StatusSeeOther {
		t.Fatalf("bob: %d", w.Code)
	}
	// Bob leaves; alice stays signed in.
	app.SetStaff(map[string]string{"alice": hash}, nil, time.Hour)
	if w := bob.do("GET", "/staff/", nil); w.Code != http.StatusSeeOther {
		t.Errorf("bob's session survived his removal: %d", w.Code)
	}
	if w := alice.do("GET", "/staff/", nil); w.Code != http.StatusOK {
		t.Errorf("alice's session ended: %d", w.Code)
	}
	// A new password for alice ends her session too.
	other, _ := accounts.HashPassword("another long password")
	app.SetStaff(map[string]string{"alice": other}, nil, time.Hour)
	if w := alice.do("GET", "/staff/", nil); w.Code != http.StatusSeeOther {
		t.Errorf("alice's session survived a password change: %d", w.Code)
	}
	// A token turns the API on.
	sum := sha256.Sum256([]byte("mst_reloaded"))
	app.SetStaff(nil, map[string]string{hex.EncodeToString(sum[:]): "tool"}, time.Hour)
	r := httptest.NewRequest("GET", "/api/v1/troubles", nil)
	r.TLS = &tls.ConnectionState{}
	r.Header.Set("Authorization", "Bearer mst_reloaded")
	w := httptest.NewRecorder()
	app.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Errorf("API after adding a token: %d %s", w.Code, w.Body)
	}
	if w := webtest.Do(app, "GET", "/staff/", nil); w.Code != http.StatusNotFound {
		t.Errorf("console after removing every member: %d", w.Code)
	}
}

// TestStaffRedownloadAlarm: the alarm after a cutover. The start page
// shows a box above the troubles list, only while some POP3 client
// downloaded mail again, per domain; the API has it in a new field of
// GET /api/v1/troubles, the other fields unchanged.
func TestStaffRedownloadAlarm(t *testing.T) {
	env := newStaffApp(t)
	b := newBrowserClient(t, env.app)
	b.signIn(staffPassword)
	if home := b.do("GET", "/staff/", nil).Body.String(); strings.Contains(home, `id="redownloads"`) {
		t.Errorf("the alarm shows with nothing re-downloaded:\n%s", home)
	}
	api := func(target string) (int, string) {
		r := httptest.NewRequest("GET", target, nil)
		r.TLS = &tls.ConnectionState{}
		r.Header.Set("Authorization", "Bearer "+env.token)
		w := httptest.NewRecorder()
		env.app.ServeHTTP(w, r)
		return w.Code, w.Body.String()
	}
	if code, body := api("/api/v1/troubles"); code != 200 || !strings.Contains(body, `"pop3_redownloads":{"hours":24,"domains":[]}`) {
		t.Errorf("API with nothing re-downloaded: %d %s", code, body)
	}

	now := env.clock.now()
	for i, who := range []string{"john@example.com", "jane@example.com", "jim@example.com", "ann@pop-first.test"} {
		env.obs.Record(events.Event{Time: now.Add(-time.Duration(i) * time.Minute), Kind: events.POP3Session, Proto: "pop3",
			Remote: netip.MustParseAddr("203.0.113.8"), Account: who, Result: "ok", Retrieved: 120, Redownloaded: 120 + i, Messages: 130})
	}
	home := b.do("GET", "/staff/", nil).Body.String()
	box, problems := strings.Index(home, `id="redownloads"`), strings.Index(home, `id="problems"`)
	if box < 0 || problems < 0 || box > problems {
		t.Fatalf("the alarm is not above the troubles list:\n%s", home)
	}
	for _, want := range []string{
		`<strong>example.com</strong>: 3 accounts, 363 messages downloaded again, latest ` + now.UTC().Format("2006-01-02 15:04 UTC"),
		`<strong>pop-first.test</strong>: 1 account, 123 messages downloaded again`,
		`<a href="/staff/accounts/john@example.com">john@example.com</a>, <a href="/staff/accounts/jane@example.com">`,
		`aria-labelledby="redownloads-title"`,
	} {
		if !strings.Contains(home, want) {
			t.Errorf("start page lacks %q:\n%s", want, home)
		}
	}
	if n := strings.Count(home, "<h1"); n != 1 || strings.Contains(home, "<script") {
		t.Errorf("start page: %d h1, or a script:\n%s", n, home)
	}

	code, body := api("/api/v1/troubles?hours=72")
	var rep struct {
		Hours       int `json:"hours"`
		Accounts    []struct{ Address string }
		Redownloads struct {
			Hours   int `json:"hours"`
			Domains []struct {
				Domain    string    `json:"domain"`
				Accounts  int       `json:"accounts"`
				Messages  int       `json:"messages"`
				Sessions  int       `json:"sessions"`
				Last      time.Time `json:"last"`
				Addresses []string  `json:"addresses"`
			} `json:"domains"`
		} `json:"pop3_redownloads"`
	}
	if err := json.Unmarshal([]byte(body), &rep); err != nil || code != 200 {
		t.Fatalf("API: %d %s", code, body)
	}
	r := rep.Redownloads
	if rep.Hours != 72 || len(rep.Accounts) != 4 || r.Hours != 24 || len(r.Domains) != 2 || r.Domains[0].Domain != "example.com" ||
		r.Domains[0].Accounts != 3 || r.Domains[0].Messages != 363 || r.Domains[0].Sessions != 3 ||
		!r.Domains[0].Last.Equal(now.Truncate(time.Second)) || len(r.Domains[0].Addresses) != 3 || r.Domains[1].Accounts != 1 {
		t.Errorf("API: %s", body)
	}
	if code, body := api("/api/v1/troubles?hours=1"); code != 200 || !strings.Contains(body, `"pop3_redownloads":{"hours":1,"domains":[{"domain":"example.com","accounts":3,`) {
		t.Errorf("API over an hour: %d %s", code, body)
	}
}

// TestStaffClientsSection: the account page offers what each mail
// program would set up and, asked for, runs it through the check
// service (here without a resolver: the reason is shown, the page stays).
func TestStaffClientsSection(t *testing.T) {
	env := newStaffApp(t)
	b := newBrowserClient(t, env.app)
	b.signIn(staffPassword)
	page := b.do("GET", "/staff/accounts/john@example.com", nil).Body.String()
	if !strings.Contains(page, `id="clients-link" href="/staff/accounts/john@example.com?clients=1#clients"`) {
		t.Errorf("the account page lacks the link to the clients' view:\n%s", page)
	}
	w := b.do("GET", "/staff/accounts/john@example.com?clients=1", nil)
	if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "Could not look it up: no DNS resolver is configured (listen.dns)") {
		t.Errorf("?clients=1 without a resolver: %d\n%s", w.Code, w.Body)
	}
	if !strings.Contains(env.audit.String(), `"action":"clients","target":"john@example.com"`) {
		t.Errorf("the lookup is not audited:\n%s", env.audit)
	}
}
