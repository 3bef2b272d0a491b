package clients

import (
	"strings"
	"testing"

	"mailsetup/autoconfig"
)

// Both generations of PACC documents give the same settings: ours
// (submit and smtp), one as Stalwart and -02 write it (smtp only), one
// as -03 writes it (submit only); two different hosts are refused.
func TestPACCSettingsBothGenerations(t *testing.T) {
	p := autoconfig.Policy{
		Domain: "gen.test", DisplayName: "Gen", ShortName: "Gen",
		IMAP:       []autoconfig.Endpoint{{Protocol: autoconfig.IMAP, Host: "imap.gen.test", Port: 993, Security: autoconfig.TLS}},
		Submission: []autoconfig.Endpoint{{Protocol: autoconfig.SMTP, Host: "smtp.gen.test", Port: 465, Security: autoconfig.TLS}},
	}
	ours, err := p.PACC()
	if err != nil {
		t.Fatal(err)
	}
	for name, doc := range map[string]string{
		"ours": string(ours),
		"-02":  `{"protocols":{"imap":{"host":"imap.gen.test"},"smtp":{"host":"smtp.gen.test"}},"authentication":{"password":true},"info":{"provider":{"name":"Gen"}}}`,
		"-03":  `{"protocols":{"imap":{"host":"imap.gen.test."},"submit":{"host":"smtp.gen.test"}},"authentication":{"password":true},"info":{"provider":{"name":"Gen"}}}`,
	} {
		got, err := paccSettings([]byte(doc))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(got.IMAP) != 1 || got.IMAP[0] != p.IMAP[0] || len(got.Submission) != 1 || got.Submission[0] != p.Submission[0] || len(got.POP3) != 0 {
			t.Errorf("%s: settings %+v", name, got)
		}
	}
	_, err = paccSettings([]byte(`{"protocols":{"imap":{"host":"imap.gen.test"},"submit":{"host":"new.gen.test"},"smtp":{"host":"old.gen.test"}}}`))
	if err == nil || !strings.Contains(err.Error(), `"new.gen.test"`) || !strings.Contains(err.Error(), `"old.gen.test"`) {
		t.Errorf("two submission hosts: %v", err)
	}
}
