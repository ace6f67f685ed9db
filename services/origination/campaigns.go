package origination

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nyaruka/phonenumbers"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	originationv1 "github.com/ringback/ringback/proto/gen/go/ringback/origination/v1"
	"github.com/ringback/ringback/services/internal/ids"
)

// Campaign errors the API maps to stable reasons.
var (
	ErrCampaignNotFound = errors.New("campaign not found")
	ErrCampaignExists   = errors.New("campaign name taken")
)

// Defaults of a campaign's settings (the proto documents them).
const (
	DefaultRedialInterval      = 60 * time.Second
	DefaultVisitorRingTimeout  = 30 * time.Second
	DefaultOperatorRingTimeout = 20 * time.Second
	DefaultPerIPPerHour        = 20
	DefaultPerNumberPerDay     = 5
	DefaultPerCampaignPerMin   = 60
	DefaultDuplicateWindowS    = 120
)

// CampaignStore keeps campaigns in PostgreSQL. A campaign is the API's
// Campaign message; its settings are stored as protojson.
type CampaignStore struct {
	DB *pgxpool.Pool
}

const campaignCols = "id, account_id, name, public_key, settings, created_at, updated_at"

var settingsJSON = protojson.MarshalOptions{UseProtoNames: true}

func scanCampaign(row pgx.Row) (*originationv1.Campaign, error) {
	var (
		id, account, name, key string
		settings               []byte
		created, updated       time.Time
	)
	if err := row.Scan(&id, &account, &name, &key, &settings, &created, &updated); err != nil {
		return nil, err
	}
	c := &originationv1.Campaign{}
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(settings, c); err != nil {
		return nil, fmt.Errorf("decode campaign %s: %w", id, err)
	}
	c.Id, c.AccountId, c.Name, c.PublicKey = id, account, name, key
	c.CreatedAt, c.UpdatedAt = timestamppb.New(created), timestamppb.New(updated)
	return c, nil
}

// settingsOf is what the settings column holds: the campaign without the
// fields that have columns.
func settingsOf(c *originationv1.Campaign) ([]byte, error) {
	s := proto.Clone(c).(*originationv1.Campaign)
	s.Id, s.AccountId, s.Name, s.PublicKey, s.CreatedAt, s.UpdatedAt = "", "", "", "", nil, nil
	return settingsJSON.Marshal(s)
}

func newPublicKey() string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	return "pk_" + base64.RawURLEncoding.EncodeToString(b[:])
}

// Create stores a new campaign (id and key generated).
func (s *CampaignStore) Create(ctx context.Context, account string, c *originationv1.Campaign) (*originationv1.Campaign, error) {
	settings, err := settingsOf(c)
	if err != nil {
		return nil, err
	}
	out, err := scanCampaign(s.DB.QueryRow(ctx, `INSERT INTO origination.campaigns (id, account_id, name, public_key, settings)
		VALUES ($1, $2, $3, $4, $5) RETURNING `+campaignCols, ids.NewV4(), account, c.GetName(), newPublicKey(), settings))
	return out, campaignErr(err)
}

func campaignErr(err error) error {
	var pe *pgconn.PgError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pgx.ErrNoRows):
		return ErrCampaignNotFound
	case errors.As(err, &pe) && pe.Code == "23505":
		return ErrCampaignExists
	}
	return fmt.Errorf("campaign store: %w", err)
}

// Get returns an account's campaign.
func (s *CampaignStore) Get(ctx context.Context, account, id string) (*originationv1.Campaign, error) {
	if !uuidRe.MatchString(id) {
		return nil, ErrCampaignNotFound
	}
	c, err := scanCampaign(s.DB.QueryRow(ctx, `SELECT `+campaignCols+` FROM origination.campaigns WHERE account_id = $1 AND id = $2`, account, id))
	return c, campaignErr(err)
}

// ByID returns a campaign whatever its account (the public endpoint).
func (s *CampaignStore) ByID(ctx context.Context, id string) (*originationv1.Campaign, error) {
	if !uuidRe.MatchString(id) {
		return nil, ErrCampaignNotFound
	}
	c, err := scanCampaign(s.DB.QueryRow(ctx, `SELECT `+campaignCols+` FROM origination.campaigns WHERE id = $1`, id))
	return c, campaignErr(err)
}

// List pages through an account's campaigns by name, then id; after is the
// last (name, id) of the previous page.
func (s *CampaignStore) List(ctx context.Context, account string, limit int, afterName, afterID string) ([]*originationv1.Campaign, error) {
	rows, err := s.DB.Query(ctx, `SELECT `+campaignCols+` FROM origination.campaigns
		WHERE account_id = $1 AND (name, id::text) > ($2, $3) ORDER BY name, id LIMIT $4`, account, afterName, afterID, limit)
	if err != nil {
		return nil, campaignErr(err)
	}
	defer rows.Close()
	var out []*originationv1.Campaign
	for rows.Next() {
		c, err := scanCampaign(rows)
		if err != nil {
			return nil, campaignErr(err)
		}
		out = append(out, c)
	}
	return out, campaignErr(rows.Err())
}

// Update changes a campaign under a row lock: change gets the stored
// campaign and edits it; rotate replaces the public key.
func (s *CampaignStore) Update(ctx context.Context, account, id string, rotate bool, change func(*originationv1.Campaign) error) (*originationv1.Campaign, error) {
	if !uuidRe.MatchString(id) {
		return nil, ErrCampaignNotFound
	}
	var out *originationv1.Campaign
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		c, err := scanCampaign(tx.QueryRow(ctx, `SELECT `+campaignCols+` FROM origination.campaigns WHERE account_id = $1 AND id = $2 FOR UPDATE`, account, id))
		if err != nil {
			return err
		}
		if change != nil {
			if err := change(c); err != nil {
				return err
			}
		}
		key := c.GetPublicKey()
		if rotate {
			key = newPublicKey()
		}
		settings, err := settingsOf(c)
		if err != nil {
			return err
		}
		out, err = scanCampaign(tx.QueryRow(ctx, `UPDATE origination.campaigns SET name = $3, public_key = $4, settings = $5, updated_at = now()
			WHERE account_id = $1 AND id = $2 RETURNING `+campaignCols, account, id, c.GetName(), key, settings))
		return err
	})
	if errors.Is(err, ErrInvalid) || errors.Is(err, ErrUnknownEndpoint) {
		return nil, err
	}
	return out, campaignErr(err)
}

// Delete removes a campaign.
func (s *CampaignStore) Delete(ctx context.Context, account, id string) error {
	if !uuidRe.MatchString(id) {
		return ErrCampaignNotFound
	}
	tag, err := s.DB.Exec(ctx, `DELETE FROM origination.campaigns WHERE account_id = $1 AND id = $2`, account, id)
	if err != nil {
		return campaignErr(err)
	}
	if tag.RowsAffected() == 0 {
		return ErrCampaignNotFound
	}
	return nil
}

// Callback is a failed call's callback.
type Callback struct {
	CallID string
	At     time.Time
}

// Callbacks returns the callbacks of the given failed calls.
func (s *CampaignStore) Callbacks(ctx context.Context, account string, failed []string) (map[string]Callback, error) {
	out := map[string]Callback{}
	if len(failed) == 0 {
		return out, nil
	}
	rows, err := s.DB.Query(ctx, `SELECT failed_call_id, callback_call_id, created_at FROM origination.campaign_callbacks
		WHERE account_id = $1 AND failed_call_id = ANY($2)`, account, failed)
	if err != nil {
		return nil, campaignErr(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var cb Callback
		if err := rows.Scan(&id, &cb.CallID, &cb.At); err != nil {
			return nil, campaignErr(err)
		}
		out[id] = cb
	}
	return out, campaignErr(rows.Err())
}

// CallBackOnce runs place for a failed call unless it was called back
// already (or force), and records the link; concurrent clicks on the same
// call place one callback.
func (s *CampaignStore) CallBackOnce(ctx context.Context, account, campaign, failed string, force bool, place func() (string, error)) (string, error) {
	var id string
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('origination.callback:' || $1))`, failed); err != nil {
			return err
		}
		var prev string
		err := tx.QueryRow(ctx, `SELECT callback_call_id FROM origination.campaign_callbacks WHERE failed_call_id = $1`, failed).Scan(&prev)
		if err == nil && !force {
			return fmt.Errorf("%w: call %s was called back by call %s (set force to call again)", errCalledBack, failed, prev)
		}
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if id, err = place(); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO origination.campaign_callbacks (failed_call_id, campaign_id, account_id, callback_call_id)
			VALUES ($1, $2, $3, $4) ON CONFLICT (failed_call_id) DO UPDATE SET callback_call_id = EXCLUDED.callback_call_id, created_at = now()`,
			failed, campaign, account, id)
		return err
	})
	return id, err
}

var errCalledBack = errors.New("already called back")

// Validation of campaigns.

var (
	hhmmRe     = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)
	currencyRe = regexp.MustCompile(`^[A-Z]{3}$`)
	prefixRe   = regexp.MustCompile(`^[0-9]{1,15}$`)
	countryRe  = regexp.MustCompile(`^[A-Z]{2}$`)
)

// validateCampaign checks a campaign's settings and normalizes them (caller
// IDs to E.164, origins to scheme://host[:port], the country upper case).
// Operators are checked against the account's endpoints.
func validateCampaign(ctx context.Context, eps Endpoints, account string, c *originationv1.Campaign, maxDuration time.Duration) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, a...)...)
	}
	if !errNameRe.MatchString(c.GetName()) || len(c.GetName()) > 100 {
		return bad("name must be 1-100 printable characters")
	}
	if n := len(c.GetOperatorEndpointIds()); n == 0 || n > MaxOperators {
		return bad("operator_endpoint_ids: 1 to %d endpoints", MaxOperators)
	}
	for i, id := range c.GetOperatorEndpointIds() {
		if slices.Contains(c.GetOperatorEndpointIds()[:i], id) {
			return bad("operator_endpoint_ids: %s is listed twice", id)
		}
		if eps != nil {
			if _, err := eps.Get(ctx, account, id); err != nil {
				return err
			}
		}
	}
	if _, ok := originationv1.RingStrategy_name[int32(c.GetRingStrategy())]; !ok {
		return bad("ring_strategy: unknown value")
	}
	if _, ok := originationv1.FirstParty_name[int32(c.GetFirstParty())]; !ok {
		return bad("first_party: unknown value")
	}
	if _, ok := originationv1.OutsideHours_name[int32(c.GetOutsideHours())]; !ok {
		return bad("outside_hours: unknown value")
	}
	if _, ok := originationv1.ChallengeMode_name[int32(c.GetChallenge())]; !ok {
		return bad("challenge: unknown value")
	}
	if a := c.GetAnnouncement(); a != "" && !announcementRe.MatchString(a) {
		return bad("announcement must be a file path or URL without spaces (at most 512 characters)")
	}
	for name, v := range map[string]int32{"visitor_ring_timeout_ms": c.GetVisitorRingTimeoutMs(), "operator_ring_timeout_ms": c.GetOperatorRingTimeoutMs()} {
		if v < 0 || v > 120000 {
			return bad("%s must be between 0 and 120000", name)
		}
	}
	if n := c.GetVisitorCallerIdNumber(); n != "" {
		e164, err := NormalizeNumber(n)
		if err != nil {
			return bad("visitor_caller_id_number: %v", err)
		}
		c.VisitorCallerIdNumber = e164
	}
	for name, v := range map[string]string{"visitor_caller_id_name": c.GetVisitorCallerIdName(), "operator_caller_id_name": c.GetOperatorCallerIdName()} {
		if len(v) > 80 || strings.ContainsAny(v, "{}[],'\"|\n\r\x00") {
			return bad("%s: at most 80 characters, none of {}[],'\"|", name)
		}
	}
	if r := c.GetRedialAttempts(); r < 0 || r > MaxAttempts-1 {
		return bad("redial_attempts must be between 0 and %d", MaxAttempts-1)
	}
	if r := c.GetRedialIntervalS(); r < 0 || r > int32(MaxRedialDelay/time.Second) {
		return bad("redial_interval_s must be between 0 and %d", int(MaxRedialDelay/time.Second))
	}
	if len(c.GetAllowedOrigins()) > 50 {
		return bad("allowed_origins: at most 50")
	}
	for i, o := range c.GetAllowedOrigins() {
		n, err := normalizeOrigin(o)
		if err != nil {
			return bad("allowed_origins: %v", err)
		}
		c.AllowedOrigins[i] = n
	}
	if oh := c.GetOpeningHours(); oh != nil {
		if _, err := time.LoadLocation(oh.GetTimeZone()); err != nil || oh.GetTimeZone() == "" {
			return bad("opening_hours.time_zone: %q is not an IANA time zone", oh.GetTimeZone())
		}
		if n := len(oh.GetWindows()); n == 0 || n > 50 {
			return bad("opening_hours.windows: 1 to 50 windows")
		}
		for _, w := range oh.GetWindows() {
			if len(w.GetDays()) == 0 {
				return bad("opening_hours: a window needs days (0 Sunday to 6 Saturday)")
			}
			for _, d := range w.GetDays() {
				if d < 0 || d > 6 {
					return bad("opening_hours: day %d (0 Sunday to 6 Saturday)", d)
				}
			}
			if !hhmmRe.MatchString(w.GetOpen()) || !hhmmRe.MatchString(w.GetClose()) || w.GetClose() <= w.GetOpen() {
				return bad("opening_hours: open and close are HH:MM with close after open (got %q-%q)", w.GetOpen(), w.GetClose())
			}
		}
	}
	if c.GetPricePerCompletedCallMicros() < 0 {
		return bad("price_per_completed_call_micros must not be negative")
	}
	if cur := c.GetPriceCurrency(); cur != "" && !currencyRe.MatchString(cur) {
		return bad("price_currency: an ISO 4217 code such as USD")
	}
	if r := c.GetReminderTimeoutS(); r < 0 || r > MaxReminderTimeoutS {
		return bad("reminder_timeout_s must be between 0 and %d", MaxReminderTimeoutS)
	}
	if dc := strings.ToUpper(c.GetDefaultCountry()); dc != "" {
		if !countryRe.MatchString(dc) || phonenumbers.GetCountryCodeForRegion(dc) == 0 {
			return bad("default_country: %q is not an ISO 3166-1 alpha-2 country with a calling code", c.GetDefaultCountry())
		}
		c.DefaultCountry = dc
	}
	if l := c.GetLimits(); l != nil {
		for name, v := range map[string]int32{"per_ip_per_hour": l.GetPerIpPerHour(), "per_number_per_day": l.GetPerNumberPerDay(),
			"per_campaign_per_minute": l.GetPerCampaignPerMinute()} {
			if v < 0 || v > 1_000_000 {
				return bad("limits.%s must be between 0 and 1000000", name)
			}
		}
		if w := l.GetDuplicateWindowS(); w < 0 || w > 86400 {
			return bad("limits.duplicate_window_s must be between 0 and 86400")
		}
	}
	if len(c.GetBlockedPrefixes()) > 1000 {
		return bad("blocked_prefixes: at most 1000")
	}
	for i, p := range c.GetBlockedPrefixes() {
		p = strings.TrimPrefix(strings.TrimSpace(p), "+")
		if !prefixRe.MatchString(p) {
			return bad("blocked_prefixes: %q is not a number prefix", c.GetBlockedPrefixes()[i])
		}
		c.BlockedPrefixes[i] = p
	}
	if m := c.GetMaxDurationS(); m < 0 || time.Duration(m)*time.Second > maxDuration {
		return bad("max_duration_s must be between 0 and %d", int(maxDuration/time.Second))
	}
	return nil
}

// normalizeOrigin turns "https://Shop.example.com/" into
// "https://shop.example.com"; "*" stays.
func normalizeOrigin(o string) (string, error) {
	if o == "*" {
		return o, nil
	}
	u, err := url.Parse(strings.TrimSpace(o))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") ||
		u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("%q is not an origin such as https://shop.example.com", o)
	}
	return u.Scheme + "://" + strings.ToLower(u.Host), nil
}

// withDefaults returns the limits with the documented defaults applied.
func withDefaults(l *originationv1.BannerLimits) *originationv1.BannerLimits {
	out := &originationv1.BannerLimits{PerIpPerHour: DefaultPerIPPerHour, PerNumberPerDay: DefaultPerNumberPerDay,
		PerCampaignPerMinute: DefaultPerCampaignPerMin, DuplicateWindowS: DefaultDuplicateWindowS}
	if v := l.GetPerIpPerHour(); v > 0 {
		out.PerIpPerHour = v
	}
	if v := l.GetPerNumberPerDay(); v > 0 {
		out.PerNumberPerDay = v
	}
	if v := l.GetPerCampaignPerMinute(); v > 0 {
		out.PerCampaignPerMinute = v
	}
	if v := l.GetDuplicateWindowS(); v > 0 {
		out.DuplicateWindowS = v
	}
	return out
}

// NextOpen tells whether opening hours are open at now and, if not, when
// they open next (zero if never within a week: impossible for validated
// hours). nil hours are always open.
func NextOpen(oh *originationv1.OpeningHours, now time.Time) (bool, time.Time) {
	if oh == nil || len(oh.GetWindows()) == 0 {
		return true, time.Time{}
	}
	loc, err := time.LoadLocation(oh.GetTimeZone())
	if err != nil {
		return true, time.Time{}
	}
	local := now.In(loc)
	var next time.Time
	for d := 0; d <= 7; d++ {
		day := time.Date(local.Year(), local.Month(), local.Day()+d, 0, 0, 0, 0, loc)
		for _, w := range oh.GetWindows() {
			if !slices.Contains(w.GetDays(), int32(day.Weekday())) {
				continue
			}
			open, close := at(day, w.GetOpen(), loc), at(day, w.GetClose(), loc)
			if !now.Before(open) && now.Before(close) {
				return true, time.Time{}
			}
			if open.After(now) && (next.IsZero() || open.Before(next)) {
				next = open
			}
		}
		if !next.IsZero() && d > 0 {
			break
		}
	}
	return false, next
}

func at(day time.Time, hhmm string, loc *time.Location) time.Time {
	var h, m int
	fmt.Sscanf(hhmm, "%d:%d", &h, &m)
	return time.Date(day.Year(), day.Month(), day.Day(), h, m, 0, 0, loc)
}

// campaignCache keeps campaigns the banner path reads, for a short while:
// a burst of visitors costs one query, and a change is seen within ttl.
type campaignCache struct {
	store *CampaignStore
	ttl   time.Duration
	mu    sync.Mutex
	items map[string]cachedCampaign
}

type cachedCampaign struct {
	c   *originationv1.Campaign
	err error
	at  time.Time
}

func (cc *campaignCache) get(ctx context.Context, id string) (*originationv1.Campaign, error) {
	cc.mu.Lock()
	it, ok := cc.items[id]
	cc.mu.Unlock()
	if ok && time.Since(it.at) < cc.ttl {
		return it.c, it.err
	}
	c, err := cc.store.ByID(ctx, id)
	if err != nil && !errors.Is(err, ErrCampaignNotFound) {
		return nil, err // not cached: the next request tries again
	}
	cc.mu.Lock()
	if cc.items == nil || len(cc.items) > 10000 {
		cc.items = map[string]cachedCampaign{}
	}
	cc.items[id] = cachedCampaign{c: c, err: err, at: time.Now()}
	cc.mu.Unlock()
	return c, err
}

func (cc *campaignCache) forget(id string) {
	cc.mu.Lock()
	delete(cc.items, id)
	cc.mu.Unlock()
}
