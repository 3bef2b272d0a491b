package migrate

import (
	"strings"
	"testing"
)

// A dovecot-uidlist as Dovecot 2.3 writes it, with a saved POP3 UIDL
// and a GUID added.
const uidlistV3 = `3 V1796599529 N4 G5724200ee9ee156bdc27000083ecc375
1 W39 :1700000001.M1P1.host
2 W39 P0a1b2c3d GABCD :1700000002.M1P1.host,S=39
3 :1700000003.M1P1.host:2,S
`

func TestParseUidlist(t *testing.T) {
	l, err := ParseUidlist(strings.NewReader(uidlistV3))
	if err != nil {
		t.Fatal(err)
	}
	if l.Version != 3 || l.UIDValidity != 1796599529 || l.NextUID != 4 || len(l.Recs) != 3 {
		t.Fatalf("%+v", l)
	}
	want := map[string]UidlistRec{
		"1700000001.M1P1.host":      {UID: 1},
		"1700000002.M1P1.host,S=39": {UID: 2, POP3UIDL: "0a1b2c3d", GUID: "ABCD"},
		"1700000003.M1P1.host":      {UID: 3},
	}
	for base, w := range want {
		if got := l.Recs[base]; got != w {
			t.Errorf("%s: %+v, want %+v", base, got, w)
		}
	}

	l, err = ParseUidlist(strings.NewReader("1 1234 3\n1 a.b.c\n2 d.e.f:2,RS\n"))
	if err != nil {
		t.Fatal(err)
	}
	if l.Version != 1 || l.UIDValidity != 1234 || l.Recs["d.e.f"].UID != 2 || l.Recs["a.b.c"].UID != 1 {
		t.Errorf("version 1: %+v", l)
	}
}

func TestParseUidlistErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "empty"},
		{"2 V1 N1\n", "only versions 1 and 3"},
		{"3 N5\n", "no V<uidvalidity>"},
		{"3 Vx N5\n", "header field"},
		{"3 V1 N2\n1 W39 file\n", "line 2"},
		{"3 V1 N2\n0 :file\n", "uid \"0\""},
		{"3 V1 N2\n1 :a/b\n", "file name"},
		{"1 1\n", "want 1 <uidvalidity> <nextuid>"},
	} {
		_, err := ParseUidlist(strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one saying %q", tc.in, err, tc.want)
		}
	}
}

func FuzzParseUidlist(f *testing.F) {
	f.Add(uidlistV3)
	f.Add("1 1234 3\n1 a.b.c\n")
	f.Add("3 V1 N1 G\n1 P :x\n")
	f.Fuzz(func(t *testing.T, in string) {
		l, err := ParseUidlist(strings.NewReader(in))
		if err != nil {
			return
		}
		if l.UIDValidity == 0 {
			t.Fatalf("no error and no UIDVALIDITY: %q", in)
		}
		for base, r := range l.Recs {
			if base == "" || strings.ContainsAny(base, ":/") || r.UID == 0 {
				t.Fatalf("record %q %+v from %q", base, r, in)
			}
			if strings.ContainsAny(r.POP3UIDL+r.GUID, " \n") {
				t.Fatalf("field with a separator %+v from %q", r, in)
			}
		}
	})
}
