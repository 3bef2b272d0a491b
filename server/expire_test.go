package server

import (
	"context"
	"strings"
	"testing"

	"mailsetup/autoconfig"
	"mailsetup/server/mailbackend"
)

func TestPreLoginExpire(t *testing.T) {
	for _, tc := range []struct {
		days []int
		want string
	}{
		{nil, "NEVER"},
		{[]int{0}, "NEVER"},
		{[]int{7}, "7"},
		{[]int{7, 7}, "7"},
		{[]int{0, 0}, "NEVER"},
		{[]int{0, 7}, "7 USER"},
		{[]int{7, 0}, "7 USER"},
		{[]int{14, 7, 0}, "7 USER"},
		{[]int{10, 14}, "10 USER"},
	} {
		var ps []autoconfig.Policy
		for _, d := range tc.days {
			ps = append(ps, autoconfig.Policy{POP: autoconfig.POP3Policy{ExpireDays: d}})
		}
		if got := preLoginExpire(ps); got != tc.want {
			t.Errorf("preLoginExpire(%v) = %q, want %q", tc.days, got, tc.want)
		}
	}
	if mailbackend.ExpireValue(0) != "NEVER" || mailbackend.ExpireValue(3) != "3" {
		t.Errorf("expireValue: %q %q", mailbackend.ExpireValue(0), mailbackend.ExpireValue(3))
	}
}

// TestExpireRefusesWhileServing: the command does not touch the mail
// storage of a running service.
func TestExpireRefusesWhileServing(t *testing.T) {
	dir := t.TempDir()
	created, err := EnsureDefault(dir, DefaultPorts())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(created.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := lockData(cfg) // what Server.Run holds
	if err != nil {
		t.Fatal(err)
	}
	_, err = Expire(context.Background(), cfg, ExpireOptions{})
	if err == nil || !strings.Contains(err.Error(), "mailsetup serve") || !strings.Contains(err.Error(), LockFile) {
		t.Errorf("Expire while locked: %v", err)
	}
	unlock()
	rep, err := Expire(context.Background(), cfg, ExpireOptions{DryRun: true})
	if err != nil || rep.Domains != 0 {
		t.Errorf("Expire after unlock: %+v, %v", rep, err)
	}
}
