package mailstore

import (
	"bytes"
	"hash/crc32"
	"strings"
	"testing"
)

// withChecksums turns lines without checksums into index lines, so the
// fuzzer reaches the record parser instead of failing checksums.
func withChecksums(text string) []byte {
	var b []byte
	for _, line := range strings.SplitAfter(text, "\n") {
		if !strings.HasSuffix(line, "\n") {
			b = append(b, line...) // a torn tail stays torn
			continue
		}
		start := len(b)
		b = append(b, strings.TrimSuffix(line, "\n")...)
		b = endLine(b, start)
	}
	return b
}

func seedIndex() []byte {
	recs := []rec{
		{uid: 1, size: 120, date: 1700000000, base: "1700000000.M1P2Q3R0a0b0c0d.host,S=120,U=1,V=7", uidl: "x"},
		{uid: 3, sys: sysSeen | sysFlagged, size: 5, date: 1700000001, retrieved: 1700000100, base: "odd name%with space", kw: "$Forwarded Junk"},
		{uid: 9, size: 7, date: -5, base: "1700000002.M1P2Q4R0.host,S=7,U=9,V=7,X=MFRGG"},
	}
	b := encodeIndex(7, 10, recs)
	b = appendFlagsRec(b, 1, sysAnswered, "k1")
	b = appendRetrieved(b, 1, 1700000500)
	b = appendExpunge(b, 3)
	return b
}

func FuzzIndex(f *testing.F) {
	seed := seedIndex()
	f.Add(seed)
	f.Add(seed[:len(seed)-7]) // torn
	f.Add([]byte("mailsetup-index 1 7 1\nA 1 2 3 0 base \\Seen kw\nF 1\nR 1 5\nX 1\nA 2 0 0 0 b%2Fc\n"))
	f.Add([]byte("mailsetup-index 1 7 1\nA 4294967295 1 1 0 b\nA 2 1 1 0 ..\nQ 1\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, in := range [][]byte{data, withChecksums(string(data))} {
			idx, err := parseIndex(in)
			if err != nil {
				continue
			}
			checkIndex(t, idx)
			if idx.size > int64(len(in)) {
				t.Fatalf("valid prefix %d longer than input %d", idx.size, len(in))
			}
			// What we write, we read back the same.
			out := encodeIndex(idx.uv, idx.uidnext, idx.recs)
			again, err := parseIndex(out)
			if err != nil {
				t.Fatalf("re-reading encoded index: %v\n%s", err, out)
			}
			if again.torn || again.uv != idx.uv || again.uidnext != idx.uidnext || len(again.recs) != len(idx.recs) {
				t.Fatalf("round trip changed the header or count:\n%s", out)
			}
			for i := range idx.recs {
				a, b := idx.recs[i], again.recs[i]
				if a.uid != b.uid || a.sys != b.sys || a.kw != b.kw || a.size != b.size || a.date != b.date ||
					a.retrieved != b.retrieved || a.base != b.base || a.uidl != b.uidl {
					t.Fatalf("round trip changed record %d: %+v -> %+v", i, a, b)
				}
			}
			if !bytes.Equal(encodeIndex(again.uv, again.uidnext, again.recs), out) {
				t.Fatal("encoding is not stable")
			}
		}
	})
}

func checkIndex(t *testing.T, idx index) {
	t.Helper()
	for i, r := range idx.recs {
		if r.dead || r.uid == 0 || r.uid >= idx.uidnext || (i > 0 && r.uid <= idx.recs[i-1].uid) {
			t.Fatalf("bad record %d: %+v (uidnext %d)", i, r, idx.uidnext)
		}
		if !validBase(r.base) || !ValidUIDL(r.uidl) || r.size < 0 || r.retrieved < 0 {
			t.Fatalf("bad record %d: %+v", i, r)
		}
		if r.kw != "" {
			for _, k := range strings.Split(r.kw, " ") {
				if checkKeyword(k) != nil {
					t.Fatalf("bad keyword %q", k)
				}
			}
		}
	}
}

func TestParseIndexSeed(t *testing.T) {
	idx, err := parseIndex(seedIndex())
	if err != nil {
		t.Fatal(err)
	}
	if idx.uv != 7 || idx.uidnext != 10 || len(idx.recs) != 2 || idx.lines != 6 || idx.torn {
		t.Fatalf("parsed %+v", idx)
	}
	r := idx.recs[0]
	if r.sys != sysAnswered || r.kw != "k1" || r.retrieved != 1700000500 || r.uidl != "1700000000.M1P2Q3R0a0b0c0d.host" {
		t.Errorf("record 1: %+v", r)
	}
	if idx.recs[1].uidl != "abc" {
		t.Errorf("given UIDL decoded as %q", idx.recs[1].uidl)
	}
	// Damage in the middle is an error, at the end a torn tail.
	seed := seedIndex()
	mid := bytes.Clone(seed)
	mid[bytes.IndexByte(mid, '\n')+3] ^= 1
	if _, err := parseIndex(mid); err == nil {
		t.Error("damage in the middle not detected")
	}
	end := bytes.Clone(seed)
	end[len(end)-3] ^= 1
	idx, err = parseIndex(end)
	if err != nil || !idx.torn || idx.lines != 5 {
		t.Errorf("damaged last line: %v, %+v", err, idx)
	}
	if crc32.ChecksumIEEE(nil) != 0 {
		t.Fatal("crc32 sanity")
	}
}

func TestNames(t *testing.T) {
	for _, tc := range []struct{ name, disk string }{
		{"INBOX", ""},
		{"Sent", ".Sent"},
		{"a/b/c", ".a.b.c"},
		{"inbox/x", ".INBOX.x"},
		{"Entwürfe", ".Entw&APw-rfe"},
		{"R&D", ".R&-D"},
		{"日本語", ".&ZeVnLIqe-"},
		{"emoji 😀", ".emoji &2D3eAA-"},
	} {
		canon, err := canonicalName(tc.name)
		if err != nil {
			t.Fatalf("%q: %v", tc.name, err)
		}
		if d := diskName(canon); d != tc.disk {
			t.Errorf("diskName(%q) = %q, want %q", canon, d, tc.disk)
		}
		if canon != Inbox {
			if back, ok := nameFromDisk(tc.disk); !ok || back != canon {
				t.Errorf("nameFromDisk(%q) = %q, %v", tc.disk, back, ok)
			}
		}
	}
	for _, bad := range []string{"..x", ".", ".a..b", ".&Jjo", ".&AGE-", ".a.b%", "plain", ".INBOX", ".inbox.x"} {
		if n, ok := nameFromDisk(bad); ok {
			t.Errorf("nameFromDisk(%q) = %q", bad, n)
		}
	}
	if b := withUID("1.M2P3.host,S=5,U=9,V=1,X=MFRGG", 4, 8); b != "1.M2P3.host,S=5,X=MFRGG,U=4,V=8" || uidlFromBase(b) != "abc" {
		t.Errorf("withUID = %q", b)
	}
	if got := infoString(sysSeen|sysDraft|sysDeleted, "a"); got != "DSTa" {
		t.Errorf("infoString = %q", got)
	}
	if h := sanitizeHost("a/b:c,d e"); h != `a\057b\072c\054d_e` {
		t.Errorf("sanitizeHost = %q", h)
	}
}
