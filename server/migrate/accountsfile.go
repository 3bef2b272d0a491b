package migrate

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// The accounts file of an import: CSV (one account a line; an optional
// header line starting with "address"; lines starting with "#" are
// comments) or JSON (an array of objects with the same names).
//
//	POP3:    address,username,password   (the old server's login)
//	Maildir: address,path                (the account's Maildir)
//	mbox:    address,path                (the account's mbox file)

// ReadPOP3Accounts reads the accounts of a POP3 import.
func ReadPOP3Accounts(r io.Reader) ([]POP3Account, error) {
	var out []POP3Account
	err := readAccounts(r, &out, []string{"address", "username", "password"}, func(f []string) {
		out = append(out, POP3Account{Address: f[0], Username: f[1], Password: f[2]})
	})
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for i, a := range out {
		if a.Address == "" || a.Username == "" {
			return nil, fmt.Errorf("account %d: address and username may not be empty", i+1)
		}
		if err := once(seen, a.Address); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ReadMaildirAccounts reads the accounts of a Maildir import.
func ReadMaildirAccounts(r io.Reader) ([]MaildirAccount, error) {
	var out []MaildirAccount
	err := readAccounts(r, &out, []string{"address", "path"}, func(f []string) {
		out = append(out, MaildirAccount{Address: f[0], Path: f[1]})
	})
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for i, a := range out {
		if a.Address == "" || a.Path == "" {
			return nil, fmt.Errorf("account %d: address and path may not be empty", i+1)
		}
		if err := once(seen, a.Address); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ReadMboxAccounts reads the accounts of an mbox import.
func ReadMboxAccounts(r io.Reader) ([]MboxAccount, error) {
	list, err := ReadMaildirAccounts(r)
	out := make([]MboxAccount, len(list))
	for i, a := range list {
		out[i] = MboxAccount(a)
	}
	return out, err
}

// readAccounts decodes JSON into out, or CSV records of the named
// columns through add.
func readAccounts(r io.Reader, out any, columns []string, add func([]string)) error {
	data, err := io.ReadAll(io.LimitReader(r, 64<<20))
	if err != nil {
		return err
	}
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '[' {
		dec := json.NewDecoder(bytes.NewReader(t))
		dec.DisallowUnknownFields()
		if err := dec.Decode(out); err != nil {
			return fmt.Errorf("accounts (JSON): %w", err)
		}
		return nil
	}
	cr := csv.NewReader(bytes.NewReader(data))
	cr.Comment = '#'
	cr.FieldsPerRecord = -1
	first := true
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("accounts (CSV): %w", err)
		}
		if first && strings.EqualFold(strings.TrimSpace(rec[0]), "address") {
			first = false
			continue
		}
		first = false
		line, _ := cr.FieldPos(0)
		if len(rec) != len(columns) {
			return fmt.Errorf("accounts (CSV) line %d: %d fields, want %d: %s", line, len(rec), len(columns), strings.Join(columns, ","))
		}
		rec[0] = strings.TrimSpace(rec[0])
		add(rec)
	}
}

// once refuses an address listed before: two imports into one account at
// once would race for the same messages.
func once(seen map[string]bool, address string) error {
	key := strings.ToLower(address)
	if seen[key] {
		return fmt.Errorf("account %s is listed twice", address)
	}
	seen[key] = true
	return nil
}
