package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/term"

	"mailsetup/autoconfig"
	"mailsetup/server"
	"mailsetup/server/accounts"
)

func writeZone(w io.Writer, cfg *server.Config) error {
	policies, _, err := server.PublishedPolicies(cfg)
	if err != nil {
		return err
	}
	return autoconfig.WriteZone(w, policies)
}

// userActions are the actions of `mailsetup user`.
var userActions = []string{"add", "passwd", "remove", "list", "alias", "unalias", "quota"}

// cmdUser manages accounts. Passwords come from standard input (first
// line) or, on a terminal, from a prompt without echo; never from a flag.
func cmdUser(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var c common
	fs := newFlagSet("user")
	c.flags(fs)
	pos, err := parseArgs(fs, args)
	verb := oneOf(pos, userActions...)
	cmd := strings.TrimSpace("user " + verb)
	switch {
	case err != nil:
		return commandError(cmd, err)
	case len(pos) == 0:
		return usageError{cmd, "want an action: " + strings.Join(userActions, ", ")}
	case verb == "":
		return usageError{cmd, fmt.Sprintf("unknown action %q: want %s", pos[0], strings.Join(userActions, ", "))}
	}
	rest := pos[1:]
	cfg, err := loadConfig(c)
	if err != nil {
		return err
	}
	store, closeDB, err := server.OpenAccounts(cfg)
	if err != nil {
		return err
	}
	defer closeDB()
	switch verb {
	case "list":
		if len(rest) > 0 {
			return usageError{cmd, fmt.Sprintf("unexpected argument %q", rest[0])}
		}
		// Streamed: the database's accounts are read a page at a time.
		w := bufio.NewWriterSize(stdout, 64<<10)
		err := store.Each(context.Background(), func(a accounts.Account) error {
			fmt.Fprintf(w, "%s\tcreated %s\tpassword changed %s", a.Address, a.Created.Format("2006-01-02"), a.Changed.Format("2006-01-02"))
			if len(a.Aliases) > 0 {
				fmt.Fprintf(w, "\taliases %s", strings.Join(a.Aliases, ","))
			}
			_, err := fmt.Fprintln(w)
			return err
		})
		if ferr := w.Flush(); err == nil {
			err = ferr
		}
		if err != nil {
			return fmt.Errorf("user list: %w", err)
		}
		return nil
	case "quota":
		if len(rest) != 2 {
			return usageError{cmd, "want ADDRESS BYTES (0: no limit; suffixes K, M, G allowed)"}
		}
		n, err := parseSize(rest[1])
		if err != nil {
			return fmt.Errorf("user quota: %q: %w", rest[1], err)
		}
		if err := store.SetQuota(rest[0], n); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s: quota %d bytes\n", rest[0], n)
		return nil
	case "alias", "unalias":
		if len(rest) != 2 {
			return usageError{cmd, "want ADDRESS ALIAS"}
		}
		if verb == "unalias" {
			if err := store.RemoveAlias(rest[0], rest[1]); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%s is no longer an alias of %s\n", rest[1], rest[0])
			return nil
		}
		al, err := autoconfig.ParseAddress(rest[1])
		if err != nil {
			return fmt.Errorf("user alias: %q: %w", rest[1], err)
		}
		if !cfg.HasDomain(al.Domain) {
			return fmt.Errorf("user alias: the domain %s of %s is not configured", al.Domain, al)
		}
		if err := store.AddAlias(rest[0], al.String()); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s now delivers to %s\n", al, rest[0])
		return nil
	}
	if len(rest) != 1 {
		return usageError{cmd, "want exactly one ADDRESS"}
	}
	addr, err := autoconfig.ParseAddress(rest[0])
	if err != nil {
		return fmt.Errorf("user %s: %q: %w", verb, rest[0], err)
	}
	switch verb {
	case "remove":
		if err := store.Remove(addr.String()); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "removed %s (its mail stays on disk)\n", addr)
		return nil
	case "add":
		if !cfg.HasDomain(addr.Domain) {
			return fmt.Errorf("user add: %s: the domain %s is not configured; add a [[domain]] first", addr, addr.Domain)
		}
		if _, ok := store.Get(addr.String()); ok {
			return fmt.Errorf("user add: %s already exists; use `mailsetup user passwd %s`", addr, addr)
		}
	case "passwd":
		if _, ok := store.Get(addr.String()); !ok {
			return fmt.Errorf("user passwd: no account %s", addr)
		}
	}
	pw, err := readPassword(stdin, stderr)
	if err != nil {
		return err
	}
	if verb == "add" {
		err = store.Add(addr.String(), pw)
	} else {
		err = store.SetPassword(addr.String(), pw)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: password set\n", addr)
	return nil
}

// parseSize reads a byte count with an optional K, M or G (binary) suffix.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, strings.TrimSuffix(s, "K")
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, strings.TrimSuffix(s, "M")
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, strings.TrimSuffix(s, "G")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("not a size: want a number of bytes like 500M")
	}
	return n * mult, nil
}

func readPassword(stdin io.Reader, stderr io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(stderr, "password: ")
		p1, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		fmt.Fprint(stderr, "again: ")
		p2, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(stderr)
		if err != nil {
			return "", err
		}
		if string(p1) != string(p2) {
			return "", fmt.Errorf("the two passwords differ")
		}
		return string(p1), nil
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("reading password from stdin: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("no password on stdin: pipe it in (printf '%%s\\n' \"$PW\" | mailsetup user ...) or run on a terminal")
	}
	return line, nil
}
