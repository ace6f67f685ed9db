// Package mail sends Ringback's email notifications (a webhook endpoint was
// disabled, a click-to-call reminder) as plain-text messages over SMTP
// submission, with STARTTLS or implicit TLS and AUTH PLAIN. In development
// it can write messages to the log instead; unconfigured, it is disabled and
// says so with ErrDisabled, so callers can skip email without special cases.
//
// Each message is sent on a connection of its own: notifications are rare,
// and a connection per message needs no pool, no keep-alive and no recovery
// from a server that dropped an idle session.
package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/smtp"
	"net/textproto"
	"os"
	"strings"
	"time"

	"github.com/ringback/ringback/services/internal/config"
	"github.com/ringback/ringback/services/internal/logging"
)

var (
	// ErrDisabled is returned by Send when no SMTP server is configured
	// (RINGBACK_SMTP_ADDR empty).
	ErrDisabled = errors.New("email disabled: RINGBACK_SMTP_ADDR is not set")
	// ErrInvalidMessage is wrapped by every error about the message itself
	// (no recipient, an address that does not parse, a line break in a
	// header); nothing was sent.
	ErrInvalidMessage = errors.New("invalid email message")
	// ErrNoSTARTTLS is returned when TLS is TLSStartTLS and the server does
	// not offer STARTTLS: the message is not sent in clear text instead.
	ErrNoSTARTTLS = errors.New("server does not offer STARTTLS")
)

// Message is a plain-text email.
type Message struct {
	// To are RFC 5322 addresses ("a@example.com" or "Ann <a@example.com>"),
	// at least one.
	To []string
	// Subject is one line of UTF-8 text.
	Subject string
	// Text is the UTF-8 body; line endings may be \n or \r\n.
	Text string
}

// Sender sends Messages as its Config says. It is safe for concurrent use.
type Sender struct {
	cfg  Config
	log  *slog.Logger
	from *mail.Address
	// domain is From's domain: the Message-ID's right-hand side.
	domain string
	// helo is the name given in EHLO.
	helo string
	// host is Addr's host: the name the certificate and AUTH are checked
	// against.
	host string
	tls  *tls.Config
}

// NewSender checks cfg (zero TLS, From and Timeout take their defaults) and
// returns a Sender. log receives the messages when cfg.Addr is AddrLog; nil
// discards them.
func NewSender(cfg Config, log *slog.Logger) (*Sender, error) {
	cfg = cfg.withDefaults()
	if ps := cfg.problems(); len(ps) > 0 {
		return nil, fmt.Errorf("mail: %w", &config.Error{Problems: ps})
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	from, _ := mail.ParseAddress(cfg.From) // checked by problems
	s := &Sender{cfg: cfg, log: log, from: from, domain: from.Address[strings.LastIndexByte(from.Address, '@')+1:]}
	s.helo = "localhost"
	if isHostname(s.domain) {
		s.helo = s.domain
	}
	if cfg.Addr != "" && cfg.Addr != AddrLog {
		s.host, _, _ = net.SplitHostPort(cfg.Addr)
		s.tls = &tls.Config{}
		if cfg.TLSConfig != nil {
			s.tls = cfg.TLSConfig.Clone()
		}
		if s.tls.ServerName == "" {
			s.tls.ServerName = s.host
		}
	}
	return s, nil
}

// Send sends m, or logs it when Addr is AddrLog. It returns ErrDisabled when
// no server is configured, an error wrapping ErrInvalidMessage (before any
// network I/O) when m cannot be sent as it is, and otherwise the first
// failure of the SMTP dialogue, wrapped with the step that failed; see
// Permanent.
//
// One refused recipient fails the whole message: nothing is sent to the
// others, so a retry does not deliver twice to those that accepted it.
func (s *Sender) Send(ctx context.Context, m Message) error {
	if s.cfg.Addr == "" {
		return ErrDisabled
	}
	rcpts, data, err := s.compose(m, time.Now())
	if err != nil {
		return err
	}
	if s.cfg.Addr == AddrLog {
		s.log.InfoContext(ctx, "email not sent: RINGBACK_SMTP_ADDR=log",
			"from", s.from.Address, "to", rcpts, "subject", m.Subject, "body", m.Text)
		return nil
	}
	return s.deliver(ctx, rcpts, data)
}

// deliver runs one SMTP session that sends data to rcpts.
func (s *Sender) deliver(ctx context.Context, rcpts []string, data []byte) (err error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	step := "dial"
	defer func() {
		if err != nil {
			err = s.wrap(ctx, step, err)
		}
	}()

	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	if err := conn.SetDeadline(deadline); err != nil {
		return err
	}
	// net/smtp takes no context: a cancelled ctx must still end a
	// dialogue that is waiting on the server.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()

	if s.cfg.TLS == TLSImplicit {
		step = "tls handshake"
		tc := tls.Client(conn, s.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			return err
		}
		conn = tc
	}
	step = "greeting"
	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		return err
	}
	defer c.Close()
	step = "ehlo"
	if err := c.Hello(s.helo); err != nil {
		return err
	}
	if s.cfg.TLS == TLSStartTLS {
		step = "starttls"
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return ErrNoSTARTTLS
		}
		if err := c.StartTLS(s.tls); err != nil {
			return err
		}
	}
	if s.cfg.Username != "" {
		step = "auth"
		ok, mechs := c.Extension("AUTH")
		if !ok {
			return errors.New("server offers no AUTH but RINGBACK_SMTP_USERNAME is set")
		}
		if !containsFold(strings.Fields(mechs), "PLAIN") {
			return fmt.Errorf("server does not offer AUTH PLAIN (offers %s)", mechs)
		}
		if err := c.Auth(smtp.PlainAuth("", s.cfg.Username, s.cfg.Password.Reveal(), s.host)); err != nil {
			return err
		}
	}
	step = "mail from"
	if err := c.Mail(s.from.Address); err != nil {
		return err
	}
	for _, r := range rcpts {
		step = "rcpt " + r
		if err := c.Rcpt(r); err != nil {
			return err
		}
	}
	step = "data"
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		return err
	}
	// Close reads the server's verdict on the message.
	if err := w.Close(); err != nil {
		return err
	}
	// The message is accepted: a failed QUIT must not make the caller
	// retry and deliver it twice.
	if err := c.Quit(); err != nil {
		s.log.DebugContext(ctx, "smtp quit after message accepted", "addr", s.cfg.Addr, logging.Err(err))
	}
	return nil
}

// wrap names the server and the step that failed, and makes a timeout or a
// cancellation recognisable with errors.Is whichever way it surfaced (the
// connection deadline, or ctx in the dialer).
func (s *Sender) wrap(ctx context.Context, step string, err error) error {
	cause := ctx.Err()
	if cause == nil && errors.Is(err, os.ErrDeadlineExceeded) {
		// The connection deadline is ctx's deadline; its timer may fire
		// just before ctx's.
		cause = context.DeadlineExceeded
	}
	if cause != nil && !errors.Is(err, cause) {
		return fmt.Errorf("smtp %s: %s: %w: %w", s.cfg.Addr, step, cause, err)
	}
	return fmt.Errorf("smtp %s: %s: %w", s.cfg.Addr, step, err)
}

// Permanent reports whether sending the same message again cannot succeed:
// the server refused it with a 5xx reply (unknown recipient, failed
// authentication, rejected content), or the message is invalid. Any other
// error (a 4xx reply, a timeout, a refused connection, a TLS failure) may
// pass on a later attempt. ErrDisabled is not permanent; check it first.
func Permanent(err error) bool {
	if errors.Is(err, ErrInvalidMessage) {
		return true
	}
	var te *textproto.Error
	return errors.As(err, &te) && te.Code >= 500 && te.Code <= 599
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// isHostname reports whether s may stand in EHLO as a domain: letters,
// digits, hyphens and dots (not an address literal, not a UTF-8 name).
func isHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}
