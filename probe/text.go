package probe

import (
	"bufio"
	"fmt"
	"io"
	"strings"
	"time"

	"mailsetup/finding"
)

// sourceLabel names a Report.Source for people.
func sourceLabel(source string) string {
	switch source {
	case "autoconfig":
		return "discovered Thunderbird autoconfig document"
	case "autodiscover":
		return "discovered Outlook Autodiscover response"
	case "srv":
		return "discovered DNS SRV records"
	}
	return source
}

// WriteText writes the report for people: the verdict, the findings
// grouped by severity (worst first) with evidence and fix, then the
// steps.
func WriteText(w io.Writer, r *Report) error {
	b := bufio.NewWriter(w)
	fmt.Fprintf(b, "%s: %s (%d finding(s), %s)\n", r.Address, strings.ToUpper(r.Worst.String()), len(r.Findings), r.Duration.Round(time.Millisecond))
	if r.Interrupted {
		fmt.Fprintf(b, "INTERRUPTED: the probe was stopped; this is what it did until then (steps marked \"not finished\" were cut)\n")
	}
	fmt.Fprintf(b, "expected settings (from the %s):\n", sourceLabel(r.Source))
	for _, group := range [][]Endpoint{r.Expected.IMAP, r.Expected.POP3, r.Expected.Submission} {
		for _, e := range group {
			fmt.Fprintf(b, "  %s\n", e)
		}
	}
	fmt.Fprintf(b, "  username %s\n", r.Expected.Username)
	if len(r.Expected.POP3) > 0 {
		if r.Expected.POP3RetentionUnknown {
			fmt.Fprintf(b, "  pop3: what to leave on the server is not known (not compared)\n")
		} else if r.Expected.POP3LeaveOnServer {
			fmt.Fprintf(b, "  pop3: leave on server, remove after %d days\n", r.Expected.POP3DeleteAfterDays)
		} else {
			fmt.Fprintf(b, "  pop3: download and remove\n")
		}
	}
	for sev := finding.Critical; sev >= finding.OK; sev-- {
		first := true
		for _, f := range r.Findings {
			if f.Severity != sev {
				continue
			}
			if first {
				fmt.Fprintf(b, "\n%s\n", strings.ToUpper(sev.String()))
				first = false
			}
			fmt.Fprintf(b, "  [%s] %s\n", f.ID, f.Title)
			for _, e := range f.Evidence {
				fmt.Fprintf(b, "    seen:  %s\n", e)
			}
			if f.Fault != "" && f.Severity > finding.OK {
				fmt.Fprintf(b, "    fault: %s\n", f.Fault.Label())
			}
			if f.Fix != "" {
				fmt.Fprintf(b, "    fix:   %s\n", f.Fix)
			}
			if f.Staff != "" {
				fmt.Fprintf(b, "    staff: %s\n", f.Staff)
			}
		}
	}
	if len(r.Steps) > 0 {
		fmt.Fprintf(b, "\nsteps\n")
	}
	for _, s := range r.Steps {
		fmt.Fprintf(b, "  %-8s %6s  %s\n", s.Severity, s.Duration.Round(time.Millisecond), s.Name)
		if s.Error != "" {
			fmt.Fprintf(b, "           error: %s\n", s.Error)
		}
		for _, e := range s.Evidence {
			fmt.Fprintf(b, "           %s\n", e)
		}
	}
	return b.Flush()
}
