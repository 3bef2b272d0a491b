package server

import (
	"io"
	"log/slog"
	"testing"
)

// A reload that raises mail.max_connections divides the descriptors
// again: the web listeners get what the mail listeners leave, never the
// descriptors the mail connections now need.
func TestDivideDescriptorsAfterMoreMail(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := &Config{}
	cfg.Listen.SMTP, cfg.Listen.Submission, cfg.Listen.IMAPS, cfg.Listen.POP3S = "a", "b", "c", "d"
	cfg.Mail.MaxConnections = 200
	cfg.Limits.MaxConnections = 20000
	// 4 listeners x 200 x 2 = 1,600 for mail; 4,096 - 1,600 - 256 - 64 = 2,176 for two web listeners.
	if b := divideDescriptors(4096, cfg, 2, log); b.mail != 1600 || b.web != 1088 {
		t.Fatalf("at start: %+v, want mail 1600, web 1088 each", b)
	}
	cfg.Mail.MaxConnections = 400 // the reload: 3,200 for mail
	if b := divideDescriptors(4096, cfg, 2, log); b.mail != 3200 || b.web != 288 {
		t.Fatalf("after the reload: %+v, want mail 3200, web 288 each", b)
	}
	cfg.Mail.MaxConnections = 1000 // more than there is: the web keeps its minimum
	if b := divideDescriptors(4096, cfg, 2, log); b.web != minWebConns {
		t.Fatalf("over the limit: web %d, want the minimum %d", b.web, minWebConns)
	}
	cfg.Limits.MaxConnections = 100 // a lower http_limits wins where there is room
	cfg.Mail.MaxConnections = 200
	if b := divideDescriptors(4096, cfg, 2, log); b.web != 100 {
		t.Fatalf("http_limits.max_connections 100: web %d", b.web)
	}
	if b := divideDescriptors(0, cfg, 2, log); b.web != 100 {
		t.Fatalf("unknown limit: web %d, want http_limits' 100", b.web)
	}
}
