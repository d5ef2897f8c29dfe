package notify

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"strconv"
	"strings"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/outbound"
)

// TLS modes for SMTP.
const (
	// SMTPStartTLS upgrades a plain connection with STARTTLS and fails if
	// the server does not offer it (the default).
	SMTPStartTLS = "starttls"
	// SMTPImplicitTLS speaks TLS from the first byte (port 465).
	SMTPImplicitTLS = "tls"
	// SMTPNoTLS sends in the clear; authentication is then refused.
	SMTPNoTLS = "none"
)

// SMTPOptions configure the e-mail channel.
type SMTPOptions struct {
	// Host and Port of the submission server (Port default 587).
	Host string
	Port int
	// TLS is SMTPStartTLS (default), SMTPImplicitTLS or SMTPNoTLS.
	TLS string
	// TLSConfig overrides the TLS client config (tests set RootCAs);
	// ServerName defaults to Host.
	TLSConfig *tls.Config
	// Username and Password enable AUTH PLAIN, only ever over TLS.
	Username string
	Password string
	// From and To are RFC 5322 addresses.
	From string
	To   []string
	// SubjectPrefix goes before every subject (default "[scrapedefense]").
	SubjectPrefix string
	// Policy is the SSRF guard for the server's address. The operator
	// names the server, so a private relay is often right: set Allow or
	// AllowPrivate for it.
	Policy outbound.Policy
	// Timeout bounds one delivery (default 15s) when the context has no
	// earlier deadline.
	Timeout time.Duration
	// Now is the clock for the Date header (default time.Now).
	Now func() time.Time
}

// SMTP sends alerts as e-mail.
type SMTP struct {
	o    SMTPOptions
	from *mail.Address
	to   []*mail.Address
}

// NewSMTP validates the options.
func NewSMTP(o SMTPOptions) (*SMTP, error) {
	if o.Host == "" || strings.ContainsAny(o.Host, "\r\n/ ") {
		return nil, errors.New("smtp: invalid host")
	}
	if o.Port == 0 {
		o.Port = 587
	}
	if o.Port < 1 || o.Port > 65535 {
		return nil, errors.New("smtp: invalid port")
	}
	switch o.TLS {
	case "":
		o.TLS = SMTPStartTLS
	case SMTPStartTLS, SMTPImplicitTLS:
	case SMTPNoTLS:
		if o.Username != "" {
			return nil, errors.New("smtp: authentication requires TLS")
		}
	default:
		return nil, fmt.Errorf("smtp: tls must be %q, %q or %q", SMTPStartTLS, SMTPImplicitTLS, SMTPNoTLS)
	}
	if o.SubjectPrefix == "" {
		o.SubjectPrefix = "[scrapedefense]"
	}
	if o.Timeout <= 0 {
		o.Timeout = 15 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &SMTP{o: o}
	var err error
	if s.from, err = parseAddress(o.From); err != nil {
		return nil, fmt.Errorf("smtp: from: %w", err)
	}
	if len(o.To) == 0 {
		return nil, errors.New("smtp: no recipients")
	}
	for _, t := range o.To {
		a, err := parseAddress(t)
		if err != nil {
			return nil, fmt.Errorf("smtp: to: %w", err)
		}
		s.to = append(s.to, a)
	}
	return s, nil
}

// parseAddress refuses anything that could smuggle SMTP commands or
// headers (CR, LF, NUL) before the parser sees it.
func parseAddress(s string) (*mail.Address, error) {
	if strings.ContainsAny(s, "\r\n\x00") {
		return nil, errors.New("address contains a line break")
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return nil, fmt.Errorf("invalid address %q: %w", s, err)
	}
	if strings.ContainsAny(a.Address, "<>\r\n ") {
		return nil, fmt.Errorf("invalid address %q", s)
	}
	return a, nil
}

// Name implements Notifier.
func (s *SMTP) Name() string { return "smtp" }

// Send implements Notifier.
func (s *SMTP) Send(ctx context.Context, b Batch) error {
	msg, err := s.message(b)
	if err != nil {
		return outbound.Permanent(err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.o.Timeout)
		defer cancel()
	}
	if err := s.deliver(ctx, msg); err != nil {
		return fmt.Errorf("smtp %s: %w", s.o.Host, err)
	}
	return nil
}

func (s *SMTP) tlsConfig() *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.o.TLSConfig != nil {
		cfg = s.o.TLSConfig.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = s.o.Host
	}
	return cfg
}

func (s *SMTP) deliver(ctx context.Context, msg []byte) error {
	addr := net.JoinHostPort(s.o.Host, strconv.Itoa(s.o.Port))
	conn, err := s.o.Policy.Dialer(net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	// net/smtp has no context support: the deadline bounds every read
	// and write, and closing on cancel unblocks it early.
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	if s.o.TLS == SMTPImplicitTLS {
		conn = tls.Client(conn, s.tlsConfig())
	}
	c, err := smtp.NewClient(conn, s.o.Host)
	if err != nil {
		conn.Close()
		return err
	}
	defer c.Close()
	if err := c.Hello(helloName(s.from.Address)); err != nil {
		return err
	}
	if s.o.TLS == SMTPStartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return errors.New("server does not offer STARTTLS (set tls: none to send in the clear)")
		}
		if err := c.StartTLS(s.tlsConfig()); err != nil {
			return fmt.Errorf("starttls: %w", err)
		}
	}
	if s.o.Username != "" {
		if _, isTLS := c.TLSConnectionState(); !isTLS {
			return errors.New("refusing to authenticate without TLS")
		}
		// net/smtp's PlainAuth also refuses non-TLS except to localhost.
		if err := c.Auth(smtp.PlainAuth("", s.o.Username, s.o.Password, s.o.Host)); err != nil {
			return errors.New("authentication failed") // the server's reply may echo credentials
		}
	}
	if err := c.Mail(s.from.Address); err != nil {
		return err
	}
	for _, t := range s.to {
		if err := c.Rcpt(t.Address); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(msg); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// helloName is the name announced in EHLO: the sender's domain is the best
// name this process has that does not leak the host name.
func helloName(from string) string {
	if _, dom, ok := strings.Cut(from, "@"); ok && dom != "" {
		return dom
	}
	return "localhost"
}

// message renders an RFC 5322 message. Every header value is either built
// from parsed addresses or MIME-encoded, so no alert text can start a new
// header; the body is quoted-printable so long lines and any bytes are safe.
func (s *SMTP) message(b Batch) ([]byte, error) {
	var buf bytes.Buffer
	now := s.o.Now()
	to := make([]string, len(s.to))
	for i, a := range s.to {
		to[i] = a.String()
	}
	id := make([]byte, 12)
	_, _ = rand.Read(id)
	subject := s.o.SubjectPrefix + " " + strings.ToUpper(b.Severity.String()) + ": " + b.Title()
	header := [][2]string{
		{"From", s.from.String()},
		{"To", strings.Join(to, ", ")},
		{"Subject", mime.QEncoding.Encode("utf-8", oneLine(clip(subject, 300)))},
		{"Date", now.Format(time.RFC1123Z)},
		{"Message-ID", "<" + hex.EncodeToString(id) + "." + strconv.FormatInt(now.Unix(), 10) + "@" + helloName(s.from.Address) + ">"},
		{"MIME-Version", "1.0"},
		{"Content-Type", "text/plain; charset=utf-8"},
		{"Content-Transfer-Encoding", "quoted-printable"},
		{"Auto-Submitted", "auto-generated"},
		{"X-Scrapedefense-Key", mime.QEncoding.Encode("utf-8", oneLine(clip(b.Key, 200)))},
	}
	for _, h := range header {
		if strings.ContainsAny(h[1], "\r\n") {
			return nil, fmt.Errorf("smtp: header %s contains a line break", h[0])
		}
		buf.WriteString(h[0])
		buf.WriteString(": ")
		buf.WriteString(h[1])
		buf.WriteString("\r\n")
	}
	buf.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&buf)
	body := strings.ReplaceAll(b.Body(), "\r\n", "\n")
	body = strings.ReplaceAll(body, "\n", "\r\n")
	if _, err := qp.Write([]byte(body)); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// oneLine replaces control characters so that a value stays on one line.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
