package mobileconfig_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"mailsetup/autoconfig/mobileconfig"
)

// FuzzParse feeds arbitrary bytes to Parse: it must never panic, and every
// error must wrap ErrMalformed. The seeds are the golden profiles, a
// signed one, and a few near misses. Run it with a short minimization
// time, or the fuzzer spends a minute shrinking each large new input:
//
//	go test ./autoconfig/mobileconfig/ -run '^$' -fuzz FuzzParse -fuzztime 15s -fuzzminimizetime 1s
func FuzzParse(f *testing.F) {
	for _, tc := range goldenCases() {
		data, err := os.ReadFile(filepath.Join("testdata", tc.file))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	key := ecKey(f)
	cert := newCert(f, certSpec{cn: "fuzz signer"}, key, nil, nil)
	profile, err := os.ReadFile(filepath.Join("testdata", goldenCases()[0].file))
	if err != nil {
		f.Fatal(err)
	}
	signed, err := mobileconfig.Sign(profile, cert, key, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(signed)
	f.Add([]byte(handWritten))
	f.Add([]byte(`<plist version="1.0"><dict><key>PayloadType</key><string>Configuration</string></dict></plist>`))
	f.Add([]byte("bplist00"))
	f.Add([]byte{0x30, 0x80, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02, 0x00, 0x00})

	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := mobileconfig.Parse(data)
		if err != nil {
			if !errors.Is(err, mobileconfig.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		// A parsed profile names exactly one access endpoint of the
		// protocol it prefers and one submission endpoint.
		if len(p.Submission) != 1 || len(p.IMAP)+len(p.POP3) != 1 || len(p.Endpoints(p.Prefer)) != 1 {
			t.Fatalf("Parse returned %+v", p)
		}
		for _, e := range append(p.Endpoints(p.Prefer), p.Submission...) {
			if e.Host == "" || e.Port < 1 || e.Port > 65535 {
				t.Fatalf("Parse returned endpoint %+v", e)
			}
		}
	})
}
