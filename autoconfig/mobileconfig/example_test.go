package mobileconfig_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"log"
	"math/big"
	"time"

	"mailsetup/autoconfig/mobileconfig"
	"mailsetup/internal/testkit"
)

func Example() {
	p := testkit.IMAPFirst()
	profile, err := mobileconfig.Render(p, "john.doe@example.com")
	if err != nil {
		log.Fatal(err)
	}
	// An HTTP handler sends it with these headers.
	fmt.Println("Content-Type:", mobileconfig.ContentType)
	fmt.Printf("Content-Disposition: attachment; filename=%q\n", mobileconfig.Filename(p))

	got, err := mobileconfig.Parse(profile)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(got.Prefer, got.Username)
	fmt.Println(got.IMAP[0])
	fmt.Println(got.Submission[0])
	// Output:
	// Content-Type: application/x-apple-aspen-config
	// Content-Disposition: attachment; filename="example.com-mail.mobileconfig"
	// imap full-address
	// imap imap.example.com:993 tls
	// smtp smtp.example.com:465 tls
}

func ExampleSign() {
	// In production the key and certificate are the web server's TLS ones
	// (for example from Let's Encrypt) and chain holds the intermediates.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "autoconfig.pop-first.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		log.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		log.Fatal(err)
	}

	profile, err := mobileconfig.Render(testkit.POPFirst(), "jane@pop-first.test")
	if err != nil {
		log.Fatal(err)
	}
	signed, err := mobileconfig.Sign(profile, cert, key, nil)
	if err != nil {
		log.Fatal(err)
	}
	_, isSigned, err := mobileconfig.Content(signed)
	if err != nil {
		log.Fatal(err)
	}
	p, err := mobileconfig.Parse(signed)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("signed:", isSigned)
	fmt.Println(p.POP3[0])
	// Output:
	// signed: true
	// pop3 mail.pop-first.test:995 tls
}

func ExamplePayloadUUIDs() {
	profile, mail := mobileconfig.PayloadUUIDs("john.doe@example.com")
	again, _ := mobileconfig.PayloadUUIDs("John.Doe@Example.com")
	fmt.Println(len(profile), profile == again, profile != mail)
	// Output:
	// 36 true true
}
