package filter

import (
	"bufio"
	"errors"
	"io"
	"strconv"
	"strings"
)

// errIDSyntax: the ID arguments do not parse.
var errIDSyntax = errors.New("invalid ID arguments")

// handleID answers the ID command (RFC 2971) and hands the client's
// self-description to the session (Session.ClientID). first is the command's
// first line; literals and continuation lines are read here.
func (c *Conn) handleID(tag string, first []byte) error {
	cmd := append([]byte(nil), first...)
	line := first
	for {
		n, nonSync, ok := literalAtEnd(line)
		if !ok {
			break
		}
		if n > maxIDLitLen || len(cmd)+int(n) > maxIDInput {
			// RFC 2971 §3.3 limits values to 1024 octets.
			if nonSync {
				c.discard, c.inCmd, c.litLeft = true, true, n
			}
			return c.writeOwn(tag + " BAD ID value too long\r\n")
		}
		if !nonSync {
			if err := c.writeOwn("+ Ready for literal data\r\n"); err != nil {
				return err
			}
		}
		lit := make([]byte, n)
		if _, err := io.ReadFull(c.in, lit); err != nil {
			return err
		}
		cmd = append(cmd, lit...)
		next, err := c.in.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				c.discard, c.midLine = true, true
				return c.writeOwn(tag + " BAD ID command too long\r\n")
			}
			return err
		}
		if len(cmd)+len(next) > maxIDInput {
			return c.writeOwn(tag + " BAD ID command too long\r\n")
		}
		cmd = append(cmd, next...)
		line = next
	}
	params, err := parseID(cmd)
	if err != nil {
		return c.writeOwn(tag + " BAD " + err.Error() + "\r\n")
	}
	if b := c.sess.Load(); b != nil && len(params) > 0 {
		b.s.ClientID(params)
	}
	return c.writeOwn("* ID (\"name\" \"" + c.opts.ServerName + "\")\r\n" + tag + " OK ID completed\r\n")
}

// parseID parses `tag ID SP (NIL / "(" key SP nstring *(SP key SP
// nstring) ")") CRLF`, with strings quoted or literal. Keys are
// lower-cased; at most 30 pairs are kept (RFC 2971 §3.3).
func parseID(cmd []byte) (map[string]string, error) {
	p := &idParser{b: cmd}
	// Skip the tag and the command name.
	for range 2 {
		i := p.indexSP()
		if i < 0 {
			return nil, errIDSyntax
		}
		p.i = i + 1
	}
	params := map[string]string{}
	if p.atom() == "NIL" {
		return params, p.end()
	}
	if !p.byte('(') {
		return nil, errIDSyntax
	}
	for first := true; ; first = false {
		if p.byte(')') {
			break
		}
		if !first && !p.byte(' ') {
			return nil, errIDSyntax
		}
		key, ok := p.str()
		if !ok || !p.byte(' ') {
			return nil, errIDSyntax
		}
		val, ok := p.nstring()
		if !ok {
			return nil, errIDSyntax
		}
		if k := strings.ToLower(sanitize(key)); len(params) < 30 && len(k) <= 30 {
			params[k] = sanitize(val)
		}
	}
	return params, p.end()
}

// sanitize keeps printable text only, so that values are safe in logs.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

type idParser struct {
	b []byte
	i int
}

func (p *idParser) indexSP() int {
	for j := p.i; j < len(p.b); j++ {
		switch p.b[j] {
		case ' ':
			return j
		case '\r', '\n':
			return -1
		}
	}
	return -1
}

func (p *idParser) byte(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *idParser) end() error {
	p.byte(' ') // some clients end with a space
	p.byte('\r')
	if !p.byte('\n') || p.i != len(p.b) {
		return errIDSyntax
	}
	return nil
}

func (p *idParser) atom() string {
	j := p.i
	for j < len(p.b) && strings.IndexByte(" ()\r\n\"{", p.b[j]) < 0 {
		j++
	}
	s := string(p.b[p.i:j])
	if strings.EqualFold(s, "NIL") {
		p.i = j
		return "NIL"
	}
	return ""
}

func (p *idParser) nstring() (string, bool) {
	if p.atom() == "NIL" {
		return "", true
	}
	return p.str()
}

// str reads a quoted string or a literal.
func (p *idParser) str() (string, bool) {
	switch {
	case p.byte('"'):
		var sb strings.Builder
		for p.i < len(p.b) {
			c := p.b[p.i]
			p.i++
			switch c {
			case '"':
				return sb.String(), true
			case '\\':
				if p.i >= len(p.b) {
					return "", false
				}
				sb.WriteByte(p.b[p.i])
				p.i++
			case '\r', '\n':
				return "", false
			default:
				sb.WriteByte(c)
			}
		}
		return "", false
	case p.byte('{'):
		j := p.i
		for j < len(p.b) && p.b[j] >= '0' && p.b[j] <= '9' {
			j++
		}
		n, err := strconv.Atoi(string(p.b[p.i:j]))
		if err != nil {
			return "", false
		}
		p.i = j
		p.byte('+')
		if !p.byte('}') || !p.byte('\r') || !p.byte('\n') || p.i+n > len(p.b) {
			return "", false
		}
		s := string(p.b[p.i : p.i+n])
		p.i += n
		return s, true
	}
	return "", false
}
