package delivery

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"mime/multipart"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"time"

	"mailsetup/server/queue"
)

// notify tells the sender about recipients that failed (or, with delay,
// that are still being tried): a delivery status notification (RFC 3464
// multipart/report) into the sender's own mailbox. A message with the
// null sender (itself a notification) gets none (RFC 5321 §4.5.5).
func (a *Agent) notify(env queue.Envelope, rcpts []queue.Recipient, delay bool) {
	if env.From == "" || a.opts.Notify == nil {
		return
	}
	head, _ := a.headerOf(env.ID)
	msg := buildDSN(a.opts.Hostname, env, rcpts, delay, head, time.Now())
	if err := a.opts.Notify(env.From, msg); err != nil {
		a.log.Warn("cannot deliver a delivery status notification to the sender", "id", env.ID, "sender", env.From, "err", err)
	}
}

// headerOf returns the header of a queued message (for text/rfc822-headers).
func (a *Agent) headerOf(id string) ([]byte, error) {
	msg, err := a.readMessage(id)
	if err != nil {
		return nil, err
	}
	if i := bytes.Index(msg, []byte("\r\n\r\n")); i >= 0 {
		return msg[:i+2], nil
	}
	if i := bytes.Index(msg, []byte("\n\n")); i >= 0 {
		return msg[:i+1], nil
	}
	return msg, nil
}

// buildDSN writes the notification: a text for people, the
// message/delivery-status part for programs, and the original header.
func buildDSN(hostname string, env queue.Envelope, rcpts []queue.Recipient, delay bool, origHeader []byte, now time.Time) []byte {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	subject := "Undelivered mail returned to sender"
	action, status := "failed", "5.0.0"
	var text strings.Builder
	if delay {
		subject = "Delayed mail (still being retried)"
		action, status = "delayed", "4.0.0"
		fmt.Fprintf(&text, "Your message of %s has not been delivered yet to the recipients below.\r\n"+
			"This server keeps trying; you need not send it again. You will hear from us again\r\n"+
			"only if it finally cannot be delivered.\r\n\r\n", env.Received.UTC().Format(time.RFC1123Z))
	} else {
		fmt.Fprintf(&text, "Your message of %s could not be delivered to the recipients below.\r\n"+
			"The reason is the other side's reply; check the address for typing mistakes.\r\n\r\n", env.Received.UTC().Format(time.RFC1123Z))
	}
	for _, r := range rcpts {
		fmt.Fprintf(&text, "  %s\r\n", r.Address)
		if r.Host != "" {
			fmt.Fprintf(&text, "    the mail server %s said: %s\r\n", r.Host, r.Reply)
		} else {
			fmt.Fprintf(&text, "    %s\r\n", r.Reply)
		}
	}
	h := textproto.MIMEHeader{}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Transfer-Encoding", "8bit")
	w, _ := mw.CreatePart(h)
	w.Write([]byte(text.String()))

	var ds strings.Builder
	fmt.Fprintf(&ds, "Reporting-MTA: dns; %s\r\n", hostname)
	fmt.Fprintf(&ds, "X-Queue-ID: %s\r\n", env.ID)
	fmt.Fprintf(&ds, "Arrival-Date: %s\r\n", env.Received.UTC().Format(time.RFC1123Z))
	for _, r := range rcpts {
		ds.WriteString("\r\n")
		fmt.Fprintf(&ds, "Final-Recipient: rfc822; %s\r\n", r.Address)
		fmt.Fprintf(&ds, "Action: %s\r\n", action)
		fmt.Fprintf(&ds, "Status: %s\r\n", statusOf(r.Reply, status))
		if r.Host != "" {
			fmt.Fprintf(&ds, "Remote-MTA: dns; %s\r\n", r.Host)
		}
		if code := r.Reply; len(code) >= 3 && code[0] >= '2' && code[0] <= '5' {
			fmt.Fprintf(&ds, "Diagnostic-Code: smtp; %s\r\n", oneLine(r.Reply))
		} else if r.Reply != "" {
			fmt.Fprintf(&ds, "Diagnostic-Code: X-mailsetup; %s\r\n", oneLine(r.Reply))
		}
		if !r.Time.IsZero() {
			fmt.Fprintf(&ds, "Last-Attempt-Date: %s\r\n", r.Time.UTC().Format(time.RFC1123Z))
		}
	}
	h = textproto.MIMEHeader{}
	h.Set("Content-Type", "message/delivery-status")
	w, _ = mw.CreatePart(h)
	w.Write([]byte(ds.String()))

	if len(origHeader) > 0 {
		h = textproto.MIMEHeader{}
		h.Set("Content-Type", "text/rfc822-headers")
		w, _ = mw.CreatePart(h)
		w.Write(bytes.ReplaceAll(bytes.ReplaceAll(origHeader, []byte("\r\n"), []byte("\n")), []byte("\n"), []byte("\r\n")))
	}
	mw.Close()

	var out bytes.Buffer
	b := make([]byte, 8)
	rand.Read(b)
	fmt.Fprintf(&out, "From: Mail Delivery System <MAILER-DAEMON@%s>\r\n", hostname)
	fmt.Fprintf(&out, "To: <%s>\r\n", env.From)
	fmt.Fprintf(&out, "Subject: %s\r\n", subject)
	fmt.Fprintf(&out, "Date: %s\r\n", now.UTC().Format(time.RFC1123Z))
	fmt.Fprintf(&out, "Message-ID: <dsn-%s-%s@%s>\r\n", env.ID, hex.EncodeToString(b), hostname)
	fmt.Fprintf(&out, "Auto-Submitted: auto-replied\r\n")
	fmt.Fprintf(&out, "MIME-Version: 1.0\r\n")
	fmt.Fprintf(&out, "Content-Type: multipart/report; report-type=delivery-status; boundary=%q\r\n\r\n", mw.Boundary())
	out.Write(body.Bytes())
	return out.Bytes()
}

// statusOf takes the enhanced status code (RFC 3463) out of a reply
// ("550 5.1.1 ..."), or returns def.
func statusOf(reply, def string) string {
	f := strings.Fields(reply)
	if len(f) >= 2 && len(f[1]) >= 5 && f[1][1] == '.' && (f[1][0] == '2' || f[1][0] == '4' || f[1][0] == '5') {
		return f[1]
	}
	return def
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("queue.smarthost = %q: want host:port", addr)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, fmt.Errorf("queue.smarthost = %q: bad port", addr)
	}
	return host, port, nil
}

func tlsWithRoots(roots *x509.CertPool) *tls.Config {
	return &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
}
