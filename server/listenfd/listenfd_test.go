package listenfd

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestFromEnv: the variables are read once and removed; sockets for
// another process are ignored; a bad count, names that do not match the
// count and a wrong parent are errors that say what is wrong. (Taking
// real descriptors is tested with systemd-socket-activate and the
// upgrade in cmd/mailsetup.)
func TestFromEnv(t *testing.T) {
	me, parent := strconv.Itoa(os.Getpid()), strconv.Itoa(os.Getppid())
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string // error text; "" for an empty set
	}{
		{"none", nil, ""},
		{"another process", map[string]string{"LISTEN_FDS": "1", "LISTEN_PID": "1", "LISTEN_FDNAMES": "http"}, ""},
		{"no pid", map[string]string{"LISTEN_FDS": "1", "LISTEN_FDNAMES": "http"}, ""},
		{"bad count", map[string]string{"LISTEN_FDS": "many", "LISTEN_PID": me}, `LISTEN_FDS = "many"`},
		{"names do not match", map[string]string{"LISTEN_FDS": "0", "LISTEN_PID": me, "LISTEN_FDNAMES": "http:https"}, "names 2 sockets, LISTEN_FDS = 0"},
		{"wrong parent", map[string]string{"LISTEN_FDS": "0", UpgradeEnv: "1"}, UpgradeEnv + ` = "1" is not this process's parent`},
		{"from the parent", map[string]string{"LISTEN_FDS": "0", UpgradeEnv: parent}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			s, err := FromEnv()
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err %v, want %q", err, tc.want)
				}
			} else if err != nil || len(s.Names()) != 0 {
				t.Fatalf("got %v, %v", s.Names(), err)
			}
			for _, k := range []string{"LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", UpgradeEnv} {
				if _, set := os.LookupEnv(k); set {
					t.Errorf("%s is still set", k)
				}
			}
			if tc.name == "from the parent" && !s.FromParent() {
				t.Error("FromParent is false")
			}
			if err := s.CloseUnused(); err != nil && tc.want == "" {
				t.Error(err)
			}
		})
	}
}
