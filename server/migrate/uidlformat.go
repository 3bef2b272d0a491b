package migrate

import (
	"fmt"
	"strconv"
	"strings"
)

// Dovecot's pop3_uidl_format: how Dovecot computed the UIDL of a message
// it did not have a saved POP3 UIDL for. Given on the command line as the
// old server's setting, it lets a Maildir import give each message the
// UIDL the old server served.

// DefaultUIDLFormat is Dovecot's default pop3_uidl_format.
const DefaultUIDLFormat = "%08Xu%08Xv"

// UIDLVars are the values a pop3_uidl_format refers to.
type UIDLVars struct {
	UID, UIDValidity uint32 // %u, %v: from dovecot-uidlist
	MD5              string // %m: hex MD5 of the message's header
	FileName         string // %f: the Maildir file's base name (up to ":")
	GUID             string // %g: the G field of dovecot-uidlist, or the base name
}

// UIDLFormat is a parsed pop3_uidl_format.
type UIDLFormat struct {
	src   string
	parts []formatPart
}

type formatPart struct {
	lit   string // a literal, when v == 0
	v     byte   // 'u', 'v', 'm', 'f', 'g'
	width int
	zero  bool // pad with 0 instead of spaces
	hex   bool // X: the decimal number as hexadecimal (lower case, as Dovecot writes it)
	upper bool // U
	lower bool // L
}

var longVars = map[string]byte{"uid": 'u', "uidvalidity": 'v', "md5": 'm', "filename": 'f', "guid": 'g'}

// ParseUIDLFormat parses a pop3_uidl_format: literal text and variables
// %u (IMAP UID), %v (UIDVALIDITY), %m (MD5 of the header), %f (file
// name), %g (GUID), also spelled %{uid}, %{uidvalidity}, %{md5},
// %{filename}, %{guid}; each with an optional width (%08u pads with 0,
// %8u with spaces) and modifiers X (a number in hexadecimal), U (upper
// case) and L (lower case). %% is a "%".
func ParseUIDLFormat(format string) (UIDLFormat, error) {
	f := UIDLFormat{src: format}
	if format == "" {
		return f, fmt.Errorf("empty pop3_uidl_format")
	}
	var lit strings.Builder
	for i := 0; i < len(format); i++ {
		if format[i] != '%' {
			lit.WriteByte(format[i])
			continue
		}
		start := i
		i++
		if i < len(format) && format[i] == '%' {
			lit.WriteByte('%')
			continue
		}
		var p formatPart
		if i < len(format) && format[i] == '0' {
			p.zero = true
		}
		j := i
		for j < len(format) && format[j] >= '0' && format[j] <= '9' {
			j++
		}
		if j > i {
			w, err := strconv.Atoi(format[i:j])
			if err != nil || w > 70 {
				return f, fmt.Errorf("pop3_uidl_format %q: width %q at %d: want at most 70", format, format[i:j], i)
			}
			p.width = w
		}
		i = j
	mods:
		for ; i < len(format); i++ {
			switch format[i] {
			case 'X':
				p.hex = true
			case 'U':
				p.upper = true
			case 'L':
				p.lower = true
			default:
				break mods
			}
		}
		if i >= len(format) {
			return f, fmt.Errorf("pop3_uidl_format %q: %q at %d names no variable", format, format[start:], start)
		}
		if format[i] == '{' {
			end := strings.IndexByte(format[i:], '}')
			if end < 0 {
				return f, fmt.Errorf("pop3_uidl_format %q: %%{ at %d is not closed", format, start)
			}
			name := format[i+1 : i+end]
			v, ok := longVars[name]
			if !ok {
				return f, fmt.Errorf("pop3_uidl_format %q: unknown variable %%{%s}; known: uid, uidvalidity, md5, filename, guid", format, name)
			}
			p.v = v
			i += end
		} else {
			switch v := format[i]; v {
			case 'u', 'v', 'm', 'f', 'g':
				p.v = v
			default:
				return f, fmt.Errorf("pop3_uidl_format %q: unknown variable %%%c at %d; known: %%u, %%v, %%m, %%f, %%g", format, v, start)
			}
		}
		if lit.Len() > 0 {
			f.parts = append(f.parts, formatPart{lit: lit.String()})
			lit.Reset()
		}
		f.parts = append(f.parts, p)
	}
	if lit.Len() > 0 {
		f.parts = append(f.parts, formatPart{lit: lit.String()})
	}
	return f, nil
}

// String returns the format as given.
func (f UIDLFormat) String() string { return f.src }

// Needs reports whether the format uses the variable v ('u', 'v', 'm',
// 'f' or 'g').
func (f UIDLFormat) Needs(v byte) bool {
	for _, p := range f.parts {
		if p.v == v {
			return true
		}
	}
	return false
}

// Expand returns the UIDL of a message with the values vars.
func (f UIDLFormat) Expand(vars UIDLVars) string {
	var b strings.Builder
	for _, p := range f.parts {
		if p.v == 0 {
			b.WriteString(p.lit)
			continue
		}
		var s string
		switch p.v {
		case 'u':
			s = number(vars.UID, p.hex)
		case 'v':
			s = number(vars.UIDValidity, p.hex)
		case 'm':
			s = vars.MD5
		case 'f':
			s = vars.FileName
		case 'g':
			s = vars.GUID
		}
		if p.hex && p.v != 'u' && p.v != 'v' {
			// Dovecot's X reads the value as a decimal number.
			if n, err := strconv.ParseUint(s, 10, 64); err == nil {
				s = strconv.FormatUint(n, 16)
			} else {
				s = "0"
			}
		}
		switch {
		case p.upper:
			s = strings.ToUpper(s)
		case p.lower:
			s = strings.ToLower(s)
		}
		if pad := p.width - len(s); pad > 0 {
			fill := " "
			if p.zero {
				fill = "0"
			}
			s = strings.Repeat(fill, pad) + s
		}
		b.WriteString(s)
	}
	return b.String()
}

func number(n uint32, hex bool) string {
	if hex {
		return strconv.FormatUint(uint64(n), 16)
	}
	return strconv.FormatUint(uint64(n), 10)
}
