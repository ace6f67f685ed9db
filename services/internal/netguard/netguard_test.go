package netguard

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

func TestBlocked(t *testing.T) {
	t.Parallel()
	g := New(nil)
	for _, tc := range []struct {
		addr, reason string // reason "" means allowed
	}{
		{"8.8.8.8", ""},
		{"1.1.1.1", ""},
		{"2606:4700:4700::1111", ""},
		{"0.0.0.0", "unspecified"},
		{"0.1.2.3", "unspecified"},
		{"::", "unspecified"},
		{"127.0.0.1", "loopback"},
		{"127.255.255.254", "loopback"},
		{"::1", "loopback"},
		{"10.0.0.1", "private"},
		{"172.16.0.1", "private"},
		{"172.31.255.255", "private"},
		{"172.32.0.1", ""},
		{"192.168.1.1", "private"},
		{"fc00::1", "private"},
		{"fd12:3456::1", "private"},
		{"169.254.1.1", "link-local"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"169.254.169.254", "metadata"},
		{"169.254.170.2", "metadata"},
		{"100.100.100.200", "metadata"},
		{"fd00:ec2::254", "metadata"},
		{"::ffff:169.254.169.254", "metadata"},
		{"100.64.0.1", "shared"},
		{"100.127.255.255", "shared"},
		{"192.0.0.8", "reserved"},
		{"198.18.0.1", "reserved"},
		{"198.19.255.255", "reserved"},
		{"224.0.0.1", "multicast"},
		{"239.255.255.250", "multicast"},
		{"ff02::1", "multicast"},
		{"240.0.0.1", "reserved"},
		{"255.255.255.255", "reserved"},
		{"192.0.2.1", "documentation"},
		{"198.51.100.1", "documentation"},
		{"203.0.113.1", "documentation"},
		{"2001:db8::1", "documentation"},
		{"::ffff:127.0.0.1", "loopback"},
		{"::ffff:10.0.0.1", "private"},
		{"::ffff:8.8.8.8", ""},
		{"64:ff9b::7f00:1", "loopback"},
		{"64:ff9b::a9fe:a9fe", "metadata"},
		{"64:ff9b::808:808", ""},
		{"64:ff9b:1::c0a8:101", "private"},
		{"64:ff9b:1::808:808", ""},
		{"64:ff9b:1:808:8:800::", "reserved"}, // /48 layout: cannot be checked
		{"2002:7f00:1::1", "loopback"},
		{"2002:a9fe:a9fe::", "metadata"},
		{"2002:808:808::1", ""},
		{"2001:0:4136:e378:8000:63bf:3fff:fdd2", "reserved"}, // Teredo
		{"::7f00:1", "reserved"},                             // IPv4-compatible
		{"100::1", "reserved"},                               // discard-only
	} {
		t.Run(tc.addr, func(t *testing.T) {
			t.Parallel()
			reason, blocked := g.Blocked(netip.MustParseAddr(tc.addr))
			if reason != tc.reason || blocked != (tc.reason != "") {
				t.Fatalf("Blocked(%s) = %q, %v; want %q", tc.addr, reason, blocked, tc.reason)
			}
		})
	}
	t.Run("invalid", func(t *testing.T) {
		t.Parallel()
		if reason, blocked := g.Blocked(netip.Addr{}); reason != "invalid" || !blocked {
			t.Fatalf("Blocked(zero Addr) = %q, %v; want invalid", reason, blocked)
		}
	})
}

func TestBlockedAllow(t *testing.T) {
	t.Parallel()
	g := New(loopback)
	for _, tc := range []struct {
		addr    string
		blocked bool
	}{
		{"127.0.0.1", false},
		{"127.1.2.3", false},
		{"::1", false},
		{"::ffff:127.0.0.1", false},
		{"10.0.0.1", true},
		{"169.254.169.254", true},
		{"64:ff9b::7f00:1", true}, // allow does not reach into NAT64
		{"8.8.8.8", false},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			t.Parallel()
			if _, blocked := g.Blocked(netip.MustParseAddr(tc.addr)); blocked != tc.blocked {
				t.Fatalf("Blocked(%s) = %v, want %v", tc.addr, blocked, tc.blocked)
			}
		})
	}
}

// fakeResolver answers from a map; missing names do not exist.
type fakeResolver map[string][]netip.Addr

func (f fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	addrs, ok := f[strings.TrimSuffix(host, ".")]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return addrs, nil
}

func addrs(s ...string) []netip.Addr {
	var as []netip.Addr
	for _, a := range s {
		as = append(as, netip.MustParseAddr(a))
	}
	return as
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	g := New(nil)
	// Refused names and numeric hosts resolve to public addresses here, to
	// show they are refused without being looked up.
	g.Resolver = fakeResolver{
		"hooks.example.com": addrs("93.184.216.34", "2606:2800:220:1::1"),
		"internal.example":  addrs("10.1.2.3"),
		"mixed.example":     addrs("93.184.216.34", "192.168.0.10"),
		"metadata.example":  addrs("169.254.169.254"),
		"empty.example":     nil,
		"localhost":         addrs("8.8.8.8"),
		"api.localhost":     addrs("8.8.8.8"),
		"2130706433":        addrs("8.8.8.8"),
		"0x7f.1":            addrs("8.8.8.8"),
	}
	const (
		ok         = ""
		invalid    = ReasonInvalidURL
		notAllowed = ReasonDestinationNotAllowed
		unresolved = ReasonUnresolvableHost
	)
	for _, tc := range []struct {
		url, reason string
	}{
		{"https://hooks.example.com/ringback?sig=1", ok},
		{"http://hooks.example.com:8080/x", ok},
		{"HTTPS://HOOKS.EXAMPLE.COM./x", ok},
		{"https://8.8.8.8/hook", ok},
		{"https://[2606:4700:4700::1111]:443/hook", ok},
		{"ftp://hooks.example.com/", invalid},
		{"javascript:alert(1)", invalid},
		{"hooks.example.com/path", invalid},
		{"/relative", invalid},
		{"http:///path", invalid},
		{"http:opaque", invalid},
		{"https://user:pass@hooks.example.com/", invalid},
		{"https://user@hooks.example.com/", invalid},
		{"https://hooks.example.com/#frag", invalid},
		{"https://hooks.example.com/#", invalid},
		{"https://hooks.example.com:0/", invalid},
		{"https://hooks.example.com:65536/", invalid},
		{"https://hooks.example.com:/", invalid},
		{"https://hooks.example.com/" + strings.Repeat("a", MaxURLLen), invalid},
		{"https://hooks..example.com/", invalid},
		{"https://hooks_example!.com/", invalid},
		{"https://bücher.example/", invalid},
		{"http://2130706433/", invalid},
		{"http://0x7f.1/", invalid},
		{"http://0x7f000001/", invalid},
		{"http://0177.0.0.1/", invalid},
		{"http://127.1/", invalid},
		{"http://127.0.0.1./", invalid},
		{"http://1.2.3.4.5/", invalid},
		{"http://[fe80::1%25eth0]/", invalid},
		{"http://localhost/", notAllowed},
		{"http://LocalHost./", notAllowed},
		{"http://api.localhost:8080/", notAllowed},
		{"http://metadata/computeMetadata/v1/", notAllowed},
		{"http://metadata.google.internal/computeMetadata/v1/", notAllowed},
		{"http://127.0.0.1:8080/", notAllowed},
		{"http://[::1]/", notAllowed},
		{"http://[::ffff:127.0.0.1]/", notAllowed},
		{"http://0.0.0.0/", notAllowed},
		{"http://169.254.169.254/latest/meta-data/", notAllowed},
		{"http://[fd00:ec2::254]/", notAllowed},
		{"http://10.0.0.1/", notAllowed},
		{"http://[64:ff9b::a00:1]/", notAllowed},
		{"https://internal.example/", notAllowed},
		{"https://mixed.example/", notAllowed},
		{"https://metadata.example/", notAllowed},
		{"https://nowhere.example/", unresolved},
		{"https://empty.example/", unresolved},
	} {
		t.Run(tc.url[:min(len(tc.url), 60)], func(t *testing.T) {
			t.Parallel()
			u, err := g.CheckURL(t.Context(), tc.url)
			if tc.reason == ok {
				if err != nil || u == nil {
					t.Fatalf("CheckURL(%q) = %v, %v; want a URL", tc.url, u, err)
				}
				return
			}
			var ge *Error
			if !errors.As(err, &ge) {
				t.Fatalf("CheckURL(%q) = %v, %v; want *Error %s", tc.url, u, err, tc.reason)
			}
			if ge.Reason != tc.reason {
				t.Fatalf("CheckURL(%q) reason %s (%v), want %s", tc.url, ge.Reason, err, tc.reason)
			}
			if strings.Contains(err.Error(), "user@") || strings.Contains(err.Error(), ":pass") || strings.Contains(err.Error(), "sig=") {
				t.Fatalf("CheckURL(%q) error leaks credentials: %v", tc.url, err)
			}
		})
	}
}

func TestCheckURLAllow(t *testing.T) {
	t.Parallel()
	g := New(loopback)
	g.Resolver = fakeResolver{}
	if _, err := g.CheckURL(t.Context(), "http://127.0.0.1:8080/hook"); err != nil {
		t.Fatalf("127.0.0.1 with loopback allowed: %v", err)
	}
	if _, err := g.CheckURL(t.Context(), "http://10.0.0.1/hook"); !errors.Is(err, ErrDestinationNotAllowed) {
		t.Fatalf("10.0.0.1 with loopback allowed: %v, want DESTINATION_NOT_ALLOWED", err)
	}
	// localhost is loopback by definition (RFC 6761), not by DNS: allowed
	// with loopback, without a lookup.
	for _, u := range []string{"http://localhost:8080/hook", "http://api.localhost/"} {
		if _, err := g.CheckURL(t.Context(), u); err != nil {
			t.Fatalf("%s with loopback allowed: %v", u, err)
		}
	}
	if _, err := g.CheckURL(t.Context(), "http://metadata/computeMetadata/v1/"); !errors.Is(err, ErrDestinationNotAllowed) {
		t.Fatalf("metadata with loopback allowed: %v, want DESTINATION_NOT_ALLOWED", err)
	}
}

func TestErrorRedactsAndCarriesStatus(t *testing.T) {
	t.Parallel()
	_, err := New(nil).CheckURL(t.Context(), "http://10.0.0.1/hook?token=secret")
	var ge *Error
	if !errors.As(err, &ge) {
		t.Fatalf("err = %v, want *Error", err)
	}
	if ge.URL != "http://10.0.0.1/hook" {
		t.Errorf("URL = %q, want it without the query", ge.URL)
	}
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument {
		t.Errorf("code = %v, want InvalidArgument", st.Code())
	}
	if d := st.Details(); len(d) != 1 || d[0].(*errdetails.ErrorInfo).GetReason() != ReasonDestinationNotAllowed {
		t.Errorf("details = %v, want ErrorInfo %s", d, ReasonDestinationNotAllowed)
	}
}

// blockingResolver answers only when ctx is done, like a DNS server that
// does not answer.
type blockingResolver struct{}

func (blockingResolver) LookupNetIP(ctx context.Context, _, _ string) ([]netip.Addr, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestCheckURLContextCanceled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	g := New(nil)
	g.Resolver = blockingResolver{}
	_, err := g.CheckURL(ctx, "https://hooks.example.com/")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestControl(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		guard   *Guard
		address string
		blocked bool
	}{
		{New(nil), "127.0.0.1:80", true},
		{New(nil), "[::1]:443", true},
		{New(nil), "169.254.169.254:80", true},
		{New(nil), "[fe80::1%eth0]:80", true},
		{New(nil), "8.8.8.8:53", false},
		{New(nil), "[2606:4700:4700::1111]:443", false},
		{New(nil), "example.com:80", true},
		{New(loopback), "127.0.0.1:80", false},
		{New(loopback), "10.0.0.1:80", true},
	} {
		t.Run(tc.address, func(t *testing.T) {
			t.Parallel()
			err := tc.guard.Control("tcp", tc.address, nil)
			if !tc.blocked {
				if err != nil {
					t.Fatalf("Control(%s) = %v, want nil", tc.address, err)
				}
				return
			}
			var ge *Error
			if !errors.As(err, &ge) || ge.Reason != ReasonDestinationNotAllowed {
				t.Fatalf("Control(%s) = %v, want DESTINATION_NOT_ALLOWED", tc.address, err)
			}
		})
	}
}

func TestTransport(t *testing.T) {
	t.Parallel()
	base := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialTLSContext:      func(context.Context, string, string) (net.Conn, error) { return nil, errors.New("bypass") },
		MaxIdleConnsPerHost: 7,
	}
	tr := New(nil).Transport(base)
	if tr == base || tr.Proxy != nil || tr.DialTLSContext != nil || tr.DialContext == nil || !tr.ForceAttemptHTTP2 {
		t.Fatalf("Transport(base) kept a proxy or a dialler around Control, or is base itself")
	}
	if tr.MaxIdleConnsPerHost != 7 || tr.IdleConnTimeout != 90*time.Second || tr.TLSHandshakeTimeout != 10*time.Second {
		t.Fatalf("Transport(base) pool/timeouts = %d, %v, %v", tr.MaxIdleConnsPerHost, tr.IdleConnTimeout, tr.TLSHandshakeTimeout)
	}
	if tr := New(nil).Transport(nil); tr.MaxIdleConnsPerHost != 64 || tr.Proxy != nil {
		t.Fatalf("Transport(nil) = MaxIdleConnsPerHost %d, proxy set %v", tr.MaxIdleConnsPerHost, tr.Proxy != nil)
	}
}

// TestTransportEndToEnd dials a real server on 127.0.0.1 (loopback only).
func TestTransportEndToEnd(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)

	get := func(g *Guard) error {
		tr := g.Transport(nil)
		defer tr.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
		if err != nil {
			return err
		}
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if b, _ := io.ReadAll(resp.Body); string(b) != "ok" {
			t.Errorf("body = %q, want ok", b)
		}
		return nil
	}

	t.Run("refused", func(t *testing.T) {
		t.Parallel()
		err := get(New(nil))
		var ge *Error
		if !errors.As(err, &ge) || ge.Reason != ReasonDestinationNotAllowed {
			t.Fatalf("GET %s = %v, want *Error DESTINATION_NOT_ALLOWED", srv.URL, err)
		}
	})
	t.Run("allowed", func(t *testing.T) {
		t.Parallel()
		if err := get(New([]netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})); err != nil {
			t.Fatalf("GET %s with 127.0.0.0/8 allowed: %v", srv.URL, err)
		}
	})
}
