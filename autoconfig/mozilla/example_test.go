package mozilla_test

import (
	"fmt"
	"os"

	"mailsetup/autoconfig"
	"mailsetup/autoconfig/mozilla"
)

func ExampleRender() {
	p := autoconfig.Policy{
		Domain:      "example.org",
		DisplayName: "Example Org Mail",
		ShortName:   "Example",
		IMAP: []autoconfig.Endpoint{
			{Protocol: autoconfig.IMAP, Host: "mail.example.org", Port: 993, Security: autoconfig.TLS},
		},
		Submission: []autoconfig.Endpoint{
			{Protocol: autoconfig.SMTP, Host: "mail.example.org", Port: 465, Security: autoconfig.TLS},
		},
		Prefer:   autoconfig.IMAP,
		Username: autoconfig.FullAddress,
		Auth:     []autoconfig.AuthMethod{autoconfig.AuthPlain},
	}
	// The address comes from the request's ?emailaddress=; "" writes the
	// %EMAILADDRESS% placeholder instead.
	if err := mozilla.Render(os.Stdout, p, "alice@example.org"); err != nil {
		fmt.Println(err)
	}
	// Output:
	// <?xml version="1.0" encoding="UTF-8"?>
	// <clientConfig version="1.2">
	//   <emailProvider id="example.org">
	//     <domain>example.org</domain>
	//     <displayName>Example Org Mail</displayName>
	//     <displayShortName>Example</displayShortName>
	//     <incomingServer type="imap">
	//       <hostname>mail.example.org</hostname>
	//       <port>993</port>
	//       <socketType>SSL</socketType>
	//       <username>alice@example.org</username>
	//       <authentication>password-cleartext</authentication>
	//     </incomingServer>
	//     <outgoingServer type="smtp">
	//       <hostname>mail.example.org</hostname>
	//       <port>465</port>
	//       <socketType>SSL</socketType>
	//       <username>alice@example.org</username>
	//       <authentication>password-cleartext</authentication>
	//     </outgoingServer>
	//   </emailProvider>
	// </clientConfig>
}
