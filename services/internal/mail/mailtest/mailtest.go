// Package mailtest runs a real SMTP server (github.com/emersion/go-smtp)
// inside the test process, on a free loopback port, and keeps what it
// receives, so tests of anything that sends email exercise the whole SMTP
// dialogue (STARTTLS, AUTH, refusals) without a mail server installed.
package mailtest

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Options configure a Server.
type Options struct {
	// Username and Password, if Username is set, make AUTH PLAIN required
	// before MAIL FROM. Without TLS, AUTH is allowed in clear text.
	Username, Password string
	// TLS, if set, makes the server offer STARTTLS (and AUTH only after it).
	TLS *tls.Config
	// ImplicitTLS makes the server speak TLS from the first byte (port 465
	// style) instead of offering STARTTLS. It needs TLS.
	ImplicitTLS bool
	// FailRcpt, if set, is asked about each RCPT TO address; a non-nil
	// error refuses the recipient. Return Refuse(550, ...) for a permanent
	// refusal; any other error is a 451 temporary failure.
	FailRcpt func(addr string) error
}

// Refuse returns an error that FailRcpt can return to answer with code
// (e.g. 550 or 451) and msg.
func Refuse(code int, msg string) error {
	return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCodeNotSet, Message: msg}
}

// Received is one message the server accepted.
type Received struct {
	// From and To are the envelope (MAIL FROM, RCPT TO).
	From string
	To   []string
	// Data is the message as received, CRLF line endings included.
	Data []byte
	// Header is Data's header, parsed with net/mail.
	Header mail.Header
	// Body is the text body, decoded from quoted-printable when
	// Content-Transfer-Encoding says so, with \n line endings. It ends with
	// a line break even if the text sent did not: SMTP's DATA adds one.
	Body string
	// TLS reports whether the session was encrypted (STARTTLS or implicit).
	TLS bool
}

// Server is an in-process SMTP server, closed at the test's cleanup.
type Server struct {
	opts   Options
	srv    *smtp.Server
	log    *testLogger
	addr   string
	served chan struct{}

	mu      sync.Mutex
	msgs    []Received
	arrived chan struct{} // closed and replaced at each message
}

// Start starts a server for t on 127.0.0.1 and a free port.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.ImplicitTLS && opts.TLS == nil {
		t.Fatal("mailtest: ImplicitTLS needs Options.TLS")
	}
	s := &Server{opts: opts, served: make(chan struct{}), arrived: make(chan struct{})}
	s.srv = smtp.NewServer(smtp.BackendFunc(s.newSession))
	s.srv.Domain = "localhost"
	s.srv.ReadTimeout = 30 * time.Second
	s.srv.WriteTimeout = 30 * time.Second
	s.srv.AllowInsecureAuth = opts.TLS == nil
	s.log = &testLogger{t: t}
	s.srv.ErrorLog = s.log

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("mailtest: listen: %v", err)
	}
	if opts.ImplicitTLS {
		ln = tls.NewListener(ln, opts.TLS)
	} else {
		s.srv.TLSConfig = opts.TLS
	}
	s.addr = ln.Addr().String()
	go func() {
		defer close(s.served)
		if err := s.srv.Serve(ln); err != nil {
			s.log.Printf("serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		// Close closes only the listeners Serve has registered: if the test
		// ends before the goroutine above has run, Serve would then accept on
		// ln forever. Closing ln here too ends it either way (a CI run hung
		// 14 minutes so).
		_ = s.srv.Close()
		_ = ln.Close()
		select {
		case <-s.served:
		case <-time.After(10 * time.Second):
			t.Error("mailtest: the server did not stop within 10 s of Close")
		}
		s.log.stop()
	})
	return s
}

// Addr is the host:port clients dial.
func (s *Server) Addr() string { return s.addr }

// Messages returns the messages received so far, in order of arrival.
func (s *Server) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs)
}

// Wait returns the messages received once there are at least n, or ctx's
// error and those received so far.
func (s *Server) Wait(ctx context.Context, n int) ([]Received, error) {
	for {
		s.mu.Lock()
		msgs, arrived := slices.Clone(s.msgs), s.arrived
		s.mu.Unlock()
		if len(msgs) >= n {
			return msgs, nil
		}
		select {
		case <-arrived:
		case <-ctx.Done():
			return msgs, fmt.Errorf("mailtest: %d of %d messages: %w", len(msgs), n, ctx.Err())
		}
	}
}

func (s *Server) add(r Received) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, r)
	close(s.arrived)
	s.arrived = make(chan struct{})
}

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	_, isTLS := c.TLSConnectionState()
	return &session{srv: s, tls: isTLS}, nil
}

// session is one SMTP session; go-smtp calls it from one goroutine.
type session struct {
	srv    *Server
	tls    bool
	authed bool
	from   string
	to     []string
}

var _ smtp.AuthSession = (*session)(nil)

func (ss *session) AuthMechanisms() []string {
	if ss.srv.opts.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain || ss.srv.opts.Username == "" {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if identity != "" && identity != username {
			return smtp.ErrAuthFailed
		}
		if username != ss.srv.opts.Username || password != ss.srv.opts.Password {
			return smtp.ErrAuthFailed
		}
		ss.authed = true
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.srv.opts.Username != "" && !ss.authed {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if f := ss.srv.opts.FailRcpt; f != nil {
		if err := f(to); err != nil {
			return err
		}
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	rec := Received{From: ss.from, To: slices.Clone(ss.to), Data: data, TLS: ss.tls}
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "mailtest: unparsable message: " + err.Error()}
	}
	rec.Header = msg.Header
	body := msg.Body
	if strings.EqualFold(msg.Header.Get("Content-Transfer-Encoding"), "quoted-printable") {
		body = quotedprintable.NewReader(body)
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "mailtest: bad body: " + err.Error()}
	}
	rec.Body = strings.ReplaceAll(string(b), "\r\n", "\n")
	ss.srv.add(rec)
	return nil
}

func (ss *session) Reset() {
	ss.from, ss.to = "", nil
}

func (ss *session) Logout() error { return nil }

// testLogger sends go-smtp's error log to t.Logf until stop: connection
// goroutines can outlive the test by a moment, and t.Logf after the test
// has ended panics.
type testLogger struct {
	mu      sync.Mutex
	t       testing.TB
	stopped bool
}

func (l *testLogger) Printf(format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.stopped {
		l.t.Logf("mailtest: "+format, v...)
	}
}

func (l *testLogger) Println(v ...any) {
	l.Printf("%s", strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
}

func (l *testLogger) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
}
