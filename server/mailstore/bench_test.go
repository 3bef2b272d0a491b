package mailstore_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"mailsetup/server/mailstore"
)

// fill10k delivers 10,000 messages (a third flagged, some with keywords)
// into the INBOX of a new root and returns the root.
func fill10k(b *testing.B) string {
	b.Helper()
	root := b.TempDir()
	u := openUser(b, root)
	body := "From: a@example.test\r\nSubject: test\r\n\r\n" + strings.Repeat("x", 200) + "\r\n"
	for i := range 10000 {
		var opts mailstore.DeliverOptions
		switch i % 6 {
		case 0:
			opts.Flags = []string{`\Seen`}
		case 3:
			opts.Flags = []string{`\Seen`, "$Forwarded"}
		}
		if _, err := u.Deliver("INBOX", strings.NewReader(body), opts); err != nil {
			b.Fatal(err)
		}
	}
	return root
}

// BenchmarkOpen10k loads a mailbox of 10,000 messages in a fresh Store:
// reading and parsing the index and listing new/ and cur/ once.
func BenchmarkOpen10k(b *testing.B) {
	root := fill10k(b)
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	heap0 := ms.HeapAlloc
	var keep *mailstore.Mailbox
	for b.Loop() {
		keep = mailbox(b, openUser(b, root), "INBOX")
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(int64(ms.HeapAlloc)-int64(heap0))/10000, "retained-B/msg")
	if keep.UIDNext() != 10001 {
		b.Fatalf("UIDNext %d", keep.UIDNext())
	}
	runtime.KeepAlive(keep)
}

// BenchmarkMessages10k takes a snapshot of a loaded 10,000-message mailbox
// (what a POP3 login or IMAP SELECT asks for).
func BenchmarkMessages10k(b *testing.B) {
	root := fill10k(b)
	m := mailbox(b, openUser(b, root), "INBOX")
	for b.Loop() {
		msgs, err := m.Messages()
		if err != nil || len(msgs) != 10000 {
			b.Fatal(len(msgs), err)
		}
	}
}

// BenchmarkDeliver delivers a 4 KiB message, without and with fsync.
func BenchmarkDeliver(b *testing.B) {
	body := "From: a@example.test\r\nSubject: bench\r\n\r\n" + strings.Repeat(strings.Repeat("y", 78)+"\r\n", 51)
	for _, nosync := range []bool{true, false} {
		b.Run(fmt.Sprintf("nosync=%v", nosync), func(b *testing.B) {
			s, err := mailstore.Open(b.TempDir(), mailstore.Options{Hostname: "bench", NoSync: nosync})
			if err != nil {
				b.Fatal(err)
			}
			u, err := s.User(addr)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := u.Deliver("INBOX", strings.NewReader(body), mailstore.DeliverOptions{InternalDate: time.Unix(1700000000, 0)}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkImport stores a 4 KiB message with a given UIDL, durably (with
// fsync), as an import does: one Deliver per message ("single") against
// a Batch of DefaultBatchLimits ("batch"); ns/op is per message.
func BenchmarkImport(b *testing.B) {
	body := "From: a@example.test\r\nSubject: bench\r\n\r\n" + strings.Repeat(strings.Repeat("y", 78)+"\r\n", 51)
	date := time.Unix(1700000000, 0)
	for _, mode := range []string{"single", "batch"} {
		b.Run(mode, func(b *testing.B) {
			s, err := mailstore.Open(b.TempDir(), mailstore.Options{Hostname: "bench"})
			if err != nil {
				b.Fatal(err)
			}
			u, err := s.User(addr)
			if err != nil {
				b.Fatal(err)
			}
			batch, err := u.NewBatch("INBOX", mailstore.BatchLimits{})
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(body)))
			i := 0
			for b.Loop() {
				i++
				opts := mailstore.DeliverOptions{InternalDate: date, UIDL: fmt.Sprintf("old-%d", i)}
				if mode == "single" {
					if _, err := u.Deliver("INBOX", strings.NewReader(body), opts); err != nil {
						b.Fatal(err)
					}
					continue
				}
				if err := batch.Add(strings.NewReader(body), opts); err != nil {
					b.Fatal(err)
				}
				if batch.Full() {
					if _, err := batch.Commit(); err != nil {
						b.Fatal(err)
					}
				}
			}
			if _, err := batch.Commit(); err != nil {
				b.Fatal(err)
			}
		})
	}
}
