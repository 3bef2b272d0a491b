package server

import (
	"fmt"

	"mailsetup/server/logwatch"
)

// ObserveConfig is what the service learns from the logs of mail
// servers it does not run (an existing Dovecot and Postfix): their lines
// become the same observations as the embedded server's events.
type ObserveConfig struct {
	Sources []ObserveSource `toml:"source"`
}

// ObserveSource is one [[observe.source]]: a program's log, from a file
// or a syslog listener.
type ObserveSource struct {
	// Name labels the source in mailsetup_observe_lines_total and the
	// logs. Default: the kind and the file or listen address.
	Name string `toml:"name"`
	// Kind is "dovecot" or "postfix".
	Kind string `toml:"kind"`
	// File is a log file to follow across rotation (rename or
	// copytruncate).
	File string `toml:"file"`
	// Syslog is a syslog listener for the program's lines:
	// udp://127.0.0.1:PORT, tcp://127.0.0.1:PORT (loopback only),
	// unix:///PATH (datagrams) or unix-stream:///PATH.
	Syslog string `toml:"syslog"`
}

// label is the source's name in metrics and logs.
func (o ObserveSource) label() string {
	if o.Name != "" {
		return o.Name
	}
	if o.File != "" {
		return o.Kind + ":" + o.File
	}
	return o.Kind + ":" + o.Syslog
}

func (c *Config) validateObserve(add func(format string, args ...any)) {
	names := map[string]bool{}
	for i, src := range c.Observe.Sources {
		key := fmt.Sprintf("observe.source[%d]", i)
		switch logwatch.Kind(src.Kind) {
		case logwatch.Dovecot, logwatch.Postfix:
		default:
			add("%s.kind = %q: want dovecot or postfix", key, src.Kind)
		}
		if (src.File == "") == (src.Syslog == "") {
			add("%s: set one of file or syslog", key)
		}
		if src.Syslog != "" {
			if _, _, err := logwatch.ParseListen(src.Syslog); err != nil {
				add("%s.syslog = %v", key, err)
			}
		}
		if names[src.label()] {
			add("%s: the name %q is used twice; set name", key, src.label())
		}
		names[src.label()] = true
	}
}
