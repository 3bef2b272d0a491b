// Command mailsetup serves mail client autoconfiguration for the configured
// domains, answers their DNS records, and manages accounts.
//
// Usage:
//
//	mailsetup serve [--config FILE] [--data DIR]
//	mailsetup init --hostname H --domain D [--domain D ...] [--email E] [--config FILE] [--data DIR]
//	mailsetup records [--config FILE] [--data DIR]
//	mailsetup checkconfig [--config FILE] [--data DIR]
//	mailsetup user add|passwd|list|remove|alias|unalias|quota [--config FILE] [--data DIR] [ADDRESS ...]
//	mailsetup probe EMAIL [flags]
//	mailsetup expire [--config FILE] [--data DIR] [--dry-run]
//	mailsetup queue list|show ID|retry [ID]|remove ID|bounce ID [--config FILE] [--data DIR]
//	mailsetup import --from-pop3 HOST:PORT|--from-maildir DIR --accounts FILE [--verify] [flags]
//	mailsetup staff hash|token NAME
//
// Flags may come anywhere after the command's name; "--" ends them, and
// COMMAND --help prints the command's usage. Without --config, the config
// is DIR/mailsetup.toml (DIR defaults to ./mailsetup-data); serve creates
// it there, with a demo domain, on first run.
//
// Imports: server (the composition root), probe, autoconfig and the
// server packages its subcommands drive directly (accounts, asynclog,
// migrate); the commands' logic lives in those packages, not here.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"mailsetup/server"
	"mailsetup/server/asynclog"
	"mailsetup/server/listenfd"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// exitStatus is an error that only carries an exit status; its command
// has already said what it had to.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// usageError is a command-line mistake of the command cmd ("user add";
// empty for none): exit status 2 and the command's synopsis.
type usageError struct{ cmd, msg string }

func (e usageError) Error() string {
	if e.cmd == "" {
		return e.msg
	}
	return e.cmd + ": " + e.msg
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	err := dispatch(ctx, args, stdin, stdout, stderr)
	var ue usageError
	var es exitStatus
	var hr helpRequest
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &es):
		return int(es)
	case errors.As(err, &hr):
		fmt.Fprint(stdout, helpText(hr.cmd))
		return exitOK
	case errors.As(err, &ue) && ue.cmd == "":
		fmt.Fprintf(stderr, "mailsetup: %s\n%s", ue.msg, usage)
		return exitUsage
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "mailsetup %s: %s\n%s", ue.cmd, ue.msg, synopsis(ue.cmd))
		return exitUsage
	default:
		fmt.Fprintf(stderr, "mailsetup: %v\n", err)
		return exitError
	}
}

func dispatch(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{msg: "no command given"}
	}
	switch args[0] {
	case "serve":
		return cmdServe(ctx, args[1:], stdout, stderr)
	case "records":
		return cmdRecords(args[1:], stdout)
	case "init":
		return cmdInit(args[1:], stdout)
	case "checkconfig":
		return cmdCheckConfig(args[1:], stdout)
	case "user":
		return cmdUser(args[1:], stdin, stdout, stderr)
	case "queue":
		return cmdQueue(args[1:], stdout)
	case "expire":
		return cmdExpire(ctx, args[1:], stdout)
	case "import":
		return cmdImport(ctx, args[1:], stdout)
	case "staff":
		return cmdStaff(args[1:], stdin, stdout, stderr)
	case "observe":
		return cmdObserve(args[1:], stdout)
	case "db":
		return cmdDB(ctx, args[1:], stdout)
	case "probe":
		// The probe's exit status is the monitoring-plugin convention
		// (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN), not run's.
		if code := cmdProbe(ctx, args[1:], stdin, stdout, stderr); code != 0 {
			return exitStatus(code)
		}
		return nil
	case "help", "-h", "-help", "--help":
		// "mailsetup help user add" is "mailsetup user add --help".
		return helpRequest{strings.Join(args[1:], " ")}
	}
	return usageError{msg: fmt.Sprintf("unknown command %q", args[0])}
}

// common holds the flags every subcommand takes.
type common struct {
	config, data string
}

// flags defines --config and --data on fs.
func (c *common) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.config, "config", "", "config file")
	fs.StringVar(&c.data, "data", "mailsetup-data", "data directory")
}

// parseFlags parses the command line of the command cmd: the common
// flags, those extra defines, anywhere among the positional arguments,
// which it returns. The error is a helpRequest or a usageError.
func parseFlags(cmd string, args []string, c *common, extra func(*flag.FlagSet)) ([]string, error) {
	fs := newFlagSet(cmd)
	c.flags(fs)
	if extra != nil {
		extra(fs)
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		return nil, commandError(cmd, err)
	}
	return pos, nil
}

// noArguments parses the command line of a command that takes only flags.
func noArguments(cmd string, args []string, c *common) error {
	rest, err := parseFlags(cmd, args, c, nil)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError{cmd, fmt.Sprintf("unexpected argument %q", rest[0])}
	}
	return nil
}

// loadConfig loads --config, or DIR/mailsetup.toml which must exist.
func loadConfig(c common) (*server.Config, error) {
	path, err := configPath(c)
	if err != nil {
		return nil, err
	}
	return server.LoadConfig(path)
}

// loadPolicyConfig is loadConfig for a command that needs only the
// domain policies (the probe): listeners are not required.
func loadPolicyConfig(c common) (*server.Config, error) {
	path, err := configPath(c)
	if err != nil {
		return nil, err
	}
	return server.LoadPolicyConfig(path)
}

// configPath is --config, or DIR/mailsetup.toml which must exist.
func configPath(c common) (string, error) {
	path := c.config
	if path == "" {
		path = filepath.Join(c.data, server.ConfigFile)
		if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			// Not "run serve": a service may well be running, from
			// another directory.
			return "", fmt.Errorf("no config at %s: pass the --data DIR (or --config FILE) that `mailsetup serve` was started with; only a first `mailsetup serve --data DIR` creates a new one", path)
		}
	}
	return path, nil
}

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c common
	if err := noArguments("serve", args, &c); err != nil {
		return err
	}
	var (
		created server.Created
		err     error
	)
	// How the account commands name this service's data, for the hints.
	dataFlag := "--config " + c.config
	if c.config == "" {
		dataFlag = "--data " + c.data
		created, err = server.EnsureDefault(c.data, server.DefaultPorts())
		if err != nil {
			if _, serr := os.Stat(filepath.Join(c.data, server.CredentialsFile)); serr == nil {
				return fmt.Errorf("%w (the passwords created so far are in %s)", err, filepath.Join(c.data, server.CredentialsFile))
			}
			return err
		}
		c.config = created.ConfigPath
	}
	// The credentials, before anything else can fail (a busy port, say).
	if created.CredentialsPath != "" {
		printCreated(stdout, created)
	} else {
		remindCredentials(stdout, filepath.Join(filepath.Dir(c.config), server.CredentialsFile), c.config, dataFlag)
	}
	// Sockets handed over by systemd (or an upgrade), taken before
	// anything can start a child process.
	sockets, err := listenfd.FromEnv()
	if err != nil {
		return err
	}
	cfg, err := server.LoadConfig(c.config)
	if err != nil {
		return err
	}
	tuneGC()
	level := new(slog.LevelVar) // SIGHUP may change it
	logger, sink, closeLog, err := newLogger(cfg, stderr, level)
	if err != nil {
		return err
	}
	defer closeLog()
	srv, err := server.New(cfg, server.Options{Logger: logger, LogDropped: sink.Dropped, Sockets: sockets, LogLevel: level})
	if err != nil {
		return err
	}
	// SIGHUP re-reads the config: what can change while serving applies
	// at once (server.Reload); other changes are logged as needing a
	// restart. SIGUSR2
	// upgrades: the executable (a new binary installed over this one)
	// starts with this process's listening sockets, and this one stops.
	ctx, stopServing := context.WithCancel(ctx)
	defer stopServing()
	hup, usr2 := make(chan os.Signal, 1), make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	signal.Notify(usr2, syscall.SIGUSR2)
	defer signal.Stop(hup)
	defer signal.Stop(usr2)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if _, err := srv.Reload(c.config); err != nil {
					logger.Error("config reload refused; the running config stays", "err", err)
				}
			case <-usr2:
				if upgrade(logger, srv) {
					stopServing()
					return
				}
			}
		}
	}()
	return srv.Run(ctx, func(ls []server.Listener) {
		printStartup(stdout, c.config, cfg, ls, created)
		// Starting leaves garbage the service will not need again (the
		// demo password's argon2id 19 MiB, every language's templates
		// parsed, the documents rendered): with GOGC at 400 it would
		// stay mapped until the scavenger got to it.
		debug.FreeOSMemory()
	})
}

// upgrade starts the executable with this process's sockets and reports
// whether it did (then this process shuts down gracefully).
func upgrade(logger *slog.Logger, srv *server.Server) bool {
	exe, err := os.Executable()
	if err == nil {
		var pid int
		if pid, err = srv.Upgrade(exe, os.Args[1:]); err == nil {
			logger.Info("upgrade: the new process serves on the same sockets; this one stops", "new_pid", pid, "exe", exe)
			time.Sleep(server.UpgradeDrain) // what this process accepted is served first
			return true
		}
	}
	logger.Error("upgrade failed; this process keeps serving", "err", err)
	return false
}

// tuneGC trades memory the service does not need for CPU: its live heap
// is a few MB, so collecting at 4x the live heap instead of 2x cuts GC work
// under load (about 20% more autoconfig requests per second, see
// BENCHMARKS.md) while the soft limit keeps a burst from growing the heap
// without bound. GOGC and GOMEMLIMIT in the environment win.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(256 << 20)
	}
}

// newLogger builds the non-blocking logger the config asks for.
func newLogger(cfg *server.Config, stderr io.Writer, lv *slog.LevelVar) (*slog.Logger, *asynclog.Sink, func(), error) {
	var w io.Writer = stderr
	var f *os.File
	if cfg.Log.File != "" {
		var err error
		f, err = asynclog.OpenFile(cfg.Path(cfg.Log.File))
		if err != nil {
			return nil, nil, nil, fmt.Errorf("log.file: %w", err)
		}
		w = f
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.Log.Level)); err != nil {
		return nil, nil, nil, fmt.Errorf("log.level: %w", err)
	}
	lv.Set(level)
	h, sink := asynclog.New(w, asynclog.Options{Level: lv, JSON: cfg.Log.Format == "json", Queue: cfg.Log.Queue, Errors: stderr})
	closeLog := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = sink.Close(ctx)
		if f != nil {
			f.Close()
		}
	}
	return slog.New(h), sink, closeLog, nil
}

func printStartup(w io.Writer, cfgPath string, cfg *server.Config, ls []server.Listener, created server.Created) {
	fmt.Fprintf(w, "mailsetup is serving (config %s)\n", cfgPath)
	for _, l := range ls {
		switch {
		case l.Name == "dns":
			fmt.Fprintf(w, "  %-11s %s (udp and tcp)\n", l.Name, l.Addr)
		case l.Name == "admin":
			fmt.Fprintf(w, "  %-11s %s (/metrics, /healthz)\n", l.Name, l.URL)
		case l.URL != "":
			fmt.Fprintf(w, "  %-11s %s\n", l.Name, l.URL)
		default: // mail listeners
			fmt.Fprintf(w, "  %-11s %s\n", l.Name, l.Addr)
		}
	}
	for _, p := range cfg.Policies() {
		example := "you@" + p.Domain
		if p.Domain == server.DemoDomain {
			example = server.DemoAddress
		}
		fmt.Fprintf(w, "domain %s (%s)\n", p.Domain, p.DisplayName)
		fmt.Fprintf(w, "  customers    %s/ (the self-help page)\n", p.Web.BaseURL)
		fmt.Fprintf(w, "  help page    %s/help/%s\n", p.Web.BaseURL, example)
		fmt.Fprintf(w, "  Thunderbird  %s/mail/config-v1.1.xml?emailaddress=%s\n", p.Web.BaseURL, example)
		fmt.Fprintf(w, "  Outlook      POST %s/autodiscover/autodiscover.xml\n", p.Web.BaseURL)
		fmt.Fprintf(w, "  Outlook v2   %s/autodiscover/autodiscover.json/v1.0/%s?Protocol=AutodiscoverV1\n", p.Web.BaseURL, example)
		fmt.Fprintf(w, "  Apple        %s/apple/mail.mobileconfig?email=%s\n", p.Web.BaseURL, example)
		for _, e := range append(p.Incoming(), p.Submission...) {
			fmt.Fprintf(w, "  advertises   %s\n", e)
		}
	}
	if len(cfg.Staff.Users) > 0 {
		fmt.Fprintf(w, "staff console %s/staff/\n", staffURL(ls))
	}
	if created.CredentialsPath != "" {
		fmt.Fprintf(w, "the passwords are above and in %s\n", created.CredentialsPath)
	}
}

// printCreated shows the passwords EnsureDefault just created, and where
// they are kept.
func printCreated(w io.Writer, created server.Created) {
	fmt.Fprintf(w, "created the embedded default (config %s)\n", created.ConfigPath)
	if created.DemoPassword != "" {
		fmt.Fprintf(w, "  demo account   %s  password %s\n", server.DemoAddress, created.DemoPassword)
	}
	if created.StaffPassword != "" {
		fmt.Fprintf(w, "  staff console  %-17s  password %s\n", server.DefaultStaff, created.StaffPassword)
	}
	fmt.Fprintf(w, "  shown only now, and kept in %s (mode 0600): store them elsewhere, then delete that file\n", created.CredentialsPath)
}

// remindCredentials says, at a start that created nothing, that the first
// start's passwords are still in path, and how to set new ones.
func remindCredentials(w io.Writer, path, config, dataFlag string) {
	creds, err := server.ReadCredentials(path)
	if err != nil {
		return // no such file: the user has stored and deleted it
	}
	fmt.Fprintf(w, "%s still holds the passwords created on the first start: store them elsewhere, then delete it. To set new ones:\n", path)
	if creds.DemoAddress != "" {
		fmt.Fprintf(w, "  %s: mailsetup user passwd %s %s\n", creds.DemoAddress, dataFlag, creds.DemoAddress)
	}
	if creds.StaffName != "" {
		fmt.Fprintf(w, "  staff console user %s: mailsetup staff hash %s, put the password_hash it prints in %s, then restart serve (or kill -HUP it)\n", creds.StaffName, creds.StaffName, config)
	}
}

func cmdRecords(args []string, stdout io.Writer) error {
	var c common
	if err := noArguments("records", args, &c); err != nil {
		return err
	}
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	return writeZone(stdout, cfg)
}

func cmdCheckConfig(args []string, stdout io.Writer) error {
	var c common
	if err := noArguments("checkconfig", args, &c); err != nil {
		return err
	}
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "config OK: %d domain(s)\n", len(cfg.Domains))
	return nil
}
