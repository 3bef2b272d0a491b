package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"mailsetup/server"
	"slices"
	"strings"
)

// errHelp: the command line asks for the command's usage (-h, -help or
// --help anywhere before a "--").
var errHelp = errors.New("help requested")

// helpRequest is a command's usage asked for: run prints it on stdout and
// exits 0.
type helpRequest struct{ cmd string }

func (h helpRequest) Error() string { return "mailsetup " + h.cmd + " --help" }

// parseArgs parses the flags fs defines wherever they are in args, before,
// between or after the positional arguments, which it returns in order.
// A "--" ends the flags: everything after it is positional. Each flag is
// -name or --name, its value the next argument or after "=" (a bool flag
// takes only "="), as the flag package reads them. -h, -help and --help
// anywhere return errHelp before any other mistake is reported; the
// positional arguments are returned with every error, so that the caller
// can name the sub-command (an unknown flag that is a typo of one that
// takes a value is taken to have one).
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var (
		pos     []string
		set     [][2]string // name, value, in order
		help    bool
		problem error
	)
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			pos = append(pos, args[i+1:]...)
			break
		}
		if len(arg) < 2 || arg[0] != '-' {
			pos = append(pos, arg)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimPrefix(arg[1:], "-"), "=")
		f := fs.Lookup(name)
		switch {
		case name == "" || name[0] == '-':
			problem = firstErr(problem, fmt.Errorf("bad flag syntax %q", arg))
		case f == nil && (name == "h" || name == "help"):
			help = true
		case f == nil:
			near := nearFlag(fs, name)
			problem = firstErr(problem, unknownFlag(name, near))
			if near != nil && !isBoolFlag(near) && !hasValue && i+1 < len(args) {
				i++ // most likely its value: the positional arguments stay right
			}
		case isBoolFlag(f):
			if !hasValue {
				value = "true"
			}
			set = append(set, [2]string{name, value})
		case hasValue:
			set = append(set, [2]string{name, value})
		case i+1 < len(args):
			i++
			set = append(set, [2]string{name, args[i]})
		default:
			problem = firstErr(problem, fmt.Errorf("flag --%s needs a value", name))
		}
	}
	if help {
		return pos, errHelp
	}
	if problem != nil {
		return pos, problem
	}
	for _, nv := range set {
		if err := fs.Set(nv[0], nv[1]); err != nil {
			return pos, fmt.Errorf("invalid value %q for --%s: %v", nv[1], nv[0], err)
		}
	}
	return pos, nil
}

// firstErr keeps the first of two errors.
func firstErr(first, next error) error {
	if first != nil {
		return first
	}
	return next
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// nearFlag is the one flag fs defines that name is most likely a typo
// of: one edit away, or name is the start of its name; nil when there is
// none or more than one.
func nearFlag(fs *flag.FlagSet, name string) *flag.Flag {
	var near []*flag.Flag
	fs.VisitAll(func(f *flag.Flag) {
		if server.EditDistance(name, f.Name) <= 1 || len(name) >= 3 && strings.HasPrefix(f.Name, name) {
			near = append(near, f)
		}
	})
	if len(near) != 1 {
		return nil
	}
	return near[0]
}

// unknownFlag names the flag as the README spells it, and the flag it is
// most likely a typo of, if any.
func unknownFlag(name string, near *flag.Flag) error {
	if near != nil {
		return fmt.Errorf("unknown flag --%s; did you mean --%s?", name, near.Name)
	}
	return fmt.Errorf("unknown flag --%s", name)
}

// newFlagSet is a flag set that only defines flags: parseArgs parses and
// reports, with the names the README uses.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// commandError turns what parseArgs returned for the command cmd ("user
// add") into a help request or a usage error that names cmd.
func commandError(cmd string, err error) error {
	if errors.Is(err, errHelp) {
		return helpRequest{cmd}
	}
	return usageError{cmd: cmd, msg: err.Error()}
}

// oneOf returns the first argument when it is one of want, else "".
func oneOf(args []string, want ...string) string {
	if len(args) > 0 && slices.Contains(want, args[0]) {
		return args[0]
	}
	return ""
}
