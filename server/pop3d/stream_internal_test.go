package pop3d

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// referenceEncode is the obvious, whole-message form of dotEncoder: split
// into lines at LF, drop one CR before each LF, stuff, end each line with
// CRLF, and for TOP keep the header, the blank line and bodyLines lines.
func referenceEncode(msg string, top bool, bodyLines int64) string {
	if msg == "" {
		return ".\r\n"
	}
	lines := strings.Split(msg, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1] // the message ended in LF
	}
	var b strings.Builder
	inHeader := true
	for _, l := range lines {
		l = strings.TrimSuffix(l, "\r")
		if top && !inHeader {
			if bodyLines == 0 {
				break
			}
			bodyLines--
		}
		if strings.HasPrefix(l, ".") {
			b.WriteString(".")
		}
		b.WriteString(l)
		b.WriteString("\r\n")
		if l == "" {
			inHeader = false
		}
	}
	b.WriteString(".\r\n")
	return b.String()
}

// encodeChunked runs dotEncoder over msg cut into pieces at cuts.
func encodeChunked(msg string, cuts []int, top bool, bodyLines int64) string {
	var out bytes.Buffer
	w := bufio.NewWriterSize(&out, 16)
	e := newDotEncoder(w, top, bodyLines)
	prev := 0
	for _, c := range append(cuts, len(msg)) {
		if c < prev || e.done {
			continue
		}
		e.write([]byte(msg[prev:c]))
		prev = c
	}
	if err := e.finish(); err != nil {
		panic(err)
	}
	w.Flush()
	return out.String()
}

func TestDotEncoderChunks(t *testing.T) {
	msgs := []string{
		"", ".", "\r", "\n", "\r\n", "a", "a\r", "a\n", ".a\r\n.\r\n", "a\r\r\n", "a\rb", "\r\r\n\n",
		"H: 1\r\n\r\n.b1\r\nb2\r\n", "H: 1\n\nb1\nb2", "H: 1\r\nH2: 2", "..\r\n...\n.\r",
	}
	for _, msg := range msgs {
		for _, top := range []bool{false, true} {
			for n := int64(0); n < 3; n++ {
				if !top && n > 0 {
					continue
				}
				want := referenceEncode(msg, top, n)
				// Every single cut point, and every byte on its own.
				for cut := 0; cut <= len(msg); cut++ {
					if got := encodeChunked(msg, []int{cut}, top, n); got != want {
						t.Errorf("%q top=%v n=%d cut at %d: %q, want %q", msg, top, n, cut, got, want)
					}
				}
				var all []int
				for i := range len(msg) {
					all = append(all, i)
				}
				if got := encodeChunked(msg, all, top, n); got != want {
					t.Errorf("%q top=%v n=%d byte by byte: %q, want %q", msg, top, n, got, want)
				}
			}
		}
	}
}

func TestDotEncoderRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("a.\r\n")
	for i := range 5000 {
		b := make([]byte, rng.IntN(40))
		for j := range b {
			b[j] = alphabet[rng.IntN(len(alphabet))]
		}
		var cuts []int
		for range rng.IntN(5) {
			cuts = append(cuts, rng.IntN(len(b)+1))
		}
		slices.Sort(cuts)
		top, n := rng.IntN(2) == 0, int64(rng.IntN(4))
		if !top {
			n = 0
		}
		msg := string(b)
		if got, want := encodeChunked(msg, cuts, top, n), referenceEncode(msg, top, n); got != want {
			t.Fatalf("case %d: %q cuts %v top=%v n=%d: %q, want %q", i, msg, cuts, top, n, got, want)
		}
	}
}

// FuzzEncode compares the streaming encoder with the reference.
func FuzzEncode(f *testing.F) {
	f.Add("H: 1\r\n\r\n.b\r\n", uint8(3), true, uint8(1))
	f.Add(".\n..\r\r\n", uint8(1), false, uint8(0))
	f.Fuzz(func(t *testing.T, msg string, step uint8, top bool, n uint8) {
		var cuts []int
		if step > 0 {
			for c := int(step); c < len(msg); c += int(step) {
				cuts = append(cuts, c)
			}
		}
		if !top {
			n = 0
		}
		if got, want := encodeChunked(msg, cuts, top, int64(n)), referenceEncode(msg, top, int64(n)); got != want {
			t.Fatalf("%q step %d top=%v n=%d: %q, want %q", msg, step, top, n, got, want)
		}
	})
}

func TestMaildrop(t *testing.T) {
	msgs := []MessageInfo{{10, "a"}, {1 << 33, "bb"}, {0, "ccc"}, {5, strings.Repeat("x", 70)}}
	d, err := newMaildrop(msgs)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range msgs {
		if d.size(i) != m.Size || string(d.uidl(i)) != m.UIDL {
			t.Errorf("message %d: %d %q, want %d %q", i, d.size(i), d.uidl(i), m.Size, m.UIDL)
		}
	}
	if d.total != 15+1<<33 || d.liveCount != 4 {
		t.Errorf("total %d live %d", d.total, d.liveCount)
	}
	d.markDeleted(1)
	d.markDeleted(3)
	d.markDeleted(3)
	if d.liveCount != 2 || d.liveOctets != 10 || fmt.Sprint(d.deletedList()) != "[1 3]" {
		t.Errorf("after DELE: live %d octets %d deleted %v", d.liveCount, d.liveOctets, d.deletedList())
	}
	d.reset()
	if d.liveCount != 4 || d.liveOctets != d.total || len(d.deletedList()) != 0 {
		t.Errorf("after RSET: live %d octets %d", d.liveCount, d.liveOctets)
	}

	for _, bad := range []MessageInfo{{1, ""}, {1, "a b"}, {1, strings.Repeat("x", 71)}, {1, "é"}, {-1, "a"}} {
		if _, err := newMaildrop([]MessageInfo{bad}); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// TestMaildropFootprint pins the per-message cost documented in doc.go:
// 8 bytes, the UIDL's bytes and 2 bits.
func TestMaildropFootprint(t *testing.T) {
	const n = 10000
	msgs := make([]MessageInfo, n)
	for i := range msgs {
		msgs[i] = MessageInfo{Size: int64(1000 + i), UIDL: fmt.Sprintf("%024x", i)}
	}
	d, err := newMaildrop(msgs)
	if err != nil {
		t.Fatal(err)
	}
	per := float64(d.footprint()) / n
	t.Logf("maildrop of %d messages with 24-byte UIDLs: %d bytes, %.2f bytes/message", n, d.footprint(), per)
	if per > 8+24+1 {
		t.Errorf("%.2f bytes/message, want at most 33", per)
	}
}

func TestErrLine(t *testing.T) {
	for _, tc := range []struct{ code, text, want string }{
		{"", "x", "-ERR x"},
		{"AUTH", "", "-ERR [AUTH]"},
		{"SYS/TEMP", "a\r\nb", "-ERR [SYS/TEMP] a  b"},
		{"A]B C", "t", "-ERR [A_B_C] t"},
	} {
		if got := errLine(tc.code, tc.text); got != tc.want {
			t.Errorf("errLine(%q, %q) = %q, want %q", tc.code, tc.text, got, tc.want)
		}
	}
	if got := errLine("AUTH", strings.Repeat("x", 1000)); len(got) != maxResponseLine-2 {
		t.Errorf("long text: %d octets, want %d", len(got), maxResponseLine-2)
	}
}
