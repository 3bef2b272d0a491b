package finding

// The names of the settings fields as the clients' settings dialogs
// call them (Thunderbird first, Outlook in brackets): the {field} of a
// fix, so that the probe and the server's observations name a field
// alike.
const (
	FieldInUser  = `the incoming server's "Username" [Outlook: "User Name"]`
	FieldInHost  = `the incoming server's "Server" / "Hostname" [Outlook: "Incoming mail server"]`
	FieldInPort  = `the incoming server's "Port"`
	FieldInSec   = `the incoming server's "Connection security" [Outlook: "Use the following type of encrypted connection"]`
	FieldOutUser = `the outgoing server's (SMTP) "Username" [Outlook: "Logon using ... User Name"]`
	FieldOutHost = `the outgoing server's (SMTP) "Server" / "Hostname" [Outlook: "Outgoing mail server (SMTP)"]`
	FieldOutPort = `the outgoing server's (SMTP) "Port"`
	FieldOutSec  = `the outgoing server's (SMTP) "Connection security" [Outlook: "Use the following type of encrypted connection"]`
)
