// Package bound holds a connection to a context's deadline, whatever
// deadlines a client library sets on it: the probe's checks and the
// delivery agent's SMTP sessions both run under our limits, never a
// library's default.
package bound

import (
	"context"
	"net"
	"sync"
	"time"
)

// Conn returns c held to ctx: every deadline set on it (by us, by TLS,
// by a client library such as go-smtp, whose default of five minutes per
// command once replaced the probe's limit) is cut to ctx's deadline, and
// when ctx ends every read and write returns at once. So no library
// default can make a step outlive its limit, and stopping the probe
// (SIGTERM, a closed web request) ends its connections within moments.
func Conn(ctx context.Context, c net.Conn) net.Conn {
	b := &boundConn{Conn: c}
	b.limit, b.hasLimit = ctx.Deadline()
	_ = b.SetDeadline(time.Time{})
	b.stop = context.AfterFunc(ctx, func() {
		b.mu.Lock()
		b.ended = true
		b.mu.Unlock()
		_ = c.SetDeadline(time.Unix(1, 0))
	})
	return b
}

type boundConn struct {
	net.Conn
	limit    time.Time
	hasLimit bool
	stop     func() bool

	mu    sync.Mutex
	ended bool
}

// clamp returns t cut to the limit (a zero t, "no deadline", is the
// limit); once ctx has ended, a time in the past.
func (b *boundConn) clamp(t time.Time) time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ended {
		return time.Unix(1, 0)
	}
	if b.hasLimit && (t.IsZero() || t.After(b.limit)) {
		return b.limit
	}
	return t
}

func (b *boundConn) SetDeadline(t time.Time) error      { return b.Conn.SetDeadline(b.clamp(t)) }
func (b *boundConn) SetReadDeadline(t time.Time) error  { return b.Conn.SetReadDeadline(b.clamp(t)) }
func (b *boundConn) SetWriteDeadline(t time.Time) error { return b.Conn.SetWriteDeadline(b.clamp(t)) }

func (b *boundConn) Close() error {
	b.stop()
	return b.Conn.Close()
}
