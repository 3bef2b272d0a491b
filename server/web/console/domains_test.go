package console_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"mailsetup/autoconfig"
	"mailsetup/internal/testkit"
)

// TestStartPageServedDomains: with 3,000 domains the start page says
// how many and names one page of them, never all; the GET filter
// narrows them, the offset pages through them, and bad parameters are
// refused naming them.
func TestStartPageServedDomains(t *testing.T) {
	var more []autoconfig.Policy
	for i := range 3000 {
		p := testkit.IMAPFirst()
		p.Domain = fmt.Sprintf("customer%04d.example", i)
		more = append(more, p)
	}
	env := newStaffAppWith(t, staffConfig{more: more})
	b := newBrowserClient(t, env.app)
	b.signIn(staffPassword)

	home := b.do("GET", "/staff/", nil).Body.String()
	if !strings.Contains(home, "Domains served here: 3002") || strings.Count(home, `<li><a href="/staff/overview?domain=`) != 20 {
		t.Errorf("start page: no count or not one page of 20 names:\n%s", home)
	}
	if strings.Contains(home, "customer2999.example") || !strings.Contains(home, `<a href="/staff/?offset=20" id="domains-next">`) {
		t.Errorf("start page: every domain, or no link to the next page")
	}
	if len(home) > 64<<10 {
		t.Errorf("start page is %d bytes with 3,000 domains", len(home))
	}

	w := b.do("GET", "/staff/?domain=customer29&offset=20", nil)
	page := w.Body.String()
	for _, want := range []string{"100 domains contain “customer29”", "showing 20 from number 21", "customer2920.example", "customer2939.example",
		`<a href="/staff/?domain=customer29" id="domains-prev">`, `<a href="/staff/?domain=customer29&amp;offset=40" id="domains-next">`, `value="customer29"`} {
		if w.Code != http.StatusOK || !strings.Contains(page, want) {
			t.Errorf("filtered, second page: %d, no %q", w.Code, want)
		}
	}
	if strings.Contains(page, "customer2919.example") || strings.Contains(page, "customer2940.example") || strings.Contains(page, "customer0001.example") {
		t.Error("filtered page names domains outside it")
	}
	if w := b.do("GET", "/staff/?domain=customer2999", nil); !strings.Contains(w.Body.String(), "1 domain contains “customer2999”") || strings.Contains(w.Body.String(), `id="domains-next"`) {
		t.Errorf("one match:\n%s", w.Body)
	}
	if w := b.do("GET", "/staff/?domain=nowhere", nil); !strings.Contains(w.Body.String(), "No domain served here contains “nowhere”") {
		t.Error("no match: no message")
	}
	if w := b.do("GET", "/staff/?domain=customer29&offset=500", nil); !strings.Contains(w.Body.String(), `are only 100 such domains: <a href="/staff/?domain=customer29" id="served-first">`) {
		t.Errorf("offset past the end:\n%s", w.Body)
	}
	for _, bad := range []string{"/staff/?offset=-1", "/staff/?offset=x", "/staff/?domain=%00x", "/staff/?domain=" + strings.Repeat("a", 300)} {
		if w := b.do("GET", bad, nil); w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), `id="error"`) {
			t.Errorf("%s: %d", bad, w.Code)
		}
	}
}
