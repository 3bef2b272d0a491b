package finding_test

import (
	"os"
	"strings"
	"testing"

	"mailsetup/finding"
)

// TestREADMEListsEveryFinding: every finding id is documented in the
// README's findings table, with its severity's name and whose fault it
// is, so support staff can look each one up.
func TestREADMEListsEveryFinding(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(string(data), "\n") {
		cells := strings.Split(line, " | ")
		if len(cells) < 4 || !strings.HasPrefix(cells[0], "| `") {
			continue
		}
		rows[strings.Trim(cells[0], "|` ")] = cells
	}
	for _, e := range finding.Catalog {
		cells, ok := rows[e.ID]
		if !ok {
			t.Errorf("README's findings table lacks %s", e.ID)
			continue
		}
		if cells[2] != string(e.Fault) {
			t.Errorf("README's findings table: %s has fault %q, the catalog %q", e.ID, cells[2], e.Fault)
		}
	}
}
