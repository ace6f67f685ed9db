package rating

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringback/ringback/services/internal/billing"
	"github.com/ringback/ringback/services/rating/direction"
	"github.com/ringback/ringback/services/rating/prefix"
	"github.com/ringback/ringback/services/rating/tariffcsv"
)

// RaterConfig tunes authorization.
type RaterConfig struct {
	// BlockPremium refuses premium-rate numbers (libphonenumber's
	// PREMIUM_RATE line type) as BLOCKED_DESTINATION whatever the tariff
	// says: the classic toll-fraud target of a public banner.
	BlockPremium bool
	// MaxDuration caps the durations rating grants (default 4h).
	MaxDuration time.Duration
	// BillingTTL is how old an account's cached billing (tariff, mode,
	// available balance) may be before Authorize reads it again (default
	// 2s). Changes made through rating are seen at once; a prepaid
	// balance spent by calls answered on other replicas meanwhile is caught
	// by Reserve, which always reads the database.
	BillingTTL time.Duration
}

// Rater authorizes and prices legs. It is safe for concurrent use.
type Rater struct {
	cfg    RaterConfig
	store  *Store
	book   *Book
	dir    *direction.Resolver
	blocks atomic.Pointer[blocklist]
	log    *slog.Logger
	now    func() time.Time
	m      *metrics
	// reserve group-commits reservations once RunReservations runs.
	reserve *batcher[ReserveRequest, Reservation]

	accounts sync.Map // account id -> *accountEntry
}

type accountEntry struct {
	b       *BillingRow
	loaded  time.Time
	loading atomic.Bool
}

// blocklist is the installation's and the accounts' blocked prefixes,
// replaced whole on change.
type blocklist struct {
	global   *prefix.Table
	accounts map[string]*prefix.Table
}

// NewRater returns a rater over a book of compiled tariffs.
func NewRater(cfg RaterConfig, store *Store, book *Book, dir *direction.Resolver, log *slog.Logger) *Rater {
	if cfg.MaxDuration <= 0 {
		cfg.MaxDuration = 4 * time.Hour
	}
	if cfg.BillingTTL <= 0 {
		cfg.BillingTTL = 2 * time.Second
	}
	r := &Rater{cfg: cfg, store: store, book: book, dir: dir, log: log, now: time.Now, m: newMetrics(nil),
		reserve: newBatcher(256, store.ReserveBatch)}
	r.blocks.Store(&blocklist{})
	return r
}

// Decision is an authorized leg.
type Decision struct {
	Number    string // E.164
	TariffID  string
	Currency  string
	Rate      Rate
	MaxSecs   int32 // 0: no limit from billing
	Direction direction.Direction
}

// Authorize decides whether account may dial number, and at what rate.
func (r *Rater) Authorize(ctx context.Context, accountID, number, campaignID string) (*Decision, error) {
	d, err := r.authorize(ctx, accountID, number, campaignID)
	result := "ok"
	var e *Error
	if errors.As(err, &e) {
		result = e.Reason
	} else if err != nil {
		result = "error"
	}
	r.m.authorizations.WithLabelValues(result).Inc()
	return d, err
}

func (r *Rater) authorize(ctx context.Context, accountID, number, campaignID string) (*Decision, error) {
	e164, digits, err := normalize(number)
	if err != nil {
		return nil, err
	}
	d := &Decision{Number: e164, Direction: r.dir.Lookup(e164)}
	if err := r.checkBlocked(accountID, digits, d.Direction); err != nil {
		return nil, err
	}
	b, err := r.billing(ctx, accountID)
	if err != nil {
		return nil, err
	}
	tariffID := b.TariffID
	if t, ok := b.Campaigns[campaignID]; ok && campaignID != "" {
		tariffID = t
	}
	if tariffID == "" {
		return nil, errorf(ErrDestinationNotSupported, "destination %s is not supported: the account has no tariff", e164)
	}
	t := r.book.Get(tariffID)
	if t == nil {
		// Assigned but not held here: a change notification this replica
		// missed (the periodic sync would catch it). Refusing a good call
		// for that would be wrong; load it now.
		if err := r.LoadTariff(ctx, tariffID); err != nil {
			return nil, err
		}
		t = r.book.Get(tariffID)
	}
	rate, ok := t.Lookup(digits, r.now())
	if !ok {
		return nil, errorf(ErrDestinationNotSupported, "destination %s is not supported: no rate for it", e164)
	}
	d.TariffID, d.Currency, d.Rate = t.ID, t.Currency, rate
	if b.Prepaid() {
		max := billing.MaxSeconds(rate.Rate, b.BalanceMicros-b.ReservedMicros, int64(r.cfg.MaxDuration/time.Second))
		if max == 0 {
			return nil, errorf(ErrInsufficientBalance, "the balance cannot pay for a call to %s", e164)
		}
		d.MaxSecs = int32(max)
	}
	return d, nil
}

func (r *Rater) checkBlocked(accountID, digits string, dir direction.Direction) error {
	bl := r.blocks.Load()
	if _, n, ok := bl.global.Lookup(digits, 0); ok {
		return errorf(ErrBlockedDestination, "destination +%s is blocked (prefix %s)", digits, digits[:n])
	}
	if t := bl.accounts[accountID]; t != nil {
		if _, n, ok := t.Lookup(digits, 0); ok {
			return errorf(ErrBlockedDestination, "destination +%s is blocked for the account (prefix %s)", digits, digits[:n])
		}
	}
	if r.cfg.BlockPremium && dir.LineType == direction.PremiumRate {
		return errorf(ErrBlockedDestination, "destination +%s is a premium-rate number", digits)
	}
	return nil
}

// billing returns an account's billing, cached for BillingTTL. A stale
// entry is refreshed by one caller while the others go on with it.
func (r *Rater) billing(ctx context.Context, accountID string) (*BillingRow, error) {
	now := r.now()
	if v, ok := r.accounts.Load(accountID); ok {
		e := v.(*accountEntry)
		if now.Sub(e.loaded) < r.cfg.BillingTTL || !e.loading.CompareAndSwap(false, true) {
			return e.b, nil
		}
		defer e.loading.Store(false)
	}
	b, err := r.store.GetBilling(ctx, accountID)
	if err != nil {
		return nil, err
	}
	r.accounts.Store(accountID, &accountEntry{b: b, loaded: now})
	return b, nil
}

// Forget drops an account's cached billing (it changed).
func (r *Rater) Forget(accountID string) { r.accounts.Delete(accountID) }

// Reserve holds the cost of an answered leg's time and returns the seconds
// granted.
func (r *Rater) Reserve(ctx context.Context, accountID, callID, leg string, rate billing.Rate, maxSecs int32) (Reservation, error) {
	if maxSecs <= 0 || time.Duration(maxSecs)*time.Second > r.cfg.MaxDuration {
		maxSecs = int32(r.cfg.MaxDuration / time.Second)
	}
	res, err := r.reserve.do(ctx, ReserveRequest{AccountID: accountID, CallID: callID, Leg: leg, Rate: rate, MaxSeconds: maxSecs})
	if err != nil {
		return Reservation{}, fmt.Errorf("reserve %s/%s: %w", callID, leg, err)
	}
	// The cached balance is not dropped: at hundreds of calls a second
	// that would send every Authorize to the database. It is at most
	// BillingTTL old, and Reserve, not Authorize, is what guards the money.
	return res, nil
}

// RunReservations commits reservations until ctx ends; Reserve waits for it.
func (r *Rater) RunReservations(ctx context.Context) { r.reserve.loop(ctx) }

// ReloadBlocklist reads the blocklist again.
func (r *Rater) ReloadBlocklist(ctx context.Context) error {
	all, err := r.store.ListBlocked(ctx, "", true)
	if err != nil {
		return fmt.Errorf("load blocklist: %w", err)
	}
	byAccount := map[string][]prefix.Entry{}
	for _, b := range all {
		byAccount[b.AccountID] = append(byAccount[b.AccountID], prefix.Entry{Prefix: b.Prefix, From: prefix.Never})
	}
	bl := &blocklist{accounts: map[string]*prefix.Table{}}
	for a, entries := range byAccount {
		t, err := prefix.Build(entries)
		if err != nil {
			return fmt.Errorf("blocklist of %q: %w", a, err)
		}
		if a == "" {
			bl.global = t
		} else {
			bl.accounts[a] = t
		}
	}
	r.blocks.Store(bl)
	return nil
}

// LoadTariff compiles a tariff from the database and swaps it in.
func (r *Rater) LoadTariff(ctx context.Context, id string) error {
	row, rates, err := r.store.LoadTariff(ctx, id)
	if err != nil {
		if err == ErrTariffNotFound {
			r.book.Remove(id)
			return nil
		}
		return fmt.Errorf("load tariff %s: %w", id, err)
	}
	return r.compile(row, rates)
}

func (r *Rater) compile(row *TariffRow, rates []tariffcsv.Rate) error {
	start := time.Now()
	t, err := Compile(row.ID, row.Currency, row.Version, rates)
	if err != nil {
		return err
	}
	r.book.Put(t)
	r.m.tariffLoads.Observe(time.Since(start).Seconds())
	r.m.tariffRates.WithLabelValues(row.ID).Set(float64(t.Len()))
	return nil
}

// Sync brings the book in line with the database: tariffs added or
// changed elsewhere are loaded, deleted ones dropped.
func (r *Rater) Sync(ctx context.Context) error {
	want, err := r.store.TariffVersions(ctx)
	if err != nil {
		return fmt.Errorf("tariff versions: %w", err)
	}
	have := r.book.Versions()
	for id, v := range want {
		if have[id] < v {
			if err := r.LoadTariff(ctx, id); err != nil {
				return err
			}
		}
	}
	for id := range have {
		if _, ok := want[id]; !ok {
			r.book.Remove(id)
		}
	}
	return nil
}

// PutCompiled swaps in a tariff compiled from rates just imported (the
// importing replica skips reading back what it wrote).
func (r *Rater) PutCompiled(row *TariffRow, rates []tariffcsv.Rate) error {
	return r.compile(row, rates)
}

// Change is the message replicas exchange on ChangeSubject.
type Change struct {
	Kind string `json:"kind"` // tariff, billing, blocklist
	ID   string `json:"id,omitempty"`
	// Version of a changed tariff: a replica that holds it already (the
	// one that made the change) skips the reload.
	Version int64 `json:"version,omitempty"`
}

// ChangeSubject is the core NATS subject of Change messages.
const ChangeSubject = "rating.changed"

// Apply acts on a change another replica (or this one) announced.
func (r *Rater) Apply(ctx context.Context, data []byte) {
	var c Change
	if err := json.Unmarshal(data, &c); err != nil {
		r.log.Warn("bad change notification", "err", err)
		return
	}
	var err error
	switch c.Kind {
	case "tariff":
		if t := r.book.Get(c.ID); t != nil && c.Version > 0 && t.Version >= c.Version {
			return
		}
		err = r.LoadTariff(ctx, c.ID)
	case "billing":
		r.Forget(c.ID)
	case "blocklist":
		err = r.ReloadBlocklist(ctx)
	}
	if err != nil {
		r.log.Error("apply change", "kind", c.Kind, "id", c.ID, "err", err)
	}
}

// normalize returns a number in E.164 and as bare digits.
func normalize(s string) (e164, digits string, err error) {
	buf := make([]byte, 0, 16)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			buf = append(buf, c)
		case c == '+' && len(buf) == 0:
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')':
		default:
			return "", "", errorf(ErrInvalidNumber, "number %q: unexpected character %q", s, c)
		}
	}
	if len(buf) < 7 || len(buf) > 15 || buf[0] == '0' {
		return "", "", errorf(ErrInvalidNumber, "number %q: an E.164 number has 7 to 15 digits and starts with a country code", s)
	}
	digits = string(buf)
	return "+" + digits, digits, nil
}
