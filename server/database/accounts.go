package database

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"mailsetup/server/accounts"
)

// kindAccount: an account changed; the body is {"address": key}.
const kindAccount = "account"

// Accounts is the accounts and aliases in the database, for
// accounts.OpenShared.
type Accounts struct {
	db *DB
}

// Accounts returns the database's account store.
func (d *DB) Accounts() *Accounts { return &Accounts{db: d} }

const selectAccounts = `SELECT a.address, a.password_hash, a.quota_bytes, a.created, a.changed,
	coalesce(array_agg(al.address ORDER BY al.alias) FILTER (WHERE al.alias IS NOT NULL), '{}')
	FROM accounts a LEFT JOIN aliases al ON al.account = a.key`

func scanAccounts(rows pgx.Rows) ([]accounts.Account, error) {
	defer rows.Close()
	var out []accounts.Account
	for rows.Next() {
		var a accounts.Account
		if err := rows.Scan(&a.Address, &a.PasswordHash, &a.QuotaBytes, &a.Created, &a.Changed, &a.Aliases); err != nil {
			return nil, err
		}
		a.Created, a.Changed = a.Created.UTC(), a.Changed.UTC()
		if len(a.Aliases) == 0 {
			a.Aliases = nil
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// All returns every account.
func (s *Accounts) All(ctx context.Context) ([]accounts.Account, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*queryTimeout)
	defer cancel()
	rows, err := s.db.pool.Query(ctx, selectAccounts+` GROUP BY a.key ORDER BY a.key`)
	if err != nil {
		s.db.noteErr(connErr(err))
		return nil, err
	}
	return scanAccounts(rows)
}

// One returns the account with the lower-case address key.
func (s *Accounts) One(ctx context.Context, key string) (accounts.Account, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	rows, err := s.db.pool.Query(ctx, selectAccounts+` WHERE a.key = $1 GROUP BY a.key`, key)
	if err != nil {
		s.db.noteErr(connErr(err))
		return accounts.Account{}, false, err
	}
	list, err := scanAccounts(rows)
	if err != nil || len(list) == 0 {
		return accounts.Account{}, false, err
	}
	return list[0], true, nil
}

// Apply makes one change and appends it to the feed, in one
// transaction: either both happen or neither.
func (s *Accounts) Apply(ctx context.Context, c accounts.Change) error {
	key := strings.ToLower(c.Address)
	// The alias too: a replica may have cached that it names no one.
	body, _ := json.Marshal(struct {
		Address string `json:"address"`
		Alias   string `json:"alias,omitempty"`
	}{key, strings.ToLower(c.Alias)})
	err := s.db.insert(ctx, []change{{Kind: kindAccount, Body: body}}, func(tx pgx.Tx) error {
		return applyAccount(ctx, tx, key, c)
	})
	if err != nil && connErr(err) != nil {
		return fmt.Errorf("%w (nothing was changed): %v", ErrUnavailable, err)
	}
	if errors.Is(err, errRefused) {
		return errors.Unwrap(err)
	}
	return err
}

// refused marks an error as the database's answer to the change.
type refusedErr struct{ err error }

func (e refusedErr) Error() string        { return e.err.Error() }
func (e refusedErr) Unwrap() error        { return e.err }
func (e refusedErr) Is(target error) bool { return target == errRefused }

func refuse(format string, args ...any) error { return refusedErr{fmt.Errorf(format, args...)} }

func applyAccount(ctx context.Context, tx pgx.Tx, key string, c accounts.Change) error {
	exists := func(table, col, k string) (bool, error) {
		var n int
		err := tx.QueryRow(ctx, `SELECT count(*) FROM `+table+` WHERE `+col+` = $1`, k).Scan(&n)
		return n > 0, err
	}
	mustExist := func() error {
		ok, err := exists("accounts", "key", key)
		if err == nil && !ok {
			err = refuse("%w: %s", accounts.ErrNotFound, c.Address)
		}
		return err
	}
	var err error
	switch c.Op {
	case accounts.OpAdd:
		var taken bool
		if taken, err = exists("accounts", "key", key); err == nil && taken {
			return refuse("%w: %s", accounts.ErrExists, c.Address)
		}
		if taken, err = exists("aliases", "alias", key); err == nil && taken {
			return refuse("%w: %s is an alias", accounts.ErrExists, c.Address)
		}
		if err == nil {
			a := c.Account
			_, err = tx.Exec(ctx, `INSERT INTO accounts (key, address, password_hash, quota_bytes, created, changed) VALUES ($1, $2, $3, $4, $5, $6)`,
				key, a.Address, a.PasswordHash, a.QuotaBytes, a.Created, a.Changed)
		}
	case accounts.OpPassword:
		if err = mustExist(); err == nil {
			_, err = tx.Exec(ctx, `UPDATE accounts SET password_hash = $2, changed = $3 WHERE key = $1`, key, c.Hash, c.Changed)
		}
	case accounts.OpQuota:
		if err = mustExist(); err == nil {
			_, err = tx.Exec(ctx, `UPDATE accounts SET quota_bytes = $2 WHERE key = $1`, key, c.Quota)
		}
	case accounts.OpRemove:
		if err = mustExist(); err == nil {
			_, err = tx.Exec(ctx, `DELETE FROM accounts WHERE key = $1`, key)
		}
	case accounts.OpAddAlias:
		al := strings.ToLower(c.Alias)
		if err = mustExist(); err != nil {
			return err
		}
		var owner string
		switch err = tx.QueryRow(ctx, `SELECT a.address FROM aliases al JOIN accounts a ON a.key = al.account WHERE al.alias = $1`, al).Scan(&owner); {
		case err == nil:
			return refuse("%w: %s is already an alias of %s", accounts.ErrExists, c.Alias, owner)
		case !errors.Is(err, pgx.ErrNoRows):
			return err
		}
		var taken bool
		if taken, err = exists("accounts", "key", al); err == nil && taken {
			return refuse("%w: %s is an account", accounts.ErrExists, c.Alias)
		}
		if err == nil {
			_, err = tx.Exec(ctx, `INSERT INTO aliases (alias, address, account) VALUES ($1, $2, $3)`, al, c.Alias, key)
		}
	case accounts.OpRemoveAlias:
		if err = mustExist(); err != nil {
			return err
		}
		var tag interface{ RowsAffected() int64 }
		tag, err = tx.Exec(ctx, `DELETE FROM aliases WHERE alias = $1 AND account = $2`, strings.ToLower(c.Alias), key)
		if err == nil && tag.RowsAffected() == 0 {
			return refuse("%w: %s is not an alias of %s", accounts.ErrNotFound, c.Alias, c.Address)
		}
	default:
		return refuse("unknown account change %q", c.Op)
	}
	return err
}

// FollowAccounts makes store forget its cached copy of each account
// (and alias) another replica changed.
func (f *Feed) FollowAccounts(store *accounts.Store) {
	f.Handle(kindAccount, func(ctx context.Context, body []byte) {
		var b struct{ Address, Alias string }
		if json.Unmarshal(body, &b) != nil {
			return
		}
		for _, k := range []string{b.Address, b.Alias} {
			if k == "" {
				continue
			}
			if err := store.Refresh(ctx, k); err != nil {
				f.lost.Store(true) // read them all when the database is back
				f.db.log.Warn("refreshing an account another replica changed", "account", k, "err", err)
			}
		}
	})
	f.resync = append(f.resync, store.RefreshAll)
}

// selectAccountPage is one page of accounts by key, each with its
// aliases (an index scan on the keys, one on aliases_account per row).
const selectAccountPage = `SELECT a.address, a.password_hash, a.quota_bytes, a.created, a.changed,
	coalesce((SELECT array_agg(al.address ORDER BY al.alias) FROM aliases al WHERE al.account = a.key), '{}')
	FROM accounts a`

// eachPage is how many accounts Each reads per statement (a variable
// for the tests).
var eachPage = 5000

// Lookup returns the account whose lower-case address or alias is key
// (one statement, by primary key).
func (s *Accounts) Lookup(ctx context.Context, key string) (accounts.Account, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	rows, err := s.db.pool.Query(ctx, selectAccountPage+` WHERE a.key = $1 OR a.key = (SELECT account FROM aliases WHERE alias = $1)`, key)
	if err != nil {
		s.db.noteErr(connErr(err))
		return accounts.Account{}, false, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	list, err := scanAccounts(rows)
	if err != nil {
		s.db.noteErr(connErr(err))
		return accounts.Account{}, false, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if len(list) == 0 {
		return accounts.Account{}, false, nil
	}
	return list[0], true, nil
}

// Each calls fn with every account in key order, eachPage at a time
// (keyset pages: no statement holds more, none stays open while fn
// runs). Each page is two index range scans, the accounts and then the
// aliases of the same key range, joined here: a correlated subquery
// per account took ten times as long.
func (s *Accounts) Each(ctx context.Context, fn func(accounts.Account) error) error {
	after := ""
	for {
		page, err := s.page(ctx, after)
		if err != nil {
			s.db.noteErr(connErr(err))
			return fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		for _, a := range page {
			if err := fn(a); err != nil {
				return err
			}
		}
		if len(page) < eachPage {
			return nil
		}
		after = strings.ToLower(page[len(page)-1].Address)
	}
}

// page reads the accounts after the key after, with their aliases.
func (s *Accounts) page(ctx context.Context, after string) ([]accounts.Account, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	rows, err := s.db.pool.Query(ctx, `SELECT address, password_hash, quota_bytes, created, changed, '{}'::text[]
		FROM accounts WHERE key > $1 ORDER BY key LIMIT $2`, after, eachPage)
	if err != nil {
		return nil, err
	}
	page, err := scanAccounts(rows)
	if err != nil || len(page) == 0 {
		return page, err
	}
	last := strings.ToLower(page[len(page)-1].Address)
	rows, err = s.db.pool.Query(ctx, `SELECT account, address FROM aliases WHERE account > $1 AND account <= $2 ORDER BY account, alias`, after, last)
	if err != nil {
		return nil, err
	}
	byKey := map[string][]string{}
	for rows.Next() {
		var key, alias string
		if err := rows.Scan(&key, &alias); err != nil {
			rows.Close()
			return nil, err
		}
		byKey[key] = append(byKey[key], alias)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range page {
		page[i].Aliases = byKey[strings.ToLower(page[i].Address)]
	}
	return page, nil
}

// Search returns up to limit account addresses, in key order, whose
// key or an alias contains q (lower case).
func (s *Accounts) Search(ctx context.Context, q string, limit int) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	rows, err := s.db.pool.Query(ctx, `SELECT a.address FROM accounts a
		WHERE strpos(a.key, $1) > 0 OR EXISTS (SELECT 1 FROM aliases al WHERE al.account = a.key AND strpos(al.alias, $1) > 0)
		ORDER BY a.key LIMIT $2`, q, limit)
	if err != nil {
		s.db.noteErr(connErr(err))
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// AddMany adds accounts with their aliases in one transaction (db
// import: a million accounts one transaction each took hours). An
// account whose address is already an account or an alias is left out
// and not counted; an alias that is taken (by another account, or as an
// account's address) refuses the whole batch, naming it, as Apply
// refuses it. Every address and alias goes on the change feed, so that
// a replica that cached it as unknown reads it again.
func (s *Accounts) AddMany(ctx context.Context, accts []accounts.Account) (added int, err error) {
	if len(accts) == 0 {
		return 0, nil
	}
	var keys, addrs, hashes []string
	var quotas []int64
	var created, changed []time.Time
	var aliases, aliasAddrs, owners []string
	feed := make([]change, 0, len(accts))
	for _, a := range accts {
		key := strings.ToLower(a.Address)
		keys, addrs, hashes = append(keys, key), append(addrs, a.Address), append(hashes, a.PasswordHash)
		quotas, created, changed = append(quotas, a.QuotaBytes), append(created, a.Created), append(changed, a.Changed)
		body, _ := json.Marshal(struct {
			Address string `json:"address"`
		}{key})
		feed = append(feed, change{Kind: kindAccount, Body: body})
		for _, al := range a.Aliases {
			aliases, aliasAddrs, owners = append(aliases, strings.ToLower(al)), append(aliasAddrs, al), append(owners, key)
			body, _ := json.Marshal(struct {
				Address string `json:"address"`
				Alias   string `json:"alias"`
			}{key, strings.ToLower(al)})
			feed = append(feed, change{Kind: kindAccount, Body: body})
		}
	}
	err = s.db.insert(ctx, feed, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `INSERT INTO accounts (key, address, password_hash, quota_bytes, created, changed)
			SELECT k, a, h, q, c, ch FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::timestamptz[], $6::timestamptz[]) AS u(k, a, h, q, c, ch)
			WHERE NOT EXISTS (SELECT 1 FROM aliases WHERE alias = u.k)
			ON CONFLICT (key) DO NOTHING RETURNING key`, keys, addrs, hashes, quotas, created, changed)
		if err != nil {
			return err
		}
		inserted, err := returned(rows)
		if err != nil {
			return err
		}
		added = len(inserted)
		var als, alAddrs, alOwners []string
		seen := map[string]string{}
		for i, o := range owners {
			if prev, ok := seen[aliases[i]]; ok && prev != o {
				return refuse("%w: alias %s is given to both %s and %s", accounts.ErrExists, aliasAddrs[i], prev, o)
			}
			seen[aliases[i]] = o
			if inserted[o] {
				als, alAddrs, alOwners = append(als, aliases[i]), append(alAddrs, aliasAddrs[i]), append(alOwners, o)
			}
		}
		if len(als) == 0 {
			return nil
		}
		rows, err = tx.Query(ctx, `INSERT INTO aliases (alias, address, account)
			SELECT al, ad, o FROM unnest($1::text[], $2::text[], $3::text[]) AS u(al, ad, o)
			WHERE NOT EXISTS (SELECT 1 FROM accounts WHERE key = u.al)
			ON CONFLICT (alias) DO NOTHING RETURNING alias`, als, alAddrs, alOwners)
		if err != nil {
			return err
		}
		done, err := returned(rows)
		if err != nil {
			return err
		}
		for i, al := range als {
			if !done[al] {
				return refuse("%w: alias %s of %s is taken (an account, or another account's alias)", accounts.ErrExists, alAddrs[i], alOwners[i])
			}
		}
		return nil
	})
	if err != nil && connErr(err) != nil {
		return 0, fmt.Errorf("%w (nothing was changed): %v", ErrUnavailable, err)
	}
	if errors.Is(err, errRefused) {
		return 0, errors.Unwrap(err)
	}
	if err != nil {
		return 0, err
	}
	return added, nil
}

// returned reads the keys an INSERT ... RETURNING gave back.
func returned(rows pgx.Rows) (map[string]bool, error) {
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		out[k] = true
	}
	return out, rows.Err()
}
