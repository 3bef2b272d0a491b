package dkim_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"mailsetup/internal/testkit"
	"mailsetup/server/dkim"
)

func records(k *dkim.Keys, domain string) map[string]string {
	m := map[string]string{}
	for _, r := range k.Records(domain) {
		m[r.Name] = r.Value
	}
	return m
}

// TestSignVerifiedByDkimpy: both signatures (RSA 2048, Ed25519) of a
// message from a local domain pass an independent verifier, also after
// the changes relaxed canonicalization allows (header case and folding,
// trailing spaces); a changed body fails both; the keys are generated
// once and read back at the next start.
func TestSignVerifiedByDkimpy(t *testing.T) {
	dir := t.TempDir()
	k, err := dkim.Open(dir, []string{"example.test"})
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("From: Alice <alice@example.test>\r\nTo: bob@remote.test\r\nSubject: signed\r\nDate: Mon, 7 Dec 2026 10:00:00 +0000\r\nMessage-ID: <s1@example.test>\r\n\r\nHello Bob,\r\nthis is signed.\r\n")
	signed, err := k.Sign("alice@example.test", msg)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"d=example.test s=mailsetup-rsa a=rsa-sha256 pass", "d=example.test s=mailsetup-ed25519 a=ed25519-sha256 pass"}
	if got := testkit.DKIMVerify(t, signed, records(k, "example.test")); !slices.Equal(got, want) {
		t.Fatalf("dkimpy: %q, want %q\n%s", got, want, signed)
	}
	if !bytes.Contains(signed, []byte("c=relaxed/relaxed")) {
		t.Errorf("not relaxed/relaxed:\n%s", signed)
	}
	relaxed := bytes.Replace(signed, []byte("Subject: signed\r\n"), []byte("SUBJECT:   signed  \r\n"), 1)
	relaxed = bytes.Replace(relaxed, []byte("this is signed.\r\n"), []byte("this  is signed. \r\n"), 1)
	if got := testkit.DKIMVerify(t, relaxed, records(k, "example.test")); !slices.Equal(got, want) {
		t.Errorf("after relaxed-equivalent changes: %q", got)
	}
	tampered := bytes.Replace(signed, []byte("Hello Bob"), []byte("Hello Eve"), 1)
	for _, line := range testkit.DKIMVerify(t, tampered, records(k, "example.test")) {
		if !strings.HasSuffix(line, " fail") {
			t.Errorf("a changed body passed: %s", line)
		}
	}

	again, err := dkim.Open(dir, []string{"example.test"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(again.Records("example.test"), k.Records("example.test")) {
		t.Error("the keys changed at the second start")
	}
	if !strings.HasPrefix(k.Records("example.test")[0].Value, "v=DKIM1; k=rsa; p=MIIBIjAN") {
		t.Errorf("the RSA record is not a 2048-bit key: %s", k.Records("example.test")[0].Value)
	}
}

// TestOtherDomainsUnsigned: a message whose From is not a local domain
// goes out as it came.
func TestOtherDomainsUnsigned(t *testing.T) {
	k, err := dkim.Open(t.TempDir(), []string{"example.test"})
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("From: someone@elsewhere.test\r\nSubject: x\r\n\r\nbody\r\n")
	out, err := k.Sign("someone@elsewhere.test", msg)
	if err != nil || !bytes.Equal(out, msg) {
		t.Errorf("a foreign message was changed (%v):\n%s", err, out)
	}
}
