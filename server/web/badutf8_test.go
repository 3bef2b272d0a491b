package web_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestInvalidUTF8AddressIs400 sends an address whose bytes are not UTF-8
// (%ff%fe) to every page and document that takes one, over real HTTP:
// each answers 400 with a message, never 200 with U+FFFD in place of the
// bytes.
func TestInvalidUTF8AddressIs400(t *testing.T) {
	srv := httptest.NewServer(newApp(t, nil))
	defer srv.Close()
	for _, target := range []string{
		"/settings/%ff%fe@example.com",
		"/settings/john%ff@example.com",
		"/help/%ff%fe@example.com",
		"/help/%ff%fe@example.com/thunderbird",
		"/help?address=%ff%fe@example.com",
		"/check/%ff%fe@example.com",
		"/mail/config-v1.1.xml?emailaddress=%ff%fe@example.com",
		"/.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=%ff%fe@example.com",
		"/apple/mail.mobileconfig?email=%ff%fe@example.com",
		"/autodiscover/autodiscover.json?Email=%ff%fe@example.com&Protocol=AutodiscoverV1",
		"/autodiscover/autodiscover.json/v1.0/%ff%fe@example.com?Protocol=AutodiscoverV1",
		// A literal U+FFFD is what a lossy decoder upstream left.
		"/mail/config-v1.1.xml?emailaddress=%ef%bf%bd@example.com",
	} {
		resp, err := http.Get(srv.URL + target)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET %s: %d, want 400\n%s", target, resp.StatusCode, body)
			continue
		}
		if !strings.Contains(string(body), "UTF-8") && !strings.Contains(string(body), `\ufffd`) && !strings.Contains(string(body), "\ufffd") {
			t.Errorf("GET %s: the message does not say what is wrong:\n%s", target, body)
		}
	}
	// Autodiscover POX: the XML parser refuses the bytes already.
	resp, err := http.Post(srv.URL+"/autodiscover/autodiscover.xml", "text/xml",
		strings.NewReader("<Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006\"><Request><EMailAddress>\xff\xfe@example.com</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("POST autodiscover.xml: %d, want 400", resp.StatusCode)
	}
}
