package templates

import (
	"fmt"
	"io"
	"slices"

	"mailsetup/probe/clients"
)

// The customer self-help pages. The web app builds these view-models
// from the domain policy and the probe's report; the templates only lay
// them out.

// HelpClients are the client pages, in the order the pages list them.
// Each has a template help_<id>.html.
var HelpClients = []HelpClient{
	{ID: "thunderbird", Name: "Thunderbird (Windows, Mac, Linux)"},
	{ID: "outlook", Name: "Outlook for Windows (new and classic)"},
	{ID: "windowsmail", Name: "Windows Mail (now the new Outlook)", NoPOPExpiry: "The new Outlook"},
	{ID: "outlookmac", Name: "Outlook for Mac", NoPOPExpiry: "Outlook for Mac"},
	{ID: "outlookmobile", Name: "Outlook on iPhone and Android", NoPOPExpiry: "The Outlook app"},
	{ID: "apple", Name: "Apple Mail, iPhone and iPad"},
	{ID: "samsung", Name: "Samsung Email (most Android phones)", NoPOPExpiry: "Samsung Email"},
	{ID: "android", Name: "Android (Gmail app, Thunderbird for Android, K-9 Mail)", NoPOPExpiry: "Android's mail apps"},
	{ID: "emclient", Name: "eM Client"},
	{ID: "other", Name: "Any other mail program"},
}

// HelpClient is one mail client the pages have instructions for.
type HelpClient struct {
	ID   string
	Name string
	// NoPOPExpiry, for a client that cannot remove POP3 mail from the
	// server after N days, names it in a sentence's subject; its page
	// recommends IMAP instead.
	NoPOPExpiry string
	// URL is the client's instruction page for the current address.
	URL string
}

// HelpServer is one server in the words of the settings dialogs.
type HelpServer struct {
	// Protocol is "IMAP", "POP3" or "SMTP".
	Protocol string
	Host     string
	Port     int
	// Security is "SSL/TLS", "STARTTLS" or "None", in the page's
	// language (the messages security.tls, .starttls, .none).
	Security string
	// TLS: implicit TLS (Apple's "Use SSL" on).
	TLS bool
}

// HelpPOP is what a POP3 client does with mail it downloaded.
type HelpPOP struct {
	// Offered: the domain has POP3 servers.
	Offered bool
	// LeaveOnServer: keep a copy on the server, only together with
	// "delete after DeleteAfterDays days".
	LeaveOnServer   bool
	DeleteAfterDays int
	// ExpireDays: the server removes mail this many days after its
	// first download by itself (0: never).
	ExpireDays int
}

// HelpSettings is the correct settings of one address.
type HelpSettings struct {
	Address     string
	Domain      string
	DisplayName string
	// Username is what every client must type: the full address.
	Username string
	// Prefer is "IMAP" or "POP3".
	Prefer string
	// Incoming lists the access servers, the one to use first;
	// Outgoing the submission servers.
	Incoming, Outgoing []HelpServer
	// In and Out are the servers the step-by-step instructions use: the
	// first of the preferred protocol and the first submission server.
	In, Out HelpServer
	// InTLS and OutTLS are the first implicit-TLS ones (else In and
	// Out): what the Apple profile carries.
	InTLS, OutTLS HelpServer
	// IMAP and POP3 are the first server of each protocol, nil when the
	// domain does not offer it.
	IMAP, POP3 *HelpServer
	// Phone is the incoming server for phone apps: the first IMAP
	// server (they cannot remove POP3 mail after N days), else In.
	Phone HelpServer
	POP   HelpPOP
	// NoPOPExpiry, on the page of a client that cannot remove POP3 mail
	// after N days, names it (HelpClient.NoPOPExpiry); the rules then
	// say what to do instead.
	NoPOPExpiry string
	// HelpURL is the overview page, CheckURL the settings check,
	// ProfileURL the Apple profile, JSONURL the settings as JSON (all
	// relative to this site); ThunderbirdURL the published autoconfig
	// document.
	HelpURL, CheckURL, ProfileURL, JSONURL, ThunderbirdURL string
}

// HelpCheckForm is what the customer typed into the check form. It
// never holds the password.
type HelpCheckForm struct {
	InProto, InHost, InPort, InSecurity, InUser string
	// Leave is "yes", "no" or "" (not known); DeleteAfter the days.
	Leave, DeleteAfter                     string
	OutHost, OutPort, OutSecurity, OutUser string
	// OutAuth is "yes", "no" or "" (not known).
	OutAuth string
}

// HelpFinding is one thing wrong, with its fix.
type HelpFinding struct {
	ID       string
	Severity string
	Title    string
	Fix      string
	Evidence []string
	// Server: the server is at fault, not the customer's settings.
	Server bool
}

// HelpFieldError is what is wrong with one form field's value.
type HelpFieldError struct {
	// Field is the field's name (and id).
	Field   string
	Message string
	// Kind is what is wrong (FieldErrHost, ...), Value the value as
	// typed and Max a length's limit, so that a page in another
	// language can say Message in its words.
	Kind, Value string
	Max         int
}

// The kinds of a form field's error (HelpFieldError.Kind).
const (
	FieldErrHost    = "host"     // not a server name
	FieldErrPort    = "port"     // not a port number
	FieldErrDays    = "days"     // not a number of days
	FieldErrChoice  = "choice"   // not one of the field's choices
	FieldErrTooLong = "too-long" // longer than Max
	FieldErrControl = "control"  // a control character
)

// FieldErrKinds are the kinds of a form field's error.
var FieldErrKinds = []string{FieldErrHost, FieldErrPort, FieldErrDays, FieldErrChoice, FieldErrTooLong, FieldErrControl}

// CheckFields are the check form's fields, in form order.
var CheckFields = []string{"in_proto", "in_host", "in_port", "in_security", "in_user", "leave", "delete_after",
	"out_host", "out_port", "out_security", "out_auth", "out_user", "password"}

// HelpWrongField is a field of the re-filled check form whose value is
// wrong, with the right value.
type HelpWrongField struct {
	Field, Right string
}

// HelpFieldState is what the form shows at one field: an error in
// what was typed, or the right value when the value is wrong.
type HelpFieldState struct {
	Name, Error, Right string
}

// HelpCheckStep is one step of a running check, as the page shows it
// while the result streams in.
type HelpCheckStep struct {
	// Lang is the page's language (Frame.Lang).
	Lang string
	Text string
	// State is "ok", "problem" or "unfinished".
	State string
}

// HelpCheck is the check form and, after a check, its result.
type HelpCheck struct {
	Form HelpCheckForm
	// FieldErrors are the form's invalid fields, in form order.
	FieldErrors []HelpFieldError
	// Wrong are the fields whose values the check found wrong.
	Wrong []HelpWrongField
	// Streamed: the page showed the check's steps as they finished
	// (HelpCheckStart, HelpCheckStep); Steps counts them, Took is how
	// long the check took, in words.
	Streamed bool
	Steps    int
	Took     string
	// PasswordAvailable: the server can check passwords (it runs the
	// mail server).
	PasswordAvailable bool
	// SecureURL, set when the page came over plain HTTP, is this check
	// page over HTTPS, where the password may be tested.
	SecureURL string
	// Notice is a message about the check as a whole (throttled, rate
	// limited, password not checked).
	Notice string
	// Done: a check ran; Problems (worst first) and Right are its result.
	Done     bool
	Problems []HelpFinding
	// Notes are findings that need no change (severity info).
	Notes []HelpFinding
	Right []string
	// PasswordChecked: the password was verified and used for the
	// live logins.
	PasswordChecked bool
	// Clients is what each mail program would set up (asked for with
	// ?clients=1); ClientsError why it could not be shown.
	Clients      *clients.ClientsReport
	ClientsError string
}

// FieldError returns the error of the field name, or "".
func (c *HelpCheck) FieldError(name string) string {
	for _, e := range c.FieldErrors {
		if e.Field == name {
			return e.Message
		}
	}
	return ""
}

// Field returns what the form shows at the field name.
func (c *HelpCheck) Field(name string) HelpFieldState {
	st := HelpFieldState{Name: name, Error: c.FieldError(name)}
	for _, w := range c.Wrong {
		if w.Field == name {
			st.Right = w.Right
		}
	}
	return st
}

// HelpStartPage is the start page (index.html): the address form.
type HelpStartPage struct {
	Frame
	// Address is the address as typed, to re-fill the form.
	Address string
	// Error is what is wrong with the address.
	Error string
}

// HelpAddress is what every page about one address has.
type HelpAddress struct {
	Settings HelpSettings
	// Clients link to each client's page.
	Clients []HelpClient
}

// HelpDomainPage is an address's overview (help_domain.html).
type HelpDomainPage struct {
	Frame
	HelpAddress
}

// HelpClientPage is one mail client's instructions
// (help_<Client.ID>.html).
type HelpClientPage struct {
	Frame
	HelpAddress
	Client HelpClient
	// Dialogs are the client's settings dialogs drawn with this
	// address's values; HelpClient fills them.
	Dialogs []HelpDialog
	// ProfileQR, on the Apple page when the site's address is known,
	// is the profile's link as a QR code.
	ProfileQR *HelpQR
}

// HelpQR is a link drawn as a QR code: Path is an SVG path of the dark
// modules in a Size x Size grid (the quiet zone included).
type HelpQR struct {
	URL, Path string
	Size      int
}

// HelpErrorPage is a customer's request that cannot be answered with
// its page (help_error.html): a form too large or unreadable, a form
// whose token expired, a mail program we have no instructions for.
type HelpErrorPage struct {
	Frame
	// Message says what went wrong and what to do, in the page's
	// language; Back, when set, is the page to go back to.
	Message, Back string
}

// HelpError renders an error page in the customer pages' layout.
func (s *Set) HelpError(w io.Writer, p HelpErrorPage) error {
	return s.render(w, "help_error.html", &p)
}

// HelpCheckPage is the settings check (help_check.html); its form
// carries Frame.CSRF.
type HelpCheckPage struct {
	Frame
	HelpAddress
	Check HelpCheck
}

// HelpStart renders the start page: the address form, with an error
// when the address was refused.
func (s *Set) HelpStart(w io.Writer, p HelpStartPage) error {
	return s.render(w, "index.html", &p)
}

// HelpDomain renders an address's overview: its settings and the list
// of clients.
func (s *Set) HelpDomain(w io.Writer, p HelpDomainPage) error {
	return s.render(w, "help_domain.html", &p)
}

// HelpClient renders p.Client's step-by-step instructions, with the
// pictures of its dialogs. On the page of a client that cannot remove
// POP3 mail after N days, the settings to use are IMAP's where the
// domain offers it.
func (s *Set) HelpClient(w io.Writer, p HelpClientPage) error {
	i := slices.IndexFunc(HelpClients, func(c HelpClient) bool { return c.ID == p.Client.ID })
	if i < 0 {
		return fmt.Errorf("templates: no instructions for client %q", p.Client.ID)
	}
	n := HelpClients[i].NoPOPExpiry
	if p.Client.NoPOPExpiry != "" {
		n = p.Client.NoPOPExpiry // in the page's language
	}
	if n != "" && p.Settings.POP.Offered {
		p.Settings.NoPOPExpiry = n
		if p.Settings.IMAP != nil {
			p.Settings.In = *p.Settings.IMAP
		}
	}
	p.Dialogs = Dialogs(s.Localizer(p.Lang), p.Client.ID, p.Settings)
	return s.render(w, "help_"+p.Client.ID+".html", &p)
}

// HelpCheck renders the settings check: the form, and the result when
// p.Check.Done.
func (s *Set) HelpCheck(w io.Writer, p HelpCheckPage) error {
	return s.render(w, "help_check.html", &p)
}

// The check page streamed: HelpCheckStart writes the page up to the
// list of steps, HelpCheckStep one finished step, HelpCheckFinish the
// rest (the result above the re-filled form). Together they are
// HelpCheck's page with the steps listed above the result.

// HelpCheckStart writes the streamed check page up to its list of steps.
func (s *Set) HelpCheckStart(w io.Writer, p HelpCheckPage) error {
	return s.render(w, "help-check-start", &p)
}

// HelpCheckStep writes one finished step of a streamed check.
func (s *Set) HelpCheckStep(w io.Writer, st HelpCheckStep) error {
	t, err := s.in(st.Lang)
	if err != nil {
		return err
	}
	return t.ExecuteTemplate(w, "help-check-step", st)
}

// HelpCheckFinish writes the rest of a streamed check page.
func (s *Set) HelpCheckFinish(w io.Writer, p HelpCheckPage) error {
	p.Check.Streamed = true
	return s.render(w, "help-check-finish", &p)
}
