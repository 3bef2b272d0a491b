package csvsafe_test

import (
	"strings"
	"testing"

	"mailsetup/internal/csvsafe"
)

// TestCellNoFormula: a cell a spreadsheet would run as a formula gets a
// leading "'"; others are as they were.
func TestCellNoFormula(t *testing.T) {
	for in, want := range map[string]string{
		"=HYPERLINK(\"x\")": "'=HYPERLINK(\"x\")", "+1": "'+1", "-2": "'-2", "@SUM(A1)": "'@SUM(A1)", "\tx": "'\tx",
		"UID7-1234": "UID7-1234", "": "", "a=b": "a=b", "12": "12",
	} {
		if got := csvsafe.Cell(in); got != want {
			t.Errorf("Cell(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWriteAll(t *testing.T) {
	var b strings.Builder
	if err := csvsafe.WriteAll(&b, [][]string{{"domain", "n"}, {"=cmd|' /C calc'!A0", "3"}, {"a,b", "-1"}}); err != nil {
		t.Fatal(err)
	}
	if want := "domain,n\n'=cmd|' /C calc'!A0,3\n\"a,b\",'-1\n"; b.String() != want {
		t.Errorf("got %q, want %q", b.String(), want)
	}
}
