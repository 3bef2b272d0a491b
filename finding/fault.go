package finding

// Fault says whose fault a finding is: the customer's settings (the
// customer can fix it in the mail program) or the server (nothing on the
// customer's side is wrong; staff must change the server). Its JSON is
// "settings" or "server".
type Fault string

const (
	// FaultSettings: the customer's mail program is set up wrongly (or
	// the finding is about those settings, such as settings.ok).
	FaultSettings Fault = "settings"
	// FaultServer: the server is at fault; the fix tells the customer
	// that nothing on their side is wrong, the staff line what to change
	// on the server.
	FaultServer Fault = "server"
)

// Label names the fault for people.
func (f Fault) Label() string {
	switch f {
	case FaultServer:
		return "the server (nothing on the customer's side is wrong)"
	case FaultSettings:
		return "the customer's settings"
	}
	return string(f)
}
