package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"mailsetup/internal/testkit"
	"mailsetup/server"
)

// TestRedownloadAlarmWithMpop: the alarm after a cutover, with the real
// binary and a real POP3 client. mpop keeps mail on the server; its
// UIDL state is deleted (what a server that changed every UIDL does to
// it), so it downloads everything again; the metric and GET
// /api/v1/troubles show the domain at once.
func TestRedownloadAlarmWithMpop(t *testing.T) {
	testkit.Tool(t, "mpop", "mpop")
	code, entry, stderr := runCLI(t, "", "staff", "token", "helpdesk")
	token := regexp.MustCompile(`mst_[A-Za-z0-9_-]{43}`).FindString(stderr)
	if code != 0 || token == "" {
		t.Fatalf("staff token: %d %s", code, stderr)
	}
	m := startMailWith(t, func(t *testing.T, m *mailService, config string) string { return config + "\n" + entry + "\n" })
	const n = 3
	for i := range n {
		m.send(t, fmt.Sprintf("redownload %d", i))
	}
	work := t.TempDir()
	if got := mpopRun(t, m, work); got != n {
		t.Fatalf("first run fetched %d, want %d", got, n)
	}
	metrics := func() string { return string(curl(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", m.ports.Admin)).body) }
	if body := metrics(); !strings.Contains(body, `mailsetup_pop3_redownload_accounts{domain="example.test"} 0`+"\n") ||
		!strings.Contains(body, `mailsetup_pop3_redownloaded_messages_total{domain="example.test"} 0`+"\n") {
		t.Errorf("before any re-download, /metrics lacks the zeros")
	}
	states, _ := filepath.Glob(filepath.Join(work, "*.uidls"))
	if len(states) == 0 {
		t.Fatalf("mpop kept no UIDL state in %s", work)
	}
	for _, f := range states {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	if got := mpopRun(t, m, work); got != n {
		t.Fatalf("without its UIDL state mpop fetched %d, want %d again", got, n)
	}

	// The session's event reaches the store asynchronously: wait a little.
	wantMetrics := []string{
		`mailsetup_pop3_redownload_accounts{domain="example.test"} 1` + "\n",
		fmt.Sprintf(`mailsetup_pop3_redownloaded_messages_total{domain="example.test"} %d`+"\n", n),
	}
	var body string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		body = metrics()
		if strings.Contains(body, wantMetrics[0]) && strings.Contains(body, wantMetrics[1]) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics lacks %q:\n%s", wantMetrics, grepLines(body, "redownload"))
		}
	}
	r := curl(t, "-H", "Authorization: Bearer "+token, fmt.Sprintf("https://127.0.0.1:%d/api/v1/troubles?hours=1", m.ports.HTTPS))
	var rep struct {
		Redownloads struct {
			Hours   int `json:"hours"`
			Domains []struct {
				Domain    string   `json:"domain"`
				Accounts  int      `json:"accounts"`
				Messages  int      `json:"messages"`
				Addresses []string `json:"addresses"`
			} `json:"domains"`
		} `json:"pop3_redownloads"`
	}
	if err := json.Unmarshal(r.body, &rep); err != nil || r.status != http.StatusOK {
		t.Fatalf("troubles: %d %s", r.status, r.body)
	}
	d := rep.Redownloads.Domains
	if rep.Redownloads.Hours != 1 || len(d) != 1 || d[0].Domain != "example.test" || d[0].Accounts != 1 || d[0].Messages != n ||
		len(d[0].Addresses) != 1 || d[0].Addresses[0] != server.DemoAddress {
		t.Errorf("troubles: %s", r.body)
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
