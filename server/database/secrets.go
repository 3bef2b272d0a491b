package database

import (
	"context"
	"crypto/rand"
)

// Secret returns the random secret of this name that every replica
// shares (the web forms' signing key: a form one replica served is
// posted to another behind a load balancer); the first replica to ask
// makes it.
func (d *DB) Secret(ctx context.Context, name string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	fresh := make([]byte, 32)
	rand.Read(fresh)
	if _, err := d.pool.Exec(ctx, `INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, name, fresh); err != nil {
		d.noteErr(connErr(err))
		return nil, err
	}
	var v []byte
	err := d.pool.QueryRow(ctx, `SELECT value FROM secrets WHERE name = $1`, name).Scan(&v)
	d.noteErr(connErr(err))
	return v, err
}
