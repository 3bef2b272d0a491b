package templates

import (
	"fmt"
	"slices"
	"strings"
)

// The client pages' pictures: each client's settings dialog drawn as a
// simple inline SVG (help-dialog in help_layout.html), its fields named
// as the client names them and filled with this address's values. The
// incident's three fields (the username, outgoing authentication, and
// POP3's leave-a-copy with remove-after-N-days) are marked. No
// screenshot of anyone's software: boxes and words only.

// HelpDialog is one drawn settings dialog. Every coordinate is worked
// out here, so the template only places what it is given.
type HelpDialog struct {
	// ID is the figure's element id.
	ID string
	// Title is the dialog's title bar, in the client's words.
	Title string
	// Caption says where the dialog is; Marked names the marked
	// fields (the picture's text equivalent says them too).
	Caption, Marked string
	Width, Height   int
	// Inner is the window's frame inside the picture's edges.
	Inner struct{ W, H int }
	Rows  []HelpDialogRow
}

// HelpDialogRow is one line of a drawn dialog.
type HelpDialogRow struct {
	// Kind is "section" (a heading), "field" (a label and a text box)
	// or "check" (a checkbox and its label).
	Kind         string
	Label, Value string
	Checked      bool
	// Mark: one of the fields the incident got wrong.
	Mark bool
	// Y is the text's baseline; Top the row's top edge, H its height;
	// Box the checkbox's or text box's top, Tick the check mark's
	// points.
	Y, Top, H, Box int
	Tick           string
	// LabelFit and ValueFit are a textLength that squeezes a text too
	// long for its box, else 0.
	LabelFit, ValueFit int
}

// The drawing's grid, in SVG user units (the picture scales to the
// page's width).
const (
	dlgWidth    = 480
	dlgBar      = 34
	dlgLabelX   = 16
	dlgLabelW   = 180
	dlgValueX   = 204
	dlgValueW   = 264
	dlgCheckW   = 420
	sansCharW   = 6.6 // 13px system sans, an average letter
	monoCharW   = 7.9 // 13px monospace
	dlgRowField = 32
	dlgRowCheck = 30
	dlgRowSect  = 30
)

// fit returns a textLength that squeezes s into width, or 0 when it
// fits as it is.
func fit(s string, charW float64, width int) int {
	if float64(len([]rune(s)))*charW <= float64(width) {
		return 0
	}
	return width
}

// dlg builds a dialog from its rows, laying them out top to bottom.
func dlg(id, title, caption string, rows ...HelpDialogRow) HelpDialog {
	d := HelpDialog{ID: "dialog-" + id, Title: title, Caption: caption, Width: dlgWidth}
	y := dlgBar + 10
	var marked []string
	for _, r := range rows {
		h := dlgRowField
		switch r.Kind {
		case "section":
			h = dlgRowSect
			r.LabelFit = fit(r.Label, sansCharW, dlgWidth-2*dlgLabelX)
		case "check":
			h = dlgRowCheck
			r.LabelFit = fit(r.Label, sansCharW, dlgCheckW)
		default:
			r.LabelFit = fit(r.Label, sansCharW, dlgLabelW)
			r.ValueFit = fit(r.Value, monoCharW, dlgValueW-16)
		}
		r.Top, r.H, r.Y = y, h, y+h/2+5
		r.Box = r.Y - 15
		if r.Kind == "check" {
			r.Box = r.Y - 13
			r.Tick = fmt.Sprintf("%d,%d %d,%d %d,%d", dlgLabelX+3, r.Box+8, dlgLabelX+7, r.Box+12, dlgLabelX+14, r.Box+3)
		}
		y += h
		if l := `"` + r.Label + `"`; r.Mark && !slices.Contains(marked, l) {
			marked = append(marked, l)
		}
		d.Rows = append(d.Rows, r)
	}
	d.Height = y + 10
	d.Inner.W, d.Inner.H = d.Width-2, d.Height-2
	d.Marked = strings.Join(marked, ", ")
	return d
}

func section(label string) HelpDialogRow { return HelpDialogRow{Kind: "section", Label: label} }
func field(label, value string) HelpDialogRow {
	return HelpDialogRow{Kind: "field", Label: label, Value: value}
}
func marked(label, value string) HelpDialogRow {
	return HelpDialogRow{Kind: "field", Label: label, Value: value, Mark: true}
}
func check(label string, on, mark bool) HelpDialogRow {
	return HelpDialogRow{Kind: "check", Label: label, Checked: on, Mark: mark}
}

const password = "••••••••"

// popDays is "For at most N days" in a client's words.
func popDays(words string, s HelpSettings) string {
	return fmt.Sprintf(words, s.POP.DeleteAfterDays)
}

// Dialogs are the pictures of client id's settings dialogs for s.
func Dialogs(id string, s HelpSettings) []HelpDialog {
	in, out, user := s.In, s.Out, s.Username
	pop := in.Protocol == "POP3"
	port := func(h HelpServer) string { return fmt.Sprint(h.Port) }
	switch id {
	case "thunderbird":
		d := []HelpDialog{dlg(id+"-manual", "Set Up Your Existing Email Address", `After "Configure manually"`,
			section("INCOMING SERVER"),
			field("Protocol", in.Protocol), field("Hostname", in.Host), field("Port", port(in)),
			field("Connection security", in.Security), field("Authentication method", "Normal password"),
			marked("Username", user),
			section("OUTGOING SERVER"),
			field("Hostname", out.Host), field("Port", port(out)), field("Connection security", out.Security),
			marked("Authentication method", "Normal password"), marked("Username", user))}
		if pop {
			d = append(d, dlg(id+"-pop", "Account Settings: Server Settings", "Account Settings > Server Settings, for POP3",
				check("Leave messages on server", s.POP.LeaveOnServer, true),
				check(popDays("For at most %d days", s), s.POP.LeaveOnServer, true),
				check("Until I delete them", false, false)))
		}
		return d
	case "outlook", "windowsmail":
		k := "IMAP"
		if pop {
			k = "POP"
		}
		d := []HelpDialog{dlg(id+"-new", "Add account: "+k, "New Outlook (and Windows Mail, which it replaced)",
			marked(k+" username", user), field(k+" password", password),
			field(k+" incoming server", in.Host), field("Port", port(in)), field("Secure connection type", in.Security),
			marked("SMTP username", user), field("SMTP password", password),
			field("SMTP outgoing server", out.Host), field("Port", port(out)), field("Secure connection type", out.Security))}
		if id == "outlook" {
			rows := []HelpDialogRow{section("Outgoing Server"),
				check("My outgoing server (SMTP) requires authentication", true, true),
				check("Use same settings as my incoming mail server", true, false)}
			if pop {
				rows = append(rows, section("Advanced: Delivery"),
					check("Leave a copy of messages on the server", s.POP.LeaveOnServer, true),
					check(popDays("Remove from server after %d days", s), s.POP.LeaveOnServer, true))
			}
			d = append(d, dlg(id+"-classic", "Internet E-mail Settings: More Settings", "Classic Outlook: Account Settings > Change > More Settings", rows...))
		}
		return d
	case "outlookmac":
		return []HelpDialog{dlg(id, "Add Account: IMAP/POP", "Outlook for Mac: Outlook > Settings > Accounts > +",
			field("Email Address", s.Address), field("Type", "IMAP"), marked("Username", user), field("Password", password),
			field("Incoming Server", s.Phone.Host), field("Port", port(s.Phone)), check("Use SSL to connect", s.Phone.Security != "None", false),
			field("Outgoing Server", out.Host), field("Port", port(out)), check("Use SSL to connect", out.Security != "None", false),
			marked("Authentication", "Use Incoming Server Info"))}
	case "outlookmobile":
		return []HelpDialog{dlg(id, "Add Account: IMAP", `Outlook app: Add email account > "Setup account manually" > IMAP`,
			field("Email Address", s.Address),
			section("IMAP INCOMING MAIL SERVER"),
			field("IMAP Hostname", fmt.Sprintf("%s:%d", s.Phone.Host, s.Phone.Port)), marked("IMAP Username", user), field("IMAP Password", password),
			section("SMTP OUTGOING MAIL SERVER"),
			field("SMTP Hostname", fmt.Sprintf("%s:%d", out.Host, out.Port)), marked("SMTP Username", user), field("SMTP Password", password))}
	case "apple":
		rows := []HelpDialogRow{section("INCOMING MAIL SERVER"),
			field("Host Name", s.InTLS.Host), marked("User Name", user), field("Password", password),
			section("OUTGOING MAIL SERVER"),
			field("Host Name", s.OutTLS.Host), marked("User Name", user), marked("Password", password)}
		d := []HelpDialog{dlg(id, "New Account", `iPhone and iPad: Add Mail Account, after "Next" (outgoing says "Optional": fill it in)`, rows...)}
		if s.InTLS.Protocol == "POP3" {
			v := "When removed from Inbox"
			if s.POP.LeaveOnServer {
				v = "Seven days"
			}
			d = append(d, dlg(id+"-pop", "Advanced", "iPhone and iPad: the account > Advanced, for POP3", marked("Delete from server", v)))
		}
		return d
	case "android":
		return []HelpDialog{dlg(id, "Incoming and outgoing server settings", `Gmail app: Add another account > Other > "Manual setup"`,
			section("Incoming server settings"),
			marked("Username", user), field("Password", password), field("Server", s.Phone.Host),
			field("Port", port(s.Phone)), field("Security type", s.Phone.Security),
			section("Outgoing server settings"),
			check("Require sign-in", true, true), marked("Username", user), field("Password", password),
			field("SMTP server", out.Host), field("Port", port(out)), field("Security type", out.Security))}
	case "samsung":
		return []HelpDialog{dlg(id, "Manual setup", "Samsung Email: Add account > Other > Manual setup, IMAP account",
			field("Email address", s.Address), marked("Username", user), field("Password", password),
			section("Incoming server"),
			field("IMAP server", s.Phone.Host), field("Security type", s.Phone.Security), field("Port", port(s.Phone)),
			section("Outgoing server"),
			field("SMTP server", out.Host), field("Security type", out.Security), field("Port", port(out)),
			check("Require authentication to send emails", true, true), marked("Username", user), field("Password", password))}
	case "emclient":
		d := []HelpDialog{dlg(id, "Account Settings", "eM Client: Menu > Accounts > the account",
			section("Incoming server"),
			field("Incoming server", in.Host), field("Port", port(in)), field("Security policy", emSecurity(in)), marked("User name", user),
			section("Outgoing server"),
			field("Outgoing server", out.Host), field("Port", port(out)), field("Security policy", emSecurity(out)),
			check("Outgoing server requires authentication", true, true),
			check("Use the same credentials as for incoming server", true, false))}
		if pop {
			d = append(d, dlg(id+"-pop", "Account Settings: POP3", "eM Client: the account's POP3 tab",
				check("Leave messages on server", s.POP.LeaveOnServer, true),
				check(popDays("Delete messages from server after %d days", s), s.POP.LeaveOnServer, true)))
		}
		return d
	}
	rows := []HelpDialogRow{section("Incoming"),
		field(in.Protocol+" server", in.Host), field("Port", port(in)), field("Security", in.Security), marked("Username", user),
		section("Outgoing (SMTP)"),
		field("SMTP server", out.Host), field("Port", port(out)), field("Security", out.Security),
		check("Requires authentication", true, true), marked("Username", user)}
	if pop {
		rows = append(rows, section("POP3"), check("Leave a copy on the server", s.POP.LeaveOnServer, true),
			check(popDays("Delete after %d days", s), s.POP.LeaveOnServer, true))
	}
	return []HelpDialog{dlg(id, "Account settings", "What every mail program asks for, under one name or another", rows...)}
}

// emSecurity is eM Client's "Security policy" for a server.
func emSecurity(h HelpServer) string {
	switch h.Security {
	case "SSL/TLS":
		return "Use SSL/TLS on special port"
	case "STARTTLS":
		return "Use SSL/TLS if available"
	}
	return "Do not use SSL/TLS"
}
