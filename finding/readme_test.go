package finding_test

import (
	"os"
	"strings"
	"testing"

	"mailsetup/finding"
)

// TestREADMEListsEveryFinding: every finding id is documented in the
// README's findings table, so support staff can look each one up.
func TestREADMEListsEveryFinding(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(data)
	for _, e := range finding.Catalog {
		if !strings.Contains(readme, "| `"+e.ID+"` |") {
			t.Errorf("README's findings table lacks %s", e.ID)
		}
	}
}
