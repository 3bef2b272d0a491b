// Package dkim signs outbound mail of the local domains (DKIM, RFC 6376,
// relaxed/relaxed) with two keys per domain, RSA 2048 and Ed25519 (RFC
// 8463), generated on first use and kept as PEM files in one directory;
// and it renders the TXT records that publish them. The signing itself
// is github.com/emersion/go-msgauth.
//
// A receiver that knows Ed25519 checks that signature; the others the RSA
// one (RFC 8463 §3: sign with both during the transition).
//
// Imports: the standard library and go-msgauth only.
package dkim

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"strings"

	"github.com/emersion/go-msgauth/dkim"
)

// The selectors the keys are published under (SELECTOR._domainkey.DOMAIN).
const (
	SelectorRSA     = "mailsetup-rsa"
	SelectorEd25519 = "mailsetup-ed25519"
)

// signedHeaders are the fields signed (RFC 6376 §5.4.1's list); a name
// not present in a message is signed as absent, so it cannot be added
// later.
var signedHeaders = []string{"From", "Reply-To", "Subject", "Date", "To", "Cc", "Resent-Date", "Resent-From",
	"Resent-To", "Resent-Cc", "In-Reply-To", "References", "List-Id", "List-Help", "List-Unsubscribe",
	"List-Subscribe", "List-Post", "List-Owner", "List-Archive", "Message-ID", "MIME-Version",
	"Content-Type", "Content-Transfer-Encoding"}

// Keys are the signing keys of the local domains.
type Keys struct {
	byDomain map[string]domainKeys
}

type domainKeys struct {
	rsa *rsa.PrivateKey
	ed  ed25519.PrivateKey
}

// Open loads the keys of each domain from dir, generating (and storing,
// mode 0600) those that do not exist yet.
func Open(dir string, domains []string) (*Keys, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("dkim: %w", err)
	}
	k := &Keys{byDomain: map[string]domainKeys{}}
	for _, d := range domains {
		d = strings.ToLower(d)
		rk, err := loadOrCreate(filepath.Join(dir, d+".rsa.pem"), func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 2048) })
		if err != nil {
			return nil, err
		}
		ek, err := loadOrCreate(filepath.Join(dir, d+".ed25519.pem"), func() (crypto.Signer, error) {
			_, priv, err := ed25519.GenerateKey(rand.Reader)
			return priv, err
		})
		if err != nil {
			return nil, err
		}
		r, ok1 := rk.(*rsa.PrivateKey)
		e, ok2 := ek.(ed25519.PrivateKey)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("dkim: the keys of %s in %s are not RSA and Ed25519", d, dir)
		}
		if r.N.BitLen() < 1024 {
			return nil, fmt.Errorf("dkim: the RSA key of %s has %d bits; RFC 8301 wants at least 1024", d, r.N.BitLen())
		}
		k.byDomain[d] = domainKeys{rsa: r, ed: e}
	}
	return k, nil
}

// loadOrCreate reads a PKCS #8 PEM key, or generates and writes one
// (through a temporary file, fsync'd, renamed: never half a key).
func loadOrCreate(path string, gen func() (crypto.Signer, error)) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err == nil {
		b, _ := pem.Decode(data)
		if b == nil || b.Type != "PRIVATE KEY" {
			return nil, fmt.Errorf("dkim: %s: not a PEM \"PRIVATE KEY\"", path)
		}
		key, err := x509.ParsePKCS8PrivateKey(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("dkim: %s: %w", path, err)
		}
		s, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("dkim: %s: not a signing key", path)
		}
		return s, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("dkim: %w", err)
	}
	key, err := gen()
	if err != nil {
		return nil, fmt.Errorf("dkim: generating %s: %w", path, err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-key-*")
	if err != nil {
		return nil, fmt.Errorf("dkim: %w", err)
	}
	defer os.Remove(tmp.Name())
	err = pem.Encode(tmp, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return nil, fmt.Errorf("dkim: writing %s: %w", path, err)
	}
	return key, nil
}

// Sign returns msg with an RSA and an Ed25519 DKIM-Signature of the
// domain of its From header, when that domain is local; other messages
// come back unchanged. envelopeFrom is used when the header has no
// readable address.
func (k *Keys) Sign(envelopeFrom string, msg []byte) ([]byte, error) {
	domain := headerFromDomain(msg)
	if domain == "" {
		domain = domainOf(envelopeFrom)
	}
	dk, ok := k.byDomain[domain]
	if !ok {
		return msg, nil
	}
	var sigs bytes.Buffer
	for _, s := range []struct {
		sel string
		key crypto.Signer
	}{{SelectorRSA, dk.rsa}, {SelectorEd25519, dk.ed}} {
		signer, err := dkim.NewSigner(&dkim.SignOptions{Domain: domain, Selector: s.sel, Signer: s.key, Hash: crypto.SHA256,
			HeaderCanonicalization: dkim.CanonicalizationRelaxed, BodyCanonicalization: dkim.CanonicalizationRelaxed,
			HeaderKeys: signedHeaders})
		if err != nil {
			return nil, err
		}
		if _, err := signer.Write(msg); err != nil {
			signer.Close()
			return nil, err
		}
		if err := signer.Close(); err != nil {
			return nil, fmt.Errorf("dkim: signing for %s: %w", domain, err)
		}
		sigs.WriteString(signer.Signature())
	}
	out := make([]byte, 0, sigs.Len()+len(msg))
	return append(append(out, sigs.Bytes()...), msg...), nil
}

// headerFromDomain is the domain of the message's From header, "" when
// it has none or it cannot be read.
func headerFromDomain(msg []byte) string {
	end := bytes.Index(msg, []byte("\r\n\r\n"))
	if end < 0 {
		end = len(msg)
	} else {
		end += 4
	}
	m, err := mail.ReadMessage(bytes.NewReader(msg[:end]))
	if err != nil {
		return ""
	}
	list, err := mail.ParseAddressList(m.Header.Get("From"))
	if err != nil || len(list) != 1 {
		return ""
	}
	return domainOf(list[0].Address)
}

func domainOf(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	return strings.ToLower(addr[i+1:])
}

// Record is one TXT record to publish.
type Record struct {
	Selector string
	// Name is SELECTOR._domainkey.DOMAIN (no trailing dot).
	Name string
	// Value is the record's text ("v=DKIM1; k=rsa; p=..."), which may be
	// longer than one TXT string (255 octets): publish it split.
	Value string
}

// Records are the TXT records that publish a domain's public keys (none
// for a domain without keys).
func (k *Keys) Records(domain string) []Record {
	domain = strings.ToLower(domain)
	dk, ok := k.byDomain[domain]
	if !ok {
		return nil
	}
	der, _ := x509.MarshalPKIXPublicKey(&dk.rsa.PublicKey)
	return []Record{
		{Selector: SelectorRSA, Name: SelectorRSA + "._domainkey." + domain, Value: "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(der)},
		// RFC 8463 §4.2: the raw 32-octet public key, not PKIX.
		{Selector: SelectorEd25519, Name: SelectorEd25519 + "._domainkey." + domain, Value: "v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(dk.ed.Public().(ed25519.PublicKey))},
	}
}
