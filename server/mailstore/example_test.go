package mailstore_test

import (
	"fmt"
	"log"
	"os"
	"strings"

	"mailsetup/server/mailstore"
)

func Example() {
	root, err := os.MkdirTemp("", "mailstore-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(root)

	store, err := mailstore.Open(root, mailstore.Options{Hostname: "mx.example.test"})
	if err != nil {
		log.Fatal(err)
	}
	user, err := store.User("john@example.test")
	if err != nil {
		log.Fatal(err)
	}
	// SMTP delivery; bare LF is stored as CRLF.
	msg, err := user.Deliver("INBOX", strings.NewReader("Subject: hi\n\nhello\n"), mailstore.DeliverOptions{MaxSize: 10 << 20})
	if err != nil {
		log.Fatal(err)
	}
	// Import from an old POP server keeps its UIDL.
	old, err := user.Deliver("INBOX", strings.NewReader("Subject: old\r\n\r\n"), mailstore.DeliverOptions{UIDL: "0000a1b2c3"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(msg.UID, msg.Size, old.UID, old.UIDL)

	// A POP3 session: list, retrieve, mark, delete at QUIT.
	inbox, err := user.Mailbox("INBOX")
	if err != nil {
		log.Fatal(err)
	}
	msgs, err := inbox.Messages()
	if err != nil {
		log.Fatal(err)
	}
	for _, m := range msgs {
		f, err := inbox.Open(m.UID)
		if err != nil {
			log.Fatal(err)
		}
		f.Close()
	}
	if err := inbox.MarkRetrieved([]uint32{1, 2}, msgs[0].InternalDate); err != nil {
		log.Fatal(err)
	}
	gone, err := inbox.Expunge([]uint32{1})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(msgs), gone)
	// Output:
	// 1 22 2 0000a1b2c3
	// 2 [1]
}
