package notify

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/scrapedefense/scrapedefense/internal/notify/smtptest"
	"github.com/scrapedefense/scrapedefense/internal/outbound"
)

func smtpOptions(t *testing.T, f *smtptest.Server) SMTPOptions {
	t.Helper()
	host, port, _ := net.SplitHostPort(f.Addr)
	p, _ := strconv.Atoi(port)
	return SMTPOptions{
		Host: host, Port: p,
		TLSConfig: &tls.Config{RootCAs: f.Roots},
		Username:  "alerts", Password: "hunter2",
		From:   "Scrapedefense <alerts@example.org>",
		To:     []string{"ops@example.org", "Second <sec@example.org>"},
		Policy: outbound.Policy{AllowPrivate: true},
		Now:    func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) },
	}
}

func TestSMTPSendsOverStartTLS(t *testing.T) {
	f := smtptest.New(t, true)
	s, err := NewSMTP(smtpOptions(t, f))
	if err != nil {
		t.Fatal(err)
	}
	b := testBatch()
	b.Alerts[0].Title = "Blocked\r\nBcc: victim@example.com"
	b.Alerts[0].Text = "line one\n.\nline three " + strings.Repeat("é", 100)
	if err := s.Send(context.Background(), b); err != nil {
		t.Fatalf("Send: %v", err)
	}
	got := f.Last()
	if !got.TLS || !got.AuthTLS || got.AuthUser != "alerts" || got.AuthPass != "hunter2" {
		t.Errorf("session: tls %v auth-after-tls %v user %q", got.TLS, got.AuthTLS, got.AuthUser)
	}
	if got.From != "FROM:<alerts@example.org>" && !strings.Contains(got.From, "<alerts@example.org>") {
		t.Errorf("MAIL %q", got.From)
	}
	if len(got.To) != 2 {
		t.Errorf("RCPT %v", got.To)
	}
	msg, err := mail.ReadMessage(strings.NewReader(got.Data))
	if err != nil {
		t.Fatalf("message does not parse: %v\n%s", err, got.Data)
	}
	if msg.Header.Get("Bcc") != "" {
		t.Error("header injection: Bcc present")
	}
	for _, h := range []string{"Date", "Message-Id", "From", "To", "Subject"} {
		if msg.Header.Get(h) == "" {
			t.Errorf("missing header %s", h)
		}
	}
	if d, err := msg.Header.Date(); err != nil || !d.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("Date = %v, %v", d, err)
	}
	subj, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil || !strings.Contains(subj, "CRITICAL: Blocked  Bcc: victim@example.com") {
		t.Errorf("Subject = %q, %v", subj, err)
	}
	raw, _ := io.ReadAll(msg.Body)
	for i, l := range strings.Split(string(raw), "\n") {
		if len(l) > 78 {
			t.Errorf("body line %d is %d bytes long", i, len(l))
		}
	}
	body, _ := io.ReadAll(quotedprintable.NewReader(strings.NewReader(string(raw))))
	if !strings.Contains(string(body), "line one\n.\nline three é") {
		t.Errorf("body = %q", body)
	}
}

func TestSMTPRequiresStartTLS(t *testing.T) {
	f := smtptest.New(t, false)
	s, err := NewSMTP(smtpOptions(t, f))
	if err != nil {
		t.Fatal(err)
	}
	err = s.Send(context.Background(), testBatch())
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("Send = %v, want a STARTTLS error", err)
	}
	if got := f.Last(); got.AuthUser != "" || got.Data != "" {
		t.Errorf("credentials or data sent in the clear: %+v", got)
	}
}

func TestSMTPPlainWhenExplicitlyDisabled(t *testing.T) {
	f := smtptest.New(t, false)
	o := smtpOptions(t, f)
	o.TLS = SMTPNoTLS
	if _, err := NewSMTP(o); err == nil {
		t.Fatal("NewSMTP accepted credentials without TLS")
	}
	o.Username, o.Password = "", ""
	s, err := NewSMTP(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), testBatch()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if f.Last().Data == "" {
		t.Error("no message delivered")
	}
}

func TestSMTPBadPasswordNotLeaked(t *testing.T) {
	f := smtptest.New(t, true)
	o := smtpOptions(t, f)
	o.Password = "wrong-secret"
	s, _ := NewSMTP(o)
	err := s.Send(context.Background(), testBatch())
	if err == nil || strings.Contains(err.Error(), "wrong-secret") {
		t.Errorf("Send = %v", err)
	}
}

func TestSMTPUntrustedCertificate(t *testing.T) {
	f := smtptest.New(t, true)
	o := smtpOptions(t, f)
	o.TLSConfig = nil
	s, _ := NewSMTP(o)
	if err := s.Send(context.Background(), testBatch()); err == nil {
		t.Fatal("Send trusted a self-signed certificate")
	}
	if f.Last().AuthUser != "" {
		t.Error("credentials sent")
	}
}

func TestSMTPGuard(t *testing.T) {
	f := smtptest.New(t, true)
	o := smtpOptions(t, f)
	o.Policy = outbound.Policy{}
	s, _ := NewSMTP(o)
	if err := s.Send(context.Background(), testBatch()); !errors.Is(err, outbound.ErrForbiddenAddress) {
		t.Errorf("Send = %v, want ErrForbiddenAddress", err)
	}
}

func TestNewSMTPValidation(t *testing.T) {
	base := SMTPOptions{Host: "smtp.example.org", From: "a@example.org", To: []string{"b@example.org"}}
	tests := map[string]func(*SMTPOptions){
		"no host":          func(o *SMTPOptions) { o.Host = "" },
		"crlf host":        func(o *SMTPOptions) { o.Host = "x\r\nRCPT TO:<y>" },
		"bad port":         func(o *SMTPOptions) { o.Port = 70000 },
		"bad tls":          func(o *SMTPOptions) { o.TLS = "maybe" },
		"from injection":   func(o *SMTPOptions) { o.From = "a@example.org\r\nBcc: c@example.org" },
		"to injection":     func(o *SMTPOptions) { o.To = []string{"b@example.org>\r\nRCPT TO:<c@example.org"} },
		"no recipients":    func(o *SMTPOptions) { o.To = nil },
		"invalid from":     func(o *SMTPOptions) { o.From = "not an address" },
		"auth without tls": func(o *SMTPOptions) { o.TLS = SMTPNoTLS; o.Username = "u" },
	}
	for name, mut := range tests {
		t.Run(name, func(t *testing.T) {
			o := base
			o.To = append([]string(nil), base.To...)
			mut(&o)
			if _, err := NewSMTP(o); err == nil {
				t.Error("accepted")
			}
		})
	}
	if _, err := NewSMTP(base); err != nil {
		t.Errorf("valid options: %v", err)
	}
}

func TestSMTPImplicitTLS(t *testing.T) {
	f := smtptest.New(t, false, func(f *smtptest.Server) { f.Implicit = true })
	o := smtpOptions(t, f)
	o.TLS = SMTPImplicitTLS
	s, err := NewSMTP(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(context.Background(), testBatch()); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if got := f.Last(); !got.TLS || !got.AuthTLS || got.Data == "" {
		t.Errorf("session %+v", got)
	}
}
