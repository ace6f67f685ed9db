// Package storetest gives each test its own throwaway PostgreSQL database on
// the real server (DATABASE_URL, or the scripts/setup default), created on
// demand and dropped at cleanup, so database tests run in parallel without
// seeing each other's rows, and without mocks.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ringback/ringback/services/internal/config"
)

// DefaultAdminURL is used when DATABASE_URL is unset: the maintenance
// database of the local server scripts/setup prepares.
const DefaultAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// prefix names every database this package creates; the unix time after it
// lets a later run drop databases a killed run left behind.
const prefix = "ringback_test_"

// staleAfter is the age after which a leftover test database is dropped.
const staleAfter = time.Hour

// AdminURL is the URL of the server's database used to create and drop test
// databases: DATABASE_URL if set, else DefaultAdminURL.
func AdminURL() string {
	if u := os.Getenv("DATABASE_URL"); u != "" {
		return u
	}
	return DefaultAdminURL
}

// NewDatabase creates an empty database for t and returns its URL (for code
// under test that opens its own pool with store.Open). The database is
// dropped, with any connections left open to it, when t ends.
func NewDatabase(t testing.TB) string {
	t.Helper()
	admin := AdminURL()
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("storetest: DATABASE_URL %s is not a URL", config.RedactURL(admin))
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	name := fmt.Sprintf("%s%d_%s", prefix, time.Now().Unix(), hex.EncodeToString(rnd[:]))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatalf("storetest: connect to %s: %v (is PostgreSQL running? run scripts/setup)", config.RedactURL(admin), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	dropStale(ctx, conn)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("storetest: create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("storetest: drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("storetest: drop database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// NewDB creates a database for t (see NewDatabase) and returns a pool on it,
// closed before the database is dropped.
func NewDB(t testing.TB) *pgxpool.Pool {
	t.Helper()
	dbURL := NewDatabase(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, dbURL)
	if err != nil {
		t.Fatalf("storetest: open %s: %v", config.RedactURL(dbURL), err)
	}
	t.Cleanup(pool.Close)
	if err := pool.Ping(ctx); err != nil {
		t.Fatalf("storetest: ping %s: %v", config.RedactURL(dbURL), err)
	}
	return pool
}

// dropStale drops test databases older than staleAfter: those of runs that
// were killed before their cleanup. Failures are ignored: another run may be
// dropping the same ones.
func dropStale(ctx context.Context, conn *pgx.Conn) {
	rows, err := conn.Query(ctx, "SELECT datname FROM pg_database WHERE datname LIKE $1", prefix+"%")
	if err != nil {
		return
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return
	}
	for _, n := range names {
		ts, _, ok := strings.Cut(strings.TrimPrefix(n, prefix), "_")
		if !ok {
			continue
		}
		sec, err := strconv.ParseInt(ts, 10, 64)
		if err != nil || time.Since(time.Unix(sec, 0)) < staleAfter {
			continue
		}
		_, _ = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{n}.Sanitize()+" WITH (FORCE)")
	}
}
