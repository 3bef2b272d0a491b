package console

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/labstack/echo/v4"

	"mailsetup/templates"
)

// The start page's served domains: an ISP may serve thousands, so the
// page says how many and names one page of them at a time (by name,
// domainsPerPage), narrowed by ?domain= (a part of the names) and
// paged by ?offset=, a GET form like the overview's.

// domainsPerPage is how many served domains the start page names.
const domainsPerPage = 20

// servedQuery reads the start page's ?domain= and ?offset=; the error
// names the bad parameter.
func servedQuery(c echo.Context) (filter string, offset int, err error) {
	if offset, err = queryInt(c, "offset", 0, 0, 1_000_000); err != nil {
		return "", 0, err
	}
	filter = strings.ToLower(strings.TrimSpace(c.QueryParam("domain")))
	if len(filter) > maxOverviewFilter || strings.ContainsFunc(filter, unicode.IsControl) {
		return "", 0, fmt.Errorf("domain=%.40q...: want part of a domain name, at most %d characters", filter, maxOverviewFilter)
	}
	return filter, offset, nil
}

// servedDomains fills the start page's served domains from all the
// served names: their count, how many contain filter, and the page of
// those (sorted) from offset, with the links to the pages around it.
func servedDomains(p *templates.StaffHomePage, all []string, filter string, offset int) {
	p.DomainCount, p.DomainFilter = len(all), filter
	var match []string
	for _, d := range all {
		if strings.Contains(d, filter) {
			match = append(match, d)
		}
	}
	slices.Sort(match)
	p.DomainMatches = len(match)
	if len(match) > 0 {
		p.FirstDomain = match[0]
	}
	link := func(off int) string {
		q := url.Values{}
		if filter != "" {
			q.Set("domain", filter)
		}
		if off > 0 {
			q.Set("offset", strconv.Itoa(off))
		}
		if len(q) == 0 {
			return "/staff/"
		}
		return "/staff/?" + q.Encode()
	}
	if offset < len(match) {
		p.Domains = match[offset:min(len(match), offset+domainsPerPage)]
		p.DomainsFrom = offset + 1
	}
	if offset > 0 {
		p.DomainsPrev = link(max(0, min(offset, len(match))-domainsPerPage))
	}
	if offset+domainsPerPage < len(match) {
		p.DomainsNext = link(offset + domainsPerPage)
	}
}
