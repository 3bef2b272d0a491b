package request_test

import (
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"mailsetup/server/web/request"
)

// FuzzQueryParam checks that QueryParam reads a query as echo's
// QueryParam (url.ParseQuery) does.
func FuzzQueryParam(f *testing.F) {
	for _, q := range []string{
		"emailaddress=john%40example.com",
		"emailaddress=john@example.com&emailaddress=other@example.com",
		"a=1&emailaddress=x;y&emailaddress=z",
		"email%61ddress=john&emailaddress=second",
		"emailaddress=%zz&emailaddress=ok",
		"emailaddress",
		"emailaddress=&emailaddress=late",
		"&&=&emailaddress=a+b",
		"e%zzmailaddress=1&emailaddress=2",
		"emailaddress=john" + strings.Repeat("&", 10001),
	} {
		f.Add(q, "emailaddress")
	}
	e := echo.New()
	f.Fuzz(func(t *testing.T, q, name string) {
		want := ""
		if vs, _ := url.ParseQuery(q); vs != nil {
			want = vs.Get(name)
		}
		r := httptest.NewRequest("GET", "/", nil)
		r.URL.RawQuery = q
		if got := request.QueryParam(e.NewContext(r, httptest.NewRecorder()), name); got != want {
			t.Fatalf("QueryParam(%q, %q) = %q, url.ParseQuery reads %q", q, name, got, want)
		}
	})
}
