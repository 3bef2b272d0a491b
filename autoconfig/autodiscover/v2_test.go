package autodiscover_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"mailsetup/autoconfig/autodiscover"
)

func TestV2(t *testing.T) {
	const pox = "https://autodiscover.example.com/Autodiscover/Autodiscover.xml"
	tests := []struct {
		protocol string
		status   int
		body     string
	}{
		{"AutodiscoverV1", 200, `{"Protocol":"AutodiscoverV1","Url":"https://autodiscover.example.com/Autodiscover/Autodiscover.xml"}`},
		{"autodiscoverv1", 200, `{"Protocol":"AutodiscoverV1","Url":"https://autodiscover.example.com/Autodiscover/Autodiscover.xml"}`},
		{"AUTODISCOVERV1", 200, `{"Protocol":"AutodiscoverV1","Url":"https://autodiscover.example.com/Autodiscover/Autodiscover.xml"}`},
		{"ActiveSync", 400, `{"ErrorCode":"InvalidProtocol","ErrorMessage":"The given protocol value 'ActiveSync' is invalid. Supported values are 'AutodiscoverV1'"}`},
		{"Ews", 400, `{"ErrorCode":"InvalidProtocol","ErrorMessage":"The given protocol value 'Ews' is invalid. Supported values are 'AutodiscoverV1'"}`},
		{"", 400, `{"ErrorCode":"InvalidProtocol","ErrorMessage":"The given protocol value '' is invalid. Supported values are 'AutodiscoverV1'"}`},
		{"AutodiscoverV1 ", 400, `{"ErrorCode":"InvalidProtocol","ErrorMessage":"The given protocol value 'AutodiscoverV1 ' is invalid. Supported values are 'AutodiscoverV1'"}`},
		{`x"<&>`, 400, `{"ErrorCode":"InvalidProtocol","ErrorMessage":"The given protocol value 'x\"<&>' is invalid. Supported values are 'AutodiscoverV1'"}`},
	}
	for _, tc := range tests {
		status, body := autodiscover.V2(tc.protocol, pox)
		if status != tc.status || string(body) != tc.body {
			t.Errorf("V2(%q) = %d %s\nwant %d %s", tc.protocol, status, body, tc.status, tc.body)
		}
		if !json.Valid(body) {
			t.Errorf("V2(%q): body is not valid JSON", tc.protocol)
		}
	}
}

func TestV2URLKeepsQuery(t *testing.T) {
	status, body := autodiscover.V2("AutodiscoverV1", "https://mail.example.com:8443/autodiscover/autodiscover.xml?a=1&b=2")
	var got struct{ Protocol, Url string }
	if err := json.Unmarshal(body, &got); err != nil || status != http.StatusOK {
		t.Fatalf("%d %s: %v", status, body, err)
	}
	if got.Url != "https://mail.example.com:8443/autodiscover/autodiscover.xml?a=1&b=2" {
		t.Errorf("Url = %q", got.Url)
	}
}
