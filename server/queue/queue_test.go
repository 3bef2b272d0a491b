package queue_test

import (
	"io"
	"strings"
	"testing"

	"mailsetup/server/queue"
)

func TestEnqueueListOpen(t *testing.T) {
	q, err := queue.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	id, err := q.Enqueue("john@johndoe.com", []string{"x@elsewhere.example"}, strings.NewReader("Subject: hi\r\n\r\nbody\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	list, err := q.List()
	if err != nil || len(list) != 1 || list[0].ID != id || list[0].Size != 21 || list[0].To[0] != "x@elsewhere.example" {
		t.Fatalf("%+v %v", list, err)
	}
	f, err := q.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	if string(b) != "Subject: hi\r\n\r\nbody\r\n" {
		t.Errorf("%q", b)
	}
	if _, err := q.Open("../x"); err == nil {
		t.Error("path escape accepted")
	}
}
