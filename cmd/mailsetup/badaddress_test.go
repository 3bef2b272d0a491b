package main

import (
	"strings"
	"testing"
)

// TestServeRefusesInvalidUTF8Address: bytes that are not UTF-8 in an
// address get 400 with a message from every page and document that takes
// one, fetched with the real curl (they used to get 200 with U+FFFD).
func TestServeRefusesInvalidUTF8Address(t *testing.T) {
	svc := startMail(t)
	defer svc.stop(t)
	for _, path := range []string{
		"/settings/%ff%fe@example.test",
		"/help/%ff%fe@example.test",
		"/help/%ff%fe@example.test/thunderbird",
		"/mail/config-v1.1.xml?emailaddress=%ff%fe@example.test",
		"/apple/mail.mobileconfig?email=%ff%fe@example.test",
		"/autodiscover/autodiscover.json/v1.0/%ff%fe@example.test?Protocol=AutodiscoverV1",
	} {
		r := curl(t, svc.urls["https"]+path)
		if r.status != 400 || !strings.Contains(string(r.body), "not UTF-8") {
			t.Errorf("%s: %d\n%s", path, r.status, r.body)
		}
	}
	r := curl(t, "-H", "Content-Type: text/xml", "--data-binary", strings.Replace(outlookRequest, "demo@", "\xff\xfe@", 1), svc.urls["https"]+"/autodiscover/autodiscover.xml")
	if r.status != 400 || !strings.Contains(string(r.body), "<ErrorCode>600</ErrorCode>") {
		t.Errorf("Autodiscover: %d\n%s", r.status, r.body)
	}
}
