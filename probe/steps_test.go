package probe

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"mailsetup/autoconfig"
	"mailsetup/internal/testkit"
)

// TestStepsOrderedByFields: the report lists the steps by kind
// (stepOrder), connections in the policy's order, the incoming port's
// security before the outgoing one's, logins in the order they are
// tried; every step carries its kind and endpoint, whatever order the
// concurrent steps finished in.
func TestStepsOrderedByFields(t *testing.T) {
	const host = "127.0.0.1"
	p1, p2, p3, p4 := closedPort(t), closedPort(t), closedPort(t), closedPort(t)
	ep := func(proto autoconfig.Protocol, port int, sec autoconfig.Security) autoconfig.Endpoint {
		return autoconfig.Endpoint{Protocol: proto, Host: host, Port: port, Security: sec}
	}
	pol := autoconfig.Policy{Domain: "example.test", Username: autoconfig.FullAddress, Prefer: autoconfig.IMAP,
		IMAP:       []autoconfig.Endpoint{ep(autoconfig.IMAP, p1, autoconfig.TLS), ep(autoconfig.IMAP, p2, autoconfig.STARTTLS)},
		POP3:       []autoconfig.Endpoint{ep(autoconfig.POP3, p3, autoconfig.TLS)},
		Submission: []autoconfig.Endpoint{ep(autoconfig.SMTP, p4, autoconfig.STARTTLS)},
	}
	// The client uses POP3 (so its login comes first) and reports the
	// other connection security on both ports (so both are checked live).
	client := &ClientSettings{
		Incoming: Incoming{Protocol: "pop3", Host: host, Port: p3, Security: "starttls"},
		Outgoing: Outgoing{Host: host, Port: p4, Security: "tls"},
	}
	type want struct {
		kind StepKind
		e    *Endpoint
	}
	at := func(proto autoconfig.Protocol, port int, sec autoconfig.Security) *Endpoint {
		e := fromPolicy(ep(proto, port, sec))
		return &e
	}
	wants := []want{
		{KindCompare, nil},
		{KindConnect, at(autoconfig.IMAP, p1, autoconfig.TLS)},
		{KindConnect, at(autoconfig.IMAP, p2, autoconfig.STARTTLS)},
		{KindConnect, at(autoconfig.POP3, p3, autoconfig.TLS)},
		{KindConnect, at(autoconfig.SMTP, p4, autoconfig.STARTTLS)},
		{KindSecurityMode, at(autoconfig.POP3, p3, autoconfig.STARTTLS)},
		{KindSecurityMode, at(autoconfig.SMTP, p4, autoconfig.TLS)},
		{KindLogin, at(autoconfig.POP3, p3, autoconfig.TLS)},
		{KindLogin, at(autoconfig.IMAP, p1, autoconfig.TLS)},
		{KindLogin, at(autoconfig.SMTP, p4, autoconfig.STARTTLS)},
	}
	opts := Options{Policy: func(string) (autoconfig.Policy, bool) { return pol, true }}
	for range 5 {
		rep, err := Run(context.Background(), Request{Address: "john@example.test", Password: "secret", Client: client}, opts)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Steps) != len(wants) {
			t.Fatalf("steps %q, want %d", stepNames(rep), len(wants))
		}
		for i, w := range wants {
			s := rep.Steps[i]
			if s.Kind != w.kind || (s.Endpoint == nil) != (w.e == nil) || (w.e != nil && *s.Endpoint != *w.e) {
				t.Fatalf("step %d: %q kind %q endpoint %v, want kind %q endpoint %v\nsteps %q", i, s.Name, s.Kind, s.Endpoint, w.kind, w.e, stepNames(rep))
			}
		}
		// The names stay as before: the kind and the endpoint.
		for _, i := range []int{1, 7} {
			if s := rep.Steps[i]; s.Name != string(s.Kind)+" "+s.Endpoint.String() {
				t.Errorf("step name %q", s.Name)
			}
		}
	}
}

// TestStepJSON: a step's JSON keeps its fields and adds kind and
// endpoint (endpoint left out when there is none).
func TestStepJSON(t *testing.T) {
	e := fromPolicy(autoconfig.Endpoint{Protocol: autoconfig.IMAP, Host: "imap.example.test", Port: 993, Security: autoconfig.TLS})
	for _, c := range []struct {
		step Step
		want string
	}{
		{endpointStep(KindConnect, autoconfig.Endpoint{Protocol: autoconfig.IMAP, Host: "imap.example.test", Port: 993, Security: autoconfig.TLS}),
			`{"name":"connect imap imap.example.test:993 tls","kind":"connect","endpoint":{"protocol":"imap","host":"imap.example.test","port":993,"security":"tls"},"severity":"ok","duration_ns":0}`},
		{Step{Name: "login imap imap.example.test:993 tls", Kind: KindLogin, Endpoint: &e, Evidence: []string{"login accepted"}},
			`{"name":"login imap imap.example.test:993 tls","kind":"login","endpoint":{"protocol":"imap","host":"imap.example.test","port":993,"security":"tls"},"severity":"ok","duration_ns":0,"evidence":["login accepted"]}`},
		{Step{Name: "dns records", Kind: KindDNS, Error: "timeout"},
			`{"name":"dns records","kind":"dns","severity":"ok","duration_ns":0,"error":"timeout"}`},
	} {
		b, err := json.Marshal(c.step)
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != c.want {
			t.Errorf("JSON\n%s\nwant\n%s", b, c.want)
		}
		var back Step
		if err := json.Unmarshal(b, &back); err != nil || back.Kind != c.step.Kind || !slices.Equal(back.Evidence, c.step.Evidence) ||
			(back.Endpoint == nil) != (c.step.Endpoint == nil) || (back.Endpoint != nil && *back.Endpoint != *c.step.Endpoint) {
			t.Errorf("round trip: %+v (%v), want %+v", back, err, c.step)
		}
	}
}

// TestWebHostDownWarnsOnce: without the web host answering, the
// autoconfig document and the Autodiscover answer both fail, and the
// report carries one warning that says so once.
func TestWebHostDownWarnsOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing answers there
	pol := testkit.IMAPFirst()
	pol.IMAP, pol.POP3, pol.Submission = nil, nil, nil
	pol.Web.BaseURL = fmt.Sprintf("https://127.0.0.1:%d", port)
	rep, err := Run(context.Background(), Request{Address: "john@" + pol.Domain}, Options{
		Policy: func(d string) (autoconfig.Policy, bool) { return pol, d == pol.Domain }, StepTimeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(rep.Findings); !slices.Equal(got, []string{"autoconfig.unreachable"}) {
		t.Fatalf("findings %v, want one autoconfig.unreachable\n%+v", got, rep.Steps)
	}
	f := rep.Findings[0]
	if strings.Count(f.Staff, "make the autoconfig web host answer") != 1 || strings.Count(f.Fix, "enter the settings by hand") != 1 || len(f.Evidence) < 2 {
		t.Errorf("want the warning said once with both failures as evidence: %+v", f)
	}
}
