package autodiscover_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"time"

	"mailsetup/autoconfig/autodiscover"
	"mailsetup/internal/testkit"
)

func ExampleParseRequest() {
	body := `<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>john@example.com</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>`
	req, err := autodiscover.ParseRequest(strings.NewReader(body))
	fmt.Println(req.EMailAddress, err)

	_, err = autodiscover.ParseRequest(strings.NewReader(`<!DOCTYPE x [<!ENTITY e SYSTEM "http://attacker.invalid/">]><x>&e;</x>`))
	fmt.Println(errors.Is(err, autodiscover.ErrMalformed))
	// Output:
	// john@example.com <nil>
	// true
}

func ExampleWriteError() {
	now := time.Date(2024, 5, 17, 16, 56, 32, 616402700, time.UTC)
	autodiscover.WriteError(os.Stdout, autodiscover.CodeSchemaNotSupported, "", now)
	// Output:
	// <?xml version="1.0" encoding="UTF-8"?>
	// <Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006">
	//   <Response>
	//     <Error Time="16:56:32.6164027" Id="3140650000">
	//       <ErrorCode>601</ErrorCode>
	//       <Message>The requested response schema is not supported.</Message>
	//       <DebugData></DebugData>
	//     </Error>
	//   </Response>
	// </Autodiscover>
}

func ExampleV2() {
	status, body := autodiscover.V2("AutodiscoverV1", "https://autodiscover.example.com/Autodiscover/Autodiscover.xml")
	fmt.Println(status, string(body))
	status, body = autodiscover.V2("ActiveSync", "https://autodiscover.example.com/Autodiscover/Autodiscover.xml")
	fmt.Println(status, string(body))
	// Output:
	// 200 {"Protocol":"AutodiscoverV1","Url":"https://autodiscover.example.com/Autodiscover/Autodiscover.xml"}
	// 400 {"ErrorCode":"InvalidProtocol","ErrorMessage":"The given protocol value 'ActiveSync' is invalid. Supported values are 'AutodiscoverV1'"}
}

// This example is the shape of a POX handler: parse, map each sentinel to
// its answer, render, and read the answer back as a client would.
func Example_handler() {
	policy := testkit.POPFirst()
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := autodiscover.ParseRequest(r.Body)
		w.Header().Set("Content-Type", autodiscover.ContentType)
		switch {
		case errors.Is(err, autodiscover.ErrTooLarge):
			w.Header().Set("Connection", "close")
			http.Error(w, "request too large", http.StatusRequestEntityTooLarge)
		case errors.Is(err, autodiscover.ErrSchemaNotSupported):
			autodiscover.WriteError(w, autodiscover.CodeSchemaNotSupported, "", time.Now())
		case err != nil: // ErrMalformed, ErrNoAddress, a read error
			autodiscover.WriteError(w, autodiscover.CodeInvalidRequest, "", time.Now())
		default:
			// A real handler validates req.EMailAddress with
			// autoconfig.ParseAddress and looks up its domain's policy,
			// answering CodeAddressNotFound for an unknown domain.
			autodiscover.WriteResponse(w, policy, req.EMailAddress)
		}
	})

	body := `<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>john@pop-first.test</EMailAddress></Request></Autodiscover>`
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, httptest.NewRequest("POST", "/Autodiscover/Autodiscover.xml", strings.NewReader(body)))
	got, err := autodiscover.ParseResponse(rec.Body)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range append(got.Incoming(), got.Submission...) {
		fmt.Println(e)
	}
	// Output:
	// pop3 mail.pop-first.test:995 tls
	// pop3 mail.pop-first.test:110 starttls
	// imap mail.pop-first.test:993 tls
	// smtp mail.pop-first.test:587 starttls
}
