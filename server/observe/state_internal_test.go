package observe

import (
	"slices"
	"testing"
)

func TestParseUints(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []uint32
		ok   bool
	}{
		{"[]", []uint32{}, true},
		{"[ ]", []uint32{}, true},
		{"[1,2,3]", []uint32{1, 2, 3}, true},
		{" [ 20419 , 0 ,4294967295 ] ", []uint32{20419, 0, 4294967295}, true},
		{"[4294967296]", nil, false},
		{"[-1]", nil, false},
		{"[01]", nil, false},
		{"[1,]", nil, false},
		{"[,1]", nil, false},
		{"[1,,2]", nil, false},
		{"[1.5]", nil, false},
		{`["1"]`, nil, false},
		{"[1", nil, false},
		{"1]", nil, false},
		{"", nil, false},
		{"[99999999999]", nil, false},
	} {
		got, err := parseUints([]byte(c.in))
		if (err == nil) != c.ok || (c.ok && !slices.Equal(got, c.want)) {
			t.Errorf("parseUints(%q) = %v, %v", c.in, got, err)
		}
	}
}
