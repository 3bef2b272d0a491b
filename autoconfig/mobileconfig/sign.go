package mobileconfig

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/smallstep/pkcs7"
)

// Sign wraps profile in a CMS SignedData (RFC 5652) in DER form with the
// content attached, as `openssl smime -sign -nodetach -outform der` makes
// it, which Apple devices install as a signed profile. The signature is
// made with key over SHA-256 (ECDSA or RSA PKCS #1 v1.5, after the key
// type) with the usual signed attributes (content type, message digest,
// signing time); the SignedData carries cert and then chain, the
// intermediate certificates up to (not necessarily including) a root, in
// order: chain[0] must have issued cert, chain[1] chain[0], and so on.
//
// key must be a crypto.Signer (*ecdsa.PrivateKey, *rsa.PrivateKey, or a
// hardware-backed signer) whose public key is cert's. The signing time
// makes the output differ from call to call. Apple treats a profile
// signed with an expired certificate as unsigned, so re-sign when the
// certificate is renewed.
func Sign(profile []byte, cert *x509.Certificate, key crypto.PrivateKey, chain []*x509.Certificate) ([]byte, error) {
	if len(profile) == 0 {
		return nil, errors.New("mobileconfig: sign: empty profile")
	}
	if cert == nil {
		return nil, errors.New("mobileconfig: sign: no signer certificate")
	}
	// Typed nil keys would panic in Public.
	if k, ok := key.(*ecdsa.PrivateKey); ok && k == nil {
		return nil, errors.New("mobileconfig: sign: nil private key")
	}
	if k, ok := key.(*rsa.PrivateKey); ok && k == nil {
		return nil, errors.New("mobileconfig: sign: nil private key")
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("mobileconfig: sign: private key of type %T cannot sign", key)
	}
	pub, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, errors.New("mobileconfig: sign: the private key does not belong to the certificate")
	}
	for i, c := range chain {
		if c == nil {
			return nil, fmt.Errorf("mobileconfig: sign: chain certificate %d is nil", i)
		}
	}
	sd, err := pkcs7.NewSignedData(profile)
	if err != nil {
		return nil, fmt.Errorf("mobileconfig: sign: %w", err)
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if len(chain) > 0 {
		// AddSignerChain checks that each certificate issued the previous one.
		err = sd.AddSignerChain(cert, signer, chain, pkcs7.SignerInfoConfig{})
	} else {
		err = sd.AddSigner(cert, signer, pkcs7.SignerInfoConfig{})
	}
	if err != nil {
		return nil, fmt.Errorf("mobileconfig: sign: %w", err)
	}
	der, err := sd.Finish()
	if err != nil {
		return nil, fmt.Errorf("mobileconfig: sign: %w", err)
	}
	return der, nil
}
