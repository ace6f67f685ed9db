package esl

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"
)

// Config configures a Client. The zero value of every optional field means
// "use the default" given in its comment.
type Config struct {
	// Addrs are the FreeSWITCH nodes as "host:port" (FREESWITCH_ESL_ADDR,
	// comma-separated). A node's name everywhere in this package is its
	// address exactly as written here.
	Addrs []string
	// Password is the event-socket password. It is never logged.
	Password string
	// DialTimeout bounds TCP connect plus authentication; default 3s.
	// FreeSWITCH answers auth/request at once, so a peer that accepts the
	// connection but stays silent is treated as down after this long.
	DialTimeout time.Duration
	// CommandTimeout bounds every api/bgapi round trip; default 10s. A reply
	// later than this means the socket is dead or the switch is wedged, so
	// the session is dropped and re-established. Use BgAPI for commands
	// that legitimately take longer (originate, for one).
	CommandTimeout time.Duration
	// ReconnectMin and ReconnectMax bound the reconnect backoff, which
	// doubles per failed attempt with jitter; defaults 100ms and 5s.
	ReconnectMin, ReconnectMax time.Duration
	// SessionsPerSecond is each node's originate budget (a token bucket
	// with a one-second burst); 0 means unlimited. Keep it at or below the
	// switch's own `sps` so that originates wait here instead of failing
	// there with DESTINATION_OUT_OF_ORDER.
	SessionsPerSecond int
	// Events are the event names to subscribe to (CHANNEL_ANSWER,
	// CHANNEL_HANGUP_COMPLETE, "CUSTOM conference::maintenance", ALL, ...).
	// BACKGROUND_JOB is always added because Originate needs it. The
	// subscription is renewed on every reconnect.
	Events []string
	// CommandConns is the number of connections per node that carry
	// api/bgapi commands, besides the one that carries events; default 2.
	// Commands are pipelined on each, so more only helps when some api
	// commands are slow.
	CommandConns int
	// PingInterval is how often an idle session is probed with a cheap api
	// command so that a half-open TCP connection is noticed; default 15s.
	PingInterval time.Duration
	// Logger receives connection lifecycle logs; default discards.
	Logger *slog.Logger
}

// withDefaults returns a copy of c with every zero optional field set.
func (c Config) withDefaults() Config {
	if c.DialTimeout == 0 {
		c.DialTimeout = 3 * time.Second
	}
	if c.CommandTimeout == 0 {
		c.CommandTimeout = 10 * time.Second
	}
	if c.ReconnectMin == 0 {
		c.ReconnectMin = 100 * time.Millisecond
	}
	if c.ReconnectMax == 0 {
		c.ReconnectMax = 5 * time.Second
	}
	if c.ReconnectMax < c.ReconnectMin {
		c.ReconnectMax = c.ReconnectMin
	}
	if c.CommandConns == 0 {
		c.CommandConns = 2
	}
	if c.PingInterval == 0 {
		c.PingInterval = 15 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports every problem in c at once, so a misconfigured service
// fails at start with one clear message.
func (c Config) Validate() error {
	var errs []error
	if len(c.Addrs) == 0 {
		errs = append(errs, errors.New("no FreeSWITCH address (FREESWITCH_ESL_ADDR)"))
	}
	seen := map[string]bool{}
	for _, a := range c.Addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			errs = append(errs, fmt.Errorf("address %q: want host:port", a))
		}
		if seen[a] {
			errs = append(errs, fmt.Errorf("address %q listed twice", a))
		}
		seen[a] = true
	}
	if c.Password == "" {
		errs = append(errs, errors.New("empty event-socket password"))
	}
	if strings.ContainsAny(c.Password, "\r\n") {
		errs = append(errs, errors.New("event-socket password contains a line break"))
	}
	for name, d := range map[string]time.Duration{
		"DialTimeout": c.DialTimeout, "CommandTimeout": c.CommandTimeout,
		"ReconnectMin": c.ReconnectMin, "ReconnectMax": c.ReconnectMax, "PingInterval": c.PingInterval,
	} {
		if d < 0 {
			errs = append(errs, fmt.Errorf("%s is negative (%s)", name, d))
		}
	}
	if c.SessionsPerSecond < 0 {
		errs = append(errs, fmt.Errorf("SessionsPerSecond is negative (%d)", c.SessionsPerSecond))
	}
	if c.CommandConns < 0 {
		errs = append(errs, fmt.Errorf("CommandConns is negative (%d)", c.CommandConns))
	}
	for _, e := range c.Events {
		if e == "" || strings.ContainsAny(e, "\r\n\t") {
			errs = append(errs, fmt.Errorf("event name %q is empty or contains a line break", e))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: esl config: %w", ErrInvalid, errors.Join(errs...))
	}
	return nil
}

// subscription is the `event json ...` command for c: the configured names
// plus BACKGROUND_JOB, each once. mod_event_socket reads every word after
// CUSTOM as a subclass, so CUSTOM and its subclasses go last whatever order
// Events lists them in.
func (c Config) subscription() string {
	var names, subclasses []string
	custom := false
	seen := map[string]bool{}
	add := func(list *[]string, s string) {
		if !seen[s] {
			seen[s] = true
			*list = append(*list, s)
		}
	}
	for _, e := range append(append([]string(nil), c.Events...), "BACKGROUND_JOB") {
		f := strings.Fields(e)
		if len(f) > 0 && strings.EqualFold(f[0], "CUSTOM") {
			custom = true
			for _, s := range f[1:] {
				add(&subclasses, s)
			}
			continue
		}
		for _, s := range f {
			add(&names, s)
		}
	}
	if custom {
		names = append(append(names, "CUSTOM"), subclasses...)
	}
	return "event json " + strings.Join(names, " ")
}
