package autodiscover_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"mailsetup/autoconfig/autodiscover"
)

const (
	john       = "john@example.com"
	outlookRS  = autodiscover.OutlookResponseSchema
	legacyDN   = "/o=Example/ou=Exchange Administrative Group (FYDIBOHF23SPDLT)/cn=Recipients/cn=john"
	requestDir = "testdata/requests"
)

// requestCases maps every file of testdata/requests to what ParseRequest
// must return for it: a Request, or a sentinel error.
var requestCases = map[string]struct {
	want Request
	err  error
}{
	// Real clients.
	"outlook.xml":          {want: Request{EMailAddress: john, AcceptableResponseSchema: outlookRS}},
	"outlook-legacydn.xml": {want: Request{EMailAddress: john, LegacyDN: legacyDN, AcceptableResponseSchema: outlookRS}},
	"thunderbird.xml":      {want: Request{EMailAddress: john, AcceptableResponseSchema: outlookRS}},
	// Tolerated variations.
	"prefixed.xml":          {want: Request{EMailAddress: john, AcceptableResponseSchema: outlookRS}},
	"bom-crlf.xml":          {want: Request{EMailAddress: john, AcceptableResponseSchema: outlookRS}},
	"case-emailaddress.xml": {want: Request{EMailAddress: john, AcceptableResponseSchema: outlookRS}},
	"case-lower.xml":        {want: Request{EMailAddress: john, AcceptableResponseSchema: outlookRS}},
	"case-upper.xml": {want: Request{EMailAddress: john,
		AcceptableResponseSchema: "HTTP://SCHEMAS.MICROSOFT.COM/EXCHANGE/AUTODISCOVER/OUTLOOK/RESPONSESCHEMA/2006A/"}},
	"no-namespace.xml": {want: Request{EMailAddress: john}},
	"no-schema.xml":    {want: Request{EMailAddress: john}},
	// ActiveSync.
	"mobilesync.xml":                {err: autodiscover.ErrSchemaNotSupported},
	"outlook-mobilesync-schema.xml": {err: autodiscover.ErrSchemaNotSupported},
	// Broken or hostile.
	"malformed.xml":         {err: autodiscover.ErrMalformed},
	"truncated.xml":         {err: autodiscover.ErrMalformed},
	"wrong-root.xml":        {err: autodiscover.ErrMalformed},
	"wrong-namespace.xml":   {err: autodiscover.ErrMalformed},
	"xxe.xml":               {err: autodiscover.ErrMalformed},
	"billion-laughs.xml":    {err: autodiscover.ErrMalformed},
	"undeclared-entity.xml": {err: autodiscover.ErrMalformed},
	"utf16-declared.xml":    {err: autodiscover.ErrMalformed},
	"duplicate-address.xml": {err: autodiscover.ErrMalformed},
	"two-roots.xml":         {err: autodiscover.ErrMalformed},
	"not-xml.xml":           {err: autodiscover.ErrMalformed},
	"empty.xml":             {err: autodiscover.ErrMalformed},
	// No address.
	"missing-address.xml": {err: autodiscover.ErrNoAddress},
	"legacydn-only.xml":   {err: autodiscover.ErrNoAddress},
	"empty-address.xml":   {err: autodiscover.ErrNoAddress},
}

// Request is a local alias to keep the table short.
type Request = autodiscover.Request

func readCorpus(t testing.TB) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(requestDir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".xml") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(requestDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = data
	}
	return files
}

func TestParseRequestCorpus(t *testing.T) {
	files := readCorpus(t)
	for name := range requestCases {
		if _, ok := files[name]; !ok {
			t.Errorf("table names %s, which is not in %s", name, requestDir)
		}
	}
	for name, data := range files {
		t.Run(name, func(t *testing.T) {
			tc, ok := requestCases[name]
			if !ok {
				t.Fatalf("%s has no entry in requestCases", name)
			}
			got, err := autodiscover.ParseRequest(bytes.NewReader(data))
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if got != tc.want {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestCorpusFilesAreWhatTheySay guards the byte-level properties a text
// editor or a git setting could silently remove.
func TestCorpusFilesAreWhatTheySay(t *testing.T) {
	files := readCorpus(t)
	bom := files["bom-crlf.xml"]
	if !bytes.HasPrefix(bom, []byte("\xEF\xBB\xBF")) || !bytes.Contains(bom, []byte("\r\n")) {
		t.Error("bom-crlf.xml lost its byte order mark or its CRLF line ends")
	}
	if len(files["empty.xml"]) != 0 {
		t.Error("empty.xml is not empty")
	}
}

func TestParseRequestInline(t *testing.T) {
	const ns = `xmlns="` + autodiscover.RequestNamespace + `"`
	tests := []struct {
		name, body string
		want       Request
		err        error
	}{
		{name: "whitespace only", body: " \r\n\t ", err: autodiscover.ErrMalformed},
		{name: "BOM only", body: "\xEF\xBB\xBF", err: autodiscover.ErrMalformed},
		{name: "comment only", body: "<!-- nothing -->", err: autodiscover.ErrMalformed},
		{name: "text before root", body: `junk<Autodiscover ` + ns + `/>`, err: autodiscover.ErrMalformed},
		{name: "text after root", body: `<Autodiscover ` + ns + `/>junk`, err: autodiscover.ErrMalformed},
		{name: "bare DOCTYPE", body: `<!DOCTYPE Autodiscover><Autodiscover ` + ns + `><Request><EMailAddress>a@b.example</EMailAddress></Request></Autodiscover>`, err: autodiscover.ErrMalformed},
		{name: "undeclared prefix", body: `<a:Autodiscover><a:Request><a:EMailAddress>a@b.example</a:EMailAddress></a:Request></a:Autodiscover>`, err: autodiscover.ErrMalformed},
		{name: "element inside address", body: `<Autodiscover ` + ns + `><Request><EMailAddress><b>a@b.example</b></EMailAddress></Request></Autodiscover>`, err: autodiscover.ErrMalformed},
		{name: "two Request elements", body: `<Autodiscover ` + ns + `><Request><EMailAddress>a@b.example</EMailAddress></Request><Request/></Autodiscover>`, err: autodiscover.ErrMalformed},
		{name: "empty root", body: `<Autodiscover ` + ns + `/>`, err: autodiscover.ErrNoAddress},
		{name: "address outside Request", body: `<Autodiscover ` + ns + `><EMailAddress>a@b.example</EMailAddress></Autodiscover>`, err: autodiscover.ErrNoAddress},
		{name: "address in a sibling after Request", body: `<Autodiscover ` + ns + `><Request/><Other><EMailAddress>a@b.example</EMailAddress></Other></Autodiscover>`, err: autodiscover.ErrNoAddress},
		{name: "mobilesync namespace, no schema", body: `<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006"><Request><EMailAddress>a@b.example</EMailAddress></Request></Autodiscover>`, err: autodiscover.ErrSchemaNotSupported},
		{name: "schema checked before address", body: `<Autodiscover ` + ns + `><Request><AcceptableResponseSchema>` + autodiscover.MobileSyncResponseSchema + `</AcceptableResponseSchema></Request></Autodiscover>`, err: autodiscover.ErrSchemaNotSupported},
		{name: "empty schema is absent", body: `<Autodiscover ` + ns + `><Request><EMailAddress>a@b.example</EMailAddress><AcceptableResponseSchema/></Request></Autodiscover>`,
			want: Request{EMailAddress: "a@b.example"}},
		{name: "CDATA and escapes", body: `<Autodiscover ` + ns + `><Request><EMailAddress><![CDATA[o'hara]]>&#64;b.example</EMailAddress></Request></Autodiscover>`,
			want: Request{EMailAddress: "o'hara@b.example"}},
		{name: "processing instruction", body: `<?xml version="1.0"?><?foo bar?><Autodiscover ` + ns + `><Request><EMailAddress>a@b.example</EMailAddress></Request></Autodiscover>`,
			want: Request{EMailAddress: "a@b.example"}},
		{name: "default namespace on Request only", body: `<p:Autodiscover xmlns:p="` + autodiscover.RequestNamespace + `"><Request xmlns="urn:other"><EMailAddress>a@b.example</EMailAddress></Request></p:Autodiscover>`,
			want: Request{EMailAddress: "a@b.example"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := autodiscover.ParseRequest(strings.NewReader(tc.body))
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if got != tc.want {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// countingReader counts the bytes read from it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestParseRequestSizeLimit(t *testing.T) {
	outlook, err := os.ReadFile(filepath.Join(requestDir, "outlook.xml"))
	if err != nil {
		t.Fatal(err)
	}
	pad := func(n int) []byte {
		return append(bytes.Clone(outlook), bytes.Repeat([]byte(" "), n-len(outlook))...)
	}

	t.Run("10 MB", func(t *testing.T) {
		body := pad(10 << 20)
		cr := &countingReader{r: bytes.NewReader(body)}
		_, err := autodiscover.ParseRequest(cr)
		if !errors.Is(err, autodiscover.ErrTooLarge) {
			t.Fatalf("err = %v, want ErrTooLarge", err)
		}
		if cr.n > autodiscover.MaxRequestBytes+1 {
			t.Errorf("read %d bytes, want at most MaxRequestBytes+1 = %d", cr.n, autodiscover.MaxRequestBytes+1)
		}
	})
	t.Run("exactly MaxRequestBytes", func(t *testing.T) {
		got, err := autodiscover.ParseRequest(bytes.NewReader(pad(autodiscover.MaxRequestBytes)))
		if err != nil || got.EMailAddress != john {
			t.Fatalf("got %+v, %v; want %s, nil", got, err, john)
		}
	})
	t.Run("one byte over", func(t *testing.T) {
		_, err := autodiscover.ParseRequest(bytes.NewReader(pad(autodiscover.MaxRequestBytes + 1)))
		if !errors.Is(err, autodiscover.ErrTooLarge) {
			t.Fatalf("err = %v, want ErrTooLarge", err)
		}
	})
	t.Run("deep nesting inside the limit", func(t *testing.T) {
		n := (autodiscover.MaxRequestBytes - 200) / 7
		body := `<Autodiscover><Request>` + strings.Repeat("<x>", n) + strings.Repeat("</x>", n) + `</Request></Autodiscover>`
		_, err := autodiscover.ParseRequest(strings.NewReader(body))
		if err == nil {
			t.Fatal("no error for a request without address")
		}
	})
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

func TestParseRequestReadError(t *testing.T) {
	_, err := autodiscover.ParseRequest(failingReader{})
	if err == nil || !strings.Contains(err.Error(), "connection reset") {
		t.Fatalf("err = %v, want the read error", err)
	}
	for _, s := range []error{autodiscover.ErrTooLarge, autodiscover.ErrMalformed, autodiscover.ErrNoAddress, autodiscover.ErrSchemaNotSupported} {
		if errors.Is(err, s) {
			t.Errorf("read error matches sentinel %v", s)
		}
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, data := range readCorpus(f) {
		f.Add(data)
	}
	f.Add([]byte(`<Autodiscover><Request><EMailAddress>a@b.example</EMailAddress></Request></Autodiscover>`))
	f.Add([]byte("\xEF\xBB\xBF<Autodiscover/>"))
	sentinels := []error{autodiscover.ErrTooLarge, autodiscover.ErrMalformed, autodiscover.ErrNoAddress, autodiscover.ErrSchemaNotSupported}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := autodiscover.ParseRequest(bytes.NewReader(data))
		if err != nil {
			for _, s := range sentinels {
				if errors.Is(err, s) {
					return
				}
			}
			t.Fatalf("error %v matches no sentinel", err)
		}
		if req.EMailAddress == "" || req.EMailAddress != strings.TrimSpace(req.EMailAddress) {
			t.Fatalf("accepted request with address %q", req.EMailAddress)
		}
	})
}
