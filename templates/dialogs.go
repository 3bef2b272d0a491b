package templates

import (
	"fmt"
	"slices"
	"strings"

	"mailsetup/templates/lang"
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
	boldCharW   = 7.4 // the same, bold
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

// labelCharW is a label's average letter width: a marked label is bold.
func labelCharW(mark bool) float64 {
	if mark {
		return boldCharW
	}
	return sansCharW
}

// dlg builds a dialog from its rows, laying them out top to bottom.
func dlg(id, title, caption string, rows ...HelpDialogRow) HelpDialog {
	d := HelpDialog{ID: "dialog-" + id, Title: title, Caption: caption, Width: dlgWidth}
	y := dlgBar + 10
	for _, r := range rows {
		h := dlgRowField
		switch r.Kind {
		case "section":
			h = dlgRowSect
			r.LabelFit = fit(r.Label, sansCharW, dlgWidth-2*dlgLabelX)
		case "check":
			h = dlgRowCheck
			r.LabelFit = fit(r.Label, labelCharW(r.Mark), dlgCheckW)
		default:
			r.LabelFit = fit(r.Label, labelCharW(r.Mark), dlgLabelW)
			r.ValueFit = fit(r.Value, monoCharW, dlgValueW-16)
		}
		r.Top, r.H, r.Y = y, h, y+h/2+5
		r.Box = r.Y - 15
		if r.Kind == "check" {
			r.Box = r.Y - 13
			r.Tick = fmt.Sprintf("%d,%d %d,%d %d,%d", dlgLabelX+3, r.Box+8, dlgLabelX+7, r.Box+12, dlgLabelX+14, r.Box+3)
		}
		y += h
		d.Rows = append(d.Rows, r)
	}
	d.Height = y + 10
	d.Inner.W, d.Inner.H = d.Width-2, d.Height-2
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

// Dialogs are the pictures of client id's settings dialogs for s, in
// l's language: each label is the message dlg.<client>.<field>, the
// name the client shows in its own interface in that language; the
// caption names the marked fields in the language's quotes.
func Dialogs(l *lang.Localizer, id string, s HelpSettings) []HelpDialog {
	ds := dialogs(l, id, s)
	for i, d := range ds {
		var marked []string
		for _, r := range d.Rows {
			if q := l.S("dialog.quote", r.Label); r.Mark && !slices.Contains(marked, q) {
				marked = append(marked, q)
			}
		}
		ds[i].Marked = strings.Join(marked, ", ")
	}
	return ds
}

func dialogs(l *lang.Localizer, id string, s HelpSettings) []HelpDialog {
	in, out, user := s.In, s.Out, s.Username
	pop := in.Protocol == "POP3"
	port := func(h HelpServer) string { return fmt.Sprint(h.Port) }
	w := func(key string) string { return l.S("dlg."+key, nil) }
	days := func(key string) string { return l.S("dlg."+key, s.POP.DeleteAfterDays) }
	pw := password
	switch id {
	case "thunderbird":
		d := []HelpDialog{dlg(id+"-manual", w("tb.title"), w("tb.caption"),
			section(w("tb.incoming")),
			field(w("tb.protocol"), in.Protocol), field(w("tb.hostname"), in.Host), field(w("tb.port"), port(in)),
			field(w("tb.security"), in.Security), field(w("tb.auth"), w("tb.normal-password")),
			marked(w("tb.username"), user),
			section(w("tb.outgoing")),
			field(w("tb.hostname"), out.Host), field(w("tb.port"), port(out)), field(w("tb.security"), out.Security),
			marked(w("tb.auth"), w("tb.normal-password")), marked(w("tb.username"), user))}
		if pop {
			d = append(d, dlg(id+"-pop", w("tb.pop-title"), w("tb.pop-caption"),
				check(w("tb.leave"), s.POP.LeaveOnServer, true),
				check(days("tb.at-most"), s.POP.LeaveOnServer, true),
				check(w("tb.until"), false, false)))
		}
		return d
	case "outlook", "windowsmail":
		k := "imap"
		if pop {
			k = "pop"
		}
		d := []HelpDialog{dlg(id+"-new", w("ol.title-"+k), w("ol.caption"),
			marked(w("ol."+k+"-user"), user), field(w("ol."+k+"-password"), pw),
			field(w("ol."+k+"-server"), in.Host), field(w("ol.port"), port(in)), field(w("ol.secure"), in.Security),
			marked(w("ol.smtp-user"), user), field(w("ol.smtp-password"), pw),
			field(w("ol.smtp-server"), out.Host), field(w("ol.port"), port(out)), field(w("ol.secure"), out.Security))}
		if id == "outlook" {
			rows := []HelpDialogRow{section(w("ol.outgoing")),
				check(w("ol.requires-auth"), true, true),
				check(w("ol.same-settings"), true, false)}
			if pop {
				rows = append(rows, section(w("ol.delivery")),
					check(w("ol.leave"), s.POP.LeaveOnServer, true),
					check(days("ol.remove-after"), s.POP.LeaveOnServer, true))
			}
			d = append(d, dlg(id+"-classic", w("ol.classic-title"), w("ol.classic-caption"), rows...))
		}
		return d
	case "outlookmac":
		return []HelpDialog{dlg(id, w("mac.title"), w("mac.caption"),
			field(w("mac.address"), s.Address), field(w("mac.type"), "IMAP"), marked(w("mac.user"), user), field(w("mac.password"), pw),
			field(w("mac.incoming"), s.Phone.Host), field(w("mac.port"), port(s.Phone)), check(w("mac.ssl"), s.Phone.Security != l.S("security.none", nil), false),
			field(w("mac.outgoing"), out.Host), field(w("mac.port"), port(out)), check(w("mac.ssl"), out.Security != l.S("security.none", nil), false),
			marked(w("mac.auth"), w("mac.auth-value")))}
	case "outlookmobile":
		return []HelpDialog{dlg(id, w("olm.title"), w("olm.caption"),
			field(w("olm.address"), s.Address),
			section(w("olm.incoming")),
			field(w("olm.imap-host"), fmt.Sprintf("%s:%d", s.Phone.Host, s.Phone.Port)), marked(w("olm.imap-user"), user), field(w("olm.imap-password"), pw),
			section(w("olm.outgoing")),
			field(w("olm.smtp-host"), fmt.Sprintf("%s:%d", out.Host, out.Port)), marked(w("olm.smtp-user"), user), field(w("olm.smtp-password"), pw))}
	case "apple":
		rows := []HelpDialogRow{section(w("apple.incoming")),
			field(w("apple.host"), s.InTLS.Host), marked(w("apple.user"), user), field(w("apple.password"), pw),
			section(w("apple.outgoing")),
			field(w("apple.host"), s.OutTLS.Host), marked(w("apple.user"), user), marked(w("apple.password"), pw)}
		d := []HelpDialog{dlg(id, w("apple.title"), w("apple.caption"), rows...)}
		if s.InTLS.Protocol == "POP3" {
			v := w("apple.when-removed")
			if s.POP.LeaveOnServer {
				v = w("apple.seven-days")
			}
			d = append(d, dlg(id+"-pop", w("apple.pop-title"), w("apple.pop-caption"), marked(w("apple.delete"), v)))
		}
		return d
	case "android":
		return []HelpDialog{dlg(id, w("gmail.title"), w("gmail.caption"),
			section(w("gmail.incoming")),
			marked(w("gmail.user"), user), field(w("gmail.password"), pw), field(w("gmail.server"), s.Phone.Host),
			field(w("gmail.port"), port(s.Phone)), field(w("gmail.security"), s.Phone.Security),
			section(w("gmail.outgoing")),
			check(w("gmail.sign-in"), true, true), marked(w("gmail.user"), user), field(w("gmail.password"), pw),
			field(w("gmail.smtp"), out.Host), field(w("gmail.port"), port(out)), field(w("gmail.security"), out.Security))}
	case "samsung":
		return []HelpDialog{dlg(id, w("sam.title"), w("sam.caption"),
			field(w("sam.address"), s.Address), marked(w("sam.user"), user), field(w("sam.password"), pw),
			section(w("sam.incoming")),
			field(w("sam.imap"), s.Phone.Host), field(w("sam.security"), s.Phone.Security), field(w("sam.port"), port(s.Phone)),
			section(w("sam.outgoing")),
			field(w("sam.smtp"), out.Host), field(w("sam.security"), out.Security), field(w("sam.port"), port(out)),
			check(w("sam.auth"), true, true), marked(w("sam.user"), user), field(w("sam.password"), pw))}
	case "emclient":
		d := []HelpDialog{dlg(id, w("em.title"), w("em.caption"),
			section(w("em.incoming")),
			field(w("em.in-server"), in.Host), field(w("em.port"), port(in)), field(w("em.policy"), emSecurity(l, in)), marked(w("em.user"), user),
			section(w("em.outgoing")),
			field(w("em.out-server"), out.Host), field(w("em.port"), port(out)), field(w("em.policy"), emSecurity(l, out)),
			check(w("em.auth"), true, true),
			check(w("em.same"), true, false))}
		if pop {
			d = append(d, dlg(id+"-pop", w("em.pop-title"), w("em.pop-caption"),
				check(w("em.leave"), s.POP.LeaveOnServer, true),
				check(days("em.delete-after"), s.POP.LeaveOnServer, true)))
		}
		return d
	}
	rows := []HelpDialogRow{section(w("any.incoming")),
		field(l.S("dlg.any.server", in.Protocol), in.Host), field(w("any.port"), port(in)), field(w("any.security"), in.Security), marked(w("any.user"), user),
		section(w("any.outgoing")),
		field(w("any.smtp"), out.Host), field(w("any.port"), port(out)), field(w("any.security"), out.Security),
		check(w("any.auth"), true, true), marked(w("any.user"), user)}
	if pop {
		rows = append(rows, section("POP3"), check(w("any.leave"), s.POP.LeaveOnServer, true),
			check(days("any.delete-after"), s.POP.LeaveOnServer, true))
	}
	return []HelpDialog{dlg(id, w("any.title"), w("any.caption"), rows...)}
}

// emSecurity is eM Client's "Security policy" for a server.
func emSecurity(l *lang.Localizer, h HelpServer) string {
	switch {
	case h.TLS:
		return l.S("dlg.em.tls", nil)
	case h.Security == l.S("security.starttls", nil):
		return l.S("dlg.em.starttls", nil)
	}
	return l.S("dlg.em.none", nil)
}
