package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestAuditTail: the console's audit page shows the entries from before
// a restart: the file's last lines, oldest first, broken lines skipped.
func TestAuditTail(t *testing.T) {
	var buf bytes.Buffer
	t0 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	for i := range 3000 {
		line, _ := json.Marshal(AuditEntry{Time: t0.Add(time.Duration(i) * time.Second), Staff: "alice", Action: "lookup", Target: fmt.Sprintf("u%d@example.com", i)})
		buf.Write(append(line, '\n'))
		if i == 2990 {
			buf.WriteString("{not json\n")
		}
	}
	data := buf.Bytes()
	got := ReadAuditTail(bytes.NewReader(data), int64(len(data)), 500)
	if len(got) != 500 || got[0].Target != "u2500@example.com" || got[499].Target != "u2999@example.com" {
		t.Fatalf("tail: %d entries, first %+v, last %+v", len(got), got[0], got[len(got)-1])
	}
	l := &auditLog{}
	l.seed(got)
	l.add(AuditEntry{Staff: "bob", Action: "sign-in"})
	latest := l.latest(3)
	if latest[0].Staff != "bob" || latest[1].Target != "u2999@example.com" || latest[2].Target != "u2998@example.com" {
		t.Errorf("latest after seeding: %+v", latest)
	}
	// A file larger than the window: only its end is read, the cut
	// line skipped.
	big := append(bytes.Repeat([]byte(strings.Repeat("x", 99)+"\n"), 6000), data[len(data)-2000:]...)
	if got := ReadAuditTail(bytes.NewReader(big), int64(len(big)), 10); len(got) == 0 || got[len(got)-1].Target != "u2999@example.com" {
		t.Errorf("big file tail: %+v", got)
	}
}
