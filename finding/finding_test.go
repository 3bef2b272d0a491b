package finding_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"mailsetup/finding"
)

func TestCatalog(t *testing.T) {
	seen := map[string]bool{}
	for _, e := range finding.Catalog {
		if seen[e.ID] {
			t.Errorf("duplicate id %s", e.ID)
		}
		seen[e.ID] = true
		area, thing, ok := strings.Cut(e.ID, ".")
		if !ok || area == "" || thing == "" || e.ID != strings.ToLower(e.ID) {
			t.Errorf("id %q is not area.thing", e.ID)
		}
		if e.Title == "" || e.Fix == "" || e.Staff == "" {
			t.Errorf("%s: incomplete entry", e.ID)
		}
		switch e.Fault {
		case finding.FaultServer:
			if !strings.Contains(e.Fix, "Nothing on your side is wrong") {
				t.Errorf("%s: a server fault's fix must tell the customer that nothing on their side is wrong: %q", e.ID, e.Fix)
			}
		case finding.FaultSettings:
			if strings.Contains(e.Fix, "Nothing on your side is wrong") {
				t.Errorf("%s: a settings fault's fix says nothing is wrong on the customer's side", e.ID)
			}
		default:
			t.Errorf("%s: fault %q, want settings or server", e.ID, e.Fault)
		}
	}
	for _, id := range []string{"username.not-full-address", "smtp.auth-disabled", "smtp.open-relay", "pop3.leave-forever",
		"pop3.delete-after-too-long", "port.security-mismatch", "server.wrong-host", "server.unreachable", "login.failed",
		"tls.name-mismatch", "tls.expired", "tls.expires-soon", "dns.srv-missing", "autoconfig.mismatch"} {
		if !seen[id] {
			t.Errorf("catalog lacks %s", id)
		}
	}
}

// TestMergeSaysAFixOnce: six servers that do not answer are one
// finding whose fix says "call us" once and names every server, in the
// order seen; the evidence and staff lines keep one entry per server.
func TestMergeSaysAFixOnce(t *testing.T) {
	var in []finding.Finding
	var hosts []string
	for _, port := range []int{465, 995, 110, 993, 143, 587} {
		host := fmt.Sprintf("mail.example.test:%d", port)
		hosts = append(hosts, host)
		in = append(in, finding.New("server.unreachable", finding.Vars{"value": host}, "connect "+host+": refused"))
	}
	// The same server again (the login step after the connection step)
	// adds nothing.
	in = append(in, finding.New("server.unreachable", finding.Vars{"value": hosts[0]}, "connect "+hosts[0]+": refused"))
	out := finding.Merge(in)
	if len(out) != 1 {
		t.Fatalf("%d findings, want 1: %+v", len(out), out)
	}
	f := out[0]
	want := "If this persists for more than a few minutes, call us: the servers " +
		strings.Join(hosts[:5], ", ") + " and " + hosts[5] + " are not answering. Nothing on your side is wrong."
	if f.Fix != want {
		t.Errorf("fix\n %q\nwant\n %q", f.Fix, want)
	}
	if n := strings.Count(f.Fix, "call us"); n != 1 {
		t.Errorf("fix says %q %d times", "call us", n)
	}
	if len(f.Evidence) != 6 || strings.Count(f.Staff, "could not connect") != 6 || f.Severity != finding.Critical {
		t.Errorf("merged %+v", f)
	}
}

// TestMergeKeepsDistinctFixes: findings of one id whose fixes differ in
// more than {value} keep each fix once, in order; a repeated fix is
// said once; the worst severity wins.
func TestMergeKeepsDistinctFixes(t *testing.T) {
	tlsIn := finding.New("tls.failed", finding.Vars{"value": "imap.example.test:993", "expected": "SSL/TLS"}, "a")
	tlsOut := finding.New("tls.failed", finding.Vars{"value": "smtp.example.test:587", "expected": "STARTTLS"}, "b")
	tlsAgain := finding.New("tls.failed", finding.Vars{"value": "pop.example.test:995", "expected": "SSL/TLS"}, "c")
	soon := finding.New("tls.expires-soon", finding.Vars{"value": "h:1", "days": "3"}, "d")
	expired := soon
	expired.Severity = finding.Critical
	out := finding.Merge([]finding.Finding{tlsIn, soon, tlsOut, tlsAgain, expired})
	if got := []string{out[0].ID, out[1].ID}; len(out) != 2 || !slices.Equal(got, []string{"tls.failed", "tls.expires-soon"}) {
		t.Fatalf("merged %+v", out)
	}
	if want := tlsIn.Fix + " " + tlsOut.Fix; out[0].Fix != want {
		t.Errorf("fix %q, want %q", out[0].Fix, want)
	}
	if !slices.Equal(out[0].Evidence, []string{"a", "b", "c"}) || out[1].Severity != finding.Critical || out[1].Fix != soon.Fix {
		t.Errorf("merged %+v", out)
	}
}

// TestMergeChangedFix: a finding whose fix was changed after New (here
// emptied, as the probe does for evidence of another step's finding)
// adds no fix, and one whose fix is its own is kept as written.
func TestMergeChangedFix(t *testing.T) {
	a := finding.New("server.unreachable", finding.Vars{"value": "a:1"}, "x")
	b := finding.New("server.unreachable", finding.Vars{"value": "b:2"}, "y")
	b.Fix = ""
	c := finding.New("server.unreachable", finding.Vars{"value": "c:3"}, "z")
	c.Fix = "Call the mail administrator."
	out := finding.Merge([]finding.Finding{a, b, c})
	if want := a.Fix + " " + c.Fix; len(out) != 1 || out[0].Fix != want {
		t.Errorf("merged %+v, want fix %q", out, want)
	}
}

func TestSort(t *testing.T) {
	fs := []finding.Finding{
		finding.New("tls.expires-soon", nil),
		finding.New("login.failed", nil),
		finding.New("dns.mx-missing", nil),
		finding.New("username.not-full-address", nil),
	}
	finding.Sort(fs)
	var got []string
	for _, f := range fs {
		got = append(got, f.ID)
	}
	if want := []string{"username.not-full-address", "login.failed", "tls.expires-soon", "dns.mx-missing"}; !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
}

func TestSeverityJSON(t *testing.T) {
	b, err := json.Marshal([]finding.Severity{finding.OK, finding.Info, finding.Warning, finding.Critical})
	if err != nil || string(b) != `["ok","info","warning","critical"]` {
		t.Fatalf("%s %v", b, err)
	}
	var back []finding.Severity
	if err := json.Unmarshal([]byte(`["OK","info","Warning","critical"]`), &back); err != nil || !slices.Equal(back, []finding.Severity{0, 1, 2, 3}) {
		t.Errorf("%v %v", back, err)
	}
	if _, err := json.Marshal(finding.Severity(7)); err == nil {
		t.Error("severity 7 marshalled")
	}
	if err := json.Unmarshal([]byte(`"fatal"`), new(finding.Severity)); err == nil {
		t.Error(`"fatal" unmarshalled`)
	}
}

// TestNewPanicsOnUnknownID: ids are constants; a typo must not pass.
func TestNewPanicsOnUnknownID(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic")
		}
	}()
	finding.New("server.gone", nil)
}

// TestMergeWithoutVars: findings built without New (no placeholders
// known) or without any fix still merge.
func TestMergeWithoutVars(t *testing.T) {
	bare := finding.Finding{ID: "server.unreachable", Severity: finding.Critical, Fix: "Call us."}
	out := finding.Merge([]finding.Finding{bare, finding.New("server.unreachable", finding.Vars{"value": "a:1"}), {ID: "server.unreachable"}})
	if len(out) != 1 || !strings.HasPrefix(out[0].Fix, "Call us. If this persists") {
		t.Errorf("merged %+v", out)
	}
	e, _ := finding.Lookup("server.unreachable")
	out = finding.Merge([]finding.Finding{{ID: e.ID, Fix: e.Fix}, finding.New(e.ID, finding.Vars{"value": "a:1"})})
	if len(out) != 1 || strings.Count(out[0].Fix, "call us") != 1 || !strings.Contains(out[0].Fix, "a:1") {
		t.Errorf("merged %+v", out)
	}
	out = finding.Merge([]finding.Finding{{ID: "x.y"}, {ID: "x.y", Staff: "s"}})
	if len(out) != 1 || out[0].Fix != "" || out[0].Staff != "s" {
		t.Errorf("merged %+v", out)
	}
}

// TestFaultJSON: every finding says whose fault it is, in its JSON.
func TestFaultJSON(t *testing.T) {
	for _, c := range []struct {
		id    string
		fault string
	}{{"username.not-full-address", "settings"}, {"tls.expired", "server"}, {"smtp.open-relay", "server"}, {"pop3.leave-forever", "settings"}} {
		b, err := json.Marshal(finding.New(c.id, nil))
		if err != nil {
			t.Fatal(err)
		}
		if want := `"fault":"` + c.fault + `"`; !strings.Contains(string(b), want) {
			t.Errorf("%s: %s lacks %s", c.id, b, want)
		}
	}
}

// TestMergeWarnsOnce: the autoconfig document and the Autodiscover
// answer failing on the same web host are one warning whose fix and
// staff line say it once, naming both URLs.
func TestMergeWarnsOnce(t *testing.T) {
	a := "https://autoconfig.example.test/mail/config-v1.1.xml?emailaddress=john%40example.test"
	b := "https://autoconfig.example.test/autodiscover/autodiscover.xml"
	out := finding.Merge([]finding.Finding{
		finding.New("autoconfig.unreachable", finding.Vars{"value": a}, "connection refused"),
		finding.New("autoconfig.unreachable", finding.Vars{"value": b}, "connection refused"),
	})
	if len(out) != 1 || out[0].Severity != finding.Warning {
		t.Fatalf("%+v: want one warning", out)
	}
	f := out[0]
	if n := strings.Count(f.Staff, "make the autoconfig web host answer"); n != 1 || !strings.Contains(f.Staff, a) || !strings.Contains(f.Staff, b) {
		t.Errorf("staff %q: want it said once, naming both URLs", f.Staff)
	}
	if n := strings.Count(f.Fix, "enter the settings by hand"); n != 1 {
		t.Errorf("fix %q says it %d times", f.Fix, n)
	}
}
