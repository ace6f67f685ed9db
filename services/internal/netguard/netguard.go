// Package netguard keeps outgoing webhook requests from reaching the
// platform's own network (SSRF): it refuses webhook URLs, and connections,
// whose destination is loopback, private, link-local, a cloud metadata
// service or any other address that is not public.
//
// CheckURL vets a URL when a customer registers it; Transport checks again
// at connect time, after DNS, so a name that resolves differently later (DNS
// rebinding) or a redirect cannot get around the first check.
package netguard

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrorDomain is the domain of the google.rpc.ErrorInfo an Error carries.
const ErrorDomain = "netguard.ringback.dev"

// Reasons of an Error.
const (
	ReasonInvalidURL            = "INVALID_URL"
	ReasonDestinationNotAllowed = "DESTINATION_NOT_ALLOWED"
	ReasonUnresolvableHost      = "UNRESOLVABLE_HOST"
)

// Sentinels for errors.Is, which matches on the reason.
var (
	ErrInvalidURL            = &Error{Reason: ReasonInvalidURL, Msg: "invalid webhook URL"}
	ErrDestinationNotAllowed = &Error{Reason: ReasonDestinationNotAllowed, Msg: "destination not allowed"}
	ErrUnresolvableHost      = &Error{Reason: ReasonUnresolvableHost, Msg: "host does not resolve"}
)

// MaxURLLen is the longest webhook URL CheckURL accepts, in bytes.
const MaxURLLen = 2048

// resolveTimeout bounds the lookup in CheckURL when ctx has no deadline.
const resolveTimeout = 5 * time.Second

// Error is why a destination was refused. The message may be shown to the
// customer who registered the URL: it never includes what a name resolved to.
type Error struct {
	Reason string // one of the Reason constants
	URL    string // without userinfo, query or fragment; empty when unknown
	Msg    string
}

func (e *Error) Error() string {
	if e.URL == "" {
		return e.Msg
	}
	return e.URL + ": " + e.Msg
}

// Is makes errors.Is match on the reason, e.g. against ErrDestinationNotAllowed.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Reason == e.Reason
}

// GRPCStatus implements the interface grpc's status package looks for: a bad
// webhook destination is always the caller's to fix.
func (e *Error) GRPCStatus() *status.Status {
	st := status.New(codes.InvalidArgument, e.Error())
	if d, err := st.WithDetails(&errdetails.ErrorInfo{Reason: e.Reason, Domain: ErrorDomain}); err == nil {
		st = d
	}
	return st
}

// Resolver is what CheckURL needs to look names up; *net.Resolver is one.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Guard decides which destinations webhooks may reach. It is safe for
// concurrent use; set Resolver, if at all, before first use.
type Guard struct {
	// Resolver looks up names in CheckURL; nil means net.DefaultResolver.
	// Connections made through Transport use the system resolver whatever
	// this is, and are checked by Control after resolution.
	Resolver Resolver

	allow []netip.Prefix
}

// New returns a Guard that also lets through the networks in allow, which
// are otherwise refused (in development: 127.0.0.0/8 and ::1/128). Addresses
// embedded in NAT64 or 6to4 addresses are never exempted by allow.
func New(allow []netip.Prefix) *Guard {
	g := &Guard{}
	for _, p := range allow {
		if p.IsValid() {
			g.allow = append(g.allow, p.Masked())
		}
	}
	return g
}

// rule is a network refused for reason. The first match wins, so the
// metadata addresses come before the networks that contain them.
type rule struct {
	prefix netip.Prefix
	reason string
}

var rules = func() []rule {
	var rs []rule
	add := func(reason string, prefixes ...string) {
		for _, p := range prefixes {
			rs = append(rs, rule{netip.MustParsePrefix(p), reason})
		}
	}
	add("metadata",
		"169.254.169.254/32", // AWS, GCP, Azure, OCI, ...
		"169.254.170.2/32",   // AWS ECS task metadata
		"100.100.100.200/32", // Alibaba Cloud
		"168.63.129.16/32",   // Azure WireServer, in public space
		"fd00:ec2::254/128",  // AWS over IPv6
		"fd20:ce::254/128",   // GCP over IPv6
	)
	add("unspecified", "0.0.0.0/8", "::/128")
	add("loopback", "127.0.0.0/8", "::1/128")
	add("private", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
	add("link-local", "169.254.0.0/16", "fe80::/10")
	add("shared", "100.64.0.0/10")
	add("documentation", "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32", "3fff::/20")
	add("multicast", "224.0.0.0/4", "ff00::/8")
	add("reserved",
		"192.0.0.0/24",   // IETF protocol assignments
		"192.88.99.0/24", // 6to4 relay anycast, deprecated
		"198.18.0.0/15",  // benchmarking
		"240.0.0.0/4",    // includes 255.255.255.255
		"2001::/23",      // IETF protocol assignments: Teredo 2001::/32, benchmarking, ORCHID
	)
	return rs
}()

var (
	globalUnicast6 = netip.MustParsePrefix("2000::/3")
	nat64          = netip.MustParsePrefix("64:ff9b::/96")
	nat64Local     = netip.MustParsePrefix("64:ff9b:1::/48")
	sixToFour      = netip.MustParsePrefix("2002::/16")
)

// Blocked reports whether a may not be reached, and why in one stable word:
// loopback, private, link-local, unspecified, multicast, reserved, shared,
// documentation, metadata, or invalid.
func (g *Guard) Blocked(a netip.Addr) (reason string, blocked bool) {
	if !a.IsValid() {
		return "invalid", true
	}
	// A zone would make every prefix miss, and ::ffff:127.0.0.1 is 127.0.0.1.
	a = a.WithZone("").Unmap()
	for _, p := range g.allow {
		if p.Contains(a) {
			return "", false
		}
	}
	return classify(a)
}

func classify(a netip.Addr) (reason string, blocked bool) {
	for _, r := range rules {
		if r.prefix.Contains(a) {
			return r.reason, true
		}
	}
	if a.Is4() {
		return "", false
	}
	b := a.As16()
	switch {
	case nat64.Contains(a):
		return classify(netip.AddrFrom4([4]byte(b[12:])))
	case nat64Local.Contains(a):
		// Operators may place the IPv4 address elsewhere in this prefix
		// (RFC 6052); only the /96 layout can be checked, so refuse the rest.
		if b[6]|b[7]|b[8]|b[9]|b[10]|b[11] != 0 {
			return "reserved", true
		}
		return classify(netip.AddrFrom4([4]byte(b[12:])))
	case sixToFour.Contains(a):
		return classify(netip.AddrFrom4([4]byte(b[2:6])))
	case !globalUnicast6.Contains(a):
		// Outside 2000::/3 nothing is public unicast: IPv4-compatible,
		// discard-only, site-local, ...
		return "reserved", true
	}
	return "", false
}

// refusedNames resolve, where they resolve at all, to the machine itself or
// to a metadata service; they are refused without asking DNS.
var refusedNames = map[string]bool{
	"metadata":                 true,
	"metadata.google.internal": true,
	"instance-data":            true, // AWS
}

// CheckURL parses raw and returns it if it is an acceptable webhook
// destination: an absolute http or https URL without userinfo or fragment,
// whose host is a public IP address or a name all of whose addresses are
// public. Errors are *Error.
func (g *Guard) CheckURL(ctx context.Context, raw string) (*url.URL, error) {
	if len(raw) > MaxURLLen {
		return nil, &Error{Reason: ReasonInvalidURL, Msg: fmt.Sprintf("URL longer than %d bytes", MaxURLLen)}
	}
	u, err := url.Parse(raw)
	if err != nil {
		// Not echoed: it may hold credentials we cannot strip.
		return nil, &Error{Reason: ReasonInvalidURL, Msg: "URL does not parse"}
	}
	invalid := func(msg string) error {
		return &Error{Reason: ReasonInvalidURL, URL: redact(u), Msg: msg}
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, invalid("scheme must be http or https")
	case u.Opaque != "" || u.Host == "":
		return nil, invalid("URL has no host")
	case u.User != nil:
		// Credentials in URLs end up in logs; use a header or a signature.
		return nil, invalid("URL must not contain a username or password")
	case strings.Contains(raw, "#"):
		return nil, invalid("URL must not contain a fragment")
	case strings.HasSuffix(u.Host, ":"):
		return nil, invalid("empty port")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, invalid("port must be 1 to 65535")
		}
	}

	host := strings.ToLower(u.Hostname())
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return nil, invalid("IPv6 zones are not allowed")
		}
		if reason, blocked := g.Blocked(a); blocked {
			return nil, &Error{Reason: ReasonDestinationNotAllowed, URL: redact(u),
				Msg: fmt.Sprintf("address %s is not allowed (%s)", a, reason)}
		}
		return u, nil
	}
	if msg := checkName(host); msg != "" {
		return nil, invalid(msg)
	}
	name := strings.TrimSuffix(host, ".")
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		// The machine itself (RFC 6761), whatever DNS says: allowed only
		// where loopback is (development).
		if reason, blocked := g.Blocked(netip.AddrFrom4([4]byte{127, 0, 0, 1})); blocked {
			return nil, &Error{Reason: ReasonDestinationNotAllowed, URL: redact(u),
				Msg: fmt.Sprintf("host %q is not allowed (%s)", name, reason)}
		}
		return u, nil
	}
	if refusedNames[name] {
		return nil, &Error{Reason: ReasonDestinationNotAllowed, URL: redact(u), Msg: fmt.Sprintf("host %q is not allowed", name)}
	}

	lctx := ctx
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		lctx, cancel = context.WithTimeout(ctx, resolveTimeout)
		defer cancel()
	}
	addrs, err := g.resolver().LookupNetIP(lctx, "ip", host)
	if err != nil && ctx.Err() != nil {
		return nil, fmt.Errorf("resolve %s: %w", host, ctx.Err())
	}
	if err != nil || len(addrs) == 0 {
		return nil, &Error{Reason: ReasonUnresolvableHost, URL: redact(u), Msg: fmt.Sprintf("host %q does not resolve", host)}
	}
	for _, a := range addrs {
		// One bad address is enough: the dialer may pick any of them.
		if reason, blocked := g.Blocked(a); blocked {
			return nil, &Error{Reason: ReasonDestinationNotAllowed, URL: redact(u),
				Msg: fmt.Sprintf("host %q resolves to a %s address", host, reason)}
		}
	}
	return u, nil
}

func (g *Guard) resolver() Resolver {
	if g.Resolver == nil {
		return net.DefaultResolver
	}
	return g.Resolver
}

// checkName returns why host is not an acceptable DNS name, or "". Hosts
// such as 2130706433, 0x7f.1 or 0177.0.0.1 are refused: the C library's
// resolver reads them as IPv4 addresses.
func checkName(host string) string {
	name := strings.TrimSuffix(host, ".")
	if name == "" || len(name) > 253 {
		return "invalid host name"
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return "invalid host name"
		}
		for _, c := range l {
			if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '_' {
				return "invalid host name (internationalized names must be given in punycode)"
			}
		}
	}
	// The WHATWG URL standard's "ends in a number" test.
	last := labels[len(labels)-1]
	if strings.Trim(last, "0123456789") == "" ||
		strings.HasPrefix(last, "0x") && strings.Trim(last[2:], "0123456789abcdef") == "" {
		return "host is neither a dotted-decimal IPv4 address nor a name"
	}
	return ""
}

func redact(u *url.URL) string {
	r := *u
	r.User, r.RawQuery, r.ForceQuery, r.Fragment, r.RawFragment = nil, "", false, "", ""
	return r.String()
}

// Control refuses connections to blocked addresses; it is meant for
// net.Dialer.Control, which sees the address actually dialled, after DNS.
func (g *Guard) Control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &Error{Reason: ReasonDestinationNotAllowed, Msg: fmt.Sprintf("%s connection to %q refused: not an IP address", network, address)}
	}
	if reason, blocked := g.Blocked(ap.Addr()); blocked {
		return &Error{Reason: ReasonDestinationNotAllowed, Msg: fmt.Sprintf("%s connection to %s refused: %s address", network, ap, reason)}
	}
	return nil
}

// Transport returns a copy of base (nil: a new one) that dials through
// Control and never uses a proxy, so environment proxies cannot bypass the
// guard. base's own dial functions are replaced; connection pool and TLS
// timeouts it leaves zero get defaults suitable for webhooks.
func (g *Guard) Transport(base *http.Transport) *http.Transport {
	var t *http.Transport
	if base == nil {
		t = &http.Transport{}
	} else {
		t = base.Clone()
	}
	d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, Control: g.Control}
	t.Proxy = nil
	t.DialContext = d.DialContext
	// Any of these, deprecated or not, would dial around Control.
	t.Dial, t.DialTLS, t.DialTLSContext = nil, nil, nil
	t.ForceAttemptHTTP2 = true // a custom DialContext turns HTTP/2 off otherwise
	if t.MaxIdleConnsPerHost == 0 {
		t.MaxIdleConnsPerHost = 64
	}
	if t.IdleConnTimeout == 0 {
		t.IdleConnTimeout = 90 * time.Second
	}
	if t.TLSHandshakeTimeout == 0 {
		t.TLSHandshakeTimeout = 10 * time.Second
	}
	return t
}
