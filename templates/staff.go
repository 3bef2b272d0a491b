package templates

import "io"

// Staff renders a page of the staff console (the staff_*.html files);
// data is the page's view from package server/web/console.
func (s *Set) Staff(w io.Writer, name string, data any) error {
	return s.t.ExecuteTemplate(w, name, data)
}
