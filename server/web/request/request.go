// Package request is what every part of the web reads from a request
// and how it answers one the client got wrong: who sent it (Remote,
// SecretsAllowed), the address it names (PathAddress, QueryParam) and
// that address's policy (Lookup), whether a form came from this site (Forms,
// SameOrigin), and TextError.
//
// It is below server/web, server/web/check, server/web/selfhelp and
// server/web/console, and imports only autoconfig and echo.
package request

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"mailsetup/autoconfig"
)

// PolicySource gives the current policy of each configured domain.
type PolicySource interface {
	// Policy returns the policy of a lower-case domain.
	Policy(domain string) (autoconfig.Policy, bool)
	// Policies returns every policy, in configuration order.
	Policies() []autoconfig.Policy
}

// TextError answers a request the client got wrong, in plain words.
func TextError(c echo.Context, code int, format string, args ...any) error {
	return c.String(code, fmt.Sprintf(format, args...)+"\n")
}

// Lookup validates an address parameter and finds its domain's policy.
// It returns the HTTP status and message to answer with when it fails.
func Lookup(policies PolicySource, param, value string) (autoconfig.Policy, autoconfig.Address, int, string) {
	addr, err := autoconfig.ParseAddress(value)
	if err != nil {
		if errors.Is(err, autoconfig.ErrEmptyAddress) {
			return autoconfig.Policy{}, addr, http.StatusBadRequest, fmt.Sprintf("missing %s parameter: add ?%s=you@example.com", param, param)
		}
		return autoconfig.Policy{}, addr, http.StatusBadRequest, fmt.Sprintf("%s: %v", param, err)
	}
	p, ok := policies.Policy(addr.Domain)
	if !ok {
		return p, addr, http.StatusNotFound, fmt.Sprintf("no settings for %q: the domain %s is not served here", addr.String(), addr.Domain)
	}
	return p, addr, 0, ""
}

// maxQueryParams is net/url's default limit on a query's parameters,
// over which it reads none.
const maxQueryParams = 10000

// QueryParam returns the first value of the query parameter name, as
// echo's Context.QueryParam does (url.ParseQuery's reading: pairs with a
// semicolon or a bad escape skipped), without building the map of every
// parameter: a sixth of the Thunderbird document's handler was that map.
func QueryParam(c echo.Context, name string) string {
	q := c.Request().URL.RawQuery
	if strings.Count(q, "&") >= maxQueryParams {
		return c.QueryParam(name) // net/url's limit (and its GODEBUG) decide
	}
	for q != "" {
		var pair string
		pair, q, _ = strings.Cut(q, "&")
		if pair == "" || strings.Contains(pair, ";") {
			continue
		}
		key, value, _ := strings.Cut(pair, "=")
		if strings.ContainsAny(key, "%+") {
			k, err := url.QueryUnescape(key)
			if err != nil {
				continue
			}
			key = k
		}
		if key != name {
			continue
		}
		v, err := url.QueryUnescape(value)
		if err != nil {
			continue
		}
		return v
	}
	return ""
}

// PathAddress returns the :address path parameter, unescaped (echo
// leaves it escaped when the request path had escapes Go would not
// write, e.g. %2F).
func PathAddress(c echo.Context) string {
	v := c.Param("address")
	if c.Request().URL.RawPath != "" {
		if u, err := url.PathUnescape(v); err == nil {
			return u
		}
	}
	return v
}

// SecretsAllowed says whether a password or token may be sent on this
// connection: only over TLS, except from the machine itself (the
// embedded default, a local admin or tool).
func SecretsAllowed(c echo.Context) bool {
	return c.IsTLS() || Remote(c).IsLoopback()
}

// Remote is the client's address (echo's RealIP without trusting
// forwarding headers: the service is not configured behind a proxy).
func Remote(c echo.Context) netip.Addr {
	ap, err := netip.ParseAddrPort(c.Request().RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
