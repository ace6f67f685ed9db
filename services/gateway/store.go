package gateway

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ringback/ringback/services/internal/logging"
	"github.com/ringback/ringback/services/internal/store"
)

// Schema is the PostgreSQL schema the gateway owns.
const Schema = "gateway"

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the gateway's embedded migrations, ready for
// store.Migrate(ctx, pool, Schema, Migrations()).
func Migrations() fs.FS {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic(err) // the directory is embedded at build time
	}
	return sub
}

// Migrate applies the gateway's migrations to pool.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	return store.Migrate(ctx, pool, Schema, Migrations())
}

// Account statuses as stored.
const (
	StatusActive    = "ACTIVE"
	StatusSuspended = "SUSPENDED"
)

// Limits.
const (
	maxAllowlist       = 100
	maxActiveKeys      = 100
	maxKeyNameLen      = 128
	authCacheMaxSize   = 10000
	lastUsedResolution = time.Minute
)

// Account is a row of gateway.accounts.
type Account struct {
	ID          string
	Name        string
	Status      string // StatusActive or StatusSuspended
	IPAllowlist []netip.Prefix
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// APIKey is a row of gateway.api_keys, without its hash.
type APIKey struct {
	ID         string
	AccountID  string
	Name       string
	Prefix     string
	CreatedAt  time.Time
	LastUsedAt time.Time // zero: never used
	RevokedAt  time.Time // zero: valid
}

// AccountUpdate names the fields UpdateAccount changes (nil: unchanged).
type AccountUpdate struct {
	Name        *string
	Status      *string
	IPAllowlist *[]netip.Prefix
}

// StoreOptions tunes NewAccountStore.
type StoreOptions struct {
	// AuthCacheTTL is how long Authenticate reuses a lookup (0: DefaultAuthCacheTTL;
	// negative: no cache).
	AuthCacheTTL time.Duration
	// Now is the clock (tests); nil: time.Now.
	Now func() time.Time
}

// AccountStore keeps accounts and API keys in PostgreSQL and authenticates
// API keys, with a short in-memory cache of lookups. Safe for concurrent
// use. Close it to wait for pending last-used writes.
type AccountStore struct {
	db  *pgxpool.Pool
	log *slog.Logger
	ttl time.Duration
	now func() time.Time

	mu    sync.Mutex
	cache map[[32]byte]cacheEntry

	touchMu sync.Mutex
	touched map[string]time.Time // key id -> when last_used_at was last written
	closed  bool
	wg      sync.WaitGroup
}

type cacheEntry struct {
	p       *Principal // nil: no such (valid) key
	expires time.Time
}

// NewAccountStore returns a store on db, whose schema Migrate has created.
func NewAccountStore(db *pgxpool.Pool, log *slog.Logger, opts StoreOptions) *AccountStore {
	if opts.AuthCacheTTL == 0 {
		opts.AuthCacheTTL = DefaultAuthCacheTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &AccountStore{db: db, log: log, ttl: opts.AuthCacheTTL, now: opts.Now,
		cache: map[[32]byte]cacheEntry{}, touched: map[string]time.Time{}}
}

// Close waits for pending last-used writes; later authentications no longer
// record use. The pool is the caller's to close.
func (s *AccountStore) Close() {
	s.touchMu.Lock()
	s.closed = true
	s.touchMu.Unlock()
	s.wg.Wait()
}

var (
	accountNameRe = regexp.MustCompile(`^[A-Za-z0-9._-]{3,64}$`)
	uuidRe        = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
)

// ValidAccountName reports whether name can be an account name (the legacy
// clickToDial username): 3-64 letters, digits, '.', '_' or '-'.
func ValidAccountName(name string) bool { return accountNameRe.MatchString(name) }

func checkAccountName(name string) error {
	if !ValidAccountName(name) {
		return invalidf("name %q: use 3-64 letters, digits, '.', '_' or '-'", name)
	}
	return nil
}

func checkAllowlist(l []netip.Prefix) error {
	if len(l) > maxAllowlist {
		return invalidf("ip_allowlist: at most %d entries", maxAllowlist)
	}
	return nil
}

const accountCols = "id::text, name, status, ip_allowlist, created_at, updated_at"

func scanAccount(row pgx.Row) (*Account, error) {
	var a Account
	if err := row.Scan(&a.ID, &a.Name, &a.Status, &a.IPAllowlist, &a.CreatedAt, &a.UpdatedAt); err != nil {
		return nil, err
	}
	return &a, nil
}

func isUniqueViolation(err error, constraint string) bool {
	var pg *pgconn.PgError
	return errors.As(err, &pg) && pg.Code == "23505" && (constraint == "" || pg.ConstraintName == constraint)
}

// CreateAccount adds an account. status "" is StatusActive.
func (s *AccountStore) CreateAccount(ctx context.Context, name, status string, allowlist []netip.Prefix) (*Account, error) {
	if err := checkAccountName(name); err != nil {
		return nil, err
	}
	if status == "" {
		status = StatusActive
	}
	if status != StatusActive && status != StatusSuspended {
		return nil, invalidf("status %q: want ACTIVE or SUSPENDED", status)
	}
	if err := checkAllowlist(allowlist); err != nil {
		return nil, err
	}
	if allowlist == nil {
		allowlist = []netip.Prefix{}
	}
	a, err := scanAccount(s.db.QueryRow(ctx, `INSERT INTO gateway.accounts (name, status, ip_allowlist)
		VALUES ($1, $2, $3) RETURNING `+accountCols, name, status, allowlist))
	if isUniqueViolation(err, "accounts_name_key") {
		return nil, errorf(ErrNameTaken, "an account named %q already exists", name)
	}
	if err != nil {
		return nil, fmt.Errorf("create account %s: %w", name, err)
	}
	return a, nil
}

// GetAccount returns one account (ErrAccountNotFound if none).
func (s *AccountStore) GetAccount(ctx context.Context, id string) (*Account, error) {
	if !uuidRe.MatchString(id) {
		return nil, ErrAccountNotFound
	}
	a, err := scanAccount(s.db.QueryRow(ctx, `SELECT `+accountCols+` FROM gateway.accounts WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrAccountNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get account %s: %w", id, err)
	}
	return a, nil
}

// GetAccountByName returns the account named name, in any case.
func (s *AccountStore) GetAccountByName(ctx context.Context, name string) (*Account, error) {
	a, err := scanAccount(s.db.QueryRow(ctx, `SELECT `+accountCols+` FROM gateway.accounts WHERE lower(name) = lower($1)`, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrAccountNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get account %s: %w", name, err)
	}
	return a, nil
}

// ListAccounts returns up to limit accounts ordered by name (case-folded),
// after the name after (exclusive; "" from the start).
func (s *AccountStore) ListAccounts(ctx context.Context, after string, limit int) ([]*Account, error) {
	rows, err := s.db.Query(ctx, `SELECT `+accountCols+` FROM gateway.accounts
		WHERE lower(name) > lower($1) ORDER BY lower(name) LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*Account, error) { return scanAccount(r) })
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	return out, nil
}

// UpdateAccount changes the fields set in u and returns the account.
func (s *AccountStore) UpdateAccount(ctx context.Context, id string, u AccountUpdate) (*Account, error) {
	if !uuidRe.MatchString(id) {
		return nil, ErrAccountNotFound
	}
	sets := []string{"updated_at = now()"}
	args := []any{id}
	if u.Name != nil {
		if err := checkAccountName(*u.Name); err != nil {
			return nil, err
		}
		args = append(args, *u.Name)
		sets = append(sets, fmt.Sprintf("name = $%d", len(args)))
	}
	if u.Status != nil {
		if *u.Status != StatusActive && *u.Status != StatusSuspended {
			return nil, invalidf("status %q: want ACTIVE or SUSPENDED", *u.Status)
		}
		args = append(args, *u.Status)
		sets = append(sets, fmt.Sprintf("status = $%d", len(args)))
	}
	if u.IPAllowlist != nil {
		l := *u.IPAllowlist
		if err := checkAllowlist(l); err != nil {
			return nil, err
		}
		if l == nil {
			l = []netip.Prefix{}
		}
		args = append(args, l)
		sets = append(sets, fmt.Sprintf("ip_allowlist = $%d", len(args)))
	}
	a, err := scanAccount(s.db.QueryRow(ctx, `UPDATE gateway.accounts SET `+strings.Join(sets, ", ")+
		` WHERE id = $1 RETURNING `+accountCols, args...))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, ErrAccountNotFound
	case isUniqueViolation(err, "accounts_name_key"):
		return nil, errorf(ErrNameTaken, "an account named %q already exists", *u.Name)
	case err != nil:
		return nil, fmt.Errorf("update account %s: %w", id, err)
	}
	s.forget(func(p *Principal) bool { return p.AccountID == id })
	return a, nil
}

const keyCols = "id::text, account_id::text, name, prefix, created_at, last_used_at, revoked_at"

func scanKey(row pgx.Row) (*APIKey, error) {
	var k APIKey
	var used, revoked *time.Time
	if err := row.Scan(&k.ID, &k.AccountID, &k.Name, &k.Prefix, &k.CreatedAt, &used, &revoked); err != nil {
		return nil, err
	}
	if used != nil {
		k.LastUsedAt = *used
	}
	if revoked != nil {
		k.RevokedAt = *revoked
	}
	return &k, nil
}

func checkKeyName(name string) error {
	if len(name) > maxKeyNameLen || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return invalidf("name: at most %d printable characters", maxKeyNameLen)
	}
	return nil
}

// CreateKey makes a new API key for an account and returns it with its
// secret, which is not stored and cannot be shown again.
func (s *AccountStore) CreateKey(ctx context.Context, accountID, name string) (*APIKey, string, error) {
	if err := checkKeyName(name); err != nil {
		return nil, "", err
	}
	if !uuidRe.MatchString(accountID) {
		return nil, "", ErrAccountNotFound
	}
	secret, prefix := newKey()
	k, err := s.insertKey(ctx, accountID, name, secret, prefix)
	if err != nil {
		return nil, "", err
	}
	return k, secret, nil
}

func (s *AccountStore) insertKey(ctx context.Context, accountID, name, secret, prefix string) (*APIKey, error) {
	hash := hashKey(secret)
	var k *APIKey
	err := pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		// Lock the account row: concurrent creations count one another.
		var active int
		err := tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM gateway.api_keys WHERE account_id = a.id AND revoked_at IS NULL)
			FROM gateway.accounts a WHERE a.id = $1 FOR UPDATE`, accountID).Scan(&active)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrAccountNotFound
		}
		if err != nil {
			return err
		}
		if active >= maxActiveKeys {
			return ErrTooManyAPIKeys
		}
		k, err = scanKey(tx.QueryRow(ctx, `INSERT INTO gateway.api_keys (account_id, name, prefix, secret_hash)
			VALUES ($1, $2, $3, $4) RETURNING `+keyCols, accountID, name, prefix, hash[:]))
		return err
	})
	if _, ok := asError(err); ok {
		return nil, err
	}
	if isUniqueViolation(err, "") {
		return nil, ErrKeyTaken // 2^-200 for generated keys; EnsureAccount checks first
	}
	if err != nil {
		return nil, fmt.Errorf("create API key for account %s: %w", accountID, err)
	}
	s.forgetHash(hash)
	return k, nil
}

// KeyCursor is where a page of keys starts: after the key created at
// CreatedAt with ID (keys are listed newest first).
type KeyCursor struct {
	CreatedAt time.Time
	ID        string
}

// ListKeys returns up to limit of an account's keys, newest first, after
// the cursor (nil: from the newest). ErrAccountNotFound if the account
// does not exist.
func (s *AccountStore) ListKeys(ctx context.Context, accountID string, after *KeyCursor, limit int) ([]*APIKey, error) {
	if _, err := s.GetAccount(ctx, accountID); err != nil {
		return nil, err
	}
	var rows pgx.Rows
	var err error
	if after == nil {
		rows, err = s.db.Query(ctx, `SELECT `+keyCols+` FROM gateway.api_keys WHERE account_id = $1
			ORDER BY created_at DESC, id DESC LIMIT $2`, accountID, limit)
	} else {
		rows, err = s.db.Query(ctx, `SELECT `+keyCols+` FROM gateway.api_keys WHERE account_id = $1
			AND (created_at, id) < ($2, $3::uuid) ORDER BY created_at DESC, id DESC LIMIT $4`,
			accountID, after.CreatedAt, after.ID, limit)
	}
	if err != nil {
		return nil, fmt.Errorf("list API keys of account %s: %w", accountID, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*APIKey, error) { return scanKey(r) })
	if err != nil {
		return nil, fmt.Errorf("list API keys of account %s: %w", accountID, err)
	}
	return out, nil
}

// RevokeKey revokes one of an account's keys; revoking a revoked key
// returns it unchanged. The key stops authenticating at once on this
// replica (after AuthCacheTTL on others).
func (s *AccountStore) RevokeKey(ctx context.Context, accountID, keyID string) (*APIKey, error) {
	if !uuidRe.MatchString(accountID) || !uuidRe.MatchString(keyID) {
		return nil, ErrAPIKeyNotFound
	}
	k, err := scanKey(s.db.QueryRow(ctx, `UPDATE gateway.api_keys SET revoked_at = coalesce(revoked_at, now())
		WHERE account_id = $1 AND id = $2 RETURNING `+keyCols, accountID, keyID))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrAPIKeyNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("revoke API key %s: %w", keyID, err)
	}
	s.forget(func(p *Principal) bool { return p.KeyID == keyID })
	return k, nil
}

// Authenticate returns the principal of an API key secret, or
// ErrUnauthenticated if it is unknown or revoked. Suspended accounts
// authenticate (Principal.Suspended): the caller refuses them with a
// clearer error than "invalid key". Lookups, found or not, are cached for
// the TTL; each use is recorded in last_used_at at most once a minute, in
// the background.
func (s *AccountStore) Authenticate(ctx context.Context, secret string) (*Principal, error) {
	if !validKeyText(secret) {
		return nil, ErrUnauthenticated
	}
	hash := hashKey(secret)
	now := s.now()
	if s.ttl > 0 {
		s.mu.Lock()
		e, ok := s.cache[hash]
		s.mu.Unlock()
		if ok && now.Before(e.expires) {
			if e.p == nil {
				return nil, ErrUnauthenticated
			}
			s.touch(e.p.KeyID)
			return e.p, nil
		}
	}
	p, err := s.lookup(ctx, hash)
	if err != nil {
		return nil, err
	}
	if s.ttl > 0 {
		s.mu.Lock()
		if len(s.cache) >= authCacheMaxSize {
			for h, e := range s.cache {
				if !now.Before(e.expires) {
					delete(s.cache, h)
				}
			}
			if len(s.cache) >= authCacheMaxSize {
				clear(s.cache) // a flood of distinct keys: start over
			}
		}
		s.cache[hash] = cacheEntry{p: p, expires: now.Add(s.ttl)}
		s.mu.Unlock()
	}
	if p == nil {
		return nil, ErrUnauthenticated
	}
	s.touch(p.KeyID)
	return p, nil
}

// lookup reads the principal of a key hash; nil when no valid key has it.
func (s *AccountStore) lookup(ctx context.Context, hash [32]byte) (*Principal, error) {
	var p Principal
	var status string
	err := s.db.QueryRow(ctx, `SELECT k.id::text, a.id::text, a.name, a.status, a.ip_allowlist
		FROM gateway.api_keys k JOIN gateway.accounts a ON a.id = k.account_id
		WHERE k.secret_hash = $1 AND k.revoked_at IS NULL`, hash[:]).
		Scan(&p.KeyID, &p.AccountID, &p.AccountName, &status, &p.Allowlist)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("authenticate API key: %w", err)
	}
	p.Suspended = status != StatusActive
	return &p, nil
}

func (s *AccountStore) forget(match func(*Principal) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for h, e := range s.cache {
		if e.p != nil && match(e.p) {
			delete(s.cache, h)
		}
	}
}

func (s *AccountStore) forgetHash(hash [32]byte) {
	s.mu.Lock()
	delete(s.cache, hash)
	s.mu.Unlock()
}

// touch records in the background that key id was used, at most once a
// minute per key on this replica; the UPDATE's condition keeps replicas
// together to about once a minute as well.
func (s *AccountStore) touch(keyID string) {
	now := s.now()
	s.touchMu.Lock()
	if s.closed {
		s.touchMu.Unlock()
		return
	}
	if last, ok := s.touched[keyID]; ok && now.Sub(last) < lastUsedResolution {
		s.touchMu.Unlock()
		return
	}
	if len(s.touched) >= authCacheMaxSize {
		for id, t := range s.touched {
			if now.Sub(t) >= lastUsedResolution {
				delete(s.touched, id)
			}
		}
	}
	s.touched[keyID] = now
	s.wg.Add(1)
	s.touchMu.Unlock()
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := s.db.Exec(ctx, `UPDATE gateway.api_keys SET last_used_at = $2
			WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= $2::timestamptz - interval '1 minute')`, keyID, now)
		if err != nil {
			s.log.Warn("record API key use", "key_id", keyID, logging.Err(err))
		}
	}()
}

// EnsureAccount is for development (make run): it creates the account
// named name unless it exists and, when key is given, makes sure that exact
// key is a valid key of the account (re-enabling it if it was revoked), so
// RINGBACK_DEV_API_KEY=k makes k work. With key empty it creates a new key.
// It returns the account's id and the key's secret. A key that already
// belongs to another account is ErrKeyTaken. The account's status is left
// as it is.
func (s *AccountStore) EnsureAccount(ctx context.Context, name, key string) (accountID, keySecret string, err error) {
	if err := checkAccountName(name); err != nil {
		return "", "", err
	}
	if key != "" && !validKeyText(key) {
		return "", "", invalidf("key: 1-%d visible ASCII characters, no spaces", maxKeyLen)
	}
	_, err = s.db.Exec(ctx, `INSERT INTO gateway.accounts (name) VALUES ($1) ON CONFLICT ((lower(name))) DO NOTHING`, name)
	if err != nil {
		return "", "", fmt.Errorf("ensure account %s: %w", name, err)
	}
	a, err := s.GetAccountByName(ctx, name)
	if err != nil {
		return "", "", fmt.Errorf("ensure account %s: %w", name, err)
	}
	if key == "" {
		_, secret, err := s.CreateKey(ctx, a.ID, "development")
		if err != nil {
			return "", "", fmt.Errorf("ensure account %s: %w", name, err)
		}
		return a.ID, secret, nil
	}
	hash := hashKey(key)
	var owner string
	err = s.db.QueryRow(ctx, `INSERT INTO gateway.api_keys (account_id, name, prefix, secret_hash)
		VALUES ($1, 'development', $2, $3)
		ON CONFLICT (secret_hash) DO UPDATE SET revoked_at = NULL
		WHERE gateway.api_keys.account_id = excluded.account_id
		RETURNING account_id::text`, a.ID, keyPrefix(key), hash[:]).Scan(&owner)
	if errors.Is(err, pgx.ErrNoRows) { // the conflict's WHERE failed: another account's key
		return "", "", fmt.Errorf("ensure account %s: %w", name, ErrKeyTaken)
	}
	if err != nil {
		return "", "", fmt.Errorf("ensure account %s: key: %w", name, err)
	}
	s.forgetHash(hash)
	return a.ID, key, nil
}
