package gateway

import (
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ringback/ringback/services/internal/config"
)

func TestLoad(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		env     map[string]string
		wantErr string
		check   func(t *testing.T, c Config)
	}{
		{name: "defaults", env: map[string]string{}, check: func(t *testing.T, c Config) {
			if c.HTTPAddr != DefaultHTTPAddr || c.OriginationAddr != DefaultOriginationAddr || c.AuthCacheTTL != DefaultAuthCacheTTL ||
				c.RequestTimeout != DefaultRequestTimeout || c.OperatorToken != "" || len(c.TrustedProxies) != 0 {
				t.Fatalf("%+v", c)
			}
		}},
		{name: "set", env: map[string]string{
			"RINGBACK_HTTP_ADDR": "0.0.0.0:80", "RINGBACK_OPERATOR_TOKEN": "0123456789abcdef0123",
			"RINGBACK_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.1,2001:db8::/32", "RINGBACK_AUTH_CACHE_TTL": "2s",
		}, check: func(t *testing.T, c Config) {
			want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.1/32"), netip.MustParsePrefix("2001:db8::/32")}
			if c.HTTPAddr != "0.0.0.0:80" || c.OperatorToken.Reveal() != "0123456789abcdef0123" || c.AuthCacheTTL != 2*time.Second ||
				len(c.TrustedProxies) != 3 || c.TrustedProxies[0] != want[0] || c.TrustedProxies[1] != want[1] || c.TrustedProxies[2] != want[2] {
				t.Fatalf("%+v", c)
			}
		}},
		{name: "bad proxies", env: map[string]string{"RINGBACK_TRUSTED_PROXIES": "10.0.0.1/8"}, wantErr: "RINGBACK_TRUSTED_PROXIES"},
		{name: "short operator token", env: map[string]string{"RINGBACK_OPERATOR_TOKEN": "op"}, wantErr: "RINGBACK_OPERATOR_TOKEN"},
		{name: "bad address", env: map[string]string{"RINGBACK_HTTP_ADDR": "nowhere"}, wantErr: "RINGBACK_HTTP_ADDR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := Load(config.MapLookup(tc.env))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func TestClientIP(t *testing.T) {
	t.Parallel()
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	for _, tc := range []struct {
		name, remote string
		xff          []string
		want         string // "" = invalid
	}{
		{"peer", "192.0.2.1:1", nil, "192.0.2.1"},
		{"untrusted peer, XFF ignored", "192.0.2.1:1", []string{"203.0.113.1"}, "192.0.2.1"},
		{"trusted peer, no XFF", "10.0.0.1:1", nil, "10.0.0.1"},
		{"trusted peer", "10.0.0.1:1", []string{"203.0.113.1"}, "203.0.113.1"},
		{"rightmost untrusted", "10.0.0.1:1", []string{"198.51.100.1, 203.0.113.1, 10.2.2.2"}, "203.0.113.1"},
		{"several headers", "10.0.0.1:1", []string{"198.51.100.1", "203.0.113.1"}, "203.0.113.1"},
		{"all trusted", "10.0.0.1:1", []string{"10.3.3.3, 10.2.2.2"}, "10.3.3.3"},
		{"hop with port", "10.0.0.1:1", []string{"203.0.113.1:4711"}, "203.0.113.1"},
		{"IPv6 hop", "[fd00::1]:1", []string{"[2001:db8::7]:443"}, "2001:db8::7"},
		{"garbage", "10.0.0.1:1", []string{"unknown"}, ""},
		{"mapped peer", "[::ffff:192.0.2.9]:1", nil, "192.0.2.9"},
		{"not an IP", "pipe", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			got := clientIP(r, trusted)
			if (tc.want == "" && got.IsValid()) || (tc.want != "" && got.String() != tc.want) {
				t.Fatalf("clientIP = %v, want %q", got, tc.want)
			}
		})
	}
}

func TestKeys(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for range 100 {
		s, p := newKey()
		m := keyFormat.FindStringSubmatch(s)
		if m == nil || m[1] != p || keyPrefix(s) != p || seen[s] {
			t.Fatalf("key %q prefix %q", s, p)
		}
		seen[s] = true
	}
	for _, tc := range []struct{ in, want string }{{"k", ""}, {"devkey12", "devk"}, {"a-long-development-key", "a-long-d"}} {
		if got := keyPrefix(tc.in); got != tc.want {
			t.Errorf("keyPrefix(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
