package templates

import "html/template"

// Brand is the provider's branding on every customer page ([branding]
// in the config): the name and logo in the page's header, the support
// phone and web page in its footer, and the accent colour through a
// small stylesheet of its own (the pages carry no inline style).
type Brand struct {
	// Name is the provider's name; Logo the logo's path on this site
	// ("" for none).
	Name, Logo string
	// Phone is the support phone as people read it; SupportURL the
	// support web page.
	Phone, SupportURL string
	// PhoneURI is the phone's tel: link, digits and "+" only (made by
	// the web from Phone: html/template lets no tel: URL through
	// unless it is marked safe).
	PhoneURI template.URL
	// Stylesheet is the path of the accent colour's stylesheet ("" for
	// the default colours).
	Stylesheet string
}
