package server

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"mailsetup/server/web"
)

// BrandingConfig is [branding]: the provider's name, logo, support
// phone and web page, and accent colour on every customer page.
type BrandingConfig struct {
	// Name is the provider's name in the pages' header.
	Name string `toml:"name"`
	// Logo is a PNG, JPEG, WebP or SVG file (at most 256 KiB), relative
	// to the config file.
	Logo string `toml:"logo"`
	// SupportPhone and SupportURL are in every page's footer.
	SupportPhone string `toml:"support_phone"`
	SupportURL   string `toml:"support_url"`
	// Accent is "#rrggbb", dark enough for white text on it (contrast
	// at least 4.5:1, WCAG AA): buttons, the settings cards, links.
	Accent string `toml:"accent"`
}

// maxLogo bounds the logo file.
const maxLogo = 256 << 10

var (
	accentColour = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)
	phoneChars   = regexp.MustCompile(`^\+?[0-9][0-9 ()./-]{2,30}$`)
)

// validateBranding checks [branding] and reads the logo.
func (c *Config) validateBranding(add func(string, ...any)) {
	b := c.Branding
	if utf8.RuneCountInString(b.Name) > 80 {
		add("branding.name: %d characters; want at most 80", utf8.RuneCountInString(b.Name))
	}
	if b.SupportPhone != "" && !phoneChars.MatchString(b.SupportPhone) {
		add("branding.support_phone = %q: want digits, spaces and + ( ) . / - (like \"+49 30 1234567\")", b.SupportPhone)
	}
	if b.SupportURL != "" {
		if u, err := url.Parse(b.SupportURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			add("branding.support_url = %q: want an http or https URL", b.SupportURL)
		}
	}
	if b.Accent != "" {
		if !accentColour.MatchString(b.Accent) {
			add("branding.accent = %q: want a colour #rrggbb", b.Accent)
		} else if r := contrastOnWhite(b.Accent); r < 4.5 {
			add("branding.accent = %q: contrast with white is %.1f:1; want at least 4.5:1 (a darker colour), so text on it and links in it stay readable", b.Accent, r)
		}
	}
	if b.Logo != "" {
		data, typ, err := readLogo(c.Path(b.Logo))
		if err != nil {
			add("branding.logo = %q: %v", b.Logo, err)
		}
		c.logo, c.logoType = data, typ
	}
}

// readLogo reads a logo file and tells its media type from its content.
func readLogo(path string) ([]byte, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxLogo+1))
	if err != nil {
		return nil, "", err
	}
	if len(data) > maxLogo {
		return nil, "", fmt.Errorf("larger than %d KiB", maxLogo>>10)
	}
	switch typ := http.DetectContentType(data); {
	case typ == "image/png", typ == "image/jpeg", typ == "image/webp":
		return data, typ, nil
	case strings.HasSuffix(strings.ToLower(path), ".svg") && bytes.Contains(data, []byte("<svg")):
		return data, "image/svg+xml", nil
	default:
		return nil, "", fmt.Errorf("not a PNG, JPEG, WebP or SVG image (%s)", typ)
	}
}

// contrastOnWhite is the WCAG contrast ratio of "#rrggbb" with white.
func contrastOnWhite(hex string) float64 {
	lin := func(s string) float64 {
		v, _ := strconv.ParseUint(s, 16, 8)
		c := float64(v) / 255
		if c <= 0.03928 {
			return c / 12.92
		}
		return math.Pow((c+0.055)/1.055, 2.4)
	}
	l := 0.2126*lin(hex[1:3]) + 0.7152*lin(hex[3:5]) + 0.0722*lin(hex[5:7])
	return 1.05 / (l + 0.05)
}

// branding is [branding] for the web, nil when nothing is set.
func (c *Config) branding() *web.Branding {
	b := c.Branding
	if b == (BrandingConfig{}) {
		return nil
	}
	return &web.Branding{Name: b.Name, Phone: b.SupportPhone, SupportURL: b.SupportURL, Logo: c.logo, LogoType: c.logoType, Accent: strings.ToLower(b.Accent)}
}
