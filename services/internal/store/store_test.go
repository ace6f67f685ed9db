package store_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.uber.org/goleak"

	"github.com/ringback/ringback/services/internal/store"
	"github.com/ringback/ringback/services/internal/store/storetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func files(kv ...string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for i := 0; i < len(kv); i += 2 {
		fsys[kv[i]] = &fstest.MapFile{Data: []byte(kv[i+1])}
	}
	return fsys
}

func applied(t *testing.T, pool *pgxpool.Pool, schema string) []string {
	t.Helper()
	rows, err := pool.Query(t.Context(), "SELECT version FROM "+schema+".schema_migrations ORDER BY version")
	if err != nil {
		t.Fatal(err)
	}
	v, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func count(t *testing.T, pool *pgxpool.Pool, query string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(t.Context(), query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func tableExists(t *testing.T, pool *pgxpool.Pool, qualified string) bool {
	t.Helper()
	var ok bool
	if err := pool.QueryRow(t.Context(), "SELECT to_regclass($1) IS NOT NULL", qualified).Scan(&ok); err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestOpen(t *testing.T) {
	t.Parallel()
	dbURL := storetest.NewDatabase(t)
	tests := []struct {
		name    string
		url     string
		opts    store.Options
		wantErr string
		check   func(t *testing.T, p *pgxpool.Pool)
	}{
		{
			name: "defaults",
			url:  dbURL,
			opts: store.Options{AppName: "origination"},
			check: func(t *testing.T, p *pgxpool.Pool) {
				if got := p.Config().MaxConns; got != 10 {
					t.Errorf("MaxConns = %d, want 10", got)
				}
				var app string
				if err := p.QueryRow(t.Context(), "SHOW application_name").Scan(&app); err != nil || app != "origination" {
					t.Errorf("application_name = %q, %v", app, err)
				}
			},
		},
		{
			name: "url parameters win",
			url:  dbURL + "&pool_max_conns=3",
			opts: store.Options{MaxConns: 20},
			check: func(t *testing.T, p *pgxpool.Pool) {
				if got := p.Config().MaxConns; got != 3 {
					t.Errorf("MaxConns = %d, want 3", got)
				}
			},
		},
		{
			name:    "nobody listening",
			url:     "postgres://postgres:hunter2@127.0.0.1:1/x?sslmode=disable",
			opts:    store.Options{ConnectTimeout: time.Second},
			wantErr: "ping",
		},
		{
			name:    "no such database",
			url:     strings.Replace(dbURL, "ringback_test_", "ringback_missing_", 1),
			wantErr: "does not exist",
		},
		{
			name:    "not a URL",
			url:     "postgres://postgres:hunter2@127.0.0.1:bad/x",
			wantErr: "invalid URL",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			p, err := store.Open(ctx, tt.url, tt.opts)
			if tt.wantErr != "" {
				if err == nil {
					p.Close()
					t.Fatal("Open succeeded")
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %q does not contain %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("error leaks the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			tt.check(t, p)
		})
	}
}

func TestMigrateAppliesEachFileOnce(t *testing.T) {
	t.Parallel()
	pool := storetest.NewDB(t)
	ctx := t.Context()
	v1 := files(
		"0001_calls.sql", "CREATE TABLE calls (id text PRIMARY KEY, status text NOT NULL);\nCREATE INDEX calls_status ON calls (status);",
		"0002_seed.sql", "INSERT INTO calls VALUES ('c1', 'queued');",
		"README.md", "not a migration",
	)
	v2 := files(
		"0001_calls.sql", string(v1["0001_calls.sql"].Data),
		"0002_seed.sql", string(v1["0002_seed.sql"].Data),
		"0003_legs.sql", "CREATE TABLE legs (uuid uuid PRIMARY KEY, call_id text REFERENCES calls);",
	)
	steps := []struct {
		name string
		fsys fstest.MapFS
		want []string
	}{
		{"first start", v1, []string{"0001_calls.sql", "0002_seed.sql"}},
		{"restart", v1, []string{"0001_calls.sql", "0002_seed.sql"}},
		{"new release", v2, []string{"0001_calls.sql", "0002_seed.sql", "0003_legs.sql"}},
		{"old release during rolling update", v1, []string{"0001_calls.sql", "0002_seed.sql", "0003_legs.sql"}},
	}
	for _, st := range steps { // sequential: each step starts from the last
		t.Run(st.name, func(t *testing.T) {
			if err := store.Migrate(ctx, pool, "origination", st.fsys); err != nil {
				t.Fatal(err)
			}
			if got := applied(t, pool, "origination"); strings.Join(got, ",") != strings.Join(st.want, ",") {
				t.Errorf("applied %v, want %v", got, st.want)
			}
			if n := count(t, pool, "SELECT count(*) FROM origination.calls"); n != 1 {
				t.Errorf("seed applied %d times", n)
			}
		})
	}
	// Unqualified names went to the service's schema, not public.
	if !tableExists(t, pool, "origination.legs") || tableExists(t, pool, "public.calls") {
		t.Error("tables not created in the origination schema")
	}
}

func TestMigrateAppliesInLexicalOrder(t *testing.T) {
	t.Parallel()
	pool := storetest.NewDB(t)
	fsys := files(
		"0002_b.sql", "INSERT INTO log (name) VALUES ('b');",
		"0010_c.sql", "INSERT INTO log (name) VALUES ('c');",
		"0001_a.sql", "CREATE TABLE log (seq serial, name text); INSERT INTO log (name) VALUES ('a');",
	)
	if err := store.Migrate(t.Context(), pool, "rating", fsys); err != nil {
		t.Fatal(err)
	}
	rows, err := pool.Query(t.Context(), "SELECT name FROM rating.log ORDER BY seq")
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, "") != "abc" {
		t.Errorf("applied in order %v, want a b c", got)
	}
}

func TestMigrateConcurrentStarts(t *testing.T) {
	t.Parallel()
	pool := storetest.NewDB(t)
	fsys := files(
		"0001_t.sql", "CREATE TABLE t (n int); SELECT pg_sleep(0.05);",
		"0002_seed.sql", "INSERT INTO t VALUES (1); SELECT pg_sleep(0.05);",
	)
	const replicas = 8
	var wg sync.WaitGroup
	errs := make([]error, replicas)
	for i := range replicas {
		wg.Go(func() {
			// Each replica has its own pool, as separate processes would.
			p, err := pgxpool.New(t.Context(), pool.Config().ConnString())
			if err != nil {
				errs[i] = err
				return
			}
			defer p.Close()
			errs[i] = store.Migrate(t.Context(), p, "cdr", fsys)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("replica %d: %v", i, err)
		}
	}
	if n := count(t, pool, "SELECT count(*) FROM cdr.t"); n != 1 {
		t.Errorf("seed applied %d times, want 1", n)
	}
	if n := count(t, pool, "SELECT count(*) FROM cdr.schema_migrations"); n != 2 {
		t.Errorf("%d migrations recorded, want 2", n)
	}
}

func TestMigrateSchemasAreIndependent(t *testing.T) {
	t.Parallel()
	pool := storetest.NewDB(t)
	fsys := files("0001_x.sql", "CREATE TABLE x (id int);")
	for _, schema := range []string{"gateway", "webhook"} {
		if err := store.Migrate(t.Context(), pool, schema, fsys); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{"gateway.x", "webhook.x"} {
		if !tableExists(t, pool, q) {
			t.Errorf("%s missing", q)
		}
	}
}

func TestMigrateRefusesChangedMigration(t *testing.T) {
	t.Parallel()
	pool := storetest.NewDB(t)
	ctx := t.Context()
	if err := store.Migrate(ctx, pool, "dialer", files(
		"0001_a.sql", "CREATE TABLE a (id int);",
		"0002_b.sql", "CREATE TABLE b (id int);",
	)); err != nil {
		t.Fatal(err)
	}
	err := store.Migrate(ctx, pool, "dialer", files(
		"0001_a.sql", "CREATE TABLE a (id bigint);", // edited after it was applied
		"0002_b.sql", "CREATE TABLE b (id int);",
		"0003_c.sql", "CREATE TABLE c (id int);",
	))
	if !errors.Is(err, store.ErrChecksumMismatch) {
		t.Fatalf("Migrate = %v, want ErrChecksumMismatch", err)
	}
	if !strings.Contains(err.Error(), "0001_a.sql") || strings.Contains(err.Error(), "0002_b.sql") {
		t.Errorf("error %q should name only the changed file", err)
	}
	if tableExists(t, pool, "dialer.c") {
		t.Error("a new migration ran despite the mismatch")
	}
}

func TestMigrateFailureRollsBack(t *testing.T) {
	t.Parallel()
	pool := storetest.NewDB(t)
	ctx := t.Context()
	bad := files(
		"0001_ok.sql", "CREATE TABLE ok (id int);",
		"0002_bad.sql", "CREATE TABLE half (id int);\nINSERT INTO ok VALUES (1);\nSELEC oops;",
		"0003_later.sql", "CREATE TABLE later (id int);",
	)
	err := store.Migrate(ctx, pool, "webhook", bad)
	if err == nil {
		t.Fatal("Migrate succeeded with a broken file")
	}
	if !strings.Contains(err.Error(), "0002_bad.sql line 3") || !strings.Contains(err.Error(), "syntax error") {
		t.Errorf("error %q should name the file, line and cause", err)
	}
	tests := []struct {
		table string
		want  bool
	}{
		{"webhook.ok", true},     // the good file before it stays applied
		{"webhook.half", false},  // the broken file rolled back whole
		{"webhook.later", false}, // nothing after it ran
	}
	for _, tt := range tests {
		if got := tableExists(t, pool, tt.table); got != tt.want {
			t.Errorf("%s exists = %v, want %v", tt.table, got, tt.want)
		}
	}
	if n := count(t, pool, "SELECT count(*) FROM webhook.ok"); n != 0 {
		t.Errorf("insert of the failed file kept")
	}
	if got := applied(t, pool, "webhook"); strings.Join(got, ",") != "0001_ok.sql" {
		t.Errorf("recorded %v", got)
	}

	// Fixing the file (it was never applied, so it may change) completes the run.
	bad["0002_bad.sql"].Data = []byte("CREATE TABLE half (id int);\nINSERT INTO ok VALUES (1);")
	if err := store.Migrate(ctx, pool, "webhook", bad); err != nil {
		t.Fatal(err)
	}
	if got := applied(t, pool, "webhook"); len(got) != 3 {
		t.Errorf("recorded %v after the fix", got)
	}
}

func TestMigrateValidates(t *testing.T) {
	t.Parallel()
	pool := storetest.NewDB(t)
	tests := []struct {
		name   string
		schema string
		fsys   fstest.MapFS
		want   string
	}{
		{"bad schema", "Robert'); DROP", files("0001.sql", "SELECT 1"), "schema name"},
		{"no files", "cdr", files("migrations/0001.sql", "SELECT 1"), "no *.sql migrations"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := store.Migrate(t.Context(), pool, tt.schema, tt.fsys)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Migrate = %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}

func TestNewDBIsolatesAndDrops(t *testing.T) {
	t.Parallel()
	admin, err := pgx.Connect(t.Context(), storetest.AdminURL())
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())

	var names [2]string
	t.Run("two databases", func(t *testing.T) {
		a, b := storetest.NewDB(t), storetest.NewDB(t)
		for i, p := range []*pgxpool.Pool{a, b} {
			if err := p.QueryRow(t.Context(), "SELECT current_database()").Scan(&names[i]); err != nil {
				t.Fatal(err)
			}
		}
		if names[0] == names[1] || !strings.HasPrefix(names[0], "ringback_test_") {
			t.Fatalf("databases %v", names)
		}
		if _, err := a.Exec(t.Context(), "CREATE TABLE only_in_a (id int)"); err != nil {
			t.Fatal(err)
		}
		if tableExists(t, b, "public.only_in_a") {
			t.Error("a table created in one test database is visible in another")
		}
	})
	for _, n := range names {
		var exists bool
		if err := admin.QueryRow(t.Context(), "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", n).Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if exists {
			t.Errorf("database %s not dropped at cleanup", n)
		}
	}
}
