package rating

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ringback/ringback/services/internal/billing"
	"github.com/ringback/ringback/services/internal/ids"
	"github.com/ringback/ringback/services/rating/tariffcsv"
)

// Migrations are rating's PostgreSQL schema, applied at start with
// store.Migrate(ctx, pool, "rating", Migrations()).
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the migration files, for store.Migrate.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // embedded at build time
	}
	return sub
}

// Store is rating's PostgreSQL data: tariffs and rates, billing accounts,
// reservations, the ledger and the blocklist.
type Store struct {
	DB *pgxpool.Pool
}

// TariffRow is a tariff as stored.
type TariffRow struct {
	ID, Name, Description, Currency string
	Version, RateCount              int64
	RateSet                         int64 // its rates are in table rating.rates_<RateSet>; 0: none
	CreatedAt, UpdatedAt            time.Time
}

// rateTable names a rate set's table (trusted: built from an int64).
func rateTable(set int64) string { return fmt.Sprintf("rating.rates_%d", set) }

const tariffCols = "id, name, description, currency, version, rate_count, rate_set, created_at, updated_at"

func scanTariff(row pgx.Row) (*TariffRow, error) {
	var t TariffRow
	err := row.Scan(&t.ID, &t.Name, &t.Description, &t.Currency, &t.Version, &t.RateCount, &t.RateSet, &t.CreatedAt, &t.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrTariffNotFound
	}
	return &t, err
}

func isUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// CreateTariff stores a new, empty tariff.
func (s *Store) CreateTariff(ctx context.Context, name, description, currency string) (*TariffRow, error) {
	t, err := scanTariff(s.DB.QueryRow(ctx, `INSERT INTO rating.tariffs (id, name, description, currency) VALUES ($1, $2, $3, $4)
		RETURNING `+tariffCols, ids.NewV7(), name, description, currency))
	if isUnique(err) {
		return nil, errorf(ErrNameTaken, "a tariff named %q already exists", name)
	}
	return t, err
}

// GetTariff returns one tariff.
func (s *Store) GetTariff(ctx context.Context, id string) (*TariffRow, error) {
	if !uuidLike(id) {
		return nil, ErrTariffNotFound
	}
	return scanTariff(s.DB.QueryRow(ctx, `SELECT `+tariffCols+` FROM rating.tariffs WHERE id = $1`, id))
}

// ListTariffs lists tariffs by name, after the name given.
func (s *Store) ListTariffs(ctx context.Context, after string, limit int) ([]*TariffRow, error) {
	rows, err := s.DB.Query(ctx, `SELECT `+tariffCols+` FROM rating.tariffs WHERE name > $1 ORDER BY name LIMIT $2`, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*TariffRow
	for rows.Next() {
		t, err := scanTariff(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// UpdateTariff renames a tariff or changes its description (empty: kept).
func (s *Store) UpdateTariff(ctx context.Context, id, name, description string) (*TariffRow, error) {
	if !uuidLike(id) {
		return nil, ErrTariffNotFound
	}
	t, err := scanTariff(s.DB.QueryRow(ctx, `UPDATE rating.tariffs SET
		name = COALESCE(NULLIF($2, ''), name), description = COALESCE(NULLIF($3, ''), description), updated_at = now()
		WHERE id = $1 RETURNING `+tariffCols, id, name, description))
	if isUnique(err) {
		return nil, errorf(ErrNameTaken, "a tariff named %q already exists", name)
	}
	return t, err
}

// DeleteTariff deletes a tariff no account or campaign uses.
func (s *Store) DeleteTariff(ctx context.Context, id string) error {
	if !uuidLike(id) {
		return ErrTariffNotFound
	}
	return pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		var users int
		if err := tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM rating.billing_accounts WHERE tariff_id = $1)
			+ (SELECT count(*) FROM rating.campaign_tariffs WHERE tariff_id = $1)`, id).Scan(&users); err != nil {
			return err
		}
		if users > 0 {
			return errorf(ErrTariffInUse, "tariff %s rates %d accounts or campaigns; assign them another first", id, users)
		}
		var set int64
		err := tx.QueryRow(ctx, `DELETE FROM rating.tariffs WHERE id = $1 RETURNING rate_set`, id).Scan(&set)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrTariffNotFound
		}
		if err != nil {
			return err
		}
		if set != 0 {
			_, err = tx.Exec(ctx, `DROP TABLE IF EXISTS `+rateTable(set))
		}
		return err
	})
}

// LoadTariff reads a tariff and all its rates, for compiling. An import
// committed between reading the tariff and its rate table drops that table
// under the reader: read again, the new set then.
func (s *Store) LoadTariff(ctx context.Context, id string) (*TariffRow, []tariffcsv.Rate, error) {
	for attempt := 0; ; attempt++ {
		t, rates, err := s.loadTariff(ctx, id)
		var pe *pgconn.PgError
		if attempt < 3 && errors.As(err, &pe) && pe.Code == "42P01" { // undefined_table
			continue
		}
		return t, rates, err
	}
}

func (s *Store) loadTariff(ctx context.Context, id string) (*TariffRow, []tariffcsv.Rate, error) {
	var (
		t     *TariffRow
		rates []tariffcsv.Rate
	)
	// One snapshot: the rates must be those of the version read.
	err := pgx.BeginTxFunc(ctx, s.DB, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var err error
		if t, err = scanTariff(tx.QueryRow(ctx, `SELECT `+tariffCols+` FROM rating.tariffs WHERE id = $1`, id)); err != nil {
			return err
		}
		rates = make([]tariffcsv.Rate, 0, t.RateCount)
		if t.RateSet == 0 {
			return nil
		}
		rows, err := tx.Query(ctx, `SELECT prefix, effective_from, destination, rate_per_minute_micros, connection_fee_micros,
			min_seconds, increment_seconds FROM `+rateTable(t.RateSet))
		if err != nil {
			return err
		}
		defer rows.Close()
		names := map[string]string{} // destinations repeat: keep one copy
		var dest string
		for rows.Next() {
			var r tariffcsv.Rate
			var from pgtimeInf
			if err := rows.Scan(&r.Prefix, &from, &dest, &r.RatePerMinuteMicros, &r.ConnectionFeeMicros, &r.MinSeconds, &r.IncrementSeconds); err != nil {
				return err
			}
			r.EffectiveFrom = from.t
			if n, ok := names[dest]; ok {
				r.Destination = n
			} else {
				names[dest] = dest
				r.Destination = dest
			}
			rates = append(rates, r)
		}
		return rows.Err()
	})
	return t, rates, err
}

// pgtimeInf scans a timestamptz that may be -infinity (the zero time).
type pgtimeInf struct{ t time.Time }

// ScanTimestamptz implements pgtype.TimestamptzScanner.
func (p *pgtimeInf) ScanTimestamptz(v pgtype.Timestamptz) error {
	p.t = time.Time{}
	if v.Valid && v.InfinityModifier == pgtype.Finite {
		p.t = v.Time.UTC()
	}
	return nil
}

// pgInfinity is the effective_from of rates without a date.
var pgInfinity = pgtype.Timestamptz{InfinityModifier: pgtype.NegativeInfinity, Valid: true}

// TariffVersions returns every tariff's version, to find stale copies.
func (s *Store) TariffVersions(ctx context.Context) (map[string]int64, error) {
	rows, err := s.DB.Query(ctx, `SELECT id, version FROM rating.tariffs`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var id string
		var v int64
		if err := rows.Scan(&id, &v); err != nil {
			return nil, err
		}
		out[id] = v
	}
	return out, rows.Err()
}

// ImportMode says how imported rates combine with existing ones.
type ImportMode int

// Import modes.
const (
	ImportReplace ImportMode = iota
	ImportMerge
)

// ImportRates loads rates into a tariff and returns the tariff's new row.
// Replace makes them the whole set; merge adds them, a rate with the same
// prefix and effective_from replacing the old one. The rates go into a new
// table, indexed once when full, which the tariff then points to, all in
// one transaction; the old table is dropped after the commit.
func (s *Store) ImportRates(ctx context.Context, id string, mode ImportMode, rates []tariffcsv.Rate) (*TariffRow, error) {
	if !uuidLike(id) {
		return nil, ErrTariffNotFound
	}
	var t *TariffRow
	var oldSet int64
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		// The row lock makes concurrent imports of one tariff take turns.
		cur, err := scanTariff(tx.QueryRow(ctx, `SELECT `+tariffCols+` FROM rating.tariffs WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return err
		}
		oldSet = cur.RateSet
		var set int64
		if err := tx.QueryRow(ctx, `SELECT nextval('rating.rate_sets')`).Scan(&set); err != nil {
			return err
		}
		table := rateTable(set)
		if _, err := tx.Exec(ctx, `CREATE TABLE `+table+` (
			prefix text NOT NULL, effective_from timestamptz NOT NULL, destination text NOT NULL,
			rate_per_minute_micros bigint NOT NULL, connection_fee_micros bigint NOT NULL,
			min_seconds integer NOT NULL, increment_seconds integer NOT NULL)`); err != nil {
			return fmt.Errorf("create rate table: %w", err)
		}
		cols := []string{"prefix", "effective_from", "destination", "rate_per_minute_micros",
			"connection_fee_micros", "min_seconds", "increment_seconds"}
		i := 0
		n, err := tx.CopyFrom(ctx, pgx.Identifier{"rating", fmt.Sprintf("rates_%d", set)}, cols, pgx.CopyFromFunc(func() ([]any, error) {
			if i == len(rates) {
				return nil, nil
			}
			r := &rates[i]
			i++
			var from any = pgInfinity
			if !r.EffectiveFrom.IsZero() {
				from = r.EffectiveFrom
			}
			return []any{r.Prefix, from, r.Destination, r.RatePerMinuteMicros, r.ConnectionFeeMicros, r.MinSeconds, r.IncrementSeconds}, nil
		}))
		if err != nil {
			return fmt.Errorf("copy rates: %w", err)
		}
		// Built once over the full table: far cheaper than maintained row by row.
		if _, err := tx.Exec(ctx, `CREATE UNIQUE INDEX ON `+table+` (prefix, effective_from DESC)`); err != nil {
			return fmt.Errorf("index rates: %w", err)
		}
		if mode == ImportMerge && oldSet != 0 {
			tag, err := tx.Exec(ctx, `INSERT INTO `+table+` SELECT * FROM `+rateTable(oldSet)+` ON CONFLICT DO NOTHING`)
			if err != nil {
				return fmt.Errorf("merge rates: %w", err)
			}
			n += tag.RowsAffected()
		}
		t, err = scanTariff(tx.QueryRow(ctx, `UPDATE rating.tariffs SET version = version + 1, rate_count = $2, rate_set = $3,
			updated_at = now() WHERE id = $1 RETURNING `+tariffCols, id, n, set))
		return err
	})
	if err != nil {
		return nil, err
	}
	if oldSet != 0 {
		// Readers of the old set (a replica loading it) finish first: DROP
		// waits for their locks.
		if _, err := s.DB.Exec(ctx, `DROP TABLE IF EXISTS `+rateTable(oldSet)); err != nil {
			return t, fmt.Errorf("drop replaced rates (tariff %s imported): %w", id, err)
		}
	}
	return t, nil
}

// RateRow is a stored rate.
type RateRow = tariffcsv.Rate

// ListRates lists a tariff's rates in (prefix, effective_from desc) order
// after the cursor (prefix, effective_from), optionally under a prefix.
func (s *Store) ListRates(ctx context.Context, id, under, afterPrefix string, afterFrom time.Time, limit int) ([]RateRow, error) {
	if !uuidLike(id) {
		return nil, ErrTariffNotFound
	}
	t, err := s.GetTariff(ctx, id)
	if err != nil {
		return nil, err
	}
	if t.RateSet == 0 {
		return nil, nil
	}
	var after any = pgInfinity
	if !afterFrom.IsZero() {
		after = afterFrom
	}
	q := `SELECT prefix, effective_from, destination, rate_per_minute_micros, connection_fee_micros, min_seconds, increment_seconds
		FROM ` + rateTable(t.RateSet) + ` WHERE prefix LIKE $1 || '%'`
	args := []any{under}
	if afterPrefix != "" {
		q += ` AND (prefix > $2 OR (prefix = $2 AND effective_from < $3))`
		args = append(args, afterPrefix, after)
	}
	q += fmt.Sprintf(` ORDER BY prefix, effective_from DESC LIMIT %d`, limit)
	return queryRates(ctx, s.DB, q, args, nil)
}

// ExportRates calls fn with every rate of a tariff, in prefix order,
// streaming (the rows are never all in memory).
func (s *Store) ExportRates(ctx context.Context, id string, fn func(RateRow) error) error {
	// One snapshot, and the set table locked against an import's DROP
	// until the whole file is out.
	return pgx.BeginTxFunc(ctx, s.DB, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		t, err := scanTariff(tx.QueryRow(ctx, `SELECT `+tariffCols+` FROM rating.tariffs WHERE id = $1`, id))
		if err != nil || t.RateSet == 0 {
			return err
		}
		_, err = queryRates(ctx, tx, `SELECT prefix, effective_from, destination, rate_per_minute_micros, connection_fee_micros,
			min_seconds, increment_seconds FROM `+rateTable(t.RateSet)+` ORDER BY prefix, effective_from DESC`, nil, fn)
		return err
	})
}

func queryRates(ctx context.Context, db querier, q string, args []any, fn func(RateRow) error) ([]RateRow, error) {
	rows, err := db.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []RateRow
	for rows.Next() {
		var r RateRow
		var from pgtimeInf
		if err := rows.Scan(&r.Prefix, &from, &r.Destination, &r.RatePerMinuteMicros, &r.ConnectionFeeMicros, &r.MinSeconds, &r.IncrementSeconds); err != nil {
			return nil, err
		}
		r.EffectiveFrom = from.t
		if fn != nil {
			if err := fn(r); err != nil {
				return nil, err
			}
			continue
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// BillingRow is an account's billing as stored. An account without a row
// is postpaid, with no tariff and a zero balance.
type BillingRow struct {
	AccountID       string
	TariffID        string
	Campaigns       map[string]string
	Mode            string // PREPAID or POSTPAID
	Currency        string
	BalanceMicros   int64
	ReservedMicros  int64
	UpdatedAt       time.Time
	CampaignsLoaded bool
}

// Prepaid reports whether the balance gates calls.
func (b *BillingRow) Prepaid() bool { return b.Mode == ModePrepaid }

// Billing modes as stored.
const (
	ModePrepaid  = "PREPAID"
	ModePostpaid = "POSTPAID"
)

// GetBilling returns an account's billing with its campaign tariffs.
func (s *Store) GetBilling(ctx context.Context, accountID string) (*BillingRow, error) {
	return getBilling(ctx, s.DB, accountID, false)
}

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func getBilling(ctx context.Context, q querier, accountID string, lock bool) (*BillingRow, error) {
	b := &BillingRow{AccountID: accountID, Mode: ModePostpaid, Campaigns: map[string]string{}}
	sql := `SELECT COALESCE(tariff_id, ''), mode, currency, balance_micros, reserved_micros, updated_at FROM rating.billing_accounts WHERE account_id = $1`
	if lock {
		sql += ` FOR UPDATE`
	}
	err := q.QueryRow(ctx, sql, accountID).Scan(&b.TariffID, &b.Mode, &b.Currency, &b.BalanceMicros, &b.ReservedMicros, &b.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return b, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read billing of %s: %w", accountID, err)
	}
	rows, err := q.Query(ctx, `SELECT campaign_id, tariff_id FROM rating.campaign_tariffs WHERE account_id = $1`, accountID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var c, t string
		if err := rows.Scan(&c, &t); err != nil {
			return nil, err
		}
		b.Campaigns[c] = t
	}
	b.CampaignsLoaded = true
	return b, rows.Err()
}

// BillingChange is what UpdateBilling changes; nil fields are kept.
type BillingChange struct {
	TariffID  *string           // "" removes the tariff
	Campaigns map[string]string // nil: kept; a campaign mapped to "" is removed
	Mode      *string
}

// UpdateBilling changes an account's billing. Every tariff it names must
// exist and share the account's currency (the first tariff sets it).
func (s *Store) UpdateBilling(ctx context.Context, accountID string, ch BillingChange) (*BillingRow, error) {
	var out *BillingRow
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO rating.billing_accounts (account_id) VALUES ($1) ON CONFLICT DO NOTHING`, accountID); err != nil {
			return err
		}
		b, err := getBilling(ctx, tx, accountID, true)
		if err != nil {
			return err
		}
		currency := b.Currency
		check := func(tariffID string) error {
			var cur string
			err := tx.QueryRow(ctx, `SELECT currency FROM rating.tariffs WHERE id = $1`, tariffID).Scan(&cur)
			if errors.Is(err, pgx.ErrNoRows) || (err == nil && !uuidLike(tariffID)) {
				return errorf(ErrTariffNotFound, "tariff %s not found", tariffID)
			}
			if err != nil {
				return err
			}
			if currency == "" {
				currency = cur
			}
			if cur != currency {
				return errorf(ErrCurrencyMismatch, "tariff %s is in %s but the account's balance is in %s", tariffID, cur, currency)
			}
			return nil
		}
		if ch.TariffID != nil {
			b.TariffID = *ch.TariffID
		}
		if b.TariffID != "" && !uuidLike(b.TariffID) {
			return errorf(ErrTariffNotFound, "tariff %s not found", b.TariffID)
		}
		if b.TariffID != "" {
			if err := check(b.TariffID); err != nil {
				return err
			}
		}
		if ch.Mode != nil {
			b.Mode = *ch.Mode
		}
		if _, err := tx.Exec(ctx, `UPDATE rating.billing_accounts SET tariff_id = NULLIF($2, ''), mode = $3, currency = $4, updated_at = now()
			WHERE account_id = $1`, accountID, b.TariffID, b.Mode, currency); err != nil {
			return err
		}
		for c, t := range ch.Campaigns {
			if t == "" {
				if _, err := tx.Exec(ctx, `DELETE FROM rating.campaign_tariffs WHERE account_id = $1 AND campaign_id = $2`, accountID, c); err != nil {
					return err
				}
				continue
			}
			if err := check(t); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO rating.campaign_tariffs (account_id, campaign_id, tariff_id) VALUES ($1, $2, $3)
				ON CONFLICT (account_id, campaign_id) DO UPDATE SET tariff_id = EXCLUDED.tariff_id`, accountID, c, t); err != nil {
				return err
			}
		}
		out, err = getBilling(ctx, tx, accountID, false)
		return err
	})
	return out, err
}

// Transaction is a ledger entry.
type Transaction struct {
	ID                 int64
	AccountID          string
	Kind               string
	AmountMicros       int64
	BalanceAfterMicros int64
	Reference          string
	Description        string
	CallID, Leg        string
	BilledSeconds      int32
	CreatedAt          time.Time
}

const ledgerCols = "id, account_id, kind, amount_micros, balance_after_micros, reference, description, call_id, leg, billed_seconds, created_at"

func scanTransaction(row pgx.Row) (*Transaction, error) {
	var t Transaction
	err := row.Scan(&t.ID, &t.AccountID, &t.Kind, &t.AmountMicros, &t.BalanceAfterMicros, &t.Reference, &t.Description,
		&t.CallID, &t.Leg, &t.BilledSeconds, &t.CreatedAt)
	return &t, err
}

// TopUp adds amount (negative: takes) to a balance, once per reference.
func (s *Store) TopUp(ctx context.Context, accountID string, amount int64, reference, description string) (*BillingRow, *Transaction, error) {
	var (
		b  *BillingRow
		tr *Transaction
	)
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO rating.billing_accounts (account_id) VALUES ($1) ON CONFLICT DO NOTHING`, accountID); err != nil {
			return err
		}
		var err error
		if b, err = getBilling(ctx, tx, accountID, true); err != nil {
			return err
		}
		existing, err := scanTransaction(tx.QueryRow(ctx, `SELECT `+ledgerCols+` FROM rating.ledger WHERE account_id = $1 AND reference = $2`, accountID, reference))
		if err == nil {
			tr = existing
			return nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if amount > 0 && b.BalanceMicros > math.MaxInt64-amount || amount < 0 && b.BalanceMicros < math.MinInt64-amount {
			return errorf(ErrInvalid, "the balance would overflow")
		}
		b.BalanceMicros += amount
		if _, err := tx.Exec(ctx, `UPDATE rating.billing_accounts SET balance_micros = $2, updated_at = now() WHERE account_id = $1`, accountID, b.BalanceMicros); err != nil {
			return err
		}
		tr, err = scanTransaction(tx.QueryRow(ctx, `INSERT INTO rating.ledger (account_id, kind, amount_micros, balance_after_micros, reference, description)
			VALUES ($1, 'TOP_UP', $2, $3, $4, $5) RETURNING `+ledgerCols, accountID, amount, b.BalanceMicros, reference, description))
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	b, err = s.GetBilling(ctx, accountID)
	return b, tr, err
}

// ListTransactions lists an account's ledger newest first, before an id.
func (s *Store) ListTransactions(ctx context.Context, accountID string, beforeID int64, limit int) ([]*Transaction, error) {
	if beforeID <= 0 {
		beforeID = math.MaxInt64
	}
	rows, err := s.DB.Query(ctx, `SELECT `+ledgerCols+` FROM rating.ledger WHERE account_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3`,
		accountID, beforeID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Transaction
	for rows.Next() {
		t, err := scanTransaction(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// Reservation is money held for an answered leg.
type Reservation struct {
	AmountMicros   int64
	GrantedSeconds int32
}

// ReserveRequest is one answered leg asking for its time.
type ReserveRequest struct {
	AccountID, CallID, Leg string
	Rate                   billing.Rate
	MaxSeconds             int32
}

// ReserveBatch holds, for each answered leg, the cost of the longest time
// up to MaxSeconds that its account's available balance pays for, in
// request order, and returns what was granted. The accounts' rows are
// locked for the transaction, so concurrent reservations take turns and
// together never exceed a balance. Postpaid accounts are granted
// MaxSeconds and hold nothing. A leg reserved before gets its reservation
// back; a leg already charged gets nothing. Many legs per transaction is
// what lets one busy account answer hundreds of legs a second: its row
// lock, held across a commit, is the bottleneck.
func (s *Store) ReserveBatch(ctx context.Context, reqs []ReserveRequest) ([]Reservation, error) {
	out := make([]Reservation, len(reqs))
	var accounts []string
	seen := map[string]bool{}
	callIDs, legs, refs, refAccounts := make([]string, len(reqs)), make([]string, len(reqs)), make([]string, len(reqs)), make([]string, len(reqs))
	for i, r := range reqs {
		if !seen[r.AccountID] {
			seen[r.AccountID] = true
			accounts = append(accounts, r.AccountID)
		}
		callIDs[i], legs[i], refs[i], refAccounts[i] = r.CallID, r.Leg, chargeRef(r.CallID, r.Leg), r.AccountID
	}
	slices.Sort(accounts) // one locking order: no deadlock between batches
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`SELECT account_id, mode, balance_micros - reserved_micros FROM rating.billing_accounts
			WHERE account_id = ANY($1) ORDER BY account_id FOR UPDATE`, accounts)
		b.Queue(`SELECT r.call_id, r.leg, r.amount_micros, r.granted_seconds FROM rating.reservations r
			JOIN unnest($1::text[], $2::text[]) AS v(call_id, leg) ON r.call_id = v.call_id AND r.leg = v.leg`, callIDs, legs)
		b.Queue(`SELECT l.account_id, l.reference FROM rating.ledger l JOIN unnest($1::text[], $2::text[]) AS v(account_id, reference)
			ON l.account_id = v.account_id AND l.reference = v.reference`, refAccounts, refs)
		br := tx.SendBatch(ctx, b)
		defer br.Close()
		prepaid, available := map[string]bool{}, map[string]int64{}
		rows, err := br.Query()
		if err != nil {
			return err
		}
		for rows.Next() {
			var a, mode string
			var avail int64
			if err := rows.Scan(&a, &mode, &avail); err != nil {
				rows.Close()
				return err
			}
			prepaid[a], available[a] = mode == ModePrepaid, avail
		}
		rows.Close()
		existing := map[string]Reservation{}
		if rows, err = br.Query(); err != nil {
			return err
		}
		for rows.Next() {
			var c, l string
			var r Reservation
			if err := rows.Scan(&c, &l, &r.AmountMicros, &r.GrantedSeconds); err != nil {
				rows.Close()
				return err
			}
			existing[chargeRef(c, l)] = r
		}
		rows.Close()
		charged := map[string]bool{}
		if rows, err = br.Query(); err != nil {
			return err
		}
		for rows.Next() {
			var a, ref string
			if err := rows.Scan(&a, &ref); err != nil {
				rows.Close()
				return err
			}
			charged[a+"\x00"+ref] = true
		}
		rows.Close()
		if err := br.Close(); err != nil {
			return err
		}
		var (
			nCall, nLeg, nAcct []string
			nAmount            []int64
			nGranted           []int32
			nExpires           []time.Time
		)
		held := map[string]int64{}
		now := time.Now()
		for i, q := range reqs {
			ref := refs[i]
			switch r, ok := existing[ref]; {
			case !prepaid[q.AccountID]:
				out[i] = Reservation{GrantedSeconds: q.MaxSeconds}
				continue
			case ok:
				out[i] = r // reserved already (a retry)
				continue
			case charged[q.AccountID+"\x00"+ref]:
				continue // the leg ended and was charged before this (late) reservation
			}
			granted := billing.MaxSeconds(q.Rate, available[q.AccountID], int64(q.MaxSeconds))
			r := Reservation{GrantedSeconds: int32(granted), AmountMicros: billing.Cost(q.Rate, granted)}
			out[i] = r
			if granted == 0 {
				continue
			}
			available[q.AccountID] -= r.AmountMicros
			held[q.AccountID] += r.AmountMicros
			existing[ref] = r // the same leg twice in one batch
			nCall, nLeg, nAcct = append(nCall, q.CallID), append(nLeg, q.Leg), append(nAcct, q.AccountID)
			nAmount, nGranted = append(nAmount, r.AmountMicros), append(nGranted, r.GrantedSeconds)
			nExpires = append(nExpires, now.Add(time.Duration(granted)*time.Second+reservationGrace))
		}
		if len(nCall) == 0 {
			return nil
		}
		hAcct, hAmount := make([]string, 0, len(held)), make([]int64, 0, len(held))
		for _, a := range accounts {
			if m := held[a]; m != 0 {
				hAcct, hAmount = append(hAcct, a), append(hAmount, m)
			}
		}
		b = &pgx.Batch{}
		b.Queue(`INSERT INTO rating.reservations (call_id, leg, account_id, amount_micros, granted_seconds, expires_at)
			SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::int[], $6::timestamptz[])`,
			nCall, nLeg, nAcct, nAmount, nGranted, nExpires)
		b.Queue(`UPDATE rating.billing_accounts b SET reserved_micros = b.reserved_micros + v.held, updated_at = now()
			FROM unnest($1::text[], $2::bigint[]) AS v(account_id, held) WHERE b.account_id = v.account_id`, hAcct, hAmount)
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// reservationGrace is how long after its granted time a reservation is
// kept waiting for its settlement before the sweeper releases it (the leg
// is charged all the same when its hangup event comes).
const reservationGrace = 10 * time.Minute

func chargeRef(callID, leg string) string { return callID + "/" + leg }

// Charge is the settlement of one answered leg.
type Charge struct {
	AccountID, CallID, Leg string
	Rate                   billing.Rate
	Seconds                int64 // billsec of the leg
	Description            string
}

// SettleBatch charges answered legs and releases their reservations, in
// one transaction: each leg once (a leg already in the ledger, or twice in
// the batch, changes nothing). done[i] reports whether charges[i] was
// applied by this call. Settling many legs per transaction is what lets
// one account's settlements keep up with hundreds of calls a second: they
// all serialize on the account's row.
func (s *Store) SettleBatch(ctx context.Context, charges []Charge) (done []bool, err error) {
	done = make([]bool, len(charges))
	accounts := make([]string, 0, len(charges))
	seen := map[string]bool{}
	callIDs, legs, refs, refAccounts := make([]string, len(charges)), make([]string, len(charges)), make([]string, len(charges)), make([]string, len(charges))
	for i, c := range charges {
		if !seen[c.AccountID] {
			seen[c.AccountID] = true
			accounts = append(accounts, c.AccountID)
		}
		callIDs[i], legs[i], refs[i], refAccounts[i] = c.CallID, c.Leg, chargeRef(c.CallID, c.Leg), c.AccountID
	}
	slices.Sort(accounts) // lock rows in one order: no deadlock between batches
	err = pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		// Round trip 1: make, lock and read the accounts; find legs
		// already charged; release the holds.
		b := &pgx.Batch{}
		b.Queue(`INSERT INTO rating.billing_accounts (account_id) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING`, accounts)
		b.Queue(`SELECT account_id, balance_micros FROM rating.billing_accounts WHERE account_id = ANY($1) ORDER BY account_id FOR UPDATE`, accounts)
		b.Queue(`SELECT l.account_id, l.reference FROM rating.ledger l JOIN unnest($1::text[], $2::text[]) AS v(account_id, reference)
			ON l.account_id = v.account_id AND l.reference = v.reference`, refAccounts, refs)
		b.Queue(`DELETE FROM rating.reservations r USING unnest($1::text[], $2::text[]) AS v(call_id, leg)
			WHERE r.call_id = v.call_id AND r.leg = v.leg RETURNING r.account_id, r.amount_micros`, callIDs, legs)
		br := tx.SendBatch(ctx, b)
		if _, err := br.Exec(); err != nil {
			br.Close()
			return err
		}
		balance := map[string]int64{}
		rows, err := br.Query()
		if err != nil {
			br.Close()
			return err
		}
		for rows.Next() {
			var a string
			var v int64
			if err := rows.Scan(&a, &v); err != nil {
				rows.Close()
				br.Close()
				return err
			}
			balance[a] = v
		}
		rows.Close()
		charged := map[string]bool{}
		if rows, err = br.Query(); err != nil {
			br.Close()
			return err
		}
		for rows.Next() {
			var a, r string
			if err := rows.Scan(&a, &r); err != nil {
				rows.Close()
				br.Close()
				return err
			}
			charged[a+"\x00"+r] = true
		}
		rows.Close()
		held := map[string]int64{}
		if rows, err = br.Query(); err != nil {
			br.Close()
			return err
		}
		for rows.Next() {
			var a string
			var v int64
			if err := rows.Scan(&a, &v); err != nil {
				rows.Close()
				br.Close()
				return err
			}
			held[a] += v
		}
		rows.Close()
		if err := br.Close(); err != nil {
			return err
		}
		// Round trip 2: the ledger entries, in batch order, and the balances.
		var (
			lAccount, lRef, lDesc, lCall, lLeg []string
			lAmount, lAfter                    []int64
			lBilled                            []int32
		)
		for i, c := range charges {
			key := c.AccountID + "\x00" + refs[i]
			if charged[key] {
				continue
			}
			charged[key] = true
			cost := billing.Cost(c.Rate, c.Seconds)
			balance[c.AccountID] -= cost
			lAccount, lRef, lDesc = append(lAccount, c.AccountID), append(lRef, refs[i]), append(lDesc, c.Description)
			lCall, lLeg = append(lCall, c.CallID), append(lLeg, c.Leg)
			lAmount, lAfter = append(lAmount, -cost), append(lAfter, balance[c.AccountID])
			lBilled = append(lBilled, int32(billing.BilledSeconds(c.Rate, c.Seconds)))
			done[i] = true
		}
		newBalance := make([]int64, len(accounts))
		heldBy := make([]int64, len(accounts))
		for i, a := range accounts {
			newBalance[i], heldBy[i] = balance[a], held[a]
		}
		b = &pgx.Batch{}
		if len(lAccount) > 0 {
			b.Queue(`INSERT INTO rating.ledger (account_id, kind, amount_micros, balance_after_micros, reference, description, call_id, leg, billed_seconds)
				SELECT a, 'CHARGE', amt, after, ref, d, c, l, bs FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::int[])
				AS v(a, amt, after, ref, d, c, l, bs)`, lAccount, lAmount, lAfter, lRef, lDesc, lCall, lLeg, lBilled)
		}
		b.Queue(`UPDATE rating.billing_accounts b SET balance_micros = v.balance, reserved_micros = GREATEST(b.reserved_micros - v.held, 0),
			updated_at = now() FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS v(account_id, balance, held) WHERE b.account_id = v.account_id`,
			accounts, newBalance, heldBy)
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return nil, err
	}
	return done, nil
}

// ReleaseExpired releases reservations past their expiry (their legs'
// hangups never came, or came while the charge failed); returns how many.
func (s *Store) ReleaseExpired(ctx context.Context, now time.Time) (int, error) {
	n := 0
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `DELETE FROM rating.reservations WHERE expires_at < $1 RETURNING account_id, amount_micros`, now)
		if err != nil {
			return err
		}
		held := map[string]int64{}
		for rows.Next() {
			var a string
			var m int64
			if err := rows.Scan(&a, &m); err != nil {
				rows.Close()
				return err
			}
			held[a] += m
			n++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for a, m := range held {
			if _, err := tx.Exec(ctx, `UPDATE rating.billing_accounts SET reserved_micros = GREATEST(reserved_micros - $2, 0) WHERE account_id = $1`, a, m); err != nil {
				return err
			}
		}
		return nil
	})
	return n, err
}

// Blocked is a blocked prefix.
type Blocked struct {
	AccountID, Prefix, Reason string
	CreatedAt                 time.Time
}

// CreateBlocked blocks a prefix (again: the reason is updated).
func (s *Store) CreateBlocked(ctx context.Context, b Blocked) (*Blocked, error) {
	out := b
	err := s.DB.QueryRow(ctx, `INSERT INTO rating.blocked_prefixes (account_id, prefix, reason) VALUES ($1, $2, $3)
		ON CONFLICT (account_id, prefix) DO UPDATE SET reason = EXCLUDED.reason RETURNING created_at`,
		b.AccountID, b.Prefix, b.Reason).Scan(&out.CreatedAt)
	return &out, err
}

// ListBlocked lists an account's blocked prefixes ("" the installation's);
// all of them with all set.
func (s *Store) ListBlocked(ctx context.Context, accountID string, all bool) ([]Blocked, error) {
	rows, err := s.DB.Query(ctx, `SELECT account_id, prefix, reason, created_at FROM rating.blocked_prefixes
		WHERE $2 OR account_id = $1 ORDER BY account_id, prefix`, accountID, all)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Blocked
	for rows.Next() {
		var b Blocked
		if err := rows.Scan(&b.AccountID, &b.Prefix, &b.Reason, &b.CreatedAt); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// DeleteBlocked unblocks a prefix.
func (s *Store) DeleteBlocked(ctx context.Context, accountID, prefix string) error {
	tag, err := s.DB.Exec(ctx, `DELETE FROM rating.blocked_prefixes WHERE account_id = $1 AND prefix = $2`, accountID, prefix)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return errorf(ErrNotFound, "prefix %s is not blocked", prefix)
	}
	return nil
}

// uuidLike reports whether s has the shape of our ids (so a malformed id
// is "not found" rather than a query error).
func uuidLike(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, r := range s {
		switch i {
		case 8, 13, 18, 23:
			if r != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdefABCDEF", r) {
				return false
			}
		}
	}
	return true
}
