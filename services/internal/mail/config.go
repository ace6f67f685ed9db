package mail

import (
	"crypto/tls"
	"log/slog"
	"net"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/ringback/ringback/services/internal/config"
	"github.com/ringback/ringback/services/internal/logging"
)

// Values of Config.TLS.
const (
	// TLSNone sends in clear text. net/smtp then refuses AUTH to any host
	// but localhost, so it is for a relay on the same machine.
	TLSNone = "none"
	// TLSStartTLS connects in clear text and upgrades with STARTTLS; a server
	// that does not offer it is an error, never a silent downgrade.
	TLSStartTLS = "starttls"
	// TLSImplicit speaks TLS from the first byte (submissions, port 465).
	TLSImplicit = "tls"
)

const (
	// AddrLog as Config.Addr writes messages to the logger instead of
	// sending them: development, where no mail server runs.
	AddrLog = "log"
	// DefaultFrom is RINGBACK_SMTP_FROM when unset.
	DefaultFrom = "Ringback <noreply@localhost>"
	// DefaultTimeout is RINGBACK_SMTP_TIMEOUT when unset.
	DefaultTimeout = 30 * time.Second
)

// Environment variables LoadConfig reads.
const (
	envAddr     = "RINGBACK_SMTP_ADDR"
	envUsername = "RINGBACK_SMTP_USERNAME"
	envPassword = "RINGBACK_SMTP_PASSWORD"
	envFrom     = "RINGBACK_SMTP_FROM"
	envTLS      = "RINGBACK_SMTP_TLS"
	envTimeout  = "RINGBACK_SMTP_TIMEOUT"
)

// Config says where and how email is sent.
type Config struct {
	// Addr (RINGBACK_SMTP_ADDR) is host:port of the submission server,
	// AddrLog ("log") to log messages instead of sending them, or empty to
	// disable email (Send returns ErrDisabled).
	Addr string
	// Username (RINGBACK_SMTP_USERNAME) turns on AUTH PLAIN; empty: no AUTH.
	Username string
	// Password (RINGBACK_SMTP_PASSWORD) is the AUTH PLAIN password.
	Password logging.Secret
	// From (RINGBACK_SMTP_FROM) is the sender, an RFC 5322 address such as
	// "Ringback <noreply@example.com>". Its domain also names the
	// Message-ID and the EHLO greeting.
	From string
	// TLS (RINGBACK_SMTP_TLS) is TLSNone, TLSStartTLS (the default when
	// empty) or TLSImplicit.
	TLS string
	// Timeout (RINGBACK_SMTP_TIMEOUT, a duration) bounds the whole sending
	// of one message: dial, TLS handshake and SMTP dialogue. Zero means
	// DefaultTimeout.
	Timeout time.Duration
	// TLSConfig is the base of the client TLS configuration (nil: system
	// roots); ServerName defaults to Addr's host. It is not read from the
	// environment: tests use it to trust their own CA.
	TLSConfig *tls.Config
}

// LoadConfig reads the RINGBACK_SMTP_* variables through l; problems are
// recorded in l like any other.
func LoadConfig(l *config.Loader) Config {
	c := Config{
		Addr: l.String(envAddr, "",
			`host:port of the SMTP submission server; "log" logs messages instead of sending them; empty disables email`),
		Username: l.String(envUsername, "", "SMTP AUTH PLAIN user name; empty: no authentication"),
		Password: l.Secret(envPassword, "", "SMTP AUTH PLAIN password"),
		From:     l.String(envFrom, DefaultFrom, `sender of notification email, e.g. "Ringback <noreply@example.com>"`),
		TLS: l.Enum(envTLS, TLSStartTLS,
			"none, starttls (required, never downgraded) or tls (implicit, port 465)",
			TLSNone, TLSStartTLS, TLSImplicit),
		Timeout: l.Duration(envTimeout, DefaultTimeout, "longest the sending of one message may take, e.g. 30s"),
	}
	for _, p := range c.problems() {
		l.Problemf(p.Var, "%s", p.Msg)
	}
	return c
}

// LogValue implements slog.LogValuer: the password is redacted and the TLS
// configuration, which holds keys and functions, is left out.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("addr", c.Addr),
		slog.String("username", c.Username),
		slog.Any("password", c.Password),
		slog.String("from", c.From),
		slog.String("tls", c.TLS),
		slog.Duration("timeout", c.Timeout),
	)
}

// withDefaults fills the zero fields that have a default, for a Config built
// in code rather than by LoadConfig.
func (c Config) withDefaults() Config {
	if c.TLS == "" {
		c.TLS = TLSStartTLS
	}
	if c.From == "" {
		c.From = DefaultFrom
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	return c
}

// problems lists what is wrong with c, named by environment variable, for
// LoadConfig and NewSender alike.
func (c Config) problems() []config.Problem {
	var ps []config.Problem
	add := func(v, msg string) { ps = append(ps, config.Problem{Var: v, Msg: msg}) }

	host := ""
	if c.Addr != "" && c.Addr != AddrLog {
		h, port, err := net.SplitHostPort(c.Addr)
		p, perr := strconv.Atoi(port)
		switch {
		case err != nil || h == "":
			add(envAddr, strconv.Quote(c.Addr)+` is not host:port, "log" or empty`)
		case perr != nil || p < 1 || p > 65535:
			add(envAddr, strconv.Quote(c.Addr)+": port is not a number 1-65535")
		default:
			host = h
		}
	}
	if strings.ContainsAny(c.From, "\r\n") {
		add(envFrom, "contains a line break")
	} else if _, err := mail.ParseAddress(c.From); err != nil {
		add(envFrom, strconv.Quote(c.From)+" is not an email address: "+err.Error())
	}
	switch c.TLS {
	case TLSNone, TLSStartTLS, TLSImplicit:
	default:
		add(envTLS, strconv.Quote(c.TLS)+" is not one of none, starttls, tls")
	}
	if c.Timeout <= 0 {
		add(envTimeout, "must be positive")
	}
	if c.Password != "" && c.Username == "" {
		add(envPassword, "set without "+envUsername)
	}
	// net/smtp's own rule: it would refuse at the first message, so say it
	// at start instead.
	if c.Username != "" && c.TLS == TLSNone && host != "" && !plainAuthInClearAllowed(host) {
		add(envTLS, "none sends the password in clear text; AUTH without TLS is only allowed to localhost")
	}
	return ps
}

// plainAuthInClearAllowed is net/smtp's test for PLAIN without TLS.
func plainAuthInClearAllowed(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}
