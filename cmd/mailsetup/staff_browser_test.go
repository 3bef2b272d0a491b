package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"mailsetup/server"
)

// TestStaffConsoleInBrowser is the support call: a customer's clients
// misuse the account (swaks logs in as "john", fetchmail keeps every
// message on the server), then a staff member signs in with a real
// browser at phone width, looks the account up, reads both findings
// with their evidence, runs a probe with the wrong settings the caller
// reads out, and sees each finding with its fix.
func TestStaffConsoleInBrowser(t *testing.T) {
	m := startMail(t)
	const john, johnPW = "john@example.test", "john's long password"
	if code, _, stderr := runCLI(t, johnPW+"\n", "user", "add", "--config", m.config, john); code != 0 {
		t.Fatalf("user add: %s", stderr)
	}
	sub := fmt.Sprintf("127.0.0.1:%d", m.ports.Submission)
	// The misuse: the bare local part as username...
	if out := swaks(t, sub, "--tls", "--auth", "PLAIN", "--auth-user", "john", "--auth-password", johnPW,
		"--from", john, "--to", john); !strings.Contains(out, "535") {
		t.Fatalf("swaks with john was not refused:\n%s", out)
	}
	// ... and a POP3 client that leaves everything on the server.
	for i := 0; i < 2; i++ {
		if out := swaks(t, sub, "--tls", "--auth", "PLAIN", "--auth-user", john, "--auth-password", johnPW,
			"--from", john, "--to", john, "--header", fmt.Sprintf("Subject: message %d", i)); !strings.Contains(out, "<~  250 2.0.0") {
			t.Fatalf("submission failed:\n%s", out)
		}
	}
	if n := fetchmailRunAs(t, m, t.TempDir(), john, johnPW); n != 2 {
		t.Fatalf("fetchmail downloaded %d messages, want 2", n)
	}

	base := fmt.Sprintf("https://127.0.0.1:%d", m.ports.HTTPS)
	ctx := newBrowser(t)
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("reading %s: %v", sel, err)
		}
		return s
	}
	// Sign in (the console sends us to the form first).
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/staff/"), chromedp.WaitVisible(chromedp.CSS("#password"))); err != nil {
		t.Fatalf("sign-in form: %v", err)
	}
	checkPhonePage(t, ctx, "sign-in")
	signInBrowser(t, ctx, server.DefaultStaff, m.staffPassword)
	checkPhonePage(t, ctx, "home")
	// The start page already lists john among the accounts with trouble.
	problems := reloadUntil(t, ctx, "#problems", john)
	if !strings.Contains(problems, john) || !strings.Contains(problems, "pop3.leave-forever") {
		t.Errorf("the start page's accounts with trouble:\n%s", problems)
	}
	// The caller spells only part of the address: the search lists the
	// accounts that contain it, and one opens the account (whose
	// observations may need a moment to arrive: reloadUntil below).
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#address"), "joh"),
		chromedp.Click(chromedp.CSS("#find")),
		chromedp.WaitVisible(chromedp.CSS("#matches")),
	); err != nil {
		t.Fatalf("search: %v", err)
	}
	if matches := text("#matches"); !strings.Contains(matches, john) || strings.Contains(matches, "demo@") {
		t.Errorf("search for joh:\n%s", matches)
	}
	checkPhonePage(t, ctx, "search")
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#matches a[href="/staff/accounts/`+john+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("#observed")),
	); err != nil {
		t.Fatalf("lookup: %v", err)
	}
	observed := reloadUntil(t, ctx, "#observed", "pop3.leave-forever")
	for _, want := range []string{
		"username.not-full-address", `"john"`, "submission", "127.0.0.1", // the evidence: username typed, protocol, address
		"pop3.leave-forever", "none deleted",
	} {
		if !strings.Contains(observed, want) {
			t.Errorf("the account's observations lack %q:\n%s", want, observed)
		}
	}
	checkPhonePage(t, ctx, "account")

	// The caller reads out wrong settings: bare local part, no SMTP
	// authentication, leave on the server forever.
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.CSS("#in_proto"), "pop3"),
		chromedp.SendKeys(chromedp.CSS("#in_host"), "localhost"),
		chromedp.SendKeys(chromedp.CSS("#in_port"), fmt.Sprint(m.ports.POP3S)),
		chromedp.SetValue(chromedp.CSS("#in_security"), "ssl"),
		chromedp.SendKeys(chromedp.CSS("#in_user"), "john"),
		chromedp.SetValue(chromedp.CSS("#leave"), "yes"),
		chromedp.SendKeys(chromedp.CSS("#delete_after"), "0"),
		chromedp.SendKeys(chromedp.CSS("#out_host"), "localhost"),
		chromedp.SendKeys(chromedp.CSS("#out_port"), fmt.Sprint(m.ports.Submissions)),
		chromedp.SetValue(chromedp.CSS("#out_security"), "ssl"),
		chromedp.SetValue(chromedp.CSS("#out_auth"), "no"),
		chromedp.SendKeys(chromedp.CSS("#password"), johnPW),
		chromedp.Click(chromedp.CSS("#run-probe")),
		chromedp.WaitVisible(chromedp.CSS("#wrong")),
	); err != nil {
		t.Fatalf("probe: %v", err)
	}
	wrong := text("#wrong")
	for _, id := range []string{"username.not-full-address", "smtp.auth-disabled", "pop3.leave-forever"} {
		if !strings.Contains(wrong, id) {
			t.Errorf("the probe report lacks %s:\n%s", id, wrong)
		}
	}
	if !strings.Contains(wrong, "Read to the caller") || strings.Contains(wrong, "login.failed") {
		t.Errorf("report:\n%s", wrong)
	}
	checkPhonePage(t, ctx, "report")
	// The printable view has no navigation and no forms.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#printable")), chromedp.WaitVisible(chromedp.CSS("#wrong"))); err != nil {
		t.Fatal(err)
	}
	if n, err := chromedp.Run(ctx, chromedp.Evaluate[int64](`document.querySelectorAll("nav, form").length`)); err != nil || n != 0 {
		t.Errorf("printable view has %d nav/form elements (%v)", n, err)
	}
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.Contains(loc, "print=1") {
		t.Errorf("printable view at %s", loc)
	}

	// An old device with the old password blocks every login from its
	// address; once the caller has fixed it, staff lift the block.
	for i := 0; i < 11; i++ { // the per-address limit is 10 in 10 minutes
		swaks(t, sub, "--tls", "--auth", "PLAIN", "--auth-user", john, "--auth-password", "the old password", "--from", john, "--to", john, "--quit-after", "AUTH")
	}
	if out := swaks(t, sub, "--tls", "--auth", "PLAIN", "--auth-user", john, "--auth-password", johnPW, "--from", john, "--to", john, "--quit-after", "AUTH"); !strings.Contains(out, "454") {
		t.Fatalf("the right password was not throttled after 11 failures:\n%s", out)
	}
	var blocks string
	for deadline := time.Now().Add(10 * time.Second); ; {
		if err := chromedp.Do(ctx, chromedp.Navigate(base+"/staff/accounts/"+john), chromedp.WaitVisible(chromedp.CSS("#observed"))); err != nil {
			t.Fatal(err)
		}
		if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int64](`document.querySelectorAll("#blocks").length`)); n == 1 {
			blocks = text("#blocks")
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the account page shows no login block")
		}
		time.Sleep(200 * time.Millisecond) // the failures reach the observations through the event bus
	}
	if !strings.Contains(blocks, "every login from 127.0.0.1") {
		t.Errorf("blocks:\n%s", blocks)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#unblock")), chromedp.WaitVisible(chromedp.CSS("#observed"))); err != nil {
		t.Fatal(err)
	}
	if out := swaks(t, sub, "--tls", "--auth", "PLAIN", "--auth-user", john, "--auth-password", johnPW, "--from", john, "--to", john, "--quit-after", "AUTH"); !strings.Contains(out, "235") {
		t.Errorf("the right password after lifting the block:\n%s", out)
	}

	refusedWithoutSessionOrToken(t, base, m.staffPassword, john)

	// The audit log has the lookup and the probe, by name.
	audit, err := os.ReadFile(filepath.Join(m.dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"staff":"admin","action":"lookup","target":"john@example.test"`, `"staff":"admin","action":"probe","target":"john@example.test","remote":"127.0.0.1","detail":"with password`,
		`"staff":"admin","action":"unblock","target":"john@example.test"`} {
		if !strings.Contains(string(audit), want) {
			t.Errorf("audit log lacks %s:\n%s", want, audit)
		}
	}
	if strings.Contains(string(audit), johnPW) {
		t.Error("the audit log contains the password")
	}

	// After a restart the observations are still there.
	m.restart(t)
	client, _ := staffClient(t, base, m.staffPassword)
	code, page := httpDo(t, client, "GET", base+"/staff/accounts/"+john, nil)
	if code != http.StatusOK || !strings.Contains(page, "username.not-full-address") || !strings.Contains(page, "pop3.leave-forever") {
		t.Errorf("after a restart: %d, the observations are gone:\n%s", code, page)
	}
	if code, audit := httpDo(t, client, "GET", base+"/staff/audit", nil); code != http.StatusOK || !strings.Contains(audit, "unblock") || !strings.Contains(audit, john) {
		t.Errorf("after a restart the audit page lost the earlier entries: %d\n%s", code, audit)
	}
}

// reloadUntil reloads the page until the text of sel contains want
// (the events reach the observations through the asynchronous bus),
// for at most 10 seconds, and returns that text.
// signInBrowser signs in on the console's sign-in form, which the
// browser shows, and waits for the start page's address field.
func signInBrowser(t *testing.T, ctx context.Context, name, password string) {
	t.Helper()
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#name"), name),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#address")),
	); err != nil {
		t.Fatalf("sign-in: %v", err)
	}
}

func reloadUntil(t *testing.T, ctx context.Context, sel, want string) string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		got, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("reading %s: %v", sel, err)
		}
		if strings.Contains(got, want) || time.Now().After(deadline) {
			return got
		}
		time.Sleep(200 * time.Millisecond)
		if err := chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(sel))); err != nil {
			t.Fatal(err)
		}
	}
}

// staffClient is an HTTP client signed in to the console; it does not
// follow redirects.
func staffClient(t *testing.T, base, staffPassword string) (*http.Client, string) {
	t.Helper()
	return staffClientAs(t, base, server.DefaultStaff, staffPassword)
}

// staffClientAs is staffClient for any staff member.
func staffClientAs(t *testing.T, base, name, password string) (*http.Client, string) {
	t.Helper()
	client := staffHTTPClient("")
	code, token := staffSignIn(t, client, base, name, password)
	if code != http.StatusSeeOther {
		t.Fatalf("sign-in with the HTTP client: %d", code)
	}
	return client, token
}

// staffHTTPClient is an HTTP client with cookies that connects from the
// loopback address from ("" for the default).
func staffHTTPClient(from string) *http.Client {
	jar, _ := cookiejar.New(nil)
	d := &net.Dialer{Timeout: 10 * time.Second}
	if from != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(from)}
	}
	return &http.Client{Jar: jar, Timeout: 30 * time.Second,
		Transport:     &http.Transport{DialContext: d.DialContext, TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, // the embedded default's self-signed cert
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// staffSignIn posts the sign-in form and returns the status and the
// form's CSRF token.
func staffSignIn(t *testing.T, client *http.Client, base, name, password string) (int, string) {
	t.Helper()
	_, body := httpDo(t, client, "GET", base+"/staff/signin", nil)
	m := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no csrf field on the sign-in page")
	}
	code, _ := httpDo(t, client, "POST", base+"/staff/signin", url.Values{"csrf": {m[1]}, "name": {name}, "password": {password}})
	return code, m[1]
}

func httpDo(t *testing.T, client *http.Client, method, target string, form url.Values) (int, string) {
	t.Helper()
	var resp *http.Response
	var err error
	if method == "POST" {
		resp, err = client.PostForm(target, form)
	} else {
		resp, err = client.Get(target)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// refusedWithoutSessionOrToken: a form post without a session, and one
// with a session but without the CSRF token (or with the sign-in form's
// token instead of the session's), are refused and run nothing.
func refusedWithoutSessionOrToken(t *testing.T, base, staffPassword, address string) {
	t.Helper()
	probeURL := base + "/staff/accounts/" + address + "/probe"
	anonymous := &http.Client{Timeout: 30 * time.Second,
		Transport:     &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if code, _ := httpDo(t, anonymous, "POST", probeURL, url.Values{"in_user": {"john"}}); code != http.StatusUnauthorized {
		t.Errorf("probe without a session: %d, want 401", code)
	}
	client, signInToken := staffClient(t, base, staffPassword)
	if code, _ := httpDo(t, client, "POST", probeURL, url.Values{"in_user": {"john"}}); code != http.StatusForbidden {
		t.Errorf("probe without the CSRF token: %d, want 403", code)
	}
	if code, _ := httpDo(t, client, "POST", probeURL, url.Values{"csrf": {signInToken}, "in_user": {"john"}}); code != http.StatusForbidden {
		t.Errorf("probe with the sign-in form's token instead of the session's: %d, want 403", code)
	}
}
