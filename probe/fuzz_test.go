package probe

import (
	"net"
	"testing"
)

// FuzzPOP3Reply feeds arbitrary server output to the POP3 client's reply
// and listing parsers: no panic, bounded lines, codes parsed.
func FuzzPOP3Reply(f *testing.F) {
	for _, s := range []string{"+OK\r\n", "-ERR [IN-USE] locked\r\n", "-ERR [SYS/TEMP\r\n", "+OK\r\nTOP\r\n..x\r\n.\r\n", "-ERR\r\n", "+ \r\n", "\x00\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		client, server := net.Pipe()
		go func() {
			server.Write(data)
			server.Close()
		}()
		defer client.Close()
		p := &pop3Client{newLineConn(client)}
		if _, err := p.status(); err != nil {
			if pe, ok := err.(*pop3Error); ok && len(pe.Code) > maxLine {
				t.Fatalf("code of %d bytes", len(pe.Code))
			}
			return
		}
		lines, _ := p.lines()
		for _, l := range lines {
			if len(l) > maxLine {
				t.Fatalf("line of %d bytes", len(l))
			}
		}
	})
}
