package mail_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"mime"
	"net"
	netmail "net/mail"
	"net/textproto"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ringback/ringback/services/internal/config"
	"github.com/ringback/ringback/services/internal/logging"
	"github.com/ringback/ringback/services/internal/mail"
	"github.com/ringback/ringback/services/internal/mail/mailtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	testFrom = "Ringback <noreply@ringback.test>"
	testUser = "ringback"
	testPass = "hunter2-smtp"
)

// selfSigned returns a server TLS configuration with a fresh self-signed
// certificate for 127.0.0.1, and a pool that trusts it.
func selfSigned(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mailtest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}}}, roots
}

func newSender(t *testing.T, cfg mail.Config, log *slog.Logger) *mail.Sender {
	t.Helper()
	s, err := mail.NewSender(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// silentListener accepts TCP connections into the kernel's queue and never
// answers: a server that hangs, or, when nothing is queued, proof that
// nobody dialed.
func silentListener(t *testing.T) *net.TCPListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.(*net.TCPListener)
}

// assertNotDialed fails t if anyone connected to ln: a completed dial sits in
// the accept queue even if the client has closed it since.
func assertNotDialed(t *testing.T, ln *net.TCPListener) {
	t.Helper()
	if err := ln.SetDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	c, err := ln.Accept()
	if err == nil {
		c.Close()
		t.Fatal("Send connected to the server")
	}
	if !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("accept: %v", err)
	}
}

var messageID = regexp.MustCompile(`^<[A-Z2-7]{26}@ringback\.test>$`)

func TestSendDelivers(t *testing.T) {
	t.Parallel()
	serverTLS, roots := selfSigned(t)
	body := "Your webhook https://example.com/hook was disabled after 50 failures.\n" +
		".a line starting with a dot\n" +
		"trailing spaces   \n" +
		"Zoë, Ångström, 東京, 📞\n" +
		strings.Repeat("a long line without breaks ", 10) + "\n"

	tests := []struct {
		name    string
		opts    mailtest.Options
		tls     string
		auth    bool
		subject string
		wantTLS bool
	}{
		{name: "clear text with auth", opts: mailtest.Options{Username: testUser, Password: testPass}, tls: mail.TLSNone, auth: true},
		{name: "clear text without auth", tls: mail.TLSNone},
		{
			name: "starttls with auth", opts: mailtest.Options{Username: testUser, Password: testPass, TLS: serverTLS},
			tls: mail.TLSStartTLS, auth: true, wantTLS: true,
		},
		{
			name: "implicit tls with auth", opts: mailtest.Options{Username: testUser, Password: testPass, TLS: serverTLS, ImplicitTLS: true},
			tls: mail.TLSImplicit, auth: true, wantTLS: true,
		},
		{name: "non-ascii subject", tls: mail.TLSNone, subject: "Rappel : votre appel à 15 h — Zoë Ångström 📞"},
		{name: "long ascii subject is folded", tls: mail.TLSNone, subject: strings.Repeat("reminder ", 30) + "end"},
		{name: "long non-ascii subject is folded", tls: mail.TLSNone, subject: strings.Repeat("Erinnerung für Jürgen ", 12)},
		{name: "empty subject", tls: mail.TLSNone, subject: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := mailtest.Start(t, tt.opts)
			cfg := mail.Config{Addr: srv.Addr(), From: testFrom, TLS: tt.tls, TLSConfig: &tls.Config{RootCAs: roots}}
			if tt.auth {
				cfg.Username, cfg.Password = testUser, logging.Secret(testPass)
			}
			subject := tt.subject
			if tt.name != "empty subject" && subject == "" {
				subject = "Webhook endpoint disabled"
			}
			msg := mail.Message{To: []string{"Ann Example <ann@example.com>", "bob@example.org"}, Subject: subject, Text: body}
			if err := newSender(t, cfg, nil).Send(testContext(t), msg); err != nil {
				t.Fatal(err)
			}

			got := srv.Messages()
			if len(got) != 1 {
				t.Fatalf("server received %d messages, want 1", len(got))
			}
			r := got[0]
			if r.From != "noreply@ringback.test" || !slices.Equal(r.To, []string{"ann@example.com", "bob@example.org"}) {
				t.Errorf("envelope from %q to %q", r.From, r.To)
			}
			if r.TLS != tt.wantTLS {
				t.Errorf("session TLS = %v, want %v", r.TLS, tt.wantTLS)
			}
			for i, line := range strings.Split(string(r.Data), "\r\n") {
				if len(line) > 78 {
					t.Errorf("line %d is %d characters: %q", i+1, len(line), line)
				}
			}
			if strings.Contains(strings.ReplaceAll(string(r.Data), "\r\n", ""), "\n") {
				t.Error("message has a bare LF")
			}

			h := r.Header
			if from, err := netmail.ParseAddress(h.Get("From")); err != nil || from.Name != "Ringback" || from.Address != "noreply@ringback.test" {
				t.Errorf("From %q: %v %v", h.Get("From"), from, err)
			}
			to, err := h.AddressList("To")
			if err != nil || len(to) != 2 || to[0].Name != "Ann Example" || to[0].Address != "ann@example.com" || to[1].Address != "bob@example.org" {
				t.Errorf("To %q: %v %v", h.Get("To"), to, err)
			}
			var dec mime.WordDecoder
			if s, err := dec.DecodeHeader(h.Get("Subject")); err != nil || s != subject {
				t.Errorf("Subject %q decodes to %q (%v), want %q", h.Get("Subject"), s, err, subject)
			}
			if d, err := h.Date(); err != nil || time.Since(d).Abs() > time.Minute {
				t.Errorf("Date %q: %v", h.Get("Date"), err)
			}
			if id := h.Get("Message-Id"); !messageID.MatchString(id) {
				t.Errorf("Message-ID %q does not match %s", id, messageID)
			}
			if v := h.Get("Mime-Version"); v != "1.0" {
				t.Errorf("MIME-Version %q", v)
			}
			if mt, params, err := mime.ParseMediaType(h.Get("Content-Type")); err != nil || mt != "text/plain" || params["charset"] != "utf-8" {
				t.Errorf("Content-Type %q", h.Get("Content-Type"))
			}
			if v := h.Get("Content-Transfer-Encoding"); v != "quoted-printable" {
				t.Errorf("Content-Transfer-Encoding %q", v)
			}
			if r.Body != body {
				t.Errorf("body\n%q\nwant\n%q", r.Body, body)
			}
		})
	}
}

func TestSendMessageIDsDiffer(t *testing.T) {
	t.Parallel()
	srv := mailtest.Start(t, mailtest.Options{})
	s := newSender(t, mail.Config{Addr: srv.Addr(), From: testFrom, TLS: mail.TLSNone}, nil)
	ctx := testContext(t)
	const n = 8
	errs := make(chan error, n)
	for i := range n {
		go func() {
			errs <- s.Send(ctx, mail.Message{To: []string{"ann@example.com"}, Subject: fmt.Sprint("reminder ", i), Text: "call at 3pm\n"})
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	got, err := srv.Wait(ctx, n)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, r := range got {
		ids[r.Header.Get("Message-Id")] = true
	}
	if len(ids) != n {
		t.Errorf("%d distinct Message-IDs in %d messages", len(ids), n)
	}
}

func TestSendFails(t *testing.T) {
	t.Parallel()
	serverTLS, roots := selfSigned(t)
	refuseBob := func(err error) func(string) error {
		return func(addr string) error {
			if addr == "bob@example.org" {
				return err
			}
			return nil
		}
	}
	closedAddr := func(t *testing.T) string {
		ln := silentListener(t)
		addr := ln.Addr().String()
		ln.Close()
		return addr
	}

	tests := []struct {
		name    string
		opts    mailtest.Options
		addr    func(*testing.T) string // instead of the mailtest server
		cfg     mail.Config
		wantIs  error
		wantMsg string
		// wantCode is the SMTP reply code of the *textproto.Error, if any.
		wantCode      int
		wantPermanent bool
	}{
		{
			name:   "starttls required but not offered",
			cfg:    mail.Config{TLS: mail.TLSStartTLS},
			wantIs: mail.ErrNoSTARTTLS, wantMsg: "starttls",
		},
		{
			name:    "certificate not trusted",
			opts:    mailtest.Options{TLS: serverTLS},
			cfg:     mail.Config{TLS: mail.TLSStartTLS, TLSConfig: &tls.Config{}},
			wantMsg: "certificate",
		},
		{
			name:    "certificate for another name",
			opts:    mailtest.Options{TLS: serverTLS},
			cfg:     mail.Config{TLS: mail.TLSStartTLS, TLSConfig: &tls.Config{RootCAs: roots, ServerName: "mail.example.com"}},
			wantMsg: "certificate",
		},
		{
			name:     "wrong password",
			opts:     mailtest.Options{Username: testUser, Password: "another"},
			cfg:      mail.Config{TLS: mail.TLSNone, Username: testUser, Password: testPass},
			wantMsg:  ": auth: ",
			wantCode: 535, wantPermanent: true,
		},
		{
			name:    "username set but server offers no AUTH",
			cfg:     mail.Config{TLS: mail.TLSNone, Username: testUser, Password: testPass},
			wantMsg: "offers no AUTH",
		},
		{
			name:     "server requires AUTH",
			opts:     mailtest.Options{Username: testUser, Password: testPass},
			cfg:      mail.Config{TLS: mail.TLSNone},
			wantMsg:  ": mail from: ",
			wantCode: 502, wantPermanent: true,
		},
		{
			name:     "recipient refused permanently",
			opts:     mailtest.Options{FailRcpt: refuseBob(mailtest.Refuse(550, "no such user"))},
			cfg:      mail.Config{TLS: mail.TLSNone},
			wantMsg:  ": rcpt bob@example.org: ",
			wantCode: 550, wantPermanent: true,
		},
		{
			name:     "recipient refused temporarily",
			opts:     mailtest.Options{FailRcpt: refuseBob(mailtest.Refuse(451, "try again later"))},
			cfg:      mail.Config{TLS: mail.TLSNone},
			wantMsg:  ": rcpt bob@example.org: ",
			wantCode: 451,
		},
		{
			name:     "recipient refused by a plain error",
			opts:     mailtest.Options{FailRcpt: refuseBob(errors.New("database down"))},
			cfg:      mail.Config{TLS: mail.TLSNone},
			wantMsg:  "database down",
			wantCode: 451,
		},
		{
			name:    "nobody listening",
			addr:    closedAddr,
			cfg:     mail.Config{TLS: mail.TLSNone},
			wantMsg: ": dial: ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := mailtest.Start(t, tt.opts)
			cfg := tt.cfg
			cfg.Addr, cfg.From = srv.Addr(), testFrom
			if tt.addr != nil {
				cfg.Addr = tt.addr(t)
			}
			err := newSender(t, cfg, nil).Send(testContext(t), mail.Message{
				To: []string{"ann@example.com", "bob@example.org"}, Subject: "s", Text: "t\n",
			})
			if err == nil {
				t.Fatal("Send succeeded")
			}
			t.Log(err)
			if !strings.HasPrefix(err.Error(), "smtp "+cfg.Addr+": ") {
				t.Errorf("error %q does not name the server", err)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v is not %v", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not contain %q", err, tt.wantMsg)
			}
			if strings.Contains(err.Error(), testPass) {
				t.Errorf("error %q shows the password", err)
			}
			var te *textproto.Error
			if errors.As(err, &te) != (tt.wantCode != 0) || (te != nil && te.Code != tt.wantCode) {
				t.Errorf("SMTP reply %v, want code %d", te, tt.wantCode)
			}
			if got := mail.Permanent(err); got != tt.wantPermanent {
				t.Errorf("Permanent = %v, want %v", got, tt.wantPermanent)
			}
			if n := len(srv.Messages()); n != 0 {
				t.Errorf("server received %d messages", n)
			}
		})
	}
}

func TestSendHonoursDeadlines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		timeout time.Duration
		cancel  time.Duration // cancel the caller's context after this; 0: never
		wantIs  error
	}{
		{name: "config timeout", timeout: 200 * time.Millisecond, wantIs: context.DeadlineExceeded},
		{name: "caller cancels", timeout: time.Minute, cancel: 200 * time.Millisecond, wantIs: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ln := silentListener(t) // accepts, never greets
			s := newSender(t, mail.Config{Addr: ln.Addr().String(), TLS: mail.TLSNone, Timeout: tt.timeout}, nil)
			ctx := testContext(t)
			if tt.cancel > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				time.AfterFunc(tt.cancel, cancel)
			}
			start := time.Now()
			err := s.Send(ctx, mail.Message{To: []string{"ann@example.com"}, Subject: "s", Text: "t"})
			if !errors.Is(err, tt.wantIs) {
				t.Fatalf("error %v, want %v", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), ": greeting: ") {
				t.Errorf("error %q does not say it waited for the greeting", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Send returned after %v", d)
			}
			if mail.Permanent(err) {
				t.Error("a timeout is permanent")
			}
		})
	}
}

func TestSendRefusesInvalidMessage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		msg  mail.Message
	}{
		{"no recipient", mail.Message{Subject: "s", Text: "t"}},
		{"empty recipient list", mail.Message{To: []string{}, Subject: "s", Text: "t"}},
		{"LF in subject", mail.Message{To: []string{"ann@example.com"}, Subject: "hi\nBcc: eve@example.net", Text: "t"}},
		{"CR in subject", mail.Message{To: []string{"ann@example.com"}, Subject: "hi\rBcc: eve@example.net", Text: "t"}},
		{"CRLF in recipient", mail.Message{To: []string{"ann@example.com\r\nBcc: eve@example.net"}, Subject: "s", Text: "t"}},
		{"LF in display name", mail.Message{To: []string{"\"Ann\nBcc: eve@example.net\" <ann@example.com>"}, Subject: "s", Text: "t"}},
		{"unparsable recipient", mail.Message{To: []string{"ann@example.com", "not an address"}, Subject: "s", Text: "t"}},
		{"two addresses in one", mail.Message{To: []string{"ann@example.com, eve@example.net"}, Subject: "s", Text: "t"}},
		{"empty address", mail.Message{To: []string{""}, Subject: "s", Text: "t"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ln := silentListener(t)
			s := newSender(t, mail.Config{Addr: ln.Addr().String(), TLS: mail.TLSNone}, nil)
			err := s.Send(testContext(t), tt.msg)
			if !errors.Is(err, mail.ErrInvalidMessage) {
				t.Fatalf("error %v, want ErrInvalidMessage", err)
			}
			if !mail.Permanent(err) {
				t.Error("an invalid message is not permanent")
			}
			assertNotDialed(t, ln)
		})
	}
}

func TestSendLogMode(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	s := newSender(t, mail.Config{Addr: mail.AddrLog}, logging.New(&buf, slog.LevelInfo, "test"))
	msg := mail.Message{To: []string{"Ann <ann@example.com>", "bob@example.org"}, Subject: "Rappel à 15 h", Text: "Call Bob.\n"}
	if err := s.Send(t.Context(), msg); err != nil {
		t.Fatal(err)
	}
	var line struct {
		Msg     string   `json:"msg"`
		From    string   `json:"from"`
		To      []string `json:"to"`
		Subject string   `json:"subject"`
		Body    string   `json:"body"`
	}
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("log %q: %v", buf.String(), err)
	}
	if line.From != "noreply@localhost" || !slices.Equal(line.To, []string{"ann@example.com", "bob@example.org"}) ||
		line.Subject != msg.Subject || line.Body != msg.Text {
		t.Errorf("logged %+v", line)
	}

	buf.Reset()
	err := s.Send(t.Context(), mail.Message{To: []string{"ann@example.com"}, Subject: "a\nb"})
	if !errors.Is(err, mail.ErrInvalidMessage) {
		t.Errorf("invalid message in log mode: %v", err)
	}
	if buf.Len() != 0 {
		t.Errorf("invalid message logged: %s", buf.String())
	}
}

func TestSendDisabled(t *testing.T) {
	t.Parallel()
	s := newSender(t, mail.Config{}, nil)
	err := s.Send(t.Context(), mail.Message{To: []string{"ann@example.com"}, Subject: "s", Text: "t"})
	if !errors.Is(err, mail.ErrDisabled) {
		t.Fatalf("error %v, want ErrDisabled", err)
	}
	if mail.Permanent(err) {
		t.Error("ErrDisabled is permanent")
	}
}

func TestNewSenderRejectsBadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  mail.Config
		want string
	}{
		{"tls value", mail.Config{Addr: "mail.example.com:587", TLS: "ssl"}, "RINGBACK_SMTP_TLS"},
		{"from", mail.Config{Addr: "mail.example.com:587", From: "nobody"}, "RINGBACK_SMTP_FROM"},
		{"from with a line break", mail.Config{Addr: "mail.example.com:587", From: "a@example.com\r\nBcc: eve@example.net"}, "RINGBACK_SMTP_FROM"},
		{"addr without port", mail.Config{Addr: "mail.example.com"}, "RINGBACK_SMTP_ADDR"},
		{"addr without host", mail.Config{Addr: ":587"}, "RINGBACK_SMTP_ADDR"},
		{"port 0", mail.Config{Addr: "mail.example.com:0"}, "RINGBACK_SMTP_ADDR"},
		{"negative timeout", mail.Config{Addr: "mail.example.com:587", Timeout: -time.Second}, "RINGBACK_SMTP_TIMEOUT"},
		{"password without username", mail.Config{Addr: "mail.example.com:587", Password: testPass}, "RINGBACK_SMTP_PASSWORD"},
		{"auth in clear text to a remote server", mail.Config{
			Addr: "mail.example.com:25", TLS: mail.TLSNone, Username: testUser, Password: testPass,
		}, "RINGBACK_SMTP_TLS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := mail.NewSender(tt.cfg, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one naming %s", err, tt.want)
			}
			if strings.Contains(err.Error(), testPass) {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		env      map[string]string
		want     mail.Config
		wantVars []string // variables with problems, in order
	}{
		{
			name: "defaults: disabled",
			env:  map[string]string{},
			want: mail.Config{From: mail.DefaultFrom, TLS: mail.TLSStartTLS, Timeout: 30 * time.Second},
		},
		{
			name: "everything set",
			env: map[string]string{
				"RINGBACK_SMTP_ADDR": "smtp.example.com:587", "RINGBACK_SMTP_USERNAME": testUser,
				"RINGBACK_SMTP_PASSWORD": testPass, "RINGBACK_SMTP_FROM": "Ringback <noreply@example.com>",
				"RINGBACK_SMTP_TLS": "STARTTLS", "RINGBACK_SMTP_TIMEOUT": "10s",
			},
			want: mail.Config{
				Addr: "smtp.example.com:587", Username: testUser, Password: testPass,
				From: "Ringback <noreply@example.com>", TLS: mail.TLSStartTLS, Timeout: 10 * time.Second,
			},
		},
		{
			name: "log mode, implicit tls",
			env:  map[string]string{"RINGBACK_SMTP_ADDR": "log", "RINGBACK_SMTP_TLS": "tls"},
			want: mail.Config{Addr: mail.AddrLog, From: mail.DefaultFrom, TLS: mail.TLSImplicit, Timeout: 30 * time.Second},
		},
		{
			name: "local relay in clear text with auth",
			env: map[string]string{
				"RINGBACK_SMTP_ADDR": "127.0.0.1:25", "RINGBACK_SMTP_TLS": "none",
				"RINGBACK_SMTP_USERNAME": testUser, "RINGBACK_SMTP_PASSWORD": testPass,
			},
			want: mail.Config{
				Addr: "127.0.0.1:25", Username: testUser, Password: testPass,
				From: mail.DefaultFrom, TLS: mail.TLSNone, Timeout: 30 * time.Second,
			},
		},
		{name: "bad from", env: map[string]string{"RINGBACK_SMTP_FROM": "Ringback"}, wantVars: []string{"RINGBACK_SMTP_FROM"}},
		{name: "bad tls", env: map[string]string{"RINGBACK_SMTP_TLS": "ssl"}, wantVars: []string{"RINGBACK_SMTP_TLS"}},
		{name: "bad addr", env: map[string]string{"RINGBACK_SMTP_ADDR": "smtp.example.com"}, wantVars: []string{"RINGBACK_SMTP_ADDR"}},
		{name: "timeout without unit", env: map[string]string{"RINGBACK_SMTP_TIMEOUT": "30"}, wantVars: []string{"RINGBACK_SMTP_TIMEOUT"}},
		{name: "zero timeout", env: map[string]string{"RINGBACK_SMTP_TIMEOUT": "0s"}, wantVars: []string{"RINGBACK_SMTP_TIMEOUT"}},
		{
			name:     "password without username",
			env:      map[string]string{"RINGBACK_SMTP_ADDR": "smtp.example.com:587", "RINGBACK_SMTP_PASSWORD": testPass},
			wantVars: []string{"RINGBACK_SMTP_PASSWORD"},
		},
		{
			name: "auth in clear text to a remote server",
			env: map[string]string{
				"RINGBACK_SMTP_ADDR": "smtp.example.com:25", "RINGBACK_SMTP_TLS": "none",
				"RINGBACK_SMTP_USERNAME": testUser, "RINGBACK_SMTP_PASSWORD": testPass,
			},
			wantVars: []string{"RINGBACK_SMTP_TLS"},
		},
		{
			name: "every problem at once",
			env: map[string]string{
				"RINGBACK_SMTP_ADDR": "nope", "RINGBACK_SMTP_FROM": "<>", "RINGBACK_SMTP_TLS": "ssl", "RINGBACK_SMTP_TIMEOUT": "-1s",
			},
			wantVars: []string{"RINGBACK_SMTP_TLS", "RINGBACK_SMTP_TIMEOUT", "RINGBACK_SMTP_ADDR", "RINGBACK_SMTP_FROM"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l := config.NewLoader(config.MapLookup(tt.env))
			got := mail.LoadConfig(l)
			err := l.Err()
			if len(tt.wantVars) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if fmt.Sprintf("%#v", got) != fmt.Sprintf("%#v", tt.want) || got.Password != tt.want.Password {
					t.Errorf("got %+v\nwant %+v", got, tt.want)
				}
				if _, err := mail.NewSender(got, nil); err != nil {
					t.Errorf("NewSender refuses what LoadConfig accepted: %v", err)
				}
				return
			}
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v, want a *config.Error", err)
			}
			var vars []string
			for _, p := range ce.Problems {
				vars = append(vars, p.Var)
			}
			if !slices.Equal(vars, tt.wantVars) {
				t.Errorf("problems with %v, want %v (%v)", vars, tt.wantVars, err)
			}
			if strings.Contains(err.Error(), testPass) {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

func TestConfigNeverShowsPassword(t *testing.T) {
	t.Parallel()
	serverTLS, _ := selfSigned(t)
	l := config.NewLoader(config.MapLookup(map[string]string{
		"RINGBACK_SMTP_ADDR": "smtp.example.com:587", "RINGBACK_SMTP_USERNAME": testUser, "RINGBACK_SMTP_PASSWORD": testPass,
	}))
	cfg := mail.LoadConfig(l)
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	if cfg.Password.Reveal() != testPass {
		t.Fatalf("password %q not loaded", cfg.Password.Reveal())
	}
	cfg.TLSConfig = serverTLS // holds a private key and functions; must not break logging

	logged := func(h func(*bytes.Buffer) slog.Handler, v any) string {
		var buf bytes.Buffer
		slog.New(h(&buf)).Info("config", "smtp", v)
		return buf.String()
	}
	jsonH := func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) }
	textH := func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) }
	outputs := map[string]string{
		"Sprint":    fmt.Sprint(cfg),
		"%+v":       fmt.Sprintf("%+v", cfg),
		"%#v":       fmt.Sprintf("%#v", cfg),
		"%v ptr":    fmt.Sprintf("%v", &cfg),
		"slog json": logged(jsonH, cfg),
		"slog text": logged(textH, cfg),
		"slog ptr":  logged(jsonH, &cfg),
		"usage":     l.Usage(),
	}
	for name, out := range outputs {
		if strings.Contains(out, testPass) {
			t.Errorf("%s shows the password: %s", name, out)
		}
	}
	for _, name := range []string{"Sprint", "slog json", "slog text"} {
		if !strings.Contains(outputs[name], logging.Redacted) {
			t.Errorf("%s does not say a password is set: %s", name, outputs[name])
		}
	}
	var line struct {
		SMTP map[string]any `json:"smtp"`
	}
	if err := json.Unmarshal([]byte(outputs["slog json"]), &line); err != nil {
		t.Fatal(err)
	}
	if line.SMTP["addr"] != "smtp.example.com:587" || line.SMTP["username"] != testUser || line.SMTP["tls"] != "starttls" {
		t.Errorf("logged config %v", line.SMTP)
	}
}

func TestPermanent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain error", errors.New("connection reset"), false},
		{"550 reply", fmt.Errorf("smtp x: rcpt a: %w", &textproto.Error{Code: 550, Msg: "no such user"}), true},
		{"554 reply", &textproto.Error{Code: 554, Msg: "rejected"}, true},
		{"451 reply", fmt.Errorf("smtp x: rcpt a: %w", &textproto.Error{Code: 451, Msg: "later"}), false},
		{"421 reply", &textproto.Error{Code: 421, Msg: "closing"}, false},
		{"invalid message", fmt.Errorf("%w: no recipient", mail.ErrInvalidMessage), true},
		{"disabled", mail.ErrDisabled, false},
		{"no starttls", mail.ErrNoSTARTTLS, false},
		{"deadline", context.DeadlineExceeded, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := mail.Permanent(tt.err); got != tt.want {
				t.Errorf("Permanent(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
