package imapd_test

import (
	"os"
	"testing"

	"github.com/emersion/go-imap/v2/imapclient"
)

func TestZZDebug(t *testing.T) {
	r := start(t)
	for _, s := range []string{"a", "b", "c"} {
		r.deliver(t, "INBOX", s, s)
	}
	c := r.dial(t, &imapclient.Options{DebugWriter: os.Stderr})
	_, err := c.Select("INBOX", nil).Wait()
	t.Log(err)
}
