package autoconfig_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"mailsetup/autoconfig"
	"mailsetup/internal/testkit"
)

func TestPACCDocument(t *testing.T) {
	p := testkit.IMAPFirst()
	doc, err := p.PACC()
	if err != nil {
		t.Fatal(err)
	}
	again, _ := p.PACC()
	if !bytes.Equal(doc, again) {
		t.Fatal("two renderings of one policy differ: the published digest would not match")
	}
	var got struct {
		Protocols map[string]struct {
			Host string `json:"host"`
		} `json:"protocols"`
		Authentication struct {
			Password bool `json:"password"`
		} `json:"authentication"`
		Info struct {
			Provider struct {
				Name      string `json:"name"`
				ShortName string `json:"shortName"`
			} `json:"provider"`
		} `json:"info"`
	}
	if err := json.Unmarshal(doc, &got); err != nil {
		t.Fatalf("%v\n%s", err, doc)
	}
	want := map[string]string{"imap": "imap.example.com", "pop3": "pop.example.com", "submit": "smtp.example.com", "smtp": "smtp.example.com"}
	for k, h := range want {
		if got.Protocols[k].Host != h {
			t.Errorf("protocols.%s.host = %q, want %q", k, got.Protocols[k].Host, h)
		}
	}
	if len(got.Protocols) != 4 || !got.Authentication.Password || got.Info.Provider.Name != p.DisplayName || got.Info.Provider.ShortName != "Example" {
		t.Errorf("document: %s", doc)
	}

	sum := sha256.Sum256(doc)
	digest := base64.StdEncoding.EncodeToString(sum[:])
	if autoconfig.PACCDigest(doc) != digest {
		t.Errorf("PACCDigest = %q, want %q", autoconfig.PACCDigest(doc), digest)
	}
	var txt []string
	var uaHost bool
	for _, r := range p.Records() {
		if r.Type == "TXT" && r.Name == "_ua-auto-config.example.com." {
			txt = append(txt, strings.Join(r.Text, ""))
		}
		uaHost = uaHost || r.Name == "ua-auto-config.example.com."
	}
	if len(txt) != 1 || txt[0] != "v=UAAC1; a=sha256; d="+digest || !uaHost {
		t.Errorf("records: TXT %q, ua-auto-config host %v", txt, uaHost)
	}
	// A rollover publishes the earlier digests too.
	p.PACCRetired = []string{"b2xk"}
	var n int
	for _, r := range p.Records() {
		if r.Type == "TXT" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("with a retired digest: %d TXT records, want 2", n)
	}
}

func TestPACCNotExpressible(t *testing.T) {
	p := testkit.POPFirst() // submission only on 587 with STARTTLS
	if _, err := p.PACC(); !errors.Is(err, autoconfig.ErrNoPACC) {
		t.Fatalf("PACC() error = %v, want ErrNoPACC", err)
	}
	for _, r := range p.Records() {
		if r.Type == "TXT" || strings.HasPrefix(r.Name, "ua-auto-config.") {
			t.Errorf("record %s published for a policy without PACC", r)
		}
	}
	var zone strings.Builder
	if err := autoconfig.WriteZone(&zone, []autoconfig.Policy{p}); err != nil || !strings.Contains(zone.String(), "; no PACC records: PACC needs") {
		t.Errorf("zone does not say why PACC is missing (%v):\n%s", err, zone.String())
	}
	// Only the endpoints PACC can say are in it.
	p.Submission = append(p.Submission, autoconfig.Endpoint{Protocol: autoconfig.SMTP, Host: "smtp.pop-first.test", Port: 465, Security: autoconfig.TLS})
	doc, err := p.PACC()
	if err != nil || !bytes.Contains(doc, []byte(`"submit":{"host":"smtp.pop-first.test"}`)) || bytes.Contains(doc, []byte("110")) {
		t.Errorf("PACC() = %s, %v", doc, err)
	}
}

func TestParsePACCText(t *testing.T) {
	for in, want := range map[string]string{
		"v=UAAC1; a=sha256; d=abc=":           "abc=",
		"d=abc= ;a=SHA256;v=UAAC1; x=future;": "abc=",
		"v=UAAC2; a=sha256; d=abc=":           "",
		"v=UAAC1; a=sha1; d=abc=":             "",
		"v=spf1 -all":                         "",
	} {
		if got := autoconfig.ParsePACCText(in); got != want {
			t.Errorf("ParsePACCText(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzParsePACCText: never panics; a digest it returns came from the
// text's d= tag.
func FuzzParsePACCText(f *testing.F) {
	f.Add("v=UAAC1; a=sha256; d=abc=")
	f.Add("d=;v=UAAC1;a=SHA256;;=;")
	f.Fuzz(func(t *testing.T, txt string) {
		if d := autoconfig.ParsePACCText(txt); d != "" && !strings.Contains(txt, d) {
			t.Fatalf("digest %q not in %q", d, txt)
		}
	})
}
