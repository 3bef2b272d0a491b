package mailstore

import (
	"encoding/base64"
	"fmt"
	"strings"
	"unicode/utf16"
)

// mutf7Alphabet is the modified base64 alphabet of RFC 3501 §5.1.3: ","
// instead of "/".
const mutf7Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,"

// encodeMUTF7 encodes one hierarchy level in modified UTF-7 (RFC 3501
// §5.1.3), the on-disk form Dovecot uses for Maildir++ folder names.
func encodeMUTF7(s string) string {
	plain := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '&' {
			plain = false
			break
		}
	}
	if plain {
		return s
	}
	enc := base64.NewEncoding(mutf7Alphabet).WithPadding(base64.NoPadding)
	var b strings.Builder
	runes := []rune(s)
	for i := 0; i < len(runes); {
		r := runes[i]
		switch {
		case r == '&':
			b.WriteString("&-")
			i++
			continue
		case r >= 0x20 && r <= 0x7e:
			b.WriteRune(r)
			i++
			continue
		}
		var u16 []uint16
		for i < len(runes) && (runes[i] < 0x20 || runes[i] > 0x7e) {
			u16 = utf16.AppendRune(u16, runes[i])
			i++
		}
		raw := make([]byte, 0, 2*len(u16))
		for _, c := range u16 {
			raw = append(raw, byte(c>>8), byte(c))
		}
		b.WriteByte('&')
		b.WriteString(enc.EncodeToString(raw))
		b.WriteByte('-')
	}
	return b.String()
}

// decodeMUTF7 decodes one hierarchy level from modified UTF-7.
func decodeMUTF7(s string) (string, error) {
	var b strings.Builder
	var enc *base64.Encoding
	for i := 0; i < len(s); {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			return "", fmt.Errorf("byte %#x in modified UTF-7", c)
		}
		if c != '&' {
			b.WriteByte(c)
			i++
			continue
		}
		j := strings.IndexByte(s[i+1:], '-')
		if j < 0 {
			return "", fmt.Errorf("unterminated modified UTF-7 sequence")
		}
		j += i + 1
		if j == i+1 {
			b.WriteByte('&')
			i = j + 1
			continue
		}
		if enc == nil {
			enc = base64.NewEncoding(mutf7Alphabet).WithPadding(base64.NoPadding).Strict()
		}
		raw, err := enc.DecodeString(s[i+1 : j])
		if err != nil || len(raw)%2 != 0 {
			return "", fmt.Errorf("bad modified UTF-7 sequence %q", s[i:j+1])
		}
		u16 := make([]uint16, len(raw)/2)
		for k := range u16 {
			u16[k] = uint16(raw[2*k])<<8 | uint16(raw[2*k+1])
		}
		for _, r := range utf16.Decode(u16) {
			if r >= 0x20 && r <= 0x7e {
				return "", fmt.Errorf("printable ASCII encoded in modified UTF-7")
			}
			b.WriteRune(r)
		}
		i = j + 1
	}
	return b.String(), nil
}
