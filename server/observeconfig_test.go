package server_test

import (
	"strings"
	"testing"

	"mailsetup/server"
)

// TestObserveSourcesValidated: every mistake in [[observe.source]] is
// named with the others: the kind, neither or both of file and syslog,
// a syslog address off loopback or of an unknown scheme, a name used
// twice; a good source loads.
func TestObserveSourcesValidated(t *testing.T) {
	dir := t.TempDir()
	created, err := server.EnsureDefault(dir, server.DefaultPorts())
	if err != nil {
		t.Fatal(err)
	}
	base := mustRead(t, created.ConfigPath)
	good := base + `
[[observe.source]]
kind = "dovecot"
file = "/var/log/dovecot-info.log"

[[observe.source]]
kind = "postfix"
syslog = "unix:///run/mailsetup-postfix.sock"
`
	cfg, err := server.ParseConfig([]byte(good), dir, "test.toml")
	if err != nil {
		t.Fatalf("good sources refused: %v", err)
	}
	if len(cfg.Observe.Sources) != 2 || cfg.Observe.Sources[1].Syslog == "" {
		t.Fatalf("sources: %+v", cfg.Observe.Sources)
	}
	bad := base + `
[[observe.source]]
kind = "exim"
file = "/var/log/exim.log"

[[observe.source]]
kind = "dovecot"

[[observe.source]]
kind = "postfix"
file = "/var/log/mail.log"
syslog = "udp://127.0.0.1:5514"

[[observe.source]]
kind = "postfix"
syslog = "udp://0.0.0.0:514"

[[observe.source]]
kind = "postfix"
syslog = "http://127.0.0.1:80"

[[observe.source]]
name = "twice"
kind = "dovecot"
file = "/a"

[[observe.source]]
name = "twice"
kind = "dovecot"
file = "/b"

[[observe.source]]
kind = "dovecot"
fiel = "/c"
`
	_, err = server.ParseConfig([]byte(bad), dir, "test.toml")
	if err == nil {
		t.Fatal("bad sources accepted")
	}
	for _, want := range []string{
		`observe.source[0].kind = "exim": want dovecot or postfix`,
		"observe.source[1]: set one of file or syslog",
		"observe.source[2]: set one of file or syslog",
		`observe.source[3].syslog = "udp://0.0.0.0:514": listen on a loopback address`,
		`observe.source[4].syslog = "http://127.0.0.1:80": want udp://`,
		`observe.source[6]: the name "twice" is used twice`,
		"observe.source.fiel: unknown key; did you mean `file`?",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
