package logwatch

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Syslog limits: connections at once (TCP and unix stream), and how
// long a connection may stay silent.
const (
	MaxSyslogConns   = 64
	SyslogIdleTimout = 10 * time.Minute
)

// Listener is a syslog listener's socket(s).
type Listener struct {
	pc net.PacketConn
	ln net.Listener
	// Addr is the address listened on (the port chosen for ":0").
	Addr string
}

// ParseListen checks a syslog listen address: udp://host:port or
// tcp://host:port on a loopback address (syslog has no authentication:
// anyone who can send to it could write observations), or unix:///path
// (datagrams, as syslog(3) sends them) or unix-stream:///path.
func ParseListen(s string) (network, addr string, err error) {
	u, err := url.Parse(s)
	if err != nil {
		return "", "", fmt.Errorf("%q: %w", s, err)
	}
	switch u.Scheme {
	case "udp", "tcp":
		host, _, err := net.SplitHostPort(u.Host)
		if err != nil {
			return "", "", fmt.Errorf("%q: %w", s, err)
		}
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.IsLoopback() {
			return "", "", fmt.Errorf("%q: listen on a loopback address (127.0.0.1 or ::1): syslog has no authentication", s)
		}
		return u.Scheme, u.Host, nil
	case "unix":
		return "unixgram", u.Path, nil
	case "unix-stream":
		return "unix", u.Path, nil
	}
	return "", "", fmt.Errorf("%q: want udp://127.0.0.1:PORT, tcp://127.0.0.1:PORT, unix:///PATH or unix-stream:///PATH", s)
}

// Listen opens a syslog listener (see ParseListen). A unix socket left
// by an earlier run is replaced.
func Listen(listen string) (*Listener, error) {
	network, addr, err := ParseListen(listen)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(network, "unix") {
		if fi, err := os.Lstat(addr); err == nil && fi.Mode()&os.ModeSocket != 0 {
			os.Remove(addr)
		}
	}
	l := &Listener{}
	switch network {
	case "udp", "unixgram":
		l.pc, err = net.ListenPacket(network, addr)
		if err == nil {
			l.Addr = l.pc.LocalAddr().String()
		}
	default:
		l.ln, err = net.Listen(network, addr)
		if err == nil {
			l.Addr = l.ln.Addr().String()
		}
	}
	if err != nil {
		return nil, err
	}
	if network == "unixgram" || network == "unix" {
		// The daemons' syslog runs as another user.
		_ = os.Chmod(addr, 0o666)
	}
	return l, nil
}

// Close closes the listener.
func (l *Listener) Close() error {
	if l.pc != nil {
		return l.pc.Close()
	}
	return l.ln.Close()
}

// Serve reads syslog messages from l until ctx ends or l is closed.
func (w *Watcher) Serve(ctx context.Context, l *Listener) error {
	stop := context.AfterFunc(ctx, func() { l.Close() })
	defer stop()
	if l.pc != nil {
		buf := make([]byte, MaxLine+1024)
		for {
			n, _, err := l.pc.ReadFrom(buf)
			if err != nil {
				if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
					return nil
				}
				return err
			}
			w.Syslog(string(buf[:n]))
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, MaxSyslogConns)
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	defer func() {
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
	}()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		select {
		case slots <- struct{}{}:
		default:
			w.log.Info("syslog connection refused: too many", "max", MaxSyslogConns)
			c.Close()
			continue
		}
		mu.Lock()
		conns[c] = true
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			w.serveStream(c)
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
			c.Close()
		}()
	}
}

// serveStream reads one stream connection: messages framed by octet
// counting ("123 <34>1 ...", RFC 6587) or ended by a newline.
func (w *Watcher) serveStream(c net.Conn) {
	r := bufio.NewReaderSize(c, 64<<10)
	for {
		_ = c.SetReadDeadline(time.Now().Add(SyslogIdleTimout))
		b, err := r.Peek(1)
		if err != nil {
			return
		}
		if b[0] >= '1' && b[0] <= '9' {
			// Octet counting: the length, a space, the message.
			head, err := r.Peek(min(r.Buffered(), 8))
			if err == nil {
				if sp := strings.IndexByte(string(head), ' '); sp > 0 {
					n, err := strconv.Atoi(string(head[:sp]))
					if err == nil && n > 0 {
						if n > MaxLine {
							w.Bad(ResultTooLong, string(head))
							return
						}
						if _, err := r.Discard(sp + 1); err != nil {
							return
						}
						msg := make([]byte, n)
						if _, err := ioReadFull(r, msg); err != nil {
							return
						}
						w.Syslog(string(msg))
						continue
					}
				}
			}
		}
		line, tooLong, err := readLine(r)
		if tooLong {
			w.Bad(ResultTooLong, line)
		} else if line != "" {
			w.Syslog(line)
		}
		if err != nil {
			return
		}
	}
}

// readLine reads up to a newline; a line over MaxLine is consumed and
// reported too long (its start returned as the sample).
func readLine(r *bufio.Reader) (line string, tooLong bool, err error) {
	var buf []byte
	for {
		part, err := r.ReadSlice('\n')
		if !tooLong {
			if len(buf)+len(part) > MaxLine+1 {
				tooLong = true
				buf = buf[:min(len(buf), 200)]
			} else {
				buf = append(buf, part...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return strings.TrimRight(string(buf), "\r\n"), tooLong, err
	}
}

func ioReadFull(r *bufio.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Syslog handles one syslog message: RFC 5424 ("<34>1 2026-12-07T...
// host app procid msgid [sd] msg") or RFC 3164 ("<34>Dec  7 00:47:36
// host tag[pid]: msg", with or without the host).
func (w *Watcher) Syslog(m string) Result {
	m = strings.TrimRight(m, "\r\n\x00")
	if r := checkBytes(m); r != "" {
		w.Bad(r, m)
		return r
	}
	if strings.HasPrefix(m, "<") {
		end := strings.IndexByte(m, '>')
		if end < 2 || end > 4 {
			w.Bad(ResultUnknown, m)
			return ResultUnknown
		}
		if _, err := strconv.Atoi(m[1:end]); err != nil {
			w.Bad(ResultUnknown, m)
			return ResultUnknown
		}
		m = m[end+1:]
		if rest, ok := strings.CutPrefix(m, "1 "); ok {
			return w.rfc5424(rest)
		}
	}
	return w.Line(m)
}

func (w *Watcher) rfc5424(m string) Result {
	f := strings.SplitN(m, " ", 6)
	if len(f) < 6 {
		w.Bad(ResultUnknown, m)
		return ResultUnknown
	}
	t, err := time.Parse(time.RFC3339Nano, f[0])
	if err != nil {
		w.Bad(ResultBadTime, m)
		return ResultBadTime
	}
	app, procid, rest := f[2], f[3], f[5]
	// Structured data: "-" or one or more [id k="v" ...] elements.
	if strings.HasPrefix(rest, "-") {
		rest = strings.TrimPrefix(rest[1:], " ")
	} else {
		for strings.HasPrefix(rest, "[") {
			i, inQuote := 1, false
			for ; i < len(rest); i++ {
				c := rest[i]
				if c == '\\' {
					i++
					continue
				}
				if c == '"' {
					inQuote = !inQuote
				}
				if c == ']' && !inQuote {
					break
				}
			}
			if i >= len(rest) {
				w.Bad(ResultUnknown, m)
				return ResultUnknown
			}
			rest = rest[i+1:]
		}
		rest = strings.TrimPrefix(rest, " ")
	}
	rest = strings.TrimPrefix(rest, "\ufeff")
	tag := ""
	if app != "-" {
		tag = app
		if procid != "-" {
			tag += "[" + procid + "]"
		}
	}
	return w.Message(t, tag, rest)
}

// LocalAddr is the address listened on.
func (l *Listener) LocalAddr() net.Addr {
	if l.pc != nil {
		return l.pc.LocalAddr()
	}
	return l.ln.Addr()
}
