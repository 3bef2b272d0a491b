package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"mailsetup/server"
)

// stringList is a flag that may be given more than once.
type stringList struct{ p *[]string }

func (l stringList) String() string {
	if l.p == nil {
		return ""
	}
	return strings.Join(*l.p, ",")
}

func (l stringList) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l.p = append(*l.p, v)
		}
	}
	return nil
}

// cmdInit writes a production config and says what to publish and do
// next.
func cmdInit(args []string, stdout io.Writer) error {
	var c common
	var o server.InitOptions
	rest, err := parseFlags("init", args, &c, func(fs *flag.FlagSet) {
		fs.Var(stringList{&o.Domains}, "domain", "")
		fs.StringVar(&o.Hostname, "hostname", "", "")
		fs.StringVar(&o.Email, "email", "", "")
		fs.StringVar(&o.ACMEDirectory, "acme-directory", "", "")
		fs.StringVar(&o.ACMECAFile, "acme-ca-file", "", "")
		fs.Var(stringList{&o.WebAddresses}, "web-address", "")
	})
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError{"init", fmt.Sprintf("unexpected argument %q", rest[0])}
	}
	if o.Hostname == "" || len(o.Domains) == 0 {
		return usageError{"init", "want --hostname (the server's public name) and at least one --domain"}
	}
	o.DataDir = c.data
	path := c.config
	if path == "" {
		path = filepath.Join(c.data, server.ConfigFile)
	}
	cfg, err := server.WriteProduction(path, o)
	if errors.Is(err, server.ErrConfigExists) {
		return err
	}
	if err != nil {
		return fmt.Errorf("init: %w", err)
	}
	fmt.Fprintf(stdout, "wrote %s (data directory %s): the standard ports, certificates from %s, no accounts yet\n\n", path, cfg.Path(cfg.DataDir), cfg.TLS.ACME.DirectoryURL)
	fmt.Fprintf(stdout, "Publish in DNS (again at any time: mailsetup records --config %s):\n\n", path)
	if err := writeZone(stdout, cfg); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nand point these names at this server (A/AAAA): the CA checks each before it issues its certificate:\n  %s\n", strings.Join(cfg.ACMENames(), "\n  "))
	fmt.Fprintf(stdout, `
Next:
  1. open the ports 25, 80, 443, 110, 143, 465, 587, 993 and 995 to this server
  2. add the accounts:   mailsetup user add --config %[1]s ADDRESS
  3. a staff user:       mailsetup staff hash admin   (paste the printed [[staff.user]] under [staff])
  4. check the config:   mailsetup checkconfig --config %[1]s
  5. start it:           systemctl enable --now mailsetup (contrib/systemd), or mailsetup serve --config %[1]s
                         (its log says "acme: every name has its certificate" once the CA issued them)
  6. check an account:   mailsetup probe ADDRESS --config %[1]s
`, path)
	return nil
}
