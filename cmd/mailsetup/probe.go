package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"mailsetup/autoconfig"
	"mailsetup/probe"
	"mailsetup/server"
)

// probeExitUnknown is the monitoring-plugin UNKNOWN: the probe could not
// run (bad arguments, no config, bad address, unknown domain).
const probeExitUnknown = 3

const probeHelp = `usage: mailsetup probe EMAIL [flags]
       mailsetup probe EMAIL --clients --resolver HOST:PORT [flags]
       mailsetup probe --domain DOMAIN --resolver HOST:PORT [flags]

Checks EMAIL's settings: the servers of its domain's policy (TLS,
certificate, submission refuses mail without login), with a password the
logins (IMAP, POP3, SMTP; read-only, nothing is sent or deleted), with
--resolver the DNS records, the published autoconfig document, and with
client settings what the customer's program shows, field by field.

  --config FILE, --data DIR   the config with the domain policies
  --password-stdin            read the password from the first line of stdin
                              (or set MAILSETUP_PROBE_PASSWORD); never a flag
  --settings FILE.json        the client's settings (JSON, see the README);
                              the flags below override its fields
  --in-proto imap|pop3 --in-host H --in-port N --in-security ssl|starttls|none
  --in-user U --leave-on-server[=false] --delete-after DAYS (0: never)
  --out-host H --out-port N --out-security ssl|starttls|none
  --out-auth[=false] --out-user U
  --resolver HOST:PORT        DNS server for the DNS checks (none: skipped)
  --clients                   instead: what each mail program (Thunderbird,
                              Android, Outlook, Apple, PACC, msmtp/mpop)
                              would set up for EMAIL, source by source
                              (needs --resolver)
  --domain DOMAIN             instead of EMAIL: check the domain as a whole,
                              every record of mailsetup records against DNS,
                              the autoconfig/autodiscover/ua-auto-config
                              hosts over HTTPS and their documents
                              (needs --resolver)
  --https-port N --http-port N  with --clients/--domain: fetch the documents
                              from these ports instead of 443 and 80
  --discover                  for a domain without a policy, find the settings
                              as mail clients do (Thunderbird autoconfig, then
                              Outlook Autodiscover, then with --resolver the
                              SRV records) and check those servers
  --ca FILE                   also trust the CA certificates in FILE (PEM)
  --timeout DURATION          the whole probe (default 30s)
  --json                      print the report as JSON

Exit status: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (could not run).
`

// optBool is a flag that records whether it was given.
type optBool struct{ p **bool }

func (o optBool) String() string {
	if o.p == nil || *o.p == nil {
		return ""
	}
	return strconv.FormatBool(**o.p)
}

func (o optBool) Set(s string) error {
	v, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("want true or false")
	}
	*o.p = &v
	return nil
}

func (o optBool) IsBoolFlag() bool { return true }

// cmdProbe runs `mailsetup probe` and returns its exit status.
func cmdProbe(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	code, err := probeMain(ctx, args, stdin, stdout, nil)
	var help helpRequest
	switch {
	case err == nil:
		return code
	case errors.As(err, &help):
		fmt.Fprint(stdout, probeHelp)
		return 0
	}
	// One "probe: " prefix, whether or not the error has its own (the
	// probe package's errors and usage errors do).
	fmt.Fprintf(stderr, "mailsetup probe: %s\n", strings.TrimPrefix(err.Error(), "probe: "))
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprint(stderr, probeHelp)
	}
	return probeExitUnknown
}

// probeMain parses args and runs the probe. tune, when set, adjusts the
// options just before the run (tests set the probe's testing hooks).
func probeMain(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer, tune func(*probe.Options)) (int, error) {
	a, err := parseProbeArgs(args)
	if err != nil {
		return 0, err
	}
	if a.domain != "" || a.clients {
		return a.runClients(ctx, stdout)
	}
	settings, err := a.clientSettings()
	if err != nil {
		return 0, err
	}
	password, err := a.password(stdin)
	if err != nil {
		return 0, err
	}
	opts, err := a.options()
	if err != nil {
		return 0, err
	}
	if tune != nil {
		tune(&opts)
	}
	rep, err := probe.Run(ctx, probe.Request{Address: a.email, Password: password, Client: settings}, opts)
	if err != nil {
		return 0, err
	}
	if err := writeProbeReport(stdout, rep, a.asJSON); err != nil {
		return 0, fmt.Errorf("writing the report: %w", err)
	}
	return probe.ExitCode(rep), nil
}

// probeArgs is the probe's command line.
type probeArgs struct {
	common
	email                     string
	pwStdin, asJSON, discover bool
	// domain (--domain) and clients (--clients) run the domain check and
	// the client simulation instead of the settings check (clients.go).
	domain                         string
	clients                        bool
	httpsPort, httpPort            int
	settingsFile, resolver, caFile string
	timeout                        time.Duration
	// What the client shows, field by field: each given one overrides
	// the --settings file's. The numbers are checked after parsing.
	in                        probe.Incoming
	out                       probe.Outgoing
	inPort, outPort, delAfter string
	leave, auth               *bool
}

// parseProbeArgs reads the flags, anywhere, and the one EMAIL.
func parseProbeArgs(args []string) (*probeArgs, error) {
	a := &probeArgs{}
	rest, err := parseFlags("probe", args, &a.common, func(fs *flag.FlagSet) {
		fs.BoolVar(&a.pwStdin, "password-stdin", false, "")
		fs.BoolVar(&a.asJSON, "json", false, "")
		fs.BoolVar(&a.discover, "discover", false, "")
		fs.StringVar(&a.domain, "domain", "", "")
		fs.BoolVar(&a.clients, "clients", false, "")
		fs.IntVar(&a.httpsPort, "https-port", 0, "")
		fs.IntVar(&a.httpPort, "http-port", 0, "")
		fs.StringVar(&a.settingsFile, "settings", "", "")
		fs.StringVar(&a.resolver, "resolver", "", "")
		fs.StringVar(&a.caFile, "ca", "", "")
		fs.DurationVar(&a.timeout, "timeout", probe.DefaultTimeout, "")
		fs.StringVar(&a.in.Protocol, "in-proto", "", "")
		fs.StringVar(&a.in.Host, "in-host", "", "")
		fs.StringVar(&a.inPort, "in-port", "", "")
		fs.StringVar(&a.in.Security, "in-security", "", "")
		fs.StringVar(&a.in.Username, "in-user", "", "")
		fs.Var(optBool{&a.leave}, "leave-on-server", "")
		fs.StringVar(&a.delAfter, "delete-after", "", "")
		fs.StringVar(&a.out.Host, "out-host", "", "")
		fs.StringVar(&a.outPort, "out-port", "", "")
		fs.StringVar(&a.out.Security, "out-security", "", "")
		fs.Var(optBool{&a.auth}, "out-auth", "")
		fs.StringVar(&a.out.Username, "out-user", "", "")
	})
	switch {
	case err != nil:
		return nil, err
	case a.domain != "" && len(rest) > 0:
		return nil, usageError{"probe", fmt.Sprintf("--domain %s checks a whole domain: drop the EMAIL %q", a.domain, rest[0])}
	case a.domain != "" && a.clients:
		return nil, usageError{"probe", "--clients takes an EMAIL, not --domain"}
	case a.domain != "":
		return a, nil
	case len(rest) == 0:
		return nil, usageError{"probe", "no EMAIL given"}
	case len(rest) > 1:
		return nil, usageError{"probe", fmt.Sprintf("unexpected argument %q", rest[1])}
	}
	a.email = rest[0]
	return a, nil
}

// clientSettings is what the customer's program shows: the --settings
// file with the flags over it, or nil when neither says anything.
func (a *probeArgs) clientSettings() (*probe.ClientSettings, error) {
	s, given, err := readClientSettings(a.settingsFile)
	if err != nil {
		return nil, err
	}
	for _, f := range []struct {
		dst *string
		v   string
	}{
		{&s.Incoming.Protocol, a.in.Protocol}, {&s.Incoming.Host, a.in.Host},
		{&s.Incoming.Security, a.in.Security}, {&s.Incoming.Username, a.in.Username},
		{&s.Outgoing.Host, a.out.Host}, {&s.Outgoing.Security, a.out.Security}, {&s.Outgoing.Username, a.out.Username},
	} {
		if f.v != "" {
			*f.dst, given = f.v, true
		}
	}
	for _, p := range []struct {
		name, v string
		dst     *int
	}{
		{"in-port", a.inPort, &s.Incoming.Port},
		{"out-port", a.outPort, &s.Outgoing.Port},
	} {
		if p.v == "" {
			continue
		}
		n, err := strconv.Atoi(p.v)
		if err != nil || n < 1 || n > 65535 {
			return nil, usageError{"probe", fmt.Sprintf("--%s %q: want a port 1..65535", p.name, p.v)}
		}
		*p.dst, given = n, true
	}
	if a.delAfter != "" {
		n, err := strconv.Atoi(a.delAfter)
		if err != nil || n < 0 {
			return nil, usageError{"probe", fmt.Sprintf("--delete-after %q: want a number of days (0: never)", a.delAfter)}
		}
		s.Incoming.DeleteAfterDays, given = &n, true
	}
	if a.leave != nil {
		s.Incoming.LeaveOnServer, given = a.leave, true
	}
	if a.auth != nil {
		s.Outgoing.Auth, given = a.auth, true
	}
	if !given {
		return nil, nil
	}
	return s, nil
}

// readClientSettings reads the --settings file, if one is named.
func readClientSettings(file string) (s *probe.ClientSettings, given bool, err error) {
	s = new(probe.ClientSettings)
	if file == "" {
		return s, false, nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, false, fmt.Errorf("--settings: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(s); err != nil {
		return nil, false, fmt.Errorf("--settings %s: %w", file, err)
	}
	return s, true, nil
}

// password is the one to log in with: the first line of stdin with
// --password-stdin, else MAILSETUP_PROBE_PASSWORD (empty: no logins).
func (a *probeArgs) password(stdin io.Reader) (string, error) {
	if !a.pwStdin {
		return os.Getenv("MAILSETUP_PROBE_PASSWORD"), nil
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the password from stdin: %w", err)
	}
	password := strings.TrimRight(line, "\r\n")
	if password == "" {
		return "", errors.New("--password-stdin: stdin has no password")
	}
	return password, nil
}

// options are the probe's: the config's policies and certificates, and
// the flags that tune the run.
func (a *probeArgs) options() (probe.Options, error) {
	cfg, err := loadPolicyConfig(a.common)
	if err != nil {
		return probe.Options{}, err
	}
	var extra []string
	if a.caFile != "" {
		extra = append(extra, a.caFile)
	}
	roots, err := server.ProbeRoots(cfg, extra...)
	if err != nil {
		return probe.Options{}, fmt.Errorf("--ca: %w", err)
	}
	policies := cfg.Policies()
	return probe.Options{
		Policy: func(domain string) (autoconfig.Policy, bool) {
			i := slices.IndexFunc(policies, func(p autoconfig.Policy) bool { return p.Domain == domain })
			if i < 0 {
				return autoconfig.Policy{}, false
			}
			return policies[i], true
		},
		Resolver: a.resolver,
		RootCAs:  roots,
		Timeout:  a.timeout,
		Discover: a.discover,
	}, nil
}

// writeProbeReport prints the report as text or, with --json, as JSON.
func writeProbeReport(w io.Writer, rep *probe.Report, asJSON bool) error {
	if !asJSON {
		return probe.WriteText(w, rep)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}
