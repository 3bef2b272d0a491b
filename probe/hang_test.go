package probe

import (
	"context"
	"strings"
	"testing"
	"time"

	"mailsetup/autoconfig"
	"mailsetup/internal/testkit"
)

func tarpitPolicy(t *testing.T) autoconfig.Policy {
	ep := func(proto autoconfig.Protocol, sec autoconfig.Security) autoconfig.Endpoint {
		return autoconfig.Endpoint{Protocol: proto, Host: "127.0.0.1", Port: testkit.Tarpit(t), Security: sec}
	}
	return autoconfig.Policy{Domain: "example.test", Username: autoconfig.FullAddress, Prefer: autoconfig.IMAP,
		IMAP:       []autoconfig.Endpoint{ep(autoconfig.IMAP, autoconfig.TLS), ep(autoconfig.IMAP, autoconfig.STARTTLS)},
		POP3:       []autoconfig.Endpoint{ep(autoconfig.POP3, autoconfig.TLS), ep(autoconfig.POP3, autoconfig.STARTTLS)},
		Submission: []autoconfig.Endpoint{ep(autoconfig.SMTP, autoconfig.STARTTLS), ep(autoconfig.SMTP, autoconfig.TLS)},
	}
}

// TestTarpitsObeyTheTimeout: servers that accept and never greet, on
// every protocol and security, with a password (the logins too): the
// probe ends within its overall timeout (go-smtp's own 5-minute command
// timeout once replaced the probe's deadline), and the cut steps say so.
func TestTarpitsObeyTheTimeout(t *testing.T) {
	pol := tarpitPolicy(t)
	start := time.Now()
	rep, err := Run(context.Background(), Request{Address: "john@example.test", Password: "secret",
		Client: &ClientSettings{Outgoing: Outgoing{Host: "127.0.0.1", Port: pol.Submission[0].Port, Security: "tls"}}},
		Options{Policy: func(string) (autoconfig.Policy, bool) { return pol, true }, Timeout: 2 * time.Second, StepTimeout: 10 * time.Second})
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	if took > 3*time.Second {
		t.Errorf("the probe took %v with a 2 s timeout", took)
	}
	cut := 0
	for _, s := range rep.Steps {
		if s.NotFinished {
			cut++
			if !strings.Contains(s.Error, "not finished") {
				t.Errorf("cut step %q says %q", s.Name, s.Error)
			}
		}
	}
	if cut == 0 {
		t.Errorf("no step is marked not finished: %+v", rep.Steps)
	}
}

// TestCancelGivesThePartialReport: cancelling (SIGTERM in the command, a
// closed request on the web) ends the probe within a second, with the
// steps done and the cut ones marked.
func TestCancelGivesThePartialReport(t *testing.T) {
	pol := tarpitPolicy(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(500*time.Millisecond, cancel)
	start := time.Now()
	rep, err := Run(ctx, Request{Address: "john@example.test", Password: "secret"},
		Options{Policy: func(string) (autoconfig.Policy, bool) { return pol, true }, Timeout: time.Minute, StepTimeout: time.Minute})
	took := time.Since(start)
	if took > 1500*time.Millisecond {
		t.Errorf("the probe took %v after a cancel at 0.5 s", took)
	}
	if err != nil || rep == nil {
		t.Fatalf("want the partial report, got %v, %v", rep, err)
	}
	if !rep.Interrupted || ExitCode(rep) != 3 {
		t.Errorf("interrupted %v, exit code %d", rep.Interrupted, ExitCode(rep))
	}
	if len(rep.Steps) == 0 {
		t.Fatal("no steps in the partial report")
	}
	for _, s := range rep.Steps {
		if !s.NotFinished {
			t.Errorf("step %q against a tarpit finished: %q", s.Name, s.Error)
		}
	}
}
