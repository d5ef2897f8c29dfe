// Package smtptest is a minimal SMTP submission server for tests: EHLO,
// STARTTLS or implicit TLS, AUTH PLAIN, MAIL, RCPT, DATA, QUIT. It records
// what it received.
package smtptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server is a running fake SMTP server. Configure its exported fields in
// New's configure functions, before it serves.
type Server struct {
	Addr     string
	Roots    *x509.CertPool // trusts the server's self-signed certificate
	StartTLS bool           // offer STARTTLS
	Implicit bool           // speak TLS from the first byte
	User     string         // AUTH PLAIN credentials it accepts
	Pass     string

	tls *tls.Config

	mu       sync.Mutex
	sessions []Session
}

// Session is one connection as the server saw it.
type Session struct {
	TLS      bool
	AuthUser string
	AuthPass string
	AuthTLS  bool // AUTH happened after TLS
	From     string
	To       []string
	Data     string
	Commands []string
}

// New starts a server on a loopback port; it stops when the test ends.
func New(t testing.TB, offerStartTLS bool, configure ...func(*Server)) *Server {
	t.Helper()
	cert, roots := selfSigned(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &Server{
		Addr:     ln.Addr().String(),
		tls:      &tls.Config{Certificates: []tls.Certificate{cert}},
		Roots:    roots,
		StartTLS: offerStartTLS,
		User:     "alerts",
		Pass:     "hunter2",
	}
	for _, c := range configure {
		c(f)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { f.serve(c) })
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return f
}

// Last returns the most recent session (zero if none).
func (f *Server) Last() Session {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.sessions) == 0 {
		return Session{}
	}
	return f.sessions[len(f.sessions)-1]
}

func (f *Server) serve(c net.Conn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var s Session
	if f.Implicit {
		tc := tls.Server(c, f.tls)
		if err := tc.Handshake(); err != nil {
			return
		}
		c, s.TLS = tc, true
	}
	var once sync.Once
	record := func() {
		once.Do(func() {
			f.mu.Lock()
			f.sessions = append(f.sessions, s)
			f.mu.Unlock()
		})
	}
	defer record()
	tp := textproto.NewConn(c)
	_ = tp.PrintfLine("220 fake ESMTP")
	for {
		line, err := tp.ReadLine()
		if err != nil {
			return
		}
		s.Commands = append(s.Commands, strings.SplitN(line, " ", 2)[0])
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO", "HELO":
			ext := []string{"250-fake", "250-8BITMIME"}
			if f.StartTLS && !s.TLS {
				ext = append(ext, "250-STARTTLS")
			}
			ext = append(ext, "250 AUTH PLAIN")
			for _, e := range ext {
				_ = tp.PrintfLine("%s", e)
			}
		case "STARTTLS":
			_ = tp.PrintfLine("220 go ahead")
			tc := tls.Server(c, f.tls)
			if err := tc.Handshake(); err != nil {
				return
			}
			c = tc
			tp = textproto.NewConn(tc)
			s.TLS = true
		case "AUTH":
			mech, resp, _ := strings.Cut(arg, " ")
			if mech != "PLAIN" {
				_ = tp.PrintfLine("504 unsupported")
				continue
			}
			raw, _ := base64.StdEncoding.DecodeString(resp)
			parts := strings.Split(string(raw), "\x00")
			if len(parts) == 3 {
				s.AuthUser, s.AuthPass, s.AuthTLS = parts[1], parts[2], s.TLS
			}
			if s.AuthUser == f.User && s.AuthPass == f.Pass {
				_ = tp.PrintfLine("235 ok")
			} else {
				_ = tp.PrintfLine("535 bad credentials for %s", s.AuthPass)
			}
		case "MAIL":
			s.From = arg
			_ = tp.PrintfLine("250 ok")
		case "RCPT":
			s.To = append(s.To, arg)
			_ = tp.PrintfLine("250 ok")
		case "DATA":
			_ = tp.PrintfLine("354 end with .")
			b, err := tp.ReadDotBytes()
			if err != nil {
				return
			}
			s.Data = string(b)
			_ = tp.PrintfLine("250 queued")
		case "QUIT":
			record() // before replying, so the client sees it once Send returns
			_ = tp.PrintfLine("221 bye")
			return
		default:
			_ = tp.PrintfLine("502 unknown")
		}
	}
}

// selfSigned makes a certificate for 127.0.0.1 and a pool that trusts it.
func selfSigned(t testing.TB) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "fake smtp"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// Sessions returns every session so far.
func (f *Server) Sessions() []Session {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Session(nil), f.sessions...)
}
