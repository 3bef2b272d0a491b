package clients

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"mailsetup/finding"
)

// ExitCode is the monitoring-plugin status of a severity: 0 OK (and
// info), 1 WARNING, 2 CRITICAL.
func ExitCode(s finding.Severity) int {
	switch s {
	case finding.OK, finding.Info:
		return 0
	case finding.Warning:
		return 1
	}
	return 2
}

// errWriter keeps the first write error, so the writers below can print
// freely and report it once.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}

func writeFindings(w *errWriter, indent string, fs []finding.Finding) {
	for _, f := range fs {
		w.printf("%s%s %s: %s\n", indent, strings.ToUpper(f.Severity.String()), f.ID, f.Title)
		for _, ev := range f.Evidence {
			w.printf("%s    seen: %s\n", indent, ev)
		}
		w.printf("%s    fix: %s\n", indent, f.Fix)
		if f.Staff != "" {
			w.printf("%s    staff: %s\n", indent, f.Staff)
		}
	}
}

// WriteDomainText prints the domain check: the records as a table, the
// hosts, the documents, the findings.
func WriteDomainText(out io.Writer, r *DomainReport) error {
	w := &errWriter{w: out}
	w.printf("domain %s: %s\n\nrecords (what mailsetup records prints, against DNS):\n", r.Domain, strings.ToUpper(r.Severity().String()))
	tw := tabwriter.NewWriter(out, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "  STATUS\tTYPE\tNAME\tWANT\tDNS HAS")
	for _, row := range r.Records {
		got := strings.Join(row.Got, ", ")
		switch {
		case row.Status == RecordError:
			got = "error: " + row.Detail
		case got == "":
			got = "nothing"
		}
		if row.Detail != "" && row.Status != RecordError {
			got += " (" + row.Detail + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", row.Status, row.Type, row.Name, strings.Join(row.Want, ", "), got)
	}
	if err := tw.Flush(); err != nil && w.err == nil {
		w.err = err
	}
	w.printf("\nhosts (HTTPS, certificate checked):\n")
	for _, h := range r.Hosts {
		detail := ""
		if h.Detail != "" {
			detail = ": " + h.Detail
		}
		w.printf("  %s %s %s%s\n", h.Outcome, h.Host, h.URL, detail)
	}
	w.printf("\ndocuments:\n")
	for _, d := range r.Documents {
		w.printf("  %s\n", d)
	}
	if len(r.Findings) > 0 {
		w.printf("\nfindings:\n")
		writeFindings(w, "  ", r.Findings)
	}
	return w.err
}

// WriteClientsText prints the simulation, one block per client.
func WriteClientsText(out io.Writer, r *ClientsReport) error {
	w := &errWriter{w: out}
	w.printf("%s: what each mail program would set up: %s\n", r.Address, strings.ToUpper(r.Severity().String()))
	if len(r.Findings) > 0 {
		w.printf("\nthe domain's sources:\n")
		writeFindings(w, "  ", r.Findings)
	}
	for _, c := range r.Clients {
		w.printf("\n%s (%s)\n", c.Client, c.Checked)
		for i, s := range c.Sources {
			detail := ""
			if s.Detail != "" {
				detail = ": " + s.Detail
			}
			w.printf("  %d. %s %s %s%s\n", i+1, s.Outcome, s.Name, s.Where, detail)
		}
		switch {
		case c.Manual:
			w.printf("  cannot be simulated; type by hand: %s\n", c.Expected)
		case c.Settings != nil:
			w.printf("  ends up with: %s\n", c.Settings)
		default:
			w.printf("  ends up with: nothing; the settings must be typed by hand\n")
		}
		if c.Expected != nil && !c.Manual && (c.Settings == nil || !sameSettings(*c.Settings, *c.Expected)) {
			w.printf("  the policy gives: %s\n", c.Expected)
		}
		writeFindings(w, "  ", c.Findings)
	}
	return w.err
}
