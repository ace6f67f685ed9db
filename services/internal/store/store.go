// Package store opens the PostgreSQL connection pool a service uses and
// applies the service's embedded schema migrations at start. Each service
// owns one schema (origination, rating, cdr, ...), so migrations and the
// table recording them live in that schema, and services sharing a
// database never touch each other's tables.
package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ringback/ringback/services/internal/config"
)

// Options tunes Open. Parameters given in the URL itself (pool_max_conns,
// connect_timeout, application_name, ...) win over these.
type Options struct {
	// AppName is shown in pg_stat_activity (the service name).
	AppName string
	// MaxConns caps the pool (default 10: a service's handlers wait for a
	// connection rather than overload the server).
	MaxConns int32
	// ConnectTimeout (a duration) bounds dialing one connection (default 5s).
	ConnectTimeout time.Duration
}

// Open returns a pool on databaseURL after a successful ping, so a wrong
// URL or a database that is down fails the start, not the first call.
func Open(ctx context.Context, databaseURL string, opts Options) (*pgxpool.Pool, error) {
	redacted := config.RedactURL(databaseURL)
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		// pgx's parse errors may quote the URL; say only which one.
		return nil, fmt.Errorf("open database %s: invalid URL", redacted)
	}
	q := url.Values{}
	if u, err := url.Parse(databaseURL); err == nil {
		q = u.Query()
	}
	if !q.Has("pool_max_conns") {
		cfg.MaxConns = 10
		if opts.MaxConns > 0 {
			cfg.MaxConns = opts.MaxConns
		}
	}
	if !q.Has("pool_max_conn_lifetime") {
		cfg.MaxConnLifetime = 30 * time.Minute // follow failovers and DNS changes
	}
	if !q.Has("pool_max_conn_idle_time") {
		cfg.MaxConnIdleTime = 5 * time.Minute
	}
	if !q.Has("pool_health_check_period") {
		cfg.HealthCheckPeriod = 30 * time.Second
	}
	if !q.Has("connect_timeout") {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
		if opts.ConnectTimeout > 0 {
			cfg.ConnConfig.ConnectTimeout = opts.ConnectTimeout
		}
	}
	if opts.AppName != "" && !q.Has("application_name") {
		cfg.ConnConfig.RuntimeParams["application_name"] = opts.AppName
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", redacted, err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open database %s: ping: %w", redacted, err)
	}
	return pool, nil
}

// ErrChecksumMismatch means a migration already applied was edited since:
// the database no longer matches the code. Add a new migration instead.
var ErrChecksumMismatch = errors.New("applied migration was modified")

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

type migration struct {
	version  string // the file name, e.g. 0001_calls.sql
	sql      string
	checksum string
}

// Migrate applies the *.sql files at the root of fsys (use fs.Sub on an
// embed.FS) that schema has not applied yet, in lexical order of their
// names (number them: 0001_init.sql, 0002_...). Each file runs in its own
// transaction with search_path set to schema, so unqualified names land in
// the service's schema; a failing file rolls back whole and stops the run.
// Applied files are recorded with a SHA-256 in <schema>.schema_migrations;
// Migrate refuses to run (ErrChecksumMismatch) if a recorded file changed.
// Concurrent Migrate calls (replicas starting together) are serialized by a
// PostgreSQL advisory lock, so each file is applied once. Recorded versions
// with no file (a newer release's, during a rolling update) are ignored.
// A file must not contain its own BEGIN/COMMIT, nor statements that cannot
// run in a transaction (CREATE INDEX CONCURRENTLY).
func Migrate(ctx context.Context, pool *pgxpool.Pool, schema string, fsys fs.FS) error {
	if !schemaName.MatchString(schema) {
		return fmt.Errorf("migrate: schema name %q must match %s", schema, schemaName)
	}
	migrations, err := readMigrations(fsys)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", schema, err)
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate %s: acquire connection: %w", schema, err)
	}
	defer conn.Release()

	key := lockKey(schema)
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", key); err != nil {
		return fmt.Errorf("migrate %s: take lock: %w", schema, err)
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, "SELECT pg_advisory_unlock($1)", key); err != nil {
			// Ending the session releases the lock.
			_ = conn.Conn().Close(uctx)
		}
	}()

	ident := pgx.Identifier{schema}.Sanitize()
	table := ident + ".schema_migrations"
	if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+ident); err != nil {
		return fmt.Errorf("migrate %s: create schema: %w", schema, err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+table+` (
		version    text PRIMARY KEY,
		checksum   text NOT NULL,
		applied_at timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return fmt.Errorf("migrate %s: create %s: %w", schema, table, err)
	}

	rows, err := conn.Query(ctx, "SELECT version, checksum FROM "+table)
	if err != nil {
		return fmt.Errorf("migrate %s: read applied migrations: %w", schema, err)
	}
	applied := map[string]string{}
	var version, sum string
	_, err = pgx.ForEachRow(rows, []any{&version, &sum}, func() error {
		applied[version] = sum
		return nil
	})
	if err != nil {
		return fmt.Errorf("migrate %s: read applied migrations: %w", schema, err)
	}

	var changed []string
	var pending []migration
	for _, m := range migrations {
		sum, ok := applied[m.version]
		switch {
		case !ok:
			pending = append(pending, m)
		case sum != m.checksum:
			changed = append(changed, m.version)
		}
	}
	if len(changed) > 0 {
		return fmt.Errorf("migrate %s: %w: %s", schema, ErrChecksumMismatch, strings.Join(changed, ", "))
	}
	for _, m := range pending {
		if err := apply(ctx, conn.Conn(), ident, table, m); err != nil {
			return fmt.Errorf("migrate %s: %w", schema, err)
		}
	}
	return nil
}

func apply(ctx context.Context, conn *pgx.Conn, ident, table string, m migration) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", m.version, err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, "SET LOCAL search_path TO "+ident+", public"); err != nil {
		return fmt.Errorf("%s: set search_path: %w", m.version, err)
	}
	// No arguments: pgx sends it with the simple protocol, so a file may
	// hold many statements.
	if _, err := tx.Exec(ctx, m.sql); err != nil {
		return fmt.Errorf("%s%s: %w", m.version, where(m.sql, err), err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO "+table+" (version, checksum) VALUES ($1, $2)", m.version, m.checksum); err != nil {
		return fmt.Errorf("%s: record: %w", m.version, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("%s: commit: %w", m.version, err)
	}
	return nil
}

// where turns PostgreSQL's error position (characters from the start of
// the file) into " line N", or "" if the error has no position.
func where(sql string, err error) string {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Position <= 0 {
		return ""
	}
	runes := []rune(sql)
	pos := min(int(pgErr.Position), len(runes))
	return fmt.Sprintf(" line %d", strings.Count(string(runes[:pos]), "\n")+1)
}

func readMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, errors.New("no *.sql migrations found (use fs.Sub for a subdirectory)")
	}
	slices.Sort(names)
	out := make([]migration, 0, len(names))
	for _, name := range names {
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		sum := sha256.Sum256(b)
		out = append(out, migration{version: path.Base(name), sql: string(b), checksum: hex.EncodeToString(sum[:])})
	}
	return out, nil
}

// lockKey is the advisory lock of one schema's migrations: other schemas
// migrate in parallel.
func lockKey(schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("ringback.migrate." + schema))
	return int64(h.Sum64())
}
