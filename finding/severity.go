package finding

import (
	"fmt"
	"strings"
)

// Severity orders how bad a finding (or a probe step) is: ok < info <
// warning < critical. In JSON it is the lower-case word.
type Severity int

// The severities, from harmless to blocking.
const (
	OK Severity = iota
	Info
	Warning
	Critical
)

var severityNames = [...]string{"ok", "info", "warning", "critical"}

// String returns "ok", "info", "warning" or "critical".
func (s Severity) String() string {
	if s < OK || s > Critical {
		return fmt.Sprintf("severity(%d)", int(s))
	}
	return severityNames[s]
}

// MarshalText writes the lower-case word.
func (s Severity) MarshalText() ([]byte, error) {
	if s < OK || s > Critical {
		return nil, fmt.Errorf("finding: invalid severity %d", int(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText reads the lower-case word.
func (s *Severity) UnmarshalText(b []byte) error {
	for i, n := range severityNames {
		if strings.EqualFold(string(b), n) {
			*s = Severity(i)
			return nil
		}
	}
	return fmt.Errorf("finding: unknown severity %q: want ok, info, warning or critical", b)
}
