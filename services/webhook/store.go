package webhook

import (
	"context"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	eventsv1 "github.com/ringback/ringback/proto/gen/go/ringback/events/v1"
	webhookv1 "github.com/ringback/ringback/proto/gen/go/ringback/webhook/v1"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations is the webhook schema's migrations (store.Migrate).
func Migrations() fs.FS {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // embedded at build time
	}
	return sub
}

// Subscription is a stored webhook subscription.
type Subscription struct {
	ID, AccountID, URL string
	Format             webhookv1.WebhookFormat
	EventTypes         []eventsv1.EventType // empty: all
	CampaignIDs        []string             // empty: all
	Enabled            bool
	Description        string
	TimeoutMS          int
	MaxConcurrency     int
	TimeZone           string
	Secret             string
	DisabledReason     string
	FailingSince       *time.Time
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

// Store is the webhook service's PostgreSQL storage.
type Store struct {
	DB *pgxpool.Pool
}

const subscriptionColumns = `id, account_id, url, format, event_types, campaign_ids, enabled, description,
	timeout_ms, max_concurrency, time_zone, secret, disabled_reason, failing_since, created_at, updated_at`

func scanSubscription(row pgx.Row) (*Subscription, error) {
	var (
		s      Subscription
		format int16
		types  []int16
	)
	err := row.Scan(&s.ID, &s.AccountID, &s.URL, &format, &types, &s.CampaignIDs, &s.Enabled, &s.Description,
		&s.TimeoutMS, &s.MaxConcurrency, &s.TimeZone, &s.Secret, &s.DisabledReason, &s.FailingSince, &s.CreatedAt, &s.UpdatedAt)
	if err != nil {
		return nil, err
	}
	s.Format = webhookv1.WebhookFormat(format)
	for _, t := range types {
		s.EventTypes = append(s.EventTypes, eventsv1.EventType(t))
	}
	return &s, nil
}

func eventTypeNumbers(ts []eventsv1.EventType) []int16 {
	out := make([]int16, 0, len(ts))
	for _, t := range ts {
		out = append(out, int16(t))
	}
	return out
}

// CreateSubscription stores s, refusing it when the account already has max.
func (st *Store) CreateSubscription(ctx context.Context, s *Subscription, max int) error {
	return pgx.BeginFunc(ctx, st.DB, func(tx pgx.Tx) error {
		// Serializes creations per account so the cap holds under races.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 7))`, s.AccountID); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM webhook.subscriptions WHERE account_id = $1`, s.AccountID).Scan(&n); err != nil {
			return err
		}
		if n >= max {
			return ErrTooManyWebhooks.WithMsg(fmt.Sprintf("an account may have %d webhooks", max))
		}
		_, err := tx.Exec(ctx, `INSERT INTO webhook.subscriptions (`+subscriptionColumns+`)
			VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16)`,
			s.ID, s.AccountID, s.URL, int16(s.Format), eventTypeNumbers(s.EventTypes), nonNil(s.CampaignIDs), s.Enabled, s.Description,
			s.TimeoutMS, s.MaxConcurrency, s.TimeZone, s.Secret, s.DisabledReason, s.FailingSince, s.CreatedAt, s.UpdatedAt)
		return err
	})
}

// Subscription returns one of the account's subscriptions.
func (st *Store) Subscription(ctx context.Context, account, id string) (*Subscription, error) {
	s, err := scanSubscription(st.DB.QueryRow(ctx, `SELECT `+subscriptionColumns+`
		FROM webhook.subscriptions WHERE account_id = $1 AND id = $2`, account, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrWebhookNotFound
	}
	return s, err
}

// subscriptionCursor is where a ListWebhooks page ended.
type subscriptionCursor struct {
	T int64  `json:"t"` // created_at, Unix microseconds
	I string `json:"i"`
}

func encodeCursor(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(tok string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err == nil {
		err = json.Unmarshal(b, v)
	}
	if err != nil {
		return ErrInvalidPageToken.WithMsg("page_token is not one this service returned")
	}
	return nil
}

// Subscriptions lists a page of the account's subscriptions, newest first.
func (st *Store) Subscriptions(ctx context.Context, account string, size int, token string) ([]*Subscription, string, error) {
	after := subscriptionCursor{T: 1<<62 - 1}
	if token != "" {
		if err := decodeCursor(token, &after); err != nil {
			return nil, "", err
		}
	}
	rows, err := st.DB.Query(ctx, `SELECT `+subscriptionColumns+` FROM webhook.subscriptions
		WHERE account_id = $1 AND (created_at, id) < ($2, $3)
		ORDER BY created_at DESC, id DESC LIMIT $4`,
		account, time.UnixMicro(after.T), after.I, size+1)
	if err != nil {
		return nil, "", err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Subscription, error) { return scanSubscription(r) })
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > size {
		out = out[:size]
		last := out[size-1]
		next = encodeCursor(subscriptionCursor{T: last.CreatedAt.UnixMicro(), I: last.ID})
	}
	return out, next, nil
}

// EnabledSubscriptions returns every enabled subscription (the dispatch
// cache), or those of one account.
func (st *Store) EnabledSubscriptions(ctx context.Context, account string) ([]*Subscription, error) {
	rows, err := st.DB.Query(ctx, `SELECT `+subscriptionColumns+` FROM webhook.subscriptions
		WHERE enabled AND ($1 = '' OR account_id = $1)`, account)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Subscription, error) { return scanSubscription(r) })
}

// UpdateSubscription writes s (found by account and id). Enabling it
// clears the disabled reason and the failure streak and makes its waiting
// deliveries due; disabling it parks them.
func (st *Store) UpdateSubscription(ctx context.Context, s *Subscription) error {
	return pgx.BeginFunc(ctx, st.DB, func(tx pgx.Tx) error {
		var wasEnabled bool
		err := tx.QueryRow(ctx, `SELECT enabled FROM webhook.subscriptions WHERE account_id = $1 AND id = $2 FOR UPDATE`,
			s.AccountID, s.ID).Scan(&wasEnabled)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrWebhookNotFound
		}
		if err != nil {
			return err
		}
		if s.Enabled && !wasEnabled {
			s.DisabledReason, s.FailingSince = "", nil
		}
		_, err = tx.Exec(ctx, `UPDATE webhook.subscriptions SET url = $3, format = $4, event_types = $5, campaign_ids = $6,
			enabled = $7, description = $8, timeout_ms = $9, max_concurrency = $10, time_zone = $11,
			disabled_reason = $12, failing_since = $13, updated_at = $14
			WHERE account_id = $1 AND id = $2`,
			s.AccountID, s.ID, s.URL, int16(s.Format), eventTypeNumbers(s.EventTypes), nonNil(s.CampaignIDs),
			s.Enabled, s.Description, s.TimeoutMS, s.MaxConcurrency, s.TimeZone, s.DisabledReason, s.FailingSince, s.UpdatedAt)
		if err != nil {
			return err
		}
		switch {
		case s.Enabled && !wasEnabled:
			_, err = tx.Exec(ctx, `UPDATE webhook.deliveries SET next_attempt_at = now(), lease_owner = NULL
				WHERE subscription_id = $1 AND state = 1`, s.ID)
		case !s.Enabled && wasEnabled:
			err = parkDeliveries(ctx, tx, s.ID)
		}
		return err
	})
}

// parkDeliveries takes a disabled subscription's waiting deliveries out of
// the due index's way until it is enabled again.
func parkDeliveries(ctx context.Context, tx pgx.Tx, subscription string) error {
	// parked, not 'infinity': the delivery log scans the column into a
	// time.Time, which cannot hold infinity.
	_, err := tx.Exec(ctx, `UPDATE webhook.deliveries SET next_attempt_at = $2, lease_owner = NULL
		WHERE subscription_id = $1 AND state = 1`, subscription, parked)
	return err
}

// SetSecret replaces a subscription's signing secret.
func (st *Store) SetSecret(ctx context.Context, account, id, secret string, now time.Time) error {
	tag, err := st.DB.Exec(ctx, `UPDATE webhook.subscriptions SET secret = $3, updated_at = $4 WHERE account_id = $1 AND id = $2`,
		account, id, secret, now)
	if err == nil && tag.RowsAffected() == 0 {
		err = ErrWebhookNotFound
	}
	return err
}

// DeleteSubscription deletes a subscription and its deliveries.
func (st *Store) DeleteSubscription(ctx context.Context, account, id string) error {
	tag, err := st.DB.Exec(ctx, `DELETE FROM webhook.subscriptions WHERE account_id = $1 AND id = $2`, account, id)
	if err == nil && tag.RowsAffected() == 0 {
		err = ErrWebhookNotFound
	}
	return err
}

// Settings are an account's notification settings.
type Settings struct {
	Emails    []string
	TimeZone  string
	UpdatedAt time.Time
}

// Settings returns an account's notification settings (zero when unset).
func (st *Store) Settings(ctx context.Context, q querier, account string) (Settings, error) {
	var s Settings
	err := q.QueryRow(ctx, `SELECT emails, time_zone, updated_at FROM webhook.notification_settings WHERE account_id = $1`,
		account).Scan(&s.Emails, &s.TimeZone, &s.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return Settings{}, nil
	}
	return s, err
}

// SetSettings replaces an account's notification settings.
func (st *Store) SetSettings(ctx context.Context, account string, s Settings) error {
	_, err := st.DB.Exec(ctx, `INSERT INTO webhook.notification_settings (account_id, emails, time_zone, updated_at)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (account_id) DO UPDATE SET emails = $2, time_zone = $3, updated_at = $4`,
		account, nonNil(s.Emails), s.TimeZone, s.UpdatedAt)
	return err
}

// querier is what both a pool and a transaction offer.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
