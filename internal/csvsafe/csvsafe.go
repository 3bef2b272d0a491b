// Package csvsafe writes CSV that a spreadsheet opens as data: a cell
// that a spreadsheet would run as a formula (OWASP's "CSV injection")
// gets a leading "'". The import's reports and the staff console's
// overview write their CSV through it; what they quote (a UIDL, a reason
// from the old server, a domain) may start with "=", "+", "-" or "@".
package csvsafe

import (
	"encoding/csv"
	"io"
	"strings"
)

// Cell returns s, with a leading "'" when a spreadsheet would read it as
// a formula (it starts with "=", "+", "-", "@", a tab or a carriage
// return).
func Cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// WriteAll writes rows as CSV, every cell through Cell (in place).
func WriteAll(w io.Writer, rows [][]string) error {
	for _, row := range rows {
		for i, cell := range row {
			row[i] = Cell(cell)
		}
	}
	return csv.NewWriter(w).WriteAll(rows)
}
