package delivery

import "testing"

// TestPolicyParseAndMatch: RFC 8461 §3.2's policy file and §4.1's mx
// patterns ("*." is one leftmost label); malformed policies are refused.
func TestPolicyParseAndMatch(t *testing.T) {
	p, err := parsePolicy("version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 604800\r\n")
	if err != nil {
		t.Fatal(err)
	}
	for host, want := range map[string]bool{"mail.example.com": true, "MAIL.example.com.": true, "mx1.example.net": true,
		"example.net": false, "a.b.example.net": false, "mail.example.org": false} {
		if got := p.matches(host); got != want {
			t.Errorf("matches(%q) = %v, want %v", host, got, want)
		}
	}
	for _, bad := range []string{
		"version: STSv2\nmode: enforce\nmx: a.test\nmax_age: 1\n",
		"version: STSv1\nmode: strict\nmx: a.test\nmax_age: 1\n",
		"version: STSv1\nmode: enforce\nmax_age: 1\n",
		"version: STSv1\nmode: enforce\nmx: a.test\n",
		"version: STSv1\nmode: enforce\nmx: a.test\nmax_age: -5\n",
	} {
		if _, err := parsePolicy(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}
