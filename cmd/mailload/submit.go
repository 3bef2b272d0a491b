package main

import (
	"bytes"
	"crypto/tls"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// submitSession connects, does TLS and AUTH PLAIN, sends n messages and
// quits; it returns how many were accepted.
func submitSession(addr string, implicit bool, user, pass, from, to string, msg []byte, n int, lat *latencies) (int, error) {
	tlsConf := &tls.Config{InsecureSkipVerify: true} // loopback benchmark against self-signed test certificates
	var c *smtp.Client
	var err error
	start := time.Now()
	if implicit {
		c, err = smtp.DialTLS(addr, tlsConf)
	} else {
		c, err = smtp.DialStartTLS(addr, tlsConf)
	}
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", user, pass)); err != nil {
		return 0, err
	}
	sent := 0
	for i := 0; i < n; i++ {
		if err := c.SendMail(from, []string{to}, bytes.NewReader(msg)); err != nil {
			return sent, err
		}
		lat.add(time.Since(start))
		start = time.Now()
		sent++
	}
	return sent, c.Quit()
}
