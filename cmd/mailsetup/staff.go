package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"regexp"
	"strings"

	"mailsetup/server"
	"mailsetup/server/accounts"
)

var staffNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// cmdStaff prints the config lines for a staff member or an API token:
// staff accounts live in the config file ([[staff.user]],
// [[staff.token]]), hashed, so this command never edits the file.
func cmdStaff(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	pos, err := parseArgs(newFlagSet("staff"), args)
	verb := oneOf(pos, "hash", "token")
	cmd := strings.TrimSpace("staff " + verb)
	switch {
	case err != nil:
		return commandError(cmd, err)
	case verb == "":
		return usageError{cmd, "want `staff hash NAME` or `staff token NAME`"}
	case len(pos) != 2:
		return usageError{cmd, "want exactly one NAME"}
	}
	name := pos[1]
	if !staffNameRE.MatchString(name) {
		return fmt.Errorf("staff: name %q: want 1 to 64 letters, digits, '.', '_', '-' or '@'", name)
	}
	switch verb {
	case "hash":
		pw, err := readPassword(stdin, stderr)
		if err != nil {
			return fmt.Errorf("staff hash: %w", err)
		}
		hash, err := accounts.HashPassword(pw)
		if err != nil {
			return fmt.Errorf("staff hash: %w", err)
		}
		fmt.Fprintf(stdout, "# add to the config file, then reload serve (kill -HUP its pid) or restart it:\n[[staff.user]]\nname = %q\npassword_hash = %q\n", name, hash)
	case "token":
		b := make([]byte, 32)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		token := "mst_" + base64.RawURLEncoding.EncodeToString(b)
		sum := sha256.Sum256([]byte(token))
		fmt.Fprintf(stderr, "API token for %s (shown only now; the config keeps its SHA-256):\n%s\n", name, token)
		fmt.Fprintf(stdout, "# add to the config file, then reload serve (kill -HUP its pid) or restart it:\n[[staff.token]]\nname = %q\nsha256 = %q\n", name, hex.EncodeToString(sum[:]))
	}
	return nil
}

// staffURL is the console's base URL: HTTPS when it listens, else HTTP.
func staffURL(ls []server.Listener) string {
	url := ""
	for _, l := range ls {
		if l.Name == "https" && l.URL != "" {
			return l.URL
		}
		if l.Name == "http" && l.URL != "" {
			url = l.URL
		}
	}
	return url
}
