package gateway

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/ringback/ringback/services/internal/config"
	"github.com/ringback/ringback/services/internal/logging"
)

// Defaults of the gateway's own settings.
const (
	DefaultHTTPAddr        = "127.0.0.1:8080"
	DefaultAdminAddr       = "127.0.0.1:9090"
	DefaultGRPCAddr        = "127.0.0.1:50050"
	DefaultOriginationAddr = "127.0.0.1:50051" // cmd/origination's default
	DefaultRatingAddr      = "127.0.0.1:50053" // cmd/rating's default
	DefaultCDRAddr         = "127.0.0.1:50054" // cmd/cdr's default
	DefaultWebhookAddr     = "127.0.0.1:50055" // cmd/webhook's default
	DefaultDialerAddr      = "127.0.0.1:50056" // cmd/dialer's default
	DefaultGetCdrsPerMin   = 30
	DefaultGetCdrsBurst    = 5
	DefaultMaxImportBytes  = 256 << 20
	DefaultImportTimeout   = 5 * time.Minute
	DefaultAuthCacheTTL    = 10 * time.Second
	DefaultRequestTimeout  = 15 * time.Second
	// MaxBodyBytes bounds every request body (REST and clickToDial).
	MaxBodyBytes = 1 << 20
)

// Config is the gateway's configuration.
type Config struct {
	// Platform holds what every service shares (DATABASE_URL, admin and
	// gRPC addresses, log level, shutdown timeout).
	Platform config.Platform
	// HTTPAddr (RINGBACK_HTTP_ADDR) is host:port of the public HTTP server.
	HTTPAddr string
	// OriginationAddr (RINGBACK_ORIGINATION_ADDR) is the gRPC target of the
	// origination service (host:port, or any grpc.NewClient target).
	OriginationAddr string
	// RatingAddr (RINGBACK_RATING_ADDR) is the gRPC target of the rating
	// service.
	RatingAddr string
	// CDRAddr (RINGBACK_CDR_ADDR) is the gRPC target of the cdr service.
	CDRAddr string
	// WebhookAddr (RINGBACK_WEBHOOK_ADDR) is the gRPC target of the webhook
	// service.
	WebhookAddr string
	// DialerAddr (RINGBACK_DIALER_ADDR) is the gRPC target of the dialer
	// service.
	DialerAddr string
	// GetCdrsPerMinute (RINGBACK_GETCDRS_PER_MINUTE) and GetCdrsBurst
	// (RINGBACK_GETCDRS_BURST) are each account's allowance of
	// carrier-compatible getCdrs requests, shared by every replica through
	// Redis (REDIS_URL). Past it the answer is 429 with Retry-After.
	GetCdrsPerMinute int
	GetCdrsBurst     int
	// MaxImportBytes (RINGBACK_MAX_IMPORT_BYTES) bounds an uploaded tariff
	// CSV; ImportTimeout (RINGBACK_IMPORT_TIMEOUT) its whole import, and
	// the download of a dialer campaign's CSV reports.
	MaxImportBytes int64
	ImportTimeout  time.Duration
	// OperatorToken (RINGBACK_OPERATOR_TOKEN) authenticates the
	// installation's operators (Bearer), who may manage every account.
	// Empty: there is no operator access over HTTP.
	OperatorToken logging.Secret
	// TrustedProxies (RINGBACK_TRUSTED_PROXIES, comma-separated CIDRs or
	// addresses) are the peers whose X-Forwarded-For is believed when
	// finding the client address an IP allowlist is checked against.
	TrustedProxies []netip.Prefix
	// AuthCacheTTL (RINGBACK_AUTH_CACHE_TTL, a duration) is how long an API
	// key lookup is reused. A key revoked or an allowlist changed through
	// another gateway replica takes effect here after at most this long
	// (at once on the replica that made the change).
	AuthCacheTTL time.Duration
	// RequestTimeout (RINGBACK_REQUEST_TIMEOUT, a duration) bounds each REST
	// or clickToDial request, backend calls included.
	RequestTimeout time.Duration
	// BannerSecret (RINGBACK_BANNER_SECRET, at least 32 characters) keys
	// the HMACs of the public banner's status tokens and challenges; every
	// replica needs the same one. Empty: a random secret per process
	// (tokens then fail on other replicas and after a restart).
	BannerSecret logging.Secret
	// BannerPowBits (RINGBACK_BANNER_POW_BITS, 8 to 28) is the difficulty
	// of the banner's proof of work: leading zero bits of SHA-256, so each
	// more doubles the visitor's work (16: ~65,000 hashes). 0: the default.
	BannerPowBits int
	// BannerStreamsPerIP (RINGBACK_BANNER_STREAMS_PER_IP) bounds the call
	// status streams one client address (IPv6: /64) holds open on a
	// replica. 0: the default.
	BannerStreamsPerIP int
	// BannerStreamMaxAge (RINGBACK_BANNER_STREAM_MAX_AGE, a duration)
	// bounds a status stream's life (the browser reconnects if the call is
	// still live). 0: the default.
	BannerStreamMaxAge time.Duration
	// DemoCampaign (RINGBACK_DEMO_CAMPAIGN) is the campaign id /demo/banner
	// shows unless RunOptions.DemoCampaign names one. Empty: no demo page.
	DemoCampaign string
}

// Load reads the gateway's configuration through lookup (os.LookupEnv when
// nil) and reports every problem at once.
func Load(lookup func(string) (string, bool)) (Config, error) {
	l := config.NewLoader(lookup)
	c := Config{
		Platform: config.LoadPlatform(l, config.PlatformDefaults{AdminAddr: DefaultAdminAddr, GRPCAddr: DefaultGRPCAddr}),
		HTTPAddr: l.HostPort("RINGBACK_HTTP_ADDR", DefaultHTTPAddr, "host:port of the public HTTP server (REST API, clickToDial)"),
		OriginationAddr: l.String("RINGBACK_ORIGINATION_ADDR", DefaultOriginationAddr,
			"gRPC target of the origination service"),
		RatingAddr:  l.String("RINGBACK_RATING_ADDR", DefaultRatingAddr, "gRPC target of the rating service"),
		CDRAddr:     l.String("RINGBACK_CDR_ADDR", DefaultCDRAddr, "gRPC target of the cdr service"),
		WebhookAddr: l.String("RINGBACK_WEBHOOK_ADDR", DefaultWebhookAddr, "gRPC target of the webhook service"),
		DialerAddr:  l.String("RINGBACK_DIALER_ADDR", DefaultDialerAddr, "gRPC target of the dialer service"),
		GetCdrsPerMinute: l.Int("RINGBACK_GETCDRS_PER_MINUTE", DefaultGetCdrsPerMin,
			"getCdrs requests allowed per account per minute"),
		GetCdrsBurst: l.Int("RINGBACK_GETCDRS_BURST", DefaultGetCdrsBurst, "getCdrs requests an account may make at once"),
		MaxImportBytes: int64(l.Int("RINGBACK_MAX_IMPORT_BYTES", DefaultMaxImportBytes,
			"largest tariff CSV accepted for import, in bytes")),
		ImportTimeout: l.Duration("RINGBACK_IMPORT_TIMEOUT", DefaultImportTimeout, "longest a tariff import may take"),
		OperatorToken: l.Secret("RINGBACK_OPERATOR_TOKEN", "",
			"Bearer token of the installation's operators (manage every account); empty: none"),
		AuthCacheTTL: l.Duration("RINGBACK_AUTH_CACHE_TTL", DefaultAuthCacheTTL,
			"how long an API key lookup is cached, e.g. 10s"),
		RequestTimeout: l.Duration("RINGBACK_REQUEST_TIMEOUT", DefaultRequestTimeout,
			"longest a REST or clickToDial request may take, e.g. 15s"),
		BannerSecret: l.Secret("RINGBACK_BANNER_SECRET", "",
			"HMAC key of the click-to-call banner's status tokens and challenges, shared by every replica; empty: random per process"),
		BannerPowBits: l.Int("RINGBACK_BANNER_POW_BITS", DefaultBannerPowBits,
			"difficulty of the banner's proof of work, in leading zero bits of SHA-256"),
		BannerStreamsPerIP: l.Int("RINGBACK_BANNER_STREAMS_PER_IP", DefaultBannerStreamsPerIP,
			"call status streams one client address may hold open"),
		BannerStreamMaxAge: l.Duration("RINGBACK_BANNER_STREAM_MAX_AGE", DefaultBannerStreamMaxAge,
			"longest life of a call status stream, e.g. 2h"),
		DemoCampaign: l.String("RINGBACK_DEMO_CAMPAIGN", "", "campaign id shown at /demo/banner; empty: none"),
	}
	l.Func("RINGBACK_TRUSTED_PROXIES", "", "comma-separated CIDRs of proxies whose X-Forwarded-For is trusted", func(s string) error {
		p, err := ParsePrefixes(s)
		c.TrustedProxies = p
		return err
	})
	if t := c.OperatorToken.Reveal(); t != "" && len(t) < 16 {
		l.Problemf("RINGBACK_OPERATOR_TOKEN", "too short (%d characters): use at least 16 random characters", len(t))
	}
	l.Check(c.OriginationAddr != "", "RINGBACK_ORIGINATION_ADDR", "required")
	l.Check(c.RatingAddr != "", "RINGBACK_RATING_ADDR", "required")
	l.Check(c.CDRAddr != "", "RINGBACK_CDR_ADDR", "required")
	l.Check(c.WebhookAddr != "", "RINGBACK_WEBHOOK_ADDR", "required")
	l.Check(c.GetCdrsPerMinute > 0, "RINGBACK_GETCDRS_PER_MINUTE", "must be positive")
	l.Check(c.GetCdrsBurst > 0, "RINGBACK_GETCDRS_BURST", "must be positive")
	l.Check(c.MaxImportBytes > 0, "RINGBACK_MAX_IMPORT_BYTES", "must be positive")
	l.Check(c.ImportTimeout > 0, "RINGBACK_IMPORT_TIMEOUT", "must be positive")
	l.Check(c.AuthCacheTTL <= 5*time.Minute, "RINGBACK_AUTH_CACHE_TTL", "at most 5m: revoked keys must stop working soon")
	l.Check(c.RequestTimeout > 0, "RINGBACK_REQUEST_TIMEOUT", "must be positive")
	if s := c.BannerSecret.Reveal(); s != "" && len(s) < 32 {
		l.Problemf("RINGBACK_BANNER_SECRET", "too short (%d characters): use at least 32 random characters", len(s))
	}
	l.Check(c.BannerPowBits >= 8 && c.BannerPowBits <= 28, "RINGBACK_BANNER_POW_BITS", "between 8 and 28")
	l.Check(c.BannerStreamsPerIP > 0, "RINGBACK_BANNER_STREAMS_PER_IP", "must be positive")
	l.Check(c.BannerStreamMaxAge > 0, "RINGBACK_BANNER_STREAM_MAX_AGE", "must be positive")
	l.Check(c.DemoCampaign == "" || validID(c.DemoCampaign), "RINGBACK_DEMO_CAMPAIGN", "not a campaign id")
	return c, l.Err()
}

// ParsePrefixes reads a comma-separated list of CIDRs or bare addresses (a
// bare address is that one host). Spaces around commas are ignored.
func ParsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := parsePrefix(f)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// parsePrefix reads one CIDR or bare address. A CIDR with host bits set
// (203.0.113.7/24) is refused rather than silently widened or narrowed.
func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR", s)
	}
	if p.Addr().Is4In6() {
		if p.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("%q: an IPv4-mapped CIDR needs at least 96 bits", s)
		}
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set (did you mean %s?)", s, m)
	}
	return p, nil
}
