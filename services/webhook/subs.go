package webhook

import (
	"context"
	"slices"
	"sync"
	"time"

	eventsv1 "github.com/ringback/ringback/proto/gen/go/ringback/events/v1"
	webhookv1 "github.com/ringback/ringback/proto/gen/go/ringback/webhook/v1"
)

// endpointSub is an enabled subscription as the dispatcher uses it.
type endpointSub struct {
	*Subscription
	key    []byte         // HMAC key of the secret
	loc    *time.Location // carrier format's time zone
	format webhookv1.WebhookFormat
}

// wants reports whether the subscription receives an event.
func (s *endpointSub) wants(t eventsv1.EventType, campaign string) bool {
	if len(s.CampaignIDs) > 0 && !slices.Contains(s.CampaignIDs, campaign) {
		return false
	}
	if s.format == webhookv1.WebhookFormat_WEBHOOK_FORMAT_CARRIER {
		return carrierAction(t) != ""
	}
	return len(s.EventTypes) == 0 || slices.Contains(s.EventTypes, t)
}

func newEndpointSub(s *Subscription) *endpointSub {
	key, _ := parseSecret(s.Secret)
	loc, err := time.LoadLocation(s.TimeZone)
	if err != nil || s.TimeZone == "" {
		loc = time.UTC
	}
	return &endpointSub{Subscription: s, key: key, loc: loc, format: formatOf(s.Format)}
}

// subCache holds every enabled subscription, by account and by id: the
// ingest matches each event against its account's without a query. It is
// reloaded whole periodically and per account when a change is announced.
type subCache struct {
	st *Store

	mu        sync.RWMutex
	byAccount map[string][]*endpointSub
	byID      map[string]*endpointSub
}

func newSubCache(st *Store) *subCache {
	return &subCache{st: st, byAccount: map[string][]*endpointSub{}, byID: map[string]*endpointSub{}}
}

// reload replaces the whole cache.
func (c *subCache) reload(ctx context.Context) error {
	subs, err := c.st.EnabledSubscriptions(ctx, "")
	if err != nil {
		return err
	}
	byAccount := map[string][]*endpointSub{}
	byID := make(map[string]*endpointSub, len(subs))
	for _, s := range subs {
		es := newEndpointSub(s)
		byAccount[s.AccountID] = append(byAccount[s.AccountID], es)
		byID[s.ID] = es
	}
	c.mu.Lock()
	c.byAccount, c.byID = byAccount, byID
	c.mu.Unlock()
	return nil
}

// reloadAccount replaces one account's subscriptions.
func (c *subCache) reloadAccount(ctx context.Context, account string) error {
	subs, err := c.st.EnabledSubscriptions(ctx, account)
	if err != nil {
		return err
	}
	list := make([]*endpointSub, 0, len(subs))
	for _, s := range subs {
		list = append(list, newEndpointSub(s))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, old := range c.byAccount[account] {
		delete(c.byID, old.ID)
	}
	if len(list) == 0 {
		delete(c.byAccount, account)
	} else {
		c.byAccount[account] = list
	}
	for _, s := range list {
		c.byID[s.ID] = s
	}
	return nil
}

func (c *subCache) forAccount(account string) []*endpointSub {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.byAccount[account]
}

func (c *subCache) get(id string) *endpointSub {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.byID[id]
}
