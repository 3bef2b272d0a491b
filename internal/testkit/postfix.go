package testkit

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// PostfixMX is a private Postfix on loopback that receives mail for one
// domain (a remote domain's MX in the delivery tests), STARTTLS offered,
// into Maildirs under its directory.
type PostfixMX struct {
	Domain string
	Port   int // SMTP, like port 25
	// SubmissionPort is submission with STARTTLS and AUTH PLAIN against
	// Users (a smarthost); CertFile the servers' certificate (PEM).
	SubmissionPort int
	CertFile       string
	dir            string
	t              testing.TB
}

// PostfixOptions configure StartPostfixMX.
type PostfixOptions struct {
	// Domain whose mail it takes (default "remote.test"); Users are its
	// local parts with a mailbox; the others are unknown (550 5.1.1).
	Domain string
	Users  []string
	// SASLUsers (username: password) may log in on the submission port
	// and relay anywhere; when set, a private Dovecot serves Postfix's
	// SASL, as in the reference servers.
	SASLUsers map[string]string
	// SlowData makes the MX wait a second before answering DATA, so a
	// test can stop the sender while deliveries are in flight.
	SlowData bool
}

// StartPostfixMX starts a private Postfix instance (as root: Postfix's
// daemons drop privileges to the postfix user) and stops it when the
// test ends.
func StartPostfixMX(t testing.TB, o PostfixOptions) *PostfixMX {
	t.Helper()
	Tool(t, "postfix", "postfix")
	if os.Geteuid() != 0 {
		if os.Getenv(RequireEnv) != "" {
			t.Fatal("a private Postfix needs root")
		}
		t.Skip("a private Postfix needs root")
	}
	if o.Domain == "" {
		o.Domain = "remote.test"
	}
	// Not t.TempDir: the delivery agent runs as nobody and must reach it.
	dir, err := os.MkdirTemp("", "postfix-mx-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755)
	p := &PostfixMX{Domain: o.Domain, dir: dir, t: t, Port: FreePort(t), SubmissionPort: FreePort(t)}
	for _, d := range []string{"etc", "queue", "data", "log", "mail", "ssl"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	run := func(name string, args ...string) {
		t.Helper()
		// Output to a file: postfix start leaves daemons holding it.
		logf, err := os.CreateTemp(dir, "run-*.log")
		if err != nil {
			t.Fatal(err)
		}
		defer logf.Close()
		cmd := exec.Command(name, args...)
		cmd.Stdout, cmd.Stderr = logf, logf
		err = cmd.Run()
		out, _ := os.ReadFile(logf.Name())
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
	}
	run("chown", "postfix", filepath.Join(dir, "data"))
	run("chown", "65534:65534", filepath.Join(dir, "mail"))
	p.CertFile = filepath.Join(dir, "ssl", "cert.pem")
	key := filepath.Join(dir, "ssl", "key.pem")
	run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=mx."+o.Domain,
		"-addext", "subjectAltName=DNS:mx."+o.Domain+",DNS:localhost,IP:127.0.0.1", "-keyout", key, "-out", p.CertFile)
	var vmail strings.Builder
	for _, u := range o.Users {
		fmt.Fprintf(&vmail, "%s@%s %s/%s/\n", u, o.Domain, o.Domain, u)
	}
	p.write("etc/vmailbox", vmail.String())
	p.write("etc/access", "")
	main := fmt.Sprintf(`compatibility_level = 3.6
queue_directory = %[1]s/queue
data_directory = %[1]s/data
mail_owner = postfix
setgid_group = postdrop
maillog_file_prefixes = %[1]s/log
maillog_file = %[1]s/log/postfix.log
myhostname = mx.%[2]s
mydomain = %[2]s
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.1/32
alias_maps =
alias_database =
local_recipient_maps =
local_transport = error:local delivery is disabled
default_transport = error:outbound delivery is disabled
relay_transport = error:outbound delivery is disabled
relayhost =
virtual_mailbox_domains = %[2]s
virtual_mailbox_base = %[1]s/mail
virtual_mailbox_maps = texthash:%[1]s/etc/vmailbox
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
virtual_minimum_uid = 1
smtpd_recipient_restrictions = check_recipient_access texthash:%[1]s/etc/access, reject_unauth_destination
smtpd_relay_restrictions = permit_sasl_authenticated, reject_unauth_destination
smtpd_tls_cert_file = %[1]s/ssl/cert.pem
smtpd_tls_key_file = %[1]s/ssl/key.pem
smtpd_tls_security_level = may
smtpd_tls_received_header = yes
smtpd_tls_loglevel = 1
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
default_process_limit = 100
smtputf8_enable = no
`, dir, o.Domain)
	master := fmt.Sprintf(`127.0.0.1:%d inet n - n - - smtpd
127.0.0.1:%d inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_recipient_restrictions=permit_sasl_authenticated,reject
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
`, p.Port, p.SubmissionPort)
	if len(o.SASLUsers) > 0 {
		authPort := FreePort(t)
		p.startDovecotAuth(o.SASLUsers, authPort)
		main += fmt.Sprintf("smtpd_sasl_type = dovecot\nsmtpd_sasl_path = inet:127.0.0.1:%d\nsmtpd_sasl_security_options = noanonymous\n", authPort)
	}
	if o.SlowData {
		main += "smtpd_data_restrictions = sleep 1, permit\n"
	}
	p.write("etc/main.cf", main)
	p.write("etc/master.cf", master)
	t.Cleanup(func() {
		exec.Command("postfix", "-c", filepath.Join(dir, "etc"), "stop").Run()
		if pid, err := os.ReadFile(filepath.Join(dir, "dovecot", "run", "master.pid")); err == nil {
			if n, err := strconv.Atoi(strings.TrimSpace(string(pid))); err == nil {
				if proc, err := os.FindProcess(n); err == nil {
					proc.Signal(os.Interrupt)
				}
			}
		}
		if !t.Failed() {
			os.RemoveAll(dir)
		} else {
			t.Logf("the private Postfix's files are kept in %s", dir)
		}
	})
	run("postfix", "-c", filepath.Join(dir, "etc"), "start")
	deadline := time.Now().Add(15 * time.Second)
	for _, port := range []int{p.Port, p.SubmissionPort} {
		for {
			c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the private Postfix does not listen on %d:\n%s", port, p.Log())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return p
}

// startDovecotAuth starts a private Dovecot serving only SASL for Postfix.
func (p *PostfixMX) startDovecotAuth(users map[string]string, port int) {
	t := p.t
	Tool(t, "dovecot", "dovecot-core")
	dv := filepath.Join(p.dir, "dovecot")
	os.MkdirAll(filepath.Join(dv, "run"), 0o755)
	var pw strings.Builder
	for u, pass := range users {
		fmt.Fprintf(&pw, "%s:{PLAIN}%s::::::\n", u, pass)
	}
	p.write("dovecot/users", pw.String())
	p.write("dovecot/dovecot.conf", fmt.Sprintf(`instance_name = mx-auth-%d
base_dir = %[2]s/run
state_dir = %[2]s/run
protocols =
listen = 127.0.0.1
log_path = %[2]s/dovecot.log
default_login_user = dovenull
default_internal_user = dovecot
ssl = no
auth_mechanisms = plain login
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%%u %[2]s/users
}
userdb {
  driver = static
  args = uid=65534 gid=65534 home=/nonexistent
}
service auth {
  inet_listener {
    address = 127.0.0.1
    port = %[1]d
  }
}
`, port, dv))
	// The daemon keeps the standard streams it is given: a file, never
	// a pipe the test would wait on.
	logf, err := os.Create(filepath.Join(dv, "start.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command("dovecot", "-c", filepath.Join(dv, "dovecot.conf"))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Run(); err != nil {
		out, _ := os.ReadFile(logf.Name())
		t.Fatalf("dovecot (SASL for the private Postfix): %v\n%s", err, out)
	}
}

func (p *PostfixMX) write(rel, content string) {
	p.t.Helper()
	if err := os.WriteFile(filepath.Join(p.dir, rel), []byte(content), 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// Refuse makes RCPT TO address answer reply (e.g. "450 4.2.0 try later");
// an empty reply takes it back. Postfix is reloaded to read it.
func (p *PostfixMX) Refuse(address, reply string) {
	p.t.Helper()
	line := ""
	if reply != "" {
		line = address + " " + reply + "\n"
	}
	p.write("etc/access", line)
	out, err := exec.Command("postfix", "-c", filepath.Join(p.dir, "etc"), "reload").CombinedOutput()
	if err != nil {
		p.t.Fatalf("postfix reload: %v\n%s", err, out)
	}
	time.Sleep(500 * time.Millisecond) // the reload restarts the smtpd processes
}

// Messages returns the messages delivered to local part user.
func (p *PostfixMX) Messages(user string) []string {
	p.t.Helper()
	var out []string
	for _, sub := range []string{"new", "cur"} {
		files, _ := filepath.Glob(filepath.Join(p.dir, "mail", p.Domain, user, sub, "*"))
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				p.t.Fatal(err)
			}
			out = append(out, string(b))
		}
	}
	return out
}

// WaitMessages waits (up to 20 s) until user has at least n messages:
// Postfix stores a message shortly after its 250, not before.
func (p *PostfixMX) WaitMessages(user string, n int) []string {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := p.Messages(user)
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Log returns Postfix's log.
func (p *PostfixMX) Log() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "log", "postfix.log"))
	return string(b)
}

// FreePort returns a TCP port free on 127.0.0.1 just now.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
