package migrate

import (
	"strings"
	"testing"
)

func TestUIDLFormatExpand(t *testing.T) {
	vars := UIDLVars{UID: 1, UIDValidity: 1796599529, MD5: "0123abcd", FileName: "1700000001.M1P1.host,S=39", GUID: "5724200ee9ee"}
	for _, tc := range []struct{ format, want string }{
		// What a real Dovecot 2.3 served for UID 1 of UIDVALIDITY 1796599529.
		{DefaultUIDLFormat, "000000016b15eee9"},
		{"%u", "1"},
		{"%v", "1796599529"},
		{"%u.%v", "1.1796599529"},
		{"%08u", "00000001"},
		{"%4u|", "   1|"},
		{"%Xv", "6b15eee9"},
		{"%08UXu%08UXv", "000000016B15EEE9"},
		{"%m", "0123abcd"},
		{"%Um", "0123ABCD"},
		{"%f", "1700000001.M1P1.host,S=39"},
		{"%g", "5724200ee9ee"},
		{"%{uid}-%{uidvalidity}-%{md5}-%{filename}-%{guid}", "1-1796599529-0123abcd-1700000001.M1P1.host,S=39-5724200ee9ee"},
		{"%08X{uid}", "00000001"},
		{"x%%y%u", "x%y1"},
		{"plain", "plain"},
	} {
		f, err := ParseUIDLFormat(tc.format)
		if err != nil {
			t.Errorf("%q: %v", tc.format, err)
			continue
		}
		if got := f.Expand(vars); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.format, got, tc.want)
		}
		if f.String() != tc.format {
			t.Errorf("String() = %q, want %q", f.String(), tc.format)
		}
	}
}

func TestUIDLFormatNeeds(t *testing.T) {
	f, err := ParseUIDLFormat(DefaultUIDLFormat)
	if err != nil {
		t.Fatal(err)
	}
	if !f.Needs('u') || !f.Needs('v') || f.Needs('m') || f.Needs('f') {
		t.Errorf("default format needs u and v only")
	}
	f, _ = ParseUIDLFormat("%{md5}")
	if !f.Needs('m') || f.Needs('u') {
		t.Errorf("%%{md5} needs m only")
	}
}

func TestUIDLFormatErrors(t *testing.T) {
	for _, tc := range []struct{ format, want string }{
		{"", "empty"},
		{"%", "names no variable"},
		{"%08X", "names no variable"},
		{"%z", "unknown variable %z"},
		{"%{nope}", "unknown variable %{nope}"},
		{"%{uid", "not closed"},
		{"%99u", "at most 70"},
	} {
		_, err := ParseUIDLFormat(tc.format)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one saying %q", tc.format, err, tc.want)
		}
	}
}
