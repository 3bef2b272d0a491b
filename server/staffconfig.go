package server

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"

	"mailsetup/server/accounts"
)

// StaffConfig configures the staff console (/staff/) and the support
// API (/api/v1/). Without users and tokens both answer 404.
type StaffConfig struct {
	// IdleMinutes signs a staff member out after this long without a
	// request. Default 30.
	IdleMinutes int `toml:"idle_minutes"`
	// AuditLog is the file every lookup, probe and sign-in is appended
	// to, one JSON object per line. Default "audit.log" in data_dir.
	AuditLog string `toml:"audit_log"`
	// Users sign in to the console.
	Users []StaffUser `toml:"user"`
	// Tokens authenticate support tools to the API (Authorization:
	// Bearer <token>).
	Tokens []StaffToken `toml:"token"`
}

// StaffUser is a staff member; create the hash with `mailsetup staff
// hash` (argon2id, the same scheme as the mail accounts).
type StaffUser struct {
	Name         string `toml:"name"`
	PasswordHash string `toml:"password_hash"`
}

// StaffToken is an API token: only its SHA-256 is stored (`mailsetup
// staff token NAME` prints a new token and this hash).
type StaffToken struct {
	Name string `toml:"name"`
	// SHA256 is the token's SHA-256, lower-case hex.
	SHA256 string `toml:"sha256"`
}

// ObservationsConfig bounds what the server remembers of each account's
// clients (the staff console's "what the server saw").
type ObservationsConfig struct {
	// RetentionDays: how long observations are kept. Default 30.
	RetentionDays int `toml:"retention_days"`
	// MaxAccounts: how many accounts are remembered; the least recently
	// seen is forgotten first. Default 50000.
	MaxAccounts int `toml:"max_accounts"`
	// File is the snapshot, rewritten every 30 seconds and at shutdown.
	// Default "observations.json" in data_dir.
	File string `toml:"file"`
}

// SelfHelpConfig limits the customers' "Check my settings" on the
// self-help page.
type SelfHelpConfig struct {
	// ChecksPerIPPerHour per client address (IPv6: its /64). Default 30.
	ChecksPerIPPerHour int `toml:"checks_per_ip_per_hour"`
	// ChecksPerAddressPerHour per checked email address. Default 10.
	ChecksPerAddressPerHour int `toml:"checks_per_address_per_hour"`
}

var staffName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

func (c *Config) staffDefaults() {
	setDefault(&c.Staff.IdleMinutes, 30)
	if c.Staff.AuditLog == "" {
		c.Staff.AuditLog = "audit.log"
	}
	setDefault(&c.SelfHelp.ChecksPerIPPerHour, 30)
	setDefault(&c.SelfHelp.ChecksPerAddressPerHour, 10)
	setDefault(&c.Observations.RetentionDays, 30)
	setDefault(&c.Observations.MaxAccounts, 50_000)
	if c.Observations.File == "" {
		c.Observations.File = "observations.json"
	}
}

func (c *Config) validateStaff(add func(string, ...any)) {
	if c.Staff.IdleMinutes < 1 || c.Staff.IdleMinutes > 24*60 {
		add("staff.idle_minutes = %d: want 1 to 1440", c.Staff.IdleMinutes)
	}
	seen := map[string]bool{}
	for i, u := range c.Staff.Users {
		key := fmt.Sprintf("staff.user[%d]", i)
		if !staffName.MatchString(u.Name) {
			add("%s.name = %q: want 1 to 64 letters, digits, '.', '_', '-' or '@'", key, u.Name)
		} else if seen[strings.ToLower(u.Name)] {
			add("%s.name = %q: configured twice", key, u.Name)
		}
		seen[strings.ToLower(u.Name)] = true
		if err := accounts.ValidHash(u.PasswordHash); err != nil {
			add("%s.password_hash for %q: %v; create one with `mailsetup staff hash %s`", key, u.Name, err, u.Name)
		}
	}
	for i, tk := range c.Staff.Tokens {
		key := fmt.Sprintf("staff.token[%d]", i)
		if !staffName.MatchString(tk.Name) {
			add("%s.name = %q: want 1 to 64 letters, digits, '.', '_', '-' or '@'", key, tk.Name)
		}
		if b, err := hex.DecodeString(tk.SHA256); err != nil || len(b) != sha256.Size {
			add("%s.sha256 for %q: want 64 hex digits from `mailsetup staff token`", key, tk.Name)
		}
	}
	if c.SelfHelp.ChecksPerIPPerHour < 1 || c.SelfHelp.ChecksPerAddressPerHour < 1 {
		add("self_help.checks_per_ip_per_hour = %d, self_help.checks_per_address_per_hour = %d: want positive numbers",
			c.SelfHelp.ChecksPerIPPerHour, c.SelfHelp.ChecksPerAddressPerHour)
	}
	if c.Observations.RetentionDays < 1 || c.Observations.RetentionDays > 366 {
		add("observations.retention_days = %d: want 1 to 366", c.Observations.RetentionDays)
	}
	if c.Observations.MaxAccounts < 1 {
		add("observations.max_accounts = %d: want a positive number", c.Observations.MaxAccounts)
	}
}
