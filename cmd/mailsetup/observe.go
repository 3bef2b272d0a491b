package main

import (
	"fmt"
	"io"

	"mailsetup/server/logwatch"
)

// cmdObserve prints what an ISP adds to its Dovecot or Postfix so that
// their logs carry what [[observe.source]] reads.
func cmdObserve(args []string, stdout io.Writer) error {
	fs := newFlagSet("observe")
	syslog := fs.String("syslog", "", "also the rsyslog rule that sends a copy to this [[observe.source]] syslog address")
	pos, err := parseArgs(fs, args)
	verb := oneOf(pos, "snippet")
	const cmd = "observe"
	switch {
	case err != nil:
		return commandError(cmd, err)
	case verb == "":
		return usageError{cmd, "want `observe snippet dovecot|postfix`"}
	case len(pos) != 2:
		return usageError{cmd, "want exactly one of dovecot or postfix"}
	}
	kind := logwatch.Kind(pos[1])
	if kind != logwatch.Dovecot && kind != logwatch.Postfix {
		return usageError{cmd, fmt.Sprintf("%q: want dovecot or postfix", pos[1])}
	}
	text, err := logwatch.Snippet(kind, *syslog)
	if err != nil {
		return usageError{cmd, "--syslog " + err.Error()}
	}
	_, err = io.WriteString(stdout, text)
	return err
}
