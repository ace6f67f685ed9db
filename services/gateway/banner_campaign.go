package gateway

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	"github.com/ringback/ringback/services/internal/cache"
)

// The campaign cache: every public request starts with the campaign's
// settings, and a flood must not become a flood of GetPublicCampaign calls.
const (
	bannerCampaignTTL  = 5 * time.Second  // a changed campaign is seen after at most this long
	bannerNotFoundTTL  = 30 * time.Second // unknown ids are remembered this long
	bannerCacheEntries = 10_000           // bounds memory whatever ids a client invents
	bannerLookupTime   = 5 * time.Second  // bounds one GetPublicCampaign
)

// Defaults of BannerLimits fields left at 0 (origination applies them
// already; the gateway does not trust a 0 to mean "unlimited").
const (
	defaultPerIPPerHour         = 20
	defaultPerNumberPerDay      = 5
	defaultPerCampaignPerMinute = 60
	defaultDuplicateWindow      = 120 * time.Second
)

var errCampaignNotFound = errors.New("campaign not found")

// bannerCampaign is a campaign's public settings, prepared for the checks
// of every request.
type bannerCampaign struct {
	pc        *originationv1.PublicCampaign
	anyOrigin bool
	origins   map[string]struct{} // normalized (normOrigin)
	blocked   []string            // E.164 digits prefixes
	ipLimit   cache.Limit
	numLimit  cache.Limit
	campLimit cache.Limit
	dupWindow time.Duration
}

func newBannerCampaign(pc *originationv1.PublicCampaign) *bannerCampaign {
	c := &bannerCampaign{pc: pc, origins: map[string]struct{}{}}
	for _, o := range pc.GetAllowedOrigins() {
		if strings.TrimSpace(o) == "*" {
			c.anyOrigin = true
		}
		c.origins[normOrigin(o)] = struct{}{}
	}
	for _, p := range pc.GetBlockedPrefixes() {
		if p = strings.TrimPrefix(strings.TrimSpace(p), "+"); p != "" {
			c.blocked = append(c.blocked, p)
		}
	}
	l := pc.GetLimits()
	orDefault := func(v int32, def int) int {
		if v <= 0 {
			return def
		}
		return int(v)
	}
	perIP := orDefault(l.GetPerIpPerHour(), defaultPerIPPerHour)
	perNum := orDefault(l.GetPerNumberPerDay(), defaultPerNumberPerDay)
	perCamp := orDefault(l.GetPerCampaignPerMinute(), defaultPerCampaignPerMinute)
	c.ipLimit = cache.Limit{Rate: perIP, Period: time.Hour, Burst: max(3, perIP/4)}
	c.numLimit = cache.Limit{Rate: perNum, Period: 24 * time.Hour, Burst: perNum}
	c.campLimit = cache.Limit{Rate: perCamp, Period: time.Minute, Burst: perCamp}
	c.dupWindow = defaultDuplicateWindow
	if s := l.GetDuplicateWindowS(); s > 0 {
		c.dupWindow = time.Duration(s) * time.Second
	}
	return c
}

// normOrigin is an origin as compared: lower case, without a trailing slash.
func normOrigin(o string) string {
	return strings.ToLower(strings.TrimRight(strings.TrimSpace(o), "/"))
}

// allowsOrigin reports whether a page of origin may call the campaign's
// endpoints: every origin with "*", the listed ones, and the gateway's own
// (the demo page), i.e. an origin whose host:port is the request's Host.
func (c *bannerCampaign) allowsOrigin(origin, host string) bool {
	if c.anyOrigin {
		return true
	}
	o := normOrigin(origin)
	if _, ok := c.origins[o]; ok {
		return true
	}
	u, err := url.Parse(o)
	if err != nil || u.Host == "" || host == "" {
		return false
	}
	if strings.EqualFold(u.Host, host) {
		return true
	}
	// Browsers leave the scheme's default port out of Origin; a proxy may
	// keep it in Host.
	if u.Port() == "" {
		switch u.Scheme {
		case "http":
			return strings.EqualFold(u.Host+":80", host)
		case "https":
			return strings.EqualFold(u.Host+":443", host)
		}
	}
	return false
}

// blockedPrefix returns the campaign's blocked prefix number (E.164) starts with.
func (c *bannerCampaign) blockedPrefix(number string) (string, bool) {
	d := strings.TrimPrefix(number, "+")
	for _, p := range c.blocked {
		if strings.HasPrefix(d, p) {
			return p, true
		}
	}
	return "", false
}

// campaignCache holds campaigns' public settings for bannerCampaignTTL and
// unknown ids for bannerNotFoundTTL, with one GetPublicCampaign in flight
// per id however many requests wait for it, and at most
// bannerCacheEntries entries.
type campaignCache struct {
	client originationv1.BannerServiceClient
	// off makes every get ask origination (the benchmarks' naive baseline).
	off bool
	now func() time.Time

	mu      sync.Mutex
	entries map[string]campaignEntry
	group   singleflight.Group
}

type campaignEntry struct {
	c       *bannerCampaign // nil: not found
	expires time.Time
}

func newCampaignCache(client originationv1.BannerServiceClient) *campaignCache {
	return &campaignCache{client: client, now: time.Now, entries: map[string]campaignEntry{}}
}

// get returns a campaign, errCampaignNotFound, or why origination could
// not be asked.
func (cc *campaignCache) get(ctx context.Context, id string) (*bannerCampaign, error) {
	if cc.off {
		return cc.fetch(ctx, id, false)
	}
	cc.mu.Lock()
	e, ok := cc.entries[id]
	cc.mu.Unlock()
	if ok && cc.now().Before(e.expires) {
		if e.c == nil {
			return nil, errCampaignNotFound
		}
		return e.c, nil
	}
	ch := cc.group.DoChan(id, func() (any, error) {
		// A flight that ended between this caller's look and its DoChan
		// has stored the answer: use it rather than ask again.
		cc.mu.Lock()
		e, ok := cc.entries[id]
		cc.mu.Unlock()
		if ok && cc.now().Before(e.expires) {
			if e.c == nil {
				return nil, errCampaignNotFound
			}
			return e.c, nil
		}
		// Not the first caller's context: the others wait for the same
		// answer and must not fail because that one left.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), bannerLookupTime)
		defer cancel()
		return cc.fetch(ctx, id, true)
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*bannerCampaign), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (cc *campaignCache) fetch(ctx context.Context, id string, store bool) (*bannerCampaign, error) {
	res, err := cc.client.GetPublicCampaign(ctx, &originationv1.GetPublicCampaignRequest{Id: id})
	if status.Code(err) == codes.NotFound {
		if store {
			cc.put(id, campaignEntry{expires: cc.now().Add(bannerNotFoundTTL)})
		}
		return nil, errCampaignNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get public campaign %s: %w", id, err)
	}
	c := newBannerCampaign(res.GetCampaign())
	if store {
		cc.put(id, campaignEntry{c: c, expires: cc.now().Add(bannerCampaignTTL)})
	}
	return c, nil
}

func (cc *campaignCache) put(id string, e campaignEntry) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if _, ok := cc.entries[id]; !ok && len(cc.entries) >= bannerCacheEntries {
		cc.evict()
	}
	cc.entries[id] = e
}

// evict makes room: the expired entries go, and if that is not enough (a
// flood of fresh ids) an arbitrary eighth of the rest (map order is
// random), so the scan runs once per bannerCacheEntries/8 insertions.
func (cc *campaignCache) evict() {
	now := cc.now()
	for k, e := range cc.entries {
		if !now.Before(e.expires) {
			delete(cc.entries, k)
		}
	}
	n := len(cc.entries) - bannerCacheEntries*7/8
	for k := range cc.entries {
		if n <= 0 {
			break
		}
		delete(cc.entries, k)
		n--
	}
}

// size is the number of entries (tests).
func (cc *campaignCache) size() int {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return len(cc.entries)
}
