package server

import (
	"fmt"
	"net/netip"
	"testing"

	"mailsetup/probe"
	"mailsetup/server/accounts"
	"mailsetup/server/events"
)

// TestObservableEvents: the observations keep events of real accounts
// (and aliases) only, a bare local part only when it names an account,
// and never the probe's own checks.
func TestObservableEvents(t *testing.T) {
	s, cfg := defaultServer(t)
	if err := s.mail.Accounts().AddAlias(DemoAddress, "info@example.test"); err != nil {
		t.Fatal(err)
	}
	remote := netip.MustParseAddr("203.0.113.7")
	for _, c := range []struct {
		name string
		e    events.Event
		want bool
	}{
		{"account", events.Event{Kind: events.Auth, Account: DemoAddress, Result: "bad-password"}, true},
		{"account, other case", events.Event{Kind: events.Auth, Account: "Demo@Example.test", Result: "ok"}, true},
		{"alias", events.Event{Kind: events.SubmissionRefused, Account: "info@example.test", Result: "auth-required"}, true},
		{"made-up address", events.Event{Kind: events.Auth, Account: "x7qz@example.test", Result: "bad-password"}, false},
		{"bare local part of an account", events.Event{Kind: events.Auth, Username: "demo", Form: "local-part", Result: "username-form"}, true},
		{"domain typo of an account", events.Event{Kind: events.Auth, Username: "demo@exmaple.test", Form: "unknown-domain", Result: "username-form"}, true},
		{"foreign address of nobody", events.Event{Kind: events.Auth, Username: "x7qz@elsewhere.test", Form: "unknown-domain", Result: "username-form"}, false},
		{"bare local part of nobody", events.Event{Kind: events.Auth, Username: "x7qz", Form: "local-part", Result: "username-form"}, false},
		{"the probe's MAIL without AUTH", events.Event{Kind: events.SubmissionRefused, Account: DemoAddress, Result: "auth-required", Client: probe.HeloName}, false},
		{"the probe's bare local part", events.Event{Kind: events.Auth, Username: "demo", Form: "local-part", Result: "username-form", Client: probe.HeloName}, false},
		{"inbound delivery", events.Event{Kind: events.Delivery, Result: "ok", Detail: "local " + DemoAddress}, true},
	} {
		c.e.Remote = remote
		if got := observable(s.mail, c.e); got != c.want {
			t.Errorf("%s: observable = %v, want %v", c.name, got, c.want)
		}
	}
	// An account another process adds (mailsetup user add) is observed
	// from its first event, before any login reloads the accounts.
	other, err := accounts.Open(AccountsPath(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if err := other.Add("john@example.test", "a long enough password"); err != nil {
		t.Fatal(err)
	}
	if !observable(s.mail, events.Event{Kind: events.Auth, Username: "john", Form: "local-part", Result: "username-form", Remote: remote}) {
		t.Error("an account added by another process is not observed")
	}
}

// TestSearchAccounts: part of an address or an alias finds the account.
func TestSearchAccounts(t *testing.T) {
	s, _ := defaultServer(t)
	for _, a := range []string{"john@example.test", "johnny@example.test", "jane@example.test"} {
		if err := s.mail.Accounts().Add(a, "a long enough password"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.mail.Accounts().AddAlias("jane@example.test", "sales@example.test"); err != nil {
		t.Fatal(err)
	}
	for q, want := range map[string]string{
		"john":   "[john@example.test johnny@example.test]",
		"sales":  "[jane@example.test]",
		"nobody": "[]",
	} {
		if got := fmt.Sprint(s.mail.Search(q, 20)); got != want {
			t.Errorf("search %q = %s, want %s", q, got, want)
		}
	}
	if got := s.mail.Search("example", 2); len(got) != 2 {
		t.Errorf("limit 2: %v", got)
	}
}

// defaultServer builds (without serving) an embedded default in a
// temporary directory.
func defaultServer(t *testing.T) (*Server, *Config) {
	t.Helper()
	created, err := EnsureDefault(t.TempDir(), DefaultPorts())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(created.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s, cfg
}
