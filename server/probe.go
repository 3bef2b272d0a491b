package server

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"os"
)

// ProbeRoots is the pool the probe verifies server certificates with:
// the system pool, plus the config's own certificate when it is
// self-signed (the embedded default), plus the certificates in the PEM
// files of extra.
func ProbeRoots(cfg *Config, extra ...string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if cfg.TLS.CertFile != "" {
		if certs, err := ReadCerts(cfg.Path(cfg.TLS.CertFile)); err == nil && len(certs) > 0 {
			if leaf := certs[0]; leaf.CheckSignatureFrom(leaf) == nil {
				pool.AddCert(leaf)
			}
		}
	}
	for _, f := range extra {
		certs, err := ReadCerts(f)
		if err != nil {
			return nil, err
		}
		if len(certs) == 0 {
			return nil, fmt.Errorf("%s: no PEM certificate in it", f)
		}
		for _, c := range certs {
			pool.AddCert(c)
		}
	}
	return pool, nil
}

// ReadCerts returns the certificates of a PEM file.
func ReadCerts(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return out, nil
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, c)
	}
}

// probeResolver is the DNS server the web's probes ask: the embedded
// responder when it listens, else none (the DNS checks are skipped).
func (c *Config) probeResolver() string {
	if c.Listen.DNS == "" {
		return ""
	}
	host, port, err := net.SplitHostPort(c.Listen.DNS)
	if err != nil {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
