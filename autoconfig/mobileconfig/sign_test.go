package mobileconfig_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"

	"mailsetup/autoconfig/mobileconfig"
	"mailsetup/internal/testkit"
)

// certSpec describes a test certificate.
type certSpec struct {
	cn       string
	isCA     bool
	tlsLeaf  bool // a TLS server certificate, as Let's Encrypt issues
	notAfter time.Time
}

// newCert issues a certificate for key, signed by parent/parentKey, or
// self-signed when parent is nil.
func newCert(t testing.TB, spec certSpec, key crypto.Signer, parent *x509.Certificate, parentKey crypto.Signer) *x509.Certificate {
	t.Helper()
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	notAfter := spec.notAfter
	if notAfter.IsZero() {
		notAfter = time.Now().Add(24 * time.Hour)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: spec.cn, Organization: []string{"mailsetup test"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	if spec.isCA {
		tmpl.IsCA = true
		tmpl.BasicConstraintsValid = true
		tmpl.KeyUsage |= x509.KeyUsageCertSign
	}
	if spec.tlsLeaf {
		tmpl.DNSNames = []string{spec.cn}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		if _, ok := key.(*rsa.PrivateKey); ok {
			tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
		}
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func ecKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func rsaKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// signer is one way of signing a profile.
type signer struct {
	name  string
	cert  *x509.Certificate
	key   crypto.Signer
	chain []*x509.Certificate
	root  *x509.Certificate // trust anchor
	// purposeAny: the signer is a TLS server certificate, which openssl
	// only accepts for S/MIME signing with -purpose any (Apple accepts it).
	purposeAny bool
}

func signers(t *testing.T) []signer {
	t.Helper()
	ec := ecKey(t)
	self := newCert(t, certSpec{cn: "mailsetup self-signed"}, ec, nil, nil)

	rootKey := ecKey(t)
	root := newCert(t, certSpec{cn: "mailsetup test root", isCA: true}, rootKey, nil, nil)
	interKey := ecKey(t)
	inter := newCert(t, certSpec{cn: "mailsetup test intermediate", isCA: true}, interKey, root, rootKey)
	leafKey := rsaKey(t)
	leaf := newCert(t, certSpec{cn: "autoconfig.example.com", tlsLeaf: true}, leafKey, inter, interKey)

	return []signer{
		{name: "ecdsa-self-signed", cert: self, key: ec, root: self},
		{name: "rsa-tls-leaf-with-chain", cert: leaf, key: leafKey, chain: []*x509.Certificate{inter}, root: root, purposeAny: true},
	}
}

func TestSignParseVerify(t *testing.T) {
	p := testkit.IMAPFirst()
	profile, err := mobileconfig.Render(p, "john.doe@example.com")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range signers(t) {
		t.Run(s.name, func(t *testing.T) {
			signed, err := mobileconfig.Sign(profile, s.cert, s.key, s.chain)
			if err != nil {
				t.Fatal(err)
			}
			if signed[0] != 0x30 {
				t.Fatalf("signed profile does not start with a DER SEQUENCE")
			}

			// Parse and Content read through the signature.
			got, err := mobileconfig.Parse(signed)
			if err != nil {
				t.Fatal(err)
			}
			if want := mobileconfig.Project(p); !reflect.DeepEqual(got, want) {
				t.Errorf("Parse(Sign(Render(p))) =\n%+v\nwant\n%+v", got, want)
			}
			content, isSigned, err := mobileconfig.Content(signed)
			if err != nil || !isSigned || !bytes.Equal(content, profile) {
				t.Errorf("Content: signed %v, err %v, equal %v", isSigned, err, bytes.Equal(content, profile))
			}

			// The signature verifies in Go, with and without the chain to
			// the trust anchor.
			p7, err := pkcs7.Parse(signed)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(p7.Content, profile) {
				t.Errorf("pkcs7 content differs from the profile")
			}
			if err := p7.Verify(); err != nil {
				t.Errorf("Verify: %v", err)
			}
			pool := x509.NewCertPool()
			pool.AddCert(s.root)
			if err := p7.VerifyWithChain(pool); err != nil {
				t.Errorf("VerifyWithChain: %v", err)
			}
			if got := p7.GetOnlySigner(); got == nil || !got.Equal(s.cert) {
				t.Errorf("signer certificate is not the one given")
			}
			wantCerts := append([]*x509.Certificate{s.cert}, s.chain...)
			if len(p7.Certificates) != len(wantCerts) {
				t.Errorf("SignedData carries %d certificates, want %d", len(p7.Certificates), len(wantCerts))
			}

			// Tampering with the content breaks the signature; Parse still
			// reads it (verifying is not its job).
			tampered := bytes.Replace(signed, []byte("imap.example.com"), []byte("imap.examplf.com"), 1)
			if bytes.Equal(tampered, signed) {
				t.Fatal("host name not found in the signed bytes")
			}
			tp7, err := pkcs7.Parse(tampered)
			if err != nil {
				t.Fatal(err)
			}
			if err := tp7.Verify(); err == nil {
				t.Errorf("tampered profile verifies")
			}
			if tp, err := mobileconfig.Parse(tampered); err != nil || tp.IMAP[0].Host != "imap.examplf.com" {
				t.Errorf("Parse(tampered) = %+v, %v", tp, err)
			}
		})
	}
}

// TestSignOpenSSL verifies signed profiles with the openssl program, the
// reference CMS implementation, and parses a profile openssl signed.
func TestSignOpenSSL(t *testing.T) {
	openssl := testkit.Tool(t, "openssl", "openssl")
	profile, err := mobileconfig.Render(testkit.POPFirst(), "jane@pop-first.test")
	if err != nil {
		t.Fatal(err)
	}
	run := func(t *testing.T, args ...string) (string, error) {
		t.Helper()
		out, err := exec.Command(openssl, args...).CombinedOutput()
		return string(out), err
	}
	for _, s := range signers(t) {
		t.Run(s.name, func(t *testing.T) {
			dir := t.TempDir()
			signed, err := mobileconfig.Sign(profile, s.cert, s.key, s.chain)
			if err != nil {
				t.Fatal(err)
			}
			signedPath := filepath.Join(dir, "signed.mobileconfig")
			if err := os.WriteFile(signedPath, signed, 0o600); err != nil {
				t.Fatal(err)
			}
			caPath := filepath.Join(dir, "ca.pem")
			writePEM(t, caPath, "CERTIFICATE", s.root.Raw)
			for _, cmd := range []string{"cms", "smime"} {
				contentPath := filepath.Join(dir, cmd+"-content.plist")
				args := []string{cmd, "-verify", "-inform", "DER", "-in", signedPath, "-CAfile", caPath, "-out", contentPath}
				if s.purposeAny {
					args = append(args, "-purpose", "any")
				}
				out, err := run(t, args...)
				if err != nil {
					t.Fatalf("openssl %s -verify: %v\n%s", cmd, err, out)
				}
				content, err := os.ReadFile(contentPath)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(content, profile) {
					t.Errorf("openssl %s extracted content differs from the profile:\n%s", cmd, content)
				}
			}

			// A tampered profile must fail openssl's verification.
			tampered := bytes.Replace(signed, []byte("mail.pop-first.test"), []byte("mail.pop-first.tesT"), 1)
			tamperedPath := filepath.Join(dir, "tampered.mobileconfig")
			if err := os.WriteFile(tamperedPath, tampered, 0o600); err != nil {
				t.Fatal(err)
			}
			args := []string{"cms", "-verify", "-inform", "DER", "-in", tamperedPath, "-CAfile", caPath, "-out", filepath.Join(dir, "tampered.plist")}
			if s.purposeAny {
				args = append(args, "-purpose", "any")
			}
			if out, err := run(t, args...); err == nil {
				t.Errorf("openssl verifies a tampered profile:\n%s", out)
			}

			// The other direction: openssl signs, Parse reads.
			certPath := filepath.Join(dir, "cert.pem")
			writePEM(t, certPath, "CERTIFICATE", s.cert.Raw)
			keyDER, err := x509.MarshalPKCS8PrivateKey(s.key)
			if err != nil {
				t.Fatal(err)
			}
			keyPath := filepath.Join(dir, "key.pem")
			writePEM(t, keyPath, "PRIVATE KEY", keyDER)
			profilePath := filepath.Join(dir, "profile.mobileconfig")
			if err := os.WriteFile(profilePath, profile, 0o600); err != nil {
				t.Fatal(err)
			}
			opensslSigned := filepath.Join(dir, "openssl-signed.mobileconfig")
			signArgs := []string{"smime", "-sign", "-nodetach", "-binary", "-outform", "der", "-signer", certPath, "-inkey", keyPath, "-in", profilePath, "-out", opensslSigned}
			if len(s.chain) > 0 {
				chainPath := filepath.Join(dir, "chain.pem")
				writePEM(t, chainPath, "CERTIFICATE", s.chain[0].Raw)
				signArgs = append(signArgs, "-certfile", chainPath)
			}
			if out, err := run(t, signArgs...); err != nil {
				t.Fatalf("openssl smime -sign: %v\n%s", err, out)
			}
			data, err := os.ReadFile(opensslSigned)
			if err != nil {
				t.Fatal(err)
			}
			got, err := mobileconfig.Parse(data)
			if err != nil {
				t.Fatalf("Parse(openssl-signed profile): %v", err)
			}
			if want := mobileconfig.Project(testkit.POPFirst()); !reflect.DeepEqual(got, want) {
				t.Errorf("Parse(openssl-signed) =\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

func TestSignErrors(t *testing.T) {
	profile, err := mobileconfig.Render(testkit.IMAPFirst(), "john@example.com")
	if err != nil {
		t.Fatal(err)
	}
	key := ecKey(t)
	cert := newCert(t, certSpec{cn: "signer"}, key, nil, nil)
	otherKey := ecKey(t)
	otherCert := newCert(t, certSpec{cn: "other", isCA: true}, otherKey, nil, nil)
	cases := []struct {
		name    string
		profile []byte
		cert    *x509.Certificate
		key     crypto.PrivateKey
		chain   []*x509.Certificate
	}{
		{"empty profile", nil, cert, key, nil},
		{"no certificate", profile, nil, key, nil},
		{"no key", profile, cert, nil, nil},
		{"not a signer", profile, cert, "secret", nil},
		{"nil ecdsa key", profile, cert, (*ecdsa.PrivateKey)(nil), nil},
		{"nil rsa key", profile, cert, (*rsa.PrivateKey)(nil), nil},
		{"key of another certificate", profile, cert, otherKey, nil},
		{"chain that did not issue the certificate", profile, cert, key, []*x509.Certificate{otherCert}},
		{"nil in chain", profile, cert, key, []*x509.Certificate{nil}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if out, err := mobileconfig.Sign(tc.profile, tc.cert, tc.key, tc.chain); err == nil {
				t.Errorf("no error; got %d bytes", len(out))
			}
		})
	}
}

func TestParseSignedMalformed(t *testing.T) {
	key := ecKey(t)
	cert := newCert(t, certSpec{cn: "signer"}, key, nil, nil)
	// Signed content that is not a plist.
	notPlist, err := mobileconfig.Sign([]byte("just text"), cert, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A signed signed profile: Parse unwraps one layer only.
	profile, err := mobileconfig.Render(testkit.IMAPFirst(), "john@example.com")
	if err != nil {
		t.Fatal(err)
	}
	once, err := mobileconfig.Sign(profile, cert, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	twice, err := mobileconfig.Sign(once, cert, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	// A certificates-only SignedData (no signer, no content).
	degenerate, err := pkcs7.DegenerateCertificate(cert.Raw)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"content not a plist": notPlist,
		"signed twice":        twice,
		"certificates only":   degenerate,
		"truncated":           once[:len(once)/2],
		"trailing garbage":    append(bytes.Clone(once), 0x00, 0x01),
	} {
		t.Run(name, func(t *testing.T) {
			if p, err := mobileconfig.Parse(data); err == nil || !errors.Is(err, mobileconfig.ErrMalformed) {
				t.Errorf("Parse = %+v, %v; want an ErrMalformed error", p, err)
			}
		})
	}
}
