package main

import (
	"bufio"
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
	if slices.ContainsFunc(args, func(a string) bool { return a == "-h" || a == "-help" || a == "--help" }) {
		fmt.Fprint(stdout, probeHelp)
		return 0
	}
	code, err := probeMain(ctx, args, stdin, stdout, nil)
	if err != nil {
		// One "probe: " prefix, whether or not the error has its own
		// (the probe package's errors do).
		fmt.Fprintf(stderr, "mailsetup probe: %s\n", strings.TrimPrefix(err.Error(), "probe: "))
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprint(stderr, probeHelp)
		}
		return probeExitUnknown
	}
	return code
}

// probeMain parses args and runs the probe. tune, when set, adjusts the
// options just before the run (tests set the probe's testing hooks).
func probeMain(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer, tune func(*probe.Options)) (int, error) {
	var (
		c                         common
		pwStdin, asJSON, discover bool
		settingsFile, resolver    string
		caFile                    string
		timeout                   time.Duration
		in                        probe.Incoming
		out                       probe.Outgoing
		inPort, outPort, delAfter string
		leave, auth               *bool
	)
	// Go's flag package stops at the first non-flag: accept EMAIL first.
	var email string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		email, args = args[0], args[1:]
	}
	rest, err := parseFlags("probe", args, &c, func(fs *flag.FlagSet) {
		fs.BoolVar(&pwStdin, "password-stdin", false, "")
		fs.BoolVar(&asJSON, "json", false, "")
		fs.BoolVar(&discover, "discover", false, "")
		fs.StringVar(&settingsFile, "settings", "", "")
		fs.StringVar(&resolver, "resolver", "", "")
		fs.StringVar(&caFile, "ca", "", "")
		fs.DurationVar(&timeout, "timeout", probe.DefaultTimeout, "")
		fs.StringVar(&in.Protocol, "in-proto", "", "")
		fs.StringVar(&in.Host, "in-host", "", "")
		fs.StringVar(&inPort, "in-port", "", "")
		fs.StringVar(&in.Security, "in-security", "", "")
		fs.StringVar(&in.Username, "in-user", "", "")
		fs.Var(optBool{&leave}, "leave-on-server", "")
		fs.StringVar(&delAfter, "delete-after", "", "")
		fs.StringVar(&out.Host, "out-host", "", "")
		fs.StringVar(&outPort, "out-port", "", "")
		fs.StringVar(&out.Security, "out-security", "", "")
		fs.Var(optBool{&auth}, "out-auth", "")
		fs.StringVar(&out.Username, "out-user", "", "")
	})
	if err != nil {
		return 0, err
	}
	if email == "" && len(rest) > 0 {
		email, rest = rest[0], rest[1:]
	}
	if email == "" {
		return 0, usageError{"probe: no EMAIL given"}
	}
	if len(rest) > 0 {
		return 0, usageError{fmt.Sprintf("probe: unexpected argument %q", rest[0])}
	}

	var settings *probe.ClientSettings
	if settingsFile != "" {
		data, err := os.ReadFile(settingsFile)
		if err != nil {
			return 0, fmt.Errorf("--settings: %w", err)
		}
		settings = new(probe.ClientSettings)
		dec := json.NewDecoder(strings.NewReader(string(data)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(settings); err != nil {
			return 0, fmt.Errorf("--settings %s: %w", settingsFile, err)
		}
	}
	overlay := func() *probe.ClientSettings {
		if settings == nil {
			settings = new(probe.ClientSettings)
		}
		return settings
	}
	setStr := func(v string, dst func(*probe.ClientSettings) *string) {
		if v != "" {
			*dst(overlay()) = v
		}
	}
	setStr(in.Protocol, func(s *probe.ClientSettings) *string { return &s.Incoming.Protocol })
	setStr(in.Host, func(s *probe.ClientSettings) *string { return &s.Incoming.Host })
	setStr(in.Security, func(s *probe.ClientSettings) *string { return &s.Incoming.Security })
	setStr(in.Username, func(s *probe.ClientSettings) *string { return &s.Incoming.Username })
	setStr(out.Host, func(s *probe.ClientSettings) *string { return &s.Outgoing.Host })
	setStr(out.Security, func(s *probe.ClientSettings) *string { return &s.Outgoing.Security })
	setStr(out.Username, func(s *probe.ClientSettings) *string { return &s.Outgoing.Username })
	for _, p := range []struct {
		name, v string
		dst     func(*probe.ClientSettings) *int
	}{
		{"in-port", inPort, func(s *probe.ClientSettings) *int { return &s.Incoming.Port }},
		{"out-port", outPort, func(s *probe.ClientSettings) *int { return &s.Outgoing.Port }},
	} {
		if p.v == "" {
			continue
		}
		n, err := strconv.Atoi(p.v)
		if err != nil || n < 1 || n > 65535 {
			return 0, usageError{fmt.Sprintf("probe: --%s %q: want a port 1..65535", p.name, p.v)}
		}
		*p.dst(overlay()) = n
	}
	if delAfter != "" {
		n, err := strconv.Atoi(delAfter)
		if err != nil || n < 0 {
			return 0, usageError{fmt.Sprintf("probe: --delete-after %q: want a number of days (0: never)", delAfter)}
		}
		overlay().Incoming.DeleteAfterDays = &n
	}
	if leave != nil {
		overlay().Incoming.LeaveOnServer = leave
	}
	if auth != nil {
		overlay().Outgoing.Auth = auth
	}

	password := os.Getenv("MAILSETUP_PROBE_PASSWORD")
	if pwStdin {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, fmt.Errorf("reading the password from stdin: %w", err)
		}
		password = strings.TrimRight(line, "\r\n")
		if password == "" {
			return 0, errors.New("--password-stdin: stdin has no password")
		}
	}

	cfg, err := loadConfig(c)
	if err != nil {
		return 0, err
	}
	var extra []string
	if caFile != "" {
		extra = append(extra, caFile)
	}
	roots, err := server.ProbeRoots(cfg, extra...)
	if err != nil {
		return 0, fmt.Errorf("--ca: %w", err)
	}
	policies := cfg.Policies()
	opts := probe.Options{
		Policy: func(domain string) (autoconfig.Policy, bool) {
			i := slices.IndexFunc(policies, func(p autoconfig.Policy) bool { return p.Domain == domain })
			if i < 0 {
				return autoconfig.Policy{}, false
			}
			return policies[i], true
		},
		Resolver: resolver,
		RootCAs:  roots,
		Timeout:  timeout,
		Discover: discover,
	}
	if tune != nil {
		tune(&opts)
	}
	rep, err := probe.Run(ctx, probe.Request{Address: email, Password: password, Client: settings}, opts)
	if err != nil {
		return 0, err
	}
	if asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return 0, fmt.Errorf("writing the report: %w", err)
		}
	} else if err := probe.WriteText(stdout, rep); err != nil {
		return 0, fmt.Errorf("writing the report: %w", err)
	}
	return probe.ExitCode(rep), nil
}
