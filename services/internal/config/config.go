// Package config reads a service's configuration from environment variables
// once, at start, with defaults, and validates it all at once: a Loader
// collects every problem (unset, unparsable, out of range) so that one failed
// start lists everything to fix, instead of one variable per restart.
//
// There is no reflection and no struct tags: a service's Load function reads
// each field with the typed Loader method that parses and checks it, so the
// variable name, its default and its meaning sit on one line:
//
//	func Load(lookup func(string) (string, bool)) (Config, error) {
//		l := config.NewLoader(lookup)
//		c := Config{
//			Platform:    config.LoadPlatform(l, config.PlatformDefaults{AdminAddr: "127.0.0.1:9091"}),
//			RingTimeout: l.Duration("RINGBACK_RING_TIMEOUT", 30*time.Second, "how long a leg may ring"),
//		}
//		l.Check(c.RingTimeout > 0, "RINGBACK_RING_TIMEOUT", "must be positive")
//		return c, l.Err()
//	}
//
// A variable set to the empty string counts as unset (compose files and
// Kubernetes manifests often carry FOO= placeholders).
package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ringback/ringback/services/internal/logging"
)

// Var describes one variable a Loader read: what Usage prints.
type Var struct {
	Name    string
	Default string
	Usage   string
	Secret  bool
}

// Problem is one invalid variable.
type Problem struct {
	Var string // the environment variable; empty for cross-field checks that name several
	Msg string
}

func (p Problem) String() string {
	if p.Var == "" {
		return p.Msg
	}
	return p.Var + ": " + p.Msg
}

// Error lists every problem found by a Loader. It is the error Err returns.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "invalid configuration (%d problem", len(e.Problems))
	if len(e.Problems) != 1 {
		b.WriteString("s")
	}
	b.WriteString("): ")
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// Loader reads variables from a lookup function and records problems. The
// zero value is not usable; call NewLoader.
type Loader struct {
	lookup   func(string) (string, bool)
	problems []Problem
	vars     []Var
}

// NewLoader returns a Loader reading from lookup (os.LookupEnv if nil). Tests
// pass a map's lookup so they never touch the process environment and can run
// in parallel.
func NewLoader(lookup func(string) (string, bool)) *Loader {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	return &Loader{lookup: lookup}
}

// MapLookup adapts a map to a lookup function, for tests and for cmd/ringback
// which configures several services from one environment.
func MapLookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// raw returns the variable's value, or def and false when it is unset or empty.
func (l *Loader) raw(name, def, usage string, secret bool) (string, bool) {
	l.vars = append(l.vars, Var{Name: name, Default: def, Usage: usage, Secret: secret})
	v, ok := l.lookup(name)
	if !ok || v == "" {
		return def, false
	}
	return v, true
}

// Problemf records a problem with variable name.
func (l *Loader) Problemf(name, format string, args ...any) {
	l.problems = append(l.problems, Problem{Var: name, Msg: fmt.Sprintf(format, args...)})
}

// Check records msg as a problem with name when ok is false: for ranges and
// cross-field rules that the typed methods cannot know.
func (l *Loader) Check(ok bool, name, msg string) {
	if !ok {
		l.problems = append(l.problems, Problem{Var: name, Msg: msg})
	}
}

// Err returns nil, or an *Error listing every problem recorded so far.
func (l *Loader) Err() error {
	if len(l.problems) == 0 {
		return nil
	}
	return &Error{Problems: slices.Clone(l.problems)}
}

// Vars returns the variables read so far, in order: the service's -help text.
func (l *Loader) Vars() []Var { return slices.Clone(l.vars) }

// Usage formats Vars as a table for a -help flag or a README.
func (l *Loader) Usage() string {
	var b strings.Builder
	for _, v := range l.vars {
		def := v.Default
		if v.Secret && def != "" {
			def = logging.Redacted
		}
		fmt.Fprintf(&b, "  %s (default %q)\n    \t%s\n", v.Name, def, v.Usage)
	}
	return b.String()
}

// String reads a string.
func (l *Loader) String(name, def, usage string) string {
	v, _ := l.raw(name, def, usage, false)
	return v
}

// Required reads a string that has no default: unset is a problem.
func (l *Loader) Required(name, usage string) string {
	v, set := l.raw(name, "", usage, false)
	if !set {
		l.Problemf(name, "required but not set (%s)", usage)
	}
	return v
}

// Secret reads a string that must never be logged (a password, an API key).
func (l *Loader) Secret(name, def, usage string) logging.Secret {
	v, _ := l.raw(name, def, usage, true)
	return logging.Secret(v)
}

// Enum reads a string that must be one of allowed (compared case-insensitively;
// the allowed spelling is returned).
func (l *Loader) Enum(name, def, usage string, allowed ...string) string {
	v, _ := l.raw(name, def, usage, false)
	for _, a := range allowed {
		if strings.EqualFold(a, v) {
			return a
		}
	}
	l.Problemf(name, "%q is not one of %s", v, strings.Join(allowed, ", "))
	return def
}

// Int reads a base-10 integer.
func (l *Loader) Int(name string, def int, usage string) int {
	v, set := l.raw(name, strconv.Itoa(def), usage, false)
	if !set {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		l.Problemf(name, "%q is not an integer", v)
		return def
	}
	return n
}

// Bool reads true/false (also 1/0, t/f, yes/no, on/off).
func (l *Loader) Bool(name string, def bool, usage string) bool {
	v, set := l.raw(name, strconv.FormatBool(def), usage, false)
	if !set {
		return def
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "t", "true", "yes", "y", "on":
		return true
	case "0", "f", "false", "no", "n", "off":
		return false
	}
	l.Problemf(name, "%q is not a boolean (true or false)", v)
	return def
}

// Duration reads a Go duration ("250ms", "30s", "5m", "1h30m"). Negative
// values are a problem: no Ringback setting means "minus five seconds".
func (l *Loader) Duration(name string, def time.Duration, usage string) time.Duration {
	v, set := l.raw(name, def.String(), usage, false)
	if !set {
		return def
	}
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil {
		l.Problemf(name, "%q is not a duration (use a unit: 500ms, 30s, 5m, 1h)", v)
		return def
	}
	if d < 0 {
		l.Problemf(name, "%q is negative", v)
		return def
	}
	return d
}

// URL reads an absolute URL whose scheme is one of schemes (any scheme if none
// given). The value is returned as written; parsing only validates it.
func (l *Loader) URL(name, def, usage string, schemes ...string) string {
	v, _ := l.raw(name, def, usage, false)
	if err := checkURL(v, schemes); err != nil {
		l.Problemf(name, "%v", err)
	}
	return v
}

// URLs reads a comma-separated list of URLs (as NATS_URL may be), each
// checked as URL does. Spaces around commas are removed.
func (l *Loader) URLs(name, def, usage string, schemes ...string) []string {
	v, _ := l.raw(name, def, usage, false)
	list := splitList(v)
	if len(list) == 0 {
		l.Problemf(name, "no URL given")
	}
	for _, u := range list {
		if err := checkURL(u, schemes); err != nil {
			l.Problemf(name, "%v", err)
		}
	}
	return list
}

// HostPort reads a listen or dial address "host:port" (port 0 allowed: the
// kernel picks one, which tests use).
func (l *Loader) HostPort(name, def, usage string) string {
	v, _ := l.raw(name, def, usage, false)
	if err := checkHostPort(v); err != nil {
		l.Problemf(name, "%v", err)
	}
	return v
}

// HostPorts reads a comma-separated list of host:port addresses, such as
// FREESWITCH_ESL_ADDR naming several switches.
func (l *Loader) HostPorts(name, def, usage string) []string {
	v, _ := l.raw(name, def, usage, false)
	list := splitList(v)
	if len(list) == 0 {
		l.Problemf(name, "no address given")
	}
	for _, hp := range list {
		if err := checkHostPort(hp); err != nil {
			l.Problemf(name, "%v", err)
		}
	}
	return list
}

// Func reads a variable with a parser of the caller's: parse returns an error
// describing what is wrong with the value. def is parsed too when the
// variable is unset, so a bad default is caught by tests.
func (l *Loader) Func(name, def, usage string, parse func(string) error) {
	v, _ := l.raw(name, def, usage, false)
	if err := parse(v); err != nil {
		l.Problemf(name, "%q: %v", v, err)
	}
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func checkURL(v string, schemes []string) error {
	if v == "" {
		return errors.New("required but not set")
	}
	u, err := url.Parse(v)
	if err != nil {
		// url.Error repeats the whole URL, password included.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("%q is not a URL: %v", RedactURL(v), err)
	}
	if u.Scheme == "" || (u.Host == "" && u.Opaque == "" && u.Path == "") {
		return fmt.Errorf("%q is not an absolute URL (want scheme://host...)", RedactURL(v))
	}
	if len(schemes) > 0 && !slices.Contains(schemes, strings.ToLower(u.Scheme)) {
		return fmt.Errorf("scheme %q not supported (want %s)", u.Scheme, strings.Join(schemes, ", "))
	}
	return nil
}

func checkHostPort(v string) error {
	if v == "" {
		return errors.New("required but not set")
	}
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("%q is not host:port", v)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("%q: port %q is not a number 0-65535", v, port)
	}
	return nil
}

// RedactURL returns u with any password (user info, or a password= query
// parameter) replaced by "xxxxx" (net/url's convention). Text that does not parse as a URL is returned with everything
// between "//" and the last "@" hidden, since it may still hold a password.
func RedactURL(u string) string {
	if u == "" {
		return ""
	}
	if p, err := url.Parse(u); err == nil {
		// libpq-style URLs may carry the password as a query parameter.
		if q := p.Query(); q.Has("password") {
			q.Set("password", "xxxxx")
			p.RawQuery = q.Encode()
		}
		return p.Redacted()
	}
	start := strings.Index(u, "//")
	at := strings.LastIndex(u, "@")
	if start >= 0 && at > start {
		return u[:start+2] + "xxxxx" + u[at:]
	}
	return u
}
