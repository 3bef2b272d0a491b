package autodiscover

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// The request every Outlook sends takes the fast path.
func TestCanonicalTakesOutlooksRequest(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "requests", "outlook.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, ok := parseCanonical(bytes.TrimPrefix(data, utf8BOM)); !ok {
		t.Errorf("outlook.xml does not take the fast path:\n%s", data)
	}
}

// FuzzCanonicalAgrees: whatever body the fast path accepts, encoding/xml
// reads the same request from it, with the same verdict.
func FuzzCanonicalAgrees(f *testing.F) {
	entries, err := os.ReadDir(filepath.Join("testdata", "requests"))
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join("testdata", "requests", e.Name()))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`<?xml version="1.0"?><Autodiscover xmlns="x/requestschema/2006"><Request><LegacyDN> /o=x </LegacyDN><EMailAddress>a@b</EMailAddress><AcceptableResponseSchema></AcceptableResponseSchema></Request></Autodiscover>`))
	f.Add([]byte("<Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/mobilesync/requestschema/2006\">\r\n<Request><EMailAddress>a@b</EMailAddress></Request></Autodiscover>\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, rootSpace, seenSchema, ok := parseCanonical(data)
		if !ok {
			return
		}
		got, gotErr := checkRequest(fast, rootSpace, seenSchema)
		want, wantErr := parseFull(data)
		if got != want {
			t.Fatalf("fast path read %+v, encoding/xml %+v", got, want)
		}
		for _, s := range []error{ErrMalformed, ErrNoAddress, ErrSchemaNotSupported, nil} {
			if errors.Is(gotErr, s) != errors.Is(wantErr, s) {
				t.Fatalf("fast path: %v, encoding/xml: %v", gotErr, wantErr)
			}
		}
	})
}
