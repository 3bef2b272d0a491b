package autoconfig

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Sentinel errors for address parsing. Callers answer each with a message
// the user can act on.
var (
	// ErrEmptyAddress: no address was given.
	ErrEmptyAddress = errors.New("no email address given")
	// ErrMalformedAddress: the text is not local@domain.
	ErrMalformedAddress = errors.New("not an email address of the form name@domain")
)

// Address is a validated email address with a lower-case domain.
type Address struct {
	Local  string
	Domain string
}

// String returns local@domain.
func (a Address) String() string { return a.Local + "@" + a.Domain }

// MaxAddressLength is RFC 5321's limit on a forward path (§4.5.3.1.3).
const MaxAddressLength = 254

// ParseAddress validates s as a plain addr-spec (no display name, no
// comments, no quoted local part) and lower-cases its domain.
func ParseAddress(s string) (Address, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Address{}, ErrEmptyAddress
	}
	if len(s) > MaxAddressLength {
		return Address{}, fmt.Errorf("%w: longer than %d characters", ErrMalformedAddress, MaxAddressLength)
	}
	// Bytes that are not UTF-8 (a URL's %ff%fe) would come out of every
	// renderer as U+FFFD: refuse them here, for every entry point.
	if !utf8.ValidString(s) {
		return Address{}, fmt.Errorf("%w: %q contains bytes that are not UTF-8 text", ErrMalformedAddress, s)
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return Address{}, fmt.Errorf("%w: %q has no name before or no domain after the @", ErrMalformedAddress, s)
	}
	local, domain := s[:at], strings.ToLower(strings.TrimSuffix(s[at+1:], "."))
	if len(local) > 64 {
		return Address{}, fmt.Errorf("%w: the part before the @ is longer than 64 characters", ErrMalformedAddress)
	}
	// RFC 5322 dot-atom: atext characters separated by single dots.
	if local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, "..") {
		return Address{}, fmt.Errorf("%w: %q has a misplaced dot before the @", ErrMalformedAddress, s)
	}
	for _, c := range local {
		if !isAtext(c) && c != '.' {
			return Address{}, fmt.Errorf("%w: %q contains %q before the @", ErrMalformedAddress, s, c)
		}
	}
	if err := ValidDomain(domain); err != nil {
		return Address{}, fmt.Errorf("%w: %v", ErrMalformedAddress, err)
	}
	return Address{Local: local, Domain: domain}, nil
}

func isAtext(c rune) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	case c >= 0x80: // RFC 6532 UTF-8 local parts, but no control character or U+FFFD (a decoding's loss)
		return c != utf8.RuneError && !unicode.IsControl(c)
	}
	return strings.ContainsRune("!#$%&'*+-/=?^_`{|}~", c)
}

// ValidDomain checks that d is a lower-case ASCII DNS name with at least
// two labels (a mail domain, not a bare host like "localhost").
func ValidDomain(d string) error {
	if err := ValidHost(d); err != nil {
		return err
	}
	if !strings.Contains(d, ".") {
		return fmt.Errorf("domain %q has a single label; want a name like example.com", d)
	}
	// Only digits and dots can be an address here (ValidHost refused ':');
	// a name is not handed to the parser, whose error would be allocated.
	if strings.Trim(d, "0123456789.") == "" {
		if _, err := netip.ParseAddr(d); err == nil {
			return fmt.Errorf("domain %q is an IP address; want a name", d)
		}
	}
	return nil
}

// ValidHost checks that h is a DNS host name (letters, digits, hyphens,
// dots; labels 1..63, total at most 253), lower case.
func ValidHost(h string) error {
	if h == "" {
		return errors.New("empty host name")
	}
	if len(h) > 253 {
		return fmt.Errorf("host name %.40q... is longer than 253 characters", h)
	}
	if h != strings.ToLower(h) {
		return fmt.Errorf("host name %q is not lower case", h)
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("host name %q has an empty or over-long label", h)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("host name %q has a label that starts or ends with '-'", h)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("host name %q contains %q", h, c)
			}
		}
	}
	return nil
}
